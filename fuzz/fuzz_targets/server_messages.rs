//! One `hal_core::server::Server` of a triad fed an arbitrary sequence of inputs: peer
//! messages (every field over its whole range, or near the server's own term and log),
//! client requests, timeouts and durability reports at non-decreasing times, answers to
//! its own messages (so that it can win elections and replicate), and restarts from what
//! it persisted. After every input the outputs are drained and checked, and so is the
//! server's state (`check_invariants`, and its term never past `Term::MAX`).

#![no_main]

use std::collections::VecDeque;
use std::time::Duration;

use arbitrary::Arbitrary;
use hal_core::ServerEvent;
use hal_core::ServerId;
use hal_core::catalog::{Catalog, FeatureRules};
use hal_core::protocol::{LogIndex, PeerBody, PeerMessage, ReplyResult, Term};
use hal_core::server::{Config, Durable, Output, Persist, Server};
use hal_core::timing::Timing;
use hal_fuzz::{Context, IndexArg, PeerBodyArg, RequestArg, Sid, TermArg, now_at};
use libfuzzer_sys::fuzz_target;

/// The most inputs one run plays: enough for elections, replication and snapshots.
const INPUTS_MAX: usize = 256;
/// The most messages of the server kept for `Input::Answer`.
const SENT_KEPT_MAX: usize = 16;

#[derive(Debug, Arbitrary)]
struct Setup {
    id: Sid,
    reports_durable: bool,
    /// `log_entries_max` is 1 + this % 16: small, so snapshots happen.
    log_entries: u8,
    /// `append_entries_max` is 1 + this % 8.
    append_entries: u8,
    inputs: Vec<Input>,
}

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any peer message; `to` is this server unless `misaddressed`.
    Peer {
        from: Sid,
        misaddressed: Option<Sid>,
        term: TermArg,
        body: PeerBodyArg,
    },
    Client(RequestArg),
    /// Time passes by this many ms; then the timeout is handled.
    Advance(u16),
    /// Time moves to the server's next deadline, which is handled.
    Deadline,
    /// The shell reports the log durable up to this index (capped at what it was handed).
    Durable(IndexArg),
    /// The peer answers one of the server's recent messages as an honest peer would
    /// (`yes` grants a vote, or says the append matched).
    Answer {
        pick: u8,
        yes: bool,
    },
    /// The server restarts from what it persisted.
    Restart,
}

/// The license file a server adopts when it first leads (in half the runs).
const LICENSE_FILE: &str = "FEATURE cad {\n VENDOR = acme\n COUNT = 5\n HAL_SERVERS = 3\n}\n";

fn catalog() -> Catalog {
    let rules = |count, borrow_hours_max, end| FeatureRules {
        count,
        borrow_hours_max,
        start: None,
        end,
        hostid_ok: true,
    };
    let ended = time::Date::from_calendar_date(2020, time::Month::January, 1).ok();
    Catalog::from_rules([
        ("cad".to_string(), rules(3, Some(24), None)),
        ("cam".to_string(), rules(1, None, None)),
        ("old".to_string(), rules(2, Some(24), ended)),
    ])
}

struct Harness {
    config: Config,
    server: Server,
    durable: Durable,
    /// The last index of the newest log write handed out: what a durability report may
    /// name at most.
    handed_last: LogIndex,
    /// The server's recent messages, for `Input::Answer`.
    sent: VecDeque<PeerMessage>,
    now_ms: u64,
    reached: Reached,
}

/// How far a run got, printed with `HAL_FUZZ_STATS=1` to see what the corpus reaches.
#[derive(Debug, Default)]
struct Reached {
    leader: bool,
    commit_max: u64,
    snapshots: usize,
    grants: usize,
    refused: usize,
}

impl Harness {
    fn new(setup: &Setup) -> Harness {
        let id = setup.id.build();
        let config = Config {
            log_entries_max: 1 + usize::from(setup.log_entries % 16),
            append_entries_max: 1 + usize::from(setup.append_entries % 8),
            reports_durable: setup.reports_durable,
            // Pushes and license entries are taken (unsigned), so that applying them runs.
            licensing: hal_core::HostId::parse("h2")
                .ok()
                .map(|hostid| hal_core::server::Licensing {
                    hostid,
                    vendor_key: None,
                    file: setup.reports_durable.then(|| LICENSE_FILE.into()),
                }),
            ..Config::triad(id, Timing::lan())
        };
        let now_ms = 1_000;
        let server = Server::new(
            config.clone(),
            catalog(),
            Durable::default(),
            now_at(now_ms),
        );
        let mut harness = Harness {
            config,
            server,
            durable: Durable::default(),
            handed_last: LogIndex(0),
            sent: VecDeque::new(),
            now_ms,
            reached: Reached::default(),
        };
        harness.drain();
        harness
    }

    fn context(&self) -> Context {
        Context {
            term: self.server.term().0,
            last_index: self.server.last_index().0,
            commit: self.server.commit_index().0,
            handles: self.server.seats().iter().map(|(h, _)| h.0).collect(),
            seqs: Vec::new(),
            now_ms: self.now_ms,
        }
    }

    fn play(&mut self, input: &Input) {
        let cx = self.context();
        let id = self.server.id();
        match input {
            Input::Peer {
                from,
                misaddressed,
                term,
                body,
            } => {
                let message = PeerMessage {
                    from: from.build(),
                    to: misaddressed.map_or(id, Sid::build),
                    term: term.build(&cx),
                    body: body.build(&cx),
                };
                self.server.handle_peer(now_at(self.now_ms), message);
            }
            Input::Client(request) => {
                self.server
                    .handle_client(now_at(self.now_ms), request.build(&cx));
            }
            Input::Advance(ms) => {
                self.now_ms = self.now_ms.saturating_add(u64::from(*ms));
                self.server.handle_timeout(now_at(self.now_ms));
            }
            Input::Deadline => {
                if let Some(deadline) = self.server.poll_timeout() {
                    self.now_ms = self.now_ms.max(deadline.0);
                }
                self.server.handle_timeout(now_at(self.now_ms));
            }
            Input::Durable(index) => {
                let index = index.build(&cx).min(self.handed_last);
                self.server.handle_durable(now_at(self.now_ms), index);
            }
            Input::Answer { pick, yes } => self.answer(usize::from(*pick), *yes),
            Input::Restart => {
                self.server = Server::new(
                    self.config.clone(),
                    catalog(),
                    self.durable.clone(),
                    now_at(self.now_ms),
                );
                assert_eq!(
                    self.server.term(),
                    self.durable.term,
                    "restarts at its term"
                );
                self.sent.clear();
            }
        }
        self.drain();
        self.check();
    }

    /// An honest peer's answer to one of the server's recent messages.
    fn answer(&mut self, pick: usize, yes: bool) {
        if self.sent.is_empty() {
            return;
        }
        let Some(sent) = self.sent.remove(pick % self.sent.len()) else {
            return;
        };
        let body = match &sent.body {
            PeerBody::PreVote { .. } => PeerBody::PreVoteReply { granted: yes },
            PeerBody::RequestVote { .. } => PeerBody::VoteReply { granted: yes },
            PeerBody::Append {
                prev_index,
                entries,
                round,
                ..
            } => PeerBody::AppendReply {
                success: yes,
                match_index: if yes {
                    prev_index.plus(entries.len()).unwrap_or(LogIndex::MAX)
                } else {
                    prev_index.prev()
                },
                round: *round,
            },
            PeerBody::InstallSnapshot { snapshot, round } => PeerBody::AppendReply {
                success: true,
                match_index: snapshot.last_index,
                round: *round,
            },
            PeerBody::Donate {
                prev_index,
                entries,
                ..
            } => PeerBody::DonateReply {
                success: yes,
                match_index: if yes {
                    prev_index.plus(entries.len()).unwrap_or(LogIndex::MAX)
                } else {
                    prev_index.prev()
                },
            },
            PeerBody::DonateSnapshot { last_index, .. } => PeerBody::DonateReply {
                success: true,
                match_index: *last_index,
            },
            _ => return,
        };
        let reply = PeerMessage {
            from: sent.to,
            to: sent.from,
            term: sent.term,
            body,
        };
        self.server.handle_peer(now_at(self.now_ms), reply);
    }

    /// Drains the outputs as a shell would: persists applied to the durable state (and
    /// so synced at once), messages kept for answers, each output checked.
    fn drain(&mut self) {
        let id = self.server.id();
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::Persist(write) => {
                    if let Persist::HardState { term, .. } = &write {
                        assert!(*term <= Term::MAX, "persisted term {term} past Term::MAX");
                    }
                    if let Persist::Snapshot(_) = &write {
                        self.reached.snapshots += 1;
                    }
                    if let Some(last) = write.last_log_index() {
                        self.handed_last = last;
                    }
                    self.durable.apply(&write);
                }
                Output::Peer(message) => {
                    assert_eq!(message.from, id, "a message from itself");
                    assert_ne!(message.to, id, "a message to another server");
                    assert!(message.term <= Term::MAX, "sent term past Term::MAX");
                    if self.sent.len() == SENT_KEPT_MAX {
                        self.sent.pop_front();
                    }
                    self.sent.push_back(message);
                }
                Output::Reply(reply) => {
                    assert_eq!(reply.from, id, "a reply from itself");
                    if let ReplyResult::Granted { .. } = reply.result {
                        self.reached.grants += 1;
                    }
                }
                Output::Event(ServerEvent::PeerMessageRefused { .. }) => self.reached.refused += 1,
                Output::Event(_) => {}
            }
        }
    }

    fn check(&mut self) {
        self.reached.leader |= self.server.is_leader();
        self.reached.commit_max = self.reached.commit_max.max(self.server.commit_index().0);
        self.server.check_invariants();
        let term = self.server.term();
        assert!(term <= Term::MAX, "term {term} past Term::MAX");
        if self.server.id() == ServerId::TIEBREAKER {
            assert!(!self.server.is_leader(), "#3 never leads");
        }
        if let Some(deadline) = self.server.poll_timeout() {
            // A deadline is a time, not a wrapped sum.
            assert!(
                deadline.0 <= self.now_ms.saturating_add(secs(3600)),
                "deadline {deadline:?} over an hour after now {}",
                self.now_ms
            );
        }
    }
}

fn secs(n: u64) -> u64 {
    u64::try_from(Duration::from_secs(n).as_millis()).unwrap_or(u64::MAX)
}

fuzz_target!(|setup: Setup| {
    let mut harness = Harness::new(&setup);
    harness.check();
    for input in setup.inputs.iter().take(INPUTS_MAX) {
        harness.play(input);
    }
    if std::env::var_os("HAL_FUZZ_STATS").is_some() {
        eprintln!("reached {:?}", harness.reached);
    }
});
