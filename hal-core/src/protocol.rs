//! The protocol's messages, as plain data: between the three servers (replication), and
//! between a client and a server (requests, replies, denials).
//!
//! The wire encoding is the shell's business; every type here derives serde so the shell
//! can pick a codec.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ServerId;
use crate::seats::{Command, Seats};
use crate::time::WallTime;

/// A Raft term: a number that only grows, one leader at most per term.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Term(pub u64);

/// A position in the replicated log, from 1; 0 means "before the first entry".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct LogIndex(pub u64);

/// A client library instance, identified by a random number the shell draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

/// A client's request number; each new request takes the next, a retry keeps its own.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct RequestSeq(pub u64);

/// A seat's handle: the log index of the entry that granted it, so unique forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Handle(pub u64);

/// How far past its own term a server lets a peer's term take it in one step: more
/// elections than a triad holds in a century (each is a failover or a failback), so only a
/// broken or lying peer claims more.
pub const TERM_JUMP_MAX: u64 = 1 << 32;

impl Term {
    /// The highest term a server adopts or reaches. No real triad gets near it (a term is
    /// an election); it keeps every sum of a term and a step below `u64::MAX`, so nothing
    /// that adds to a term can wrap.
    pub const MAX: Term = Term(1 << 62);

    /// The term after this one, or `None` at [`Term::MAX`].
    pub fn next(self) -> Option<Term> {
        (self < Term::MAX).then(|| Term(self.0.saturating_add(1)))
    }

    /// Whether a peer may move a server at `own` term to this one: not past [`Term::MAX`],
    /// and not more than [`TERM_JUMP_MAX`] ahead.
    pub fn is_plausible_from(self, own: Term) -> bool {
        self <= Term::MAX && self.0 <= own.0.saturating_add(TERM_JUMP_MAX)
    }
}

/// How far past its own last index a server lets a peer's snapshot or claims take it in
/// one step: more entries than a busy triad writes in years (a trillion), so that one
/// message, however plausible each field, cannot move a log to the end of its range.
pub const INDEX_JUMP_MAX: u64 = 1 << 40;

impl LogIndex {
    /// The highest log index a server stores or accepts: a log of 2^62 entries would take
    /// a million years at a million entries a second; below it, no index arithmetic wraps.
    pub const MAX: LogIndex = LogIndex(1 << 62);

    /// The index after this one, or `None` at [`LogIndex::MAX`].
    pub fn next(self) -> Option<LogIndex> {
        self.plus(1)
    }

    /// The index after this one (saturating; indices stay below [`LogIndex::MAX`]).
    pub fn after(self) -> LogIndex {
        LogIndex(self.0.saturating_add(1))
    }

    /// The index before this one (0, "before the first entry", stays 0).
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// Whether a peer may move a server whose log ends at `own` to this index: not past
    /// [`LogIndex::MAX`], and not more than [`INDEX_JUMP_MAX`] ahead.
    pub fn is_plausible_from(self, own: LogIndex) -> bool {
        self <= LogIndex::MAX && self.0 <= own.0.saturating_add(INDEX_JUMP_MAX)
    }

    /// The index `n` entries on, or `None` past [`LogIndex::MAX`].
    pub fn plus(self, n: usize) -> Option<LogIndex> {
        let n = u64::try_from(n).ok()?;
        let index = LogIndex(self.0.checked_add(n)?);
        (index <= LogIndex::MAX).then_some(index)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{:x}", self.0)
    }
}

/// One replicated log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub command: Command,
}

/// A message from one server to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMessage {
    pub from: ServerId,
    pub to: ServerId,
    pub term: Term,
    pub body: PeerBody,
}

/// What one server tells another (Raft's RPCs, with HAL's pre-vote and transfer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerBody {
    /// "Would you vote for me in term `term`?" Sent without raising the sender's term.
    PreVote {
        last_index: LogIndex,
        last_term: Term,
    },
    PreVoteReply {
        granted: bool,
    },
    /// A real vote request; `transfer` is set when the leader handed over leadership, so
    /// voters do not wait out their leader lease.
    RequestVote {
        last_index: LogIndex,
        last_term: Term,
        transfer: bool,
    },
    VoteReply {
        granted: bool,
    },
    /// Log entries after (`prev_index`, `prev_term`), and the leader's commit index.
    /// `round` numbers the leader's heartbeat rounds so acks can be matched to send times.
    Append {
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Arc<Entry>>,
        commit: LogIndex,
        round: u64,
    },
    /// `success` with the follower's last matching index, or a hint where to retry.
    AppendReply {
        success: bool,
        match_index: LogIndex,
        round: u64,
    },
    /// The leader's snapshot, for a follower that is behind the leader's log start.
    InstallSnapshot {
        snapshot: Arc<Snapshot>,
        round: u64,
    },
    /// Leadership transfer: "campaign now".
    TimeoutNow,
    /// Log donation: entries after (`prev_index`, `prev_term`) from a server whose log
    /// (ending at `last_index`, `last_term`) is more up to date than the receiver's. Sent
    /// by a server that refused the receiver's (pre-)vote only because its log was
    /// behind, so that #1 with #3 can elect #1 even when only #3 holds the newest seats
    /// (#3 never leads, so it cannot bring #1 up to date as a leader would).
    Donate {
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Arc<Entry>>,
        last_index: LogIndex,
        last_term: Term,
    },
    /// Log donation when the receiver is behind the donor's snapshot.
    DonateSnapshot {
        snapshot: Arc<Snapshot>,
        last_index: LogIndex,
        last_term: Term,
    },
    /// The receiver's answer to a donation: what it now matches, or where to resume.
    DonateReply {
        success: bool,
        match_index: LogIndex,
    },
    /// #1, when it does not lead, to both peers, every peer heartbeat: "I am up; my log
    /// ends at (`last_index`, `last_term`); I have heard you lately" (`hears_you`), "and
    /// I have heard some peer without a break for `connected_for_ms`". So #3 knows
    /// whether #1 is up and in two-way contact with it, which the leader #2 cannot see
    /// for itself when the #1–#2 link is down, and #2 learns how long #1 has been
    /// connected even across a gap in its own view (failback, DESIGN §6.3 rule 2).
    /// Never changes anyone's term.
    Presence {
        last_index: LogIndex,
        last_term: Term,
        hears_you: bool,
        connected_for_ms: u64,
    },
    /// #3's answer to a presence, so #1 hears #3 too.
    PresenceAck,
    /// #3 to its leader (when that is not #1): "#1 has been up and in two-way contact
    /// with me for `for_ms` ms, its log ending at (`last_index`, `last_term`)".
    PrimaryHeard {
        for_ms: u64,
        last_index: LogIndex,
        last_term: Term,
    },
    /// The leader (#2) to #3 during a failback: pass [`PeerBody::TimeoutNow`] on to #1,
    /// whom the leader may not reach itself.
    HandOver,
}

/// The applied state at a log index: what a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_index: LogIndex,
    pub last_term: Term,
    pub seats: Seats,
}

/// A client's request to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    pub client: ClientId,
    pub seq: RequestSeq,
    pub op: Op,
}

/// What a client asks for. Names are shared (`Arc<str>`), so retries and log entries
/// copy no text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A floating seat, kept alive by heartbeats.
    Checkout {
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
    },
    /// A floating seat, or else a place in the feature's queue (`checkout --wait`): when
    /// every seat is in use, the request waits in a replicated first-in-first-out queue
    /// and is granted in its turn as seats come back. The client sends the same request
    /// (same `seq`) again every heartbeat while it waits: that keeps its place (a place
    /// not renewed for a seat's lease is given up), and the answer is its position or,
    /// once its turn came, the seat.
    Wait {
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
    },
    /// Leave the queue: sent with the `seq` of the [`Op::Wait`] that waits. Answered
    /// [`ReplyResult::LeftQueue`], or with the seat if its turn came first.
    StopWaiting,
    /// A seat taken away for `hours`, kept without heartbeats until it ends.
    Borrow {
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
        hours: u32,
    },
    /// Give a checked-out seat back.
    Checkin { handle: Handle },
    /// Give a borrowed seat back early.
    Return { handle: Handle },
    /// "I still hold these seats." Not logged; `seq` numbers heartbeats separately.
    Heartbeat { handles: Vec<Handle> },
    /// An administrator frees seats (`hal-net remove`): the seat `target` names, or every
    /// seat of a holder. Accepted only from an operator's connection that proved the
    /// admin certificate; `by` says who asked (`user@host` of the operator's machine).
    Remove { target: RemoveTarget, by: Arc<str> },
    /// An administrator changes the license the triad serves (`hal-net license push`, or
    /// SIGHUP on a server): the active server checks `text` (a whole license file, at most
    /// [`crate::license::limits::FILE_BYTES_MAX`] bytes) and proposes it, and every server
    /// switches to it at the same log index. Accepted from an operator's connection with
    /// the admin certificate, or from a triad member's; `by` says who asked.
    PushLicense { text: Arc<str>, by: Arc<str> },
    /// An administrator changes the options file the triad applies (`hal-net options
    /// push`): the active server checks `text` against the license and proposes it, and
    /// every server applies the same rules from the same log index. An empty file clears
    /// the options. Accepted from an operator's connection with the admin certificate.
    PushOptions { text: Arc<str>, by: Arc<str> },
}

impl Op {
    /// Whether only an administrator may ask it (the server's network layer accepts it
    /// only from an operator's connection with the admin certificate).
    pub fn is_administrative(&self) -> bool {
        matches!(
            self,
            Op::Remove { .. } | Op::PushLicense { .. } | Op::PushOptions { .. }
        )
    }
}

/// Which seats an administrator removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveTarget {
    /// The seat with this handle.
    Handle(Handle),
    /// Every seat (checked out or borrowed) of `user`, on `host` if given, of `feature`
    /// if given.
    Holder {
        user: Arc<str>,
        host: Option<Arc<str>>,
        feature: Option<Arc<str>>,
    },
}

/// The most seats one [`Op::Remove`] frees; an administrator removing more asks again.
pub const REMOVE_HANDLES_MAX: usize = 1024;

/// A server's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReply {
    pub client: ClientId,
    pub seq: RequestSeq,
    pub from: ServerId,
    pub result: ReplyResult,
}

/// The outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyResult {
    /// A seat: checkout (no `borrow_end`) or borrow (with its end on the server's clock).
    Granted {
        handle: Handle,
        lease_ms: u64,
        borrow_end: Option<WallTime>,
        /// The leader that decided the grant; a retry answered after a failover names the
        /// original one.
        granted_by: ServerId,
    },
    /// Checkin or return done.
    Released {
        handle: Handle,
    },
    /// Every seat is in use and the [`Op::Wait`] waits in the feature's queue, at
    /// `position` (1: next); `used` of `count` seats are held. Its client asks again with
    /// the same request every heartbeat, and is answered with the seat once its turn
    /// comes (the active server also sends that answer as soon as the seat is granted).
    Queued {
        position: u32,
        used: u32,
        count: u32,
        /// The client's lease: a place not asked for again within it is given up, so the
        /// client asks again several times per lease (as it heartbeats a seat).
        lease_ms: u64,
    },
    /// The [`Op::Wait`] left the queue without a seat: its client asked to
    /// ([`Op::StopWaiting`]), or its place was not renewed for a seat's lease.
    LeftQueue,
    /// Heartbeat acknowledged: the seats in `held` are alive for `lease_ms` from the
    /// heartbeat's send time; the seats in `unknown` are not held; of those, the ones in
    /// `removed` an administrator removed.
    HeartbeatAck {
        lease_ms: u64,
        held: Vec<Handle>,
        unknown: Vec<Handle>,
        removed: Vec<Handle>,
    },
    Denied(Denial),
    /// An administrator's removal done: the seats it freed.
    Removed {
        handles: Vec<Handle>,
    },
    /// A license push done: every server serves the license in force from log index
    /// `index` on. `changed` is false when the pushed license had the same terms as the
    /// one in force (nothing was proposed; `index` is where the one in force began, 0 for
    /// the servers' own license files).
    LicensePushed {
        index: LogIndex,
        changed: bool,
    },
    /// A license push refused before it was proposed, and why (the file's errors with
    /// their lines, a feature whose signature does not hold, a HAL license for a single
    /// server): the license in force is unchanged.
    LicenseRefused {
        reason: String,
    },
    /// An options push done: the rules apply from log index `index` on (`changed`
    /// false: the same file was in force already).
    OptionsPushed {
        index: LogIndex,
        changed: bool,
    },
    /// An options push refused before it was proposed: every mistake of the file, each
    /// with its line. The options in force are unchanged.
    OptionsRefused {
        reason: String,
    },
}

/// Why a request was refused, and so what the client should do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Denial {
    /// This server cannot reach a majority: try another server.
    NoMajority,
    /// This server is not the active one; `active` is the one that is, if known.
    NotActive { active: Option<ServerId> },
    /// Every seat is taken.
    AllInUse { used: u32, count: u32 },
    /// Borrowing needs server #1 active; it is not. Try again later.
    BorrowUnavailable,
    /// The license does not allow borrowing this feature (no BORROW), or not this long.
    BorrowNotAllowed,
    /// The license has no such feature (or this server refuses it).
    UnknownFeature,
    /// No such seat: it was never granted, or it was released or expired.
    UnknownHandle,
    /// The feature's license ended (END) or has not started (START).
    LicenseExpired,
    /// The feature is locked to another machine's HostID.
    HostIdMismatch,
    /// The request itself is malformed (a name too long or holding control characters,
    /// a heartbeat listing too many seats): the client must change it, not retry it.
    InvalidRequest(Invalid),
    /// The options file's INCLUDE rules for the feature name neither this user nor this
    /// host.
    NotIncluded,
    /// An EXCLUDE rule of the options file names this user or host.
    Excluded,
    /// A MAX rule of the options file that names this user (or host, or their group)
    /// allows no more seats of the feature.
    OverMax,
    /// The free seats are kept for others by a RESERVE rule of the options file.
    Reserved,
    /// The options file's MAX_BORROW_HOURS for the feature is shorter than the borrow
    /// asked for (the license itself would allow it).
    BorrowOverMax,
}

/// What is wrong with a request that [`Denial::InvalidRequest`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Invalid {
    /// A feature, user or host name breaks the rules of [`crate::names`].
    Name {
        field: crate::names::NameField,
        problem: crate::names::NameProblem,
    },
    /// A heartbeat lists more seats than [`HEARTBEAT_HANDLES_MAX`].
    TooManyHandles,
}

/// The most seats one heartbeat may list: a client holding more sends several.
pub const HEARTBEAT_HANDLES_MAX: usize = 1024;

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Name { field, problem } => write!(f, "{} name {problem}", field.name()),
            Invalid::TooManyHandles => write!(
                f,
                "a heartbeat lists more than {HEARTBEAT_HANDLES_MAX} seats"
            ),
        }
    }
}

impl Denial {
    /// Every reason's [`Denial::name`], in declaration order.
    pub const NAMES: &[&str] = &[
        "no_majority",
        "not_active",
        "all_in_use",
        "borrow_unavailable",
        "borrow_not_allowed",
        "unknown_feature",
        "unknown_handle",
        "license_expired",
        "hostid_mismatch",
        "invalid_request",
        "not_included",
        "excluded",
        "over_max",
        "reserved",
        "borrow_over_max",
    ];

    /// The name used in histories and logs (`no_majority`, `not_active`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Denial::NoMajority => "no_majority",
            Denial::NotActive { .. } => "not_active",
            Denial::AllInUse { .. } => "all_in_use",
            Denial::BorrowUnavailable => "borrow_unavailable",
            Denial::BorrowNotAllowed => "borrow_not_allowed",
            Denial::UnknownFeature => "unknown_feature",
            Denial::UnknownHandle => "unknown_handle",
            Denial::LicenseExpired => "license_expired",
            Denial::HostIdMismatch => "hostid_mismatch",
            Denial::InvalidRequest(_) => "invalid_request",
            Denial::NotIncluded => "not_included",
            Denial::Excluded => "excluded",
            Denial::OverMax => "over_max",
            Denial::Reserved => "reserved",
            Denial::BorrowOverMax => "borrow_over_max",
        }
    }

    /// The denial an options file's refusal gives.
    pub fn of_options(refusal: &crate::options::Refusal) -> Denial {
        use crate::options::Refusal;
        match refusal {
            Refusal::NotIncluded => Denial::NotIncluded,
            Refusal::Excluded { .. } => Denial::Excluded,
            Refusal::OverMax { .. } => Denial::OverMax,
            Refusal::Reserved { .. } => Denial::Reserved,
        }
    }

    /// Whether another server might serve the request: the client should look elsewhere.
    pub fn try_elsewhere(&self) -> bool {
        matches!(self, Denial::NoMajority | Denial::NotActive { .. })
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::NotActive { active: Some(id) } => write!(f, "not_active (active: {id})"),
            Denial::AllInUse { used, count } => write!(f, "all_in_use ({used} of {count})"),
            Denial::InvalidRequest(why) => write!(f, "invalid_request ({why})"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NAMES` is what scenario files check a `denied = "..."` against: it must list
    /// every reason a server gives, each once.
    #[test]
    fn denial_names_list_every_reason_once() {
        let every = [
            Denial::NoMajority,
            Denial::NotActive { active: None },
            Denial::AllInUse { used: 1, count: 1 },
            Denial::BorrowUnavailable,
            Denial::BorrowNotAllowed,
            Denial::UnknownFeature,
            Denial::UnknownHandle,
            Denial::LicenseExpired,
            Denial::HostIdMismatch,
            Denial::InvalidRequest(Invalid::TooManyHandles),
            Denial::NotIncluded,
            Denial::Excluded,
            Denial::OverMax,
            Denial::Reserved,
            Denial::BorrowOverMax,
        ];
        let names: Vec<&str> = every.iter().map(Denial::name).collect();
        assert_eq!(names, Denial::NAMES);
    }
}
