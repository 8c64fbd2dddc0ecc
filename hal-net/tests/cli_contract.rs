//! What every verb promises scripts and monitoring: `--json` gives one JSON object on
//! standard output, errors included, with the exit code inside it; the exit codes mean
//! the same everywhere; `status` tells a healthy triad (0) from a degraded one (4), one
//! that issues no license (5) and one that does not answer (3).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{Cluster, free_ports, hal_net};

/// `status --json` of `cluster`, with its exit code.
fn status(cluster: &Cluster) -> (i32, Value) {
    let out = cluster.verb(&["status", "--json", "--timeout", "1s"]);
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status output is not JSON ({e}): {out:?}"));
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(value["exit_code"], code, "{value}");
    (code, value)
}

/// Waits until `status` exits with `code`, and returns its output.
fn wait_status(cluster: &Cluster, code: i32, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (got, value) = status(cluster);
        if got == code {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "status did not exit {code} within {limit:?}; it exits {got}: {value}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_exit_codes_follow_the_triads_health() {
    let mut cluster = Cluster::new("");
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(15));
    let healthy = wait_status(&cluster, 0, Duration::from_secs(10));
    assert_eq!(healthy["health"], "ok", "{healthy}");
    assert_eq!(healthy["problems"], serde_json::json!([]), "{healthy}");
    let out = cluster.verb(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("health: ok"), "{text}");

    // #3 down: #1 still serves with #2, but the triad is degraded.
    cluster.kill9(3);
    let degraded = wait_status(&cluster, 4, Duration::from_secs(10));
    assert_eq!(degraded["health"], "degraded", "{degraded}");
    assert_eq!(degraded["active"], 1, "{degraded}");
    let problems = degraded["problems"].to_string();
    assert!(problems.contains("server #3"), "{problems}");
    let out = cluster.verb(&["status"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("health: DEGRADED (still serving)"), "{text}");

    // #2 down too: #1 alone has no majority and issues nothing.
    cluster.kill9(2);
    let down = wait_status(&cluster, 5, Duration::from_secs(10));
    assert_eq!(down["health"], "not_serving", "{down}");
    let out = cluster.verb(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("health: NOT SERVING"), "{text}");

    // Nobody answers.
    cluster.kill9(1);
    let gone = wait_status(&cluster, 3, Duration::from_secs(10));
    assert_eq!(gone["health"], "unreachable", "{gone}");
    assert!(gone["error"].is_string(), "{gone}");
}

/// `hal-net ARGS --json`, in a fresh home.
fn json_verb(home: &Path, args: &[&str]) -> Output {
    Command::new(hal_net())
        .args(args)
        .arg("--json")
        .env("HAL_HOME", home)
        .env_remove("HAL_LICENSE_PATH")
        .env_remove("HAL_TRIAD_CA")
        .output()
        .unwrap()
}

#[test]
fn every_verb_reports_its_errors_as_one_json_object_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let [port] = free_ports::<1>();
    let nobody = format!("{port}@127.0.0.1");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["license", "show", missing], 1),
        (vec!["license", "verify", "--pubkey", missing, missing], 1),
        (
            vec!["license", "sign", "--key", missing, missing, "-o", "-"],
            64,
        ),
        (vec!["license", "keygen"], 64),
        (vec!["options", "check", missing], 1),
        (vec!["tls", "show", missing], 1),
        (vec!["tls", "renew", "--dir", missing], 1),
        (vec!["report", missing], 1),
        (vec!["report"], 64),
        (vec!["serve", "--config", missing], 1),
        (
            vec!["status", "--license-path", "6200-host", "--insecure"],
            64,
        ),
        (vec!["status", "--license-path", &nobody, "--insecure"], 3),
        (
            vec!["checkout", "cad", "--license-path", &nobody, "--insecure"],
            3,
        ),
        (vec!["borrowed", "cad", "--ca", missing], 1),
        (
            vec!["return", "h12", "--license-path", &nobody, "--insecure"],
            1,
        ),
        (
            vec!["return", "x12", "--license-path", &nobody, "--insecure"],
            64,
        ),
        (vec!["frobnicate"], 64),
    ];
    for (args, code) in cases {
        let out = json_verb(dir.path(), &args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().count(),
            1,
            "{args:?}: one line of JSON: {out:?}"
        );
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out:?}"));
        assert_eq!(value["exit_code"], code, "{args:?}: {value}");
        let error = value["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{args:?}: no error in {value}");
        assert!(
            !error.starts_with("error:"),
            "{args:?}: the error is the message, not a line: {value}"
        );
    }
}

#[test]
fn verbs_that_succeed_print_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys = keys.to_str().unwrap();
    let out = json_verb(dir.path(), &["license", "keygen", "--out", keys]);
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        value["public_key"]
            .as_str()
            .unwrap()
            .ends_with("vendor.pub"),
        "{value}"
    );

    let out = json_verb(dir.path(), &["hostid"]);
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        hal_core::HostId::parse(value["hostid"].as_str().unwrap()).is_ok(),
        "{value}"
    );

    let tls = dir.path().join("tls");
    let out = json_verb(
        dir.path(),
        &[
            "tls",
            "init",
            "--servers",
            "6200@a,6201@b,6202@c",
            "--dir",
            tls.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let roles: Vec<&str> = value["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"server2_key"), "{value}");
    assert_eq!(value["servers"][2]["server"], 3, "{value}");

    let out = json_verb(dir.path(), &["borrowed", "--ca", "/dev/null"]);
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["borrows"], serde_json::json!([]), "{value}");
}

#[test]
fn a_borrow_longer_than_allowed_names_the_maximum() {
    let mut cluster = Cluster::new("");
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(15));
    // The license allows 72 hours (BORROW = 72).
    let out = cluster.verb(&["borrow", "cad", "--hours", "100", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["reason"], "borrow_not_allowed", "{value}");
    assert_eq!(value["borrow_hours_max"], 72, "{value}");
    let error = value["error"].as_str().unwrap();
    assert!(
        error.contains("cad may be borrowed for at most 72 hours; 100 asked"),
        "{error}"
    );
    let out = cluster.verb(&["borrow", "cad", "--hours", "100"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denied: borrow_not_allowed: cad may be borrowed for at most 72 hours"),
        "{err}"
    );
    // Status shows it too.
    let status = cluster.status();
    assert_eq!(status["features"][0]["borrow_hours_max"], 72, "{status}");
}
