//! Invariant 13 (an addition to DESIGN §6.3), first come, first served: a checkout that
//! waits in a feature's queue (`checkout --wait`) is never passed by a later request for
//! the same feature. Judged on the servers' `seat` records, in log order: a waiting
//! request is granted only when no request queued before it still waits, and a new
//! request (a checkout, a borrow, a wait that finds a seat at once) only when the free
//! seats outnumber the requests waiting for them.
//!
//! Every server applies the same log, so the log is followed once: each index as the
//! first server to apply it reports it (a server that restarts, or installs a snapshot,
//! reports only what it applies afterwards, which another server reported first). COUNT
//! is the license's in force at the index.
//!
//! The options may let a later request pass: a waiting user at its MAX, or free seats a
//! RESERVE keeps for others. For a feature the options in force give a MAX or a RESERVE,
//! this checker does not judge the order (the servers apply those rules alike, and
//! hal-core's tests check the order they allow).

use std::collections::BTreeMap;

use hal_core::options::Rule;
use hal_core::record::{Record, SeatChangeName, SeatRecord};

use super::Invariant;

#[derive(Debug, Default)]
pub(crate) struct QueueOrder {
    /// COUNT by feature, from each index a license took effect at (0: the run's own).
    counts: BTreeMap<u64, BTreeMap<String, u32>>,
    /// The features whose order the options in force leave unjudged, from each index.
    unjudged: BTreeMap<u64, Vec<String>>,
    /// The newest index followed, and the server whose records of it are followed.
    at: (u64, u8),
    /// Seats held, by feature, and each held seat's feature by handle.
    used: BTreeMap<String, u32>,
    held: BTreeMap<String, String>,
    /// The requests waiting, by feature, first come first: (client, req, its record).
    queues: BTreeMap<String, Vec<(String, u64, String)>>,
}

impl QueueOrder {
    fn count(&self, index: u64, feature: &str) -> u32 {
        self.counts
            .range(..index)
            .next_back()
            .and_then(|(_, counts)| counts.get(feature).copied())
            .unwrap_or(0)
    }

    fn judged(&self, index: u64, feature: &str) -> bool {
        !self
            .unjudged
            .range(..index)
            .next_back()
            .is_some_and(|(_, features)| features.iter().any(|f| f == feature))
    }

    /// Follows one change, judging a grant.
    fn apply(&mut self, seat: &SeatRecord, line: &str) -> Result<(), (String, Vec<String>)> {
        let feature = seat.feature.clone();
        let key = (seat.client.clone(), seat.req.unwrap_or(0));
        match seat.change {
            SeatChangeName::Queued => {
                let queue = self.queues.entry(feature).or_default();
                queue.push((key.0, key.1, line.to_string()));
            }
            SeatChangeName::LeftQueue => self.leave(&feature, &key),
            SeatChangeName::Granted | SeatChangeName::Borrowed => {
                let used = self.used.get(&feature).copied().unwrap_or(0);
                let free = self.count(seat.index, &feature).saturating_sub(used);
                let queue = self.queues.get(&feature).map_or(&[][..], Vec::as_slice);
                let place = queue
                    .iter()
                    .position(|(c, r, _)| (c, r) == (&key.0, &key.1));
                let passed = match place {
                    // A waiter: the ones before it still wait.
                    Some(place) => &queue[..place],
                    // A newcomer: as many wait as there are seats free (or more).
                    None if queue.len() >= free as usize => queue,
                    None => &[],
                };
                if let Some((client, req, queued)) = passed.first()
                    && self.judged(seat.index, &feature)
                {
                    let who = match place {
                        Some(_) => "a request queued after it",
                        None => "a new request",
                    };
                    return Err((
                        format!(
                            "{client}'s waiting request {req} for {feature} was passed: {who} ({} request {}) got a seat at index {} with {free} seat(s) free and {} waiting",
                            seat.client,
                            key.1,
                            seat.index,
                            queue.len()
                        ),
                        vec![queued.clone(), line.to_string()],
                    ));
                }
                self.leave(&feature, &key);
                self.used.insert(feature.clone(), used.saturating_add(1));
                self.held.insert(seat.handle.clone(), feature);
            }
            SeatChangeName::Released
            | SeatChangeName::Returned
            | SeatChangeName::Expired
            | SeatChangeName::Removed => {
                if let Some(feature) = self.held.remove(&seat.handle)
                    && let Some(used) = self.used.get_mut(&feature)
                {
                    *used = used.saturating_sub(1);
                }
            }
        }
        Ok(())
    }

    fn leave(&mut self, feature: &str, (client, req): &(String, u64)) {
        if let Some(queue) = self.queues.get_mut(feature) {
            queue.retain(|(c, r, _)| (c, r) != (client, req));
        }
    }
}

impl Invariant for QueueOrder {
    fn name(&self) -> &'static str {
        "13 first come, first served"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        match record {
            Record::Meta(meta) => {
                let counts = meta
                    .features
                    .iter()
                    .map(|(name, f)| (name.clone(), f.count))
                    .collect();
                self.counts.insert(0, counts);
            }
            Record::License(license) => {
                self.counts
                    .entry(license.index)
                    .or_insert_with(|| license.features.clone());
            }
            Record::Options(options) => {
                let rules = hal_core::options::parse_in_force("options", &options.text).ok();
                let features = rules
                    .iter()
                    .flat_map(|o| o.rules())
                    .filter_map(|(_, rule)| match rule {
                        Rule::Max { feature, .. } | Rule::Reserve { feature, .. } => {
                            Some(feature.clone())
                        }
                        _ => None,
                    })
                    .collect();
                self.unjudged.entry(options.index).or_insert(features);
            }
            Record::Seat(seat) => {
                let (index, server) = self.at;
                if seat.index > index {
                    self.at = (seat.index, seat.server);
                } else if seat.index < index || seat.server != server {
                    // Followed already, as another server (or earlier) reported it.
                    return Ok(());
                }
                return self.apply(seat, line);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(checker: &mut QueueOrder, line: &str) -> Result<(), (String, Vec<String>)> {
        let entry: hal_core::record::Entry = serde_json::from_str(line).unwrap();
        checker.observe(&entry.record, line)
    }

    fn seat(server: u8, index: u64, change: &str, client: &str, req: u64, handle: u64) -> String {
        format!(
            r#"{{"kind":"seat","t_ms":{index},"server":{server},"index":{index},"change":"{change}","handle":"h{handle}","feature":"cad","client":"{client}","req":{req}}}"#
        )
    }

    /// A run whose license has two seats of `cad`, both held, with c3 and c4 waiting.
    fn two_waiting() -> QueueOrder {
        let mut checker = QueueOrder::default();
        let meta = concat!(
            r#"{"kind":"meta","schema":2,"features":{"cad":{"count":2,"hal":true}},"#,
            r#""lease_ms":4000,"election_timeout_ms":1000,"failover_delay_ms":500,"#,
            r#""failback_hold_ms":5000,"max_clock_skew_ms":500}"#
        );
        let entry: hal_core::record::Entry = serde_json::from_str(meta).unwrap();
        checker.observe(&entry.record, meta).unwrap();
        for line in [
            seat(1, 1, "granted", "c1", 1, 1),
            seat(2, 1, "granted", "c1", 1, 1),
            seat(1, 2, "granted", "c2", 1, 2),
            seat(1, 3, "queued", "c3", 1, 3),
            seat(1, 4, "queued", "c4", 1, 4),
            seat(1, 5, "released", "c1", 2, 1),
        ] {
            observe(&mut checker, &line).unwrap();
        }
        checker
    }

    #[test]
    fn waiters_served_in_their_turn_pass() {
        let mut checker = two_waiting();
        observe(&mut checker, &seat(1, 6, "granted", "c3", 1, 6)).unwrap();
        // #2 reports the same index late: not followed twice.
        observe(&mut checker, &seat(2, 6, "granted", "c3", 1, 6)).unwrap();
        observe(&mut checker, &seat(1, 7, "released", "c2", 2, 2)).unwrap();
        observe(&mut checker, &seat(2, 8, "granted", "c4", 1, 8)).unwrap();
    }

    #[test]
    fn a_later_waiter_served_first_is_caught() {
        let mut checker = two_waiting();
        let (what, evidence) =
            observe(&mut checker, &seat(1, 6, "granted", "c4", 1, 6)).expect_err("c4 passed c3");
        assert!(
            what.contains("c3's waiting request 1 for cad was passed"),
            "{what}"
        );
        assert_eq!(evidence.len(), 2);
    }

    #[test]
    fn a_newcomer_taking_a_seat_a_waiter_needs_is_caught() {
        let mut checker = two_waiting();
        let (what, _) = observe(&mut checker, &seat(1, 6, "granted", "c9", 1, 6))
            .expect_err("c9 took c3's seat");
        assert!(what.contains("a new request (c9 request 1)"), "{what}");
    }

    #[test]
    fn options_with_a_max_leave_the_order_unjudged() {
        let mut checker = two_waiting();
        let options = r#"{"kind":"options","t_ms":5,"server":1,"index":5,"by":"root@admin","text":"MAX 1 cad USER c3\n"}"#;
        observe(&mut checker, options).unwrap();
        observe(&mut checker, &seat(1, 6, "granted", "c4", 1, 6)).unwrap();
    }
}
