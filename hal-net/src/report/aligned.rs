//! The journals' records on one clock: each record's time moved from its server's wall
//! clock to the reference clock of [`crate::journal::clocks`] (#1's, or the majority's
//! when #1's is the odd one out), as `hal-sim check` merges them. A record written after
//! its server's clock was set back is placed by its monotonic clock
//! ([`Clocks::true_times`]), so the report reads every time, whichever server wrote it,
//! on that one clock.
//!
//! It does not move the records' order within a journal, nor change the records: the
//! times are kept beside them (one per record), not written into copies.

use hal_core::record::Record;

use crate::journal::clocks::Clocks;
use crate::journal::read::ServerJournal;

/// The journals, their clocks against the reference, and each record's true time.
pub(super) struct Aligned<'a> {
    journals: &'a [ServerJournal],
    clocks: Clocks,
    /// Per journal, per entry: its time on the reference clock (`None`: it has none).
    times: Vec<Vec<Option<u64>>>,
}

impl<'a> Aligned<'a> {
    pub(super) fn new(journals: &'a [ServerJournal]) -> Aligned<'a> {
        let clocks = Clocks::estimate(journals);
        let times = journals.iter().map(|j| clocks.true_times(j)).collect();
        Aligned {
            journals,
            clocks,
            times,
        }
    }

    pub(super) fn journals(&self) -> &'a [ServerJournal] {
        self.journals
    }

    pub(super) fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// The records of `journals()[i]` in its order, each with its true time.
    pub(super) fn of(&self, i: usize) -> impl Iterator<Item = (&'a Record, Option<u64>)> + '_ {
        let entries = self.journals.get(i).map_or(&[][..], |j| &j.entries[..]);
        let times = self.times.get(i).map_or(&[][..], Vec::as_slice);
        entries
            .iter()
            .zip(times.iter().copied())
            .map(|(located, t_ms)| (&located.entry.record, t_ms))
    }

    /// Every record that has a time, with its true time: journal after journal, each in
    /// its order.
    pub(super) fn timed(&self) -> impl Iterator<Item = (&'a Record, u64)> + '_ {
        (0..self.journals.len())
            .flat_map(|i| self.of(i))
            .filter_map(|(record, t_ms)| Some((record, t_ms?)))
    }
}

#[cfg(test)]
mod tests {
    use hal_core::record::SeatChangeName::Released;

    use super::super::testing::J;
    use super::super::{ActiveEnd, ClockOffset, Failover, Options, report};

    const T: u64 = 1_000_000;

    /// #2's clock runs 60 s ahead of #1's, and both journaled it. #1 is active from 1 s,
    /// grants alice a seat at 2 s and stops at 5 s; #2 becomes active at 8 s, grants bob
    /// a seat at 9 s, releases alice's at 10 s and stops at 20 s (all on #1's clock).
    fn ahead() -> Vec<crate::journal::read::ServerJournal> {
        let one = J::new(1)
            .start(T)
            .clock(T + 100, 2, 60_000)
            .role_active(T + 1_000)
            .granted(T + 2_000, 1, "h1", "alice")
            .stop(T + 5_000);
        let two = J::new(2)
            .start(T + 60_000)
            .clock(T + 60_100, 1, -60_000)
            .granted(T + 62_010, 1, "h1", "alice")
            .role_active(T + 68_000)
            .granted(T + 69_000, 2, "h2", "bob")
            .ended(T + 70_000, 3, Released, "h1", "alice")
            .stop(T + 80_000);
        vec![one.done(), two.done()]
    }

    #[test]
    fn a_server_whose_clock_runs_ahead_is_read_on_1s_clock() {
        let report = report(&ahead(), &Options::default()).unwrap();
        assert_eq!(report.clock.reference, "#1's clock");
        assert_eq!(
            report.clock.offsets,
            [
                ClockOffset {
                    server: 1,
                    offset_ms: None
                },
                ClockOffset {
                    server: 2,
                    offset_ms: Some(60_000)
                }
            ]
        );
        assert_eq!(
            (report.window.from_ms, report.window.to_ms),
            (T, T + 20_000)
        );
        // The failover and its gap: #1's stop (its clock) to #2's role (#2's clock).
        let triad = &report.triad;
        assert_eq!(
            triad.changes,
            [Failover {
                at_ms: T + 8_000,
                from_server: 1,
                to_server: 2,
                gap_ms: 3_000
            }]
        );
        let gap = triad.gaps[0];
        assert_eq!(
            (gap.from_ms, gap.to_ms, gap.ms),
            (T + 5_000, T + 8_000, 3_000)
        );
        assert_eq!(gap.cause, ActiveEnd::Stop);
        assert_eq!(triad.no_active_ms, 3_000);
        assert_eq!(triad.servers[1].active_ms, 12_000);
        // alice's grant, journaled by both, counts once; bob's grant is at #1's 9 s.
        let cad = &report.features[0];
        assert_eq!(cad.checkouts, 2);
        assert_eq!(cad.peak.seats, 2);
        assert_eq!(cad.peak.first_at_ms, Some(T + 9_000));
        assert_eq!(cad.seat_ms, 8_000 + 11_000);
        assert!(
            report.notes.iter().all(|n| !n.contains("clock")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn the_window_asked_for_is_on_the_reference_clock() {
        // 7.5 s to 9.5 s on #1's clock: the failover and bob's grant, not alice's.
        let options = Options {
            from_ms: Some(T + 7_500),
            to_ms: Some(T + 9_500),
            feature: None,
        };
        let report = report(&ahead(), &options).unwrap();
        assert_eq!(report.triad.failovers, 1);
        assert_eq!(report.triad.no_active_ms, 500);
        let cad = &report.features[0];
        assert_eq!(cad.checkouts, 1);
        assert_eq!(cad.peak.first_at_ms, Some(T + 9_000));
        assert_eq!(cad.seat_ms, 2_000 + 500);
    }

    #[test]
    fn when_1s_clock_is_the_odd_one_the_times_are_on_the_majoritys() {
        // #1's clock runs 60 s behind #2's and #3's, which agree; #1 stops at (their)
        // 5 s and #2 becomes active at 8 s.
        let one = J::new(1)
            .start(T - 60_000)
            .clock(T - 59_900, 2, 60_000)
            .clock(T - 59_900, 3, 60_000)
            .role_active(T - 59_000)
            .stop(T - 55_000);
        let two = J::new(2)
            .start(T)
            .clock(T + 100, 3, 0)
            .role_active(T + 8_000)
            .stop(T + 20_000);
        let report = report(&[one.done(), two.done()], &Options::default()).unwrap();
        assert_eq!(
            report.clock.reference,
            "the clock of the two servers other than #1, which agree"
        );
        assert_eq!(report.clock.offsets[0].offset_ms, Some(-60_000));
        assert_eq!(report.triad.changes[0].at_ms, T + 8_000);
        assert_eq!(report.triad.changes[0].gap_ms, 3_000);
    }

    #[test]
    fn a_borrows_planned_end_is_moved_from_the_deciding_servers_clock() {
        // #1 (60 s behind the majority) lends alice a seat at (their) 1 s for an hour.
        let one = J::new(1)
            .start(T - 60_000)
            .clock(T - 59_900, 2, 60_000)
            .clock(T - 59_900, 3, 60_000)
            .borrowed(T - 59_000, 1, "h1", "alice", T - 60_000 + 3_601_000)
            .stop(T - 50_000);
        let two = J::new(2).start(T).clock(T + 100, 3, 0).stop(T + 20_000);
        let report = report(&[one.done(), two.done()], &Options::default()).unwrap();
        let borrow = &report.features[0].borrowed[0];
        assert_eq!(borrow.start_ms, T + 1_000);
        assert_eq!(borrow.planned_end_ms, Some(T + 3_601_000));
        assert_eq!(borrow.ms, 19_000);
    }

    #[test]
    fn a_server_no_journal_measured_keeps_its_times_and_is_noted() {
        let one = J::new(1).start(T).role_active(T + 1_000).stop(T + 5_000);
        let two = J::new(2).start(T).role_active(T + 8_000).stop(T + 9_000);
        let report = report(&[one.done(), two.done()], &Options::default()).unwrap();
        assert_eq!(report.triad.changes[0].gap_ms, 3_000);
        assert!(
            report
                .notes
                .iter()
                .any(|n| n == "#2: no clock offset to #1's clock was journaled; its times are taken as they are"),
            "{:?}",
            report.notes
        );
    }
}
