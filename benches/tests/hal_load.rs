//! `hal-load` as its users run it, in miniature: a closed and an open loop, failover
//! trials of both kinds and a soak, each against three real `hal-net serve` processes on
//! loopback, checking what each prints. The figures themselves are not judged here (a
//! debug build on a shared machine); what is judged is that each measurement measures:
//! every cycle answered, an open loop held to its rate, a failover no faster than the
//! triad's timers allow, and every soak seat accounted for.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use hal_core::timing::Timing;

const HAL_LOAD: &str = env!("CARGO_BIN_EXE_hal-load");

/// The `hal-net` of this build, built first if this package's tests run alone.
fn hal_net() -> PathBuf {
    support::sibling(HAL_LOAD, "hal-net", "hal-net")
}

/// The soonest #2 can take over after #1 goes silent: it campaigns `election_timeout` +
/// `failover_delay` after it last heard #1, whose last heartbeat (every `peer_heartbeat`)
/// may have come well before the fault: one interval, and another if a busy machine held
/// #1 back just then. (Without `failover_delay` the takeover would come that much sooner
/// still, below this bound.)
fn earliest_failover_ms() -> f64 {
    earliest_ms(&Timing::lan())
}

fn earliest_ms(timing: &Timing) -> f64 {
    let earliest = timing.election_timeout + timing.failover_delay - timing.peer_heartbeat * 2;
    earliest.as_secs_f64() * 1000.0
}

/// Runs `hal-load` with `args` and a triad of its own at `base_port`.
fn hal_load(name: &str, base_port: u16, args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("hal-load-test-{}-{name}", std::process::id()));
    let output = Command::new(HAL_LOAD)
        .args(args)
        .arg("--hal-net")
        .arg(hal_net())
        .arg("--dir")
        .arg(&dir)
        .arg("--base-port")
        .arg(base_port.to_string())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    output
}

/// The `key=value` fields of the output line that starts with `prefix`.
fn fields(output: &Output, prefix: &str) -> BTreeMap<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "hal-load failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line '{prefix}' in:\n{stdout}\nstderr:\n{stderr}"));
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn number(fields: &BTreeMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {fields:?}"))
}

#[test]
fn a_closed_loop_answers_every_cycle_and_reports_ordered_percentiles() {
    let output = hal_load(
        "closed",
        18100,
        &[
            "load",
            "--clients",
            "4",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
        ],
    );
    let f = fields(&output, "load: system=hal mode=closed");
    assert_eq!(f["clients"], "4");
    assert_eq!(f["errors"], "0", "{f:?}");
    assert!(number(&f, "cycles") > 0.0, "{f:?}");
    let p50 = number(&f, "checkout_p50_ms");
    let p99 = number(&f, "checkout_p99_ms");
    let p999 = number(&f, "checkout_p999_ms");
    let max = number(&f, "checkout_max_ms");
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "{f:?}"
    );
    // A checkout is replicated and synced before it is granted: not instant.
    assert!(p50 > 0.01, "{f:?}");
    // The load alone never makes a server miss the active one's heartbeats.
    let e = fields(&output, "elections:");
    assert_eq!(e["during_run"], "0", "{e:?}");
    assert!(number(&e, "term_before") >= 1.0, "{e:?}");
    // The journals answer for every request: each cycle is a checkout and a checkin
    // (the warm-up's cycles come on top), each journaled where it was served.
    let j = fields(&output, "journal:");
    assert!(
        number(&j, "served") >= 2.0 * number(&f, "cycles"),
        "{j:?} {f:?}"
    );
    assert!(number(&j, "records") > number(&j, "served"), "{j:?}");
    let per_request = number(&j, "bytes_per_request");
    assert!((100.0..2000.0).contains(&per_request), "{j:?}");
}

/// A license push halfway through a closed loop (the figure): no cycle fails, the
/// active server and its term stay, and every server serves the new COUNT within a
/// second of the push.
#[test]
fn a_license_push_under_load_fails_no_cycle_and_every_server_switches_within_a_second() {
    let output = hal_load(
        "push",
        18260,
        &[
            "push",
            "--clients",
            "8",
            "--duration",
            "3s",
            "--warmup",
            "500ms",
        ],
    );
    let f = fields(&output, "push:");
    assert_eq!(f["errors"], "0", "{f:?}");
    assert!(number(&f, "cycles") > 0.0, "{f:?}");
    assert_eq!(f["count_before"], "16", "{f:?}");
    assert_eq!(f["count_after"], "26", "{f:?}");
    assert!(number(&f, "index") > 0.0, "{f:?}");
    assert_eq!(f["active_before"], "1", "{f:?}");
    assert_eq!(f["active_after"], "1", "{f:?}");
    assert_eq!(f["term_before"], f["term_after"], "{f:?}");
    let switched = number(&f, "all_switched_ms");
    assert!(switched <= 1000.0, "{f:?}");
    assert!(number(&f, "push_ms") <= switched, "{f:?}");
}

/// A rolling restart (SIGTERM and a restart of #3, #2, then the active #1) under a closed
/// loop fails no cycle; the active server hands its role over, so no checkout waits a
/// failover's time (1.5 s), and #1 is active again at the end.
#[test]
fn a_rolling_restart_under_load_fails_no_checkout() {
    let output = hal_load(
        "rolling",
        18280,
        &[
            "rolling",
            "--clients",
            "8",
            "--duration",
            "10s",
            "--warmup",
            "500ms",
            "--timing",
            "failback_hold=2s",
        ],
    );
    let f = fields(&output, "rolling:");
    assert_eq!(f["errors"], "0", "{f:?}");
    assert!(number(&f, "cycles") > 0.0, "{f:?}");
    assert_eq!(f["active_after"], "1", "{f:?}");
    let failover = Timing::lan().election_timeout + Timing::lan().failover_delay;
    assert!(
        number(&f, "checkout_max_ms") < failover.as_secs_f64() * 1000.0,
        "a checkout waited a failover's time: the handover did not happen: {f:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let restarts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("restart: "))
        .collect();
    assert_eq!(restarts.len(), 3, "{stdout}");
    assert!(restarts[2].starts_with("restart: server=1 "), "{stdout}");
}

/// A waiting checkout's turn (the figure is its median over 20 rounds): every
/// round's waiter gets the seat, and is told as the turn is committed, well before its
/// next ask (asked at least once per failover time, 1.5 s here).
#[test]
fn a_waiting_checkout_is_granted_as_the_seat_comes_back() {
    let output = hal_load("queue", 18270, &["queue", "--rounds", "5"]);
    let f = fields(&output, "queue:");
    assert_eq!(f["rounds"], "5", "{f:?}");
    let (min, p50, max) = (
        number(&f, "turn_min_ms"),
        number(&f, "turn_p50_ms"),
        number(&f, "turn_max_ms"),
    );
    assert!(0.0 < min && min <= p50 && p50 <= max, "{f:?}");
    assert!(max < 1000.0, "told at its next ask, not at once: {f:?}");
}

#[test]
fn an_open_loop_keeps_to_its_rate() {
    let output = hal_load(
        "open",
        18110,
        &[
            "load",
            "--clients",
            "8",
            "--rate",
            "100",
            "--duration",
            "3s",
            "--warmup",
            "500ms",
            "--no-journal",
        ],
    );
    let f = fields(&output, "load: system=hal mode=open");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("journal:"),
        "no journal was kept:\n{stdout}"
    );
    assert_eq!(f["errors"], "0", "{f:?}");
    let rate = number(&f, "cycles_per_s");
    assert!((80.0..=120.0).contains(&rate), "asked for 100/s: {f:?}");
    assert!(f.contains_key("start_late_p99_ms"), "{f:?}");
}

#[test]
fn a_killed_active_server_is_replaced_no_faster_than_its_timers_allow() {
    let output = hal_load(
        "kill",
        18120,
        &[
            "failover",
            "--fault",
            "kill",
            "--trials",
            "2",
            "--background-clients",
            "2",
        ],
    );
    let f = fields(&output, "failover: system=hal fault=kill");
    assert_eq!(f["trials"], "2");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.matches("  trial ").count(), 2, "{stdout}");
    let p50 = number(&f, "p50_ms");
    let max = number(&f, "max_ms");
    assert!((earliest_failover_ms()..5000.0).contains(&p50), "{f:?}");
    assert!(p50 <= max && max < 5000.0, "{f:?}");
}

#[test]
fn timers_given_with_timing_reach_the_servers_and_the_clients() {
    let output = hal_load(
        "tuned",
        18150,
        &[
            "failover",
            "--fault",
            "kill",
            "--trials",
            "1",
            "--background-clients",
            "2",
            "--timing",
            "peer_heartbeat=50ms",
            "--timing",
            "election_timeout=500ms",
            "--timing",
            "failover_delay=100ms",
        ],
    );
    let f = fields(&output, "failover: system=hal fault=kill");
    let mut tuned = Timing::lan();
    tuned.peer_heartbeat = Duration::from_millis(50);
    tuned.election_timeout = Duration::from_millis(500);
    tuned.failover_delay = Duration::from_millis(100);
    // No sooner than the tuned timers allow, and sooner than the LAN profile's allow.
    let p50 = number(&f, "p50_ms");
    assert!(
        (earliest_ms(&tuned)..earliest_failover_ms()).contains(&p50),
        "{f:?}"
    );
}

#[test]
fn a_partitioned_active_server_is_replaced() {
    let output = hal_load(
        "partition",
        18130,
        &[
            "failover",
            "--fault",
            "partition",
            "--insecure",
            "--trials",
            "1",
            "--background-clients",
            "2",
        ],
    );
    let f = fields(&output, "failover: system=hal fault=partition");
    assert_eq!(f["trials"], "1");
    let p50 = number(&f, "p50_ms");
    assert!((earliest_failover_ms()..5000.0).contains(&p50), "{f:?}");
}

#[test]
fn a_soak_through_a_failover_accounts_for_every_seat() {
    let output = hal_load(
        "soak",
        18140,
        &[
            "soak",
            "--clients",
            "40",
            "--duration",
            "12s",
            "--heartbeat",
            "1s",
        ],
    );
    let f = fields(&output, "soak: clients=40");
    assert_eq!(f["lost"], "0", "{f:?}");
    for id in ["#1", "#2", "#3"] {
        assert_eq!(f[&format!("used_{id}")], "40", "{f:?}");
        assert!(number(&f, &format!("rss_peak_mib_{id}")) > 0.0, "{f:?}");
    }
    assert_eq!(f["accounted"], "true", "{f:?}");
    assert!(number(&f, "failover_ms") >= earliest_failover_ms(), "{f:?}");
}

/// The directory `hal-load` said it started its triad in.
fn triad_dir(output: &Output) -> PathBuf {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("hal-load: triad started in "))
        .unwrap_or_else(|| panic!("no triad started in:\n{stderr}"));
    PathBuf::from(line.split(" (license path").next().unwrap())
}

/// The directory a failed run says it kept.
fn kept_dir(stderr: &str) -> PathBuf {
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("(the servers' files and logs are kept in "))
        .unwrap_or_else(|| panic!("no directory kept in:\n{stderr}"));
    PathBuf::from(kept.trim_end_matches(')'))
}

#[test]
fn a_run_removes_its_own_directory_and_a_failed_start_keeps_it() {
    let load = |base_port: &str| {
        Command::new(HAL_LOAD)
            .args(["load", "--clients", "2", "--duration", "300ms"])
            .args(["--warmup", "100ms", "--base-port", base_port, "--hal-net"])
            .arg(hal_net())
            .output()
            .unwrap()
    };
    let output = load("18160");
    fields(&output, "load: system=hal");
    let dir = triad_dir(&output);
    assert!(!dir.exists(), "{} left behind", dir.display());

    // #1's port taken: #2 and #3 elect #2, but a triad of two is not what is measured.
    let taken = std::net::TcpListener::bind("127.0.0.1:18170").unwrap();
    let output = load("18170");
    drop(taken);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server #1 exited"), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
    let dir = kept_dir(&stderr);
    assert!(dir.join("server1.log").exists(), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_disk_probe_syncs_at_its_rate_and_leaves_nothing_behind() {
    let dir = std::env::temp_dir().join(format!("hal-load-disk-{}", std::process::id()));
    let output = Command::new(HAL_LOAD)
        .args([
            "disk",
            "--writers",
            "2",
            "--rate",
            "200",
            "--duration",
            "1s",
        ])
        .args(["--record-bytes", "300", "--busy-threads", "1", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let f = fields(&output, "disk:");
    assert_eq!(f["writers"], "2", "{f:?}");
    assert_eq!(f["busy_threads"], "1", "{f:?}");
    assert_eq!(f["record_bytes"], "300", "{f:?}");
    // Held to the rate: 200 a second (a slow disk may fall short, never exceed it).
    let rate = number(&f, "syncs_per_s");
    assert!(rate > 20.0 && rate <= 205.0, "{f:?}");
    let p50 = number(&f, "sync_p50_ms");
    let p99 = number(&f, "sync_p99_ms");
    let max = number(&f, "sync_max_ms");
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{f:?}");
    let syncs = number(&f, "syncs");
    assert!(syncs >= rate, "{f:?}"); // over at least a second
    assert!(number(&f, "stalls_over_5ms") <= syncs, "{f:?}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "files left in {}: {left:?}", dir.display());
    std::fs::remove_dir(&dir).unwrap();

    for (args, says) in [
        (&["--writers", "0"][..], "--writers must be at least 1"),
        (
            &["--record-bytes", "0"][..],
            "--record-bytes must be between 1",
        ),
        (&["--rate=0"][..], "--rate must be a positive number"),
    ] {
        let output = Command::new(HAL_LOAD)
            .arg("disk")
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn the_report_probe_counts_every_grant_once_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(HAL_LOAD)
        .args(["report", "--records", "20000", "--servers", "3", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let f = fields(&output, "report:");
    assert_eq!(f["servers"], "3", "{f:?}");
    assert_eq!(f["records"], "20000", "{f:?}");
    // Each server's start and role besides its seat records.
    assert_eq!(f["entries"], "60006", "{f:?}");
    // Every grant is in three journals and counted once.
    assert_eq!(f["checkouts"], f["grants"], "{f:?}");
    let peak = number(&f, "peak_seats");
    assert!((250.0..=500.0).contains(&peak), "{f:?}");
    for step in ["write_s", "read_s", "account_s"] {
        assert!(number(&f, step) >= 0.0, "{f:?}");
    }
    let (before, read, peak) = (
        number(&f, "rss_before_mib"),
        number(&f, "peak_read_mib"),
        number(&f, "peak_mib"),
    );
    assert!(0.0 < before && before <= read && read <= peak, "{f:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files left: {left:?}");

    let output = Command::new(HAL_LOAD)
        .args(["report", "--servers", "4"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--servers must be 1, 2 or 3"), "{stderr}");
}

#[test]
fn bad_arguments_are_refused_with_what_was_wrong() {
    let output = Command::new(HAL_LOAD)
        .args(["load", "--duration", "banana"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--duration"), "{stderr}");

    let output = Command::new(HAL_LOAD)
        .args(["load", "--license-path", "not a path"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--license-path"), "{stderr}");

    // A partition is played by proxies that read hellos, which TLS hides.
    let output = Command::new(HAL_LOAD)
        .args(["failover", "--fault", "partition", "--trials", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--fault partition needs --insecure"),
        "{stderr}"
    );

    for (arg, says) in [
        ("elections_timeout=1s", "unknown timer 'elections_timeout'"),
        ("election_timeout", "is not NAME=DURATION"),
        ("election_timeout=soon", "'soon'"),
        (
            "election_timeout=100ms",
            "election_timeout must be at least three peer heartbeats",
        ),
    ] {
        let output = Command::new(HAL_LOAD)
            .args(["failover", "--timing", arg])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{arg}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{arg}: {stderr}");
    }
}

#[test]
fn the_floor_answers_every_cycle_once_synced_on_a_majority_and_cleans_up() {
    let run = |args: &[&str]| {
        Command::new(HAL_LOAD)
            .args(["floor", "--clients", "4", "--warmup", "200ms"])
            .args(args)
            .output()
            .unwrap()
    };
    let output = run(&["--duration", "1s", "--base-port", "18180", "--half-peak"]);
    let closed = fields(&output, "load: system=floor mode=closed");
    assert_eq!(closed["errors"], "0", "{closed:?}");
    let cycles = number(&closed, "cycles");
    assert!(cycles > 0.0, "{closed:?}");
    for key in ["s1", "s2", "s3", "load"] {
        assert!(
            number(&closed, &format!("cpu_us_per_cycle_{key}")) > 0.0,
            "{closed:?}"
        );
    }
    let open = fields(&output, "load: system=floor mode=open");
    assert_eq!(open["errors"], "0", "{open:?}");
    // Every request answered was a record on every log (each follower takes every
    // batch): two requests a cycle, warm-ups and both loops included.
    let records = fields(&output, "floor:");
    let answered = 2.0 * (cycles + number(&open, "cycles"));
    for key in ["records_s1", "records_s2", "records_s3"] {
        assert!(number(&records, key) >= answered, "{records:?} {answered}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("kept in"), "{stderr}");

    // A follower's port taken: the run fails and says which server and why.
    let taken = std::net::TcpListener::bind("127.0.0.1:18191").unwrap();
    let output = run(&["--duration", "300ms", "--base-port", "18190"]);
    drop(taken);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("floor server 2 exited"), "{stderr}");
    assert!(
        stderr.contains("cannot listen on 127.0.0.1:18191"),
        "{stderr}"
    );
    std::fs::remove_dir_all(kept_dir(&stderr)).unwrap();
}
