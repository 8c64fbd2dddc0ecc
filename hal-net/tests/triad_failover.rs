//! Three real `hal-net serve` processes on 127.0.0.1: grants, a `kill -9` of the active
//! server under load, borrow rules while #2 is active, failback, and a full restart.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::cluster::{Cluster, Holder, json};

/// LAN timing, with a short failback hold so the test does not wait ten seconds.
const TIMING: &str = "failback_hold = \"2s\"";

/// The failover bound of the LAN profile, from `kill -9` of #1 to the first grant by #2:
/// #2 campaigns `election_timeout` + `failover_delay` after it last heard #1 (1.5 s), and
/// a client may have spent one `request_timeout` (= `election_timeout`) on a request that
/// died with #1. A loaded 2-core CI machine gets one more second for elections, process
/// start-up and scheduling.
fn failover_bound() -> Duration {
    let lan = hal_core::timing::Timing::lan();
    lan.election_timeout * 2 + lan.failover_delay + Duration::from_secs(1)
}

#[test]
fn failover_keeps_every_held_seat_and_failback_returns_to_1() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));

    // Three holders, each granted by #1.
    let mut holders: Vec<Holder> = (0..3).map(|_| Holder::start(&cluster, "cad")).collect();
    for holder in &holders {
        assert_eq!(holder.grant["result"], "granted");
        assert_eq!(holder.grant["server"], 1, "{}", holder.grant);
    }
    let mut held: Vec<String> = holders.iter().map(Holder::handle).collect();
    held.sort();
    assert_eq!(cluster.seats("cad"), (3, held.clone()));

    // Churn while #1 dies: each cycle checks out and in again; whatever happens, no seat
    // may stay taken once the churn is over.
    let path = cluster.path();
    let ca = cluster.ca();
    let churn = thread::spawn(move || {
        let mut granted = 0;
        for _ in 0..6 {
            let out = std::process::Command::new(support::cluster::hal_net())
                .args([
                    "checkout",
                    "cad",
                    "--hold",
                    "0s",
                    "--json",
                    "--license-path",
                    &path,
                ])
                .env("HAL_TRIAD_CA", &ca)
                .output()
                .unwrap();
            if out.status.success() {
                granted += 1;
            }
        }
        granted
    });
    thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    cluster.kill9(1);

    // #2 serves within the bound.
    let bound = failover_bound();
    let granted_by_2 = loop {
        let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
        if out.status.success() {
            break json(&out);
        }
        assert!(
            killed.elapsed() < bound,
            "no grant {bound:?} after the kill: {out:?}\n{}",
            cluster.logs()
        );
    };
    let failover = killed.elapsed();
    assert_eq!(granted_by_2["server"], 2, "{granted_by_2}");
    assert!(failover < bound, "failover took {failover:?}");
    eprintln!(
        "failover: first grant by #2 {} ms after kill -9 of #1",
        failover.as_millis()
    );

    let churned = churn.join().unwrap();
    assert!(churned >= 1, "the churn got no seat at all");
    // Every seat held before the kill is still held, once, and the holders still hold it.
    assert_eq!(
        cluster.seats("cad"),
        (3, held.clone()),
        "{}",
        cluster.logs()
    );
    for holder in &mut holders {
        assert!(holder.alive(), "a holder lost its seat in the failover");
    }

    // A borrow is denied while #2 is active.
    let out = cluster.verb(&["borrow", "cad", "--hours", "2", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["reason"], "borrow_unavailable");

    // #1 comes back and takes over after the hold (2 s here).
    cluster.start(1);
    cluster.wait_active(1, Duration::from_secs(15));
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["server"], 1);
    assert_eq!(cluster.seats("cad"), (3, held), "{}", cluster.logs());

    // Holders check in on SIGTERM: nothing stays in use.
    for holder in holders {
        holder.release();
    }
    assert_eq!(cluster.seats("cad"), (0, vec![]));
    let log = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(log.contains("became active"), "{log}");
    assert!(log.contains("failback"), "{log}");
}

#[test]
fn all_three_restarted_keep_their_seats() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let out = cluster.verb(&["borrow", "cad", "--hours", "3", "--json"]);
        assert!(out.status.success(), "{out:?}");
        handles.push(json(&out)["handle"].as_str().unwrap().to_string());
    }
    let holder = Holder::start(&cluster, "cad");
    handles.push(holder.handle());
    handles.sort();
    assert_eq!(cluster.seats("cad"), (3, handles.clone()));

    for id in 1..=3 {
        cluster.stop(id);
    }
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    assert_eq!(
        cluster.seats("cad"),
        (3, handles.clone()),
        "{}",
        cluster.logs()
    );

    // A borrow returned early frees its seat; the holder checks in.
    let first = handles[0].clone();
    let out = cluster.verb(&["return", &first, "--json"]);
    assert!(out.status.success(), "{out:?}");
    holder.release();
    let (used, _) = cluster.seats("cad");
    assert_eq!(used, 1);
}

#[test]
fn a_server_alone_denies_with_no_majority() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start(1);
    let asked = Instant::now();
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    let answered = asked.elapsed();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["reason"], "no_majority", "{out:?}");
    // As soon as a failover could have found a majority (2 s on a LAN), not after the
    // whole give-up time (6 s): the process start and a loaded machine get a second.
    let soon = hal_core::timing::Timing::lan().client_no_majority_give_up();
    assert!(
        answered < soon + Duration::from_secs(1),
        "answered after {answered:?}"
    );

    // The same once an active server whose peers died has stepped down. (A request it
    // took in the election timeout before that may have been logged: its outcome is
    // unknown, and the client settles it as a failover would.)
    cluster.start(2);
    cluster.start(3);
    cluster.wait_active(1, Duration::from_secs(10));
    cluster.kill9(2);
    cluster.kill9(3);
    let start = Instant::now();
    while cluster.status()["servers"][0]["role"] == "active" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "#1 did not step down"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    let answered = asked.elapsed();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["reason"], "no_majority", "{out:?}");
    assert!(
        answered < soon + Duration::from_secs(1),
        "answered after {answered:?}"
    );

    // With no server at all, the verb says so and exits 3.
    cluster.kill9(1);
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(json(&out)["result"], "unreachable");
}

/// SIGTERM on the active server hands the role over before it exits: #2 serves well
/// within a failover's wait, and the holders' seats carry over.
#[test]
fn sigterm_on_the_active_server_hands_the_role_over_first() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let holder = Holder::start(&cluster, "cad");
    let handle = holder.handle();
    let asked = Instant::now();
    cluster.stop(1);
    let stopped = asked.elapsed();
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(
        log.contains("stopping: handing the active role to #2 first"),
        "{log}"
    );
    assert!(
        log.contains("handed the active role over; stopping"),
        "{log}"
    );
    // #2 took over before #1 exited: it serves a checkout at once.
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    let served = asked.elapsed();
    assert!(out.status.success(), "{out:?}\n{}", cluster.logs());
    assert_eq!(json(&out)["server"], 2, "{out:?}");
    let failover = hal_core::timing::Timing::lan();
    let failover = failover.election_timeout + failover.failover_delay;
    assert!(
        served < failover,
        "served {served:?} after SIGTERM (stop took {stopped:?}); a failover takes {failover:?}"
    );
    eprintln!(
        "SIGTERM to #1: it exited after {stopped:?}; #2 served a checkout {served:?} after it"
    );
    let (_, handles) = cluster.seats("cad");
    assert!(handles.contains(&handle), "{handles:?}");
    holder.release();
}
