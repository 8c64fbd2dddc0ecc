//! The C example (`examples/c/checkout.c`), compiled with `cc` against the shared and the
//! static library, run against three real `hal-net serve` processes on 127.0.0.1 over
//! TLS: it holds its seat across a `kill -9` of #1 and checks it in; a denial exits with
//! the denial's name; a seat lost while working reaches the application; with every seat
//! in use, it waits in the queue (`hal_checkout_wait`) and gets the seat given back. The borrow
//! example (`examples/c/borrow.c`) borrows, returns, and proves a borrow offline with
//! every server gone, and refuses its record once edited.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

#[path = "../../hal-net/tests/support/cluster.rs"]
mod cluster;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use cluster::Cluster;
use hal_net::client::{Client, Options};

/// A 4 s lease with 1 s heartbeats.
const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `target/debug` (or `release`): where this test binary runs from.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The example, compiled once: (linked to the shared library, linked statically).
fn example() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = profile_dir();
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "-p",
            "hal-client-c",
            "-p",
            "hal-net",
            "--lib",
            "--bins",
        ]);
        if profile.ends_with("release") {
            cargo.arg("--release");
        }
        let target = profile.parent().unwrap();
        let built = cargo
            .env("CARGO_TARGET_DIR", target)
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(built.status.success(), "cargo build: {built:?}");
        let out = profile.join("c-example");
        std::fs::create_dir_all(&out).unwrap();
        let source = workspace().join("examples/c/checkout.c");
        let include = workspace().join("hal-client-c/include");
        let shared = out.join("checkout");
        let statically = out.join("checkout-static");
        let cc = |source: &Path, args: &[&std::ffi::OsStr]| {
            let out = Command::new("cc")
                .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
                .arg(&include)
                .arg(source)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cc is needed to build the C example: {e}"));
            assert!(
                out.status.success(),
                "cc: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let rpath = format!("-Wl,-rpath,{}", profile.display());
        cc(
            &source,
            &[
                "-L".as_ref(),
                profile.as_os_str(),
                "-lhal_client".as_ref(),
                rpath.as_ref(),
                "-o".as_ref(),
                shared.as_os_str(),
            ],
        );
        let archive = profile.join("libhal_client.a");
        cc(
            &source,
            &[
                archive.as_os_str(),
                "-lpthread".as_ref(),
                "-ldl".as_ref(),
                "-lm".as_ref(),
                "-o".as_ref(),
                statically.as_os_str(),
            ],
        );
        // The benchmark's C side (hal-client-bench runs it) must build too.
        let bench = out.join("bench");
        let bench_source = workspace().join("examples/c/bench.c");
        cc(
            &bench_source,
            &[
                "-L".as_ref(),
                profile.as_os_str(),
                "-lhal_client".as_ref(),
                rpath.as_ref(),
                "-o".as_ref(),
                bench.as_os_str(),
            ],
        );
        let borrow = out.join("borrow");
        cc(
            &workspace().join("examples/c/borrow.c"),
            &[
                "-L".as_ref(),
                profile.as_os_str(),
                "-lhal_client".as_ref(),
                rpath.as_ref(),
                "-o".as_ref(),
                borrow.as_os_str(),
            ],
        );
        (shared, statically)
    })
}

fn started() -> Cluster {
    example();
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    cluster
}

#[test]
fn the_c_example_keeps_its_seat_across_a_kill_9_of_one_and_checks_it_in() {
    let mut cluster = started();
    let (shared, _) = example();
    cluster.app_keeps_its_seat_across_a_kill_9(shared);
}

#[test]
fn the_statically_linked_example_is_denied_with_the_reason() {
    let cluster = started();
    let (_, statically) = example();
    let unknown = cluster.app(statically, &["cam", "0"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    let text = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        text.starts_with("denied: unknown_feature (denied: unknown_feature)"),
        "{text}"
    );

    let options = Options::new(&cluster.path()).unwrap().ca(cluster.ca());
    let holder = Client::new(options).unwrap();
    let seats: Vec<_> = (0..5).map(|_| holder.checkout("cad").unwrap()).collect();
    let full = cluster.app(statically, &["cad", "0"]).output().unwrap();
    assert_eq!(full.status.code(), Some(2), "{full:?}");
    let text = String::from_utf8_lossy(&full.stderr);
    assert!(
        text.starts_with("denied: all_in_use (denied: all_in_use (5 of 5))"),
        "{text}"
    );
    drop(seats);

    let nowhere = Command::new(statically)
        .env("HAL_LICENSE_PATH", "1@127.0.0.1")
        .env("HAL_TRIAD_CA", "/nonexistent/ca.pem")
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(1), "{nowhere:?}");
    let text = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        text.contains("error: config") && text.contains("/nonexistent/ca.pem"),
        "{text}"
    );
}

#[test]
fn the_c_example_waits_in_the_queue_and_gets_the_seat_given_back() {
    let cluster = started();
    let (shared, _) = example();
    let options = Options::new(&cluster.path()).unwrap().ca(cluster.ca());
    let holder = Client::new(options).unwrap();
    let mut seats: Vec<_> = (0..5).map(|_| holder.checkout("cad").unwrap()).collect();
    // Work 0 s; wait up to 30 s for a seat.
    let app = cluster
        .app(shared, &["cad", "0", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while cluster.status()["features"][0]["waiting"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(start.elapsed() < Duration::from_secs(10), "never queued");
        std::thread::sleep(Duration::from_millis(50));
    }
    seats.pop().unwrap().checkin().unwrap();
    let out = cluster::finish_app(app, Duration::from_secs(15));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("granted: cad seat h"), "{text}");
    assert!(text.contains("checked in"), "{text}");
}

#[test]
fn a_seat_lost_while_working_reaches_the_c_application() {
    let mut cluster = started();
    let (shared, _) = example();
    cluster.app_hears_its_seat_is_lost(shared);
}

/// Runs the borrow example; its exit code and output.
fn borrow(cluster: &Cluster, args: &[&str]) -> (i32, String) {
    let program = example().0.with_file_name("borrow");
    let out = cluster.app(&program, args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_c_borrow_example_proves_its_borrow_offline_and_refuses_an_edited_record() {
    let mut cluster = started();
    let (code, kept) = borrow(&cluster, &["take", "cad", "2"]);
    assert_eq!(code, 0, "{kept}\n{}", cluster.logs());
    assert!(kept.starts_with("borrowed: cad seat h"), "{kept}");
    let (code, given_back) = borrow(&cluster, &["take", "cad", "1"]);
    assert_eq!(code, 0, "{given_back}");
    let handle = given_back
        .trim_start_matches("borrowed: cad seat h")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let (code, text) = borrow(&cluster, &["return", &handle]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(cluster.seats("cad").0, 1);
    let (code, text) = borrow(&cluster, &["take", "cad", "1000"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("borrow_not_allowed"), "{text}");

    // Offline: every server gone.
    for id in 1..=3 {
        cluster.kill9(id);
    }
    let (code, text) = borrow(&cluster, &["check", "cad"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("valid until") && text.contains("signed by server #1"),
        "{text}"
    );
    let (code, text) = borrow(&cluster, &["check", "cae"]);
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("not_borrowed"), "{text}");

    // A week more, written into the record by hand: refused.
    let file = cluster.dir.path().join("home").join("borrows.json");
    let original = std::fs::read_to_string(&file).unwrap();
    let end: u64 = original
        .split("\"end_ms\": ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap();
    let edited = original.replace(
        &format!("\"end_ms\": {end}"),
        &format!("\"end_ms\": {}", end + 7 * 24 * 3_600_000),
    );
    std::fs::write(&file, edited).unwrap();
    let (code, text) = borrow(&cluster, &["check", "cad"]);
    assert_eq!(code, 6, "{text}");
    assert!(
        text.contains("changed after the server signed it"),
        "{text}"
    );
}
