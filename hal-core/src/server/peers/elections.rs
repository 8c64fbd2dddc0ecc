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
            stopping: false,
            idle: Default::default(),
            wait_leases: Default::default(),
            serving: Default::default(),
            leaving: Default::default(),
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
        // Every waiting request keeps its place for a lease from the term start.
        for waiter in self.seats.waiters() {
            leader.wait_leases.set(waiter.id, now + lease);
        }
        for index in self.applied.0.saturating_add(1)..=self.log.last_index().0 {
            let Some(entry) = self.log.get(LogIndex(index)) else {
                continue;
            };
            match &entry.command {
                Command::Grant { feature, .. }
                | Command::Wait { feature, .. }
                | Command::Serve { feature, .. } => {
                    let n = leader.grants_in_flight.entry(feature.clone()).or_default();
                    *n = n.saturating_add(1);
                    if matches!(entry.command, Command::Serve { .. }) {
                        leader.serving.insert(feature.clone());
                    }
                }
                Command::Dequeue { id, .. } => {
                    leader.leaving.insert(*id);
                }
                _ => {}
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
        if let Some(command) = self.license_to_adopt()
            && self.log.last_index().next().is_some()
        {
            self.log.append(Entry {
                term: self.term,
                command,
            });
        }
        self.event(ServerEvent::RoleChanged {
            role: Role::Active,
            term: self.term,
        });
        self.leader_tick();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::ServerId;
    use crate::protocol::{
        ClientId, Entry, Handle, LogIndex, PeerBody, RequestSeq, Snapshot, Term,
    };
    use crate::seats::{Command, Seats};
    use crate::server::testkit::{
        Driver, append, at, catalog, grant, noop, peer_messages, sent_to,
    };
    use crate::server::{Config, Durable, Output, Persist, Server, ServerEvent};
    use crate::timing::Timing;

    fn pre_vote(last: (u64, u64)) -> PeerBody {
        PeerBody::PreVote {
            last_index: LogIndex(last.0),
            last_term: Term(last.1),
        }
    }

    fn request_vote(last: (u64, u64), transfer: bool) -> PeerBody {
        PeerBody::RequestVote {
            last_index: LogIndex(last.0),
            last_term: Term(last.1),
            transfer,
        }
    }

    /// Whether `outputs` answer a (pre-)vote request with `granted`, and only that.
    fn answers(outputs: &[Output], to: ServerId, granted: bool) -> bool {
        match sent_to(outputs, to).as_slice() {
            [PeerBody::PreVoteReply { granted: g } | PeerBody::VoteReply { granted: g }] => {
                *g == granted
            }
            _ => false,
        }
    }

    fn asks_for_votes(outputs: &[Output]) -> bool {
        peer_messages(outputs)
            .iter()
            .any(|m| matches!(m.body, PeerBody::RequestVote { .. }))
    }

    fn asks_for_pre_votes(outputs: &[Output]) -> bool {
        peer_messages(outputs)
            .iter()
            .any(|m| matches!(m.body, PeerBody::PreVote { .. }))
    }

    /// #1 a candidate in term 1, having had #3's pre-vote and no vote yet.
    fn one_campaigning_in_term_one() -> Driver {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.tick_to(1_000);
        let outputs = one.hear_in(
            ServerId::TIEBREAKER,
            Term(1),
            PeerBody::PreVoteReply { granted: true },
        );
        assert!(asks_for_votes(&outputs), "{outputs:?}");
        assert_eq!(one.server.term(), Term(1));
        one
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

    /// A pre-candidate proposes its term plus one; a voter already in that term has seen
    /// it started by someone else, so the pre-candidate is behind and is told the term.
    #[test]
    fn a_pre_vote_is_granted_only_for_a_term_above_the_voters_own() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            append((0, 0), vec![noop(2)], 1),
        );
        three.tick_to(1_100); // #2 went silent
        let outputs = three.hear_in(ServerId::PRIMARY, Term(2), pre_vote((1, 2)));
        assert!(answers(&outputs, ServerId::PRIMARY, false), "{outputs:?}");
        assert_eq!(peer_messages(&outputs)[0].term, Term(2));
        let outputs = three.hear_in(ServerId::PRIMARY, Term(3), pre_vote((1, 2)));
        assert!(answers(&outputs, ServerId::PRIMARY, true), "{outputs:?}");
        assert_eq!(three.server.term(), Term(2), "a pre-vote starts no term");
    }

    /// A grant that arrives after its round failed promised nothing for the next term.
    #[test]
    fn a_pre_vote_granted_for_an_earlier_round_does_not_count() {
        let mut one = one_campaigning_in_term_one();
        let mut asked_again = false;
        while !asked_again {
            assert!(one.now_ms < 10_000, "never asked again");
            let outputs = one.tick_to(one.now_ms + 50);
            asked_again = peer_messages(&outputs)
                .iter()
                .any(|m| matches!(m.body, PeerBody::PreVote { .. }) && m.term == Term(2));
        }
        let late = PeerBody::PreVoteReply { granted: true };
        let outputs = one.hear_in(ServerId::SECONDARY, Term(1), late.clone());
        assert!(!asks_for_votes(&outputs), "{outputs:?}");
        assert_eq!(one.server.term(), Term(1));
        // The same grant for this round starts the election.
        let outputs = one.hear_in(ServerId::SECONDARY, Term(2), late);
        assert!(asks_for_votes(&outputs), "{outputs:?}");
        assert_eq!(one.server.term(), Term(2));
    }

    #[test]
    fn a_server_at_the_term_or_log_index_limit_reports_it_and_does_not_campaign() {
        let timed_out = |durable: Durable| {
            let config = Config::triad(ServerId::PRIMARY, Timing::lan());
            let mut one = Server::new(config, catalog(), durable, at(0));
            while one.poll_output().is_some() {}
            one.handle_timeout(at(1_000));
            std::iter::from_fn(|| one.poll_output()).collect::<Vec<_>>()
        };
        let limit = |outputs: &[Output]| {
            outputs.iter().find_map(|o| match o {
                Output::Event(ServerEvent::LimitReached { what }) => Some(*what),
                _ => None,
            })
        };
        let at_term_max = timed_out(Durable {
            term: Term::MAX,
            ..Durable::default()
        });
        assert_eq!(limit(&at_term_max), Some("term"), "{at_term_max:?}");
        assert!(!asks_for_pre_votes(&at_term_max), "{at_term_max:?}");
        let full_log = Snapshot {
            last_index: LogIndex::MAX,
            last_term: Term(1),
            seats: Seats::new(),
        };
        let at_index_max = timed_out(Durable {
            term: Term(1),
            snapshot: Some(Arc::new(full_log)),
            ..Durable::default()
        });
        assert_eq!(limit(&at_index_max), Some("log index"), "{at_index_max:?}");
        assert!(!asks_for_pre_votes(&at_index_max), "{at_index_max:?}");
    }

    /// #2 hands the role over while it still leads, so #1's transfer request must pass
    /// voters that hear #2; a plain request from #1 then is refused.
    #[test]
    fn a_vote_for_a_leadership_transfer_is_granted_while_the_leader_is_heard() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::SECONDARY,
            Term(1),
            append((0, 0), vec![noop(1)], 1),
        );
        three.skip_to(100);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(2), request_vote((1, 1), false));
        assert!(answers(&outputs, ServerId::PRIMARY, false), "{outputs:?}");
        let outputs = three.hear_in(ServerId::PRIMARY, Term(2), request_vote((1, 1), true));
        assert!(answers(&outputs, ServerId::PRIMARY, true), "{outputs:?}");
    }

    /// A retried request gets the same answer; a second candidate in the term gets none.
    #[test]
    fn a_voter_votes_for_one_candidate_per_term_and_repeats_that_vote() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.tick_to(2_000);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), request_vote((0, 0), false));
        assert!(answers(&outputs, ServerId::PRIMARY, true), "{outputs:?}");
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), request_vote((0, 0), false));
        assert!(answers(&outputs, ServerId::PRIMARY, true), "{outputs:?}");
        let outputs = three.hear_in(ServerId::SECONDARY, Term(1), request_vote((0, 0), false));
        assert!(answers(&outputs, ServerId::SECONDARY, false), "{outputs:?}");
    }

    /// Hearing the leader of the term it voted in does not free the voter to vote again
    /// in that term once the leader falls silent.
    #[test]
    fn a_vote_is_kept_for_the_whole_term_after_hearing_its_leader() {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.tick_to(2_000);
        let outputs = three.hear_in(ServerId::PRIMARY, Term(1), request_vote((0, 0), false));
        assert!(answers(&outputs, ServerId::PRIMARY, true), "{outputs:?}");
        three.hear_in(ServerId::PRIMARY, Term(1), append((0, 0), vec![noop(1)], 1));
        three.tick_to(4_000); // #1 went silent
        let outputs = three.hear_in(ServerId::SECONDARY, Term(1), request_vote((1, 1), false));
        assert!(answers(&outputs, ServerId::SECONDARY, false), "{outputs:?}");
    }

    #[test]
    fn a_candidate_wins_only_on_votes_granted() {
        let mut one = one_campaigning_in_term_one();
        let refused = PeerBody::VoteReply { granted: false };
        one.hear_in(ServerId::TIEBREAKER, Term(1), refused.clone());
        one.hear_in(ServerId::SECONDARY, Term(1), refused);
        assert!(!one.server.is_leader());
        let granted = PeerBody::VoteReply { granted: true };
        one.hear_in(ServerId::TIEBREAKER, Term(1), granted);
        assert!(one.server.is_leader());
    }

    /// A session that held no seat when #1 took over was maybe in use just before under
    /// #2: the new leader gives it the whole idle time from its term start.
    #[test]
    fn a_new_leader_forgets_a_seatless_session_an_idle_time_after_its_term_start() {
        let forgotten = |outputs: &[Output]| {
            outputs.iter().any(|o| {
                matches!(o, Output::Persist(Persist::Entries { entries, .. })
                    if entries.iter().any(|e| matches!(e.command, Command::Forget { .. })))
            })
        };
        let returned = Arc::new(Entry {
            term: Term(1),
            command: Command::Release {
                client: ClientId(7),
                seq: RequestSeq(2),
                handle: Handle(2),
            },
        });
        let mut one = Driver::new(ServerId::PRIMARY);
        let entries = vec![noop(1), grant(1, 7, 1), returned];
        one.hear_in(ServerId::SECONDARY, Term(1), append((0, 0), entries, 3));
        let mut outputs = one.elect();
        let start = one.now_ms;
        let idle_ms = u64::try_from(Timing::lan().session_idle_max().as_millis()).unwrap();
        let ack = PeerBody::AppendReply {
            success: true,
            match_index: LogIndex(4),
            round: 1,
        };
        for ms in (start..start + idle_ms).step_by(250) {
            outputs.extend(one.tick_to(ms));
            outputs.extend(one.hear(ServerId::TIEBREAKER, ack.clone()));
        }
        assert!(one.server.is_leader());
        assert!(!forgotten(&outputs), "{outputs:?}");
        assert!(forgotten(&one.tick_to(start + idle_ms)));
    }
}
