//! Invariant 7 (an addition to DESIGN §6.3, from issue 20): no orphan seat. Once the
//! faults have healed, every seat in the active server's table is held by a live client
//! that knows it: its application was told "granted" (and not yet "released", "lost" or
//! "borrow ended"), or the client still has a request on its way that may be it, or it
//! gave a request up as of unknown outcome too recently to have settled it. A seat whose
//! grant's reply was lost must not stay in use by nobody until its lease runs out.
//!
//! Judged at `audit` records: the harness reads the active server's seat table once the
//! run has been calm for a while. A client process that crashed holding seats is not
//! judged (its seats run out with their lease, DESIGN §3.3).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Invariant;

/// What the history says of one client.
#[derive(Debug, Default)]
struct ClientState {
    /// Handles its application holds.
    held: BTreeSet<String>,
    /// Requests sent and not answered: request number → (sent, the handle it is about).
    in_flight: BTreeMap<u64, (u64, Option<String>)>,
    /// When it last gave a request up as of unknown outcome.
    unknown_at: Option<u64>,
    /// The process died (its seats are left to their lease).
    crashed: bool,
}

#[derive(Debug, Default)]
pub(super) struct NoOrphanSeat {
    clients: BTreeMap<String, ClientState>,
    /// How long after a give-up a client may take to settle it.
    settle_ms: u64,
}

fn text(record: &Value, key: &str) -> String {
    record[key].as_str().unwrap_or("").to_string()
}

impl Invariant for NoOrphanSeat {
    fn name(&self) -> &'static str {
        "7 no orphan seat"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let t = record["t_ms"].as_u64().unwrap_or(0);
        let req = record["req"].as_u64().unwrap_or(0);
        match (record["kind"].as_str(), record["event"].as_str()) {
            (Some("meta"), _) => {
                // A settling starts at the give-up and needs a server: an election and a
                // request's round, as a liveness-phase request does.
                self.settle_ms = record["liveness_bound_ms"].as_u64().unwrap_or(u64::MAX);
            }
            (Some("request"), _) if record["op"] != "heartbeat" => {
                let handle = record["handle"].as_str().map(str::to_string);
                let client = self.clients.entry(text(record, "client")).or_default();
                client.in_flight.entry(req).or_insert((t, handle));
            }
            (Some("client"), Some(event)) => {
                let client = self.clients.entry(text(record, "client")).or_default();
                let handle = text(record, "handle");
                match event {
                    "granted" => {
                        client.in_flight.remove(&req);
                        client.held.insert(handle);
                    }
                    "released" => {
                        client.in_flight.remove(&req);
                        client.held.remove(&handle);
                    }
                    "denied" => {
                        client.in_flight.remove(&req);
                    }
                    "unknown" => {
                        client.in_flight.remove(&req);
                        client.unknown_at = Some(t);
                    }
                    "resolved" => {
                        client.in_flight.remove(&req);
                        client
                            .in_flight
                            .retain(|_, (_, about)| about.as_deref() != Some(&handle));
                        client.held.remove(&handle);
                    }
                    "lost" | "borrow_end" => {
                        client.held.remove(&handle);
                    }
                    "crashed" => client.crashed = true,
                    _ => {}
                }
            }
            (Some("audit"), _) => return self.audit(record, line, t),
            _ => {}
        }
        Ok(())
    }
}

impl NoOrphanSeat {
    fn audit(&self, record: &Value, line: &str, t: u64) -> Result<(), (String, Vec<String>)> {
        for holder in record["holders"].as_array().into_iter().flatten() {
            let (handle, user) = (text(holder, "handle"), text(holder, "user"));
            let Some(client) = self.clients.get(&user) else {
                continue; // not one of the run's clients
            };
            let known = client.held.contains(&handle);
            let asking = !client.in_flight.is_empty();
            let settling = client
                .unknown_at
                .is_some_and(|at| t.saturating_sub(at) <= self.settle_ms);
            if client.crashed || known || asking || settling {
                continue;
            }
            let what = format!(
                "seat {handle} is in the active server's table for {user}, whose application holds [{}] and has no request on its way: a seat held by nobody",
                client.held.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            return Err((what, vec![line.to_string()]));
        }
        Ok(())
    }
}
