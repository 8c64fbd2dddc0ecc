//! Property tests of the license file: print → parse gives back what was printed; any
//! change to a signed value breaks the signature; and no input makes the parser panic or
//! point outside the text: arbitrary bytes, damaged licenses, and text strung together
//! from the grammar's own tokens.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

#[path = "support/proptest_config.rs"]
mod proptest_config;

use ed25519_dalek::SigningKey;
use hal_core::HostId;
use hal_core::license::{
    Directive, Feature, FeatureName, License, SignatureError, Vendor, Version, canonical_bytes,
    limits, parse,
};
use proptest::prelude::*;
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

/// Pieces of license text that, strung together, reach the corners of the grammar: its
/// keywords and punctuation, line endings, quotes and escapes, comments, multi-byte,
/// invisible and forbidden characters, numbers and dates, and whole lines.
fn token() -> impl Strategy<Value = String> {
    let pieces = vec![
        "FEATURE",
        "FEATURE ",
        " ",
        "  ",
        "\t",
        "\n",
        "\n",
        "\r\n",
        "\r",
        "{",
        "}",
        "=",
        " = ",
        "\"",
        "\\",
        "\\\"",
        "#",
        " # note",
        "\u{feff}",
        "\u{200b}",
        "\u{a0}",
        "\u{202e}",
        "\u{0}",
        "é",
        "日本",
        "🦀",
        "-",
        ".",
        "cad",
        "cad_2.0",
        "acme",
        "0a1b2c",
        "2027-12-31",
        "2027-02-30",
        "0000-00-00",
        "FEATURE cad {\n",
        "FEATURE cam\n{\n",
        "}\n",
        "  VENDOR = acme\n",
        "  COUNT = 5\n",
        "  HAL_SERVERS = 3\n",
        "  HOSTID = aa bb cc\n",
    ];
    let keywords: Vec<&str> = Directive::ALL.iter().map(|d| d.keyword()).collect();
    prop_oneof![
        6 => proptest::sample::select(pieces).prop_map(str::to_string),
        2 => proptest::sample::select(keywords).prop_map(str::to_string),
        1 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,8}",
        1 => "[0-9]{1,12}",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "[0-9a-f]{128}".prop_map(|hex| format!("  KEY = {hex}\n")),
    ]
}

/// Text of up to 150 tokens, now and then with a line longer than
/// [`limits::LINE_BYTES_MAX`] put in somewhere.
fn token_text() -> impl Strategy<Value = String> {
    let long_line = (
        any::<proptest::sample::Index>(),
        proptest::sample::select(vec!["  COMMENT = ", "FEATURE ", "# ", ""]),
        2045usize..2100,
    );
    let tokens = proptest::collection::vec(token(), 0..150);
    (tokens, proptest::option::weighted(0.1, long_line)).prop_map(|(tokens, long_line)| {
        let mut text = tokens.concat();
        if let Some((at, start, chars)) = long_line {
            let boundaries: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let at = boundaries[at.index(boundaries.len())];
            // Two bytes a character: always over the limit.
            text.insert_str(at, &format!("\n{start}{}\n", "é".repeat(chars)));
        }
        text
    })
}

proptest! {
    #![proptest_config(proptest_config::fixed_seed(0x11c_e45e))]

    #[test]
    fn printed_licenses_parse_back_to_themselves(license in license(), seed in any::<[u8; 32]>(), signed in any::<bool>()) {
        let mut license = license;
        if signed {
            license.sign(&SigningKey::from_bytes(&seed));
        }
        let text = license.to_text();
        let parsed = parse("generated.lic", text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- text ---\n{text}")))?;
        prop_assert_eq!(parsed, license);
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
    fn token_soup_never_panics(text in token_text()) {
        check_errors_are_located(text.as_bytes());
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

/// Parses `bytes` (which must not panic) and checks that the errors, if any, are in file
/// order and each points inside the text: at a line it has, and at most one column past
/// that line's last character.
fn check_errors_are_located(bytes: &[u8]) {
    let Err(errors) = parse("fuzz.lic", bytes) else {
        return;
    };
    assert!(!errors.errors.is_empty());
    assert!(errors.errors.len() <= limits::ERRORS_MAX);
    let line_count = bytes.split(|&b| b == b'\n').count();
    // The lines as the parser reads them; columns count characters, so only for UTF-8.
    let lines: Option<Vec<&str>> = std::str::from_utf8(bytes).ok().map(|text| {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        text.split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .collect()
    });
    for e in &errors.errors {
        assert!(
            e.line >= 1 && e.line as usize <= line_count,
            "{e} (of {line_count} lines)"
        );
        assert!(e.column >= 1, "{e}");
        if let Some(lines) = &lines {
            let line = lines[e.line as usize - 1];
            let chars = line.chars().count();
            assert!(
                e.column as usize <= chars + 1,
                "{e} (line of {chars} characters)"
            );
        }
        assert!(e.to_string().starts_with("fuzz.lic:"), "{e}");
    }
    let places: Vec<(u32, u32)> = errors.errors.iter().map(|e| (e.line, e.column)).collect();
    assert!(places.is_sorted(), "errors out of file order: {places:?}");
}
