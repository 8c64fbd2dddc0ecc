//! Invariant 2, the role rule, as DESIGN §6.3 states it: #3 never grants; borrows are
//! granted only by #1; and #2 grants only when #1 has not been up and connected to a peer
//! — either one: #1 in contact with #3 alone is not "#1 down" — for longer than it takes
//! the role to come back to #1 (`failback_hold`, plus an election and a transfer:
//! 2 × `election_timeout` + `failover_delay`, and a second of slack). "Connected" is a
//! steady link, whole both ways: over a flapping or slow link the servers rightly take
//! the gaps for interruptions and restart the hold, so as not to flap the role.

use hal_core::record::Record;

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct RoleRule {
    links: Links,
    /// How long #1 may be healthy while #2 still grants (from the meta record; #2's
    /// grants are not judged without it).
    handover_ms: Option<u64>,
}

impl Invariant for RoleRule {
    fn name(&self) -> &'static str {
        "2 role rule"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        self.links.observe(record);
        let (reply, grant) = match record {
            Record::Meta(meta) => {
                self.handover_ms = Some(
                    meta.failback_hold_ms
                        + 2 * meta.election_timeout_ms
                        + meta.failover_delay_ms
                        + 1000,
                );
                return Ok(());
            }
            Record::Reply(reply) => match reply.grant() {
                Some(grant) => (reply, grant),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        let t = reply.t_ms;
        let by = grant.granted_by;
        if by == 3 {
            return Err((
                "server #3 granted a seat".to_string(),
                vec![line.to_string()],
            ));
        }
        if grant.borrow_end_ms.is_some() && by != 1 {
            return Err((
                format!("a borrow was granted by #{by}, not #1"),
                vec![line.to_string()],
            ));
        }
        let fresh = reply.server == by;
        if by == 2
            && fresh
            && let Some(handover_ms) = self.handover_ms
            && let Some(since) = self.links.steady_since(0)
            && t.saturating_sub(since) > handover_ms
        {
            let what = format!(
                "#2 granted while #1 had been up and connected to a peer since {since} ms ({} ms, more than the {handover_ms} ms a failback takes)",
                t - since
            );
            return Err((what, vec![line.to_string()]));
        }
        Ok(())
    }
}
