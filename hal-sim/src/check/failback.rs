//! Invariant 8 (an addition to DESIGN §6.3, from the HAL rules of DESIGN §2): the failback
//! hold. When #1 comes back while #2 serves, it takes the active role back only after it
//! has been reachable without interruption for `failback_hold`, so that a flapping link
//! does not flap the role. Invariant 2 bounds a failback from above (#2 must not serve
//! long after #1 is back); this bounds it from below.
//!
//! Judged when #1 becomes active and the server active before it was #2 (`role`
//! records): #1 must have been up and connected to a peer (as the fault records tell it:
//! the earliest it can have been) for the hold, less a small margin for its clock's drift.
//! A cut shorter than the gap the servers tolerate (half an election timeout) need not
//! restart the hold; a crash of #1 always does.
//! Not judged when #2 lost the role some other way: #2 crashed, or a link of its was cut,
//! slow or flapping since it became active (then #1 may win an ordinary election at once).
//! #1 active again after a spell of its own away (#2 never active meanwhile) is not a
//! failback either.

use hal_core::record::{FaultKind, Record, RoleName};

use super::Invariant;
use super::links::Links;

#[derive(Debug, Default)]
pub(super) struct FailbackHold {
    links: Links,
    hold_ms: u64,
    /// A break in #1's connection shorter than this need not restart the hold: the
    /// servers count a gap in contact as an interruption only from half an election
    /// timeout (`Timing::contact_gap_max`), and a shorter cut may leave no longer gap.
    gap_ms: u64,
    /// Since when #1 has been up and connected, breaks shorter than `gap_ms` aside
    /// (None: not now).
    since: Option<u64>,
    /// The last break: when it began, and `since` before it (None after a crash of #1:
    /// #1 knows of its own restart, however short).
    broke: Option<(u64, Option<u64>)>,
    /// The server that last became active, when, and its record.
    last_active: Option<(u8, u64, String)>,
}

impl FailbackHold {
    /// Follows #1's connection after the record at `t` (only fault records change it).
    fn follow_one(&mut self, record: &Record, t: u64) {
        let of_one = |kind: FaultKind| {
            matches!(record, Record::Fault(fault)
                if fault.fault == kind && fault.servers_a().any(|s| s == 1))
        };
        if of_one(FaultKind::Restart) {
            // Up again (or restarted while up, which is a break all the same).
            self.since = self.links.connected_since(0);
            self.broke = None;
            return;
        }
        let one_crashed = of_one(FaultKind::Crash) || of_one(FaultKind::Stop);
        if one_crashed && let Some((at, _)) = self.broke {
            self.broke = Some((at, None));
        }
        match (self.links.connected_since(0), self.since) {
            (Some(now), None) => {
                self.since = match self.broke.take() {
                    Some((at, Some(before))) if now.saturating_sub(at) < self.gap_ms => {
                        Some(before)
                    }
                    _ => Some(now),
                };
            }
            (None, Some(before)) => {
                self.since = None;
                self.broke = Some((t, (!one_crashed).then_some(before)));
            }
            _ => {}
        }
    }
}

impl Invariant for FailbackHold {
    fn name(&self) -> &'static str {
        "8 failback hold"
    }

    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)> {
        self.links.observe(record);
        // A history's meta record has no time: it is the start of the run.
        let t = record.t_ms().unwrap_or(0);
        if let Record::Meta(meta) = record {
            self.hold_ms = meta.failback_hold_ms;
            self.gap_ms = meta.election_timeout_ms / 2;
            self.since = Some(0);
        }
        self.follow_one(record, t);
        let server = match record {
            Record::Role(role) if role.role == RoleName::Active => role.server,
            _ => return Ok(()),
        };
        let previous = self.last_active.replace((server, t, line.to_string()));
        let Some((2, t2, two_line)) = previous else {
            return Ok(());
        };
        if server != 1 || self.links.steady_since(1).is_none_or(|s| s > t2) {
            return Ok(());
        }
        let Some(since) = self.since else {
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
