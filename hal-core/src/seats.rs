//! The replicated state: the seat table (DESIGN §3.2).
//!
//! Log commands (`Grant`, `Release`, `Expire`, `Noop`) are applied here in log order on
//! every server, so every server that applied the same prefix holds the same table. Apply
//! is deterministic and re-checks what the leader checked when it proposed: a grant that
//! would exceed COUNT is denied here too. Each client's last request and its outcome are
//! remembered, so a retried request gets its original answer instead of a second seat.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ServerId;
use crate::protocol::{ClientId, Denial, Handle, LogIndex, RequestSeq};
use crate::time::WallTime;

/// A command in the replicated log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Committed by a new leader at the start of its term.
    Noop,
    /// A checkout (no `borrow_end`) or a borrow.
    Grant {
        client: ClientId,
        seq: RequestSeq,
        feature: String,
        user: String,
        host: String,
        borrow_end: Option<WallTime>,
        /// The leader that decided the grant (for borrows, always #1).
        by: ServerId,
    },
    /// A checkin or an early borrow return by the holder.
    Release {
        client: ClientId,
        seq: RequestSeq,
        handle: Handle,
    },
    /// The leader found the seat's lease or borrow over.
    Expire { handle: Handle },
}

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
}

/// One held seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Index into [`Seats`]' feature names.
    feature: u32,
    pub client: ClientId,
    pub borrow_end: Option<WallTime>,
}

/// What the table remembers of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    user: Box<str>,
    host: Box<str>,
    last_seq: RequestSeq,
    last_outcome: Option<Outcome>,
    /// The log index of the client's last applied request, for evicting idle sessions.
    last_index: LogIndex,
    seats_held: u32,
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
    /// Sessions that hold no seat, oldest first: the ones evicted past `SESSIONS_MAX`.
    idle: BTreeSet<(LogIndex, ClientId)>,
}

/// The most client sessions remembered; past it the longest-idle session without seats is
/// forgotten (a retry from it, long after, is then treated as a new request).
pub const SESSIONS_MAX: usize = 1_000_000;

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
        let (client, seq) = match command {
            Command::Noop => return None,
            Command::Expire { handle } => {
                self.remove(*handle);
                return None;
            }
            Command::Grant { client, seq, .. } | Command::Release { client, seq, .. } => {
                (*client, *seq)
            }
        };
        match self.seen(client, seq) {
            Seen::Retry(outcome) => return Some(outcome),
            Seen::Stale => return None,
            Seen::New => {}
        }
        let outcome = match command {
            Command::Grant {
                feature,
                user,
                host,
                borrow_end,
                by,
                ..
            } => {
                self.open_session(client, user, host);
                self.grant(index, client, feature, (*borrow_end, *by), count_of)
            }
            Command::Release { handle, .. } => {
                let owned = self.seats.get(handle).is_some_and(|s| s.client == client);
                if owned {
                    self.remove(*handle);
                    Outcome::Released { handle: *handle }
                } else {
                    Outcome::Denied(Denial::UnknownHandle)
                }
            }
            Command::Noop | Command::Expire { .. } => return None,
        };
        self.close_session(index, client, seq, outcome.clone());
        Some(outcome)
    }

    fn grant(
        &mut self,
        index: LogIndex,
        client: ClientId,
        feature: &str,
        (borrow_end, by): (Option<WallTime>, ServerId),
        count_of: impl Fn(&str) -> Option<u32>,
    ) -> Outcome {
        let Some(count) = count_of(feature) else {
            return Outcome::Denied(Denial::UnknownFeature);
        };
        let slot = self.intern(feature);
        let used = self.used[slot];
        if used >= count {
            return Outcome::Denied(Denial::AllInUse { used, count });
        }
        self.used[slot] += 1;
        let handle = Handle(index.0);
        let seat = Seat {
            feature: u32::try_from(slot).unwrap_or(u32::MAX),
            client,
            borrow_end,
        };
        self.seats.insert(handle, seat);
        if let Some(session) = self.sessions.get_mut(&client) {
            session.seats_held += 1;
        }
        Outcome::Granted {
            handle,
            borrow_end,
            by,
        }
    }

    /// Removes a seat, if held; a session left without seats becomes idle.
    fn remove(&mut self, handle: Handle) {
        let Some(seat) = self.seats.remove(&handle) else {
            return;
        };
        if let Some(used) = self.used.get_mut(seat.feature as usize) {
            *used = used.saturating_sub(1);
        }
        if let Some(session) = self.sessions.get_mut(&seat.client) {
            session.seats_held = session.seats_held.saturating_sub(1);
            if session.seats_held == 0 {
                self.idle.insert((session.last_index, seat.client));
            }
        }
    }

    fn intern(&mut self, feature: &str) -> usize {
        match self.names.iter().position(|n| n == feature) {
            Some(slot) => slot,
            None => {
                self.names.push(feature.to_string());
                self.used.push(0);
                self.names.len() - 1
            }
        }
    }

    /// Makes sure `client` has a session with this identity.
    fn open_session(&mut self, client: ClientId, user: &str, host: &str) {
        let session = self.sessions.entry(client).or_insert_with(|| Session {
            user: Box::from(""),
            host: Box::from(""),
            last_seq: RequestSeq(0),
            last_outcome: None,
            last_index: LogIndex(0),
            seats_held: 0,
        });
        if *session.user != *user || *session.host != *host {
            session.user = user.into();
            session.host = host.into();
        }
    }

    /// Records a client's applied request, evicting the longest-idle session if there are
    /// too many.
    fn close_session(
        &mut self,
        index: LogIndex,
        client: ClientId,
        seq: RequestSeq,
        outcome: Outcome,
    ) {
        self.open_session_if_missing(client);
        let Some(session) = self.sessions.get_mut(&client) else {
            return;
        };
        self.idle.remove(&(session.last_index, client));
        session.last_seq = seq;
        session.last_outcome = Some(outcome);
        session.last_index = index;
        if session.seats_held == 0 {
            self.idle.insert((index, client));
        }
        while self.sessions.len() > SESSIONS_MAX {
            let Some((_, oldest)) = self.idle.pop_first() else {
                break;
            };
            self.sessions.remove(&oldest);
        }
    }

    /// A release from a client the table has forgotten still gets a session, so its retry
    /// is answered the same.
    fn open_session_if_missing(&mut self, client: ClientId) {
        if !self.sessions.contains_key(&client) {
            self.open_session(client, "", "");
        }
    }

    /// How a request compares with what the client's session remembers.
    pub fn seen(&self, client: ClientId, seq: RequestSeq) -> Seen {
        match self.sessions.get(&client) {
            Some(s) if s.last_seq > seq => Seen::Stale,
            Some(Session {
                last_seq,
                last_outcome: Some(outcome),
                ..
            }) if *last_seq == seq => Seen::Retry(outcome.clone()),
            _ => Seen::New,
        }
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

    /// The user and host a client gave.
    pub fn holder(&self, client: ClientId) -> Option<(&str, &str)> {
        self.sessions.get(&client).map(|s| (&*s.user, &*s.host))
    }

    /// Checks the table's own consistency; panics with the broken rule.
    pub fn check_invariants(&self) {
        let mut counted = vec![0u32; self.names.len()];
        let mut per_client: BTreeMap<ClientId, u32> = BTreeMap::new();
        for seat in self.seats.values() {
            counted[seat.feature as usize] += 1;
            *per_client.entry(seat.client).or_default() += 1;
        }
        assert_eq!(
            counted, self.used,
            "per-feature counts match the seats held"
        );
        for (client, session) in &self.sessions {
            let held = per_client.get(client).copied().unwrap_or(0);
            if held > 0 {
                assert_eq!(session.seats_held, held, "session seat count of {client}");
            }
            let idle = self.idle.contains(&(session.last_index, *client));
            assert_eq!(
                idle,
                session.seats_held == 0,
                "idle set holds exactly the idle sessions"
            );
        }
        assert!(self.idle.len() <= self.sessions.len());
    }
}
