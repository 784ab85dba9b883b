//! Which processes are traced: the cheapest checks, run first on every hooked syscall.
//!
//! Must never read user memory or emit events; it only answers yes or no.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid};
use watcher_common::{pid_slot, KernelConfig};

use crate::maps::{CONFIG, PID_FILTER};

/// The configuration written by user space, while the programs are armed.
#[inline(always)]
pub fn config() -> Option<&'static KernelConfig> {
    CONFIG.get(0).filter(|c| c.armed != 0)
}

/// The configuration and the `pid_tgid` of the current task, if the programs are armed and the task
/// passes [`task_traced`]: how every syscall program begins.
#[inline(always)]
pub fn traced_caller() -> Option<(&'static KernelConfig, u64)> {
    let cfg = config()?;
    let id = bpf_get_current_pid_tgid();
    task_traced(cfg, (id >> 32) as u32).then_some((cfg, id))
}

/// Why `tgid` is in the pid filter (`watcher_common::pid_mark`), if it is.
#[inline(always)]
pub fn pid_mark(tgid: u32) -> Option<u8> {
    let (index, byte) = pid_slot(tgid);
    let marks = *PID_FILTER.get(index)?;
    let mark = (marks >> (8 * byte)) as u8;
    (mark != 0).then_some(mark)
}

/// Sets the pid filter's mark of `id` (0 takes it out). False if the id is beyond the filter's size.
#[inline(always)]
pub fn set_pid_mark(id: u32, mark: u8) -> bool {
    let (index, byte) = pid_slot(id);
    let Some(marks) = PID_FILTER.get_ptr_mut(index) else {
        return false;
    };
    // SAFETY: a byte of the entry, valid for this run. A single byte store: a fork on another CPU
    // writing another id of the same entry cannot undo it, as a read-modify-write of the word could.
    unsafe { *marks.cast::<u8>().add(byte as usize & 7) = mark };
    true
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
