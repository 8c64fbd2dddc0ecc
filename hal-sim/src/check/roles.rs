//! Invariant 2, the role rule: #3 never grants; borrows are granted only by #1; and #2
//! does not grant while #1 is healthy — up, with both peers up and every link whole and
//! steady — for longer than it takes #2 to hand the role back (`failback_hold`, plus an
//! election and a transfer: 2 × `election_timeout` + `failover_delay`, and a second of
//! slack). (Under a partial cut #2 may rightly stay active while #1 is up: the rule of
//! DESIGN §2 keeps whoever is active, so as not to flap.)

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
            && let Some(since) = self.links.whole_since(0)
            && t.saturating_sub(since) > self.handover_ms
        {
            let what = format!(
                "#2 granted while #1 had been healthy and fully connected since {since} ms ({} ms, more than the {} ms a failback takes)",
                t - since,
                self.handover_ms
            );
            return Err((what, vec![line.to_string()]));
        }
        Ok(())
    }
}
