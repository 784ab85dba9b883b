//! Collect stage: routes kernel events to shards by connection, and inside a shard turns each
//! connection's byte streams into records.
//!
//! `router` runs on the capture thread (it is the capture stage's `EventSink`) and only copies and
//! batches; `shard` owns connection state outright (no other thread can see it) and is where protocol
//! sessions live. Finished records leave by channel; this stage never touches the store.

pub mod router;
pub mod shard;

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
        // Fibonacci hashing spreads consecutive fds of one process over shards.
        let h = (u64::from(self.tgid) << 32 | u64::from(self.fd as u32))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> 32) as usize) % shards.max(1)
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

/// Events for one shard, with their payloads in one buffer so a batch costs two allocations, not one per
/// event.
#[derive(Debug, Default)]
pub struct EventBatch {
    /// The events, in ring order.
    pub events: Vec<ConnEvent>,
    /// All payload bytes.
    pub payload: Vec<u8>,
}

/// Payload capacity an emptied batch keeps for reuse. Batches of small messages stay well under it; a
/// batch that grew past it carrying large calls gives the rest back, or the pool of spare batches
/// would hold up to a mebibyte each (hundreds of MiB under 1 MiB Redis values).
const KEEP_PAYLOAD_BYTES: usize = 256 * 1024;

impl EventBatch {
    /// Empties the batch, keeping its buffers for reuse (up to [`KEEP_PAYLOAD_BYTES`] of payload).
    pub fn clear(&mut self) {
        self.events.clear();
        self.payload.clear();
        self.payload.shrink_to(KEEP_PAYLOAD_BYTES);
    }

    /// Payload of `event`.
    pub fn payload_of(&self, event: &ConnEvent) -> &[u8] {
        let end = event.payload_start + event.header.chunk_len as usize;
        self.payload
            .get(event.payload_start..end)
            .unwrap_or_default()
    }
}
