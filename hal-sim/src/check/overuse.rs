//! Invariant 1, no overuse: at no instant do clients hold more seats of a feature than its
//! COUNT, a seat being held as the client library counts it ([`super::leases`]): so a
//! frozen client that has not noticed its lease ran out holds nothing.

use std::collections::BTreeMap;

use hal_core::record::Record;

use super::Invariant;
use super::leases::Leases;

#[derive(Debug, Default)]
pub(super) struct NoOveruse {
    /// Each feature's COUNT, from the meta record (a feature it does not name has none).
    count: BTreeMap<String, u64>,
    leases: Leases,
}

impl Invariant for NoOveruse {
    fn name(&self) -> &'static str {
        "1 no overuse"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        if let Record::Meta(meta) = record {
            for (name, feature) in &meta.features {
                self.count.insert(name.clone(), u64::from(feature.count));
            }
        }
        let Some(feature) = self.leases.observe(record, line) else {
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
        if holding.len() as u64 > count {
            let what = format!(
                "{} seats of {feature} held at once; COUNT is {count}",
                holding.len()
            );
            return Err((what, holding));
        }
        Ok(())
    }
}
