//! What the journal costs per record: a busy server's two frequent records (`served`,
//! `seat`) written as JSON lines from the facts a node holds, and the whole path through
//! a [`FileJournal`] (the node's append to the buffer, the writer thread, the file).
//!
//! Run with `cargo bench -p hal-benches --bench journal`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hal_core::ServerId;
use hal_core::protocol::{ClientId, Handle, Op, ReplyResult, RequestSeq, ServerReply};
use hal_core::record::{FeatureMeta, Meta};
use hal_core::server::SeatChange;
use hal_core::time::{Now, Time, WallTime};
use hal_core::timing::Timing;
use hal_net::journal::{Answered, FileJournal, Item, JournalLimits, SeatApplied, write_line};

fn server(id: u8) -> ServerId {
    ServerId::new(id).expect("a server id")
}

fn now(i: u64) -> Now {
    Now {
        mono: Time(1_000 + i),
        wall: WallTime(1_796_620_051_215 + i),
    }
}

/// What #1 holds when it answers a checkout with a grant, and applies it.
struct Cycle {
    reply: ServerReply,
    op: Op,
    change: SeatChange,
}

fn cycle(i: u64) -> Cycle {
    let feature: Arc<str> = "bench".into();
    let user: Arc<str> = "user-17".into();
    let host: Arc<str> = "host-17.example.com".into();
    Cycle {
        reply: ServerReply {
            client: ClientId(0x0021_4500_3701 + i),
            seq: RequestSeq(62),
            from: server(1),
            result: ReplyResult::Granted {
                handle: Handle(982 + i),
                lease_ms: 120_000,
                borrow_end: None,
                granted_by: server(1),
            },
        },
        op: Op::Checkout {
            feature: feature.clone(),
            user: user.clone(),
            host: host.clone(),
        },
        change: SeatChange::Granted {
            client: ClientId(0x0021_4500_3701 + i),
            seq: RequestSeq(62),
            handle: Handle(982 + i),
            feature,
            user,
            host,
            borrow_end: None,
            by: server(1),
        },
    }
}

impl Cycle {
    fn served(&self) -> Item<'_> {
        Item::Served(Answered {
            server: server(1),
            reply: &self.reply,
            op: Some(&self.op),
            waited_ms: Some(1),
            received: Some(996),
        })
    }

    fn seat(&self) -> Item<'_> {
        Item::Seat(SeatApplied {
            server: server(1),
            index: 998,
            change: &self.change,
        })
    }
}

fn lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_line");
    group.throughput(Throughput::Elements(1));
    let mut line = Vec::with_capacity(4096);
    let cycle = cycle(0);
    for (name, item) in [("served", cycle.served()), ("seat", cycle.seat())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                line.clear();
                write_line(&mut line, black_box(&item), now(0)).expect("a record serialises");
                black_box(line.len())
            })
        });
    }
    group.finish();
}

fn meta() -> Meta {
    let features = [(
        "bench".to_string(),
        FeatureMeta {
            count: 1_000,
            hal: true,
        },
    )]
    .into();
    Meta {
        server: Some(1),
        ..Meta::new(&Timing::lan(), features)
    }
}

/// A busy server's journal end to end: served and seat records appended as the node
/// does, and taken to a file by the writer thread; each iteration's time runs until the
/// writer has written all of it. The records go in chunks the buffer holds, so none is
/// dropped (the bench fails if one is).
fn file_journal(c: &mut Criterion) {
    const CHUNK: u64 = 10_000;
    let mut group = c.benchmark_group("journal_file");
    group.throughput(Throughput::Elements(2 * CHUNK));
    group.sample_size(20);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let journal =
        FileJournal::open(dir.path(), meta(), JournalLimits::default()).expect("a journal");
    let sink = journal.sink();
    let stats = journal.stats();
    let cycles: Vec<Cycle> = (0..CHUNK).map(cycle).collect();
    group.bench_function("served_and_seat", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let target = stats.written.load(Ordering::Relaxed) + 2 * CHUNK;
                for (i, cycle) in cycles.iter().enumerate() {
                    sink.write(&cycle.served(), now(i as u64));
                    sink.write(&cycle.seat(), now(i as u64));
                }
                while stats.written.load(Ordering::Relaxed) < target {
                    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0, "records dropped");
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            start.elapsed()
        })
    });
    group.finish();
    journal.close();
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0, "records dropped");
}

criterion_group!(benches, lines, file_journal);
criterion_main!(benches);
