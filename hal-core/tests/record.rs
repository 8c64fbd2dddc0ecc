//! The typed history record reads every line the simulator has written since DESIGN §6.4
//! (schema 1) and writes it back with the same fields and values, and reads the journal's
//! own records.

use hal_core::record::{Answer, ClientEventRecord, Entry, Grant, Record, SCHEMA};
use serde_json::Value;

/// One line of every kind and shape the simulator writes (from real histories).
const LINES: &[&str] = &[
    r#"{"kind":"meta","seed":7,"features":{"cad":{"count":10,"hal":true}},"lease_ms":2000,"election_timeout_ms":1000,"failover_delay_ms":500,"failback_hold_ms":3000,"max_clock_skew_ms":200,"liveness_from_ms":30000,"liveness_bound_ms":4500}"#,
    r#"{"kind":"meta","seed":1,"features":{"cad":{"count":2,"hal":true}},"lease_ms":2000,"election_timeout_ms":1000,"failover_delay_ms":500,"failback_hold_ms":3000,"max_clock_skew_ms":200,"scenario":"two laptops"}"#,
    r#"{"t_ms":1200,"kind":"fault","fault":"partition","a":[1],"b":[2,3]}"#,
    r#"{"t_ms":0,"kind":"fault","fault":"partition","a":[1],"b":[2],"cause":"refused: another license"}"#,
    r#"{"t_ms":1300,"kind":"fault","fault":"hold","a":["c4"],"b":[1,2,3]}"#,
    r#"{"t_ms":1400,"kind":"fault","fault":"link","a":[1],"b":[2],"state":"slow","latency_ms":300}"#,
    r#"{"t_ms":1500,"kind":"fault","fault":"clock","a":[3],"b":[],"offset_ms":-250,"drift_ppm":100}"#,
    r#"{"t_ms":1600,"kind":"role","server":2,"role":"active","term":7}"#,
    r#"{"t_ms":1700,"kind":"request","client":"c4","req":12,"op":"checkout","server":1,"feature":"cad"}"#,
    r#"{"t_ms":1700,"kind":"request","client":"c4","req":13,"op":"heartbeat","server":null}"#,
    r#"{"t_ms":1800,"kind":"reply","client":"c4","req":12,"server":1,"result":"granted","handle":"h17","lease_ms":2000,"granted_by":1,"borrow_end_ms":99}"#,
    r#"{"t_ms":1900,"kind":"reply","client":"c4","req":13,"server":1,"result":"unknown_handle","lease_ms":2000,"handle":"h3","held":["h1"],"unknown":["h3"]}"#,
    r#"{"t_ms":1950,"kind":"reply","client":"c4","req":14,"server":2,"result":"denied","reason":"no_majority"}"#,
    r#"{"t_ms":1960,"kind":"reply","client":"c4","req":15,"server":1,"result":"ok","lease_ms":2000,"held":["h1"],"unknown":[]}"#,
    r#"{"t_ms":1970,"kind":"reply","client":"c4","req":16,"server":1,"result":"ok","handle":"h1"}"#,
    r#"{"t_ms":1980,"kind":"reply","client":"c4","req":17,"server":1,"result":"unknown_handle","reason":"unknown_handle"}"#,
    r#"{"t_ms":2000,"kind":"client","client":"c4","event":"lost","handle":"h17"}"#,
    r#"{"t_ms":2000,"kind":"client","client":"c4","event":"stopped","handle":null}"#,
    r#"{"t_ms":2100,"kind":"client","client":"c4","event":"denied","req":14,"reason":"all_in_use","attempts":1}"#,
    r#"{"t_ms":2200,"kind":"client","client":"c4","event":"unknown","req":15,"attempts":4,"reason":null}"#,
    r#"{"t_ms":2300,"kind":"client","client":"c4","event":"resolved","req":15,"handle":"h20"}"#,
    r#"{"t_ms":2400,"kind":"client","client":"c4","event":"released","req":16,"handle":"h20","attempts":1}"#,
    r#"{"t_ms":2500,"kind":"client","client":"c4","event":"granted","req":17,"feature":"cad","handle":"h21","server":1,"attempts":2,"borrow_end_ms":5000}"#,
    r#"{"t_ms":2600,"kind":"applied","server":3,"client":"c4","req":17,"handle":"h21"}"#,
    r#"{"t_ms":2700,"kind":"checkpoint","server":2,"index":40,"digest":"00ff00ff00ff00ff","snapshot":"installed"}"#,
    r#"{"t_ms":2800,"kind":"expect","line":31,"met":false,"expected":"granted","saw":"denied (no_majority)"}"#,
    r#"{"t_ms":2900,"kind":"impostor","claimed":2,"server":1,"result":"refused","reason":"bad certificate"}"#,
    r#"{"t_ms":3000,"kind":"audit","server":1,"holders":[{"handle":"h21","user":"ann"}]}"#,
    r#"{"t_ms":3100,"kind":"end"}"#,
];

#[test]
fn every_history_line_reads_and_writes_back_the_same_fields() {
    for line in LINES {
        let entry: Entry = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let mut written: Value = serde_json::to_value(&entry).unwrap();
        let original: Value = serde_json::from_str(line).unwrap();
        // The schema version is the one field a typed meta record adds.
        if let Record::Meta(meta) = &entry.record {
            assert_eq!(meta.schema, 1, "a meta line without `schema` is schema 1");
            written.as_object_mut().unwrap().remove("schema");
        }
        // Objects compare as sets of fields: only the key order may differ.
        assert_eq!(written, original, "{line}");
    }
}

#[test]
fn a_new_meta_record_says_its_schema() {
    let meta = Record::Meta(hal_core::record::Meta {
        schema: SCHEMA,
        ..Default::default()
    });
    let text = serde_json::to_string(&meta).unwrap();
    assert!(text.starts_with(r#"{"kind":"meta","schema":2,"#), "{text}");
}

#[test]
fn journal_lines_carry_monotonic_time_and_unknown_fields_are_ignored() {
    let line = r#"{"kind":"seat","t_ms":1765000000000,"server":1,"index":9,"change":"borrowed","handle":"h9","feature":"cad","client":"00000000000000aa","req":3,"user":"ann","host":"ws1","by":1,"borrow_end_ms":1765003600000,"mono_ms":5000,"later":"field"}"#;
    let entry: Entry = serde_json::from_str(line).unwrap();
    assert_eq!(entry.mono_ms, Some(5000));
    assert_eq!(entry.record.t_ms(), Some(1_765_000_000_000));
    assert_eq!(entry.record.kind(), "seat");
    let back = serde_json::to_string(&entry).unwrap();
    assert!(back.ends_with(r#""mono_ms":5000}"#), "{back}");
    assert!(!back.contains("later"));
}

#[test]
fn a_line_of_an_unknown_kind_or_missing_field_is_an_error_that_says_so() {
    let err = serde_json::from_str::<Entry>(r#"{"kind":"party","t_ms":1}"#).unwrap_err();
    assert!(err.to_string().contains("party"), "{err}");
    let err = serde_json::from_str::<Entry>(r#"{"kind":"role","t_ms":1,"server":1,"term":2}"#)
        .unwrap_err();
    assert!(err.to_string().contains("role"), "{err}");
    let err = serde_json::from_str::<Entry>(
        r#"{"kind":"client","t_ms":1,"client":"c","event":"granted","req":1}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("feature"), "{err}");
}

#[test]
fn client_events_are_typed() {
    let line = LINES
        .iter()
        .find(|l| l.contains(r#""event":"granted""#))
        .unwrap();
    let entry: Entry = serde_json::from_str(line).unwrap();
    let Record::Client(client) = entry.record else {
        panic!("not a client record");
    };
    assert!(matches!(
        client.event,
        ClientEventRecord::Granted {
            req: 17,
            borrow_end_ms: Some(5000),
            ..
        }
    ));
}

#[test]
fn replies_are_typed_by_their_result_and_one_lacking_what_it_needs_is_refused() {
    let entry: Entry = serde_json::from_str(LINES[10]).unwrap();
    let Record::Reply(reply) = entry.record else {
        panic!("not a reply");
    };
    let expected = Grant {
        handle: "h17".into(),
        lease_ms: 2000,
        granted_by: 1,
        borrow_end_ms: Some(99),
    };
    assert_eq!(reply.answer, Answer::Granted(expected));
    let refused = [
        (
            r#"{"t_ms":1,"kind":"reply","client":"c","req":1,"server":1,"result":"granted","handle":"h2","lease_ms":5}"#,
            "a reply with result granted lacks granted_by",
        ),
        (
            r#"{"t_ms":1,"kind":"reply","client":"c","req":1,"server":1,"result":"denied"}"#,
            "a reply with result denied lacks reason",
        ),
        (
            r#"{"t_ms":1,"kind":"reply","client":"c","req":1,"server":1,"result":"ok"}"#,
            "a reply with result ok lacks handle or lease_ms",
        ),
        (
            r#"{"t_ms":1,"kind":"reply","client":"c","req":1,"server":1,"result":"unknown_handle","lease_ms":5,"held":[],"unknown":[]}"#,
            "says unknown_handle but its unknown seats are []",
        ),
        (
            r#"{"t_ms":1,"kind":"reply","client":"c","req":1,"server":1,"result":"ok","lease_ms":5,"held":[]}"#,
            "lacks unknown",
        ),
    ];
    for (line, says) in refused {
        let err = serde_json::from_str::<Entry>(line).unwrap_err();
        assert!(err.to_string().contains(says), "{line}: {err}");
    }
}
