//! License file throughput: parsing, and verifying every feature's signature, in features
//! per second. Run with `cargo bench -p hal-benches --bench license`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hal_benches::{license_text, signed_license, vendor_key};
use hal_core::license::parse;

const FEATURES: usize = 1000;

fn parsing(c: &mut Criterion) {
    let text = license_text(FEATURES);
    let mut group = c.benchmark_group("license");
    group.throughput(Throughput::Elements(FEATURES as u64));
    group.bench_function("parse_1000_features", |b| {
        b.iter(|| parse("bench.lic", black_box(text.as_bytes())))
    });
    let license = signed_license(FEATURES);
    let public = vendor_key().verifying_key();
    group.bench_function("verify_1000_features", |b| {
        b.iter(|| black_box(&license).verify(&public))
    });
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
