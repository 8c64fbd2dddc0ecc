//! `hal-net report` on the journals of three real `hal-net serve` processes through the
//! shared field incident ([`support::cluster::kill_and_failback`]): two users hold seats,
//! the active server is killed (`kill -9`), #2 takes over and grants a third, #1 fails
//! back; the report shows the three seats at the peak, each user's seat time, both
//! changes of the active server and the time none was active. Then its CSV and text
//! forms, and its errors, each naming the file and line or the argument.
//!
//! Its cost on a large journal is measured by `hal-load report` (benches/), not here.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::cluster::{Cluster, hal_net, kill_and_failback};

const TIMING: &str = "failback_hold = \"2s\"";

fn report(args: &[&str], journals: &[PathBuf]) -> Output {
    Command::new(hal_net())
        .arg("report")
        .args(journals)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[test]
fn a_report_shows_the_seats_users_failovers_and_gap_of_a_real_triad() {
    let mut cluster = Cluster::new(TIMING);
    // alice and bob granted by #1, #1 killed, carol granted by #2, #1 back and active.
    for holder in kill_and_failback(&mut cluster) {
        holder.release();
    }
    // #3, then #2: #1 loses its majority and goes standby; no server takes over.
    for id in [3, 2, 1] {
        cluster.stop(id);
    }
    let dirs: Vec<PathBuf> = (1..=3).map(|id| cluster.data(id).join("journal")).collect();

    let json: Value = serde_json::from_str(&stdout(&report(&["--json"], &dirs))).unwrap();
    let cad = &json["features"][0];
    assert_eq!(cad["feature"], "cad", "{json:#}");
    assert_eq!(cad["count"], 5);
    // alice's and bob's seats outlive #1's kill: with carol's, three at once.
    assert_eq!(cad["peak"]["seats"], 3, "{json:#}");
    assert!(cad["peak"]["first_at_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(cad["checkouts"], 3);
    assert_eq!(cad["held_at_end"], 0);
    for user in ["alice", "bob", "carol"] {
        let row = cad["by_user"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == user)
            .unwrap_or_else(|| panic!("no {user}: {json:#}"));
        assert_eq!(row["seats"], 1);
        assert!(row["seat_hours"].as_f64().unwrap() > 0.0, "{row}");
        // Held through the failback (failback_hold 2 s).
        assert!(row["seat_ms"].as_u64().unwrap() >= 1_000, "{row}");
    }
    // One machine, one clock: #1's is the reference, the others within a second of it.
    assert_eq!(json["clock"]["reference"], "#1's clock", "{json:#}");
    let offsets = json["clock"]["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 3, "{json:#}");
    assert!(offsets[0]["offset_ms"].is_null(), "{json:#}");
    let triad = &json["triad"];
    // The failover to #2 and the failback to #1.
    assert_eq!(triad["failovers"], 2, "{triad:#}");
    let change = |i: usize| {
        let c = &triad["changes"][i];
        (c["from_server"].as_u64(), c["to_server"].as_u64())
    };
    assert_eq!(change(0), (Some(1), Some(2)), "{triad:#}");
    assert_eq!(change(1), (Some(2), Some(1)), "{triad:#}");
    let gap = &triad["gaps"][0];
    assert_eq!(gap["after_server"], 1, "{triad:#}");
    assert_eq!(gap["cause"], "killed");
    // #2 and #3 journaled their link to #1 going down.
    assert_eq!(gap["seen_by"], "peer_link_down", "{triad:#}");
    assert_eq!(gap["open"], false);
    assert!(gap["ms"].as_u64().unwrap() > 0, "{gap}");
    assert!(triad["no_active_ms"].as_u64().unwrap() >= gap["ms"].as_u64().unwrap());
    let one = &triad["servers"][0];
    assert_eq!(one["starts"], 2, "{triad:#}");
    assert_eq!(one["kills"], 1, "{triad:#}");

    let csv = stdout(&report(&["--csv"], &dirs));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("section,feature,subject,metric,value"));
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert!(rows.iter().all(|r| r.len() == 5), "{csv}");
    let has = |row: [&str; 5]| rows.iter().any(|r| r == &row);
    assert!(has(["feature", "cad", "", "peak_seats", "3"]), "{csv}");
    assert!(has(["triad", "", "", "failovers", "2"]), "{csv}");
    assert!(has(["gap", "", "1", "cause", "killed"]), "{csv}");
    assert!(has(["clock", "", "", "reference", "#1's clock"]), "{csv}");
    assert!(has(["clock", "", "1", "offset_ms", ""]), "{csv}");
    assert!(
        rows.iter().any(|r| r[0] == "user" && r[2] == "alice"),
        "{csv}"
    );

    let text = stdout(&report(&[], &dirs));
    println!("{text}\n{json}\n{csv}");
    for header in ["user", "host"] {
        let found = text
            .lines()
            .map(str::split_whitespace)
            .any(|words| words.eq([header, "seats", "seat-hours", "held", "at", "end"]));
        assert!(found, "no {header} table in\n{text}");
    }
    for expected in [
        "Times on #1's clock\n",
        "Feature cad (5 seats licensed)",
        "peak in use    3 seats, first at ",
        "failovers      2",
        "#1 -> #2 after",
        "#2 -> #1 after",
        "#1 killed (no stop record)",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    // A window and a feature; data directories stand for their journals.
    let data: Vec<PathBuf> = (1..=3).map(|id| cluster.data(id)).collect();
    let from = cad["peak"]["first_at_ms"].as_u64().unwrap().to_string();
    let json: Value = serde_json::from_str(&stdout(&report(
        &["--json", "--feature", "cad", "--from", &from],
        &data,
    )))
    .unwrap();
    assert_eq!(
        json["window"]["from_ms"].as_u64().unwrap().to_string(),
        from
    );
    assert_eq!(json["features"][0]["peak"]["seats"], 3);
}

/// A journal file of server `server` holding `lines` after its meta line.
fn journal(dir: &Path, server: u8, lines: &[&str]) -> PathBuf {
    let path = dir.join(format!("journal-{server}.jsonl"));
    let meta = format!(
        r#"{{"kind":"meta","schema":2,"t_ms":1000,"server":{server},"features":{{"cad":{{"count":5,"hal":true}}}},"lease_ms":4000,"election_timeout_ms":1000,"failover_delay_ms":0,"failback_hold_ms":0,"max_clock_skew_ms":0}}"#
    );
    fs::write(&path, format!("{meta}\n{}\n", lines.join("\n"))).unwrap();
    path
}

fn failure(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn every_bad_input_is_refused_naming_the_file_and_line_or_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let good = journal(
        dir.path(),
        1,
        &[
            r#"{"kind":"start","t_ms":1000,"server":1,"version":"0.1.0","pid":7,"recovered":{"term":0,"snapshot_index":null,"last_index":0}}"#,
        ],
    );
    let bad = journal(
        dir.path(),
        2,
        &[r#"{"kind":"seat","t_ms":1000,"server":2}"#, "{}"],
    );
    let text = failure(&report(&[], &[good.clone(), bad.clone()]), 1);
    assert!(
        text.contains(&format!("{}:2: not a journal record", bad.display())),
        "{text}"
    );
    let missing = dir.path().join("nothing-here");
    let text = failure(&report(&[], std::slice::from_ref(&missing)), 1);
    assert!(text.contains(&missing.display().to_string()), "{text}");

    let text = failure(
        &report(&["--from", "yesterday"], std::slice::from_ref(&good)),
        64,
    );
    assert!(
        text.contains("'--from <T>'") && text.contains("RFC 3339"),
        "{text}"
    );
    let text = failure(
        &report(
            &["--from", "2000", "--to", "1000"],
            std::slice::from_ref(&good),
        ),
        64,
    );
    assert!(
        text.contains("--from 1970-01-01T00:00:02Z is after --to"),
        "{text}"
    );
    let text = failure(
        &report(&["--from", "2030-01-01"], std::slice::from_ref(&good)),
        64,
    );
    assert!(
        text.contains("--from 2030-01-01T00:00:00Z: the window is outside the journals, which run from 1970-01-01T00:00:01Z to 1970-01-01T00:00:01Z"),
        "{text}"
    );
    let text = failure(
        &report(&["--feature", "cam"], std::slice::from_ref(&good)),
        64,
    );
    assert!(
        text.contains("--feature: the journals name no feature 'cam' (they name: cad)"),
        "{text}"
    );
    // With --json, the mistake is a JSON object on standard output.
    let out = report(&["--json", "--csv"], &[good]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["exit_code"], 64, "{error}");
    let text = error["error"].as_str().unwrap();
    assert!(text.contains("cannot be used with"), "{text}");
    let out = Command::new(hal_net()).arg("report").output().unwrap();
    assert_eq!(out.status.code(), Some(64), "no journal given: {out:?}");
}
