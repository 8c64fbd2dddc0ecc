//! A pure in-memory world for the server triad and its clients: no turmoil, no tokio.
//!
//! Three [`Server`]s and any number of [`Client`]s exchange messages through a seeded
//! network that can delay, drop, duplicate and reorder messages and cut links one way or
//! both. A server can crash, losing the writes it had not synced (the harness syncs a
//! server's writes before anything it sends after them, as the shell contract says, or
//! a few milliseconds later), and restart from what is durable. Each server's clocks can
//! be offset and drift. Time is simulated: one seed gives one run.
//!
//! The [`Checker`] watches every step for the invariants of DESIGN §6.3.

#![allow(dead_code)]

pub mod checker;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hal_core::ServerId;
use hal_core::catalog::{Catalog, FeatureRules};
use hal_core::client::{Client, ClientConfig, ClientEvent, Endpoint};
use hal_core::protocol::{
    ClientId, ClientRequest, Handle, LogIndex, Op, PeerMessage, ReplyResult, RequestSeq,
    ServerReply,
};
use hal_core::server::{Config, Durable, Output, Persist, Server, ServerEvent};
use hal_core::time::{Now, Time, WallTime};
use hal_core::timing::Timing;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use checker::Checker;

/// The wall clock at simulated time 0: 2027-01-15T08:00:00Z.
pub const EPOCH_WALL_MS: u64 = 1_800_000_000_000;
/// How long a server's writes may stay unsynced when nothing it sends forces a sync.
const GROUP_COMMIT_MS: u64 = 5;

/// Something that sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Server(ServerId),
    Client(usize),
}

#[derive(Debug, Clone)]
enum Payload {
    Peer(PeerMessage),
    Request(ClientRequest),
    Reply(ServerReply),
}

#[derive(Debug, Clone)]
struct Message {
    from: Node,
    to: Node,
    payload: Payload,
}

/// How the network treats messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    pub drop_rate: f64,
    pub duplicate_rate: f64,
}

impl NetConfig {
    /// A LAN: 1–5 ms, nothing lost.
    pub fn lan() -> NetConfig {
        NetConfig {
            delay_ms_min: 1,
            delay_ms_max: 5,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
        }
    }
}

/// A feature of the world's license.
#[derive(Debug, Clone)]
pub struct FeatureSpec {
    pub name: &'static str,
    pub count: u32,
    pub borrow_hours_max: Option<u32>,
    /// The license's END date, if any.
    pub end: Option<time::Date>,
    /// False when the servers' HostIDs do not match the license's lock.
    pub hostid_ok: bool,
}

impl FeatureSpec {
    /// `count` seats, borrowable for up to `borrow_hours_max`, no END, no HostID lock.
    pub fn new(name: &'static str, count: u32, borrow_hours_max: Option<u32>) -> FeatureSpec {
        FeatureSpec {
            name,
            count,
            borrow_hours_max,
            end: None,
            hostid_ok: true,
        }
    }
}

/// How to build a world.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    pub seed: u64,
    pub timing: Timing,
    pub net: NetConfig,
    pub features: Vec<FeatureSpec>,
    pub clients: usize,
    pub log_entries_max: usize,
    /// The servers' `reports_durable`: the harness then reports each sync, and sends a
    /// leader's appends and the replies before its own writes are synced (as hal-net does).
    pub reports_durable: bool,
}

impl WorldConfig {
    pub fn lan(seed: u64) -> WorldConfig {
        WorldConfig {
            seed,
            timing: Timing::lan(),
            net: NetConfig::lan(),
            features: vec![FeatureSpec::new("cad", 3, Some(168))],
            clients: 4,
            log_entries_max: 10_000,
            reports_durable: false,
        }
    }
}

/// One server's place in the world: the server if it is up, its disk, its clocks.
#[derive(Debug)]
pub struct ServerSlot {
    pub server: Option<Server>,
    pub durable: Durable,
    unsynced: Vec<Persist>,
    unsynced_since: Option<u64>,
    /// The last log index the unsynced writes hold, reported once they are synced.
    unsynced_last: Option<LogIndex>,
    /// Added to true time for the wall clock, in ms.
    pub wall_offset_ms: i64,
    /// Clock rate error in parts per million (both clocks).
    pub drift_ppm: i64,
}

/// One client's place in the world.
#[derive(Debug)]
pub struct ClientSlot {
    pub client: Client,
    /// Path entry i is this server.
    pub path: Vec<ServerId>,
    pub events: Vec<(u64, ClientEvent)>,
    /// Seats the application has checked in (it no longer uses them).
    pub released: BTreeSet<Handle>,
    pub frozen: bool,
    /// When each request was made by the application.
    pub asked: BTreeMap<RequestSeq, u64>,
}

/// The simulated world.
#[derive(Debug)]
pub struct World {
    /// True time, in ms since the start.
    pub t: u64,
    pub config: WorldConfig,
    rng: ChaCha8Rng,
    queue: BTreeMap<(u64, u64), Message>,
    next_msg: u64,
    /// Directed links that are cut.
    cut: BTreeSet<(Node, Node)>,
    pub servers: Vec<ServerSlot>,
    pub clients: Vec<ClientSlot>,
    catalog: Catalog,
    pub checker: Checker,
    /// A line per notable step, for reading a failure and for comparing two runs.
    pub trace: Vec<String>,
    /// Peer messages the servers refused as implausible.
    pub refused: usize,
}

fn server_index(id: ServerId) -> usize {
    id.index()
}

impl World {
    pub fn new(config: WorldConfig) -> World {
        let catalog = Catalog::from_rules(config.features.iter().map(|f| {
            let rules = FeatureRules {
                count: f.count,
                borrow_hours_max: f.borrow_hours_max,
                start: None,
                end: f.end,
                hostid_ok: f.hostid_ok,
            };
            (f.name.to_string(), rules)
        }));
        let mut world = World {
            t: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            queue: BTreeMap::new(),
            next_msg: 0,
            cut: BTreeSet::new(),
            servers: Vec::new(),
            clients: Vec::new(),
            checker: Checker::new(&config),
            catalog,
            trace: Vec::new(),
            refused: 0,
            config,
        };
        for id in ServerId::ALL {
            let slot = ServerSlot {
                server: None,
                durable: Durable::default(),
                unsynced: Vec::new(),
                unsynced_since: None,
                unsynced_last: None,
                wall_offset_ms: 0,
                drift_ppm: 0,
            };
            world.servers.push(slot);
            world.start_server(id);
        }
        for i in 0..world.config.clients {
            world.add_client(i);
        }
        world
    }

    fn add_client(&mut self, i: usize) {
        let id = ClientId(self.rng.random());
        let now = self.client_now();
        let config = ClientConfig::new(self.config.timing);
        let client = Client::new(id, &format!("user{i}"), &format!("host{i}"), 3, config, now);
        self.clients.push(ClientSlot {
            client,
            path: ServerId::ALL.to_vec(),
            events: Vec::new(),
            released: BTreeSet::new(),
            frozen: false,
            asked: BTreeMap::new(),
        });
    }

    // ----- clocks -----

    fn server_now(&self, id: ServerId) -> Now {
        let slot = &self.servers[server_index(id)];
        let scaled = (i128::from(self.t) * (1_000_000 + i128::from(slot.drift_ppm))) / 1_000_000;
        let mono = u64::try_from(scaled).unwrap_or(0);
        let wall = i128::from(EPOCH_WALL_MS) + scaled + i128::from(slot.wall_offset_ms);
        Now {
            mono: Time(mono),
            wall: WallTime(u64::try_from(wall).unwrap_or(0)),
        }
    }

    /// The true time at which server `id`'s monotonic clock reads `mono`.
    fn true_time_of(&self, id: ServerId, mono: Time) -> u64 {
        let drift = 1_000_000 + i128::from(self.servers[server_index(id)].drift_ppm);
        let t = (i128::from(mono.0) * 1_000_000 + drift - 1) / drift;
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    pub fn client_now(&self) -> Now {
        Now {
            mono: Time(self.t),
            wall: WallTime(EPOCH_WALL_MS + self.t),
        }
    }

    pub fn wall_now(&self) -> WallTime {
        WallTime(EPOCH_WALL_MS + self.t)
    }

    // ----- faults -----

    /// Cuts the link from `a` to `b` (one way).
    pub fn cut_one_way(&mut self, a: Node, b: Node) {
        self.note(format!("cut {a:?} -> {b:?}"));
        self.cut.insert((a, b));
    }

    pub fn cut(&mut self, a: ServerId, b: ServerId) {
        self.cut_one_way(Node::Server(a), Node::Server(b));
        self.cut_one_way(Node::Server(b), Node::Server(a));
    }

    pub fn repair(&mut self, a: ServerId, b: ServerId) {
        self.note(format!("repair {a} <-> {b}"));
        self.cut.remove(&(Node::Server(a), Node::Server(b)));
        self.cut.remove(&(Node::Server(b), Node::Server(a)));
    }

    /// Cuts `id` off from both peers.
    pub fn isolate(&mut self, id: ServerId) {
        for other in ServerId::ALL.into_iter().filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    pub fn heal_all(&mut self) {
        self.note("heal all".to_string());
        self.cut.clear();
    }

    pub fn is_cut(&self, a: Node, b: Node) -> bool {
        self.cut.contains(&(a, b))
    }

    /// Crashes `id`: it stops, and writes it had not synced are lost.
    pub fn crash(&mut self, id: ServerId) {
        self.note(format!("crash {id}"));
        let slot = &mut self.servers[server_index(id)];
        slot.server = None;
        slot.unsynced.clear();
        slot.unsynced_since = None;
        slot.unsynced_last = None;
        self.checker.server_down(id, self.t);
    }

    /// Starts `id` from its durable state.
    pub fn start_server(&mut self, id: ServerId) {
        if self.servers[server_index(id)].server.is_some() {
            return;
        }
        self.note(format!("start {id}"));
        let mut config = Config::triad(id, self.config.timing);
        config.log_entries_max = self.config.log_entries_max;
        config.reports_durable = self.config.reports_durable;
        let now = self.server_now(id);
        let durable = self.servers[server_index(id)].durable.clone();
        let server = Server::new(config, self.catalog.clone(), durable, now);
        self.servers[server_index(id)].server = Some(server);
        self.checker.server_up(id, self.t);
        self.drain_server(id);
    }

    /// Moves `id`'s wall clock by `ms` (positive: ahead).
    pub fn move_clock(&mut self, id: ServerId, ms: i64) {
        self.note(format!("clock {id} {ms:+}ms"));
        self.servers[server_index(id)].wall_offset_ms += ms;
    }

    pub fn set_net(&mut self, net: NetConfig) {
        self.config.net = net;
    }

    pub fn freeze_client(&mut self, i: usize, frozen: bool) {
        self.note(format!("client {i} frozen={frozen}"));
        self.clients[i].frozen = frozen;
    }

    // ----- client actions -----

    pub fn checkout(&mut self, i: usize, feature: &str) -> RequestSeq {
        let now = self.client_now();
        let seq = self.clients[i].client.checkout(now, feature);
        self.asked(i, seq);
        seq
    }

    pub fn borrow(&mut self, i: usize, feature: &str, hours: u32) -> RequestSeq {
        let now = self.client_now();
        let seq = self.clients[i].client.borrow(now, feature, hours);
        self.asked(i, seq);
        seq
    }

    pub fn checkin(&mut self, i: usize, handle: Handle) -> RequestSeq {
        let now = self.client_now();
        self.clients[i].released.insert(handle);
        let seq = self.clients[i].client.checkin(now, handle);
        self.asked(i, seq);
        seq
    }

    pub fn return_borrow(&mut self, i: usize, handle: Handle) -> RequestSeq {
        let now = self.client_now();
        self.clients[i].released.insert(handle);
        let seq = self.clients[i].client.return_borrow(now, handle);
        self.asked(i, seq);
        seq
    }

    fn asked(&mut self, i: usize, seq: RequestSeq) {
        self.clients[i].asked.insert(seq, self.t);
        self.drain_client(i);
    }

    /// The final answer to client `i`'s request `seq`, if it has come.
    pub fn answer(&self, i: usize, seq: RequestSeq) -> Option<&ClientEvent> {
        self.clients[i]
            .events
            .iter()
            .map(|(_, e)| e)
            .find(|e| match e {
                ClientEvent::Granted { seq: s, .. }
                | ClientEvent::Denied { seq: s, .. }
                | ClientEvent::OutcomeUnknown { seq: s, .. }
                | ClientEvent::Released { seq: s, .. } => *s == seq,
                _ => false,
            })
    }

    /// The handle and granting server of a granted request.
    pub fn granted(&self, i: usize, seq: RequestSeq) -> Option<(Handle, ServerId)> {
        match self.answer(i, seq) {
            Some(ClientEvent::Granted { handle, server, .. }) => Some((*handle, *server)),
            _ => None,
        }
    }

    /// Asks server `id` directly (as an unknown client) and returns its immediate answer,
    /// if it gives one at once (a leader answers a proposal only once it commits).
    pub fn probe(&mut self, id: ServerId, op: Op) -> Option<ReplyResult> {
        let now = self.server_now(id);
        let server = self.servers[server_index(id)].server.as_mut()?;
        let probe = ClientId(u64::MAX);
        server.handle_client(
            now,
            ClientRequest {
                client: probe,
                seq: RequestSeq(1),
                op,
            },
        );
        let mut answer = None;
        let mut others = Vec::new();
        while let Some(output) = server.poll_output() {
            match output {
                Output::Reply(reply) if reply.client == probe => answer = Some(reply.result),
                other => others.push(other),
            }
        }
        assert!(
            others.iter().all(|o| !matches!(o, Output::Persist(_))),
            "a probe changed no durable state"
        );
        answer
    }

    /// Hands server `message.to` a peer message as if `message.from` had sent it (a lying
    /// or broken peer), at once, bypassing the network and the checker's record of
    /// contact between servers.
    pub fn inject_peer(&mut self, message: PeerMessage) {
        let id = message.to;
        let now = self.server_now(id);
        let Some(server) = self.servers[server_index(id)].server.as_mut() else {
            return;
        };
        self.trace.push(format!("{:>8} inject {message:?}", self.t));
        server.handle_peer(now, message);
        self.drain_server(id);
    }

    /// Hands server `id` a request from a client outside the world (its replies go
    /// nowhere).
    pub fn inject_request(&mut self, id: ServerId, request: ClientRequest) {
        let now = self.server_now(id);
        let Some(server) = self.servers[server_index(id)].server.as_mut() else {
            return;
        };
        server.handle_client(now, request);
        self.drain_server(id);
    }

    /// A checkout of `feature` as a probe would send it.
    pub fn checkout_op(feature: &str) -> Op {
        Op::Checkout {
            feature: feature.into(),
            user: "probe".into(),
            host: "probe".into(),
        }
    }

    /// A borrow of `feature` for `hours` as a probe would send it.
    pub fn borrow_op(feature: &str, hours: u32) -> Op {
        Op::Borrow {
            feature: feature.into(),
            user: "probe".into(),
            host: "probe".into(),
            hours,
        }
    }

    /// Sets client `i`'s license path.
    pub fn set_path(&mut self, i: usize, path: Vec<ServerId>) {
        let config = ClientConfig::new(self.config.timing);
        let id = self.clients[i].client.id();
        let now = self.client_now();
        let len = u8::try_from(path.len()).unwrap_or(3);
        self.clients[i].client = Client::new(
            id,
            &format!("user{i}"),
            &format!("host{i}"),
            len,
            config,
            now,
        );
        self.clients[i].path = path;
    }

    /// Client `i`'s events of the kinds that are not answers (lost, borrow ended, failover).
    pub fn notices(&self, i: usize) -> Vec<(u64, ClientEvent)> {
        self.clients[i]
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    ClientEvent::Lost { .. }
                        | ClientEvent::BorrowEnded { .. }
                        | ClientEvent::FailedOver { .. }
                )
            })
            .cloned()
            .collect()
    }

    /// Role changes seen so far, as (time, server, active?).
    pub fn role_changes(&self) -> Vec<String> {
        self.trace
            .iter()
            .filter(|l| l.contains("RoleChanged"))
            .cloned()
            .collect()
    }

    // ----- queries -----

    pub fn server(&self, id: ServerId) -> Option<&Server> {
        self.servers[server_index(id)].server.as_ref()
    }

    /// The servers that consider themselves leader.
    pub fn leaders(&self) -> Vec<ServerId> {
        ServerId::ALL
            .into_iter()
            .filter(|id| self.server(*id).is_some_and(Server::is_leader))
            .collect()
    }

    /// The one leader, if exactly one server leads.
    pub fn active(&self) -> Option<ServerId> {
        match self.leaders().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Whether #1 is down or has no healthy connection (both ways) to a live peer.
    pub fn primary_impaired(&self) -> bool {
        let primary = ServerId::PRIMARY;
        if self.server(primary).is_none() {
            return true;
        }
        let healthy = |p: ServerId| {
            self.server(p).is_some()
                && !self.is_cut(Node::Server(primary), Node::Server(p))
                && !self.is_cut(Node::Server(p), Node::Server(primary))
        };
        !(healthy(ServerId::SECONDARY) || healthy(ServerId::TIEBREAKER))
    }

    /// Panics with the violations and the trace's tail if any invariant broke.
    pub fn assert_no_violations(&mut self) {
        self.check(|checker, world| checker.check_unanswered(world));
        let violations = self.checker.violations.clone();
        if !violations.is_empty() {
            let tail: Vec<&String> = self
                .trace
                .iter()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let test = std::thread::current().name().unwrap_or("").to_string();
            panic!(
                "seed {}: invariants violated:\n{}\n--- last trace lines ---\n{}\n\
                 replay: cargo test -p hal-core --test {} {test} -- --exact \
                 (a property test replays its saved failing schedules first)",
                self.config.seed,
                violations.join("\n"),
                tail.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                env!("CARGO_CRATE_NAME"),
            );
        }
    }

    /// Runs `f` with the checker and a view of the world.
    fn check(&mut self, f: impl FnOnce(&mut Checker, &World)) {
        let mut checker = std::mem::take(&mut self.checker);
        f(&mut checker, self);
        self.checker = checker;
    }

    fn note(&mut self, line: String) {
        self.trace.push(format!("{:>8} {line}", self.t));
    }

    // ----- running -----

    /// Runs until true time `until`.
    pub fn run_until(&mut self, until: u64) {
        let mut steps_at_t = 0u32;
        loop {
            let next_message = self.queue.keys().next().map(|(t, _)| *t);
            let next_timer = self.next_timer();
            let next = match (next_message, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(u64::MAX),
            };
            if next > until {
                self.t = until;
                self.check(|checker, world| checker.check_holdings(world));
                return;
            }
            steps_at_t = if next > self.t { 0 } else { steps_at_t + 1 };
            assert!(
                steps_at_t < 100_000,
                "seed {}: no progress at t={}ms (a timer that never clears?)",
                self.config.seed,
                self.t
            );
            self.t = self.t.max(next);
            if next_message == Some(next) {
                let key = *self.queue.keys().next().expect("a message is queued");
                let message = self.queue.remove(&key).expect("the key was just read");
                self.deliver(message);
            } else {
                self.fire_timers();
            }
            self.check(|checker, world| checker.check_holdings(world));
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.t + u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.run_until(until);
    }

    fn next_timer(&self) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut consider = |t: u64| next = Some(next.map_or(t, |n: u64| n.min(t)));
        for id in ServerId::ALL {
            let slot = &self.servers[server_index(id)];
            if let Some(server) = &slot.server {
                if let Some(deadline) = server.poll_timeout() {
                    consider(self.true_time_of(id, deadline).max(self.t));
                }
                if let Some(since) = slot.unsynced_since {
                    consider(since + GROUP_COMMIT_MS);
                }
            }
        }
        for slot in self.clients.iter().filter(|c| !c.frozen) {
            if let Some(deadline) = slot.client.poll_timeout() {
                consider(deadline.0.max(self.t));
            }
        }
        next
    }

    fn fire_timers(&mut self) {
        for id in ServerId::ALL {
            let since = self.servers[server_index(id)].unsynced_since;
            if since.is_some_and(|s| s + GROUP_COMMIT_MS <= self.t) {
                self.sync(id);
                self.drain_server(id);
            }
            let slot = &self.servers[server_index(id)];
            let due = slot
                .server
                .as_ref()
                .and_then(Server::poll_timeout)
                .is_some_and(|d| self.true_time_of(id, d) <= self.t);
            if due {
                let now = self.server_now(id);
                if let Some(server) = self.servers[server_index(id)].server.as_mut() {
                    server.handle_timeout(now);
                }
                self.drain_server(id);
            }
        }
        for i in 0..self.clients.len() {
            let slot = &self.clients[i];
            if !slot.frozen && slot.client.poll_timeout().is_some_and(|d| d.0 <= self.t) {
                let now = self.client_now();
                self.clients[i].client.handle_timeout(now);
                self.drain_client(i);
            }
        }
    }

    fn send(&mut self, from: Node, to: Node, payload: Payload) {
        if self.cut.contains(&(from, to)) {
            return;
        }
        let net = self.config.net;
        if net.drop_rate > 0.0 && self.rng.random_bool(net.drop_rate) {
            self.checker.dropped(from, to, self.t);
            return;
        }
        let copies = if net.duplicate_rate > 0.0 && self.rng.random_bool(net.duplicate_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self
                .rng
                .random_range(net.delay_ms_min..=net.delay_ms_max.max(net.delay_ms_min));
            let key = (self.t + delay, self.next_msg);
            self.next_msg += 1;
            self.queue.insert(
                key,
                Message {
                    from,
                    to,
                    payload: payload.clone(),
                },
            );
        }
    }

    fn deliver(&mut self, message: Message) {
        let Message { from, to, payload } = message;
        match (to, payload) {
            (Node::Server(id), Payload::Peer(peer)) => {
                let now = self.server_now(id);
                let Some(server) = self.servers[server_index(id)].server.as_mut() else {
                    return;
                };
                if let Node::Server(sender) = from {
                    self.checker.peer_message(id, sender, self.t);
                }
                server.handle_peer(now, peer);
                self.drain_server(id);
            }
            (Node::Server(id), Payload::Request(request)) => {
                let now = self.server_now(id);
                let Some(server) = self.servers[server_index(id)].server.as_mut() else {
                    return;
                };
                server.handle_client(now, request);
                self.drain_server(id);
            }
            (Node::Client(i), Payload::Reply(reply)) => {
                let Node::Server(server) = from else {
                    return;
                };
                let slot = &mut self.clients[i];
                if slot.frozen {
                    return;
                }
                let Some(endpoint) = slot.path.iter().position(|s| *s == server) else {
                    return;
                };
                let now = self.client_now();
                let endpoint = Endpoint(u8::try_from(endpoint).unwrap_or(0));
                self.clients[i].client.handle_reply(now, endpoint, reply);
                self.drain_client(i);
            }
            _ => {}
        }
    }

    /// Makes `id`'s written state durable, and reports it to a server that takes reports
    /// (whoever calls this drains the server's outputs afterwards).
    fn sync(&mut self, id: ServerId) {
        let now = self.server_now(id);
        let slot = &mut self.servers[server_index(id)];
        for write in slot.unsynced.drain(..) {
            slot.durable.apply(&write);
        }
        slot.unsynced_since = None;
        let last = slot.unsynced_last.take();
        if let (Some(index), Some(server), true) =
            (last, slot.server.as_mut(), self.config.reports_durable)
        {
            server.handle_durable(now, index);
        }
    }

    fn drain_server(&mut self, id: ServerId) {
        loop {
            let Some(server) = self.servers[server_index(id)].server.as_mut() else {
                return;
            };
            let Some(output) = server.poll_output() else {
                break;
            };
            let early = self.config.reports_durable && output.may_precede_persists();
            match output {
                Output::Persist(write) => {
                    let slot = &mut self.servers[server_index(id)];
                    if let Some(last) = write.last_log_index() {
                        slot.unsynced_last = Some(last);
                    }
                    slot.unsynced.push(write);
                    slot.unsynced_since.get_or_insert(self.t);
                }
                Output::Peer(message) if early => {
                    let to = Node::Server(message.to);
                    self.send(Node::Server(id), to, Payload::Peer(message));
                }
                Output::Peer(message) => {
                    self.sync(id);
                    let to = Node::Server(message.to);
                    self.send(Node::Server(id), to, Payload::Peer(message));
                }
                Output::Reply(reply) => {
                    if !early {
                        self.sync(id);
                    }
                    let Some(i) = self
                        .clients
                        .iter()
                        .position(|c| c.client.id() == reply.client)
                    else {
                        continue;
                    };
                    self.check(|checker, world| checker.server_reply(world, id, i, &reply));
                    self.send(Node::Server(id), Node::Client(i), Payload::Reply(reply));
                }
                Output::Event(event) => {
                    if matches!(event, ServerEvent::PeerMessageRefused { .. }) {
                        self.refused += 1;
                    }
                    self.note(format!("{id}: {event:?}"));
                    if let ServerEvent::RoleChanged { role, term } = &event {
                        self.checker.role_changed(id, *role, *term, self.t);
                    }
                }
            }
        }
    }

    fn drain_client(&mut self, i: usize) {
        while let Some(transmit) = self.clients[i].client.poll_transmit() {
            let to = self.clients[i].path[usize::from(transmit.to.0)];
            self.send(
                Node::Client(i),
                Node::Server(to),
                Payload::Request(transmit.request),
            );
        }
        while let Some(event) = self.clients[i].client.poll_event() {
            let asked = match &event {
                ClientEvent::Granted { seq, .. }
                | ClientEvent::Denied { seq, .. }
                | ClientEvent::OutcomeUnknown { seq, .. }
                | ClientEvent::Released { seq, .. } => self.clients[i].asked.get(seq).copied(),
                _ => None,
            };
            self.checker.client_event(i, &event, self.t, asked);
            self.note(format!("client {i}: {event:?}"));
            self.clients[i].events.push((self.t, event));
        }
    }
}
