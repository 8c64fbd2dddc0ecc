//! Invariant 9, a lease lost on time (DESIGN §3.3): the client library counts a seat's
//! lease from the **send** of the request or heartbeat the server acknowledged, and
//! reports the seat lost when that lease runs out without a newer ack. A library that
//! reports it later, or still checks the seat in as if held (counting from the reply,
//! say), keeps its application on the seat past the lease the server honours, eating
//! the margin the server keeps for clock rates; invariant 1 assumes it never does.
//!
//! The lease is the one [`super::leases`] follows from the history. A client frozen when
//! its lease ran out (a paused process) reports the loss when it thaws, which is on time
//! for it: nothing ran in between.

use std::collections::BTreeMap;

use hal_core::record::{ClientEventRecord, OpName, Record};

use super::Invariant;
use super::leases::{Holder, Leases};

/// How late a report may be: the history's millisecond rounding, both ends.
const SLACK_MS: u64 = 1;

#[derive(Debug, Default)]
pub(super) struct LeaseLoss {
    leases: Leases,
    /// client → since when it has been frozen (until its `thawed`).
    frozen_since: BTreeMap<String, u64>,
    /// client → when it last thawed, and since when it had been frozen.
    last_freeze: BTreeMap<String, (u64, u64)>,
}

impl LeaseLoss {
    /// Whether `client` was frozen at `t`, a time before now.
    fn frozen_at(&self, client: &str, t: u64) -> bool {
        self.frozen_since
            .get(client)
            .is_some_and(|&since| since <= t)
            || self
                .last_freeze
                .get(client)
                .is_some_and(|&(since, thawed)| since <= t && t <= thawed)
    }
}

/// What says a client still took a seat for held.
#[derive(Debug, Clone, Copy)]
enum Said {
    /// Its library reported the seat lost.
    Lost,
    /// It sent a checkin (or return) for it, from the application or from the library
    /// on its way out.
    CheckedIn,
}

impl Said {
    fn words(self, handle: &str) -> String {
        match self {
            Said::Lost => format!("reported seat {handle} lost"),
            Said::CheckedIn => format!("sent a checkin of seat {handle}"),
        }
    }
}

impl LeaseLoss {
    /// Follows a client's freezes; returns the client and the seat `record` says it
    /// still took for held, if it does, and how it says so.
    fn still_held<'r>(&mut self, record: &'r Record) -> Option<(&'r str, &'r str, Said)> {
        match record {
            Record::Client(client) => match &client.event {
                ClientEventRecord::Frozen { .. } => {
                    self.frozen_since.insert(client.client.clone(), client.t_ms);
                    None
                }
                ClientEventRecord::Thawed { .. } => {
                    let t = client.t_ms;
                    let since = self.frozen_since.remove(&client.client).unwrap_or(t);
                    self.last_freeze.insert(client.client.clone(), (since, t));
                    None
                }
                ClientEventRecord::Lost {
                    handle: Some(handle),
                } => Some((&client.client, handle, Said::Lost)),
                _ => None,
            },
            Record::Request(request) if matches!(request.op, OpName::Checkin | OpName::Return) => {
                let handle = request.handle.as_deref()?;
                Some((&request.client, handle, Said::CheckedIn))
            }
            _ => None,
        }
    }
}

impl Invariant for LeaseLoss {
    fn name(&self) -> &'static str {
        "9 lease lost on time"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        if let Some((client, handle, said)) = self.still_held(record) {
            // Not a meta record: it has a time.
            let t = record.t_ms().unwrap_or(0);
            let holder: Holder = (client.to_string(), handle.to_string());
            let ended = self.leases.ended.get(&holder).cloned().or_else(|| {
                self.leases
                    .held
                    .get(&holder)
                    .map(|s| (s.lease_until, s.granted.clone()))
                    .filter(|(until, _)| *until <= t)
            });
            if let Some((until, granted)) = ended
                && t > until + SLACK_MS
                && !self.frozen_at(&holder.0, until)
            {
                let what = format!(
                    "{} {} at {t} ms, {} ms after its lease ran out at {until} ms (counted \
                     from the send of the last acknowledged request or heartbeat)",
                    holder.0,
                    said.words(&holder.1),
                    t - until
                );
                return Err((what, vec![granted, line.to_string()]));
            }
        }
        self.leases.observe(record, line);
        Ok(())
    }
}
