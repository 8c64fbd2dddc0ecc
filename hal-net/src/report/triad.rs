//! The triad: when each server was active, the changes of the active server
//! (failovers, failbacks and handovers alike), and the times no server was active.
//!
//! A server is active from its `role active` record to the first of: its `role standby`
//! record, its `stop` record, or its end without a stop. That last is how a `kill -9`
//! (or a crash, or a power cut) shows in the journals: a process killed writes nothing,
//! so its journal goes on with a `start` that no `stop` precedes, or simply ends. Its
//! end is dated:
//!
//! - by its peers: the first time a peer journaled its link to it going down, after the
//!   killed server's last record (and before its next start). The kernel closes a killed
//!   process's connections at once, so this is within milliseconds of the kill; a
//!   machine that lost power is seen when the peer's link times out (half an election
//!   timeout);
//! - else by its own last record, which is the latest time it is known to have lived
//!   (a quiet server journals little: a peer clock estimate a minute, so the gap may
//!   then be up to a minute too long).
//!
//! A journal that ends without a stop and whose server no peer saw go (its link down,
//! not up again) is of a server still running at the journals' end: it stays active up
//! to the window's end.
//!
//! A gap opens when the last active server stops being active and closes at the next
//! `role active` of any server; one still open at the window's end counts up to it. The
//! time before the first server became active (the triad starting) is not a gap.
//!
//! Every time is on the reference clock ([`super::aligned`]), so a gap from one server's
//! end to another's start is measured on one clock, whichever servers journaled them.
//! A span still cannot end before it began: a clock set back that the alignment could
//! not place (no `peer_clock` estimate of it, no monotonic times, or the reference
//! server's own clock, which nothing is measured against) ends it where it began.

use std::collections::BTreeMap;

use hal_core::record::{Record, RoleName};

use super::aligned::Aligned;
use super::{ActiveEnd, Failover, Gap, SeenBy, ServerReport, TriadReport, Window};

/// A time one server was active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    server: u8,
    from_ms: u64,
    /// When and how it ended; `None` while active at the journals' end.
    end: Option<(u64, ActiveEnd, SeenBy)>,
}

impl Span {
    fn end_ms(&self) -> u64 {
        self.end.map_or(u64::MAX, |(t, _, _)| t)
    }
}

/// The peers' link records, by the server they are about: `(observer, t_ms, up)` in
/// the order each observer wrote them. (Few: a link goes down and up at most a few
/// times a minute, against thousands of other records.)
struct Links(BTreeMap<u8, Vec<(u8, u64, bool)>>);

impl Links {
    fn new(aligned: &Aligned<'_>) -> Links {
        let mut links: BTreeMap<u8, Vec<(u8, u64, bool)>> = BTreeMap::new();
        for (record, t_ms) in aligned.timed() {
            if let Record::Link(link) = record {
                let about = links.entry(link.peer).or_default();
                about.push((link.server, t_ms, link.up));
            }
        }
        Links(links)
    }

    /// When a peer first saw its link to `server` go down in `[after_ms, before_ms]`,
    /// and not come back up: the earliest over the peers.
    fn seen_going(&self, server: u8, after_ms: u64, before_ms: Option<u64>) -> Option<u64> {
        let mut down_since: BTreeMap<u8, Option<u64>> = BTreeMap::new();
        let records = self.0.get(&server).map(Vec::as_slice).unwrap_or_default();
        for &(observer, t_ms, up) in records {
            let in_range = t_ms >= after_ms && before_ms.is_none_or(|b| t_ms <= b);
            if observer == server || !in_range {
                continue;
            }
            let since = down_since.entry(observer).or_default();
            *since = match (up, *since) {
                (true, _) => None,
                (false, None) => Some(t_ms),
                (false, since) => since,
            };
        }
        down_since.into_values().flatten().min()
    }

    /// When a killed server ended: seen by a peer, or at its own last record.
    fn killed_at(&self, server: u8, last_ms: u64, restart_ms: Option<u64>) -> (u64, SeenBy) {
        match self.seen_going(server, last_ms, restart_ms) {
            Some(t) => (t, SeenBy::PeerLinkDown),
            None => (last_ms, SeenBy::LastRecord),
        }
    }
}

/// The active spans of `aligned.journals()[i]`'s server, and its starts, stops and kills
/// in the window.
fn walk(
    links: &Links,
    aligned: &Aligned<'_>,
    i: usize,
    window: &Window,
) -> (Vec<Span>, ServerReport) {
    let server = aligned.journals()[i].server;
    let mut spans = Vec::new();
    let mut counts = ServerReport {
        server,
        starts: 0,
        stops: 0,
        kills: 0,
        active_ms: 0,
    };
    let mut active_since: Option<u64> = None;
    // The record before, and its time.
    let mut previous: Option<(&Record, u64)> = None;
    // A span ends no earlier than it began: a clock set back that the alignment could
    // not place would otherwise end it first, and the sweep would count one server
    // active fewer than none.
    let mut end = |since: &mut Option<u64>, t_ms: u64, how: ActiveEnd, seen: SeenBy| {
        if let Some(from_ms) = since.take() {
            spans.push(Span {
                server,
                from_ms,
                end: Some((t_ms.max(from_ms), how, seen)),
            });
        }
    };
    for (record, t_ms) in aligned.of(i) {
        let t_ms = t_ms.unwrap_or(0);
        match record {
            Record::Start(_) => {
                if let Some((_, last_ms)) = previous.filter(|p| !matches!(p.0, Record::Stop(_))) {
                    let (at, seen) = links.killed_at(server, last_ms, Some(t_ms));
                    counts.kills += u64::from(window.contains(at));
                    end(&mut active_since, at, ActiveEnd::Killed, seen);
                }
                counts.starts += u64::from(window.contains(t_ms));
            }
            Record::Stop(_) => {
                counts.stops += u64::from(window.contains(t_ms));
                end(&mut active_since, t_ms, ActiveEnd::Stop, SeenBy::Stop);
            }
            Record::Role(role) if role.role == RoleName::Active => {
                active_since.get_or_insert(t_ms);
            }
            Record::Role(_) => end(&mut active_since, t_ms, ActiveEnd::Standby, SeenBy::Role),
            _ => {}
        }
        previous = Some((record, t_ms));
    }
    if let Some((_, last_ms)) = previous.filter(|p| !matches!(p.0, Record::Stop(_)))
        && let Some(at) = links.seen_going(server, last_ms, None)
    {
        counts.kills += u64::from(window.contains(at));
        end(
            &mut active_since,
            at,
            ActiveEnd::Killed,
            SeenBy::PeerLinkDown,
        );
    }
    if let Some(from_ms) = active_since {
        spans.push(Span {
            server,
            from_ms,
            end: None,
        });
    }
    counts.active_ms = spans
        .iter()
        .map(|s| window.overlap_ms(s.from_ms, s.end_ms()))
        .fold(0, u64::saturating_add);
    (spans, counts)
}

/// A gap from `from_ms` to `to_ms` after `span`, clipped to the window (`None` if
/// nothing of it is left).
fn gap(window: &Window, span: &Span, from_ms: u64, to_ms: u64, open: bool) -> Option<Gap> {
    let (_, cause, seen_by) = span.end?;
    let ms = window.overlap_ms(from_ms, to_ms);
    (ms > 0).then(|| Gap {
        from_ms: from_ms.max(window.from_ms),
        to_ms: to_ms.min(window.to_ms),
        ms,
        after_server: span.server,
        cause,
        seen_by,
        open,
    })
}

/// The changes of the active server and the gaps, from every server's spans.
fn sweep(spans: &[Span], window: &Window) -> (Vec<Failover>, Vec<Gap>) {
    // Starts before ends at the same time: a handover at one instant is no gap.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(spans.len() * 2);
    for (i, span) in spans.iter().enumerate() {
        events.push((span.from_ms, false, i));
        events.push((span.end_ms(), true, i));
    }
    events.sort_unstable();
    let (mut failovers, mut gaps) = (Vec::new(), Vec::new());
    let mut active = 0usize;
    let mut no_active_since: Option<(u64, usize)> = None;
    let mut last_server: Option<u8> = None;
    for (t_ms, is_end, i) in events {
        let span = &spans[i];
        if is_end {
            assert!(active > 0, "a span ends after it starts (walk clamps it)");
            active -= 1;
            if active == 0 {
                no_active_since = Some((t_ms, i));
            }
            continue;
        }
        let mut gap_ms = 0;
        if let Some((from_ms, after)) = no_active_since.take() {
            gap_ms = t_ms.saturating_sub(from_ms);
            gaps.extend(gap(window, &spans[after], from_ms, t_ms, false));
        }
        if let Some(from) = last_server.filter(|s| *s != span.server)
            && window.contains(t_ms)
        {
            failovers.push(Failover {
                at_ms: t_ms,
                from_server: from,
                to_server: span.server,
                gap_ms,
            });
        }
        last_server = Some(span.server);
        active += 1;
    }
    if let Some((from_ms, after)) = no_active_since {
        gaps.extend(gap(window, &spans[after], from_ms, window.to_ms, true));
    }
    (failovers, gaps)
}

/// The triad's part of the report.
pub(super) fn report(aligned: &Aligned<'_>, window: &Window) -> TriadReport {
    let links = Links::new(aligned);
    let mut spans = Vec::new();
    let mut servers = Vec::new();
    for i in 0..aligned.journals().len() {
        let (mine, counts) = walk(&links, aligned, i, window);
        spans.extend(mine);
        servers.push(counts);
    }
    let (changes, gaps) = sweep(&spans, window);
    TriadReport {
        servers,
        failovers: changes.len().try_into().unwrap_or(u64::MAX),
        changes,
        no_active_ms: gaps.iter().map(|g| g.ms).fold(0, u64::saturating_add),
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::J;
    use super::super::{ActiveEnd, Failover, Options, SeenBy, TriadReport, report};

    fn triad(journals: Vec<J>) -> TriadReport {
        let journals: Vec<_> = journals.into_iter().map(J::done).collect();
        report(&journals, &Options::default()).unwrap().triad
    }

    #[test]
    fn a_kill_of_the_active_server_is_dated_by_its_peers_and_the_gap_lasts_to_the_next_active() {
        // #1 active from 1 s; killed after its last record at 5 s; #2 and #3 see the
        // link go down at 6 s; #2 becomes active at 9.5 s; #1 restarts at 20 s.
        let one = J::new(1)
            .start(0)
            .role_active(1_000)
            .granted(5_000, 3, "h3", "alice")
            .start(20_000)
            .stop(30_000);
        let two = J::new(2)
            .start(0)
            .link(6_000, 1, false)
            .role_active(9_500)
            .link(21_000, 1, true)
            .stop(30_000);
        let three = J::new(3).start(0).link(6_010, 1, false).stop(30_000);
        let triad = triad(vec![one, two, three]);
        assert_eq!(triad.failovers, 1);
        assert_eq!(
            triad.changes,
            [Failover {
                at_ms: 9_500,
                from_server: 1,
                to_server: 2,
                gap_ms: 3_500
            }]
        );
        let first = triad.gaps[0];
        assert_eq!(
            (first.from_ms, first.to_ms, first.ms),
            (6_000, 9_500, 3_500)
        );
        assert_eq!(first.after_server, 1);
        assert_eq!(first.cause, ActiveEnd::Killed);
        assert_eq!(first.seen_by, SeenBy::PeerLinkDown);
        assert!(!first.open);
        // #2 stopped at 30 s: no server active to the window's end, a gap of 0 ms.
        assert_eq!(triad.gaps.len(), 1, "{:?}", triad.gaps);
        assert_eq!(triad.no_active_ms, 3_500);
        let one = triad.servers[0];
        assert_eq!((one.starts, one.stops, one.kills), (2, 1, 1));
        assert_eq!(one.active_ms, 5_000);
        assert_eq!(triad.servers[1].active_ms, 20_500);
    }

    #[test]
    fn a_kill_no_peer_saw_is_dated_by_the_killed_servers_last_record() {
        let one = J::new(1)
            .start(0)
            .role_active(1_000)
            .granted(5_000, 3, "h3", "alice")
            .start(20_000)
            .role_active(21_000)
            .stop(30_000);
        let triad = triad(vec![one]);
        assert_eq!(triad.failovers, 0, "the same server became active again");
        let gap = triad.gaps[0];
        assert_eq!((gap.from_ms, gap.to_ms), (5_000, 21_000));
        assert_eq!(gap.seen_by, SeenBy::LastRecord);
        assert_eq!(triad.servers[0].kills, 1);
    }

    #[test]
    fn a_handover_at_one_instant_or_overlapping_is_a_failover_without_a_gap() {
        let one = J::new(1)
            .start(0)
            .role_active(1_000)
            .role_standby(5_000)
            .stop(9_000);
        let two = J::new(2)
            .start(0)
            .role_active(5_000)
            .role_standby(7_000)
            .stop(9_000);
        let three = J::new(3)
            .start(0)
            .role_active(6_500)
            .role_standby(8_000)
            .stop(9_000);
        let triad = triad(vec![one, two, three]);
        assert_eq!(triad.failovers, 2);
        assert!(
            triad.changes.iter().all(|c| c.gap_ms == 0),
            "{:?}",
            triad.changes
        );
        // After #3 went standby at 8 s, none was active up to the window's end.
        assert_eq!(triad.gaps.len(), 1);
        let tail = triad.gaps[0];
        assert_eq!((tail.from_ms, tail.to_ms, tail.ms), (8_000, 9_000, 1_000));
        assert!(tail.open);
        assert_eq!(tail.cause, ActiveEnd::Standby);
        assert_eq!(tail.seen_by, SeenBy::Role);
    }

    #[test]
    fn a_clean_stop_of_the_active_server_is_a_gap_to_the_next_active() {
        let one = J::new(1).start(0).role_active(1_000).stop(4_000);
        let two = J::new(2)
            .start(0)
            .role_active(6_000)
            .granted(8_000, 1, "h1", "bob");
        let triad = triad(vec![one, two]);
        assert_eq!(triad.changes[0].gap_ms, 2_000);
        assert_eq!(triad.gaps[0].cause, ActiveEnd::Stop);
        assert_eq!(triad.gaps[0].seen_by, SeenBy::Stop);
        // #2's journal ends without a stop and no peer saw it go: still active.
        assert_eq!(triad.gaps.len(), 1);
        assert_eq!(triad.servers[1].kills, 0);
        assert_eq!(triad.servers[1].active_ms, 2_000);
    }

    #[test]
    fn a_journal_ending_after_its_peers_saw_it_go_is_a_kill() {
        // All of #1's records, then the peers' links to it go down for good.
        let one = J::new(1).start(0).role_active(1_000);
        let two = J::new(2)
            .start(0)
            .link(3_000, 1, false)
            .role_active(4_000)
            .stop(10_000);
        let three = J::new(3).start(0).link(3_100, 1, false).stop(10_000);
        let triad = triad(vec![one, two, three]);
        assert_eq!(triad.servers[0].kills, 1);
        assert_eq!(triad.changes[0].gap_ms, 1_000);
        assert_eq!(triad.gaps[0].seen_by, SeenBy::PeerLinkDown);
    }

    #[test]
    fn a_link_that_came_back_up_or_went_down_before_the_last_record_dates_nothing() {
        // #1 still runs at the journals' end: #2's link to it flapped (down, up), #3's
        // went down before #1's last record.
        let one = J::new(1)
            .start(0)
            .role_active(1_000)
            .granted(5_000, 1, "h1", "alice");
        let two = J::new(2)
            .start(0)
            .link(6_000, 1, false)
            .link(6_500, 1, true)
            .stop(9_000);
        let three = J::new(3).start(0).link(4_000, 1, false).stop(9_000);
        let triad = triad(vec![one, two, three]);
        assert_eq!(triad.servers[0].kills, 0);
        assert!(triad.gaps.is_empty(), "{:?}", triad.gaps);
        assert_eq!(triad.servers[0].active_ms, 8_000);
    }

    #[test]
    fn a_wall_clock_stepped_back_unmeasured_makes_an_empty_span_not_a_panic() {
        // #1's clock was stepped back 3 s while it was active: it is the reference and
        // its records have no monotonic time, so the alignment cannot place them.
        let one = J::new(1)
            .start(0)
            .role_active(5_000)
            .role_standby(2_000)
            .stop(9_000);
        let two = J::new(2).start(0).role_active(6_000).stop(9_000);
        let triad = triad(vec![one, two]);
        assert_eq!(triad.servers[0].active_ms, 0);
        assert_eq!(triad.failovers, 1);
        assert_eq!(triad.changes[0].gap_ms, 1_000);
    }

    #[test]
    fn a_clock_set_back_while_active_is_placed_by_the_monotonic_clock_when_measured() {
        // #2 is active from 2 s; its clock is set back 30 s at 5 s (#1 measures it at
        // 6 s); it goes standby at 10 s, reading -20 s. #1 takes over at 12 s.
        const T: u64 = 1_000_000;
        let one = J::new(1)
            .start(T)
            .clock(T + 1_000, 2, 0)
            .clock(T + 6_000, 2, -30_000)
            .role_active(T + 12_000)
            .stop(T + 20_000);
        let two = J::new(2)
            .start(T)
            .mono(0)
            .role_active(T + 2_000)
            .mono(2_000)
            .role_standby(T - 20_000)
            .mono(10_000)
            .stop(T - 15_000)
            .mono(15_000);
        let triad = triad(vec![one, two]);
        assert_eq!(triad.servers[1].active_ms, 8_000);
        assert_eq!(
            triad.changes,
            [Failover {
                at_ms: T + 12_000,
                from_server: 2,
                to_server: 1,
                gap_ms: 2_000
            }]
        );
    }

    #[test]
    fn the_window_clips_gaps_and_counts_only_its_failovers() {
        let one = J::new(1).start(0).role_active(1_000).stop(4_000);
        let two = J::new(2).start(0).role_active(6_000).stop(20_000);
        let journals = [one.done(), two.done()];
        let options = Options {
            from_ms: Some(5_000),
            to_ms: Some(7_000),
            feature: None,
        };
        let triad = report(&journals, &options).unwrap().triad;
        assert_eq!(triad.failovers, 1);
        assert_eq!(triad.changes[0].gap_ms, 2_000, "the whole gap");
        assert_eq!(triad.no_active_ms, 1_000, "the part in the window");
        let late = Options {
            from_ms: Some(7_000),
            ..Options::default()
        };
        let triad = report(&journals, &late).unwrap().triad;
        assert_eq!(triad.failovers, 0);
        assert_eq!(triad.servers[1].active_ms, 13_000);
    }
}
