//! Tests of the record store: id assignment, publication, capacity eviction in whole chunks, what is
//! kept for a lagging follower, snapshot lookups, and snapshot consistency while the one writer
//! inserts and several readers load.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
};

use super::*;
use crate::{
    protocol::{
        redis::{ExchangeKind, RedisExchange},
        Exchange,
    },
    record::{Endpoint, Side},
};

/// A record marked with `n` (its start time), so tests can check that id `n` holds record `n`.
pub(super) fn record(n: u64) -> Record {
    Record {
        id: 0,
        endpoint: Arc::new(Endpoint::new(
            1,
            "redis-cli",
            SocketAddr::from(([127, 0, 0, 1], 50_000)),
            SocketAddr::from(([127, 0, 0, 1], 6379)),
            Side::Client,
        )),
        start_unix_ns: n,
        end_unix_ns: Some(n + 1),
        request_bytes: 10,
        response_bytes: 5,
        truncated: false,
        redacted: false,
        exchange: Exchange::Redis(RedisExchange {
            kind: ExchangeKind::Command,
            command: "PING".into(),
            args: crate::protocol::redis::exchange::Args::new(),
            reply: None,
        }),
    }
}

/// Inserts records `from..=to` (marked with their expected ids).
fn insert_range(store: &mut StoreWriter, from: u64, to: u64) {
    for n in from..=to {
        store.insert(record(n));
    }
}

fn ids(snap: &Snapshot) -> Vec<u64> {
    snap.iter().map(|r| r.id).collect()
}

/// What must hold of every snapshot: ids run without holes from `first_id` to `total`, the length
/// agrees with iteration, and each record is the one inserted under its id.
fn assert_consistent(snap: &Snapshot, capacity: usize) {
    let first = snap.first_id();
    let mut count = 0;
    for (i, r) in snap.iter().enumerate() {
        assert_eq!(r.id, first + i as u64, "ids are consecutive");
        assert_eq!(r.start_unix_ns, r.id, "id {} holds its own record", r.id);
        count += 1;
    }
    assert_eq!(count, snap.len());
    assert_eq!(snap.is_empty(), count == 0);
    assert!(snap.len() <= capacity, "{} > {capacity}", snap.len());
    match snap.iter().next_back() {
        Some(last) => assert_eq!(last.id, snap.total),
        None => assert_eq!(first, snap.total + 1),
    }
}

#[test]
fn empty_store_publishes_an_empty_snapshot() {
    let (mut store, reader) = new(1000);
    let snap = reader.snapshot();
    assert_eq!((snap.total, snap.len(), snap.first_id()), (0, 0, 1));
    assert!(snap.is_empty());
    assert!(snap.get(0).is_none());
    assert!(snap.by_id(0).is_none());
    assert!(snap.by_id(1).is_none());
    assert_eq!(snap.after(0).count(), 0);
    store.publish();
    assert_eq!(reader.snapshot().total, 0);
}

#[test]
fn ids_are_assigned_from_one_in_insert_order() {
    let (mut store, reader) = new(1000);
    insert_range(&mut store, 1, 5);
    store.publish();
    let snap = reader.snapshot();
    assert_eq!(ids(&snap), [1, 2, 3, 4, 5]);
    assert_eq!(snap.total, 5);
    assert_eq!(snap.first_id(), 1);
    assert_consistent(&snap, 1000);
}

#[test]
fn a_boxed_record_is_stored_as_it_is_and_a_shared_one_is_never_changed() {
    let (mut store, reader) = new(1000);
    let boxed = Arc::new(record(1));
    let address = Arc::as_ptr(&boxed);
    store.insert_shared(boxed);
    // Someone else holds this one: the store must copy it rather than change the id under them.
    let shared = Arc::new(record(2));
    let held = Arc::clone(&shared);
    store.insert_shared(shared);
    store.publish();
    let snap = reader.snapshot();
    assert_eq!(ids(&snap), [1, 2]);
    assert!(
        std::ptr::eq(Arc::as_ptr(snap.get(0).expect("first")), address),
        "an unshared record is stored without a copy"
    );
    assert_eq!(held.id, 0, "the other holder's record keeps its id");
    assert_eq!(snap.get(1).expect("second").start_unix_ns, 2);
}

#[test]
fn a_batch_is_inserted_in_order_and_left_empty_for_reuse() {
    let (mut store, reader) = new(1000);
    // Longer than the prefetch distance, and not a multiple of it.
    let mut batch: Vec<Arc<Record>> = (1..=11).map(|n| Arc::new(record(n))).collect();
    let capacity = batch.capacity();
    store.insert_batch(&mut batch);
    assert!(batch.is_empty());
    assert_eq!(batch.capacity(), capacity, "the batch keeps its room");
    store.insert_batch(&mut vec![Arc::new(record(12))]);
    store.publish();
    let snap = reader.snapshot();
    assert_eq!(ids(&snap), (1..=12).collect::<Vec<_>>());
    assert!(
        snap.iter().all(|r| r.id == r.start_unix_ns),
        "id n holds record n"
    );
}

#[test]
fn evicted_records_are_dropped_once_no_snapshot_holds_them() {
    let capacity = 2 * CHUNK;
    // Every record holds the same endpoint, so its count tells how many records live.
    let endpoint = Arc::clone(&record(0).endpoint);
    let live = || Arc::strong_count(&endpoint) - 1;
    let make = |range: std::ops::RangeInclusive<u64>| -> Vec<Arc<Record>> {
        range
            .map(|n| {
                Arc::new(Record {
                    endpoint: Arc::clone(&endpoint),
                    ..record(n)
                })
            })
            .collect()
    };
    let (mut store, reader) = new(capacity);
    store.insert_batch(&mut make(1..=2 * CHUNK as u64));
    store.publish();
    let held = reader.snapshot();
    store.insert_batch(&mut make(2 * CHUNK as u64 + 1..=6 * CHUNK as u64));
    store.publish();
    let kept = reader.snapshot();
    assert!(
        kept.first_id() > held.total,
        "what the old snapshot holds was evicted"
    );
    assert_eq!(
        live(),
        held.len() + kept.len(),
        "a snapshot still holds the evicted chunks"
    );
    drop(held);
    assert_eq!(
        live(),
        kept.len(),
        "every evicted record is dropped, the kept ones live"
    );
}

#[test]
fn inserts_are_invisible_until_published_and_snapshots_never_change() {
    let (mut store, reader) = new(1000);
    insert_range(&mut store, 1, 3);
    assert_eq!(reader.snapshot().total, 0);
    store.publish();
    let before = reader.snapshot();
    insert_range(&mut store, 4, 2 * CHUNK as u64);
    store.publish();
    assert_eq!(ids(&before), [1, 2, 3]);
    assert_eq!(before.total, 3);
    let after = reader.snapshot();
    assert_eq!(after.total, 2 * CHUNK as u64);
    assert_consistent(&after, 1000);
}

#[test]
fn capacity_eviction_drops_whole_chunks_of_the_oldest_records() {
    let capacity = 4 * CHUNK;
    let (mut store, reader) = new(capacity);
    let mut last_first_id = 1;
    for n in 1..=(10 * CHUNK + 17) as u64 {
        store.insert(record(n));
        store.publish();
        let snap = reader.snapshot();
        assert_eq!(snap.total, n);
        assert_consistent(&snap, capacity);
        let first = snap.first_id();
        assert_eq!((first - 1) % CHUNK as u64, 0, "evicted in whole chunks");
        assert!(
            first == last_first_id || first == last_first_id + CHUNK as u64,
            "first_id moves one chunk at a time: {last_first_id} -> {first}"
        );
        if n < capacity as u64 {
            assert_eq!(first, 1, "nothing evicted before capacity is reached");
        } else {
            // One chunk of room is kept for the open tail.
            assert!(
                snap.len() >= capacity - CHUNK,
                "len {} at total {n}",
                snap.len()
            );
        }
        last_first_id = first;
    }
    assert_eq!(last_first_id, 7 * CHUNK as u64 + 1);
}

#[test]
fn capacity_is_rounded_up_to_whole_chunks() {
    let (mut store, reader) = new(CHUNK + 1);
    insert_range(&mut store, 1, 2 * CHUNK as u64 - 1);
    store.publish();
    let snap = reader.snapshot();
    assert_eq!((snap.first_id(), snap.len()), (1, 2 * CHUNK - 1));
    store.insert(record(2 * CHUNK as u64));
    store.publish();
    let snap = reader.snapshot();
    assert_eq!(snap.first_id(), CHUNK as u64 + 1);
    assert_consistent(&snap, 2 * CHUNK);
}

#[test]
fn by_id_after_and_get_agree() {
    let (mut store, reader) = new(2 * CHUNK);
    let total = 3 * CHUNK as u64 + 10;
    insert_range(&mut store, 1, total);
    store.publish();
    let snap = reader.snapshot();
    assert_consistent(&snap, 2 * CHUNK);
    let first = snap.first_id();
    assert!(first > 1, "some records were evicted");

    for index in 0..snap.len() {
        let by_index = snap.get(index).expect("index within len");
        let id = first + index as u64;
        assert_eq!(by_index.id, id);
        let by_id = snap.by_id(id).expect("id held");
        assert!(Arc::ptr_eq(by_index, by_id));
    }
    assert!(snap.get(snap.len()).is_none());
    assert!(snap.by_id(0).is_none());
    assert!(snap.by_id(first - 1).is_none(), "evicted");
    assert!(snap.by_id(total + 1).is_none(), "not yet inserted");
    assert!(snap.by_id(u64::MAX).is_none());

    let all: Vec<u64> = (first..=total).collect();
    assert_eq!(snap.after(0).map(|r| r.id).collect::<Vec<_>>(), all);
    assert_eq!(snap.after(first - 1).map(|r| r.id).collect::<Vec<_>>(), all);
    for id in [first, first + 1, first + CHUNK as u64, total - 1] {
        let newer: Vec<u64> = snap.after(id).map(|r| r.id).collect();
        assert_eq!(newer, (id + 1..=total).collect::<Vec<_>>(), "after {id}");
    }
    assert_eq!(snap.after(total).count(), 0);
    assert_eq!(snap.after(u64::MAX).count(), 0);

    let newest_first: Vec<u64> = snap.iter().rev().map(|r| r.id).collect();
    assert_eq!(newest_first, (first..=total).rev().collect::<Vec<_>>());
}

#[test]
fn concurrent_readers_always_see_consistent_growing_snapshots() {
    const RECORDS: u64 = 50_000;
    const PUBLISH_EVERY: u64 = 100;
    const READERS: usize = 3;
    let capacity = 8 * CHUNK;
    let (mut store, reader) = new(capacity);
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let reader = reader.clone();
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut last_total = 0;
                let mut loads = 0u64;
                loop {
                    // Read the flag first: the load after it is set sees the final publication.
                    let finished = done.load(Ordering::Acquire);
                    let snap = reader.snapshot();
                    assert_consistent(&snap, capacity);
                    assert!(
                        snap.total >= last_total,
                        "total went back from {last_total} to {}",
                        snap.total
                    );
                    assert_eq!(
                        snap.total % PUBLISH_EVERY,
                        0,
                        "only published states are seen"
                    );
                    last_total = snap.total;
                    loads += 1;
                    if finished {
                        return (last_total, loads);
                    }
                }
            })
        })
        .collect();

    for n in 1..=RECORDS {
        store.insert(record(n));
        if n % PUBLISH_EVERY == 0 {
            store.publish();
        }
    }
    done.store(true, Ordering::Release);

    for reader in readers {
        let (last_total, loads) = reader.join().expect("reader thread panicked");
        assert_eq!(last_total, RECORDS);
        assert!(loads > 0);
    }
    assert_consistent(&reader.snapshot(), capacity);
}

/// Record `n` carrying a value of `bytes` bytes.
fn big_record(n: u64, bytes: usize) -> Record {
    let mut r = record(n);
    r.exchange = Exchange::Redis(RedisExchange {
        kind: ExchangeKind::Command,
        command: "GET".into(),
        args: [crate::protocol::Blob::full("key")].into_iter().collect(),
        reply: Some(crate::protocol::redis::Frame::Bulk(
            crate::protocol::Blob::full(vec![b'v'; bytes]),
        )),
    });
    r
}

#[test]
fn a_record_counts_the_bytes_it_keeps() {
    let small = record(1).memory_bytes();
    let big = big_record(1, 10_000).memory_bytes();
    assert!(small >= size_of::<Record>() && small < 1024, "{small}");
    assert!((10_000..11_000).contains(&(big - small)), "{big} - {small}");
}

#[test]
fn a_byte_budget_evicts_the_oldest_records_and_counts_them() {
    let budget = 1024 * 1024;
    let (mut store, reader) = with_budget(100_000, budget);
    let one = big_record(0, 10_000).memory_bytes();
    for n in 1..=1000 {
        store.insert(big_record(n, 10_000));
        store.publish();
        let snap = reader.snapshot();
        assert_consistent(&snap, 100_000);
        // Within the budget, plus the chunk being filled (it seals at a sixteenth of the budget).
        assert!(
            snap.bytes <= budget + budget / CHUNKS_PER_BUDGET + one,
            "{}",
            snap.bytes
        );
        assert_eq!(snap.len() as u64 + snap.evicted_for_memory, snap.total);
    }
    let snap = reader.snapshot();
    assert!(snap.evicted_for_memory > 800, "{}", snap.evicted_for_memory);
    assert!(
        snap.bytes > budget / 2,
        "the budget is used: {}",
        snap.bytes
    );
    // Lookups agree across chunks that sealed early.
    for id in snap.first_id()..=snap.total {
        assert_eq!(snap.by_id(id).map(|r| r.start_unix_ns), Some(id));
        assert_eq!(snap.after(id - 1).next().map(|r| r.id), Some(id));
    }
    assert_eq!(snap.after(snap.total).count(), 0);
}

#[test]
fn small_records_are_bounded_by_count_not_by_the_budget() {
    let (mut store, reader) = with_budget(2 * CHUNK, 1024 * 1024 * 1024);
    insert_range(&mut store, 1, 10 * CHUNK as u64);
    store.publish();
    let snap = reader.snapshot();
    assert_consistent(&snap, 2 * CHUNK);
    assert_eq!(snap.evicted_for_memory, 0);
}

#[test]
fn records_a_follower_has_not_passed_outlive_the_capacity_until_it_passes_them() {
    let capacity = 2 * CHUNK;
    let (mut store, reader) = with_budget(capacity, 1024 * 1024 * 1024);
    let position = Arc::new(follow::Position::default());
    store.keep_for(Arc::clone(&position));
    // The follower has passed the first chunk only: everything after it stays.
    position.set(CHUNK as u64);
    insert_range(&mut store, 1, 10 * CHUNK as u64);
    store.publish();
    let snap = reader.snapshot();
    assert_eq!(
        snap.first_id(),
        CHUNK as u64 + 1,
        "only what it passed went"
    );
    assert_consistent(&snap, 10 * CHUNK);
    // Once it has passed all but the last chunk, the next seal brings the store back to its capacity.
    position.set(9 * CHUNK as u64);
    insert_range(&mut store, 10 * CHUNK as u64 + 1, 11 * CHUNK as u64);
    store.publish();
    let snap = reader.snapshot();
    assert_consistent(&snap, capacity);
    assert_eq!(snap.evicted_for_memory, 0);
    // A follower that stopped passes everything.
    position.set(u64::MAX);
    insert_range(&mut store, 11 * CHUNK as u64 + 1, 20 * CHUNK as u64);
    store.publish();
    assert_consistent(&reader.snapshot(), capacity);
}

#[test]
fn the_byte_budget_evicts_what_a_follower_has_not_passed_and_says_it_was_for_memory() {
    let budget = 1024 * 1024;
    let (mut store, reader) = with_budget(16, budget);
    let position = Arc::new(follow::Position::default());
    store.keep_for(Arc::clone(&position));
    let one = big_record(0, 10_000).memory_bytes();
    for n in 1..=500 {
        store.insert(big_record(n, 10_000));
    }
    store.publish();
    let snap = reader.snapshot();
    assert!(
        snap.bytes <= budget + budget / CHUNKS_PER_BUDGET + one,
        "{}",
        snap.bytes
    );
    assert!(
        snap.len() > 16,
        "more than the capacity is kept for the follower"
    );
    assert_eq!(snap.len() as u64 + snap.evicted_for_memory, snap.total);
}
