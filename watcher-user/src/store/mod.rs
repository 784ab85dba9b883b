//! The record store: a ring of records bounded in records and in bytes (`--max-records`,
//! `--max-memory`), published as immutable snapshots. `follow` hands every stored record, once, to the
//! consumers that need them all (exporters, checks, live statistics); while it lags, the store keeps
//! what it has not passed beyond `--max-records`, within the byte budget (see [`StoreWriter::keep_for`]).
//!
//! The ring has one owner, the [`StoreWriter`], held by the store writer thread alone: it inserts and
//! publishes without a lock, since no other thread can reach the ring. Readers (TUI, exporter,
//! summary) hold a [`StoreReader`] and load the latest [`Snapshot`] through `ArcSwap`; they never wait
//! for the writer, nor it for them.

pub mod follow;

use std::{collections::VecDeque, sync::Arc};

use arc_swap::ArcSwap;

use crate::record::Record;

use follow::Position;

/// Records per sealed chunk at most; capacity is enforced in whole chunks.
pub const CHUNK: usize = 256;
/// Chunks per byte budget: a chunk seals early once it holds this fraction of `--max-memory`, so
/// eviction (in whole chunks) keeps the store within the budget plus one such share.
const CHUNKS_PER_BUDGET: usize = 16;

type Chunk = Arc<ChunkRecords>;

/// The records of a sealed chunk, oldest first.
///
/// Dropped when the last snapshot holding an evicted chunk goes, with the memory of the records a few
/// places ahead asked for while the current one is dropped: a chunk is evicted long after its records
/// were made, when they are out of the caches, and dropping them one cache miss after another was
/// most of what the store writer spent.
struct ChunkRecords(Box<[Arc<Record>]>);

impl From<Vec<Arc<Record>>> for ChunkRecords {
    fn from(records: Vec<Arc<Record>>) -> Self {
        Self(records.into_boxed_slice())
    }
}

impl std::ops::Deref for ChunkRecords {
    type Target = [Arc<Record>];

    fn deref(&self) -> &[Arc<Record>] {
        &self.0
    }
}

impl Drop for ChunkRecords {
    fn drop(&mut self) {
        drain_prefetching(&mut std::mem::take(&mut self.0).into_vec(), drop);
    }
}

/// How many records ahead of the one being handled their memory is asked for: enough for the misses
/// to overlap, few enough to be still cached when their turn comes.
const PREFETCH_AHEAD: usize = 4;

/// Hands `records` to `each`, oldest first, leaving the vector empty; meanwhile the memory of the
/// record [`PREFETCH_AHEAD`] places ahead is asked for, so its cache misses overlap the work on this
/// one.
fn drain_prefetching(records: &mut Vec<Arc<Record>>, mut each: impl FnMut(Arc<Record>)) {
    let mut records = records.drain(..);
    for ahead in records.as_slice().iter().take(PREFETCH_AHEAD) {
        prefetch_record(ahead);
    }
    while let Some(record) = records.next() {
        if let Some(ahead) = records.as_slice().get(PREFETCH_AHEAD) {
            prefetch_record(ahead);
        }
        each(record);
    }
}

/// Asks for the cache lines the record spans to be loaded (the first of them holds the `Arc`'s counts
/// too when the allocation starts a line, as it does in jemalloc's 256-byte class, where a stored Redis
/// record is: four lines).
#[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
#[allow(unsafe_code)]
fn prefetch_record(record: &Arc<Record>) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let start = Arc::as_ptr(record).cast::<u8>();
    for offset in (0..size_of::<Record>()).step_by(64) {
        // SAFETY: a prefetch is a hint that never faults nor reads into the program; the address is
        // within the record's allocation (from its start, less than its size).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset).cast()) };
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
fn prefetch_record(_: &Arc<Record>) {}

/// A sealed chunk and the bytes its records take.
struct Sealed {
    records: Chunk,
    bytes: usize,
}

#[derive(Default)]
struct Ring {
    sealed: VecDeque<Sealed>,
    /// Records and bytes in `sealed`.
    sealed_records: usize,
    sealed_bytes: usize,
    /// The sealed list as last published, and the index of each chunk's first record; rebuilt at the
    /// next publication after a chunk sealed or was evicted (`sealed_changed`), not at every seal: the
    /// rebuild is linear in the chunks held, a few thousand with a million records.
    sealed_published: Arc<[Chunk]>,
    starts_published: Arc<[usize]>,
    sealed_changed: bool,
    open: Vec<Arc<Record>>,
    open_bytes: usize,
    next_id: u64,
    /// Records evicted to keep within the byte budget (the rest were evicted by count).
    evicted_for_memory: u64,
}

/// An immutable view of the store at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    sealed: Arc<[Chunk]>,
    /// Index of the first record of each sealed chunk (chunks that sealed early are shorter).
    starts: Arc<[usize]>,
    sealed_len: usize,
    tail: Vec<Arc<Record>>,
    /// Records ever inserted (ids run from 1 to this).
    pub total: u64,
    /// Bytes the records held take, about (`Record::memory_bytes`).
    pub bytes: usize,
    /// Records evicted to stay within `--max-memory` (others were evicted to stay within
    /// `--max-records`).
    pub evicted_for_memory: u64,
}

impl Snapshot {
    /// Records held.
    pub fn len(&self) -> usize {
        self.sealed_len + self.tail.len()
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
        if index < self.sealed_len {
            // The last chunk starting at or before `index`; the first starts at 0.
            let chunk = self.starts.partition_point(|start| *start <= index) - 1;
            self.sealed
                .get(chunk)
                .and_then(|c| c.get(index - self.starts[chunk]))
        } else {
            self.tail.get(index - self.sealed_len)
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

    /// Records with id greater than `id`, oldest first. Starts at the chunk holding the next one, so
    /// following a large store costs only the records not yet seen.
    pub fn after(&self, id: u64) -> impl Iterator<Item = &Arc<Record>> {
        let start = usize::try_from(id.saturating_sub(self.first_id() - 1)).unwrap_or(usize::MAX);
        let chunk = if start < self.sealed_len {
            self.starts.partition_point(|first| *first <= start) - 1
        } else {
            self.sealed.len()
        };
        let chunk_start = self.starts.get(chunk).copied().unwrap_or(self.sealed_len);
        self.sealed[chunk..]
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.tail.iter())
            .skip(start.saturating_sub(chunk_start))
    }
}

/// The one writer of a store: owns the ring outright. Only the store writer thread holds it (it is
/// `Send` but not `Clone`), so inserting needs no lock; readers only ever see published snapshots.
pub struct StoreWriter {
    ring: Ring,
    /// Records held at most, in whole chunks.
    capacity: usize,
    /// Bytes held at most (plus one chunk's share, see [`CHUNKS_PER_BUDGET`]).
    budget: usize,
    /// An open chunk seals once it holds this many bytes.
    seal_bytes: usize,
    /// The follower whose unseen records outlive `capacity` (not the budget), if one was named.
    follower: Option<Arc<Position>>,
    published: Arc<ArcSwap<Snapshot>>,
}

/// A reader of a store: hands out the latest published snapshot. Cheap to clone, never blocks the
/// writer.
#[derive(Clone)]
pub struct StoreReader {
    published: Arc<ArcSwap<Snapshot>>,
}

/// A store holding about `capacity` records (rounded up to whole chunks), whatever their size: its
/// writer, and a reader that can be cloned for every consumer.
pub fn new(capacity: usize) -> (StoreWriter, StoreReader) {
    with_budget(capacity, usize::MAX)
}

/// A store holding about `capacity` records and about `budget` bytes of them, whichever is reached
/// first (the oldest go first).
pub fn with_budget(capacity: usize, budget: usize) -> (StoreWriter, StoreReader) {
    let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let writer = StoreWriter {
        ring: Ring {
            next_id: 1,
            ..Ring::default()
        },
        capacity: capacity.div_ceil(CHUNK).max(1) * CHUNK,
        budget,
        seal_bytes: (budget / CHUNKS_PER_BUDGET).max(1),
        follower: None,
        published: Arc::clone(&published),
    };
    (writer, StoreReader { published })
}

impl StoreWriter {
    /// Keeps the records the follower at `position` has not passed yet, beyond `--max-records` but
    /// within the byte budget: a follower that falls behind for a while (an export file's first writes
    /// into memory the host had taken back, a slow disk) loses nothing as long as memory allows, and
    /// the store is back to `--max-records` at the first insert after it caught up. Records the budget
    /// evicts unseen are still counted by the follower as not exported.
    pub fn keep_for(&mut self, position: Arc<Position>) {
        self.follower = Some(position);
    }

    /// Inserts a record, assigning its id.
    pub fn insert(&mut self, record: Record) {
        self.insert_shared(Arc::new(record));
    }

    /// Inserts a batch of records already boxed by the stage that made them (the shards), oldest
    /// first, leaving `batch` empty (with its capacity) to be reused. The records a few places ahead
    /// are asked for while one is inserted: they were made on another CPU, and their id and size are
    /// read and written here one after another.
    pub fn insert_batch(&mut self, batch: &mut Vec<Arc<Record>>) {
        drain_prefetching(batch, |record| self.insert_shared(record));
    }

    /// Inserts a record already boxed by the stage that made it (the shards), assigning its id. A
    /// record not shared yet is given its id in place; one already shared is copied first, so no
    /// holder ever sees the id change.
    pub fn insert_shared(&mut self, mut record: Arc<Record>) {
        let ring = &mut self.ring;
        Arc::make_mut(&mut record).id = ring.next_id;
        ring.next_id += 1;
        ring.open_bytes += record.memory_bytes();
        ring.open.push(record);
        if ring.open.len() < CHUNK && ring.open_bytes < self.seal_bytes {
            return;
        }
        let records: Chunk = Arc::new(std::mem::take(&mut ring.open).into());
        ring.sealed_records += records.len();
        ring.sealed_bytes += ring.open_bytes;
        ring.sealed.push_back(Sealed {
            records,
            bytes: std::mem::take(&mut ring.open_bytes),
        });
        // The open tail counts towards capacity too, so keep one chunk of room for it; but never evict
        // the newest sealed chunk, so a capacity under one chunk still keeps recent records.
        let passed = self.follower.as_ref().map_or(u64::MAX, |p| p.get());
        while ring.sealed.len() > 1 {
            // Ids are consecutive: the oldest sealed record is the one `sealed_records` before the tail.
            let oldest_first = ring.next_id - (ring.sealed_records + ring.open.len()) as u64;
            let oldest_last = oldest_first + ring.sealed[0].records.len() as u64 - 1;
            let over_count = ring.sealed_records + CHUNK > self.capacity && oldest_last <= passed;
            if !over_count && ring.sealed_bytes <= self.budget {
                break;
            }
            let Some(oldest) = ring.sealed.pop_front() else {
                break;
            };
            ring.sealed_records -= oldest.records.len();
            ring.sealed_bytes -= oldest.bytes;
            if !over_count {
                ring.evicted_for_memory += oldest.records.len() as u64;
            }
        }
        ring.sealed_changed = true;
    }

    /// Publishes the current contents as the latest snapshot: an `Arc` clone of the sealed-chunk list
    /// (rebuilt first if chunks sealed or went since the last publication) plus at most `CHUNK` `Arc`
    /// clones of the open tail.
    pub fn publish(&mut self) {
        let ring = &mut self.ring;
        if std::mem::take(&mut ring.sealed_changed) {
            ring.sealed_published = ring.sealed.iter().map(|s| Arc::clone(&s.records)).collect();
            ring.starts_published = ring
                .sealed
                .iter()
                .scan(0, |start, s| {
                    let this = *start;
                    *start += s.records.len();
                    Some(this)
                })
                .collect();
        }
        self.published.store(Arc::new(Snapshot {
            sealed: Arc::clone(&ring.sealed_published),
            starts: Arc::clone(&ring.starts_published),
            sealed_len: ring.sealed_records,
            tail: ring.open.clone(),
            total: ring.next_id - 1,
            bytes: ring.sealed_bytes + ring.open_bytes,
            evicted_for_memory: ring.evicted_for_memory,
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
