//! Replication, the follower's side: appends checked against the log (a conflict
//! above the commit index replaced, below it refused), and stale leaders told the term.

use std::sync::Arc;

use crate::ServerId;
use crate::protocol::{Entry, LogIndex, PeerBody, Term};
use crate::server::{Server, State};

impl Server {
    #[allow(clippy::too_many_arguments)]
    pub(in crate::server) fn on_append(
        &mut self,
        from: ServerId,
        term: Term,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Arc<Entry>>,
        commit: LogIndex,
        round: u64,
    ) {
        if term < self.term {
            self.refuse_stale_leader(from, round);
            return;
        }
        if !matches!(self.state, State::Follower) || self.leader != Some(from) {
            self.become_follower(term, Some(from));
        }
        self.leader_contact = Some(self.now.mono);
        self.reset_election_timer();
        let matches = self.log.term_at(prev_index) == Some(prev_term);
        if !matches && prev_index >= self.log.snapshot_index() {
            let hint = if prev_index > self.log.last_index() {
                self.log.last_index()
            } else {
                prev_index.prev().max(self.commit)
            };
            self.send(
                from,
                PeerBody::AppendReply {
                    success: false,
                    match_index: hint,
                    round,
                },
            );
            return;
        }
        let Some(last_new) = self.store_entries(prev_index, entries) else {
            // Nothing an honest leader sends: keep what was stored, persist it, ignore the rest.
            self.persist_log();
            return;
        };
        let new_commit = commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        // The reply must follow the write that makes the entries durable.
        self.persist_log();
        self.apply_committed();
        self.send(
            from,
            PeerBody::AppendReply {
                success: true,
                match_index: last_new,
                round,
            },
        );
    }

    /// Stores `entries` after `prev_index`, dropping a conflicting tail; returns the index
    /// of the last entry the leader sent.
    ///
    /// Returns `None`, storing nothing more, for entries no honest peer sends: one that
    /// would replace a committed entry, or one from a term later than this server's.
    pub(in crate::server) fn store_entries(
        &mut self,
        prev_index: LogIndex,
        entries: Vec<Arc<Entry>>,
    ) -> Option<LogIndex> {
        let mut index = prev_index;
        for entry in entries {
            index = index.after();
            if index <= self.log.snapshot_index() {
                continue;
            }
            if entry.term > self.term {
                return None;
            }
            match self.log.term_at(index) {
                Some(term) if term == entry.term => continue,
                Some(_) if index <= self.commit => return None,
                Some(_) => self.log.truncate_from(index),
                None => {}
            }
            self.log.append_shared(entry);
        }
        Some(index)
    }

    /// Answers a leader of an older term, so it learns the newer term and steps down.
    pub(in crate::server) fn refuse_stale_leader(&mut self, from: ServerId, round: u64) {
        let reply = PeerBody::AppendReply {
            success: false,
            match_index: LogIndex(0),
            round,
        };
        self.send(from, reply);
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerId;
    use crate::protocol::{LogIndex, PeerBody, Term};
    use crate::server::testkit::{Driver, append, noop, sent_to};

    /// The reply `outputs` send #1: (success, match index).
    fn reply_to_one(outputs: &[crate::server::Output]) -> (bool, LogIndex) {
        crate::server::testkit::append_reply_to(outputs, ServerId::PRIMARY)
    }

    #[test]
    fn an_append_that_fits_is_stored_and_acknowledged() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 0));
        assert_eq!(reply_to_one(&outputs), (true, LogIndex(1)));
        assert_eq!(three.server.last_index(), LogIndex(1));
        assert_eq!(three.server.term(), Term(1), "the leader's term is adopted");
    }

    #[test]
    fn an_append_after_a_gap_is_refused_with_a_hint() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 0));
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), append((5, 1), vec![noop(1)], 0));
        assert_eq!(reply_to_one(&outputs), (false, LogIndex(1)));
        assert_eq!(three.server.last_index(), LogIndex(1));
    }

    #[test]
    fn a_conflicting_tail_above_the_commit_index_is_replaced() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1)], 1),
        );
        // A leader of term 2 has another entry 2.
        let outputs = three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            append((1, 1), vec![noop(2)], 1),
        );
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::AppendReply {
                    success: true,
                    match_index: LogIndex(2),
                    ..
                }]
            ),
            "{sent:?}"
        );
        assert_eq!(three.server.last_index(), LogIndex(2));
        assert_eq!(
            three.server.log.term_at(LogIndex(2)),
            Some(Term(2)),
            "the new leader's entry took the place of the old one"
        );
    }

    /// An honest leader never sends one: only a lying peer (or this server's own lost
    /// write) could, and a committed entry may already have granted a seat.
    #[test]
    fn an_entry_conflicting_with_a_committed_one_is_refused_and_the_log_kept() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1)], 2),
        );
        assert_eq!(three.server.commit_index(), LogIndex(2));
        let outputs = three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            append((1, 1), vec![noop(2)], 2),
        );
        assert!(
            sent_to(&outputs, ServerId::SECONDARY).is_empty(),
            "{outputs:?}"
        );
        assert_eq!(three.server.log.term_at(LogIndex(2)), Some(Term(1)));
        assert_eq!(three.server.last_index(), LogIndex(2));
    }

    /// The leader resends what it has no answer for (a reply lost, a heartbeat crossing
    /// it); entries already held, committed or not, are kept and acknowledged again.
    #[test]
    fn an_append_of_entries_already_held_is_acknowledged_again() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        let resent = || append((0, 0), vec![noop(1), noop(1)], 1);
        three.hear_in(ServerId::PRIMARY, Term(1), resent());
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), resent());
        assert_eq!(reply_to_one(&outputs), (true, LogIndex(2)));
        assert_eq!(three.server.last_index(), LogIndex(2));
        assert_eq!(three.server.commit_index(), LogIndex(1));
    }

    /// The hint is where the leader resends from: naming the conflicting entry itself
    /// would have the leader check it again, and be refused again, without end.
    #[test]
    fn a_conflict_at_the_last_entry_hints_the_entry_before_it_and_a_gap_the_last_entry() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1)], 0),
        );
        // A leader of term 2 whose entry 2 is of term 2.
        let at_last = three.hear_in(ServerId::SECONDARY, Term(2), append((2, 2), vec![], 0));
        let sent = sent_to(&at_last, ServerId::SECONDARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::AppendReply {
                    success: false,
                    match_index: LogIndex(1),
                    ..
                }]
            ),
            "{sent:?}"
        );
        let past_last = three.hear_in(ServerId::SECONDARY, Term(2), append((3, 2), vec![], 0));
        let sent = sent_to(&past_last, ServerId::SECONDARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::AppendReply {
                    success: false,
                    match_index: LogIndex(2),
                    ..
                }]
            ),
            "{sent:?}"
        );
        assert_eq!(three.server.log.term_at(LogIndex(2)), Some(Term(1)));
    }

    /// #2's election timer ran out and it asked for pre-votes; then #1's late heartbeat
    /// came. A pre-vote granted afterwards must not let #2 depose a leader it hears.
    #[test]
    fn a_pre_candidate_that_hears_its_leader_again_follows_it_and_starts_no_election() {
        let mut two = Driver::new(ServerId::SECONDARY);
        two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        let outputs = two.tick_to(1_500);
        assert!(
            crate::server::testkit::peer_messages(&outputs)
                .iter()
                .any(|m| matches!(m.body, PeerBody::PreVote { .. })),
            "{outputs:?}"
        );
        let outputs = two.hear_in(ServerId::PRIMARY, Term(1), append((1, 1), vec![], 1));
        assert_eq!(reply_to_one(&outputs), (true, LogIndex(1)));
        let outputs = two.hear_in(
            ServerId::TIEBREAKER,
            Term(2),
            PeerBody::PreVoteReply { granted: true },
        );
        assert!(
            crate::server::testkit::peer_messages(&outputs).is_empty(),
            "{outputs:?}"
        );
        assert_eq!(two.server.term(), Term(1));
        assert_eq!(two.server.leader(), Some(ServerId::PRIMARY));
    }

    #[test]
    fn a_stale_leader_is_told_the_term() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::SECONDARY,
            Term(3),
            append((0, 0), vec![noop(3)], 0),
        );
        let outputs = three.hear_in(ServerId::PRIMARY, Term(2), append((0, 0), vec![], 0));
        let sent = crate::server::testkit::peer_messages(&outputs);
        assert!(
            matches!(sent.as_slice(), [m] if m.term == Term(3)
                && matches!(m.body, PeerBody::AppendReply { success: false, .. })),
            "{sent:?}"
        );
    }
}
