//! Invariant 10, replicas agree (DESIGN §3.1: applying the log gives the seat table): two
//! servers whose applied state reaches the same log index hold the same state there —
//! the seat table and every client's session (its last request and answer, which is what
//! makes a retry get its first answer). Servers report their state's digest when they
//! take a snapshot and when they install one from a peer (`checkpoint` records), so every
//! snapshot sent is compared with the state it was taken from.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Invariant;

#[derive(Debug, Default)]
pub(super) struct ReplicasAgree {
    /// Log index → the first digest reported there, and its record.
    seen: BTreeMap<u64, (String, String)>,
}

impl Invariant for ReplicasAgree {
    fn name(&self) -> &'static str {
        "10 replicas agree"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        if record["kind"] != "checkpoint" {
            return Ok(());
        }
        let index = record["index"].as_u64().unwrap_or(0);
        let digest = record["digest"].as_str().unwrap_or("").to_string();
        match self.seen.get(&index) {
            Some((first, first_line)) if *first != digest => {
                let what = format!(
                    "server #{} holds state {digest} at log index {index} ({} snapshot), \
                     another server {first} there",
                    record["server"],
                    record["snapshot"].as_str().unwrap_or("?"),
                );
                Err((what, vec![first_line.clone(), line.to_string()]))
            }
            Some(_) => Ok(()),
            None => {
                self.seen.insert(index, (digest, line.to_string()));
                Ok(())
            }
        }
    }
}
