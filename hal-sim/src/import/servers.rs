//! The servers' own faults: each time a server went down and came back, as a step with
//! `for`: a `stop` for a clean stop (a `stop` record with reason `shutdown`), a `crash`
//! for a kill or power loss (no `stop` record) or a stop on an error.
//! A server that started well after the others, or was down when a warm window opens, is
//! crashed at 0 s; so is #1 when #2 was active at a warm window's start while #1 ran (a
//! failback still held back), so that the replay starts with #2 active too.
//!
//! Their clocks: each one's offset from the reference at the window's start (a
//! `[servers.N] clock_offset`), and each step of it in the window (a `clock` step).

use std::time::Duration;

use hal_core::ServerId;

use super::field::{End, Field, Life};
use super::time::{rfc3339, secs};
use super::window::Window;
use super::{DURATION_MAX_MS, Noted};
use crate::faults::Fault;
use crate::scenario::{Action, Expect, Step};

/// The reason of a `stop` record a clean shutdown writes.
const CLEAN_STOP: &str = "shutdown";

/// Clock offsets smaller than this are left out: the estimate is no better.
const CLOCK_OFFSET_MS_MIN: i64 = 100;
/// A server that started this much later than the window's start started late (the
/// others may have elected without it): it is crashed at 0 s until then.
pub const STAGGER_MS: u64 = 200;

/// A `crash` step at simulated `at_ms`, restarted at `until_ms` if given.
fn crash(server: u8, at_ms: u64, until_ms: Option<u64>) -> Option<Step> {
    down_step(Fault::Crash, server, at_ms, until_ms)
}

/// A step of `fault` (a crash or a stop) at simulated `at_ms`, restarted at `until_ms` if
/// given.
fn down_step(
    fault: fn(ServerId) -> Fault,
    server: u8,
    at_ms: u64,
    until_ms: Option<u64>,
) -> Option<Step> {
    let id = ServerId::new(server)?;
    Some(Step {
        at: Duration::from_millis(at_ms),
        line: 0,
        action: Action::Server {
            fault: fault(id),
            lasting: until_ms.map(|u| Duration::from_millis(u.saturating_sub(at_ms).max(1))),
        },
        expect: Expect::default(),
    })
}

/// Every server's down times in the window, as crash steps.
pub fn steps(field: &Field, window: &Window, active_at_start: Option<u8>) -> Vec<Noted<Step>> {
    let mut steps = Vec::new();
    for (&server, lives) in &field.lives {
        let mut down_from: Option<(u64, Option<&Life>)> = Some((0, None));
        for life in lives {
            if let (Some((from, ended)), Some((start, _, _))) = (down_from, &life.start) {
                steps.extend(down(window, server, from, ended, Some((*start, life))));
            }
            down_from = life.end_ms().map(|end| (end, Some(life)));
        }
        if let Some((from, ended)) = down_from {
            steps.extend(down(window, server, from, ended, None));
        }
    }
    let one_runs = field.runs_at(1, window.from_ms);
    if !window.cold() && active_at_start == Some(2) && one_runs {
        let notes = vec![format!(
            "#2 was active at the window's start although #1 ran (its failback was still held back): #1 is kept down during the lead-in, so that #2 is active when the window starts at {}",
            secs(window.lead_ms)
        )];
        if let Some(step) = crash(1, 0, Some(window.lead_ms)) {
            steps.push(Noted { notes, item: step });
        }
    }
    steps
}

/// The step for server `server` down from true time `from` (after life `ended`, if any)
/// until life `restart` started (if it did).
fn down(
    window: &Window,
    server: u8,
    from: u64,
    ended: Option<&Life>,
    restart: Option<(u64, &Life)>,
) -> Option<Noted<Step>> {
    let until = restart.map(|(t, _)| t);
    if until.is_some_and(|u| u < window.from_ms) || from > window.to_ms {
        return None;
    }
    let back = until
        .filter(|u| *u <= window.to_ms)
        .map(|u| window.sim_ms(u));
    let mut notes = Vec::new();
    let at_ms = match ended {
        // Not started yet when the window opens.
        None => {
            let starts = until.unwrap_or(u64::MAX);
            if window.cold() && starts.saturating_sub(window.from_ms) <= STAGGER_MS {
                return None;
            }
            notes.push(match until {
                Some(u) => format!(
                    "#{server} first started at {} ({} into the window): down until then",
                    rfc3339(u),
                    secs(u.saturating_sub(window.from_ms))
                ),
                None => format!("#{server} did not run in the window"),
            });
            0
        }
        Some(life) => {
            notes.extend(how_it_ended(server, life));
            if from < window.from_ms {
                notes.push("it was still down when the window starts".into());
                0
            } else {
                window.sim_ms(from)
            }
        }
    };
    match restart {
        Some((t, life)) if back.is_some() => {
            let recovered = life
                .start
                .as_ref()
                .map(|(_, place, r)| {
                    format!(
                        " ({}; recovered term {}, log to index {})",
                        place.short(),
                        r.term,
                        r.last_index
                    )
                })
                .unwrap_or_default();
            notes.push(format!(
                "#{server} started again at {}{recovered}",
                rfc3339(t)
            ));
        }
        Some((t, _)) => notes.push(format!(
            "#{server} started again at {}, after the window",
            rfc3339(t)
        )),
        None if ended.is_some() => notes.push(format!("#{server} did not start again")),
        None => {}
    }
    let fault = match ended.map(|life| &life.end) {
        Some(End::Stopped { reason, .. }) if reason == CLEAN_STOP => Fault::Stop,
        _ => Fault::Crash,
    };
    let step = down_step(fault, server, at_ms, back)?;
    Some(Noted { notes, item: step })
}

/// What the journals say about how a life ended.
fn how_it_ended(server: u8, life: &Life) -> Vec<String> {
    match &life.end {
        End::Stopped {
            t_ms,
            reason,
            place,
        } => vec![format!(
            "#{server} stopped at {} ({}: reason \"{}\"); {}",
            rfc3339(*t_ms),
            place.short(),
            super::clean(reason),
            if reason == CLEAN_STOP {
                "replayed as a clean stop"
            } else {
                "a stop on an error is replayed as a crash"
            }
        )],
        End::Crashed { t_ms, seen } => {
            let mut said = format!(
                "#{server} was killed or lost power: no stop record; its last record at {}",
                rfc3339(life.last_ms)
            );
            for (peer, t) in seen {
                said.push_str(&format!("; #{peer} saw the link down at {}", rfc3339(*t)));
            }
            if seen.is_empty() {
                said.push_str("; no peer saw it go, so the crash is put at its last record");
            }
            vec![said, format!("the crash is put at {}", rfc3339(*t_ms))]
        }
        End::Running => Vec::new(),
    }
}

/// Each server's clock offset at the start (ms; 0: none), and why.
pub type Offsets = [(i64, Vec<String>); 3];

/// Each server's clock offset at the window's start, and its clock's steps in it.
pub fn clocks(field: &Field, window: &Window) -> (Offsets, Vec<Noted<Step>>) {
    let day = i64::try_from(DURATION_MAX_MS).unwrap_or(i64::MAX);
    let mut offsets: Offsets = Default::default();
    let mut steps = Vec::new();
    for server in 1..=3u8 {
        let levels = field.clocks.of(server);
        let Some(id) = ServerId::new(server) else {
            continue;
        };
        let at_start = field.clocks.offset_at(server, window.from_ms);
        let clamp = |offset: i64, notes: &mut Vec<String>| {
            if offset.abs() > day {
                notes.push(format!(
                    "#{server}'s clock was {} s off: a scenario sets at most a day",
                    offset / 1000
                ));
            }
            offset.clamp(-day, day)
        };
        if at_start.abs() >= CLOCK_OFFSET_MS_MIN {
            let mut notes = vec![format!(
                "#{server}'s clock read {} ms {} the reference at the window's start",
                at_start.abs(),
                if at_start < 0 { "behind" } else { "ahead of" }
            )];
            let offset = clamp(at_start, &mut notes);
            offsets[usize::from(server - 1)] = (offset, notes);
        }
        // The first level holds from the start (the offset above).
        let later = levels.iter().skip(1);
        for level in later.filter(|l| l.from_ms > window.from_ms && window.holds(l.from_ms)) {
            let mut notes = vec![format!(
                "#{server}'s clock stepped to {} ms from the reference (estimated within {} ms) by {}",
                level.offset_ms,
                level.rtt_ms / 2 + 1,
                rfc3339(level.from_ms)
            )];
            let offset = clamp(level.offset_ms, &mut notes);
            steps.push(Noted {
                notes,
                item: Step {
                    at: Duration::from_millis(window.sim_ms(level.from_ms)),
                    line: 0,
                    action: Action::Server {
                        fault: Fault::Clock(id, offset, 0),
                        lasting: None,
                    },
                    expect: Expect::default(),
                },
            });
        }
    }
    (offsets, steps)
}
