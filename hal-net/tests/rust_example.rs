//! The Rust example (`hal-net/examples/checkout.rs`), built and run as an application
//! would be, against three real `hal-net serve` processes on 127.0.0.1 over TLS: it holds
//! its seat across a `kill -9` of #1 and checks it in; a denial exits 2 with the
//! denial's name; a seat lost while working reaches it (exit 4). The same checks as the
//! C example's (`hal-client-c/tests/c_example.rs`) and the Python one's.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hal_net::client::{Client, Options};
use support::cluster::{Cluster, cargo_build};

/// A 4 s lease with 1 s heartbeats.
const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

/// The example, built once by cargo (as `cargo run --example checkout` would).
fn example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = cargo_build(&["-p", "hal-net", "--example", "checkout", "--bins"]);
        profile.join("examples").join("checkout")
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
fn the_rust_example_keeps_its_seat_across_a_kill_9_of_one_and_checks_it_in() {
    let mut cluster = started();
    cluster.app_keeps_its_seat_across_a_kill_9(example());
}

#[test]
fn the_rust_example_is_denied_with_the_reason() {
    let cluster = started();
    let unknown = cluster.app(example(), &["cam", "0"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    let text = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        text.starts_with("error: unknown_feature (denied: unknown_feature)"),
        "{text}"
    );

    let options = Options::new(&cluster.path()).unwrap().ca(cluster.ca());
    let holder = Client::new(options).unwrap();
    let seats: Vec<_> = (0..5).map(|_| holder.checkout("cad").unwrap()).collect();
    let full = cluster.app(example(), &["cad", "0"]).output().unwrap();
    assert_eq!(full.status.code(), Some(2), "{full:?}");
    let text = String::from_utf8_lossy(&full.stderr);
    assert!(
        text.starts_with("error: all_in_use (denied: all_in_use"),
        "{text}"
    );
    drop(seats);

    let nowhere = Command::new(example())
        .env("HAL_LICENSE_PATH", "1@127.0.0.1")
        .env("HAL_TRIAD_CA", "/nonexistent/ca.pem")
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(1), "{nowhere:?}");
    let text = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        text.starts_with("error: config") && text.contains("/nonexistent/ca.pem"),
        "{text}"
    );
}

#[test]
fn a_seat_lost_while_working_reaches_the_rust_application() {
    let mut cluster = started();
    cluster.app_hears_its_seat_is_lost(example());
}
