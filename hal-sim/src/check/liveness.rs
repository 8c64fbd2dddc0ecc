//! Invariant 6, liveness: once the liveness phase has begun (every fault healed, a
//! majority up), every checkout is answered — granted, or denied only because every seat
//! is in use (or for what the license itself says: no such feature, expired, locked to
//! another HostID) — within a bound derived from the timing profile.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Invariant;

#[derive(Debug, Default)]
pub(super) struct Liveness {
    /// When the liveness phase starts, and the bound; from the meta record.
    from_ms: Option<u64>,
    bound_ms: u64,
    /// (client, req) → (first sent, the record), for checkouts not answered yet.
    waiting: BTreeMap<(String, u64), (u64, String)>,
    /// Checkouts the client gave up on: what it sends for them later only settles their
    /// outcome (releases what they may have produced), and no application waits on it.
    settling: BTreeSet<(String, u64)>,
}

impl Liveness {
    /// The oldest checkout still waiting past the bound at `now`, if any.
    fn overdue(&self, now: u64) -> Option<(String, Vec<String>)> {
        let from = self.from_ms?;
        let ((client, req), (sent, line)) = self
            .waiting
            .iter()
            .filter(|(_, (sent, _))| *sent >= from)
            .min_by_key(|(_, (sent, _))| *sent)?;
        (now.saturating_sub(*sent) > self.bound_ms).then(|| {
            let what = format!(
                "checkout {req} of {client}, sent at {sent} ms in the liveness phase, unanswered after {} ms (bound {} ms)",
                now - sent,
                self.bound_ms
            );
            (what, vec![line.clone()])
        })
    }
}

impl Invariant for Liveness {
    fn name(&self) -> &'static str {
        "6 liveness"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let t = record["t_ms"].as_u64().unwrap_or(0);
        let client = record["client"].as_str().unwrap_or("").to_string();
        let req = record["req"].as_u64().unwrap_or(0);
        match (record["kind"].as_str(), record["event"].as_str()) {
            (Some("meta"), _) => {
                self.from_ms = record["liveness_from_ms"].as_u64();
                self.bound_ms = record["liveness_bound_ms"].as_u64().unwrap_or(u64::MAX);
            }
            (Some("request"), _) if record["op"] == "checkout" => {
                let key = (client, req);
                if !self.settling.contains(&key) {
                    self.waiting.entry(key).or_insert((t, line.to_string()));
                }
            }
            (Some("client"), Some("resolved")) => {
                self.settling.remove(&(client, req));
            }
            (Some("client"), Some("granted")) => {
                self.waiting.remove(&(client, req));
            }
            (Some("client"), Some("denied" | "unknown")) => {
                if record["event"] == "unknown" {
                    self.settling.insert((client.clone(), req));
                }
                let Some((sent, first)) = self.waiting.remove(&(client.clone(), req)) else {
                    return Ok(());
                };
                let in_phase = self.from_ms.is_some_and(|from| sent >= from);
                let final_answer = matches!(
                    record["reason"].as_str(),
                    Some("all_in_use" | "unknown_feature" | "license_expired" | "hostid_mismatch")
                );
                if in_phase && !final_answer {
                    let what = if record["event"] == "unknown" {
                        format!(
                            "checkout {req} of {client} went unanswered (outcome unknown) in the liveness phase"
                        )
                    } else {
                        format!(
                            "checkout {req} of {client} denied with {} in the liveness phase",
                            record["reason"]
                        )
                    };
                    return Err((what, vec![first, line.to_string()]));
                }
            }
            _ => {}
        }
        match self.overdue(t) {
            Some(violation) => Err(violation),
            None => Ok(()),
        }
    }
}
