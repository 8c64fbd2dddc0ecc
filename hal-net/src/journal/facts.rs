//! What a node hands its journal ([`Item`]) and how an item becomes a JSON line.
//!
//! An item is a finished record, or the facts of one of the two records a busy server
//! writes for every request (`served` and `seat`), borrowed from what the node holds
//! anyway. [`write_line`] writes those two from borrowed names and numbers formatted on
//! the stack, so the lines cost the node no allocation; the bytes are those of the
//! owned [`Entry`] (a test holds them equal for every record).

use std::fmt::Write as _;

use hal_core::ServerId;
use hal_core::protocol::{Denial, Op, ReplyResult, ServerReply};
use hal_core::record::{Entry, OpName, Record, ResultName, SeatChangeName, SeatRecord, Served};
use hal_core::server::SeatChange;
use hal_core::time::Now;
use serde::Serialize;

/// One thing to journal.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A record, written as it is.
    Record(Record),
    /// A client's request answered: the `served` record.
    Served(Answered<'a>),
    /// A change applied to the seat table: the `seat` record.
    Seat(SeatApplied<'a>),
}

impl From<Record> for Item<'_> {
    fn from(record: Record) -> Self {
        Item::Record(record)
    }
}

/// A request answered: the reply, and what the request asked if the server still knew.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    pub server: ServerId,
    pub reply: &'a ServerReply,
    /// The request, if it was seen (a reply to a request received before a restart, or
    /// forgotten past the pending bound, has none).
    pub op: Option<&'a Op>,
    /// How long the request waited on this server for its answer (monotonic ms).
    pub waited_ms: Option<u64>,
    /// How many client requests this server had received before this one.
    pub received: Option<u64>,
}

/// A change a server applied to its seat table, at the log index that decided it.
#[derive(Debug, Clone, Copy)]
pub struct SeatApplied<'a> {
    pub server: ServerId,
    pub index: u64,
    pub change: &'a SeatChange,
}

/// Writes `item`, journaled at `now`, as one line (with its `\n`) at the end of `out`:
/// its record with `t_ms` the wall clock and `mono_ms` the monotonic clock. On an error
/// `out` is as it was.
pub fn write_line(out: &mut Vec<u8>, item: &Item<'_>, now: Now) -> serde_json::Result<()> {
    let start = out.len();
    let written = match item {
        Item::Record(record) => {
            let mut record = record.clone();
            record.set_t_ms(now.wall.0);
            let entry = Entry {
                record,
                mono_ms: Some(now.mono.0),
            };
            serde_json::to_writer(&mut *out, &entry)
        }
        Item::Served(answered) => {
            let mut digits = Digits::default();
            let served = answered.record(now.wall.0, &mut digits);
            tagged(out, "served", &served, now.mono.0)
        }
        Item::Seat(applied) => {
            let mut digits = Digits::default();
            let seat = applied.record(now.wall.0, &mut digits);
            tagged(out, "seat", &seat, now.mono.0)
        }
    };
    match written {
        Ok(()) => {
            out.push(b'\n');
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The record of `item` as a reader gets it back (the simulator's journals).
pub fn entry(item: &Item<'_>, now: Now) -> serde_json::Result<Entry> {
    let mut line = Vec::with_capacity(256);
    write_line(&mut line, item, now)?;
    serde_json::from_slice(&line)
}

/// Writes `record` as [`Entry`] writes it in the variant `kind`:
/// `{"kind":…,<the record's fields>,"mono_ms":…}`.
fn tagged<T: Serialize>(
    out: &mut Vec<u8>,
    kind: &str,
    record: &T,
    mono_ms: u64,
) -> serde_json::Result<()> {
    let start = out.len();
    out.extend_from_slice(b"{\"kind\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",");
    let body = out.len();
    serde_json::to_writer(&mut *out, record)?;
    // The record is `{…}`: its fields go on after the tag, and `mono_ms` after them.
    if out.get(body) != Some(&b'{') || out.last() != Some(&b'}') || out.len() - body < 3 {
        out.truncate(start);
        return Err(serde::ser::Error::custom(
            "a journal record is not a JSON object with fields",
        ));
    }
    out.remove(body);
    out.pop();
    out.extend_from_slice(b",\"mono_ms\":");
    serde_json::to_writer(&mut *out, &mono_ms)?;
    out.push(b'}');
    Ok(())
}

/// A short string on the stack: a client id in hexadecimal, a handle.
#[derive(Debug, Clone, Copy, Default)]
struct Short {
    bytes: [u8; 24],
    len: usize,
}

impl Short {
    fn as_str(&self) -> &str {
        // Only whole `str`s are written in (see `write_str`).
        std::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The numbers a record writes as strings, formatted on the stack.
#[derive(Debug, Default)]
struct Digits {
    client: Short,
    handle: Short,
}

impl Answered<'_> {
    /// The `served` record at `t_ms`, borrowing its names.
    fn record<'d>(&'d self, t_ms: u64, digits: &'d mut Digits) -> Served<&'d str> {
        let Digits { client, handle } = digits;
        let _ = write!(client, "{:016x}", self.reply.client.0);
        let mut served = Served {
            t_ms,
            server: self.server.get(),
            client: client.as_str(),
            req: self.reply.seq.0,
            op: OpName::Heartbeat,
            feature: None,
            user: None,
            host: None,
            handle: None,
            result: ResultName::Ok,
            reason: None,
            granted_by: None,
            borrow_end_ms: None,
            waited_ms: self.waited_ms,
            received: self.received,
        };
        // The seat the answer names: the request's, or the reply's when it names one.
        let mut seat = None;
        match self.op {
            Some(Op::Checkout {
                feature,
                user,
                host,
            }) => {
                served.op = OpName::Checkout;
                served.feature = Some(&**feature);
                served.user = Some(&**user);
                served.host = Some(&**host);
            }
            Some(Op::Wait {
                feature,
                user,
                host,
            }) => {
                served.op = OpName::Wait;
                served.feature = Some(&**feature);
                served.user = Some(&**user);
                served.host = Some(&**host);
            }
            Some(Op::StopWaiting) => served.op = OpName::StopWaiting,
            Some(Op::Borrow {
                feature,
                user,
                host,
                ..
            }) => {
                served.op = OpName::Borrow;
                served.feature = Some(&**feature);
                served.user = Some(&**user);
                served.host = Some(&**host);
            }
            Some(Op::Checkin { handle: h }) => {
                served.op = OpName::Checkin;
                seat = Some(h);
            }
            Some(Op::Return { handle: h }) => {
                served.op = OpName::Return;
                seat = Some(h);
            }
            Some(Op::Remove { .. }) => served.op = OpName::Remove,
            Some(Op::PushLicense { .. }) => served.op = OpName::PushLicense,
            Some(Op::PushOptions { .. }) => served.op = OpName::PushOptions,
            Some(Op::Heartbeat { .. }) | None => {}
        }
        match &self.reply.result {
            ReplyResult::Granted {
                handle: h,
                borrow_end,
                granted_by,
                ..
            } => {
                served.result = ResultName::Granted;
                seat = Some(h);
                served.granted_by = Some(granted_by.get());
                served.borrow_end_ms = borrow_end.map(|end| end.0);
                if self.op.is_none() {
                    served.op = if borrow_end.is_some() {
                        OpName::Borrow
                    } else {
                        OpName::Checkout
                    };
                }
            }
            ReplyResult::Released { handle: h } => {
                seat = Some(h);
            }
            ReplyResult::Queued { .. } => {
                served.result = ResultName::Queued;
                if self.op.is_none() {
                    served.op = OpName::Wait;
                }
            }
            ReplyResult::LeftQueue => {
                served.result = ResultName::LeftQueue;
                if self.op.is_none() {
                    served.op = OpName::StopWaiting;
                }
            }
            ReplyResult::Removed { handles } => {
                served.op = OpName::Remove;
                seat = handles.first();
            }
            ReplyResult::LicensePushed { .. } => served.op = OpName::PushLicense,
            ReplyResult::OptionsPushed { .. } => served.op = OpName::PushOptions,
            ReplyResult::OptionsRefused { .. } => {
                served.op = OpName::PushOptions;
                served.result = ResultName::Denied;
                served.reason = Some("options_refused");
            }
            ReplyResult::LicenseRefused { .. } => {
                served.op = OpName::PushLicense;
                served.result = ResultName::Denied;
                served.reason = Some("license_refused");
            }
            ReplyResult::HeartbeatAck { unknown, .. } => {
                served.op = OpName::Heartbeat;
                if let Some(first) = unknown.first() {
                    served.result = ResultName::UnknownHandle;
                    seat = Some(first);
                }
            }
            ReplyResult::Denied(denial) => {
                served.result = if matches!(denial, Denial::UnknownHandle) {
                    ResultName::UnknownHandle
                } else {
                    ResultName::Denied
                };
                served.reason = Some(denial.name());
            }
        }
        if let Some(seat) = seat {
            let _ = write!(handle, "{seat}");
            served.handle = Some(handle.as_str());
        }
        served
    }
}

impl SeatApplied<'_> {
    /// The `seat` record at `t_ms`, owning its names, with `client` naming the holder
    /// (a simulator's history names clients, a journal gives their ids).
    pub fn owned_record(&self, t_ms: u64, client: String) -> SeatRecord {
        let mut digits = Digits::default();
        let r = self.record(t_ms, &mut digits);
        SeatRecord {
            t_ms: r.t_ms,
            server: r.server,
            index: r.index,
            change: r.change,
            handle: r.handle.to_string(),
            feature: r.feature.to_string(),
            client,
            req: r.req,
            user: r.user.map(str::to_string),
            host: r.host.map(str::to_string),
            by: r.by,
            borrow_end_ms: r.borrow_end_ms,
            removed_by: r.removed_by.map(str::to_string),
        }
    }

    /// The `seat` record at `t_ms`, borrowing its names.
    fn record<'d>(&'d self, t_ms: u64, digits: &'d mut Digits) -> SeatRecord<&'d str> {
        let (client, handle, feature) = match self.change {
            SeatChange::Granted {
                client,
                handle,
                feature,
                ..
            }
            | SeatChange::Released {
                client,
                handle,
                feature,
                ..
            }
            | SeatChange::Expired {
                client,
                handle,
                feature,
                ..
            }
            | SeatChange::Removed {
                client,
                handle,
                feature,
                ..
            }
            | SeatChange::Queued {
                client,
                id: handle,
                feature,
                ..
            }
            | SeatChange::LeftQueue {
                client,
                id: handle,
                feature,
                ..
            } => (client, handle, feature),
        };
        let Digits {
            client: client_digits,
            handle: handle_digits,
        } = digits;
        let _ = write!(client_digits, "{:016x}", client.0);
        let _ = write!(handle_digits, "{handle}");
        let mut seat = SeatRecord {
            t_ms,
            server: self.server.get(),
            index: self.index,
            change: SeatChangeName::Expired,
            handle: handle_digits.as_str(),
            feature: &**feature,
            client: client_digits.as_str(),
            req: None,
            user: None,
            host: None,
            by: None,
            borrow_end_ms: None,
            removed_by: None,
        };
        match self.change {
            SeatChange::Granted {
                seq,
                user,
                host,
                borrow_end,
                by,
                ..
            } => {
                seat.change = if borrow_end.is_some() {
                    SeatChangeName::Borrowed
                } else {
                    SeatChangeName::Granted
                };
                seat.req = Some(seq.0);
                seat.user = Some(&**user);
                seat.host = Some(&**host);
                seat.by = Some(by.get());
                seat.borrow_end_ms = borrow_end.map(|end| end.0);
            }
            SeatChange::Released { seq, borrowed, .. } => {
                seat.change = if *borrowed {
                    SeatChangeName::Returned
                } else {
                    SeatChangeName::Released
                };
                seat.req = Some(seq.0);
            }
            SeatChange::Expired { .. } => {}
            SeatChange::Removed { by, .. } => {
                seat.change = SeatChangeName::Removed;
                seat.removed_by = Some(&**by);
            }
            SeatChange::Queued { seq, .. } => {
                seat.change = SeatChangeName::Queued;
                seat.req = Some(seq.0);
            }
            SeatChange::LeftQueue { seq, .. } => {
                seat.change = SeatChangeName::LeftQueue;
                seat.req = Some(seq.0);
            }
        }
        seat
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hal_core::protocol::{ClientId, Handle, RequestSeq};
    use hal_core::record::LinkRecord;
    use hal_core::time::{Time, WallTime};

    use super::*;

    fn id(n: u8) -> ServerId {
        ServerId::new(n).unwrap()
    }

    fn now() -> Now {
        Now {
            mono: Time(1_242),
            wall: WallTime(1_796_620_051_215),
        }
    }

    fn reply(result: ReplyResult) -> ServerReply {
        ServerReply {
            client: ClientId(0x0021_4500_3701),
            seq: RequestSeq(62),
            from: id(1),
            result,
        }
    }

    fn checkout() -> Op {
        Op::Checkout {
            feature: Arc::from("cad"),
            user: Arc::from("ann \"the\" engineer"),
            host: Arc::from("wks-7\u{e9}"),
        }
    }

    /// The line of `item`, checked to be the bytes its record writes when read back and
    /// written again as an owned [`Entry`].
    fn line(item: &Item<'_>) -> Entry {
        let mut out = b"before\n".to_vec();
        write_line(&mut out, item, now()).unwrap();
        let line = out.strip_prefix(b"before\n").unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let entry: Entry = serde_json::from_slice(line).unwrap();
        let mut again = serde_json::to_vec(&entry).unwrap();
        again.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(line),
            String::from_utf8_lossy(&again)
        );
        assert_eq!(entry.mono_ms, Some(1_242));
        assert_eq!(entry.record.t_ms(), Some(1_796_620_051_215));
        entry
    }

    fn served(item: &Item<'_>) -> Served {
        match line(item).record {
            Record::Served(served) => served,
            other => panic!("{other:?}"),
        }
    }

    fn seat(change: &SeatChange) -> SeatRecord {
        let item = Item::Seat(SeatApplied {
            server: id(2),
            index: 998,
            change,
        });
        match line(&item).record {
            Record::Seat(seat) => seat,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_served_line_holds_the_request_and_its_answer() {
        let op = checkout();
        let granted = reply(ReplyResult::Granted {
            handle: Handle(982),
            lease_ms: 120_000,
            borrow_end: None,
            granted_by: id(1),
        });
        let answered = Answered {
            server: id(1),
            reply: &granted,
            op: Some(&op),
            waited_ms: Some(3),
            received: Some(996),
        };
        let s = served(&Item::Served(answered));
        assert_eq!(s.server, 1);
        assert_eq!(s.client, "0000002145003701");
        assert_eq!(s.req, 62);
        assert_eq!((s.op, s.result), (OpName::Checkout, ResultName::Granted));
        assert_eq!(s.feature.as_deref(), Some("cad"));
        assert_eq!(s.user.as_deref(), Some("ann \"the\" engineer"));
        assert_eq!(s.host.as_deref(), Some("wks-7\u{e9}"));
        assert_eq!(s.handle.as_deref(), Some("h982"));
        assert_eq!(s.granted_by, Some(1));
        assert_eq!((s.waited_ms, s.received), (Some(3), Some(996)));
        assert_eq!(s.reason, None);

        // Without the request (answered after a restart): the grant says what it was.
        let borrowed = reply(ReplyResult::Granted {
            handle: Handle(7),
            lease_ms: 0,
            borrow_end: Some(WallTime(5_000)),
            granted_by: id(1),
        });
        let s = served(&Item::Served(Answered {
            op: None,
            reply: &borrowed,
            waited_ms: None,
            received: None,
            ..answered
        }));
        assert_eq!((s.op, s.borrow_end_ms), (OpName::Borrow, Some(5_000)));
        assert_eq!((s.feature, s.waited_ms, s.received), (None, None, None));

        // A denial names its reason; a checkin keeps its handle.
        let checkin = Op::Checkin { handle: Handle(41) };
        let denied = reply(ReplyResult::Denied(Denial::UnknownHandle));
        let s = served(&Item::Served(Answered {
            op: Some(&checkin),
            reply: &denied,
            ..answered
        }));
        assert_eq!(
            (s.op, s.result),
            (OpName::Checkin, ResultName::UnknownHandle)
        );
        assert_eq!(s.handle.as_deref(), Some("h41"));
        assert_eq!(s.reason.as_deref(), Some("unknown_handle"));
        let full = reply(ReplyResult::Denied(Denial::AllInUse { used: 4, count: 4 }));
        let s = served(&Item::Served(Answered {
            reply: &full,
            ..answered
        }));
        assert_eq!((s.result, s.handle), (ResultName::Denied, None));
        assert_eq!(s.reason.as_deref(), Some("all_in_use"));

        // A heartbeat naming a seat the server does not know.
        let beat = Op::Heartbeat {
            handles: vec![Handle(9)],
        };
        let ack = reply(ReplyResult::HeartbeatAck {
            lease_ms: 120_000,
            held: Vec::new(),
            unknown: vec![Handle(9)],
            removed: vec![],
        });
        let s = served(&Item::Served(Answered {
            op: Some(&beat),
            reply: &ack,
            ..answered
        }));
        assert_eq!(
            (s.op, s.result),
            (OpName::Heartbeat, ResultName::UnknownHandle)
        );
        assert_eq!(s.handle.as_deref(), Some("h9"));
    }

    #[test]
    fn a_seat_line_holds_the_change_and_its_index() {
        let granted = SeatChange::Granted {
            client: ClientId(u64::MAX),
            seq: RequestSeq(3),
            handle: Handle(u64::MAX),
            feature: Arc::from("cad"),
            user: Arc::from("ann"),
            host: Arc::from("wks"),
            borrow_end: None,
            by: id(1),
        };
        let s = seat(&granted);
        assert_eq!((s.server, s.index), (2, 998));
        assert_eq!(s.change, SeatChangeName::Granted);
        assert_eq!(s.client, "ffffffffffffffff");
        assert_eq!(s.handle, format!("h{}", u64::MAX));
        assert_eq!(s.feature, "cad");
        assert_eq!(
            (s.user.as_deref(), s.host.as_deref()),
            (Some("ann"), Some("wks"))
        );
        assert_eq!((s.req, s.by, s.borrow_end_ms), (Some(3), Some(1), None));

        let mut borrowed = granted.clone();
        if let SeatChange::Granted { borrow_end, .. } = &mut borrowed {
            *borrow_end = Some(WallTime(9_000));
        }
        let s = seat(&borrowed);
        assert_eq!(
            (s.change, s.borrow_end_ms),
            (SeatChangeName::Borrowed, Some(9_000))
        );

        for (borrowed, name) in [
            (false, SeatChangeName::Released),
            (true, SeatChangeName::Returned),
        ] {
            let s = seat(&SeatChange::Released {
                client: ClientId(1),
                seq: RequestSeq(4),
                handle: Handle(5),
                feature: Arc::from("cad"),
                borrowed,
            });
            assert_eq!((s.change, s.req, s.user), (name, Some(4), None));
            assert_eq!(
                (s.client.as_str(), s.handle.as_str()),
                ("0000000000000001", "h5")
            );
        }
        let s = seat(&SeatChange::Expired {
            client: ClientId(1),
            handle: Handle(5),
            feature: Arc::from("cad"),
            borrowed: false,
        });
        assert_eq!(
            (s.change, s.req, s.by),
            (SeatChangeName::Expired, None, None)
        );
    }

    #[test]
    fn any_other_record_is_written_as_it_is_with_the_journals_times() {
        let record = Record::Link(LinkRecord {
            t_ms: 0,
            server: 1,
            peer: 3,
            up: false,
            reason: Some("closed by the peer".into()),
        });
        let entry = line(&Item::Record(record));
        assert!(
            matches!(&entry.record, Record::Link(l) if l.peer == 3 && !l.up && l.reason.as_deref() == Some("closed by the peer")),
            "{entry:?}"
        );
    }

    #[test]
    fn a_record_that_is_not_an_object_with_fields_is_refused_and_leaves_nothing() {
        let mut out = b"kept\n".to_vec();
        assert!(tagged(&mut out, "end", &7u64, 1).is_err());
        assert!(tagged(&mut out, "end", &serde_json::json!({}), 1).is_err());
        assert_eq!(out, b"kept\n");
    }
}
