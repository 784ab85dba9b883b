//! Following a recorded command's process tree: children forked by the watcher's main thread, and by
//! any process already followed, join the pid filter before they run; they leave it when they exit.
//!
//! Runs on `sched` tracepoints, only when `KernelConfig::follow_children` is set. Must never emit events.
//! Because the child is added in its parent's fork, before it can execute anything, no early syscall
//! of a recorded command escapes the filter.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, programs::TracePointContext};
use watcher_common::pid_mark;

use crate::{loss, task};

/// A task forked: follow the child if its parent is followed, or is the thread that runs commands.
pub fn try_fork(ctx: &TracePointContext) -> Option<()> {
    let cfg = task::config()?;
    if cfg.follow_children == 0 {
        return None;
    }
    let id = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    // The watcher's main thread (tid == tgid) is the only one of its threads that starts commands.
    let spawner = tgid == cfg.self_tgid && tid == cfg.self_tgid;
    if !spawner && task::pid_mark(tgid) != Some(pid_mark::DESCENDANT) {
        return None;
    }
    // SAFETY: the offset comes from this kernel's format file for the event (user space reads it); the
    // read is bounds-checked by the helper.
    let child: i32 = unsafe { ctx.read_at(cfg.fork_child_pid as usize) }.ok()?;
    // The record does not say whether the child is a thread; a thread id in the map is harmless (no
    // process has it as tgid while the thread lives) and is removed when the thread exits.
    if !task::set_pid_mark(child as u32, pid_mark::DESCENDANT) {
        loss::count(|l| l.pid_table_full += 1);
    }
    Some(())
}

/// A task exited: forget it, so its id, once reused, is not traced. The exiting task is the current
/// one, so no field of the record is needed.
pub fn try_exit() -> Option<()> {
    let cfg = task::config()?;
    if cfg.follow_children == 0 {
        return None;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    if task::pid_mark(tid) == Some(pid_mark::DESCENDANT) {
        task::set_pid_mark(tid, 0);
    }
    Some(())
}
