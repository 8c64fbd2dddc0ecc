//! The replicated state: the seat table (DESIGN §3.2).
//!
//! Log commands (`Grant`, `Release`, `Expire`, `Noop`) are applied here in log order on
//! every server, so every server that applied the same prefix holds the same table. Apply
//! is deterministic and re-checks what the leader checked when it proposed: a grant that
//! would exceed COUNT is denied here too. Each client's last request and its outcome are
//! remembered, so a retried request gets its original answer instead of a second seat.

use std::collections::{BTreeMap, btree_map};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ServerId;
use crate::protocol::{ClientId, Denial, Handle, LogIndex, RequestSeq};
use crate::time::WallTime;

mod queue;
pub use queue::{WAITERS_MAX, WAITERS_PER_FEATURE_MAX, WaitSeen, Waiter};
use queue::{Wait, WaitStatus};

/// A command in the replicated log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Committed by a new leader at the start of its term.
    Noop,
    /// A checkout (no `borrow_end`) or a borrow.
    Grant {
        client: ClientId,
        seq: RequestSeq,
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
        borrow_end: Option<WallTime>,
        /// The leader that decided the grant (for borrows, always #1).
        by: ServerId,
        /// When, on the deciding leader's wall clock (`hal-net status` shows it).
        at: WallTime,
    },
    /// A checkout that waits its turn when every seat is in use ([`crate::protocol::Op::Wait`]):
    /// granted at once if a seat is free and no earlier request waits for it, else
    /// queued (its id is this entry's index).
    Wait {
        client: ClientId,
        seq: RequestSeq,
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
        by: ServerId,
        at: WallTime,
    },
    /// The leader gives a free seat to the waiting request `id` (`client`'s `seq`, for
    /// `feature`): it applies only if that request is still the first in its queue the
    /// options let have a seat, and a seat is free. The seat's handle is this entry's
    /// index.
    Serve {
        id: Handle,
        client: ClientId,
        seq: RequestSeq,
        feature: Arc<str>,
        user: Arc<str>,
        host: Arc<str>,
        by: ServerId,
        at: WallTime,
    },
    /// The waiting request `id` (`client`'s `seq`, for `feature`) leaves its queue: its
    /// client asked (`asked`), or the leader found its place not renewed for a seat's
    /// lease. Id 0 (and no feature): the client asked before its wait applied.
    Dequeue {
        id: Handle,
        client: ClientId,
        seq: RequestSeq,
        feature: Arc<str>,
        asked: bool,
    },
    /// A checkin or an early borrow return by the holder.
    Release {
        client: ClientId,
        seq: RequestSeq,
        handle: Handle,
    },
    /// The leader found the seat's lease or borrow over.
    Expire { handle: Handle },
    /// The leader found these clients' sessions idle, without a seat, for longer than a
    /// seat's lease: forget them (a session that holds a seat by now is kept).
    Forget { clients: Vec<ClientId> },
    /// An administrator frees these seats (those still held when it applies); `client`
    /// and `seq` are the operator tool's request, `by` who asked.
    Remove {
        client: ClientId,
        seq: RequestSeq,
        handles: Vec<Handle>,
        by: Arc<str>,
    },
    /// An administrator's license push (`client` and `seq` are the request, `by` who
    /// asked): from this entry on, every server serves `text`, a whole license file the
    /// proposing leader checked.
    License {
        client: ClientId,
        seq: RequestSeq,
        text: Arc<str>,
        by: Arc<str>,
    },
    /// An administrator's options push: from this entry on, every server applies the
    /// rules of `text`, an options file the proposing leader checked.
    Options {
        client: ClientId,
        seq: RequestSeq,
        text: Arc<str>,
        by: Arc<str>,
    },
    /// A triad's first leader puts its own license file in the log, so that all three
    /// servers serve one license from then on (a server whose file differs is told, and
    /// its file replaced), whatever files they started with.
    AdoptLicense { text: Arc<str>, by: ServerId },
}

impl Command {
    /// About how many bytes the command takes on the wire: its texts and lists, and a
    /// little for the rest (to bound an append's size, not to encode it).
    pub fn size_hint(&self) -> usize {
        const FIXED: usize = 128;
        let parts: [usize; 3] = match self {
            Command::Grant {
                feature,
                user,
                host,
                ..
            }
            | Command::Wait {
                feature,
                user,
                host,
                ..
            }
            | Command::Serve {
                feature,
                user,
                host,
                ..
            } => [feature.len(), user.len(), host.len()],
            Command::Remove { handles, by, .. } => [handles.len().saturating_mul(8), by.len(), 0],
            Command::Forget { clients } => [clients.len().saturating_mul(8), 0, 0],
            Command::License { text, by, .. } | Command::Options { text, by, .. } => {
                [text.len(), by.len(), 0]
            }
            Command::AdoptLicense { text, .. } => [text.len(), 0, 0],
            Command::Noop
            | Command::Release { .. }
            | Command::Expire { .. }
            | Command::Dequeue { .. } => [0; 3],
        };
        parts.iter().fold(FIXED, |sum, n| sum.saturating_add(*n))
    }
}

/// The most clients one [`Command::Forget`] names.
pub const FORGET_CLIENTS_MAX: usize = 1024;

/// How many seats removed by an administrator the table remembers (with their holder),
/// so that a holder's next heartbeat is told its seat was removed, not lost.
pub const REMOVED_MAX: usize = 4096;

/// The result of applying a client's command, remembered for retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Granted {
        handle: Handle,
        borrow_end: Option<WallTime>,
        by: ServerId,
    },
    Released {
        handle: Handle,
    },
    Denied(Denial),
    /// An administrator's removal: the seats it freed.
    Removed {
        handles: Vec<Handle>,
    },
    /// A license push: in force from `index` on.
    LicensePushed {
        index: LogIndex,
    },
    /// An options push: in force from `index` on.
    OptionsPushed {
        index: LogIndex,
    },
    /// A [`Command::Wait`] queued as waiter `id`: at `position` (1: next), `used` of
    /// `count` held.
    Queued {
        id: Handle,
        position: u32,
        used: u32,
        count: u32,
    },
    /// A waiting request left its queue without a seat.
    LeftQueue,
}

/// The options file in force, once one is in the log: its text, its rules, where it took
/// effect and who pushed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionsInForce {
    pub index: LogIndex,
    pub text: Arc<str>,
    pub by: Arc<str>,
    pub options: crate::options::Options,
}

/// The license in force, once one is in the log: its text, where it took effect and who
/// put it there. Before that, each server serves its own license file (which the first
/// leader puts in the log, [`Command::AdoptLicense`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseInForce {
    pub index: LogIndex,
    pub text: Arc<str>,
    /// `user@host` of the administrator who pushed it, or `server N` for a license file
    /// a leader adopted.
    pub by: Arc<str>,
}

/// One held seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Index into [`Seats`]' feature names.
    feature: u32,
    pub client: ClientId,
    /// A borrow's end in wall-clock ms, 0 for a checkout (kept as plain numbers so a
    /// seat takes 32 bytes: a million seats are held in memory).
    borrow_end_ms: u64,
    /// When it was granted, on the deciding leader's wall clock, in ms.
    granted_ms: u64,
}

impl Seat {
    /// A borrow's end; `None` for a checkout.
    pub fn borrow_end(&self) -> Option<WallTime> {
        (self.borrow_end_ms != 0).then_some(WallTime(self.borrow_end_ms))
    }

    /// When it was granted, on the deciding leader's wall clock.
    pub fn granted(&self) -> WallTime {
        WallTime(self.granted_ms)
    }
}

/// An outcome as a session stores it: [`Outcome`] packed into 24 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum StoredOutcome {
    Granted {
        handle: Handle,
        borrow_end_ms: u64,
        by: ServerId,
    },
    Released {
        handle: Handle,
    },
    Denied(Denial),
    Removed {
        handles: Box<[Handle]>,
    },
    LicensePushed {
        index: LogIndex,
    },
    OptionsPushed {
        index: LogIndex,
    },
    /// A waiting request left its queue without a seat. (Queued, it is stored as its
    /// place in the queue: see [`queue::WaitStatus`].)
    LeftQueue,
}

impl From<&Outcome> for StoredOutcome {
    fn from(outcome: &Outcome) -> StoredOutcome {
        match outcome {
            Outcome::Granted {
                handle,
                borrow_end,
                by,
            } => StoredOutcome::Granted {
                handle: *handle,
                borrow_end_ms: borrow_end.map_or(0, |end| end.0),
                by: *by,
            },
            Outcome::Released { handle } => StoredOutcome::Released { handle: *handle },
            Outcome::Denied(denial) => StoredOutcome::Denied(denial.clone()),
            Outcome::Removed { handles } => StoredOutcome::Removed {
                handles: handles.clone().into_boxed_slice(),
            },
            Outcome::LicensePushed { index } => StoredOutcome::LicensePushed { index: *index },
            Outcome::OptionsPushed { index } => StoredOutcome::OptionsPushed { index: *index },
            // Never stored for a session's last request: only waits are queued, and a
            // wait keeps its place in the queue instead.
            Outcome::Queued { .. } | Outcome::LeftQueue => StoredOutcome::LeftQueue,
        }
    }
}

impl From<&StoredOutcome> for Outcome {
    fn from(stored: &StoredOutcome) -> Outcome {
        match stored {
            StoredOutcome::Granted {
                handle,
                borrow_end_ms,
                by,
            } => Outcome::Granted {
                handle: *handle,
                borrow_end: (*borrow_end_ms != 0).then_some(WallTime(*borrow_end_ms)),
                by: *by,
            },
            StoredOutcome::Released { handle } => Outcome::Released { handle: *handle },
            StoredOutcome::Denied(denial) => Outcome::Denied(denial.clone()),
            StoredOutcome::Removed { handles } => Outcome::Removed {
                handles: handles.to_vec(),
            },
            StoredOutcome::LicensePushed { index } => Outcome::LicensePushed { index: *index },
            StoredOutcome::OptionsPushed { index } => Outcome::OptionsPushed { index: *index },
            StoredOutcome::LeftQueue => Outcome::LeftQueue,
        }
    }
}

/// What the table remembers of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// `user` then `host`, in one allocation.
    identity: Box<str>,
    user_len: u32,
    last_seq: RequestSeq,
    last_outcome: Option<StoredOutcome>,
    /// The log index of the client's last applied request, for evicting idle sessions.
    last_index: LogIndex,
    seats_held: u32,
    /// The client's latest [`Command::Wait`] and where it stands (kept apart from its
    /// last request: a client that waits for one seat still checks others in and out).
    wait: Option<Box<Wait>>,
}

impl Session {
    fn new() -> Session {
        Session {
            identity: Box::from(""),
            user_len: 0,
            last_seq: RequestSeq(0),
            last_outcome: None,
            last_index: LogIndex(0),
            seats_held: 0,
            wait: None,
        }
    }

    /// Whether the client holds no seat and waits in no queue: its session may be
    /// forgotten once idle.
    fn is_idle(&self) -> bool {
        self.seats_held == 0
            && !self
                .wait
                .as_ref()
                .is_some_and(|w| matches!(w.status, WaitStatus::Queued(_)))
    }

    fn seen(&self, seq: RequestSeq) -> Seen {
        match &self.last_outcome {
            _ if self.last_seq > seq => Seen::Stale,
            Some(outcome) if self.last_seq == seq => Seen::Retry(outcome.into()),
            _ => Seen::New,
        }
    }

    fn user(&self) -> &str {
        self.identity.get(..self.user_len as usize).unwrap_or("")
    }

    fn host(&self) -> &str {
        self.identity.get(self.user_len as usize..).unwrap_or("")
    }

    fn set_identity(&mut self, user: &str, host: &str) {
        if self.user() != user || self.host() != host {
            self.identity = format!("{user}{host}").into_boxed_str();
            self.user_len = u32::try_from(user.len()).unwrap_or(u32::MAX);
        }
    }

    /// Checks a session from a peer's snapshot at `last_index`.
    fn validate(&self, last_index: LogIndex) -> Result<(), String> {
        let user_len = self.user_len as usize;
        if !self.identity.is_char_boundary(user_len) {
            return Err("its user name ends inside its identity or a character".into());
        }
        crate::names::check(self.user())
            .and_then(|()| crate::names::check(self.host()))
            .map_err(|problem| format!("a name {problem}"))?;
        if self.last_index > last_index {
            return Err(format!(
                "its last request is at index {}, after the snapshot's {}",
                self.last_index.0, last_index.0
            ));
        }
        let handles: &[Handle] = match &self.last_outcome {
            Some(StoredOutcome::Granted { handle, .. } | StoredOutcome::Released { handle }) => {
                std::slice::from_ref(handle)
            }
            Some(StoredOutcome::Removed { handles }) => handles,
            Some(
                StoredOutcome::LicensePushed { index } | StoredOutcome::OptionsPushed { index },
            ) if *index != self.last_index => {
                return Err("its last answer names a license pushed at another index".into());
            }
            _ => &[],
        };
        if handles.len() > crate::protocol::REMOVE_HANDLES_MAX {
            return Err(format!("its last answer names {} seats", handles.len()));
        }
        if handles.iter().any(|h| h.0 > self.last_index.0) {
            return Err("its last answer names a seat granted after it".into());
        }
        let waited = match self.wait.as_deref().map(|w| &w.status) {
            Some(WaitStatus::Queued(id)) => Some(*id),
            Some(WaitStatus::Done(
                StoredOutcome::Granted { handle, .. } | StoredOutcome::Released { handle },
            )) => Some(*handle),
            _ => None,
        };
        if waited.is_some_and(|h| h.0 > last_index.0) {
            return Err("its wait names a place or a seat after the snapshot".into());
        }
        Ok(())
    }

    fn record(&mut self, index: LogIndex, seq: RequestSeq, outcome: Outcome) {
        self.last_seq = seq;
        self.last_outcome = Some(StoredOutcome::from(&outcome));
        self.last_index = index;
    }
}

/// The seat table and the client sessions: the applied state machine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Seats {
    /// Feature names seen in grants, in order of first use; seats refer to them by index.
    names: Vec<String>,
    /// Seats held per feature, parallel to `names`.
    used: Vec<u32>,
    seats: BTreeMap<Handle, Seat>,
    sessions: BTreeMap<ClientId, Session>,
    /// Seats an administrator removed, and their holders, the latest [`REMOVED_MAX`].
    removed: std::collections::VecDeque<(Handle, ClientId)>,
    /// The license in force, once one is in the log.
    license: Option<LicenseInForce>,
    /// The options file in force, once one is in the log.
    options: Option<OptionsInForce>,
    /// The requests waiting for a seat, per feature (by its index in `names`), first
    /// come first.
    queues: BTreeMap<u32, std::collections::VecDeque<Waiter>>,
}

/// The most client sessions remembered. Past it, the longest-idle sessions that hold no
/// seat are forgotten, a hundredth of the limit at a time (a retry from one of them, long
/// after, is then treated as a new request).
pub const SESSIONS_MAX: usize = 1_000_000;

/// The most features a seat table names (as many as a license file may hold).
pub const FEATURES_MAX: usize = 10_000;

/// What a retried or stale request is, compared with the client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before: propose it.
    New,
    /// The client's last request: here is its outcome again.
    Retry(Outcome),
    /// Older than the client's last request: the client no longer waits for it.
    Stale,
}

impl Seats {
    /// An empty table.
    pub fn new() -> Seats {
        Seats::default()
    }

    /// Applies the command at `index`. `count_of` gives a feature's COUNT from the license
    /// (`None`: the license has no such feature). Returns the outcome for a client's
    /// command (`None` for `Noop`, `Expire` and stale requests).
    pub fn apply(
        &mut self,
        index: LogIndex,
        command: &Command,
        count_of: impl Fn(&str) -> Option<u32>,
    ) -> Option<Outcome> {
        self.apply_planted(index, command, true, count_of)
    }

    /// [`Seats::apply`], with a planted bug: without `dedup`, a retried request is
    /// applied afresh ([`crate::plant::Plant::RetriesNotDeduplicated`]).
    pub(crate) fn apply_planted(
        &mut self,
        index: LogIndex,
        command: &Command,
        dedup: bool,
        count_of: impl Fn(&str) -> Option<u32>,
    ) -> Option<Outcome> {
        let (client, seq) = match command {
            Command::Noop => return None,
            Command::Expire { handle } => {
                self.remove(*handle);
                return None;
            }
            Command::AdoptLicense { text, by } => {
                if self.license.is_none() {
                    self.license = Some(LicenseInForce {
                        index,
                        text: text.clone(),
                        by: format!("server {by}").into(),
                    });
                }
                return None;
            }
            Command::Forget { clients } => {
                for client in clients {
                    if self.sessions.get(client).is_some_and(Session::is_idle) {
                        self.sessions.remove(client);
                    }
                }
                return None;
            }
            Command::Wait { .. } => return self.apply_wait(index, command, dedup, count_of),
            Command::Serve { .. } => return self.apply_serve(index, command, count_of),
            Command::Dequeue {
                id, client, seq, ..
            } => return self.apply_dequeue(index, *id, *client, *seq),
            Command::Grant { client, seq, .. }
            | Command::Release { client, seq, .. }
            | Command::Remove { client, seq, .. }
            | Command::License { client, seq, .. }
            | Command::Options { client, seq, .. } => (*client, *seq),
        };
        // The seats a grant may take (those free, less those the requests waiting take
        // first), and what the options say of it by them, before the session is taken to
        // record it.
        let left = match command {
            Command::Grant { feature, .. } => count_of(feature)
                .map(|count| count.saturating_sub(self.used(feature)))
                .map(|free| self.seats_left_for_newcomer(feature, free)),
            _ => None,
        };
        let promised = left == Some(0);
        let refused = match command {
            Command::Grant {
                feature,
                user,
                host,
                ..
            } if self.options.is_some() => left
                .filter(|left| *left > 0)
                .and_then(|left| self.refused_by_options(feature, (user, host), left)),
            _ => None,
        };
        let session = self.sessions.entry(client).or_insert_with(Session::new);
        match session.seen(seq) {
            Seen::Retry(outcome) if dedup => return Some(outcome),
            Seen::Stale => return None,
            Seen::New | Seen::Retry(_) => {}
        }
        let outcome = match command {
            Command::Grant {
                feature,
                user,
                host,
                borrow_end,
                by,
                at,
                ..
            } => {
                session.set_identity(user, host);
                // Recorded and bounded below like every other outcome: the session it
                // may have created counts toward the limit.
                let Some(count) = count_of(feature) else {
                    return Some(self.record(
                        client,
                        index,
                        seq,
                        Outcome::Denied(Denial::UnknownFeature),
                    ));
                };
                let slot = self.slot_of(feature);
                let used = self.used[slot];
                if used >= count || promised {
                    Outcome::Denied(Denial::AllInUse { used, count })
                } else if let Some(refusal) = &refused {
                    Outcome::Denied(Denial::of_options(refusal))
                } else {
                    let handle = self.take_seat(slot, client, index, *borrow_end, *at);
                    Outcome::Granted {
                        handle,
                        borrow_end: *borrow_end,
                        by: *by,
                    }
                }
            }
            Command::Release { handle, .. } => match self.seats.entry(*handle) {
                btree_map::Entry::Occupied(held) if held.get().client == client => {
                    let seat = held.remove();
                    session.seats_held = session.seats_held.saturating_sub(1);
                    if let Some(used) = self.used.get_mut(seat.feature as usize) {
                        *used = used.saturating_sub(1);
                    }
                    Outcome::Released { handle: *handle }
                }
                _ => Outcome::Denied(Denial::UnknownHandle),
            },
            Command::Remove { handles, .. } => {
                let handles: Vec<Handle> = handles
                    .iter()
                    .take(crate::protocol::REMOVE_HANDLES_MAX)
                    .copied()
                    .filter(|&handle| self.take_removed(handle))
                    .collect();
                Outcome::Removed { handles }
            }
            Command::License { text, by, .. } => {
                self.license = Some(LicenseInForce {
                    index,
                    text: text.clone(),
                    by: by.clone(),
                });
                Outcome::LicensePushed { index }
            }
            Command::Options { text, by, .. } => {
                // The leader checked the file against the license; read without that
                // check, every server reads it alike. (A file that does not read, which
                // only a lying peer's entry could be, changes nothing.)
                if let Ok(options) = crate::options::parse_in_force("options", text) {
                    self.options = (!text.trim().is_empty()).then(|| OptionsInForce {
                        index,
                        text: text.clone(),
                        by: by.clone(),
                        options,
                    });
                }
                Outcome::OptionsPushed { index }
            }
            Command::Noop
            | Command::Expire { .. }
            | Command::Forget { .. }
            | Command::AdoptLicense { .. }
            | Command::Wait { .. }
            | Command::Serve { .. }
            | Command::Dequeue { .. } => return None,
        };
        Some(self.record(client, index, seq, outcome))
    }

    /// Records `outcome` as `client`'s answer to request `seq` (applied at `index`), then
    /// forgets idle sessions if the table holds too many.
    fn record(
        &mut self,
        client: ClientId,
        index: LogIndex,
        seq: RequestSeq,
        outcome: Outcome,
    ) -> Outcome {
        if let Some(session) = self.sessions.get_mut(&client) {
            session.record(index, seq, outcome.clone());
        }
        if self.sessions.len() > SESSIONS_MAX {
            self.evict_idle_sessions();
        }
        outcome
    }

    /// Gives `client` a seat of the feature at `slot`, granted by the entry at `index`
    /// (its handle) at `at`; a borrow until `borrow_end`.
    fn take_seat(
        &mut self,
        slot: usize,
        client: ClientId,
        index: LogIndex,
        borrow_end: Option<WallTime>,
        at: WallTime,
    ) -> Handle {
        if let Some(used) = self.used.get_mut(slot) {
            *used = used.saturating_add(1);
        }
        if let Some(session) = self.sessions.get_mut(&client) {
            session.seats_held = session.seats_held.saturating_add(1);
        }
        let handle = Handle(index.0);
        let seat = Seat {
            feature: u32::try_from(slot).unwrap_or(u32::MAX),
            client,
            borrow_end_ms: borrow_end.map_or(0, |end| end.0),
            granted_ms: at.0,
        };
        self.seats.insert(handle, seat);
        handle
    }

    /// The slot of `feature` in `names`, added if new.
    fn slot_of(&mut self, feature: &str) -> usize {
        match self.names.iter().position(|n| **n == *feature) {
            Some(slot) => slot,
            None => {
                self.names.push(feature.to_string());
                self.used.push(0);
                self.names.len().saturating_sub(1)
            }
        }
    }

    /// Removes a seat an administrator removes, if held, remembering its holder; whether
    /// it was held.
    fn take_removed(&mut self, handle: Handle) -> bool {
        let Some(client) = self.seats.get(&handle).map(|s| s.client) else {
            return false;
        };
        self.remove(handle);
        if self.removed.len() >= REMOVED_MAX {
            self.removed.pop_front();
        }
        self.removed.push_back((handle, client));
        true
    }

    /// Whether an administrator removed `client`'s seat `handle` (of the latest
    /// [`REMOVED_MAX`] removed).
    pub fn removed(&self, handle: Handle, client: ClientId) -> bool {
        self.removed.contains(&(handle, client))
    }

    /// The seats `target` names that are held now, in handle order, at most
    /// [`crate::protocol::REMOVE_HANDLES_MAX`].
    pub fn matching(&self, target: &crate::protocol::RemoveTarget) -> Vec<Handle> {
        use crate::protocol::RemoveTarget;
        let found: Box<dyn Iterator<Item = Handle>> = match target {
            RemoveTarget::Handle(handle) => Box::new(
                self.seats
                    .contains_key(handle)
                    .then_some(*handle)
                    .into_iter(),
            ),
            RemoveTarget::Holder {
                user,
                host,
                feature,
            } => Box::new(
                self.seats
                    .iter()
                    .filter(move |(_, seat)| {
                        let session = self.sessions.get(&seat.client);
                        session.is_some_and(|s| {
                            s.user() == &**user && host.as_ref().is_none_or(|h| s.host() == &**h)
                        }) && feature
                            .as_ref()
                            .is_none_or(|f| self.feature_of(seat) == &**f)
                    })
                    .map(|(h, _)| *h),
            ),
        };
        found.take(crate::protocol::REMOVE_HANDLES_MAX).collect()
    }

    /// Removes a seat, if held (an expiry).
    fn remove(&mut self, handle: Handle) {
        let Some(seat) = self.seats.remove(&handle) else {
            return;
        };
        if let Some(used) = self.used.get_mut(seat.feature as usize) {
            *used = used.saturating_sub(1);
        }
        if let Some(session) = self.sessions.get_mut(&seat.client) {
            session.seats_held = session.seats_held.saturating_sub(1);
        }
    }

    /// Forgets the longest-idle sessions without seats, a hundredth of the limit at once,
    /// so the scan is paid rarely.
    fn evict_idle_sessions(&mut self) {
        let mut idle: Vec<(LogIndex, ClientId)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_idle())
            .map(|(c, s)| (s.last_index, *c))
            .collect();
        idle.sort_unstable();
        for (_, client) in idle.into_iter().take((SESSIONS_MAX / 100).max(1)) {
            self.sessions.remove(&client);
        }
    }

    /// Forgets every client's last request and its answer, keeping the seats: a planted
    /// bug ([`crate::plant::Plant::SnapshotWithoutSessions`]).
    pub(crate) fn forget_requests(&mut self) {
        for session in self.sessions.values_mut() {
            session.last_seq = RequestSeq(0);
            session.last_outcome = None;
        }
    }

    /// Checks a seat table that came from a peer (a snapshot at `last_index`) before it
    /// replaces this server's: every count equals the seats held, every seat's feature is
    /// one the license has (`known`), every handle was granted at or before `last_index`
    /// and belongs to a client with a session that counts it, every name follows the
    /// rules of [`crate::names`], and the table is within its limits. Says what is wrong.
    pub fn validate(
        &self,
        last_index: LogIndex,
        known: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        if self.names.len() != self.used.len() {
            return Err(format!(
                "{} feature names but {} counts",
                self.names.len(),
                self.used.len()
            ));
        }
        if self.names.len() > FEATURES_MAX {
            return Err(format!(
                "{} features, over the limit of {FEATURES_MAX}",
                self.names.len()
            ));
        }
        // Once a license is in the log, the names are those of every license in force
        // since the table began (a pushed license may drop a feature whose seats are
        // still held): this server's own license cannot judge them.
        let pushed = self.license.is_some();
        for (slot, name) in self.names.iter().enumerate() {
            if let Err(problem) = crate::names::check(name) {
                return Err(format!("feature name `{}` {problem}", name.escape_debug()));
            }
            if !pushed && !known(name) {
                return Err(format!(
                    "feature `{}` is not in this server's license",
                    name.escape_debug()
                ));
            }
            if self.names[..slot].contains(name) {
                return Err(format!("feature `{}` is listed twice", name.escape_debug()));
            }
        }
        if self.sessions.len() > SESSIONS_MAX {
            return Err(format!(
                "{} client sessions, over the limit of {SESSIONS_MAX}",
                self.sessions.len()
            ));
        }
        let mut counted = vec![0u32; self.names.len()];
        let mut per_client: BTreeMap<ClientId, u32> = BTreeMap::new();
        for (handle, seat) in &self.seats {
            if handle.0 == 0 || handle.0 > last_index.0 {
                return Err(format!(
                    "seat {handle} cannot have been granted by index {}",
                    last_index.0
                ));
            }
            let Some(count) = counted.get_mut(seat.feature as usize) else {
                return Err(format!(
                    "seat {handle} is of feature number {}, which is not listed",
                    seat.feature
                ));
            };
            *count = count.saturating_add(1);
            let held = per_client.entry(seat.client).or_default();
            *held = held.saturating_add(1);
        }
        if counted != self.used {
            return Err(format!(
                "the counts of seats in use {:?} differ from the seats held {:?}",
                self.used, counted
            ));
        }
        for (client, session) in &self.sessions {
            session
                .validate(last_index)
                .map_err(|why| format!("client {client}: {why}"))?;
            let held = per_client.remove(client).unwrap_or(0);
            if session.seats_held != held {
                return Err(format!(
                    "client {client} is counted as holding {} seats but holds {held}",
                    session.seats_held
                ));
            }
        }
        if let Some(client) = per_client.keys().next() {
            return Err(format!("client {client} holds seats but has no session"));
        }
        if self.removed.len() > REMOVED_MAX {
            return Err(format!(
                "{} removed seats remembered, over the limit of {REMOVED_MAX}",
                self.removed.len()
            ));
        }
        if let Some((handle, _)) = self.removed.iter().find(|(h, _)| h.0 > last_index.0) {
            return Err(format!(
                "removed seat {handle} cannot have been granted by index {}",
                last_index.0
            ));
        }
        if let Some(license) = &self.license {
            if license.index.0 == 0 || license.index > last_index {
                return Err(format!(
                    "its license took effect at index {}, not by index {}",
                    license.index.0, last_index.0
                ));
            }
            if license.text.len() > crate::license::limits::FILE_BYTES_MAX {
                return Err(format!(
                    "its license is {} bytes, over the limit of {}",
                    license.text.len(),
                    crate::license::limits::FILE_BYTES_MAX
                ));
            }
            crate::names::check(&license.by)
                .map_err(|problem| format!("the name of who pushed its license {problem}"))?;
        }
        self.validate_queues(last_index)?;
        if let Some(options) = &self.options {
            if options.index.0 == 0 || options.index > last_index {
                return Err(format!(
                    "its options took effect at index {}, not by index {}",
                    options.index.0, last_index.0
                ));
            }
            if options.text.len() > crate::options::FILE_BYTES_MAX {
                return Err(format!("its options file is {} bytes", options.text.len()));
            }
            options
                .options
                .validate()
                .map_err(|why| format!("its options: {why}"))?;
        }
        Ok(())
    }

    /// The license in force, once one is in the log.
    pub fn license(&self) -> Option<&LicenseInForce> {
        self.license.as_ref()
    }

    /// The options file in force, once one is in the log.
    pub fn options(&self) -> Option<&OptionsInForce> {
        self.options.as_ref()
    }

    /// Why the options in force refuse `user` on `host` one more seat of `feature`, of
    /// which `free` are free; `None` if they allow it (or there are none).
    pub fn refused_by_options(
        &self,
        feature: &str,
        (user, host): (&str, &str),
        free: u32,
    ) -> Option<crate::options::Refusal> {
        match self.names.iter().position(|n| n == feature) {
            Some(slot) => self.options_refusal(slot, (user, host), free),
            // No seat of it was ever held: nobody holds any.
            None => {
                let options = &self.options.as_ref()?.options;
                let nobody = std::iter::empty();
                options.grants(feature, (user, host), free, nobody).err()
            }
        }
    }

    /// [`Seats::refused_by_options`] for the feature at `slot`. The seats a rule's holders
    /// hold are counted from the table (only for features the options have rules for).
    fn options_refusal(
        &self,
        slot: usize,
        (user, host): (&str, &str),
        free: u32,
    ) -> Option<crate::options::Refusal> {
        let options = &self.options.as_ref()?.options;
        let feature = self.names.get(slot)?;
        let slot = u32::try_from(slot).ok()?;
        let holders = self
            .seats
            .values()
            .filter(|seat| seat.feature == slot)
            .filter_map(|seat| self.sessions.get(&seat.client))
            .map(|session| (session.user(), session.host()));
        options.grants(feature, (user, host), free, holders).err()
    }

    /// How a request compares with what the client's session remembers.
    pub fn seen(&self, client: ClientId, seq: RequestSeq) -> Seen {
        self.sessions
            .get(&client)
            .map_or(Seen::New, |s| s.seen(seq))
    }

    /// The seat with `handle`, if held.
    pub fn seat(&self, handle: Handle) -> Option<&Seat> {
        self.seats.get(&handle)
    }

    /// Every held seat, by handle.
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &Seat)> {
        self.seats.iter().map(|(h, s)| (*h, s))
    }

    /// The feature name of a seat.
    pub fn feature_of(&self, seat: &Seat) -> &str {
        self.names
            .get(seat.feature as usize)
            .map_or("", String::as_str)
    }

    /// Seats held of `feature`.
    pub fn used(&self, feature: &str) -> u32 {
        self.names
            .iter()
            .position(|n| n == feature)
            .map_or(0, |slot| self.used[slot])
    }

    /// The number of seats held in all.
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether no seat is held.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// How many seats a client's session counts, if it has a session.
    pub fn seats_held(&self, client: ClientId) -> Option<u32> {
        self.sessions.get(&client).map(|s| s.seats_held)
    }

    /// Whether `client` has a session that holds no seat and waits in no queue.
    pub fn is_idle(&self, client: ClientId) -> bool {
        self.sessions.get(&client).is_some_and(Session::is_idle)
    }

    /// The clients whose sessions hold no seat and wait in no queue.
    pub fn idle_clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_idle())
            .map(|(client, _)| *client)
    }

    /// A digest of the whole state: every seat and every client session (its last
    /// request and answer included). Servers that applied the same log prefix have the
    /// same digest; the first eight bytes of the SHA-256 of the table's encoding.
    pub fn digest(&self) -> u64 {
        use sha2::Digest as _;
        // Encoding plain maps, strings and integers into memory cannot fail; if it ever
        // did, the digest of nothing still differs from every real table's.
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        let hash = sha2::Sha256::digest(&bytes);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        u64::from_be_bytes(first)
    }

    /// The number of client sessions remembered.
    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    /// The user and host a client gave.
    pub fn holder(&self, client: ClientId) -> Option<(&str, &str)> {
        self.sessions.get(&client).map(|s| (s.user(), s.host()))
    }

    /// Checks the table's own consistency; panics with the broken rule.
    pub fn check_invariants(&self) {
        let mut counted = vec![0u32; self.names.len()];
        let mut per_client: BTreeMap<ClientId, u32> = BTreeMap::new();
        for seat in self.seats.values() {
            counted[seat.feature as usize] = counted[seat.feature as usize].saturating_add(1);
            let held = per_client.entry(seat.client).or_default();
            *held = held.saturating_add(1);
        }
        assert_eq!(
            counted, self.used,
            "per-feature counts match the seats held"
        );
        for (client, held) in &per_client {
            let session = self.sessions.get(client);
            assert!(session.is_some(), "a seat holder {client} has a session");
            assert_eq!(
                session.map(|s| s.seats_held),
                Some(*held),
                "session seat count of {client}"
            );
        }
        let holders = self.sessions.values().filter(|s| s.seats_held > 0).count();
        assert_eq!(
            holders,
            per_client.len(),
            "sessions count only seats they hold"
        );
        self.check_queues();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client: u64, feature: &str) -> Command {
        Command::Grant {
            client: ClientId(client),
            seq: RequestSeq(1),
            feature: feature.into(),
            user: "ann".into(),
            host: "ws1".into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: WallTime(1_800_000_000_000),
        }
    }

    /// Three seats of two features for two clients, granted at indices 1 to 3.
    fn table() -> Seats {
        let mut seats = Seats::new();
        for (index, (client, feature)) in [(1, "cad"), (2, "cad"), (3, "cam")].iter().enumerate() {
            let outcome = seats.apply(LogIndex(index as u64 + 1), &grant(*client, feature), |_| {
                Some(5)
            });
            assert!(matches!(outcome, Some(Outcome::Granted { .. })));
        }
        seats
    }

    fn known(_: &str) -> bool {
        true
    }

    fn problem(seats: &Seats) -> String {
        seats.validate(LogIndex(3), known).unwrap_err()
    }

    #[test]
    fn an_honest_table_is_valid() {
        assert_eq!(table().validate(LogIndex(3), known), Ok(()));
        assert_eq!(Seats::new().validate(LogIndex(0), known), Ok(()));
    }

    #[test]
    fn counts_that_differ_from_the_seats_held_are_refused() {
        let mut seats = table();
        seats.used[0] = 0;
        assert!(
            problem(&seats).contains("differ from the seats held"),
            "{}",
            problem(&seats)
        );
        let mut seats = table();
        seats.used.push(0);
        assert!(problem(&seats).contains("3 counts"), "{}", problem(&seats));
    }

    #[test]
    fn seats_of_unlisted_features_or_later_handles_are_refused() {
        let mut seats = table();
        if let Some(seat) = seats.seats.get_mut(&Handle(1)) {
            seat.feature = 9;
        }
        assert!(
            problem(&seats).contains("feature number 9"),
            "{}",
            problem(&seats)
        );
        assert!(
            table()
                .validate(LogIndex(2), known)
                .unwrap_err()
                .contains("seat h3 cannot have been granted by index 2")
        );
        let mut seats = table();
        seats.names[1] = "cad".to_string();
        assert!(
            problem(&seats).contains("listed twice"),
            "{}",
            problem(&seats)
        );
        assert!(
            table()
                .validate(LogIndex(3), |f| f == "cad")
                .unwrap_err()
                .contains("`cam` is not in")
        );
    }

    #[test]
    fn sessions_that_miscount_or_are_missing_are_refused() {
        let mut seats = table();
        if let Some(session) = seats.sessions.get_mut(&ClientId(1)) {
            session.seats_held = 2;
        }
        assert!(
            problem(&seats).contains("counted as holding 2 seats but holds 1"),
            "{}",
            problem(&seats)
        );
        let mut seats = table();
        seats.sessions.remove(&ClientId(3));
        assert!(
            problem(&seats).contains("holds seats but has no session"),
            "{}",
            problem(&seats)
        );
        let mut seats = table();
        if let Some(session) = seats.sessions.get_mut(&ClientId(2)) {
            session.identity = "a\u{7}b".into();
        }
        assert!(
            problem(&seats).contains("control character"),
            "{}",
            problem(&seats)
        );
        let mut seats = table();
        if let Some(session) = seats.sessions.get_mut(&ClientId(2)) {
            session.user_len = 99;
        }
        assert!(
            problem(&seats).contains("ends inside"),
            "{}",
            problem(&seats)
        );
    }

    /// Found by mutation testing: who holds a client's seats is the user and host of
    /// its latest grant, and a request older than the client's last is stale.
    #[test]
    fn a_session_keeps_its_latest_identity_and_refuses_older_requests() {
        let mut seats = Seats::new();
        let at = |user: &str, host: &str, seq: u64| Command::Grant {
            client: ClientId(7),
            seq: RequestSeq(seq),
            feature: "cad".into(),
            user: user.into(),
            host: host.into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: WallTime(1_800_000_000_000),
        };
        let known = |_: &str| Some(5);
        seats.apply(LogIndex(1), &at("ann", "ws1", 1), known);
        assert_eq!(seats.holder(ClientId(7)), Some(("ann", "ws1")));
        seats.apply(LogIndex(2), &at("ann", "ws2", 2), known);
        assert_eq!(seats.holder(ClientId(7)), Some(("ann", "ws2")));
        seats.apply(LogIndex(3), &at("bob", "ws2", 3), known);
        assert_eq!(seats.holder(ClientId(7)), Some(("bob", "ws2")));
        assert_eq!(seats.seen(ClientId(7), RequestSeq(2)), Seen::Stale);
        assert_eq!(seats.apply(LogIndex(4), &at("bob", "ws2", 2), known), None);
        assert_eq!(seats.len(), 3, "a stale request takes no seat");
    }

    /// Found by mutation testing: a request applied twice (a retry that was logged again)
    /// gets its first answer, not a second seat; and a client cannot release another
    /// client's seat.
    #[test]
    fn a_request_applied_twice_gets_its_first_answer_and_seats_are_released_by_their_holder() {
        let mut seats = Seats::new();
        let known = |_: &str| Some(5);
        let first = seats.apply(LogIndex(1), &grant(7, "cad"), known);
        let again = seats.apply(LogIndex(2), &grant(7, "cad"), known);
        assert_eq!(first, again);
        assert_eq!(seats.len(), 1);
        let Some(Outcome::Granted { handle, .. }) = first else {
            panic!("{first:?}");
        };
        let release = |client: u64| Command::Release {
            client: ClientId(client),
            seq: RequestSeq(2),
            handle,
        };
        assert_eq!(
            seats.apply(LogIndex(3), &release(8), known),
            Some(Outcome::Denied(Denial::UnknownHandle))
        );
        assert_eq!(seats.len(), 1);
        assert_eq!(
            seats.apply(LogIndex(4), &release(7), known),
            Some(Outcome::Released { handle })
        );
        assert!(seats.is_empty());
    }

    /// Found by mutation testing: the planted bug `RetriesNotDeduplicated` does what it
    /// says (a request applied twice takes a second seat), so the simulator's measure of
    /// it measures something.
    #[test]
    fn without_deduplication_a_request_applied_twice_takes_a_second_seat() {
        let mut seats = Seats::new();
        let known = |_: &str| Some(5);
        seats.apply_planted(LogIndex(1), &grant(7, "cad"), false, known);
        let again = seats.apply_planted(LogIndex(2), &grant(7, "cad"), false, known);
        assert!(
            matches!(
                again,
                Some(Outcome::Granted {
                    handle: Handle(2),
                    ..
                })
            ),
            "{again:?}"
        );
        assert_eq!(seats.len(), 2);
    }

    /// Found by mutation testing: the planted bug `SnapshotWithoutSessions` keeps the
    /// seats but forgets each client's last request, so a retry looks new.
    #[test]
    fn forgetting_requests_keeps_the_seats_but_makes_a_retry_look_new() {
        let mut seats = table();
        assert!(matches!(
            seats.seen(ClientId(1), RequestSeq(1)),
            Seen::Retry(Outcome::Granted { .. })
        ));
        seats.forget_requests();
        assert_eq!(seats.seen(ClientId(1), RequestSeq(1)), Seen::New);
        assert_eq!(seats.len(), 3);
        assert_eq!(seats.seats_held(ClientId(1)), Some(1));
    }

    /// Found by mutation testing: nothing checked the getters that the server's COUNT
    /// check, its forgetting of idle clients and the status report read.
    #[test]
    fn getters_say_each_seats_feature_the_seats_used_and_the_clients_without_seats() {
        let mut seats = table();
        assert!(!seats.is_empty());
        let features: Vec<&str> = seats.iter().map(|(_, s)| seats.feature_of(s)).collect();
        assert_eq!(features, ["cad", "cad", "cam"]);
        let used = |seats: &Seats| ["cad", "cam", "cae"].map(|f| seats.used(f));
        assert_eq!(used(&seats), [2, 1, 0]);
        assert_eq!(seats.idle_clients().count(), 0, "every client holds a seat");
        let checkin = Command::Release {
            client: ClientId(2),
            seq: RequestSeq(2),
            handle: Handle(2),
        };
        seats.apply(LogIndex(4), &checkin, |_| Some(5));
        assert_eq!(used(&seats), [1, 1, 0]);
        assert_eq!(seats.idle_clients().collect::<Vec<_>>(), [ClientId(2)]);
    }

    /// Found by mutation testing: `check_invariants` does check.
    #[test]
    #[should_panic(expected = "per-feature counts match the seats held")]
    fn a_miscounted_table_breaks_the_invariants() {
        table().check_invariants();
        let mut seats = table();
        seats.used[0] = 0;
        seats.check_invariants();
    }

    /// Found by mutation testing: a table may name as many features as a license may
    /// hold, and no more.
    #[test]
    fn a_table_names_at_most_features_max_features() {
        let mut seats = Seats::new();
        for feature in 0..FEATURES_MAX {
            seats.names.push(format!("f{feature}"));
            seats.used.push(0);
        }
        assert_eq!(seats.validate(LogIndex(0), known), Ok(()));
        seats.names.push("one too many".to_string());
        seats.used.push(0);
        let problem = seats.validate(LogIndex(0), known).unwrap_err();
        assert!(problem.contains("over the limit"), "{problem}");
    }

    /// Found by mutation testing: a table holds up to `SESSIONS_MAX` sessions (and is
    /// valid); one more, and the longest-idle hundredth of the limit without a seat is
    /// forgotten, oldest first, while a session that holds a seat is kept however idle.
    #[test]
    fn the_digest_covers_the_seats_and_each_clients_last_answer() {
        let mut seats = Seats::new();
        let empty = seats.digest();
        assert_eq!(empty, Seats::new().digest(), "one state, one digest");
        seats.apply(LogIndex(1), &grant(1, "cad"), |_| Some(5));
        let granted = seats.digest();
        assert_ne!(granted, empty);
        let mut same = Seats::new();
        same.apply(LogIndex(1), &grant(1, "cad"), |_| Some(5));
        assert_eq!(same.digest(), granted, "the same log, the same digest");
        // The same seats, but the client's last answer forgotten.
        same.forget_requests();
        assert_ne!(same.digest(), granted);
    }

    #[test]
    fn past_the_session_limit_the_longest_idle_sessions_without_seats_are_forgotten() {
        let mut seats = Seats::new();
        let known = |_: &str| Some(1);
        // Client 0 takes a seat first: the longest idle of all.
        seats.apply(LogIndex(1), &grant(0, "cad"), known);
        // Every other client checks in a seat it does not hold: a session, no seat.
        let checkin = |client: usize| Command::Release {
            client: ClientId(client as u64),
            seq: RequestSeq(1),
            handle: Handle(0),
        };
        for client in 1..SESSIONS_MAX {
            seats.apply(LogIndex(client as u64 + 1), &checkin(client), known);
        }
        assert_eq!(seats.sessions_len(), SESSIONS_MAX);
        assert_eq!(
            seats.validate(LogIndex(SESSIONS_MAX as u64), |_| true),
            Ok(())
        );
        // A new client's grant of a feature the license lacks makes a session too, and
        // bounds the table like any other request.
        let last = LogIndex(SESSIONS_MAX as u64 + 1);
        let unknown = seats.apply(last, &grant(SESSIONS_MAX as u64, "cad"), |_| None);
        assert_eq!(unknown, Some(Outcome::Denied(Denial::UnknownFeature)));
        let forgotten = SESSIONS_MAX / 100;
        assert_eq!(seats.sessions_len(), SESSIONS_MAX + 1 - forgotten);
        assert_eq!(
            seats.seats_held(ClientId(0)),
            Some(1),
            "a seat holder is kept"
        );
        assert_eq!(seats.seats_held(ClientId(1)), None);
        assert_eq!(seats.seats_held(ClientId(forgotten as u64)), None);
        assert_eq!(seats.seats_held(ClientId(forgotten as u64 + 1)), Some(0));
    }
}
