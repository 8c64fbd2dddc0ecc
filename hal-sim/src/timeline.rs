//! History records as the lines of a readable timeline (`hal-sim replay`): simulated
//! time, faults, role changes and what the clients' applications saw. Heartbeats and
//! the wire-level retries behind a request are left out.

use std::collections::BTreeSet;

use serde_json::Value;

/// Turns records into timeline lines, one per application-level event: a request
/// retried on the wire (after a timeout or a failover) shows once.
#[derive(Debug, Default)]
pub struct Timeline {
    checkins_seen: BTreeSet<(String, u64)>,
}

impl Timeline {
    /// The line for `record`, if the timeline shows it.
    pub fn line(&mut self, record: &str) -> Option<String> {
        let value: Value = serde_json::from_str(record).ok()?;
        if value["kind"] == "request" && value["op"] == "checkin" {
            let client = value["client"].as_str().unwrap_or("").to_string();
            let req = value["req"].as_u64().unwrap_or(0);
            if !self.checkins_seen.insert((client, req)) {
                return None;
            }
        }
        describe(record)
    }
}

/// Servers as `#1 #2`; a client machine by its name.
fn servers(list: &Value) -> String {
    list.as_array()
        .map(|ids| {
            ids.iter()
                .map(|id| match id.as_str() {
                    Some(name) => format!("client {name}"),
                    None => format!("#{id}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// "request 7", and how many sends it took when more than one: "request 7, 3 sends"
/// (each redirect, retry or resend is one more).
fn request(record: &Value) -> String {
    match record["attempts"].as_u64() {
        Some(attempts) if attempts > 1 => format!("request {}, {attempts} sends", record["req"]),
        _ => format!("request {}", record["req"]),
    }
}

/// One record as a timeline line, or `None` for records the timeline leaves out.
fn describe(line: &str) -> Option<String> {
    let record: Value = serde_json::from_str(line).ok()?;
    let t = record["t_ms"].as_u64().unwrap_or(0);
    let at = format!("{:>4}.{:03}s", t / 1000, t % 1000);
    let client = record["client"].as_str().unwrap_or("");
    let text = match record["kind"].as_str()? {
        "meta" => {
            let mut text = format!(
                "seed {}: features {}, lease {} ms, election timeout {} ms",
                record["seed"],
                record["features"],
                record["lease_ms"],
                record["election_timeout_ms"]
            );
            if let Some(name) = record["scenario"].as_str() {
                text = format!("{name}\n{text}");
            }
            text
        }
        "fault" => {
            let fault = record["fault"].as_str().unwrap_or("");
            let (a, b) = (servers(&record["a"]), servers(&record["b"]));
            let mut text = if b.is_empty() {
                format!("{at}  FAULT  {fault} {a}")
            } else {
                format!("{at}  FAULT  {fault} {a} | {b}")
            };
            if let Some(cause) = record["cause"].as_str() {
                text.push_str(&format!(" ({cause})"));
            }
            for (key, unit) in [
                ("state", ""),
                ("latency_ms", " ms"),
                ("offset_ms", " ms"),
                ("drift_ppm", " ppm"),
            ] {
                match &record[key] {
                    Value::Null => {}
                    Value::String(value) => text.push_str(&format!(" {value}")),
                    value => text.push_str(&format!(
                        " {}={value}{unit}",
                        key.split('_').next().unwrap_or(key)
                    )),
                }
            }
            text
        }
        "role" => format!(
            "{at}  ROLE   #{} {} (term {})",
            record["server"],
            record["role"].as_str().unwrap_or(""),
            record["term"]
        ),
        "client" => match record["event"].as_str()? {
            "granted" => format!(
                "{at}  {client:<5} granted {} by #{} ({})",
                record["handle"].as_str().unwrap_or(""),
                record["server"],
                request(&record)
            ),
            "denied" => format!(
                "{at}  {client:<5} denied: {} ({})",
                record["reason"].as_str().unwrap_or(""),
                request(&record)
            ),
            "unknown" => match record["reason"].as_str() {
                Some(reason) => format!(
                    "{at}  {client:<5} outcome unknown: no answer in time, the last a refusal ({reason}) ({})",
                    request(&record)
                ),
                None => format!(
                    "{at}  {client:<5} outcome unknown: no answer in time ({})",
                    request(&record)
                ),
            },
            "resolved" => match record["handle"].as_str() {
                Some(handle) => format!(
                    "{at}  {client:<5} settled request {}: released {handle}",
                    record["req"]
                ),
                None => format!(
                    "{at}  {client:<5} settled request {}: nothing to release",
                    record["req"]
                ),
            },
            // A checkin or return: its request line says so already, unless it took
            // more than one send.
            "released" if record["attempts"].as_u64().unwrap_or(1) <= 1 => return None,
            "released" => format!(
                "{at}  {client:<5} released {} ({})",
                record["handle"].as_str().unwrap_or(""),
                request(&record)
            ),
            event => format!(
                "{at}  {client:<5} {event} {}",
                record["handle"].as_str().unwrap_or("")
            ),
        },
        "request" if record["op"] == "checkin" => format!(
            "{at}  {client:<5} checks in {}",
            record["handle"].as_str().unwrap_or("")
        ),
        "impostor" => {
            let mut text = format!(
                "{at}  IMPOSTOR claims #{} to #{}: {}",
                record["claimed"],
                record["server"],
                match record["result"].as_str().unwrap_or("") {
                    "welcomed" => "WELCOMED",
                    other => other,
                }
            );
            if let Some(reason) = record["reason"].as_str() {
                text.push_str(&format!(" ({reason})"));
            }
            if let Some(term) = record["term"].as_u64() {
                text.push_str(&format!(
                    "; sent a forged snapshot (no seats) and append at term {term}"
                ));
            }
            text
        }
        "expect" => format!(
            "{at}  {} line {}: {} — {}",
            if record["met"] == true {
                "[met]    "
            } else {
                "[NOT MET]"
            },
            record["line"],
            record["expected"].as_str().unwrap_or(""),
            record["saw"].as_str().unwrap_or("")
        ),
        // Only snapshots installed: those taken are routine, one every few dozen entries.
        "checkpoint" if record["snapshot"] == "installed" => format!(
            "{at}  SNAP   #{} installed a snapshot at index {} (state {})",
            record["server"],
            record["index"],
            record["digest"].as_str().unwrap_or("")
        ),
        "end" => format!("{at}  end of the run"),
        _ => return None,
    };
    Some(text)
}
