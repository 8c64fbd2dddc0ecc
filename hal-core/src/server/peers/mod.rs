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

#[cfg(test)]
mod tests {
    use crate::ServerId;
    use crate::protocol::{LogIndex, PeerBody, PeerMessage, Term};
    use crate::server::testkit::{Driver, append, at, noop, peer_messages, sent_to};

    /// #3 following #2, leader of term 2, whose entry 1 it holds.
    fn three_following_two() -> Driver {
        let mut three = Driver::new(ServerId::TIEBREAKER);
        three.hear_in(
            ServerId::SECONDARY,
            Term(2),
            append((0, 0), vec![noop(2)], 1),
        );
        assert_eq!(three.server.leader(), Some(ServerId::SECONDARY));
        three
    }

    /// Whether #2's next (empty) append of term 2 is taken.
    fn takes_an_append_of_term_two(three: &mut Driver) -> bool {
        let outputs = three.hear_in(ServerId::SECONDARY, Term(2), append((1, 2), vec![], 1));
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        matches!(
            sent.as_slice(),
            [PeerBody::AppendReply { success: true, .. }]
        )
    }

    /// A message that reaches the wrong server (a misrouting shell, a replayed capture)
    /// is not this server's to act on.
    #[test]
    fn a_message_addressed_to_another_server_is_ignored() {
        let mut one = Driver::new(ServerId::PRIMARY);
        let message = PeerMessage {
            from: ServerId::SECONDARY,
            to: ServerId::TIEBREAKER,
            term: Term(1),
            body: append((0, 0), vec![noop(1)], 1),
        };
        one.server.handle_peer(at(0), message);
        assert!(one.drain().is_empty());
        assert_eq!(one.server.term(), Term(0));
        assert_eq!(one.server.leader(), None);
        assert_eq!(one.server.last_index(), LogIndex(0));
    }

    /// A hand-over is good for the term it was sent in: one that arrives after a later
    /// term has begun must not start an election against the leader of that term.
    #[test]
    fn a_timeout_now_from_an_earlier_term_starts_no_election() {
        let mut one = Driver::new(ServerId::PRIMARY);
        one.hear_in(
            ServerId::SECONDARY,
            Term(3),
            append((0, 0), vec![noop(3)], 1),
        );
        let outputs = one.hear_in(ServerId::TIEBREAKER, Term(2), PeerBody::TimeoutNow);
        assert!(peer_messages(&outputs).is_empty(), "{outputs:?}");
        assert_eq!(one.server.term(), Term(3));
        assert_eq!(one.server.leader(), Some(ServerId::SECONDARY));
        // In the current term it starts one at once.
        let outputs = one.hear_in(ServerId::TIEBREAKER, Term(3), PeerBody::TimeoutNow);
        let sent = sent_to(&outputs, ServerId::SECONDARY);
        assert!(
            matches!(
                sent.as_slice(),
                [PeerBody::RequestVote { transfer: true, .. }]
            ),
            "{sent:?}"
        );
        assert_eq!(one.server.term(), Term(4));
    }

    /// Check-quorum: a vote request in a later term, while a live leader is heard, is
    /// refused in the current term, so the leader's next append is still taken.
    #[test]
    fn a_vote_request_refused_for_a_live_leader_leaves_the_term_alone() {
        let mut three = three_following_two();
        let outputs = three.hear_in(
            ServerId::PRIMARY,
            Term(3),
            PeerBody::RequestVote {
                last_index: LogIndex(1),
                last_term: Term(2),
                transfer: false,
            },
        );
        let replies: Vec<PeerMessage> = peer_messages(&outputs)
            .into_iter()
            .filter(|m| matches!(m.body, PeerBody::VoteReply { .. }))
            .collect();
        assert!(
            matches!(
                replies.as_slice(),
                [PeerMessage {
                    term: Term(2),
                    body: PeerBody::VoteReply { granted: false },
                    ..
                }]
            ),
            "{replies:?}"
        );
        assert_eq!(three.server.term(), Term(2));
        assert!(takes_an_append_of_term_two(&mut three));
    }

    /// A donation's messages travel in the sender's term, which says nothing about the
    /// current one: a candidate's answer to a donation leaves the live leader followed.
    #[test]
    fn an_answer_to_a_donation_from_a_later_term_leaves_the_term_alone() {
        let mut three = three_following_two();
        let outputs = three.hear_in(
            ServerId::PRIMARY,
            Term(3),
            PeerBody::DonateReply {
                success: true,
                match_index: LogIndex(1),
            },
        );
        assert!(peer_messages(&outputs).is_empty(), "{outputs:?}");
        assert_eq!(three.server.term(), Term(2));
        assert_eq!(three.server.leader(), Some(ServerId::SECONDARY));
        assert!(takes_an_append_of_term_two(&mut three));
    }
}
