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
    features: BTreeMap<String, FeatureRules>,
}

impl Catalog {
    /// The rules of `license` for the server at `position` whose HostID is `own`.
    /// Uncounted features are left out (no server serves them).
    pub fn new(license: &License, position: ServerPosition, own: &HostId) -> Catalog {
        let features = license
            .features
            .iter()
            .filter_map(|f| {
                let rules = FeatureRules {
                    count: f.count?,
                    borrow_hours_max: f.borrow_hours_max,
                    start: f.start,
                    end: f.end,
                    hostid_ok: f.check_hostid(position, own).is_ok(),
                };
                Some((f.name.to_string(), rules))
            })
            .collect();
        Catalog { features }
    }

    /// A catalog from explicit rules (tests and tools).
    pub fn from_rules(features: impl IntoIterator<Item = (String, FeatureRules)>) -> Catalog {
        Catalog {
            features: features.into_iter().collect(),
        }
    }

    /// The COUNT of `feature`, if this server knows it.
    pub fn count(&self, feature: &str) -> Option<u32> {
        self.features.get(feature).map(|r| r.count)
    }

    /// Every feature and its rules, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FeatureRules)> {
        self.features.iter().map(|(n, r)| (n.as_str(), r))
    }

    /// Whether a request for `feature` may be served on `today`'s wall clock, or the
    /// denial that says why not. `borrow_hours` is set for a borrow.
    pub fn check(
        &self,
        feature: &str,
        now: WallTime,
        borrow_hours: Option<u32>,
    ) -> Result<&FeatureRules, Denial> {
        let rules = self.features.get(feature).ok_or(Denial::UnknownFeature)?;
        if !rules.hostid_ok {
            return Err(Denial::HostIdMismatch);
        }
        let today = now.date();
        let started = rules.start.is_none_or(|start| start <= today);
        let ended = rules.end.is_some_and(|end| end < today);
        if !started || ended {
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
