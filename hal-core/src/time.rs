//! Time as hal-core sees it: always an input, never read from a clock.
//!
//! [`Time`] is monotonic, in milliseconds since an origin the shell picks (its start, say);
//! only differences between two `Time`s of the same server mean anything. [`WallTime`] is
//! the server's calendar clock, in milliseconds since the UNIX epoch; it may be skewed
//! between servers and is used only where the protocol needs a date (borrow ends, license
//! END dates).

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A monotonic instant: milliseconds since the shell's origin.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Time(pub u64);

/// A wall-clock instant: milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct WallTime(pub u64);

/// Both clocks of a server or client at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Time,
    pub wall: WallTime,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

macro_rules! instant_ops {
    ($t:ident) => {
        impl Add<Duration> for $t {
            type Output = $t;
            fn add(self, d: Duration) -> $t {
                $t(self.0.saturating_add(millis(d)))
            }
        }

        impl Sub<Duration> for $t {
            type Output = $t;
            fn sub(self, d: Duration) -> $t {
                $t(self.0.saturating_sub(millis(d)))
            }
        }

        impl $t {
            /// The time from `earlier` to `self`, zero if `earlier` is later.
            pub fn since(self, earlier: $t) -> Duration {
                Duration::from_millis(self.0.saturating_sub(earlier.0))
            }
        }
    };
}

instant_ops!(Time);
instant_ops!(WallTime);

impl Time {
    /// The latest instant ("never").
    pub const MAX: Time = Time(u64::MAX);
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl WallTime {
    /// The calendar day (UTC) of this instant.
    pub fn date(self) -> time::Date {
        const JULIAN_DAY_OF_1970_01_01: u64 = 2_440_588;
        let day = JULIAN_DAY_OF_1970_01_01.saturating_add(self.0 / 86_400_000);
        let day = i32::try_from(day).unwrap_or(i32::MAX);
        time::Date::from_julian_day(day).unwrap_or(time::Date::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Time(5) - Duration::from_millis(10), Time(0));
        assert_eq!(Time(5).since(Time(10)), Duration::ZERO);
        assert_eq!(Time(5) + Duration::from_secs(1), Time(1005));
    }

    #[test]
    fn wall_time_gives_the_utc_date() {
        assert_eq!(WallTime(0).date().to_string(), "1970-01-01");
        // 2027-12-31T23:59:59.999Z
        assert_eq!(WallTime(1_830_297_599_999).date().to_string(), "2027-12-31");
        assert_eq!(WallTime(1_830_297_600_000).date().to_string(), "2028-01-01");
    }
}
