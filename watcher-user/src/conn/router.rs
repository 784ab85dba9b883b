//! Routing decoded kernel events to shard queues in batches: the [`EventSink`] the capture stage's ring
//! reader feeds.
//!
//! Runs on the capture thread. Never blocks: a full shard queue drops the batch and counts its events,
//! so a slow shard can never stall the ring reader (and through it, the kernel side).
//!
//! Batches go round in a loop: shards hand emptied ones back through `spare`, so their buffers keep
//! their capacity and the hot path neither grows vectors nor faults in fresh pages.
//!
//! Seeing the shards' queues, it also decides when the shards yield the CPU to the watched services
//! and when they compete for it (`yielding`).

use std::{sync::Arc, time::Instant};

use crossbeam_channel::Receiver;

use watcher_common::SocketAddrs;

use super::{yielding::Yielding, ConnEvent, ConnKey, EventBatch, BATCH_BYTES, BATCH_EVENTS};
use crate::capture::{event::RawEvent, EventSink};
use crate::counters::Counters;
use crate::handoff::{Sender, TrySendError};

/// Per-shard batches being filled.
pub struct Router {
    /// The shards' scheduling, unless they always compete (`--no-yield`, or not permitted). First, so
    /// it is dropped (putting the shards back on the normal policy) while the shards' queues are still
    /// open and no shard can have exited.
    yielding: Option<Yielding>,
    shards: Vec<Sender<EventBatch>>,
    filling: Vec<EventBatch>,
    spare: Receiver<EventBatch>,
    counters: Arc<Counters>,
    /// Batches queued to the shards so far.
    sent: u64,
}

impl Router {
    /// A router over the shards' queues, reusing the emptied batches that arrive on `spare`, and
    /// scheduling the shards with `yielding` when given.
    pub fn new(
        shards: Vec<Sender<EventBatch>>,
        spare: Receiver<EventBatch>,
        counters: Arc<Counters>,
        yielding: Option<Yielding>,
    ) -> Self {
        let filling = shards.iter().map(|_| EventBatch::default()).collect();
        Self {
            yielding,
            shards,
            filling,
            spare,
            counters,
            sent: 0,
        }
    }

    fn send(&mut self, shard: usize) {
        let fresh = self.spare.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.filling[shard], fresh);
        match self.shards[shard].try_send(batch) {
            Ok(()) => self.sent += 1,
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                Counters::add(
                    &self.counters.user.queue_full_events,
                    batch.events.len() as u64,
                );
            }
        }
    }
}

impl EventSink for Router {
    /// Adds one event to its shard's batch, sending the batch once it is full.
    fn event(&mut self, event: RawEvent<'_>) {
        let (header, addrs, cgroup_id, payload) = match event {
            RawEvent::Data { header, payload } => (header, SocketAddrs::default(), 0, payload),
            RawEvent::Open {
                header,
                addrs,
                cgroup_id,
            } => (header, addrs, cgroup_id, &[][..]),
            RawEvent::Close { header } => (header, SocketAddrs::default(), 0, &[][..]),
            // The ring reader hands these to the TLS finder; none is a connection's.
            RawEvent::NewCode { .. } => return,
        };
        let shard = ConnKey::of(&header).shard(self.shards.len());
        let batch = &mut self.filling[shard];
        batch.events.push(ConnEvent {
            header,
            addrs,
            cgroup_id,
            payload_start: batch.payload.len(),
        });
        batch.payload.extend_from_slice(payload);
        if batch.events.len() >= BATCH_EVENTS || batch.payload.len() >= BATCH_BYTES {
            self.send(shard);
        }
    }

    /// Sends every non-empty batch. First tells the shards' scheduling how much of what was sent
    /// before still waits.
    fn flush(&mut self) {
        if let Some(yielding) = &mut self.yielding {
            let waiting = self.shards.iter().map(Sender::len).sum();
            yielding.look(self.sent, waiting, Instant::now());
        }
        for shard in 0..self.shards.len() {
            if !self.filling[shard].events.is_empty() {
                self.send(shard);
            }
        }
    }
}
