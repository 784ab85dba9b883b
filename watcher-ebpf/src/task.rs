//! Which processes are traced: the cheapest checks, run first on every hooked syscall.
//!
//! Must never read user memory or emit events; it only answers yes or no.

use aya_ebpf::helpers::bpf_get_current_comm;
use watcher_common::KernelConfig;

use crate::maps::{CONFIG, PID_FILTER};

/// The configuration written by user space.
#[inline(always)]
pub fn config() -> Option<&'static KernelConfig> {
    CONFIG.get(0)
}

/// Whether the current task passes the pid and comm filters (and is not the watcher itself).
#[inline(always)]
pub fn task_traced(cfg: &KernelConfig, tgid: u32) -> bool {
    if tgid == cfg.self_tgid {
        return false;
    }
    // SAFETY: the value is a plain u8 that is only read.
    if cfg.pid_filter_on != 0 && unsafe { PID_FILTER.get(tgid) }.is_none() {
        return false;
    }
    if cfg.comm_filter_on != 0 {
        let Ok(comm) = bpf_get_current_comm() else {
            return false;
        };
        if comm != cfg.comm {
            return false;
        }
    }
    true
}
