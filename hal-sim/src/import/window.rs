//! The stretch of the journals that is replayed, and how its times become simulated
//! times.
//!
//! A window that opens before any server ran ("cold") starts the simulation with the
//! servers' first starts: simulated 0 is the window's start. A window that opens while
//! the triad ran ("warm") cannot start the simulated triad in the field's state, so it
//! gets a lead-in: the servers start at 0, the servers down at the window's start are
//! crashed then, the links cut then are cut, and the seats held then are checked out
//! again; the window's start is the lead-in's end.
//!
//! When every server's journal ends with a clean stop, close together, the triad was shut
//! down (to collect the journals, usually): the window ends before the first of those
//! stops, which are not replayed.

use hal_core::timing::Timing;

use super::field::{End, Field};
use super::time::rfc3339;
use super::{ImportError, Options};

/// Final stops of every server within this long of each other are the triad's shutdown.
pub const SHUTDOWN_SPREAD_MS: u64 = 60_000;

/// The window and its mapping to simulated time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// First and last true times replayed (inclusive).
    pub from_ms: u64,
    pub to_ms: u64,
    /// Simulated time of the window's start: 0 when cold, the lead-in's length when warm.
    pub lead_ms: u64,
    /// When warm: the simulated time the seats held at the window's start are checked
    /// out again.
    pub held_at_ms: u64,
    /// The first of the final stops, when the window ends at the triad's shutdown.
    pub shutdown_ms: Option<u64>,
    /// What a reader should know about the window.
    pub notes: Vec<String>,
}

impl Window {
    /// The window of `options` over `field`: by default from the first record to the last
    /// (or to the shutdown).
    pub fn resolve(
        field: &Field,
        options: &Options,
        timing: &Timing,
    ) -> Result<Window, ImportError> {
        let (Some(first), Some(last)) = (field.events.first(), field.events.last()) else {
            return Err(ImportError::Input(
                "the journals hold no records besides their meta records: nothing happened to replay".into(),
            ));
        };
        let (first_ms, last_ms) = (first.t_ms, last.t_ms);
        let argument = |name: &str, problem: String| ImportError::Argument {
            argument: name.to_string(),
            problem,
        };
        let mut notes = Vec::new();
        let mut from_ms = options.from_ms.unwrap_or(first_ms);
        let mut to_ms = options.to_ms.unwrap_or(last_ms);
        if from_ms > last_ms {
            return Err(argument(
                "--from",
                format!(
                    "{} is after the journals' last record ({})",
                    rfc3339(from_ms),
                    rfc3339(last_ms)
                ),
            ));
        }
        if to_ms < first_ms {
            return Err(argument(
                "--to",
                format!(
                    "{} is before the journals' first record ({})",
                    rfc3339(to_ms),
                    rfc3339(first_ms)
                ),
            ));
        }
        if from_ms > to_ms {
            return Err(argument(
                "--from",
                format!("{} is after --to {}", rfc3339(from_ms), rfc3339(to_ms)),
            ));
        }
        let cold = from_ms <= first_ms;
        if from_ms < first_ms {
            notes.push(format!(
                "--from {} is before the first record: the window starts at it, {}",
                rfc3339(from_ms),
                rfc3339(first_ms)
            ));
            from_ms = first_ms;
        }
        let shutdown_ms = shutdown(field, from_ms, to_ms);
        if let Some(stop) = shutdown_ms {
            notes.push(format!(
                "every server stopped cleanly at the end, the first at {}: the triad was shut down, and the replay ends there",
                rfc3339(stop)
            ));
            to_ms = stop.saturating_sub(1);
        }
        let held_at_ms = ms(timing.election_timeout + timing.failover_delay) + 500;
        let lead_ms = if cold {
            0
        } else {
            (held_at_ms + 1_500).div_ceil(1_000) * 1_000
        };
        Ok(Window {
            from_ms,
            to_ms,
            lead_ms,
            held_at_ms,
            shutdown_ms,
            notes,
        })
    }

    /// Whether the simulation starts with the servers' first starts.
    pub fn cold(&self) -> bool {
        self.lead_ms == 0
    }

    /// Whether true time `t_ms` is in the window.
    pub fn holds(&self, t_ms: u64) -> bool {
        (self.from_ms..=self.to_ms).contains(&t_ms)
    }

    /// The simulated time of true time `t_ms` (times before the window: its start).
    pub fn sim_ms(&self, t_ms: u64) -> u64 {
        t_ms.saturating_sub(self.from_ms) + self.lead_ms
    }

    /// The simulated time the window ends.
    pub fn end_sim_ms(&self) -> u64 {
        self.sim_ms(self.to_ms)
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The first of the servers' final clean stops, if every server's journal ends with one
/// inside `[from_ms, to_ms]` and they are close together.
fn shutdown(field: &Field, from_ms: u64, to_ms: u64) -> Option<u64> {
    let mut stops = Vec::new();
    for lives in field.lives.values() {
        match lives.last().map(|l| &l.end) {
            Some(End::Stopped { t_ms, .. }) if *t_ms > from_ms && *t_ms <= to_ms => {
                stops.push(*t_ms);
            }
            _ => return None,
        }
    }
    let (first, last) = (stops.iter().min()?, stops.iter().max()?);
    (last - first <= SHUTDOWN_SPREAD_MS).then_some(*first)
}
