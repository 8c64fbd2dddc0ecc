//! The journal of three real `hal-net serve` processes through a `kill -9` of the active
//! server and its restart: every server journals its start (and a clean stop), its role
//! changes, its peer links going down and up, its estimates of the peers' clocks, the
//! requests it answered with who asked, and the seat changes it applied, each with its
//! log index, the same on every server.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use hal_core::record::{OpName, Record, ResultName, RoleName, SeatChangeName};
use hal_net::journal::read::{ServerJournal, read};
use support::cluster::{Cluster, Holder, kill_and_failback};

const TIMING: &str = "failback_hold = \"2s\"";

fn journals(cluster: &Cluster) -> Vec<ServerJournal> {
    let dirs: Vec<_> = (1..=3).map(|id| cluster.data(id).join("journal")).collect();
    read(&dirs).unwrap_or_else(|e| panic!("reading the journals: {e}"))
}

fn records(journal: &ServerJournal) -> impl Iterator<Item = &Record> {
    journal.entries.iter().map(|l| &l.entry.record)
}

#[test]
fn every_server_journals_what_it_sees_through_a_kill_and_restart() {
    let mut cluster = Cluster::new(TIMING);
    for holder in kill_and_failback(&mut cluster) {
        holder.release();
    }
    for id in 1..=3 {
        cluster.stop(id);
    }

    let journals = journals(&cluster);
    assert_eq!(
        journals.iter().map(|j| j.server).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for journal in &journals {
        let server = journal.server;
        assert_eq!(journal.meta.server, Some(server));
        assert_eq!(journal.meta.features["cad"].count, 5);
        let starts = records(journal)
            .filter(|r| matches!(r, Record::Start(_)))
            .count();
        let stops: Vec<&str> = records(journal)
            .filter_map(|r| match r {
                Record::Stop(stop) => Some(stop.reason.as_str()),
                _ => None,
            })
            .collect();
        // #1 started twice and was killed once (no stop record for the kill).
        let (want_starts, want_stops) = if server == 1 { (2, 1) } else { (1, 1) };
        assert_eq!(starts, want_starts, "#{server} starts");
        assert_eq!(stops, vec!["shutdown"; want_stops], "#{server} stops");
        // Every record has both clocks.
        for located in &journal.entries {
            assert!(located.entry.mono_ms.is_some(), "{located:?}");
            let t = located.entry.record.t_ms().unwrap();
            assert!(t > 1_700_000_000_000, "wall ms: {located:?}");
        }
        let clocks: Vec<(u8, i64)> = records(journal)
            .filter_map(|r| match r {
                Record::PeerClock(c) => Some((c.peer, c.offset_ms)),
                _ => None,
            })
            .collect();
        assert!(!clocks.is_empty(), "#{server} journaled no peer clock");
        for (peer, offset) in clocks {
            assert_ne!(peer, server);
            assert!(offset.abs() < 1_000, "one machine, one clock: {offset} ms");
        }
    }
    let [one, two, three] = &journals[..] else {
        unreachable!()
    };
    // #1 became active (twice: at the start and after the failback), #2 in between.
    let actives = |j: &ServerJournal| {
        records(j)
            .filter(|r| matches!(r, Record::Role(role) if role.role == RoleName::Active))
            .count()
    };
    assert!(actives(one) >= 2, "#1 active twice");
    assert!(actives(two) >= 1, "#2 took over");
    assert_eq!(actives(three), 0, "#3 never serves");
    // #2 and #3 saw their link to #1 go down, and come back.
    for journal in [two, three] {
        let links: Vec<bool> = records(journal)
            .filter_map(|r| match r {
                Record::Link(link) if link.peer == 1 => Some(link.up),
                _ => None,
            })
            .collect();
        assert!(
            links.windows(3).any(|w| w == [true, false, true]),
            "#{} link to #1: {links:?}",
            journal.server
        );
    }
    // The answers: three grants with user and host, three checkins.
    let served: Vec<_> = journals
        .iter()
        .flat_map(records)
        .filter_map(|r| match r {
            Record::Served(s) if s.op != OpName::Heartbeat => Some(s),
            _ => None,
        })
        .collect();
    let granted: Vec<_> = served
        .iter()
        .filter(|s| s.result == ResultName::Granted)
        .collect();
    assert!(granted.len() >= 3, "{served:#?}");
    for grant in &granted {
        assert_eq!(grant.op, OpName::Checkout);
        assert_eq!(grant.feature.as_deref(), Some("cad"));
        assert!(grant.user.is_some() && grant.host.is_some(), "{grant:?}");
    }
    assert!(
        granted
            .iter()
            .any(|g| g.server == 2 && g.granted_by == Some(2))
    );
    // The seat changes: the same change at the same index on every server that applied
    // it; three grants and three releases in all.
    let mut by_index: BTreeMap<u64, (SeatChangeName, String)> = BTreeMap::new();
    for journal in &journals {
        for record in records(journal) {
            if let Record::Seat(seat) = record {
                let change = (seat.change, seat.handle.clone());
                let known = by_index.entry(seat.index).or_insert_with(|| change.clone());
                assert_eq!(*known, change, "index {} differs", seat.index);
            }
        }
    }
    let count = |name| by_index.values().filter(|(c, _)| *c == name).count();
    assert_eq!(count(SeatChangeName::Granted), 3, "{by_index:?}");
    assert_eq!(count(SeatChangeName::Released), 3, "{by_index:?}");
}

#[test]
fn a_journal_that_is_off_writes_nothing_and_serving_goes_on() {
    let mut cluster = Cluster::new(TIMING);
    for id in 1..=3 {
        let config = cluster.config(id);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}\n[journal]\nenabled = false\n")).unwrap();
    }
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    Holder::start(&cluster, "cad").release();
    for id in 1..=3 {
        cluster.stop(id);
        assert!(!cluster.data(id).join("journal").exists());
    }
}
