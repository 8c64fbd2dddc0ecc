//! Invariant 3, the majority rule: a grant comes only from a server that was connected to
//! a live peer (up, with the link whole both ways) at some moment between the request
//! reaching it and the grant. Servers with a flapping or slow link are not judged: the
//! history cannot tell whether a message got through.

use std::collections::BTreeMap;

use hal_core::record::Record;

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct MajorityRule {
    links: Links,
    /// (client, req, server) → when the request first went there.
    first_sent: BTreeMap<(String, u64, u8), u64>,
}

impl Invariant for MajorityRule {
    fn name(&self) -> &'static str {
        "3 majority rule"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        self.links.observe(record);
        let (reply, grant) = match record {
            Record::Request(request) => {
                // A send to no known server cannot be the one a server granted.
                if let Some(server) = request.server {
                    let key = (request.client.clone(), request.req, server);
                    self.first_sent.entry(key).or_insert(request.t_ms);
                }
                return Ok(());
            }
            Record::Reply(reply) => match reply.grant() {
                Some(grant) => (reply, grant),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        // Only a grant the answering server decided is judged: a retry answered after a
        // failover names the leader that decided it (`granted_by`), not this server.
        let server = reply.server;
        if grant.granted_by != server {
            return Ok(());
        }
        let slot = usize::from(server).saturating_sub(1).min(2);
        let t = reply.t_ms;
        let from = self
            .first_sent
            .get(&(reply.client.clone(), reply.req, server))
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
