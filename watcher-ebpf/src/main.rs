//! Kernel side of watcher: syscall tracepoint programs that find TCP sockets and copy their payload into
//! a ring buffer for user space, and uprobes on TLS libraries that do the same with the plaintext.
//!
//! Entry points are thin (`fn x(ctx) -> u32` calling `try_x`); filtering is in `task` and `socket`,
//! copying in `payload`, TLS calls in `tls` (OpenSSL) and `go_tls` (Go), following a recorded command's process tree in `process`,
//! counting of loss in `loss`. Nothing here parses protocols: that is user space's job, and the kernel side must stay small
//! enough for the verifier and cheap for the traced process.
#![no_std]
#![no_main]

mod go_tls;
mod loss;
mod maps;
mod payload;
mod process;
mod ring;
mod socket;
mod task;
mod tls;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{tracepoint, uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext, TracePointContext},
};
use watcher_common::{direction, side};

use crate::maps::{InFlight, CONNECTING, IN_FLIGHT};

/// Offset of the first syscall argument (and of `ret` in exit events) in the tracepoint record.
const ARG0: usize = 16;
const EINPROGRESS: i64 = 115;

/// How an I/O syscall passes its buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
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

#[inline(always)]
fn arg(ctx: &TracePointContext, n: usize) -> Option<u64> {
    // SAFETY: syscall tracepoint records hold 8-byte argument slots from offset 16 (see the format files
    // under /sys/kernel/tracing/events/syscalls); read_at is bounds-checked by the kernel.
    unsafe { ctx.read_at::<u64>(ARG0 + 8 * n) }.ok()
}

fn try_enter_io(ctx: &TracePointContext, dir: u8, shape: Shape) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let cfg = task::config()?;
    if !task::task_traced(cfg, (id >> 32) as u32) {
        return None;
    }
    // Whether the fd is a traced socket is decided at exit: one socket lookup per call, not two.
    let fd = arg(ctx, 0)? as i32;
    let (buf, len, vectored) = match shape {
        Shape::Plain => (arg(ctx, 1)?, arg(ctx, 2)?, 0),
        Shape::Vector => (arg(ctx, 1)?, arg(ctx, 2)?, 1),
        Shape::NoBuffer => (0, 0, 0),
        Shape::Message => {
            let msg = arg(ctx, 1)?;
            // SAFETY: user memory reads are checked by the helper. x86_64 `struct user_msghdr` has
            // msg_iov at offset 16 and msg_iovlen at offset 24.
            let iov = unsafe { bpf_probe_read_user((msg + 16) as *const u64) }.ok()?;
            let iovlen = unsafe { bpf_probe_read_user((msg + 24) as *const u64) }.ok()?;
            (iov, iovlen, 1)
        }
    };
    let slot = IN_FLIGHT.get_ptr_mut(in_flight_slot(id))?;
    // SAFETY: a pointer into the array, valid for this run. Slots are shared only by threads whose
    // ids collide; the owner field tells their calls apart.
    let slot = unsafe { &mut *slot };
    if slot.owner != 0 && slot.owner != id {
        loss::count(|l| l.pending_full += 1);
    }
    *slot = InFlight {
        owner: id,
        fd,
        direction: dir,
        vectored,
        pad: [0; 2],
        buf,
        len,
        ts_enter_ns: if dir == direction::EGRESS {
            // SAFETY: no preconditions.
            unsafe { bpf_ktime_get_ns() }
        } else {
            0
        },
    };
    Some(())
}

/// The [`IN_FLIGHT`] slot of a thread.
#[inline(always)]
fn in_flight_slot(pid_tgid: u64) -> u32 {
    (pid_tgid as u32) & (maps::IN_FLIGHT_SLOTS - 1)
}

fn try_exit_io(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let slot = IN_FLIGHT.get_ptr_mut(in_flight_slot(id))?;
    // SAFETY: as at entry; the call is copied out and the slot freed before anything else.
    let call = unsafe {
        if (*slot).owner != id {
            return None;
        }
        (*slot).owner = 0;
        *slot
    };
    let ret = arg(ctx, 0)? as i64;
    let cfg = task::config()?;
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
    let moved_ns = if call.direction == direction::INGRESS {
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_ns() }
    } else {
        call.ts_enter_ns
    };
    let stream = &raw mut sock.stream_pos[usize::from(call.direction & 1)];
    payload::emit(cfg, &call, stream, 0, ret as u64, tgid, tid, moved_ns);
    Some(())
}

fn try_exit_accept(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    let cfg = task::config()?;
    if !task::task_traced(cfg, tgid) {
        return None;
    }
    let fd = arg(ctx, 0)? as i64;
    if fd < 0 {
        return None;
    }
    socket::classify(cfg, tgid, tid, fd as i32, side::SERVER);
    Some(())
}

fn try_enter_connect(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let cfg = task::config()?;
    if !task::task_traced(cfg, (id >> 32) as u32) {
        return None;
    }
    let fd = arg(ctx, 0)? as i32;
    CONNECTING.insert(id, fd, 0).ok()
}

fn try_exit_connect(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    // SAFETY: copied out before removal.
    let fd = *unsafe { CONNECTING.get(id) }?;
    let _ = CONNECTING.remove(id);
    let ret = arg(ctx, 0)? as i64;
    if ret != 0 && ret != -EINPROGRESS {
        return None;
    }
    let cfg = task::config()?;
    socket::classify(cfg, (id >> 32) as u32, id as u32, fd, side::CLIENT);
    Some(())
}

fn try_enter_close(ctx: &TracePointContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let fd = arg(ctx, 0)? as i32;
    socket::forget(task::config()?, (id >> 32) as u32, id as u32, fd);
    Some(())
}

/// Defines the enter and exit programs of one I/O syscall.
macro_rules! io_syscall {
    ($enter:ident, $exit:ident, $dir:expr, $shape:expr) => {
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            let _ = try_enter_io(&ctx, $dir, $shape);
            0
        }

        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            let _ = try_exit_io(&ctx);
            0
        }
    };
}

io_syscall!(
    sys_enter_read,
    sys_exit_read,
    direction::INGRESS,
    Shape::Plain
);
io_syscall!(
    sys_enter_recvfrom,
    sys_exit_recvfrom,
    direction::INGRESS,
    Shape::Plain
);
io_syscall!(
    sys_enter_readv,
    sys_exit_readv,
    direction::INGRESS,
    Shape::Vector
);
io_syscall!(
    sys_enter_recvmsg,
    sys_exit_recvmsg,
    direction::INGRESS,
    Shape::Message
);
io_syscall!(
    sys_enter_write,
    sys_exit_write,
    direction::EGRESS,
    Shape::Plain
);
io_syscall!(
    sys_enter_sendto,
    sys_exit_sendto,
    direction::EGRESS,
    Shape::Plain
);
io_syscall!(
    sys_enter_writev,
    sys_exit_writev,
    direction::EGRESS,
    Shape::Vector
);
io_syscall!(
    sys_enter_sendmsg,
    sys_exit_sendmsg,
    direction::EGRESS,
    Shape::Message
);

io_syscall!(
    sys_enter_sendfile64,
    sys_exit_sendfile64,
    direction::EGRESS,
    Shape::NoBuffer
);

/// accept(2) returned a connection: the process is its server side.
#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let _ = try_exit_accept(&ctx);
    0
}

/// accept4(2) returned a connection: the process is its server side.
#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    let _ = try_exit_accept(&ctx);
    0
}

/// Remembers the fd of a connect(2) until it returns.
#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let _ = try_enter_connect(&ctx);
    0
}

/// connect(2) succeeded or is in progress: the process is the client side.
#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = try_exit_connect(&ctx);
    0
}

/// close(2): forget the fd so a reused number is classified afresh.
#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let _ = try_enter_close(&ctx);
    0
}

/// A task forked: its child may join a recorded command's process tree.
#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let _ = process::try_fork(&ctx);
    0
}

/// A task exited: it leaves the followed process tree.
#[tracepoint]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    let _ = process::try_exit();
    0
}

/// Entry of a TLS library function (which one is the attach cookie): see `tls`.
#[uprobe]
pub fn tls_enter(ctx: ProbeContext) -> u32 {
    let _ = tls::try_enter(&ctx);
    0
}

/// Return of a TLS library function: sends its plaintext.
#[uretprobe]
pub fn tls_return(ctx: RetProbeContext) -> u32 {
    let _ = tls::try_return(&ctx);
    0
}

/// A probe point of Go's `crypto/tls` (an entry or a `RET`; which one is the attach cookie): see
/// `go_tls`.
#[uprobe]
pub fn go_tls(ctx: ProbeContext) -> u32 {
    let _ = go_tls::try_probe(&ctx);
    0
}

/// Does nothing. `watcher bench-probes` attaches it to every hooked tracepoint so the benchmark can
/// tell the cost of the hooks themselves from the cost of our programs.
#[tracepoint]
pub fn noop(_ctx: TracePointContext) -> u32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
