//! Throughput of the user-space pipeline without the kernel: ring records through routing, RESP
//! parsing, pairing and the store, on one core, with 3-byte and with 4 KiB values; NDJSON encoding of the
//! records it produces; telemetry's work per record (metrics, OTLP spans encoded); and what masking
//! secrets costs per exchange (`redact`).
//! Run with `cargo bench -p watcher-user --bench pipeline` (or as part of `cargo xtask bench`).

mod common;

use std::{
    alloc::{GlobalAlloc, Layout},
    sync::atomic::{AtomicU64, Ordering},
};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tikv_jemallocator::Jemalloc;
use watcher::{
    ndjson::write as json,
    protocol::{
        http::{Headers, HttpExchange, HttpRequest, HttpResponse},
        redact::Redaction,
        redis::{ExchangeKind, Frame, RedisExchange},
        Blob, Exchange,
    },
    store::Snapshot,
    telemetry,
};

const COMMANDS: u32 = 100_000;

/// The binary's allocator (jemalloc), counting allocations: each record's allocations are freed on
/// another thread in the live pipeline, where they cost more than here, so their number is worth
/// watching.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to jemalloc unchanged; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is jemalloc's.
        unsafe { Jemalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { Jemalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Prints the allocations (and reallocations) `work` makes per element of `count`.
fn report_allocations(what: &str, count: u32, work: impl FnOnce()) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    work();
    let made = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!(
        "allocations per record, {what}: {:.2}",
        made as f64 / f64::from(count)
    );
}

fn parse_pair_store(c: &mut Criterion) {
    let records = common::ring_records(COMMANDS);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(u64::from(COMMANDS)));
    group.sample_size(20);
    let mut pipeline = common::Pipeline::new(100_000);
    // Once over, so the store is full and evicting as it does live, then counted.
    pipeline.feed(&records);
    report_allocations("redis parse+pair+store", COMMANDS, || {
        pipeline.feed(&records);
    });
    group.bench_function("parse+pair+store redis commands", |b| {
        b.iter(|| pipeline.feed(&records));
    });
    let snapshot = pipeline.store.snapshot();
    bench_encode(&mut group, "ndjson encode records", &snapshot, COMMANDS);
    pipelined(&mut group);
    large_values(&mut group);
    http_pipeline(&mut group);
    bench_telemetry(&mut group, "records", &snapshot, COMMANDS);
    group.finish();
}

/// The HTTP counterpart of the Redis pipeline benches: what nginx serving a static page to wrk costs
/// watcher in-process per exchange, parsed, paired, stored and encoded.
fn http_pipeline(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let records = common::http_ring_records(HTTP_EXCHANGES);
    group.throughput(Throughput::Elements(u64::from(HTTP_EXCHANGES)));
    let mut pipeline = common::Pipeline::new(100_000);
    pipeline.feed(&records);
    report_allocations("http parse+pair+store", HTTP_EXCHANGES, || {
        pipeline.feed(&records);
    });
    group.bench_function("parse+pair+store http exchanges", |b| {
        b.iter(|| pipeline.feed(&records));
    });
    // `bench_encode` checks that every exchange became a record the store holds.
    let snapshot = pipeline.store.snapshot();
    bench_encode(
        group,
        "ndjson encode http records",
        &snapshot,
        HTTP_EXCHANGES,
    );
    bench_telemetry(group, "http records", &snapshot, HTTP_EXCHANGES);
    group.throughput(Throughput::Elements(u64::from(COMMANDS)));
}

/// What telemetry costs per record (`what`: the benches' names end with it): the metrics on the
/// follower thread, and spans written as OTLP protobuf in requests of 512 on the exporter thread.
fn bench_telemetry(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    what: &str,
    snapshot: &Snapshot,
    count: u32,
) {
    let records: Vec<_> = snapshot.iter().take(count as usize).cloned().collect();
    let (mut aggregator, _) = telemetry::metrics::Aggregator::new();
    group.bench_function(format!("metrics aggregate {what}"), |b| {
        b.iter(|| {
            for record in &records {
                aggregator.add(record);
            }
        });
    });
    let mut spans = telemetry::otlp::spans::TraceWriter::default();
    let mut request = Vec::with_capacity(1 << 20);
    group.bench_function(format!("otlp span+encode {what}"), |b| {
        b.iter(|| {
            let mut bytes = 0;
            for batch in records.chunks(512) {
                spans.request(batch, "host", &mut request);
                bytes += request.len();
            }
            bytes
        });
    });
}

/// The Redis pipeline bench with the traffic of `redis-benchmark -P 16`: sixteen commands a read, and
/// their replies a write, so a session decodes many frames from one chunk before it pairs them.
fn pipelined(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    const DEPTH: u32 = 16;
    let records = common::ring_records_pipelined(COMMANDS, DEPTH);
    let mut pipeline = common::Pipeline::new(100_000);
    pipeline.feed(&records);
    report_allocations("redis parse+pair+store, 16 a call", COMMANDS, || {
        pipeline.feed(&records);
    });
    assert_eq!(
        pipeline.store.snapshot().total,
        u64::from(2 * COMMANDS),
        "every pipelined command became a record"
    );
    group.bench_function("parse+pair+store redis commands, 16 a call", |b| {
        b.iter(|| pipeline.feed(&records));
    });
}

/// The Redis pipeline benches with the 4 KiB values of the capacity bench's `-d 4096` row: copying
/// the values into records and escaping them into JSON is most of what such traffic costs.
fn large_values(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    const LARGE: u32 = 10_000;
    let records = common::ring_records_with_value(LARGE, &common::benchmark_value(4096));
    group.throughput(Throughput::Elements(u64::from(LARGE)));
    let mut pipeline = common::Pipeline::new(LARGE as usize);
    pipeline.feed(&records);
    group.bench_function("parse+pair+store redis commands, 4 KiB values", |b| {
        b.iter(|| pipeline.feed(&records));
    });
    let snapshot = pipeline.store.snapshot();
    let mut line = Vec::with_capacity(16 * 1024);
    let mut encoder = json::RecordEncoder::default();
    let whole = snapshot
        .iter()
        .take(LARGE as usize)
        .filter(|record| {
            line.clear();
            encoder.write(record, &mut line);
            line.len() > 4096
        })
        .count();
    assert_eq!(whole, LARGE as usize, "every record holds its 4 KiB value");
    bench_encode(
        group,
        "ndjson encode records, 4 KiB values",
        &snapshot,
        LARGE,
    );
    group.throughput(Throughput::Elements(u64::from(COMMANDS)));
}

/// Benches NDJSON encoding of the first `count` records of `snapshot`, into one line buffer reused
/// from record to record as the follower reuses its own.
fn bench_encode(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    snapshot: &Snapshot,
    count: u32,
) {
    assert_eq!(
        snapshot.iter().take(count as usize).count(),
        count as usize,
        "every request fed became a record, and the store holds every one the bench encodes"
    );
    let mut line = Vec::with_capacity(16 * 1024);
    let mut encoder = json::RecordEncoder::default();
    group.bench_function(name, |b| {
        b.iter(|| {
            for record in snapshot.iter().take(count as usize) {
                line.clear();
                encoder.write(record, &mut line);
            }
        });
    });
}

/// HTTP exchanges per iteration of the HTTP pipeline benches.
const HTTP_EXCHANGES: u32 = 20_000;

/// A browser-like API call: 9 request and 8 response headers, a bearer token, a JSON response.
fn typical_http() -> Exchange {
    let headers = |fields: &[(&str, &str)]| -> Headers {
        fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    };
    Exchange::Http(Box::new(HttpExchange {
        request: HttpRequest {
            method: "GET".into(),
            target: "/api/v1/orders?customer=1234&page=2".into(),
            version: 1,
            headers: headers(&[
                ("Host", "shop.example.com"),
                (
                    "User-Agent",
                    "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
                ),
                ("Accept", "application/json"),
                ("Accept-Encoding", "gzip, deflate, br"),
                ("Accept-Language", "en-US,en;q=0.5"),
                ("Connection", "keep-alive"),
                (
                    "Authorization",
                    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc",
                ),
                ("Referer", "https://shop.example.com/orders"),
                ("X-Request-Id", "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"),
            ]),
            body: Blob::default(),
            trailers: Headers::default(),
        },
        response: Some(HttpResponse {
            version: 1,
            status: 200,
            reason: "OK".into(),
            headers: headers(&[
                ("Server", "nginx/1.26.0"),
                ("Date", "Mon, 30 Nov 2026 12:00:00 GMT"),
                ("Content-Type", "application/json"),
                ("Content-Length", "212"),
                ("Connection", "keep-alive"),
                ("Cache-Control", "no-store"),
                ("ETag", "\"5f1c-2d3e\""),
                ("Vary", "Accept-Encoding"),
            ]),
            body: Blob::full(
                r#"{"orders":[{"id":1,"status":"shipped","total":12.5,"items":3},{"id":2,"status":"open","total":99.0,"items":1}],"page":2,"next":"/api/v1/orders?customer=1234&page=3","count":2}"#,
            ),
            trailers: Headers::default(),
        }),
    }))
}

fn redact(c: &mut Criterion) {
    let mut group = c.benchmark_group("redact");
    let policy = Redaction::default();
    let set = Exchange::Redis(RedisExchange {
        kind: ExchangeKind::Command,
        command: "SET".into(),
        args: vec![Blob::full("key:000000001234"), Blob::full("xxx")].into(),
        reply: Some(Frame::Simple(Blob::full("OK"))),
    });
    // With `--show-secrets` nothing is examined: what remains is dropping the exchange, which the
    // masked runs pay too, so the difference is the cost of masking.
    let off = Redaction::off();
    for (name, exchange) in [("redis SET", set), ("http API call", typical_http())] {
        for (setting, policy) in [("masked", &policy), ("show-secrets", &off)] {
            group.bench_function(format!("{name}, {setting}"), |b| {
                b.iter_batched(
                    || exchange.clone(),
                    |mut x| x.redact(policy),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parse_pair_store, redact);
criterion_main!(benches);
