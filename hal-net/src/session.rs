//! The client side of the network: a [`Session`] drives hal-core's [`Client`] over one
//! connection per license-path entry, opened when first needed and re-opened after it
//! fails. The `hal-net checkout`, `borrow` and `return` verbs run it over TCP; the
//! simulator runs it over turmoil.

use futures_util::{SinkExt, StreamExt};
use hal_core::client::{Client, ClientConfig, ClientEvent, Endpoint, PATH_MAX};
use hal_core::protocol::{ClientId, ClientRequest, Denial, Handle, RequestSeq, ServerReply};
use hal_core::time::WallTime;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;

use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;
use tracing::debug;

use crate::clock::{Clock, sleep_for, sleep_until};
use crate::tls::borrow_proof::BorrowProof;
use crate::transport::{Transport, slot_in_path};
use crate::wire::{FRAME_BYTES_MAX_PEER, Hello, Message, WireCodec};
use hal_core::ServerId;

/// How a request was answered, as its application is told ([`Session::answer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// A checkout or borrow granted: `server` answered, `granted_by` decided.
    Granted {
        handle: Handle,
        server: ServerId,
        granted_by: ServerId,
        borrow_end: Option<WallTime>,
        attempts: u32,
    },
    /// A checkin or return done.
    Released {
        handle: Handle,
        attempts: u32,
    },
    Denied {
        reason: Denial,
        attempts: u32,
    },
    /// Given up: no server answered in time, and the request may have taken effect.
    Unknown {
        attempts: u32,
        last_denial: Option<Denial>,
    },
}

impl Answered {
    /// The answer `event` gives request `seq`, if it answers it: granted, done, denied,
    /// or given up with its outcome unknown.
    pub fn of(event: &ClientEvent, seq: RequestSeq) -> Option<Answered> {
        Some(match event.clone() {
            ClientEvent::Granted {
                seq: s,
                handle,
                server,
                granted_by,
                borrow_end,
                attempts,
            } if s == seq => Answered::Granted {
                handle,
                server,
                granted_by,
                borrow_end,
                attempts,
            },
            ClientEvent::Released {
                seq: s,
                handle,
                attempts,
            } if s == seq => Answered::Released { handle, attempts },
            ClientEvent::Denied {
                seq: s,
                reason,
                attempts,
            } if s == seq => Answered::Denied { reason, attempts },
            ClientEvent::OutcomeUnknown {
                seq: s,
                attempts,
                last_denial,
            } if s == seq => Answered::Unknown {
                attempts,
                last_denial,
            },
            // Another request's answer, a settled request, a lost seat, a failover.
            _ => return None,
        })
    }

    /// How many times the request was sent before this answer (0: refused before it
    /// was sent).
    pub fn attempts(&self) -> u32 {
        match self {
            Answered::Granted { attempts, .. }
            | Answered::Released { attempts, .. }
            | Answered::Denied { attempts, .. }
            | Answered::Unknown { attempts, .. } => *attempts,
        }
    }
}

/// The most borrow signatures a session keeps for [`Session::take_borrow_proof`] (a
/// borrowing session makes one request).
const PROOFS_KEPT_MAX: usize = 4;

/// The most requests queued for one connection (the client has one in flight, plus
/// heartbeats).
const REQUESTS_QUEUED_MAX: usize = 64;

/// What a connection task reports.
#[derive(Debug)]
enum ConnEvent {
    /// A reply, and the server's signature if it grants a borrow.
    Reply(ServerReply, Option<Box<BorrowProof>>),
    /// The connection could not be opened (`opened` false: nothing sent over it reached
    /// the server) or broke; says why.
    Failed { why: String, opened: bool },
}

/// A connection to one license-path entry.
#[derive(Debug)]
struct Conn {
    requests: mpsc::Sender<ClientRequest>,
    generation: u64,
}

/// What a session sends and receives, for an observer (the simulator's history).
#[derive(Debug)]
pub enum Tapped<'a> {
    /// A request handed to the connection of `endpoint`.
    Sent {
        endpoint: Endpoint,
        request: &'a ClientRequest,
    },
    /// A reply that came from `endpoint`.
    Received {
        endpoint: Endpoint,
        reply: &'a ServerReply,
    },
}

/// An observer of a session's traffic.
pub type Tap = Box<dyn FnMut(Tapped<'_>) + Send>;

/// A license client talking to its servers.
pub struct Session<T: Transport, C: Clock> {
    client: Client,
    path: Vec<String>,
    /// The server each path entry must prove to be (by its place: see [`slot_in_path`]).
    slots: Vec<ServerId>,
    transport: T,
    clock: C,
    conns: Vec<Option<Conn>>,
    generation: u64,
    events_tx: mpsc::Sender<(Endpoint, u64, ConnEvent)>,
    events_rx: mpsc::Receiver<(Endpoint, u64, ConnEvent)>,
    replies_heard: u64,
    last_failure: Option<String>,
    reply_timeout: Duration,
    tap: Option<Tap>,
    /// The signatures of the latest borrow grants, by request, oldest first.
    proofs: VecDeque<(RequestSeq, Box<BorrowProof>)>,
}

impl<T: Transport, C: Clock> std::fmt::Debug for Session<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T: Transport, C: Clock> Session<T, C> {
    /// A session for the servers at `path` (`host:port` each, 1 to 3, in license-path
    /// order), as client `id` for `user` on `host`.
    pub fn new(
        transport: T,
        clock: C,
        path: Vec<String>,
        id: ClientId,
        user: &str,
        host: &str,
        config: ClientConfig,
    ) -> Self {
        let path_len = u8::try_from(path.len().min(PATH_MAX)).unwrap_or(1);
        let mut client = Client::new(id, user, host, path_len, config, clock.now());
        let slots: Vec<ServerId> = (0..path.len())
            .map(|index| slot_in_path(path.len(), index))
            .collect();
        if path.len() > 1 {
            client.set_path_slots(&slots);
        }
        let (events_tx, events_rx) = mpsc::channel(REQUESTS_QUEUED_MAX * PATH_MAX);
        Session {
            client,
            slots,
            conns: (0..path.len()).map(|_| None).collect(),
            path,
            transport,
            clock,
            generation: 0,
            events_tx,
            events_rx,
            replies_heard: 0,
            last_failure: None,
            reply_timeout: config.request_timeout,
            tap: None,
            proofs: VecDeque::new(),
        }
    }

    /// Says which server is at each path entry when the path is not in slot order (the
    /// simulator's clients list the servers in any order; its network vouches for hosts
    /// as certificates would). The connection to entry `i` then expects `slots[i]`, and
    /// the client follows hints to it. Entries past the path are ignored.
    pub fn with_slots(mut self, slots: &[ServerId]) -> Self {
        for (mine, &given) in self.slots.iter_mut().zip(slots) {
            *mine = given;
        }
        self.client.set_path_slots(&self.slots);
        self
    }

    /// Shows every request sent and reply received to `tap`, as they happen.
    pub fn tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// The state machine, for its getters.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Numbers requests from `seq` on: continues a client id an earlier process used.
    pub fn resume_from(&mut self, seq: RequestSeq) {
        self.client.resume_from(seq);
    }

    /// The server's signature over the borrow that request `seq` was granted, if the
    /// grant came with one (taken: asked twice, the second answer is `None`). Only the
    /// latest few are kept.
    pub fn take_borrow_proof(&mut self, seq: RequestSeq) -> Option<BorrowProof> {
        let at = self.proofs.iter().rposition(|(s, _)| *s == seq)?;
        self.proofs.remove(at).map(|(_, proof)| *proof)
    }

    /// Replies received from any server so far (0: no server was ever reached).
    pub fn replies_heard(&self) -> u64 {
        self.replies_heard
    }

    /// Why the last connection failed, if one did.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    pub fn checkout(&mut self, feature: &str) -> RequestSeq {
        let seq = self.client.checkout(self.clock.now(), feature);
        self.transmit();
        seq
    }

    /// A checkout that waits up to `wait` in the feature's queue when every seat is in use
    /// ([`Client::checkout_wait`]).
    pub fn checkout_wait(&mut self, feature: &str, wait: Duration) -> RequestSeq {
        let seq = self.client.checkout_wait(self.clock.now(), feature, wait);
        self.transmit();
        seq
    }

    pub fn borrow(&mut self, feature: &str, hours: u32) -> RequestSeq {
        let seq = self.client.borrow(self.clock.now(), feature, hours);
        self.transmit();
        seq
    }

    pub fn checkin(&mut self, handle: Handle) -> RequestSeq {
        let seq = self.client.checkin(self.clock.now(), handle);
        self.transmit();
        seq
    }

    pub fn return_borrow(&mut self, handle: Handle) -> RequestSeq {
        let seq = self.client.return_borrow(self.clock.now(), handle);
        self.transmit();
        seq
    }

    /// Drives the session until request `seq` is answered, and returns the answer.
    /// Every other event on the way (a seat lost, a request settled, a failover) goes to
    /// `other`. This is the one loop that waits for an answer: the client library, the
    /// command-line verbs, the load tool and the simulator's clients all wait with it.
    pub async fn answer(
        &mut self,
        seq: RequestSeq,
        mut other: impl FnMut(ClientEvent),
    ) -> Answered {
        loop {
            let event = self.next_event().await;
            match Answered::of(&event, seq) {
                Some(answered) => return answered,
                None => other(event),
            }
        }
    }

    /// Drives the connections and timers until the client has something to say.
    pub async fn next_event(&mut self) -> ClientEvent {
        loop {
            if let Some(event) = self.client.poll_event() {
                return event;
            }
            let sleep = self
                .client
                .poll_timeout()
                .map(|deadline| self.clock.until(deadline));
            tokio::select! {
                event = self.events_rx.recv() => {
                    // The session holds a sender, so the channel never closes.
                    if let Some((endpoint, generation, event)) = event {
                        self.connection_event(endpoint, generation, event);
                    }
                }
                () = sleep_for(sleep) => self.client.handle_timeout(self.clock.now()),
            }
            self.transmit();
        }
    }

    fn connection_event(&mut self, endpoint: Endpoint, generation: u64, event: ConnEvent) {
        let slot = usize::from(endpoint.0);
        match event {
            ConnEvent::Reply(reply, proof) => {
                self.replies_heard += 1;
                if let Some(proof) = proof {
                    if self.proofs.len() >= PROOFS_KEPT_MAX {
                        self.proofs.pop_front();
                    }
                    self.proofs.push_back((reply.seq, proof));
                }
                if let Some(tap) = &mut self.tap {
                    tap(Tapped::Received {
                        endpoint,
                        reply: &reply,
                    });
                }
                self.client.handle_reply(self.clock.now(), endpoint, reply);
            }
            ConnEvent::Failed { why, opened } => {
                let current = self.conns.get(slot).and_then(Option::as_ref);
                if current.is_none_or(|c| c.generation != generation) {
                    return; // an older connection's news
                }
                debug!(server = %self.path[slot], "connection failed: {why}");
                self.last_failure = Some(format!("{}: {why}", self.path[slot]));
                self.conns[slot] = None;
                if opened {
                    self.client.handle_unreachable(self.clock.now(), endpoint);
                } else {
                    self.client.handle_not_sent(self.clock.now(), endpoint);
                }
            }
        }
    }

    /// Sends what the client wants sent, opening connections as needed.
    fn transmit(&mut self) {
        while let Some(transmit) = self.client.poll_transmit() {
            let slot = usize::from(transmit.to.0);
            if slot >= self.conns.len() {
                continue;
            }
            let conn = self.conns[slot].get_or_insert_with(|| {
                self.generation += 1;
                let (requests, queue) = mpsc::channel(REQUESTS_QUEUED_MAX);
                let task = connection(
                    self.transport.clone(),
                    (self.path[slot].clone(), self.slots[slot]),
                    transmit.to,
                    self.generation,
                    self.reply_timeout,
                    queue,
                    self.events_tx.clone(),
                );
                tokio::spawn(task);
                Conn {
                    requests,
                    generation: self.generation,
                }
            });
            if let Some(tap) = &mut self.tap {
                tap(Tapped::Sent {
                    endpoint: transmit.to,
                    request: &transmit.request,
                });
            }
            // A full queue means the connection is stuck; the client's own timeout
            // will move on to the next server.
            let _ = conn.requests.try_send(transmit.request);
        }
    }
}

/// How long a server may take to answer the hello.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One connection: opens it, sends requests, reports replies, until it fails or the
/// session drops it. A connection on which a request has waited `reply_timeout` with
/// nothing heard is stalled (a silent TCP stall, a server that hangs): it fails, and the
/// next request to that server opens a fresh one.
async fn connection<T: Transport>(
    transport: T,
    (addr, server): (String, ServerId),
    endpoint: Endpoint,
    generation: u64,
    reply_timeout: Duration,
    mut requests: mpsc::Receiver<ClientRequest>,
    events: mpsc::Sender<(Endpoint, u64, ConnEvent)>,
) {
    let (why, opened) = match open(&transport, &addr, server).await {
        Err(why) => (why, false),
        Ok(link) => match serve(
            link,
            endpoint,
            generation,
            reply_timeout,
            &mut requests,
            &events,
        )
        .await
        {
            Some(why) => (why, true),
            None => return, // the session is done
        },
    };
    let _ = events
        .send((endpoint, generation, ConnEvent::Failed { why, opened }))
        .await;
}

/// Carries requests and replies until the connection fails (`Some(why)`) or the session
/// drops it (`None`).
async fn serve<S>(
    mut link: Framed<S, WireCodec>,
    endpoint: Endpoint,
    generation: u64,
    reply_timeout: Duration,
    requests: &mut mpsc::Receiver<ClientRequest>,
    events: &mpsc::Sender<(Endpoint, u64, ConnEvent)>,
) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // Requests sent and not answered yet, and since when the oldest has waited.
    let mut unanswered = 0u64;
    let mut waiting_since: Option<Instant> = None;
    loop {
        let stall = waiting_since.map(|since| since + reply_timeout);
        tokio::select! {
            request = requests.recv() => {
                let request = request?;
                match timeout(reply_timeout, link.send(Message::Request(request))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Some(e.to_string()),
                    Err(_) => return Some("stalled: a request could not be sent".to_string()),
                }
                unanswered += 1;
                waiting_since.get_or_insert_with(Instant::now);
            }
            frame = link.next() => match frame {
                Some(Ok(Message::Reply(reply))) => {
                    unanswered = unanswered.saturating_sub(1);
                    waiting_since = (unanswered > 0).then(Instant::now);
                    events.send((endpoint, generation, ConnEvent::Reply(reply, None))).await.ok()?;
                }
                Some(Ok(Message::BorrowReply { reply, proof })) => {
                    unanswered = unanswered.saturating_sub(1);
                    waiting_since = (unanswered > 0).then(Instant::now);
                    let event = ConnEvent::Reply(reply, Some(proof));
                    events.send((endpoint, generation, event)).await.ok()?;
                }
                Some(Ok(Message::Refused { reason })) => return Some(format!("refused: {reason}")),
                Some(Ok(_)) => return Some("unexpected message from the server".to_string()),
                Some(Err(e)) => return Some(e.to_string()),
                None => return Some("closed by the server".to_string()),
            },
            () = sleep_until(stall) => {
                return Some(format!("stalled: no reply for {} ms", reply_timeout.as_millis()));
            }
        }
    }
}

/// Connects and shakes hands as a client.
async fn open<T: Transport>(
    transport: &T,
    addr: &str,
    server: ServerId,
) -> Result<Framed<T::Stream, WireCodec>, String> {
    let handshake = async {
        let stream = transport
            .connect(addr, server)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
        link.send(Message::Hello(Hello::Client))
            .await
            .map_err(|e| e.to_string())?;
        match link.next().await {
            Some(Ok(Message::Welcome { .. })) => Ok(link),
            Some(Ok(Message::Refused { reason })) => Err(format!("refused: {reason}")),
            Some(Ok(_)) => Err("unexpected answer to hello".to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("closed during the handshake".to_string()),
        }
    };
    timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .unwrap_or_else(|_| Err("handshake timed out".to_string()))
}
