//! The least a capture of socket bytes must do, for the benchmark (`watcher bench-probes
//! --least-copy`): on the raw `sys_exit` hook, for the filtered process's reads and writes that moved
//! bytes (the calls watcher captures, `syscall::data_call`: plain, vectored and message calls alike, as
//! nginx answers with `writev`), stamp the call and copy its bytes into the ring with watcher's own
//! copy (`payload`).
//!
//! It leaves out everything else watcher decides per call: which fd is a socket, whether it is TCP and
//! passes the filters, TLS. So what the traced service pays under it is less than any capture of its
//! traffic through this hook and this ring could cost: a floor, as the empty programs are the floor of
//! the hook alone.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::RawTracePointContext};

use crate::{payload, syscall, task};

/// A call of the filtered process returned: copy its bytes if it was a read or write that moved some.
#[inline(always)]
pub fn least_copy(ctx: &RawTracePointContext) -> Option<()> {
    let (cfg, id) = task::traced_caller()?;
    let ret: i64 = ctx.arg(1);
    if ret <= 0 {
        return None;
    }
    let r = syscall::saved_regs(ctx)?;
    let (dir, shape) = syscall::data_call(r.orig_ax)?;
    let call = syscall::io_call(id, dir, shape, [r.di, r.si, r.dx], 0)?;
    // No socket entry holds a stream position here; the bytes are only drained, never read.
    let mut stream_pos = 0u64;
    // SAFETY: no preconditions.
    let moved_ns = unsafe { bpf_ktime_get_ns() };
    payload::emit(
        cfg,
        &call,
        &raw mut stream_pos,
        0,
        ret as u64,
        (id >> 32) as u32,
        id as u32,
        moved_ns,
    );
    Some(())
}
