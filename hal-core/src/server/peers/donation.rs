//! Log donation: #3 never campaigns, so when a candidate's log is behind #3's, #3 sends
//! it the entries it lacks (Raft's vote restriction would otherwise keep #2 from ever
//! winning while #1 is away).

use std::sync::Arc;

use crate::ServerId;
use crate::plant::Plant;
use crate::protocol::{Entry, LogIndex, PeerBody, Snapshot, Term};
use crate::server::Server;

impl Server {
    /// Sends `to` this server's log from after `from_index` (or the snapshot, if the log
    /// no longer reaches back that far).
    pub(in crate::server) fn donate(&mut self, to: ServerId, from_index: LogIndex) {
        if self.config.plants.has(Plant::NoDonation) {
            return;
        }
        let last_index = self.log.last_index();
        let last_term = self.log.last_term();
        let prev_index = from_index.min(last_index);
        let body = match self.log.term_at(prev_index) {
            Some(prev_term) => {
                let entries = self
                    .log
                    .entries_from(prev_index.after(), self.config.append_entries_max);
                PeerBody::Donate {
                    prev_index,
                    prev_term,
                    entries,
                    last_index,
                    last_term,
                }
            }
            None => match self.current_snapshot() {
                Some(snapshot) => PeerBody::DonateSnapshot {
                    snapshot,
                    last_index,
                    last_term,
                },
                None => return,
            },
        };
        self.send(to, body);
    }

    /// Whether a donation from a donor whose log ends at `donor_last` may be taken: only
    /// by a non-leader whose own log is less up to date. Adopts the donor's term first,
    /// since a log never holds entries from a term later than the server's own.
    pub(in crate::server) fn accepts_donation(&mut self, donor_last: (LogIndex, Term)) -> bool {
        let (donor_index, donor_term) = donor_last;
        if self.is_leader()
            || (donor_term, donor_index) <= (self.log.last_term(), self.log.last_index())
        {
            return false;
        }
        if donor_term > self.term {
            self.become_follower(donor_term, None);
        }
        true
    }

    /// Takes entries from a donor whose log is more up to date. Safe because a log more
    /// up to date than this one holds every entry this one has that is committed (the
    /// argument behind Raft's vote restriction), so only uncommitted entries are replaced.
    pub(in crate::server) fn on_donate(
        &mut self,
        from: ServerId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Arc<Entry>>,
        donor_last: (LogIndex, Term),
    ) {
        if !self.accepts_donation(donor_last) {
            return;
        }
        if prev_index >= self.log.snapshot_index()
            && self.log.term_at(prev_index) != Some(prev_term)
        {
            if prev_index <= self.commit {
                // A more up-to-date log disagrees with a committed entry here: only a disk
                // that lost acknowledged writes does that. No hint could help, and
                // answering would only have the same entries sent again at once.
                return;
            }
            let hint = prev_index
                .prev()
                .min(self.log.last_index())
                .max(self.commit);
            self.send(
                from,
                PeerBody::DonateReply {
                    success: false,
                    match_index: hint,
                },
            );
            return;
        }
        let Some(last_new) = self.store_entries(prev_index, entries) else {
            self.persist_log();
            return;
        };
        self.persist_log();
        self.send(
            from,
            PeerBody::DonateReply {
                success: true,
                match_index: last_new,
            },
        );
        if (self.log.last_term(), self.log.last_index()) >= (donor_last.1, donor_last.0) {
            self.campaign_again_soon();
        }
    }

    /// Caught up by a donation, a server that campaigns asks for votes again at once
    /// instead of a whole election timeout later, so that #1 is not beaten by #2's later
    /// timer only because its log was behind at its first try.
    pub(in crate::server) fn campaign_again_soon(&mut self) {
        let campaigns = self.id() != ServerId::TIEBREAKER;
        if campaigns && !self.is_leader() && !self.leader_is_live() {
            self.election_deadline = Some(self.now.mono);
        }
    }

    pub(in crate::server) fn on_donate_snapshot(
        &mut self,
        from: ServerId,
        snapshot: Arc<Snapshot>,
        donor_last: (LogIndex, Term),
    ) {
        if !self.accepts_donation(donor_last) {
            return;
        }
        let match_index = self.accept_snapshot(snapshot);
        self.send(
            from,
            PeerBody::DonateReply {
                success: true,
                match_index,
            },
        );
    }

    /// Goes on donating until the receiver has this server's whole log.
    pub(in crate::server) fn on_donate_reply(
        &mut self,
        from: ServerId,
        success: bool,
        match_index: LogIndex,
    ) {
        if !success || match_index < self.log.last_index() {
            self.donate(from, match_index);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerId;
    use crate::protocol::{Denial, LogIndex, PeerBody, ReplyResult, Term};
    use crate::server::testkit::{Driver, append, checkout, grant, noop, peer_messages, sent_to};
    use crate::server::{Config, Output};
    use crate::timing::Timing;

    /// Found by the planted bug `lost-fsync`: a donor whose log disagrees with a
    /// committed entry of the receiver got a refusal pointing at that same entry, and
    /// donated it again at once, forever.
    #[test]
    fn a_donation_that_contradicts_a_committed_entry_is_dropped_unanswered() {
        // #2 follows #1 in term 1 and has committed its entry 1.
        let mut two = Driver::new(ServerId::SECONDARY);
        two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        assert_eq!(two.server.commit_index(), LogIndex(1));
        // #3 "donates" a log whose entry 1 is of term 2.
        let outputs = two.hear(
            ServerId::TIEBREAKER,
            PeerBody::Donate {
                prev_index: LogIndex(1),
                prev_term: Term(2),
                entries: vec![noop(2)],
                last_index: LogIndex(2),
                last_term: Term(2),
            },
        );
        assert!(
            sent_to(&outputs, ServerId::TIEBREAKER).is_empty(),
            "{outputs:?}"
        );
        assert_eq!(two.server.last_index(), LogIndex(1));
        // Above the commit index a conflict gets a hint, lower each time.
        let outputs = two.hear(
            ServerId::TIEBREAKER,
            PeerBody::Donate {
                prev_index: LogIndex(2),
                prev_term: Term(2),
                entries: vec![],
                last_index: LogIndex(3),
                last_term: Term(2),
            },
        );
        let sent = sent_to(&outputs, ServerId::TIEBREAKER);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::DonateReply {
                    success: false,
                    match_index: LogIndex(1)
                }]
            ),
            "{sent:?}"
        );
    }

    /// A donation replaces uncommitted entries, which is safe only when the donor's log
    /// is the more up to date: one that is less up to date may lack entries a majority
    /// holds.
    #[test]
    fn a_donation_from_a_log_less_up_to_date_than_the_receivers_is_ignored() {
        // #2 holds entries 1 and 2 from #1, the second of term 2, none committed.
        let mut two = Driver::new(ServerId::SECONDARY);
        two.hear_in(
            ServerId::PRIMARY,
            Term(2),
            append((0, 0), vec![noop(1), noop(2)], 0),
        );
        // #3's log is longer but ends in term 1.
        let outputs = two.hear(
            ServerId::TIEBREAKER,
            PeerBody::Donate {
                prev_index: LogIndex(0),
                prev_term: Term(0),
                entries: vec![noop(1), noop(1), noop(1)],
                last_index: LogIndex(3),
                last_term: Term(1),
            },
        );
        assert!(
            sent_to(&outputs, ServerId::TIEBREAKER).is_empty(),
            "{outputs:?}"
        );
        assert_eq!(two.server.last_index(), LogIndex(2));
    }

    /// A leader's log changes only by its own appends, however up to date a donor's is.
    #[test]
    fn a_leader_takes_no_donation() {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.elect();
        let (term, last) = (one.server.term(), one.server.last_index());
        let outputs = one.hear(
            ServerId::TIEBREAKER,
            PeerBody::Donate {
                prev_index: LogIndex(0),
                prev_term: Term(0),
                entries: vec![noop(term.0 + 1); 3],
                last_index: LogIndex(3),
                last_term: Term(term.0 + 1),
            },
        );
        assert!(
            sent_to(&outputs, ServerId::TIEBREAKER).is_empty(),
            "{outputs:?}"
        );
        assert!(one.server.is_leader());
        assert_eq!(one.server.term(), term);
        assert_eq!(one.server.last_index(), last);
    }

    /// A log never holds an entry of a term later than its server's: a donation of
    /// such entries brings the receiver to their term first, so it can store them.
    #[test]
    fn a_donation_from_a_later_term_brings_the_receiver_to_that_term() {
        let mut one = Driver::new(ServerId::PRIMARY);
        let outputs = one.hear_in(
            ServerId::TIEBREAKER,
            Term(1),
            PeerBody::Donate {
                prev_index: LogIndex(0),
                prev_term: Term(0),
                entries: vec![noop(1)],
                last_index: LogIndex(1),
                last_term: Term(1),
            },
        );
        assert_eq!(one.server.term(), Term(1));
        assert_eq!(one.server.last_index(), LogIndex(1));
        let sent = sent_to(&outputs, ServerId::TIEBREAKER);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::DonateReply {
                    success: true,
                    match_index: LogIndex(1)
                }]
            ),
            "{sent:?}"
        );
    }

    /// #3 never leads, so a donation of entries of the receiver's own term says nothing
    /// about who leads it: a follower taking one still points clients at its leader.
    #[test]
    fn a_donation_in_the_receivers_term_keeps_the_leader_it_follows() {
        // #2 follows #1 in term 1 and lacks #1's second entry, which #3 has.
        let mut two = Driver::new(ServerId::SECONDARY);
        two.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        let outputs = two.hear(
            ServerId::TIEBREAKER,
            PeerBody::Donate {
                prev_index: LogIndex(1),
                prev_term: Term(1),
                entries: vec![noop(1)],
                last_index: LogIndex(2),
                last_term: Term(1),
            },
        );
        assert_eq!(two.server.last_index(), LogIndex(2), "{outputs:?}");
        assert_eq!(two.server.leader(), Some(ServerId::PRIMARY));
        let outputs = two.ask(1, 1, checkout());
        assert!(
            matches!(
                outputs.as_slice(),
                [Output::Reply(reply)] if reply.result
                    == ReplyResult::Denied(Denial::NotActive {
                        active: Some(ServerId::PRIMARY)
                    })
            ),
            "{outputs:?}"
        );
    }

    /// The pre-votes asked for among `outputs`, as the last entry each claims.
    fn pre_votes(outputs: &[Output]) -> Vec<(LogIndex, Term)> {
        peer_messages(outputs)
            .into_iter()
            .filter_map(|m| match m.body {
                PeerBody::PreVote {
                    last_index,
                    last_term,
                } => Some((last_index, last_term)),
                _ => None,
            })
            .collect()
    }

    /// A donation of entries `from` to `to` (inclusive) of a log that #1 led in term 1:
    /// a no-op, then a grant.
    fn donation_of(from: u64, to: u64) -> PeerBody {
        let log = [noop(1), grant(1, 1, 1)];
        PeerBody::Donate {
            prev_index: LogIndex(from - 1),
            prev_term: Term(if from > 1 { 1 } else { 0 }),
            entries: log[(from - 1) as usize..to as usize].to_vec(),
            last_index: LogIndex(2),
            last_term: Term(1),
        }
    }

    /// #1's first try failed only because its log was behind (it restarted without
    /// it): once a donation has brought it level with #3, it asks again at once rather
    /// than a whole election timeout later; while the donation is still coming it waits,
    /// as asking would only fail again.
    #[test]
    fn a_server_caught_up_by_a_donation_asks_for_votes_again_at_once() {
        let mut one = Driver::new(ServerId::PRIMARY);
        assert_eq!(pre_votes(&one.tick_to(1_000)), [(LogIndex(0), Term(0)); 2]);
        // #3 refuses and donates its log, one entry at a time.
        one.hear_in(ServerId::TIEBREAKER, Term(1), donation_of(1, 1));
        assert_eq!(one.server.last_index(), LogIndex(1));
        // Still behind #3: it waits.
        assert_eq!(pre_votes(&one.tick_to(1_000)), []);
        one.hear_in(ServerId::TIEBREAKER, Term(1), donation_of(2, 2));
        assert_eq!(one.server.last_index(), LogIndex(2));
        assert_eq!(pre_votes(&one.tick_to(1_000)), [(LogIndex(2), Term(1)); 2]);
    }

    /// A donor goes on sending what the receiver lacks, a message's worth at a time, and
    /// stops once the receiver's log reaches as far as its own.
    #[test]
    fn a_donation_goes_on_until_the_receiver_has_the_donors_whole_log() {
        let config = Config {
            append_entries_max: 1,
            ..Config::triad(ServerId::TIEBREAKER, Timing::lan())
        };
        let mut three = Driver::with_config(config);
        three.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), grant(1, 1, 1)], 2),
        );
        // #2, its log lost, asks for a pre-vote: #3 sends the first entry.
        let outputs = three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            PeerBody::PreVote {
                last_index: LogIndex(0),
                last_term: Term(0),
            },
        );
        let donated = |outputs: &[Output]| -> Vec<(LogIndex, usize)> {
            sent_to(outputs, ServerId::SECONDARY)
                .into_iter()
                .filter_map(|b| match b {
                    PeerBody::Donate {
                        prev_index,
                        entries,
                        ..
                    } => Some((prev_index, entries.len())),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(donated(&outputs), [(LogIndex(0), 1)]);
        let stored = |match_index| PeerBody::DonateReply {
            success: true,
            match_index: LogIndex(match_index),
        };
        let outputs = three.hear(ServerId::SECONDARY, stored(1));
        assert_eq!(donated(&outputs), [(LogIndex(1), 1)]);
        let outputs = three.hear(ServerId::SECONDARY, stored(2));
        assert!(
            sent_to(&outputs, ServerId::SECONDARY).is_empty(),
            "{outputs:?}"
        );
    }

    /// #3 never campaigns, so nothing it is sent gives it an election deadline: not even
    /// a donation that brings it level with the donor (the shell would wake it for
    /// nothing).
    #[test]
    fn the_tiebreaker_caught_up_by_a_donation_still_never_asks_to_be_woken_for_an_election() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        // No live leader: a server that campaigns would ask at once.
        three.skip_to(1_000);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), donation_of(1, 2));
        assert_eq!(three.server.last_index(), LogIndex(2), "{outputs:?}");
        assert_eq!(three.server.poll_timeout(), None);
    }
}
