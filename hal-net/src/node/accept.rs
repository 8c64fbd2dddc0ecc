//! The acceptor: takes connections, shakes hands, and runs each in its own task — a
//! peer's incoming link, a client connection, or an operator's status query.
//!
//! Who may be what: a connection that says it is a peer must have proven that server's
//! slot to the transport (its certificate, [`Proven`]); one that has not is refused with a
//! reason that tells it nothing of this server's configuration, and only a proven peer
//! hears what differs between two servers' triad lists or licenses.
//!
//! Limits keep a slow or hostile party from blocking the node: at most
//! [`HANDSHAKES_MAX`] connections may be shaking hands, each for at most
//! `handshake_timeout`, and at most [`HANDSHAKES_PER_SOURCE_MAX`] from one address (a
//! newer one from the same address closes its oldest, so silent handshakes cannot lock an
//! address out); at most `client_connections_max` client connections are open, and at most
//! `client_connections_per_address_max` from one address; status queries have their own
//! small pool ([`STATUS_CONNECTIONS_MAX`]); a client that stays silent for
//! `client_idle_max` or does not read its replies is disconnected; a frame over the limit,
//! of another version or that does not decode closes its connection. None of it reaches
//! the core loop, and the warnings it causes are throttled.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info_span, warn};

use super::links::{self, kind};
use super::progress::Progress;
use super::throttle::Throttle;
use super::{CLIENT_QUEUE_MAX, ConnId, HANDSHAKES_MAX, HANDSHAKES_PER_SOURCE_MAX, Inbound, Shared};
use crate::transport::{Listener, Proven, Transport};
use crate::wire::{
    FRAME_BYTES_MAX_CLIENT, FRAME_BYTES_MAX_UNIDENTIFIED, Hello, Message, WireCodec, WireError,
};

type Conn<T> = Framed<Progress<<T as Transport>::Stream>, WireCodec>;

/// The most status connections open at once: a pool of their own, so that neither
/// clients nor status queries can crowd out the other.
pub(super) const STATUS_CONNECTIONS_MAX: usize = 16;

/// What the acceptor's connection tasks share.
#[derive(Debug, Clone)]
struct Pools {
    clients: Arc<Semaphore>,
    statuses: Arc<Semaphore>,
    /// Established client connections by source address.
    client_sources: Sources,
    /// Warnings a party on the network can cause, throttled per kind, so that one noisy
    /// kind does not hide another.
    warnings: Arc<Mutex<[Throttle; Warning::KINDS]>>,
}

/// The kinds of warning a party on the network can cause.
#[derive(Debug, Clone, Copy)]
enum Warning {
    /// A TLS handshake that failed.
    Handshake,
    /// A frame that is junk, too large, of another version, or not what was expected.
    Frame,
    /// A peer link refused because its other end proved no slot, or another.
    Refusal,
    /// A client refused because of a connection limit.
    Busy,
}

impl Warning {
    const KINDS: usize = 4;
}

impl Pools {
    /// Logs a warning a connection caused, unless too many came lately.
    fn warn(&self, kind: Warning, what: std::fmt::Arguments<'_>) {
        let admitted =
            self.warnings.lock().unwrap_or_else(|e| e.into_inner())[kind as usize].admit();
        if let Some(suppressed) = admitted {
            warn!(suppressed, "{what}");
        }
    }
}

/// Accepts connections until the node stops.
pub(super) async fn run<T: Transport>(shared: Shared<T>, mut listener: T::Listener) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    let pools = Pools {
        clients: Arc::new(Semaphore::new(shared.config.client_connections_max)),
        statuses: Arc::new(Semaphore::new(STATUS_CONNECTIONS_MAX)),
        client_sources: Sources::default(),
        warnings: Arc::new(Mutex::new(std::array::from_fn(|_| Throttle::new()))),
    };
    let next_conn = Arc::new(AtomicU64::new(1));
    let sources = Sources::default();
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (accepted, from) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait a little instead of spinning.
                warn!("accept failed: {error}");
                tokio::time::sleep(shared.config.links.backoff_min).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            debug!(%from, "too many connections shaking hands; closed");
            continue;
        };
        // At its address's limit, the newest handshake closes the oldest.
        let source = sources.enter_evicting(&from, HANDSHAKES_PER_SOURCE_MAX);
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let span = info_span!("conn", conn, %from);
        let task = connection(
            shared.clone(),
            accepted,
            from,
            pools.clone(),
            conn,
            (permit, source),
        );
        tokio::spawn(task.instrument(span));
    }
}

/// A connection being handled: who it came from, and the handshake slots it holds until
/// it is welcomed.
struct Incoming<T: Transport> {
    shared: Shared<T>,
    pools: Pools,
    from: String,
    conn: ConnId,
    handshake: (OwnedSemaphorePermit, SourceSlot),
}

/// Secures a new connection, reads its hello and runs it as what it says (and proved) it
/// is.
async fn connection<T: Transport>(
    shared: Shared<T>,
    accepted: T::Accepted,
    from: String,
    pools: Pools,
    conn: ConnId,
    handshake: (OwnedSemaphorePermit, SourceSlot),
) {
    let limit = shared.config.links.handshake_timeout;
    let evicted = handshake.1.evicted.clone();
    let incoming = Incoming {
        shared,
        pools,
        from,
        conn,
        handshake,
    };
    let opened = tokio::select! {
        () = incoming.shared.stop.cancelled() => return,
        () = evicted.cancelled() => {
            return debug!("a newer handshake from the same address replaced this one");
        }
        opened = timeout(limit, open(&incoming, accepted)) => opened,
    };
    let (link, proven, hello) = match opened {
        Err(_) => return debug!("no hello within {} ms; closed", limit.as_millis()),
        Ok(None) => return,
        Ok(Some(opened)) => opened,
    };
    match hello {
        Hello::Peer { from, to, identity } => {
            peer_link(incoming, link, proven, (from, to), &identity).await;
        }
        Hello::Client => client_link(incoming, link).await,
        Hello::Admin => status_link(incoming, link, proven).await,
    }
}

/// The TLS handshake and the hello; `None` (logged) if either fails.
async fn open<T: Transport>(
    incoming: &Incoming<T>,
    accepted: T::Accepted,
) -> Option<(Conn<T>, Proven, Hello)> {
    let Incoming {
        shared,
        pools,
        from,
        ..
    } = incoming;
    let (stream, proven) = match shared.transport.secure(accepted).await {
        Ok(secured) => secured,
        Err(error) => {
            let hint = match error.kind() {
                std::io::ErrorKind::InvalidData => {
                    " (a client or server in plaintext? both sides must run TLS, or neither)"
                }
                _ => "",
            };
            let what = format_args!("TLS handshake with {from} failed: {error}{hint}");
            pools.warn(Warning::Handshake, what);
            return None;
        }
    };
    let codec = WireCodec::budgeted(FRAME_BYTES_MAX_UNIDENTIFIED, shared.frames.clone());
    let mut link: Conn<T> = Framed::new(Progress::new(stream), codec);
    match link.next().await {
        None => debug!("closed before saying hello"),
        Some(Err(error)) => pools.warn(
            Warning::Frame,
            format_args!("bad first frame from {from}, closed: {error}"),
        ),
        Some(Ok(Message::Hello(hello))) => return Some((link, proven, hello)),
        Some(Ok(other)) => pools.warn(
            Warning::Frame,
            format_args!(
                "first frame from {from} was a {}, not a hello; closed",
                kind(&other)
            ),
        ),
    }
    None
}

/// A peer's incoming link: refused unless the other end proved the slot it claims and
/// agrees on the triad and the license; then run until it ends.
async fn peer_link<T: Transport>(
    incoming: Incoming<T>,
    mut link: Conn<T>,
    proven: Proven,
    (id, to): (ServerId, ServerId),
    identity: &crate::wire::Identity,
) {
    let Incoming {
        shared,
        pools,
        from,
        conn,
        handshake,
    } = incoming;
    if !proven.may_be_server(id) {
        // Nothing of this server's configuration goes to a party that has not proven it
        // is one of the triad.
        pools.warn(
            Warning::Refusal,
            format_args!(
                "refused a peer link from {from}: it claims to be server {id} but proved {}",
                proven_name(proven)
            ),
        );
        let reason = format!(
            "not authenticated as server {id} of this triad (a peer needs the certificate the triad's CA issued for its slot)"
        );
        return refuse(&mut link, reason).await;
    }
    if let Some(reason) = check_peer(&shared, id, to, identity) {
        error!(peer = %id, "refused a peer link: {reason}");
        return refuse(&mut link, reason).await;
    }
    if !welcome(&mut link, shared.me).await {
        return;
    }
    drop(handshake);
    let codec = link.codec_mut();
    codec.set_frame_bytes_max(crate::wire::FRAME_BYTES_MAX_PEER);
    codec.unbudgeted();
    let replaced = shared.incoming.take_over(id, conn);
    links::incoming(shared.clone(), id, link, replaced).await;
    shared.incoming.ended(id, conn);
}

/// A license client's connection, within the limits per address and in all.
async fn client_link<T: Transport>(incoming: Incoming<T>, mut link: Conn<T>) {
    let Incoming {
        shared,
        pools,
        from,
        conn,
        handshake,
    } = incoming;
    let per_address = shared.config.client_connections_per_address_max;
    let Some(slot) = pools.client_sources.enter(&from, per_address) else {
        pools.warn(
            Warning::Busy,
            format_args!(
                "client {from} refused: {per_address} connections from its address are open already"
            ),
        );
        let reason = format!(
            "server busy: {per_address} client connections from this address are open already"
        );
        return refuse(&mut link, reason).await;
    };
    let Ok(permit) = pools.clients.clone().try_acquire_owned() else {
        let max = shared.config.client_connections_max;
        pools.warn(
            Warning::Busy,
            format_args!("client refused: {max} client connections are open already"),
        );
        let reason = format!("server busy: {max} client connections are open already");
        return refuse(&mut link, reason).await;
    };
    if !welcome(&mut link, shared.me).await {
        return;
    }
    drop(handshake);
    link.codec_mut().set_frame_bytes_max(FRAME_BYTES_MAX_CLIENT);
    client(&shared, &pools, link, conn).await;
    drop((permit, slot));
}

/// An operator's connection (status, and administrative requests), from its own small
/// pool.
async fn status_link<T: Transport>(incoming: Incoming<T>, mut link: Conn<T>, proven: Proven) {
    let Incoming {
        shared,
        pools,
        handshake,
        conn,
        from,
    } = incoming;
    let Ok(permit) = pools.statuses.clone().try_acquire_owned() else {
        let reason =
            format!("server busy: {STATUS_CONNECTIONS_MAX} status connections are open already");
        return refuse(&mut link, reason).await;
    };
    if !welcome(&mut link, shared.me).await {
        return;
    }
    drop(handshake);
    // A license push is a whole license file; others ask in small frames.
    let frames = if may_push_license(proven) {
        LICENSE_FRAME_BYTES_MAX
    } else {
        FRAME_BYTES_MAX_CLIENT
    };
    link.codec_mut().set_frame_bytes_max(frames);
    let operator = Operator {
        proven,
        conn,
        from: &from,
    };
    admin(&shared, &pools, link, operator).await;
    drop(permit);
}

/// Whether `error` is only the other end closing its TLS connection without saying so
/// (`close_notify`), as most clients do: a close, not a fault.
/// Whether a read error is the client going away (closed mid-frame, or a reset: a
/// process killed, a client that gave up), not a bad frame.
fn closed_without_notice(error: &WireError) -> bool {
    use std::io::ErrorKind;
    matches!(error, WireError::Io(e) if matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    ))
}

/// What a proof is, for a log line.
fn proven_name(proven: Proven) -> String {
    match proven {
        Proven::Nothing => "nothing (no client certificate)".to_string(),
        Proven::Server(id) => format!("the certificate of server {id}"),
        Proven::Admin => "the admin certificate".to_string(),
        Proven::Plaintext => "nothing (plaintext)".to_string(),
    }
}

/// Why a (proven) peer's hello is refused, if it is.
fn check_peer<T: Transport>(
    shared: &Shared<T>,
    from: ServerId,
    to: ServerId,
    identity: &crate::wire::Identity,
) -> Option<String> {
    // The triad list first: a list in another order explains a wrong `to` as well.
    if let Some(difference) = shared.config.identity.difference(shared.me, identity, from) {
        return Some(difference);
    }
    if let Some(difference) = shared
        .config
        .identity
        .license_difference(shared.me, identity, from)
    {
        warn!("{difference}");
    }
    if to != shared.me {
        return Some(format!(
            "server {from} dialled this address as server {to}, but this is server {}: the triad list or the listen address is wrong",
            shared.me
        ));
    }
    if !shared.config.peers.contains_key(&from) {
        return Some(format!(
            "server {from} is not a peer of server {} (this server's triad has no such member)",
            shared.me
        ));
    }
    None
}

async fn welcome<S>(link: &mut Framed<S, WireCodec>, me: ServerId) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    link.send(Message::Welcome { server: me }).await.is_ok()
}

async fn refuse<S>(link: &mut Framed<S, WireCodec>, reason: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // Best effort: the other side may be gone or not reading.
    let _ = timeout(
        std::time::Duration::from_secs(1),
        link.send(Message::Refused { reason }),
    )
    .await;
}

/// Runs a client connection: requests to the core loop, replies back, until the client
/// closes, goes silent, sends something wrong or stops reading.
async fn client<T: Transport>(shared: &Shared<T>, pools: &Pools, mut link: Conn<T>, conn: ConnId) {
    let (replies_tx, mut replies) = mpsc::channel(CLIENT_QUEUE_MAX);
    let opened = Inbound::ClientOpened {
        conn,
        replies: replies_tx,
    };
    if shared.inbound.send(opened).await.is_err() {
        return;
    }
    let idle_max = shared.config.links.client_idle_max;
    let why = loop {
        tokio::select! {
            () = shared.stop.cancelled() => break "server stopping".to_string(),
            reply = replies.recv() => {
                // None: the core loop closed this connection (it stopped reading replies).
                let Some(reply) = reply else { break "closed by the server".to_string() };
                let sent = timeout(idle_max, link.send(reply)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break "could not send a reply".to_string();
                }
            }
            frame = timeout(idle_max, link.next()) => match frame {
                Err(_) => break format!("idle for {} s", idle_max.as_secs()),
                Ok(None) => break "closed by the client".to_string(),
                Ok(Some(Err(error))) if closed_without_notice(&error) => {
                    break "closed by the client".to_string();
                }
                Ok(Some(Err(error))) => {
                    pools.warn(Warning::Frame, format_args!("client sent a bad frame, connection closed: {error}"));
                    break error.to_string();
                }
                Ok(Some(Ok(Message::Request(request)))) if request.op.is_administrative() => {
                    pools.warn(Warning::Refusal, format_args!("client sent an administrative request on a license client's connection, connection closed"));
                    break "an administrative request on a client connection".to_string();
                }
                Ok(Some(Ok(Message::Request(request)))) => {
                    if shared.inbound.send(Inbound::Request { conn, request }).await.is_err() {
                        break "server stopping".to_string();
                    }
                }
                Ok(Some(Ok(other))) => {
                    pools.warn(Warning::Frame, format_args!("client sent a {}, connection closed", kind(&other)));
                    break format!("unexpected {}", kind(&other));
                }
            },
        }
    };
    debug!("client connection closed: {why}");
    let _ = shared.inbound.send(Inbound::ClientClosed { conn }).await;
}

/// The largest frame from an operator who may push a license: the largest license file
/// and room for the request around it.
const LICENSE_FRAME_BYTES_MAX: usize = hal_core::license::limits::FILE_BYTES_MAX + 16 * 1024;

/// Whether an operator's connection that proved `proven` may ask `op`: the admin
/// certificate may ask anything (and so may anyone in plaintext, where nothing is
/// proven); a triad member's certificate may push a license (a server's SIGHUP pushes its
/// file through the active server), nothing else.
fn may_administer(proven: Proven, op: &hal_core::protocol::Op) -> bool {
    match op {
        hal_core::protocol::Op::PushLicense { .. } => may_push_license(proven),
        _ => matches!(proven, Proven::Admin | Proven::Plaintext),
    }
}

/// `request` with who asked as the connection proved it: a triad member's push (its
/// SIGHUP) is recorded as that server's, whatever name it gave.
fn as_proven(
    mut request: hal_core::protocol::ClientRequest,
    proven: Proven,
) -> hal_core::protocol::ClientRequest {
    if let (Proven::Server(id), hal_core::protocol::Op::PushLicense { by, .. }) =
        (proven, &mut request.op)
    {
        *by = format!("SIGHUP to server {id}").into();
    }
    request
}

/// Whether an operator's connection that proved `proven` may push a license.
fn may_push_license(proven: Proven) -> bool {
    matches!(
        proven,
        Proven::Admin | Proven::Plaintext | Proven::Server(_)
    )
}

/// Who is at the other end of an operator's connection.
struct Operator<'a> {
    /// What it proved: administrative requests need the admin certificate (or a triad
    /// in plaintext, where nothing is proven).
    proven: Proven,
    /// The connection's number, under which its requests reach the core loop.
    conn: ConnId,
    from: &'a str,
}

/// Answers an operator's connection: status queries from anyone, and administrative
/// requests (`hal-net remove`) only from one that proved the admin certificate. A request
/// is answered when its log entry applies; meanwhile the connection may wait as long as
/// a client's.
async fn admin<T: Transport>(
    shared: &Shared<T>,
    pools: &Pools,
    mut link: Conn<T>,
    operator: Operator<'_>,
) {
    let quick = shared.config.links.handshake_timeout;
    let mut replies: Option<mpsc::Receiver<Message>> = None;
    loop {
        // A request on its way to an answer lets the operator wait without a word.
        let idle_max = if replies.is_some() {
            shared.config.links.client_idle_max
        } else {
            quick
        };
        let frame = tokio::select! {
            () = shared.stop.cancelled() => break,
            reply = async { match replies.as_mut() {
                Some(replies) => replies.recv().await,
                None => std::future::pending().await,
            } } => {
                let Some(reply) = reply else { break };
                if !matches!(timeout(quick, link.send(reply)).await, Ok(Ok(()))) {
                    break;
                }
                continue;
            }
            frame = timeout(idle_max, link.next()) => frame,
        };
        match frame {
            Ok(Some(Ok(Message::StatusRequest))) => {
                let (answer, report) = oneshot::channel();
                if shared.inbound.send(Inbound::Status(answer)).await.is_err() {
                    break;
                }
                let Ok(mut report) = report.await else { break };
                report.certificate_expires_ms = shared.config.certificate_expires_ms;
                let sent = timeout(quick, link.send(Message::Status(Box::new(report)))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            Ok(Some(Ok(Message::Request(request)))) if request.op.is_administrative() => {
                if !may_administer(operator.proven, &request.op) {
                    pools.warn(
                        Warning::Refusal,
                        format_args!(
                            "refused an administrative request from {}: it proved {}, not the admin certificate",
                            operator.from,
                            proven_name(operator.proven)
                        ),
                    );
                    let reason = "an administrative request needs the admin certificate \
                                  (admin.pem and admin.key from the triad's TLS directory)";
                    refuse(&mut link, reason.to_string()).await;
                    break;
                }
                if replies.is_none() {
                    let (replies_tx, replies_rx) = mpsc::channel(CLIENT_QUEUE_MAX);
                    let opened = Inbound::ClientOpened {
                        conn: operator.conn,
                        replies: replies_tx,
                    };
                    if shared.inbound.send(opened).await.is_err() {
                        break;
                    }
                    replies = Some(replies_rx);
                }
                let request = Inbound::Request {
                    conn: operator.conn,
                    request: as_proven(request, operator.proven),
                };
                if shared.inbound.send(request).await.is_err() {
                    break;
                }
            }
            Ok(Some(Ok(other))) => {
                pools.warn(
                    Warning::Frame,
                    format_args!("operator connection sent a {}; closed", kind(&other)),
                );
                break;
            }
            Ok(Some(Err(error))) if closed_without_notice(&error) => break,
            Ok(Some(Err(error))) => {
                pools.warn(
                    Warning::Frame,
                    format_args!("operator connection closed: {error}"),
                );
                break;
            }
            Err(_) | Ok(None) => break,
        }
    }
    if replies.is_some() {
        let closed = Inbound::ClientClosed {
            conn: operator.conn,
        };
        let _ = shared.inbound.send(closed).await;
    }
}

/// Connections by source address (handshakes, or established clients): one address may
/// not take every slot.
#[derive(Debug, Clone, Default)]
struct Sources(Arc<Mutex<BTreeMap<String, Slots>>>);

/// One address's slots, oldest first: each slot's number and the token that evicts it.
type Slots = VecDeque<(ConnId, CancellationToken)>;

/// One slot of a source address, given back when dropped; `evicted` is cancelled when a
/// newer connection from the same address takes it over.
#[derive(Debug)]
struct SourceSlot {
    sources: Sources,
    ip: String,
    id: ConnId,
    evicted: CancellationToken,
}

/// Numbers slots, so a slot that was evicted does not give back its successor's place.
static NEXT_SLOT: AtomicU64 = AtomicU64::new(1);

impl Sources {
    /// A slot for `from` if its address holds fewer than `max`.
    fn enter(&self, from: &str, max: usize) -> Option<SourceSlot> {
        let ip = address_of(from);
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slots = all.entry(ip.clone()).or_default();
        (slots.len() < max).then(|| self.push(slots, ip))
    }

    /// A slot for `from`; at `max`, the address's oldest slots are evicted for it.
    fn enter_evicting(&self, from: &str, max: usize) -> SourceSlot {
        let ip = address_of(from);
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slots = all.entry(ip.clone()).or_default();
        while slots.len() >= max.max(1) {
            if let Some((_, oldest)) = slots.pop_front() {
                oldest.cancel();
            }
        }
        self.push(slots, ip)
    }

    fn push(&self, slots: &mut Slots, ip: String) -> SourceSlot {
        let id = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        slots.push_back((id, evicted.clone()));
        SourceSlot {
            sources: self.clone(),
            ip,
            id,
            evicted,
        }
    }
}

/// `ip:port`, `[v6]:port`, or a simulator's host name: the part before the port.
fn address_of(from: &str) -> String {
    from.rsplit_once(':').map_or(from, |(ip, _)| ip).to_string()
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut all = self.sources.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slots) = all.get_mut(&self.ip) {
            slots.retain(|(id, _)| *id != self.id);
            if slots.is_empty() {
                all.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20: a client that resets its connection was logged as sending a bad frame.
    #[test]
    fn a_reset_is_the_client_going_away_not_a_bad_frame() {
        use std::io::{Error, ErrorKind};
        for kind in [
            ErrorKind::UnexpectedEof,
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
        ] {
            assert!(
                closed_without_notice(&WireError::Io(Error::from(kind))),
                "{kind:?}"
            );
        }
        assert!(!closed_without_notice(&WireError::Io(Error::from(
            ErrorKind::InvalidData
        ))));
    }

    #[test]
    fn a_new_handshake_from_a_full_address_evicts_the_oldest() {
        let sources = Sources::default();
        let first = sources.enter_evicting("10.0.0.9:1000", 2);
        let second = sources.enter_evicting("10.0.0.9:1001", 2);
        assert!(!first.evicted.is_cancelled());
        let third = sources.enter_evicting("10.0.0.9:1002", 2);
        assert!(first.evicted.is_cancelled(), "the oldest gives way");
        assert!(!second.evicted.is_cancelled() && !third.evicted.is_cancelled());
        // Another address is not affected, and a dropped slot frees its place.
        let other = sources.enter_evicting("10.0.0.7:1000", 2);
        assert!(!other.evicted.is_cancelled());
        drop(first);
        assert_eq!(sources.0.lock().unwrap()["10.0.0.9"].len(), 2);
    }

    #[test]
    fn established_clients_are_limited_per_address() {
        let sources = Sources::default();
        let a = sources.enter("10.0.0.9:1", 2).unwrap();
        let _b = sources.enter("10.0.0.9:2", 2).unwrap();
        assert!(sources.enter("10.0.0.9:3", 2).is_none());
        assert!(sources.enter("10.0.0.8:3", 2).is_some());
        drop(a);
        assert!(sources.enter("10.0.0.9:3", 2).is_some());
    }
}
