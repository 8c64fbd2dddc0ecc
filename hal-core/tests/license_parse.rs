//! The license file's grammar and validation rules (DESIGN §4), one test per rule. Each
//! error test checks the kind and the file, line, column and feature it names.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use hal_core::HostId;
use hal_core::license::{Directive, LicenseError, LicenseErrorKind as Kind, limits, parse};

const GOOD: &str = "\
# Acme's CAD license
FEATURE cad_modeler
{
  VENDOR = acme
  VERSION = 2.0
  COUNT = 10
  HAL_SERVERS = 3
  BORROW = 168          # maximum borrow, hours
  HOSTID = 0A1B2C 3d4e5f 6a7b8c   # role order
  START = 2026-01-01
  END = 2027-12-31
  LICENSEE = \"Example  Corp # 7\"
  COMMENT = site licence
}
";

/// Parses `text` and returns its only error.
fn only_error(text: &str) -> LicenseError {
    let errors = parse("test.lic", text.as_bytes()).expect_err("the text should not parse");
    assert_eq!(errors.errors.len(), 1, "expected one error, got: {errors}");
    errors.errors.into_iter().next().unwrap()
}

/// A HAL feature block with `body` as its directives.
fn block(body: &str) -> String {
    format!("FEATURE cad\n{{\n{body}\n}}\n")
}

#[test]
fn a_full_feature_parses_with_normalised_values() {
    let license = parse("good.lic", GOOD.as_bytes()).unwrap();
    assert_eq!(license.source_name, "good.lic");
    let f = license.feature("cad_modeler").unwrap();
    assert_eq!(f.vendor.as_str(), "acme");
    assert_eq!(f.version.as_ref().unwrap().as_str(), "2.0");
    assert_eq!(f.count, Some(10));
    assert!(f.hal);
    assert_eq!(f.borrow_hours_max, Some(168));
    let hostids: Vec<&str> = f.hostids.iter().map(HostId::as_str).collect();
    assert_eq!(hostids, ["0a1b2c", "3d4e5f", "6a7b8c"]);
    assert_eq!(f.start.unwrap().to_string(), "2026-01-01");
    assert_eq!(f.end.unwrap().to_string(), "2027-12-31");
    assert_eq!(f.licensee.as_deref(), Some("Example Corp # 7"));
    assert_eq!(f.comment.as_deref(), Some("site licence"));
    assert_eq!(f.key, None);
    assert_eq!((f.origin.line, f.origin.close_line), (2, 14));
    assert_eq!(f.origin.indent, "  ");
}

#[test]
fn brace_may_follow_the_name_and_crlf_is_accepted() {
    let text = "FEATURE a {\r\n VENDOR = x\r\n COUNT = 1\r\n}\r\nFEATURE b{\r\n VENDOR = x\r\n}";
    let license = parse("crlf.lic", text.as_bytes()).unwrap();
    assert_eq!(license.features.len(), 2);
    assert_eq!(license.features[1].count, None);
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let text = format!("\u{feff}{}", block("VENDOR = acme"));
    assert!(parse("bom.lic", text.as_bytes()).is_ok());
}

#[test]
fn unknown_directive_names_the_place_and_suggests_the_nearest() {
    let e = only_error(&block("  VENDOR = acme\n  COUNTS = 10"));
    assert_eq!((e.line, e.column), (4, 3));
    assert_eq!(e.feature.as_deref(), Some("cad"));
    assert_eq!(
        e.kind,
        Kind::UnknownDirective {
            name: "COUNTS".into(),
            suggestion: Some("COUNT")
        }
    );
    let message = e.to_string();
    assert!(message.starts_with("test.lic:4:3: in FEATURE cad: unknown directive `COUNTS`"));
    assert!(message.contains("did you mean `COUNT`?"), "{message}");
    assert!(
        message.contains("allowed: VENDOR, VERSION, COUNT"),
        "{message}"
    );
}

#[test]
fn lower_case_directives_are_unknown_but_suggested() {
    let e = only_error(&block("VENDOR = acme\nborrow = 3"));
    assert_eq!(
        e.kind,
        Kind::UnknownDirective {
            name: "borrow".into(),
            suggestion: Some("BORROW")
        }
    );
}

#[test]
fn far_off_directives_get_no_suggestion() {
    let e = only_error(&block("VENDOR = acme\nPRICE = 3"));
    assert!(matches!(
        e.kind,
        Kind::UnknownDirective {
            suggestion: None,
            ..
        }
    ));
}

#[test]
fn duplicate_directive_points_at_both_lines() {
    let e = only_error(&block("VENDOR = acme\nCOUNT = 1\n  COUNT = 2"));
    assert_eq!((e.line, e.column), (5, 3));
    assert_eq!(
        e.kind,
        Kind::DuplicateDirective {
            directive: Directive::Count,
            first_line: 4
        }
    );
}

#[test]
fn vendor_is_required() {
    let e = only_error(&block("COUNT = 1"));
    assert_eq!((e.line, e.kind.clone()), (1, Kind::MissingVendor));
    assert_eq!(e.feature.as_deref(), Some("cad"));
}

#[test]
fn hal_servers_without_count_is_refused() {
    let e = only_error(&block("VENDOR = acme\nHAL_SERVERS = 3"));
    assert_eq!(
        (e.line, e.column, e.kind.clone()),
        (4, 15, Kind::HalWithoutCount)
    );
    assert!(e.to_string().contains("add `COUNT = <seats>`"));
}

#[test]
fn hal_servers_other_than_three_is_refused() {
    for value in ["2", "4", "0", "three"] {
        let e = only_error(&block(&format!(
            "VENDOR = acme\nCOUNT = 5\nHAL_SERVERS = {value}"
        )));
        assert!(
            matches!(
                e.kind,
                Kind::BadValue {
                    directive: Directive::HalServers,
                    ..
                }
            ),
            "{value}: {e}"
        );
        assert!(e.to_string().contains("expected 3"), "{e}");
    }
}

#[test]
fn count_must_be_in_range() {
    for value in [
        "0",
        "2147483648",
        "99999999999999999999",
        "-1",
        "1.5",
        "ten",
        "1 0",
    ] {
        let e = only_error(&block(&format!("VENDOR = acme\nCOUNT = {value}")));
        assert!(
            matches!(
                e.kind,
                Kind::BadValue {
                    directive: Directive::Count,
                    ..
                }
            ),
            "{value}: {e}"
        );
        assert_eq!((e.line, e.column), (4, 9));
    }
    let max = parse("t", block("VENDOR = acme\nCOUNT = 2147483647").as_bytes()).unwrap();
    assert_eq!(max.features[0].count, Some(limits::COUNT_MAX));
    let zeros = parse("t", block("VENDOR = acme\nCOUNT = 007").as_bytes()).unwrap();
    assert_eq!(zeros.features[0].count, Some(7));
}

#[test]
fn borrow_must_be_one_hour_to_one_year() {
    for (value, ok) in [
        ("1", true),
        ("8760", true),
        ("0", false),
        ("8761", false),
        ("1h", false),
    ] {
        let result = parse(
            "t",
            block(&format!("VENDOR = acme\nBORROW = {value}")).as_bytes(),
        );
        assert_eq!(result.is_ok(), ok, "BORROW = {value}");
    }
}

#[test]
fn hal_hostids_must_be_three() {
    let hal = "VENDOR = acme\nCOUNT = 5\nHAL_SERVERS = 3\n";
    for (hostids, ok) in [("a", false), ("a b", false), ("a b c", true)] {
        let result = parse("t", block(&format!("{hal}HOSTID = {hostids}")).as_bytes());
        match result {
            Ok(_) => assert!(ok, "{hostids}"),
            Err(errors) => {
                assert!(!ok, "{hostids}");
                let e = &errors.errors[0];
                assert_eq!(
                    e.kind,
                    Kind::HostIdCount {
                        found: hostids.split(' ').count(),
                        hal: true
                    }
                );
                assert!(e.to_string().contains("exactly three"), "{e}");
            }
        }
    }
    let e = only_error(&block(&format!("{hal}HOSTID = a b c d")));
    assert!(matches!(
        e.kind,
        Kind::BadValue {
            directive: Directive::HostId,
            ..
        }
    ));
}

#[test]
fn single_server_hostid_must_be_one() {
    let e = only_error(&block("VENDOR = acme\nCOUNT = 5\nHOSTID = a b c"));
    assert_eq!(
        e.kind,
        Kind::HostIdCount {
            found: 3,
            hal: false
        }
    );
    assert!(
        parse(
            "t",
            block("VENDOR = acme\nCOUNT = 5\nHOSTID = a").as_bytes()
        )
        .is_ok()
    );
}

#[test]
fn bad_hostid_characters_are_refused() {
    let e = only_error(&block("VENDOR = acme\nCOUNT = 5\nHOSTID = ab/cd"));
    assert!(matches!(
        e.kind,
        Kind::BadValue {
            directive: Directive::HostId,
            ..
        }
    ));
}

#[test]
fn dates_must_be_real_days_written_yyyy_mm_dd() {
    for value in [
        "2027-02-29",
        "2027-13-01",
        "2027-00-10",
        "2027-1-01",
        "27-01-01",
        "2027/01/01",
        "1969-12-31",
        "2027-01-01x",
    ] {
        let e = only_error(&block(&format!("VENDOR = acme\nEND = {value}")));
        assert!(
            matches!(
                e.kind,
                Kind::BadValue {
                    directive: Directive::End,
                    ..
                }
            ),
            "{value}: {e}"
        );
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    }
    assert!(parse("t", block("VENDOR = acme\nEND = 2028-02-29").as_bytes()).is_ok());
}

#[test]
fn start_after_end_is_refused() {
    let e = only_error(&block(
        "VENDOR = acme\nSTART = 2027-06-02\nEND = 2027-06-01",
    ));
    assert_eq!(e.line, 4);
    assert_eq!(
        e.kind,
        Kind::StartAfterEnd {
            start: "2027-06-02".into(),
            end: "2027-06-01".into()
        }
    );
    let same_day = block("VENDOR = acme\nSTART = 2027-06-01\nEND = 2027-06-01");
    assert!(parse("t", same_day.as_bytes()).is_ok());
}

#[test]
fn an_empty_file_is_refused() {
    for text in ["", "\n\n", "# only a comment\n"] {
        let e = only_error(text);
        assert_eq!(e.kind, Kind::Empty, "{text:?}");
        assert!(
            e.to_string()
                .contains("at least one `FEATURE name { ... }`")
        );
    }
}

#[test]
fn duplicate_feature_names_are_refused() {
    let text = format!("{}{}", block("VENDOR = acme"), block("VENDOR = acme"));
    let e = only_error(&text);
    assert_eq!((e.line, e.column), (5, 9));
    assert_eq!(
        e.kind,
        Kind::DuplicateFeature {
            name: "cad".into(),
            first_line: 1
        }
    );
}

#[test]
fn structure_errors_say_what_is_expected() {
    let e = only_error("FEATURE cad\nVENDOR = acme\n}\n");
    assert!(matches!(e.kind, Kind::ExpectedOpenBrace { .. }), "{e}");
    let e = only_error("FEATURE cad\n{\nVENDOR = acme\n");
    assert_eq!(
        (e.line, e.kind.clone()),
        (1, Kind::Unclosed { name: "cad".into() })
    );
    let e = only_error("VENDOR = acme\n");
    assert!(matches!(e.kind, Kind::ExpectedFeature { .. }), "{e}");
    let e = only_error("}\n");
    assert_eq!(e.kind, Kind::UnexpectedClose);
    let e = only_error("FEATURE\n");
    assert_eq!(e.kind, Kind::MissingFeatureName);
    let e = only_error("FEATURE bad/name {\nVENDOR = acme\n}\n");
    assert!(matches!(e.kind, Kind::BadFeatureName { .. }), "{e}");
    let e = only_error("FEATURE cad { extra\nVENDOR = acme\n}\n");
    assert!(matches!(e.kind, Kind::TrailingText { .. }), "{e}");
    let e = only_error("FEATURE cad {\nVENDOR = acme\n} VENDOR = x\n");
    assert!(
        matches!(e.kind, Kind::TrailingText { after: "}", .. }),
        "{e}"
    );
}

#[test]
fn a_feature_inside_a_feature_means_a_missing_brace() {
    let errors = parse(
        "t",
        b"FEATURE a {\nVENDOR = x\nFEATURE b {\nVENDOR = y\n}\n",
    )
    .unwrap_err();
    assert_eq!(errors.errors.len(), 1, "{errors}");
    let e = &errors.errors[0];
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, Kind::NestedFeature { open: "a".into() });
}

#[test]
fn directive_syntax_errors() {
    let e = only_error(&block("VENDOR acme"));
    assert_eq!(
        e.kind,
        Kind::MissingEquals {
            directive: Directive::Vendor
        }
    );
    let e = only_error(&block("VENDOR = acme\nCOMMENT =   # nothing"));
    assert_eq!(
        e.kind,
        Kind::EmptyValue {
            directive: Directive::Comment
        }
    );
    let e = only_error(&block("VENDOR = acme\nCOMMENT = \"open"));
    assert!(matches!(e.kind, Kind::BadQuotes { .. }), "{e}");
    let e = only_error(&block("VENDOR = acme\nCOMMENT = \"a\" b"));
    assert!(matches!(e.kind, Kind::BadQuotes { .. }), "{e}");
    let e = only_error(&block("VENDOR = acme\nCOMMENT = \"a\\n\""));
    assert!(matches!(e.kind, Kind::BadQuotes { .. }), "{e}");
    let e = only_error(&block("VENDOR = acme\n= 3"));
    assert!(matches!(e.kind, Kind::ExpectedDirective { .. }), "{e}");
}

#[test]
fn quoted_values_keep_hashes_and_escapes() {
    let text = block(
        r#"VENDOR = "acme"
COMMENT = "a \"quoted\" \\ path # not a comment"  # a comment"#,
    );
    let license = parse("t", text.as_bytes()).unwrap();
    let comment = license.features[0].comment.as_deref();
    assert_eq!(comment, Some(r#"a "quoted" \ path # not a comment"#));
}

#[test]
fn bad_keys_are_refused_at_parse() {
    let e = only_error(&block("VENDOR = acme\nKEY = not-hex"));
    assert!(
        matches!(
            e.kind,
            Kind::BadValue {
                directive: Directive::Key,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn every_error_in_a_file_is_reported() {
    let text = "FEATURE a {\nVENDOR = x\nCOUNT = 0\n}\nFEATURE b {\nVENDOR = x\nBORROW = 0\nEND = 2027-02-30\n}\n";
    let errors = parse("t", text.as_bytes()).unwrap_err();
    let lines: Vec<u32> = errors.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 7, 8]);
    let features: Vec<&str> = errors
        .errors
        .iter()
        .filter_map(|e| e.feature.as_deref())
        .collect();
    assert_eq!(features, ["a", "b", "b"]);
}

#[test]
fn errors_stop_at_the_limit() {
    let text = "junk\n".repeat(limits::ERRORS_MAX + 10);
    let errors = parse("t", text.as_bytes()).unwrap_err();
    assert_eq!(errors.errors.len(), limits::ERRORS_MAX);
    assert!(errors.truncated);
    assert!(errors.to_string().ends_with("(stopped after 50 errors)"));
}

#[test]
fn non_utf8_is_located() {
    let mut bytes = block("VENDOR = acme").into_bytes();
    bytes.splice(16..16, [0xff]);
    let e = parse("t", &bytes).unwrap_err().errors.remove(0);
    assert_eq!((e.line, e.column), (3, 3));
    assert_eq!(e.kind, Kind::NotUtf8 { byte: 0xff });
}

#[test]
fn control_and_bidi_characters_are_refused() {
    for bad in ['\0', '\u{7}', '\u{202e}', '\u{2066}'] {
        let e = only_error(&block(&format!("VENDOR = ac{bad}me")));
        assert_eq!((e.line, e.column), (3, 12), "{bad:?}");
        assert!(matches!(e.kind, Kind::BadCharacter { .. }));
    }
    assert!(parse("t", block("VENDOR =\tacme").as_bytes()).is_ok());
}

#[test]
fn long_lines_and_large_files_are_refused() {
    let long = block(&format!(
        "VENDOR = acme\nCOMMENT = {}",
        "x".repeat(limits::LINE_BYTES_MAX)
    ));
    let e = only_error(&long);
    assert_eq!(e.line, 4);
    assert!(matches!(e.kind, Kind::LineTooLong { .. }));

    let big = vec![b'#'; limits::FILE_BYTES_MAX + 1];
    let e = parse("t", &big).unwrap_err().errors.remove(0);
    assert!(matches!(e.kind, Kind::FileTooLarge { .. }));

    let ten_mb_line = vec![b'a'; 10 * 1024 * 1024];
    assert!(parse("t", &ten_mb_line).is_err());
}

#[test]
fn too_many_features_are_refused() {
    let one = "FEATURE f{}\n{{\nVENDOR = v\n}}\n";
    let text: String = (0..=limits::FEATURES_MAX)
        .map(|i| one.replace("{}", &i.to_string()))
        .collect();
    let text = text.replace("{{", "{").replace("}}", "}");
    let errors = parse("t", text.as_bytes()).unwrap_err();
    let e = errors.errors.last().unwrap();
    assert_eq!(
        e.kind,
        Kind::TooManyFeatures {
            max: limits::FEATURES_MAX
        }
    );
}

#[test]
fn validity_window_follows_start_and_end() {
    let text = block("VENDOR = acme\nSTART = 2027-01-01\nEND = 2027-12-31");
    let f = parse("t", text.as_bytes()).unwrap().features.remove(0);
    let day =
        |y, m, d| time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    assert!(!f.is_valid_on(day(2026, 12, 31)));
    assert!(f.is_valid_on(day(2027, 6, 1)));
    assert!(!f.is_valid_on(day(2028, 1, 1)));
}

#[test]
fn long_junk_is_quoted_short() {
    let junk = "x".repeat(3000);
    for text in [
        junk.clone(),
        block(&format!("VENDOR = acme\nCOUNT = {junk}")),
        block(&junk),
    ] {
        let e = only_error(&text);
        assert!(e.to_string().len() < 400, "{e}");
        assert!(e.to_string().contains("xxx…"), "{e}");
    }
}

/// Parses `text` and returns its errors as (line, column, kind).
fn errors_of(text: &str) -> Vec<(u32, u32, Kind)> {
    let errors = parse("test.lic", text.as_bytes()).expect_err("the text should not parse");
    errors
        .errors
        .into_iter()
        .map(|e| (e.line, e.column, e.kind))
        .collect()
}

#[test]
fn errors_come_in_file_order() {
    // The block's checks run at its `}`: VENDOR is found missing after COUNT is read.
    let text = "FEATURE a {\n  COUNT = 0\n}\nFEATURE b {\n  BORROW = x\n  VENDOR = y\n}\n";
    let places: Vec<(u32, u32)> = errors_of(text).iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(places, [(1, 1), (2, 11), (5, 12)]);
}

#[test]
fn a_close_brace_where_an_open_one_was_expected_closes_the_block() {
    let errors = errors_of("FEATURE cad\n}\nFEATURE cam {\n  VENDOR = acme\n}\n");
    assert_eq!(
        errors,
        [
            (1, 1, Kind::MissingVendor),
            (
                2,
                1,
                Kind::ExpectedOpenBrace {
                    name: "cad".into(),
                    found: "}".into()
                }
            ),
        ]
    );
}

#[test]
fn a_second_open_brace_is_named_as_such() {
    let e = only_error("FEATURE cad {\n  {\n  VENDOR = acme\n}\n");
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(e.kind, Kind::ExtraOpenBrace { name: "cad".into() });
    assert_eq!(e.feature.as_deref(), Some("cad"));
    assert!(e.to_string().contains("already open"), "{e}");
}

#[test]
fn a_feature_without_a_name_takes_its_block_along() {
    let rest = "\n  VENDOR = acme\n  COUNT = 5\n}\nFEATURE cam {\n  VENDOR = acme\n}\n";
    for header in [
        "FEATURE\n{",
        "FEATURE {",
        "  FEATURE   # no name\n{",
        "FEATURE",
    ] {
        let e = only_error(&format!("{header}{rest}"));
        assert_eq!(
            (e.line, e.kind.clone()),
            (1, Kind::MissingFeatureName),
            "{header:?}"
        );
    }
    // Its lines are still read, and their errors reported (outside any named feature).
    let errors = parse("t", b"FEATURE {\n  COUNTS = 5\n}\n").unwrap_err();
    assert_eq!(errors.errors.len(), 2, "{errors}");
    let e = &errors.errors[1];
    assert!(matches!(e.kind, Kind::UnknownDirective { .. }), "{e}");
    assert_eq!(e.feature, None);
}

#[test]
fn an_unreadable_feature_line_takes_its_block_along() {
    let rest = "\n  VENDOR = acme\n}\nFEATURE cam {\n  VENDOR = acme\n}\n";
    let bad_character = format!("FEATURE ca\u{7}d {{{rest}");
    let e = only_error(&bad_character);
    assert_eq!((e.line, e.column), (1, 11));
    assert!(matches!(e.kind, Kind::BadCharacter { .. }), "{e}");
    let too_long = format!("FEATURE {}\n{{{rest}", "x".repeat(limits::LINE_BYTES_MAX));
    let e = only_error(&too_long);
    assert!(matches!(e.kind, Kind::LineTooLong { .. }), "{e}");
}

#[test]
fn an_unreadable_line_may_have_been_a_brace() {
    let lost_close = "FEATURE a {\n  VENDOR = acme\n}\u{7}\n";
    for text in [
        lost_close.to_string(),
        format!("{lost_close}FEATURE b {{\n  VENDOR = acme\n}}\n"),
        "FEATURE a\n{\u{7}\n  VENDOR = acme\n}\n".to_string(),
    ] {
        let e = only_error(&text);
        assert!(matches!(e.kind, Kind::BadCharacter { .. }), "{text:?}: {e}");
    }
}

#[test]
fn messages_show_invisible_characters_as_escapes() {
    let e = only_error(&block("VENDOR = ac\u{feff}me"));
    assert!(matches!(e.kind, Kind::BadValue { .. }), "{e}");
    assert!(
        e.to_string().contains("bad VENDOR value `ac\\u{feff}me`"),
        "{e}"
    );
    let e = only_error("FEATURE cad\u{200b} {\n  VENDOR = acme\n}\n");
    assert_eq!(e.feature.as_deref(), Some("cad\\u{200b}"));
    assert!(
        e.to_string()
            .starts_with("test.lic:1:9: in FEATURE cad\\u{200b}: bad feature name `cad\\u{200b}`"),
        "{e}"
    );
    let e = only_error(&block("VENDOR = acme\n\u{200b}COUNT = 1"));
    assert!(e.to_string().contains("`\\u{200b}COUNT`"), "{e}");
}
