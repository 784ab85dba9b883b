//! Collect stage: routes kernel events to shards by connection, and inside a shard turns each
//! connection's byte streams into records.
//!
//! `router` runs on the capture thread (it is the capture stage's `EventSink`) and only copies and
//! batches; `shard` owns connection state outright (no other thread can see it) and is where protocol
//! sessions live. Finished records leave by channel; this stage never touches the store.

pub mod router;
pub mod shard;
pub mod yielding;

use watcher_common::{EventHeader, SocketAddrs};

/// A connection as the kernel names it: a process and an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Process id.
    pub tgid: u32,
    /// Socket fd.
    pub fd: i32,
}

impl ConnKey {
    /// The key of an event.
    pub fn of(header: &EventHeader) -> Self {
        Self {
            tgid: header.tgid,
            fd: header.fd,
        }
    }

    /// Which of `shards` owns this connection.
    pub fn shard(self, shards: usize) -> usize {
        // Fibonacci hashing spreads consecutive fds of one process over shards. Its top 32 bits are
        // scaled to the shard count by a multiply and a shift: a remainder was a division on every
        // event, an eighth of the router's time.
        let h = (u64::from(self.tgid) << 32 | u64::from(self.fd as u32))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (((h >> 32) * shards as u64) >> 32) as usize
    }
}

/// One event in a batch; its payload is `payload_start..payload_start + header.chunk_len` of the batch.
#[derive(Clone, Copy, Debug)]
pub struct ConnEvent {
    /// Kernel header.
    pub header: EventHeader,
    /// Addresses (open events only).
    pub addrs: SocketAddrs,
    /// Cgroup v2 id (open events only).
    pub cgroup_id: u64,
    /// Where this event's payload starts in [`EventBatch::payload`].
    pub payload_start: usize,
}

/// Events per batch before it is sent without waiting for the ring to be drained.
pub const BATCH_EVENTS: usize = 1024;
/// Payload bytes per batch before it is sent early.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Payload capacity of every batch: a batch is sent once it holds [`BATCH_BYTES`], so the event that
/// crosses that line (one ring chunk at most) still fits and a batch never grows. Batches used to grow
/// to a mebibyte and be shrunk back on reuse; under 4 KiB values the pages faulted in again on every
/// round were a tenth of the capture thread's time.
const PAYLOAD_CAPACITY: usize = BATCH_BYTES + watcher_common::CHUNK_SIZE;

/// Events for one shard, with their payloads in one buffer so a batch costs two allocations, not one per
/// event. Batches go round between the router and the shards, so both allocations are made once.
#[derive(Debug)]
pub struct EventBatch {
    /// The events, in ring order.
    pub events: Vec<ConnEvent>,
    /// All payload bytes.
    pub payload: Vec<u8>,
}

impl Default for EventBatch {
    /// An empty batch with room for a full one's payload (pages are only touched as it fills).
    fn default() -> Self {
        Self {
            events: Vec::new(),
            payload: Vec::with_capacity(PAYLOAD_CAPACITY),
        }
    }
}

impl EventBatch {
    /// Empties the batch, keeping its buffers for reuse.
    pub fn clear(&mut self) {
        self.events.clear();
        self.payload.clear();
    }

    /// Payload of `event`.
    pub fn payload_of(&self, event: &ConnEvent) -> &[u8] {
        let end = event.payload_start + event.header.chunk_len as usize;
        self.payload
            .get(event.payload_start..end)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_s_consecutive_fds_spread_evenly_over_the_shards() {
        for shards in 1..=8 {
            let mut owned = vec![0u32; shards];
            for fd in 3..3 + 800 {
                let shard = ConnKey { tgid: 4242, fd }.shard(shards);
                assert!(shard < shards, "fd {fd} went to shard {shard} of {shards}");
                owned[shard] += 1;
            }
            let fair = 800 / shards as u32;
            assert!(
                owned.iter().all(|&n| n.abs_diff(fair) <= fair / 5),
                "{shards} shards own {owned:?} of 800 fds"
            );
        }
    }
}
