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
