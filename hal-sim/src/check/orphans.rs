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

use hal_core::record::{
    Audit, ClientEventRecord, ClientRecord, Fault, FaultKind, Meta, OpName, Party, Record, RoleName,
};

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
    /// The client process each seat was granted to (its name in the history): a seat
    /// table names only the user, whose restarted process has a name of its own.
    owner: BTreeMap<String, String>,
    /// Borrowed seats: they outlive their client until the borrow ends.
    borrowed: BTreeSet<String>,
}

impl Invariant for NoOrphanSeat {
    fn name(&self) -> &'static str {
        "7 no orphan seat"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        match record {
            Record::Meta(meta) => self.meta(meta),
            Record::Role(role) if role.role == RoleName::Active => self.active_at = role.t_ms,
            Record::Reply(reply) => {
                if let Some(grant) = reply.grant().filter(|g| g.borrow_end_ms.is_some()) {
                    self.borrowed.insert(grant.handle.clone());
                }
            }
            Record::Applied(applied) => {
                self.applied_at.insert(applied.handle.clone(), applied.t_ms);
                self.owner
                    .insert(applied.handle.clone(), applied.client.clone());
            }
            Record::Fault(fault) if mends_clients_link(fault) => self.clients_link_at = fault.t_ms,
            Record::Request(request) if request.op != OpName::Heartbeat => {
                let client = self.clients.entry(request.client.clone()).or_default();
                let about = (request.t_ms, request.handle.clone());
                client.in_flight.entry(request.req).or_insert(about);
            }
            Record::Client(client) => self.client(client),
            Record::Audit(audit) => return self.audit(audit, line),
            _ => {}
        }
        Ok(())
    }
}

/// Whether `fault` releases or repairs a client machine's link to servers (then what a
/// dead client sent may arrive). Each group of a scenario's clients (a seed sweep's
/// are one group) has a machine of its own, named by the group.
fn mends_clients_link(fault: &Fault) -> bool {
    matches!(fault.fault, FaultKind::Release | FaultKind::Repair)
        && matches!(fault.a.first(), Some(Party::Client(_)))
}

impl NoOrphanSeat {
    fn meta(&mut self, meta: &Meta) {
        // A settling starts at the give-up and needs a server: an election and a
        // request's round, as a liveness-phase request does.
        self.settle_ms = meta.liveness_bound_ms.unwrap_or(u64::MAX);
        self.lease_ms = meta.lease_ms;
        self.margin_ms = meta.election_timeout_ms;
    }

    /// Follows what a client's library told its application.
    fn client(&mut self, record: &ClientRecord) {
        let t = record.t_ms;
        // Every client the history tells of is one of the run's, whatever the event.
        let client = self.clients.entry(record.client.clone()).or_default();
        match &record.event {
            ClientEventRecord::Granted { req, handle, .. } => {
                client.in_flight.remove(req);
                client.held.insert(handle.clone());
            }
            ClientEventRecord::Released { req, handle, .. } => {
                client.in_flight.remove(req);
                client.held.remove(handle);
            }
            ClientEventRecord::Denied { req, .. } => {
                client.in_flight.remove(req);
            }
            ClientEventRecord::Unknown { req, .. } => {
                client.in_flight.remove(req);
                client.unknown_at = Some(t);
            }
            ClientEventRecord::Resolved { req, handle } => {
                client.in_flight.remove(req);
                if let Some(handle) = handle {
                    client
                        .in_flight
                        .retain(|_, (_, about)| about.as_ref() != Some(handle));
                    client.held.remove(handle);
                }
            }
            ClientEventRecord::Lost {
                handle: Some(handle),
            }
            | ClientEventRecord::BorrowEnd {
                handle: Some(handle),
            }
            | ClientEventRecord::Removed {
                handle: Some(handle),
            } => {
                client.held.remove(handle);
            }
            ClientEventRecord::Crashed { .. } => client.crashed_at = Some(t),
            ClientEventRecord::Lost { handle: None }
            | ClientEventRecord::BorrowEnd { handle: None }
            | ClientEventRecord::Removed { handle: None }
            | ClientEventRecord::Stopped { .. }
            | ClientEventRecord::Frozen { .. }
            | ClientEventRecord::Thawed { .. }
            | ClientEventRecord::Skipped { .. } => {}
        }
    }

    fn audit(&self, audit: &Audit, line: &str) -> Result<(), (String, Vec<String>)> {
        let t = audit.t_ms;
        for holder in &audit.holders {
            let handle = &holder.handle;
            let user = self.owner.get(handle).unwrap_or(&holder.user);
            let Some(client) = self.clients.get(user) else {
                continue; // not one of the run's clients
            };
            let known = client.held.contains(handle);
            let asking = !client.in_flight.is_empty();
            let settling = client
                .unknown_at
                .is_some_and(|at| t.saturating_sub(at) <= self.settle_ms);
            if let Some(crashed_at) = client.crashed_at {
                if self.borrowed.contains(handle) {
                    continue; // a borrow lasts until its end, client or no client
                }
                let renewable_until = [
                    crashed_at,
                    self.active_at,
                    self.clients_link_at,
                    self.applied_at.get(handle).copied().unwrap_or(0),
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
