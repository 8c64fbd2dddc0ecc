//! The history record: one typed definition of every line of a simulated run's history
//! (hal-sim) and of a production server's journal (hal-net), read back by the invariant
//! checkers, the timeline, the importer and the usage report.
//!
//! A line is a JSON object whose `kind` names the record (`{"kind":"role","t_ms":…}`);
//! the format reference (scenarios/README.md, "History and journal format") documents
//! every record and field. Readers ignore fields they do not know, so a newer writer's
//! additions do not break an older reader; [`SCHEMA`] in the `meta` record says which
//! version wrote the file.
//!
//! Times: `t_ms` is simulated ms since the start of a run in a history, and wall-clock
//! ms since the Unix epoch (the server's own clock) in a journal, where each line also
//! carries the server's monotonic ms since it started (`mono_ms`, on [`Entry`]).
//!
//! Clients are named strings in a history (`c4`) and hexadecimal client ids in a journal
//! (`00a1b2c3d4e5f607`); servers are numbers 1 to 3.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod reply;

pub use reply::{Answer, Grant, HeartbeatAnswer, ReplyRecord};

/// The version of this format, in every `meta` record. 1: the records of DESIGN §6.4 and
/// their additions up to the typed definition; 2: typed, with the journal's records.
pub const SCHEMA: u32 = 2;

/// One line: a record, and in a journal the writer's monotonic time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub record: Record,
    /// The writing server's monotonic ms since it started (journals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mono_ms: Option<u64>,
}

impl From<Record> for Entry {
    fn from(record: Record) -> Entry {
        Entry {
            record,
            mono_ms: None,
        }
    }
}

/// Every record, by its `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first line of a history and of every journal file.
    Meta(Meta),
    /// A fault the simulator injected (histories only).
    Fault(Fault),
    /// A server's role changed.
    Role(RoleRecord),
    /// A client sent a request (histories: what the client's library sent).
    Request(RequestRecord),
    /// A client got a reply (histories: what the client's library received).
    Reply(ReplyRecord),
    /// Something the client library told its application.
    Client(ClientRecord),
    /// A server applied a grant (histories only; journals have [`Record::Seat`]).
    Applied(Applied),
    /// A server's applied state at an index, taken into a snapshot or installed.
    Checkpoint(Checkpoint),
    /// A scenario's expectation, judged.
    Expect(Expect),
    /// An impostor tried to join the triad (histories only).
    Impostor(Impostor),
    /// The active server's seat table, read by the harness when calm.
    Audit(Audit),
    /// The end of a run.
    End(End),
    /// A server process started, and what it recovered from disk (journals).
    Start(Start),
    /// A server process stopped cleanly (journals).
    Stop(Stop),
    /// A server's link to a peer came up or went down (journals).
    Link(LinkRecord),
    /// A server's estimate of a peer's clock (journals).
    PeerClock(PeerClock),
    /// A server answered a client's request (journals).
    Served(Served),
    /// A server applied a change to its seat table (journals).
    Seat(SeatRecord),
    /// The journal writer dropped records (it fell behind, or the disk failed).
    Dropped(Dropped),
    /// A server applied an administrator's removal of a client's seat (histories only;
    /// journals have [`Record::Seat`]).
    Removed(RemovedRecord),
    /// A server switched to a license pushed (or adopted) at a log index.
    License(LicenseRecord),
    /// A server applied an options file pushed at a log index.
    Options(OptionsRecord),
}

impl Record {
    /// The record's time (`None` for a history's meta record).
    pub fn t_ms(&self) -> Option<u64> {
        Some(match self {
            Record::Meta(r) => return r.t_ms,
            Record::Fault(r) => r.t_ms,
            Record::Role(r) => r.t_ms,
            Record::Request(r) => r.t_ms,
            Record::Reply(r) => r.t_ms,
            Record::Client(r) => r.t_ms,
            Record::Applied(r) => r.t_ms,
            Record::Checkpoint(r) => r.t_ms,
            Record::Expect(r) => r.t_ms,
            Record::Impostor(r) => r.t_ms,
            Record::Audit(r) => r.t_ms,
            Record::End(r) => r.t_ms,
            Record::Start(r) => r.t_ms,
            Record::Stop(r) => r.t_ms,
            Record::Link(r) => r.t_ms,
            Record::PeerClock(r) => r.t_ms,
            Record::Served(r) => r.t_ms,
            Record::Seat(r) => r.t_ms,
            Record::Dropped(r) => r.t_ms,
            Record::Removed(r) => r.t_ms,
            Record::License(r) => r.t_ms,
            Record::Options(r) => r.t_ms,
        })
    }

    /// Sets the record's time (a journal's records are stamped by its writer).
    pub fn set_t_ms(&mut self, t: u64) {
        match self {
            Record::Meta(r) => r.t_ms = Some(t),
            Record::Fault(r) => r.t_ms = t,
            Record::Role(r) => r.t_ms = t,
            Record::Request(r) => r.t_ms = t,
            Record::Reply(r) => r.t_ms = t,
            Record::Client(r) => r.t_ms = t,
            Record::Applied(r) => r.t_ms = t,
            Record::Checkpoint(r) => r.t_ms = t,
            Record::Expect(r) => r.t_ms = t,
            Record::Impostor(r) => r.t_ms = t,
            Record::Audit(r) => r.t_ms = t,
            Record::End(r) => r.t_ms = t,
            Record::Start(r) => r.t_ms = t,
            Record::Stop(r) => r.t_ms = t,
            Record::Link(r) => r.t_ms = t,
            Record::PeerClock(r) => r.t_ms = t,
            Record::Served(r) => r.t_ms = t,
            Record::Seat(r) => r.t_ms = t,
            Record::Dropped(r) => r.t_ms = t,
            Record::Removed(r) => r.t_ms = t,
            Record::License(r) => r.t_ms = t,
            Record::Options(r) => r.t_ms = t,
        }
    }

    /// The record's `kind`, as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Meta(_) => "meta",
            Record::Fault(_) => "fault",
            Record::Role(_) => "role",
            Record::Request(_) => "request",
            Record::Reply(_) => "reply",
            Record::Client(_) => "client",
            Record::Applied(_) => "applied",
            Record::Checkpoint(_) => "checkpoint",
            Record::Expect(_) => "expect",
            Record::Impostor(_) => "impostor",
            Record::Audit(_) => "audit",
            Record::End(_) => "end",
            Record::Start(_) => "start",
            Record::Stop(_) => "stop",
            Record::Link(_) => "link",
            Record::PeerClock(_) => "peer_clock",
            Record::Served(_) => "served",
            Record::Seat(_) => "seat",
            Record::Dropped(_) => "dropped",
            Record::Removed(_) => "removed",
            Record::License(_) => "license",
            Record::Options(_) => "options",
        }
    }
}

/// A feature as the meta record states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureMeta {
    pub count: u32,
    /// Whether the triad serves it (a HAL feature) rather than a single server.
    pub hal: bool,
}

/// The first line: what the run or the server was, and the protocol's timers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    /// The format's version ([`SCHEMA`]); 1 when absent (files written before it).
    #[serde(default = "schema_one")]
    pub schema: u32,
    /// When the journal file was started (journals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_ms: Option<u64>,
    /// The simulation's seed (histories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub features: BTreeMap<String, FeatureMeta>,
    pub lease_ms: u64,
    pub election_timeout_ms: u64,
    pub failover_delay_ms: u64,
    pub failback_hold_ms: u64,
    pub max_clock_skew_ms: u64,
    /// When the liveness phase starts, and its bound (histories whose run has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_from_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_bound_ms: Option<u64>,
    /// The scenario's name (histories of scenario files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The server that writes the journal, 1 to 3 (journals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<u8>,
    /// The writing program's version (journals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The triad, `port@host` in role order (journals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triad: Option<Vec<String>>,
    /// The protocol's other timers, in ms (journals only; for the importer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_ms: Option<BTreeMap<String, u64>>,
}

fn schema_one() -> u32 {
    1
}

fn ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Meta {
    /// A meta record of this schema with the protocol's timers from `timing` and the
    /// `features`; the rest unset.
    pub fn new(timing: &crate::timing::Timing, features: BTreeMap<String, FeatureMeta>) -> Meta {
        Meta {
            schema: SCHEMA,
            features,
            lease_ms: ms(timing.client_lease),
            election_timeout_ms: ms(timing.election_timeout),
            failover_delay_ms: ms(timing.failover_delay),
            failback_hold_ms: ms(timing.failback_hold),
            max_clock_skew_ms: ms(timing.max_clock_skew),
            ..Meta::default()
        }
    }
}

/// One side of a fault: a server (a number) or a client machine (its name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Party {
    Server(u8),
    Client(String),
}

/// What a fault did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Partition,
    Repair,
    PartitionOneway,
    RepairOneway,
    Crash,
    /// A server stopped cleanly (the harness's `stop`), recorded when its process exits.
    Stop,
    Restart,
    Hold,
    Release,
    Link,
    Clock,
}

impl FaultKind {
    /// The name written in the history.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Repair => "repair",
            FaultKind::PartitionOneway => "partition_oneway",
            FaultKind::RepairOneway => "repair_oneway",
            FaultKind::Crash => "crash",
            FaultKind::Stop => "stop",
            FaultKind::Restart => "restart",
            FaultKind::Hold => "hold",
            FaultKind::Release => "release",
            FaultKind::Link => "link",
            FaultKind::Clock => "clock",
        }
    }
}

/// A link's state after a `link` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Normal,
    Slow,
    Flapping,
}

/// A fault between groups `a` and `b` (or of `a` alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub t_ms: u64,
    pub fault: FaultKind,
    pub a: Vec<Party>,
    pub b: Vec<Party>,
    /// A `link` fault's new state, and a slow link's latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<LinkState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// A `clock` fault's offset and drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<i64>,
    /// Why a partition holds from the start (a refused link), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Fault {
    /// A fault with no more than its sides.
    pub fn new(t_ms: u64, fault: FaultKind, a: Vec<Party>, b: Vec<Party>) -> Fault {
        Fault {
            t_ms,
            fault,
            a,
            b,
            state: None,
            latency_ms: None,
            offset_ms: None,
            drift_ppm: None,
            cause: None,
        }
    }

    /// The servers on side `a` (client machines left out).
    pub fn servers_a(&self) -> impl Iterator<Item = u8> + '_ {
        servers(&self.a)
    }

    /// The servers on side `b`.
    pub fn servers_b(&self) -> impl Iterator<Item = u8> + '_ {
        servers(&self.b)
    }
}

fn servers(side: &[Party]) -> impl Iterator<Item = u8> + '_ {
    side.iter().filter_map(|p| match p {
        Party::Server(s) => Some(*s),
        Party::Client(_) => None,
    })
}

/// A server's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Active,
    Standby,
    /// Crashed or stopped (histories: written by the harness at a crash).
    Down,
}

impl From<crate::server::Role> for RoleName {
    fn from(role: crate::server::Role) -> RoleName {
        match role {
            crate::server::Role::Active => RoleName::Active,
            crate::server::Role::Standby => RoleName::Standby,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub t_ms: u64,
    pub server: u8,
    pub role: RoleName,
    pub term: u64,
}

/// A request's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpName {
    Checkout,
    Checkin,
    Heartbeat,
    Borrow,
    Return,
    /// An administrator's removal (`hal-net remove`).
    Remove,
    /// An administrator's license push (`hal-net license push`, SIGHUP).
    PushLicense,
    /// An administrator's options push (`hal-net options push`).
    PushOptions,
    /// A checkout that waits in the feature's queue when every seat is in use
    /// (`checkout --wait`); sent again with the same `req` while it waits.
    Wait,
    /// A waiting checkout leaves its queue (its wait is over).
    StopWaiting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub t_ms: u64,
    pub client: String,
    pub req: u64,
    pub op: OpName,
    /// The server it went to (`null` while the client does not know which server its
    /// path entry is).
    pub server: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// A reply's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultName {
    Granted,
    Denied,
    Ok,
    UnknownHandle,
    /// A wait is in its feature's queue (`position` says where).
    Queued,
    /// A wait left its queue without a seat.
    LeftQueue,
}

/// Something the client library told its application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub t_ms: u64,
    pub client: String,
    #[serde(flatten)]
    pub event: ClientEventRecord,
}

/// The client library's event, by its `event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClientEventRecord {
    /// The client's lease on `handle` ran out: it no longer holds the seat.
    Lost {
        handle: Option<String>,
    },
    /// A borrow ended.
    BorrowEnd {
        handle: Option<String>,
    },
    /// The client stopped (its application exited).
    Stopped {
        handle: Option<String>,
    },
    /// The client's machine crashed while it held `handle` (one record per seat).
    Crashed {
        handle: Option<String>,
    },
    /// The client's process was frozen (SIGSTOP), and thawed.
    Frozen {
        handle: Option<String>,
    },
    Thawed {
        handle: Option<String>,
    },
    /// The client did not take a conditional step (`unless_held`, `if_held`) of the
    /// scenario's line `line`: it held such a seat already (`held`), or held none.
    Skipped {
        line: u64,
        held: bool,
    },
    /// The application was told "granted" for request `req`.
    Granted {
        req: u64,
        feature: String,
        handle: String,
        server: u8,
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        borrow_end_ms: Option<u64>,
    },
    /// The application was told "denied".
    Denied {
        req: u64,
        reason: String,
        attempts: u32,
    },
    /// No server answered in time; the request may have taken effect. `reason`: the
    /// last refusal a server gave, if any.
    Unknown {
        req: u64,
        attempts: u32,
        reason: Option<String>,
    },
    /// A request given up earlier was settled: `handle` is the seat it produced (or
    /// kept), now released.
    Resolved {
        req: u64,
        handle: Option<String>,
    },
    /// The application was told its checkin or return was done.
    Released {
        req: u64,
        handle: String,
        attempts: u32,
    },
    /// The application was told an administrator removed its seat `handle`.
    Removed {
        handle: Option<String>,
    },
}

/// A server applied a grant: request `req` of `client` got `handle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub t_ms: u64,
    pub server: u8,
    pub client: String,
    pub req: u64,
    pub handle: String,
}

/// A server applied an administrator's removal: `client` no longer holds `handle`, by
/// the will of `by` (the operator's `user@host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedRecord {
    pub t_ms: u64,
    pub server: u8,
    pub client: String,
    pub handle: String,
    pub by: String,
}

/// A server switched to the license in force from log index `index` (pushed or adopted
/// `by`), which has these features and COUNTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRecord {
    pub t_ms: u64,
    pub server: u8,
    pub index: u64,
    pub by: String,
    pub features: BTreeMap<String, u32>,
}

impl LicenseRecord {
    /// The record of server `server` switching to the license `text`, in force from
    /// `index`: its counted features and their COUNTs (none if it does not parse).
    pub fn new(t_ms: u64, server: u8, index: u64, by: &str, text: &str) -> LicenseRecord {
        let features = match crate::license::parse("license", text.as_bytes()) {
            Ok(license) => license
                .features
                .iter()
                .filter_map(|f| Some((f.name.to_string(), f.count?)))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        LicenseRecord {
            t_ms,
            server,
            index,
            by: by.to_string(),
            features,
        }
    }
}

/// A server applied the options file `text` (empty: none), in force from log index
/// `index`, pushed `by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionsRecord {
    pub t_ms: u64,
    pub server: u8,
    pub index: u64,
    pub by: String,
    pub text: String,
}

/// How a checkpoint's state came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotHow {
    Taken,
    Installed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub t_ms: u64,
    pub server: u8,
    pub index: u64,
    /// The applied state's digest, 16 hexadecimal digits.
    pub digest: String,
    pub snapshot: SnapshotHow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    pub t_ms: u64,
    /// The scenario file's line that states it.
    pub line: usize,
    pub met: bool,
    pub expected: String,
    pub saw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impostor {
    pub t_ms: u64,
    pub claimed: u8,
    pub server: u8,
    /// `refused`, `welcomed` or `unanswered`.
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub handle: String,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub t_ms: u64,
    pub server: u8,
    pub holders: Vec<Holder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub t_ms: u64,
}

/// What a starting server recovered from its data directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recovery {
    /// The term and vote it had.
    pub term: u64,
    /// The snapshot it loaded (the index it covers), if any.
    pub snapshot_index: Option<u64>,
    /// The last log index it recovered.
    pub last_index: u64,
    /// Facts about the files (a torn tail cut off, a leftover temporary file removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub t_ms: u64,
    pub server: u8,
    pub version: String,
    pub pid: u32,
    pub recovered: Recovery,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub t_ms: u64,
    pub server: u8,
    /// Why: `shutdown` (a signal), or the error it stopped on.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub t_ms: u64,
    pub server: u8,
    pub peer: u8,
    pub up: bool,
    /// Why it went down, or why the peer refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `server`'s estimate of `peer`'s wall clock: the peer's reading minus this server's,
/// from a ping and its pong (`rtt_ms` apart; the estimate is off by at most half of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerClock {
    pub t_ms: u64,
    pub server: u8,
    pub peer: u8,
    pub offset_ms: i64,
    pub rtt_ms: u64,
}

/// A server's answer to a client's request, with the request.
///
/// Its names are `String`s when read; a journal writes them from borrowed `&str`s (`S`),
/// so that a busy server's most frequent record costs it no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served<S = String> {
    pub t_ms: u64,
    pub server: u8,
    /// The client's id (16 hexadecimal digits).
    pub client: S,
    pub req: u64,
    pub op: OpName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<S>,
    pub result: ResultName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrow_end_ms: Option<u64>,
    /// How long the request waited on this server for its answer (monotonic ms): it
    /// was received at `t_ms - waited_ms`. A grant waits for a majority to sync it, a
    /// refusal does not, so answers alone misorder requests that raced for a seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    /// How many client requests this server had received since it started when this
    /// one came (a retry counts again): the order of requests received within the same
    /// millisecond, which a seat they raced for depended on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
}

/// A change to the seat table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatChangeName {
    /// A checkout's seat.
    Granted,
    /// A borrow's seat.
    Borrowed,
    /// A checkin.
    Released,
    /// A borrow returned early.
    Returned,
    /// A lease or a borrow ran out.
    Expired,
    /// An administrator removed the seat (`removed_by` says who).
    Removed,
    /// A wait joined the feature's queue (`handle` is its place's id, `req` the wait).
    Queued,
    /// A wait left the queue without a seat (`handle` is its place's id).
    LeftQueue,
}

/// A server applied the log entry at `index`, which changed its seat table.
///
/// Its names are `String`s when read, and borrowed `&str`s (`S`) when a journal writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRecord<S = String> {
    pub t_ms: u64,
    pub server: u8,
    pub index: u64,
    pub change: SeatChangeName,
    pub handle: S,
    pub feature: S,
    /// The holder's client id (16 hexadecimal digits).
    pub client: S,
    /// The request that made the change (grants, releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<S>,
    /// The leader that decided a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrow_end_ms: Option<u64>,
    /// Who removed the seat (`removed`): the operator's `user@host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<S>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub t_ms: u64,
    pub server: u8,
    /// How many records were lost since the last such record.
    pub records: u64,
    /// Why: the writer fell behind (its buffer was full) or the disk failed.
    pub reason: String,
}
