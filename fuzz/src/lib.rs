//! Fuzz-side mirrors of hal-core's inputs, deriving [`Arbitrary`] (hal-core's own types
//! do not, and hal-core does not depend on `arbitrary`). Each mirror turns into the real
//! type with `build`, given a [`Context`] so that a value can be drawn near the state it
//! is fed to (the server's own term, its last index, a seat it holds) as well as over the
//! whole range of its type: the first reach deep states, the second the edges.
//!
//! Used by the `server_messages` and `client_replies` targets.

use std::sync::Arc;

use arbitrary::Arbitrary;
use hal_core::ServerId;
use hal_core::names::{NameField, NameProblem};
use hal_core::protocol::{
    ClientId, ClientRequest, Denial, Entry, Handle, Invalid, LogIndex, Op, PeerBody, RequestSeq,
    Snapshot, TERM_JUMP_MAX, Term,
};
use hal_core::seats::{Command, Seats};
use hal_core::time::{Now, Time, WallTime};

/// The wall clock at monotonic time 0: 2026-01-01T00:00:00Z.
pub const WALL_BASE_MS: u64 = 1_767_225_600_000;

/// Both clocks at monotonic `ms`.
pub fn now_at(ms: u64) -> Now {
    Now {
        mono: Time(ms),
        wall: WallTime(ms.saturating_add(WALL_BASE_MS)),
    }
}

/// What a value may be drawn relative to.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub term: u64,
    pub last_index: u64,
    pub commit: u64,
    /// Handles of the seats the state machine holds.
    pub handles: Vec<u64>,
    /// Wire numbers of requests recently sent (the client target).
    pub seqs: Vec<u64>,
    pub now_ms: u64,
}

/// A number over the whole range of `u64`, with the edges of what hal-core accepts
/// reachable in one step.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Wide {
    Small(u8),
    Edge(Edge),
    Any(u64),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Edge {
    Max,
    MaxLessOne,
    TermMax,
    TermMaxPlusOne,
    JumpMax,
    JumpMaxPlusOne,
}

impl Wide {
    pub fn value(self) -> u64 {
        match self {
            Wide::Small(n) => u64::from(n),
            Wide::Edge(Edge::Max) => u64::MAX,
            Wide::Edge(Edge::MaxLessOne) => u64::MAX - 1,
            Wide::Edge(Edge::TermMax) => Term::MAX.0,
            Wide::Edge(Edge::TermMaxPlusOne) => Term::MAX.0 + 1,
            Wide::Edge(Edge::JumpMax) => TERM_JUMP_MAX,
            Wide::Edge(Edge::JumpMaxPlusOne) => TERM_JUMP_MAX + 1,
            Wide::Any(n) => n,
        }
    }
}

/// A term: near the receiver's own, or anywhere.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum TermArg {
    Own(i8),
    Wide(Wide),
}

impl TermArg {
    pub fn build(self, cx: &Context) -> Term {
        match self {
            TermArg::Own(delta) => Term(cx.term.saturating_add_signed(i64::from(delta))),
            TermArg::Wide(w) => Term(w.value()),
        }
    }
}

/// A log index: near the receiver's last or commit index, or anywhere.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum IndexArg {
    Last(i8),
    Commit(i8),
    Wide(Wide),
}

impl IndexArg {
    pub fn build(self, cx: &Context) -> LogIndex {
        let near = |base: u64, delta: i8| LogIndex(base.saturating_add_signed(i64::from(delta)));
        match self {
            IndexArg::Last(delta) => near(cx.last_index, delta),
            IndexArg::Commit(delta) => near(cx.commit, delta),
            IndexArg::Wide(w) => LogIndex(w.value()),
        }
    }
}

/// A seat's handle: one the receiver holds, or anywhere.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum HandleArg {
    Held(u8),
    Wide(Wide),
}

impl HandleArg {
    pub fn build(self, cx: &Context) -> Handle {
        match self {
            HandleArg::Held(n) if !cx.handles.is_empty() => {
                Handle(cx.handles[usize::from(n) % cx.handles.len()])
            }
            HandleArg::Held(n) => Handle(u64::from(n)),
            HandleArg::Wide(w) => Handle(w.value()),
        }
    }
}

/// A server id; every position of the triad.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Sid(pub u8);

impl Sid {
    pub fn build(self) -> ServerId {
        ServerId::ALL[usize::from(self.0) % ServerId::ALL.len()]
    }
}

/// A feature, user or host name: the catalog's features, the edge cases of
/// [`hal_core::names`], or any text.
#[derive(Debug, Clone, Arbitrary)]
pub enum Name {
    Cad,
    Cam,
    Old,
    Empty,
    Long,
    Escape,
    Any(String),
}

impl Name {
    pub fn build(&self) -> Arc<str> {
        match self {
            Name::Cad => Arc::from("cad"),
            Name::Cam => Arc::from("cam"),
            Name::Old => Arc::from("old"),
            Name::Empty => Arc::from(""),
            Name::Long => Arc::from("x".repeat(300)),
            Name::Escape => Arc::from("a\u{1b}[2J"),
            Name::Any(text) => Arc::from(text.as_str()),
        }
    }
}

/// A log command, as any peer could write it.
#[derive(Debug, Clone, Arbitrary)]
pub enum CommandArg {
    Noop,
    Grant {
        client: Wide,
        seq: Wide,
        feature: Name,
        user: Name,
        host: Name,
        borrow_end: Option<Wide>,
        by: Sid,
        at: Wide,
    },
    Release {
        client: Wide,
        seq: Wide,
        handle: HandleArg,
    },
    Expire {
        handle: HandleArg,
    },
    Remove {
        client: Wide,
        seq: Wide,
        handles: Vec<HandleArg>,
        by: Name,
    },
    License {
        client: Wide,
        seq: Wide,
        text: LicenseArg,
        by: Name,
    },
    AdoptLicense {
        text: LicenseArg,
        by: Sid,
    },
    Options {
        client: Wide,
        seq: Wide,
        text: OptionsArg,
        by: Name,
    },
    Wait {
        client: Wide,
        seq: Wide,
        feature: Name,
        user: Name,
        host: Name,
        by: Sid,
        at: Wide,
    },
    Serve {
        id: HandleArg,
        client: Wide,
        seq: Wide,
        feature: Name,
        user: Name,
        host: Name,
        by: Sid,
        at: Wide,
    },
    Dequeue {
        id: HandleArg,
        client: Wide,
        seq: Wide,
        feature: Name,
        asked: bool,
    },
}

/// An options file in a push or a log entry: rules of every kind over a few names, or
/// anything.
#[derive(Debug, Clone, Arbitrary)]
pub enum OptionsArg {
    Rules {
        max: u8,
        reserve: u8,
        exclude: Name,
        include: Option<Name>,
    },
    Any(String),
}

impl OptionsArg {
    pub fn build(&self) -> Arc<str> {
        match self {
            OptionsArg::Rules {
                max,
                reserve,
                exclude,
                include,
            } => {
                let mut text = format!(
                    "GROUP eng ann bob\nMAX {} cad GROUP eng\nRESERVE {} cad USER carl\nEXCLUDE cad USER {}\n",
                    1 + u32::from(*max),
                    1 + u32::from(*reserve),
                    exclude.build()
                );
                if let Some(include) = include {
                    text.push_str(&format!("INCLUDE cad HOST {}\n", include.build()));
                }
                text.into()
            }
            OptionsArg::Any(text) => text.as_str().into(),
        }
    }
}

/// A license text in a push or a log entry: a valid one (of `count` seats of `cad`, a
/// HAL license or not, locked to HostIDs or not), anything, or one past the size limit.
#[derive(Debug, Clone, Arbitrary)]
pub enum LicenseArg {
    Valid { count: u8, hal: bool, locked: bool },
    Any(String),
    TooLarge,
}

impl LicenseArg {
    pub fn build(&self) -> Arc<str> {
        match self {
            LicenseArg::Valid { count, hal, locked } => {
                let mut text = format!("FEATURE cad {{\n VENDOR = acme\n COUNT = {count}\n");
                if *hal {
                    text.push_str(" HAL_SERVERS = 3\n");
                }
                if *locked {
                    text.push_str(" HOSTID = h1 h2 h3\n");
                }
                text.push_str("}\n");
                text.into()
            }
            LicenseArg::Any(text) => text.as_str().into(),
            LicenseArg::TooLarge => {
                "#".repeat(hal_core::license::limits::FILE_BYTES_MAX + 1).into()
            }
        }
    }
}

impl CommandArg {
    pub fn build(&self, cx: &Context) -> Command {
        match self {
            CommandArg::Noop => Command::Noop,
            CommandArg::Grant {
                client,
                seq,
                feature,
                user,
                host,
                borrow_end,
                by,
                at,
            } => Command::Grant {
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                feature: feature.build(),
                user: user.build(),
                host: host.build(),
                borrow_end: borrow_end.map(|w| WallTime(w.value())),
                by: by.build(),
                at: WallTime(at.value()),
            },
            CommandArg::Release {
                client,
                seq,
                handle,
            } => Command::Release {
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                handle: handle.build(cx),
            },
            CommandArg::Expire { handle } => Command::Expire {
                handle: handle.build(cx),
            },
            CommandArg::Remove {
                client,
                seq,
                handles,
                by,
            } => Command::Remove {
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                handles: handles.iter().map(|h| h.build(cx)).collect(),
                by: by.build(),
            },
            CommandArg::License {
                client,
                seq,
                text,
                by,
            } => Command::License {
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                text: text.build(),
                by: by.build(),
            },
            CommandArg::AdoptLicense { text, by } => Command::AdoptLicense {
                text: text.build(),
                by: by.build(),
            },
            CommandArg::Options {
                client,
                seq,
                text,
                by,
            } => Command::Options {
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                text: text.build(),
                by: by.build(),
            },
            CommandArg::Wait {
                client,
                seq,
                feature,
                user,
                host,
                by,
                at,
            } => Command::Wait {
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                feature: feature.build(),
                user: user.build(),
                host: host.build(),
                by: by.build(),
                at: WallTime(at.value()),
            },
            CommandArg::Serve {
                id,
                client,
                seq,
                feature,
                user,
                host,
                by,
                at,
            } => Command::Serve {
                id: id.build(cx),
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                feature: feature.build(),
                user: user.build(),
                host: host.build(),
                by: by.build(),
                at: WallTime(at.value()),
            },
            CommandArg::Dequeue {
                id,
                client,
                seq,
                feature,
                asked,
            } => Command::Dequeue {
                id: id.build(cx),
                client: ClientId(client.value()),
                seq: RequestSeq(seq.value()),
                feature: feature.build(),
                asked: *asked,
            },
        }
    }
}

/// The most entries in one fuzzed append or donation, and commands in one snapshot: a
/// few are enough to reach every path, and keep each run fast.
const ENTRIES_MAX: usize = 8;

fn entries(list: &[(TermArg, CommandArg)], cx: &Context) -> Vec<Arc<Entry>> {
    list.iter()
        .take(ENTRIES_MAX)
        .map(|(term, command)| {
            Arc::new(Entry {
                term: term.build(cx),
                command: command.build(cx),
            })
        })
        .collect()
}

/// A snapshot whose seat table is built by applying arbitrary commands to an empty one
/// (so internally consistent, but of any feature, client and size).
#[derive(Debug, Clone, Arbitrary)]
pub struct SnapshotArg {
    pub last_index: IndexArg,
    pub last_term: TermArg,
    pub count: u8,
    pub commands: Vec<CommandArg>,
}

impl SnapshotArg {
    pub fn build(&self, cx: &Context) -> Arc<Snapshot> {
        let mut seats = Seats::new();
        let count = u32::from(self.count % 5);
        for (i, command) in self.commands.iter().take(ENTRIES_MAX).enumerate() {
            let index = LogIndex(u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1));
            seats.apply(index, &command.build(cx), |_| Some(count));
        }
        Arc::new(Snapshot {
            last_index: self.last_index.build(cx),
            last_term: self.last_term.build(cx),
            seats,
        })
    }
}

/// Every [`PeerBody`], every field over its range.
#[derive(Debug, Clone, Arbitrary)]
pub enum PeerBodyArg {
    PreVote {
        last_index: IndexArg,
        last_term: TermArg,
    },
    PreVoteReply {
        granted: bool,
    },
    RequestVote {
        last_index: IndexArg,
        last_term: TermArg,
        transfer: bool,
    },
    VoteReply {
        granted: bool,
    },
    Append {
        prev_index: IndexArg,
        prev_term: TermArg,
        entries: Vec<(TermArg, CommandArg)>,
        commit: IndexArg,
        round: Wide,
    },
    AppendReply {
        success: bool,
        match_index: IndexArg,
        round: Wide,
    },
    InstallSnapshot {
        snapshot: SnapshotArg,
        round: Wide,
    },
    TimeoutNow,
    Donate {
        prev_index: IndexArg,
        prev_term: TermArg,
        entries: Vec<(TermArg, CommandArg)>,
        last_index: IndexArg,
        last_term: TermArg,
    },
    DonateSnapshot {
        snapshot: SnapshotArg,
        last_index: IndexArg,
        last_term: TermArg,
    },
    DonateReply {
        success: bool,
        match_index: IndexArg,
    },
    Presence {
        last_index: IndexArg,
        last_term: TermArg,
        hears_you: bool,
        connected_for_ms: Wide,
    },
    PresenceAck,
    PrimaryHeard {
        for_ms: Wide,
        last_index: IndexArg,
        last_term: TermArg,
    },
    HandOver,
}

impl PeerBodyArg {
    pub fn build(&self, cx: &Context) -> PeerBody {
        match self {
            PeerBodyArg::PreVote {
                last_index,
                last_term,
            } => PeerBody::PreVote {
                last_index: last_index.build(cx),
                last_term: last_term.build(cx),
            },
            PeerBodyArg::PreVoteReply { granted } => PeerBody::PreVoteReply { granted: *granted },
            PeerBodyArg::RequestVote {
                last_index,
                last_term,
                transfer,
            } => PeerBody::RequestVote {
                last_index: last_index.build(cx),
                last_term: last_term.build(cx),
                transfer: *transfer,
            },
            PeerBodyArg::VoteReply { granted } => PeerBody::VoteReply { granted: *granted },
            PeerBodyArg::Append {
                prev_index,
                prev_term,
                entries: list,
                commit,
                round,
            } => PeerBody::Append {
                prev_index: prev_index.build(cx),
                prev_term: prev_term.build(cx),
                entries: entries(list, cx),
                commit: commit.build(cx),
                round: round.value(),
            },
            PeerBodyArg::AppendReply {
                success,
                match_index,
                round,
            } => PeerBody::AppendReply {
                success: *success,
                match_index: match_index.build(cx),
                round: round.value(),
            },
            PeerBodyArg::InstallSnapshot { snapshot, round } => PeerBody::InstallSnapshot {
                snapshot: snapshot.build(cx),
                round: round.value(),
            },
            PeerBodyArg::TimeoutNow => PeerBody::TimeoutNow,
            PeerBodyArg::Donate {
                prev_index,
                prev_term,
                entries: list,
                last_index,
                last_term,
            } => PeerBody::Donate {
                prev_index: prev_index.build(cx),
                prev_term: prev_term.build(cx),
                entries: entries(list, cx),
                last_index: last_index.build(cx),
                last_term: last_term.build(cx),
            },
            PeerBodyArg::DonateSnapshot {
                snapshot,
                last_index,
                last_term,
            } => PeerBody::DonateSnapshot {
                snapshot: snapshot.build(cx),
                last_index: last_index.build(cx),
                last_term: last_term.build(cx),
            },
            PeerBodyArg::DonateReply {
                success,
                match_index,
            } => PeerBody::DonateReply {
                success: *success,
                match_index: match_index.build(cx),
            },
            PeerBodyArg::Presence {
                last_index,
                last_term,
                hears_you,
                connected_for_ms,
            } => PeerBody::Presence {
                last_index: last_index.build(cx),
                last_term: last_term.build(cx),
                hears_you: *hears_you,
                connected_for_ms: connected_for_ms.value(),
            },
            PeerBodyArg::PresenceAck => PeerBody::PresenceAck,
            PeerBodyArg::PrimaryHeard {
                for_ms,
                last_index,
                last_term,
            } => PeerBody::PrimaryHeard {
                for_ms: for_ms.value(),
                last_index: last_index.build(cx),
                last_term: last_term.build(cx),
            },
            PeerBodyArg::HandOver => PeerBody::HandOver,
        }
    }
}

/// Every client [`Op`], names and handles over their ranges.
#[derive(Debug, Clone, Arbitrary)]
pub enum OpArg {
    Checkout {
        feature: Name,
        user: Name,
        host: Name,
    },
    Borrow {
        feature: Name,
        user: Name,
        host: Name,
        hours: u32,
    },
    Checkin {
        handle: HandleArg,
    },
    Return {
        handle: HandleArg,
    },
    Heartbeat {
        handles: Vec<HandleArg>,
    },
    /// A heartbeat listing `HEARTBEAT_HANDLES_MAX + 1 + n` seats.
    HeartbeatTooLong {
        extra: u8,
    },
    /// An administrator's removal of one seat, or of a holder's seats.
    RemoveHandle {
        handle: HandleArg,
        by: Name,
    },
    RemoveHolder {
        user: Name,
        host: Option<Name>,
        feature: Option<Name>,
        by: Name,
    },
    /// An administrator's license push.
    PushLicense {
        text: LicenseArg,
        by: Name,
    },
    /// An administrator's options push.
    PushOptions {
        text: OptionsArg,
        by: Name,
    },
    /// A checkout that waits in the queue, and its leaving.
    Wait {
        feature: Name,
        user: Name,
        host: Name,
    },
    StopWaiting,
}

impl OpArg {
    pub fn build(&self, cx: &Context) -> Op {
        match self {
            OpArg::Checkout {
                feature,
                user,
                host,
            } => Op::Checkout {
                feature: feature.build(),
                user: user.build(),
                host: host.build(),
            },
            OpArg::Borrow {
                feature,
                user,
                host,
                hours,
            } => Op::Borrow {
                feature: feature.build(),
                user: user.build(),
                host: host.build(),
                hours: *hours,
            },
            OpArg::Checkin { handle } => Op::Checkin {
                handle: handle.build(cx),
            },
            OpArg::Return { handle } => Op::Return {
                handle: handle.build(cx),
            },
            OpArg::Heartbeat { handles } => Op::Heartbeat {
                handles: handles.iter().map(|h| h.build(cx)).collect(),
            },
            OpArg::RemoveHandle { handle, by } => Op::Remove {
                target: hal_core::protocol::RemoveTarget::Handle(handle.build(cx)),
                by: by.build(),
            },
            OpArg::RemoveHolder {
                user,
                host,
                feature,
                by,
            } => Op::Remove {
                target: hal_core::protocol::RemoveTarget::Holder {
                    user: user.build(),
                    host: host.as_ref().map(Name::build),
                    feature: feature.as_ref().map(Name::build),
                },
                by: by.build(),
            },
            OpArg::PushLicense { text, by } => Op::PushLicense {
                text: text.build(),
                by: by.build(),
            },
            OpArg::PushOptions { text, by } => Op::PushOptions {
                text: text.build(),
                by: by.build(),
            },
            OpArg::Wait {
                feature,
                user,
                host,
            } => Op::Wait {
                feature: feature.build(),
                user: user.build(),
                host: host.build(),
            },
            OpArg::StopWaiting => Op::StopWaiting,
            OpArg::HeartbeatTooLong { extra } => {
                let len = hal_core::protocol::HEARTBEAT_HANDLES_MAX + 1 + usize::from(*extra);
                Op::Heartbeat {
                    handles: vec![Handle(1); len],
                }
            }
        }
    }
}

/// A client request: a client id and sequence number over their ranges.
#[derive(Debug, Clone, Arbitrary)]
pub struct RequestArg {
    pub client: Wide,
    pub seq: Wide,
    pub op: OpArg,
}

impl RequestArg {
    pub fn build(&self, cx: &Context) -> ClientRequest {
        ClientRequest {
            client: ClientId(self.client.value()),
            seq: RequestSeq(self.seq.value()),
            op: self.op.build(cx),
        }
    }
}

/// Every [`Denial`] a server sends.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum DenialArg {
    NoMajority,
    NotActive(Option<Sid>),
    AllInUse { used: u32, count: u32 },
    BorrowUnavailable,
    BorrowNotAllowed,
    UnknownFeature,
    UnknownHandle,
    LicenseExpired,
    HostIdMismatch,
    InvalidName { field: u8, too_long: bool },
    TooManyHandles,
    NotIncluded,
    Excluded,
    OverMax,
    Reserved,
    BorrowOverMax,
}

impl DenialArg {
    pub fn build(self) -> Denial {
        match self {
            DenialArg::NoMajority => Denial::NoMajority,
            DenialArg::NotActive(active) => Denial::NotActive {
                active: active.map(Sid::build),
            },
            DenialArg::AllInUse { used, count } => Denial::AllInUse { used, count },
            DenialArg::BorrowUnavailable => Denial::BorrowUnavailable,
            DenialArg::BorrowNotAllowed => Denial::BorrowNotAllowed,
            DenialArg::UnknownFeature => Denial::UnknownFeature,
            DenialArg::UnknownHandle => Denial::UnknownHandle,
            DenialArg::LicenseExpired => Denial::LicenseExpired,
            DenialArg::HostIdMismatch => Denial::HostIdMismatch,
            DenialArg::InvalidName { field, too_long } => {
                let field =
                    [NameField::Feature, NameField::User, NameField::Host][usize::from(field) % 3];
                let problem = if too_long {
                    NameProblem::TooLong
                } else {
                    NameProblem::ControlCharacter
                };
                Denial::InvalidRequest(Invalid::Name { field, problem })
            }
            DenialArg::TooManyHandles => Denial::InvalidRequest(Invalid::TooManyHandles),
            DenialArg::NotIncluded => Denial::NotIncluded,
            DenialArg::Excluded => Denial::Excluded,
            DenialArg::OverMax => Denial::OverMax,
            DenialArg::Reserved => Denial::Reserved,
            DenialArg::BorrowOverMax => Denial::BorrowOverMax,
        }
    }
}
