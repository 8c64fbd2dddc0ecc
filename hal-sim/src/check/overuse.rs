//! Invariant 1, no overuse: at no instant do clients hold more seats of a feature than its
//! COUNT. A client holds a seat from the moment its application is told "granted" until
//! it sends the checkin (or return) or its lease runs out, in true simulated time: the
//! lease runs, as the client library counts it, from the first send (to the server that
//! answered) of the request or heartbeat the server acknowledged, for the `lease_ms` the
//! server gave. So a frozen client that has not noticed its loss yet holds nothing.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Invariant;

/// A seat as the checker knows it: who holds it.
type Holder = (String, String); // (client, handle)

/// A held seat.
#[derive(Debug)]
struct Held {
    feature: String,
    lease_until: u64,
    granted: String,
}

#[derive(Debug, Default)]
pub(super) struct NoOveruse {
    count: BTreeMap<String, u64>,
    held: BTreeMap<Holder, Held>,
    /// (client, req, server) → when the request first went to that server.
    first_sent: BTreeMap<(String, u64, u64), u64>,
    /// (client, req) → the lease of its granted reply.
    lease_ms: BTreeMap<(String, u64), u64>,
}

impl NoOveruse {
    fn sent(&self, client: &str, req: u64, server: u64) -> Option<u64> {
        self.first_sent
            .get(&(client.to_string(), req, server))
            .copied()
    }

    /// Seats whose lease ran out by `t` are no longer held.
    fn expire(&mut self, t: u64) {
        self.held.retain(|_, seat| seat.lease_until > t);
    }

    fn grant(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let client = record["client"].as_str().unwrap_or("").to_string();
        let req = record["req"].as_u64().unwrap_or(0);
        let server = record["server"].as_u64().unwrap_or(0);
        let lease = self
            .lease_ms
            .get(&(client.clone(), req))
            .copied()
            .unwrap_or(u64::MAX / 2);
        let sent = self.sent(&client, req, server).unwrap_or(0);
        let feature = record["feature"].as_str().unwrap_or("").to_string();
        let holder = (client, record["handle"].as_str().unwrap_or("").to_string());
        let seat = Held {
            feature: feature.clone(),
            lease_until: sent.saturating_add(lease),
            granted: line.to_string(),
        };
        self.held.entry(holder).or_insert(seat);
        let holding: Vec<String> = self
            .held
            .values()
            .filter(|s| s.feature == feature)
            .map(|s| s.granted.clone())
            .collect();
        let count = self.count.get(&feature).copied().unwrap_or(0);
        if holding.len() as u64 > count {
            let what = format!(
                "{} seats of {feature} held at once; COUNT is {count}",
                holding.len()
            );
            return Err((what, holding));
        }
        Ok(())
    }

    /// A heartbeat acknowledged: the seats it lists as held live on.
    fn heartbeat(&mut self, record: &Value) {
        let client = record["client"].as_str().unwrap_or("").to_string();
        let req = record["req"].as_u64().unwrap_or(0);
        let server = record["server"].as_u64().unwrap_or(0);
        let (Some(sent), Some(lease)) =
            (self.sent(&client, req, server), record["lease_ms"].as_u64())
        else {
            return;
        };
        for handle in record["held"].as_array().into_iter().flatten() {
            let holder = (client.clone(), handle.as_str().unwrap_or("").to_string());
            if let Some(seat) = self.held.get_mut(&holder) {
                seat.lease_until = seat.lease_until.max(sent + lease);
            }
        }
    }
}

impl Invariant for NoOveruse {
    fn name(&self) -> &'static str {
        "1 no overuse"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let t = record["t_ms"].as_u64().unwrap_or(0);
        self.expire(t);
        let client = record["client"].as_str().unwrap_or("").to_string();
        let req = record["req"].as_u64().unwrap_or(0);
        match (
            record["kind"].as_str().unwrap_or(""),
            record["event"].as_str(),
        ) {
            ("meta", _) => {
                for (name, f) in record["features"].as_object().into_iter().flatten() {
                    self.count
                        .insert(name.clone(), f["count"].as_u64().unwrap_or(0));
                }
            }
            ("request", _) => {
                let server = record["server"].as_u64().unwrap_or(0);
                self.first_sent
                    .entry((client.clone(), req, server))
                    .or_insert(t);
                if matches!(record["op"].as_str(), Some("checkin" | "return")) {
                    let handle = record["handle"].as_str().unwrap_or("").to_string();
                    self.held.remove(&(client, handle));
                }
            }
            ("reply", _) if record["result"] == "granted" => {
                let lease = record["lease_ms"].as_u64().unwrap_or(0);
                self.lease_ms.entry((client, req)).or_insert(lease);
            }
            ("reply", _) if record.get("held").is_some() => self.heartbeat(record),
            ("client", Some("granted")) => return self.grant(record, line),
            ("client", Some("lost" | "borrow_end")) => {
                let handle = record["handle"].as_str().unwrap_or("").to_string();
                self.held.remove(&(client, handle));
            }
            _ => {}
        }
        Ok(())
    }
}
