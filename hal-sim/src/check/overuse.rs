//! Invariant 1, no overuse: at no instant do clients hold more seats of a feature than its
//! COUNT. A client holds a seat from the moment its application is told "granted" until
//! it sends the checkin (or return), its lease runs out, or its borrow ends.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Invariant;

/// A seat as the checker knows it: who holds it.
type Holder = (String, String); // (client, handle)

#[derive(Debug, Default)]
pub(super) struct NoOveruse {
    count: BTreeMap<String, u64>,
    /// Per feature, the seats held now and the record that granted each.
    held: BTreeMap<String, BTreeMap<Holder, String>>,
}

impl NoOveruse {
    fn release(&mut self, holder: &Holder) {
        for seats in self.held.values_mut() {
            seats.remove(holder);
        }
    }
}

impl Invariant for NoOveruse {
    fn name(&self) -> &'static str {
        "1 no overuse"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        let kind = record["kind"].as_str().unwrap_or("");
        let holder = (
            record["client"].as_str().unwrap_or("").to_string(),
            record["handle"].as_str().unwrap_or("").to_string(),
        );
        match (kind, record["event"].as_str(), record["op"].as_str()) {
            ("meta", _, _) => {
                if let Some(features) = record["features"].as_object() {
                    for (name, f) in features {
                        self.count
                            .insert(name.clone(), f["count"].as_u64().unwrap_or(0));
                    }
                }
            }
            ("client", Some("granted"), _) => {
                let feature = record["feature"].as_str().unwrap_or("").to_string();
                let seats = self.held.entry(feature.clone()).or_default();
                seats.entry(holder).or_insert_with(|| line.to_string());
                let used = seats.len() as u64;
                let count = self.count.get(&feature).copied().unwrap_or(0);
                if used > count {
                    let what = format!("{used} seats of {feature} held at once; COUNT is {count}");
                    return Err((what, seats.values().cloned().collect()));
                }
            }
            ("client", Some("lost" | "borrow_end"), _)
            | ("request", _, Some("checkin" | "return")) => self.release(&holder),
            _ => {}
        }
        Ok(())
    }
}
