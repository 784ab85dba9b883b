//! Following a recorded command's process tree: children forked by the watcher's main thread, and by
//! any process already followed, join the pid filter before they run; they leave it when they exit.
//!
//! Runs on `sched` tracepoints, only when `KernelConfig::follow_children` is set. Must never emit events.
//! Because the child is added in its parent's fork, before it can execute anything, no early syscall
//! of a recorded command escapes the filter.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, programs::TracePointContext};
use watcher_common::pid_mark;

use crate::{loss, maps::PID_FILTER, task};

/// `sched_process_fork`: offset of `child_pid` (see its format file in tracefs).
const FORK_CHILD_PID: usize = 20;
/// `sched_process_exit`: offset of `pid`.
const EXIT_PID: usize = 24;

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
    // SAFETY: a fixed offset inside the tracepoint record; the read is bounds-checked.
    let child: i32 = unsafe { ctx.read_at(FORK_CHILD_PID) }.ok()?;
    // The record does not say whether the child is a thread; a thread id in the map is harmless (no
    // process has it as tgid while the thread lives) and is removed when the thread exits.
    if PID_FILTER
        .insert(child as u32, pid_mark::DESCENDANT, 0)
        .is_err()
    {
        loss::count(|l| l.pid_table_full += 1);
    }
    Some(())
}

/// A task exited: forget it, so its id, once reused, is not traced.
pub fn try_exit(ctx: &TracePointContext) -> Option<()> {
    let cfg = task::config()?;
    if cfg.follow_children == 0 {
        return None;
    }
    // SAFETY: as above.
    let pid: i32 = unsafe { ctx.read_at(EXIT_PID) }.ok()?;
    if task::pid_mark(pid as u32) == Some(pid_mark::DESCENDANT) {
        let _ = PID_FILTER.remove(pid as u32);
    }
    Some(())
}
