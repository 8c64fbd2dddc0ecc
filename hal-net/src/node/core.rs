//! The core loop: the one task that owns hal-core's `Server`. It feeds it inputs, drains
//! its outputs after every one, hands persists to the storage task in batches, and holds
//! each message and reply until the writes before it are synced.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use hal_core::ServerId;
use hal_core::protocol::{ClientId, Handle, LogIndex, PeerMessage, ReplyResult, ServerReply};
use hal_core::server::{Output, Persist, Role, Server, ServerEvent};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use hal_core::record::{LinkRecord, Record};

use super::journaling::{self, Pending};
use super::{Batch, ConnId, EventHook, Here, Inbound, NodeError, status};
use crate::clock::{Clock, sleep_for, sleep_until};
use crate::journal::Journal;
use crate::storage::StorageError;
use crate::tls::borrow_proof::{BorrowProof, BorrowSigner, Grant};
use crate::wire::{Message, PeerStatus};

/// The most inputs taken in one go before outputs are flushed: a burst of requests
/// shares one sync, but the loop still gets to its timer and to finished syncs.
const INPUTS_PER_TURN_MAX: usize = 256;

/// The longest a batch may take to sync before the disk is taken for hung.
const SYNC_TIME_MAX: Duration = Duration::from_secs(30);

/// The most outputs and writes waiting for storage before the loop stops taking inputs.
const BACKLOG_MAX: usize = 100_000;

/// A message or reply waiting for its batch to be synced.
#[derive(Debug)]
enum Send {
    Peer(PeerMessage),
    Reply(ServerReply),
}

/// A client connection as the core loop knows it.
#[derive(Debug)]
struct Conn {
    replies: mpsc::Sender<Message>,
    /// The one client id this connection speaks for (set by its first request).
    client: Option<ClientId>,
}

pub(super) struct Core<C: Clock> {
    server: Server,
    clock: C,
    peers: BTreeMap<ServerId, mpsc::Sender<PeerMessage>>,
    links: BTreeMap<ServerId, PeerStatus>,
    conns: BTreeMap<ConnId, Conn>,
    routes: BTreeMap<ClientId, ConnId>,
    persist: mpsc::Sender<Batch>,
    /// Writes not yet handed to storage: they go in batch `batches_handed + 1`.
    unsynced: Vec<Persist>,
    batches_handed: u64,
    batches_synced: u64,
    /// The batch holding the newest persist output so far.
    newest_persist_batch: u64,
    /// The last log index in the writes not yet handed to storage, and in the batch in
    /// flight: reported to the server once that batch is synced.
    unsynced_last_index: Option<LogIndex>,
    in_flight_last_index: Option<LogIndex>,
    /// Outputs waiting for a batch, in output order, tagged with it.
    held: VecDeque<(u64, Send)>,
    /// When the batch in flight was handed to storage.
    sync_started: Option<tokio::time::Instant>,
    hook: Option<EventHook>,
    /// Refused peer messages are logged a few at a time.
    refusals: super::throttle::Throttle,
    /// Signs borrow grants; `None` in plaintext.
    signer: Option<BorrowSigner>,
    journal: Journal,
    /// This server, for the journal's records.
    me: ServerId,
    /// The requests waiting for an answer, while the journal is on.
    pending: Pending,
    /// The license in force and the file that follows it.
    license: super::license::LicenseKeeper,
    metrics: Option<crate::metrics::Metrics>,
    /// While active and keeping metrics: the last index of each batch of entries
    /// appended, and when, until it commits.
    appended: VecDeque<(LogIndex, tokio::time::Instant)>,
}

/// The most batches of appended entries timed until their commit: a leader that cannot
/// commit stops timing new ones rather than grow.
const APPENDED_TIMED_MAX: usize = 4096;

impl<C: Clock> Core<C> {
    pub(super) fn new(
        server: Server,
        clock: C,
        peers: BTreeMap<ServerId, mpsc::Sender<PeerMessage>>,
        persist: mpsc::Sender<Batch>,
        hook: Option<EventHook>,
    ) -> Self {
        let links = peers
            .keys()
            .map(|&id| {
                let down = PeerStatus {
                    id,
                    connected: false,
                    refused: None,
                };
                (id, down)
            })
            .collect();
        Core {
            server,
            clock,
            peers,
            links,
            conns: BTreeMap::new(),
            routes: BTreeMap::new(),
            persist,
            unsynced: Vec::new(),
            batches_handed: 0,
            batches_synced: 0,
            newest_persist_batch: 0,
            unsynced_last_index: None,
            in_flight_last_index: None,
            held: VecDeque::new(),
            sync_started: None,
            hook,
            refusals: super::throttle::Throttle::new(),
            signer: None,
            journal: Journal::off(),
            me: ServerId::PRIMARY,
            pending: Pending::default(),
            license: super::license::LicenseKeeper::new(None, String::new(), 0),
            metrics: None,
            appended: VecDeque::new(),
        }
    }

    pub(super) fn with_metrics(mut self, metrics: Option<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Keeps the license in force with `license` (status, log lines, the file).
    pub(super) fn with_license(mut self, license: super::license::LicenseKeeper) -> Self {
        self.license = license;
        self
    }

    /// Journals what the server `me` sees into `journal`.
    pub(super) fn with_journal(mut self, me: ServerId, journal: Journal) -> Self {
        self.me = me;
        self.journal = journal;
        self
    }

    /// Signs the replies that grant a borrow with `signer`.
    pub(super) fn with_signer(mut self, signer: Option<BorrowSigner>) -> Self {
        self.signer = signer;
        self
    }

    pub(super) async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut synced: mpsc::Receiver<Result<(), StorageError>>,
        shutdown: impl Future<Output = ()> + std::marker::Send,
    ) -> Result<(), NodeError> {
        info!(
            term = %self.server.term(),
            last_index = self.server.last_index().0,
            seats = self.server.seats().len(),
            "server started"
        );
        // Outputs of the restart (a term's timers, say) before any input.
        self.drain();
        self.flush()?;
        tokio::pin!(shutdown);
        // Asked to stop while active: until when it waits for the other server to take
        // the role before it stops anyway, and the term it handed over in.
        let mut leaving: Option<(tokio::time::Instant, hal_core::protocol::Term)> = None;
        loop {
            let sleep = self
                .server
                .poll_timeout()
                .map(|deadline| self.clock.until(deadline));
            // A batch that takes this long means a hung disk: stop, and let the other
            // two servers serve, rather than hold answers (and memory) forever. (This
            // watches the active server's syncs, which run on another thread; a follower's
            // hung sync holds its own thread, and the other two serve without it.)
            let sync_deadline = self.sync_started.map(|t| t + SYNC_TIME_MAX);
            tokio::select! {
                biased;
                () = &mut shutdown, if leaving.is_none() => {
                    match self.hand_over() {
                        Some(until) => leaving = Some((until, self.server.term())),
                        None => break,
                    }
                }
                () = sleep_until(leaving.map(|(until, _)| until)) => {
                    warn!(
                        "the handover did not complete in {} ms; stopping anyway (the usual failover follows)",
                        self.handover_max().as_millis()
                    );
                    break;
                }
                done = synced.recv() => match done {
                    Some(Ok(())) => self.synced(),
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(NodeError::StorageGone),
                },
                () = sleep_until(sync_deadline) => {
                    return Err(NodeError::SyncTimeout { limit: SYNC_TIME_MAX });
                }
                first = inbound.recv(), if !self.backlogged() => {
                    let Some(first) = first else { break };
                    self.input(first);
                    for _ in 1..INPUTS_PER_TURN_MAX {
                        match inbound.try_recv() {
                            Ok(next) => self.input(next),
                            Err(_) => break,
                        }
                    }
                    // Drained once per turn, not per input: the server hands a turn's
                    // new entries over as one write and one message per peer.
                    self.drain();
                }
                () = sleep_for(sleep) => {}
            }
            // Timers run after every turn that reached their deadline, so a steady stream
            // of inputs cannot starve them (expiry, check-quorum, heartbeats).
            let now = self.clock.now();
            if self
                .server
                .poll_timeout()
                .is_some_and(|deadline| deadline <= now.mono)
            {
                self.server.handle_timeout(now);
                self.drain();
            }
            self.flush()?;
            if let Some((_, term)) = leaving
                && !self.server.is_leader()
            {
                // A later term is the other server's election; the same term, this
                // server giving up.
                if self.server.term() > term {
                    let active = self.server.leader().map(|l| l.to_string());
                    info!(term = %self.server.term(), ?active, "handed the active role over; stopping");
                } else {
                    warn!("the handover did not complete; stopping (the usual failover follows)");
                }
                break;
            }
        }
        info!("server stopping");
        Ok(())
    }

    /// How long a stopping active server waits for its handover at most: the server
    /// steps down once an election timeout has passed without it; this is the backstop.
    fn handover_max(&self) -> Duration {
        self.server.config().timing.election_timeout * 2
    }

    /// Asked to stop: as the active server of a triad, hands the role over first (see
    /// [`Server::hand_over`]) and says until when to wait for it; `None`: stop now.
    fn hand_over(&mut self) -> Option<tokio::time::Instant> {
        // The other server that may lead, which must be linked now: one that stopped a
        // moment ago may still count as heard lately.
        let target = if self.server.id() == ServerId::PRIMARY {
            ServerId::SECONDARY
        } else {
            ServerId::PRIMARY
        };
        let linked = self.links.get(&target).is_some_and(|l| l.connected);
        if !self.server.is_leader() || !linked || !self.server.hand_over(self.clock.now()) {
            return None;
        }
        self.drain();
        Some(tokio::time::Instant::now() + self.handover_max())
    }

    /// Whether so much waits for storage that taking more inputs would only grow memory.
    fn backlogged(&self) -> bool {
        self.held.len() + self.unsynced.len() >= BACKLOG_MAX
    }

    /// Feeds one input (its outputs are drained at the end of the turn).
    fn input(&mut self, input: Inbound) {
        match input {
            Inbound::Peer(message) => self.server.handle_peer(self.clock.now(), message),
            Inbound::Request { conn, request } => {
                if !self.route(conn, request.client) {
                    return;
                }
                let now = self.clock.now();
                if self.journal.is_on() {
                    self.pending
                        .asked(request.client, request.seq, &request.op, now.mono);
                }
                self.server.handle_client(now, request);
            }
            Inbound::ClientOpened { conn, replies } => {
                let conn_state = Conn {
                    replies,
                    client: None,
                };
                self.conns.insert(conn, conn_state);
            }
            Inbound::ClientClosed { conn } => self.close(conn),
            Inbound::Status(answer) => {
                let links: Vec<PeerStatus> = self.links.values().cloned().collect();
                let license = self.license.status();
                let report = status::report(&self.server, self.clock.now(), links, license);
                // The asker may have gone: nothing to do then.
                let _ = answer.send(report);
            }
            Inbound::Link(link, why) => {
                let was_up = self.links.get(&link.id).is_some_and(|l| l.connected);
                if self.journal.is_on() && was_up != link.connected {
                    let record = Record::Link(LinkRecord {
                        t_ms: 0,
                        server: self.me.get(),
                        peer: link.id.get(),
                        up: link.connected,
                        reason: link.refused.clone().or(why),
                    });
                    self.journal.record(self.clock.now(), record);
                }
                self.links.insert(link.id, link);
            }
        }
    }

    /// Remembers which connection speaks for `client`; refuses a second client id on one
    /// connection (a connection is one client's).
    fn route(&mut self, conn: ConnId, client: ClientId) -> bool {
        let Some(state) = self.conns.get_mut(&conn) else {
            return false;
        };
        match state.client {
            None => state.client = Some(client),
            Some(known) if known == client => {}
            Some(known) => {
                warn!(%known, other = %client, "client connection used for a second client id; closing it");
                self.close(conn);
                return false;
            }
        }
        self.routes.insert(client, conn);
        true
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(Conn {
            client: Some(client),
            ..
        }) = self.conns.remove(&conn)
            && self.routes.get(&client) == Some(&conn)
        {
            self.routes.remove(&client);
        }
    }

    /// Drains every output of the last input.
    fn drain(&mut self) {
        while let Some(output) = self.server.poll_output() {
            let early = self.server.config().reports_durable && output.may_precede_persists();
            match output {
                Output::Persist(write) => {
                    if let Some(last) = write.last_log_index() {
                        self.unsynced_last_index = Some(last);
                        if self.metrics.is_some()
                            && self.server.is_leader()
                            && self.appended.len() < APPENDED_TIMED_MAX
                        {
                            self.appended.push_back((last, tokio::time::Instant::now()));
                        }
                    }
                    self.unsynced.push(write);
                    self.newest_persist_batch = self.batches_handed + 1;
                }
                // A leader's append goes at once: its disk and the followers' work in
                // parallel (the server counts its own copy only once synced). So does a
                // reply: what it tells is committed, durable on a majority.
                Output::Peer(message) => self.release(Send::Peer(message), early),
                Output::Reply(reply) => self.release(Send::Reply(reply), early),
                Output::Event(event) => self.log_event(event),
            }
        }
        self.time_commits();
    }

    /// Observes the commit latency of the appended batches the commit index has passed
    /// (none once this server no longer leads: another leader may overwrite them).
    fn time_commits(&mut self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        if !self.server.is_leader() {
            self.appended.clear();
            return;
        }
        let commit = self.server.commit_index();
        while let Some(&(last, at)) = self.appended.front()
            && last <= commit
        {
            metrics.committed(at.elapsed());
            self.appended.pop_front();
        }
    }

    /// Sends now if it may go `early` or every persist before it is synced, else holds it.
    fn release(&mut self, send: Send, early: bool) {
        if early || self.newest_persist_batch <= self.batches_synced {
            self.dispatch(send);
        } else {
            self.held.push_back((self.newest_persist_batch, send));
        }
    }

    /// Hands the accumulated writes to storage, if it is not busy with a batch.
    fn flush(&mut self) -> Result<(), NodeError> {
        if self.unsynced.is_empty() || self.batches_handed > self.batches_synced {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.unsynced);
        self.in_flight_last_index = self.unsynced_last_index.take();
        // The active server keeps serving while its disk works (see the module
        // documentation of `node`); anyone else syncs on this thread.
        let here = if self.server.is_leader() {
            Here::No
        } else {
            Here::Yes
        };
        // Capacity 1 and at most one batch in flight: the channel is never full here, so a
        // failure means the storage task is gone.
        self.persist
            .try_send((batch, here))
            .map_err(|_| NodeError::StorageGone)?;
        self.batches_handed += 1;
        self.sync_started = Some(tokio::time::Instant::now());
        Ok(())
    }

    /// A batch is durable: release what waited for it.
    fn synced(&mut self) {
        self.batches_synced += 1;
        if let (Some(metrics), Some(started)) = (&self.metrics, self.sync_started) {
            metrics.synced(started.elapsed());
        }
        self.sync_started = None;
        while self
            .held
            .front()
            .is_some_and(|(batch, _)| *batch <= self.batches_synced)
        {
            if let Some((_, send)) = self.held.pop_front() {
                self.dispatch(send);
            }
        }
        if let Some(index) = self.in_flight_last_index.take() {
            self.server.handle_durable(self.clock.now(), index);
            self.drain();
        }
    }

    fn dispatch(&mut self, send: Send) {
        match send {
            Send::Peer(message) => {
                let Some(queue) = self.peers.get(&message.to) else {
                    return;
                };
                if queue.try_send(message).is_err() {
                    // The link is down or far behind: like a lossy network; Raft resends.
                    debug!("peer queue full; message dropped");
                }
            }
            Send::Reply(reply) => self.reply(reply),
        }
    }

    fn reply(&mut self, reply: ServerReply) {
        if let Some(metrics) = &self.metrics {
            let (result, denial) = result_name(&reply.result);
            metrics.replied(result, denial);
        }
        if self.journal.is_on() {
            let now = self.clock.now();
            self.pending.answered(self.me, &reply, &self.journal, now);
        }
        self.send_reply(reply);
    }

    fn send_reply(&mut self, reply: ServerReply) {
        let mut proof = None;
        if let ReplyResult::Granted {
            handle,
            borrow_end: Some(end),
            granted_by,
            ..
        } = &reply.result
        {
            info!(%handle, client = %reply.client, end_ms = end.0, "borrow granted");
            proof = self.sign_borrow(*handle, reply.client, end.0, *granted_by);
        }
        let Some(&conn) = self.routes.get(&reply.client) else {
            // The client's connection closed; it will retry and get the same answer.
            return;
        };
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let message = match proof {
            Some(proof) => Message::BorrowReply {
                reply,
                proof: Box::new(proof),
            },
            None => Message::Reply(reply),
        };
        if state.replies.try_send(message).is_err() {
            warn!(
                conn,
                "client is not reading its replies; closing its connection"
            );
            self.close(conn);
        }
    }

    /// This server's signature over the borrow of `handle` by `client` until `end_ms`,
    /// from the seat as the replicated state holds it; `None` in plaintext, or when the
    /// seat is gone already (a retry answered after its return: the record goes
    /// unsigned, and says so when checked).
    fn sign_borrow(
        &self,
        handle: Handle,
        client: ClientId,
        end_ms: u64,
        granted_by: ServerId,
    ) -> Option<BorrowProof> {
        let signer = self.signer.as_ref()?;
        let seats = self.server.seats();
        let Some(seat) = seats.seat(handle).filter(|seat| seat.client == client) else {
            warn!(%handle, %client, "a borrow's seat is gone before its reply: sent unsigned");
            return None;
        };
        let (user, host) = seats.holder(client).unwrap_or(("?", "?"));
        let now_ms = self.clock.now().wall.0;
        let feature = seats.feature_of(seat);
        let grant = Grant {
            handle: handle.0,
            feature,
            client: client.0,
            user,
            host,
            end_ms,
            granted_by: granted_by.get(),
        };
        match signer.sign(&grant, now_ms) {
            Ok(proof) => Some(proof),
            Err(why) => {
                warn!(%handle, "cannot sign a borrow: {why}; sent unsigned");
                None
            }
        }
    }

    fn log_event(&mut self, event: ServerEvent) {
        if let Some(hook) = &self.hook {
            (hook.0)(&event);
        }
        if self.journal.is_on()
            && let Some(item) = journaling::event_item(self.me, &event)
        {
            self.journal.record(self.clock.now(), item);
        }
        match event {
            ServerEvent::RoleChanged {
                role: Role::Active,
                term,
            } => info!(%term, "became active"),
            ServerEvent::RoleChanged {
                role: Role::Standby,
                term,
            } => {
                info!(%term, leader = ?self.server.leader().map(|l| l.to_string()), "became standby")
            }
            ServerEvent::LostMajority { term } => {
                warn!(%term, "lost majority: no licenses are served until a majority is back")
            }
            ServerEvent::FailbackStarted { to, term } => {
                info!(%term, %to, "failback: handing the active role back to {to}")
            }
            ServerEvent::HandingOver { to, term } => {
                info!(%term, %to, "stopping: handing the active role to {to} first")
            }
            ServerEvent::SeatExpiring { handle } => {
                info!(%handle, "seat expired: its lease or borrow ran out")
            }
            ServerEvent::PeerMessageRefused { from, why } => {
                if let Some(suppressed) = self.refusals.admit() {
                    error!(peer = %from, suppressed, "refused a peer message: {why}")
                }
            }
            ServerEvent::Checkpoint {
                index,
                digest,
                installed,
            } => {
                let digest = format!("{digest:016x}");
                if installed {
                    info!(index = index.0, %digest, "installed a peer's snapshot");
                } else {
                    debug!(index = index.0, %digest, "took a snapshot");
                }
            }
            ServerEvent::LimitReached { what } => {
                error!("cannot campaign or grant: the {what} is at its highest value")
            }
            ServerEvent::SeatChanged {
                index,
                change:
                    hal_core::server::SeatChange::Removed {
                        client,
                        handle,
                        feature,
                        borrowed,
                        by,
                    },
            } => {
                let holder = self.server.seats().holder(client).map_or_else(
                    || format!("client {client}"),
                    |(user, host)| format!("{user}@{host}"),
                );
                let what = if borrowed { "borrowed seat" } else { "seat" };
                info!(%handle, %feature, index = index.0, %by, "seat removed by an administrator: the {what} of {holder}");
            }
            ServerEvent::LicenseChanged {
                index,
                text,
                by,
                serving,
                restart,
            } => self.license.changed((index, text, by), serving, restart),
            ServerEvent::OptionsChanged { index, text, by } => {
                let rules = text
                    .lines()
                    .filter(|l| !l.split('#').next().unwrap_or("").trim().is_empty())
                    .count();
                info!(index = index.0, %by, lines = rules, "the options in force changed")
            }
            other => debug!(?other, "server event"),
        }
    }
}

/// A reply's result for the metrics, and a denial's reason.
fn result_name(result: &ReplyResult) -> (&'static str, Option<&'static str>) {
    let name = match result {
        ReplyResult::Granted { .. } => "granted",
        ReplyResult::Released { .. } => "released",
        ReplyResult::Queued { .. } => "queued",
        ReplyResult::LeftQueue => "left_queue",
        ReplyResult::HeartbeatAck { .. } => "heartbeat",
        ReplyResult::Denied(denial) => return ("denied", Some(denial.name())),
        ReplyResult::Removed { .. } => "removed",
        ReplyResult::LicensePushed { .. } => "license_pushed",
        ReplyResult::LicenseRefused { .. } => "license_refused",
        ReplyResult::OptionsPushed { .. } => "options_pushed",
        ReplyResult::OptionsRefused { .. } => "options_refused",
    };
    (name, None)
}
