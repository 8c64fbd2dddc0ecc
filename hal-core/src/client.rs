//! The license client as a pure state machine: what the `hal-net` client verbs and the
//! simulator's clients run.
//!
//! # Driving it
//!
//! The application asks with [`Client::checkout`], [`Client::borrow`],
//! [`Client::checkin`] and [`Client::return_borrow`]; the shell feeds server replies to
//! [`Client::handle_reply`], reports a server it cannot reach with
//! [`Client::handle_unreachable`], and calls [`Client::handle_timeout`] at the deadline of
//! [`Client::poll_timeout`]. After every input it drains [`Client::poll_transmit`]
//! (requests to send, each to an [`Endpoint`] of the license path) and
//! [`Client::poll_event`] (what the application sees).
//!
//! # Finding the active server
//!
//! The license path lists one or three servers. The client sends to the first of its
//! list; a server that is not active says so, naming the active one if it knows, and the
//! client follows the hint or else moves that server to the end of its list (as LM-X's
//! HAL path caching does). A server that does not answer is moved to the end too.
//!
//! # Leases
//!
//! A checked-out seat lives as long as the newest acknowledged heartbeat's *send time*
//! plus the lease the server gave. The server counts from when it *received* that
//! heartbeat, plus a margin, so the client always gives a seat up before the server can
//! hand it to someone else (DESIGN §3.3).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::ServerId;
use crate::plant::Plant;
use crate::protocol::{
    ClientId, ClientRequest, Denial, HEARTBEAT_HANDLES_MAX, Handle, Op, ReplyResult, RequestSeq,
    ServerReply,
};
use crate::time::{Now, Time, WallTime};
use crate::timing::Timing;

mod waiting;

/// A position in the client's license path (0 is the first entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint(pub u8);

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Endpoint,
    pub request: ClientRequest,
}

/// What the application sees.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A checkout or borrow was granted.
    Granted {
        seq: RequestSeq,
        handle: Handle,
        /// The server that answered.
        server: ServerId,
        /// The server that decided the grant (differs from `server` for a retry answered
        /// after a failover).
        granted_by: ServerId,
        borrow_end: Option<WallTime>,
        /// How many times the request was sent: 1 when the first server asked answered;
        /// each redirect, retry and resend adds one.
        attempts: u32,
    },
    /// A request was refused; `reason` says what to do.
    Denied {
        seq: RequestSeq,
        reason: Denial,
        /// How many times the request was sent (0: refused before it was sent).
        attempts: u32,
    },
    /// No server answered a request for `give_up_after`, and one attempt or more went
    /// unanswered, so it may have taken effect (a grant whose reply was lost) or not.
    /// The client settles it on its own when it next reaches a server: it asks again
    /// with the same number (a server that granted it answers with that grant) and
    /// releases what it finds ([`ClientEvent::Resolved`]). Until then, a seat it may
    /// have produced is at worst released when its lease runs out.
    OutcomeUnknown {
        seq: RequestSeq,
        /// How many times the request was sent.
        attempts: u32,
        /// The last refusal a server gave, if any ("no majority": the servers that
        /// answered could not serve; the others did not answer).
        last_denial: Option<Denial>,
    },
    /// A request reported as [`ClientEvent::OutcomeUnknown`] is settled: `released` is
    /// the seat it had produced (or, for a checkin or return, kept), now released.
    Resolved {
        seq: RequestSeq,
        released: Option<Handle>,
    },
    /// A checkin or return was done.
    Released {
        seq: RequestSeq,
        handle: Handle,
        /// How many times the request was sent.
        attempts: u32,
    },
    /// The seat is gone: its lease ran out, or the active server does not know it.
    Lost { handle: Handle },
    /// A borrowed seat reached its end.
    BorrowEnded { handle: Handle },
    /// An administrator removed the seat (`hal-net remove`): it is no longer held, and a
    /// new checkout may be refused while the seat is someone else's.
    Removed { handle: Handle },
    /// Another server than before answered as the active one.
    FailedOver { from: ServerId, to: ServerId },
    /// A [`Client::checkout_wait`] found every seat in use and waits in the feature's
    /// queue at `position` (1: next), `used` of `count` seats held; reported when it
    /// joins and each time its position changes. It ends as [`ClientEvent::Granted`],
    /// or as [`ClientEvent::Denied`] (`all_in_use`) when the wait is over.
    Queued {
        seq: RequestSeq,
        position: u32,
        used: u32,
        count: u32,
    },
}

/// The client's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    pub timing: Timing,
    /// How long to wait for a reply before trying the next server.
    pub request_timeout: Duration,
    /// How long to keep trying a request across the path before giving up on it.
    pub give_up_after: Duration,
    /// How long to keep trying while every answer is "no majority" (and no attempt went
    /// unanswered): [`Timing::client_no_majority_give_up`].
    pub no_majority_give_up: Duration,
    /// The pause after every server in the path refused or failed, before trying again.
    pub retry_pause: Duration,
    /// Bugs planted on purpose (none unless built with the `plant` feature).
    pub plants: crate::plant::Plants,
}

impl ClientConfig {
    /// Settings derived from the servers' timing: long enough to ride out a failover.
    pub fn new(timing: Timing) -> ClientConfig {
        ClientConfig {
            timing,
            request_timeout: timing.election_timeout,
            give_up_after: timing.client_give_up_after(),
            no_majority_give_up: timing.client_no_majority_give_up(),
            retry_pause: timing.election_retry(),
            plants: crate::plant::Plants::NONE,
        }
    }
}

/// A seat this client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSeat {
    pub feature: String,
    /// For a checkout: until when the seat is known alive.
    pub lease_until: Option<Time>,
    /// For a borrow: when it ends (the granting server's wall clock).
    pub borrow_end: Option<WallTime>,
    /// For a borrow: when it ends by this client's own clock, the borrow's hours from the
    /// request's first send. The seat is held until then, whatever the servers' wall
    /// clocks say: a server grants exactly the hours asked, from its own clock, and keeps
    /// the seat until that end plus the skew bound, so the seat stays the client's at
    /// least the hours from the grant in true time, which is after this. (Judged by the
    /// wall clocks, a client whose server's clock is behind its own, within the skew
    /// bound, would be told the borrow ended as it was granted.)
    pub borrow_until: Option<Time>,
}

/// A logged request on its way.
#[derive(Debug, Clone)]
struct Pending {
    /// The number the application knows the request by.
    seq: RequestSeq,
    /// The number on the wire: `seq`, or a fresh one when a grant lapsed before this
    /// client heard of it and the request is asked anew.
    wire: RequestSeq,
    op: Op,
    first_sent: Time,
    /// The current attempt: where and when it went (None: waiting to be sent).
    attempt: Option<(Endpoint, Time)>,
    /// The first time the current wire number went to each endpoint. A reply from an
    /// endpoint may answer any attempt sent there, so a granted seat's lease counts from
    /// the earliest: never later than the server's own start of the lease.
    first_sent_to: [Option<Time>; PATH_MAX],
    /// Attempts since the last pause.
    attempts_in_pass: usize,
    /// Attempts in all (every send, whatever its wire number).
    attempts: u32,
    /// Whether some attempt got no answer (timed out, or its connection failed), so a
    /// server may have acted on it.
    unanswered: bool,
    /// Set when this is the client settling a request given up earlier, not one of the
    /// application's: its answers go to [`Client::on_resolved`].
    resolving: Option<Unresolved>,
    last_denial: Option<Denial>,
    /// Since when every answer has said "no majority" (none since said an election is
    /// under way or another server is active): such a request is given up sooner
    /// ([`ClientConfig::no_majority_give_up`]).
    no_majority_since: Option<Time>,
    /// Until when each endpoint is passed over for this request: an attempt there got no
    /// answer, so the server may be cut off, and the others' "#N is active" hints about
    /// it are stale until a failover has had time to happen.
    passed_over_until: [Option<Time>; PATH_MAX],
}

/// A request given up with its outcome unknown, to settle.
#[derive(Debug, Clone)]
struct Unresolved {
    /// The application's number for it.
    seq: RequestSeq,
    /// The number it went out with (asked again with the same, a server that acted on it
    /// answers with what it did).
    wire: RequestSeq,
    op: Op,
    /// When it was first given up: past [`Timing::session_idle_max`] the servers have
    /// forgotten it, and any seat it produced has expired.
    since: Time,
    /// Whether the application hears of it settled ([`ClientEvent::Resolved`]): not for
    /// the release of a seat already reported lost.
    report: bool,
}

/// A checkout waiting in its feature's queue: asked again every heartbeat, which keeps
/// its place on the servers.
#[derive(Debug, Clone)]
struct Waiting {
    /// The number the application knows it by, and the one on the wire.
    seq: RequestSeq,
    wire: RequestSeq,
    op: Op,
    /// When the application stops waiting.
    until: Time,
    position: u32,
    used: u32,
    count: u32,
    attempts: u32,
    /// The ask on its way (where, when), if any.
    asked: Option<(Endpoint, Time)>,
    /// When the latest ask went: a seat granted later counts its lease from it.
    last_sent: Time,
    /// When to ask next.
    next_ask: Time,
    /// Since when it asks to leave the queue (its wait is over).
    leaving: Option<Time>,
    /// Asks in a row that found no active server.
    misses: usize,
    /// Until when each endpoint is passed over: an ask there got no answer, so hints
    /// that name its server are stale until a failover has had time to happen.
    passed_over_until: [Option<Time>; PATH_MAX],
}

/// The most requests kept to settle; past it the oldest is left to its lease.
pub const UNRESOLVED_MAX: usize = 64;

/// The longest license path: one server, or the three of a triad.
pub const PATH_MAX: usize = 3;

/// The most heartbeat send times remembered (older acks are ignored).
const HEARTBEATS_REMEMBERED_MAX: usize = 16;
/// The most application requests queued behind the one in flight.
pub const QUEUE_MAX: usize = 1024;

/// One license client. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Client {
    id: ClientId,
    user: Arc<str>,
    host: Arc<str>,
    last_feature: Option<Arc<str>>,
    config: ClientConfig,
    /// The path entries, the one to try first at the front.
    order: VecDeque<Endpoint>,
    /// Which endpoint is which server, as learnt from replies.
    known: BTreeMap<ServerId, Endpoint>,
    /// The server that last served this client.
    active: Option<ServerId>,
    next_seq: u64,
    queue: VecDeque<(RequestSeq, Op)>,
    pending: Option<Pending>,
    /// The checkout waiting in a queue, if any (one at a time).
    waiting: Option<Waiting>,
    /// Until when each [`Client::checkout_wait`] not yet queued may wait.
    wait_until: BTreeMap<RequestSeq, Time>,
    retry_at: Option<Time>,
    /// Requests given up with their outcome unknown, oldest first.
    unresolved: VecDeque<Unresolved>,
    /// Not before this time is the next one settled (after a try that reached nobody).
    resolve_at: Option<Time>,
    seats: BTreeMap<Handle, HeldSeat>,
    heartbeats: VecDeque<(RequestSeq, Endpoint, Time)>,
    next_heartbeat: Option<Time>,
    /// Heartbeats in a row whose server could not be reached (reset by any reply).
    heartbeats_unreachable: usize,
    /// The lease the servers gave last (grants and heartbeat acks carry it).
    lease_ms_last: Option<u64>,
    now: Now,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

impl Client {
    /// A client with id `id` (drawn at random by the shell), for `user` on `host`, whose
    /// license path has `path_len` entries (1 to [`PATH_MAX`]; more are not used).
    pub fn new(
        id: ClientId,
        user: &str,
        host: &str,
        path_len: u8,
        config: ClientConfig,
        now: Now,
    ) -> Client {
        Client {
            id,
            user: Arc::from(user),
            host: Arc::from(host),
            last_feature: None,
            config,
            order: (0..path_len.clamp(1, PATH_MAX as u8))
                .map(Endpoint)
                .collect(),
            known: BTreeMap::new(),
            active: None,
            next_seq: 1,
            queue: VecDeque::new(),
            pending: None,
            waiting: None,
            wait_until: BTreeMap::new(),
            retry_at: None,
            unresolved: VecDeque::new(),
            resolve_at: None,
            seats: BTreeMap::new(),
            heartbeats: VecDeque::new(),
            next_heartbeat: None,
            heartbeats_unreachable: 0,
            lease_ms_last: None,
            now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Tells the client which server is at each entry of its license path (`slots[i]`
    /// at entry `i`), when the shell knows it before any reply: a TLS client has each
    /// server prove its slot, so a triad's path lists #1, #2 and #3 in that order. A
    /// "not active, #N is" hint then reaches #N at once, even before this client has
    /// heard from it, and requests start at #1 (the server that serves whenever it is
    /// up) whatever the order of the path. A reply from another server than expected
    /// corrects the mapping. It replaces what was known; entries past the path, and a
    /// server named a second time, are ignored.
    pub fn set_path_slots(&mut self, slots: &[ServerId]) {
        self.known.clear();
        for (index, &server) in slots.iter().enumerate() {
            let Ok(index) = u8::try_from(index) else {
                break;
            };
            let endpoint = Endpoint(index);
            if self.order.contains(&endpoint) && !self.known.contains_key(&server) {
                self.learn(server, endpoint);
            }
        }
        let known = &self.known;
        let slot_of = |e: &Endpoint| {
            known
                .iter()
                .find(|(_, at)| *at == e)
                .map_or(u8::MAX, |(id, _)| id.get())
        };
        self.order.make_contiguous().sort_by_key(slot_of);
    }

    /// Records that `server` is at `endpoint` (and no other server is).
    fn learn(&mut self, server: ServerId, endpoint: Endpoint) {
        self.known.retain(|id, at| *at != endpoint || *id == server);
        self.known.insert(server, endpoint);
    }

    // ----- getters -----

    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The seats held, by handle.
    pub fn seats(&self) -> &BTreeMap<Handle, HeldSeat> {
        &self.seats
    }

    /// The server that last served this client.
    pub fn active(&self) -> Option<ServerId> {
        self.active
    }

    /// The endpoint the next request goes to.
    pub fn preferred(&self) -> Endpoint {
        self.order.front().copied().unwrap_or(Endpoint(0))
    }

    /// The number the next request will take.
    pub fn next_seq(&self) -> RequestSeq {
        RequestSeq(self.next_seq)
    }

    /// Continues a client that an earlier process ran with this id: requests are numbered
    /// from `seq` on (at least), so the servers do not take a new request for a retry of
    /// an old one. Used to return a borrow from the machine that borrowed it.
    pub fn resume_from(&mut self, seq: RequestSeq) {
        self.next_seq = self.next_seq.max(seq.0);
    }

    /// Requests given up with their outcome unknown and not settled yet.
    pub fn unresolved(&self) -> usize {
        let settling = self.pending.as_ref().is_some_and(|p| p.resolving.is_some());
        self.unresolved.len().saturating_add(usize::from(settling))
    }

    /// Whether a request is in flight, queued, or waiting for a seat.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some() || !self.queue.is_empty() || self.waiting.is_some()
    }

    /// The request waiting in a queue for a seat, and its position (1: next).
    pub fn waiting(&self) -> Option<(RequestSeq, u32)> {
        self.waiting.as_ref().map(|w| (w.seq, w.position))
    }

    // ----- application requests -----

    /// Asks for a seat of `feature`; the answer comes as an event with the returned seq.
    pub fn checkout(&mut self, now: Now, feature: &str) -> RequestSeq {
        let op = Op::Checkout {
            feature: self.feature_name(feature),
            user: self.user.clone(),
            host: self.host.clone(),
        };
        self.submit(now, op)
    }

    /// Asks for a seat of `feature`, waiting up to `wait` for one when every seat is in
    /// use: the request then waits its turn in the feature's queue, which the servers
    /// replicate, so a failover keeps its place ([`ClientEvent::Queued`]). It is answered
    /// [`ClientEvent::Granted`] when its turn comes, or [`ClientEvent::Denied`]
    /// (`all_in_use`) when `wait` is over. One request waits at a time; others go on
    /// meanwhile, and a second wait starts when the first ends.
    pub fn checkout_wait(&mut self, now: Now, feature: &str, wait: Duration) -> RequestSeq {
        let op = Op::Wait {
            feature: self.feature_name(feature),
            user: self.user.clone(),
            host: self.host.clone(),
        };
        let seq = RequestSeq(self.next_seq);
        // Only for a request the queue takes (`submit` refuses one past QUEUE_MAX).
        if self.queue.len() < QUEUE_MAX {
            self.wait_until.insert(seq, now.mono + wait);
        }
        self.submit(now, op)
    }

    /// Asks to borrow a seat of `feature` for `hours`.
    pub fn borrow(&mut self, now: Now, feature: &str, hours: u32) -> RequestSeq {
        let op = Op::Borrow {
            feature: self.feature_name(feature),
            user: self.user.clone(),
            host: self.host.clone(),
            hours,
        };
        self.submit(now, op)
    }

    /// Gives a checked-out seat back.
    pub fn checkin(&mut self, now: Now, handle: Handle) -> RequestSeq {
        self.submit(now, Op::Checkin { handle })
    }

    /// Gives a borrowed seat back early.
    pub fn return_borrow(&mut self, now: Now, handle: Handle) -> RequestSeq {
        self.submit(now, Op::Return { handle })
    }

    /// `feature` as a shared name, reusing the last one asked for (an application asks
    /// for the same few features again and again).
    fn feature_name(&mut self, feature: &str) -> Arc<str> {
        match &self.last_feature {
            Some(name) if **name == *feature => name.clone(),
            _ => {
                let name: Arc<str> = Arc::from(feature);
                self.last_feature = Some(name.clone());
                name
            }
        }
    }

    fn take_seq(&mut self) -> RequestSeq {
        let seq = RequestSeq(self.next_seq);
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    fn submit(&mut self, now: Now, op: Op) -> RequestSeq {
        self.now = now;
        let seq = self.take_seq();
        if self.queue.len() >= QUEUE_MAX {
            self.events.push_back(ClientEvent::Denied {
                seq,
                reason: Denial::NoMajority,
                attempts: 0,
            });
            return seq;
        }
        self.queue.push_back((seq, op));
        self.start_next();
        seq
    }

    /// Sends the next queued request if none is in flight; with none queued, settles a
    /// request given up earlier (when its pause is over).
    fn start_next(&mut self) {
        if self.pending.is_some() {
            return;
        }
        // While one request waits in a queue, a second wait stays behind it; the others
        // go on.
        let next = match &self.waiting {
            None => self.queue.pop_front(),
            Some(_) => self
                .queue
                .iter()
                .position(|(_, op)| !matches!(op, Op::Wait { .. }))
                .and_then(|at| self.queue.remove(at)),
        };
        let (seq, wire, op, resolving) = match next {
            Some((seq, op)) => (seq, seq, op, None),
            None => {
                let now = self.now.mono;
                let forgotten = self.config.timing.session_idle_max();
                self.unresolved.retain(|u| now.since(u.since) < forgotten);
                if self.resolve_at.is_some_and(|t| now < t) {
                    return;
                }
                let Some(unresolved) = self.unresolved.pop_front() else {
                    return;
                };
                let (seq, wire, op) = (unresolved.seq, unresolved.wire, unresolved.op.clone());
                (seq, wire, op, Some(unresolved))
            }
        };
        self.pending = Some(Pending {
            seq,
            wire,
            resolving,
            first_sent_to: [None; PATH_MAX],
            op,
            first_sent: self.now.mono,
            attempt: None,
            attempts_in_pass: 0,
            attempts: 0,
            unanswered: false,
            last_denial: None,
            no_majority_since: None,
            passed_over_until: [None; PATH_MAX],
        });
        self.send_pending();
    }

    fn send_pending(&mut self) {
        let to = self.next_endpoint();
        let now = self.now.mono;
        let Some(pending) = &mut self.pending else {
            return;
        };
        pending.attempt = Some((to, now));
        if let Some(first) = pending.first_sent_to.get_mut(usize::from(to.0)) {
            first.get_or_insert(now);
        }
        pending.attempts_in_pass = pending.attempts_in_pass.saturating_add(1);
        pending.attempts = pending.attempts.saturating_add(1);
        let request = ClientRequest {
            client: self.id,
            seq: pending.wire,
            op: pending.op.clone(),
        };
        self.transmits.push_back(Transmit { to, request });
    }

    // ----- inputs -----

    /// A reply from the server at `from` (the endpoint it was sent to).
    pub fn handle_reply(&mut self, now: Now, from: Endpoint, reply: ServerReply) {
        self.now = now;
        if reply.client != self.id {
            return;
        }
        self.learn(reply.from, from);
        let heartbeat = self
            .heartbeats
            .iter()
            .position(|(seq, _, _)| *seq == reply.seq);
        if let Some(position) = heartbeat {
            let (_, _, sent) = self.heartbeats[position];
            self.heartbeats.drain(..=position);
            self.on_heartbeat_reply(from, sent, reply);
        } else if self.pending.as_ref().is_some_and(|p| p.wire == reply.seq) {
            self.on_request_reply(from, reply);
        } else if self.waiting.as_ref().is_some_and(|w| w.wire == reply.seq) {
            self.on_wait_reply(from, reply);
        }
        self.expire_local();
    }

    /// The shell could not reach the server at `endpoint` (reset, timed out), possibly
    /// after the request went out: the server may have acted on it.
    pub fn handle_unreachable(&mut self, now: Now, endpoint: Endpoint) {
        self.unreachable(now, endpoint, true);
    }

    /// The shell could not open a connection to `endpoint` (refused, no route, a TLS
    /// handshake that failed): nothing sent there reached the server.
    pub fn handle_not_sent(&mut self, now: Now, endpoint: Endpoint) {
        self.unreachable(now, endpoint, false);
    }

    fn unreachable(&mut self, now: Now, endpoint: Endpoint, maybe_delivered: bool) {
        self.now = now;
        let waiting_there = self
            .pending
            .as_ref()
            .and_then(|p| p.attempt)
            .is_some_and(|(e, _)| e == endpoint);
        self.demote(endpoint);
        if waiting_there {
            // The connection failed with the request on it: the server may have acted.
            if let Some(pending) = self.pending.as_mut().filter(|_| maybe_delivered) {
                pending.unanswered = true;
            }
            self.retry_pending();
        }
        if self
            .waiting
            .as_ref()
            .is_some_and(|w| w.asked.is_some_and(|(e, _)| e == endpoint))
        {
            self.wait_missed(endpoint, true);
        }
        if self
            .heartbeats
            .back()
            .is_some_and(|(_, e, _)| *e == endpoint)
        {
            self.heartbeats_unreachable = self.heartbeats_unreachable.saturating_add(1);
            if self.heartbeats_unreachable < self.order.len() {
                self.send_heartbeat();
            } else {
                // No server on the path can be reached (a client off the network gets
                // "unreachable" at once): pause before going round again rather than
                // spinning.
                self.heartbeats_unreachable = 0;
                self.next_heartbeat = Some(self.now.mono + self.config.retry_pause);
            }
        }
    }

    /// Time has passed the deadline of [`Client::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        let timeout = self.config.request_timeout;
        let timed_out = self
            .pending
            .as_ref()
            .and_then(|p| p.attempt)
            .filter(|(_, sent)| now.mono.since(*sent) >= timeout)
            .map(|(endpoint, _)| endpoint);
        if let Some(endpoint) = timed_out {
            if let Some(pending) = &mut self.pending {
                pending.unanswered = true;
            }
            self.demote(endpoint);
            self.pass_over(endpoint);
            self.retry_pending();
        }
        if self.resolve_at.is_some_and(|t| t <= now.mono) {
            self.resolve_at = None;
            self.start_next();
        }
        self.wait_timeout();
        if self.retry_at.is_some_and(|t| t <= now.mono) {
            self.retry_at = None;
            if let Some(pending) = &mut self.pending {
                pending.attempts_in_pass = 0;
            }
            self.retry_pending();
        }
        let stale_heartbeat = self
            .heartbeats
            .back()
            .filter(|(_, _, sent)| now.mono.since(*sent) >= timeout);
        if let Some(&(_, endpoint, _)) = stale_heartbeat {
            self.demote(endpoint);
            self.send_heartbeat();
        } else if self.next_heartbeat.is_some_and(|t| t <= now.mono) {
            // A new round: every server on the path may be tried again.
            self.heartbeats_unreachable = 0;
            self.send_heartbeat();
        }
        self.expire_local();
    }

    // ----- outputs -----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        let timeout = self.config.request_timeout;
        let attempt = self
            .pending
            .as_ref()
            .and_then(|p| p.attempt)
            .map(|(_, sent)| sent + timeout);
        let heartbeat_reply = self.heartbeats.back().map(|(_, _, sent)| *sent + timeout);
        let leases = self.seats.values().filter_map(|s| s.lease_until);
        let borrows = self.seats.values().filter_map(|s| s.borrow_until);
        let resolve = self
            .resolve_at
            .filter(|_| self.pending.is_none() && !self.unresolved.is_empty());
        let waiting = self.waiting.as_ref().map(|w| {
            // An answer, or else the next ask.
            let ask = match w.asked {
                Some((_, sent)) => sent + timeout,
                None => w.next_ask,
            };
            let over = match w.leaving {
                Some(since) => since + self.config.give_up_after,
                None => w.until,
            };
            [Some(ask), Some(over)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(over)
        });
        [
            attempt,
            heartbeat_reply,
            self.retry_at,
            self.next_heartbeat,
            resolve,
            waiting,
        ]
        .into_iter()
        .flatten()
        .chain(leases)
        .chain(borrows)
        .min()
    }

    // ----- machinery -----

    /// Whether the pending request passes over `endpoint` now.
    fn passed_over(&self, endpoint: Endpoint) -> bool {
        self.pending.as_ref().is_some_and(|p| {
            p.passed_over_until
                .get(usize::from(endpoint.0))
                .copied()
                .flatten()
                .is_some_and(|until| self.now.mono < until)
        })
    }

    /// Where the pending request goes next: the first endpoint in order that it does not
    /// pass over, or the first if it passes over them all.
    fn next_endpoint(&self) -> Endpoint {
        self.order
            .iter()
            .copied()
            .find(|e| !self.passed_over(*e))
            .unwrap_or_else(|| self.preferred())
    }

    /// The pending request's attempt at `endpoint` got no answer in time: it passes over
    /// that endpoint for as long as a failover takes, and then tries it again.
    fn pass_over(&mut self, endpoint: Endpoint) {
        let until =
            self.now.mono + self.config.timing.election_timeout + self.config.timing.failover_delay;
        if let Some(slot) = self
            .pending
            .as_mut()
            .and_then(|p| p.passed_over_until.get_mut(usize::from(endpoint.0)))
        {
            *slot = Some(until);
        }
        // A fresh pass over the others.
        if let Some(pending) = self.pending.as_mut() {
            pending.attempts_in_pass = 0;
        }
    }

    /// Moves `endpoint` to the end of the list.
    fn demote(&mut self, endpoint: Endpoint) {
        if let Some(position) = self.order.iter().position(|e| *e == endpoint) {
            self.order.remove(position);
            self.order.push_back(endpoint);
        }
    }

    /// Moves the endpoint of server `id` to the front, if known.
    fn promote(&mut self, id: ServerId) -> bool {
        let Some(endpoint) = self.known.get(&id).copied() else {
            return false;
        };
        let Some(position) = self.order.iter().position(|e| *e == endpoint) else {
            return false;
        };
        self.order.remove(position);
        self.order.push_front(endpoint);
        true
    }

    /// Follows a "not active" hint, or moves on from the server that refused.
    fn look_elsewhere(&mut self, from: Endpoint, denial: &Denial) {
        let hinted = match denial {
            Denial::NotActive { active: Some(id) } => {
                self.known
                    .get(id)
                    .is_some_and(|e| *e != from && !self.passed_over(*e))
                    && self.promote(*id)
            }
            _ => false,
        };
        if !hinted {
            self.demote(from);
        }
    }

    /// Sends the pending request again, pausing after a whole pass over the path and
    /// giving up after `give_up_after`.
    fn retry_pending(&mut self) {
        // A pass goes over the endpoints not passed over (or all, if all are).
        let usable = self.order.iter().filter(|e| !self.passed_over(**e)).count();
        let path_len = if usable == 0 {
            self.order.len()
        } else {
            usable
        };
        let give_up = self.config.give_up_after;
        let no_majority_give_up = self.config.no_majority_give_up;
        let pause = self.config.retry_pause;
        let now = self.now.mono;
        let Some(pending) = &mut self.pending else {
            return;
        };
        pending.attempt = None;
        // Every answer "no majority" for an election timeout (a server just started may
        // say an election is under way first), none lost: no failover is coming, say so
        // once one would have come.
        let no_majority = pending
            .no_majority_since
            .is_some_and(|since| now.since(since) >= self.config.timing.election_timeout)
            && !pending.unanswered
            && pending.resolving.is_none();
        let waited = now.since(pending.first_sent);
        if waited >= give_up || (no_majority && waited >= no_majority_give_up) {
            if let Some(pending) = self.pending.take() {
                self.give_up(pending);
            }
            self.start_next();
            return;
        }
        if pending.attempts_in_pass >= path_len {
            self.retry_at = Some(now + pause);
            return;
        }
        self.send_pending();
    }

    /// Ends a request no server settled in time: a denial when every attempt was
    /// answered with one, else an unknown outcome, kept to settle later.
    fn give_up(&mut self, pending: Pending) {
        let now = self.now.mono;
        let (seq, attempts) = (pending.seq, pending.attempts);
        self.wait_until.remove(&seq);
        if let Some(unresolved) = pending.resolving {
            // Settling reached nobody: try again after a pause, from the front.
            self.unresolved.push_front(unresolved);
            self.resolve_at = Some(now + self.config.give_up_after);
            return;
        }
        if !pending.unanswered {
            let reason = pending.last_denial.unwrap_or(Denial::NoMajority);
            self.events.push_back(ClientEvent::Denied {
                seq,
                reason,
                attempts,
            });
            return;
        }
        if self.unresolved.len() >= UNRESOLVED_MAX {
            self.unresolved.pop_front();
        }
        // A wait that may be queued is settled by leaving the queue: the answer is the
        // seat if its turn came, to give back.
        let op = match pending.op {
            Op::Wait { .. } => Op::StopWaiting,
            op => op,
        };
        self.unresolved.push_back(Unresolved {
            seq,
            wire: pending.wire,
            op,
            since: now,
            report: true,
        });
        self.events.push_back(ClientEvent::OutcomeUnknown {
            seq,
            attempts,
            last_denial: pending.last_denial,
        });
    }

    /// The answer to a request being settled (not the application's): releases the
    /// seat it turns out to have produced, and reports it settled.
    fn on_resolved(&mut self, unresolved: Unresolved, result: ReplyResult) {
        let seq = unresolved.seq;
        let release = |handle| match unresolved.op {
            Op::Borrow { .. } => Op::Return { handle },
            _ => Op::Checkin { handle },
        };
        match result {
            ReplyResult::Granted { handle, .. } => {
                // The seat the lost reply carried: give it back at once.
                let wire = self.take_seq();
                self.unresolved.push_front(Unresolved {
                    seq,
                    wire,
                    op: release(handle),
                    since: self.now.mono,
                    report: unresolved.report,
                });
                self.resolve_at = None;
            }
            ReplyResult::Released { handle } => {
                self.seats.remove(&handle);
                if unresolved.report {
                    self.events.push_back(ClientEvent::Resolved {
                        seq,
                        released: Some(handle),
                    });
                }
            }
            ReplyResult::Denied(_)
            | ReplyResult::Queued { .. }
            | ReplyResult::LeftQueue
            | ReplyResult::HeartbeatAck { .. }
            | ReplyResult::Removed { .. }
            | ReplyResult::LicensePushed { .. }
            | ReplyResult::LicenseRefused { .. }
            | ReplyResult::OptionsPushed { .. }
            | ReplyResult::OptionsRefused { .. } => {
                // Refused for good (all in use, unknown handle...): nothing to release.
                if let Op::Checkin { handle } | Op::Return { handle } = unresolved.op {
                    self.seats.remove(&handle);
                }
                if unresolved.report {
                    self.events.push_back(ClientEvent::Resolved {
                        seq,
                        released: None,
                    });
                }
            }
        }
    }

    fn on_request_reply(&mut self, from: Endpoint, reply: ServerReply) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        if pending.resolving.is_some() {
            if let ReplyResult::Denied(denial) = &reply.result
                && denial.try_elsewhere()
            {
                pending.last_denial = Some(denial.clone());
                let denial = denial.clone();
                self.look_elsewhere(from, &denial);
                self.retry_pending();
                return;
            }
            if let Some(unresolved) = self.pending.take().and_then(|p| p.resolving) {
                self.on_resolved(unresolved, reply.result);
            }
            self.retry_at = None;
            self.start_next();
            return;
        }
        let sent = pending
            .first_sent_to
            .get(usize::from(from.0))
            .copied()
            .flatten()
            .unwrap_or(pending.first_sent);
        let (seq, attempts) = (pending.seq, pending.attempts);
        match reply.result {
            ReplyResult::Denied(denial) if denial.try_elsewhere() => {
                pending.no_majority_since = match denial {
                    Denial::NoMajority => pending.no_majority_since.or(Some(self.now.mono)),
                    _ => None,
                };
                pending.last_denial = Some(denial.clone());
                self.look_elsewhere(from, &denial);
                self.retry_pending();
                return;
            }
            ReplyResult::Denied(Denial::UnknownHandle) | ReplyResult::LeftQueue
                if matches!(
                    pending.op,
                    Op::Checkout { .. } | Op::Borrow { .. } | Op::Wait { .. }
                ) =>
            {
                // The seat this request got lapsed before the reply reached us: ask anew.
                let wire = self.take_seq();
                if let Some(pending) = self.pending.as_mut() {
                    pending.wire = wire;
                    pending.first_sent_to = [None; PATH_MAX];
                }
                self.send_pending();
                return;
            }
            ReplyResult::Queued {
                position,
                used,
                count,
                lease_ms,
            } => {
                if !matches!(pending.op, Op::Wait { .. }) {
                    return;
                }
                // Its place lasts a lease unasked: it asks as often as it heartbeats.
                self.lease_ms_last = Some(lease_ms);
                let until = self.wait_until.remove(&seq).unwrap_or(pending.first_sent);
                let now = self.now.mono;
                self.waiting = Some(Waiting {
                    seq,
                    wire: pending.wire,
                    op: pending.op.clone(),
                    until,
                    position,
                    used,
                    count,
                    attempts,
                    asked: None,
                    last_sent: sent,
                    next_ask: now + self.wait_ask_every(),
                    leaving: None,
                    misses: 0,
                    passed_over_until: [None; PATH_MAX],
                });
                self.served_by(reply.from);
                self.events.push_back(ClientEvent::Queued {
                    seq,
                    position,
                    used,
                    count,
                });
                // Its wait may be over already.
                self.wait_timeout();
            }
            ReplyResult::Denied(reason) => {
                if let (Denial::UnknownHandle, Op::Checkin { handle } | Op::Return { handle }) =
                    (&reason, &pending.op)
                {
                    let handle = *handle;
                    self.seats.remove(&handle);
                }
                self.events.push_back(ClientEvent::Denied {
                    seq,
                    reason,
                    attempts,
                });
            }
            ReplyResult::Granted {
                handle,
                lease_ms,
                borrow_end,
                granted_by,
            } => {
                let feature = match &pending.op {
                    Op::Checkout { feature, .. }
                    | Op::Borrow { feature, .. }
                    | Op::Wait { feature, .. } => feature.to_string(),
                    _ => String::new(),
                };
                let from = if self.config.plants.has(Plant::LeaseFromReply) {
                    self.now.mono
                } else {
                    sent
                };
                let lease_until = borrow_end
                    .is_none()
                    .then(|| from + Duration::from_millis(lease_ms));
                let borrow_until = borrow_end.map(|end| match &pending.op {
                    Op::Borrow { hours, .. } => {
                        pending.first_sent
                            + Duration::from_secs(u64::from(*hours).saturating_mul(3_600))
                    }
                    // A borrow's grant answers a borrow; were it not, its wall-clock end.
                    _ => self.now.mono + end.since(self.now.wall),
                });
                if borrow_end.is_none() {
                    self.lease_ms_last = Some(lease_ms);
                }
                self.seats.insert(
                    handle,
                    HeldSeat {
                        feature,
                        lease_until,
                        borrow_end,
                        borrow_until,
                    },
                );
                self.served_by(reply.from);
                let event = ClientEvent::Granted {
                    seq,
                    handle,
                    server: reply.from,
                    granted_by,
                    borrow_end,
                    attempts,
                };
                self.events.push_back(event);
                self.schedule_heartbeat();
            }
            ReplyResult::Released { handle } => {
                self.seats.remove(&handle);
                self.served_by(reply.from);
                self.events.push_back(ClientEvent::Released {
                    seq,
                    handle,
                    attempts,
                });
            }
            // Not an answer to a client's request (a lying server's): ignored.
            ReplyResult::HeartbeatAck { .. }
            | ReplyResult::LeftQueue
            | ReplyResult::Removed { .. }
            | ReplyResult::LicensePushed { .. }
            | ReplyResult::LicenseRefused { .. }
            | ReplyResult::OptionsPushed { .. }
            | ReplyResult::OptionsRefused { .. } => return,
        }
        self.wait_until.remove(&seq);
        self.pending = None;
        self.retry_at = None;
        self.start_next();
    }

    fn on_heartbeat_reply(&mut self, from: Endpoint, sent: Time, reply: ServerReply) {
        self.heartbeats_unreachable = 0;
        match reply.result {
            ReplyResult::HeartbeatAck {
                lease_ms,
                held,
                unknown,
                removed,
            } => {
                self.served_by(reply.from);
                self.lease_ms_last = Some(lease_ms);
                let from = if self.config.plants.has(Plant::LeaseFromReply) {
                    self.now.mono
                } else {
                    sent
                };
                let until = from + Duration::from_millis(lease_ms);
                for handle in held {
                    if let Some(seat) = self.seats.get_mut(&handle)
                        && seat.borrow_end.is_none()
                    {
                        seat.lease_until = Some(seat.lease_until.map_or(until, |u| u.max(until)));
                    }
                }
                for handle in unknown {
                    if self.seats.remove(&handle).is_some() {
                        let event = if removed.contains(&handle) {
                            ClientEvent::Removed { handle }
                        } else {
                            ClientEvent::Lost { handle }
                        };
                        self.events.push_back(event);
                    }
                }
                self.schedule_heartbeat();
            }
            ReplyResult::Denied(denial) => {
                // Re-attach the seats on the active server.
                self.look_elsewhere(from, &denial);
                self.next_heartbeat = Some(self.now.mono + self.config.retry_pause);
            }
            _ => {}
        }
    }

    fn served_by(&mut self, server: ServerId) {
        if let Some(previous) = self.active
            && previous != server
        {
            self.events.push_back(ClientEvent::FailedOver {
                from: previous,
                to: server,
            });
        }
        self.active = Some(server);
        self.promote(server);
    }

    fn schedule_heartbeat(&mut self) {
        let heartbeated = self.seats.values().any(|s| s.borrow_end.is_none());
        self.next_heartbeat = heartbeated.then(|| self.now.mono + self.heartbeat_every());
    }

    /// How often to heartbeat: as configured, but at least four times per lease the
    /// servers give, so a client whose settings assume a longer lease than the servers'
    /// keeps its seats.
    fn heartbeat_every(&self) -> Duration {
        let configured = self.config.timing.client_heartbeat;
        match self.lease_ms_last {
            Some(lease_ms) => configured.min(Duration::from_millis(lease_ms / 4)),
            None => configured,
        }
    }

    fn send_heartbeat(&mut self) {
        let handles: Vec<Handle> = self
            .seats
            .iter()
            .filter(|(_, s)| s.borrow_end.is_none())
            .map(|(h, _)| *h)
            .collect();
        if handles.is_empty() {
            self.next_heartbeat = None;
            self.heartbeats.clear();
            return;
        }
        let to = self.preferred();
        // A server takes at most HEARTBEAT_HANDLES_MAX seats per heartbeat: one request
        // per chunk, each acknowledged on its own.
        let chunks = handles.chunks(HEARTBEAT_HANDLES_MAX);
        let remembered_max = HEARTBEATS_REMEMBERED_MAX.max(chunks.len().saturating_mul(4));
        for chunk in chunks {
            let seq = self.take_seq();
            self.heartbeats.push_back((seq, to, self.now.mono));
            let request = ClientRequest {
                client: self.id,
                seq,
                op: Op::Heartbeat {
                    handles: chunk.to_vec(),
                },
            };
            self.transmits.push_back(Transmit { to, request });
        }
        while self.heartbeats.len() > remembered_max {
            self.heartbeats.pop_front();
        }
        self.next_heartbeat = Some(self.now.mono + self.heartbeat_every());
    }

    /// Gives up seats whose lease or borrow is over.
    fn expire_local(&mut self) {
        let now = self.now;
        let lost: Vec<Handle> = self
            .seats
            .iter()
            .filter(|(_, s)| s.lease_until.is_some_and(|t| t <= now.mono))
            .map(|(h, _)| *h)
            .collect();
        let any_lost = !lost.is_empty();
        for handle in lost {
            self.seats.remove(&handle);
            self.events.push_back(ClientEvent::Lost { handle });
            // The servers count the lease later than this client does, and may even have
            // renewed it with a heartbeat sent just before: give the seat back rather
            // than leave it held by nobody until their lease runs out too.
            let wire = self.take_seq();
            if self.unresolved.len() >= UNRESOLVED_MAX {
                self.unresolved.pop_front();
            }
            self.unresolved.push_back(Unresolved {
                seq: wire,
                wire,
                op: Op::Checkin { handle },
                since: now.mono,
                report: false,
            });
            self.resolve_at = None;
        }
        if any_lost {
            self.start_next();
        }
        let ended: Vec<Handle> = self
            .seats
            .iter()
            .filter(|(_, s)| s.borrow_until.is_some_and(|until| until <= now.mono))
            .map(|(h, _)| *h)
            .collect();
        for handle in ended {
            self.seats.remove(&handle);
            self.events.push_back(ClientEvent::BorrowEnded { handle });
        }
        if self.seats.values().all(|s| s.borrow_end.is_some()) {
            self.next_heartbeat = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: ServerId = ServerId::PRIMARY;
    const TWO: ServerId = ServerId::SECONDARY;
    const THREE: ServerId = ServerId::TIEBREAKER;

    fn at(ms: u64) -> Now {
        Now {
            mono: Time(ms),
            wall: WallTime(1_800_000_000_000 + ms),
        }
    }

    fn client() -> Client {
        Client::new(
            ClientId(9),
            "ann",
            "ws1",
            3,
            ClientConfig::new(Timing::lan()),
            at(0),
        )
    }

    fn sent(c: &mut Client) -> Vec<Transmit> {
        std::iter::from_fn(|| c.poll_transmit()).collect()
    }

    fn events(c: &mut Client) -> Vec<ClientEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn reply(from: ServerId, seq: RequestSeq, result: ReplyResult) -> ServerReply {
        ServerReply {
            client: ClientId(9),
            seq,
            from,
            result,
        }
    }

    fn granted(handle: u64, by: ServerId) -> ReplyResult {
        ReplyResult::Granted {
            handle: Handle(handle),
            lease_ms: 120_000,
            borrow_end: None,
            granted_by: by,
        }
    }

    fn not_active(active: Option<ServerId>) -> ReplyResult {
        ReplyResult::Denied(Denial::NotActive { active })
    }

    #[test]
    fn it_follows_refusals_along_the_path_and_then_goes_straight_to_the_active_server() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        assert_eq!(sent(&mut c)[0].to, Endpoint(0));
        // Endpoint 0 is #2: it names #1, whose endpoint the client does not know yet.
        c.handle_reply(at(5), Endpoint(0), reply(TWO, seq, not_active(Some(ONE))));
        let next = sent(&mut c);
        assert_eq!(
            (next[0].to, next[0].request.seq),
            (Endpoint(1), seq),
            "same request, next server"
        );
        c.handle_reply(
            at(10),
            Endpoint(1),
            reply(THREE, seq, not_active(Some(ONE))),
        );
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
        c.handle_reply(at(15), Endpoint(2), reply(ONE, seq, granted(4, ONE)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Granted {
                handle: Handle(4),
                server: ONE,
                ..
            }]
        ));
        // The next request goes straight to #1.
        c.checkin(at(20), Handle(4));
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
    }

    /// Issue 20, bug 2: a path in reverse order (3;2;1) sent a fresh client to #3, then
    /// #2, then #1. Knowing the slots, it asks #1 first, and follows a hint to a server
    /// it has not heard from yet: at most one redirect.
    #[test]
    fn knowing_the_slots_a_client_asks_one_first_and_follows_any_hint_at_once() {
        let reversed = || {
            let mut c = client();
            // As a session does: slot order first, then what it was told.
            c.set_path_slots(&[ONE, TWO, THREE]);
            c.set_path_slots(&[THREE, TWO, ONE]);
            c
        };
        let mut c = reversed();
        let seq = c.checkout(at(0), "cad");
        assert_eq!(sent(&mut c)[0].to, Endpoint(2), "#1 first");
        c.handle_reply(at(5), Endpoint(2), reply(ONE, seq, granted(4, ONE)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Granted { attempts: 1, .. }]
        ));

        // #2 is active: #1 says so, and the client goes straight to #2's entry.
        let mut c = reversed();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(5), Endpoint(2), reply(ONE, seq, not_active(Some(TWO))));
        assert_eq!(sent(&mut c)[0].to, Endpoint(1));
        c.handle_reply(at(10), Endpoint(1), reply(TWO, seq, granted(5, TWO)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Granted {
                attempts: 2,
                server: TWO,
                ..
            }]
        ));

        // #1 is down (no answer): a fresh client moves on to #2, then #3 last.
        let mut c = reversed();
        c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_unreachable(at(1), Endpoint(2));
        assert_eq!(sent(&mut c)[0].to, Endpoint(1), "#2 next");
    }

    /// A path whose order does not match the slots given (a plaintext triad listed in
    /// another order): the replies correct the client, and it still gets served.
    #[test]
    fn a_reply_from_another_server_than_expected_corrects_the_slots() {
        // Told endpoint 0 is #1, but #3 answers there; #1 is really at endpoint 2.
        let mut c = client();
        c.set_path_slots(&[ONE, TWO, THREE]);
        let seq = c.checkout(at(0), "cad");
        assert_eq!(sent(&mut c)[0].to, Endpoint(0));
        c.handle_reply(at(5), Endpoint(0), reply(THREE, seq, not_active(Some(ONE))));
        // #1 is no longer believed to be at endpoint 0: try the others in order.
        assert_eq!(sent(&mut c)[0].to, Endpoint(1));
        c.handle_reply(at(10), Endpoint(1), reply(TWO, seq, not_active(Some(ONE))));
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
        c.handle_reply(at(15), Endpoint(2), reply(ONE, seq, granted(4, ONE)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Granted { attempts: 3, .. }]
        ));
        // Learnt: the next request goes to #1's real entry.
        c.checkout(at(20), "cad");
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
    }

    #[test]
    fn a_hint_to_a_known_server_is_followed_at_once() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(5), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        let next = c.checkout(at(10), "cad");
        sent(&mut c);
        // #1 steps down and says #2 (unknown endpoint): try the rest in order.
        c.handle_reply(at(15), Endpoint(0), reply(ONE, next, not_active(None)));
        assert_eq!(sent(&mut c)[0].to, Endpoint(1));
        c.handle_reply(
            at(20),
            Endpoint(1),
            reply(THREE, next, not_active(Some(ONE))),
        );
        // #1 is known at endpoint 0: go back there directly.
        assert_eq!(sent(&mut c)[0].to, Endpoint(0));
    }

    #[test]
    fn a_server_that_did_not_answer_is_passed_over_until_a_failover_could_have_happened() {
        let mut c = client();
        let config = c.config;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap();
        let timed_out = 10 + ms(config.request_timeout);
        let failover = ms(config.timing.election_timeout + config.timing.failover_delay);
        let first = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(5), Endpoint(0), reply(ONE, first, granted(1, ONE)));
        events(&mut c);
        // #1 is cut off: the next request gets no answer there.
        let seq = c.checkout(at(10), "cad");
        assert_eq!(sent(&mut c)[0].to, Endpoint(0));
        c.handle_timeout(at(timed_out));
        let mut tried = vec![(timed_out, sent(&mut c)[0].to)];
        // #2 and #3 have not noticed yet and point at #1; the client does not go back
        // there (another request timeout lost) until #2 could have taken over.
        let mut now = timed_out;
        while now < timed_out + failover * 3 {
            let (to, _) = c
                .pending
                .as_ref()
                .unwrap()
                .attempt
                .unwrap_or((Endpoint(9), Time(0)));
            if to == Endpoint(0) {
                break;
            }
            now += 5;
            let from = if to == Endpoint(1) { TWO } else { THREE };
            c.handle_reply(at(now), to, reply(from, seq, not_active(Some(ONE))));
            let mut next = sent(&mut c);
            if next.is_empty() {
                now = c.poll_timeout().unwrap().0;
                c.handle_timeout(at(now));
                next = sent(&mut c);
            }
            tried.push((now, next[0].to));
        }
        let back_at_one = tried.iter().find(|(_, e)| *e == Endpoint(0)).unwrap().0;
        assert!(
            back_at_one >= timed_out + failover,
            "#1 tried again too soon: {tried:?}"
        );
        // At the latest one retry pause (plus the replies' 5 ms steps) later.
        let slack = ms(config.retry_pause) + 10;
        assert!(back_at_one <= timed_out + failover + slack, "{tried:?}");
        // Meanwhile #2 and #3 were each asked once per pass, a pause apart.
        assert!(
            tried.iter().filter(|(_, e)| *e == Endpoint(1)).count() >= 5,
            "{tried:?}"
        );
        assert!(
            tried.iter().filter(|(_, e)| *e == Endpoint(2)).count() >= 5,
            "{tried:?}"
        );
    }

    #[test]
    fn a_server_that_does_not_answer_moves_to_the_end_of_the_list() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        let timeout = c.poll_timeout().unwrap();
        let request_timeout = Time(u64::try_from(c.config.request_timeout.as_millis()).unwrap());
        assert_eq!(timeout, request_timeout, "request_timeout after the send");
        c.handle_timeout(at(timeout.0));
        let retry = sent(&mut c);
        assert_eq!((retry[0].to, retry[0].request.seq), (Endpoint(1), seq));
        c.handle_unreachable(at(timeout.0 + 1), Endpoint(1));
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
        assert_eq!(c.order, [Endpoint(2), Endpoint(0), Endpoint(1)]);
    }

    #[test]
    fn heartbeats_come_four_times_per_lease_the_servers_give() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        // The servers run an 8 s lease; the client's settings say 30 s heartbeats.
        let short = ReplyResult::Granted {
            handle: Handle(4),
            lease_ms: 8_000,
            borrow_end: None,
            granted_by: ONE,
        };
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, short));
        assert_eq!(c.poll_timeout(), Some(Time(10 + 2_000)));
        c.handle_timeout(at(2_010));
        let beat = sent(&mut c);
        assert!(
            matches!(beat[0].request.op, Op::Heartbeat { .. }),
            "{beat:?}"
        );
        let ack = ReplyResult::HeartbeatAck {
            lease_ms: 8_000,
            held: vec![Handle(4)],
            unknown: vec![],
            removed: vec![],
        };
        c.handle_reply(at(2_020), Endpoint(0), reply(ONE, beat[0].request.seq, ack));
        assert_eq!(
            c.poll_timeout(),
            Some(Time(2_020 + 2_000)),
            "a quarter lease after the ack"
        );
    }

    /// A seat an administrator removed is reported as removed, not lost; another seat the
    /// server no longer knows is lost, as before.
    #[test]
    fn a_seat_removed_by_an_administrator_is_reported_as_removed() {
        let mut c = client();
        let mut handles = Vec::new();
        for (n, handle) in [(0, Handle(4)), (20, Handle(5))] {
            let seq = c.checkout(at(n), "cad");
            sent(&mut c);
            let granted = ReplyResult::Granted {
                handle,
                lease_ms: 8_000,
                borrow_end: None,
                granted_by: ONE,
            };
            c.handle_reply(at(n + 10), Endpoint(0), reply(ONE, seq, granted));
            handles.push(handle);
        }
        events(&mut c);
        let beat_at = c.poll_timeout().unwrap().0;
        c.handle_timeout(at(beat_at));
        let beat = sent(&mut c);
        assert!(matches!(&beat[0].request.op, Op::Heartbeat { handles: h } if *h == handles));
        let ack = ReplyResult::HeartbeatAck {
            lease_ms: 8_000,
            held: vec![],
            unknown: handles.clone(),
            removed: vec![Handle(4)],
        };
        c.handle_reply(
            at(beat_at + 10),
            Endpoint(0),
            reply(ONE, beat[0].request.seq, ack),
        );
        assert!(c.seats().is_empty());
        assert_eq!(
            events(&mut c),
            [
                ClientEvent::Removed { handle: Handle(4) },
                ClientEvent::Lost { handle: Handle(5) }
            ]
        );
    }

    /// Found by a scenario (a client cut off from every server): each failed connection
    /// sent the heartbeat on to the next server at once, round and round, with no time
    /// passing. Once every server has been tried, the client now pauses.
    #[test]
    fn heartbeats_to_no_reachable_server_pause_after_a_pass() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        let due = c.poll_timeout().unwrap_or(Time(0));
        c.handle_timeout(Now {
            mono: due,
            wall: WallTime(1_800_000_000_000 + due.0),
        });
        let mut tried = Vec::new();
        for _ in 0..10 {
            let Some(beat) = sent(&mut c).pop() else {
                break;
            };
            tried.push(beat.to);
            c.handle_unreachable(at(due.0), beat.to);
        }
        assert_eq!(
            tried,
            [Endpoint(0), Endpoint(1), Endpoint(2)],
            "one pass, then a pause"
        );
        assert_eq!(c.poll_timeout(), Some(Time(due.0) + c.config.retry_pause));
    }

    #[test]
    fn the_lease_runs_from_the_send_time_and_its_end_is_reported() {
        let mut c = client();
        let seq = c.checkout(at(100), "cad");
        sent(&mut c);
        c.handle_reply(at(900), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        events(&mut c);
        assert_eq!(c.seats()[&Handle(4)].lease_until, Some(Time(100 + 120_000)));
        // The heartbeat goes out on schedule; nobody answers; the lease runs out.
        let mut now = 900;
        while let Some(t) = c.poll_timeout() {
            if t.0 > 200_000 {
                break;
            }
            now = t.0;
            c.handle_timeout(at(now));
            sent(&mut c);
            if c.seats().is_empty() {
                break;
            }
        }
        assert_eq!(
            now, 120_100,
            "lost exactly when the lease from the send time ran out"
        );
        assert!(events(&mut c).contains(&ClientEvent::Lost { handle: Handle(4) }));
    }

    /// Found by invariant 7: a frozen client's seat ran out on the client, but the
    /// server (which counts later, and had just renewed it) kept it for nobody. The
    /// client now gives a seat it reports lost back, and tells the application nothing
    /// more.
    #[test]
    fn a_seat_lost_on_the_client_is_given_back_to_the_server() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(5), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        events(&mut c);
        // Frozen past its lease: the next thing it does is notice.
        c.handle_timeout(at(130_000));
        assert!(events(&mut c).contains(&ClientEvent::Lost { handle: Handle(4) }));
        let release = sent(&mut c)
            .into_iter()
            .find(|t| t.request.op == Op::Checkin { handle: Handle(4) })
            .expect("a checkin of the lost seat");
        c.handle_reply(
            at(130_005),
            release.to,
            reply(
                ONE,
                release.request.seq,
                ReplyResult::Released { handle: Handle(4) },
            ),
        );
        assert_eq!(events(&mut c), vec![], "nothing more for the application");
        assert_eq!(c.unresolved(), 0);
    }

    #[test]
    fn an_acknowledged_heartbeat_extends_the_lease_from_its_send_time() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        c.handle_timeout(at(30_010));
        let heartbeat = sent(&mut c).remove(0);
        assert!(
            matches!(heartbeat.request.op, Op::Heartbeat { ref handles } if handles == &[Handle(4)])
        );
        let ack = ReplyResult::HeartbeatAck {
            lease_ms: 120_000,
            held: vec![Handle(4)],
            unknown: vec![],
            removed: vec![],
        };
        c.handle_reply(
            at(30_500),
            Endpoint(0),
            reply(ONE, heartbeat.request.seq, ack),
        );
        assert_eq!(
            c.seats()[&Handle(4)].lease_until,
            Some(Time(30_010 + 120_000))
        );
    }

    #[test]
    fn a_heartbeat_refused_by_a_standby_reattaches_on_the_next_server() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        c.handle_timeout(at(30_010));
        let heartbeat = sent(&mut c).remove(0);
        c.handle_reply(
            at(30_020),
            Endpoint(0),
            reply(
                ONE,
                heartbeat.request.seq,
                ReplyResult::Denied(Denial::NoMajority),
            ),
        );
        let retry_at = c.poll_timeout().unwrap();
        c.handle_timeout(at(retry_at.0));
        let again = sent(&mut c).remove(0);
        assert_eq!(again.to, Endpoint(1));
        let ack = ReplyResult::HeartbeatAck {
            lease_ms: 120_000,
            held: vec![Handle(4)],
            unknown: vec![],
            removed: vec![],
        };
        c.handle_reply(
            at(retry_at.0 + 5),
            Endpoint(1),
            reply(TWO, again.request.seq, ack),
        );
        assert!(events(&mut c).contains(&ClientEvent::FailedOver { from: ONE, to: TWO }));
    }

    /// Checks out with every attempt answered as `answer(endpoint)` says, until the
    /// client gives up: (when, the denial's reason, its attempts, the sends).
    fn given_up(answer: impl Fn(Endpoint) -> Denial) -> (u64, Denial, u32, u32) {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        let mut now = 0;
        let mut sends = 0;
        for _ in 0..200 {
            // Every attempt is answered (the next one goes out with the answer).
            while let Some(t) = c.poll_transmit() {
                sends += 1;
                let denial = ReplyResult::Denied(answer(t.to));
                c.handle_reply(at(now + 1), t.to, reply(ONE, t.request.seq, denial));
            }
            let Some(next) = c.poll_timeout() else { break };
            now = next.0;
            c.handle_timeout(at(now));
        }
        let denied = events(&mut c);
        let [
            ClientEvent::Denied {
                seq: denied_seq,
                ref reason,
                attempts,
            },
        ] = denied[..]
        else {
            panic!("{denied:?}");
        };
        assert_eq!(denied_seq, seq);
        (now, reason.clone(), attempts, sends)
    }

    #[test]
    fn a_request_nobody_serves_is_given_up_with_the_last_reason() {
        // Every server says it has no majority: given up after a failover's time and a
        // little, not the whole give-up time.
        let (now, reason, attempts, sends) = given_up(|_| Denial::NoMajority);
        assert_eq!(reason, Denial::NoMajority);
        assert_eq!(attempts, sends, "every send counts");
        assert!(attempts > 3, "more than one pass over the path: {attempts}");
        let config = ClientConfig::new(Timing::lan());
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap();
        let soon = ms(config.no_majority_give_up);
        assert_eq!(soon, 2_000, "two seconds on a LAN");
        assert!(
            (soon..soon + ms(config.retry_pause) + 10).contains(&now),
            "given up at {now} ms"
        );
        // One server says an election is under way: the whole give-up time.
        let (now, reason, _, _) = given_up(|e| {
            if e == Endpoint(1) {
                Denial::NotActive { active: None }
            } else {
                Denial::NoMajority
            }
        });
        assert!(now >= ms(config.give_up_after), "given up at {now} ms");
        assert!(
            matches!(reason, Denial::NoMajority | Denial::NotActive { .. }),
            "{reason:?}"
        );
    }

    /// Drives `c` with every request timing out (no server answers) until `done`;
    /// returns the time.
    fn time_out_until(c: &mut Client, mut now: u64, done: impl Fn(&Client) -> bool) -> u64 {
        for _ in 0..500 {
            sent(c);
            let Some(next) = c.poll_timeout() else { break };
            now = next.0;
            c.handle_timeout(at(now));
            if done(c) {
                break;
            }
        }
        now
    }

    /// Until the application's request is given up (and settling has begun).
    fn time_out_everything(c: &mut Client, now: u64) -> u64 {
        time_out_until(c, now, |c| {
            c.pending.as_ref().is_none_or(|p| p.resolving.is_some())
        })
    }

    /// Issue 20, bug 4: a checkout whose replies were all lost is not a denial, and the
    /// seat it may have produced is found and released when a server answers again.
    #[test]
    fn a_request_with_no_answer_is_of_unknown_outcome_and_is_settled_later() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        let wire = sent(&mut c)[0].request.seq;
        let now = time_out_everything(&mut c, 0);
        let told = events(&mut c);
        assert!(
            matches!(told[..], [ClientEvent::OutcomeUnknown { seq: s, attempts, .. }] if s == seq && attempts > 3),
            "{told:?}"
        );
        // It settles at once: the same request, with the same number.
        let again = sent(&mut c);
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].request.seq, wire);
        assert_eq!(c.unresolved(), 1);
        // #1 answers with the grant it made when the first reply was lost.
        c.handle_reply(at(now + 5), again[0].to, reply(ONE, wire, granted(7, ONE)));
        assert!(c.seats().is_empty(), "the application never held it");
        let checkin = sent(&mut c);
        assert_eq!(checkin[0].request.op, Op::Checkin { handle: Handle(7) });
        c.handle_reply(
            at(now + 10),
            checkin[0].to,
            reply(
                ONE,
                checkin[0].request.seq,
                ReplyResult::Released { handle: Handle(7) },
            ),
        );
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::Resolved {
                seq,
                released: Some(Handle(7))
            }]
        );
        assert_eq!(c.unresolved(), 0);
        assert!(sent(&mut c).is_empty(), "nothing more to settle");
    }

    /// A connection that could not be opened carried nothing: no server can have acted,
    /// so giving up is a plain denial, with nothing to settle.
    #[test]
    fn a_request_that_never_left_is_denied_not_unknown() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        let mut now = 0;
        for _ in 0..500 {
            while let Some(t) = c.poll_transmit() {
                c.handle_not_sent(at(now), t.to);
            }
            let Some(next) = c.poll_timeout() else { break };
            now = next.0;
            c.handle_timeout(at(now));
            if c.pending.is_none() {
                break;
            }
        }
        let told = events(&mut c);
        assert!(
            matches!(told[..], [ClientEvent::Denied { seq: s, reason: Denial::NoMajority, .. }] if s == seq),
            "{told:?}"
        );
        assert_eq!(c.unresolved(), 0);
    }

    #[test]
    fn settling_finds_nothing_when_the_request_had_no_effect() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        let now = time_out_everything(&mut c, 0);
        events(&mut c);
        let again = sent(&mut c);
        let all_in_use = ReplyResult::Denied(Denial::AllInUse { used: 5, count: 5 });
        c.handle_reply(
            at(now + 5),
            again[0].to,
            reply(ONE, again[0].request.seq, all_in_use),
        );
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::Resolved {
                seq,
                released: None
            }]
        );
        assert_eq!(c.unresolved(), 0);
    }

    /// Settling waits behind the application's requests, and a settling that reaches
    /// nobody pauses before it tries again (no spinning).
    #[test]
    fn settling_yields_to_the_application_and_pauses_when_nobody_answers() {
        let mut c = client();
        c.checkout(at(0), "cad");
        let now = time_out_everything(&mut c, 0);
        events(&mut c);
        // The settling attempt is in flight; the application asks meanwhile.
        let app = c.checkout(at(now), "cad");
        let now = time_out_until(&mut c, now, |c| {
            c.pending.as_ref().is_some_and(|p| p.resolving.is_none())
        });
        // The settling gave up too: it is kept, and the application's request goes next.
        assert_eq!(c.pending.as_ref().map(|p| p.seq), Some(app));
        assert_eq!(c.unresolved(), 1);
        // When that one is given up as well, the settling waits out its pause.
        let given_up = time_out_until(&mut c, now, |c| c.pending.is_none());
        let resume = c.resolve_at.expect("a pause before settling again");
        assert!(resume.0 > given_up, "{resume:?} after {given_up}");
        assert!(sent(&mut c).is_empty());
        c.handle_timeout(at(resume.0));
        assert_eq!(sent(&mut c).len(), 1, "settling again after the pause");
    }

    #[test]
    fn requests_wait_their_turn() {
        let mut c = client();
        let first = c.checkout(at(0), "cad");
        let second = c.checkout(at(0), "cad");
        assert_eq!(sent(&mut c).len(), 1, "one request in flight");
        c.handle_reply(at(5), Endpoint(0), reply(ONE, first, granted(4, ONE)));
        let next = sent(&mut c);
        assert_eq!(next[0].request.seq, second);
    }

    /// Found by mutation testing: nothing checked the getters an application and the
    /// session rely on, nor that a second feature is not sent under the first one's name.
    #[test]
    fn getters_say_who_served_what_is_next_and_whether_a_request_is_out() {
        let mut c = client();
        assert_eq!((c.active(), c.is_busy()), (None, false));
        let first = c.next_seq();
        let seq = c.checkout(at(0), "cad");
        assert_eq!(seq, first);
        assert!(c.is_busy(), "one request in flight, none queued");
        assert!(c.next_seq() > seq);
        let to = sent(&mut c)[0].to;
        c.handle_reply(at(5), to, reply(ONE, seq, granted(4, ONE)));
        assert_eq!((c.active(), c.is_busy()), (Some(ONE), false));
        // A new process of the same client numbers on from where the old one stopped,
        // never back.
        c.resume_from(RequestSeq(500));
        assert_eq!(c.next_seq(), RequestSeq(500));
        c.resume_from(RequestSeq(7));
        assert_eq!(c.next_seq(), RequestSeq(500));
    }

    #[test]
    fn each_request_names_its_own_feature() {
        let mut c = client();
        let features: Vec<String> = ["cad", "cam", "cam", "cad"]
            .into_iter()
            .map(|feature| {
                let seq = c.checkout(at(0), feature);
                let out = sent(&mut c);
                let Op::Checkout { feature, .. } = &out[0].request.op else {
                    panic!("{out:?}");
                };
                c.handle_reply(at(1), out[0].to, reply(ONE, seq, granted(seq.0 + 10, ONE)));
                feature.to_string()
            })
            .collect();
        assert_eq!(features, ["cad", "cam", "cam", "cad"]);
    }

    #[test]
    fn a_server_named_twice_in_the_slots_keeps_its_first_place() {
        let mut c = client();
        c.set_path_slots(&[TWO, TWO, ONE]);
        let seq = c.checkout(at(0), "cad");
        // #1 is at endpoint 2 and asked first; then #2, at endpoint 0: endpoint 1's
        // second "#2" is ignored, so what is there is not known and comes last.
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
        c.handle_reply(at(5), Endpoint(2), reply(ONE, seq, not_active(None)));
        assert_eq!(sent(&mut c)[0].to, Endpoint(0));
    }

    /// A client that gave a checkout up, and whose settling reached nobody either; and
    /// when it gave up.
    fn checkout_given_up_and_settling_unheard() -> (Client, u64) {
        let mut c = client();
        c.checkout(at(0), "cad");
        let given_up = time_out_everything(&mut c, 0);
        events(&mut c);
        time_out_until(&mut c, given_up, |c| c.pending.is_none());
        (c, given_up)
    }

    /// Found by mutation testing: a request given up is forgotten once it is as old as
    /// the servers' session memory (`session_idle_max`), not a millisecond later: a
    /// settling sent then could meet a server that has forgotten the first answer, and
    /// be granted a second seat.
    #[test]
    fn a_request_given_up_is_forgotten_when_the_servers_may_forget_it() {
        let forgotten = Timing::lan().session_idle_max().as_millis() as u64;
        let paused = || {
            let (c, given_up) = checkout_given_up_and_settling_unheard();
            assert_eq!(c.unresolved(), 1);
            (c, given_up)
        };
        let (mut c, given_up) = paused();
        c.handle_timeout(at(given_up + forgotten - 1));
        assert_eq!(sent(&mut c).len(), 1, "still settled a millisecond before");
        let (mut c, given_up) = paused();
        c.handle_timeout(at(given_up + forgotten));
        assert!(sent(&mut c).is_empty());
        assert_eq!(c.unresolved(), 0);
    }

    /// Found by mutation testing: the client asks to be woken when a settling's pause
    /// ends, and only when nothing else is out (an application's request has its own
    /// deadline; waking for the pause then would be for nothing).
    #[test]
    fn a_paused_settling_wakes_the_client_only_when_nothing_else_is_out() {
        let paused = || {
            let (c, _) = checkout_given_up_and_settling_unheard();
            let resume = c.resolve_at.expect("a pause before settling again");
            (c, resume)
        };
        let (c, resume) = paused();
        assert_eq!(c.poll_timeout(), Some(resume));
        let (mut c, resume) = paused();
        c.checkout(at(resume.0 - 10), "cad");
        let deadline = Time(resume.0 - 10 + c.config.request_timeout.as_millis() as u64);
        assert_eq!(c.poll_timeout(), Some(deadline));
    }

    /// Found by mutation testing: a second request given up is kept beside the first,
    /// both to be settled (only past `UNRESOLVED_MAX` is the oldest left to its lease).
    #[test]
    fn every_request_given_up_is_kept_to_settle() {
        let mut c = client();
        c.checkout(at(0), "cad");
        let now = time_out_everything(&mut c, 0);
        events(&mut c);
        c.checkout(at(now), "cad");
        let now = time_out_until(&mut c, now, |c| {
            c.pending.as_ref().is_some_and(|p| p.resolving.is_none())
        });
        time_out_until(&mut c, now, |c| c.pending.is_none());
        assert_eq!(c.unresolved(), 2);
    }

    /// Found by mutation testing: a borrow whose outcome was unknown and which turns out
    /// to have been granted is given back as a borrow (`Return`), not checked in.
    #[test]
    fn a_settled_borrow_is_returned() {
        let mut c = client();
        c.borrow(at(0), "cad", 2);
        let now = time_out_everything(&mut c, 0);
        events(&mut c);
        let again = sent(&mut c);
        let borrowed = ReplyResult::Granted {
            handle: Handle(9),
            lease_ms: 120_000,
            borrow_end: Some(WallTime(1_800_007_200_000)),
            granted_by: ONE,
        };
        c.handle_reply(
            at(now + 5),
            again[0].to,
            reply(ONE, again[0].request.seq, borrowed),
        );
        let release = sent(&mut c);
        assert_eq!(release[0].request.op, Op::Return { handle: Handle(9) });
    }

    /// Found by mutation testing: "unknown handle" for a checkout means its seat lapsed
    /// before the reply came, and the client asks anew under a new number; for a checkin
    /// it means the seat is gone, and that is the answer.
    #[test]
    fn unknown_handle_is_asked_anew_for_a_checkout_and_final_for_a_checkin() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        let first = sent(&mut c);
        c.handle_reply(
            at(5),
            first[0].to,
            reply(ONE, seq, ReplyResult::Denied(Denial::UnknownHandle)),
        );
        assert!(
            events(&mut c).is_empty(),
            "not an answer for the application"
        );
        let again = sent(&mut c);
        assert!(
            matches!(again[0].request.op, Op::Checkout { .. }),
            "{again:?}"
        );
        assert!(again[0].request.seq > first[0].request.seq, "a new number");
        c.handle_reply(
            at(10),
            again[0].to,
            reply(ONE, again[0].request.seq, granted(4, ONE)),
        );
        events(&mut c);
        let checkin = c.checkin(at(20), Handle(4));
        let out = sent(&mut c);
        c.handle_reply(
            at(25),
            out[0].to,
            reply(
                ONE,
                out[0].request.seq,
                ReplyResult::Denied(Denial::UnknownHandle),
            ),
        );
        assert!(
            matches!(events(&mut c)[..], [ClientEvent::Denied { seq: s, reason: Denial::UnknownHandle, .. }] if s == checkin)
        );
        assert!(c.seats().is_empty());
        assert!(sent(&mut c).is_empty(), "nothing asked again");
    }

    /// Found by mutation testing: a refused heartbeat is tried again after the retry
    /// pause, not at once.
    #[test]
    fn a_refused_heartbeat_waits_the_retry_pause() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        let beat_at = c.poll_timeout().unwrap().0;
        c.handle_timeout(at(beat_at));
        let beat = sent(&mut c);
        c.handle_reply(
            at(beat_at + 5),
            beat[0].to,
            reply(ONE, beat[0].request.seq, not_active(None)),
        );
        let pause = c.config.retry_pause.as_millis() as u64;
        assert_eq!(c.poll_timeout(), Some(Time(beat_at + 5 + pause)));
    }

    /// Found by mutation testing: a seat lost on the client is given back beside a
    /// request still to settle, not instead of it.
    #[test]
    fn a_lost_seat_is_given_back_beside_a_request_to_settle() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        c.checkout(at(20), "cad");
        let now = time_out_everything(&mut c, 20);
        events(&mut c);
        // The settling reaches nobody either and pauses: it waits in the queue.
        time_out_until(&mut c, now, |c| c.pending.is_none());
        assert_eq!(c.unresolved(), 1);
        // The seat's lease (counted from the send at 0) runs out.
        c.handle_timeout(at(120_000));
        assert!(c.seats().is_empty());
        assert_eq!(
            c.unresolved(),
            2,
            "the checkout and the lost seat's checkin"
        );
    }

    /// A two-hour borrow asked at 0 and granted at 10 ms with `end` on the granting
    /// server's wall clock: held until two hours after the request, then ended.
    fn a_two_hour_borrow_is_held_two_hours(end: WallTime) {
        let mut c = client();
        let seq = c.borrow(at(0), "cad", 2);
        let out = sent(&mut c);
        let borrowed = ReplyResult::Granted {
            handle: Handle(9),
            lease_ms: 120_000,
            borrow_end: Some(end),
            granted_by: ONE,
        };
        c.handle_reply(at(10), out[0].to, reply(ONE, seq, borrowed));
        events(&mut c);
        assert_eq!(c.seats()[&Handle(9)].borrow_until, Some(Time(7_200_000)));
        assert_eq!(c.poll_timeout(), Some(Time(7_200_000)));
        c.handle_timeout(at(3_600_000));
        assert!(c.seats().contains_key(&Handle(9)));
        assert!(events(&mut c).is_empty());
        c.handle_timeout(at(7_200_000));
        assert!(c.seats().is_empty());
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::BorrowEnded { handle: Handle(9) }]
        );
    }

    /// Found by mutation testing: a borrowed seat is held until its end, then ended.
    #[test]
    fn a_borrow_is_held_until_its_end() {
        a_two_hour_borrow_is_held_two_hours(WallTime(1_800_000_000_000 + 7_200_000));
    }

    /// A borrow lasts its hours by the client's own clock: granted by a server whose wall
    /// clock is an hour and a half behind the client's (within a three-hour skew bound),
    /// its end is already past by the client's wall clock, yet it is held for the two
    /// hours asked, from the request's first send (found by the seed sweep's clients, in
    /// a triad configured for clocks hours apart).
    #[test]
    fn a_borrow_lasts_its_hours_whatever_the_servers_clock() {
        a_two_hour_borrow_is_held_two_hours(WallTime(1_800_000_000_000 + 7_200_000 - 5_400_000));
    }

    /// Found by mutation testing: a pass over the path counts only the servers not passed
    /// over, so once the two others have refused the client pauses, rather than asking
    /// one of them again at once.
    #[test]
    fn a_pass_without_the_server_passed_over_ends_in_a_pause() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        // #1, at endpoint 0, does not answer: it is passed over for a while.
        let timed_out = c.poll_timeout().unwrap().0;
        c.handle_timeout(at(timed_out));
        let no_majority = || ReplyResult::Denied(Denial::NoMajority);
        assert_eq!(sent(&mut c)[0].to, Endpoint(1));
        c.handle_reply(
            at(timed_out + 5),
            Endpoint(1),
            reply(TWO, seq, no_majority()),
        );
        assert_eq!(sent(&mut c)[0].to, Endpoint(2));
        c.handle_reply(
            at(timed_out + 10),
            Endpoint(2),
            reply(THREE, seq, no_majority()),
        );
        assert!(sent(&mut c).is_empty(), "a pause after the pass");
        let pause = c.config.retry_pause;
        assert_eq!(c.poll_timeout(), Some(Time(timed_out + 10) + pause));
    }

    /// Found by mutation testing: the latest `HEARTBEATS_REMEMBERED_MAX` heartbeats are
    /// remembered, so a late ack of any of them renews the lease; an older one's ack is
    /// ignored.
    #[test]
    fn a_late_ack_renews_the_lease_if_its_heartbeat_is_among_the_latest_remembered() {
        let mut c = client();
        let seq = c.checkout(at(0), "cad");
        sent(&mut c);
        c.handle_reply(at(10), Endpoint(0), reply(ONE, seq, granted(4, ONE)));
        // No heartbeat is answered: each is sent again a request timeout later.
        let mut beats = Vec::new();
        for _ in 0..=HEARTBEATS_REMEMBERED_MAX {
            let due = c.poll_timeout().unwrap();
            c.handle_timeout(at(due.0));
            beats.push((due, sent(&mut c).remove(0)));
        }
        let ack = |c: &mut Client, (_, beat): &(Time, Transmit)| {
            let result = ReplyResult::HeartbeatAck {
                lease_ms: 120_000,
                held: vec![Handle(4)],
                unknown: vec![],
                removed: vec![],
            };
            c.handle_reply(at(60_000), beat.to, reply(ONE, beat.request.seq, result));
        };
        let lease_until = |c: &Client| c.seats()[&Handle(4)].lease_until;
        ack(&mut c, &beats[0]);
        assert_eq!(lease_until(&c), Some(Time(120_000)), "forgotten: ignored");
        ack(&mut c, &beats[1]);
        assert_eq!(lease_until(&c), Some(beats[1].0 + Duration::from_secs(120)));
    }

    /// Found by mutation testing: seats lost together are each given back, not only
    /// the last.
    #[test]
    fn seats_lost_together_are_each_given_back() {
        let mut c = client();
        for (now, handle) in [(0, 4), (10, 5)] {
            let seq = c.checkout(at(now), "cad");
            let to = sent(&mut c)[0].to;
            c.handle_reply(at(now + 5), to, reply(ONE, seq, granted(handle, ONE)));
        }
        // Frozen past both leases: the next thing it does is notice.
        c.handle_timeout(at(130_000));
        let mut given_back = Vec::new();
        for _ in 0..3 {
            let checkin = sent(&mut c).into_iter().find_map(|t| match t.request.op {
                Op::Checkin { handle } => Some((t.to, t.request.seq, handle)),
                _ => None,
            });
            let Some((to, seq, handle)) = checkin else {
                break;
            };
            given_back.push(handle);
            let released = ReplyResult::Released { handle };
            c.handle_reply(at(130_005), to, reply(ONE, seq, released));
        }
        assert_eq!(given_back, [Handle(4), Handle(5)]);
        assert_eq!(c.unresolved(), 0);
    }

    fn queued(position: u32) -> ReplyResult {
        ReplyResult::Queued {
            position,
            used: 5,
            count: 5,
            lease_ms: 120_000,
        }
    }

    /// The single request sent: its endpoint, number and op.
    fn one_sent(c: &mut Client) -> (Endpoint, RequestSeq, Op) {
        match sent(c).as_slice() {
            [t] => (t.to, t.request.seq, t.request.op.clone()),
            other => panic!("expected one request, got {other:?}"),
        }
    }

    #[test]
    fn a_wait_keeps_its_place_by_asking_again_and_takes_its_seat_when_told() {
        let mut c = client();
        let seq = c.checkout_wait(at(0), "cad", Duration::from_secs(600));
        let (to, wire, op) = one_sent(&mut c);
        assert_eq!(wire, seq);
        assert!(matches!(op, Op::Wait { .. }), "{op:?}");
        c.handle_reply(at(5), to, reply(ONE, seq, queued(2)));
        assert_eq!(
            events(&mut c),
            [ClientEvent::Queued {
                seq,
                position: 2,
                used: 5,
                count: 5
            }]
        );
        assert_eq!(c.waiting(), Some((seq, 2)));
        assert!(c.is_busy());
        // Asked again, with the same number, at least once per failover.
        let timing = Timing::lan();
        let every = (timing.election_timeout + timing.failover_delay).as_millis() as u64;
        let next = c.poll_timeout().expect("a deadline");
        assert_eq!(next, Time(5 + every));
        c.handle_timeout(at(5 + every));
        let (_, again, op) = one_sent(&mut c);
        assert_eq!(again, seq);
        assert!(matches!(op, Op::Wait { .. }));
        c.handle_reply(at(10 + every), to, reply(ONE, seq, queued(1)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Queued { position: 1, .. }]
        ));
        // The active server tells it of its seat unasked.
        c.handle_reply(at(20 + every), to, reply(ONE, seq, granted(42, ONE)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Granted { seq: s, handle: Handle(42), .. }] if s == seq
        ));
        assert_eq!(c.waiting(), None);
        // Its lease counts from the latest ask, before the server granted it.
        let lease = c.seats()[&Handle(42)].lease_until;
        assert_eq!(lease, Some(Time(5 + every + 120_000)));
    }

    #[test]
    fn a_wait_that_is_over_leaves_the_queue_and_is_denied_all_in_use() {
        let mut c = client();
        let seq = c.checkout_wait(at(0), "cad", Duration::from_secs(10));
        let (to, _, _) = one_sent(&mut c);
        c.handle_reply(at(5), to, reply(ONE, seq, queued(1)));
        events(&mut c);
        c.handle_timeout(at(10_000));
        let (_, wire, op) = one_sent(&mut c);
        assert_eq!((wire, op), (seq, Op::StopWaiting));
        c.handle_reply(at(10_005), to, reply(ONE, seq, ReplyResult::LeftQueue));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Denied {
                seq: s,
                reason: Denial::AllInUse { used: 5, count: 5 },
                ..
            }] if s == seq
        ));
        assert!(!c.is_busy());
    }

    #[test]
    fn other_requests_go_on_while_one_waits() {
        let mut c = client();
        let waiting = c.checkout_wait(at(0), "cad", Duration::from_secs(600));
        let (to, _, _) = one_sent(&mut c);
        c.handle_reply(at(5), to, reply(ONE, waiting, queued(1)));
        let checkout = c.checkout(at(6), "viewer");
        let (_, wire, op) = one_sent(&mut c);
        assert_eq!(wire, checkout);
        assert!(matches!(op, Op::Checkout { .. }));
        // A second wait waits behind the first.
        let second = c.checkout_wait(at(7), "viewer", Duration::from_secs(600));
        c.handle_reply(at(8), to, reply(ONE, checkout, granted(50, ONE)));
        assert!(sent(&mut c).is_empty(), "the second wait is held");
        c.handle_reply(at(9), to, reply(ONE, waiting, granted(51, ONE)));
        let (_, wire, op) = one_sent(&mut c);
        assert_eq!(wire, second);
        assert!(matches!(op, Op::Wait { .. }));
    }

    #[test]
    fn a_place_the_servers_dropped_is_taken_again_under_a_new_number() {
        let mut c = client();
        let seq = c.checkout_wait(at(0), "cad", Duration::from_secs(600));
        let (to, _, _) = one_sent(&mut c);
        c.handle_reply(at(5), to, reply(ONE, seq, queued(3)));
        events(&mut c);
        // Cut off for a lease, its place was given up.
        c.handle_reply(at(6), to, reply(ONE, seq, ReplyResult::LeftQueue));
        let (_, wire, op) = one_sent(&mut c);
        assert_ne!(wire, seq);
        assert!(matches!(op, Op::Wait { .. }));
        assert!(events(&mut c).is_empty());
        c.handle_reply(at(7), to, reply(ONE, wire, granted(60, ONE)));
        assert!(matches!(
            events(&mut c)[..],
            [ClientEvent::Granted { seq: s, handle: Handle(60), .. }] if s == seq
        ));
    }

    #[test]
    fn a_wait_that_cannot_leave_is_settled_later() {
        let mut c = client();
        let seq = c.checkout_wait(at(0), "cad", Duration::from_secs(5));
        let (to, _, _) = one_sent(&mut c);
        c.handle_reply(at(5), to, reply(ONE, seq, queued(1)));
        events(&mut c);
        // Nobody answers from now on.
        let end = time_out_until(&mut c, 5_000, |c| c.waiting().is_none());
        assert_eq!(c.waiting(), None, "at {end}");
        let evs = events(&mut c);
        assert!(
            evs.iter()
                .any(|e| matches!(e, ClientEvent::OutcomeUnknown { seq: s, .. } if *s == seq)),
            "{evs:?}"
        );
        assert_eq!(c.unresolved(), 1);
    }

    #[test]
    fn a_wait_follows_the_active_server_through_a_failover() {
        let mut c = client();
        c.set_path_slots(&[ONE, TWO, THREE]);
        let seq = c.checkout_wait(at(0), "cad", Duration::from_secs(600));
        let (to, _, _) = one_sent(&mut c);
        assert_eq!(to, Endpoint(0));
        c.handle_reply(at(5), to, reply(ONE, seq, queued(1)));
        events(&mut c);
        let mut now = 5;
        let mut asked_two = false;
        for _ in 0..200 {
            now = c.poll_timeout().expect("a deadline").0.max(now);
            c.handle_timeout(at(now));
            for t in sent(&mut c) {
                assert_eq!(t.request.seq, seq, "{t:?}");
                match t.to {
                    // #1 is gone.
                    Endpoint(0) => c.handle_not_sent(at(now), Endpoint(0)),
                    // #2 took over once the failover is done.
                    Endpoint(1) if now > 3_000 => {
                        asked_two = true;
                        c.handle_reply(at(now), Endpoint(1), reply(TWO, seq, queued(1)));
                    }
                    // Until then #2 campaigns, and #3 still names #1.
                    Endpoint(1) => c.handle_reply(
                        at(now),
                        Endpoint(1),
                        reply(TWO, seq, ReplyResult::Denied(Denial::NoMajority)),
                    ),
                    e => c.handle_reply(at(now), e, reply(THREE, seq, not_active(Some(ONE)))),
                }
            }
            if asked_two {
                break;
            }
        }
        assert!(asked_two, "stuck at {now}: {c:?}");
        assert_eq!(c.waiting(), Some((seq, 1)));
    }
}
