//! Capture stage: everything that touches the kernel. Preflight checks, BTF and tracefs offsets, loading
//! and attaching the eBPF programs, the ring-buffer reader and the decoding of its records, and the
//! host's listening sockets (which tell the side of connections older than the capture).
//!
//! This is the only stage that needs root. It imports no later stage: the reader hands decoded events
//! to an [`EventSink`] it is given, so everything after it is testable with replayed events.

pub mod event;
pub mod listeners;
pub mod loader;
pub mod offsets;
pub mod preflight;
pub mod reader;
pub mod timer;
pub mod tls;
pub mod tracefs;

/// Where the ring reader hands the events it decodes, in ring order.
pub trait EventSink {
    /// Takes one event; its payload borrows from the ring and must be copied to be kept.
    fn event(&mut self, event: event::RawEvent<'_>);

    /// The ring is drained for now: pass on what was gathered.
    fn flush(&mut self);
}
