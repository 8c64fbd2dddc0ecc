//! What a node writes into its journal ([`crate::journal`]): hal-core's events and the
//! answers it sends, as history records. Everything here is cheap to skip: the node calls
//! it only while its journal is on.

use std::collections::BTreeMap;

use hal_core::ServerId;
use hal_core::protocol::{ClientId, Op, ReplyResult, RequestSeq, ServerReply};
use hal_core::record::{
    Checkpoint, OpName, Record, Recovery, ResultName, RoleRecord, SeatChangeName, SeatRecord,
    Served, SnapshotHow, Start,
};
use hal_core::server::{Durable, SeatChange, ServerEvent};
use hal_core::time::Time;

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

    /// The `served` record of `reply`, or `None` for a heartbeat answered "ok" when those
    /// are not journaled.
    pub(super) fn answered(
        &mut self,
        me: ServerId,
        reply: &ServerReply,
        heartbeats: bool,
        now: Time,
    ) -> Option<Record> {
        let (op, asked) = match self.asked.remove(&(reply.client, reply.seq)) {
            Some(Asked { op, at, received }) => (Some(op), Some((at, received))),
            None => (None, None),
        };
        let mut served = Served {
            t_ms: 0,
            server: me.get(),
            client: format!("{:016x}", reply.client.0),
            req: reply.seq.0,
            op: OpName::Heartbeat,
            feature: None,
            user: None,
            host: None,
            handle: None,
            result: ResultName::Ok,
            reason: None,
            granted_by: None,
            borrow_end_ms: None,
            waited_ms: asked.map(|(at, _)| now.0.saturating_sub(at.0)),
            received: asked.map(|(_, received)| received),
        };
        match &op {
            Some(Op::Checkout {
                feature,
                user,
                host,
            }) => {
                served.op = OpName::Checkout;
                served.feature = Some(feature.to_string());
                served.user = Some(user.to_string());
                served.host = Some(host.to_string());
            }
            Some(Op::Borrow {
                feature,
                user,
                host,
                ..
            }) => {
                served.op = OpName::Borrow;
                served.feature = Some(feature.to_string());
                served.user = Some(user.to_string());
                served.host = Some(host.to_string());
            }
            Some(Op::Checkin { handle }) => {
                served.op = OpName::Checkin;
                served.handle = Some(handle.to_string());
            }
            Some(Op::Return { handle }) => {
                served.op = OpName::Return;
                served.handle = Some(handle.to_string());
            }
            Some(Op::Heartbeat { .. }) | None => {}
        }
        match &reply.result {
            ReplyResult::Granted {
                handle,
                borrow_end,
                granted_by,
                ..
            } => {
                served.result = ResultName::Granted;
                served.handle = Some(handle.to_string());
                served.granted_by = Some(granted_by.get());
                served.borrow_end_ms = borrow_end.map(|end| end.0);
                if op.is_none() {
                    served.op = if borrow_end.is_some() {
                        OpName::Borrow
                    } else {
                        OpName::Checkout
                    };
                }
            }
            ReplyResult::Released { handle } => served.handle = Some(handle.to_string()),
            ReplyResult::HeartbeatAck { unknown, .. } => {
                served.op = OpName::Heartbeat;
                if unknown.is_empty() {
                    if !heartbeats {
                        return None;
                    }
                } else {
                    served.result = ResultName::UnknownHandle;
                    served.handle = unknown.first().map(ToString::to_string);
                }
            }
            ReplyResult::Denied(denial) => {
                served.result = if matches!(denial, hal_core::protocol::Denial::UnknownHandle) {
                    ResultName::UnknownHandle
                } else {
                    ResultName::Denied
                };
                served.reason = Some(denial.name().to_string());
            }
        }
        Some(Record::Served(served))
    }
}

/// The record of a server event, if the journal keeps one.
pub(super) fn event_record(me: ServerId, event: &ServerEvent) -> Option<Record> {
    let server = me.get();
    Some(match event {
        ServerEvent::RoleChanged { role, term } => Record::Role(RoleRecord {
            t_ms: 0,
            server,
            role: (*role).into(),
            term: term.0,
        }),
        ServerEvent::SeatChanged { index, change } => {
            Record::Seat(seat_record(server, index.0, change))
        }
        ServerEvent::Checkpoint {
            index,
            digest,
            installed,
        } => Record::Checkpoint(Checkpoint {
            t_ms: 0,
            server,
            index: index.0,
            digest: format!("{digest:016x}"),
            snapshot: if *installed {
                SnapshotHow::Installed
            } else {
                SnapshotHow::Taken
            },
        }),
        _ => return None,
    })
}

fn seat_record(server: u8, index: u64, change: &SeatChange) -> SeatRecord {
    let blank = |change, handle: String, feature: &str, client: ClientId| SeatRecord {
        t_ms: 0,
        server,
        index,
        change,
        handle,
        feature: feature.to_string(),
        client: format!("{:016x}", client.0),
        req: None,
        user: None,
        host: None,
        by: None,
        borrow_end_ms: None,
    };
    match change {
        SeatChange::Granted {
            client,
            seq,
            handle,
            feature,
            user,
            host,
            borrow_end,
            by,
        } => {
            let name = if borrow_end.is_some() {
                SeatChangeName::Borrowed
            } else {
                SeatChangeName::Granted
            };
            SeatRecord {
                req: Some(seq.0),
                user: Some(user.to_string()),
                host: Some(host.to_string()),
                by: Some(by.get()),
                borrow_end_ms: borrow_end.map(|end| end.0),
                ..blank(name, handle.to_string(), feature, *client)
            }
        }
        SeatChange::Released {
            client,
            seq,
            handle,
            feature,
            borrowed,
        } => {
            let name = if *borrowed {
                SeatChangeName::Returned
            } else {
                SeatChangeName::Released
            };
            SeatRecord {
                req: Some(seq.0),
                ..blank(name, handle.to_string(), feature, *client)
            }
        }
        SeatChange::Expired {
            client,
            handle,
            feature,
            ..
        } => blank(
            SeatChangeName::Expired,
            handle.to_string(),
            feature,
            *client,
        ),
    }
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
