//! Hand-written journals for the report's unit tests: one server's records, in the order
//! written, built line by line (`J::new(1).start(1_000).role_active(2_000)...`). Every
//! journal licenses five seats of `cad`; clients are named by their users (`c-alice`)
//! and hosts are `pc-<user>`. Times are the writing server's own wall clock, as a real
//! journal's are; `clock` journals that server's estimate of a peer's clock and `mono`
//! gives the record just written a monotonic time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hal_core::record::{
    Dropped, Entry, FeatureMeta, LinkRecord, Meta, OpName, PeerClock, Record, Recovery, ResultName,
    RoleName, RoleRecord, SeatChangeName, SeatRecord, Served, Start, Stop,
};

use crate::journal::read::{Located, ServerJournal};

/// One server's journal being written.
pub(super) struct J(ServerJournal);

impl J {
    pub(super) fn new(server: u8) -> J {
        let features = BTreeMap::from([(
            "cad".to_string(),
            FeatureMeta {
                count: 5,
                hal: true,
            },
        )]);
        J(ServerJournal {
            server,
            meta: Meta {
                server: Some(server),
                triad: Some(vec!["1@a".into(), "2@b".into(), "3@c".into()]),
                features,
                ..Meta::default()
            },
            entries: Vec::new(),
            notes: Vec::new(),
        })
    }

    pub(super) fn done(self) -> ServerJournal {
        self.0
    }

    fn me(&self) -> u8 {
        self.0.server
    }

    /// The server switched to a license of `count` seats of `cad`, in force from `index`.
    pub(super) fn license(self, t_ms: u64, index: u64, count: u32) -> J {
        let mut record = hal_core::record::LicenseRecord::new(t_ms, self.me(), index, "root@a", "");
        record.features = BTreeMap::from([("cad".to_string(), count)]);
        self.push(Record::License(record))
    }

    fn push(mut self, record: Record) -> J {
        let line = self.0.entries.len() + 2;
        self.0.entries.push(Located {
            entry: Entry::from(record),
            file: Arc::from(Path::new(&format!("journal-{}.jsonl", self.0.server))),
            line,
        });
        self
    }

    pub(super) fn start(self, t_ms: u64) -> J {
        let server = self.me();
        self.push(Record::Start(Start {
            t_ms,
            server,
            version: "0.1.0".into(),
            pid: 1,
            recovered: Recovery::default(),
        }))
    }

    pub(super) fn stop(self, t_ms: u64) -> J {
        let server = self.me();
        self.push(Record::Stop(Stop {
            t_ms,
            server,
            reason: "shutdown".into(),
        }))
    }

    fn role(self, t_ms: u64, role: RoleName) -> J {
        let server = self.me();
        self.push(Record::Role(RoleRecord {
            t_ms,
            server,
            role,
            term: 1,
        }))
    }

    pub(super) fn role_active(self, t_ms: u64) -> J {
        self.role(t_ms, RoleName::Active)
    }

    pub(super) fn role_standby(self, t_ms: u64) -> J {
        self.role(t_ms, RoleName::Standby)
    }

    /// The link to `peer` went down (`up` false) or came up.
    pub(super) fn link(self, t_ms: u64, peer: u8, up: bool) -> J {
        let server = self.me();
        self.push(Record::Link(LinkRecord {
            t_ms,
            server,
            peer,
            up,
            reason: None,
        }))
    }

    /// This server measured `peer`'s clock: `offset_ms` ahead of its own.
    pub(super) fn clock(self, t_ms: u64, peer: u8, offset_ms: i64) -> J {
        let server = self.me();
        self.push(Record::PeerClock(PeerClock {
            t_ms,
            server,
            peer,
            offset_ms,
            rtt_ms: 2,
        }))
    }

    /// The record just written was at `mono_ms` on this process's monotonic clock.
    pub(super) fn mono(mut self, mono_ms: u64) -> J {
        if let Some(last) = self.0.entries.last_mut() {
            last.entry.mono_ms = Some(mono_ms);
        }
        self
    }

    pub(super) fn dropped(self, t_ms: u64, records: u64) -> J {
        let server = self.me();
        self.push(Record::Dropped(Dropped {
            t_ms,
            server,
            records,
            reason: "behind".into(),
        }))
    }

    fn seat(self, t_ms: u64, index: u64, change: SeatChangeName, handle: &str, user: &str) -> J {
        let server = self.me();
        let grant = matches!(change, SeatChangeName::Granted | SeatChangeName::Borrowed);
        self.push(Record::Seat(SeatRecord {
            t_ms,
            server,
            index,
            change,
            handle: handle.into(),
            feature: "cad".into(),
            client: format!("c-{user}"),
            req: Some(index),
            user: grant.then(|| user.to_string()),
            host: grant.then(|| format!("pc-{user}")),
            by: grant.then_some(1),
            borrow_end_ms: None,
            removed_by: None,
        }))
    }

    /// `user` got seat `handle` of cad (log entry `index`).
    pub(super) fn granted(self, t_ms: u64, index: u64, handle: &str, user: &str) -> J {
        self.seat(t_ms, index, SeatChangeName::Granted, handle, user)
    }

    /// `user` borrowed seat `handle` until `end_ms`.
    pub(super) fn borrowed(
        self,
        t_ms: u64,
        index: u64,
        handle: &str,
        user: &str,
        end_ms: u64,
    ) -> J {
        let mut j = self.seat(t_ms, index, SeatChangeName::Borrowed, handle, user);
        if let Some(Record::Seat(seat)) = j.0.entries.last_mut().map(|l| &mut l.entry.record) {
            seat.borrow_end_ms = Some(end_ms);
        }
        j
    }

    /// `user`'s seat `handle` was released, returned or expired (`change`).
    pub(super) fn ended(
        self,
        t_ms: u64,
        index: u64,
        change: SeatChangeName,
        handle: &str,
        user: &str,
    ) -> J {
        self.seat(t_ms, index, change, handle, user)
    }

    /// This server answered `user`'s checkout `req` of cad: granted (`reason` `None`)
    /// or denied.
    pub(super) fn served(self, t_ms: u64, user: &str, req: u64, reason: Option<&str>) -> J {
        let server = self.me();
        self.push(Record::Served(Served {
            t_ms,
            server,
            client: format!("c-{user}"),
            req,
            op: OpName::Checkout,
            feature: Some("cad".into()),
            user: Some(user.into()),
            host: Some(format!("pc-{user}")),
            handle: None,
            result: if reason.is_some() {
                ResultName::Denied
            } else {
                ResultName::Granted
            },
            reason: reason.map(String::from),
            granted_by: None,
            borrow_end_ms: None,
            waited_ms: None,
            received: None,
        }))
    }
}
