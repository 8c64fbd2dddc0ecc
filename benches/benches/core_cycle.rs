//! A complete replicated checkout + checkin through three in-memory servers and their
//! clients, in cycles per second: one client, and 64 clients in flight. Also prints the
//! memory per held seat with one million seats held.
//!
//! Run with `cargo bench -p hal-benches --bench core_cycle`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hal_benches::cluster::Cluster;
use hal_core::ServerId;
use std::sync::Arc;

use hal_benches::cluster::catalog;
use hal_core::protocol::{ClientId, Handle, LogIndex, RequestSeq, Snapshot, Term};
use hal_core::seats::{Command, Seats};
use hal_core::server::{Config, Durable, Server};
use hal_core::time::{Now, Time, WallTime};
use hal_core::timing::Timing;

const BATCH: u64 = 10_000;

fn cycles(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_cycle");
    group.throughput(Throughput::Elements(BATCH));
    for clients in [1usize, 64] {
        let mut cluster = Cluster::new(clients, 1_000_000);
        cluster.start_all();
        group.bench_function(format!("{clients}_clients"), |b| {
            b.iter(|| black_box(&mut cluster).run_cycles(BATCH))
        });
    }
    group.finish();
}

/// The process's resident memory, from /proc (0 where there is no /proc).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    kib.unwrap_or(0) * 1024
}

const SEATS: u64 = 1_000_000;

/// A seat table holding a million seats, one per client.
fn million_seats() -> Seats {
    let mut seats = Seats::new();
    for i in 1..=SEATS {
        let command = Command::Grant {
            client: ClientId(i),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: format!("user{i:06}").into(),
            host: format!("host{i:06}").into(),
            borrow_end: None::<WallTime>,
            by: ServerId::PRIMARY,
            at: hal_core::time::WallTime(1_800_000_000_000),
        };
        seats.apply(LogIndex(i), &command, |_| Some(u32::MAX));
    }
    assert_eq!(seats.len() as u64, SEATS);
    assert!(seats.seat(Handle(SEATS)).is_some());
    seats
}

/// Resident bytes per seat with a million seats held: in the seat table every server
/// keeps, and on the active server, which also keeps each seat's lease deadline.
fn memory_per_seat() {
    let before = resident_bytes();
    let seats = million_seats();
    let table = resident_bytes().saturating_sub(before);
    let snapshot = Snapshot {
        last_index: LogIndex(SEATS),
        last_term: Term(1),
        seats,
    };
    let durable = Durable {
        term: Term(1),
        voted_for: None,
        snapshot: Some(Arc::new(snapshot)),
        entries: Vec::new(),
    };
    let now = Now {
        mono: Time(0),
        wall: WallTime(1_800_000_000_000),
    };
    let active = Server::new(
        Config::single(Timing::lan()),
        catalog(u32::MAX),
        durable,
        now,
    );
    assert!(active.is_leader());
    let leader = resident_bytes().saturating_sub(before);
    let per_seat = |bytes: u64| bytes as f64 / SEATS as f64;
    println!(
        "memory per held seat: {:.0} bytes in the seat table, {:.0} bytes on the active server \
         ({SEATS} seats, one client each; resident memory)",
        per_seat(table),
        per_seat(leader)
    );
    black_box(active);
}

fn memory(_: &mut Criterion) {
    memory_per_seat();
}

// Memory first, before the cycle benchmarks have grown the heap.
criterion_group!(benches, memory, cycles);
criterion_main!(benches);
