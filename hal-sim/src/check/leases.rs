//! The seats each client holds and until when, as the client library counts them: from
//! the application's "granted" until the checkin (or return) is sent, the borrow ends (a
//! borrowed seat has no lease), or the lease runs out, the lease
//! running from the first send (to the server that answered) of the request or heartbeat
//! that the server acknowledged, for the `lease_ms` it gave. Shared by the checkers that
//! need "does this client hold this seat now?".

use std::collections::BTreeMap;

use serde_json::Value;

/// Who holds a seat: (client, handle).
pub(super) type Holder = (String, String);

/// A held seat.
#[derive(Debug)]
pub(super) struct Held {
    pub feature: String,
    pub lease_until: u64,
    /// The record that granted it.
    pub granted: String,
}

#[derive(Debug, Default)]
pub(super) struct Leases {
    pub held: BTreeMap<Holder, Held>,
    /// Seats whose lease ran out, not yet reported lost by their client: when it ran out,
    /// and the record that granted the seat.
    pub ended: BTreeMap<Holder, (u64, String)>,
    /// (client, req, server) → when the request first went to that server.
    first_sent: BTreeMap<(String, u64, u64), u64>,
    /// (client, req) → the lease of its granted reply.
    lease_ms: BTreeMap<(String, u64), u64>,
}

fn text(record: &Value, key: &str) -> String {
    record[key].as_str().unwrap_or("").to_string()
}

impl Leases {
    /// Follows one record. Returns the feature of a seat the record granted.
    pub fn observe(&mut self, record: &Value, line: &str) -> Option<String> {
        let t = record["t_ms"].as_u64().unwrap_or(0);
        let ended = &mut self.ended;
        self.held.retain(|holder, seat| {
            let live = seat.lease_until > t;
            if !live {
                let granted = std::mem::take(&mut seat.granted);
                ended.insert(holder.clone(), (seat.lease_until, granted));
            }
            live
        });
        let client = text(record, "client");
        let req = record["req"].as_u64().unwrap_or(0);
        let server = record["server"].as_u64().unwrap_or(0);
        match (
            record["kind"].as_str().unwrap_or(""),
            record["event"].as_str(),
        ) {
            ("request", _) => {
                self.first_sent
                    .entry((client.clone(), req, server))
                    .or_insert(t);
                if matches!(record["op"].as_str(), Some("checkin" | "return")) {
                    let holder = (client, text(record, "handle"));
                    self.ended.remove(&holder);
                    self.held.remove(&holder);
                }
            }
            ("reply", _) if record["result"] == "granted" => {
                let lease = record["lease_ms"].as_u64().unwrap_or(0);
                self.lease_ms.entry((client, req)).or_insert(lease);
            }
            ("reply", _) if record.get("held").is_some() => {
                let sent = self.first_sent.get(&(client.clone(), req, server)).copied();
                if let (Some(sent), Some(lease)) = (sent, record["lease_ms"].as_u64()) {
                    for handle in record["held"].as_array().into_iter().flatten() {
                        let holder = (client.clone(), handle.as_str().unwrap_or("").to_string());
                        if let Some(seat) = self.held.get_mut(&holder) {
                            seat.lease_until = seat.lease_until.max(sent + lease);
                        }
                    }
                }
            }
            ("client", Some("granted")) => {
                let lease = self.lease_ms.get(&(client.clone(), req)).copied();
                let sent = self.first_sent.get(&(client.clone(), req, server)).copied();
                // A borrowed seat has no lease: it is held until it is returned or its
                // client says the borrow ended.
                let lease_until = if record.get("borrow_end_ms").is_some() {
                    u64::MAX
                } else {
                    sent.unwrap_or(0)
                        .saturating_add(lease.unwrap_or(u64::MAX / 2))
                };
                let feature = text(record, "feature");
                let seat = Held {
                    feature: feature.clone(),
                    lease_until,
                    granted: line.to_string(),
                };
                self.held
                    .entry((client, text(record, "handle")))
                    .or_insert(seat);
                return Some(feature);
            }
            ("client", Some("lost" | "borrow_end")) => {
                let holder = (client, text(record, "handle"));
                self.ended.remove(&holder);
                self.held.remove(&holder);
            }
            _ => {}
        }
        None
    }
}
