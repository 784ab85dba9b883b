//! Kernel side of watcher: programs on syscall returns (a raw tracepoint, or syscall tracepoints) that find TCP sockets and copy their payload into
//! a ring buffer for user space, and uprobes on TLS libraries that do the same with the plaintext.
//!
//! Entry points are thin (`fn x(ctx) -> u32` calling into a module); what a socket syscall means is in
//! `syscall` (for the raw `sys_exit` hook and the fallback syscall tracepoints alike), filtering in `task`
//! and `socket`, copying in `payload`, TLS calls in `tls` (OpenSSL) and `go_tls` (Go), following a recorded command's process tree in `process`,
//! counting of loss in `loss`, noting processes that bring new code (for the TLS finder) in `new_code`, the benchmark's floor of a capture in `floor`. Nothing here parses protocols: that is user space's job, and the kernel side must stay small
//! enough for the verifier and cheap for the traced process.
#![no_std]
#![no_main]

mod floor;
mod go_tls;
mod loss;
mod maps;
mod new_code;
mod payload;
mod process;
mod ring;
mod socket;
mod syscall;
mod task;
mod tls;

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint, uprobe, uretprobe},
    programs::{ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext},
};
use watcher_common::direction;

use crate::syscall::Shape;

/// Every syscall's return, on x86_64 the only syscall hook needed: see `syscall`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let _ = syscall::raw_exit(&ctx);
    0
}

/// Defines the enter and exit programs of one I/O syscall (the fallback hooks: see `syscall`).
macro_rules! io_syscall {
    ($enter:ident, $exit:ident, $dir:expr, $shape:expr) => {
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            let _ = syscall::enter_io(&ctx, $dir, $shape);
            0
        }

        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            let _ = syscall::exit_io(&ctx);
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
    let _ = syscall::exit_accept(&ctx);
    0
}

/// accept4(2) returned a connection: the process is its server side.
#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    let _ = syscall::exit_accept(&ctx);
    0
}

/// Remembers the fd of a connect(2) until it returns.
#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let _ = syscall::enter_connect(&ctx);
    0
}

/// connect(2) succeeded or is in progress: the process is the client side.
#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = syscall::exit_connect(&ctx);
    0
}

/// close(2): forget the fd so a reused number is classified afresh.
#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let _ = syscall::enter_close(&ctx);
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

/// Does nothing. `watcher bench-probes` attaches it to every hooked syscall tracepoint so the
/// benchmark can tell the cost of the hooks themselves from the cost of our programs.
#[tracepoint]
pub fn noop(_ctx: TracePointContext) -> u32 {
    0
}

/// Does nothing, on the raw `sys_exit` tracepoint: the floor of the preferred hook.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn noop_raw(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The least a capture must do per call, on the raw `sys_exit` tracepoint: `watcher bench-probes
/// --least-copy` attaches it so the benchmark can tell what copying the bytes costs from the rest of our
/// programs (see `floor`).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn least_copy(ctx: RawTracePointContext) -> i32 {
    let _ = floor::least_copy(&ctx);
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
