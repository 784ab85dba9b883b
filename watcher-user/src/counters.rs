//! Counters of everything seen, kept and lost, shared by the pipeline threads.
//!
//! Counters are independent atomics (each written by one stage, read by anyone), so no thread ever waits
//! on another to count. Readers take a [`Totals`] copy.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use watcher_common::KernelLoss;

/// Live counters.
#[derive(Debug, Default)]
pub struct Counters {
    kernel: [AtomicU64; 7],
    /// Events dropped because a shard's queue was full.
    pub queue_full_events: AtomicU64,
    /// Records dropped because the store's queue was full.
    pub queue_full_records: AtomicU64,
    /// Ring records that did not decode.
    pub malformed_events: AtomicU64,
    /// Times a connection direction lost protocol sync.
    pub lost_sync: AtomicU64,
    /// Requests dropped with a lost sync.
    pub dropped_requests: AtomicU64,
    /// Replies that matched no request.
    pub orphan_replies: AtomicU64,
    /// Connections whose traffic no enabled protocol recognised.
    pub unrecognised_connections: AtomicU64,
    /// Records produced by the decoders (before filters).
    pub records_decoded: AtomicU64,
    /// Records removed by user-space filters.
    pub records_filtered: AtomicU64,
    /// Records that did not get exported because the store evicted them first.
    pub export_missed: AtomicU64,
}

/// A consistent-enough copy of the counters for display and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Kernel: events that did not fit in the ring.
    pub ring_full_events: u64,
    /// Kernel: payload bytes in those.
    pub ring_full_bytes: u64,
    /// Kernel: chunks whose user memory was unreadable.
    pub copy_failed: u64,
    /// Kernel: syscalls longer than `--capture-bytes`.
    pub truncated_calls: u64,
    /// Kernel: bytes not copied because of `--capture-bytes`.
    pub truncated_bytes: u64,
    /// Kernel: syscalls dropped because the in-flight table was full.
    pub pending_full: u64,
    /// Kernel: processes of a recorded command not followed because the pid table was full.
    pub pid_table_full: u64,
    /// User: events dropped at a full shard queue.
    pub queue_full_events: u64,
    /// User: records dropped at a full store queue.
    pub queue_full_records: u64,
    /// User: undecodable ring records.
    pub malformed_events: u64,
    /// User: protocol sync losses.
    pub lost_sync: u64,
    /// User: requests dropped with a sync loss.
    pub dropped_requests: u64,
    /// User: replies without a request.
    pub orphan_replies: u64,
    /// User: connections carrying traffic of no enabled protocol (not shown, not loss).
    pub unrecognised_connections: u64,
    /// Records decoded.
    pub records_decoded: u64,
    /// Records removed by filters.
    pub records_filtered: u64,
    /// Records evicted before export.
    pub export_missed: u64,
}

impl Totals {
    /// Where the `lost()` events went, stage by stage (the terms add up to `lost()`).
    pub fn loss_breakdown(&self) -> String {
        format!(
            "kernel: {} ring-full, {} copy-failed, {} in-flight-full, {} pid-table-full; user: {} queue-full, {} malformed, {} dropped with a sync loss, {} not exported",
            self.ring_full_events,
            self.copy_failed,
            self.pending_full,
            self.pid_table_full,
            self.queue_full_events + self.queue_full_records,
            self.malformed_events,
            self.dropped_requests,
            self.export_missed,
        )
    }

    /// Events or records lost anywhere (truncation is not loss: it is reported separately).
    pub fn lost(&self) -> u64 {
        self.ring_full_events
            + self.copy_failed
            + self.pending_full
            + self.pid_table_full
            + self.queue_full_events
            + self.queue_full_records
            + self.malformed_events
            + self.dropped_requests
            + self.export_missed
    }
}

impl Counters {
    /// Replaces the kernel-side figures with a fresh sum over CPUs.
    pub fn set_kernel(&self, loss: &KernelLoss) {
        let values = [
            loss.ring_full_events,
            loss.ring_full_bytes,
            loss.copy_failed,
            loss.truncated_calls,
            loss.truncated_bytes,
            loss.pending_full,
            loss.pid_table_full,
        ];
        for (slot, v) in self.kernel.iter().zip(values) {
            slot.store(v, Relaxed);
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Current values.
    pub fn totals(&self) -> Totals {
        let k = |i: usize| self.kernel[i].load(Relaxed);
        Totals {
            ring_full_events: k(0),
            ring_full_bytes: k(1),
            copy_failed: k(2),
            truncated_calls: k(3),
            truncated_bytes: k(4),
            pending_full: k(5),
            pid_table_full: k(6),
            queue_full_events: self.queue_full_events.load(Relaxed),
            queue_full_records: self.queue_full_records.load(Relaxed),
            malformed_events: self.malformed_events.load(Relaxed),
            lost_sync: self.lost_sync.load(Relaxed),
            dropped_requests: self.dropped_requests.load(Relaxed),
            orphan_replies: self.orphan_replies.load(Relaxed),
            unrecognised_connections: self.unrecognised_connections.load(Relaxed),
            records_decoded: self.records_decoded.load(Relaxed),
            records_filtered: self.records_filtered.load(Relaxed),
            export_missed: self.export_missed.load(Relaxed),
        }
    }
}
