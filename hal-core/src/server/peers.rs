//! Replication and elections: Raft (Ongaro and Ousterhout, 2014) with HAL's changes —
//! only #1 and #2 campaign, in a fixed order instead of random timeouts; pre-vote and
//! check-quorum keep an asymmetric cut from flapping the active role; #2 hands the role
//! back to #1 once #1 has been reachable for `failback_hold`.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Leader, Output, Progress, Role, Server, ServerEvent, State};
use crate::ServerId;
use crate::plant::Plant;
use crate::protocol::{Entry, LogIndex, PeerBody, PeerMessage, Snapshot, Term};
use crate::seats::Command;
use crate::time::Time;

impl Server {
    pub(super) fn on_peer(&mut self, message: PeerMessage) {
        let addressed = message.to == self.id() && message.from != self.id();
        if !addressed || !self.peers.contains(&message.from) || !self.trusts(&message) {
            return;
        }
        let PeerMessage {
            from,
            to,
            term,
            body,
        } = message;
        debug_assert_eq!(to, self.id());
        self.heard_from(from);
        if term > self.term && !self.keeps_term_for(&body) {
            let leader = matches!(
                body,
                PeerBody::Append { .. } | PeerBody::InstallSnapshot { .. }
            )
            .then_some(from);
            self.become_follower(term, leader);
        }
        match body {
            PeerBody::PreVote {
                last_index,
                last_term,
            } => self.on_pre_vote(from, term, last_index, last_term),
            PeerBody::PreVoteReply { granted } => self.on_pre_vote_reply(from, term, granted),
            PeerBody::RequestVote {
                last_index,
                last_term,
                transfer,
            } => self.on_request_vote(from, term, last_index, last_term, transfer),
            PeerBody::VoteReply { granted } => self.on_vote_reply(from, term, granted),
            PeerBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                round,
            } => self.on_append(from, term, prev_index, prev_term, entries, commit, round),
            PeerBody::AppendReply {
                success,
                match_index,
                round,
            } => self.on_append_reply(from, term, success, match_index, round),
            PeerBody::InstallSnapshot { snapshot, round } => {
                self.on_snapshot(from, term, snapshot, round)
            }
            PeerBody::Donate {
                prev_index,
                prev_term,
                entries,
                last_index,
                last_term,
            } => self.on_donate(
                from,
                prev_index,
                prev_term,
                entries,
                (last_index, last_term),
            ),
            PeerBody::DonateSnapshot {
                snapshot,
                last_index,
                last_term,
            } => self.on_donate_snapshot(from, snapshot, (last_index, last_term)),
            PeerBody::DonateReply {
                success,
                match_index,
            } => self.on_donate_reply(from, success, match_index),
            PeerBody::TimeoutNow => {
                if term == self.term && !self.is_leader() && self.id() != ServerId::TIEBREAKER {
                    self.start_election(true);
                }
            }
            PeerBody::Presence {
                last_index,
                last_term,
                hears_you,
                connected_for_ms,
            } => self.on_presence(from, (last_index, last_term), hears_you, connected_for_ms),
            PeerBody::PresenceAck => {}
            PeerBody::PrimaryHeard { for_ms, .. } => self.on_primary_heard(from, for_ms),
            PeerBody::HandOver => self.on_hand_over(from, term),
        }
    }

    /// Messages whose higher term must not make this server adopt it: a pre-vote asks
    /// about a term nobody has started, and a vote request while a live leader is heard
    /// is refused without disturbing that leader (HAL's pre-vote and check-quorum).
    fn keeps_term_for(&self, body: &PeerBody) -> bool {
        match body {
            // A pre-vote asks about a term nobody has started; a presence is only news.
            PeerBody::PreVote { .. } | PeerBody::Presence { .. } | PeerBody::PresenceAck => true,
            PeerBody::PreVoteReply { granted } => *granted,
            PeerBody::RequestVote { transfer, .. } => !transfer && self.hears_a_leader(),
            // Donations carry entries of any term; they say nothing about the current one.
            PeerBody::Donate { .. }
            | PeerBody::DonateSnapshot { .. }
            | PeerBody::DonateReply { .. } => true,
            _ => false,
        }
    }

    /// Whether this server leads or hears a live leader.
    fn hears_a_leader(&self) -> bool {
        self.is_leader() || self.leader_is_live()
    }

    fn log_is_current(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    // ----- elections -----

    pub(super) fn on_election_timeout(&mut self) {
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

    fn on_pre_vote(&mut self, from: ServerId, term: Term, last_index: LogIndex, last_term: Term) {
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

    fn on_pre_vote_reply(&mut self, from: ServerId, term: Term, granted: bool) {
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
    pub(super) fn start_election(&mut self, transfer: bool) {
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
    /// entries; a peer cannot push it there, see [`super::trust`]).
    fn next_term_to_campaign(&mut self) -> Option<Term> {
        let term = self.term.next();
        let room = self.log.last_index().next().is_some();
        if term.is_none() || !room {
            let what = if room { "term" } else { "log index" };
            self.event(ServerEvent::LimitReached { what });
            return None;
        }
        term
    }

    fn on_request_vote(
        &mut self,
        from: ServerId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        transfer: bool,
    ) {
        let sticky = !transfer && self.hears_a_leader();
        let current = self.log_is_current(last_index, last_term);
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

    fn on_vote_reply(&mut self, from: ServerId, term: Term, granted: bool) {
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

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<ServerId>) {
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

    fn become_leader(&mut self) {
        let now = self.now.mono;
        // Room for the no-op was checked before campaigning.
        let next = LogIndex(self.log.last_index().0.saturating_add(1));
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

    // ----- replication, follower side -----

    #[allow(clippy::too_many_arguments)]
    fn on_append(
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
                LogIndex(prev_index.0.saturating_sub(1)).max(self.commit)
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
    fn store_entries(
        &mut self,
        prev_index: LogIndex,
        entries: Vec<Arc<Entry>>,
    ) -> Option<LogIndex> {
        let mut index = prev_index;
        for entry in entries {
            index = LogIndex(index.0.saturating_add(1));
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
    fn refuse_stale_leader(&mut self, from: ServerId, round: u64) {
        let reply = PeerBody::AppendReply {
            success: false,
            match_index: LogIndex(0),
            round,
        };
        self.send(from, reply);
    }

    fn on_snapshot(&mut self, from: ServerId, term: Term, snapshot: Arc<Snapshot>, round: u64) {
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

    /// Installs `snapshot` (checked by [`super::trust`]) if it is ahead of the commit
    /// index; returns the index this server now matches.
    fn accept_snapshot(&mut self, snapshot: Arc<Snapshot>) -> LogIndex {
        let last = snapshot.last_index;
        if last > self.commit {
            self.install_snapshot(snapshot);
        }
        last.max(self.commit).min(self.log.last_index())
    }

    /// Replaces the applied state with `snapshot` (which is ahead of the commit index),
    /// keeping log entries after it that agree with it.
    fn install_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        let last = snapshot.last_index;
        if self.log.term_at(last) == Some(snapshot.last_term) {
            self.log.compact_to(last, snapshot.last_term);
        } else {
            self.log.reset(last, snapshot.last_term);
        }
        self.seats = snapshot.seats.clone();
        if self.config.plants.has(Plant::SnapshotWithoutSessions) {
            self.seats.forget_requests();
        }
        self.commit = last;
        self.applied = last;
        self.push(Output::Persist(super::Persist::Snapshot(snapshot.clone())));
        self.persist_log();
    }

    // ----- log donation -----

    /// Sends `to` this server's log from after `from_index` (or the snapshot, if the log
    /// no longer reaches back that far).
    fn donate(&mut self, to: ServerId, from_index: LogIndex) {
        if self.config.plants.has(Plant::NoDonation) {
            return;
        }
        let last_index = self.log.last_index();
        let last_term = self.log.last_term();
        let prev_index = from_index.min(last_index);
        let body = match self.log.term_at(prev_index) {
            Some(prev_term) => {
                let entries = self.log.entries_from(
                    LogIndex(prev_index.0.saturating_add(1)),
                    self.config.append_entries_max,
                );
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
    fn accepts_donation(&mut self, donor_last: (LogIndex, Term)) -> bool {
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
    fn on_donate(
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
            let hint = LogIndex(prev_index.0.saturating_sub(1))
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
    fn campaign_again_soon(&mut self) {
        let campaigns = self.id() != ServerId::TIEBREAKER;
        if campaigns && !self.is_leader() && !self.leader_is_live() {
            self.election_deadline = Some(self.now.mono);
        }
    }

    fn on_donate_snapshot(
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
    fn on_donate_reply(&mut self, from: ServerId, success: bool, match_index: LogIndex) {
        if !success || match_index < self.log.last_index() {
            self.donate(from, match_index);
        }
    }

    // ----- replication, leader side -----

    /// Sends `peer` what it lacks (entries from its `next`, or the snapshot), numbered
    /// with the current heartbeat round.
    pub(super) fn send_append(&mut self, peer: ServerId) {
        let max = self.config.append_entries_max;
        let next = match &self.state {
            State::Leader(leader) => leader.progress.get(&peer).map(|p| p.next),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        let prev_index = LogIndex(next.0.saturating_sub(1));
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
                let entries = self.log.entries_from(next, max);
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
                progress.next = LogIndex(snapshot.last_index.0.saturating_add(1));
                PeerBody::InstallSnapshot { snapshot, round }
            }
            (None, None) => return,
        };
        self.send(peer, body);
    }

    /// Sends `peer` entries appended since the last send, if any.
    pub(super) fn send_new_entries(&mut self, peer: ServerId) {
        let last = self.log.last_index();
        let behind = match &self.state {
            State::Leader(leader) => leader.progress.get(&peer).is_some_and(|p| p.next <= last),
            _ => false,
        };
        if behind {
            self.send_append(peer);
        }
    }

    fn on_append_reply(
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
        // it. The next heartbeat retries.
        let contradicts = !success && match_index < progress.matched;
        if success {
            progress.matched = progress.matched.max(match_index);
            progress.next = progress
                .next
                .max(LogIndex(progress.matched.0.saturating_add(1)));
        } else {
            let after = |i: LogIndex| LogIndex(i.0.saturating_add(1));
            progress.next = after(match_index).max(after(progress.matched));
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
    pub(super) fn advance_commit(&mut self) {
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
    pub(super) fn leader_tick(&mut self) {
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
        self.forget_idle_sessions();
        self.maybe_fail_back();
    }
}

impl Leader {
    /// Extends the lease to the send time of the newest round a majority acknowledged.
    fn refresh_lease(&mut self, lease: std::time::Duration) {
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

    use super::super::testkit::{Driver, append, noop, sent_to};
    use super::*;

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
}
