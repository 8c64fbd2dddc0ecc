//! Time for the shell, as a trait: the system clock in production ([`SystemClock`]), a
//! simulated clock with per-server offset and drift in the simulator.
//!
//! hal-core takes time as an input ([`Now`]): the monotonic reading drives its timers and
//! the wall reading dates borrows and license validity. Sleeping is done with tokio's
//! timer (which turmoil drives in simulation); [`Clock::until`] converts a deadline on
//! this clock into a tokio duration, so a drifting clock still wakes the node on time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hal_core::time::{Now, Time, WallTime};

/// A node's clocks.
pub trait Clock: Clone + Send + Sync + 'static {
    /// Both readings now.
    fn now(&self) -> Now;

    /// How long to sleep on tokio's timer until the monotonic reading reaches `deadline`.
    fn until(&self, deadline: Time) -> Duration {
        deadline.since(self.now().mono)
    }
}

/// The machine's clocks: tokio's monotonic `Instant` since the node started, and the
/// system's calendar time.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    /// A clock whose monotonic reading starts at zero now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Now {
        let mono = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Now {
            mono: Time(mono),
            wall: wall_now(),
        }
    }

    fn until(&self, deadline: Time) -> Duration {
        // Exact to the nanosecond, so the node never wakes a fraction of a millisecond
        // early and spins until the reading turns over.
        (self.origin + Duration::from_millis(deadline.0))
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// The system's calendar time in ms since the epoch (0 if the clock is before 1970).
pub fn wall_now() -> WallTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    WallTime(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Sleeps for `duration` on tokio's timer, or forever without one (no deadline).
pub async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline` on tokio's timer, or forever without one.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
