//! Invariant 4, no lost seat: a server never answers "unknown handle" to a client whose
//! lease on that seat is intact (as the client counts it, [`super::leases`]).

use serde_json::Value;

use super::Invariant;
use super::leases::Leases;

#[derive(Debug, Default)]
pub(super) struct NoLostSeat {
    leases: Leases,
}

impl Invariant for NoLostSeat {
    fn name(&self) -> &'static str {
        "4 no lost seat"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        // Judged against the leases as they were before this record.
        if record["kind"] == "reply" {
            let t = record["t_ms"].as_u64().unwrap_or(0);
            let client = record["client"].as_str().unwrap_or("").to_string();
            for handle in record["unknown"].as_array().into_iter().flatten() {
                let holder = (client.clone(), handle.as_str().unwrap_or("").to_string());
                if let Some(seat) = self.leases.held.get(&holder)
                    && seat.lease_until > t
                {
                    let what = format!(
                        "server #{} said {} of {client} is unknown while its lease runs until {} ms",
                        record["server"], holder.1, seat.lease_until
                    );
                    return Err((what, vec![seat.granted.clone(), line.to_string()]));
                }
            }
        }
        self.leases.observe(record, line);
        Ok(())
    }
}
