//! Failback: #2, active while #1 was away, hands the role back once #1 has been up and
//! in contact with a peer for `failback_hold` (DESIGN §6.3, rule 2). "A peer" is either
//! one: #1 in contact with #3 alone is not "#1 down".
//!
//! #2 sees #1 directly when their link works. When it does not (a cut, a one-way cut, a
//! firewall rule between two sites), #3 is the one that sees both:
//!
//! - #1, whenever it does not lead, sends #3 a [`PeerBody::Presence`] every peer
//!   heartbeat, saying whether it has heard #3 lately; #3 answers each with
//!   [`PeerBody::PresenceAck`]. So #3 knows how long #1 has been up and in *two-way*
//!   contact with it (a one-way link would let #3 hear #1 while its votes never reach
//!   #1, and the role would be handed to a server that cannot win it).
//! - #3 tells its leader, when that is not #1, with [`PeerBody::PrimaryHeard`] at each
//!   presence.
//! - The leader #2 starts a handover when #1 has been in contact, directly or through #3,
//!   for the hold: it stops serving, and sends [`PeerBody::TimeoutNow`] to #1 and
//!   [`PeerBody::HandOver`] to #3, which passes `TimeoutNow` on. Whichever reaches #1
//!   makes it campaign at once (a transfer election, which voters do not refuse for the
//!   leader they hear); #1's higher term then reaches #2 through #3, and #2 steps down.
//! - #1 may be behind (#2's appends did not reach it): it is handed the role anyway when
//!   it has not acknowledged #2 lately, and #3, refusing its vote for an old log, donates
//!   the missing entries; #1 then wins its next election. While #1 acknowledges #2's
//!   appends it is catching up over its own link, and #2 waits for that.
//! - A handover that does not complete within an election timeout is given up (#2
//!   serves again); the next one waits for a whole new hold of contact after it, so a
//!   link that lets the hold build but not the election through cannot flap the role.
//!
//! Once #1 leads, #2 (even cut off from #1) cannot take the role back: #3 refuses its
//! (pre-)votes while it hears the live leader #1.

use super::{Contact, Server, ServerEvent, State};
use crate::ServerId;
use crate::license::ServerPosition;
use crate::plant::Plant;
use crate::protocol::{LogIndex, PeerBody, Term};
use crate::time::Time;

/// What each server keeps for failback (soft state).
#[derive(Debug, Clone, Default)]
pub(super) struct Failback {
    /// #1: when it next tells its peers it is up.
    next_presence: Option<Time>,
    /// #1: its contact with any peer (one or the other, without a break).
    own: Contact,
    /// #3: two-way contact with #1 (presences saying they hear #3).
    primary_two_way: Contact,
    /// #2: contact with #1 as far as #2 knows: heard directly, or through #3's news,
    /// one continuing the other (#1 reached through #3, then directly once the link is
    /// back, has been in contact all along).
    primary: Contact,
    /// #2: when it last began a handover.
    attempted: Option<Time>,
    /// #2: the start of #1's contact by #1's own account (its latest presence, direct
    /// or through #3). #1 knows of an interruption #2 cannot see: a restart, or a
    /// spell of hearing no peer, shorter than the gaps contact tolerates. No hold
    /// counts from before it.
    primary_own_since: Option<Time>,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Server {
    fn position_is(&self, id: ServerId) -> bool {
        self.config.position == ServerPosition::Triad(id)
    }

    /// When #1 next sends a presence (None for any other server, and for #1 leading).
    pub(super) fn next_presence(&self) -> Option<Time> {
        if !self.position_is(ServerId::PRIMARY) || self.is_leader() {
            return None;
        }
        Some(self.failback.next_presence.unwrap_or(self.now.mono))
    }

    /// As #1 not leading: tells #3 it is up, every peer heartbeat.
    pub(super) fn presence_tick(&mut self) {
        let Some(due) = self.next_presence() else {
            return;
        };
        let now = self.now.mono;
        if due > now {
            return;
        }
        let timing = *self.timing();
        let gap_max = timing.contact_gap_max();
        self.failback.next_presence = Some(now + timing.peer_heartbeat);
        let connected_for_ms = self
            .failback
            .own
            .lasting_since(now, gap_max)
            .map_or(0, |since| millis(now.since(since)));
        for peer in [ServerId::TIEBREAKER, ServerId::SECONDARY] {
            let hears_you = self
                .contact
                .get(&peer)
                .and_then(|c| c.last)
                .is_some_and(|last| now.since(last) <= gap_max);
            let body = PeerBody::Presence {
                last_index: self.log.last_index(),
                last_term: self.log.last_term(),
                hears_you,
                connected_for_ms,
            };
            self.send(peer, body);
        }
    }

    /// As #1: heard from `peer` now (its contact with any peer, for its presences).
    pub(super) fn primary_heard_a_peer(&mut self, now: Time) {
        if self.position_is(ServerId::PRIMARY) {
            let gap_max = self.timing().contact_gap_max();
            self.failback.own.touch(now, gap_max);
        }
    }

    /// A presence from #1. As #2 leading: #1 has been connected for `connected_for_ms`
    /// (news that bridges a gap in #2's own view). As #3: answers it, follows the
    /// two-way contact, and tells a leader other than #1 how long #1 has been connected.
    pub(super) fn on_presence(
        &mut self,
        from: ServerId,
        (last_index, last_term): (LogIndex, Term),
        hears_you: bool,
        connected_for_ms: u64,
    ) {
        if from != ServerId::PRIMARY {
            return;
        }
        let now = self.now.mono;
        let gap_max = self.timing().contact_gap_max();
        if self.position_is(ServerId::SECONDARY) {
            if self.is_leader() {
                let since = Time(now.0.saturating_sub(connected_for_ms));
                self.failback.primary.touch_since(since, now, gap_max);
                self.failback.primary_own_since = Some(since);
            }
            return;
        }
        if !self.position_is(ServerId::TIEBREAKER) {
            return;
        }
        self.send(from, PeerBody::PresenceAck);
        if hears_you {
            self.failback.primary_two_way.touch(now, gap_max);
        } else {
            self.failback.primary_two_way = Contact::default();
        }
        if self
            .failback
            .primary_two_way
            .lasting_since(now, gap_max)
            .is_none()
        {
            return;
        }
        let leader = self.leader.filter(|l| *l != ServerId::PRIMARY);
        if let Some(leader) = leader
            && self.leader_is_live()
        {
            // #1's own account of its contact: it may reach further back than #3's (the
            // contact moved between peers), and it knows of interruptions #3 cannot see
            // (a restart shorter than the gaps contact tolerates).
            let body = PeerBody::PrimaryHeard {
                for_ms: connected_for_ms,
                last_index,
                last_term,
            };
            self.send(leader, body);
        }
    }

    /// As #2 leading: #3 says how long #1 has been in two-way contact with it.
    pub(super) fn on_primary_heard(&mut self, from: ServerId, for_ms: u64) {
        if from != ServerId::TIEBREAKER
            || !self.position_is(ServerId::SECONDARY)
            || !self.is_leader()
        {
            return;
        }
        let now = self.now.mono;
        let since = Time(now.0.saturating_sub(for_ms));
        let gap_max = self.timing().contact_gap_max();
        self.failback.primary.touch_since(since, now, gap_max);
        self.failback.primary_own_since = Some(since);
    }

    /// As #2: heard from #1 directly, now.
    pub(super) fn primary_in_contact(&mut self, now: Time) {
        if self.position_is(ServerId::SECONDARY) {
            let gap_max = self.timing().contact_gap_max();
            self.failback.primary.touch(now, gap_max);
        }
    }

    /// As #3: the leader hands the role to the other server that may lead (#1 for a
    /// failback from #2, #2 when #1 stops) and may not reach it; pass it on.
    pub(super) fn on_hand_over(&mut self, from: ServerId, term: Term) {
        if term == self.term && self.leader == Some(from) && self.position_is(ServerId::TIEBREAKER)
        {
            let to = match from {
                ServerId::PRIMARY => ServerId::SECONDARY,
                _ => ServerId::PRIMARY,
            };
            self.send(to, PeerBody::TimeoutNow);
        }
    }

    /// The server a leader hands its role to: the other one that may lead.
    pub(super) fn hand_over_target(&self) -> ServerId {
        if self.position_is(ServerId::PRIMARY) {
            ServerId::SECONDARY
        } else {
            ServerId::PRIMARY
        }
    }

    /// [`Server::hand_over`]: stops serving and sends the other eligible server
    /// `TimeoutNow`, and #3 `HandOver` to pass on, if that server acknowledged lately.
    pub(super) fn start_hand_over(&mut self) -> bool {
        if matches!(self.config.position, ServerPosition::Single)
            || self.position_is(ServerId::TIEBREAKER)
        {
            return false;
        }
        let now = self.now.mono;
        let gap_max = self.timing().contact_gap_max();
        let to = self.hand_over_target();
        let State::Leader(leader) = &mut self.state else {
            return false;
        };
        if !acked_lately(leader, to, now, gap_max) {
            return false;
        }
        leader.transfer_since = Some(now);
        leader.stopping = true;
        let term = self.term;
        self.event(ServerEvent::HandingOver { to, term });
        self.send(to, PeerBody::TimeoutNow);
        self.send(ServerId::TIEBREAKER, PeerBody::HandOver);
        true
    }

    /// As #2 leading: hands the role to #1 once #1 has been in contact for the hold. (As
    /// any leader: gives up a handover that has not completed within an election
    /// timeout, and serves again.)
    pub(super) fn maybe_fail_back(&mut self) {
        let now = self.now.mono;
        let timing = *self.timing();
        if let State::Leader(leader) = &mut self.state
            && leader
                .transfer_since
                .is_some_and(|started| now.since(started) > timing.election_timeout)
        {
            if leader.stopping {
                // A stopping leader never serves again: its handover may yet complete,
                // and it may not hold a lease while another leads.
                let term = self.term;
                self.become_follower(term, None);
                return;
            }
            leader.transfer_since = None;
        }
        if !self.position_is(ServerId::SECONDARY) {
            return;
        }
        let gap_max = timing.contact_gap_max();
        let last = self.log.last_index();
        // Contact with #1, counted from no earlier than the last handover tried, nor than
        // #1 itself says.
        let since = self
            .failback
            .primary
            .lasting_since(now, gap_max)
            .map(|s| self.failback.attempted.map_or(s, |tried| s.max(tried)))
            .map(|s| self.failback.primary_own_since.map_or(s, |own| s.max(own)));
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        if leader.transfer_since.is_some() {
            return;
        }
        let hold = if self.config.plants.has(Plant::FailbackBeforeHold) {
            std::time::Duration::ZERO
        } else {
            timing.failback_hold
        };
        if since.is_none_or(|s| now.since(s) < hold) {
            return;
        }
        let caught_up = leader
            .progress
            .get(&ServerId::PRIMARY)
            .is_some_and(|p| p.matched == last);
        if !caught_up && acked_lately(leader, ServerId::PRIMARY, now, gap_max) {
            return; // #1 is catching up over its own link: let it.
        }
        leader.transfer_since = Some(now);
        self.failback.attempted = Some(now);
        let term = self.term;
        self.event(ServerEvent::FailbackStarted {
            to: ServerId::PRIMARY,
            term,
        });
        self.send(ServerId::PRIMARY, PeerBody::TimeoutNow);
        self.send(ServerId::TIEBREAKER, PeerBody::HandOver);
    }
}

/// Whether `peer` acknowledged a round of `leader`'s sent within `gap_max` before `now`.
fn acked_lately(
    leader: &super::Leader,
    peer: ServerId,
    now: Time,
    gap_max: std::time::Duration,
) -> bool {
    leader.progress.get(&peer).is_some_and(|p| {
        leader
            .round_sent
            .iter()
            .any(|(round, sent)| *round == p.acked_round && now.since(*sent) <= gap_max)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Config;
    use crate::server::Output;
    use crate::server::testkit::{Driver, append, noop, sent_to};
    use crate::timing::Timing;

    fn presence(connected_for_ms: u64) -> PeerBody {
        PeerBody::Presence {
            last_index: LogIndex(0),
            last_term: Term(0),
            hears_you: true,
            connected_for_ms,
        }
    }

    /// #2 leads; from `start_ms` #1 sends a presence every 100 ms until `until_ms`, its
    /// own contact counted from `own_from(t)`. Returns when #2 first hands over (sends
    /// `TimeoutNow` to #1), if it does.
    fn hand_over_at(
        two: &mut Driver,
        start_ms: u64,
        until_ms: u64,
        own_from: impl Fn(u64) -> u64,
    ) -> Option<u64> {
        let mut t = start_ms;
        while t <= until_ms {
            let mut outputs = two.tick_to(t);
            outputs.extend(two.hear(ServerId::PRIMARY, presence(t - own_from(t))));
            outputs.extend(two.tick_to(t));
            let handed = sent_to(&outputs, ServerId::PRIMARY)
                .iter()
                .any(|b| matches!(b, PeerBody::TimeoutNow));
            if handed {
                return Some(t);
            }
            t += 100;
        }
        None
    }

    fn failback_started(outputs: &[Output]) -> bool {
        outputs
            .iter()
            .any(|o| matches!(o, Output::Event(ServerEvent::FailbackStarted { .. })))
    }

    fn news_of_one(for_ms: u64) -> PeerBody {
        PeerBody::PrimaryHeard {
            for_ms,
            last_index: LogIndex(0),
            last_term: Term(0),
        }
    }

    fn leading_two() -> (Driver, u64) {
        let mut two = Driver::new(ServerId::SECONDARY);
        two.elect();
        assert!(two.server.is_leader());
        let from = two.now_ms;
        (two, from)
    }

    /// #1 leads, and #2 has acknowledged its latest round (if `two_acks`).
    fn leading_one(two_acks: bool) -> Driver {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        loop {
            let outputs = one.tick_to(one.now_ms + 50);
            let round = sent_to(&outputs, ServerId::SECONDARY)
                .into_iter()
                .find_map(|b| match b {
                    PeerBody::Append { round, .. } => Some(round),
                    _ => None,
                });
            if let Some(round) = round {
                if two_acks {
                    let match_index = one.server.last_index();
                    one.hear(
                        ServerId::SECONDARY,
                        PeerBody::AppendReply {
                            success: true,
                            match_index,
                            round,
                        },
                    );
                }
                return one;
            }
            assert!(one.now_ms < 10_000, "no append to #2");
        }
    }

    #[test]
    fn a_stopping_leader_hands_the_role_to_the_other_eligible_server() {
        let mut one = leading_one(true);
        assert!(one.server.hand_over(crate::server::testkit::at(one.now_ms)));
        let outputs = one.drain();
        let to_two = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            to_two.iter().any(|b| matches!(b, PeerBody::TimeoutNow)),
            "{outputs:?}"
        );
        let to_three = sent_to(&outputs, ServerId::TIEBREAKER);
        assert!(
            to_three.iter().any(|b| matches!(b, PeerBody::HandOver)),
            "{outputs:?}"
        );
        assert!(outputs.iter().any(|o| matches!(
            o,
            Output::Event(ServerEvent::HandingOver {
                to: ServerId::SECONDARY,
                ..
            })
        )));
        // It serves nothing meanwhile, and points clients to #2.
        assert_eq!(
            one.server.not_serving(),
            Some(crate::protocol::Denial::NotActive {
                active: Some(ServerId::SECONDARY)
            })
        );
        // A handover that does not complete is given up: a stopping leader then steps
        // down rather than serve again (another may lead by now).
        let timeout = Timing::lan().election_timeout.as_millis() as u64;
        let end = one.now_ms + timeout + 200;
        while one.now_ms < end {
            // #2 keeps acknowledging (the handover message was lost): #1 keeps its
            // majority, and gives the handover up.
            let outputs = one.tick_to(one.now_ms + 50);
            for body in sent_to(&outputs, ServerId::SECONDARY) {
                if let PeerBody::Append { round, .. } = body {
                    let match_index = one.server.last_index();
                    let ack = PeerBody::AppendReply {
                        success: true,
                        match_index,
                        round,
                    };
                    one.hear(ServerId::SECONDARY, ack);
                }
            }
        }
        assert!(!one.server.is_leader());
        assert!(one.server.not_serving().is_some());
    }

    #[test]
    fn no_handover_to_a_server_not_heard_lately_nor_by_a_follower() {
        let mut one = leading_one(false);
        assert!(!one.server.hand_over(crate::server::testkit::at(one.now_ms)));
        assert!(one.drain().is_empty());
        assert!(!matches!(
            one.server.not_serving(),
            Some(crate::protocol::Denial::NotActive { .. })
        ));
        let mut three = Driver::new(ServerId::TIEBREAKER);
        assert!(!three.server.hand_over(crate::server::testkit::at(0)));
    }

    #[test]
    fn three_passes_a_handover_on_to_the_server_it_is_meant_for() {
        for (from, to) in [
            (ServerId::PRIMARY, ServerId::SECONDARY),
            (ServerId::SECONDARY, ServerId::PRIMARY),
        ] {
            let mut three = Driver::new(ServerId::TIEBREAKER);
            three.hear_in(from, Term(2), append((0, 0), vec![noop(2)], 1));
            let outputs = three.hear_in(from, Term(2), PeerBody::HandOver);
            assert!(
                sent_to(&outputs, to)
                    .iter()
                    .any(|b| matches!(b, PeerBody::TimeoutNow)),
                "{from} -> {to}: {outputs:?}"
            );
        }
    }

    #[test]
    fn two_hands_over_after_the_hold() {
        let (mut two, from) = leading_two();
        let at = hand_over_at(&mut two, from, from + 15_000, |_| from).unwrap();
        let hold = Timing::lan().failback_hold.as_millis() as u64;
        assert!(
            at >= from + hold && at <= from + hold + 300,
            "{at} from {from}"
        );
    }

    /// Found by invariant 8 (sweep seed 1078): #1 restarted in less than the gaps #2's
    /// count of contact tolerates, and #2 handed over three seconds later, counting the
    /// hold from before the restart. #1's presence says when its own contact began.
    #[test]
    fn a_restart_of_one_that_two_cannot_see_restarts_the_hold() {
        let (mut two, from) = leading_two();
        let restart = from + 7_000;
        let own_from = |t: u64| if t < restart { from } else { restart };
        let at = hand_over_at(&mut two, from, from + 25_000, own_from).unwrap();
        let hold = Timing::lan().failback_hold.as_millis() as u64;
        assert!(
            at >= restart + hold,
            "handed over at {at}, restart at {restart}"
        );
    }

    /// #1's presences may be lost while its answers to #2's appends arrive.
    #[test]
    fn two_counts_hearing_one_directly_toward_the_hold() {
        let (mut two, from) = leading_two();
        let hold_ms = Timing::lan().failback_hold.as_millis() as u64;
        let ack = PeerBody::AppendReply {
            success: true,
            match_index: LogIndex(1),
            round: 1,
        };
        let mut at = None;
        while at.is_none() && two.now_ms < from + 2 * hold_ms {
            let mut outputs = two.tick_to(two.now_ms + 100);
            outputs.extend(two.hear(ServerId::PRIMARY, ack.clone()));
            at = failback_started(&outputs).then_some(two.now_ms);
        }
        let at = at.unwrap();
        assert!(
            at >= from + hold_ms && at <= from + hold_ms + 300,
            "{at} from {from}"
        );
    }

    /// #3 tells only its leader; news #2 got before it led is stale by then.
    #[test]
    fn two_ignores_news_of_one_while_it_does_not_lead() {
        let mut two = Driver::new(ServerId::SECONDARY);
        let hold_ms = Timing::lan().failback_hold.as_millis() as u64;
        // Campaigns unanswered past a hold; the news comes just before it asks again.
        two.tick_to(hold_ms + 1_000);
        assert!(!two.server.is_leader());
        two.skip_to(two.server.poll_timeout().unwrap().0);
        two.hear(ServerId::TIEBREAKER, news_of_one(2 * hold_ms));
        let mut outputs = two.elect();
        outputs.extend(two.tick_to(two.now_ms + 300));
        assert!(two.server.is_leader());
        assert!(!failback_started(&outputs));
    }

    const HOLD_MS: u64 = 2_000;

    /// #2 leading, its hold `HOLD_MS` (two election timeouts), at a heartbeat tick.
    fn leading_two_short_hold() -> Driver {
        let timing = Timing {
            failback_hold: std::time::Duration::from_millis(HOLD_MS),
            ..Timing::lan()
        };
        let mut two = Driver::with_config(Config::triad(ServerId::SECONDARY, timing));
        two.elect();
        let start = two.now_ms;
        heartbeats_to(&mut two, start + HOLD_MS);
        two
    }

    /// Ticks #2 every heartbeat up to `ms`, #3 acknowledging each; returns the outputs.
    fn heartbeats_to(two: &mut Driver, ms: u64) -> Vec<Output> {
        let ack = PeerBody::AppendReply {
            success: true,
            match_index: LogIndex(1),
            round: 1,
        };
        let mut outputs = Vec::new();
        while two.now_ms < ms {
            outputs.extend(two.tick_to(two.now_ms + 100));
            outputs.extend(two.hear(ServerId::TIEBREAKER, ack.clone()));
        }
        assert!(two.server.is_leader());
        outputs
    }

    #[test]
    fn two_hands_over_the_moment_the_hold_is_complete() {
        for (for_ms, hands_over) in [(HOLD_MS - 1, false), (HOLD_MS, true)] {
            let mut two = leading_two_short_hold();
            let tick = two.now_ms + 100;
            two.skip_to(tick);
            two.hear(ServerId::TIEBREAKER, news_of_one(for_ms));
            let outputs = two.tick_to(tick);
            assert_eq!(failback_started(&outputs), hands_over, "{for_ms} ms");
        }
    }

    /// A hand-over #1 does not take lasts one election timeout, to the millisecond: #2
    /// sends no checkout until then (#1 may be winning), and serves again after it.
    #[test]
    fn two_serves_again_when_an_unanswered_hand_over_times_out() {
        use crate::protocol::{Denial, ReplyResult};
        use crate::server::testkit::checkout;
        let mut two = leading_two_short_hold();
        let tick = two.now_ms + 100;
        two.skip_to(tick);
        two.hear(ServerId::TIEBREAKER, news_of_one(HOLD_MS));
        assert!(failback_started(&two.tick_to(tick)));
        let started = two.now_ms;
        let timeout_ms = Timing::lan().election_timeout.as_millis() as u64;
        assert_eq!(timeout_ms % 100, 0, "the ticks land on the timeout");
        let to_one = Denial::NotActive {
            active: Some(ServerId::PRIMARY),
        };
        let answer = |two: &mut Driver, client: u64| -> Vec<ReplyResult> {
            two.ask(client, 1, checkout())
                .into_iter()
                .filter_map(|o| match o {
                    Output::Reply(reply) => Some(reply.result),
                    _ => None,
                })
                .collect()
        };
        let mut client = 0;
        while two.now_ms < started + timeout_ms {
            let next = two.now_ms + 100;
            heartbeats_to(&mut two, next);
            client += 1;
            let at = two.now_ms - started;
            assert_eq!(
                answer(&mut two, client),
                [ReplyResult::Denied(to_one.clone())],
                "{at} ms into the hand-over"
            );
        }
        let next = two.now_ms + 100;
        heartbeats_to(&mut two, next);
        assert_eq!(answer(&mut two, client + 1), [], "proposed, not denied");
        assert!(two.server.is_leader());
    }

    /// #1 acknowledges #2's appends but lacks entries: it is catching up over its link.
    #[test]
    fn two_waits_for_one_that_is_catching_up() {
        let mut two = leading_two_short_hold();
        let end = two.now_ms + 1_000;
        while two.now_ms < end {
            let next = two.now_ms + 100;
            let outputs = heartbeats_to(&mut two, next);
            assert!(!failback_started(&outputs));
            let round = sent_to(&outputs, ServerId::PRIMARY)
                .iter()
                .find_map(|b| match b {
                    PeerBody::Append { round, .. } => Some(*round),
                    _ => None,
                })
                .unwrap();
            let refusal = PeerBody::AppendReply {
                success: false,
                match_index: LogIndex(0),
                round,
            };
            two.hear(ServerId::PRIMARY, refusal);
            two.hear(ServerId::TIEBREAKER, news_of_one(HOLD_MS));
        }
    }

    #[test]
    fn three_passes_a_handover_on_only_from_its_leader() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::SECONDARY,
            Term(1),
            append((0, 0), vec![noop(1)], 0),
        );
        let timeout_now = |outputs: &[Output]| {
            sent_to(outputs, ServerId::PRIMARY)
                .iter()
                .any(|b| matches!(b, PeerBody::TimeoutNow))
        };
        assert!(!timeout_now(
            &three.hear(ServerId::PRIMARY, PeerBody::HandOver)
        ));
        assert!(timeout_now(
            &three.hear(ServerId::SECONDARY, PeerBody::HandOver)
        ));
    }
}
