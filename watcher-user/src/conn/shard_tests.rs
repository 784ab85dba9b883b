//! A shard fed the events the kernel side sends for whole calls: a call arrives as consecutive chunks
//! (`chunk_offset`, `LAST_CHUNK` on the last), and whatever of a call was not copied (past
//! `--max-call-bytes`, unreadable memory, a full ring) must reach the session as a gap of its exact length.

use std::{collections::HashSet, sync::Arc};

use serde_json::Value;
use watcher_common::{direction, flags, kind, side, EventHeader, SocketAddrs};

use super::{Shard, ShardContext};
use crate::{
    clock::WallClock,
    conn::{ConnEvent, EventBatch},
    counters::Counters,
    ndjson::write::write_record,
    protocol::{detect::Decoding, redact::Redaction, ProtocolSet},
    record::filter::RecordFilter,
};

const FD: i32 = 7;

fn shard() -> Shard {
    Shard::new(ShardContext {
        decoding: Decoding {
            protocols: ProtocolSet::all(),
            keep_bytes: 1024,
        },
        filter: RecordFilter::default(),
        redaction: Arc::new(Redaction::default()),
        clock: WallClock::identity(),
        listeners: Arc::new(HashSet::new()),
        counters: Arc::new(Counters::default()),
    })
}

/// Builds the events of one client connection to port 6379.
#[derive(Default)]
struct Events {
    batch: EventBatch,
    pos: [u64; 2],
    tls_pos: [u64; 2],
    ts: u64,
}

impl Events {
    fn new() -> Self {
        let mut events = Self::default();
        let mut addrs = SocketAddrs {
            family: 2,
            local_port: 40000,
            remote_port: 6379,
            ..SocketAddrs::default()
        };
        addrs.local_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        addrs.remote_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        events.push(
            EventHeader {
                kind: kind::OPEN,
                side: side::CLIENT,
                ..header()
            },
            addrs,
            b"",
        );
        events
    }

    fn push(&mut self, header: EventHeader, addrs: SocketAddrs, payload: &[u8]) {
        self.batch.events.push(ConnEvent {
            header,
            addrs,
            cgroup_id: 0,
            payload_start: self.batch.payload.len(),
        });
        self.batch.payload.extend_from_slice(payload);
    }

    /// One call of `call` bytes in `dir`, of which the kernel sent the chunks `(offset, len)` and then,
    /// if the last of them does not reach the end, an empty last chunk where the copy stopped.
    fn call(&mut self, dir: u8, call: &[u8], chunks: &[(usize, usize)]) {
        self.ts += 1000;
        let stream_pos = self.pos[usize::from(dir)];
        self.pos[usize::from(dir)] += call.len() as u64;
        let copied = chunks.last().map_or(0, |(offset, len)| offset + len);
        for (i, &(offset, len)) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len() && copied == call.len();
            self.push(
                EventHeader {
                    kind: kind::DATA,
                    direction: dir,
                    flags: if last { flags::LAST_CHUNK } else { 0 },
                    ts_ns: self.ts,
                    call_bytes: call.len() as u64,
                    stream_pos,
                    chunk_offset: offset as u32,
                    chunk_len: len as u32,
                    ..header()
                },
                SocketAddrs::default(),
                &call[offset..offset + len],
            );
        }
        if copied < call.len() {
            self.push(
                EventHeader {
                    kind: kind::DATA,
                    direction: dir,
                    flags: flags::LAST_CHUNK,
                    ts_ns: self.ts,
                    call_bytes: call.len() as u64,
                    stream_pos,
                    chunk_offset: copied as u32,
                    chunk_len: 0,
                    ..header()
                },
                SocketAddrs::default(),
                b"",
            );
        }
    }

    /// One TLS library call moving the plaintext `call` in `dir`, whole, on its own stream.
    fn tls_call(&mut self, dir: u8, call: &[u8]) {
        self.ts += 1000;
        let stream_pos = self.tls_pos[usize::from(dir)];
        self.tls_pos[usize::from(dir)] += call.len() as u64;
        self.push(
            EventHeader {
                kind: kind::DATA,
                direction: dir,
                flags: flags::TLS | flags::LAST_CHUNK,
                ts_ns: self.ts,
                call_bytes: call.len() as u64,
                stream_pos,
                chunk_len: call.len() as u32,
                ..header()
            },
            SocketAddrs::default(),
            call,
        );
    }

    /// The records the shard makes of these events, as their JSON.
    fn records(self) -> Vec<Value> {
        self.records_and_counters().0
    }

    /// The records, and the counters the shard published.
    fn records_and_counters(self) -> (Vec<Value>, crate::counters::Totals) {
        let mut shard = shard();
        shard.process(&self.batch);
        let records = shard
            .take_records()
            .iter()
            .map(|record| {
                let mut line = Vec::new();
                write_record(record, &mut line);
                serde_json::from_slice(&line).expect("records are JSON")
            })
            .collect();
        (records, shard.ctx.counters.totals())
    }
}

fn header() -> EventHeader {
    EventHeader {
        tgid: 100,
        tid: 100,
        fd: FD,
        comm: *b"client\0\0\0\0\0\0\0\0\0\0",
        ..EventHeader::default()
    }
}

fn set(key: &str, value: &str) -> String {
    format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
        key.len(),
        value.len()
    )
}

fn summary(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} -> {} truncated={}",
                r["redis"]["command"],
                r["redis"]["args"][0],
                r["redis"]["reply"]["value"],
                r["truncated"]
            )
        })
        .collect()
}

#[test]
fn a_call_sent_in_several_chunks_is_one_stream() {
    let mut events = Events::new();
    let request = [set("a", "1"), set("b", "2"), set("c", "3")].concat();
    // Chunk boundaries inside frames, as 64 KiB chunks fall in a large call.
    events.call(
        direction::EGRESS,
        request.as_bytes(),
        &[(0, 10), (10, 31), (41, request.len() - 41)],
    );
    events.call(
        direction::INGRESS,
        b"+OK\r\n+OK\r\n+OK\r\n",
        &[(0, 7), (7, 8)],
    );
    assert_eq!(
        summary(&events.records()),
        [
            "\"SET\" \"a\" -> \"OK\" truncated=false",
            "\"SET\" \"b\" -> \"OK\" truncated=false",
            "\"SET\" \"c\" -> \"OK\" truncated=false",
        ]
    );
}

#[test]
fn the_uncopied_tail_of_a_call_is_a_gap_and_what_follows_still_pairs() {
    let mut events = Events::new();
    let value = "v".repeat(300);
    let request = [set("a", "1"), set("big", &value)].concat();
    // The copy stopped 100 bytes into the big value (a call longer than --max-call-bytes).
    let copied = set("a", "1").len() + 20 + 100;
    events.call(direction::EGRESS, request.as_bytes(), &[(0, copied)]);
    events.call(direction::INGRESS, b"+OK\r\n+OK\r\n", &[(0, 10)]);
    let get = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
    events.call(direction::EGRESS, get.as_bytes(), &[(0, get.len())]);
    events.call(direction::INGRESS, b"$1\r\n1\r\n", &[(0, 7)]);
    let records = events.records();
    assert_eq!(
        summary(&records),
        [
            "\"SET\" \"a\" -> \"OK\" truncated=false",
            "\"SET\" \"big\" -> \"OK\" truncated=true",
            "\"GET\" \"a\" -> \"1\" truncated=false",
        ]
    );
    assert_eq!(records[1]["redis"]["args"][1]["len"], 300, "true length");
}

#[test]
fn a_chunk_lost_from_the_middle_of_a_call_is_a_gap_of_its_length() {
    let mut events = Events::new();
    let value = "v".repeat(300);
    let request = [set("a", "1"), set("big", &value), set("c", "3")].concat();
    let big_start = set("a", "1").len();
    // The ring was full for the chunk holding the middle of the big value.
    events.call(
        direction::EGRESS,
        request.as_bytes(),
        &[
            (0, big_start + 50),
            (big_start + 250, request.len() - big_start - 250),
        ],
    );
    events.call(direction::INGRESS, b"+OK\r\n+OK\r\n+OK\r\n", &[(0, 15)]);
    assert_eq!(
        summary(&events.records()),
        [
            "\"SET\" \"a\" -> \"OK\" truncated=false",
            "\"SET\" \"big\" -> \"OK\" truncated=true",
            "\"SET\" \"c\" -> \"OK\" truncated=false",
        ]
    );
}

#[test]
fn tls_plaintext_replaces_the_ciphertext_of_its_connection() {
    let mut events = Events::new();
    // A handshake the probes did not see (a program that moves its ciphertext itself): TLS records,
    // never decoded.
    let hello = b"\x16\x03\x01\x00\x30client hello bytes........................";
    events.call(direction::EGRESS, hello, &[(0, hello.len())]);
    events.call(
        direction::INGRESS,
        b"\x16\x03\x03\x00\x10server hello....",
        &[(0, 21)],
    );
    // Then the library's plaintext, with positions of its own from 0.
    events.tls_call(direction::EGRESS, set("k", "v").as_bytes());
    // Ciphertext already on its way when the plaintext was first captured: ignored.
    events.call(
        direction::INGRESS,
        b"\x17\x03\x03\x00\x05+OK\r\n",
        &[(0, 10)],
    );
    events.tls_call(direction::INGRESS, b"+OK\r\n");
    let get = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    events.tls_call(direction::EGRESS, get.as_bytes());
    events.tls_call(direction::INGRESS, b"$1\r\nv\r\n");
    let (records, totals) = events.records_and_counters();
    assert_eq!(
        summary(&records),
        [
            "\"SET\" \"k\" -> \"OK\" truncated=false",
            "\"GET\" \"k\" -> \"v\" truncated=false",
        ]
    );
    assert!(records.iter().all(|r| r["tls"] == true), "{records:#?}");
    assert_eq!(totals.user.tls_connections, 1);
    // Its ciphertext was handshake records only: never counted as encrypted, since it was decrypted.
    assert_eq!(totals.user.encrypted_connections, 0);
    assert_eq!(totals.user.unrecognised_connections, 0);
    assert_eq!(totals.user.lost_sync, 0);
}

#[test]
fn plain_records_carry_no_tls_field() {
    let mut events = Events::new();
    let request = set("k", "v");
    events.call(direction::EGRESS, request.as_bytes(), &[(0, request.len())]);
    events.call(direction::INGRESS, b"+OK\r\n", &[(0, 5)]);
    let records = events.records();
    assert_eq!(records.len(), 1);
    assert!(records[0].get("tls").is_none());
}

#[test]
fn a_connection_names_the_cgroup_its_open_event_carries() {
    use std::os::unix::fs::MetadataExt;
    let Some(mount) = crate::cgroup::mount() else {
        eprintln!("SKIPPED: no cgroup v2 mount on this host");
        return;
    };
    let (id, path) = crate::cgroup::of_process(std::process::id()).expect("own cgroup");
    assert_eq!(
        std::fs::metadata(mount.join(path.trim_start_matches('/')))
            .unwrap()
            .ino(),
        id
    );
    let mut events = Events::new();
    events.batch.events[0].cgroup_id = id;
    let request = set("k", "v");
    events.call(direction::EGRESS, request.as_bytes(), &[(0, request.len())]);
    events.call(direction::INGRESS, b"+OK\r\n", &[(0, 5)]);
    let records = events.records();
    assert_eq!(records[0]["cgroup"]["id"], id);
    assert_eq!(records[0]["cgroup"]["path"], path.as_str());
}

#[test]
fn secrets_are_masked_before_the_record_is_made_and_only_their_records_are_marked() {
    let mut events = Events::new();
    let request = "*2\r\n$4\r\nAUTH\r\n$7\r\nhunter2\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    events.call(direction::EGRESS, request.as_bytes(), &[(0, request.len())]);
    events.call(direction::INGRESS, b"+OK\r\n$1\r\nv\r\n", &[(0, 12)]);
    let records = events.records();
    let marks: Vec<_> = records
        .iter()
        .map(|r| (r["redis"]["command"].clone(), r["redacted"].clone()))
        .collect();
    assert_eq!(
        marks,
        [
            (Value::from("AUTH"), Value::from(true)),
            (Value::from("GET"), Value::from(false)),
        ]
    );
    assert!(
        !records[0].to_string().contains("hunter2"),
        "{}",
        records[0]
    );
}

#[test]
fn records_go_to_the_store_writer_at_a_pace_and_a_burst_at_once() {
    let start = std::time::Instant::now();
    let handover = super::Handover { last: start };
    let after = |ms: u64| start + std::time::Duration::from_millis(ms);
    assert!(!handover.due(0, after(1000)), "nothing to hand over");
    assert!(!handover.due(500, after(10)), "the next busy drain waits");
    assert!(handover.due(500, after(20)), "the one after goes");
    assert!(
        handover.due(super::HANDOVER_RECORDS, after(1)),
        "a burst goes at once"
    );
    assert_eq!(handover.deadline(), start + super::HANDOVER_LATEST);
}

#[test]
fn a_running_shard_hands_over_what_waits_without_a_next_batch_and_all_when_its_input_closes() {
    use crate::handoff;
    let (input_tx, input) = handoff::bounded(4);
    let (output, records) = handoff::bounded(4);
    let (spare_batches, _spare_batches) = crossbeam_channel::bounded(4);
    let (_spare_records_tx, spare_records) = crossbeam_channel::bounded(4);
    let queues = super::Queues {
        input,
        output,
        spare_batches,
        spare_records,
    };
    let running = std::thread::spawn(move || shard().run(&queues));
    let exchange = |events: &mut Events, key: &str| {
        let request = set(key, "v");
        events.call(direction::EGRESS, request.as_bytes(), &[(0, request.len())]);
        events.call(direction::INGRESS, b"+OK\r\n", &[(0, 5)]);
    };
    let mut first = Events::new();
    exchange(&mut first, "a");
    let _ = input_tx.try_send(first.batch);
    // No batch follows: the record still goes, at the latest hand-over.
    let went = records.recv_timeout(std::time::Duration::from_secs(5));
    assert_eq!(went.map(|r| r.len()).ok(), Some(1));
    // Right after a hand-over a batch's records wait; closing the input sends them.
    let mut second = Events::new();
    exchange(&mut second, "b");
    let _ = input_tx.try_send(second.batch);
    drop(input_tx);
    running
        .join()
        .expect("the shard ends when its input closes");
    assert_eq!(records.try_iter().map(|r| r.len()).sum::<usize>(), 1);
}
