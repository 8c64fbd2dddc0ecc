//! Elections: #1 campaigns after `election_timeout` without a leader, #2 after
//! `election_timeout + failover_delay`, #3 never; pre-vote first, so a server that hears a
//! live leader refuses to help unseat it; Raft's vote restriction, so the new leader has
//! every committed grant; a new leader commits a no-op before it serves.

use std::collections::BTreeSet;

use crate::ServerId;
use crate::plant::Plant;
use crate::protocol::{Entry, LogIndex, PeerBody, PeerMessage, Term};
use crate::seats::Command;
use crate::server::{Leader, Output, Progress, Role, Server, ServerEvent, State};
use crate::time::Time;

impl Server {
    pub(in crate::server) fn on_election_timeout(&mut self) {
        if self.id() == ServerId::TIEBREAKER {
            self.election_deadline = None;
            return;
        }
        // Having waited a whole timeout, ask again soon if this round fails: a voter may
        // still be loyal to a leader it heard later than this server did. (#2 still
        // waits the failover delay more, so #1 keeps asking first.)
        self.set_election_timer(self.timing().election_retry());
        let Some(proposed) = self.next_term_to_campaign() else {
            return;
        };
        self.state = State::PreCandidate {
            votes: BTreeSet::from([self.id()]),
        };
        let body = PeerBody::PreVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        for peer in self.peer_ids() {
            let message = PeerMessage {
                from: self.id(),
                to: peer,
                term: proposed,
                body: body.clone(),
            };
            self.push(Output::Peer(message));
        }
    }

    pub(in crate::server) fn on_pre_vote(
        &mut self,
        from: ServerId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
    ) {
        let current = self.log_is_current(last_index, last_term)
            || self.config.plants.has(Plant::NoVoteRestriction);
        let granted = term > self.term && !self.hears_a_leader() && current;
        if !current {
            self.donate(from, last_index);
        }
        let reply_term = if granted { term } else { self.term };
        let message = PeerMessage {
            from: self.id(),
            to: from,
            term: reply_term,
            body: PeerBody::PreVoteReply { granted },
        };
        self.push(Output::Peer(message));
    }

    pub(in crate::server) fn on_pre_vote_reply(
        &mut self,
        from: ServerId,
        term: Term,
        granted: bool,
    ) {
        let majority = self.majority();
        let State::PreCandidate { votes } = &mut self.state else {
            return;
        };
        if !granted || Some(term) != self.term.next() {
            return;
        }
        votes.insert(from);
        if votes.len() >= majority {
            self.start_election(false);
        }
    }

    /// Raises the term, votes for itself and asks for votes; `transfer` when #2 handed
    /// over leadership.
    pub(in crate::server) fn start_election(&mut self, transfer: bool) {
        let Some(term) = self.next_term_to_campaign() else {
            return;
        };
        self.term = term;
        self.voted_for = Some(self.id());
        self.leader = None;
        self.persist_hard_state();
        self.reset_election_timer();
        self.state = State::Candidate {
            votes: BTreeSet::from([self.id()]),
        };
        if self.majority() == 1 {
            self.become_leader();
            return;
        }
        let body = PeerBody::RequestVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            transfer,
        };
        for peer in self.peer_ids() {
            self.send(peer, body.clone());
        }
    }

    /// The term to campaign in, if this server may: its term and its log must have room
    /// for one more election and its no-op. A server at either limit reports it and stays
    /// a follower (unreachable in practice: [`Term::MAX`] elections, [`LogIndex::MAX`]
    /// entries; a peer cannot push it there, see [`crate::server::trust`]).
    pub(in crate::server) fn next_term_to_campaign(&mut self) -> Option<Term> {
        let term = self.term.next();
        let room = self.log.last_index().next().is_some();
        if term.is_none() || !room {
            let what = if room { "term" } else { "log index" };
            self.event(ServerEvent::LimitReached { what });
            return None;
        }
        term
    }

    pub(in crate::server) fn on_request_vote(
        &mut self,
        from: ServerId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        transfer: bool,
    ) {
        let sticky = !transfer && self.hears_a_leader();
        let current = self.log_is_current(last_index, last_term)
            || self.config.plants.has(Plant::NoVoteRestriction);
        let granted =
            term == self.term && !sticky && self.voted_for.is_none_or(|v| v == from) && current;
        if !current {
            self.donate(from, last_index);
        }
        if granted {
            self.voted_for = Some(from);
            self.persist_hard_state();
            self.reset_election_timer();
        }
        self.send(from, PeerBody::VoteReply { granted });
    }

    pub(in crate::server) fn on_vote_reply(&mut self, from: ServerId, term: Term, granted: bool) {
        let majority = self.majority();
        let State::Candidate { votes } = &mut self.state else {
            return;
        };
        if !granted || term != self.term {
            return;
        }
        votes.insert(from);
        if votes.len() >= majority {
            self.become_leader();
        }
    }

    pub(in crate::server) fn become_follower(&mut self, term: Term, leader: Option<ServerId>) {
        let was_leader = self.is_leader();
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        }
        self.state = State::Follower;
        self.leader = leader;
        if leader.is_some() {
            self.leader_contact = Some(self.now.mono);
        }
        self.reset_election_timer();
        if was_leader {
            self.event(ServerEvent::RoleChanged {
                role: Role::Standby,
                term: self.term,
            });
        }
    }

    pub(in crate::server) fn become_leader(&mut self) {
        let now = self.now.mono;
        // Room for the no-op was checked before campaigning.
        let next = self.log.last_index().after();
        let progress = self
            .peers
            .iter()
            .map(|p| {
                (
                    *p,
                    Progress {
                        next,
                        matched: LogIndex(0),
                        acked_round: 0,
                    },
                )
            })
            .collect();
        let mut leader = Leader {
            noop_index: next,
            progress,
            round: 0,
            round_sent: Default::default(),
            lease_until: None,
            next_heartbeat: now,
            proposed: Default::default(),
            grants_in_flight: Default::default(),
            leases: Default::default(),
            borrows: Default::default(),
            expiring: Default::default(),
            transfer_since: None,
            idle: Default::default(),
        };
        // Every session without a seat may be forgotten once idle from the term start.
        let forget_at = now + self.timing().session_idle_max();
        for client in self.seats.idle_clients() {
            leader.idle.schedule(client, forget_at);
        }
        // Every seat held gets a fresh lease from the term start (DESIGN §3.3).
        let lease = self.timing().seat_lease();
        for (handle, seat) in self.seats.iter() {
            match seat.borrow_end() {
                Some(end) => {
                    leader.borrows.insert((end, handle));
                }
                None => leader.leases.set(handle, now + lease),
            }
        }
        for index in self.applied.0.saturating_add(1)..=self.log.last_index().0 {
            if let Some(Entry {
                command: Command::Grant { feature, .. },
                ..
            }) = self.log.get(LogIndex(index)).map(|e| &**e)
            {
                let n = leader.grants_in_flight.entry(feature.clone()).or_default();
                *n = n.saturating_add(1);
            }
        }
        if self.peers.is_empty() {
            leader.lease_until = Some(Time::MAX);
        }
        self.state = State::Leader(Box::new(leader));
        self.leader = Some(self.id());
        self.leader_contact = None;
        self.election_deadline = None;
        self.log.append(Entry {
            term: self.term,
            command: Command::Noop,
        });
        self.event(ServerEvent::RoleChanged {
            role: Role::Active,
            term: self.term,
        });
        self.leader_tick();
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerId;
    use crate::protocol::{LogIndex, PeerBody, Term};
    use crate::server::testkit::{Driver, append, noop, peer_messages, sent_to};

    fn pre_vote(last: (u64, u64)) -> PeerBody {
        PeerBody::PreVote {
            last_index: LogIndex(last.0),
            last_term: Term(last.1),
        }
    }

    #[test]
    fn one_asks_for_pre_votes_after_the_election_timeout_and_two_later() {
        let (mut one, mut two) = (
            Driver::new(ServerId::PRIMARY),
            Driver::new(ServerId::SECONDARY),
        );
        let asks = |d: &mut Driver, ms| {
            peer_messages(&d.tick_to(ms))
                .iter()
                .any(|m| matches!(m.body, PeerBody::PreVote { .. }))
        };
        assert!(!asks(&mut one, 900));
        assert!(asks(&mut one, 1_000));
        assert!(!asks(&mut two, 1_000), "#2 waits the failover delay more");
        assert!(asks(&mut two, 1_500));
    }

    #[test]
    fn three_never_campaigns() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        for ms in (0..30_000).step_by(250) {
            let outputs = three.tick_to(ms);
            assert!(peer_messages(&outputs).is_empty(), "at {ms}: {outputs:?}");
        }
    }

    #[test]
    fn a_pre_vote_is_refused_while_a_live_leader_is_heard() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        let outputs = three.hear_in(ServerId::SECONDARY, Term(2), pre_vote((1, 1)));
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            matches!(sent.as_slice(), [PeerBody::PreVoteReply { granted: false }]),
            "{sent:?}"
        );
        // Once the leader has been silent for an election timeout, it is granted.
        three.tick_to(1_100);
        let outputs = three.hear_in(ServerId::SECONDARY, Term(2), pre_vote((1, 1)));
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            matches!(sent.as_slice(), [PeerBody::PreVoteReply { granted: true }]),
            "{sent:?}"
        );
    }

    #[test]
    fn the_vote_restriction_refuses_a_candidate_whose_log_is_behind_and_donates() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::PRIMARY,
            Term(1),
            append((0, 0), vec![noop(1), noop(1)], 2),
        );
        three.tick_to(2_000);
        let outputs = three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            PeerBody::RequestVote {
                last_index: LogIndex(1),
                last_term: Term(1),
                transfer: false,
            },
        );
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            sent.iter()
                .any(|b| matches!(b, PeerBody::VoteReply { granted: false })),
            "{sent:?}"
        );
        assert!(
            sent.iter().any(|b| matches!(b, PeerBody::Donate { .. })),
            "the missing entry is donated: {sent:?}"
        );
        // Up to date, the same candidate gets the vote.
        let outputs = three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            PeerBody::RequestVote {
                last_index: LogIndex(2),
                last_term: Term(1),
                transfer: false,
            },
        );
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            matches!(sent.as_slice(), [PeerBody::VoteReply { granted: true }]),
            "{sent:?}"
        );
    }

    #[test]
    fn a_new_leader_appends_a_no_op_of_its_term_first() {
        let mut one = Driver::new(ServerId::PRIMARY);
        let outputs = one.elect();
        assert!(one.server.is_leader());
        let term = one.server.term();
        assert_eq!(one.server.last_index(), LogIndex(1));
        let sent = sent_to(&outputs, ServerId::TIEBREAKER);
        assert!(
            sent.iter()
                .any(|b| matches!(b, PeerBody::Append { entries, .. }
                if entries.iter().any(|e| e.term == term))),
            "{sent:?}"
        );
    }
}
