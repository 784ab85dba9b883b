//! The record store: a bounded ring of records, published as immutable snapshots. `follow` hands every
//! stored record, once, to the consumers that need them all (exporters, checks, live statistics).
//!
//! The ring has one owner, the [`StoreWriter`], held by the store writer thread alone: it inserts and
//! publishes without a lock, since no other thread can reach the ring. Readers (TUI, exporter,
//! summary) hold a [`StoreReader`] and load the latest [`Snapshot`] through `ArcSwap`; they never wait
//! for the writer, nor it for them.

pub mod follow;

use std::{collections::VecDeque, sync::Arc};

use arc_swap::ArcSwap;

use crate::record::Record;

/// Records per sealed chunk; capacity is enforced in whole chunks.
pub const CHUNK: usize = 256;

type Chunk = Arc<[Arc<Record>]>;

#[derive(Default)]
struct Ring {
    sealed: VecDeque<Chunk>,
    /// The sealed list as last published; rebuilt only when a chunk seals or is evicted.
    sealed_published: Arc<[Chunk]>,
    open: Vec<Arc<Record>>,
    next_id: u64,
}

/// An immutable view of the store at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    sealed: Arc<[Chunk]>,
    tail: Vec<Arc<Record>>,
    /// Records ever inserted (ids run from 1 to this).
    pub total: u64,
}

impl Snapshot {
    /// Records held.
    pub fn len(&self) -> usize {
        self.sealed.len() * CHUNK + self.tail.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id of the oldest record held (1 when nothing was evicted).
    pub fn first_id(&self) -> u64 {
        self.total - self.len() as u64 + 1
    }

    /// The `index`-th oldest record held.
    pub fn get(&self, index: usize) -> Option<&Arc<Record>> {
        let sealed_len = self.sealed.len() * CHUNK;
        if index < sealed_len {
            self.sealed
                .get(index / CHUNK)
                .and_then(|c| c.get(index % CHUNK))
        } else {
            self.tail.get(index - sealed_len)
        }
    }

    /// The record with `id`, if still held.
    pub fn by_id(&self, id: u64) -> Option<&Arc<Record>> {
        let index = id.checked_sub(self.first_id())?;
        self.get(usize::try_from(index).ok()?)
    }

    /// Records from oldest to newest.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Record>> {
        self.sealed
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.tail.iter())
    }

    /// Records with id greater than `id`, oldest first. Starts by index, so following a large store
    /// costs only the records not yet seen.
    pub fn after(&self, id: u64) -> impl Iterator<Item = &Arc<Record>> {
        let start = usize::try_from(id.saturating_sub(self.first_id() - 1)).unwrap_or(usize::MAX);
        (start..self.len()).filter_map(|index| self.get(index))
    }
}

/// The one writer of a store: owns the ring outright. Only the store writer thread holds it (it is
/// `Send` but not `Clone`), so inserting needs no lock; readers only ever see published snapshots.
pub struct StoreWriter {
    ring: Ring,
    capacity_chunks: usize,
    published: Arc<ArcSwap<Snapshot>>,
}

/// A reader of a store: hands out the latest published snapshot. Cheap to clone, never blocks the
/// writer.
#[derive(Clone)]
pub struct StoreReader {
    published: Arc<ArcSwap<Snapshot>>,
}

/// A store holding about `capacity` records (rounded up to whole chunks): its writer, and a reader that
/// can be cloned for every consumer.
pub fn new(capacity: usize) -> (StoreWriter, StoreReader) {
    let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let writer = StoreWriter {
        ring: Ring {
            next_id: 1,
            ..Ring::default()
        },
        capacity_chunks: capacity.div_ceil(CHUNK).max(1),
        published: Arc::clone(&published),
    };
    (writer, StoreReader { published })
}

impl StoreWriter {
    /// Inserts a record, assigning its id.
    pub fn insert(&mut self, mut record: Record) {
        let ring = &mut self.ring;
        record.id = ring.next_id;
        ring.next_id += 1;
        ring.open.push(Arc::new(record));
        if ring.open.len() == CHUNK {
            let chunk: Chunk = std::mem::take(&mut ring.open).into();
            ring.sealed.push_back(chunk);
            // The open tail counts towards capacity too, so keep one chunk of room for it; but never
            // evict the newest sealed chunk, so a capacity under one chunk still keeps recent records.
            while ring.sealed.len() >= self.capacity_chunks && ring.sealed.len() > 1 {
                ring.sealed.pop_front();
            }
            ring.sealed_published = ring.sealed.iter().cloned().collect();
        }
    }

    /// Publishes the current contents as the latest snapshot: an `Arc` clone of the sealed-chunk list
    /// plus at most `CHUNK` `Arc` clones of the open tail.
    pub fn publish(&self) {
        let ring = &self.ring;
        self.published.store(Arc::new(Snapshot {
            sealed: Arc::clone(&ring.sealed_published),
            tail: ring.open.clone(),
            total: ring.next_id - 1,
        }));
    }
}

impl StoreReader {
    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.load_full()
    }
}

/// A store filled with `records` and published once, for captures read from a file: room for every
/// record (the store evicts by whole chunks once it is full).
pub fn of(records: impl ExactSizeIterator<Item = Record>) -> StoreReader {
    let (mut writer, reader) = new(records.len() + CHUNK);
    for record in records {
        writer.insert(record);
    }
    writer.publish();
    reader
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
