//! The client library (`hal_net::client`) against three real `hal-net serve` processes on
//! 127.0.0.1 over TLS: a seat held across a `kill -9` of #1, denials as their reasons, a
//! lost seat reported, seats given back when their guards drop, borrows kept and
//! returned, and the async face on tokio.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::time::{Duration, Instant};

use hal_net::client::{
    AsyncClient, BorrowStore, Client, Denial, Error, Event, Options, Returned, ServerId,
};
use support::cluster::{Cluster, free_ports, hal_net};

/// A 4 s lease with 1 s heartbeats, and a short failback hold.
const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"\nfailback_hold = \"2s\"";

fn started() -> Cluster {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    cluster
}

fn client(cluster: &Cluster) -> Client {
    let options = Options::new(&cluster.path()).unwrap().ca(cluster.ca());
    Client::new(options).unwrap()
}

/// Waits up to `limit` for the seats in use of `cad` to be `used`.
fn wait_used(cluster: &Cluster, used: u64, limit: Duration) {
    let start = Instant::now();
    loop {
        let (now, handles) = cluster.seats("cad");
        if now == used {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{now} seats in use ({handles:?}), not {used}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `limit` for an event that `wanted` accepts; the events seen on the way.
fn wait_event(
    events: &mut hal_net::client::Events,
    limit: Duration,
    wanted: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        if let Some(event) = events.wait(Duration::from_millis(200)).unwrap() {
            let done = wanted(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
    panic!("no such event within {limit:?}; saw {seen:?}");
}

#[test]
fn a_seat_is_kept_across_a_kill_9_of_one_and_checked_in_after() {
    let mut cluster = started();
    let client = client(&cluster);
    let mut events = client.events();
    let seat = client.checkout("cad").unwrap();
    assert_eq!(seat.feature(), "cad");
    assert_eq!(seat.server(), ServerId::PRIMARY);
    assert_eq!(cluster.seats("cad"), (1, vec![seat.handle().to_string()]));

    cluster.kill9(1);
    // #2 takes over; the seat's heartbeats go to it. Three leases: only they keep it.
    let seen = wait_event(
        &mut events,
        Duration::from_secs(15),
        |e| matches!(e, Event::FailedOver { to, .. } if *to == ServerId::SECONDARY),
    );
    std::thread::sleep(Duration::from_secs(12));
    assert!(!seat.is_lost(), "{seen:?}\n{}", cluster.logs());
    assert_eq!(cluster.seats("cad"), (1, vec![seat.handle().to_string()]));
    assert_eq!(events.try_next(), None, "nothing lost");

    seat.checkin().unwrap();
    assert_eq!(cluster.seats("cad").0, 0);
}

#[test]
fn denials_come_back_as_their_reasons_and_dropped_guards_give_seats_back() {
    let cluster = started();
    let client = client(&cluster);
    let seats: Vec<_> = (0..5).map(|_| client.checkout("cad").unwrap()).collect();
    let full = client.checkout("cad").unwrap_err();
    assert_eq!(full, Error::Denied(Denial::AllInUse { used: 5, count: 5 }));
    assert_eq!(full.name(), "all_in_use");
    let unknown = client.checkout("cam").unwrap_err();
    assert_eq!(unknown, Error::Denied(Denial::UnknownFeature));
    // A clone shares the engine; seats outlive the client handle that made them.
    let other = client.clone();
    drop(client);
    drop(seats);
    wait_used(&cluster, 0, Duration::from_secs(5));
    let again = other.checkout("cad").unwrap();
    assert_eq!(cluster.seats("cad").0, 1);
    drop(again);
    drop(other); // the last drop waits for the checkin to be heard
    assert_eq!(cluster.seats("cad").0, 0);
}

#[test]
fn a_seat_whose_lease_runs_out_unheard_is_reported_lost() {
    let mut cluster = started();
    let client = client(&cluster);
    let mut events = client.events();
    let seat = client.checkout("cad").unwrap();
    for id in 1..=3 {
        cluster.kill9(id);
    }
    let seen = wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, Event::Lost { .. })
    });
    assert_eq!(
        seen.last(),
        Some(&Event::Lost {
            handle: seat.handle(),
            feature: "cad".to_string()
        })
    );
    assert!(seat.is_lost());
    assert_eq!(seat.checkin(), Err(Error::Denied(Denial::UnknownHandle)));
}

#[test]
fn no_server_at_the_path_is_unreachable_and_options_say_what_is_missing() {
    let [port] = free_ports::<1>();
    let options = Options::new(&format!("{port}@127.0.0.1"))
        .unwrap()
        .insecure()
        .timing(hal_core::timing::Timing {
            election_timeout: Duration::from_millis(300),
            ..hal_core::timing::Timing::lan()
        });
    let client = Client::new(options).unwrap();
    match client.checkout("cad") {
        Err(Error::Unreachable(why)) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("{other:?}"),
    }

    let no_ca = Client::new(Options::new("27000@localhost").unwrap()).unwrap_err();
    assert!(no_ca.to_string().contains("no triad CA"), "{no_ca}");
    let bad_path = Options::new("27000@").unwrap_err();
    assert!(bad_path.to_string().contains("license path"), "{bad_path}");
    let missing_ca = Client::new(
        Options::new("27000@localhost")
            .unwrap()
            .ca("/nonexistent/ca.pem"),
    )
    .unwrap_err();
    assert!(
        missing_ca.to_string().contains("/nonexistent/ca.pem"),
        "{missing_ca}"
    );
}

#[test]
fn a_borrow_is_kept_in_the_store_and_returned_early() {
    let cluster = started();
    let client = client(&cluster);
    let store = BorrowStore::at(cluster.dir.path().join("home").join("borrows.json"));
    let record = client.borrow("cad", 2).unwrap();
    let hours = record
        .end()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(hours > Duration::from_secs(7100) && hours <= Duration::from_secs(7260));
    assert!(record.is_current(std::time::SystemTime::now()));
    assert_eq!(record.server, 1);
    store.add(record.clone()).unwrap();
    assert_eq!(
        store.find(record.handle().unwrap()).unwrap(),
        Some(record.clone())
    );
    assert_eq!(cluster.seats("cad").0, 1);

    // Another process (another client) returns it from the record.
    let later = self::client(&cluster);
    assert_eq!(later.return_borrow(&record).unwrap(), Returned::Returned);
    assert!(store.remove(record.handle().unwrap()).unwrap());
    assert_eq!(cluster.seats("cad").0, 0);
    // The same return again is the same request (one number): answered as before.
    assert_eq!(later.return_borrow(&record).unwrap(), Returned::Returned);
    // A later request for the seat finds it gone.
    let mut stale = record.clone();
    stale.next_seq += 1;
    assert_eq!(later.return_borrow(&stale).unwrap(), Returned::AlreadyEnded);
    assert_eq!(
        client.borrow("cad", 1000).unwrap_err(),
        Error::Denied(Denial::BorrowNotAllowed)
    );
}

#[test]
fn the_async_client_checks_out_and_in_on_tokio_where_blocking_calls_refuse() {
    let cluster = started();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let blocking = client(&cluster);
    runtime.block_on(async {
        let options = Options::new(&cluster.path()).unwrap().ca(cluster.ca());
        let client = AsyncClient::new(options).unwrap();
        let seat = client.checkout("cad").await.unwrap();
        let second = client.checkout("cad").await.unwrap();
        assert_ne!(seat.handle(), second.handle());
        assert_eq!(blocking.checkout("cad").unwrap_err(), Error::InAsyncContext);
        seat.checkin().await.unwrap();
        second.checkin().await.unwrap();
    });
    assert_eq!(cluster.seats("cad").0, 0);
    assert!(AsyncClient::new(Options::new("27000@localhost").unwrap().insecure()).is_err());
}

#[test]
fn two_writers_of_one_borrow_store_keep_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("borrows.json");
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let store = BorrowStore::at(&path);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let record = hal_net::client::BorrowRecord {
                        handle: format!("h{}", w * 100 + i),
                        feature: "cad".to_string(),
                        client: w,
                        next_seq: 2,
                        end_ms: 0,
                        license_path: "27000@a".to_string(),
                        server: 1,
                        proof: None,
                    };
                    store.add(record).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = BorrowStore::at(&path);
    assert_eq!(store.list().unwrap().len(), 50);
    std::fs::write(&path, "{ not json").unwrap();
    let broken = store.list().unwrap_err();
    assert!(
        broken.to_string().contains("not a borrow record file"),
        "{broken}"
    );
}

/// `hal-net borrowed` over the records in `home`.
fn borrowed_verb(home: &std::path::Path, ca: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(hal_net())
        .args(["borrowed", "cad", "--ca"])
        .arg(ca)
        .env("HAL_HOME", home)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_borrow_record_proves_itself_offline_and_an_edited_one_is_refused() {
    let mut cluster = started();
    let client = client(&cluster);
    let home = cluster.dir.path().join("home");
    let store = BorrowStore::at(home.join("borrows.json"));
    let record = client.borrow("cad", 2).unwrap();
    let proof = record.proof.clone().expect("a TLS triad signs its borrows");
    assert_eq!((proof.signer, proof.granted_by), (1, 1));
    assert_eq!(proof.host, hal_net::client::this_host());
    store.add(record.clone()).unwrap();
    drop(client);

    // Offline: every server gone, the record still proves the borrow.
    for id in 1..=3 {
        cluster.kill9(id);
    }
    let here = hal_net::client::this_host();
    let now = std::time::SystemTime::now();
    let ca = cluster.ca();
    let borrowed = store.borrowed("cad", &ca, &here, now).unwrap().unwrap();
    assert_eq!(borrowed.handle, record.handle().unwrap());
    assert_eq!(borrowed.end, record.end());
    assert_eq!(borrowed.signer, ServerId::new(1).unwrap());
    assert_eq!(store.borrowed("cae", &ca, &here, now).unwrap(), None);
    // Past its end it is no longer a current borrow.
    let after = record.end() + Duration::from_secs(1);
    assert_eq!(store.borrowed("cad", &ca, &here, after).unwrap(), None);
    let (ok, text) = borrowed_verb(&home, &ca);
    assert!(ok && text.contains("borrowed, valid until"), "{text}");

    // Another machine's copy of the record is refused.
    let elsewhere = store.borrowed("cad", &ca, "another-host", now).unwrap_err();
    assert!(
        elsewhere.to_string().contains("was borrowed on host"),
        "{elsewhere}"
    );

    // Another triad's CA does not vouch for it.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(hal_net())
        .args(["tls", "init", "--dir"])
        .arg(other.path())
        .args(["--servers", "6200@127.0.0.1,6201@127.0.0.1,6202@127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign = store
        .borrowed("cad", &other.path().join("ca.pem"), &here, now)
        .unwrap_err();
    assert!(foreign.to_string().contains("not the triad's"), "{foreign}");

    // Edited: a later end, in the file itself, as a user would do it.
    let file = home.join("borrows.json");
    let original = std::fs::read_to_string(&file).unwrap();
    let later_end = record.end_ms + 24 * 3_600_000;
    let edited = original.replace(
        &format!("\"end_ms\": {}", record.end_ms),
        &format!("\"end_ms\": {later_end}"),
    );
    assert_ne!(edited, original, "the record file holds end_ms");
    std::fs::write(&file, &edited).unwrap();
    let refused = store.borrowed("cad", &ca, &here, now).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("changed after the server signed it"),
        "{refused}"
    );
    let (ok, text) = borrowed_verb(&home, &ca);
    assert!(!ok && text.contains("NOT VALID"), "{text}");

    // Edited: the host, so that another machine could use it.
    let edited = original.replace(
        &format!("\"host\": \"{here}\""),
        "\"host\": \"another-host\"",
    );
    assert_ne!(edited, original, "the record file holds the host");
    std::fs::write(&file, &edited).unwrap();
    let refused = store.borrowed("cad", &ca, "another-host", now).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("changed after the server signed it"),
        "{refused}"
    );

    // The signature removed: unsigned records prove nothing.
    let mut unsigned = record.clone();
    unsigned.proof = None;
    let refused = unsigned.verify(&ca).unwrap_err();
    assert!(refused.to_string().contains("is unsigned"), "{refused}");
}
