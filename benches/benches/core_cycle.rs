//! A complete replicated checkout + checkin through three in-memory servers and their
//! clients, in cycles per second: one client, and 64 clients in flight. Also prints the
//! memory per held seat with one million seats held.
//!
//! Run with `cargo bench -p hal-benches --bench core_cycle`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hal_benches::cluster::Cluster;
use hal_core::ServerId;
use hal_core::protocol::{ClientId, Handle, LogIndex, RequestSeq};
use hal_core::seats::{Command, Seats};
use hal_core::time::WallTime;

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

/// Resident bytes per seat of a seat table holding one million seats, one per client, as a
/// follower holds it.
fn memory_per_seat() {
    const SEATS: u64 = 1_000_000;
    let before = resident_bytes();
    let mut seats = Seats::new();
    for i in 1..=SEATS {
        let command = Command::Grant {
            client: ClientId(i),
            seq: RequestSeq(1),
            feature: "cad".to_string(),
            user: format!("user{i:06}"),
            host: format!("host{i:06}"),
            borrow_end: None::<WallTime>,
            by: ServerId::PRIMARY,
        };
        seats.apply(LogIndex(i), &command, |_| Some(u32::MAX));
    }
    let live = resident_bytes().saturating_sub(before);
    assert_eq!(seats.len() as u64, SEATS);
    assert!(seats.seat(Handle(SEATS)).is_some());
    let per_seat = live as f64 / SEATS as f64;
    println!(
        "memory per held seat: {per_seat:.0} bytes ({SEATS} seats, one client each, seat table and client sessions)"
    );
    black_box(seats);
}

fn memory(_: &mut Criterion) {
    memory_per_seat();
}

// Memory first, before the cycle benchmarks have grown the heap.
criterion_group!(benches, memory, cycles);
criterion_main!(benches);
