//! The servers' timers, from their journals' meta records, as a scenario's `[timing]`:
//! the profile nearest to them and the timers that differ from it.

use std::time::Duration;

use hal_core::record::Meta;
use hal_core::timing::Timing;
use hal_net::config::{TIMING_FIELDS, TimingProfile, timing_field};

use super::ImportError;
use super::field::Field;

/// The timers and how the scenario states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    pub profile: TimingProfile,
    pub timing: Timing,
    /// The timers that differ from the profile's, by name.
    pub overrides: Vec<(String, Duration)>,
    /// What a reader should know (servers that disagree, timers not journaled).
    pub notes: Vec<String>,
}

/// The timers of `meta`: each one given, the rest `None`.
fn timers(meta: &Meta) -> Vec<(&'static str, Option<Duration>)> {
    let extra = |key: &str| {
        meta.timing_ms
            .as_ref()
            .and_then(|t| t.get(key))
            .map(|ms| Duration::from_millis(*ms))
    };
    let ms = |ms: u64| Some(Duration::from_millis(ms));
    TIMING_FIELDS
        .iter()
        .map(|&key| {
            let value = match key {
                "client_lease" => ms(meta.lease_ms),
                "election_timeout" => ms(meta.election_timeout_ms),
                "failover_delay" => ms(meta.failover_delay_ms),
                "failback_hold" => ms(meta.failback_hold_ms),
                "max_clock_skew" => ms(meta.max_clock_skew_ms),
                other => extra(&format!("{other}_ms")),
            };
            (key, value)
        })
        .collect()
}

/// The timers of the lowest server's journal (the others' differences noted).
pub fn from_field(field: &Field) -> Result<Timers, ImportError> {
    let Some((&server, meta)) = field.metas.iter().next() else {
        return Err(ImportError::Input("no journal given".into()));
    };
    let given = timers(meta);
    let mut notes = Vec::new();
    for (&other, other_meta) in field.metas.iter().skip(1) {
        for ((key, ours), (_, theirs)) in given.iter().zip(timers(other_meta)) {
            if *ours != theirs && theirs.is_some() {
                notes.push(format!(
                    "#{other}'s {key} is {}, #{server}'s {}: the replay gives every server #{server}'s",
                    show(theirs),
                    show(*ours)
                ));
            }
        }
    }
    let missing: Vec<&str> = given
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    let (profile, overrides) = nearest_profile(&given);
    if !missing.is_empty() {
        notes.push(format!(
            "#{server}'s journal does not say its {}: the '{}' profile's are taken",
            missing.join(", "),
            profile.name()
        ));
    }
    let mut timing = profile.timing();
    for (key, value) in &overrides {
        if let Some(field) = timing_field(&mut timing, key) {
            *field = *value;
        }
    }
    timing.validate().map_err(|why| {
        ImportError::Input(format!(
            "server #{server}'s journal states timers the simulator refuses: {why}"
        ))
    })?;
    Ok(Timers {
        profile,
        timing,
        overrides,
        notes,
    })
}

fn show(value: Option<Duration>) -> String {
    value.map_or("not stated".into(), |d| {
        humantime::format_duration(d).to_string()
    })
}

/// The profile with the fewest timers to override, and those overrides.
fn nearest_profile(
    given: &[(&'static str, Option<Duration>)],
) -> (TimingProfile, Vec<(String, Duration)>) {
    let overrides = |profile: TimingProfile| -> Vec<(String, Duration)> {
        let mut timing = profile.timing();
        given
            .iter()
            .filter_map(|(key, value)| {
                let value = (*value)?;
                let field = timing_field(&mut timing, key)?;
                (*field != value).then(|| (key.to_string(), value))
            })
            .collect()
    };
    TimingProfile::ALL
        .into_iter()
        .map(|p| (p, overrides(p)))
        .min_by_key(|(_, o)| o.len())
        .unwrap_or((TimingProfile::Lan, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(lease_ms: u64, failback_hold_ms: u64) -> Meta {
        let t = Timing::wan();
        Meta {
            lease_ms,
            election_timeout_ms: 5_000,
            failover_delay_ms: 2_000,
            failback_hold_ms,
            max_clock_skew_ms: 300_000,
            timing_ms: Some(
                [
                    (
                        "peer_heartbeat_ms".to_string(),
                        t.peer_heartbeat.as_millis() as u64,
                    ),
                    ("client_heartbeat_ms".to_string(), 60_000),
                ]
                .into(),
            ),
            ..Meta::default()
        }
    }

    #[test]
    fn the_nearest_profile_and_what_differs_from_it() {
        let given = timers(&meta(300_000, 60_000));
        let (profile, overrides) = nearest_profile(&given);
        assert_eq!(profile, TimingProfile::Wan);
        assert_eq!(
            overrides,
            vec![("failback_hold".to_string(), Duration::from_secs(60))]
        );
    }

    #[test]
    fn timers_not_journaled_are_the_profiles() {
        let mut m = meta(300_000, 120_000);
        m.timing_ms = None;
        let given = timers(&m);
        let (profile, overrides) = nearest_profile(&given);
        assert_eq!(profile, TimingProfile::Wan);
        assert!(overrides.is_empty(), "{overrides:?}");
    }
}
