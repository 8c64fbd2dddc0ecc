//! Property tests of the license file: print → parse gives back what was printed; any
//! change to a signed value breaks the signature; and no input makes the parser panic.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use hal_core::HostId;
use hal_core::license::{
    Feature, FeatureName, License, Origin, SignatureError, Vendor, Version, canonical_bytes,
    limits, parse,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use time::Date;

const JULIAN_1970_01_01: i32 = 2_440_588;
const JULIAN_9999_12_31: i32 = 5_373_484;

fn date() -> impl Strategy<Value = Date> {
    (JULIAN_1970_01_01..=JULIAN_9999_12_31).prop_map(|day| Date::from_julian_day(day).unwrap())
}

fn hostid() -> impl Strategy<Value = HostId> {
    "[a-zA-Z0-9][a-zA-Z0-9:._-]{0,20}".prop_map(|text| HostId::parse(&text).unwrap())
}

/// Free text as the parser stores it: printable Unicode, '#', quotes and backslashes
/// included, whitespace collapsed.
fn text() -> impl Strategy<Value = String> {
    "\\PC{1,60}".prop_filter_map("blank", |raw: String| {
        let words: Vec<&str> = raw.split_whitespace().collect();
        (!words.is_empty()).then(|| words.join(" "))
    })
}

fn feature() -> impl Strategy<Value = Feature> {
    let names = (
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}",
        "[A-Za-z0-9_][A-Za-z0-9_-]{0,20}",
        proptest::option::of("[0-9]{1,4}(\\.[0-9]{1,4}){0,3}"),
    );
    let numbers = (
        any::<bool>(),
        proptest::option::of(1..=limits::COUNT_MAX),
        proptest::option::of(1..=limits::BORROW_HOURS_MAX),
        proptest::option::of(proptest::collection::vec(hostid(), 3)),
    );
    let extras = (
        proptest::option::of(date()),
        proptest::option::of(date()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    );
    (names, numbers, extras).prop_map(|(names, numbers, extras)| {
        let (name, vendor, version) = names;
        let (hal, count, borrow, hostids) = numbers;
        let (start, end, licensee, comment) = extras;
        let mut f = Feature::new(
            FeatureName::parse(&name).unwrap(),
            Vendor::parse(&vendor).unwrap(),
        );
        f.version = version.map(|v| Version::parse(&v).unwrap());
        f.hal = hal;
        f.count = if hal { Some(count.unwrap_or(1)) } else { count };
        f.borrow_hours_max = borrow;
        f.hostids = hostids.unwrap_or_default();
        if !hal {
            f.hostids.truncate(1);
        }
        (f.start, f.end) = match (start, end) {
            (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
            other => other,
        };
        f.licensee = licensee;
        f.comment = comment;
        f
    })
}

fn license() -> impl Strategy<Value = License> {
    proptest::collection::vec(feature(), 1..6).prop_map(|mut features| {
        features.sort_by(|a, b| a.name.cmp(&b.name));
        features.dedup_by(|a, b| a.name == b.name);
        License {
            source_name: "generated.lic".to_string(),
            features,
        }
    })
}

/// `feature` with the value of one directive (picked by `which`) changed to another valid
/// value, or added where absent.
fn change_one_value(mut f: Feature, which: u8) -> Feature {
    // Names, versions and HostIDs are ASCII and end in a letter or digit: swap the last.
    let bump = |s: &str| {
        let (head, last) = s.split_at(s.len() - 1);
        let last = if last == "1" { "2" } else { "1" };
        format!("{head}{last}")
    };
    match which % 12 {
        0 => f.name = FeatureName::parse(&bump(f.name.as_str())).unwrap(),
        1 => f.vendor = Vendor::parse(&bump(f.vendor.as_str())).unwrap(),
        2 => {
            f.version =
                Some(Version::parse(&f.version.map_or("1".into(), |v| bump(v.as_str()))).unwrap())
        }
        3 => {
            f.count = Some(
                f.count
                    .map_or(1, |n| if n == limits::COUNT_MAX { n - 1 } else { n + 1 }),
            )
        }
        4 => f.hal = !f.hal,
        5 => {
            f.borrow_hours_max = Some(
                f.borrow_hours_max
                    .map_or(1, |n| if n == 1 { 2 } else { n - 1 }),
            )
        }
        6 => match f.hostids.first_mut() {
            Some(first) => *first = HostId::parse(&bump(first.as_str())).unwrap(),
            None => f.hostids.push(HostId::parse("aa").unwrap()),
        },
        7 => {
            f.start = Some(
                f.start
                    .map_or(Date::MIN, |d| d.previous_day().unwrap_or(Date::MAX)),
            )
        }
        8 => {
            f.end = Some(
                f.end
                    .map_or(Date::MAX, |d| d.next_day().unwrap_or(Date::MIN)),
            )
        }
        9 => f.licensee = Some(f.licensee.map_or("x".into(), |t| format!("{t}x"))),
        10 => f.comment = Some(f.comment.map_or("x".into(), |t| format!("{t}x"))),
        _ => f.count = if f.count.is_some() { None } else { Some(5) },
    }
    f
}

fn without_origin(mut license: License) -> License {
    for f in &mut license.features {
        f.origin = Origin::default();
    }
    license
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn printed_licenses_parse_back_to_themselves(license in license(), seed in any::<[u8; 32]>(), signed in any::<bool>()) {
        let mut license = license;
        if signed {
            license.sign(&SigningKey::from_bytes(&seed));
        }
        let text = license.to_text();
        let parsed = parse("generated.lic", text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- text ---\n{text}")))?;
        prop_assert_eq!(without_origin(parsed), license);
    }

    #[test]
    fn changing_any_value_breaks_the_signature(f in feature(), seed in any::<[u8; 32]>(), which in any::<u8>()) {
        let key = SigningKey::from_bytes(&seed);
        let mut f = f;
        f.sign(&key);
        prop_assert_eq!(f.verify(&key.verifying_key()), Ok(()));
        let changed = change_one_value(f.clone(), which);
        prop_assert_ne!(canonical_bytes(&changed), canonical_bytes(&f));
        prop_assert_eq!(changed.verify(&key.verifying_key()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_errors_are_located(&bytes);
    }

    #[test]
    fn damaged_licenses_never_panic(license in license(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut bytes = license.to_text().into_bytes();
        for (at, byte, op) in edits {
            let at = at % (bytes.len() + 1);
            match op {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.truncate(at),
            }
        }
        check_errors_are_located(&bytes);
    }
}

/// Parses `bytes` and checks that any error points inside the text.
fn check_errors_are_located(bytes: &[u8]) {
    let lines = bytes.split(|&b| b == b'\n').count();
    if let Err(errors) = parse("fuzz.lic", bytes) {
        assert!(!errors.errors.is_empty());
        for e in &errors.errors {
            assert!(
                e.line >= 1 && e.line as usize <= lines,
                "{e} (of {lines} lines)"
            );
            assert!(e.column >= 1, "{e}");
            assert!(e.to_string().starts_with("fuzz.lic:"), "{e}");
        }
    }
}
