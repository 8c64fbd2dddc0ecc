//! What a node writes into its journal ([`crate::journal`]): hal-core's events and the
//! answers it sends, as history records or the facts the writer builds them from.
//! Everything here is cheap to skip: the node calls it only while its journal is on.

use std::collections::BTreeMap;

use hal_core::ServerId;
use hal_core::protocol::{ClientId, Op, ReplyResult, RequestSeq, ServerReply};
use hal_core::record::{Checkpoint, Record, Recovery, RoleRecord, SnapshotHow, Start};
use hal_core::server::{Durable, ServerEvent};
use hal_core::time::{Now, Time};

use crate::journal::{Answered, Item, Journal, SeatApplied};

/// The most requests remembered while they wait for their answer; past it the oldest
/// half is forgotten (their answers are journaled without the request's details).
const PENDING_MAX: usize = 65_536;

/// A request waiting for its answer: what it asks, when it came (the first time, for a
/// retry) and how many requests this server had received before it.
#[derive(Debug)]
struct Asked {
    op: Op,
    at: Time,
    received: u64,
}

/// The requests waiting for an answer, for the `served` record.
#[derive(Debug, Default)]
pub(super) struct Pending {
    asked: BTreeMap<(ClientId, RequestSeq), Asked>,
    /// Requests received since the server started (a retry counts again).
    received: u64,
}

impl Pending {
    pub(super) fn asked(&mut self, client: ClientId, seq: RequestSeq, op: &Op, at: Time) {
        if self.asked.len() >= PENDING_MAX {
            let keep = self.asked.split_off(&self.middle());
            self.asked = keep;
        }
        let received = self.received;
        self.received = self.received.saturating_add(1);
        self.asked.entry((client, seq)).or_insert_with(|| Asked {
            op: op.clone(),
            at,
            received,
        });
    }

    fn middle(&self) -> (ClientId, RequestSeq) {
        self.asked
            .keys()
            .nth(self.asked.len() / 2)
            .copied()
            .unwrap_or((ClientId(0), RequestSeq(0)))
    }

    /// Journals the answer `reply` at `now` into `journal`, with what its request asked
    /// (a heartbeat answered "ok" only when those are journaled).
    pub(super) fn answered(
        &mut self,
        me: ServerId,
        reply: &ServerReply,
        journal: &Journal,
        now: Now,
    ) {
        let asked = self.asked.remove(&(reply.client, reply.seq));
        // A waiting checkout asks every second or so: its answer "still queued" is kept
        // like a heartbeat's "ok" (its joining the queue is a `seat` record).
        let routine = match &reply.result {
            ReplyResult::HeartbeatAck { unknown, .. } => unknown.is_empty(),
            ReplyResult::Queued { .. } => true,
            _ => false,
        };
        if routine && !journal.heartbeats() {
            return;
        }
        let answered = Answered {
            server: me,
            reply,
            op: asked.as_ref().map(|asked| &asked.op),
            waited_ms: asked
                .as_ref()
                .map(|asked| now.mono.0.saturating_sub(asked.at.0)),
            received: asked.as_ref().map(|asked| asked.received),
        };
        journal.record(now, Item::Served(answered));
    }
}

/// What the journal keeps of a server event, if anything.
pub(super) fn event_item(me: ServerId, event: &ServerEvent) -> Option<Item<'_>> {
    let server = me.get();
    Some(match event {
        ServerEvent::RoleChanged { role, term } => Item::Record(Record::Role(RoleRecord {
            t_ms: 0,
            server,
            role: (*role).into(),
            term: term.0,
        })),
        ServerEvent::SeatChanged { index, change } => Item::Seat(SeatApplied {
            server: me,
            index: index.0,
            change,
        }),
        ServerEvent::Checkpoint {
            index,
            digest,
            installed,
        } => Item::Record(Record::Checkpoint(Checkpoint {
            t_ms: 0,
            server,
            index: index.0,
            digest: format!("{digest:016x}"),
            snapshot: if *installed {
                SnapshotHow::Installed
            } else {
                SnapshotHow::Taken
            },
        })),
        // At a start too: the journal's meta line has the COUNTs of the license file,
        // which may be older than the license in force.
        ServerEvent::LicenseChanged {
            index, text, by, ..
        } => Item::Record(Record::License(hal_core::record::LicenseRecord::new(
            0, server, index.0, by, text,
        ))),
        ServerEvent::OptionsChanged { index, text, by } => {
            Item::Record(Record::Options(hal_core::record::OptionsRecord {
                t_ms: 0,
                server,
                index: index.0,
                by: by.to_string(),
                text: text.to_string(),
            }))
        }
        _ => return None,
    })
}

/// The `start` record: what the server recovered from its data directory.
pub(super) fn start_record(me: ServerId, durable: &Durable) -> Record {
    let snapshot_index = durable.snapshot.as_ref().map(|s| s.last_index.0);
    let last_index = durable
        .entries
        .len()
        .try_into()
        .unwrap_or(u64::MAX)
        .saturating_add(snapshot_index.unwrap_or(0));
    Record::Start(Start {
        t_ms: 0,
        server: me.get(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        recovered: Recovery {
            term: durable.term.0,
            snapshot_index,
            last_index,
            notes: Vec::new(),
        },
    })
}
