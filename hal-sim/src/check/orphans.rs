//! Invariant 7 (an addition to DESIGN §6.3, from issue 20): no orphan seat. Once the
//! faults have healed, every seat in the active server's table is held by a live client
//! that knows it: its application was told "granted" (and not yet "released", "lost" or
//! "borrow ended"), or the client still has a request on its way that may be it, or it
//! gave a request up as of unknown outcome too recently to have settled it. A seat whose
//! grant's reply was lost must not stay in use by nobody until its lease runs out.
//!
//! Judged at `audit` records: the harness reads the active server's seat table once the
//! run has been calm for a while. A client process that crashed holding seats leaves them
//! to their lease (DESIGN §3.3): they are orphans only once that lease and the expiry
//! margin have run out, counted from the last moment the lease can have been renewed
//! (the crash, a message of the client's held back and delivered later, the grant's
//! apply, or a new leader's term start, which restarts every lease), with a liveness
//! bound for the expiry to commit.

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
    /// When the process died (its seats are left to their lease).
    crashed_at: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct NoOrphanSeat {
    clients: BTreeMap<String, ClientState>,
    /// How long after a give-up a client may take to settle it.
    settle_ms: u64,
    /// A client's lease, and the servers' expiry margin on top of it.
    lease_ms: u64,
    margin_ms: u64,
    /// When a server last became active (every lease restarts then).
    active_at: u64,
    /// When the client machine's link to a server was last released or repaired (what a
    /// dead client sent may arrive then).
    clients_link_at: u64,
    /// When each seat was last applied by a server.
    applied_at: BTreeMap<String, u64>,
    /// Borrowed seats: they outlive their client until the borrow ends.
    borrowed: BTreeSet<String>,
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
                self.lease_ms = record["lease_ms"].as_u64().unwrap_or(u64::MAX / 4);
                self.margin_ms = record["election_timeout_ms"].as_u64().unwrap_or(0);
            }
            (Some("role"), _) if record["role"] == "active" => self.active_at = t,
            (Some("reply"), _) if record.get("borrow_end_ms").is_some() => {
                self.borrowed.insert(text(record, "handle"));
            }
            (Some("applied"), _) => {
                self.applied_at.insert(text(record, "handle"), t);
            }
            (Some("fault"), _)
                if record["a"][0] == "clients"
                    && matches!(record["fault"].as_str(), Some("release" | "repair")) =>
            {
                self.clients_link_at = t;
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
                    "crashed" => client.crashed_at = Some(t),
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
            if let Some(crashed_at) = client.crashed_at {
                if self.borrowed.contains(&handle) {
                    continue; // a borrow lasts until its end, client or no client
                }
                let renewable_until = [
                    crashed_at,
                    self.active_at,
                    self.clients_link_at,
                    self.applied_at.get(&handle).copied().unwrap_or(0),
                ]
                .into_iter()
                .max()
                .unwrap_or(crashed_at);
                let gone_by = renewable_until
                    .saturating_add(self.lease_ms)
                    .saturating_add(self.margin_ms)
                    .saturating_add(self.settle_ms);
                if t > gone_by {
                    let what = format!(
                        "seat {handle} of {user}, whose process crashed at {crashed_at} ms, is still in the active server's table: its lease could last until {renewable_until} ms + {} ms lease + {} ms margin, and expire by {gone_by} ms",
                        self.lease_ms, self.margin_ms
                    );
                    return Err((what, vec![line.to_string()]));
                }
                continue;
            }
            if known || asking || settling {
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
