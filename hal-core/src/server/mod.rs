//! The license server as a pure state machine: one member of the HAL triad (or a single
//! server), with replication in the style of Raft and the HAL changes of DESIGN §3.
//!
//! # Driving it
//!
//! Inputs are `handle_*` calls with the current time ([`Now`]): [`Server::handle_peer`]
//! for a message from another server, [`Server::handle_client`] for a client request, and
//! [`Server::handle_timeout`] when the deadline of [`Server::poll_timeout`] has passed.
//! After every input the shell drains [`Server::poll_output`] until it returns `None`,
//! then asks [`Server::poll_timeout`] for the next deadline.
//!
//! Outputs come in the order they must take effect. A [`Output::Persist`] must be durable
//! (written and synced) before any *later* [`Output::Peer`] or [`Output::Reply`] leaves
//! the node; consecutive persists may share one sync (group commit). Persist writes apply
//! to [`Durable`] with [`Durable::apply`], and [`Server::new`] restarts from a `Durable`.
//!
//! With [`Config::reports_durable`], the shell also calls [`Server::handle_durable`] after
//! each sync, and may then send appends and replies ([`Output::may_precede_persists`]) at
//! once: the leader writes its disk while the followers write theirs, and a client hears
//! of its committed request without waiting for the leader's later writes.
//!
//! # What it does not do
//!
//! No IO, no clock, no randomness: the shell sends, stores and keeps time.

mod clients;
mod failback;
mod idle;
mod leases;
mod licensing;
mod peers;
#[cfg(test)]
pub(crate) mod testkit;
mod trust;
mod waiting;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ServerId;
use crate::catalog::Catalog;
use crate::license::ServerPosition;
use crate::log::Log;
use crate::plant::Plant;
use crate::protocol::{
    ClientId, Entry, Handle, LogIndex, PeerMessage, RequestSeq, ServerReply, Snapshot, Term,
};
use crate::seats::{Command, Outcome, Seats};
use crate::time::{Now, Time, WallTime};
use crate::timing::Timing;

pub use licensing::Licensing;

/// How a server is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Alone (normal network licenses) or a position in the HAL triad.
    pub position: ServerPosition,
    pub timing: Timing,
    /// The most log entries kept before the applied state is snapshotted.
    pub log_entries_max: usize,
    /// The most entries sent in one append message.
    pub append_entries_max: usize,
    /// Whether the shell reports what is durable with [`Server::handle_durable`]. Then a
    /// leader counts its own entries toward the majority only once they are reported
    /// durable, and so the shell may send a leader's appends and the replies
    /// ([`Output::may_precede_persists`]) before the persists before them are synced: the
    /// leader's disk write and the followers' run in parallel (Raft thesis §10.2.1).
    pub reports_durable: bool,
    /// Bugs planted on purpose (none unless built with the `plant` feature).
    pub plants: crate::plant::Plants,
    /// What the server needs to take a license from the log (a push, or a first
    /// leader's file); `None`: it keeps the catalog it started with and refuses pushes.
    pub licensing: Option<Licensing>,
}

impl Config {
    /// A triad member at `id` with `timing` and default limits.
    pub fn triad(id: ServerId, timing: Timing) -> Config {
        Config {
            position: ServerPosition::Triad(id),
            timing,
            log_entries_max: 10_000,
            append_entries_max: 4096,
            reports_durable: false,
            plants: crate::plant::Plants::NONE,
            licensing: None,
        }
    }

    /// A single server with `timing` and default limits.
    pub fn single(timing: Timing) -> Config {
        Config {
            position: ServerPosition::Single,
            ..Config::triad(ServerId::PRIMARY, timing)
        }
    }

    /// This server's id (a single server is #1 of a cluster of one).
    pub fn id(&self) -> ServerId {
        match self.position {
            ServerPosition::Single => ServerId::PRIMARY,
            ServerPosition::Triad(id) => id,
        }
    }
}

/// What the server keeps on disk: enough to restart without losing a granted seat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Durable {
    pub term: Term,
    pub voted_for: Option<ServerId>,
    pub snapshot: Option<Arc<Snapshot>>,
    /// The entries after the snapshot (or from index 1).
    pub entries: Vec<Arc<Entry>>,
}

/// A write the shell must make durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persist {
    /// The current term and vote.
    HardState {
        term: Term,
        voted_for: Option<ServerId>,
    },
    /// The log from index `first` on is exactly `entries`: drop anything stored from
    /// `first` on, then append these.
    Entries {
        first: LogIndex,
        entries: Vec<Arc<Entry>>,
    },
    /// The snapshot replaces the log up to and including its last index; stored entries
    /// after it stay.
    Snapshot(Arc<Snapshot>),
}

impl Persist {
    /// For log entries (or a truncation), the last index the log has once this write is
    /// made: what a shell reports to [`Server::handle_durable`] after syncing it.
    pub fn last_log_index(&self) -> Option<LogIndex> {
        match self {
            Persist::Entries { first, entries } => {
                let end = first.plus(entries.len()).unwrap_or(LogIndex::MAX);
                Some(end.prev())
            }
            _ => None,
        }
    }
}

impl Durable {
    /// Applies one persist write, as the shell's storage does.
    pub fn apply(&mut self, write: &Persist) {
        let base = self.snapshot.as_ref().map_or(0, |s| s.last_index.0);
        match write {
            Persist::HardState { term, voted_for } => {
                self.term = *term;
                self.voted_for = *voted_for;
            }
            Persist::Entries { first, entries } => {
                let keep = first.0.saturating_sub(base).saturating_sub(1);
                self.entries
                    .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
                self.entries.extend(entries.iter().cloned());
            }
            Persist::Snapshot(snapshot) => {
                let drop = snapshot.last_index.0.saturating_sub(base);
                let drop = usize::try_from(drop)
                    .unwrap_or(usize::MAX)
                    .min(self.entries.len());
                let kept_term = self.entries.get(drop.wrapping_sub(1)).map(|e| e.term);
                if drop == 0 || kept_term == Some(snapshot.last_term) {
                    self.entries.drain(..drop);
                } else {
                    self.entries.clear();
                }
                self.snapshot = Some(snapshot.clone());
            }
        }
    }
}

/// The role a server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The leader: serves clients.
    Active,
    /// Not the leader.
    Standby,
}

impl Role {
    /// The name used in status output and histories (`active`, `standby`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
        }
    }
}

/// Something an operator or the simulator wants to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The server became active (leader) or standby.
    RoleChanged { role: Role, term: Term },
    /// As leader, it had not heard from a majority within the election timeout.
    LostMajority { term: Term },
    /// As #2, it hands the active role back to #1.
    FailbackStarted { to: ServerId, term: Term },
    /// As the active server asked to stop ([`Server::hand_over`]), it hands the role to
    /// `to`, the other server that may lead.
    HandingOver { to: ServerId, term: Term },
    /// A seat's lease or borrow ran out and its expiry was proposed.
    SeatExpiring { handle: Handle },
    /// The entry at `index` changed the seat table (every server reports each change it
    /// applies, once: the journal's record of seats).
    SeatChanged { index: LogIndex, change: SeatChange },
    /// A peer's message was refused, unread, for a field no honest peer sends; says which.
    PeerMessageRefused { from: ServerId, why: String },
    /// The applied state at log index `index` (seat table and client sessions) has
    /// digest `digest` ([`crate::seats::Seats::digest`]): reported when the server takes
    /// a snapshot of it, and when it `installed` one from a peer. Two servers at the same
    /// index must report the same digest.
    Checkpoint {
        index: LogIndex,
        digest: u64,
        installed: bool,
    },
    /// The server cannot campaign: its term or its log is at its highest value
    /// ([`Term::MAX`], [`LogIndex::MAX`]).
    LimitReached { what: &'static str },
    /// The license in force changed (at `index`, pushed or adopted `by`), or the server
    /// (re)started or installed a snapshot with it: `text` is the whole license file, for
    /// the shell to write to disk. `serving` lists what this server cannot serve of it
    /// (its HostID, a bad signature), or says why it serves none of it and keeps the
    /// rules it had. `restart`: reported as the server (re)started, not changed now.
    LicenseChanged {
        index: LogIndex,
        text: Arc<str>,
        by: Arc<str>,
        serving: Result<Vec<String>, String>,
        restart: bool,
    },
    /// The options file in force changed at `index` (pushed `by`): `text` (empty: the
    /// options were cleared).
    OptionsChanged {
        index: LogIndex,
        text: Arc<str>,
        by: Arc<str>,
    },
}

/// A change to the seat table, as [`ServerEvent::SeatChanged`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatChange {
    /// A checkout (no `borrow_end`) or a borrow got the seat `handle`.
    Granted {
        client: ClientId,
        seq: RequestSeq,
        handle: Handle,
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
        borrow_end: Option<WallTime>,
        by: ServerId,
    },
    /// The holder gave the seat back (a checkin, or a borrow returned: `borrowed`).
    Released {
        client: ClientId,
        seq: RequestSeq,
        handle: Handle,
        feature: Arc<str>,
        borrowed: bool,
    },
    /// The seat's lease or borrow ran out.
    Expired {
        client: ClientId,
        handle: Handle,
        feature: Arc<str>,
        borrowed: bool,
    },
    /// An administrator removed the seat `client` held (`by` says who asked).
    Removed {
        client: ClientId,
        handle: Handle,
        feature: Arc<str>,
        borrowed: bool,
        by: Arc<str>,
    },
    /// `client`'s wait `seq` joined the queue of `feature` as waiter `id`, at
    /// `position` (1: next).
    Queued {
        client: ClientId,
        seq: RequestSeq,
        id: Handle,
        feature: Arc<str>,
        position: u32,
    },
    /// Waiter `id` left its queue without a seat: its client asked (`asked`), or its
    /// place was not renewed for a seat's lease. (A waiter that got its seat is
    /// [`SeatChange::Granted`], with the same `client` and `seq`.)
    LeftQueue {
        client: ClientId,
        seq: RequestSeq,
        id: Handle,
        feature: Arc<str>,
        asked: bool,
    },
}

/// One output, in the order it must take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Persist(Persist),
    Peer(PeerMessage),
    Reply(ServerReply),
    Event(ServerEvent),
}

impl Output {
    /// Whether, with [`Config::reports_durable`], this output may leave before the
    /// persists output before it are durable. Every other output waits as the module
    /// documentation says.
    ///
    /// - A leader's append to a follower: the leader's term and vote were durable before
    ///   it could win, and its own entries count toward the majority only once reported
    ///   durable.
    /// - A reply to a client. One that carries an outcome comes from an applied entry,
    ///   committed, so durable on a majority (the leader's own copy counted only once
    ///   reported durable); the writes still pending here are later entries or term
    ///   changes the reply says nothing about. The others (denials, retried answers,
    ///   heartbeats) come from applied state and the leader's soft state, which no
    ///   pending write makes true.
    pub fn may_precede_persists(&self) -> bool {
        matches!(
            self,
            Output::Reply(_)
                | Output::Peer(PeerMessage {
                    body: crate::protocol::PeerBody::Append { .. },
                    ..
                })
        )
    }
}

/// Contact with one peer, for the majority, failback and no-majority decisions.
#[derive(Debug, Clone, Copy, Default)]
struct Contact {
    /// When anything was last heard from the peer.
    last: Option<Time>,
    /// Since when it has been heard without a gap longer than `contact_gap_max`.
    since: Option<Time>,
}

impl Contact {
    /// Heard from now; a gap longer than `gap_max` since the last time starts anew.
    fn touch(&mut self, now: Time, gap_max: Duration) {
        self.touch_since(now, now, gap_max);
    }

    /// Known to have lasted from `since` to `now` (news of contact that began earlier):
    /// extends contact that still lasts back to `since`, or starts anew at `since`.
    fn touch_since(&mut self, since: Time, now: Time, gap_max: Duration) {
        let continuous = self.last.is_some_and(|last| now.since(last) <= gap_max);
        self.since = match self.since {
            Some(earlier) if continuous => Some(earlier.min(since)),
            _ => Some(since),
        };
        self.last = Some(now);
    }

    /// Since when contact has lasted, if it still does at `now`.
    fn lasting_since(&self, now: Time, gap_max: Duration) -> Option<Time> {
        let recent = self.last.is_some_and(|last| now.since(last) <= gap_max);
        self.since.filter(|_| recent)
    }
}

/// A leader's view of one follower.
#[derive(Debug, Clone)]
struct Progress {
    /// The next index to send.
    next: LogIndex,
    /// The highest index known to be stored there.
    matched: LogIndex,
    /// The newest heartbeat round it acknowledged.
    acked_round: u64,
}

/// What only the leader keeps (soft state, rebuilt at every term start).
#[derive(Debug, Clone)]
struct Leader {
    /// The index of this term's no-op; the leader answers heartbeats once it is applied.
    noop_index: LogIndex,
    progress: BTreeMap<ServerId, Progress>,
    /// Heartbeat rounds: the newest round number and when each recent round was sent.
    round: u64,
    round_sent: VecDeque<(u64, Time)>,
    /// Until when no other leader can exist (from majority-acknowledged rounds).
    lease_until: Option<Time>,
    next_heartbeat: Time,
    /// Each client's request proposed in this term and not yet applied, with its index:
    /// the client is answered when that entry applies. (A request proposed in an earlier
    /// term is answered when its client retries.)
    proposed: BTreeMap<(ClientId, RequestSeq), LogIndex>,
    /// Grants in the log not yet applied, per feature.
    grants_in_flight: BTreeMap<Arc<str>, u32>,
    /// Checked-out seats: when each expires unless a heartbeat comes.
    leases: leases::Leases,
    /// Borrowed seats by end (wall clock); entries of seats returned early stay until
    /// their end passes.
    borrows: BTreeSet<(WallTime, Handle)>,
    /// Seats whose expiry was proposed.
    expiring: BTreeSet<Handle>,
    /// Set while handing leadership over (to #1 in a failback, to the other eligible
    /// server when this one stops).
    transfer_since: Option<Time>,
    /// Set when this leader hands over because it stops ([`Server::hand_over`]): it never
    /// serves again; a handover that does not complete makes it step down.
    stopping: bool,
    /// Sessions without seats, and when each may be forgotten.
    idle: idle::IdleSessions,
    /// Waiting requests (by id): when each leaves its queue unless its client asks again.
    wait_leases: leases::Leases,
    /// Features with a [`Command::Serve`] proposed and not yet applied (one at a time).
    serving: BTreeSet<Arc<str>>,
    /// Waiting requests whose [`Command::Dequeue`] was proposed.
    leaving: BTreeSet<Handle>,
}

#[derive(Debug, Clone)]
enum State {
    Follower,
    PreCandidate { votes: BTreeSet<ServerId> },
    Candidate { votes: BTreeSet<ServerId> },
    Leader(Box<Leader>),
}

/// One license server. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Server {
    config: Config,
    catalog: Catalog,
    peers: Vec<ServerId>,
    // Durable state.
    term: Term,
    voted_for: Option<ServerId>,
    /// No snapshot is kept in memory: a peer that needs one gets the applied state of
    /// the moment ([`Server::current_snapshot`]), which is at least as far along.
    log: Log,
    // Volatile state.
    commit: LogIndex,
    applied: LogIndex,
    seats: Seats,
    state: State,
    leader: Option<ServerId>,
    /// When this server last heard from the current leader (itself excluded).
    leader_contact: Option<Time>,
    contact: BTreeMap<ServerId, Contact>,
    election_deadline: Option<Time>,
    /// Failback through #3 (see `failback.rs`).
    failback: failback::Failback,
    now: Now,
    outputs: VecDeque<Output>,
}

impl Server {
    /// A server starting (or restarting) from `durable` at `now`.
    pub fn new(config: Config, catalog: Catalog, durable: Durable, now: Now) -> Server {
        let id = config.id();
        let peers: Vec<ServerId> = match config.position {
            ServerPosition::Single => Vec::new(),
            ServerPosition::Triad(_) => ServerId::ALL.into_iter().filter(|p| *p != id).collect(),
        };
        let Durable {
            term,
            voted_for,
            snapshot,
            entries,
        } = durable;
        let (seats, log, applied) = match snapshot {
            Some(s) => {
                let log = Log::restore(s.last_index, s.last_term, entries);
                let applied = s.last_index;
                // The shell usually hands the only copy over: take it without copying.
                let seats = Arc::try_unwrap(s).map_or_else(|s| s.seats.clone(), |s| s.seats);
                (seats, log, applied)
            }
            None => (
                Seats::new(),
                Log::restore(LogIndex(0), Term(0), entries),
                LogIndex(0),
            ),
        };
        let mut server = Server {
            contact: peers.iter().map(|p| (*p, Contact::default())).collect(),
            peers,
            catalog,
            term,
            voted_for,
            log,
            commit: applied,
            applied,
            seats,
            state: State::Follower,
            leader: None,
            // A (re)started server gives a leader it cannot know of yet the benefit of the
            // doubt for one election timeout, so its vote cannot help depose a leader
            // whose lease is still running.
            leader_contact: Some(now.mono),
            election_deadline: None,
            failback: failback::Failback::default(),
            now,
            outputs: VecDeque::new(),
            config,
        };
        server.take_license(None, true);
        server.reset_election_timer();
        if server.peers.is_empty() {
            server.start_election(false);
        }
        server.debug_check();
        server
    }

    // ----- getters -----

    pub fn id(&self) -> ServerId {
        self.config.id()
    }

    pub fn term(&self) -> Term {
        self.term
    }

    /// Whether this server is the leader (it may still lack a lease to serve heartbeats).
    pub fn is_leader(&self) -> bool {
        matches!(self.state, State::Leader(_))
    }

    /// The reported role.
    pub fn role(&self) -> Role {
        if self.is_leader() {
            Role::Active
        } else {
            Role::Standby
        }
    }

    /// The leader this server knows of, if any (itself when leading).
    pub fn leader(&self) -> Option<ServerId> {
        self.leader
    }

    /// The applied seat table.
    pub fn seats(&self) -> &Seats {
        &self.seats
    }

    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }

    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }

    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// The license rules this server applies.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How this server was set up.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- inputs -----

    /// A message from another server.
    pub fn handle_peer(&mut self, now: Now, message: PeerMessage) {
        self.now = now;
        self.on_peer(message);
        self.debug_check();
    }

    /// A request from a client.
    pub fn handle_client(&mut self, now: Now, request: crate::protocol::ClientRequest) {
        self.now = now;
        self.on_client(request);
        self.debug_check();
    }

    /// The shell made every persist output so far that holds log entries up to `index`
    /// durable (only with [`Config::reports_durable`]; reports may come late or be
    /// skipped, never early).
    pub fn handle_durable(&mut self, now: Now, index: LogIndex) {
        self.now = now;
        self.log.mark_durable(index);
        if self.is_leader() {
            self.advance_commit();
        }
        self.debug_check();
    }

    /// The active server is about to stop (an operator's SIGTERM): it stops serving and
    /// tells the other server that may lead (#2 for #1, #1 for #2) to campaign at once,
    /// directly and through #3, so that the triad serves again after one election rather
    /// than a failover's wait. Returns whether a handover began: not when this server
    /// does not lead, runs alone, or has not heard the other one acknowledge lately (it
    /// may be down; the usual failover then follows the stop). A handover that does not
    /// complete within an election timeout is given up, and the server serves again.
    pub fn hand_over(&mut self, now: Now) -> bool {
        self.now = now;
        let started = self.start_hand_over();
        self.debug_check();
        started
    }

    /// Time has passed the deadline of [`Server::poll_timeout`] (calling it early is
    /// harmless).
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        if self.is_leader() {
            self.leader_tick();
        } else if self.election_deadline.is_some_and(|d| d <= now.mono) {
            self.on_election_timeout();
        }
        self.presence_tick();
        self.debug_check();
    }

    // ----- outputs -----

    /// The next output, or `None` when drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.flush();
        }
        self.outputs.pop_front()
    }

    /// When [`Server::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        let own = match &self.state {
            State::Leader(leader) => Some(leader.next_heartbeat),
            _ => self.election_deadline,
        };
        [own, self.next_presence()].into_iter().flatten().min()
    }

    // ----- shared machinery -----

    fn timing(&self) -> &Timing {
        &self.config.timing
    }

    /// The peers' ids, copied out so the loop may borrow `self` mutably.
    fn peer_ids(&self) -> impl Iterator<Item = ServerId> + use<> {
        let mut ids = [None; 2];
        for (slot, id) in ids.iter_mut().zip(&self.peers) {
            *slot = Some(*id);
        }
        ids.into_iter().flatten()
    }

    fn majority(&self) -> usize {
        // Three servers or one.
        if self.peers.is_empty() { 1 } else { 2 }
    }

    fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    fn event(&mut self, event: ServerEvent) {
        self.push(Output::Event(event));
    }

    fn send(&mut self, to: ServerId, body: crate::protocol::PeerBody) {
        let message = PeerMessage {
            from: self.id(),
            to,
            term: self.term,
            body,
        };
        self.push(Output::Peer(message));
    }

    fn persist_hard_state(&mut self) {
        let write = Persist::HardState {
            term: self.term,
            voted_for: self.voted_for,
        };
        self.push(Output::Persist(write));
    }

    /// Hands the log's changes (new entries, a truncated tail) to the shell to persist.
    fn persist_log(&mut self) {
        if let Some((first, entries)) = self.log.take_unpersisted() {
            self.push(Output::Persist(Persist::Entries { first, entries }));
        }
    }

    /// Hands new log entries to the shell; then, as leader, sends them on and (alone)
    /// commits them.
    fn flush(&mut self) {
        self.persist_log();
        if self.is_leader() {
            for peer in self.peer_ids() {
                self.send_new_entries(peer);
            }
            self.advance_commit();
        }
    }

    fn reset_election_timer(&mut self) {
        self.set_election_timer(self.timing().election_timeout);
    }

    /// Sets the election deadline `wait` from now, plus the failover delay for #2 (#3
    /// never campaigns), so #1 always asks first.
    fn set_election_timer(&mut self, wait: Duration) {
        let timing = *self.timing();
        self.election_deadline = match self.config.position {
            ServerPosition::Triad(ServerId::TIEBREAKER) => None,
            ServerPosition::Triad(ServerId::SECONDARY) => {
                Some(self.now.mono + wait.saturating_add(timing.failover_delay))
            }
            _ => Some(self.now.mono + wait),
        };
    }

    /// Records that `peer` was heard from now.
    fn heard_from(&mut self, peer: ServerId) {
        let now = self.now.mono;
        let gap_max = self.timing().contact_gap_max();
        self.contact.entry(peer).or_default().touch(now, gap_max);
        if peer == ServerId::PRIMARY {
            self.primary_in_contact(now);
        }
        self.primary_heard_a_peer(now);
    }

    /// Whether some peer was heard within the election timeout (with self, a majority).
    fn majority_heard(&self) -> bool {
        if self.peers.is_empty() {
            return true;
        }
        let window = self.timing().election_timeout;
        let heard = self
            .contact
            .values()
            .filter(|c| c.last.is_some_and(|t| self.now.mono.since(t) < window))
            .count();
        heard.saturating_add(1) >= self.majority()
    }

    /// Whether a live leader (another server) was heard within the stickiness window.
    fn leader_is_live(&self) -> bool {
        let window = self.timing().leader_stickiness();
        self.leader_contact
            .is_some_and(|t| self.now.mono.since(t) < window)
    }

    /// Applies committed entries to the seat table; as leader, answers the waiting
    /// clients and keeps the soft state in step.
    fn apply_committed(&mut self) {
        while self.applied < self.commit {
            let index = self.applied.after();
            let Some(entry) = self.log.get(index).cloned() else {
                break;
            };
            // The seats an entry may take away, as they were before (for the events).
            let handles: &[Handle] = match &entry.command {
                Command::Release { handle, .. } | Command::Expire { handle } => {
                    std::slice::from_ref(handle)
                }
                Command::Remove { handles, .. } => handles,
                _ => &[],
            };
            let taken: Vec<Taken> = handles
                .iter()
                .filter_map(|handle| {
                    self.seats.seat(*handle).map(|seat| {
                        let feature: Arc<str> = self.seats.feature_of(seat).into();
                        (*handle, seat.client, feature, seat.borrow_end().is_some())
                    })
                })
                .collect();
            // The clients whose sessions an entry may leave without a seat.
            let clients: Vec<ClientId> = match &entry.command {
                Command::Grant { client, .. }
                | Command::Release { client, .. }
                | Command::Wait { client, .. }
                | Command::Serve { client, .. }
                | Command::Dequeue { client, .. } => vec![*client],
                Command::Remove { client, .. } => std::iter::once(*client)
                    .chain(taken.iter().map(|t| t.1))
                    .collect(),
                Command::Expire { .. } => taken.iter().map(|t| t.1).collect(),
                Command::License { client, .. } | Command::Options { client, .. } => {
                    vec![*client]
                }
                Command::Noop | Command::Forget { .. } | Command::AdoptLicense { .. } => Vec::new(),
            };
            // A newer wait of a client (or a leave asked before it applied) replaces the
            // one it has waiting: that one leaves.
            let replaced = match &entry.command {
                Command::Wait { client, seq, .. }
                | Command::Dequeue {
                    id: Handle(0),
                    client,
                    seq,
                    ..
                } => self
                    .seats
                    .queued_wait(*client)
                    .filter(|(waiter, _)| waiter.seq < *seq)
                    .map(|(waiter, feature)| SeatChange::LeftQueue {
                        client: waiter.client,
                        seq: waiter.seq,
                        id: waiter.id,
                        feature: feature.into(),
                        asked: true,
                    }),
                _ => None,
            };
            let catalog = &self.catalog;
            let plants = self.config.plants;
            let dedup = !plants.has(Plant::RetriesNotDeduplicated);
            let recheck = !plants.has(Plant::CountAtProposeOnly);
            let outcome = self.seats.apply_planted(index, &entry.command, dedup, |f| {
                catalog
                    .count(f)
                    .map(|count| if recheck { count } else { u32::MAX })
            });
            self.applied = index;
            if matches!(
                entry.command,
                Command::License { .. } | Command::AdoptLicense { .. }
            ) {
                self.take_license(Some(index), false);
            }
            // Only where this entry put them in force (a retry's answer names an older one).
            if let (Command::Options { text, by, .. }, Some(Outcome::OptionsPushed { index: at })) =
                (&entry.command, &outcome)
                && *at == index
            {
                self.push(Output::Event(ServerEvent::OptionsChanged {
                    index,
                    text: text.clone(),
                    by: by.clone(),
                }));
            }
            let replaced = replaced.filter(|change| match change {
                SeatChange::LeftQueue { id, .. } => !self.seats.waiters().any(|w| w.id == *id),
                _ => false,
            });
            for change in replaced.into_iter().chain(seat_changes(
                &entry.command,
                outcome.as_ref(),
                index,
                taken,
            )) {
                self.push(Output::Event(ServerEvent::SeatChanged { index, change }));
            }
            for client in clients {
                self.schedule_if_idle(client);
            }
            self.after_queue_apply(index, &entry.command, outcome.as_ref());
            self.after_apply(index, &entry.command, outcome);
        }
        self.serve_queues();
        self.maybe_snapshot();
    }

    /// The applied state as a snapshot, for a peer behind the log's start.
    fn current_snapshot(&self) -> Option<Arc<Snapshot>> {
        let last_term = self.log.term_at(self.applied)?;
        Some(Arc::new(Snapshot {
            last_index: self.applied,
            last_term,
            seats: self.seats.clone(),
        }))
    }

    /// Compacts the log into a snapshot once it is longer than `log_entries_max`.
    fn maybe_snapshot(&mut self) {
        if self.log.len() <= self.config.log_entries_max
            || self.applied <= self.log.snapshot_index()
        {
            return;
        }
        let Some(term) = self.log.term_at(self.applied) else {
            return;
        };
        let snapshot = Arc::new(Snapshot {
            last_index: self.applied,
            last_term: term,
            seats: self.seats.clone(),
        });
        self.log.compact_to(self.applied, term);
        self.push(Output::Event(ServerEvent::Checkpoint {
            index: self.applied,
            digest: snapshot.seats.digest(),
            installed: false,
        }));
        self.push(Output::Persist(Persist::Snapshot(snapshot)));
    }

    /// Checks the state's own rules; panics naming the broken one. Cheap enough for
    /// tests; debug builds run it after every input.
    pub fn check_invariants(&self) {
        let last = self.log.last_index();
        assert!(
            self.log.snapshot_index() <= self.applied,
            "snapshot {:?} <= applied {:?}",
            self.log.snapshot_index(),
            self.applied
        );
        assert!(self.applied <= self.commit, "applied <= commit");
        assert!(
            self.commit <= last,
            "commit {:?} <= last {:?}",
            self.commit,
            last
        );
        assert!(
            self.log.last_term() <= self.term,
            "no entry from a future term"
        );
        if let State::Leader(leader) = &self.state {
            assert_ne!(self.id(), ServerId::TIEBREAKER, "#3 never leads");
            assert_eq!(
                self.leader,
                Some(self.id()),
                "a leader knows itself as leader"
            );
            assert_eq!(self.voted_for, Some(self.id()), "a leader voted for itself");
            assert!(leader.noop_index <= last, "the no-op is in the log");
            leader.leases.check_invariants();
        }
        self.seats.check_invariants();
    }

    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            self.check_invariants();
        }
    }

    /// As leader, schedules `client`'s session to be forgotten once it has been idle for
    /// [`Timing::session_idle_max`], if it holds no seat.
    fn schedule_if_idle(&mut self, client: ClientId) {
        let deadline = self.now.mono + self.timing().session_idle_max();
        if !self.seats.is_idle(client) {
            return;
        }
        if let State::Leader(leader) = &mut self.state {
            leader.idle.schedule(client, deadline);
        }
    }

    /// As leader, proposes forgetting the sessions that have held no seat for a lease.
    fn forget_idle_sessions(&mut self) {
        let now = self.now.mono;
        let term = self.term;
        let seats = &self.seats;
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        let still_idle = |client| seats.is_idle(client);
        let clients = leader
            .idle
            .take_due(now, crate::seats::FORGET_CLIENTS_MAX, still_idle);
        if clients.is_empty() || self.log.last_index().next().is_none() {
            return;
        }
        self.log.append(Entry {
            term,
            command: Command::Forget { clients },
        });
    }

    /// An entry's effect on what the leader keeps and who it answers.
    fn after_apply(&mut self, index: LogIndex, command: &Command, outcome: Option<Outcome>) {
        let lease = self.timing().seat_lease();
        let now = self.now.mono;
        let from = self.id();
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        match (command, &outcome) {
            (Command::Grant { feature, .. }, _) => {
                if let Some(n) = leader.grants_in_flight.get_mut(&**feature) {
                    *n = n.saturating_sub(1);
                }
                if let Some(Outcome::Granted {
                    handle, borrow_end, ..
                }) = &outcome
                {
                    match borrow_end {
                        Some(end) => {
                            leader.borrows.insert((*end, *handle));
                        }
                        None => leader.leases.set(*handle, now + lease),
                    }
                }
            }
            (Command::Release { handle, .. } | Command::Expire { handle }, _) => {
                leader.leases.remove(*handle);
                leader.expiring.remove(handle);
            }
            (Command::Remove { .. }, Some(Outcome::Removed { handles })) => {
                for handle in handles {
                    leader.leases.remove(*handle);
                    leader.expiring.remove(handle);
                }
            }
            (
                Command::Noop
                | Command::Forget { .. }
                | Command::Remove { .. }
                | Command::License { .. }
                | Command::Options { .. }
                | Command::AdoptLicense { .. }
                // See `after_queue_apply`.
                | Command::Wait { .. }
                | Command::Serve { .. }
                | Command::Dequeue { .. },
                _,
            ) => {}
        }
        let (Command::Grant { client, seq, .. }
        | Command::Wait { client, seq, .. }
        | Command::Release { client, seq, .. }
        | Command::Remove { client, seq, .. }
        | Command::License { client, seq, .. }
        | Command::Options { client, seq, .. }) = command
        else {
            return;
        };
        if leader.proposed.get(&(*client, *seq)) != Some(&index) {
            return;
        }
        leader.proposed.remove(&(*client, *seq));
        if let Some(outcome) = outcome {
            let reply = clients::reply_for(
                *client,
                *seq,
                from,
                outcome,
                self.config.timing.client_lease,
            );
            self.push(Output::Reply(reply));
        }
    }
}

/// Durations in whole milliseconds, for messages.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A seat an entry names, as it was before the entry applied: handle, holder, feature,
/// whether borrowed.
type Taken = (Handle, ClientId, Arc<str>, bool);

/// The changes the entry at `index` made to the seat table: a fresh grant (a retried one
/// is answered from the session, with an older handle), a release of a seat its client
/// held, an expiry of a seat still held, or the seats an administrator removed. `taken`:
/// the seats the entry names that were held before it.
fn seat_changes(
    command: &Command,
    outcome: Option<&Outcome>,
    index: LogIndex,
    taken: Vec<Taken>,
) -> Vec<SeatChange> {
    if let (Command::Remove { by, .. }, Some(Outcome::Removed { handles })) = (command, outcome) {
        return taken
            .into_iter()
            .filter(|t| handles.contains(&t.0))
            .map(|(handle, client, feature, borrowed)| SeatChange::Removed {
                client,
                handle,
                feature,
                borrowed,
                by: by.clone(),
            })
            .collect();
    }
    let taken = taken.into_iter().next();
    seat_change(command, outcome, index, taken)
        .into_iter()
        .collect()
}

/// [`seat_changes`] of an entry that changes one seat at most.
fn seat_change(
    command: &Command,
    outcome: Option<&Outcome>,
    index: LogIndex,
    taken: Option<Taken>,
) -> Option<SeatChange> {
    match (command, outcome) {
        // A checkout, a borrow, a wait granted at once, or a waiting request's turn.
        (
            Command::Grant {
                client,
                seq,
                feature,
                user,
                host,
                by,
                ..
            }
            | Command::Wait {
                client,
                seq,
                feature,
                user,
                host,
                by,
                ..
            }
            | Command::Serve {
                client,
                seq,
                feature,
                user,
                host,
                by,
                ..
            },
            Some(Outcome::Granted {
                handle, borrow_end, ..
            }),
        ) if handle.0 == index.0 => Some(SeatChange::Granted {
            client: *client,
            seq: *seq,
            handle: *handle,
            feature: feature.clone(),
            user: user.clone(),
            host: host.clone(),
            borrow_end: *borrow_end,
            by: *by,
        }),
        (Command::Release { client, seq, .. }, Some(Outcome::Released { handle })) => {
            let (_, holder, feature, borrowed) = taken.filter(|t| t.0 == *handle)?;
            (holder == *client).then_some(SeatChange::Released {
                client: *client,
                seq: *seq,
                handle: *handle,
                feature,
                borrowed,
            })
        }
        (Command::Expire { .. }, _) => {
            let (handle, client, feature, borrowed) = taken?;
            Some(SeatChange::Expired {
                client,
                handle,
                feature,
                borrowed,
            })
        }
        (
            Command::Wait {
                client,
                seq,
                feature,
                ..
            },
            Some(Outcome::Queued { id, position, .. }),
        ) if id.0 == index.0 => Some(SeatChange::Queued {
            client: *client,
            seq: *seq,
            id: Handle(index.0),
            feature: feature.clone(),
            position: *position,
        }),
        (
            Command::Dequeue {
                id,
                client,
                seq,
                feature,
                asked,
            },
            Some(Outcome::LeftQueue),
        ) if id.0 != 0 => Some(SeatChange::LeftQueue {
            client: *client,
            seq: *seq,
            id: *id,
            feature: feature.clone(),
            asked: *asked,
        }),
        // A waiting request served a refusal (the options, the license) leaves its queue.
        (
            Command::Serve {
                id,
                client,
                seq,
                feature,
                ..
            },
            Some(Outcome::Denied(_)),
        ) => Some(SeatChange::LeftQueue {
            client: *client,
            seq: *seq,
            id: *id,
            feature: feature.clone(),
            asked: false,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::{Op, PeerBody, ReplyResult};
    use crate::server::testkit::{Driver, append, at, catalog, checkout, grant, noop, sent_to};

    /// The handles of the grants `outputs` report applied.
    fn granted(outputs: &[Output]) -> Vec<Handle> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(ServerEvent::SeatChanged {
                    change: SeatChange::Granted { handle, .. },
                    ..
                }) => Some(*handle),
                _ => None,
            })
            .collect()
    }

    /// The clients whose sessions the log entries persisted in `outputs` forget.
    fn forgotten(outputs: &[Output]) -> Vec<ClientId> {
        let mut clients = Vec::new();
        for output in outputs {
            if let Output::Persist(Persist::Entries { entries, .. }) = output {
                for entry in entries {
                    if let Command::Forget { clients: forget } = &entry.command {
                        clients.extend(forget);
                    }
                }
            }
        }
        clients
    }

    fn snapshot(last_index: u64, last_term: u64) -> Persist {
        Persist::Snapshot(Arc::new(Snapshot {
            last_index: LogIndex(last_index),
            last_term: Term(last_term),
            seats: Seats::new(),
        }))
    }

    #[test]
    fn a_log_write_tells_the_last_index_the_log_has_once_it_is_made() {
        let appended = Persist::Entries {
            first: LogIndex(3),
            entries: vec![noop(1), noop(1)],
        };
        let truncated = Persist::Entries {
            first: LogIndex(3),
            entries: Vec::new(),
        };
        let vote = Persist::HardState {
            term: Term(1),
            voted_for: None,
        };
        assert_eq!(appended.last_log_index(), Some(LogIndex(4)));
        assert_eq!(truncated.last_log_index(), Some(LogIndex(2)));
        assert_eq!(vote.last_log_index(), None);
    }

    #[test]
    fn a_snapshot_keeps_the_stored_entries_after_its_last_index() {
        let mut durable = Durable {
            entries: vec![noop(1), noop(1), noop(2)],
            ..Durable::default()
        };
        durable.apply(&snapshot(2, 1));
        assert_eq!(durable.entries, [noop(2)]);
    }

    #[test]
    fn a_snapshot_whose_last_entry_differs_from_the_stored_one_drops_the_stored_entries() {
        let mut durable = Durable {
            entries: vec![noop(1), noop(1), noop(1)],
            ..Durable::default()
        };
        durable.apply(&snapshot(2, 2));
        assert_eq!(durable.entries, []);
    }

    #[test]
    fn roles_have_the_names_status_output_uses() {
        assert_eq!(Role::Active.name(), "active");
        assert_eq!(Role::Standby.name(), "standby");
    }

    #[test]
    fn a_followers_acknowledgement_waits_for_the_write_of_what_it_acknowledges() {
        let mut two = Driver::new(ServerId::SECONDARY);
        let outputs = two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 0));
        let is_ack = |o: &Output| {
            matches!(
                o,
                Output::Peer(PeerMessage {
                    body: PeerBody::AppendReply { success: true, .. },
                    ..
                })
            )
        };
        let Some(ack) = outputs.iter().position(is_ack) else {
            panic!("no acknowledgement: {outputs:?}");
        };
        let written_before = outputs[..ack]
            .iter()
            .any(|o| matches!(o, Output::Persist(Persist::Entries { .. })));
        assert!(written_before, "{outputs:?}");
        assert!(!outputs[ack].may_precede_persists());
    }

    #[test]
    fn a_leaders_appends_and_replies_may_leave_before_its_persists() {
        let mut one = Driver::new(ServerId::PRIMARY);
        let outputs = one.elect();
        let appends = outputs
            .iter()
            .filter(|o| matches!(o, Output::Peer(m) if matches!(m.body, PeerBody::Append { .. })))
            .collect::<Vec<_>>();
        assert_eq!(appends.len(), 2, "{outputs:?}");
        assert!(appends.iter().all(|o| o.may_precede_persists()));
        // Its no-op not yet committed, it denies a checkout (a reply all the same).
        let outputs = one.ask(7, 1, checkout());
        assert!(
            matches!(outputs.as_slice(), [reply @ Output::Reply(_)] if reply.may_precede_persists()),
            "{outputs:?}"
        );
    }

    #[test]
    fn a_follower_knows_the_leader_it_hears_and_applies_what_is_committed() {
        let mut two = Driver::new(ServerId::SECONDARY);
        assert_eq!(two.server.leader(), None);
        two.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1)], 1),
        );
        assert_eq!(two.server.leader(), Some(ServerId::PRIMARY));
        assert_eq!(two.server.applied_index(), LogIndex(1));
    }

    #[test]
    fn a_server_applies_the_license_it_was_given() {
        let one = Driver::new(ServerId::PRIMARY);
        assert_eq!(one.server.catalog(), &catalog());
        assert_eq!(one.server.catalog().count("cad"), Some(5));
    }

    #[test]
    fn the_tiebreaker_never_asks_to_be_woken_for_an_election() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        assert_eq!(three.server.poll_timeout(), None);
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 0));
        assert_eq!(three.server.poll_timeout(), None);
    }

    #[test]
    fn two_leading_does_not_hand_the_role_back_for_hearing_three_alone() {
        let mut two = Driver::new(ServerId::SECONDARY);
        two.elect();
        let start = two.now_ms;
        let hold_ms = millis(Timing::lan().failback_hold);
        let ack = PeerBody::AppendReply {
            success: true,
            match_index: LogIndex(1),
            round: 1,
        };
        let mut outputs = Vec::new();
        for ms in (start..=start + 2 * hold_ms).step_by(100) {
            outputs.extend(two.tick_to(ms));
            outputs.extend(two.hear(ServerId::TIEBREAKER, ack.clone()));
        }
        assert!(two.server.is_leader());
        let handed = outputs
            .iter()
            .any(|o| matches!(o, Output::Event(ServerEvent::FailbackStarted { .. })));
        assert!(!handed);
    }

    #[test]
    fn a_leader_steps_down_once_a_whole_election_timeout_passed_without_a_peer() {
        // #1 last heard its peers when their votes made it leader.
        let leads_after = |ms: u64| {
            let mut one = Driver::new(ServerId::PRIMARY);
            one.elect();
            one.tick_to(one.now_ms + ms);
            one.server.is_leader()
        };
        let timeout_ms = millis(Timing::lan().election_timeout);
        assert!(leads_after(timeout_ms - 1));
        assert!(!leads_after(timeout_ms));
    }

    #[test]
    fn a_voter_backs_a_candidate_once_the_leader_was_silent_for_the_stickiness_window() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.tick_to(1_000);
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        let sticky_ms = millis(Timing::lan().leader_stickiness());
        let mut pre_vote_at = |ms: u64| {
            three.tick_to(ms);
            let pre_vote = PeerBody::PreVote {
                last_index: LogIndex(1),
                last_term: Term(1),
            };
            let outputs = three.hear_in(ServerId::SECONDARY, Term(2), pre_vote);
            sent_to(&outputs, ServerId::SECONDARY)
        };
        let refused = PeerBody::PreVoteReply { granted: false };
        let granted = PeerBody::PreVoteReply { granted: true };
        assert_eq!(pre_vote_at(1_000 + sticky_ms - 1), [refused]);
        assert_eq!(pre_vote_at(1_000 + sticky_ms), [granted]);
    }

    #[test]
    fn a_grant_logged_twice_takes_one_seat_and_is_reported_once() {
        let mut two = Driver::new(ServerId::SECONDARY);
        let outputs = two.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), grant(1, 7, 1)], 2),
        );
        assert_eq!(granted(&outputs), [Handle(2)]);
        // The same request logged again (a retry that reached a new leader, say).
        let outputs = two.hear(ServerId::PRIMARY, append((2, 1), vec![grant(1, 7, 1)], 3));
        assert_eq!(granted(&outputs), []);
        assert_eq!(two.server.seats().used("cad"), 1);
    }

    /// The seat changes `outputs` report, by index.
    fn seat_changes(outputs: &[Output]) -> Vec<(u64, SeatChange)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(ServerEvent::SeatChanged { index, change }) => {
                    Some((index.0, change.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_applied_seat_change_is_reported_once_with_its_index() {
        let entry = |term: u64, command: Command| {
            Arc::new(Entry {
                term: Term(term),
                command,
            })
        };
        let release = |client: u64, seq: u64, handle: u64| Command::Release {
            client: ClientId(client),
            seq: RequestSeq(seq),
            handle: Handle(handle),
        };
        let mut two = Driver::new(ServerId::SECONDARY);
        let entries = vec![
            noop(1),
            grant(1, 7, 1),
            grant(1, 8, 1),
            entry(1, release(7, 2, 2)),
            // A retried release, a release by another client, an expiry of a seat gone.
            entry(1, release(7, 2, 2)),
            entry(1, release(9, 1, 3)),
            entry(1, Command::Expire { handle: Handle(2) }),
            entry(1, Command::Expire { handle: Handle(3) }),
        ];
        let outputs = two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), entries, 8));
        let changes = seat_changes(&outputs);
        let cad: Arc<str> = "cad".into();
        assert_eq!(
            changes,
            [
                (
                    2,
                    SeatChange::Granted {
                        client: ClientId(7),
                        seq: RequestSeq(1),
                        handle: Handle(2),
                        feature: cad.clone(),
                        user: "ann".into(),
                        host: "ws1".into(),
                        borrow_end: None,
                        by: ServerId::PRIMARY,
                    }
                ),
                (
                    3,
                    SeatChange::Granted {
                        client: ClientId(8),
                        seq: RequestSeq(1),
                        handle: Handle(3),
                        feature: cad.clone(),
                        user: "ann".into(),
                        host: "ws1".into(),
                        borrow_end: None,
                        by: ServerId::PRIMARY,
                    }
                ),
                (
                    4,
                    SeatChange::Released {
                        client: ClientId(7),
                        seq: RequestSeq(2),
                        handle: Handle(2),
                        feature: cad.clone(),
                        borrowed: false,
                    }
                ),
                (
                    8,
                    SeatChange::Expired {
                        client: ClientId(8),
                        handle: Handle(3),
                        feature: cad,
                        borrowed: false,
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_follower_applies_no_grant_past_the_count() {
        let mut two = Driver::new(ServerId::SECONDARY);
        let mut entries = vec![noop(1)];
        entries.extend((1..=6).map(|client| grant(1, client, 1)));
        let outputs = two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), entries, 7));
        assert_eq!(granted(&outputs).len(), 5);
        assert_eq!(two.server.seats().used("cad"), 5);
    }

    #[test]
    fn a_log_longer_than_its_limit_is_compacted_into_a_snapshot_of_the_applied_state() {
        let config = Config {
            log_entries_max: 3,
            ..Config::triad(ServerId::SECONDARY, Timing::lan())
        };
        let mut two = Driver::with_config(config);
        let outputs = two.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1); 5], 5),
        );
        let snapshots: Vec<_> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Persist(Persist::Snapshot(s)) => Some((s.last_index, s.last_term)),
                _ => None,
            })
            .collect();
        assert_eq!(snapshots, [(LogIndex(5), Term(1))], "{outputs:?}");
        assert_eq!(two.server.last_index(), LogIndex(5));
        let digest = crate::seats::Seats::new().digest();
        let reported = crate::server::testkit::checkpoints(&outputs);
        assert_eq!(reported, [(LogIndex(5), digest, false)], "{outputs:?}");
    }

    /// A disk that breaks a rule of the state: an entry from a term later than the term
    /// stored beside it.
    fn corrupt_disk() -> Durable {
        Durable {
            term: Term(1),
            entries: vec![noop(2)],
            ..Durable::default()
        }
    }

    #[test]
    #[should_panic(expected = "no entry from a future term")]
    fn the_invariant_check_names_the_rule_a_state_breaks() {
        let config = Config::triad(ServerId::SECONDARY, Timing::lan());
        Server::new(config, catalog(), corrupt_disk(), at(0)).check_invariants();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "no entry from a future term")]
    fn debug_builds_check_the_invariants_without_being_asked() {
        let config = Config::triad(ServerId::SECONDARY, Timing::lan());
        Server::new(config, catalog(), corrupt_disk(), at(0));
    }

    #[test]
    fn a_session_is_forgotten_an_idle_time_after_its_last_seat_is_returned() {
        let mut single = Driver::with_config(Config::single(Timing::lan()));
        let outputs = single.ask(7, 1, checkout());
        assert!(
            matches!(
                outputs.as_slice(),
                [
                    ..,
                    Output::Reply(ServerReply {
                        result: ReplyResult::Granted {
                            handle: Handle(2),
                            ..
                        },
                        ..
                    })
                ]
            ),
            "{outputs:?}"
        );
        let returned_ms = 60_000;
        single.tick_to(returned_ms);
        single.ask(7, 2, Op::Checkin { handle: Handle(2) });
        // The idle time counts from the return, not from the checkout a minute before.
        let idle_ms = millis(Timing::lan().session_idle_max());
        assert_eq!(
            forgotten(&single.tick_to(returned_ms + idle_ms - 1_000)),
            []
        );
        assert_eq!(
            forgotten(&single.tick_to(returned_ms + idle_ms)),
            [ClientId(7)]
        );
    }
}
