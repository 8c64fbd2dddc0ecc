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

use serde_json::Value;

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

impl Invariant for LeaseLoss {
    fn name(&self) -> &'static str {
        "9 lease lost on time"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let t = record["t_ms"].as_u64().unwrap_or(0);
        let client = record["client"].as_str().unwrap_or("").to_string();
        let holder: Holder = (
            client.clone(),
            record["handle"].as_str().unwrap_or("").into(),
        );
        // What says the client still held the seat: the library's report of its loss,
        // or a checkin sent for it (by the application, or by the library on its way out).
        let said = match (record["kind"].as_str(), record["event"].as_str()) {
            (Some("client"), Some("frozen")) => {
                self.frozen_since.insert(client, t);
                None
            }
            (Some("client"), Some("thawed")) => {
                let since = self.frozen_since.remove(&client).unwrap_or(t);
                self.last_freeze.insert(client, (since, t));
                None
            }
            (Some("client"), Some("lost")) => Some("reported seat {} lost"),
            (Some("request"), _) if matches!(record["op"].as_str(), Some("checkin" | "return")) => {
                Some("sent a checkin of seat {}")
            }
            _ => None,
        };
        if let Some(said) = said {
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
                    said.replace("{}", &holder.1),
                    t - until
                );
                return Err((what, vec![granted, line.to_string()]));
            }
        }
        self.leases.observe(record, line);
        Ok(())
    }
}
