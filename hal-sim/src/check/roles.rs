//! Invariant 2, the role rule, as DESIGN §6.3 states it: #3 never grants; borrows are
//! granted only by #1; and #2 grants only when #1 has not been up and connected to a peer
//! — either one: #1 in contact with #3 alone is not "#1 down" — for longer than it takes
//! the role to come back to #1 (`failback_hold`, plus an election and a transfer:
//! 2 × `election_timeout` + `failover_delay`, and a second of slack). "Connected" is a
//! steady link, whole both ways: over a flapping or slow link the servers rightly take
//! the gaps for interruptions and restart the hold, so as not to flap the role.

use serde_json::Value;

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct RoleRule {
    links: Links,
    /// How long #1 may be healthy while #2 still grants.
    handover_ms: u64,
}

impl Invariant for RoleRule {
    fn name(&self) -> &'static str {
        "2 role rule"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        self.links.observe(record);
        if record["kind"] == "meta" {
            let ms = |key: &str| record[key].as_u64().unwrap_or(0);
            self.handover_ms = ms("failback_hold_ms")
                + 2 * ms("election_timeout_ms")
                + ms("failover_delay_ms")
                + 1000;
        }
        if record["kind"] != "reply" || record["result"] != "granted" {
            return Ok(());
        }
        let t = record["t_ms"].as_u64().unwrap_or(0);
        let by = record["granted_by"].as_u64().unwrap_or(0);
        if by == 3 {
            return Err((
                "server #3 granted a seat".to_string(),
                vec![line.to_string()],
            ));
        }
        if record.get("borrow_end_ms").is_some() && by != 1 {
            return Err((
                format!("a borrow was granted by #{by}, not #1"),
                vec![line.to_string()],
            ));
        }
        let fresh = record["server"].as_u64() == Some(by);
        if by == 2
            && fresh
            && self.handover_ms > 0
            && let Some(since) = self.links.steady_since(0)
            && t.saturating_sub(since) > self.handover_ms
        {
            let what = format!(
                "#2 granted while #1 had been up and connected to a peer since {since} ms ({} ms, more than the {} ms a failback takes)",
                t - since,
                self.handover_ms
            );
            return Err((what, vec![line.to_string()]));
        }
        Ok(())
    }
}
