//! `hal-net checkout --wait` against a real triad, as users and an administrator meet
//! it: with every seat in use, waiting checkouts queue in the order they came, `status`
//! shows the queue, a `kill -9` of the active server keeps it, each waiter gets a seat
//! in its turn as seats come back (told at once, not at its next ask), and a wait that
//! runs out is refused `all_in_use`.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{Cluster, Holder, hal_net, json};

const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

/// A `checkout --wait` process, and its stdout's first line when it comes.
struct Waiter {
    child: Child,
    line: mpsc::Receiver<String>,
}

impl Waiter {
    /// Starts `hal-net checkout cad --wait WAIT --hold 10m --json` as `user`.
    fn start(cluster: &Cluster, user: &str, wait: &str) -> Waiter {
        let mut child = Command::new(hal_net())
            .args(["checkout", "cad", "--wait", wait, "--hold", "10m", "--json"])
            .arg("--license-path")
            .arg(cluster.path())
            .env("USER", user)
            .env("HAL_TRIAD_CA", cluster.ca())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(cluster.dir.path().join(format!("waiter-{user}.log")))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            if BufReader::new(stdout).read_line(&mut text).is_ok() {
                let _ = send.send(text);
            }
        });
        Waiter { child, line }
    }

    /// Its grant line, within `limit`.
    fn granted(&self, limit: Duration) -> Value {
        let line = self.line.recv_timeout(limit).expect("granted in time");
        let grant: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(grant["result"], "granted", "{grant}");
        grant
    }

    /// Whether it has printed nothing yet.
    fn still_waiting(&self) -> bool {
        matches!(self.line.try_recv(), Err(mpsc::TryRecvError::Empty))
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The users waiting for `cad`, in order, as `status --json` shows them.
fn queue(cluster: &Cluster) -> Vec<String> {
    let status = cluster.status();
    status["features"][0]["waiting"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|w| w["user"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to 10 s for the queue to be `users`.
fn wait_queue(cluster: &Cluster, users: &[&str]) {
    let start = Instant::now();
    loop {
        let now = queue(cluster);
        if now == users {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "queue {now:?}, not {users:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn waiting_checkouts_are_served_in_order_and_keep_their_place_across_a_failover() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    // COUNT is 5: all in use.
    let mut holders: Vec<Holder> = (0..5)
        .map(|i| Holder::start_as(&cluster, "cad", &format!("user{i}")))
        .collect();
    let out = cluster.checkout_as("cad", "eve");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["reason"], "all_in_use");

    let fay = Waiter::start(&cluster, "fay", "60s");
    wait_queue(&cluster, &["fay"]);
    let gil = Waiter::start(&cluster, "gil", "60s");
    wait_queue(&cluster, &["fay", "gil"]);
    let text = String::from_utf8_lossy(&cluster.verb(&["status"]).stdout).into_owned();
    assert!(text.contains("2 waiting:"), "{text}");
    let fay_at = text.find("1.      fay@").expect("fay first");
    let gil_at = text.find("2.      gil@").expect("gil second");
    assert!(fay_at < gil_at, "{text}");
    // A later plain checkout does not pass them.
    assert_eq!(
        json(&cluster.checkout_as("cad", "eve"))["reason"],
        "all_in_use"
    );

    // The active server dies: #2 takes over with the same queue, the waiters still in it.
    cluster.kill9(1);
    cluster.wait_active(2, Duration::from_secs(10));
    wait_queue(&cluster, &["fay", "gil"]);
    // Longer than a place lasts unrenewed: the waiters keep theirs by asking again.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        queue(&cluster),
        ["fay", "gil"],
        "{}",
        std::fs::read_to_string(cluster.dir.path().join("waiter-fay.log")).unwrap()
    );
    assert!(fay.still_waiting() && gil.still_waiting());

    // A seat comes back: the first waiter gets it, the second moves up.
    let started = Instant::now();
    holders.pop().unwrap().release();
    let grant = fay.granted(Duration::from_secs(5));
    assert_eq!(grant["granted_by"], 2, "{grant}");
    // Told by the active server as the grant applied, not at its next ask (1 s).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    wait_queue(&cluster, &["gil"]);
    assert!(gil.still_waiting());
    holders.pop().unwrap().release();
    gil.granted(Duration::from_secs(5));
    wait_queue(&cluster, &[]);

    // A wait that runs out: refused all_in_use, and it leaves the queue.
    let started = Instant::now();
    let out = Command::new(hal_net())
        .args(["checkout", "cad", "--wait", "2s", "--hold", "0s", "--json"])
        .arg("--license-path")
        .arg(cluster.path())
        .env("USER", "ivy")
        .env("HAL_TRIAD_CA", cluster.ca())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["reason"], "all_in_use");
    assert!(started.elapsed() >= Duration::from_secs(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("waiting: cad, number 1 in the queue (5 of 5 seats in use)"),
        "{err}"
    );
    assert_eq!(queue(&cluster), Vec::<String>::new());
    // The journals: each wait's joining and leaving, not every "still queued" (written
    // in batches, 20 ms apart).
    let start = Instant::now();
    let journal = loop {
        let journal = cluster.journal_text(2);
        if journal.contains("left_queue") || start.elapsed() > Duration::from_secs(5) {
            break journal;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for change in ["\"change\":\"queued\"", "\"change\":\"left_queue\""] {
        assert!(journal.contains(change), "{change} not in\n{journal}");
    }
    assert!(!journal.contains("\"result\":\"queued\""), "{journal}");
    let log2 = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(!log2.contains("panicked"), "{log2}");
}
