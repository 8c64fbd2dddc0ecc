//! Invariant 5, one request, one seat: a request retried (after a timeout or a failover)
//! never yields a second handle. Judged on the replies clients get and on the grants the
//! servers apply (`applied` records): a second seat whose reply was lost is a second
//! seat all the same.

use std::collections::BTreeMap;

use hal_core::record::Record;

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

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        // (client, req, handle, the server that applied it if it is an applied grant)
        let (client, req, handle, applied_by) = match record {
            Record::Applied(applied) => (
                &applied.client,
                applied.req,
                applied.handle.as_str(),
                Some(applied.server),
            ),
            Record::Reply(reply) => match reply.grant() {
                Some(grant) => (&reply.client, reply.req, grant.handle.as_str(), None),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        match self.granted.get(&(client.clone(), req)) {
            None => {
                let first = (handle.to_string(), line.to_string());
                self.granted.insert((client.clone(), req), first);
                Ok(())
            }
            Some((first, _)) if first == handle => Ok(()),
            Some((first, first_line)) => Err((
                format!(
                    "request {req} of {client} was granted twice: {first}, then {handle}{}",
                    match applied_by {
                        Some(server) => format!(" (applied by #{server})"),
                        None => String::new(),
                    }
                ),
                vec![first_line.clone(), line.to_string()],
            )),
        }
    }
}
