//! Replication and elections: Raft (Ongaro and Ousterhout, 2014) with HAL's changes —
//! only #1 and #2 campaign, in a fixed order instead of random timeouts; pre-vote and
//! check-quorum keep an asymmetric cut from flapping the active role; #2 hands the role
//! back to #1 once #1 has been reachable for `failback_hold`.

mod donation;
mod elections;
mod follower;
mod leader;
mod snapshots;

use crate::ServerId;
use crate::protocol::{LogIndex, PeerBody, PeerMessage, Term};
use crate::server::Server;

impl Server {
    pub(in crate::server) fn on_peer(&mut self, message: PeerMessage) {
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
    pub(in crate::server) fn keeps_term_for(&self, body: &PeerBody) -> bool {
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
    pub(in crate::server) fn hears_a_leader(&self) -> bool {
        self.is_leader() || self.leader_is_live()
    }

    pub(in crate::server) fn log_is_current(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }
}
