//! Invariant 6, liveness: once the liveness phase has begun (every fault healed, a
//! majority up), every checkout is answered — granted, or denied only because every seat
//! is in use (or for what the license itself says: no such feature, expired, locked to
//! another HostID; or the administrator's options file: not included, excluded, over a
//! MAX, the free seats reserved) — within a bound derived from the timing profile.

use std::collections::{BTreeMap, BTreeSet};

use hal_core::record::{ClientEventRecord, OpName, Record};

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

/// Reasons a checkout may be refused in the liveness phase: every seat in use, what the
/// license itself says, or what the options file in force says.
fn final_answer(reason: Option<&str>) -> bool {
    matches!(
        reason,
        Some(
            "all_in_use"
                | "unknown_feature"
                | "license_expired"
                | "hostid_mismatch"
                | "not_included"
                | "excluded"
                | "over_max"
                | "reserved"
                | "borrow_over_max"
        )
    )
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

    /// Follows what `client`'s application was told (`event`); `Err` if a checkout sent
    /// in the liveness phase got no final answer. `Ok(false)` for a denial or a give-up
    /// of no checkout waiting: the bound is not judged at that record (the next one
    /// judges it).
    fn answered(
        &mut self,
        client: &str,
        event: &ClientEventRecord,
        line: &str,
    ) -> Result<bool, (String, Vec<String>)> {
        // An `unknown` counts like a denial; its reason is the last refusal, if any.
        let (req, reason) = match event {
            ClientEventRecord::Resolved { req, .. } => {
                self.settling.remove(&(client.to_string(), *req));
                return Ok(true);
            }
            ClientEventRecord::Granted { req, .. } => {
                self.waiting.remove(&(client.to_string(), *req));
                return Ok(true);
            }
            ClientEventRecord::Denied { req, reason, .. } => (*req, Some(reason.as_str())),
            ClientEventRecord::Unknown { req, reason, .. } => {
                self.settling.insert((client.to_string(), *req));
                (*req, reason.as_deref())
            }
            _ => return Ok(true),
        };
        let Some((sent, first)) = self.waiting.remove(&(client.to_string(), req)) else {
            return Ok(false);
        };
        let in_phase = self.from_ms.is_some_and(|from| sent >= from);
        if !in_phase || final_answer(reason) {
            return Ok(true);
        }
        let what = match event {
            ClientEventRecord::Denied { reason, .. } => {
                format!("checkout {req} of {client} denied with {reason:?} in the liveness phase")
            }
            _ => format!(
                "checkout {req} of {client} went unanswered (outcome unknown) in the liveness phase"
            ),
        };
        Err((what, vec![first, line.to_string()]))
    }
}

impl Invariant for Liveness {
    fn name(&self) -> &'static str {
        "6 liveness"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        // A history's meta record has no time: it is the start of the run.
        let t = record.t_ms().unwrap_or(0);
        let judge_bound = match record {
            Record::Meta(meta) => {
                self.from_ms = meta.liveness_from_ms;
                self.bound_ms = meta.liveness_bound_ms.unwrap_or(u64::MAX);
                true
            }
            Record::Request(request) if request.op == OpName::Checkout => {
                let key = (request.client.clone(), request.req);
                if !self.settling.contains(&key) {
                    self.waiting.entry(key).or_insert((t, line.to_string()));
                }
                true
            }
            Record::Client(client) => self.answered(&client.client, &client.event, line)?,
            _ => true,
        };
        if !judge_bound {
            return Ok(());
        }
        match self.overdue(t) {
            Some(violation) => Err(violation),
            None => Ok(()),
        }
    }
}
