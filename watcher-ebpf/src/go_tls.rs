//! Go's `crypto/tls` plaintext: uprobes on `(*tls.Conn).Read`, `Write` and `handshakeContext`.
//!
//! Return probes are unsafe in Go (the runtime copies stacks and would find the kernel's trampoline
//! where a return address should be; a goroutine may return on another thread), so user space puts a
//! plain uprobe on every `RET` instruction of `Read` and `Write` instead, found by disassembling them.
//! One program serves all the points: the attach cookie says which one fired.
//!
//! Go's register ABI (Go 1.17+, amd64): the receiver arrives in RAX, the slice `b` in RBX (pointer)
//! and RCX (length); at a `RET`, the byte count is in RAX and the error's type word in RBX (0 when
//! nil). The current goroutine (`g`) is in R14, and calls in progress are keyed by it: a goroutine that
//! blocked in a read resumes on any thread. The socket is read from the connection itself:
//! `tls.Conn.conn` (a `net.Conn` interface, data word at +8) → `*net.TCPConn` → `*netFD` (its first
//! field) → `poll.FD.Sysfd` (+16, after the 16-byte `fdMutex`), a layout Go has kept since 1.12.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    programs::ProbeContext,
};
use watcher_common::{direction, tls_function};

use crate::{
    maps::{GoTlsCall, GO_TLS_CALLS},
    task, tls,
};

/// Offset of the interface's data word in `tls.Conn` (its first field, `conn net.Conn`).
const CONN_IFACE_DATA: u64 = 8;
/// Offset of `poll.FD.Sysfd` in `netFD` (whose first field is `pfd poll.FD`).
const NETFD_SYSFD: u64 = 16;

#[inline(always)]
fn read_user(addr: u64) -> Option<u64> {
    // SAFETY: the helper validates the user address and fails instead of faulting.
    unsafe { bpf_probe_read_user(addr as *const u64) }.ok()
}

/// The socket fd of the `*tls.Conn` at `conn`.
#[inline(always)]
fn conn_fd(conn: u64) -> Option<i32> {
    let tcp_conn = read_user(conn + CONN_IFACE_DATA)?;
    let net_fd = read_user(tcp_conn)?;
    let fd = read_user(net_fd + NETFD_SYSFD)? as i64;
    (0..=i64::from(i32::MAX)).contains(&fd).then_some(fd as i32)
}

/// One of the Go TLS probe points fired.
pub fn try_probe(ctx: &ProbeContext) -> Option<()> {
    let cfg = task::config()?;
    let id = bpf_get_current_pid_tgid();
    if cfg.tls == 0 || !task::task_traced(cfg, (id >> 32) as u32) {
        return None;
    }
    let function = tls::cookie(ctx);
    // SAFETY: a uprobe's context is the traced thread's saved registers, readable for the run.
    let regs = unsafe { &*ctx.regs };
    let key = [id >> 32, regs.r14];
    match function {
        tls_function::GO_HANDSHAKE => {
            // Only so the handshake's ciphertext is held back from its first byte.
            let fd = conn_fd(regs.rax)?;
            tls::mark_socket(cfg, id, fd);
        }
        tls_function::GO_READ | tls_function::GO_WRITE => {
            let fd = conn_fd(regs.rax)?;
            tls::mark_socket(cfg, id, fd);
            let call = GoTlsCall {
                function,
                buf: regs.rbx,
                ts_enter_ns: if function == tls_function::GO_WRITE {
                    // SAFETY: no preconditions.
                    unsafe { bpf_ktime_get_ns() }
                } else {
                    0
                },
                fd,
                pad: 0,
            };
            // An entry seen twice (the stack grew, and the function started over) overwrites.
            let _ = GO_TLS_CALLS.insert(key, call, 0);
        }
        tls_function::GO_READ_RETURN | tls_function::GO_WRITE_RETURN => {
            // SAFETY: the value is copied out at once.
            let call = *unsafe { GO_TLS_CALLS.get(key) }?;
            let _ = GO_TLS_CALLS.remove(key);
            let (dir, moved_ns) = if function == tls_function::GO_READ_RETURN {
                if call.function != tls_function::GO_READ {
                    return None;
                }
                // SAFETY: no preconditions.
                (direction::INGRESS, unsafe { bpf_ktime_get_ns() })
            } else {
                if call.function != tls_function::GO_WRITE {
                    return None;
                }
                (direction::EGRESS, call.ts_enter_ns)
            };
            // The bytes moved count even when an error came with them (a short write).
            let bytes = regs.rax as i64;
            if bytes <= 0 {
                return None;
            }
            tls::send_plaintext(cfg, id, call.fd, dir, call.buf, bytes as u64, moved_ns);
        }
        _ => {}
    }
    Some(())
}
