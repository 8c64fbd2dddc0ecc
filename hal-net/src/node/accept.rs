//! The acceptor: takes connections, shakes hands, and runs each in its own task — a
//! peer's incoming link, a client connection, or an operator's status query.
//!
//! Limits keep a slow or hostile peer from blocking the node: at most
//! [`HANDSHAKES_MAX`] connections may be shaking hands, each for at most
//! `handshake_timeout`; at most `client_connections_max` client and status connections
//! are open; a client that stays silent for `client_idle_max` or does not read its replies
//! is disconnected; a frame over the limit, of another version or that does not decode
//! closes its connection. None of it reaches the core loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::codec::Framed;
use tracing::{Instrument, debug, error, info_span, warn};

use super::links::{incoming, kind};
use super::progress::Progress;
use super::{CLIENT_QUEUE_MAX, ConnId, HANDSHAKES_MAX, HANDSHAKES_PER_SOURCE_MAX, Inbound, Shared};
use crate::transport::{Listener, Transport};
use crate::wire::{
    FRAME_BYTES_MAX_CLIENT, FRAME_BYTES_MAX_UNIDENTIFIED, Hello, Message, WireCodec,
};

type Conn<T> = Framed<Progress<<T as Transport>::Stream>, WireCodec>;

/// Accepts connections until the node stops.
pub(super) async fn run<T: Transport>(shared: Shared<T>, mut listener: T::Listener) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    let clients = Arc::new(Semaphore::new(shared.config.client_connections_max));
    let next_conn = Arc::new(AtomicU64::new(1));
    let sources = Sources::default();
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, from) = match accepted {
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
        let Some(source) = sources.enter(&from) else {
            debug!(%from, "too many connections shaking hands from one address; closed");
            continue;
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let span = info_span!("conn", conn, %from);
        let task = connection(
            shared.clone(),
            stream,
            clients.clone(),
            conn,
            (permit, source),
        );
        tokio::spawn(task.instrument(span));
    }
}

/// Shakes hands with a new connection and runs it as what it says it is.
async fn connection<T: Transport>(
    shared: Shared<T>,
    stream: T::Stream,
    clients: Arc<Semaphore>,
    conn: ConnId,
    handshake: (OwnedSemaphorePermit, SourceSlot),
) {
    let stream = Progress::new(stream);
    let mut link: Conn<T> = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_UNIDENTIFIED));
    let limit = shared.config.links.handshake_timeout;
    let hello = tokio::select! {
        () = shared.stop.cancelled() => return,
        hello = timeout(limit, link.next()) => hello,
    };
    let hello = match hello {
        Err(_) => return debug!("no hello within {} ms; closed", limit.as_millis()),
        Ok(None) => return debug!("closed before saying hello"),
        Ok(Some(Err(error))) => return warn!("bad first frame, connection closed: {error}"),
        Ok(Some(Ok(Message::Hello(hello)))) => hello,
        Ok(Some(Ok(other))) => {
            return warn!(
                "first frame was a {}, not a hello; connection closed",
                kind(&other)
            );
        }
    };
    match hello {
        Hello::Peer { from, to, identity } => {
            let refusal = check_peer(&shared, from, to, &identity);
            if let Some(reason) = refusal {
                error!(peer = %from, "refused a peer link: {reason}");
                return refuse(&mut link, reason).await;
            }
            if welcome(&mut link, shared.me).await {
                drop(handshake);
                link.codec_mut()
                    .set_frame_bytes_max(crate::wire::FRAME_BYTES_MAX_PEER);
                let replaced = shared.incoming.take_over(from, conn);
                incoming(shared.clone(), from, link, replaced).await;
                shared.incoming.ended(from, conn);
            }
        }
        Hello::Client | Hello::Admin => {
            let Ok(permit) = clients.try_acquire_owned() else {
                let max = shared.config.client_connections_max;
                warn!("client refused: {max} client connections are open already");
                let reason = format!("server busy: {max} client connections are open already");
                return refuse(&mut link, reason).await;
            };
            if !welcome(&mut link, shared.me).await {
                return;
            }
            drop(handshake);
            link.codec_mut().set_frame_bytes_max(FRAME_BYTES_MAX_CLIENT);
            if matches!(hello, Hello::Client) {
                client(&shared, link, conn).await;
            } else {
                admin(&shared, link).await;
            }
            drop(permit);
        }
    }
}

/// Why a peer's hello is refused, if it is.
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
async fn client<T: Transport>(shared: &Shared<T>, mut link: Conn<T>, conn: ConnId) {
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
                Ok(Some(Err(error))) => {
                    warn!("client sent a bad frame, connection closed: {error}");
                    break error.to_string();
                }
                Ok(Some(Ok(Message::Request(request)))) => {
                    if shared.inbound.send(Inbound::Request { conn, request }).await.is_err() {
                        break "server stopping".to_string();
                    }
                }
                Ok(Some(Ok(other))) => {
                    warn!("client sent a {}, connection closed", kind(&other));
                    break format!("unexpected {}", kind(&other));
                }
            },
        }
    };
    debug!("client connection closed: {why}");
    let _ = shared.inbound.send(Inbound::ClientClosed { conn }).await;
}

/// Answers status queries on an operator connection.
async fn admin<T: Transport>(shared: &Shared<T>, mut link: Conn<T>) {
    let idle_max = shared.config.links.handshake_timeout;
    loop {
        let frame = tokio::select! {
            () = shared.stop.cancelled() => return,
            frame = timeout(idle_max, link.next()) => frame,
        };
        match frame {
            Ok(Some(Ok(Message::StatusRequest))) => {
                let (answer, report) = oneshot::channel();
                if shared.inbound.send(Inbound::Status(answer)).await.is_err() {
                    return;
                }
                let Ok(report) = report.await else { return };
                let sent = timeout(idle_max, link.send(Message::Status(Box::new(report)))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
            Ok(Some(Ok(other))) => {
                return warn!("status connection sent a {}; closed", kind(&other));
            }
            Ok(Some(Err(error))) => return warn!("status connection closed: {error}"),
            Err(_) | Ok(None) => return,
        }
    }
}

/// Connections shaking hands, by source IP address: one address may not take every
/// handshake slot (and so keep the peers from reconnecting).
#[derive(Debug, Clone, Default)]
struct Sources(Arc<Mutex<BTreeMap<String, usize>>>);

/// One handshake slot of a source address, given back when dropped.
#[derive(Debug)]
struct SourceSlot {
    sources: Sources,
    ip: String,
}

impl Sources {
    fn enter(&self, from: &str) -> Option<SourceSlot> {
        // `ip:port`, `[v6]:port`, or a simulator's host name: the part before the port.
        let ip = from.rsplit_once(':').map_or(from, |(ip, _)| ip).to_string();
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip.clone()).or_insert(0);
        if *count >= HANDSHAKES_PER_SOURCE_MAX {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            sources: self.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.sources.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
