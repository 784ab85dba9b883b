//! Go's `crypto/tls` plaintext: uprobes in `(*tls.Conn).Read` and `Write`, and on what runs handshakes.
//!
//! Return probes are unsafe in Go (the runtime copies stacks and would find the kernel's trampoline
//! where a return address should be; a goroutine may return on another thread). A plain uprobe on a
//! `RET` works but is single-stepped (tens of microseconds on a VM, see `watcher-user`'s
//! `capture/tls/code.rs`), so where user space finds them in the code, the plaintext is taken at direct
//! calls, which the kernel emulates: `Read`'s call of `runtime.memmove` that copies the decrypted
//! record into `b` (`GO_READ_COPY`), and `Write`'s calls of `writeRecordLocked` (`GO_WRITE_RECORD`).
//! Otherwise it puts a probe on every `RET` of `Read` and `Write`, found by disassembling them. One
//! program serves all the points: the attach cookie says which one fired.
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
/// TLS's record type of application data (`recordTypeApplicationData`), the `typ` of every record
/// `Write` sends.
const RECORD_TYPE_APPLICATION_DATA: u8 = 23;
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

/// The call in progress of goroutine `key`, marked finished: the slot stays for the goroutine's next
/// call, to be written in place (LRU evicts the slots of goroutines gone).
#[inline(always)]
fn finish(key: [u64; 2]) -> Option<GoTlsCall> {
    let slot = GO_TLS_CALLS.get_ptr_mut(key)?;
    // SAFETY: a pointer into the map's value, valid for this run.
    let slot = unsafe { &mut *slot };
    let call = *slot;
    slot.function = FINISHED;
    (call.function != FINISHED).then_some(call)
}

/// `GoTlsCall::function` of a slot whose call has been sent: not a cookie value.
const FINISHED: u64 = 0;

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
    // Read once, here: left to the compiler, loads in different arms become one load at a computed
    // offset into the context, which the verifier refuses.
    // SAFETY: the fields are in the context, read as they are.
    let load = |field: &u64| unsafe { core::ptr::read_volatile(field) };
    let [rax, rbx, rcx, rdi, r14] = [
        load(&regs.rax),
        load(&regs.rbx),
        load(&regs.rcx),
        load(&regs.rdi),
        load(&regs.r14),
    ];
    let key = [id >> 32, r14];
    // Plaintext to send, as (socket, direction, buffer, bytes, when moved): one call site below, so
    // the copy is inlined into the program once.
    let (fd, dir, buf, bytes, moved_ns) = match function {
        tls_function::GO_HANDSHAKE => {
            // Only so the handshake's ciphertext is held back from its first byte.
            tls::mark_socket(cfg, id, conn_fd(rax)?);
            return Some(());
        }
        tls_function::GO_READ | tls_function::GO_WRITE => {
            let fd = conn_fd(rax)?;
            tls::mark_socket(cfg, id, fd);
            let call = GoTlsCall {
                function,
                buf: rbx,
                ts_enter_ns: if function == tls_function::GO_WRITE {
                    // SAFETY: no preconditions.
                    unsafe { bpf_ktime_get_ns() }
                } else {
                    0
                },
                fd,
                pad: 0,
            };
            // An entry seen twice (the stack grew, and the function started over) overwrites. A
            // goroutine's slot is written in place when it has one (its earlier calls leave it, see
            // `finish`): an LRU insert takes a lock and a node, a lookup neither.
            match GO_TLS_CALLS.get_ptr_mut(key) {
                // SAFETY: a pointer into the map's value, valid for this run.
                Some(slot) => unsafe { *slot = call },
                None => {
                    let _ = GO_TLS_CALLS.insert(key, call, 0);
                }
            }
            return Some(());
        }
        tls_function::GO_READ_RETURN | tls_function::GO_WRITE_RETURN => {
            let call = finish(key)?;
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
            (call.fd, dir, call.buf, rax, moved_ns)
        }
        tls_function::GO_READ_COPY => {
            let call = finish(key)?;
            // The copy goes into this Read's `b`: anything else is not the call that was found.
            if call.function != tls_function::GO_READ || call.buf != rax {
                return None;
            }
            // SAFETY: no preconditions.
            let now = unsafe { bpf_ktime_get_ns() };
            // From the copy's source: the destination is filled only after this probe.
            (call.fd, direction::INGRESS, rbx, rcx, now)
        }
        tls_function::GO_WRITE_RECORD => {
            if rbx as u8 != RECORD_TYPE_APPLICATION_DATA {
                return None;
            }
            // No separate mark: `send_plaintext` marks the socket it sends on, and a record with no
            // bytes sends no ciphertext either.
            // SAFETY: no preconditions.
            let now = unsafe { bpf_ktime_get_ns() };
            (conn_fd(rax)?, direction::EGRESS, rcx, rdi, now)
        }
        _ => return None,
    };
    let bytes = bytes as i64;
    if bytes <= 0 {
        return None;
    }
    tls::send_plaintext(cfg, id, fd, dir, buf, bytes as u64, moved_ns);
    Some(())
}
