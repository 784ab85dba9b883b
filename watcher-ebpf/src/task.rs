//! Which processes are traced: the cheapest checks, run first on every hooked syscall.
//!
//! Must never read user memory or emit events; it only answers yes or no.

use aya_ebpf::helpers::bpf_get_current_comm;
use watcher_common::KernelConfig;

use crate::maps::{CONFIG, PID_FILTER};

/// The configuration written by user space, while the programs are armed.
#[inline(always)]
pub fn config() -> Option<&'static KernelConfig> {
    CONFIG.get(0).filter(|c| c.armed != 0)
}

/// Why `tgid` is in the pid filter (`watcher_common::pid_mark`), if it is.
#[inline(always)]
pub fn pid_mark(tgid: u32) -> Option<u8> {
    // SAFETY: the value is a plain u8, copied out at once.
    unsafe { PID_FILTER.get(tgid) }.copied()
}

/// Whether the current task passes the pid and comm filters (and is not the watcher itself).
#[inline(always)]
pub fn task_traced(cfg: &KernelConfig, tgid: u32) -> bool {
    if tgid == cfg.self_tgid {
        return false;
    }
    // With `widen_by_port`, tasks outside the pid filter go on to the port filter at classification.
    if cfg.pid_filter_on != 0 && cfg.widen_by_port == 0 && pid_mark(tgid).is_none() {
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
