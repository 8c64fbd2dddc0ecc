//! Peer links. Each server dials each peer and sends that peer's messages over its own
//! connection (so there is no race over who dials whom); the peer answers over its own
//! dialled connection. Each link pings, and a link that has been silent for
//! `stall_after` (no pong, no error: turmoil's TCP and real networks both do this) is
//! closed and dialled again, with capped exponential backoff.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::protocol::PeerMessage;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::progress::{Moved, Progress};
use super::{Inbound, Shared};
use crate::transport::Transport;
use crate::wire::{FRAME_BYTES_MAX_PEER, Hello, Message, PeerStatus, WireCodec};

type Link<T> = Framed<Progress<<T as Transport>::Stream>, WireCodec>;

/// How much longer than the longest backoff to wait before dialling a peer that refused
/// the link (its config has to change first).
const REFUSED_BACKOFF_FACTOR: u32 = 10;

/// The most dial attempts to one peer in flight at once; a new one replaces the oldest
/// (see [`dial_overlapping`]).
const DIALS_IN_FLIGHT_MAX: usize = 3;

/// The most queued messages sent in one write.
const MESSAGES_PER_WRITE_MAX: usize = 64;

/// Why a link attempt or a link ended.
#[derive(Debug)]
enum LinkEnd {
    /// The peer refused the handshake; says why.
    Refused(String),
    /// Anything else: unreachable, closed, stalled, an IO or frame error.
    Broken(String),
    /// The node is stopping.
    Stopping,
}

/// Runs the outgoing link to `peer` at `addr` until the node stops.
pub(super) async fn outgoing<T: Transport>(
    shared: Shared<T>,
    peer: ServerId,
    addr: String,
    mut queue: mpsc::Receiver<PeerMessage>,
) {
    let timing = shared.config.links;
    let mut backoff = timing.backoff_min;
    // Whether the link was up before the current trouble, and whether the trouble was
    // logged: a peer that stays down is logged once, not at every attempt.
    let mut was_connected = false;
    let mut trouble_logged = false;
    loop {
        let end = match dial_overlapping(&shared, peer, &addr).await {
            Ok(link) => {
                info!(%peer, %addr, "peer connected");
                report(&shared, peer, true, None, None).await;
                (was_connected, trouble_logged) = (true, false);
                backoff = timing.backoff_min;
                pump(&shared, peer, link, &mut queue).await
            }
            Err(end) => end,
        };
        match end {
            LinkEnd::Stopping => return,
            LinkEnd::Refused(reason) => {
                // Logged at every attempt (a refusal never fixes itself, and must not be
                // missed); the attempts are spaced out.
                error!(%peer, %addr, "peer refused the link: {reason}");
                report(&shared, peer, false, Some(reason), None).await;
                backoff = timing.backoff_max * REFUSED_BACKOFF_FACTOR;
            }
            LinkEnd::Broken(why) if !trouble_logged => {
                if was_connected {
                    warn!(%peer, %addr, "peer disconnected: {why}");
                } else {
                    warn!(%peer, %addr, "peer unreachable: {why}");
                }
                (was_connected, trouble_logged) = (false, true);
                report(&shared, peer, false, None, Some(why)).await;
            }
            LinkEnd::Broken(why) => debug!(%peer, %addr, "peer still unreachable: {why}"),
        }
        // What was queued for a dead link is stale; Raft sends what is still needed.
        while queue.try_recv().is_ok() {}
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(timing.backoff_max);
    }
}

async fn report<T: Transport>(
    shared: &Shared<T>,
    id: ServerId,
    connected: bool,
    refused: Option<String>,
    why: Option<String>,
) {
    let status = PeerStatus {
        id,
        connected,
        refused,
    };
    // The core loop may be gone when the node stops.
    let _ = shared.inbound.send(Inbound::Link(status, why)).await;
}

/// Dials `peer` until one attempt connects and shakes hands, or every attempt failed.
///
/// An attempt that has not finished after `stall_after` (the silence after which an
/// established link counts as dead) is not given up: another starts beside it, and the
/// first to finish wins. At most [`DIALS_IN_FLIGHT_MAX`] are in flight; a new one then
/// replaces the oldest, so a fresh attempt always starts every `stall_after`. A
/// handshake whose packets were lost in a cut that has since healed (in the simulator a
/// lost segment is never sent again, on a real network TCP resends it after a second or
/// more) would otherwise hold the link down for the whole `handshake_timeout` after the
/// heal, and with it the peer's view of this server: #2 restarted its failback hold only
/// when that timeout ran out, 5 s late. The older attempts stay in the race a while, so
/// a slow but working handshake (a lossy WAN) can still complete.
async fn dial_overlapping<T: Transport>(
    shared: &Shared<T>,
    peer: ServerId,
    addr: &str,
) -> Result<Link<T>, LinkEnd> {
    use futures_util::future::{AbortHandle, Aborted, abortable};
    use std::collections::VecDeque;

    let restart_after = shared.config.links.stall_after;
    let mut attempts = futures_util::stream::FuturesUnordered::new();
    // The attempts in flight, oldest first: a number, and how to stop it.
    let mut in_flight: VecDeque<(u64, AbortHandle)> = VecDeque::new();
    let mut started = 0u64;
    let mut next_start = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_start) => {
                if started > 0 {
                    debug!(%peer, %addr, "a dial is slow; starting another beside it");
                }
                if in_flight.len() >= DIALS_IN_FLIGHT_MAX
                    && let Some((_, oldest)) = in_flight.pop_front()
                {
                    oldest.abort();
                }
                let (attempt, handle) = abortable(dial(shared, peer, addr));
                let number = started;
                started += 1;
                in_flight.push_back((number, handle));
                attempts.push(async move { (number, attempt.await) });
                next_start = Instant::now() + restart_after;
            }
            Some((number, finished)) = attempts.next() => {
                in_flight.retain(|(n, _)| *n != number);
                match finished {
                    Ok(Ok(link)) => return Ok(link),
                    Ok(Err(LinkEnd::Broken(why))) if in_flight.is_empty() => {
                        return Err(LinkEnd::Broken(why));
                    }
                    // Another attempt is still under way; it may yet connect.
                    Ok(Err(LinkEnd::Broken(why))) => debug!(%peer, %addr, "a dial failed: {why}"),
                    Ok(Err(end)) => return Err(end),
                    // Replaced by a newer attempt, which is in flight.
                    Err(Aborted) => {}
                }
            }
        }
    }
}

/// Connects and shakes hands.
async fn dial<T: Transport>(
    shared: &Shared<T>,
    peer: ServerId,
    addr: &str,
) -> Result<Link<T>, LinkEnd> {
    let handshake = async {
        let stream = shared
            .transport
            .connect(addr, peer)
            .await
            .map_err(|e| match e.kind() {
                // The other end proved to be someone else: a configuration to fix, not
                // a network to wait out.
                std::io::ErrorKind::PermissionDenied => LinkEnd::Refused(e.to_string()),
                _ => LinkEnd::Broken(format!("cannot connect: {e}")),
            })?;
        let stream = Progress::new(stream);
        let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
        let hello = Hello::Peer {
            from: shared.me,
            to: peer,
            identity: shared.config.identity.clone(),
        };
        link.send(Message::Hello(hello))
            .await
            .map_err(|e| LinkEnd::Broken(format!("handshake: {e}")))?;
        match link.next().await {
            Some(Ok(Message::Welcome { server })) if server == peer => Ok(link),
            Some(Ok(Message::Welcome { server })) => Err(LinkEnd::Refused(format!(
                "the address of server {peer} in the triad list ({addr}) is served by server {server}"
            ))),
            Some(Ok(Message::Refused { reason })) => Err(LinkEnd::Refused(reason)),
            Some(Ok(other)) => Err(LinkEnd::Broken(format!(
                "handshake: unexpected answer {}",
                kind(&other)
            ))),
            Some(Err(e)) => Err(LinkEnd::Broken(format!("handshake: {e}"))),
            None => Err(LinkEnd::Broken("closed during the handshake".into())),
        }
    };
    tokio::select! {
        () = shared.stop.cancelled() => Err(LinkEnd::Stopping),
        result = timeout(shared.config.links.handshake_timeout, handshake) => {
            result.unwrap_or_else(|_| Err(LinkEnd::Broken("handshake timed out".into())))
        }
    }
}

/// Sends queued messages and pings until the link breaks or stalls.
async fn pump<T: Transport>(
    shared: &Shared<T>,
    peer: ServerId,
    mut link: Link<T>,
    queue: &mut mpsc::Receiver<PeerMessage>,
) -> LinkEnd {
    let timing = shared.config.links;
    let mut ping = tokio::time::interval(timing.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let moved = link.get_ref().moved();
    let mut heard = Instant::now();
    let mut nonce = 0u64;
    let mut clock = PeerClockEstimate::default();
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return LinkEnd::Stopping,
            message = queue.recv() => {
                let Some(first) = message else { return LinkEnd::Stopping };
                let started = Instant::now();
                if let Err(end) = send_batch(&mut link, first, queue, &moved, timing.stall_after).await {
                    return end;
                }
                // A write that had to wait for the peer to take the bytes (a snapshot, say)
                // and then completed is news from it, like a pong: the pongs were queued
                // behind it.
                if started.elapsed() >= timing.stall_after / 2 {
                    heard = Instant::now();
                }
            }
            _ = ping.tick() => {
                let silent = heard.elapsed();
                if silent > timing.stall_after {
                    return LinkEnd::Broken(format!("stalled: no answer for {} ms", silent.as_millis()));
                }
                nonce += 1;
                clock.sent(nonce, (shared.now.0)());
                let sent = timeout(timing.stall_after, link.send(Message::Ping { nonce })).await;
                if let Err(end) = sent_ok(sent) {
                    return end;
                }
            }
            frame = link.next() => match frame {
                Some(Ok(Message::Pong { nonce, wall_ms })) => {
                    heard = Instant::now();
                    if let (Some(metrics), Some(rtt)) = (&shared.metrics, clock.round_trip(nonce, (shared.now.0)())) {
                        metrics.peer_rtt(peer, rtt);
                    }
                    if shared.config.journal.is_on() {
                        let now = (shared.now.0)();
                        if let Some(record) = clock.pong(shared.me, peer, nonce, wall_ms, now) {
                            shared.config.journal.record(now, record);
                        }
                    }
                }
                Some(Ok(Message::Refused { reason })) => return LinkEnd::Refused(reason),
                Some(Ok(other)) => debug!("ignoring {} on an outgoing peer link", kind(&other)),
                Some(Err(e)) => return LinkEnd::Broken(e.to_string()),
                None => return LinkEnd::Broken("closed by the peer".into()),
            },
        }
    }
}

/// How often a link journals its estimate of the peer's clock, and how far the estimate
/// may move before it is journaled sooner.
const PEER_CLOCK_EVERY_MS: u64 = 60_000;
const PEER_CLOCK_MOVED_MS: u64 = 50;

/// A link's estimate of its peer's wall clock, from its last ping and the peer's pong:
/// the peer read its clock about half a round trip after the ping left.
#[derive(Debug, Default)]
struct PeerClockEstimate {
    /// The last ping: its nonce and when it left.
    ping: Option<(u64, hal_core::time::Now)>,
    /// The last estimate journaled: when (monotonic ms) and the offset.
    journaled: Option<(u64, i64)>,
}

impl PeerClockEstimate {
    fn sent(&mut self, nonce: u64, now: hal_core::time::Now) {
        self.ping = Some((nonce, now));
    }

    /// The round trip of ping `nonce`, answered `now`, if it is the last one sent.
    fn round_trip(&self, nonce: u64, now: hal_core::time::Now) -> Option<Duration> {
        let (sent_nonce, sent) = self.ping?;
        (sent_nonce == nonce).then(|| Duration::from_millis(now.mono.0.saturating_sub(sent.mono.0)))
    }

    /// The record to journal for the pong to ping `nonce` carrying the peer's
    /// `wall_ms`, received `now`: the first on this link, then when the estimate moved or
    /// a minute passed.
    fn pong(
        &mut self,
        me: ServerId,
        peer: ServerId,
        nonce: u64,
        wall_ms: u64,
        now: hal_core::time::Now,
    ) -> Option<hal_core::record::Record> {
        let (sent_nonce, sent) = self.ping.take()?;
        if sent_nonce != nonce {
            return None;
        }
        let rtt_ms = now.mono.0.saturating_sub(sent.mono.0);
        let midpoint = sent.wall.0.saturating_add(rtt_ms / 2);
        let offset_ms = i64::try_from(i128::from(wall_ms) - i128::from(midpoint)).ok()?;
        let due = match self.journaled {
            None => true,
            Some((at, offset)) => {
                now.mono.0.saturating_sub(at) >= PEER_CLOCK_EVERY_MS
                    || offset.abs_diff(offset_ms) >= PEER_CLOCK_MOVED_MS
            }
        };
        if !due {
            return None;
        }
        self.journaled = Some((now.mono.0, offset_ms));
        Some(hal_core::record::Record::PeerClock(
            hal_core::record::PeerClock {
                t_ms: 0,
                server: me.get(),
                peer: peer.get(),
                offset_ms,
                rtt_ms,
            },
        ))
    }
}

/// Writes `first` and whatever else is queued, then flushes once. The write may take as
/// long as it needs while bytes keep moving; `stall_after` without progress is a stall.
async fn send_batch<S>(
    link: &mut Framed<S, WireCodec>,
    first: PeerMessage,
    queue: &mut mpsc::Receiver<PeerMessage>,
    moved: &Moved,
    stall_after: Duration,
) -> Result<(), LinkEnd>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let write = async {
        link.feed(Message::Peer(first)).await?;
        for _ in 1..MESSAGES_PER_WRITE_MAX {
            let Ok(next) = queue.try_recv() else { break };
            link.feed(Message::Peer(next)).await?;
        }
        link.flush().await
    };
    tokio::pin!(write);
    let started = Instant::now();
    loop {
        tokio::select! {
            written = &mut write => return sent_ok(Ok::<_, ()>(written)),
            () = tokio::time::sleep(stall_after) => {
                let idle = moved.write_idle().min(started.elapsed());
                if idle >= stall_after {
                    return sent_ok(Err(()));
                }
            }
        }
    }
}

/// A write's outcome; `Err(())` is a write that timed out.
fn sent_ok<E>(sent: Result<Result<(), crate::wire::WireError>, E>) -> Result<(), LinkEnd> {
    match sent {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LinkEnd::Broken(e.to_string())),
        Err(_) => Err(LinkEnd::Broken("stalled: a write did not complete".into())),
    }
}

/// Runs an incoming link from `peer` (handshake done): forwards its messages to the core
/// loop and answers its pings, until it closes, goes silent (no bytes at all for
/// `stall_after`), or `replaced` says a newer link from the same peer took over.
pub(super) async fn incoming<S, T>(
    shared: Shared<T>,
    peer: ServerId,
    mut link: Framed<Progress<S>, WireCodec>,
    replaced: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: Transport,
{
    let stall_after = shared.config.links.stall_after;
    let moved = link.get_ref().moved();
    let why = loop {
        let frame = tokio::select! {
            () = shared.stop.cancelled() => return,
            () = replaced.cancelled() => break "replaced by a newer link from the same server".to_string(),
            frame = link.next() => frame,
            () = tokio::time::sleep(stall_after) => {
                if moved.read_idle() >= stall_after {
                    break format!("silent for {} ms", stall_after.as_millis());
                }
                continue; // a large frame is still arriving
            }
        };
        match frame {
            None => break "closed".to_string(),
            Some(Err(e)) => break e.to_string(),
            Some(Ok(Message::Peer(message))) => {
                if message.from != peer || message.to != shared.me {
                    break format!(
                        "message from {} to {} on the link from {peer}",
                        message.from, message.to
                    );
                }
                if shared.inbound.send(Inbound::Peer(message)).await.is_err() {
                    return;
                }
            }
            Some(Ok(Message::Ping { nonce })) => {
                let wall_ms = (shared.now.0)().wall.0;
                let pong = Message::Pong { nonce, wall_ms };
                let sent = timeout(stall_after, link.send(pong)).await;
                if let Err(LinkEnd::Broken(why)) = sent_ok(sent) {
                    break why;
                }
            }
            Some(Ok(other)) => break format!("unexpected {} from a peer", kind(&other)),
        }
    };
    debug!(%peer, "incoming peer link closed: {why}");
}

/// A message's kind, for logs (never its content).
pub(super) fn kind(message: &Message) -> &'static str {
    match message {
        Message::Hello(_) => "hello",
        Message::Welcome { .. } => "welcome",
        Message::Refused { .. } => "refused",
        Message::Peer(_) => "peer message",
        Message::Ping { .. } => "ping",
        Message::Pong { .. } => "pong",
        Message::Request(_) => "request",
        Message::Reply(_) => "reply",
        Message::BorrowReply { .. } => "borrow reply",
        Message::StatusRequest => "status request",
        Message::Status(_) => "status",
    }
}
