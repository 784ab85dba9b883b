//! Throughput of the user-space pipeline without the kernel: ring records through routing, RESP
//! parsing, pairing and the store, on one core; and NDJSON encoding of the records it produces.
//! Run with `cargo bench -p watcher-user --bench pipeline` (or as part of `cargo xtask bench`).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use watcher::ndjson::write as json;

const COMMANDS: u32 = 100_000;

fn parse_pair_store(c: &mut Criterion) {
    let records = common::ring_records(COMMANDS);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(u64::from(COMMANDS)));
    group.sample_size(20);
    let mut pipeline = common::Pipeline::new(100_000);
    group.bench_function("parse+pair+store redis commands", |b| {
        b.iter(|| pipeline.feed(&records));
    });
    let snapshot = pipeline.store.snapshot();
    let mut line = Vec::with_capacity(1024);
    let mut encoder = json::RecordEncoder::default();
    group.bench_function("ndjson encode records", |b| {
        b.iter(|| {
            for record in snapshot.iter().take(COMMANDS as usize) {
                line.clear();
                encoder.write(record, &mut line);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, parse_pair_store);
criterion_main!(benches);
