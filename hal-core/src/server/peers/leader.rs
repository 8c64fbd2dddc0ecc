//! Replication, the leader's side: appends (pipelined, backed off on refusal), the
//! commit index from a majority's durable copies, and the periodic tick (heartbeats,
//! check-quorum, expiry, failback).

use crate::ServerId;
use crate::plant::Plant;
use crate::protocol::{LogIndex, PeerBody, Term};
use crate::server::{Leader, Server, ServerEvent, State};

/// The most bytes of log entries (by [`crate::seats::Command::size_hint`]) one append
/// carries.
const APPEND_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How many of `entries`, from the first, fit in `max` bytes: one at least.
fn within_bytes(entries: &[std::sync::Arc<crate::protocol::Entry>], max: usize) -> usize {
    let mut bytes = 0usize;
    entries
        .iter()
        .position(|e| {
            bytes = bytes.saturating_add(e.command.size_hint());
            bytes > max
        })
        .map_or(entries.len(), |at| at.max(1))
}

impl Server {
    /// Sends `peer` what it lacks (entries from its `next`, or the snapshot), numbered
    /// with the current heartbeat round.
    pub(in crate::server) fn send_append(&mut self, peer: ServerId) {
        let max = self.config.append_entries_max;
        let next = match &self.state {
            State::Leader(leader) => leader.progress.get(&peer).map(|p| p.next),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        let prev_index = next.prev();
        // Behind the log's start: the peer needs the applied state itself.
        let snapshot = match self.log.term_at(prev_index) {
            Some(_) => None,
            None => self.current_snapshot(),
        };
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        let round = leader.round;
        let Some(progress) = leader.progress.get_mut(&peer) else {
            return;
        };
        let body = match (self.log.term_at(prev_index), snapshot) {
            (Some(prev_term), _) => {
                let mut entries = self.log.entries_from(next, max);
                // A frame stays well within what a peer takes (license and options
                // entries hold whole files).
                entries.truncate(within_bytes(&entries, APPEND_BYTES_MAX));
                progress.next = next.plus(entries.len()).unwrap_or(LogIndex::MAX);
                PeerBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit: self.commit,
                    round,
                }
            }
            (None, Some(snapshot)) => {
                progress.next = snapshot.last_index.after();
                PeerBody::InstallSnapshot { snapshot, round }
            }
            (None, None) => return,
        };
        self.send(peer, body);
    }

    /// Sends `peer` entries appended since the last send, if any.
    pub(in crate::server) fn send_new_entries(&mut self, peer: ServerId) {
        let last = self.log.last_index();
        let behind = match &self.state {
            State::Leader(leader) => leader.progress.get(&peer).is_some_and(|p| p.next <= last),
            _ => false,
        };
        if behind {
            self.send_append(peer);
        }
    }

    pub(in crate::server) fn on_append_reply(
        &mut self,
        from: ServerId,
        term: Term,
        success: bool,
        match_index: LogIndex,
        round: u64,
    ) {
        if term != self.term {
            return;
        }
        // A peer cannot hold more than was sent; a larger claim is clamped, not trusted.
        let match_index = match_index.min(self.log.last_index());
        let lease = self.timing().leader_lease();
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        if round > leader.round {
            return;
        }
        let Some(progress) = leader.progress.get_mut(&from) else {
            return;
        };
        progress.acked_round = progress.acked_round.max(round);
        // A refusal below what the peer acknowledged is stale (it crossed a later
        // success) or says the peer lost acknowledged entries (a disk that lied about a
        // sync): resending at once would be refused again, as fast as the link carries
        // it. It leaves the next index alone (moved back, the entries after it would go
        // out again with the next output), and the next heartbeat retries.
        let contradicts = !success && match_index < progress.matched;
        if success {
            progress.matched = progress.matched.max(match_index);
            progress.next = progress.next.max(progress.matched.after());
        } else if !contradicts {
            progress.next = match_index.after().max(progress.matched.after());
        }
        leader.refresh_lease(lease);
        if success {
            self.advance_commit();
            self.send_new_entries(from);
        } else if !contradicts {
            self.send_append(from);
        }
    }

    /// Commits the highest index of this term stored on a majority, and applies.
    pub(in crate::server) fn advance_commit(&mut self) {
        // The leader's own copy counts once it is durable: handed to the shell suffices
        // when the shell holds every later message until then; with durable reports the
        // appends may already be out, so only what the shell reported durable counts.
        let persisted = if self.config.reports_durable {
            self.log.durable_index()
        } else {
            self.log.persisted_index()
        };
        let majority = self.majority();
        let State::Leader(leader) = &self.state else {
            return;
        };
        // At most three servers: the positions live on the stack.
        let mut matched = [LogIndex(0); 3];
        matched[0] = persisted;
        for (slot, progress) in matched[1..].iter_mut().zip(leader.progress.values()) {
            *slot = progress.matched;
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[majority.saturating_sub(1)];
        if candidate > self.commit && self.log.term_at(candidate) == Some(self.term) {
            self.commit = candidate;
            self.apply_committed();
        }
    }

    /// The leader's periodic work: heartbeats, check-quorum, expiry, failback.
    pub(in crate::server) fn leader_tick(&mut self) {
        let now = self.now.mono;
        let timing = *self.timing();
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        if now < leader.next_heartbeat {
            return;
        }
        leader.next_heartbeat = now + timing.peer_heartbeat;
        let started = leader.round > 0;
        if started && !self.majority_heard() && !self.config.plants.has(Plant::NoStepDown) {
            let term = self.term;
            self.event(ServerEvent::LostMajority { term });
            self.become_follower(term, None);
            return;
        }
        let State::Leader(leader) = &mut self.state else {
            return;
        };
        leader.round = leader.round.saturating_add(1);
        leader.round_sent.push_back((leader.round, now));
        while leader
            .round_sent
            .front()
            .is_some_and(|(_, t)| now.since(*t) > timing.election_timeout)
        {
            leader.round_sent.pop_front();
        }
        for peer in self.peer_ids() {
            self.send_append(peer);
        }
        self.expire_seats();
        self.expire_waits();
        self.serve_queues();
        self.forget_idle_sessions();
        self.maybe_fail_back();
    }
}

impl Leader {
    /// Extends the lease to the send time of the newest round a majority acknowledged.
    pub(in crate::server) fn refresh_lease(&mut self, lease: std::time::Duration) {
        // With three servers a majority is this leader and one follower: the best ack.
        let Some(best) = self.progress.values().map(|p| p.acked_round).max() else {
            return;
        };
        let sent = self
            .round_sent
            .iter()
            .find(|(r, _)| *r == best)
            .map(|(_, t)| *t);
        if let Some(sent) = sent {
            let until = sent + lease;
            self.lease_until = Some(self.lease_until.map_or(until, |u| u.max(until)));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::ServerId;
    use crate::protocol::{LogIndex, PeerBody, PeerMessage, Term};
    use crate::server::testkit::{Driver, append, at, checkout, noop, sent_to};
    use crate::server::{Config, Output, Server, State};
    use crate::timing::Timing;

    /// #1 leading term `t`, its no-op acknowledged by #2 (so #2's match is 1).
    fn leader_with_two_caught_up() -> Driver {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        let round = 1;
        let outputs = one.hear(
            ServerId::SECONDARY,
            PeerBody::AppendReply {
                success: true,
                match_index: LogIndex(1),
                round,
            },
        );
        assert!(
            sent_to(&outputs, ServerId::SECONDARY).is_empty(),
            "{outputs:?}"
        );
        one
    }

    /// The outputs `server` has, failing if they never run dry.
    fn outputs_run_dry(server: &mut Server) -> Vec<Output> {
        let outputs: Vec<Output> = std::iter::from_fn(|| server.poll_output())
            .take(100)
            .collect();
        assert!(
            outputs.len() < 100,
            "the outputs never run dry: {outputs:?}"
        );
        outputs
    }

    /// A grant waits for a majority to store it: sent only at the next heartbeat, every
    /// checkout would take up to a heartbeat interval longer.
    #[test]
    fn a_proposal_goes_out_to_the_followers_at_once_not_at_the_next_heartbeat() {
        let mut one = leader_with_two_caught_up();
        let outputs = one.ask(7, 1, checkout());
        for peer in [ServerId::SECONDARY, ServerId::TIEBREAKER] {
            let sent = sent_to(&outputs, peer);
            assert!(
                matches!(
                    sent.as_slice(),
                    [PeerBody::Append {
                        prev_index: LogIndex(1),
                        entries,
                        ..
                    }] if entries.len() == 1
                ),
                "to {peer}: {sent:?}"
            );
        }
    }

    /// Answering each acknowledgement with another append, even an empty one, would have
    /// leader and follower trade messages as fast as the link carries them. Driven by
    /// hand: the test driver's drain would never end on such a leader.
    #[test]
    fn a_leader_whose_followers_were_sent_every_entry_falls_silent_until_the_heartbeat() {
        let mut one = Driver::new(ServerId::PRIMARY).server;
        let from_two = |body| PeerMessage {
            from: ServerId::SECONDARY,
            to: ServerId::PRIMARY,
            term: Term(1),
            body,
        };
        one.handle_timeout(at(1_000));
        outputs_run_dry(&mut one);
        one.handle_peer(
            at(1_000),
            from_two(PeerBody::PreVoteReply { granted: true }),
        );
        outputs_run_dry(&mut one);
        one.handle_peer(at(1_000), from_two(PeerBody::VoteReply { granted: true }));
        assert!(one.is_leader());
        // The no-op goes out once to each follower.
        let outputs = outputs_run_dry(&mut one);
        assert_eq!(
            sent_to(&outputs, ServerId::SECONDARY).len(),
            1,
            "{outputs:?}"
        );
        let ack = PeerBody::AppendReply {
            success: true,
            match_index: LogIndex(1),
            round: 1,
        };
        one.handle_peer(at(1_010), from_two(ack));
        let outputs = outputs_run_dry(&mut one);
        assert!(
            crate::server::testkit::peer_messages(&outputs).is_empty(),
            "{outputs:?}"
        );
    }

    #[test]
    fn a_refusal_that_moves_the_next_index_back_is_answered_at_once() {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        // #2 has nothing yet and says so: the leader sends again from the start at once.
        let outputs = one.hear(
            ServerId::SECONDARY,
            PeerBody::AppendReply {
                success: false,
                match_index: LogIndex(0),
                round: 1,
            },
        );
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::Append {
                    prev_index: LogIndex(0),
                    ..
                }]
            ),
            "{sent:?}"
        );
    }

    /// Found by the planted bug `lost-fsync`: a follower that lost entries it had
    /// acknowledged refused every append, and the leader resent each at once, the two
    /// trading messages as fast as the link carried them and no simulated time passing.
    #[test]
    fn a_refusal_below_what_the_follower_acknowledged_waits_for_the_heartbeat() {
        let mut one = leader_with_two_caught_up();
        let outputs = one.hear(
            ServerId::SECONDARY,
            PeerBody::AppendReply {
                success: false,
                match_index: LogIndex(0),
                round: 1,
            },
        );
        assert!(
            sent_to(&outputs, ServerId::SECONDARY).is_empty(),
            "{outputs:?}"
        );
        // The heartbeat still reaches #2.
        let outputs = one.tick_to(one.now_ms + 200);
        assert!(!sent_to(&outputs, ServerId::SECONDARY).is_empty());
    }

    /// The same with a grant in flight to #2: the refusal must not send it again either
    /// (found by a review of the mutation tests: moving the next index back let the next
    /// output resend it, once per refusal).
    #[test]
    fn a_refusal_below_what_the_follower_acknowledged_resends_nothing_in_flight() {
        let mut one = leader_with_two_caught_up();
        let proposed = one.ask(7, 1, checkout());
        assert_eq!(sent_to(&proposed, ServerId::SECONDARY).len(), 1);
        let refusal = PeerBody::AppendReply {
            success: false,
            match_index: LogIndex(0),
            round: 1,
        };
        for _ in 0..3 {
            let outputs = one.hear(ServerId::SECONDARY, refusal.clone());
            assert!(
                sent_to(&outputs, ServerId::SECONDARY).is_empty(),
                "{outputs:?}"
            );
        }
        let outputs = one.tick_to(one.now_ms + 200);
        assert!(!sent_to(&outputs, ServerId::SECONDARY).is_empty());
    }

    #[test]
    fn an_entry_commits_once_a_majority_holds_it() {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        one.server
            .handle_durable(crate::server::testkit::at(one.now_ms), LogIndex(1));
        one.drain();
        assert_eq!(one.server.commit_index(), LogIndex(0));
        one.hear(
            ServerId::TIEBREAKER,
            PeerBody::AppendReply {
                success: true,
                match_index: LogIndex(1),
                round: 1,
            },
        );
        assert_eq!(one.server.commit_index(), LogIndex(1));
    }

    #[test]
    fn a_leader_that_hears_no_majority_steps_down() {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        let start = one.now_ms;
        let mut outputs = Vec::new();
        for ms in (start..start + 3_000).step_by(100) {
            outputs.extend(one.tick_to(ms));
        }
        assert!(!one.server.is_leader());
        assert!(
            outputs.iter().any(|o| matches!(
                o,
                crate::server::Output::Event(crate::ServerEvent::LostMajority { .. })
            )),
            "{outputs:?}"
        );
    }

    /// The appends among `outputs` to `peer`.
    fn appends_to(outputs: &[Output], peer: ServerId) -> usize {
        sent_to(outputs, peer)
            .iter()
            .filter(|b| matches!(b, PeerBody::Append { .. }))
            .count()
    }

    /// Raft's commit rule (section 5.4.2 of the paper): an entry of an earlier term is
    /// not committed by counting its copies, even on a majority, for a leader of a later
    /// term may still replace it. It commits with the first entry of the leader's own
    /// term.
    #[test]
    fn an_entry_of_an_earlier_term_on_a_majority_waits_for_one_of_the_leaders_own_term() {
        let config = Config {
            append_entries_max: 1,
            ..Config::triad(ServerId::PRIMARY, Timing::lan())
        };
        let mut one = Driver::with_config(config);
        // #2 led term 1 and got two entries to #1 only, committing neither.
        one.hear_in(
            ServerId::SECONDARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1)], 0),
        );
        one.elect();
        assert_eq!(one.server.term(), Term(2));
        // #3 holds entry 1 only: it refuses the no-op and is sent entry 2, then the no-op
        // again (one entry per append).
        let outputs = one.hear(
            ServerId::TIEBREAKER,
            PeerBody::AppendReply {
                success: false,
                match_index: LogIndex(1),
                round: 1,
            },
        );
        let sent = sent_to(&outputs, ServerId::TIEBREAKER);
        assert!(
            matches!(
                sent.as_slice(),
                [
                    PeerBody::Append {
                        prev_index: LogIndex(1),
                        entries,
                        ..
                    },
                    PeerBody::Append {
                        prev_index: LogIndex(2),
                        ..
                    },
                ] if entries.len() == 1
            ),
            "{sent:?}"
        );
        one.hear(
            ServerId::TIEBREAKER,
            PeerBody::AppendReply {
                success: true,
                match_index: LogIndex(2),
                round: 1,
            },
        );
        assert_eq!(one.server.commit_index(), LogIndex(0));
        // Once #3 also holds the no-op of term 2, everything up to it commits.
        one.hear(
            ServerId::TIEBREAKER,
            PeerBody::AppendReply {
                success: true,
                match_index: LogIndex(3),
                round: 1,
            },
        );
        assert_eq!(one.server.commit_index(), LogIndex(3));
    }

    /// A shell may call `handle_timeout` early or more often than asked; the leader still
    /// sends one heartbeat round per interval.
    #[test]
    fn a_leader_heartbeats_once_per_interval_however_often_its_timer_fires() {
        let mut one = leader_with_two_caught_up();
        // The first round went out at the election.
        let elected = one.now_ms;
        for ms in [elected, elected + 50, elected + 99] {
            let outputs = one.tick_to(ms);
            for peer in [ServerId::SECONDARY, ServerId::TIEBREAKER] {
                assert_eq!(appends_to(&outputs, peer), 0, "at {ms} ms: {outputs:?}");
            }
        }
        let outputs = one.tick_to(elected + 100);
        for peer in [ServerId::SECONDARY, ServerId::TIEBREAKER] {
            assert_eq!(appends_to(&outputs, peer), 1, "{outputs:?}");
        }
    }

    /// A leader may serve for months. It remembers when each heartbeat round went out
    /// only to date acknowledgements (for its lease and for failback), both shorter than
    /// the election timeout; older rounds are forgotten, or the record would grow with
    /// every heartbeat for as long as it leads. Its timer fires late here, as a shell's
    /// may, so no round is ever exactly an election timeout old.
    #[test]
    fn a_leader_forgets_heartbeat_rounds_older_than_the_election_timeout() {
        let mut one = leader_with_two_caught_up();
        let elected = one.now_ms;
        for step in 1..=100 {
            let outputs = one.tick_to(elected + step * 130);
            for body in sent_to(&outputs, ServerId::SECONDARY) {
                if let PeerBody::Append {
                    prev_index,
                    entries,
                    round,
                    ..
                } = body
                {
                    let match_index = prev_index.plus(entries.len()).unwrap();
                    one.hear(
                        ServerId::SECONDARY,
                        PeerBody::AppendReply {
                            success: true,
                            match_index,
                            round,
                        },
                    );
                }
            }
        }
        let State::Leader(leader) = &one.server.state else {
            panic!("#1 lost the lead");
        };
        // Rounds sent within the last second, 130 ms apart: 0, 130, ..., 910 ms ago.
        assert_eq!(leader.round_sent.len(), 8, "{:?}", leader.round_sent);
    }

    /// An append carries at most its byte budget of entries, and one at least, however
    /// large (license and options entries hold whole files).
    #[test]
    fn an_append_is_cut_to_its_byte_budget() {
        use std::sync::Arc;

        use crate::protocol::{ClientId, Entry, RequestSeq, Term};
        use crate::seats::Command;

        let entry = |bytes: usize| {
            Arc::new(Entry {
                term: Term(1),
                command: Command::License {
                    client: ClientId(1),
                    seq: RequestSeq(1),
                    text: "#".repeat(bytes).into(),
                    by: "a".into(),
                },
            })
        };
        let entries = [entry(1_000), entry(1_000), entry(1_000)];
        let one = entries[0].command.size_hint();
        assert!((1_000..1_200).contains(&one), "{one}");
        assert_eq!(super::within_bytes(&entries, 2 * one), 2);
        assert_eq!(super::within_bytes(&entries, 3 * one), 3);
        assert_eq!(super::within_bytes(&entries, 10), 1);
        assert_eq!(super::within_bytes(&[], 10), 0);
    }
}
