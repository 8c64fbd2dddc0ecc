//! The leader's lease deadlines for checked-out seats (soft state, rebuilt at every term
//! start), kept compact because a server may hold a million seats.
//!
//! Handles are log indexes, so new seats arrive in increasing order: two parallel vectors
//! sorted by handle hold each seat's deadline (12 bytes a seat), updated by binary
//! search. Expired seats are found by a scan that resumes where it stopped, a bounded
//! number of entries per tick, so a seat may be expired somewhat after its deadline —
//! never before, which is the side that keeps a seat from being handed out twice.

use crate::protocol::Handle;
use crate::time::Time;

/// A deadline slot of a seat that is gone.
const GONE: u32 = u32::MAX;
/// The fewest entries one scan looks at.
const SCAN_MIN: usize = 4096;

#[derive(Debug, Clone, Default)]
pub(super) struct Leases {
    handles: Vec<Handle>,
    /// Deadlines in whole seconds since the clock's origin, rounded up; `GONE` when
    /// the seat was removed (compacted away once they are half the table).
    deadlines_s: Vec<u32>,
    gone: usize,
    /// Where the next expiry scan starts.
    cursor: usize,
}

/// A deadline in whole seconds, rounded up; never `GONE` (a deadline past the range of
/// seconds is the last second before it).
fn seconds_up(t: Time) -> u32 {
    u32::try_from(t.0.div_ceil(1000))
        .unwrap_or(GONE - 1)
        .min(GONE - 1)
}

impl Leases {
    /// Sets (or renews) a seat's deadline.
    pub(super) fn set(&mut self, handle: Handle, deadline: Time) {
        let deadline = seconds_up(deadline);
        if self.handles.last().is_none_or(|last| *last < handle) {
            self.handles.push(handle);
            self.deadlines_s.push(deadline);
            return;
        }
        match self.handles.binary_search(&handle) {
            Ok(at) => {
                if self.deadlines_s[at] == GONE {
                    self.gone = self.gone.saturating_sub(1);
                }
                self.deadlines_s[at] = deadline;
            }
            Err(at) => {
                self.handles.insert(at, handle);
                self.deadlines_s.insert(at, deadline);
                if at < self.cursor {
                    self.cursor = self.cursor.saturating_add(1);
                }
            }
        }
    }

    /// Whether the seat has a deadline.
    #[cfg(test)]
    fn contains(&self, handle: Handle) -> bool {
        self.handles
            .binary_search(&handle)
            .is_ok_and(|at| self.deadlines_s[at] != GONE)
    }

    /// Forgets a seat (released, expired, or borrowed).
    pub(super) fn remove(&mut self, handle: Handle) {
        if let Ok(at) = self.handles.binary_search(&handle)
            && self.deadlines_s[at] != GONE
        {
            self.deadlines_s[at] = GONE;
            self.gone = self.gone.saturating_add(1);
            if self.gone > self.handles.len() / 2 {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        let mut kept = 0;
        let mut cursor = self.cursor;
        for at in 0..self.handles.len() {
            if self.deadlines_s[at] == GONE {
                if at < self.cursor {
                    cursor = cursor.saturating_sub(1);
                }
                continue;
            }
            self.handles[kept] = self.handles[at];
            self.deadlines_s[kept] = self.deadlines_s[at];
            kept = kept.saturating_add(1);
        }
        self.handles.truncate(kept);
        self.deadlines_s.truncate(kept);
        self.gone = 0;
        self.cursor = cursor;
    }

    /// The seats past their deadline at `now` among the next eighth of the table (at
    /// least 4096 entries) from where the last scan stopped; they are removed.
    pub(super) fn take_expired(&mut self, now: Time) -> Vec<Handle> {
        let len = self.handles.len();
        if len == 0 {
            return Vec::new();
        }
        let now_s = u32::try_from(now.0 / 1000).unwrap_or(GONE - 1);
        let budget = SCAN_MIN.max(len.div_ceil(8)).min(len);
        let mut expired = Vec::new();
        for _ in 0..budget {
            if self.cursor >= len {
                self.cursor = 0;
            }
            let deadline = self.deadlines_s[self.cursor];
            if deadline != GONE && deadline <= now_s {
                expired.push(self.handles[self.cursor]);
            }
            self.cursor = self.cursor.saturating_add(1);
        }
        for handle in &expired {
            self.remove(*handle);
        }
        expired
    }

    /// The number of seats with a deadline.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.handles.len() - self.gone
    }

    /// Checks the table's own rules.
    pub(super) fn check_invariants(&self) {
        assert_eq!(
            self.handles.len(),
            self.deadlines_s.len(),
            "parallel vectors"
        );
        assert!(
            self.handles.windows(2).all(|w| w[0] < w[1]),
            "handles sorted, unique"
        );
        let gone = self.deadlines_s.iter().filter(|d| **d == GONE).count();
        assert_eq!(gone, self.gone, "gone entries counted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_renewed_and_expire_never_early() {
        let mut leases = Leases::default();
        leases.set(Handle(1), Time(10_500));
        leases.set(Handle(2), Time(20_000));
        leases.set(Handle(1), Time(30_000));
        assert_eq!(leases.take_expired(Time(19_999)), vec![]);
        assert_eq!(leases.take_expired(Time(20_000)), vec![Handle(2)]);
        assert_eq!(leases.len(), 1);
        // Rounded up to the second: 40_500 ms expires at 41 s, not before.
        leases.set(Handle(3), Time(40_500));
        assert_eq!(leases.take_expired(Time(40_999)), vec![Handle(1)]);
        assert_eq!(leases.take_expired(Time(41_000)), vec![Handle(3)]);
        leases.check_invariants();
    }

    #[test]
    fn removal_compacts_and_out_of_order_handles_are_placed() {
        let mut leases = Leases::default();
        for h in [5, 7, 9, 11] {
            leases.set(Handle(h), Time(1000));
        }
        leases.set(Handle(6), Time(1000));
        assert!(leases.contains(Handle(6)));
        for h in [5, 6, 7] {
            leases.remove(Handle(h));
        }
        leases.check_invariants();
        assert_eq!(leases.len(), 2);
        assert!(!leases.contains(Handle(5)));
        assert_eq!(leases.take_expired(Time(1000)), vec![Handle(9), Handle(11)]);
    }

    #[test]
    fn a_scan_looks_at_a_bounded_slice_and_soon_covers_everything() {
        let mut leases = Leases::default();
        for h in 1..=100_000u64 {
            leases.set(Handle(h), Time(1000));
        }
        let mut found = 0;
        let mut calls = 0;
        while leases.len() > 0 {
            let expired = leases.take_expired(Time(5000));
            assert!(expired.len() <= 12_500, "an eighth of the table at most");
            found += expired.len();
            calls += 1;
            assert!(calls <= 16, "{calls} calls");
        }
        assert_eq!(found, 100_000);
        leases.check_invariants();
    }

    /// The table compacts when more than half its entries are gone, and not before.
    #[test]
    fn the_table_compacts_once_more_than_half_is_gone() {
        let mut leases = Leases::default();
        for h in 1..=4 {
            leases.set(Handle(h), Time(1000));
        }
        leases.remove(Handle(1));
        leases.remove(Handle(2));
        assert_eq!(leases.handles.len(), 4, "half gone: kept");
        leases.remove(Handle(3));
        assert_eq!(leases.handles, [Handle(4)]);
        assert_eq!(leases.gone, 0);
        leases.check_invariants();
    }

    /// A table past one scan's budget: handles 2, 4, … 20 000, every deadline at 100 s,
    /// after one scan at 0 s (nothing expired; the next scan starts at entry 4096).
    fn scanned_once() -> (Leases, Vec<Handle>) {
        let mut leases = Leases::default();
        let handles: Vec<Handle> = (1..=10_000u64).map(|h| Handle(2 * h)).collect();
        for handle in &handles {
            leases.set(*handle, Time(100_000));
        }
        assert_eq!(leases.take_expired(Time(0)), vec![]);
        assert_eq!(leases.cursor, SCAN_MIN);
        (leases, handles)
    }

    /// A seat placed before where the next scan starts moves that place on with it: the
    /// scan goes on from the entry it would have looked at next.
    #[test]
    fn a_seat_placed_before_the_scan_does_not_move_the_scan_back() {
        let (mut leases, handles) = scanned_once();
        leases.set(Handle(1), Time(100_000));
        let expired = leases.take_expired(Time(200_000));
        assert_eq!(expired, handles[SCAN_MIN..2 * SCAN_MIN]);
        leases.check_invariants();
    }

    /// A seat placed exactly where the next scan starts is the first it looks at.
    #[test]
    fn a_seat_placed_where_the_scan_starts_is_scanned_next() {
        let (mut leases, handles) = scanned_once();
        let placed = Handle(handles[SCAN_MIN].0 - 1);
        leases.set(placed, Time(100_000));
        let expired = leases.take_expired(Time(200_000));
        let mut expected = vec![placed];
        expected.extend_from_slice(&handles[SCAN_MIN..2 * SCAN_MIN - 1]);
        assert_eq!(expired, expected);
        leases.check_invariants();
    }

    /// A deadline of exactly the last whole second is a deadline, not the mark of a
    /// removed seat.
    #[test]
    fn a_deadline_at_the_last_whole_second_is_kept() {
        let mut leases = Leases::default();
        let last_second_ms = u64::from(u32::MAX) * 1000;
        leases.set(Handle(1), Time(last_second_ms));
        assert!(leases.contains(Handle(1)));
        leases.check_invariants();
        assert_eq!(leases.take_expired(Time(last_second_ms)), vec![Handle(1)]);
    }

    /// Past the range of whole seconds, a deadline saturates: it must not read as gone.
    #[test]
    fn a_deadline_too_far_to_count_in_seconds_is_kept() {
        let mut leases = Leases::default();
        leases.set(Handle(1), Time(u64::MAX));
        assert!(leases.contains(Handle(1)));
        assert_eq!(leases.take_expired(Time(1_000)), vec![]);
        assert_eq!(leases.take_expired(Time(u64::MAX)), vec![Handle(1)]);
        leases.check_invariants();
    }

    /// When the removal of the seat where the next scan starts compacts the table, the
    /// scan goes on from the next seat kept, not from one it has already looked at.
    #[test]
    fn a_compaction_leaves_the_scan_at_the_next_seat_kept() {
        let (mut leases, handles) = scanned_once();
        // From where the scan stands, more than half the table: the last removal compacts.
        let first_kept = SCAN_MIN + handles.len() / 2 + 1;
        for handle in &handles[SCAN_MIN..first_kept] {
            leases.remove(*handle);
        }
        assert_eq!(leases.handles.len(), handles.len() / 2 - 1, "compacted");
        let expired = leases.take_expired(Time(200_000));
        // The seats kept after the removed ones, then on from the table's start.
        let mut expected = handles[first_kept..].to_vec();
        expected.extend_from_slice(&handles[..SCAN_MIN - expected.len()]);
        assert_eq!(expired, expected);
        leases.check_invariants();
    }

    /// Binary search, and with it every renewal and removal, relies on the handles
    /// being sorted: a table that breaks this fails its check.
    #[test]
    #[should_panic(expected = "handles sorted, unique")]
    fn a_table_with_handles_out_of_order_fails_its_check() {
        let leases = Leases {
            handles: vec![Handle(2), Handle(1)],
            deadlines_s: vec![1, 1],
            gone: 0,
            cursor: 0,
        };
        leases.check_invariants();
    }
}
