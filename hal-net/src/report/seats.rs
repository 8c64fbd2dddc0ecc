//! Seats: from the journals' `seat` records to each seat's holding (granted or borrowed,
//! then released, returned or expired), and from the holdings to the peak of seats in
//! use, the seat time of each user and host, and the borrows.
//!
//! Rules:
//! - A seat change is a log entry: every server that applied it journaled it at the same
//!   `index`, so the copies are one change, dated by the earliest copy on the reference
//!   clock (the active server applies an entry first; the others within a heartbeat).
//!   Changes are taken in log order, not by time, so what is left of the clocks'
//!   disagreement (an estimate is off by up to half a round trip) cannot reorder them.
//! - A borrow's planned end is on the clock of the server that decided it (`by`), and is
//!   moved to the reference clock like every other time.
//! - A seat is held from its grant to its release, return or expiry. One still held at
//!   the window's end counts up to it ([`Ended::Held`]).
//! - A release whose grant no journal given holds: its seat's handle is its grant's log
//!   index (`h<index>`), so the grant is dated by the last change journaled before that
//!   index, or by the journals' first record when none is (granted before they begin).
//!   Its user and host are its client's, from the client's other records.
//! - The peak is the most seats of a feature held at once, borrowed ones included (they
//!   take a seat of the license's count), and the first time it was reached: at a grant,
//!   or at the window's start when it was already reached then.

use std::collections::BTreeMap;

use hal_core::record::{Record, SeatChangeName, SeatRecord};

use super::aligned::Aligned;
use super::{Borrow, Ended, FeatureReport, Peak, Usage, Window, hours};
use crate::journal::clocks::Clocks;
use crate::journal::read::ServerJournal;

/// The name shown for a user or host the journals do not give.
pub const UNKNOWN: &str = "(unknown)";

/// A change to the seat table: one log entry, and when it was first journaled (on the
/// reference clock).
#[derive(Debug, Clone, Copy)]
struct Change<'a> {
    t_ms: u64,
    seat: &'a SeatRecord,
}

/// One seat, from its grant to its end.
#[derive(Debug, Clone)]
struct Holding<'a> {
    /// Its grant's record, or its end's when no journal holds the grant.
    seat: &'a SeatRecord,
    /// Its grant's log index and time (see [`grant_unseen`]).
    grant_index: u64,
    start_ms: u64,
    grant_seen: bool,
    /// Its end's log index and time; `None` while held at the journals' end.
    end: Option<(u64, u64)>,
    ended: Ended,
    borrowed: bool,
}

impl Holding<'_> {
    fn end_ms(&self) -> Option<u64> {
        self.end.map(|(_, t)| t)
    }
}

/// The seat changes of the wanted features, one per log entry, in log order. Copies of
/// an index that differ (journals of two triads, or of a triad whose data was wiped)
/// are all kept, and noted.
fn changes<'a>(
    aligned: &Aligned<'a>,
    wanted: &dyn Fn(&str) -> bool,
    notes: &mut Vec<String>,
) -> Vec<Change<'a>> {
    let mut copies: Vec<Change<'a>> = aligned
        .timed()
        .filter_map(|(record, t_ms)| match record {
            Record::Seat(seat) if wanted(&seat.feature) => Some(Change { t_ms, seat }),
            _ => None,
        })
        .collect();
    copies.sort_by_key(|c| (c.seat.index, c.t_ms));
    let mut changes: Vec<Change<'a>> = Vec::with_capacity(copies.len() / 2);
    let mut differing = 0u64;
    let mut group_start = 0;
    for copy in copies {
        if changes
            .last()
            .is_none_or(|c| c.seat.index != copy.seat.index)
        {
            group_start = changes.len();
        }
        let same =
            |c: &Change<'_>| c.seat.change == copy.seat.change && c.seat.handle == copy.seat.handle;
        // The earliest copy came first (sorted by time within the index).
        if changes[group_start..].iter().any(same) {
            continue;
        }
        if changes.len() > group_start {
            differing += 1;
        }
        changes.push(copy);
    }
    if differing > 0 {
        notes.push(format!(
            "{differing} log indices carry different seat changes in different journals (journals of two triads, or of a triad whose data directories were emptied?): each change is counted"
        ));
    }
    changes
}

/// The log index and time of a grant no journal holds, for its seat's end `change`:
/// the handle names the index, and the last change journaled before it dates it; with
/// none, it was granted before the journals begin (index 0, their first record).
fn grant_unseen(changes: &[Change<'_>], change: &Change<'_>, journals_from_ms: u64) -> (u64, u64) {
    let index = change
        .seat
        .handle
        .strip_prefix('h')
        .and_then(|n| n.parse().ok());
    let index = index.filter(|i| *i < change.seat.index).unwrap_or(0);
    let before = changes.partition_point(|c| c.seat.index < index);
    match before.checked_sub(1) {
        Some(last) => (index, changes[last].t_ms),
        // Before the journals: index 0 (no log entry has it).
        None => (0, journals_from_ms),
    }
}

/// Each seat's holding, from the changes in log order.
fn holdings<'a>(changes: &[Change<'a>], journals_from_ms: u64) -> Vec<Holding<'a>> {
    let mut holdings: Vec<Holding<'a>> = Vec::new();
    let mut open: BTreeMap<&'a str, usize> = BTreeMap::new();
    for change in changes {
        let seat = change.seat;
        let here = (seat.index, change.t_ms);
        let ended = match seat.change {
            SeatChangeName::Granted | SeatChangeName::Borrowed => {
                // A handle granted again while held would be a broken journal: the
                // first holding ends where the second starts.
                if let Some(old) = open.insert(&seat.handle, holdings.len()) {
                    holdings[old].end = Some(here);
                    holdings[old].ended = Ended::Released;
                }
                holdings.push(Holding {
                    seat,
                    grant_index: seat.index,
                    start_ms: change.t_ms,
                    grant_seen: true,
                    end: None,
                    ended: Ended::Held,
                    borrowed: seat.change == SeatChangeName::Borrowed,
                });
                continue;
            }
            SeatChangeName::Released => Ended::Released,
            SeatChangeName::Returned => Ended::Returned,
            SeatChangeName::Expired => Ended::Expired,
            SeatChangeName::Removed => Ended::Removed,
            // A place in a queue, not a seat.
            SeatChangeName::Queued | SeatChangeName::LeftQueue => continue,
        };
        if let Some(i) = open.remove(seat.handle.as_str()) {
            holdings[i].end = Some(here);
            holdings[i].ended = ended;
            continue;
        }
        let (grant_index, start_ms) = grant_unseen(changes, change, journals_from_ms);
        holdings.push(Holding {
            seat,
            grant_index,
            start_ms,
            grant_seen: false,
            end: Some(here),
            ended,
            borrowed: ended == Ended::Returned,
        });
    }
    holdings
}

/// The user and host of each client, from its grants and the requests it was served
/// (for seats whose grant is older than the journals).
fn clients(journals: &[ServerJournal]) -> BTreeMap<&str, (&str, &str)> {
    let mut clients = BTreeMap::new();
    for located in journals.iter().flat_map(|j| &j.entries) {
        let (client, user, host) = match &located.entry.record {
            Record::Seat(s) => (&s.client, &s.user, &s.host),
            Record::Served(s) => (&s.client, &s.user, &s.host),
            _ => continue,
        };
        if let (Some(user), Some(host)) = (user, host) {
            clients.insert(client.as_str(), (user.as_str(), host.as_str()));
        }
    }
    clients
}

/// One feature's seats in the window, being added up.
#[derive(Debug, Default)]
pub(super) struct FeatureSeats {
    peak: Peak,
    checkouts: u64,
    borrows: u64,
    seat_ms: u64,
    held_at_end: u64,
    by_user: BTreeMap<String, Tally>,
    by_host: BTreeMap<String, Tally>,
    borrowed: Vec<Borrow>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    seats: u64,
    seat_ms: u64,
    held_at_end: u64,
}

impl Tally {
    fn add(&mut self, ms: u64, held_at_end: bool) {
        self.seats += 1;
        self.seat_ms = self.seat_ms.saturating_add(ms);
        self.held_at_end += u64::from(held_at_end);
    }
}

fn usages(tallies: &BTreeMap<String, Tally>) -> Vec<Usage> {
    let mut usages: Vec<Usage> = tallies
        .iter()
        .map(|(name, t)| Usage {
            name: name.clone(),
            seats: t.seats,
            seat_ms: t.seat_ms,
            seat_hours: hours(t.seat_ms),
            held_at_end: t.held_at_end,
        })
        .collect();
    usages.sort_by(|a, b| b.seat_ms.cmp(&a.seat_ms).then_with(|| a.name.cmp(&b.name)));
    usages
}

impl FeatureSeats {
    /// The feature's report, its denials and count left for the caller.
    pub(super) fn report(&self, feature: &str) -> FeatureReport {
        let borrow_ms = self
            .borrowed
            .iter()
            .map(|b| b.ms)
            .fold(0, u64::saturating_add);
        FeatureReport {
            feature: feature.to_string(),
            count: None,
            peak: self.peak,
            checkouts: self.checkouts,
            borrows: self.borrows,
            seat_ms: self.seat_ms,
            seat_hours: hours(self.seat_ms),
            held_at_end: self.held_at_end,
            by_user: usages(&self.by_user),
            by_host: usages(&self.by_host),
            borrowed: self.borrowed.clone(),
            borrow_ms,
            borrow_hours: hours(borrow_ms),
            denied_requests: 0,
            denials: BTreeMap::new(),
        }
    }

    /// Adds `holding`'s time in the window (none if it lies outside).
    fn add(&mut self, holding: &Holding<'_>, window: &Window, clocks: &Clocks, who: (&str, &str)) {
        let start = holding.start_ms;
        let end = holding.end_ms().unwrap_or(u64::MAX);
        // Index 0: granted before the journals, not in the window.
        let granted_in_window = holding.grant_index > 0 && window.contains(start);
        if start > window.to_ms || (end <= window.from_ms && !granted_in_window) {
            return;
        }
        let ms = window.overlap_ms(start, end);
        let held_at_end = end > window.to_ms;
        if granted_in_window && holding.borrowed {
            self.borrows += 1;
        } else if granted_in_window {
            self.checkouts += 1;
        }
        self.seat_ms = self.seat_ms.saturating_add(ms);
        self.held_at_end += u64::from(held_at_end);
        let (user, host) = who;
        self.by_user
            .entry(user.into())
            .or_default()
            .add(ms, held_at_end);
        self.by_host
            .entry(host.into())
            .or_default()
            .add(ms, held_at_end);
        if holding.borrowed {
            self.borrowed.push(Borrow {
                handle: holding.seat.handle.clone(),
                client: holding.seat.client.clone(),
                user: user.into(),
                host: host.into(),
                start_ms: start.max(window.from_ms),
                end_ms: end.min(window.to_ms),
                planned_end_ms: planned_end_ms(holding.seat, clocks),
                ended: if held_at_end {
                    Ended::Held
                } else {
                    holding.ended
                },
                ms,
                hours: hours(ms),
            });
        }
    }
}

/// A borrow's planned end on the reference clock: it was set on the clock of the server
/// that decided the borrow.
fn planned_end_ms(seat: &SeatRecord, clocks: &Clocks) -> Option<u64> {
    let decided_by = seat.by.unwrap_or(seat.server);
    seat.borrow_end_ms
        .map(|end_ms| clocks.to_true(decided_by, end_ms))
}

/// A seat taken or given back, for the peak.
#[derive(Debug, Clone, Copy)]
struct Event<'a> {
    index: u64,
    t_ms: u64,
    feature: &'a str,
    taken: bool,
}

/// The holdings' grants and ends in log order (ends first at one index).
fn events<'a>(holdings: &[Holding<'a>]) -> Vec<Event<'a>> {
    let mut events = Vec::with_capacity(holdings.len() * 2);
    for h in holdings {
        let feature = h.seat.feature.as_str();
        events.push(Event {
            index: h.grant_index,
            t_ms: h.start_ms,
            feature,
            taken: true,
        });
        if let Some((index, t_ms)) = h.end {
            events.push(Event {
                index,
                t_ms,
                feature,
                taken: false,
            });
        }
    }
    events.sort_by_key(|e| (e.index, e.taken));
    events
}

/// Seats in use of one feature over the events, for its peak.
#[derive(Debug, Default)]
struct Sweep {
    in_use: u32,
    /// Whether the window's start was passed (and its count looked at).
    started: bool,
    peak: Peak,
}

impl Sweep {
    fn look(&mut self, t_ms: u64) {
        if self.in_use > self.peak.seats {
            self.peak = Peak {
                seats: self.in_use,
                first_at_ms: Some(t_ms),
            };
        }
    }

    fn apply(&mut self, event: &Event<'_>, window: &Window) {
        if !self.started && event.t_ms >= window.from_ms {
            self.started = true;
            self.look(window.from_ms);
        }
        if event.taken {
            self.in_use = self.in_use.saturating_add(1);
            if window.contains(event.t_ms) {
                self.look(event.t_ms);
            }
        } else {
            self.in_use = self.in_use.saturating_sub(1);
        }
    }
}

/// The peak of each feature, from its seats' grants and ends in log order.
fn peaks(holdings: &[Holding<'_>], window: &Window) -> BTreeMap<String, Peak> {
    let mut sweeps: BTreeMap<&str, Sweep> = BTreeMap::new();
    for event in events(holdings).iter().filter(|e| e.t_ms <= window.to_ms) {
        sweeps
            .entry(event.feature)
            .or_default()
            .apply(event, window);
    }
    sweeps
        .into_iter()
        .map(|(feature, mut sweep)| {
            if !sweep.started {
                sweep.look(window.from_ms);
            }
            (feature.to_string(), sweep.peak)
        })
        .collect()
}

/// Each wanted feature's seats in the window (features with no seat change are absent).
pub(super) fn usage(
    aligned: &Aligned<'_>,
    window: &Window,
    wanted: &dyn Fn(&str) -> bool,
    notes: &mut Vec<String>,
) -> BTreeMap<String, FeatureSeats> {
    let changes = changes(aligned, wanted, notes);
    let holdings = holdings(&changes, window.journals_from_ms);
    let unseen = holdings.iter().filter(|h| !h.grant_seen).count();
    let clients = if unseen > 0 {
        clients(aligned.journals())
    } else {
        BTreeMap::new()
    };
    let mut features: BTreeMap<String, FeatureSeats> = BTreeMap::new();
    for holding in &holdings {
        let seat = holding.seat;
        let known = clients.get(seat.client.as_str());
        let user = seat
            .user
            .as_deref()
            .or(known.map(|k| k.0))
            .unwrap_or(UNKNOWN);
        let host = seat
            .host
            .as_deref()
            .or(known.map(|k| k.1))
            .unwrap_or(UNKNOWN);
        features.entry(seat.feature.clone()).or_default().add(
            holding,
            window,
            aligned.clocks(),
            (user, host),
        );
    }
    for (feature, peak) in peaks(&holdings, window) {
        features.entry(feature).or_default().peak = peak;
    }
    let held: u64 = features.values().map(|f| f.held_at_end).sum();
    if held > 0 {
        let seats = match held {
            1 => "1 seat was".to_string(),
            n => format!("{n} seats were"),
        };
        notes.push(format!(
            "{seats} still held at the window's end: counted up to it"
        ));
    }
    if unseen > 0 {
        let seats = match unseen {
            1 => "1 seat ended in the journals without its grant".to_string(),
            n => format!("{n} seats ended in the journals without their grants"),
        };
        notes.push(format!(
            "{seats} (granted before they begin, or journaled only by a server whose journal was not given): each counts from the last change journaled before its grant's log index, or from the journals' first record"
        ));
    }
    features
}

#[cfg(test)]
mod tests {
    use hal_core::record::SeatChangeName::{Expired, Released, Returned};

    use super::super::testing::J;
    use super::super::{Ended, Options, report};

    const H: u64 = 3_600_000;

    #[test]
    fn the_servers_copies_of_a_change_are_one_change_dated_by_the_first() {
        // #1 applies first; #2 and #3 follow a little later (their clocks agree with
        // #1's, as #1 measured).
        let one = J::new(1)
            .start(0)
            .clock(0, 2, 0)
            .clock(0, 3, 0)
            .granted(H, 5, "h5", "alice")
            .ended(3 * H, 7, Released, "h5", "alice")
            .stop(4 * H);
        let two = J::new(2)
            .start(0)
            .granted(H + 40, 5, "h5", "alice")
            .ended(3 * H + 40, 7, Released, "h5", "alice")
            .stop(4 * H);
        let three = J::new(3)
            .start(0)
            .granted(H + 90, 5, "h5", "alice")
            .stop(4 * H);
        let report = report(&[one.done(), two.done(), three.done()], &Options::default()).unwrap();
        let cad = &report.features[0];
        assert_eq!(cad.checkouts, 1);
        assert_eq!(cad.peak.seats, 1);
        assert_eq!(cad.peak.first_at_ms, Some(H));
        assert_eq!(cad.seat_ms, 2 * H);
        assert!((cad.seat_hours - 2.0).abs() < f64::EPSILON);
        assert_eq!(cad.by_user[0].name, "alice");
        assert_eq!(cad.by_host[0].name, "pc-alice");
        assert_eq!(cad.held_at_end, 0);
        assert!(report.notes.is_empty(), "{:?}", report.notes);
    }

    #[test]
    fn the_peak_is_the_most_seats_at_once_and_when_first_reached() {
        let one = J::new(1)
            .start(0)
            .granted(H, 1, "h1", "alice")
            .granted(2 * H, 2, "h2", "bob")
            .ended(3 * H, 3, Released, "h1", "alice")
            .granted(4 * H, 4, "h4", "carol")
            .ended(5 * H, 5, Expired, "h2", "bob")
            .ended(5 * H, 6, Released, "h4", "carol")
            .stop(6 * H);
        let report = report(&[one.done()], &Options::default()).unwrap();
        let cad = &report.features[0];
        assert_eq!(cad.peak.seats, 2);
        assert_eq!(cad.peak.first_at_ms, Some(2 * H));
        let users: Vec<(&str, u64)> = cad
            .by_user
            .iter()
            .map(|u| (u.name.as_str(), u.seat_ms))
            .collect();
        assert_eq!(users, [("bob", 3 * H), ("alice", 2 * H), ("carol", H)]);
    }

    #[test]
    fn a_window_cuts_the_seats_it_holds_and_counts_one_still_held_to_its_end() {
        // alice holds 1h..5h; bob from 3h on, never released.
        let one = J::new(1)
            .start(0)
            .granted(H, 1, "h1", "alice")
            .granted(3 * H, 2, "h2", "bob")
            .ended(5 * H, 3, Released, "h1", "alice")
            .stop(10 * H);
        let options = Options {
            from_ms: Some(2 * H),
            to_ms: Some(4 * H),
            feature: Some("cad".into()),
        };
        let report = report(&[one.done()], &options).unwrap();
        let cad = &report.features[0];
        // alice 2h..4h, bob 3h..4h; alice's grant was before the window.
        assert_eq!(cad.seat_ms, 3 * H);
        assert_eq!(cad.checkouts, 1);
        assert_eq!(cad.held_at_end, 2);
        assert_eq!(cad.peak.seats, 2);
        assert_eq!(cad.peak.first_at_ms, Some(3 * H));
        assert!(cad.by_user.iter().all(|u| u.held_at_end == 1));
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("2 seats were still held at the window's end")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn a_peak_already_reached_when_the_window_starts_is_dated_by_its_start() {
        let one = J::new(1)
            .start(0)
            .granted(H, 1, "h1", "alice")
            .granted(H, 2, "h2", "bob")
            .ended(5 * H, 3, Released, "h1", "alice")
            .stop(6 * H);
        let options = Options {
            from_ms: Some(2 * H),
            ..Options::default()
        };
        let cad = &report(&[one.done()], &options).unwrap().features[0];
        assert_eq!(cad.peak.seats, 2);
        assert_eq!(cad.peak.first_at_ms, Some(2 * H));
        assert_eq!(cad.checkouts, 0);
    }

    #[test]
    fn borrows_are_listed_with_their_hours_and_how_they_ended() {
        let one = J::new(1)
            .start(0)
            .borrowed(H, 1, "h1", "alice", 100 * H)
            .ended(3 * H, 2, Returned, "h1", "alice")
            .borrowed(4 * H, 3, "h3", "bob", 5 * H)
            .ended(5 * H, 4, Expired, "h3", "bob")
            .borrowed(6 * H, 5, "h5", "carol", 100 * H)
            .stop(8 * H);
        let cad = &report(&[one.done()], &Options::default()).unwrap().features[0];
        assert_eq!(cad.borrows, 3);
        assert_eq!(cad.checkouts, 0);
        let ended: Vec<(&str, Ended, u64)> = cad
            .borrowed
            .iter()
            .map(|b| (b.user.as_str(), b.ended, b.ms))
            .collect();
        assert_eq!(
            ended,
            [
                ("alice", Ended::Returned, 2 * H),
                ("bob", Ended::Expired, H),
                ("carol", Ended::Held, 2 * H)
            ]
        );
        assert_eq!(cad.borrowed[0].planned_end_ms, Some(100 * H));
        assert_eq!(cad.borrow_ms, 5 * H);
        assert_eq!(cad.seat_ms, 5 * H, "borrowed seats are seats in use");
    }

    #[test]
    fn a_seat_granted_before_the_journals_counts_from_their_start_with_its_clients_user() {
        let one = J::new(1)
            .start(2 * H)
            .served(2 * H, "dave", 9, None)
            .ended(4 * H, 8, Released, "h3", "dave")
            .stop(5 * H);
        let report = report(&[one.done()], &Options::default()).unwrap();
        let cad = &report.features[0];
        assert_eq!(cad.seat_ms, 2 * H);
        assert_eq!(cad.peak.seats, 1);
        assert_eq!(cad.peak.first_at_ms, Some(2 * H));
        assert_eq!(cad.by_user[0].name, "dave");
        assert_eq!(cad.checkouts, 0);
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("1 seat ended in the journals without its grant")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn a_grant_missing_from_the_journals_given_is_dated_by_the_change_before_its_index() {
        // Only #2's journal, and #2 was down when entry 5 granted bob's seat h5: it
        // installed a snapshot, and journaled only the release.
        let two = J::new(2)
            .start(0)
            .granted(H, 4, "h4", "alice")
            .served(H, "bob", 1, Some("not_active"))
            .ended(5 * H, 6, Released, "h5", "bob")
            .ended(6 * H, 7, Released, "h4", "alice")
            .stop(7 * H);
        let report = report(&[two.done()], &Options::default()).unwrap();
        let cad = &report.features[0];
        let users: Vec<(&str, u64)> = cad
            .by_user
            .iter()
            .map(|u| (u.name.as_str(), u.seat_ms))
            .collect();
        assert_eq!(users, [("alice", 5 * H), ("bob", 4 * H)]);
        assert_eq!(cad.checkouts, 2);
        assert_eq!(cad.peak.seats, 2);
        assert_eq!(cad.peak.first_at_ms, Some(H));
    }

    #[test]
    fn differing_copies_of_an_index_are_both_counted_and_noted() {
        let one = J::new(1).start(0).granted(H, 4, "h4", "alice").stop(2 * H);
        let two = J::new(2).start(0).granted(H, 4, "h9", "bob").stop(2 * H);
        let report = report(&[one.done(), two.done()], &Options::default()).unwrap();
        assert_eq!(report.features[0].checkouts, 2);
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("1 log indices carry different"))
        );
    }
}
