//! The record store: a bounded ring of records behind one mutex, published as immutable snapshots.
//!
//! Only the store writer inserts. The lock is held for O(1) work: one push, or one publication (an `Arc`
//! clone of the sealed-chunk list plus at most `CHUNK` `Arc` clones of the open tail). Readers (TUI,
//! exporter, summary) never lock: they load the latest [`Snapshot`] through `ArcSwap`.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

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

/// The bounded store.
pub struct Store {
    ring: Mutex<Ring>,
    capacity_chunks: usize,
    published: ArcSwap<Snapshot>,
}

impl Store {
    /// A store holding about `capacity` records (rounded up to whole chunks).
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: Mutex::new(Ring {
                next_id: 1,
                ..Ring::default()
            }),
            capacity_chunks: capacity.div_ceil(CHUNK).max(1),
            published: ArcSwap::from_pointee(Snapshot::default()),
        }
    }

    /// Inserts a record, assigning its id.
    pub fn insert(&self, mut record: Record) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
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

    /// Publishes the current contents as the latest snapshot.
    pub fn publish(&self) {
        let snapshot = {
            let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            Snapshot {
                sealed: Arc::clone(&ring.sealed_published),
                tail: ring.open.clone(),
                total: ring.next_id - 1,
            }
        };
        self.published.store(Arc::new(snapshot));
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.load_full()
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
