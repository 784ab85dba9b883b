//! Capture stage: everything that touches the kernel. Preflight checks, BTF and tracefs offsets, loading and
//! attaching the eBPF programs, and the ring-buffer reader that hands records to the router.
//!
//! This is the only stage that needs root; nothing above it depends on it except through
//! [`reader::run`], so the rest of the pipeline is testable with replayed events.

pub mod event;
pub mod loader;
pub mod offsets;
pub mod preflight;
pub mod reader;
pub mod tracefs;
