//! The socket syscalls, seen from either kind of hook (and, on the raw hook, the calls that bring new
//! code, for `new_code`).
//!
//! - **Raw `sys_exit`** (preferred, x86_64): one program per call, at its return. The call's arguments
//!   are still in the user registers the kernel saved at entry, so no entry program and no map of calls
//!   in flight are needed, and a raw tracepoint skips the per-event record a syscall tracepoint builds.
//!   Writes are stamped at their return, like reads.
//! - **Syscall tracepoints** (the fallback where raw tracepoints or the register layout are missing):
//!   an entry program notes the call in [`IN_FLIGHT`], the exit program finishes it. Writes are stamped
//!   at entry.
//!
//! Both end in [`finish_io`], [`accepted`], [`connected`] and [`closed`], so what a call means is
//! decided in one place whichever hook saw it.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
    },
    programs::{RawTracePointContext, TracePointContext},
};
use watcher_common::{direction, side, KernelConfig};

use crate::{
    loss,
    maps::{self, InFlight, CONNECTING, IN_FLIGHT},
    new_code, payload, socket, task, tls,
};

/// Offset of the first syscall argument (and of `ret` in exit events) in a syscall tracepoint record.
const ARG0: usize = 16;
const EINPROGRESS: i64 = 115;

/// How an I/O syscall passes its buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `(fd, buf, len, ...)`: read, write, recvfrom, sendto.
    Plain,
    /// `(fd, iov, iovcnt)`: readv, writev.
    Vector,
    /// `(fd, msghdr, flags)`: recvmsg, sendmsg.
    Message,
    /// `(out_fd, in_fd, ...)`: sendfile. The bytes never pass through user memory, so only their
    /// count is reported (user space sees them as a gap, e.g. inside an HTTP body of known length).
    NoBuffer,
}

/// The call `(fd, a1, a2)` of `shape` by thread `owner`, as the copy needs it.
#[inline(always)]
pub fn io_call(
    owner: u64,
    dir: u8,
    shape: Shape,
    args: [u64; 3],
    ts_enter_ns: u64,
) -> Option<InFlight> {
    let (buf, len, vectored) = match shape {
        Shape::Plain => (args[1], args[2], 0),
        Shape::Vector => (args[1], args[2], 1),
        Shape::NoBuffer => (0, 0, 0),
        Shape::Message => {
            let msg = args[1];
            // SAFETY: user memory reads are checked by the helper. x86_64 `struct user_msghdr` has
            // msg_iov at offset 16 and msg_iovlen at offset 24; the kernel never rewrites them.
            let iov = unsafe { bpf_probe_read_user((msg + 16) as *const u64) }.ok()?;
            let iovlen = unsafe { bpf_probe_read_user((msg + 24) as *const u64) }.ok()?;
            (iov, iovlen, 1)
        }
    };
    Some(InFlight {
        owner,
        fd: args[0] as i32,
        direction: dir,
        vectored,
        pad: [0; 2],
        buf,
        len,
        ts_enter_ns,
    })
}

/// An I/O call of a traced task returned `ret`: send its bytes if its fd is a traced socket.
#[inline(always)]
fn finish_io(cfg: &KernelConfig, call: &InFlight, ret: i64) -> Option<()> {
    let id = call.owner;
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    let tls_call = if cfg.tls == 0 {
        None
    } else {
        tls::current_call(id)
    };
    if ret <= 0 {
        // A read that found nothing (EAGAIN) inside a TLS call still names the call's socket.
        if let Some(tls_call) = tls_call {
            if socket::known_tcp(tgid, call.fd) {
                tls::socket_used(tls_call, call.fd);
            }
        }
        return None;
    }
    let sock = socket::tcp_socket(cfg, tgid, tid, call.fd)?;
    if let Some(tls_call) = tls_call {
        // The bytes are ciphertext of a TLS call (or the first flush after one): note the socket for
        // the return probe, and whatever the filters say, send nothing.
        if tls::claims(tls_call, tgid, call.fd, call.direction) {
            sock.tls = 1;
            return None;
        }
    }
    if sock.state != maps::STATE_TRACED || sock.tls != 0 {
        // Filtered out, or ciphertext of a socket whose plaintext is captured (an alert, a close_notify).
        return None;
    }
    let moved_ns = if call.ts_enter_ns != 0 {
        call.ts_enter_ns
    } else {
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_ns() }
    };
    let stream = &raw mut sock.stream_pos[usize::from(call.direction & 1)];
    payload::emit(cfg, call, stream, 0, ret as u64, tgid, tid, moved_ns);
    Some(())
}

/// accept(2) or accept4(2) returned `fd`: the task is the connection's server side.
#[inline(always)]
fn accepted(cfg: &KernelConfig, id: u64, fd: i64) -> Option<()> {
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    if fd < 0 || !task::task_traced(cfg, tgid) {
        return None;
    }
    socket::classify(cfg, tgid, tid, fd as i32, side::SERVER);
    Some(())
}

/// connect(2) on `fd` returned `ret`: on success or in progress the task is the client side.
#[inline(always)]
fn connected(cfg: &KernelConfig, id: u64, fd: i32, ret: i64) -> Option<()> {
    if ret != 0 && ret != -EINPROGRESS {
        return None;
    }
    socket::classify(cfg, (id >> 32) as u32, id as u32, fd, side::CLIENT);
    Some(())
}

// ---- Syscall tracepoints: an entry and an exit program per call -------------------------------------

#[inline(always)]
fn arg(ctx: &TracePointContext, n: usize) -> Option<u64> {
    // SAFETY: syscall tracepoint records hold 8-byte argument slots from offset 16 (see the format files
    // under /sys/kernel/tracing/events/syscalls); read_at is bounds-checked by the kernel.
    unsafe { ctx.read_at::<u64>(ARG0 + 8 * n) }.ok()
}

/// The [`IN_FLIGHT`] slot of a thread.
#[inline(always)]
fn in_flight_slot(pid_tgid: u64) -> u32 {
    (pid_tgid as u32) & (maps::IN_FLIGHT_SLOTS - 1)
}

/// Entry of an I/O call: note it for the exit.
pub fn enter_io(ctx: &TracePointContext, dir: u8, shape: Shape) -> Option<()> {
    let (_, id) = task::traced_caller()?;
    // Whether the fd is a traced socket is decided at exit: one socket lookup per call, not two.
    let ts_enter_ns = if dir == direction::EGRESS {
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_ns() }
    } else {
        0
    };
    let call = io_call(
        id,
        dir,
        shape,
        [arg(ctx, 0)?, arg(ctx, 1)?, arg(ctx, 2)?],
        ts_enter_ns,
    )?;
    let slot = IN_FLIGHT.get_ptr_mut(in_flight_slot(id))?;
    // SAFETY: a pointer into the array, valid for this run. Slots are shared only by threads whose
    // ids collide; the owner field tells their calls apart.
    let slot = unsafe { &mut *slot };
    if slot.owner != 0 && slot.owner != id {
        loss::count(|l| l.pending_full += 1);
    }
    *slot = call;
    Some(())
}

/// Exit of an I/O call noted by [`enter_io`].
pub fn exit_io(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let slot = IN_FLIGHT.get_ptr_mut(in_flight_slot(id))?;
    // SAFETY: as at entry; the call is copied out and the slot freed before anything else.
    let call = unsafe {
        let call = *slot;
        if call.owner != id {
            return None;
        }
        (*slot).owner = 0;
        call
    };
    finish_io(task::config()?, &call, arg(ctx, 0)? as i64)
}

/// Exit of accept(2) or accept4(2).
pub fn exit_accept(ctx: &TracePointContext) -> Option<()> {
    accepted(
        task::config()?,
        bpf_get_current_pid_tgid(),
        arg(ctx, 0)? as i64,
    )
}

/// Entry of connect(2): remember the fd until it returns.
pub fn enter_connect(ctx: &TracePointContext) -> Option<()> {
    let (_, id) = task::traced_caller()?;
    let fd = arg(ctx, 0)? as i32;
    CONNECTING.insert(id, fd, 0).ok()
}

/// Exit of connect(2).
pub fn exit_connect(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    // SAFETY: copied out before removal.
    let fd = *unsafe { CONNECTING.get(id) }?;
    let _ = CONNECTING.remove(id);
    connected(task::config()?, id, fd, arg(ctx, 0)? as i64)
}

/// Entry of close(2): forget the fd so a reused number is classified afresh.
pub fn enter_close(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let fd = arg(ctx, 0)? as i32;
    socket::forget(task::config()?, (id >> 32) as u32, id as u32, fd);
    Some(())
}

// ---- Raw sys_exit: one program for every call -------------------------------------------------------

/// The part of x86_64's `struct pt_regs` from `dx` to `cs`: the first three arguments, the syscall
/// number and the code segment the call came from.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SavedRegs {
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    ip: u64,
    cs: u64,
}

/// Offset of `dx` in x86_64's `struct pt_regs` (after r15..r8, ax, cx), stable since 2.6.
const PT_REGS_DX: u64 = 96;
/// `__USER_CS`: a 64-bit call. A 32-bit (compat) task's calls have other numbers and registers.
const USER_CS: u64 = 0x33;

/// x86_64 syscall numbers of the hooked calls.
pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const CLOSE: u64 = 3;
    pub const MMAP: u64 = 9;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const SENDFILE: u64 = 40;
    pub const CONNECT: u64 = 42;
    pub const ACCEPT: u64 = 43;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SENDMSG: u64 = 46;
    pub const RECVMSG: u64 = 47;
    pub const EXECVE: u64 = 59;
    pub const ACCEPT4: u64 = 288;
    pub const EXECVEAT: u64 = 322;
}

/// The registers a 64-bit call from user space saved at entry, at a raw `sys_exit`
/// (`sys_exit(struct pt_regs *regs, long ret)`); none for a 32-bit (compat) call.
#[inline(always)]
pub fn saved_regs(ctx: &RawTracePointContext) -> Option<SavedRegs> {
    let regs: u64 = ctx.arg(0);
    // SAFETY: `regs` is the kernel's saved register frame of the current task; the helper checks the
    // address and fails instead of faulting.
    let r = unsafe { bpf_probe_read_kernel((regs + PT_REGS_DX) as *const SavedRegs) }.ok()?;
    (r.cs == USER_CS).then_some(r)
}

/// The direction and shape of syscall `n` if it moves a socket's bytes (and sendfile, which reports
/// only their count): the calls watcher captures, and the least copy (`floor`) copies.
#[inline(always)]
pub fn data_call(n: u64) -> Option<(u8, Shape)> {
    Some(match n {
        nr::READ | nr::RECVFROM => (direction::INGRESS, Shape::Plain),
        nr::READV => (direction::INGRESS, Shape::Vector),
        nr::RECVMSG => (direction::INGRESS, Shape::Message),
        nr::WRITE | nr::SENDTO => (direction::EGRESS, Shape::Plain),
        nr::WRITEV => (direction::EGRESS, Shape::Vector),
        nr::SENDMSG => (direction::EGRESS, Shape::Message),
        nr::SENDFILE => (direction::EGRESS, Shape::NoBuffer),
        _ => return None,
    })
}

/// Any syscall returned: `sys_exit(struct pt_regs *regs, long ret)`.
pub fn raw_exit(ctx: &RawTracePointContext) -> Option<()> {
    // The task filter first: it is a few instructions the JIT inlines, where reading the registers is a
    // helper call, and most syscalls on a host are not the traced processes'. Closes are filtered too:
    // every use of a socket entry is behind this filter, so an untraced task's entries are never read.
    let (cfg, id) = task::traced_caller()?;
    let ret: i64 = ctx.arg(1);
    let r = saved_regs(ctx)?;
    let Some((dir, shape)) = data_call(r.orig_ax) else {
        return match r.orig_ax {
            nr::ACCEPT | nr::ACCEPT4 => accepted(cfg, id, ret),
            nr::CONNECT => connected(cfg, id, r.di as i32, ret),
            nr::CLOSE => {
                if ret != 0 {
                    return None;
                }
                socket::forget_closed(cfg, (id >> 32) as u32, id as u32, r.di as i32);
                Some(())
            }
            // Only the TLS finder asks what code a process brings.
            nr::EXECVE | nr::EXECVEAT if cfg.tls != 0 => {
                new_code::exec(cfg, (id >> 32) as u32, ret)
            }
            nr::MMAP if cfg.tls != 0 => new_code::mmap(ctx, cfg, (id >> 32) as u32, r.dx, ret),
            _ => None,
        };
    };
    // A call that moved nothing matters only inside a TLS call (see `finish_io`).
    if ret <= 0 && cfg.tls == 0 {
        return None;
    }
    let call = io_call(id, dir, shape, [r.di, r.si, r.dx], 0)?;
    finish_io(cfg, &call, ret)
}
