//! Waiting for a seat (`checkout --wait`) on the server: a wait is proposed like a
//! checkout and queued when it applies with every seat in use; its client asks again
//! every heartbeat, which keeps its place (leader-held soft state, like a seat's lease);
//! as seats come back the leader proposes the next request's turn, and answers it as
//! soon as the grant applies, without waiting for the client to ask.

use super::{Output, Server, State, clients};
use crate::ServerEvent;
use crate::protocol::{ClientId, Denial, Entry, Handle, ReplyResult, RequestSeq, ServerReply};
use crate::seats::{Command, Outcome, WaitSeen};

impl Server {
    /// A client's [`crate::protocol::Op::Wait`]: the reply to send now, or `None` when
    /// it is answered when its entry applies (or not at all: stale).
    pub(super) fn on_wait(
        &mut self,
        client: ClientId,
        seq: RequestSeq,
        (feature, user, host): (
            std::sync::Arc<str>,
            std::sync::Arc<str>,
            std::sync::Arc<str>,
        ),
    ) -> Option<ReplyResult> {
        if let Some(denial) = self.not_serving() {
            return Some(ReplyResult::Denied(denial));
        }
        match self.seats.wait_seen(client, seq) {
            WaitSeen::Stale => return None,
            WaitSeen::Answered(outcome) => {
                return Some(self.repeat_answer(client, seq, outcome));
            }
            WaitSeen::Waiting {
                id,
                feature,
                position,
            } => {
                // The client is still there: its place is kept for another lease.
                let deadline = self.now.mono + self.timing().seat_lease();
                let Some(leader) = self.lease_holder() else {
                    return Some(ReplyResult::Denied(Denial::NoMajority));
                };
                if !leader.leaving.contains(&id) {
                    leader.wait_leases.set(id, deadline);
                }
                return Some(ReplyResult::Queued {
                    position,
                    used: self.seats.used(&feature),
                    count: self.catalog.count(&feature).unwrap_or(0),
                    lease_ms: super::millis(self.timing().client_lease),
                });
            }
            WaitSeen::New => {}
        }
        if self.log.last_index().next().is_none() {
            self.event(ServerEvent::LimitReached { what: "log index" });
            return Some(ReplyResult::Denied(Denial::NoMajority));
        }
        if let State::Leader(leader) = &self.state
            && leader.proposed.contains_key(&(client, seq))
        {
            // A retry of a wait still in flight: it is answered when it applies.
            return None;
        }
        if let Err(denial) = self.catalog.check(&feature, self.now.wall, None) {
            return Some(ReplyResult::Denied(denial));
        }
        let command = Command::Wait {
            client,
            seq,
            feature,
            user,
            host,
            by: self.id(),
            at: self.now.wall,
        };
        self.propose(client, seq, command);
        None
    }

    /// A client's [`crate::protocol::Op::StopWaiting`] for its wait `seq`.
    pub(super) fn on_stop_waiting(
        &mut self,
        client: ClientId,
        seq: RequestSeq,
    ) -> Option<ReplyResult> {
        if let Some(denial) = self.not_serving() {
            return Some(ReplyResult::Denied(denial));
        }
        match self.seats.wait_seen(client, seq) {
            WaitSeen::Waiting { id, feature, .. } => {
                if !self.propose_leave(id, (client, seq), feature, true) {
                    return Some(ReplyResult::Denied(Denial::NoMajority));
                }
                // Answered when the entry applies.
                None
            }
            WaitSeen::Answered(outcome) => Some(self.repeat_answer(client, seq, outcome)),
            // Not applied (yet): the wait may be in the log still. The leave goes in the
            // log too, so that a wait applied after it, under this number, does not queue.
            WaitSeen::New => {
                let term = self.term;
                if let State::Leader(leader) = &self.state
                    && leader.proposed.contains_key(&(client, seq))
                {
                    // Its wait (or this leave) is in flight: asked again, it is answered
                    // once the wait applies.
                    return None;
                }
                if self.log.last_index().next().is_none() {
                    return Some(ReplyResult::Denied(Denial::NoMajority));
                }
                let command = Command::Dequeue {
                    id: Handle(0),
                    client,
                    seq,
                    feature: "".into(),
                    asked: true,
                };
                let index = self.log.append(Entry { term, command });
                if let State::Leader(leader) = &mut self.state {
                    leader.proposed.insert((client, seq), index);
                }
                None
            }
            // A newer wait replaced this one.
            WaitSeen::Stale => Some(ReplyResult::LeftQueue),
        }
    }

    /// As the serving leader, proposes the next waiting request's turn for each feature
    /// with a seat free and none proposed yet: one at a time per feature, so each turn
    /// is decided on the table as the previous one left it.
    pub(super) fn serve_queues(&mut self) {
        if !self.is_leader() || self.seats.waiting() == 0 || self.not_serving().is_some() {
            return;
        }
        let features: Vec<std::sync::Arc<str>> =
            self.seats.queues().map(|(name, _)| name.into()).collect();
        for feature in features {
            if let State::Leader(leader) = &self.state
                && leader.serving.contains(&feature)
            {
                continue;
            }
            if self.log.last_index().next().is_none() {
                return;
            }
            // The seats free as applied. Grants in flight are not subtracted: a checkout
            // proposed while a waiter is owed the seat was refused, and a wait in flight
            // will queue behind it; if one took the seat after all, the turn applies as
            // nothing, and the next is proposed on the table as it then is.
            let next = match self.catalog.count(&feature) {
                // The license no longer has it: each waiter is told so, in turn.
                None => self.seats.waiters_of(&feature).next(),
                Some(count) => {
                    let free = count.saturating_sub(self.seats.used(&feature));
                    if free == 0 {
                        continue;
                    }
                    // A feature out of its dates (START, END) grants nothing: its waiters
                    // wait until it is in force again, or their wait is over.
                    if self.catalog.check(&feature, self.now.wall, None).is_err() {
                        continue;
                    }
                    self.seats.next_to_serve(&feature, free)
                }
            };
            let Some(waiter) = next else { continue };
            let command = Command::Serve {
                id: waiter.id,
                client: waiter.client,
                seq: waiter.seq,
                feature: feature.clone(),
                user: waiter.user.clone(),
                host: waiter.host.clone(),
                by: self.id(),
                at: self.now.wall,
            };
            let term = self.term;
            if let State::Leader(leader) = &mut self.state {
                leader.serving.insert(feature.clone());
                let n = leader.grants_in_flight.entry(feature).or_default();
                *n = n.saturating_add(1);
            }
            self.log.append(Entry { term, command });
        }
    }

    /// As leader, proposes that every waiting request whose place was not renewed for a
    /// seat's lease leave its queue.
    pub(super) fn expire_waits(&mut self) {
        let now = self.now.mono;
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        let lapsed: Vec<Handle> = leader.wait_leases.take_expired(now);
        for id in lapsed {
            let Some((feature, waiter)) = self
                .seats
                .queues()
                .find_map(|(f, q)| Some((f, q.iter().find(|w| w.id == id)?)))
            else {
                continue;
            };
            let (client, seq, feature) = (waiter.client, waiter.seq, feature.into());
            self.propose_leave(id, (client, seq), feature, false);
        }
    }

    /// As leader, proposes that waiter `id` (`client`'s `seq`, for `feature`) leave its
    /// queue, once: while that entry is in flight, asking again proposes nothing. False
    /// if this server cannot propose (it does not lead, or its log is full).
    fn propose_leave(
        &mut self,
        id: Handle,
        (client, seq): (ClientId, RequestSeq),
        feature: std::sync::Arc<str>,
        asked: bool,
    ) -> bool {
        let term = self.term;
        if self.log.last_index().next().is_none() {
            return false;
        }
        let State::Leader(leader) = &mut self.state else {
            return false;
        };
        if leader.leaving.insert(id) {
            let command = Command::Dequeue {
                id,
                client,
                seq,
                feature,
                asked,
            };
            self.log.append(Entry { term, command });
        }
        true
    }

    /// A wait's, a turn's or a departure's effect on the leader's soft state once its
    /// entry applied at `index`; a turn or a departure is answered at once (the waiting
    /// client may be there to hear it: a wait is answered as every request is).
    pub(super) fn after_queue_apply(
        &mut self,
        index: crate::protocol::LogIndex,
        command: &Command,
        outcome: Option<&Outcome>,
    ) {
        let lease = self.timing().seat_lease();
        let client_lease = self.timing().client_lease;
        let now = self.now.mono;
        let from = self.id();
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        let answer = match command {
            Command::Wait { feature, .. } => {
                if let Some(n) = leader.grants_in_flight.get_mut(&**feature) {
                    *n = n.saturating_sub(1);
                }
                if matches!(outcome, Some(Outcome::Queued { .. })) {
                    leader
                        .wait_leases
                        .set(crate::protocol::Handle(index.0), now + lease);
                }
                None
            }
            Command::Serve {
                id,
                client,
                seq,
                feature,
                ..
            } => {
                if let Some(n) = leader.grants_in_flight.get_mut(&**feature) {
                    *n = n.saturating_sub(1);
                }
                leader.serving.remove(&**feature);
                if outcome.is_some() {
                    leader.wait_leases.remove(*id);
                }
                Some((*client, *seq))
            }
            Command::Dequeue {
                id, client, seq, ..
            } => {
                leader.leaving.remove(id);
                leader.wait_leases.remove(*id);
                leader.proposed.remove(&(*client, *seq));
                Some((*client, *seq))
            }
            _ => None,
        };
        if let Some(Outcome::Granted { handle, .. }) = outcome
            && matches!(command, Command::Wait { .. } | Command::Serve { .. })
        {
            leader.leases.set(*handle, now + lease);
        }
        let Some((client, seq)) = answer else {
            return;
        };
        // A departure that found its waiter gone (served, or left) answers as it went.
        let outcome = match outcome {
            Some(outcome) => Some(outcome.clone()),
            None if matches!(command, Command::Dequeue { .. }) => {
                match self.seats.wait_seen(client, seq) {
                    WaitSeen::Answered(outcome) => Some(outcome),
                    _ => None,
                }
            }
            None => None,
        };
        if let Some(outcome) = outcome {
            let reply: ServerReply = clients::reply_for(client, seq, from, outcome, client_lease);
            self.push(Output::Reply(reply));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerId;
    use crate::protocol::{ClientId, Denial, LogIndex, Op, ReplyResult};
    use crate::server::testkit::{Driver, at, checkout};
    use crate::server::{Config, Durable, Output, Server};
    use crate::timing::Timing;

    /// A single server (it leads at once) with `cad`'s five seats taken by clients 1-5.
    fn full() -> Driver {
        let mut driver = Driver::with_config(Config::single(Timing::lan()));
        driver.tick_to(10);
        for client in 1..=5 {
            let granted = answers(&driver.ask(client, 1, checkout()));
            assert!(
                matches!(granted[..], [(_, _, ReplyResult::Granted { .. })]),
                "{granted:?}"
            );
        }
        driver
    }

    fn wait_as(user: &str) -> Op {
        Op::Wait {
            feature: "cad".into(),
            user: user.into(),
            host: "ws1".into(),
        }
    }

    /// The replies among `outputs`: (client, seq, result).
    fn answers(outputs: &[Output]) -> Vec<(u64, u64, ReplyResult)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Reply(reply) => Some((reply.client.0, reply.seq.0, reply.result.clone())),
                _ => None,
            })
            .collect()
    }

    fn queued(position: u32) -> ReplyResult {
        ReplyResult::Queued {
            position,
            used: 5,
            count: 5,
            lease_ms: Timing::lan().client_lease.as_millis() as u64,
        }
    }

    /// Client `client` checks in the seat its request 1 got (handle: that entry's index).
    fn check_in(driver: &mut Driver, client: u64) -> Vec<(u64, u64, ReplyResult)> {
        let handle = driver
            .server
            .seats()
            .iter()
            .find(|(_, seat)| seat.client == ClientId(client))
            .map(|(handle, _)| handle)
            .expect("holds a seat");
        answers(&driver.ask(client, 2, Op::Checkin { handle }))
    }

    #[test]
    fn waits_are_granted_in_order_and_told_at_once() {
        let mut driver = full();
        assert_eq!(
            answers(&driver.ask(6, 1, wait_as("fay"))),
            [(6, 1, queued(1))]
        );
        assert_eq!(
            answers(&driver.ask(7, 1, wait_as("gil"))),
            [(7, 1, queued(2))]
        );
        // A later checkout does not pass them, nor does a later wait.
        let late = answers(&driver.ask(8, 1, checkout()));
        assert!(
            matches!(
                late[..],
                [(8, 1, ReplyResult::Denied(Denial::AllInUse { .. }))]
            ),
            "{late:?}"
        );
        // A seat comes back: the first waiter hears of its seat unasked.
        let replies = check_in(&mut driver, 1);
        assert!(
            matches!(replies[0], (1, 2, ReplyResult::Released { .. })),
            "{replies:?}"
        );
        assert!(
            matches!(replies[1], (6, 1, ReplyResult::Granted { .. })),
            "{replies:?}"
        );
        assert_eq!(replies.len(), 2);
        // Asking again, the second is now first; the first hears its seat again.
        assert_eq!(
            answers(&driver.ask(7, 1, wait_as("gil"))),
            [(7, 1, queued(1))]
        );
        let again = answers(&driver.ask(6, 1, wait_as("fay")));
        assert!(
            matches!(again[..], [(6, 1, ReplyResult::Granted { .. })]),
            "{again:?}"
        );
        let replies = check_in(&mut driver, 2);
        assert!(
            matches!(replies[1], (7, 1, ReplyResult::Granted { .. })),
            "{replies:?}"
        );
        assert_eq!(driver.server.seats().waiting(), 0);
        assert_eq!(driver.server.seats().used("cad"), 5);
    }

    #[test]
    fn a_free_seat_goes_to_a_wait_at_once() {
        let mut driver = Driver::with_config(Config::single(Timing::lan()));
        driver.tick_to(10);
        let granted = answers(&driver.ask(6, 1, wait_as("fay")));
        assert!(
            matches!(granted[..], [(6, 1, ReplyResult::Granted { .. })]),
            "{granted:?}"
        );
    }

    #[test]
    fn a_place_not_renewed_for_a_lease_is_given_up() {
        let mut driver = full();
        driver.ask(6, 1, wait_as("fay"));
        driver.ask(7, 1, wait_as("gil"));
        let lease = Timing::lan().seat_lease().as_millis() as u64;
        // Client 7 keeps asking; client 6 has gone.
        let mut now = 10;
        let mut left = Vec::new();
        while now < 10 + lease + 2_000 {
            now += 500;
            // Seat holders keep their seats.
            let handles = driver
                .server
                .seats()
                .iter()
                .map(|(h, _)| h)
                .collect::<Vec<_>>();
            for (client, handle) in (1..=5).zip(handles) {
                driver.ask(
                    client,
                    100 + now,
                    Op::Heartbeat {
                        handles: vec![handle],
                    },
                );
            }
            driver.ask(7, 1, wait_as("gil"));
            left.extend(answers(&driver.tick_to(now)));
        }
        assert_eq!(left, [(6, 1, ReplyResult::LeftQueue)]);
        assert_eq!(
            answers(&driver.ask(7, 1, wait_as("gil"))),
            [(7, 1, queued(1))]
        );
        // Client 6 back: told its place is gone.
        assert_eq!(
            answers(&driver.ask(6, 1, wait_as("fay"))),
            [(6, 1, ReplyResult::LeftQueue)]
        );
    }

    #[test]
    fn a_client_that_stops_waiting_leaves_and_one_served_first_keeps_its_seat() {
        let mut driver = full();
        driver.ask(6, 1, wait_as("fay"));
        driver.ask(7, 1, wait_as("gil"));
        assert_eq!(
            answers(&driver.ask(7, 1, Op::StopWaiting)),
            [(7, 1, ReplyResult::LeftQueue)]
        );
        assert_eq!(driver.server.seats().waiting(), 1);
        check_in(&mut driver, 1);
        // Client 6's wait was over just as its turn came: its stop is answered with the
        // seat, which it then checks in.
        let stop = answers(&driver.ask(6, 1, Op::StopWaiting));
        assert!(
            matches!(stop[..], [(6, 1, ReplyResult::Granted { .. })]),
            "{stop:?}"
        );
        // A stop for a number that never waited.
        assert_eq!(
            answers(&driver.ask(9, 4, Op::StopWaiting)),
            [(9, 4, ReplyResult::LeftQueue)]
        );
    }

    #[test]
    fn a_restarted_server_keeps_the_queue_order() {
        let mut driver = full();
        for (client, user) in [(6, "fay"), (7, "gil"), (8, "hal")] {
            driver.ask(client, 1, wait_as(user));
        }
        let entries: Vec<_> = (1..=driver.server.last_index().0)
            .map(|i| driver.server.log.get(LogIndex(i)).unwrap().clone())
            .collect();
        let snapshot = driver.server.current_snapshot().unwrap();
        let config = driver.server.config().clone();
        for durable in [
            Durable {
                term: driver.server.term(),
                voted_for: Some(ServerId::PRIMARY),
                snapshot: None,
                entries,
            },
            Durable {
                term: driver.server.term(),
                voted_for: Some(ServerId::PRIMARY),
                snapshot: Some(snapshot.clone()),
                entries: Vec::new(),
            },
        ] {
            let mut restarted = Server::new(
                config.clone(),
                crate::server::testkit::catalog(),
                durable,
                at(200),
            );
            while restarted.poll_output().is_some() {}
            let mut again = Driver {
                server: restarted,
                now_ms: 200,
            };
            again.tick_to(1_000);
            let order: Vec<u64> = again.server.seats().waiters().map(|w| w.client.0).collect();
            assert_eq!(order, [6, 7, 8]);
            again.ask(6, 1, Op::StopWaiting);
            let replies = check_in(&mut again, 3);
            assert!(
                matches!(replies[1], (7, 1, ReplyResult::Granted { .. })),
                "{replies:?}"
            );
            assert!(
                again
                    .server
                    .seats()
                    .validate(again.server.applied, |_| true)
                    .is_ok()
            );
        }
    }

    #[test]
    fn a_waiter_the_options_refuse_is_passed_and_one_never_admitted_is_told() {
        let mut driver = full();
        let push = Op::PushOptions {
            text: "MAX 1 cad USER fay\nEXCLUDE cad USER ivy\n".into(),
            by: "root@admin".into(),
        };
        let pushed = answers(&driver.ask(900, 1, push));
        assert!(
            matches!(pushed[..], [(900, 1, ReplyResult::OptionsPushed { .. })]),
            "{pushed:?}"
        );
        // Fay gets one seat by waiting, then waits for a second: over her MAX, she is
        // passed by Gil, who came later.
        driver.ask(6, 1, wait_as("fay"));
        check_in(&mut driver, 1);
        driver.ask(6, 2, wait_as("fay"));
        driver.ask(7, 1, wait_as("gil"));
        let replies = check_in(&mut driver, 2);
        assert!(
            matches!(replies[1], (7, 1, ReplyResult::Granted { .. })),
            "{replies:?}"
        );
        assert_eq!(
            answers(&driver.ask(6, 2, wait_as("fay"))),
            [(6, 2, queued(1))]
        );
        // An excluded user is refused at once rather than queued.
        assert_eq!(
            answers(&driver.ask(10, 1, wait_as("ivy"))),
            [(10, 1, ReplyResult::Denied(Denial::Excluded))]
        );
    }

    /// The queue departures `outputs` report: (client, seq, asked).
    fn departures(outputs: &[Output]) -> Vec<(u64, u64, bool)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(crate::ServerEvent::SeatChanged {
                    change:
                        crate::server::SeatChange::LeftQueue {
                            client, seq, asked, ..
                        },
                    ..
                }) => Some((client.0, seq.0, *asked)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_way_out_of_the_queue_is_reported() {
        let mut driver = full();
        driver.ask(6, 1, wait_as("fay"));
        // A newer wait of the same client replaces its older one.
        let outputs = driver.ask(6, 2, wait_as("fay"));
        assert_eq!(departures(&outputs), [(6, 1, true)]);
        driver.ask(7, 1, wait_as("ivy"));
        // Ivy is excluded while she waits: her turn is a refusal, and she leaves.
        let push = Op::PushOptions {
            text: "EXCLUDE cad USER ivy\n".into(),
            by: "root@admin".into(),
        };
        driver.ask(900, 1, push);
        // A leave under a number whose wait has not applied: recorded (a wait applied
        // later under it does not queue), and the client's older wait leaves with it.
        let outputs = driver.ask(6, 3, Op::StopWaiting);
        assert_eq!(answers(&outputs), [(6, 3, ReplyResult::LeftQueue)]);
        assert_eq!(departures(&outputs), [(6, 2, true)]);
        assert_eq!(
            answers(&driver.ask(6, 3, wait_as("fay"))),
            [(6, 3, ReplyResult::LeftQueue)]
        );
        let replies = check_in(&mut driver, 1);
        assert!(
            replies.contains(&(7, 1, ReplyResult::Denied(Denial::Excluded))),
            "{replies:?}"
        );
        assert_eq!(driver.server.seats().waiting(), 0);
    }
}
