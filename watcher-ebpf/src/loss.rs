//! Counting every way the kernel side loses data, per CPU, so user space can report it.
//!
//! Per-CPU slots need no atomics: a program runs to completion on one CPU without preemption by another
//! program instance on the same CPU for these tracepoints.

use watcher_common::KernelLoss;

use crate::maps::LOSS;

/// Applies `f` to this CPU's counters; does nothing if the map slot is missing (it never is).
#[inline(always)]
pub fn count(f: impl FnOnce(&mut KernelLoss)) {
    if let Some(ptr) = LOSS.get_ptr_mut(0) {
        // SAFETY: the pointer comes from the map and is valid for the program's run; per-CPU storage is
        // not shared with any other running program.
        f(unsafe { &mut *ptr });
    }
}
