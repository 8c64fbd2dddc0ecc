//! The simulator's speed: the standard world of the hal-sim issue (3 servers, 20
//! clients, LAN timing, 30 simulated seconds with faults drawn from the seed, every
//! effect proof and checker on), one seed per iteration. The throughput is in simulated
//! milliseconds, so criterion's "elem/s" divided by 1,000 is simulated seconds per wall
//! second (one core; `hal-sim sweep` runs one world per core).
//!
//! Run with `cargo bench -p hal-benches --bench sim`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hal_sim::world::{WorldConfig, run};

fn standard_world(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    let config = WorldConfig::lan(0, 20);
    let simulated = (config.chaos + config.calm).as_millis() as u64;
    group.throughput(Throughput::Elements(simulated));
    let mut seed = 0;
    group.bench_function("standard_world_20_clients", |b| {
        b.iter(|| {
            // A different seed each time, as a sweep runs them.
            seed += 1;
            let outcome = run(&WorldConfig::lan(seed, 20));
            assert!(
                matches!(&outcome, Ok(r) if r.violation.is_none()),
                "seed {seed}: {outcome:?}"
            );
        })
    });
    group.finish();
}

criterion_group!(benches, standard_world);
criterion_main!(benches);
