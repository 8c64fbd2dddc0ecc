//! Invariant 8 (an addition to DESIGN §6.3, from the HAL rules of DESIGN §2): the failback
//! hold. When #1 comes back while #2 serves, it takes the active role back only after it
//! has been reachable without interruption for `failback_hold`, so that a flapping link
//! does not flap the role. Invariant 2 bounds a failback from above (#2 must not serve
//! long after #1 is back); this bounds it from below.
//!
//! Judged when #1 becomes active and the server active before it was #2 (`role`
//! records): #1 must have been up and connected to a peer (as the fault records tell it:
//! the earliest it can have been) for the hold, less a small margin for its clock's drift.
//! Not judged when #2 lost the role some other way: #2 crashed, or a link of its was cut,
//! slow or flapping since it became active (then #1 may win an ordinary election at once).
//! #1 active again after a spell of its own away (#2 never active meanwhile) is not a
//! failback either.

use serde_json::Value;

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct FailbackHold {
    links: Links,
    hold_ms: u64,
    /// The server that last became active, when, and its record.
    last_active: Option<(u64, u64, String)>,
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
        if record["kind"] != "role" || record["role"] != "active" {
            return Ok(());
        }
        let t = record["t_ms"].as_u64().unwrap_or(0);
        let server = record["server"].as_u64().unwrap_or(0);
        let previous = self.last_active.replace((server, t, line.to_string()));
        let Some((2, t2, two_line)) = previous else {
            return Ok(());
        };
        if server != 1 || self.links.steady_since(1).is_none_or(|s| s > t2) {
            return Ok(());
        }
        let Some(since) = self.links.connected_since(0) else {
            return Ok(());
        };
        // #1's clock may run fast by up to 500 ppm (the drift faults).
        let margin = 100 + self.hold_ms / 100;
        let back_for = t.saturating_sub(since);
        if back_for.saturating_add(margin) < self.hold_ms {
            let what = format!(
                "#1 took the role back from #2 (active since {t2} ms) {back_for} ms after it was up and connected again (at {since} ms), before the {} ms failback hold",
                self.hold_ms
            );
            return Err((what, vec![two_line, line.to_string()]));
        }
        Ok(())
    }
}
