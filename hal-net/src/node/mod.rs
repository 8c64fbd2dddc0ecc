//! The node driver: one HAL server process, feeding hal-core's [`Server`] and carrying
//! out its outputs over a [`Transport`], a [`Storage`] and a [`Clock`].
//!
//! Production runs it over tokio TCP, files and the system clock; the simulator runs the
//! very same code over turmoil, so a bug in framing, reconnection or persistence here is
//! one the simulator can find.
//!
//! # Tasks
//!
//! - the **core loop** ([`core`]) owns the `Server`: it takes inputs from one channel
//!   (peer messages, client requests, status queries), the timer and the storage task, and
//!   drains the outputs after each;
//! - the **storage task** makes batches durable, one at a time; whatever the core asks to
//!   persist while a batch is being synced waits and goes in the next (group commit). The
//!   active server's batches are synced on another thread, so that it goes on sending,
//!   counting acks and answering meanwhile (its followers' copies may commit a request
//!   before its own); a follower's are synced on the node's own thread, which has nothing
//!   more urgent (its ack waits for the sync), and that saves a thread hand-off each;
//! - one **outgoing link** per peer ([`links`]) connects, shakes hands, sends that peer's
//!   messages and pings, and reconnects with capped backoff when the link breaks or stalls;
//! - the **acceptor** ([`accept`]) takes connections, shakes hands, and runs each peer's
//!   incoming link, each client connection and each status query in its own task.
//!
//! # Durability before answers
//!
//! hal-core says: a persist must be durable before any *later* message or reply leaves
//! the node. The core loop tags each output with the batch that holds the newest persist
//! before it, and holds it until that batch is synced.

mod accept;
mod core;
mod journaling;
mod license;
mod links;
mod progress;
mod status;
mod throttle;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hal_core::ServerEvent;
use hal_core::ServerId;
use hal_core::catalog::Catalog;
use hal_core::protocol::{ClientRequest, PeerMessage};
use hal_core::timing::Timing;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clock::Clock;
use crate::journal::Journal;
use crate::storage::{Storage, StorageError};
use crate::tls::borrow_proof::BorrowSigner;
use crate::transport::{Listener, Transport};
use crate::wire::{Identity, Message, PeerStatus, StatusReport};

/// How a node is set up (the shell's part; hal-core's part is `core`).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub core: hal_core::server::Config,
    /// The address to listen on (`host:port`).
    pub listen: String,
    /// Where to reach each peer (`host:port`); empty for a single server.
    pub peers: BTreeMap<ServerId, String>,
    /// What must agree with the peers (triad list, license).
    pub identity: Identity,
    /// The most client connections open at once.
    pub client_connections_max: usize,
    /// The most client connections open at once from one address.
    pub client_connections_per_address_max: usize,
    /// When the node's TLS certificate expires (wall-clock ms), for status; `None` in
    /// plaintext.
    pub certificate_expires_ms: Option<u64>,
    pub links: LinkTiming,
    /// Signs the replies that grant a borrow (the server's TLS key); `None` in
    /// plaintext, where borrow records go unsigned.
    pub borrow_signer: Option<BorrowSigner>,
    /// Where the node journals what it sees ([`crate::journal`]); off by default.
    pub journal: Journal,
    /// The license file, which the node rewrites when a license takes effect (`None`:
    /// no file follows the license in force).
    pub license_file: Option<LicenseFileSpec>,
}

/// The license file a node keeps in step with the license in force.
#[derive(Debug, Clone)]
pub struct LicenseFileSpec {
    pub path: std::path::PathBuf,
    /// The digests of the files this server has read (at its start) or written: a SIGHUP
    /// pushes the file only if it is none of them, so a file left behind (a write that
    /// failed) never takes an older license back.
    pub seen: SeenLicenses,
}

/// The digests of license files a server has read or written, the latest
/// [`SeenLicenses::MAX`].
#[derive(Debug, Clone, Default)]
pub struct SeenLicenses(Arc<std::sync::Mutex<std::collections::VecDeque<String>>>);

impl SeenLicenses {
    /// The most digests remembered.
    pub const MAX: usize = 64;

    pub fn add(&self, digest: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.iter().any(|d| d == digest) {
            return;
        }
        if seen.len() >= Self::MAX {
            seen.pop_front();
        }
        seen.push_back(digest.to_string());
    }

    pub fn contains(&self, digest: &str) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().any(|d| d == digest)
    }
}

/// The shell's timers for connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTiming {
    /// How often an outgoing peer link pings.
    pub ping_every: Duration,
    /// A peer link that has been silent this long is stalled: close it and reconnect.
    pub stall_after: Duration,
    /// The first and the longest pause between reconnection attempts.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long a new connection may take to say hello, and to answer one.
    pub handshake_timeout: Duration,
    /// A client connection silent this long is closed.
    pub client_idle_max: Duration,
}

impl LinkTiming {
    /// Link timers that fit the protocol's `timing`: a stalled link is replaced well
    /// before a leader would step down for lack of contact.
    pub fn for_timing(timing: &Timing) -> LinkTiming {
        let ping_every = timing.peer_heartbeat;
        LinkTiming {
            ping_every,
            stall_after: (ping_every * 4).max(timing.election_timeout / 2),
            backoff_min: Duration::from_millis(20).min(ping_every),
            backoff_max: timing.election_timeout / 2,
            handshake_timeout: Duration::from_secs(5).max(timing.election_timeout),
            client_idle_max: timing.client_lease + timing.client_heartbeat,
        }
    }
}

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("storage stopped unexpectedly (its task panicked); nothing more can be made durable")]
    StorageGone,
    #[error(
        "storage hung: a sync took longer than {} s; stopping so that the other servers serve",
        limit.as_secs()
    )]
    SyncTimeout { limit: Duration },
}

/// A connection's number, for routing replies.
type ConnId = u64;

/// An input for the core loop.
#[derive(Debug)]
enum Inbound {
    Peer(PeerMessage),
    ClientOpened {
        conn: ConnId,
        replies: mpsc::Sender<Message>,
    },
    Request {
        conn: ConnId,
        request: ClientRequest,
    },
    ClientClosed {
        conn: ConnId,
    },
    Status(oneshot::Sender<StatusReport>),
    /// A peer link came up or went down; why it went down, if known.
    Link(PeerStatus, Option<String>),
}

/// The most inputs waiting for the core loop; senders wait when it is full.
const INBOUND_MAX: usize = 4096;
/// The most messages waiting for one peer link; more are dropped (as a network would).
const PEER_QUEUE_MAX: usize = 4096;
/// The most replies waiting for one client; a client that lets more pile up is not
/// reading, and its connection is closed.
const CLIENT_QUEUE_MAX: usize = 256;
/// The most connections shaking hands at once.
const HANDSHAKES_MAX: usize = 64;
/// The most connections shaking hands at once from one source address; a newer one
/// closes the oldest.
const HANDSHAKES_PER_SOURCE_MAX: usize = 8;

/// The most bytes of large frames still arriving on connections that are not
/// authenticated peers, all together ([`crate::wire::FrameBudget`]).
pub const FRAMES_ARRIVING_BYTES_MAX: usize = 16 << 20;

/// What every task of a node shares.
#[derive(Debug, Clone)]
struct Shared<T: Transport> {
    me: ServerId,
    /// The budget for frames still arriving from clients and unidentified connections.
    frames: Arc<crate::wire::FrameBudget>,
    transport: T,
    config: Arc<NodeConfig>,
    inbound: mpsc::Sender<Inbound>,
    stop: CancellationToken,
    incoming: IncomingLinks,
    /// The node's clock, for what the links journal (peer clock offsets).
    now: NowFn,
    /// Where the links count their round trips, if the node keeps metrics.
    metrics: Option<crate::metrics::Metrics>,
}

/// Reads a node's clock.
#[derive(Clone)]
struct NowFn(Arc<dyn Fn() -> hal_core::time::Now + Send + Sync>);

impl std::fmt::Debug for NowFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NowFn")
    }
}

/// The incoming link of each peer: one at a time, the newest wins.
#[derive(Debug, Clone, Default)]
struct IncomingLinks(Arc<std::sync::Mutex<BTreeMap<ServerId, (ConnId, CancellationToken)>>>);

impl IncomingLinks {
    /// Registers connection `conn` as `peer`'s incoming link, replacing (closing) an older
    /// one; the returned token says when this one is replaced in turn.
    fn take_over(&self, peer: ServerId, conn: ConnId) -> CancellationToken {
        let token = CancellationToken::new();
        let mut links = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((old, replaced)) = links.insert(peer, (conn, token.clone())) {
            // Normal after a peer restarts (its old link has not timed out yet); if it
            // keeps happening, two processes claim the same id.
            tracing::info!(%peer, old, conn, "a new link from the peer replaces the older one");
            replaced.cancel();
        }
        token
    }

    /// Forgets `peer`'s link `conn` when it ends (unless a newer one took over).
    fn ended(&self, peer: ServerId, conn: ConnId) {
        let mut links = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if links
            .get(&peer)
            .is_some_and(|(current, _)| *current == conn)
        {
            links.remove(&peer);
        }
    }
}

/// A function told of every [`ServerEvent`] as the node logs it (the simulator's
/// history of roles).
#[derive(Clone)]
pub struct EventHook(pub Arc<dyn Fn(&ServerEvent) + Send + Sync>);

impl std::fmt::Debug for EventHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHook")
    }
}

/// A read-only view of a running node, for a task beside it ([`Node::beside`]): the
/// node's status on request, and when it stops. A question never waits for room in the
/// core loop's input queue (one that finds it full is not asked), so it cannot hold up
/// peers' and clients' inputs; each one costs the core loop a status report, so a task
/// asks sparingly (discovery at most four times a second).
#[derive(Debug, Clone)]
pub struct NodeView {
    inbound: mpsc::Sender<Inbound>,
    stop: CancellationToken,
    /// The node's certificate's expiry, which the report from the core loop lacks.
    certificate_expires_ms: Option<u64>,
}

impl NodeView {
    /// The node's status report, if the core loop takes the question at once and
    /// answers within `limit`; `None` when it is busy (its input queue full), slow, or
    /// stopping.
    pub async fn status(&self, limit: Duration) -> Option<StatusReport> {
        let (answer, report) = oneshot::channel();
        self.inbound.try_send(Inbound::Status(answer)).ok()?;
        let mut report = tokio::time::timeout(limit, report).await.ok()?.ok()?;
        report.certificate_expires_ms = self.certificate_expires_ms;
        Some(report)
    }

    /// Completes when the node has stopped.
    pub async fn stopped(&self) {
        self.stop.cancelled().await;
    }
}

/// A task that runs beside a node and sees it through a [`NodeView`].
type BesideTask =
    Box<dyn FnOnce(NodeView) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The tasks to start beside a node (discovery's responder).
#[derive(Default)]
struct Beside(Vec<BesideTask>);

impl std::fmt::Debug for Beside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Beside({} tasks)", self.0.len())
    }
}

/// A server bound to its address, ready to run.
#[derive(Debug)]
pub struct Node<T: Transport, S: Storage, C: Clock> {
    config: NodeConfig,
    catalog: Catalog,
    transport: T,
    storage: S,
    clock: C,
    listener: T::Listener,
    hook: Option<EventHook>,
    beside: Beside,
    metrics: Option<crate::metrics::Metrics>,
}

impl<T: Transport, S: Storage, C: Clock> Node<T, S, C> {
    /// Binds the listening address.
    pub async fn bind(
        config: NodeConfig,
        catalog: Catalog,
        transport: T,
        storage: S,
        clock: C,
    ) -> Result<Self, NodeError> {
        let listener =
            transport
                .bind(&config.listen)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: config.listen.clone(),
                    source,
                })?;
        Ok(Node {
            config,
            catalog,
            transport,
            storage,
            clock,
            listener,
            hook: None,
            beside: Beside::default(),
            metrics: None,
        })
    }

    /// Runs `task` beside the node once it runs, with a view of it (discovery's
    /// responder, which reports the node's role). The task ends with the node's runtime
    /// (the process, or the simulated host); [`NodeView::stopped`] tells it earlier.
    pub fn beside<F, Fut>(mut self, task: F) -> Self
    where
        F: FnOnce(NodeView) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.beside
            .0
            .push(Box::new(move |view| Box::pin(task(view))));
        self
    }

    /// Counts what the node does into `metrics` (replies, denials, commit and sync
    /// latencies, peer round trips); the HTTP listener reads them.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tells `hook` of every server event (role changes, lost majority, failback, expiries).
    pub fn on_event(mut self, hook: EventHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> String {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.config.listen.clone())
    }

    /// Runs the server until `shutdown` completes (then stops cleanly) or storage fails.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), NodeError> {
        let me = self.config.core.id();
        let span = tracing::info_span!("node", id = %me);
        let journal = self.config.journal.clone();
        let durable = match self.storage.load().instrument(span.clone()).await {
            Ok(durable) => durable,
            Err(e) => {
                let stop = stop_record(me, format!("cannot load its data: {e}"));
                journal.record(self.clock.now(), stop);
                return Err(e.into());
            }
        };
        journal.record(self.clock.now(), journaling::start_record(me, &durable));
        let clock = self.clock.clone();
        let now = NowFn(Arc::new(move || clock.now()));
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_MAX);
        let shared = Shared {
            me,
            frames: crate::wire::FrameBudget::new(FRAMES_ARRIVING_BYTES_MAX),
            transport: self.transport.clone(),
            config: Arc::new(self.config.clone()),
            inbound: inbound_tx,
            stop: CancellationToken::new(),
            incoming: IncomingLinks::default(),
            now,
            metrics: self.metrics.clone(),
        };
        let mut peer_queues = BTreeMap::new();
        for (&peer, addr) in &self.config.peers {
            let (tx, rx) = mpsc::channel(PEER_QUEUE_MAX);
            peer_queues.insert(peer, tx);
            let link = links::outgoing(shared.clone(), peer, addr.clone(), rx);
            tokio::spawn(link.instrument(span.clone()));
        }
        tokio::spawn(accept::run(shared.clone(), self.listener).instrument(span.clone()));
        for task in self.beside.0.drain(..) {
            let view = NodeView {
                inbound: shared.inbound.clone(),
                stop: shared.stop.clone(),
                certificate_expires_ms: self.config.certificate_expires_ms,
            };
            tokio::spawn(task(view).instrument(span.clone()));
        }
        let (persist_tx, persist_rx) = mpsc::channel(1);
        let (synced_tx, synced_rx) = mpsc::channel(1);
        tokio::spawn(storage_task(self.storage, persist_rx, synced_tx).instrument(span.clone()));
        // The core loop reports every sync, so the leader's appends need not wait for
        // its own disk.
        let core_config = hal_core::server::Config {
            reports_durable: true,
            ..self.config.core.clone()
        };
        let server =
            hal_core::server::Server::new(core_config, self.catalog, durable, self.clock.now());
        // Entries up to here were on disk at the start: replaying them is no news.
        let replayed_until = server.last_index().0;
        let end_clock = self.clock.clone();
        let core = core::Core::new(server, self.clock, peer_queues, persist_tx, self.hook)
            .with_signer(self.config.borrow_signer.clone())
            .with_metrics(self.metrics.clone())
            .with_journal(me, journal.clone())
            .with_license(license::LicenseKeeper::new(
                self.config.license_file.clone(),
                self.config.identity.license_digest.clone(),
                replayed_until,
            ));
        let result = core
            .run(inbound_rx, synced_rx, shutdown)
            .instrument(span)
            .await;
        shared.stop.cancel();
        let why = match &result {
            Ok(()) => "shutdown".to_string(),
            Err(e) => e.to_string(),
        };
        journal.record(end_clock.now(), stop_record(me, why));
        result
    }
}

fn stop_record(me: ServerId, reason: String) -> hal_core::record::Record {
    hal_core::record::Record::Stop(hal_core::record::Stop {
        t_ms: 0,
        server: me.get(),
        reason,
    })
}

/// A batch for the storage task, and whether to sync it on the node's own thread.
type Batch = (Vec<hal_core::server::Persist>, Here);

/// Whether a batch is synced on the node's own thread ([`Storage::persist_here`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Here {
    Yes,
    No,
}

/// Makes batches durable, one at a time, and reports each as done.
async fn storage_task<S: Storage>(
    mut storage: S,
    mut batches: mpsc::Receiver<Batch>,
    synced: mpsc::Sender<Result<(), StorageError>>,
) {
    while let Some((batch, here)) = batches.recv().await {
        let result = match here {
            Here::Yes => storage.persist_here(batch).await,
            Here::No => storage.persist(batch).await,
        };
        let failed = result.is_err();
        if synced.send(result).await.is_err() || failed {
            return;
        }
    }
}
