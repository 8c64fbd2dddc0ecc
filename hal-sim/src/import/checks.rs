//! Where the replay can be held to the field: the times around which the simulator's
//! timing may differ from the field's ([`Quiet`]: changes of roles, faults, a warm
//! window's start), and the `[[checks]]` of the active server in each stable stretch,
//! placed where no seat changes nearby so that they can count the seats in use too.

use std::collections::BTreeMap;
use std::time::Duration;

use hal_core::ServerId;
use hal_core::record::SeatChangeName;
use hal_core::timing::Timing;

use super::field::Field;
use super::time::rfc3339;
use super::window::Window;
use super::{Noted, clients, ms, roles};
use crate::scenario::{Action, Check, Step};

/// A check counts the seats in use only this far from any change of a seat.
const SEAT_MARGIN_MS: u64 = 1_000;

/// The times (simulated ms) of changes of roles and of faults, around which the
/// simulator's timing may differ from the field's, and how far around.
#[derive(Debug, Clone, Default)]
pub struct Quiet {
    pub margin_ms: u64,
    pub busy_ms: Vec<u64>,
}

impl Quiet {
    /// Whether nothing changed within the margin of simulated `at_ms`.
    pub fn at(&self, at_ms: u64) -> bool {
        self.busy_ms
            .iter()
            .all(|b| b.abs_diff(at_ms) > self.margin_ms)
    }

    /// The quiet part of the longest stretch of `[from_ms, to_ms]` between changes: a
    /// margin away from both ends (none if the stretch is shorter than two margins).
    pub fn zone(&self, from_ms: u64, to_ms: u64) -> Option<(u64, u64)> {
        let mut edges = vec![from_ms];
        edges.extend(
            self.busy_ms
                .iter()
                .copied()
                .filter(|b| (from_ms..to_ms).contains(b)),
        );
        edges.push(to_ms);
        edges.sort_unstable();
        let (a, b) = edges
            .windows(2)
            .map(|w| (w[0], w[1]))
            .max_by_key(|(a, b)| b - a)?;
        let zone = (a + self.margin_ms + 1, b.checked_sub(self.margin_ms + 1)?);
        (zone.0 <= zone.1 && self.at(zone.0) && self.at(zone.1)).then_some(zone)
    }
}

/// The time in `zone` farthest from every span of `spans` (simulated ms, sorted by
/// start), and how far.
pub(super) fn farthest(zone: (u64, u64), spans: &[(u64, u64)]) -> (u64, u64) {
    // The nearest span: the one starting next, or one of those started before (the one
    // reaching furthest).
    let mut reach: Vec<u64> = Vec::with_capacity(spans.len());
    for &(_, b) in spans {
        reach.push(reach.last().map_or(b, |r: &u64| (*r).max(b)));
    }
    let distance = |at: u64| {
        let next = spans.partition_point(|&(a, _)| a <= at);
        let after = spans.get(next).map_or(u64::MAX, |&(a, _)| a - at);
        let before = next
            .checked_sub(1)
            .map_or(u64::MAX, |i| at.saturating_sub(reach[i]));
        after.min(before)
    };
    // Candidates: the zone's ends, and the middle of each gap between spans in it.
    let mut points = vec![zone.0, zone.1];
    let mut edges: Vec<u64> = spans
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|p| (zone.0..=zone.1).contains(p))
        .collect();
    edges.extend([zone.0, zone.1]);
    edges.sort_unstable();
    points.extend(edges.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2));
    // A round time, if it stays in the zone.
    let round = |at: u64| {
        let r = (at + 50) / 100 * 100;
        if (zone.0..=zone.1).contains(&r) {
            r
        } else {
            at
        }
    };
    // The farthest; of those as far, the nearest the zone's middle.
    let middle = zone.0 + (zone.1 - zone.0) / 2;
    points
        .into_iter()
        .map(|p| (round(p), distance(round(p))))
        .max_by_key(|&(at, d)| (d, std::cmp::Reverse(at.abs_diff(middle))))
        .unwrap_or((zone.0, 0))
}

/// The simulated times around which the replay's timing may differ: role changes and
/// the start and end of every fault, and a warm window's start.
pub fn quiet(
    window: &Window,
    periods: &[roles::Period],
    steps: &[Noted<Step>],
    timing: &Timing,
) -> Quiet {
    let mut busy: Vec<u64> = periods
        .iter()
        .filter(|p| window.holds(p.from_ms))
        .map(|p| window.sim_ms(p.from_ms))
        .collect();
    for step in steps {
        if let Action::Server { lasting, .. } = &step.item.action {
            busy.push(ms(step.item.at));
            if let Some(lasting) = lasting {
                busy.push(ms(step.item.at + *lasting));
            }
        }
    }
    if !window.cold() {
        busy.extend([0, window.lead_ms]);
    }
    // The first election of a cold start.
    busy.push(0);
    busy.sort_unstable();
    busy.dedup();
    Quiet {
        margin_ms: ms(timing.election_timeout + timing.failover_delay) + 1_000,
        busy_ms: busy,
    }
}

/// A check of the active server in the middle of each stable stretch long enough, with
/// the seats in use when no seat changed nearby and the journals know every seat.
pub fn checks(
    field: &Field,
    window: &Window,
    periods: &[roles::Period],
    quiet: &Quiet,
    timing: &Timing,
) -> Vec<Noted<Check>> {
    let seats = clients::seats(field);
    let seats_known = seats_known(field);
    let heartbeat = ms(timing.client_heartbeat);
    // When the replay's seats may change: at the field's grants and releases, and up to a
    // heartbeat before an expiry (its client's last heartbeat is not the field's).
    let seat_spans: Vec<(u64, u64)> = seats
        .values()
        .filter(|s| window.holds(s.t_ms))
        .map(|s| {
            let t = window.sim_ms(s.t_ms);
            match s.record.change {
                SeatChangeName::Expired => (t.saturating_sub(heartbeat), t),
                _ => (t, t),
            }
        })
        .collect();
    let mut seat_spans = seat_spans;
    seat_spans.sort_unstable();
    let mut checks = Vec::new();
    for period in periods {
        let from = period.from_ms.max(window.from_ms);
        let to = period.to_ms.min(window.to_ms);
        if to <= from {
            continue;
        }
        let Some(zone) = quiet.zone(window.sim_ms(from), window.sim_ms(to)) else {
            continue;
        };
        let (at, seats_far) = farthest(zone, &seat_spans);
        let active = match period.active {
            Some(s) => ServerId::new(s).map(Some),
            None => Some(None),
        };
        let Some(active) = active else {
            continue;
        };
        let who = period
            .active
            .map_or("no server".into(), |s| format!("#{s}"));
        let mut notes = vec![format!(
            "field: {who} active from {} to {}{}",
            rfc3339(period.from_ms),
            if period.to_ms == u64::MAX {
                "the end".into()
            } else {
                rfc3339(period.to_ms)
            },
            if period.active.is_some() {
                format!(" (term {})", period.term)
            } else {
                String::new()
            }
        )];
        let true_at = window.from_ms + at.saturating_sub(window.lead_ms);
        let mut in_use = BTreeMap::new();
        if seats_known && seats_far >= SEAT_MARGIN_MS {
            for seat in seats.values().filter(|s| s.t_ms <= true_at) {
                let count: &mut i64 = in_use.entry(seat.record.feature.clone()).or_insert(0);
                *count += match seat.record.change {
                    SeatChangeName::Granted | SeatChangeName::Borrowed => 1,
                    // A place in a queue, not a seat.
                    SeatChangeName::Queued | SeatChangeName::LeftQueue => 0,
                    _ => -1,
                };
            }
            let used: Vec<String> = in_use.iter().map(|(f, n)| format!("{f} {n}")).collect();
            if !used.is_empty() {
                notes.push(format!("seats in use then: {}", used.join(", ")));
            }
        }
        let in_use = in_use
            .into_iter()
            .filter_map(|(f, n)| Some((f, u32::try_from(n).ok()?)))
            .collect();
        checks.push(Noted {
            notes,
            item: Check {
                at: Duration::from_millis(at),
                line: 0,
                active: Some(active),
                in_use,
                ..Check::default()
            },
        });
    }
    checks
}

/// Whether the journals know every seat: each server's journal begins with the start of
/// an empty server (a new triad), so no seat predates them.
pub fn seats_known(field: &Field) -> bool {
    field.lives.values().all(|lives| {
        lives.first().is_some_and(|l| {
            l.start
                .as_ref()
                .is_some_and(|(_, _, r)| r.last_index == 0 && r.snapshot_index.is_none())
        })
    })
}
