//! Invariant 4, no lost seat: a server never answers "unknown handle" to a client whose
//! lease on that seat is intact (as the client counts it, [`super::leases`]).

use hal_core::record::{Answer, Record, ReplyRecord};

use super::Invariant;
use super::leases::Leases;

#[derive(Debug, Default)]
pub(super) struct NoLostSeat {
    leases: Leases,
}

impl NoLostSeat {
    /// The first handle `reply` says is unknown while its client's lease on it is intact.
    fn lost(&self, reply: &ReplyRecord, line: &str) -> Result<(), (String, Vec<String>)> {
        let Answer::Heartbeat(beat) = &reply.answer else {
            return Ok(());
        };
        // A seat an administrator removed is not lost: the answer says it was removed.
        for handle in beat.unknown.iter().filter(|h| !beat.removed.contains(h)) {
            let holder = (reply.client.clone(), handle.clone());
            if let Some(seat) = self.leases.held.get(&holder)
                && seat.lease_until > reply.t_ms
            {
                let what = format!(
                    "server #{} said {handle} of {} is unknown while its lease runs until {} ms",
                    reply.server, reply.client, seat.lease_until
                );
                return Err((what, vec![seat.granted.clone(), line.to_string()]));
            }
        }
        Ok(())
    }
}

impl Invariant for NoLostSeat {
    fn name(&self) -> &'static str {
        "4 no lost seat"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        // Judged against the leases as they were before this record.
        if let Record::Reply(reply) = record {
            self.lost(reply, line)?;
        }
        self.leases.observe(record, line);
        Ok(())
    }
}
