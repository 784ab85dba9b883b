//! When producers wake the ring reader.
//!
//! Waking the reader for every record costs the traced process an interrupt and a context switch per
//! syscall, which at tens of thousands of calls a second is most of our overhead. So records are
//! submitted silently and user space drains the ring on a short timer; only when a burst has filled the
//! ring past `wake_bytes` does a producer force a wake-up, so bursts are drained before they overflow.

use crate::maps::EVENTS;
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};

/// Submit flags for a record written now (`wake_bytes` is `KernelConfig::wake_bytes`).
#[inline(always)]
pub fn submit_flags(wake_bytes: u32) -> u64 {
    if EVENTS.query(u64::from(BPF_RB_AVAIL_DATA)) >= u64::from(wake_bytes) {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}
