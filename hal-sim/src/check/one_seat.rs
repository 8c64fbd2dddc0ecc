//! Invariant 5, one request, one seat: a request retried (after a timeout or a failover)
//! never yields a second handle. Judged on the replies clients get and on the grants the
//! servers apply (`applied` records): a second seat whose reply was lost is a second
//! seat all the same.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Invariant;

#[derive(Debug, Default)]
pub(super) struct OneRequestOneSeat {
    /// (client, req) → the first granted reply.
    granted: BTreeMap<(String, u64), (String, String)>,
}

impl Invariant for OneRequestOneSeat {
    fn name(&self) -> &'static str {
        "5 one request, one seat"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let applied = record["kind"] == "applied";
        if !applied && (record["kind"] != "reply" || record["result"] != "granted") {
            return Ok(());
        }
        let client = record["client"].as_str().unwrap_or("").to_string();
        let req = record["req"].as_u64().unwrap_or(0);
        let handle = record["handle"].as_str().unwrap_or("").to_string();
        match self.granted.get(&(client.clone(), req)) {
            None => {
                self.granted
                    .insert((client, req), (handle, line.to_string()));
                Ok(())
            }
            Some((first, _)) if *first == handle => Ok(()),
            Some((first, first_line)) => Err((
                format!(
                    "request {req} of {client} was granted twice: {first}, then {handle}{}",
                    if applied {
                        format!(" (applied by #{})", record["server"].as_u64().unwrap_or(0))
                    } else {
                        String::new()
                    }
                ),
                vec![first_line.clone(), line.to_string()],
            )),
        }
    }
}
