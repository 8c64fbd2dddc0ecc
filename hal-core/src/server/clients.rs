//! Client requests on the server: license and role checks, proposals with the seat count
//! checked against grants in flight, retries answered from the session table, heartbeats
//! as leader-held soft state, and expiry of seats whose lease or borrow ran out.

use super::{Output, Server, State, millis};
use crate::ServerEvent;
use crate::ServerId;
use crate::license::ServerPosition;
use crate::names::NameField;
use crate::plant::Plant;
use crate::protocol::LogIndex;
use crate::protocol::{
    ClientId, ClientRequest, Denial, Entry, HEARTBEAT_HANDLES_MAX, Handle, Invalid, Op,
    RemoveTarget, ReplyResult, RequestSeq, ServerReply,
};
use crate::seats::{Command, Outcome, Seen};
use crate::time::Time;

/// The reply that carries an applied outcome.
pub(super) fn reply_for(
    client: ClientId,
    seq: RequestSeq,
    from: ServerId,
    outcome: Outcome,
    lease: std::time::Duration,
) -> ServerReply {
    let result = match outcome {
        Outcome::Granted {
            handle,
            borrow_end,
            by,
        } => ReplyResult::Granted {
            handle,
            lease_ms: millis(lease),
            borrow_end,
            granted_by: by,
        },
        Outcome::Released { handle } => ReplyResult::Released { handle },
        Outcome::Denied(denial) => ReplyResult::Denied(denial),
        Outcome::Removed { handles } => ReplyResult::Removed { handles },
        Outcome::LicensePushed { index } => ReplyResult::LicensePushed {
            index,
            changed: true,
        },
        Outcome::OptionsPushed { index } => ReplyResult::OptionsPushed {
            index,
            changed: true,
        },
        Outcome::Queued {
            position,
            used,
            count,
            ..
        } => ReplyResult::Queued {
            position,
            used,
            count,
            lease_ms: millis(lease),
        },
        Outcome::LeftQueue => ReplyResult::LeftQueue,
    };
    ServerReply {
        client,
        seq,
        from,
        result,
    }
}

/// Whether a request is well formed: names within the rules of [`crate::names`], a
/// heartbeat of at most [`HEARTBEAT_HANDLES_MAX`] seats.
fn check_op(op: &Op) -> Result<(), Invalid> {
    match op {
        Op::Checkout {
            feature,
            user,
            host,
        }
        | Op::Wait {
            feature,
            user,
            host,
        }
        | Op::Borrow {
            feature,
            user,
            host,
            ..
        } => crate::names::check_all(feature, user, host)
            .map_err(|(field, problem)| Invalid::Name { field, problem }),
        Op::Heartbeat { handles } if handles.len() > HEARTBEAT_HANDLES_MAX => {
            Err(Invalid::TooManyHandles)
        }
        Op::Remove { target, by } => {
            let named = |field, name: &str| {
                crate::names::check(name).map_err(|problem| Invalid::Name { field, problem })
            };
            named(NameField::User, by)?;
            if let RemoveTarget::Holder {
                user,
                host,
                feature,
            } = target
            {
                named(NameField::User, user)?;
                if let Some(host) = host {
                    named(NameField::Host, host)?;
                }
                if let Some(feature) = feature {
                    named(NameField::Feature, feature)?;
                }
            }
            Ok(())
        }
        Op::PushLicense { by, .. } | Op::PushOptions { by, .. } => {
            crate::names::check(by).map_err(|problem| Invalid::Name {
                field: NameField::User,
                problem,
            })
        }
        Op::Heartbeat { .. } | Op::Checkin { .. } | Op::Return { .. } | Op::StopWaiting => Ok(()),
    }
}

impl Server {
    pub(super) fn on_client(&mut self, request: ClientRequest) {
        let ClientRequest { client, seq, op } = request;
        let result = match check_op(&op) {
            Err(invalid) => Some(ReplyResult::Denied(Denial::InvalidRequest(invalid))),
            Ok(()) => self.serve(client, seq, op),
        };
        let Some(result) = result else { return };
        let reply = ServerReply {
            client,
            seq,
            from: self.id(),
            result,
        };
        self.push(Output::Reply(reply));
    }

    /// Serves a well-formed request: the reply to send now, or `None` when it is answered
    /// later (proposed, or a retry in flight) or not at all (stale).
    fn serve(&mut self, client: ClientId, seq: RequestSeq, op: Op) -> Option<ReplyResult> {
        match op {
            Op::Heartbeat { handles } => Some(self.heartbeat(client, handles)),
            Op::Wait {
                feature,
                user,
                host,
            } => self.on_wait(client, seq, (feature, user, host)),
            Op::StopWaiting => self.on_stop_waiting(client, seq),
            op => match self.check_request(client, seq, op) {
                Ok(Some(command)) => {
                    self.propose(client, seq, command);
                    None
                }
                Ok(None) => None,
                Err(result) => Some(result),
            },
        }
    }

    /// Why this server does not serve now, if it does not.
    pub(super) fn not_serving(&self) -> Option<Denial> {
        match &self.state {
            State::Leader(leader) => {
                let keeps_serving = self.config.plants.has(Plant::NoStepDown);
                // From its first round on, as the check-quorum of its ticks: a leader
                // that has not heard a majority for an election timeout serves nothing,
                // even when the tick that would make it step down comes late.
                if !self.majority_heard() && !keeps_serving {
                    Some(Denial::NoMajority)
                } else if self.applied < leader.noop_index {
                    // Until its no-op applies, a new leader's seat table may lack
                    // committed seats: it answers nothing from it yet.
                    Some(Denial::NoMajority)
                } else if leader.transfer_since.is_some() {
                    Some(Denial::NotActive {
                        active: Some(self.hand_over_target()),
                    })
                } else {
                    None
                }
            }
            _ if self.leader_is_live() => Some(Denial::NotActive {
                active: self.leader,
            }),
            _ if self.majority_heard() && self.contact.values().any(|c| c.last.is_some()) => {
                Some(Denial::NotActive { active: None })
            }
            _ => Some(Denial::NoMajority),
        }
    }

    /// Checks a logged request; returns the command to propose, `None` when the request
    /// is answered already (a retry in flight, or stale), or the reply to send now.
    fn check_request(
        &mut self,
        client: ClientId,
        seq: RequestSeq,
        op: Op,
    ) -> Result<Option<Command>, ReplyResult> {
        if let Some(denial) = self.not_serving() {
            return Err(ReplyResult::Denied(denial));
        }
        if self.log.last_index().next().is_none() {
            self.event(ServerEvent::LimitReached { what: "log index" });
            return Err(ReplyResult::Denied(Denial::NoMajority));
        }
        let dedup = !self.config.plants.has(Plant::RetriesNotDeduplicated);
        match self.seats.seen(client, seq) {
            Seen::Retry(outcome) if dedup => {
                return Err(self.repeat_answer(client, seq, outcome));
            }
            Seen::Stale => return Ok(None),
            Seen::New | Seen::Retry(_) => {}
        }
        if let State::Leader(leader) = &self.state
            && dedup
            && leader.proposed.contains_key(&(client, seq))
        {
            // A retry of a request still in flight: it is answered when it applies.
            return Ok(None);
        }
        let denied = |d| Err(ReplyResult::Denied(d));
        let (feature, user, host, hours) = match op {
            Op::Checkout {
                feature,
                user,
                host,
            } => (feature, user, host, None),
            Op::Borrow {
                feature,
                user,
                host,
                hours,
            } => (feature, user, host, Some(hours)),
            Op::Checkin { handle } | Op::Return { handle } => {
                let owned = self.seats.seat(handle).is_some_and(|s| s.client == client);
                if !owned {
                    return denied(Denial::UnknownHandle);
                }
                return Ok(Some(Command::Release {
                    client,
                    seq,
                    handle,
                }));
            }
            Op::Remove { target, by } => {
                let handles = self.seats.matching(&target);
                if handles.is_empty() {
                    return denied(Denial::UnknownHandle);
                }
                return Ok(Some(Command::Remove {
                    client,
                    seq,
                    handles,
                    by,
                }));
            }
            Op::PushLicense { text, by } => {
                self.check_push(&text)?;
                return Ok(Some(Command::License {
                    client,
                    seq,
                    text,
                    by,
                }));
            }
            Op::PushOptions { text, by } => {
                self.check_options_push(&text)?;
                return Ok(Some(Command::Options {
                    client,
                    seq,
                    text,
                    by,
                }));
            }
            // Served apart (`serve`).
            Op::Heartbeat { .. } | Op::Wait { .. } | Op::StopWaiting => return Ok(None),
        };
        if let Err(denial) = self.catalog.check(&feature, self.now.wall, hours) {
            return denied(denial);
        }
        let primary = matches!(
            self.config.position,
            ServerPosition::Single | ServerPosition::Triad(ServerId::PRIMARY)
        );
        if hours.is_some() && !primary && !self.config.plants.has(Plant::BorrowBy2) {
            return denied(Denial::BorrowUnavailable);
        }
        let count = self.catalog.count(&feature).unwrap_or(0);
        let in_flight = if self.config.plants.has(Plant::CountAtProposeOnly) {
            0
        } else {
            self.grants_in_flight(&feature)
        };
        let used = self.seats.used(&feature).saturating_add(in_flight);
        // The free seats less those the requests waiting take first.
        let left = self
            .seats
            .seats_left_for_newcomer(&feature, count.saturating_sub(used));
        if left == 0 {
            return denied(Denial::AllInUse { used, count });
        }
        // The options in force: checked here, and again when the grant applies.
        if let Some(options) = self.seats.options() {
            let longest = options.options.max_borrow_hours(&feature);
            if hours.zip(longest).is_some_and(|(asked, most)| asked > most) {
                return denied(Denial::BorrowOverMax);
            }
            if let Some(refusal) = self
                .seats
                .refused_by_options(&feature, (&user, &host), left)
            {
                return denied(Denial::of_options(&refusal));
            }
        }
        let borrow_end = hours.map(|h| {
            self.now.wall + std::time::Duration::from_secs(u64::from(h).saturating_mul(3600))
        });
        Ok(Some(Command::Grant {
            client,
            seq,
            feature,
            user,
            host,
            borrow_end,
            by: self.id(),
            at: self.now.wall,
        }))
    }

    fn grants_in_flight(&self, feature: &str) -> u32 {
        match &self.state {
            State::Leader(leader) => leader.grants_in_flight.get(feature).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// Appends a client's command; the reply goes out when it applies.
    pub(super) fn propose(&mut self, client: ClientId, seq: RequestSeq, command: Command) {
        let term = self.term;
        if let Command::Grant { feature, .. } | Command::Wait { feature, .. } = &command
            && let State::Leader(leader) = &mut self.state
        {
            let n = leader.grants_in_flight.entry(feature.clone()).or_default();
            *n = n.saturating_add(1);
        }
        let index = self.log.append(Entry { term, command });
        if let State::Leader(leader) = &mut self.state {
            leader.proposed.insert((client, seq), index);
        }
    }

    /// The original answer to a retried request. A grant is repeated only while the seat
    /// is still held, and its lease is renewed as a heartbeat would (the client counts
    /// its lease from this retry); a grant that lapsed before the client heard of it is
    /// answered `unknown_handle`, and the client asks afresh.
    pub(super) fn repeat_answer(
        &mut self,
        client: ClientId,
        seq: RequestSeq,
        outcome: Outcome,
    ) -> ReplyResult {
        if let Outcome::Granted {
            handle, borrow_end, ..
        } = &outcome
        {
            let expiring = match &self.state {
                State::Leader(leader) => leader.expiring.contains(handle),
                _ => true,
            };
            let held = self.seats.seat(*handle).is_some_and(|s| s.client == client);
            if !held || expiring {
                return ReplyResult::Denied(Denial::UnknownHandle);
            }
            if borrow_end.is_none() {
                let deadline = self.now.mono + self.timing().seat_lease();
                let Some(leader) = self.lease_holder() else {
                    return ReplyResult::Denied(Denial::NoMajority);
                };
                leader.leases.set(*handle, deadline);
            }
        }
        reply_for(client, seq, self.id(), outcome, self.timing().client_lease).result
    }

    /// [`Server::leased_leader`] of this server now.
    pub(super) fn lease_holder(&mut self) -> Option<&mut super::Leader> {
        Self::leased_leader(
            &mut self.state,
            self.now.mono,
            self.applied,
            self.config.plants,
        )
    }

    /// The leader state, if this server may renew leases now: it leads, holds its leader
    /// lease (so no other leader can exist) and has applied its term's no-op (so it knows
    /// every committed seat).
    /// (A free function of the state alone, so the seat table stays readable meanwhile.)
    pub(super) fn leased_leader(
        state: &mut State,
        now: Time,
        applied: LogIndex,
        plants: crate::plant::Plants,
    ) -> Option<&mut super::Leader> {
        let State::Leader(leader) = state else {
            return None;
        };
        let leased =
            leader.lease_until.is_some_and(|until| now < until) || plants.has(Plant::NoStepDown);
        (leased && applied >= leader.noop_index).then_some(&mut **leader)
    }

    fn heartbeat(
        &mut self,
        client: ClientId,
        handles: Vec<crate::protocol::Handle>,
    ) -> ReplyResult {
        if let Some(denial) = self.not_serving() {
            return ReplyResult::Denied(denial);
        }
        let now = self.now.mono;
        let lease = self.timing().client_lease;
        let deadline = now + self.timing().seat_lease();
        let any = self.config.plants.has(Plant::LeaseRenewedByAnyHeartbeat);
        let Some(leader) =
            Self::leased_leader(&mut self.state, now, self.applied, self.config.plants)
        else {
            return ReplyResult::Denied(Denial::NoMajority);
        };
        if any {
            let others: Vec<Handle> = self
                .seats
                .iter()
                .filter(|(_, s)| s.borrow_end().is_none())
                .map(|(h, _)| h)
                .filter(|h| !leader.expiring.contains(h))
                .collect();
            for handle in others {
                leader.leases.set(handle, deadline);
            }
        }
        let mut held = Vec::new();
        let mut unknown = Vec::new();
        let mut removed = Vec::new();
        for handle in handles {
            let mine = self
                .seats
                .seat(handle)
                .is_some_and(|s| s.client == client && s.borrow_end().is_none());
            if mine && !leader.expiring.contains(&handle) {
                leader.leases.set(handle, deadline);
                held.push(handle);
            } else if self
                .seats
                .seat(handle)
                .is_some_and(|s| s.client == client && s.borrow_end().is_some())
            {
                // A borrowed seat needs no heartbeat; it is held all the same.
                held.push(handle);
            } else {
                if self.seats.removed(handle, client) {
                    removed.push(handle);
                }
                unknown.push(handle);
            }
        }
        ReplyResult::HeartbeatAck {
            lease_ms: millis(lease),
            held,
            unknown,
            removed,
        }
    }

    /// Proposes the expiry of every checked-out seat past its deadline and every borrowed
    /// seat past its end plus the allowed clock skew.
    pub(super) fn expire_seats(&mut self) {
        let now = self.now;
        let skew = if self.config.plants.has(Plant::ExpiryWithoutSkewMargin) {
            std::time::Duration::ZERO
        } else {
            self.timing().max_clock_skew
        };
        let term = self.term;
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        let mut expired: Vec<Handle> = Vec::new();
        expired.extend(leader.leases.take_expired(now.mono));
        while let Some(&(end, handle)) = leader.borrows.first() {
            if end + skew > now.wall {
                break;
            }
            leader.borrows.pop_first();
            expired.push(handle);
        }
        for handle in expired {
            let State::Leader(leader) = &mut self.state else {
                return;
            };
            let full = self.log.last_index().next().is_none();
            if full || self.seats.seat(handle).is_none() || !leader.expiring.insert(handle) {
                continue;
            }
            self.log.append(Entry {
                term,
                command: Command::Expire { handle },
            });
            self.push(Output::Event(ServerEvent::SeatExpiring { handle }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PeerBody, Term};
    use crate::server::testkit::{Driver, append, checkout, noop};
    use crate::server::{Config, Persist};
    use crate::timing::Timing;

    /// The results of the replies among `outputs`.
    fn replies(outputs: &[Output]) -> Vec<ReplyResult> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Reply(reply) => Some(reply.result.clone()),
                _ => None,
            })
            .collect()
    }

    /// The handle of the seat the one reply among `outputs` grants.
    fn granted(outputs: &[Output]) -> Option<Handle> {
        match replies(outputs).as_slice() {
            [ReplyResult::Granted { handle, .. }] => Some(*handle),
            _ => None,
        }
    }

    /// How many grants the log writes among `outputs` hold.
    fn grants_logged(outputs: &[Output]) -> usize {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Persist(Persist::Entries { entries, .. }) => Some(entries),
                _ => None,
            })
            .flatten()
            .filter(|e| matches!(e.command, Command::Grant { .. }))
            .count()
    }

    /// The seats whose expiry `outputs` report proposed.
    fn expiring(outputs: &[Output]) -> Vec<Handle> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(ServerEvent::SeatExpiring { handle }) => Some(*handle),
                _ => None,
            })
            .collect()
    }

    /// #1 leading the triad, its no-op (and round 1) acknowledged by #2: it serves.
    fn serving_primary() -> Driver {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        let ack = PeerBody::AppendReply {
            success: true,
            match_index: LogIndex(1),
            round: 1,
        };
        one.hear(ServerId::SECONDARY, ack);
        one
    }

    /// A single server that lent a `cad` seat for an hour at 0 (seat 2), given back at
    /// once if `returned`.
    fn lent_for_an_hour(returned: bool) -> Driver {
        let mut single = Driver::with_config(Config::single(Timing::lan()));
        let borrow = Op::Borrow {
            feature: "cad".into(),
            user: "ann".into(),
            host: "ws1".into(),
            hours: 1,
        };
        assert_eq!(granted(&single.ask(7, 1, borrow)), Some(Handle(2)));
        if returned {
            let outputs = single.ask(7, 2, Op::Return { handle: Handle(2) });
            let released = ReplyResult::Released { handle: Handle(2) };
            assert_eq!(replies(&outputs), [released]);
        }
        single
    }

    /// A heartbeat speaks for the client's own seats only: another client's checkout is
    /// not renewed by it, and a borrowed seat is held for its borrower alone.
    #[test]
    fn a_heartbeat_holds_only_the_seats_of_the_client_that_sends_it() {
        let mut single = lent_for_an_hour(false);
        let checked_out = granted(&single.ask(7, 2, checkout())).unwrap();
        let borrowed = Handle(2);
        let both = || Op::Heartbeat {
            handles: vec![checked_out, borrowed],
        };
        let ack = |held: Vec<Handle>, unknown: Vec<Handle>| ReplyResult::HeartbeatAck {
            lease_ms: millis(Timing::lan().client_lease),
            held,
            unknown,
            removed: Vec::new(),
        };
        assert_eq!(
            replies(&single.ask(8, 1, both())),
            [ack(vec![], vec![checked_out, borrowed])]
        );
        assert_eq!(
            replies(&single.ask(7, 3, both())),
            [ack(vec![checked_out, borrowed], vec![])]
        );
    }

    /// Until when a seat lent for an hour at 0 is kept: its end plus the clock skew.
    fn lent_kept_ms() -> u64 {
        3_600_000 + millis(Timing::lan().max_clock_skew)
    }

    fn heartbeat_answer(handles_len: usize) -> Vec<Output> {
        let mut single = Driver::with_config(Config::single(Timing::lan()));
        let handles = vec![Handle(9); handles_len];
        single.ask(7, 1, Op::Heartbeat { handles })
    }

    #[test]
    fn a_heartbeat_may_list_up_to_the_most_handles_and_no_more() {
        let at_most = heartbeat_answer(HEARTBEAT_HANDLES_MAX);
        assert!(
            matches!(
                at_most.as_slice(),
                [Output::Reply(ServerReply { result: ReplyResult::HeartbeatAck { unknown, .. }, .. })]
                    if unknown.len() == HEARTBEAT_HANDLES_MAX
            ),
            "{at_most:?}"
        );
        let too_many = heartbeat_answer(HEARTBEAT_HANDLES_MAX + 1);
        let refused = Denial::InvalidRequest(Invalid::TooManyHandles);
        assert!(
            matches!(
                too_many.as_slice(),
                [Output::Reply(ServerReply { result: ReplyResult::Denied(d), .. })] if *d == refused
            ),
            "{too_many:?}"
        );
    }

    #[test]
    fn a_standby_that_hears_a_peer_but_no_live_leader_says_it_does_not_know_the_active() {
        let mut two = Driver::new(ServerId::SECONDARY);
        two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        // Past the leader's stickiness, still within an election timeout of hearing #1.
        two.tick_to(millis(Timing::lan().leader_stickiness()));
        let outputs = two.ask(7, 1, checkout());
        let unknown = Denial::NotActive { active: None };
        assert_eq!(replies(&outputs), [ReplyResult::Denied(unknown)]);
    }

    #[test]
    fn a_leader_that_heard_no_peer_for_an_election_timeout_serves_no_checkout() {
        let mut one = serving_primary();
        let heard_ms = one.now_ms;
        one.tick_to(heard_ms + 100);
        // The request comes before the tick that would make the leader step down.
        one.skip_to(heard_ms + millis(Timing::lan().election_timeout));
        let outputs = one.ask(7, 1, checkout());
        assert_eq!(replies(&outputs), [ReplyResult::Denied(Denial::NoMajority)]);
    }

    #[test]
    fn a_retry_of_a_request_in_flight_is_not_proposed_again_but_a_new_request_is() {
        let mut one = serving_primary();
        assert_eq!(grants_logged(&one.ask(7, 1, checkout())), 1);
        assert_eq!(one.ask(7, 1, checkout()), []);
        assert_eq!(grants_logged(&one.ask(7, 2, checkout())), 1);
    }

    #[test]
    fn a_leader_counts_the_grants_in_flight_against_the_count() {
        let mut one = serving_primary();
        for client in 1..=5 {
            assert_eq!(grants_logged(&one.ask(client, 1, checkout())), 1);
        }
        let outputs = one.ask(6, 1, checkout());
        let full = Denial::AllInUse { used: 5, count: 5 };
        assert_eq!(replies(&outputs), [ReplyResult::Denied(full)]);
    }

    #[test]
    fn a_leader_acknowledges_heartbeats_until_the_instant_its_lease_runs_out() {
        let mut one = serving_primary();
        // Round 1, which #2 acknowledged, was sent when #1 was elected.
        let until_ms = one.now_ms + millis(Timing::lan().leader_lease());
        let heartbeat = || Op::Heartbeat {
            handles: Vec::new(),
        };
        one.tick_to(until_ms - 1);
        let before = one.ask(7, 1, heartbeat());
        assert!(
            matches!(
                before.as_slice(),
                [Output::Reply(ServerReply {
                    result: ReplyResult::HeartbeatAck { .. },
                    ..
                })]
            ),
            "{before:?}"
        );
        one.tick_to(until_ms);
        let at = one.ask(7, 2, heartbeat());
        assert_eq!(replies(&at), [ReplyResult::Denied(Denial::NoMajority)]);
    }

    #[test]
    fn a_borrowed_seat_expires_once_its_end_plus_the_clock_skew_is_reached() {
        let expiring_at = |ms: u64| expiring(&lent_for_an_hour(false).tick_to(ms));
        assert_eq!(expiring_at(lent_kept_ms() - 1), []);
        assert_eq!(expiring_at(lent_kept_ms()), [Handle(2)]);
    }

    #[test]
    fn a_borrowed_seat_given_back_early_is_not_expired_at_its_end() {
        let mut single = lent_for_an_hour(true);
        assert_eq!(expiring(&single.tick_to(lent_kept_ms())), []);
    }

    /// A single server with the bug `plant` planted.
    #[cfg(feature = "plant")]
    fn planted(plant: Plant) -> Driver {
        Driver::with_config(Config {
            plants: crate::plant::Plants::only(plant),
            ..Config::single(Timing::lan())
        })
    }

    #[test]
    #[cfg(feature = "plant")]
    fn with_retries_not_deduplicated_planted_a_retried_checkout_takes_a_second_seat() {
        let mut single = planted(Plant::RetriesNotDeduplicated);
        assert_eq!(granted(&single.ask(7, 1, checkout())), Some(Handle(2)));
        assert_eq!(granted(&single.ask(7, 1, checkout())), Some(Handle(3)));
    }

    #[test]
    #[cfg(feature = "plant")]
    fn with_lease_renewed_by_any_heartbeat_planted_a_heartbeat_keeps_anothers_seat() {
        let mut single = planted(Plant::LeaseRenewedByAnyHeartbeat);
        assert_eq!(granted(&single.ask(7, 1, checkout())), Some(Handle(2)));
        assert_eq!(granted(&single.ask(8, 1, checkout())), Some(Handle(3)));
        single.tick_to(60_000);
        single.ask(
            8,
            2,
            Op::Heartbeat {
                handles: vec![Handle(3)],
            },
        );
        // Seat 2's own lease, from its grant at 0, has run out.
        let past_ms = millis(Timing::lan().seat_lease()) + 1_000;
        assert_eq!(expiring(&single.tick_to(past_ms)), []);
    }

    /// An administrator's removal (`hal-net remove`): every seat of a holder is freed by
    /// one log entry, the removal is answered with the seats it freed (and again, the
    /// same, to a retry), each freed seat is reported with who removed it, and the
    /// holder's next heartbeat is told its seat was removed, not lost. A seat freed so is
    /// free for the next checkout; a removal that names nothing held is refused.
    #[test]
    fn an_administrator_removes_a_holders_seats() {
        let mut single = Driver::with_config(Config::single(Timing::lan()));
        let ann = granted(&single.ask(7, 1, checkout())).unwrap();
        // The seat keeps when it was granted, on the deciding leader's clock.
        let seat = single.server.seats().seat(ann).unwrap();
        assert_eq!(seat.granted(), crate::server::testkit::at(0).wall);
        let bob = Op::Checkout {
            feature: "cad".into(),
            user: "bob".into(),
            host: "ws2".into(),
        };
        let bobs = granted(&single.ask(8, 1, bob)).unwrap();
        let ann_borrow = Op::Borrow {
            feature: "cad".into(),
            user: "ann".into(),
            host: "ws1".into(),
            hours: 2,
        };
        let lent = granted(&single.ask(7, 2, ann_borrow)).unwrap();
        let remove = || Op::Remove {
            target: RemoveTarget::Holder {
                user: "ann".into(),
                host: None,
                feature: Some("cad".into()),
            },
            by: "root@admin1".into(),
        };
        let outputs = single.ask(99, 1, remove());
        let removed = ReplyResult::Removed {
            handles: vec![ann, lent],
        };
        assert_eq!(replies(&outputs), std::slice::from_ref(&removed));
        let changes: Vec<(Handle, bool, String)> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(ServerEvent::SeatChanged {
                    change:
                        super::super::SeatChange::Removed {
                            handle,
                            borrowed,
                            by,
                            client,
                            ..
                        },
                    ..
                }) if *client == ClientId(7) => Some((*handle, *borrowed, by.to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(
            changes,
            [
                (ann, false, "root@admin1".to_string()),
                (lent, true, "root@admin1".to_string())
            ]
        );
        assert_eq!(single.server.seats().used("cad"), 1);
        // A retry of the removal gets the same answer; a new one finds nothing of ann's.
        assert_eq!(replies(&single.ask(99, 1, remove())), [removed]);
        assert_eq!(
            replies(&single.ask(99, 2, remove())),
            [ReplyResult::Denied(Denial::UnknownHandle)]
        );
        // Ann's client hears its seat was removed; bob's seat is untouched.
        let heartbeat = Op::Heartbeat { handles: vec![ann] };
        assert_eq!(
            replies(&single.ask(7, 3, heartbeat)),
            [ReplyResult::HeartbeatAck {
                lease_ms: millis(Timing::lan().client_lease),
                held: vec![],
                unknown: vec![ann],
                removed: vec![ann],
            }]
        );
        let by_handle = Op::Remove {
            target: RemoveTarget::Handle(bobs),
            by: "root@admin1".into(),
        };
        assert_eq!(
            replies(&single.ask(99, 3, by_handle)),
            [ReplyResult::Removed {
                handles: vec![bobs]
            }]
        );
        assert_eq!(single.server.seats().used("cad"), 0);
        // The freed seats are checked out again.
        assert!(granted(&single.ask(9, 1, checkout())).is_some());
    }

    /// A removal is served by the active server alone, and its names follow the rules of
    /// any name.
    #[test]
    fn a_removal_needs_the_active_server_and_valid_names() {
        let mut two = Driver::new(ServerId::SECONDARY);
        let remove = |user: &str| Op::Remove {
            target: RemoveTarget::Holder {
                user: user.into(),
                host: None,
                feature: None,
            },
            by: "root@admin1".into(),
        };
        assert!(matches!(
            replies(&two.ask(99, 1, remove("ann")))[..],
            [ReplyResult::Denied(
                Denial::NoMajority | Denial::NotActive { .. }
            )]
        ));
        let mut single = Driver::with_config(Config::single(Timing::lan()));
        assert!(matches!(
            replies(&single.ask(99, 1, remove("an\nn")))[..],
            [ReplyResult::Denied(Denial::InvalidRequest(
                Invalid::Name { .. }
            ))]
        ));
    }
}
