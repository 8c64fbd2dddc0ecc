//! Sessions without seats, on the leader: when each may be forgotten.
//!
//! A client's session (its last request and answer) is what makes a retry get its first
//! answer instead of a second seat. A client retries one request only until it gives up
//! ([`crate::timing::Timing::client_give_up_after`]); so a session that has held no seat
//! for longer than that and than a seat's lease
//! ([`crate::timing::Timing::session_idle_max`]) is forgotten, by a
//! [`crate::seats::Command::Forget`] the leader proposes.
//! Otherwise every client that ever checked out and in would stay in every server's
//! memory and snapshots, and a flood of short-lived clients would fill them.
//!
//! Soft state, as the leases are: a new leader schedules every seatless session a whole
//! lease from its term start. A scheduled client that takes a seat again is simply
//! skipped when its time comes ([`IdleSessions::take_due`] asks whether it is still
//! idle), and scheduled again when it holds none.

use std::collections::{BTreeMap, VecDeque};

use crate::protocol::ClientId;
use crate::time::Time;

/// When each seatless session may be forgotten.
#[derive(Debug, Clone, Default)]
pub(super) struct IdleSessions {
    /// Each scheduled client's newest deadline.
    due: BTreeMap<ClientId, Time>,
    /// Deadlines in the order they were set (a leader's deadlines only grow, as its
    /// clock does), with stale entries skipped when they come up.
    queue: VecDeque<(Time, ClientId)>,
}

impl IdleSessions {
    /// Forgets `client` at `deadline` unless it is rescheduled or takes a seat.
    pub(super) fn schedule(&mut self, client: ClientId, deadline: Time) {
        self.due.insert(client, deadline);
        self.queue.push_back((deadline, client));
    }

    /// Up to `max` clients whose deadline has passed at `now` and that `still_idle` says
    /// still hold no seat; they are unscheduled.
    pub(super) fn take_due(
        &mut self,
        now: Time,
        max: usize,
        still_idle: impl Fn(ClientId) -> bool,
    ) -> Vec<ClientId> {
        let mut due = Vec::new();
        while due.len() < max {
            let Some(&(deadline, client)) = self.queue.front() else {
                break;
            };
            if deadline > now {
                break;
            }
            self.queue.pop_front();
            if self.due.get(&client) != Some(&deadline) {
                continue; // rescheduled later, or already taken
            }
            self.due.remove(&client);
            if still_idle(client) {
                due.push(client);
            }
        }
        due
    }

    /// The clients scheduled now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_due_only_at_its_newest_deadline_and_only_if_still_idle() {
        let mut idle = IdleSessions::default();
        idle.schedule(ClientId(1), Time(100));
        idle.schedule(ClientId(2), Time(150));
        idle.schedule(ClientId(1), Time(200)); // active again, idle again
        idle.schedule(ClientId(3), Time(250));
        assert_eq!(idle.take_due(Time(160), 10, |_| true), vec![ClientId(2)]);
        // Client 3 took a seat meanwhile: skipped, and no longer scheduled.
        assert_eq!(
            idle.take_due(Time(300), 10, |c| c != ClientId(3)),
            vec![ClientId(1)]
        );
        assert_eq!(idle.len(), 0);
    }

    #[test]
    fn at_most_max_are_taken_at_once() {
        let mut idle = IdleSessions::default();
        for n in 0..5 {
            idle.schedule(ClientId(n), Time(10));
        }
        assert_eq!(idle.take_due(Time(10), 2, |_| true).len(), 2);
        assert_eq!(idle.take_due(Time(10), 10, |_| true).len(), 3);
    }
}
