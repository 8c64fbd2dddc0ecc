//! Invariant 1, no overuse: at no instant do clients hold more seats of a feature than its
//! COUNT, a seat being held as the client library counts it ([`super::leases`]): so a
//! frozen client that has not noticed its lease ran out holds nothing.
//!
//! The COUNT is the one in force: the meta record's, then each pushed license's from the
//! moment the first server switches to it (a `license` record; a raised COUNT is granted
//! only by a leader that switched). A COUNT lowered below the seats held keeps them: the
//! seats held then, and those granted by requests already under way (decided under the
//! old COUNT), may stay above the new COUNT. That allowance shrinks with every seat given
//! back and every such request refused, given up or abandoned by a process that died;
//! above the new COUNT only those requests may be granted. A COUNT raised again while an
//! allowance stands keeps the requests it was for.

use std::collections::{BTreeMap, BTreeSet};

use hal_core::record::{ClientEventRecord, OpName, Record};

use super::Invariant;
use super::leases::Leases;

/// The seats a lowered COUNT lets stay above it.
#[derive(Debug)]
struct Allowance {
    /// The most seats that may be held.
    limit: u64,
    /// The requests under way when the COUNT was lowered: (client, req).
    under_way: BTreeSet<(String, u64)>,
}

#[derive(Debug, Default)]
pub(super) struct NoOveruse {
    /// Each feature's COUNT in force (a feature it does not name has none).
    count: BTreeMap<String, u64>,
    /// Features whose COUNT was lowered below what was held or asked.
    allowance: BTreeMap<String, Allowance>,
    /// The log indices of the licenses seen in force.
    licenses: BTreeSet<u64>,
    /// Checkouts and borrows sent and not yet granted or refused: (client, req) → feature.
    asked: BTreeMap<(String, u64), String>,
    leases: Leases,
}

impl NoOveruse {
    fn held(&self, feature: &str) -> u64 {
        let held = self.leases.held.values().filter(|s| s.feature == feature);
        held.count() as u64
    }

    /// The license in force from `index` on has these COUNTs.
    fn license(&mut self, index: u64, features: &BTreeMap<String, u32>) {
        if !self.licenses.insert(index) {
            return;
        }
        let mut names: BTreeSet<String> = self.count.keys().cloned().collect();
        names.extend(features.keys().cloned());
        for name in names {
            let new = features.get(&name).map_or(0, |c| u64::from(*c));
            let old = self.count.get(&name).copied().unwrap_or(0);
            self.count.insert(name.clone(), new);
            // Requests under way were decided under an earlier COUNT: the highest of the
            // old one and any allowance still standing.
            let earlier = old.max(self.allowance.get(&name).map_or(0, |a| a.limit));
            if new >= earlier {
                self.allowance.remove(&name);
                continue;
            }
            let mut under_way: BTreeSet<(String, u64)> = self
                .asked
                .iter()
                .filter(|(_, f)| **f == name)
                .map(|(k, _)| k.clone())
                .collect();
            if let Some(standing) = self.allowance.remove(&name) {
                under_way.extend(standing.under_way);
            }
            let limit = self.held(&name) + under_way.len() as u64;
            if limit > new {
                self.allowance.insert(name, Allowance { limit, under_way });
            }
        }
    }

    /// Follows requests under way, and shrinks allowances as their requests are refused.
    fn follow_requests(&mut self, record: &Record) {
        match record {
            // A wait is not under way in this sense: whatever its entry's COUNT, it gets
            // a seat only as the one in force at its turn allows.
            Record::Request(request) if matches!(request.op, OpName::Checkout | OpName::Borrow) => {
                if let Some(feature) = &request.feature {
                    let key = (request.client.clone(), request.req);
                    self.asked.insert(key, feature.clone());
                }
            }
            Record::Client(client) => {
                let ended: Vec<(String, u64)> = match &client.event {
                    // A grant keeps its place in the allowance until it is judged.
                    ClientEventRecord::Granted { req, .. } => {
                        self.asked.remove(&(client.client.clone(), *req));
                        return;
                    }
                    // Refused, or given up (no seat the client counts): its place goes.
                    ClientEventRecord::Denied { req, .. }
                    | ClientEventRecord::Unknown { req, .. } => {
                        vec![(client.client.clone(), *req)]
                    }
                    // A process that died asks for nothing any more.
                    ClientEventRecord::Crashed { .. } => self
                        .asked
                        .keys()
                        .filter(|(c, _)| *c == client.client)
                        .cloned()
                        .collect(),
                    _ => return,
                };
                for key in ended {
                    let Some(feature) = self.asked.remove(&key) else {
                        continue;
                    };
                    if let Some(allowance) = self.allowance.get_mut(&feature)
                        && allowance.under_way.remove(&key)
                    {
                        allowance.limit = allowance.limit.saturating_sub(1);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Invariant for NoOveruse {
    fn name(&self) -> &'static str {
        "1 no overuse"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        match record {
            Record::Meta(meta) => {
                for (name, feature) in &meta.features {
                    self.count.insert(name.clone(), u64::from(feature.count));
                }
            }
            Record::License(license) => self.license(license.index, &license.features),
            _ => {}
        }
        self.follow_requests(record);
        let before: Vec<(String, u64)> = self
            .allowance
            .keys()
            .map(|f| (f.clone(), self.held(f)))
            .collect();
        let granted = self.leases.observe(record, line);
        // Every seat given back (or lost) uses up a seat of a lowered COUNT's allowance.
        for (feature, held_before) in before {
            let given_back = held_before.saturating_sub(self.held(&feature));
            let count = self.count.get(&feature).copied().unwrap_or(0);
            if let Some(allowance) = self.allowance.get_mut(&feature) {
                allowance.limit = allowance.limit.saturating_sub(given_back);
                if allowance.limit <= count {
                    self.allowance.remove(&feature);
                }
            }
        }
        let Some(feature) = granted else {
            return Ok(());
        };
        let holding: Vec<String> = self
            .leases
            .held
            .values()
            .filter(|s| s.feature == feature)
            .map(|s| s.granted.clone())
            .collect();
        let count = self.count.get(&feature).copied().unwrap_or(0);
        // Above a lowered COUNT, only a request under way when it was lowered may be
        // granted (it was decided under the old one), within the allowance.
        let held = holding.len() as u64;
        let request = match record {
            Record::Client(c) => match &c.event {
                ClientEventRecord::Granted { req, .. } => Some((c.client.clone(), *req)),
                _ => None,
            },
            _ => None,
        };
        let kept = match self.allowance.get_mut(&feature) {
            Some(allowance) => {
                let was_under_way = request.is_some_and(|r| allowance.under_way.remove(&r));
                if held > count && !was_under_way {
                    count
                } else {
                    allowance.limit
                }
            }
            None => 0,
        };
        if held > count.max(kept) {
            let mut what = format!(
                "{} seats of {feature} held at once; COUNT is {count}",
                holding.len()
            );
            if let Some(allowance) = self.allowance.get(&feature) {
                what.push_str(&format!(
                    " (lowered by a license push: of the seats held or asked for then, {} \
                     may stay, and only the {} requests still under way may be granted above it)",
                    allowance.limit,
                    allowance.under_way.len()
                ));
            }
            return Err((what, holding));
        }
        Ok(())
    }
}
