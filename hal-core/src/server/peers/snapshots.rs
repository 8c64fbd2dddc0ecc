//! Snapshots received: a leader's applied state for a follower whose log lags behind
//! the leader's compacted prefix, installed only when it is ahead of the commit index.

use std::sync::Arc;

use crate::ServerId;
use crate::plant::Plant;
use crate::protocol::{LogIndex, PeerBody, Snapshot, Term};
use crate::server::{Output, Server, ServerEvent};

impl Server {
    pub(in crate::server) fn on_snapshot(
        &mut self,
        from: ServerId,
        term: Term,
        snapshot: Arc<Snapshot>,
        round: u64,
    ) {
        if term < self.term {
            self.refuse_stale_leader(from, round);
            return;
        }
        self.leader_contact = Some(self.now.mono);
        self.reset_election_timer();
        let match_index = self.accept_snapshot(snapshot);
        self.send(
            from,
            PeerBody::AppendReply {
                success: true,
                match_index,
                round,
            },
        );
    }

    /// Installs `snapshot` (checked by [`crate::server::trust`]) if it is ahead of the commit
    /// index; returns the index this server now matches.
    pub(in crate::server) fn accept_snapshot(&mut self, snapshot: Arc<Snapshot>) -> LogIndex {
        let last = snapshot.last_index;
        if last > self.commit {
            self.install_snapshot(snapshot);
        }
        last.max(self.commit).min(self.log.last_index())
    }

    /// Replaces the applied state with `snapshot` (which is ahead of the commit index),
    /// keeping log entries after it that agree with it.
    pub(in crate::server) fn install_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        let last = snapshot.last_index;
        if self.log.term_at(last) == Some(snapshot.last_term) {
            self.log.compact_to(last, snapshot.last_term);
        } else {
            self.log.reset(last, snapshot.last_term);
        }
        let license_before = self.seats.license().map(|l| l.index);
        self.seats = snapshot.seats.clone();
        if self.config.plants.has(Plant::SnapshotWithoutSessions) {
            self.seats.forget_requests();
        }
        if self.seats.license().map(|l| l.index) != license_before {
            self.take_license(None, false);
        }
        self.push(Output::Event(ServerEvent::Checkpoint {
            index: last,
            digest: self.seats.digest(),
            installed: true,
        }));
        self.commit = last;
        self.applied = last;
        self.push(Output::Persist(crate::server::Persist::Snapshot(
            snapshot.clone(),
        )));
        self.persist_log();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::ServerId;
    use crate::protocol::{ClientId, LogIndex, PeerBody, RequestSeq, Snapshot, Term};
    use crate::seats::{Command, Seats};
    use crate::server::testkit::{Driver, append, checkpoints, noop, sent_to};
    use crate::server::{Output, Persist};

    fn install(last: (u64, u64)) -> PeerBody {
        install_seats(last, Seats::new())
    }

    fn install_seats(last: (u64, u64), seats: Seats) -> PeerBody {
        PeerBody::InstallSnapshot {
            snapshot: Arc::new(Snapshot {
                last_index: LogIndex(last.0),
                last_term: Term(last.1),
                seats,
            }),
            round: 1,
        }
    }

    /// The state installed, sessions and all, reports the digest of the snapshot's own
    /// table: what the server that took it reported at that index.
    #[test]
    fn an_installed_snapshot_reports_the_digest_of_the_state_it_carries() {
        let mut seats = Seats::new();
        let grant = Command::Grant {
            client: ClientId(7),
            seq: RequestSeq(3),
            feature: "cad".into(),
            user: "ann".into(),
            host: "ws1".into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: crate::time::WallTime(1_800_000_000_000),
        };
        seats.apply(LogIndex(39), &grant, |_| Some(5));
        let digest = seats.digest();
        let mut three = Driver::new(ServerId::TIEBREAKER);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), install_seats((40, 1), seats));
        let reported = checkpoints(&outputs);
        assert_eq!(reported, [(LogIndex(40), digest, true)], "{outputs:?}");
    }

    #[test]
    fn a_snapshot_ahead_of_the_commit_index_is_installed() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), install((40, 1)));
        assert_eq!(three.server.commit_index(), LogIndex(40));
        assert_eq!(three.server.last_index(), LogIndex(40));
        let sent = sent_to(&outputs, ServerId::PRIMARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::AppendReply {
                    success: true,
                    match_index: LogIndex(40),
                    ..
                }]
            ),
            "{sent:?}"
        );
    }

    #[test]
    fn a_snapshot_behind_the_commit_index_changes_nothing() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1), noop(1)], 3),
        );
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), install((2, 1)));
        assert_eq!(three.server.commit_index(), LogIndex(3));
        assert_eq!(three.server.last_index(), LogIndex(3));
        let sent = sent_to(&outputs, ServerId::PRIMARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::AppendReply {
                    success: true,
                    match_index: LogIndex(3),
                    ..
                }]
            ),
            "{sent:?}"
        );
    }

    /// The reply `outputs` send #1: (success, match index).
    fn reply_to_one(outputs: &[crate::server::Output]) -> (bool, LogIndex) {
        crate::server::testkit::append_reply_to(outputs, ServerId::PRIMARY)
    }

    /// A leader deposed while its snapshot was on the way is told the newer term, not
    /// obeyed: its state may lack what the newer leader committed.
    #[test]
    fn a_snapshot_from_a_leader_of_an_earlier_term_is_refused() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(ServerId::SECONDARY, Term(2), append((0, 0), vec![], 0));
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), install((40, 1)));
        assert!(!reply_to_one(&outputs).0, "{outputs:?}");
        assert_eq!(three.server.commit_index(), LogIndex(0));
        assert_eq!(three.server.last_index(), LogIndex(0));
        assert_eq!(three.server.term(), Term(2));
    }

    /// A snapshot at the commit index (the same one delivered twice, say) holds nothing
    /// this server has not applied: installing it again would only write the whole state
    /// to disk once more.
    #[test]
    fn a_snapshot_at_exactly_the_commit_index_is_not_installed_again() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(ServerId::PRIMARY, Term(1), install((40, 1)));
        assert_eq!(three.server.commit_index(), LogIndex(40));
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), install((40, 1)));
        assert_eq!(checkpoints(&outputs), [], "{outputs:?}");
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Persist(Persist::Snapshot(_)))),
            "{outputs:?}"
        );
        assert_eq!(reply_to_one(&outputs), (true, LogIndex(40)));
    }

    /// Entries past the snapshot that agree with it (the follower got them by appends
    /// before the snapshot came) are the leader's too: they are kept, not fetched again.
    #[test]
    fn a_snapshot_keeps_the_entries_after_it_that_agree_with_it() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        let entries = vec![noop(1), noop(1), noop(1), noop(1), noop(1)];
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), entries, 2));
        three.hear_in(ServerId::PRIMARY, Term(1), install((3, 1)));
        assert_eq!(three.server.commit_index(), LogIndex(3));
        assert_eq!(three.server.last_index(), LogIndex(5));
    }

    /// Entries past a snapshot whose last entry has another term than this server's
    /// entry there come from a history the snapshot's leader replaced: they go.
    #[test]
    fn a_snapshot_drops_the_log_when_its_last_entry_disagrees_with_it() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        let entries = vec![noop(1), noop(1), noop(1), noop(1), noop(1)];
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), entries, 2));
        three.hear_in(ServerId::SECONDARY, Term(2), install((3, 2)));
        assert_eq!(three.server.commit_index(), LogIndex(3));
        assert_eq!(three.server.last_index(), LogIndex(3));
    }
}
