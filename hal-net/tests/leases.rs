//! Leases over real TCP: a holder's heartbeats keep its seat past the lease, and a holder
//! killed without checking in loses its seat once the lease runs out.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Cluster, Holder};

/// A 4 s lease; the client verbs' settings say 30 s heartbeats, so this also proves
/// that clients heartbeat by the lease the servers give.
const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

#[test]
fn heartbeats_keep_seats_and_a_killed_holder_loses_its_seat_after_the_lease() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let mut keeper = Holder::start(&cluster, "cad");
    let mut victim = Holder::start(&cluster, "cad");
    let mut both = vec![keeper.handle(), victim.handle()];
    both.sort();

    // Three leases long: only heartbeats keep the seats.
    std::thread::sleep(Duration::from_secs(12));
    assert!(keeper.alive() && victim.alive(), "{}", cluster.logs());
    assert_eq!(cluster.seats("cad"), (2, both));

    // The victim dies without checking in: its seat expires, the keeper's stays.
    victim.child.kill().unwrap();
    let killed = Instant::now();
    let bound = Duration::from_secs(4 + 1 + 3); // lease + expiry margin + slack
    loop {
        let (used, handles) = cluster.seats("cad");
        if used == 1 {
            assert_eq!(handles, vec![keeper.handle()]);
            break;
        }
        assert!(
            killed.elapsed() < bound,
            "seat not expired after {bound:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let expired_after = killed.elapsed();
    assert!(
        expired_after >= Duration::from_secs(3),
        "expired too early: {expired_after:?}"
    );
    assert!(keeper.alive());
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("seat expired"), "{log}");
    keeper.release();
}
