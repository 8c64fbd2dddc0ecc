//! hal-net's [`Clock`] in simulated time, with the per-server offset and drift turmoil
//! does not have (DESIGN §6.1).
//!
//! True time is turmoil's simulated elapsed time. A server's clock reads it drifted
//! (`drift_ppm` parts per million, piecewise: a change of drift keeps the reading
//! continuous) plus, for the wall clock, the pinned epoch and an offset. The state is
//! shared, so a server's clock keeps running across its crashes and restarts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_core::time::{Now, Time, WallTime};
use hal_net::clock::Clock;

/// One server's clock.
#[derive(Debug, Clone)]
pub struct SimClock {
    epoch_ms: u64,
    state: Arc<Mutex<Skew>>,
}

/// How a clock is off.
#[derive(Debug, Clone, Copy)]
struct Skew {
    offset_ms: i64,
    drift_ppm: i64,
    /// The true and drifted readings when the drift last changed.
    anchor_true_ms: f64,
    anchor_read_ms: f64,
}

/// Simulated time since the start of the run, in ms (0 outside a simulation).
fn true_ms() -> f64 {
    turmoil::sim_elapsed().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl SimClock {
    /// A clock reading true time, with the wall clock starting at `epoch_ms`.
    pub fn new(epoch_ms: u64) -> SimClock {
        let skew = Skew {
            offset_ms: 0,
            drift_ppm: 0,
            anchor_true_ms: 0.0,
            anchor_read_ms: 0.0,
        };
        SimClock {
            epoch_ms,
            state: Arc::new(Mutex::new(skew)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Skew> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The drifted reading at true time `t`, in ms.
    fn read_at(skew: &Skew, t: f64) -> f64 {
        let rate = 1.0 + skew.drift_ppm as f64 / 1e6;
        skew.anchor_read_ms + (t - skew.anchor_true_ms) * rate
    }

    /// Moves the wall clock by `offset_ms` (a step, as an operator or NTP would).
    pub fn set_offset(&self, offset_ms: i64) {
        self.lock().offset_ms = offset_ms;
    }

    /// Makes the clock run fast (positive) or slow by `drift_ppm` from true time `now`
    /// on (the harness sets it between steps, outside any host, where turmoil tells no
    /// time).
    pub fn set_drift(&self, drift_ppm: i64, now: Duration) {
        let t = now.as_secs_f64() * 1000.0;
        let mut skew = self.lock();
        let read = SimClock::read_at(&skew, t);
        skew.anchor_true_ms = t;
        skew.anchor_read_ms = read;
        skew.drift_ppm = drift_ppm;
    }
}

impl Clock for SimClock {
    fn now(&self) -> Now {
        let skew = *self.lock();
        let read = SimClock::read_at(&skew, true_ms()).max(0.0);
        let mono = read as u64;
        let wall = (self.epoch_ms as i64 + read as i64 + skew.offset_ms).max(0);
        Now {
            mono: Time(mono),
            wall: WallTime(wall as u64),
        }
    }

    fn until(&self, deadline: Time) -> Duration {
        let skew = *self.lock();
        let read = SimClock::read_at(&skew, true_ms());
        let rate = 1.0 + skew.drift_ppm as f64 / 1e6;
        let true_wait_ms = ((deadline.0 as f64 - read) / rate).max(0.0);
        // Whole milliseconds, rounded up: the node wakes at or just after its deadline,
        // never before, and on turmoil's 1 ms tick (a fraction of a millisecond would
        // let the rounding of tokio's timer depend on real time).
        Duration::from_millis(true_wait_ms.ceil() as u64)
    }
}
