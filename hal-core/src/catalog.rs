//! The license as one server applies it: per feature, the COUNT, whether and how long it
//! may be borrowed, its validity dates, and whether this server's HostID may serve it.
//! Built once from a parsed [`License`] when the server starts.

use std::collections::BTreeMap;

use crate::HostId;
use crate::license::{License, ServerPosition};
use crate::protocol::Denial;
use crate::time::WallTime;

/// The rules for one feature on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRules {
    pub count: u32,
    pub borrow_hours_max: Option<u32>,
    pub start: Option<time::Date>,
    pub end: Option<time::Date>,
    /// False when the feature is locked to another HostID for this server's slot.
    pub hostid_ok: bool,
}

/// Every feature this server knows, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    features: BTreeMap<String, Entry>,
}

/// A feature's rules and its validity window in wall-clock milliseconds, worked out once
/// so that a request compares two numbers instead of computing a date.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    rules: FeatureRules,
    /// From the start of the START day, inclusive.
    from: WallTime,
    /// To the end of the END day, exclusive.
    until: WallTime,
}

const DAY_MS: u64 = 86_400_000;
const JULIAN_DAY_OF_1970_01_01: i64 = 2_440_588;

/// Midnight (UTC) at the start of `date`, clamped to the epoch.
fn midnight(date: time::Date) -> WallTime {
    let days = i64::from(date.to_julian_day()).saturating_sub(JULIAN_DAY_OF_1970_01_01);
    WallTime(u64::try_from(days).unwrap_or(0).saturating_mul(DAY_MS))
}

impl Entry {
    fn new(rules: FeatureRules) -> Entry {
        let from = rules.start.map_or(WallTime(0), midnight);
        let until = rules.end.map_or(WallTime(u64::MAX), |end| {
            WallTime(midnight(end).0.saturating_add(DAY_MS))
        });
        Entry { rules, from, until }
    }
}

impl Catalog {
    /// The rules of `license` for the server at `position` whose HostID is `own`.
    /// Uncounted features are left out (no server serves them).
    pub fn new(license: &License, position: ServerPosition, own: &HostId) -> Catalog {
        let features = license.features.iter().filter_map(|f| {
            let rules = FeatureRules {
                count: f.count?,
                borrow_hours_max: f.borrow_hours_max,
                start: f.start,
                end: f.end,
                hostid_ok: f.check_hostid(position, own).is_ok(),
            };
            Some((f.name.to_string(), rules))
        });
        Catalog::from_rules(features)
    }

    /// A catalog from explicit rules (tests and tools).
    pub fn from_rules(features: impl IntoIterator<Item = (String, FeatureRules)>) -> Catalog {
        let features = features
            .into_iter()
            .map(|(name, rules)| (name, Entry::new(rules)))
            .collect();
        Catalog { features }
    }

    /// The COUNT of `feature`, if this server knows it.
    pub fn count(&self, feature: &str) -> Option<u32> {
        self.features.get(feature).map(|e| e.rules.count)
    }

    /// Every feature and its rules, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FeatureRules)> {
        self.features.iter().map(|(n, e)| (n.as_str(), &e.rules))
    }

    /// Whether a request for `feature` may be served at wall time `now`, or the denial
    /// that says why not. `borrow_hours` is set for a borrow.
    pub fn check(
        &self,
        feature: &str,
        now: WallTime,
        borrow_hours: Option<u32>,
    ) -> Result<&FeatureRules, Denial> {
        let entry = self.features.get(feature).ok_or(Denial::UnknownFeature)?;
        let rules = &entry.rules;
        if !rules.hostid_ok {
            return Err(Denial::HostIdMismatch);
        }
        if now < entry.from || now >= entry.until {
            return Err(Denial::LicenseExpired);
        }
        if let Some(hours) = borrow_hours {
            match rules.borrow_hours_max {
                Some(max) if hours >= 1 && hours <= max => {}
                _ => return Err(Denial::BorrowNotAllowed),
            }
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::license::parse;
    use crate::{HostId, ServerId};

    const LICENSE: &str = "FEATURE cad {\n VENDOR = acme\n COUNT = 5\n HAL_SERVERS = 3\n BORROW = 24\n \
        START = 2027-01-01\n END = 2027-12-31\n HOSTID = aa bb cc\n}\n\
        FEATURE tool {\n VENDOR = acme\n HAL_SERVERS = 3\n COUNT = 1\n}\n";

    fn day(text: &str) -> WallTime {
        let date =
            time::Date::parse(text, &time::format_description::well_known::Iso8601::DATE).unwrap();
        let days = u64::try_from(date.to_julian_day() - 2_440_588).unwrap();
        WallTime(days * 86_400_000 + 12 * 3_600_000)
    }

    fn catalog(position: ServerId, hostid: &str) -> Catalog {
        let license = parse("t.lic", LICENSE.as_bytes()).unwrap();
        Catalog::new(
            &license,
            ServerPosition::Triad(position),
            &HostId::parse(hostid).unwrap(),
        )
    }

    #[test]
    fn each_rule_has_its_denial() {
        let c = catalog(ServerId::SECONDARY, "bb");
        let mid = day("2027-06-01");
        assert_eq!(c.check("cad", mid, None).map(|r| r.count), Ok(5));
        assert_eq!(c.check("nosuch", mid, None), Err(Denial::UnknownFeature));
        assert_eq!(
            c.check("cad", day("2026-12-31"), None),
            Err(Denial::LicenseExpired)
        );
        assert_eq!(
            c.check("cad", day("2028-01-01"), None),
            Err(Denial::LicenseExpired)
        );
        assert!(
            c.check("cad", day("2027-12-31"), None).is_ok(),
            "END is inclusive"
        );
        assert!(c.check("cad", mid, Some(24)).is_ok());
        assert_eq!(c.check("cad", mid, Some(25)), Err(Denial::BorrowNotAllowed));
        assert_eq!(c.check("tool", mid, Some(1)), Err(Denial::BorrowNotAllowed));
    }

    #[test]
    fn the_window_runs_from_start_midnight_to_the_end_of_the_end_day() {
        let c = catalog(ServerId::SECONDARY, "bb");
        let noon = 12 * 3_600_000;
        let first = WallTime(day("2027-01-01").0 - noon);
        let after_last = WallTime(day("2028-01-01").0 - noon);
        assert_eq!(
            c.check("cad", WallTime(first.0 - 1), None),
            Err(Denial::LicenseExpired)
        );
        assert!(c.check("cad", first, None).is_ok());
        assert!(c.check("cad", WallTime(after_last.0 - 1), None).is_ok());
        assert_eq!(
            c.check("cad", after_last, None),
            Err(Denial::LicenseExpired)
        );
    }

    #[test]
    fn a_hostid_lock_is_checked_against_this_servers_slot() {
        let wrong = catalog(ServerId::PRIMARY, "bb");
        assert_eq!(
            wrong.check("cad", day("2027-06-01"), None),
            Err(Denial::HostIdMismatch)
        );
        assert!(
            wrong.check("tool", day("2027-06-01"), None).is_ok(),
            "unlocked features still serve"
        );
    }
}
