//! Usage accounting from the servers' journals (`hal-net report`): per feature, the peak
//! of seats in use and when it was first reached, the seat-hours of each user and host,
//! the borrows, and the requests refused (by reason); for the triad, the changes of the
//! active server and how long no server was active.
//!
//! Pure: it takes journals already read ([`crate::journal::read`]) and returns a typed
//! [`Report`]; printing it (text, JSON, CSV) is the CLI's.
//!
//! Every time it reports (peaks, seat spans, borrows, failovers, gaps) and the window it
//! is asked for are on one clock, the one `hal-sim check` uses: #1's, or the other two
//! servers' when they agree and #1's does not ([`crate::journal::clocks`]). Each server's
//! records are moved onto it with the offsets the servers journaled to each other
//! (`peer_clock`), and by their monotonic clock after a clock was set back ([`aligned`]);
//! [`Report::clock`] says which clock it is and how far each server's was from it. A
//! server whose offset no journal holds keeps its own times (a note says so).
//!
//! What it can see is what the journals kept: the writer drops the oldest files past
//! `[journal] keep_mb`/`keep_days`, and a seat granted before the oldest record kept is
//! seen only if its end was kept ([`seats`] says how it is then counted). Its lists
//! (users, hosts, borrows, gaps) are bounded by the records read
//! ([`crate::journal::read::ENTRIES_MAX`]).
//!
//! The rules, each in the module that applies it: [`seats`] (seat changes, peak,
//! seat-hours, borrows), [`denials`] (refused requests), [`triad`] (failovers and the
//! time without an active server, and how a `kill -9` is seen).

mod aligned;
mod denials;
mod seats;
#[cfg(test)]
mod testing;
mod triad;

use std::collections::{BTreeMap, BTreeSet};

use hal_core::record::Record;
use serde::Serialize;

use self::aligned::Aligned;
use crate::journal::read::ServerJournal;

/// What to report on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The window's start, ms since the Unix epoch on the reference clock (default: the
    /// journals' first record).
    pub from_ms: Option<u64>,
    /// The window's end (default: the journals' last record).
    pub to_ms: Option<u64>,
    /// Only this feature (default: every feature the journals name).
    pub feature: Option<String>,
}

/// Why no report can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("the journals hold no records besides their meta lines: nothing to report")]
    Empty,
    #[error("the window starts ({from_ms} ms) after it ends ({to_ms} ms)")]
    WindowInverted { from_ms: u64, to_ms: u64 },
    /// The window asked for (either end may be open) holds none of the journals' span.
    #[error(
        "the window asked for (from {from_ms:?}, to {to_ms:?} ms) is outside the journals, which run from {journals_from_ms} to {journals_to_ms} ms"
    )]
    WindowOutside {
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        journals_from_ms: u64,
        journals_to_ms: u64,
    },
    #[error("the journals name no feature '{feature}' (they name: {known})")]
    UnknownFeature { feature: String, known: String },
}

/// The usage report. Field names are stable: `--json` prints this structure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub window: Window,
    /// The clock every time counts on.
    pub clock: Clock,
    /// The servers whose journals were read.
    pub servers_read: Vec<u8>,
    /// Each feature, by name.
    pub features: Vec<FeatureReport>,
    pub triad: TriadReport,
    /// What the reader should know about the figures (seats counted to the window's
    /// end, records the journals dropped, servers whose journal is missing, ...).
    pub notes: Vec<String>,
}

/// The clock the report's times count on, and the servers' clocks against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clock {
    /// `#1's clock`, or `the clock of the two servers other than #1, which agree`.
    pub reference: String,
    /// Each server read, in the order read.
    pub offsets: Vec<ClockOffset>,
}

/// One server's clock against the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockOffset {
    pub server: u8,
    /// Its clock minus the reference, as first estimated (`None`: it is the reference,
    /// or no journal holds an estimate and its times are taken as they are).
    pub offset_ms: Option<i64>,
}

/// The window reported on: the one asked for, within the journals' span (on the
/// reference clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: u64,
    /// The journals' first and last record.
    pub journals_from_ms: u64,
    pub journals_to_ms: u64,
}

impl Window {
    /// How much of `[start, end]` lies in the window (0 when none does).
    fn overlap_ms(&self, start_ms: u64, end_ms: u64) -> u64 {
        end_ms
            .min(self.to_ms)
            .saturating_sub(start_ms.max(self.from_ms))
    }

    fn contains(&self, t_ms: u64) -> bool {
        (self.from_ms..=self.to_ms).contains(&t_ms)
    }
}

/// One feature's usage in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReport {
    pub feature: String,
    /// The seats licensed, if the journals say: the COUNT of the newest license pushed
    /// (a `license` record), else their meta records'.
    pub count: Option<u32>,
    pub peak: Peak,
    /// Seats granted in the window by checkouts, and by borrows.
    pub checkouts: u64,
    pub borrows: u64,
    /// Seat time in the window, all seats (borrowed ones included).
    pub seat_ms: u64,
    pub seat_hours: f64,
    /// Seats still held at the window's end (counted up to it).
    pub held_at_end: u64,
    /// Seat time by user and by host, most first.
    pub by_user: Vec<Usage>,
    pub by_host: Vec<Usage>,
    /// Borrowed seats in the window, by start.
    pub borrowed: Vec<Borrow>,
    pub borrow_ms: u64,
    pub borrow_hours: f64,
    /// Requests refused in the window: each request once ([`denials`] says which).
    pub denied_requests: u64,
    /// The same, by reason (`all_in_use`, `no_majority`, ...).
    pub denials: BTreeMap<String, u64>,
}

/// The most seats in use at once, and when that was first reached (`None` when no seat
/// was in use in the window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Peak {
    pub seats: u32,
    pub first_at_ms: Option<u64>,
}

/// One user's (or host's) seats in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub name: String,
    /// Seats held at some time in the window.
    pub seats: u64,
    pub seat_ms: u64,
    pub seat_hours: f64,
    /// Of those seats, the ones still held at the window's end.
    pub held_at_end: u64,
}

/// How a seat's holding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Checked in.
    Released,
    /// A borrow returned early.
    Returned,
    /// Its lease or its borrow ran out.
    Expired,
    /// An administrator removed it (`hal-net remove`).
    Removed,
    /// Still held at the window's end.
    Held,
}

/// A borrowed seat, within the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Borrow {
    pub handle: String,
    pub client: String,
    pub user: String,
    pub host: String,
    /// When it was borrowed and when it came back, clipped to the window.
    pub start_ms: u64,
    pub end_ms: u64,
    /// The end the borrow was granted with (named `borrow_end_ms` in JSON and CSV, as
    /// every verb names a borrow's end).
    #[serde(rename = "borrow_end_ms")]
    pub planned_end_ms: Option<u64>,
    pub ended: Ended,
    pub ms: u64,
    pub hours: f64,
}

/// The triad in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriadReport {
    pub servers: Vec<ServerReport>,
    /// Changes of the active server in the window.
    pub failovers: u64,
    pub changes: Vec<Failover>,
    /// The times no server was active (after one had been), clipped to the window.
    pub gaps: Vec<Gap>,
    pub no_active_ms: u64,
}

/// One server's life in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServerReport {
    pub server: u8,
    pub starts: u64,
    /// Clean stops (a `stop` record).
    pub stops: u64,
    /// Ends without a `stop` record: a `kill -9`, a crash, a power cut.
    pub kills: u64,
    pub active_ms: u64,
}

/// The active server changed: `to_server` became active after `from_server` had been.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Failover {
    pub at_ms: u64,
    pub from_server: u8,
    pub to_server: u8,
    /// How long no server was active before it (0 when the two overlapped).
    pub gap_ms: u64,
}

/// How an active server stopped being active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveEnd {
    /// It journaled `role standby` (it lost its majority, or handed over).
    Standby,
    /// It stopped cleanly (`stop`).
    Stop,
    /// It ended without a `stop` ([`triad`] says how that is seen).
    Killed,
}

/// Which record dates the end of a server's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenBy {
    /// Its own `role` record.
    Role,
    /// Its own `stop` record.
    Stop,
    /// A peer's `link` record: the link to it went down.
    PeerLinkDown,
    /// Its own last record (no peer saw the link go down).
    LastRecord,
}

/// A time without an active server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from_ms: u64,
    pub to_ms: u64,
    pub ms: u64,
    /// The server that had been active, how its activity ended, and what dates it.
    pub after_server: u8,
    pub cause: ActiveEnd,
    pub seen_by: SeenBy,
    /// Still no active server at the window's end (the gap is counted up to it).
    pub open: bool,
}

/// Hours from ms, rounded to 6 decimals (3.6 ms): what JSON shows without float noise.
fn hours(ms: u64) -> f64 {
    // Exact below 2^53 ms (285,000 years).
    #[allow(clippy::cast_precision_loss)]
    let h = ms as f64 / 3_600_000.0;
    (h * 1e6).round() / 1e6
}

/// The usage report of `journals` (one per server, as [`crate::journal::read::read`]
/// returns them) in the window and for the features `options` ask for.
pub fn report(journals: &[ServerJournal], options: &Options) -> Result<Report, ReportError> {
    let aligned = Aligned::new(journals);
    let window = window(&aligned, options)?;
    let known = feature_names(journals);
    if let Some(feature) = &options.feature
        && !known.contains(feature.as_str())
    {
        return Err(ReportError::UnknownFeature {
            feature: feature.clone(),
            known: known.iter().copied().collect::<Vec<_>>().join(", "),
        });
    }
    let wanted = |f: &str| options.feature.as_deref().is_none_or(|w| w == f);
    let (clock, mut notes) = clock(&aligned);
    let seats = seats::usage(&aligned, &window, &wanted, &mut notes);
    let denied = denials::count(&aligned, &window, &wanted);
    let features = known
        .iter()
        .filter(|f| wanted(f))
        .map(|f| feature_report(journals, f, &seats, &denied))
        .collect();
    let triad = triad::report(&aligned, &window);
    notes.extend(journal_notes(journals));
    Ok(Report {
        window,
        clock,
        servers_read: journals.iter().map(|j| j.server).collect(),
        features,
        triad,
        notes,
    })
}

fn feature_report(
    journals: &[ServerJournal],
    feature: &str,
    seats: &BTreeMap<String, seats::FeatureSeats>,
    denied: &BTreeMap<String, BTreeMap<String, u64>>,
) -> FeatureReport {
    // The COUNT of the newest license in force the journals record (a push), else the
    // one their meta records state.
    let pushed = journals
        .iter()
        .flat_map(|j| &j.entries)
        .filter_map(|e| match &e.entry.record {
            hal_core::record::Record::License(l) => Some((l.index, l.features.get(feature))),
            _ => None,
        })
        .max_by_key(|(index, _)| *index)
        .map(|(_, count)| count.copied());
    let count = pushed.unwrap_or_else(|| {
        journals
            .iter()
            .find_map(|j| j.meta.features.get(feature).map(|f| f.count))
    });
    let denials = denied.get(feature).cloned().unwrap_or_default();
    let mut report = match seats.get(feature) {
        Some(s) => s.report(feature),
        None => seats::FeatureSeats::default().report(feature),
    };
    report.count = count;
    report.denied_requests = denials.values().fold(0, |a, b| a.saturating_add(*b));
    report.denials = denials;
    report
}

/// The reference clock and each server's offset from it, and a note for each server
/// whose clock no journal measured.
fn clock(aligned: &Aligned<'_>) -> (Clock, Vec<String>) {
    let clocks = aligned.clocks();
    let reference = clocks.reference.to_string();
    let mut notes = Vec::new();
    let mut offsets = Vec::new();
    for server in aligned.journals().iter().map(|j| j.server) {
        if !clocks.measured(server) && !clocks.is_reference(server) {
            notes.push(format!(
                "#{server}: no clock offset to {reference} was journaled; its times are taken as they are"
            ));
        }
        offsets.push(ClockOffset {
            server,
            offset_ms: clocks.first_offset(server),
        });
    }
    (Clock { reference, offsets }, notes)
}

/// The window: the one asked for, within the journals' first and last record.
fn window(aligned: &Aligned<'_>, options: &Options) -> Result<Window, ReportError> {
    let times = aligned.timed().map(|(_, t_ms)| t_ms);
    let (first, last) = times
        .fold(None, |span: Option<(u64, u64)>, t| match span {
            None => Some((t, t)),
            Some((a, b)) => Some((a.min(t), b.max(t))),
        })
        .ok_or(ReportError::Empty)?;
    if let (Some(from_ms), Some(to_ms)) = (options.from_ms, options.to_ms)
        && from_ms > to_ms
    {
        return Err(ReportError::WindowInverted { from_ms, to_ms });
    }
    let from_ms = options.from_ms.unwrap_or(first).max(first);
    let to_ms = options.to_ms.unwrap_or(last).min(last);
    if from_ms > to_ms {
        return Err(ReportError::WindowOutside {
            from_ms: options.from_ms,
            to_ms: options.to_ms,
            journals_from_ms: first,
            journals_to_ms: last,
        });
    }
    Ok(Window {
        from_ms,
        to_ms,
        journals_from_ms: first,
        journals_to_ms: last,
    })
}

/// Every feature the journals name: licensed (meta), held or asked for.
fn feature_names(journals: &[ServerJournal]) -> BTreeSet<&str> {
    let mut names: BTreeSet<&str> = journals
        .iter()
        .flat_map(|j| j.meta.features.keys())
        .map(String::as_str)
        .collect();
    for located in journals.iter().flat_map(|j| &j.entries) {
        match &located.entry.record {
            Record::Seat(seat) => {
                names.insert(&seat.feature);
            }
            Record::Served(served) => {
                if let Some(feature) = &served.feature {
                    names.insert(feature);
                }
            }
            _ => {}
        }
    }
    names
}

/// What the journals themselves say is missing: dropped records, torn lines, servers of
/// the triad without a journal.
fn journal_notes(journals: &[ServerJournal]) -> Vec<String> {
    let mut notes = Vec::new();
    for journal in journals {
        let mut dropped: BTreeMap<&str, u64> = BTreeMap::new();
        for located in &journal.entries {
            if let Record::Dropped(d) = &located.entry.record {
                *dropped.entry(&d.reason).or_default() += d.records;
            }
        }
        for (reason, records) in dropped {
            notes.push(format!(
                "server #{}'s journal dropped {records} records ({reason}): the figures may miss what they said",
                journal.server
            ));
        }
        notes.extend(journal.notes.iter().cloned());
    }
    let size = journals
        .iter()
        .filter_map(|j| j.meta.triad.as_ref().map(Vec::len))
        .max()
        .unwrap_or(1);
    let read: BTreeSet<u8> = journals.iter().map(|j| j.server).collect();
    let missing: Vec<String> = (1..=u8::try_from(size).unwrap_or(3))
        .filter(|s| !read.contains(s))
        .map(|s| format!("#{s}"))
        .collect();
    let whose = match missing.len() {
        0 => return notes,
        1 => format!("server {}: its", missing[0]),
        _ => format!("servers {}: their", missing.join(" and ")),
    };
    notes.push(format!(
        "no journal of {whose} starts, stops and roles are unknown, so the failovers and the time without an active server are judged from the other journals alone"
    ));
    notes
}

#[cfg(test)]
mod tests {
    use super::testing::J;
    use super::*;

    #[test]
    fn the_window_is_the_one_asked_for_within_the_journals() {
        let journals = [J::new(1).start(1_000).role_active(2_000).stop(9_000).done()];
        let all = report(&journals, &Options::default()).unwrap().window;
        assert_eq!((all.from_ms, all.to_ms), (1_000, 9_000));
        let asked = Options {
            from_ms: Some(500),
            to_ms: Some(5_000),
            feature: None,
        };
        let part = report(&journals, &asked).unwrap().window;
        assert_eq!((part.from_ms, part.to_ms), (1_000, 5_000));
        assert_eq!(part.journals_to_ms, 9_000);
    }

    #[test]
    fn a_window_outside_the_journals_or_inverted_is_refused() {
        let journals = [J::new(1).start(1_000).stop(9_000).done()];
        let outside = Options {
            from_ms: Some(10_000),
            ..Options::default()
        };
        assert!(matches!(
            report(&journals, &outside),
            Err(ReportError::WindowOutside {
                journals_to_ms: 9_000,
                ..
            })
        ));
        let inverted = Options {
            from_ms: Some(5_000),
            to_ms: Some(4_000),
            feature: None,
        };
        assert_eq!(
            report(&journals, &inverted),
            Err(ReportError::WindowInverted {
                from_ms: 5_000,
                to_ms: 4_000
            })
        );
        assert_eq!(
            report(&[J::new(1).done()], &Options::default()),
            Err(ReportError::Empty)
        );
    }

    /// A pushed license's COUNT replaces the meta record's: the newest in force counts.
    #[test]
    fn the_count_is_the_newest_pushed_licenses() {
        let journals = [J::new(1)
            .start(1_000)
            .license(2_000, 7, 8)
            .license(3_000, 12, 6)
            .stop(9_000)
            .done()];
        let report = report(&journals, &Options::default()).unwrap();
        assert_eq!(report.features[0].count, Some(6));
        let unpushed = [J::new(1).start(1_000).stop(9_000).done()];
        let report = super::report(&unpushed, &Options::default()).unwrap();
        assert_eq!(report.features[0].count, Some(5));
    }

    #[test]
    fn an_unknown_feature_is_refused_naming_the_known_ones() {
        let journals = [J::new(1).start(1_000).done()];
        let options = Options {
            feature: Some("cam".into()),
            ..Options::default()
        };
        let error = report(&journals, &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the journals name no feature 'cam' (they name: cad)"
        );
    }

    #[test]
    fn dropped_records_and_a_missing_server_are_noted() {
        let journals = [
            J::new(1).start(1_000).dropped(2_000, 7).done(),
            J::new(2).start(1_000).done(),
        ];
        let notes = report(&journals, &Options::default()).unwrap().notes;
        assert!(
            notes
                .iter()
                .any(|n| n.contains("#1's journal dropped 7 records")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("no journal of server #3")),
            "{notes:?}"
        );
    }

    #[test]
    fn hours_keep_six_decimals() {
        assert!((hours(3_600_000) - 1.0).abs() < f64::EPSILON);
        assert!((hours(1) - 0.0).abs() < f64::EPSILON);
        assert!((hours(5_400_000) - 1.5).abs() < f64::EPSILON);
        assert!((hours(36_000) - 0.01).abs() < f64::EPSILON);
    }
}
