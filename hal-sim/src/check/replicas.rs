//! Invariant 10, replicas agree (DESIGN §3.1: applying the log gives the seat table): two
//! servers whose applied state reaches the same log index hold the same state there —
//! the seat table and every client's session (its last request and answer, which is what
//! makes a retry get its first answer). Servers report their state's digest when they
//! take a snapshot and when they install one from a peer (`checkpoint` records), so every
//! snapshot sent is compared with the state it was taken from.

use std::collections::BTreeMap;

use hal_core::record::{Record, SnapshotHow};

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

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        let Record::Checkpoint(checkpoint) = record else {
            return Ok(());
        };
        let (index, digest) = (checkpoint.index, &checkpoint.digest);
        match self.seen.get(&index) {
            Some((first, first_line)) if first != digest => {
                let how = match checkpoint.snapshot {
                    SnapshotHow::Taken => "taken",
                    SnapshotHow::Installed => "installed",
                };
                let what = format!(
                    "server #{} holds state {digest} at log index {index} ({how} snapshot), \
                     another server {first} there",
                    checkpoint.server,
                );
                Err((what, vec![first_line.clone(), line.to_string()]))
            }
            Some(_) => Ok(()),
            None => {
                self.seen.insert(index, (digest.clone(), line.to_string()));
                Ok(())
            }
        }
    }
}
