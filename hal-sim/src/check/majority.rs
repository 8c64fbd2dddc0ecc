//! Invariant 3, the majority rule: a grant comes only from a server that was connected to
//! a live peer (up, with the link whole both ways) at some moment between the request
//! reaching it and the grant. Servers with a flapping or slow link are not judged: the
//! history cannot tell whether a message got through.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct MajorityRule {
    links: Links,
    /// (client, req, server) → when the request first went there.
    first_sent: BTreeMap<(String, u64, u64), u64>,
}

impl Invariant for MajorityRule {
    fn name(&self) -> &'static str {
        "3 majority rule"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        self.links.observe(record);
        let client = record["client"].as_str().unwrap_or("").to_string();
        let req = record["req"].as_u64().unwrap_or(0);
        let server = record["server"].as_u64().unwrap_or(0);
        let t = record["t_ms"].as_u64().unwrap_or(0);
        if record["kind"] == "request" {
            self.first_sent.entry((client, req, server)).or_insert(t);
            return Ok(());
        }
        let fresh = record["granted_by"].as_u64() == Some(server);
        if record["kind"] != "reply" || record["result"] != "granted" || !fresh {
            return Ok(());
        }
        let slot = (server as usize).saturating_sub(1).min(2);
        let from = self
            .first_sent
            .get(&(client, req, server))
            .copied()
            .unwrap_or(t);
        if !self.links.shaky(slot) && !self.links.connected_during(slot, from) {
            let what = format!(
                "#{server} granted while cut off from every live peer since before the request ({from} ms)"
            );
            return Err((what, vec![line.to_string()]));
        }
        Ok(())
    }
}
