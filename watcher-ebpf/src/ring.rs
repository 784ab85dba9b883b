//! When producers wake the ring reader.
//!
//! Waking the reader for every record costs the traced process an interrupt and a context switch per
//! syscall, which at tens of thousands of calls a second is most of our overhead. So records are
//! submitted silently and user space drains the ring on a short timer; only when a burst has filled the
//! ring past `wake_bytes` does a producer force a wake-up, so bursts are drained before they overflow.
//!
//! Asking how full the ring is reads the consumer's position, a cache line that the reader on another
//! CPU keeps writing: a cache miss on most records. So each CPU asks only after about
//! [`ASK_EVERY_BYTES`] of records of its own since it last asked (a small record counts as
//! [`MIN_RECORD_WEIGHT`]): every sixteenth small record, every full chunk. The fill level seen
//! late is off by at most that much per CPU, far inside the three quarters of the ring above
//! `wake_bytes`.
//!
//! A reader that found the ring empty for a while stops draining on a timer and asks to be woken by
//! the next record instead, by setting `wake_bytes` to 0 (a value the producers already read, so the
//! busy path pays nothing for it). Every record wakes it until it sets `wake_bytes` back, first thing
//! once awake. The programs never write the setting themselves: a producer that read the request
//! just before the reader took it back would then undo the reader's write, and leave the fill-level
//! wake-ups off for the whole busy spell that follows; one wake-up too many is all it can cost now.

use crate::maps::{EVENTS, UNASKED_BYTES};
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};

/// Bytes of records a CPU submits between two looks at the ring's fill level.
const ASK_EVERY_BYTES: u64 = 64 * 1024;
/// What a record smaller than this counts towards [`ASK_EVERY_BYTES`].
const MIN_RECORD_WEIGHT: u64 = 4 * 1024;

/// Submit flags for a record of `bytes` written now (`wake_bytes` is `KernelConfig::wake_bytes`).
#[inline(always)]
pub fn submit_flags(wake_bytes: u32, bytes: u64) -> u64 {
    if wake_bytes == 0 {
        return u64::from(BPF_RB_FORCE_WAKEUP);
    }
    if let Some(unasked) = UNASKED_BYTES.get_ptr_mut(0) {
        // SAFETY: this CPU's slot, valid for this run. A program interleaved with this one on the
        // same CPU could only move the next look by a record: the count steers no more than that.
        let unasked = unsafe { &mut *unasked };
        *unasked += if bytes < MIN_RECORD_WEIGHT {
            MIN_RECORD_WEIGHT
        } else {
            bytes
        };
        if *unasked < ASK_EVERY_BYTES {
            return u64::from(BPF_RB_NO_WAKEUP);
        }
        *unasked = 0;
    }
    if EVENTS.query(u64::from(BPF_RB_AVAIL_DATA)) >= u64::from(wake_bytes) {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}
