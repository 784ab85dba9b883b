//! Recorded-style capture traffic for the in-process benchmarks: what the kernel side would put in the
//! ring for a redis-server answering `redis-benchmark -t set,get`, or nginx answering wrk, on 50
//! connections; and the user-space pipeline on one thread to feed it through.

use std::{collections::HashSet, sync::Arc};

use crossbeam_channel::bounded;
use watcher::{
    capture::{
        event::{decode, encode_data, RawEvent},
        EventSink as _,
    },
    clock::WallClock,
    conn::{
        router::Router,
        shard::{Shard, ShardContext},
        EventBatch,
    },
    counters::Counters,
    protocol::{detect::Decoding, redact::Redaction, ProtocolSet},
    record::filter::RecordFilter,
    store::{self, StoreReader, StoreWriter},
};
use watcher_common::{direction, kind, side, EventHeader};

/// Connections the traffic is spread over.
pub const CONNECTIONS: u32 = 50;

/// Ring records for `commands` commands (alternating SET and GET) with their replies, interleaved over
/// the connections the way a server's event loop reads and writes them.
pub fn ring_records(commands: u32) -> Vec<Vec<u8>> {
    ring_records_with_value(commands, "xxx")
}

/// A value of `len` bytes as `redis-benchmark -d` makes them: pseudo-random characters from `0` to
/// `o`, so about one byte in 64 is a backslash that JSON must escape.
// Only the pipeline bench stores large values; each bench compiles this module on its own.
#[allow(dead_code)]
pub fn benchmark_value(len: usize) -> String {
    let mut state: u32 = 1;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'0' + (state >> 16) as u8 % 64)
        })
        .collect()
}

/// [`ring_records`] with `value` set and got.
pub fn ring_records_with_value(commands: u32, value: &str) -> Vec<Vec<u8>> {
    exchanges(commands, *b"redis-server\0\0\0\0", |i| {
        redis_exchange(i, value)
    })
}

/// [`ring_records`] as `redis-benchmark -P depth` sends them: `depth` commands in each read, their
/// replies in each write.
// Only the pipeline bench sends pipelines; each bench compiles this module on its own.
#[allow(dead_code)]
pub fn ring_records_pipelined(commands: u32, depth: u32) -> Vec<Vec<u8>> {
    exchanges(commands / depth, *b"redis-server\0\0\0\0", |i| {
        (0..depth)
            .map(|k| redis_exchange(i * depth + k, "xxx"))
            .fold(
                (String::new(), String::new()),
                |(requests, replies), (request, reply)| (requests + &request, replies + &reply),
            )
    })
}

/// Command `i` (a SET when even, a GET when odd) of `value`, and its reply.
fn redis_exchange(i: u32, value: &str) -> (String, String) {
    let key = format!("key:{:012}", i % 100_000);
    if i.is_multiple_of(2) {
        (
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            ),
            "+OK\r\n".to_owned(),
        )
    } else {
        (
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()),
            format!("${}\r\n{value}\r\n", value.len()),
        )
    }
}

/// Ring records for `requests` HTTP/1.1 keep-alive exchanges as nginx serves `cargo xtask bench`'s
/// page to wrk: a bare GET, and a response of nine headers and a 630-byte HTML body.
// Only the pipeline bench feeds HTTP; each bench compiles this module on its own.
#[allow(dead_code)]
pub fn http_ring_records(requests: u32) -> Vec<Vec<u8>> {
    let body = "<p>watcher bench</p>\n".repeat(30);
    exchanges(requests, *b"nginx\0\0\0\0\0\0\0\0\0\0\0", |i| {
        (
            "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:16391\r\n\r\n".to_owned(),
            format!(
                "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 06:{:02}:{:02} GMT\r\n\
                 Content-Type: text/html\r\nContent-Length: {}\r\n\
                 Last-Modified: Tue, 01 Dec 2026 05:00:00 GMT\r\nConnection: keep-alive\r\n\
                 ETag: \"692d2a50-276\"\r\nAccept-Ranges: bytes\r\n\r\n{body}",
                i / 60 % 60,
                i % 60,
                body.len()
            ),
        )
    })
}

/// Ring records for `count` request/response pairs made by `exchange(i)`, server side, spread over
/// [`CONNECTIONS`] connections of one process named `comm`.
fn exchanges(
    count: u32,
    comm: [u8; 16],
    exchange: impl Fn(u32) -> (String, String),
) -> Vec<Vec<u8>> {
    let mut pos = vec![[0u64; 2]; CONNECTIONS as usize];
    let mut out = Vec::with_capacity(count as usize * 2);
    for i in 0..count {
        let conn = i % CONNECTIONS;
        let (request, reply) = exchange(i);
        let ts = u64::from(i) * 10_000;
        for (dir, bytes) in [(direction::INGRESS, request), (direction::EGRESS, reply)] {
            let stream = &mut pos[conn as usize][usize::from(dir)];
            let header = EventHeader {
                kind: kind::DATA,
                direction: dir,
                side: side::SERVER,
                flags: watcher_common::flags::LAST_CHUNK,
                tgid: 4242,
                tid: 4242,
                fd: 10 + conn as i32,
                ts_ns: ts,
                call_bytes: bytes.len() as u64,
                stream_pos: *stream,
                chunk_offset: 0,
                chunk_len: bytes.len() as u32,
                comm,
            };
            *stream += bytes.len() as u64;
            let mut record = Vec::new();
            encode_data(&header, bytes.as_bytes(), &mut record);
            out.push(record);
        }
    }
    out
}

/// The user-space pipeline on one thread: router, one shard and the store, event batches going round
/// from the router to the shard and back as they do live.
pub struct Pipeline {
    router: Router,
    batches: watcher::handoff::Receiver<EventBatch>,
    /// Emptied batches handed back to the router, as the shard threads do.
    spare: crossbeam_channel::Sender<EventBatch>,
    shard: Shard,
    writer: StoreWriter,
    /// Where records end up.
    pub store: StoreReader,
}

impl Pipeline {
    /// A pipeline whose store keeps at least `max_records` once that many have passed: the store
    /// keeps whole chunks and room for the open one, so it is given a chunk more (without it, a
    /// store of 10 000 held 9 984 whenever the records fed so far ended on a chunk's edge).
    pub fn new(max_records: usize) -> Self {
        let counters = Arc::new(Counters::default());
        let (tx, batches) = watcher::handoff::bounded(1 << 16);
        let (spare_tx, spare) = bounded(64);
        let ctx = ShardContext {
            decoding: Decoding {
                protocols: ProtocolSet::all(),
                keep_bytes: 16 * 1024,
            },
            filter: RecordFilter::default(),
            redaction: Arc::new(Redaction::default()),
            clock: WallClock::identity(),
            listeners: Arc::new(HashSet::new()),
            counters: Arc::clone(&counters),
        };
        let (writer, store) = store::new(max_records + store::CHUNK);
        Self {
            router: Router::new(vec![tx], spare, counters, None),
            batches,
            spare: spare_tx,
            shard: Shard::new(ctx),
            writer,
            store,
        }
    }

    /// Feeds ring records through decoding, routing, parse, pair and store, publishing one snapshot at
    /// the end. The connections are closed after the records, so feeding the same records again decodes
    /// them again: a shard skips bytes at stream positions it has already seen.
    pub fn feed(&mut self, records: &[Vec<u8>]) {
        for record in records {
            self.router
                .event(decode(record).expect("the bench encodes valid events"));
        }
        for conn in 0..CONNECTIONS {
            self.router.event(RawEvent::Close {
                header: EventHeader {
                    kind: kind::CLOSE,
                    tgid: 4242,
                    tid: 4242,
                    fd: 10 + conn as i32,
                    ..EventHeader::default()
                },
            });
        }
        self.router.flush();
        for mut batch in self.batches.try_iter() {
            self.shard.process(&batch);
            batch.clear();
            let _ = self.spare.try_send(batch);
            for record in self.shard.take_records() {
                self.writer.insert_shared(record);
            }
        }
        self.writer.publish();
    }
}
