//! Upgrading a running triad one server at a time, from data directories the previous
//! release wrote (`tests/fixtures/format1`: storage format 1, protocol version 8).
//!
//! The previous release is played by this build held back to protocol version 8
//! (`serve --protocol-version 8`), whose frames are checked byte for byte against those
//! hal-net 0.1.0 wrote (`tests/fixtures/wire-v8`, in `src/wire`'s tests), or, given
//! `HAL_PREVIOUS_HAL_NET` (a hal-net 0.1.0 built from its commit), by the real thing.
//! The data directories are the real thing.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{Cluster, Holder};

/// A short failback hold, so that #1 takes its role back within the test.
const TIMING: &str = "failback_hold = \"2s\"";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Server `id` as status shows it.
fn server(status: &Value, id: usize) -> &Value {
    &status["servers"][id - 1]
}

/// Waits until every server answers, one is active, all logs are level, and server `id`
/// runs `version` (`None`: says none, as protocol 8 does).
fn wait_settled(cluster: &Cluster, id: usize, version: Option<&str>) -> Value {
    let start = Instant::now();
    loop {
        let status = cluster.status();
        let servers = status["servers"].as_array().cloned().unwrap_or_default();
        let level = servers
            .iter()
            .all(|s| s["up"] == true && s["log_lag"] == 0 && s["commit_index"] == s["last_index"]);
        let runs = server(&status, id)["version"].as_str() == version;
        if level && runs && status["active"].is_u64() {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server #{id} not back with version {version:?}: {status}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_triad_is_upgraded_one_server_at_a_time_from_the_previous_format_with_no_seat_lost() {
    let mut cluster = Cluster::new(TIMING);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1");
    // The fixture triad's vendor key and license; its data directories.
    std::fs::copy(
        fixture.join("vendor.pub"),
        cluster.dir.path().join("vendor.pub"),
    )
    .unwrap();
    std::fs::copy(
        fixture.join("seven.lic"),
        cluster.dir.path().join("cad.lic"),
    )
    .unwrap();
    for id in 1..=3 {
        copy_dir(&fixture.join(format!("data{id}")), &cluster.data(id));
    }
    let before: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("status.json")).unwrap()).unwrap();

    // The previous release, on its own data: no --join-empty needed, the directories
    // hold its log.
    match std::env::var_os("HAL_PREVIOUS_HAL_NET") {
        Some(previous) => {
            for id in 1..=3 {
                cluster.start_binary(id, Path::new(&previous), &[]);
            }
        }
        None => {
            for id in 1..=3 {
                cluster.start_with(id, &["--protocol-version", "8"]);
            }
        }
    }
    cluster.wait_active(1, Duration::from_secs(20));
    let old = wait_settled(&cluster, 1, None);
    // What the old servers wrote is in force: the pushed license and options.
    assert_eq!(old["features"][0]["count"], 7, "{old}");
    let options = &server(&old, 1)["options"];
    assert_eq!(*options, server(&before, 1)["options"], "{old}");
    assert_eq!(
        server(&old, 1)["license"]["digest"],
        server(&before, 1)["license"]["digest"],
        "{old}"
    );
    let term_before = server(&before, 1)["term"].as_u64().unwrap();
    assert!(
        server(&old, 1)["term"].as_u64().unwrap() > term_before,
        "{old}"
    );
    // The fixture's checkouts are there too, on a fresh lease from the new term (their
    // clients are gone, so they lapse two minutes later; its borrow may have ended).
    let (_, fixture_seats) = cluster.seats("cad");
    for handle in ["h5", "h6", "h7"] {
        assert!(fixture_seats.iter().any(|h| h == handle), "{handle}: {old}");
    }

    // Seats held throughout the upgrade.
    let mut holders: Vec<Holder> = (0..2).map(|_| Holder::start(&cluster, "cad")).collect();
    let mut held: Vec<String> = holders.iter().map(Holder::handle).collect();
    held.sort();

    // One server at a time: #3, #2, then the active #1 (its seats fail over to #2 and
    // back).
    let version = env!("CARGO_PKG_VERSION");
    for id in [3, 2, 1] {
        cluster.stop(id);
        cluster.start(id);
        let status = wait_settled(&cluster, id, Some(version));
        let (_, handles) = cluster.seats("cad");
        for handle in &held {
            assert!(
                handles.contains(handle),
                "{handle} lost upgrading #{id}: {status}"
            );
        }
        for holder in &mut holders {
            assert!(holder.alive(), "a holder lost its seat upgrading #{id}");
        }
        // A new checkout is served by the mixed triad.
        let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
        assert!(
            out.status.success(),
            "checkout after upgrading #{id}: {out:?}"
        );
    }
    cluster.wait_active(1, Duration::from_secs(20));
    let new = wait_settled(&cluster, 1, Some(version));
    for id in 1..=3 {
        let s = server(&new, id);
        assert_eq!(s["version"], version, "{new}");
        assert_eq!(s["storage_format"], 2, "{new}");
        assert_eq!(s["protocol"], serde_json::json!([8, 9]), "{new}");
        // The data directory is in format 2 now.
        let log = std::fs::read(cluster.data(id).join("log")).unwrap();
        assert_eq!(&log[..8], b"HAL-LOG\0", "server #{id}");
    }
    assert_eq!(new["features"][0]["count"], 7, "{new}");
    assert_eq!(
        server(&new, 1)["options"]["index"],
        options["index"],
        "{new}"
    );
    let text = String::from_utf8_lossy(&cluster.verb(&["status"]).stdout).into_owned();
    assert!(text.contains(&format!("hal-net {version}")), "{text}");
    assert!(
        cluster
            .logs()
            .contains("upgraded the data directory from format 1 to 2"),
        "{}",
        cluster.logs()
    );
    for holder in holders {
        holder.release();
    }
}
