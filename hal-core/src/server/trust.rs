//! What a peer may tell this server: every message from another server is checked here
//! before any of it is adopted, stored or applied.
//!
//! A message is refused whole, and reported ([`ServerEvent::PeerMessageRefused`]), when a
//! field is implausible: a term past [`Term::MAX`] or more than [`TERM_JUMP_MAX`] ahead of
//! this server's; an index past [`LogIndex::MAX`], or a snapshot or a claimed last index
//! more than [`INDEX_JUMP_MAX`] past this server's log; entries out of term order or from a
//! term later than the message's; a command no leader makes (a bad name, a grant decided
//! by #3); a snapshot whose seat table does not add up. So a broken or lying peer cannot
//! wrap a counter, push the triad's term out of reach, or plant a seat table that
//! disagrees with itself.
//!
//! What it does not do: make Raft tolerate a lying peer. An authenticated peer that sends
//! well-formed lies (a plausible append in the current term) is believed, as in any
//! crash-fault-tolerant protocol; peers are authenticated by the shell (TLS) for that
//! reason.

use std::sync::Arc;

use super::{Server, ServerEvent};
use crate::ServerId;
use crate::protocol::{
    Entry, INDEX_JUMP_MAX, LogIndex, PeerBody, PeerMessage, Snapshot, TERM_JUMP_MAX, Term,
};
use crate::seats::Command;

impl Server {
    /// Checks `message` before it is handled; on refusal, reports it and returns false.
    pub(super) fn trusts(&mut self, message: &PeerMessage) -> bool {
        match self.check_message(message) {
            Ok(()) => true,
            Err(why) => {
                self.event(ServerEvent::PeerMessageRefused {
                    from: message.from,
                    why,
                });
                false
            }
        }
    }

    fn check_message(&self, message: &PeerMessage) -> Result<(), String> {
        let term = message.term;
        self.check_term("the message's term", term)?;
        self.check_one_leader(message)?;
        match &message.body {
            PeerBody::PreVote {
                last_index,
                last_term,
            }
            | PeerBody::RequestVote {
                last_index,
                last_term,
                ..
            } => {
                self.check_reach("the candidate's last index", *last_index)?;
                check_not_after(*last_term, term, "the candidate's last entry")
            }
            PeerBody::PreVoteReply { .. }
            | PeerBody::VoteReply { .. }
            | PeerBody::TimeoutNow
            | PeerBody::PresenceAck
            | PeerBody::HandOver => Ok(()),
            PeerBody::Presence {
                last_index,
                last_term,
                ..
            } => {
                check_sender(message.from, ServerId::PRIMARY, "a presence")?;
                check_index("the presence's last index", *last_index)?;
                check_not_after(*last_term, term, "the presence's last entry")
            }
            PeerBody::PrimaryHeard {
                last_index,
                last_term,
                ..
            } => {
                check_sender(message.from, ServerId::TIEBREAKER, "news of #1")?;
                check_index("#1's last index", *last_index)?;
                check_not_after(*last_term, term, "#1's last entry")
            }
            PeerBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => {
                check_index("the commit index", *commit)?;
                self.check_entries(*prev_index, *prev_term, entries, term)
            }
            PeerBody::AppendReply { match_index, .. }
            | PeerBody::DonateReply { match_index, .. } => {
                check_index("the match index", *match_index)
            }
            PeerBody::InstallSnapshot { snapshot, .. } => self.check_snapshot(snapshot, term),
            PeerBody::Donate {
                prev_index,
                prev_term,
                entries,
                last_index,
                last_term,
            } => {
                self.check_donor_last(*last_index, *last_term)?;
                self.check_entries(*prev_index, *prev_term, entries, *last_term)?;
                let end = prev_index.plus(entries.len()).unwrap_or(LogIndex::MAX);
                if end > *last_index {
                    return Err(format!(
                        "a donation runs to index {} past the donor's last index {}",
                        end.0, last_index.0
                    ));
                }
                Ok(())
            }
            PeerBody::DonateSnapshot {
                snapshot,
                last_index,
                last_term,
            } => {
                self.check_donor_last(*last_index, *last_term)?;
                if snapshot.last_index > *last_index {
                    return Err("a donated snapshot is past the donor's last index".into());
                }
                self.check_snapshot(snapshot, *last_term)
            }
        }
    }

    /// A term has one leader: an append or snapshot in this server's own term from
    /// another server than the one it knows leads it (itself, or the leader it follows)
    /// is a lie. (Believed, a snapshot installed under a leader's feet removed its
    /// term's no-op from its log; found by fuzzing.)
    fn check_one_leader(&self, message: &PeerMessage) -> Result<(), String> {
        let leads = matches!(
            message.body,
            PeerBody::Append { .. } | PeerBody::InstallSnapshot { .. }
        );
        if !leads || message.term != self.term {
            return Ok(());
        }
        let leader = if self.is_leader() {
            Some(self.id())
        } else {
            self.leader
        };
        match leader {
            Some(leader) if leader != message.from => Err(format!(
                "{} sent what only a leader sends, in term {}, which {leader} leads",
                message.from, message.term
            )),
            _ => Ok(()),
        }
    }

    fn check_term(&self, what: &str, term: Term) -> Result<(), String> {
        if term.is_plausible_from(self.term) {
            return Ok(());
        }
        Err(format!(
            "{what} {term} is implausible: this server is at term {}, and a peer may be at most {TERM_JUMP_MAX} ahead (and never past {})",
            self.term,
            Term::MAX
        ))
    }

    /// An index a peer would move this server's log to (or compare it with).
    fn check_reach(&self, what: &str, index: LogIndex) -> Result<(), String> {
        let own = self.log.last_index();
        if index.is_plausible_from(own) {
            return Ok(());
        }
        Err(format!(
            "{what} {} is implausible: this server's log ends at {}, and a peer may be at most {INDEX_JUMP_MAX} entries ahead (and never past {})",
            index.0,
            own.0,
            LogIndex::MAX.0
        ))
    }

    fn check_donor_last(&self, last_index: LogIndex, last_term: Term) -> Result<(), String> {
        self.check_reach("the donor's last index", last_index)?;
        self.check_term("the donor's last term", last_term)
    }

    /// Entries after (`prev_index`, `prev_term`) from a log whose newest term is at most
    /// `term_max`: indices in range, terms in order, commands a leader makes.
    fn check_entries(
        &self,
        prev_index: LogIndex,
        prev_term: Term,
        entries: &[Arc<Entry>],
        term_max: Term,
    ) -> Result<(), String> {
        check_index("the previous index", prev_index)?;
        check_not_after(prev_term, term_max, "the previous entry")?;
        if prev_index.plus(entries.len()).is_none() {
            return Err(format!(
                "{} entries after index {} run past the last index allowed, {}",
                entries.len(),
                prev_index.0,
                LogIndex::MAX.0
            ));
        }
        let mut newest = prev_term;
        for (offset, entry) in entries.iter().enumerate() {
            let index = LogIndex(prev_index.0.saturating_add(offset as u64).saturating_add(1));
            if entry.term < newest {
                return Err(format!(
                    "entry {} is of term {}, older than the entry before it (term {newest})",
                    index.0, entry.term
                ));
            }
            check_not_after(entry.term, term_max, "an entry")?;
            newest = entry.term;
            check_command(&entry.command, index)
                .map_err(|why| format!("entry {}: {why}", index.0))?;
        }
        Ok(())
    }

    fn check_snapshot(&self, snapshot: &Snapshot, term_max: Term) -> Result<(), String> {
        self.check_reach("the snapshot's last index", snapshot.last_index)?;
        check_not_after(snapshot.last_term, term_max, "the snapshot")?;
        let catalog = &self.catalog;
        snapshot
            .seats
            .validate(snapshot.last_index, |feature| {
                catalog.count(feature).is_some()
            })
            .map_err(|why| format!("the snapshot at index {}: {why}", snapshot.last_index.0))
    }
}

/// A message only server `only` sends.
fn check_sender(from: ServerId, only: ServerId, what: &str) -> Result<(), String> {
    if from == only {
        return Ok(());
    }
    Err(format!("{what} comes only from {only}, not {from}"))
}

fn check_index(what: &str, index: LogIndex) -> Result<(), String> {
    if index <= LogIndex::MAX {
        return Ok(());
    }
    Err(format!(
        "{what} {} is past the last index allowed, {}",
        index.0,
        LogIndex::MAX.0
    ))
}

fn check_not_after(term: Term, term_max: Term, what: &str) -> Result<(), String> {
    if term <= term_max {
        return Ok(());
    }
    Err(format!(
        "{what} is of term {term}, later than the sender's {term_max}"
    ))
}

/// Whether `command`, stored at `index`, is one a leader makes.
fn check_command(command: &Command, index: LogIndex) -> Result<(), String> {
    match command {
        Command::Noop => Ok(()),
        Command::Grant {
            feature,
            user,
            host,
            borrow_end,
            by,
            ..
        } => {
            crate::names::check_all(feature, user, host)
                .map_err(|(field, problem)| format!("a grant's {} name {problem}", field.name()))?;
            match (by, borrow_end) {
                (&ServerId::TIEBREAKER, _) => {
                    Err("a grant decided by #3, which never leads".into())
                }
                (&ServerId::SECONDARY, Some(_)) => {
                    Err("a borrow decided by #2, which never grants borrows".into())
                }
                _ => Ok(()),
            }
        }
        Command::Wait {
            feature,
            user,
            host,
            by,
            ..
        }
        | Command::Serve {
            feature,
            user,
            host,
            by,
            ..
        } => {
            crate::names::check_all(feature, user, host)
                .map_err(|(field, problem)| format!("a wait's {} name {problem}", field.name()))?;
            if *by == ServerId::TIEBREAKER {
                return Err("a wait served by #3, which never leads".into());
            }
            match command {
                Command::Serve { id, .. } if id.0 >= index.0 => Err(format!(
                    "it serves waiting request {id}, which a later entry than this one would have queued"
                )),
                _ => Ok(()),
            }
        }
        Command::Dequeue { id, feature, .. } => {
            // Id 0: a leave asked before its wait applied, which names no feature.
            if id.0 != 0 || !feature.is_empty() {
                crate::names::check(feature)
                    .map_err(|problem| format!("a departure's feature name {problem}"))?;
            }
            if id.0 >= index.0 {
                return Err(format!(
                    "it takes waiting request {id} out, which a later entry than this one would have queued"
                ));
            }
            Ok(())
        }
        Command::Forget { clients } if clients.len() > crate::seats::FORGET_CLIENTS_MAX => {
            Err(format!(
                "it forgets {} sessions, more than the {} one entry may",
                clients.len(),
                crate::seats::FORGET_CLIENTS_MAX
            ))
        }
        Command::Forget { .. } => Ok(()),
        Command::Release { handle, .. } | Command::Expire { handle } => {
            if handle.0 >= index.0 {
                return Err(format!(
                    "it ends seat {handle}, which a later entry than this one would have granted"
                ));
            }
            Ok(())
        }
        Command::Remove { handles, by, .. } => {
            if handles.len() > crate::protocol::REMOVE_HANDLES_MAX {
                return Err(format!(
                    "it removes {} seats, more than the {} one entry may",
                    handles.len(),
                    crate::protocol::REMOVE_HANDLES_MAX
                ));
            }
            crate::names::check(by)
                .map_err(|problem| format!("a removal's user name {problem}"))?;
            if let Some(handle) = handles.iter().find(|h| h.0 >= index.0) {
                return Err(format!(
                    "it removes seat {handle}, which a later entry than this one would have granted"
                ));
            }
            Ok(())
        }
        Command::License { text, by, .. } => {
            crate::names::check(by)
                .map_err(|problem| format!("a license push's user name {problem}"))?;
            check_license_size(text)
        }
        Command::Options { text, by, .. } => {
            crate::names::check(by)
                .map_err(|problem| format!("an options push's user name {problem}"))?;
            if text.len() > crate::options::FILE_BYTES_MAX {
                return Err(format!("its options file is {} bytes", text.len()));
            }
            crate::options::parse_in_force("options", text)
                .map(|_| ())
                .map_err(|errors| format!("its options file does not read: {}", errors.len()))
        }
        Command::AdoptLicense { text, by } => {
            if *by == ServerId::TIEBREAKER {
                return Err("a license adopted by #3, which never leads".into());
            }
            check_license_size(text)
        }
    }
}

/// Whether a license in the log is within the size a license file may have.
fn check_license_size(text: &str) -> Result<(), String> {
    let max = crate::license::limits::FILE_BYTES_MAX;
    if text.len() > max {
        return Err(format!(
            "its license is {} bytes, over the limit of {max}",
            text.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::protocol::{ClientId, ClientRequest, Denial, Invalid, Op, ReplyResult, RequestSeq};
    use crate::seats::Seats;
    use crate::server::{Config, Durable, Output};
    use crate::time::{Now, Time, WallTime};
    use crate::timing::Timing;

    fn now() -> Now {
        Now {
            mono: Time(0),
            wall: WallTime(1_800_000_000_000),
        }
    }

    fn catalog() -> Catalog {
        crate::server::testkit::catalog()
    }

    /// Server #3 at term 0, its outputs so far drained.
    fn tiebreaker() -> Server {
        let config = Config::triad(ServerId::TIEBREAKER, Timing::lan());
        let mut server = Server::new(config, catalog(), Durable::default(), now());
        while server.poll_output().is_some() {}
        server
    }

    fn drain(server: &mut Server) -> Vec<Output> {
        std::iter::from_fn(|| server.poll_output()).collect()
    }

    fn append(term: u64, entries: Vec<Entry>) -> PeerMessage {
        PeerMessage {
            from: ServerId::PRIMARY,
            to: ServerId::TIEBREAKER,
            term: Term(term),
            body: PeerBody::Append {
                prev_index: LogIndex(0),
                prev_term: Term(0),
                entries: entries.into_iter().map(Arc::new).collect(),
                commit: LogIndex(0),
                round: 1,
            },
        }
    }

    /// #1's snapshot for #3, in term 1.
    fn install(snapshot: Snapshot) -> PeerMessage {
        PeerMessage {
            from: ServerId::PRIMARY,
            to: ServerId::TIEBREAKER,
            term: Term(1),
            body: PeerBody::InstallSnapshot {
                snapshot: Arc::new(snapshot),
                round: 1,
            },
        }
    }

    fn grant(by: ServerId, user: &str, borrow: bool) -> Command {
        Command::Grant {
            client: ClientId(7),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: user.into(),
            host: "ws1".into(),
            borrow_end: borrow.then_some(WallTime(1_800_003_600_000)),
            by,
            at: WallTime(1_800_000_000_000),
        }
    }

    fn entry(term: u64, command: Command) -> Entry {
        Entry {
            term: Term(term),
            command,
        }
    }

    /// Feeds `message` and returns the refusal's reason, asserting that nothing else came
    /// out and that the server's term and log did not move.
    fn refusal(server: &mut Server, message: PeerMessage) -> String {
        let (term, last, sender) = (server.term(), server.last_index(), message.from);
        server.handle_peer(now(), message);
        let outputs = drain(server);
        assert_eq!(server.term(), term, "a refused message moves no term");
        assert_eq!(
            server.last_index(),
            last,
            "a refused message stores nothing"
        );
        match outputs.as_slice() {
            [Output::Event(ServerEvent::PeerMessageRefused { from, why })] => {
                assert_eq!(*from, sender);
                why.clone()
            }
            other => panic!("expected one refusal, got {other:?}"),
        }
    }

    fn accepted(server: &mut Server, message: PeerMessage) -> Vec<Output> {
        server.handle_peer(now(), message);
        let outputs = drain(server);
        let refused = outputs
            .iter()
            .any(|o| matches!(o, Output::Event(ServerEvent::PeerMessageRefused { .. })));
        assert!(!refused, "{outputs:?}");
        outputs
    }

    /// Found by fuzzing (server_messages, after the failback-through-#3 messages were
    /// added): a leader installed a snapshot another server sent in its own term, and
    /// its term's no-op was no longer in its log. A term has one leader.
    /// The refusals among `outputs`: who sent, and why.
    fn refusals(outputs: &[Output]) -> Vec<(ServerId, String)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(crate::server::ServerEvent::PeerMessageRefused { from, why }) => {
                    Some((*from, why.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_presence_comes_only_from_one_and_news_of_one_only_from_three() {
        use crate::server::testkit::Driver;
        let presence = PeerBody::Presence {
            last_index: LogIndex(0),
            last_term: Term(0),
            hears_you: true,
            connected_for_ms: 60_000,
        };
        let news = PeerBody::PrimaryHeard {
            for_ms: 60_000,
            last_index: LogIndex(0),
            last_term: Term(0),
        };
        let mut two = Driver::new(ServerId::SECONDARY);
        assert_eq!(refusals(&two.hear(ServerId::PRIMARY, presence.clone())), []);
        assert_eq!(
            refusals(&two.hear(ServerId::TIEBREAKER, presence)),
            [(
                ServerId::TIEBREAKER,
                "a presence comes only from #1, not #3".to_string()
            )]
        );
        assert_eq!(refusals(&two.hear(ServerId::TIEBREAKER, news.clone())), []);
        assert_eq!(
            refusals(&two.hear(ServerId::PRIMARY, news)),
            [(
                ServerId::PRIMARY,
                "news of #1 comes only from #3, not #1".to_string()
            )]
        );
    }

    #[test]
    fn a_second_leader_in_the_same_term_is_refused() {
        // #3 follows #1 in term 1; #2 claims term 1 as well.
        let mut server = tiebreaker();
        accepted(&mut server, append(1, vec![entry(1, Command::Noop)]));
        let mut from_two = append(1, vec![]);
        from_two.from = ServerId::SECONDARY;
        let why = refusal(&mut server, from_two);
        assert!(
            why.contains("#2 sent what only a leader sends, in term 1, which #1 leads"),
            "{why}"
        );

        // #1 leads term 1 itself; a snapshot "from #2 in term 1" is refused, and #1
        // keeps its no-op.
        let mut one = crate::server::testkit::Driver::new(ServerId::PRIMARY);
        one.elect();
        let mut leader = one.server;
        assert!(leader.is_leader(), "#1 was elected");
        drain(&mut leader);
        let term = leader.term();
        let snapshot = Snapshot {
            last_index: LogIndex(1),
            last_term: term,
            seats: crate::seats::Seats::new(),
        };
        let lie = PeerMessage {
            from: ServerId::SECONDARY,
            to: ServerId::PRIMARY,
            term,
            body: PeerBody::InstallSnapshot {
                snapshot: Arc::new(snapshot),
                round: 1,
            },
        };
        let why = refusal(&mut leader, lie);
        assert!(why.contains("which #1 leads"), "{why}");
        assert!(leader.is_leader());
        leader.check_invariants();
    }

    #[test]
    fn terms_and_indices_stop_at_their_limits_instead_of_wrapping() {
        assert_eq!(Term(5).next(), Some(Term(6)));
        assert_eq!(Term::MAX.next(), None);
        assert_eq!(Term(u64::MAX).next(), None);
        assert_eq!(LogIndex(5).plus(3), Some(LogIndex(8)));
        assert_eq!(LogIndex::MAX.next(), None);
        assert_eq!(LogIndex(u64::MAX).plus(1), None);
        assert_eq!(LogIndex(0).prev(), LogIndex(0));
    }

    #[test]
    fn a_term_past_the_limit_is_refused_and_reported() {
        let mut server = tiebreaker();
        let why = refusal(&mut server, append(u64::MAX, vec![]));
        assert!(
            why.contains("the message's term 18446744073709551615 is implausible"),
            "{why}"
        );
        // The server still follows an honest leader afterwards.
        accepted(&mut server, append(1, vec![entry(1, Command::Noop)]));
        assert_eq!(server.term(), Term(1));
        assert_eq!(server.last_index(), LogIndex(1));
    }

    #[test]
    fn a_term_jump_is_bounded_but_a_long_absence_is_not_refused() {
        let mut server = tiebreaker();
        refusal(&mut server, append(TERM_JUMP_MAX + 1, vec![]));
        accepted(&mut server, append(TERM_JUMP_MAX, vec![]));
        assert_eq!(server.term(), Term(TERM_JUMP_MAX));
    }

    #[test]
    fn entries_out_of_term_order_or_from_a_later_term_are_refused() {
        let mut server = tiebreaker();
        let later = append(2, vec![entry(3, Command::Noop)]);
        assert!(
            refusal(&mut server, later)
                .contains("an entry is of term 3, later than the sender's 2")
        );
        let backwards = append(3, vec![entry(3, Command::Noop), entry(2, Command::Noop)]);
        let why = refusal(&mut server, backwards);
        assert!(
            why.contains("entry 2 is of term 2, older than the entry before it"),
            "{why}"
        );
    }

    #[test]
    fn commands_no_leader_makes_are_refused() {
        let mut server = tiebreaker();
        let by_three = append(1, vec![entry(1, grant(ServerId::TIEBREAKER, "ann", false))]);
        assert!(refusal(&mut server, by_three).contains("a grant decided by #3"));
        let borrow_by_two = append(1, vec![entry(1, grant(ServerId::SECONDARY, "ann", true))]);
        assert!(refusal(&mut server, borrow_by_two).contains("a borrow decided by #2"));
        let escape = append(
            1,
            vec![entry(1, grant(ServerId::PRIMARY, "a\u{1b}[2J", false))],
        );
        assert!(refusal(&mut server, escape).contains("user name holds a control character"));
        let long = "u".repeat(crate::names::NAME_BYTES_MAX + 1);
        let long = append(1, vec![entry(1, grant(ServerId::PRIMARY, &long, false))]);
        assert!(refusal(&mut server, long).contains("user name longer than 256 bytes"));
        let ahead = append(
            1,
            vec![entry(
                1,
                Command::Expire {
                    handle: crate::protocol::Handle(1),
                },
            )],
        );
        assert!(refusal(&mut server, ahead).contains("entry 1: it ends seat h1"));
        // The honest version of the same is stored.
        accepted(
            &mut server,
            append(1, vec![entry(1, grant(ServerId::PRIMARY, "ann", true))]),
        );
        assert_eq!(server.last_index(), LogIndex(1));
    }

    #[test]
    fn indices_past_the_limit_are_refused() {
        let mut server = tiebreaker();
        let mut message = append(1, vec![]);
        if let PeerBody::Append { commit, .. } = &mut message.body {
            *commit = LogIndex(u64::MAX);
        }
        assert!(refusal(&mut server, message).contains("the commit index"));
        let mut message = append(1, vec![entry(1, Command::Noop)]);
        if let PeerBody::Append { prev_index, .. } = &mut message.body {
            *prev_index = LogIndex::MAX;
        }
        assert!(refusal(&mut server, message).contains("run past the last index allowed"));
        let vote = PeerMessage {
            from: ServerId::PRIMARY,
            to: ServerId::TIEBREAKER,
            term: Term(1),
            body: PeerBody::RequestVote {
                last_index: LogIndex(u64::MAX),
                last_term: Term(1),
                transfer: false,
            },
        };
        assert!(refusal(&mut server, vote).contains("the candidate's last index"));
    }

    #[test]
    fn a_snapshot_at_the_end_of_the_index_range_is_refused() {
        // One plausible-looking message must not move a log to where it can grow no more.
        let mut server = tiebreaker();
        let snapshot = Snapshot {
            last_index: LogIndex::MAX,
            last_term: Term(1),
            seats: Seats::new(),
        };
        let message = install(snapshot);
        let why = refusal(&mut server, message);
        assert!(
            why.contains("the snapshot's last index") && why.contains("is implausible"),
            "{why}"
        );
        // A snapshot a long absence away is taken.
        let far = Snapshot {
            last_index: LogIndex(INDEX_JUMP_MAX),
            last_term: Term(1),
            seats: Seats::new(),
        };
        let message = install(far);
        accepted(&mut server, message);
        assert_eq!(server.last_index(), LogIndex(INDEX_JUMP_MAX));
    }

    #[test]
    fn a_snapshot_of_a_feature_the_license_lacks_is_refused() {
        let mut seats = Seats::new();
        let command = grant(ServerId::PRIMARY, "ann", false);
        let command = match command {
            Command::Grant {
                client,
                seq,
                user,
                host,
                borrow_end,
                by,
                at,
                ..
            } => Command::Grant {
                client,
                seq,
                feature: "cam".into(),
                user,
                host,
                borrow_end,
                by,
                at,
            },
            other => other,
        };
        seats.apply(LogIndex(1), &command, |_| Some(5));
        let snapshot = Snapshot {
            last_index: LogIndex(1),
            last_term: Term(1),
            seats,
        };
        let mut server = tiebreaker();
        let message = install(snapshot);
        let why = refusal(&mut server, message);
        assert!(
            why.contains("feature `cam` is not in this server's license"),
            "{why}"
        );
    }

    #[test]
    fn a_request_with_a_bad_name_or_too_many_handles_is_denied_as_invalid() {
        let mut server = tiebreaker();
        let denial = |server: &mut Server, op: Op| {
            let request = ClientRequest {
                client: ClientId(1),
                seq: RequestSeq(1),
                op,
            };
            server.handle_client(now(), request);
            match drain(server).as_slice() {
                [Output::Reply(reply)] => reply.result.clone(),
                other => panic!("{other:?}"),
            }
        };
        let op = Op::Checkout {
            feature: "cad".into(),
            user: "x".repeat(300).into(),
            host: "ws1".into(),
        };
        let ReplyResult::Denied(Denial::InvalidRequest(Invalid::Name { field, .. })) =
            denial(&mut server, op)
        else {
            panic!("not denied as invalid");
        };
        assert_eq!(field, crate::names::NameField::User);
        let handles = vec![crate::protocol::Handle(1); crate::protocol::HEARTBEAT_HANDLES_MAX + 1];
        assert_eq!(
            denial(&mut server, Op::Heartbeat { handles }),
            ReplyResult::Denied(Denial::InvalidRequest(Invalid::TooManyHandles))
        );
    }

    /// #2 at term 0, its outputs so far drained.
    fn secondary() -> Server {
        crate::server::testkit::Driver::new(ServerId::SECONDARY).server
    }

    /// #3's snapshot donation to #2: a snapshot ending at `snapshot_last`, from a log
    /// ending at `donor_last`, all of term 1.
    fn donated_snapshot(snapshot_last: u64, donor_last: u64) -> PeerMessage {
        let snapshot = Snapshot {
            last_index: LogIndex(snapshot_last),
            last_term: Term(1),
            seats: Seats::new(),
        };
        PeerMessage {
            from: ServerId::TIEBREAKER,
            to: ServerId::SECONDARY,
            term: Term(1),
            body: PeerBody::DonateSnapshot {
                snapshot: Arc::new(snapshot),
                last_index: LogIndex(donor_last),
                last_term: Term(1),
            },
        }
    }

    /// A donor's snapshot covers a prefix of its log: it may end where the log ends (a
    /// donor that just compacted) or before, never after.
    #[test]
    fn a_donated_snapshot_may_end_at_the_donors_last_index_but_not_past_it() {
        let why = refusal(&mut secondary(), donated_snapshot(3, 2));
        assert!(
            why.contains("a donated snapshot is past the donor's last index"),
            "{why}"
        );
        for (snapshot_last, donor_last) in [(2, 2), (2, 3)] {
            let mut two = secondary();
            accepted(&mut two, donated_snapshot(snapshot_last, donor_last));
            assert_eq!(two.last_index(), LogIndex(2));
            assert_eq!(two.commit_index(), LogIndex(2));
        }
    }

    /// A leader forgets at most [`crate::seats::FORGET_CLIENTS_MAX`] sessions in one
    /// entry, so an entry naming more is not one a leader made.
    #[test]
    fn an_entry_forgetting_more_sessions_than_a_leader_puts_in_one_is_refused() {
        let forget = |count: u64| {
            let clients = (1..=count).map(ClientId).collect();
            append(1, vec![entry(1, Command::Forget { clients })])
        };
        let max = crate::seats::FORGET_CLIENTS_MAX as u64;
        let mut server = tiebreaker();
        let why = refusal(&mut server, forget(max + 1));
        assert!(
            why.contains("entry 1: it forgets 1025 sessions, more than the 1024 one entry may"),
            "{why}"
        );
        accepted(&mut server, forget(max));
        assert_eq!(server.last_index(), LogIndex(1));
    }
}
