//! Invariant 8 (an addition to DESIGN §6.3, from the HAL rules of DESIGN §2): the failback
//! hold. When #1 comes back while #2 serves, it takes the active role back only after it
//! has been reachable without interruption for `failback_hold`, so that a flapping link
//! does not flap the role. Invariant 2 bounds a failback from above (#2 must not serve
//! long after #1 is back); this bounds it from below.
//!
//! Judged at each fresh grant by #1 whose previous grant was by #2: #1 must have been up
//! and connected to a peer (as the fault records tell it: the earliest it can have been)
//! for the hold, less a small margin for its clock's drift. Not judged when #2 lost the
//! role some other way: #2 crashed, or a link of its was cut, slow or flapping since its
//! last grant (then #1 may win an ordinary election at once).

use serde_json::Value;

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct FailbackHold {
    links: Links,
    hold_ms: u64,
    /// The last fresh grant by #2, and its record.
    two_granted: Option<(u64, String)>,
    /// The last fresh grant by #1.
    one_granted_at: Option<u64>,
}

impl Invariant for FailbackHold {
    fn name(&self) -> &'static str {
        "8 failback hold"
    }

    fn observe(&mut self, record: &Value, line: &str) -> Result<(), (String, Vec<String>)> {
        self.links.observe(record);
        if record["kind"] == "meta" {
            self.hold_ms = record["failback_hold_ms"].as_u64().unwrap_or(0);
        }
        if record["kind"] != "reply" || record["result"] != "granted" {
            return Ok(());
        }
        let by = record["granted_by"].as_u64().unwrap_or(0);
        // A retry's answer repeats an old grant: only a server's own fresh grant shows
        // who serves now.
        if record["server"].as_u64() != Some(by) {
            return Ok(());
        }
        let t = record["t_ms"].as_u64().unwrap_or(0);
        match by {
            2 => self.two_granted = Some((t, line.to_string())),
            1 => {
                let handed_back = self
                    .two_granted
                    .as_ref()
                    .filter(|(t2, _)| self.one_granted_at.is_none_or(|t1| *t2 > t1));
                if let Some((t2, two_line)) = handed_back
                    && self.links.steady_since(1).is_some_and(|s| s <= *t2)
                    && let Some(since) = self.links.connected_since(0)
                {
                    // #1's clock may run fast by up to 500 ppm (the drift faults).
                    let margin = 100 + self.hold_ms / 100;
                    let back_for = t.saturating_sub(since);
                    if back_for.saturating_add(margin) < self.hold_ms {
                        let what = format!(
                            "#1 took the role back from #2 (which granted at {t2} ms) {back_for} ms after it was up and connected again (at {since} ms), before the {} ms failback hold",
                            self.hold_ms
                        );
                        return Err((what, vec![two_line.clone(), line.to_string()]));
                    }
                }
                self.one_granted_at = Some(t);
            }
            _ => {}
        }
        Ok(())
    }
}
