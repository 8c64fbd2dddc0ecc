//! The history of a run as JSON Lines, in the schema of DESIGN §6.4: what tools outside
//! the project read, so field names and values are kept exactly as documented.
//!
//! Records are appended in the order they happen (simulated time never goes back), by
//! the world (faults, roles) and by the clients' taps (requests, replies, client events).

use std::sync::{Arc, Mutex};

use hal_core::ServerId;
use hal_core::protocol::{ClientRequest, Denial, Op, ReplyResult, RequestSeq, ServerReply};
use hal_core::record::{
    Answer, Applied, Audit, Checkpoint, ClientEventRecord, ClientRecord, End, Expect, Fault,
    FaultKind, HeartbeatAnswer, Holder, Impostor, Meta, OpName, Party, Record, ReplyRecord,
    RequestRecord, RoleName, RoleRecord, SnapshotHow,
};
use hal_core::server::SeatChange;
use hal_net::session::Answered;

use crate::check::{Checkers, Violation};
use crate::error::Broken;

/// A run's history, shared by everything that records into it. Every record is also
/// fed to the invariant checkers as it is written.
#[derive(Debug, Clone, Default)]
pub struct History {
    lines: Arc<Mutex<Vec<String>>>,
    checkers: Arc<Mutex<Checkers>>,
    /// A harness bug seen from inside the simulation (a fault that took no effect).
    harness: Arc<Mutex<Option<Broken>>>,
    /// Each simulated client's name in the history, by its id (for the servers' records,
    /// which know clients by id).
    names: Arc<Mutex<std::collections::BTreeMap<u64, String>>>,
    /// What each server journaled, as hal-net's journal would write it (kept apart from
    /// the history: `hal-sim check` judges them as it judges a real triad's).
    journals: Arc<Mutex<std::collections::BTreeMap<u8, Vec<hal_core::record::Entry>>>>,
    /// The meta record, for the journals' heads.
    meta: Arc<Mutex<Option<Meta>>>,
}

/// A simulated server's journal: its entries go into the run's [`History`].
struct JournalSink {
    server: u8,
    harness: Arc<Mutex<Option<Broken>>>,
    journals: Arc<Mutex<std::collections::BTreeMap<u8, Vec<hal_core::record::Entry>>>>,
}

impl hal_net::journal::Sink for JournalSink {
    fn write(&self, item: &hal_net::journal::Item<'_>, now: hal_core::time::Now) {
        // The line a real server would write, read back.
        let entry = match hal_net::journal::entry(item, now) {
            Ok(entry) => entry,
            Err(e) => {
                let mut slot = self.harness.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(Broken::JournalUnreadable {
                    server: self.server,
                    what: e.to_string(),
                });
                return;
            }
        };
        self.journals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(self.server)
            .or_default()
            .push(entry);
    }
}

/// What a client's application was told of a grant (its history record).
#[derive(Debug, Clone)]
pub(crate) struct Grant<'a> {
    pub feature: &'a str,
    pub handle: String,
    /// The server that answered.
    pub server: ServerId,
    pub borrow_end_ms: Option<u64>,
    /// How many times the request was sent.
    pub attempts: u32,
}

/// Simulated ms since the start of the run.
pub fn now_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ids(servers: &[ServerId]) -> Vec<Party> {
    servers.iter().map(|s| Party::Server(s.get())).collect()
}

impl History {
    /// Appends `record`, feeding it to the checkers.
    pub fn push(&self, record: Record) {
        // A record's maps have string keys and its numbers are integers: serialising
        // one cannot fail.
        let line = serde_json::to_string(&record).expect("a history record serialises");
        self.checkers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe_record(&record, &line);
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// The first invariant violation, if any.
    pub fn violation(&self) -> Option<Violation> {
        self.checkers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .violation()
            .cloned()
    }

    /// Server `server` could not start from its disk (`why`): a violation of "11
    /// restarts after a crash" (the first violation is kept); the run stops on it.
    pub fn refused_start(&self, t_ms: u64, server: ServerId, why: &str) {
        self.checkers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .violated(Violation {
                invariant: crate::check::RESTARTS,
                t_ms,
                what: format!("#{} cannot start from its disk: {why}", server.get()),
                evidence: Vec::new(),
            });
    }

    /// Reports a harness bug (the first one is kept); the run stops on it.
    pub fn harness_failure(&self, what: Broken) {
        let mut slot = self.harness.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(what);
    }

    /// The first harness bug reported, if any.
    pub fn harness(&self) -> Option<Broken> {
        self.harness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The first line.
    pub fn meta(&self, meta: Meta) {
        *self.meta.lock().unwrap_or_else(|e| e.into_inner()) = Some(meta.clone());
        self.push(Record::Meta(meta));
    }

    /// The journal server `server` writes, as a real server's journal would hold it.
    pub fn journal(&self, server: ServerId) -> hal_net::journal::Journal {
        hal_net::journal::Journal::to(Arc::new(JournalSink {
            server: server.get(),
            harness: self.harness.clone(),
            journals: self.journals.clone(),
        }))
    }

    /// The servers' journals so far, as `hal_net::journal::read` reads real ones (each
    /// headed by the run's meta record, marked with its server; lines numbered from 2).
    pub fn server_journals(&self) -> Vec<hal_net::journal::read::ServerJournal> {
        let meta = self
            .meta
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        let journals = self.journals.lock().unwrap_or_else(|e| e.into_inner());
        journals
            .iter()
            .map(|(&server, entries)| {
                let name = format!("simulated-journal-{server}");
                let file: Arc<std::path::Path> = Arc::from(std::path::Path::new(&name));
                hal_net::journal::read::ServerJournal {
                    server,
                    meta: Meta {
                        server: Some(server),
                        ..meta.clone()
                    },
                    entries: entries
                        .iter()
                        .enumerate()
                        .map(|(i, entry)| hal_net::journal::read::Located {
                            entry: entry.clone(),
                            file: Arc::clone(&file),
                            line: i + 2,
                        })
                        .collect(),
                    notes: Vec::new(),
                }
            })
            .collect()
    }

    /// A fault between server groups `a` and `b` (or of `a` alone).
    pub fn fault(&self, t_ms: u64, fault: FaultKind, a: &[ServerId], b: &[ServerId]) {
        self.fault_with(t_ms, fault, a, b, |_| {});
    }

    /// A fault with more fields (`link`: its state; `clock`: offset and drift), set by
    /// `more`.
    pub fn fault_with(
        &self,
        t_ms: u64,
        fault: FaultKind,
        a: &[ServerId],
        b: &[ServerId],
        more: impl FnOnce(&mut Fault),
    ) {
        let mut record = Fault::new(t_ms, fault, ids(a), ids(b));
        more(&mut record);
        self.push(Record::Fault(record));
    }

    /// A client machine (`client`: the client, or group of clients, on it) cut off from
    /// `servers` or mended: `a` is the client's name, `b` the servers.
    pub fn clients_fault(&self, t_ms: u64, fault: FaultKind, client: &str, servers: &[ServerId]) {
        let a = vec![Party::Client(client.to_string())];
        self.push(Record::Fault(Fault::new(t_ms, fault, a, ids(servers))));
    }

    /// A scenario's expectation or check, judged: `met`, what was expected (`expected`)
    /// and what happened (`saw`); `line` is where the scenario file says it.
    pub fn expectation(&self, t_ms: u64, line: usize, met: bool, expected: &str, saw: &str) {
        self.push(Record::Expect(Expect {
            t_ms,
            line,
            met,
            expected: expected.to_string(),
            saw: saw.to_string(),
        }));
    }

    /// An impostor claiming slot `claimed` dialled `server` and was `result` (`refused`,
    /// `welcomed` or `unanswered`); `reason` is the server's refusal or why there was no
    /// answer; `term` is the term of the forgeries it then sent, if welcomed (an addition
    /// to DESIGN §6.4).
    pub fn impostor(
        &self,
        claimed: ServerId,
        server: ServerId,
        result: &str,
        reason: Option<&str>,
        term: Option<u64>,
    ) {
        self.push(Record::Impostor(Impostor {
            t_ms: now_ms(),
            claimed: claimed.get(),
            server: server.get(),
            result: result.to_string(),
            reason: reason.map(str::to_string),
            term,
        }));
    }

    /// A server's role changed (`active`, `standby` or `down`).
    /// Client `id` is called `name` in the history.
    pub fn name_client(&self, id: hal_core::protocol::ClientId, name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.0, name.to_string());
    }

    /// The history's name of `client` (its id in hex if it was never named).
    fn name_of(&self, client: hal_core::protocol::ClientId) -> String {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client.0)
            .cloned()
            .unwrap_or_else(|| format!("{:016x}", client.0))
    }

    /// Server `server` applied a grant: request `seq` of client `client` got `handle`.
    pub fn applied_grant(
        &self,
        t_ms: u64,
        server: ServerId,
        client: hal_core::protocol::ClientId,
        seq: u64,
        handle: &str,
    ) {
        let name = self.name_of(client);
        self.push(Record::Applied(Applied {
            t_ms,
            server: server.get(),
            client: name,
            req: seq,
            handle: handle.to_string(),
        }));
    }

    /// Server `server` applied `change` to its seat table at log index `index`: the
    /// journal's `seat` record, with the client's name (the queue-order checker follows
    /// each server's seats and queues by them).
    pub fn seat(&self, t_ms: u64, server: ServerId, index: u64, change: &SeatChange) {
        let client = match change {
            SeatChange::Granted { client, .. }
            | SeatChange::Released { client, .. }
            | SeatChange::Expired { client, .. }
            | SeatChange::Removed { client, .. }
            | SeatChange::Queued { client, .. }
            | SeatChange::LeftQueue { client, .. } => *client,
        };
        let applied = hal_net::journal::SeatApplied {
            server,
            index,
            change,
        };
        let record = applied.owned_record(t_ms, self.name_of(client));
        self.push(Record::Seat(record));
    }

    /// Server `server` switched to the license `text` in force from log index `index`.
    pub fn license(&self, t_ms: u64, server: ServerId, index: u64, by: &str, text: &str) {
        let record = hal_core::record::LicenseRecord::new(t_ms, server.get(), index, by, text);
        self.push(Record::License(record));
    }

    /// Server `server` applied the options file `text`, in force from log index `index`.
    pub fn options(&self, t_ms: u64, server: ServerId, index: u64, by: &str, text: &str) {
        self.push(Record::Options(hal_core::record::OptionsRecord {
            t_ms,
            server: server.get(),
            index,
            by: by.to_string(),
            text: text.to_string(),
        }));
    }

    /// Server `server` applied an administrator's removal of `client`'s seat `handle`.
    pub fn applied_removal(
        &self,
        t_ms: u64,
        server: ServerId,
        client: hal_core::protocol::ClientId,
        handle: &str,
        by: &str,
    ) {
        let name = self.name_of(client);
        self.push(Record::Removed(hal_core::record::RemovedRecord {
            t_ms,
            server: server.get(),
            client: name,
            handle: handle.to_string(),
            by: by.to_string(),
        }));
    }

    /// Server `server`'s applied state at log index `index` has digest `digest`: taken into
    /// a snapshot of its own, or `installed` from a peer's.
    pub fn checkpoint(
        &self,
        t_ms: u64,
        server: ServerId,
        index: u64,
        digest: u64,
        installed: bool,
    ) {
        let snapshot = if installed {
            SnapshotHow::Installed
        } else {
            SnapshotHow::Taken
        };
        self.push(Record::Checkpoint(Checkpoint {
            t_ms,
            server: server.get(),
            index,
            digest: format!("{digest:016x}"),
            snapshot,
        }));
    }

    pub fn role(&self, t_ms: u64, server: ServerId, role: RoleName, term: u64) {
        self.push(Record::Role(RoleRecord {
            t_ms,
            server: server.get(),
            role,
            term,
        }));
    }

    /// A client sent `request` to `server` (`None` while it does not know which server
    /// its path entry is).
    pub fn request(&self, client: &str, server: Option<ServerId>, request: &ClientRequest) {
        let (op, feature, handle) = op_fields(&request.op);
        self.push(Record::Request(RequestRecord {
            t_ms: now_ms(),
            client: client.to_string(),
            req: request.seq.0,
            op,
            server: server.map(ServerId::get),
            feature,
            handle,
        }));
    }

    /// A client got `reply`.
    pub fn reply(&self, client: &str, reply: &ServerReply) {
        let answer = match &reply.result {
            ReplyResult::Granted {
                handle,
                lease_ms,
                borrow_end,
                granted_by,
            } => Answer::Granted(hal_core::record::Grant {
                handle: handle.to_string(),
                lease_ms: *lease_ms,
                granted_by: granted_by.get(),
                borrow_end_ms: borrow_end.map(|end| end.0),
            }),
            ReplyResult::Released { handle } => Answer::Released {
                handle: handle.to_string(),
            },
            // The checkers follow each lease by `held` (and the no-lost-seat checker
            // judges `unknown`): without them, no heartbeat extends a lease.
            ReplyResult::HeartbeatAck {
                lease_ms,
                held,
                unknown,
                removed,
            } => Answer::Heartbeat(HeartbeatAnswer {
                lease_ms: *lease_ms,
                held: held.iter().map(ToString::to_string).collect(),
                unknown: unknown.iter().map(ToString::to_string).collect(),
                removed: removed.iter().map(ToString::to_string).collect(),
            }),
            ReplyResult::Denied(Denial::UnknownHandle) => Answer::UnknownHandle {
                handle: None,
                reason: Denial::UnknownHandle.name().to_string(),
            },
            ReplyResult::Denied(denial) => Answer::Denied {
                reason: denial.name().to_string(),
            },
            ReplyResult::Queued { position, .. } => Answer::Queued {
                position: *position,
            },
            ReplyResult::LeftQueue => Answer::LeftQueue,
            // An administrator's answer, which no license client gets.
            ReplyResult::Removed { .. }
            | ReplyResult::LicensePushed { .. }
            | ReplyResult::LicenseRefused { .. }
            | ReplyResult::OptionsPushed { .. }
            | ReplyResult::OptionsRefused { .. } => return,
        };
        let record = ReplyRecord {
            t_ms: now_ms(),
            client: client.to_string(),
            req: reply.seq.0,
            server: reply.from.get(),
            answer,
        };
        self.push(Record::Reply(record));
    }

    /// Something the client library reported: `lost`, `borrow_end` or `stopped`.
    pub fn client(&self, client: &str, event: ClientEventRecord) {
        self.push(Record::Client(ClientRecord {
            t_ms: now_ms(),
            client: client.to_string(),
            event,
        }));
    }

    /// The client's application was told "denied" for request `req` after `attempts`
    /// sends (an addition to DESIGN §6.4, for the liveness check).
    fn denied(&self, client: &str, req: u64, reason: &str, attempts: u32) {
        let reason = reason.to_string();
        self.client(
            client,
            ClientEventRecord::Denied {
                req,
                reason,
                attempts,
            },
        );
    }

    /// Records `answered`, the answer to the application's request `seq` (for
    /// `feature`): granted, denied, done, or of unknown outcome.
    pub fn answer(&self, client: &str, seq: RequestSeq, feature: &str, answered: &Answered) {
        match answered {
            Answered::Granted {
                handle,
                server,
                borrow_end,
                attempts,
                ..
            } => {
                let grant = Grant {
                    feature,
                    handle: handle.to_string(),
                    server: *server,
                    borrow_end_ms: borrow_end.map(|e| e.0),
                    attempts: *attempts,
                };
                self.granted(client, seq.0, grant);
            }
            Answered::Released { handle, attempts } => {
                self.released(client, seq.0, handle.to_string(), *attempts);
            }
            Answered::Denied { reason, attempts } => {
                self.denied(client, seq.0, reason.name(), *attempts);
            }
            Answered::Unknown {
                attempts,
                last_denial,
            } => {
                let reason = last_denial.as_ref().map(Denial::name);
                self.unknown(client, seq.0, *attempts, reason);
            }
        }
    }

    /// The client's application was told no server answered request `req` in time and
    /// it may have taken effect, after `attempts` sends (an addition to DESIGN §6.4).
    /// `last_denial`: the last refusal a server gave, if any.
    fn unknown(&self, client: &str, req: u64, attempts: u32, last_denial: Option<&str>) {
        let reason = last_denial.map(str::to_string);
        self.client(
            client,
            ClientEventRecord::Unknown {
                req,
                attempts,
                reason,
            },
        );
    }

    /// The client settled request `req`, given up earlier with its outcome unknown:
    /// `handle` is the seat it had produced (or kept), now released.
    pub fn resolved(&self, client: &str, req: u64, handle: Option<String>) {
        self.client(client, ClientEventRecord::Resolved { req, handle });
    }

    /// The client's application was told its checkin or return `req` of `handle` was
    /// done, after `attempts` sends (an addition to DESIGN §6.4).
    fn released(&self, client: &str, req: u64, handle: String, attempts: u32) {
        let event = ClientEventRecord::Released {
            req,
            handle,
            attempts,
        };
        self.client(client, event);
    }

    /// The seat table of the active server `server`, read by the harness once the run
    /// has been calm for a while: each seat's handle and holder (for invariant 7).
    pub fn audit(&self, server: ServerId, holders: &[(String, String)]) {
        let holders = holders
            .iter()
            .map(|(handle, user)| Holder {
                handle: handle.clone(),
                user: user.clone(),
            })
            .collect();
        self.push(Record::Audit(Audit {
            t_ms: now_ms(),
            server: server.get(),
            holders,
        }));
    }

    /// The end of the run: checkers that judge what did not happen (liveness) get a last
    /// look, as if a record came at `t_ms`.
    pub fn end(&self, t_ms: u64) {
        self.push(Record::End(End { t_ms }));
    }

    /// The client's application was told "granted" for request `req` after `attempts`
    /// sends (an addition to DESIGN §6.4: a reply on the wire may come after the client
    /// stopped waiting, so the seats a client holds are counted from this record).
    fn granted(&self, client: &str, req: u64, grant: Grant<'_>) {
        let Grant {
            feature,
            handle,
            server,
            borrow_end_ms,
            attempts,
        } = grant;
        let event = ClientEventRecord::Granted {
            req,
            feature: feature.to_string(),
            handle,
            server: server.get(),
            attempts,
            borrow_end_ms,
        };
        self.client(client, event);
    }
}

/// A request's operation, feature and handle, as its record names them.
fn op_fields(op: &Op) -> (OpName, Option<String>, Option<String>) {
    match op {
        Op::Checkout { feature, .. } => (OpName::Checkout, Some(feature.to_string()), None),
        Op::Wait { feature, .. } => (OpName::Wait, Some(feature.to_string()), None),
        Op::StopWaiting => (OpName::StopWaiting, None, None),
        Op::Borrow { feature, .. } => (OpName::Borrow, Some(feature.to_string()), None),
        Op::Checkin { handle } => (OpName::Checkin, None, Some(handle.to_string())),
        Op::Return { handle } => (OpName::Return, None, Some(handle.to_string())),
        Op::Heartbeat { .. } => (OpName::Heartbeat, None, None),
        Op::Remove { .. } => (OpName::Remove, None, None),
        Op::PushLicense { .. } => (OpName::PushLicense, None, None),
        Op::PushOptions { .. } => (OpName::PushOptions, None, None),
    }
}
