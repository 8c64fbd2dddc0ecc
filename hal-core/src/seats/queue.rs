//! The queues of requests that wait for a seat (`checkout --wait`): part of the
//! replicated state, so every server holds the same queues in the same order and a
//! failover keeps every place.
//!
//! A [`Command::Wait`] takes a free seat at once only if no earlier request waits for
//! it; otherwise it joins the end of its feature's queue. As seats come back the leader
//! proposes [`Command::Serve`] for the first waiting request the options let have a seat,
//! and the entry applies only if that is still so: whatever the leader proposes, a
//! request is never passed by a later one, except by one the options let have a seat
//! that they refuse it (a MAX it reached, seats a RESERVE keeps for others).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Command, Outcome, Seats, Session, StoredOutcome};
use crate::options::Refusal;
use crate::protocol::{ClientId, Denial, Handle, LogIndex, RequestSeq};
use crate::time::WallTime;

/// The most requests one feature's queue holds; a request past it is refused
/// `all_in_use` at once.
pub const WAITERS_PER_FEATURE_MAX: usize = 1024;

/// The most requests all queues hold together.
pub const WAITERS_MAX: usize = 16_384;

/// A request waiting for a seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    /// The log index of the entry that queued it: unique forever.
    pub id: Handle,
    pub client: ClientId,
    pub seq: RequestSeq,
    pub user: Arc<str>,
    pub host: Arc<str>,
    /// When it joined, on the deciding leader's wall clock, in ms.
    since_ms: u64,
}

impl Waiter {
    /// When it joined the queue, on the deciding leader's wall clock.
    pub fn since(&self) -> WallTime {
        WallTime(self.since_ms)
    }
}

/// A client's latest wait, as its session keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Wait {
    pub(super) seq: RequestSeq,
    pub(super) status: WaitStatus,
}

/// Where a wait stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum WaitStatus {
    /// In its feature's queue, as the waiter with this id.
    Queued(Handle),
    /// Answered: granted, refused, or out of the queue.
    Done(StoredOutcome),
}

/// What a wait request is, compared with the client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitSeen {
    /// Not seen before: propose it.
    New,
    /// Older than the client's latest wait.
    Stale,
    /// Waiting in the queue of `feature` at `position` (1: next), as waiter `id`.
    Waiting {
        id: Handle,
        feature: Arc<str>,
        position: u32,
    },
    /// Answered: here is the answer again.
    Answered(Outcome),
}

/// Whether the options' refusal leaves a waiting request its turn: none, or one that
/// waiting cannot lift (the request is served its refusal and leaves the queue).
fn takes_its_turn(refusal: Option<&Refusal>) -> bool {
    matches!(
        refusal,
        None | Some(Refusal::NotIncluded | Refusal::Excluded { .. })
    )
}

impl Seats {
    /// How a wait request compares with the client's latest.
    pub fn wait_seen(&self, client: ClientId, seq: RequestSeq) -> WaitSeen {
        let Some(wait) = self.sessions.get(&client).and_then(|s| s.wait.as_deref()) else {
            return WaitSeen::New;
        };
        if wait.seq > seq {
            return WaitSeen::Stale;
        }
        if wait.seq < seq {
            return WaitSeen::New;
        }
        match &wait.status {
            WaitStatus::Done(outcome) => WaitSeen::Answered(outcome.into()),
            WaitStatus::Queued(id) => match self.find_waiter(*id) {
                Some((slot, position)) => WaitSeen::Waiting {
                    id: *id,
                    feature: self.names.get(slot).map_or("", String::as_str).into(),
                    position: u32::try_from(position.saturating_add(1)).unwrap_or(u32::MAX),
                },
                None => WaitSeen::Answered(Outcome::LeftQueue),
            },
        }
    }

    /// Where waiter `id` is: its feature's slot and its place in that queue (0: first).
    fn find_waiter(&self, id: Handle) -> Option<(usize, usize)> {
        self.queues.iter().find_map(|(slot, queue)| {
            let place = queue.iter().position(|w| w.id == id)?;
            Some((*slot as usize, place))
        })
    }

    /// The refusal the options give `waiter` a seat of the feature at `slot`, of which
    /// `free` (at least one) are free.
    fn waiter_refusal(&self, slot: usize, waiter: &Waiter, free: u32) -> Option<Refusal> {
        self.options.as_ref()?;
        self.options_refusal(slot, (&waiter.user, &waiter.host), free.max(1))
    }

    /// How many of the `free` seats of `feature` are left for a new request (a checkout,
    /// a borrow, or a wait) once the requests waiting have taken theirs, first come first:
    /// each waiter the options let have a seat when that many are left takes one. A new
    /// request gets a seat only from these, and the options judge it by them.
    pub fn seats_left_for_newcomer(&self, feature: &str, free: u32) -> u32 {
        let Some(slot) = self.names.iter().position(|n| n == feature) else {
            return free;
        };
        let Some(queue) = u32::try_from(slot).ok().and_then(|s| self.queues.get(&s)) else {
            return free;
        };
        let mut left = free;
        for waiter in queue {
            if left == 0 {
                break;
            }
            if self.waiter_refusal(slot, waiter, left).is_none() {
                left = left.saturating_sub(1);
            }
        }
        left
    }

    /// The request whose turn it is for one of the `free` seats of `feature` (the first
    /// the options let have a seat, or must refuse one), if any waits.
    pub fn next_to_serve(&self, feature: &str, free: u32) -> Option<&Waiter> {
        let slot = self.names.iter().position(|n| n == feature)?;
        let queue = self.queues.get(&u32::try_from(slot).ok()?)?;
        queue
            .iter()
            .find(|w| takes_its_turn(self.waiter_refusal(slot, w, free).as_ref()))
    }

    /// The request `client` has waiting, if any, and its feature.
    pub fn queued_wait(&self, client: ClientId) -> Option<(&Waiter, &str)> {
        let wait = self.sessions.get(&client)?.wait.as_deref()?;
        let WaitStatus::Queued(id) = wait.status else {
            return None;
        };
        let (slot, place) = self.find_waiter(id)?;
        let waiter = self.queues.get(&u32::try_from(slot).ok()?)?.get(place)?;
        Some((waiter, self.names.get(slot)?.as_str()))
    }

    /// The requests waiting for `feature`, first come first.
    pub fn waiters_of(&self, feature: &str) -> impl Iterator<Item = &Waiter> {
        let slot = self
            .names
            .iter()
            .position(|n| n == feature)
            .and_then(|s| u32::try_from(s).ok());
        slot.and_then(|s| self.queues.get(&s)).into_iter().flatten()
    }

    /// Every feature with requests waiting, and its queue, first come first.
    pub fn queues(&self) -> impl Iterator<Item = (&str, &VecDeque<Waiter>)> {
        self.queues.iter().filter_map(|(slot, queue)| {
            let name = self.names.get(*slot as usize)?;
            Some((name.as_str(), queue))
        })
    }

    /// Every waiting request, feature by feature.
    pub fn waiters(&self) -> impl Iterator<Item = &Waiter> {
        self.queues.values().flatten()
    }

    /// How many requests wait in all.
    pub fn waiting(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    /// Records `status` as the answer to `client`'s wait `seq`, applied at `index`.
    fn record_wait(
        &mut self,
        client: ClientId,
        index: LogIndex,
        seq: RequestSeq,
        status: WaitStatus,
    ) {
        if let Some(session) = self.sessions.get_mut(&client) {
            session.wait = Some(Box::new(Wait { seq, status }));
            session.last_index = index;
        }
    }

    /// Takes waiter `id` out of its queue (dropping a queue it empties).
    fn take_waiter(&mut self, slot: usize, place: usize) -> Option<Waiter> {
        let key = u32::try_from(slot).ok()?;
        let queue = self.queues.get_mut(&key)?;
        let waiter = queue.remove(place);
        if queue.is_empty() {
            self.queues.remove(&key);
        }
        waiter
    }

    /// Applies a [`Command::Wait`] at `index`.
    pub(super) fn apply_wait(
        &mut self,
        index: LogIndex,
        command: &Command,
        dedup: bool,
        count_of: impl Fn(&str) -> Option<u32>,
    ) -> Option<Outcome> {
        let Command::Wait {
            client,
            seq,
            feature,
            user,
            host,
            by,
            at,
        } = command
        else {
            return None;
        };
        let (client, seq) = (*client, *seq);
        match self.wait_seen(client, seq) {
            WaitSeen::Stale => return None,
            WaitSeen::Answered(outcome) if dedup => return Some(outcome),
            WaitSeen::Waiting { id, position, .. } if dedup => {
                let count = count_of(feature).unwrap_or(0);
                let used = self.used(feature);
                return Some(Outcome::Queued {
                    id,
                    position,
                    used,
                    count,
                });
            }
            WaitSeen::New | WaitSeen::Answered(_) | WaitSeen::Waiting { .. } => {}
        }
        let session = self.sessions.entry(client).or_insert_with(Session::new);
        session.set_identity(user, host);
        // A client waits for one seat at a time: a newer wait replaces its older one.
        let older = match session.wait.as_deref() {
            Some(Wait {
                status: WaitStatus::Queued(id),
                ..
            }) => Some(*id),
            _ => None,
        };
        if let Some((slot, place)) = older.and_then(|id| self.find_waiter(id)) {
            self.take_waiter(slot, place);
        }
        let outcome = match count_of(feature) {
            None => Outcome::Denied(Denial::UnknownFeature),
            Some(count) => {
                let slot = self.slot_of(feature);
                let used = self.used[slot];
                let free = count.saturating_sub(used);
                let left = self.seats_left_for_newcomer(feature, free);
                let refusal = self.options_refusal(slot, (user, host), left.max(1));
                let total = self.waiting();
                let queue_len = u32::try_from(slot)
                    .ok()
                    .and_then(|s| self.queues.get(&s))
                    .map_or(0, VecDeque::len);
                match refusal {
                    Some(refusal @ (Refusal::NotIncluded | Refusal::Excluded { .. })) => {
                        Outcome::Denied(Denial::of_options(&refusal))
                    }
                    None if left > 0 => {
                        let handle = self.take_seat(slot, client, index, None, *at);
                        Outcome::Granted {
                            handle,
                            borrow_end: None,
                            by: *by,
                        }
                    }
                    _ if queue_len >= WAITERS_PER_FEATURE_MAX || total >= WAITERS_MAX => {
                        Outcome::Denied(Denial::AllInUse { used, count })
                    }
                    _ => {
                        let id = Handle(index.0);
                        let waiter = Waiter {
                            id,
                            client,
                            seq,
                            user: user.clone(),
                            host: host.clone(),
                            since_ms: at.0,
                        };
                        let key = u32::try_from(slot).unwrap_or(u32::MAX);
                        self.queues.entry(key).or_default().push_back(waiter);
                        self.record_wait(client, index, seq, WaitStatus::Queued(id));
                        return Some(Outcome::Queued {
                            id,
                            position: u32::try_from(queue_len.saturating_add(1))
                                .unwrap_or(u32::MAX),
                            used,
                            count,
                        });
                    }
                }
            }
        };
        self.record_wait(client, index, seq, WaitStatus::Done((&outcome).into()));
        if self.sessions.len() > super::SESSIONS_MAX {
            self.evict_idle_sessions();
        }
        Some(outcome)
    }

    /// Applies a [`Command::Serve`] at `index`: the seat, if the request named is still
    /// waiting, a seat is free, and it is that request's turn.
    pub(super) fn apply_serve(
        &mut self,
        index: LogIndex,
        command: &Command,
        count_of: impl Fn(&str) -> Option<u32>,
    ) -> Option<Outcome> {
        let Command::Serve {
            id,
            client,
            seq,
            feature,
            by,
            at,
            ..
        } = command
        else {
            return None;
        };
        let (slot, place) = self.find_waiter(*id)?;
        let waiter = self.queues.get(&u32::try_from(slot).ok()?)?.get(place)?;
        if waiter.client != *client || waiter.seq != *seq || self.names.get(slot)? != &**feature {
            return None;
        }
        let outcome = match count_of(feature) {
            None => Outcome::Denied(Denial::UnknownFeature),
            Some(count) => {
                let free = count.saturating_sub(self.used[slot]);
                if free == 0 || self.next_to_serve(feature, free).map(|w| w.id) != Some(*id) {
                    return None;
                }
                match self.waiter_refusal(slot, waiter, free) {
                    Some(refusal) => Outcome::Denied(Denial::of_options(&refusal)),
                    None => {
                        let handle = self.take_seat(slot, *client, index, None, *at);
                        Outcome::Granted {
                            handle,
                            borrow_end: None,
                            by: *by,
                        }
                    }
                }
            }
        };
        self.take_waiter(slot, place);
        self.record_wait(*client, index, *seq, WaitStatus::Done((&outcome).into()));
        Some(outcome)
    }

    /// Applies a [`Command::Dequeue`] at `index`: the request leaves its queue (`None`
    /// if it is no longer there: its client hears how it was answered). With id 0, a
    /// leave asked before the wait applied: a wait under that number is answered "left"
    /// from then on instead of queueing.
    pub(super) fn apply_dequeue(
        &mut self,
        index: LogIndex,
        id: Handle,
        client: ClientId,
        seq: RequestSeq,
    ) -> Option<Outcome> {
        let found = self.find_waiter(id).filter(|&(slot, place)| {
            self.queues
                .get(&u32::try_from(slot).unwrap_or(u32::MAX))
                .and_then(|q| q.get(place))
                .is_some_and(|w| w.client == client && w.seq == seq)
        });
        match found {
            Some((slot, place)) => {
                self.take_waiter(slot, place);
            }
            // A leave asked before its wait applied (id 0): recorded, so that the wait,
            // if it applies later, does not queue. An older wait of the client's, which
            // that one would replace, leaves with it.
            None if id.0 == 0 && self.wait_seen(client, seq) == WaitSeen::New => {
                let older = self.queued_wait(client).map(|(waiter, _)| waiter.id);
                if let Some((slot, place)) = older.and_then(|id| self.find_waiter(id)) {
                    self.take_waiter(slot, place);
                }
                self.sessions.entry(client).or_insert_with(Session::new);
            }
            None => return None,
        }
        let left = WaitStatus::Done(StoredOutcome::LeftQueue);
        self.record_wait(client, index, seq, left);
        if self.sessions.len() > super::SESSIONS_MAX {
            self.evict_idle_sessions();
        }
        Some(Outcome::LeftQueue)
    }

    /// Checks the queues of a table from a peer's snapshot at `last_index`: within their
    /// limits, of listed features, each waiter's id given by then and unique, its names
    /// within the rules, and its session waiting as it.
    pub(super) fn validate_queues(&self, last_index: LogIndex) -> Result<(), String> {
        if self.waiting() > WAITERS_MAX {
            return Err(format!(
                "{} requests wait, over the limit of {WAITERS_MAX}",
                self.waiting()
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (slot, queue) in &self.queues {
            if *slot as usize >= self.names.len() {
                return Err(format!("a queue is of feature number {slot}, not listed"));
            }
            if queue.is_empty() || queue.len() > WAITERS_PER_FEATURE_MAX {
                return Err(format!("a queue holds {} requests", queue.len()));
            }
            for waiter in queue {
                if waiter.id.0 == 0 || waiter.id.0 > last_index.0 || !ids.insert(waiter.id) {
                    return Err(format!("waiting request {} is out of place", waiter.id));
                }
                crate::names::check(&waiter.user)
                    .and_then(|()| crate::names::check(&waiter.host))
                    .map_err(|problem| {
                        format!("waiting request {}: a name {problem}", waiter.id)
                    })?;
                let waits = self
                    .sessions
                    .get(&waiter.client)
                    .and_then(|s| s.wait.as_deref())
                    .is_some_and(|w| {
                        w.seq == waiter.seq && w.status == WaitStatus::Queued(waiter.id)
                    });
                if !waits {
                    return Err(format!(
                        "waiting request {} is not its client's wait",
                        waiter.id
                    ));
                }
            }
        }
        if self.sessions_queued() != self.waiting() {
            return Err("a client's session waits in no queue".into());
        }
        Ok(())
    }

    /// Checks the queues' own consistency; panics with the broken rule.
    pub(super) fn check_queues(&self) {
        assert!(self.waiting() <= WAITERS_MAX, "the queues hold too many");
        for queue in self.queues.values() {
            assert!(!queue.is_empty(), "no empty queue is kept");
            for waiter in queue {
                let status = self
                    .sessions
                    .get(&waiter.client)
                    .and_then(|s| s.wait.as_deref())
                    .map(|w| (w.seq, w.status.clone()));
                assert_eq!(
                    status,
                    Some((waiter.seq, WaitStatus::Queued(waiter.id))),
                    "waiter {} is its client's wait",
                    waiter.id
                );
            }
        }
        assert_eq!(
            self.sessions_queued(),
            self.waiting(),
            "every queued session has a waiter"
        );
    }

    /// How many sessions wait in a queue.
    fn sessions_queued(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| {
                s.wait
                    .as_deref()
                    .is_some_and(|w| matches!(w.status, WaitStatus::Queued(_)))
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerId;

    const AT: WallTime = WallTime(1_800_000_000_000);

    fn grant(client: u64) -> Command {
        Command::Grant {
            client: ClientId(client),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: format!("u{client}").into(),
            host: "ws1".into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: AT,
        }
    }

    fn wait(client: u64) -> Command {
        Command::Wait {
            client: ClientId(client),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: format!("u{client}").into(),
            host: "ws1".into(),
            by: ServerId::PRIMARY,
            at: AT,
        }
    }

    fn serve(id: u64, client: u64) -> Command {
        Command::Serve {
            id: Handle(id),
            client: ClientId(client),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: format!("u{client}").into(),
            host: "ws1".into(),
            by: ServerId::PRIMARY,
            at: AT,
        }
    }

    /// A table whose two `cad` seats clients 1 and 2 hold (entries 1, 2), with clients 3
    /// and 4 waiting (entries 3, 4) and client 1's seat back (entry 5).
    fn one_seat_promised() -> Seats {
        let mut seats = Seats::new();
        let count = |_: &str| Some(2);
        for (index, command) in [grant(1), grant(2), wait(3), wait(4)].iter().enumerate() {
            seats.apply(LogIndex(index as u64 + 1), command, count);
        }
        let release = Command::Release {
            client: ClientId(1),
            seq: RequestSeq(2),
            handle: Handle(1),
        };
        seats.apply(LogIndex(5), &release, count);
        seats.check_invariants();
        seats
    }

    #[test]
    fn a_seat_promised_to_a_waiter_goes_to_no_later_request() {
        let count = |_: &str| Some(2);
        let mut seats = one_seat_promised();
        assert_eq!(seats.used("cad"), 1);
        // A checkout and a wait that come before the leader serves the queue.
        assert_eq!(
            seats.apply(LogIndex(6), &grant(5), count),
            Some(Outcome::Denied(Denial::AllInUse { used: 1, count: 2 }))
        );
        assert!(matches!(
            seats.apply(LogIndex(7), &wait(6), count),
            Some(Outcome::Queued { position: 3, .. })
        ));
        // A turn proposed out of order is not taken.
        assert_eq!(seats.apply(LogIndex(8), &serve(4, 4), count), None);
        assert_eq!(
            seats.apply(LogIndex(9), &serve(3, 3), count),
            Some(Outcome::Granted {
                handle: Handle(9),
                borrow_end: None,
                by: ServerId::PRIMARY
            })
        );
        // No seat free: a turn is not taken either.
        assert_eq!(seats.apply(LogIndex(10), &serve(4, 4), count), None);
        let order: Vec<u64> = seats.waiters().map(|w| w.client.0).collect();
        assert_eq!(order, [4, 6]);
        seats.check_invariants();
        assert!(seats.validate(LogIndex(10), |_| true).is_ok());
    }

    #[test]
    fn a_tampered_queue_is_refused_from_a_peer() {
        let mut seats = one_seat_promised();
        assert!(seats.validate(LogIndex(5), |_| true).is_ok());
        assert!(
            seats.validate(LogIndex(3), |_| true).is_err(),
            "a waiter from later"
        );
        if let Some(queue) = seats.queues.values_mut().next() {
            queue.swap(0, 1);
            queue[0].seq = RequestSeq(9);
        }
        let why = seats.validate(LogIndex(5), |_| true).unwrap_err();
        assert!(why.contains("is not its client's wait"), "{why}");
    }

    #[test]
    fn a_newer_wait_of_a_client_replaces_its_older_one() {
        let count = |_: &str| Some(2);
        let mut seats = one_seat_promised();
        let Command::Wait {
            client,
            feature,
            user,
            host,
            by,
            at,
            ..
        } = wait(3)
        else {
            unreachable!()
        };
        let newer = Command::Wait {
            client,
            seq: RequestSeq(3),
            feature,
            user,
            host,
            by,
            at,
        };
        let _ = seats.apply(LogIndex(6), &newer, count);
        let order: Vec<(u64, u64)> = seats.waiters().map(|w| (w.client.0, w.seq.0)).collect();
        assert_eq!(
            order,
            [(4, 1), (3, 3)],
            "client 3's older wait left its place"
        );
        assert_eq!(seats.wait_seen(ClientId(3), RequestSeq(1)), WaitSeen::Stale);
        seats.check_invariants();
    }

    fn options(text: &str) -> Command {
        Command::Options {
            client: ClientId(900),
            seq: RequestSeq(1),
            text: text.into(),
            by: "root@admin".into(),
        }
    }

    #[test]
    fn a_later_wait_does_not_take_the_seat_a_reserve_leaves_an_earlier_waiter() {
        // COUNT 3, one seat kept for gus. u1 and u2 hold; u3 waits (the one free seat is
        // gus's); u1 checks in: two free, one of them u3's now.
        let count = |_: &str| Some(3);
        let mut seats = Seats::new();
        let steps = [
            options("RESERVE 1 cad USER gus\n"),
            grant(1),
            grant(2),
            wait(3),
        ];
        for (index, command) in steps.iter().enumerate() {
            seats.apply(LogIndex(index as u64 + 1), command, count);
        }
        assert_eq!(seats.waiting(), 1);
        let release = Command::Release {
            client: ClientId(1),
            seq: RequestSeq(2),
            handle: Handle(2),
        };
        seats.apply(LogIndex(5), &release, count);
        // u4's wait lands before u3's turn: the seat left is gus's, so u4 queues.
        assert!(matches!(
            seats.apply(LogIndex(6), &wait(4), count),
            Some(Outcome::Queued { position: 2, .. })
        ));
        assert!(matches!(
            seats.apply(LogIndex(7), &serve(4, 3), count),
            Some(Outcome::Granted { .. })
        ));
        seats.check_invariants();
    }

    #[test]
    fn a_leave_before_its_wait_applies_keeps_the_wait_out_of_the_queue() {
        let count = |_: &str| Some(2);
        let mut seats = one_seat_promised();
        let leave = Command::Dequeue {
            id: Handle(0),
            client: ClientId(9),
            seq: RequestSeq(1),
            feature: "".into(),
            asked: true,
        };
        assert_eq!(
            seats.apply(LogIndex(6), &leave, count),
            Some(Outcome::LeftQueue)
        );
        assert_eq!(
            seats.apply(LogIndex(7), &wait(9), count),
            Some(Outcome::LeftQueue)
        );
        assert!(seats.waiters().all(|w| w.client != ClientId(9)));
        seats.check_invariants();
    }
}
