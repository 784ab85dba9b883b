//! TLS plaintext: uprobes on OpenSSL's `SSL_read`, `SSL_write`, their `_ex` forms and
//! `SSL_do_handshake`, tied to the socket each call reads or writes.
//!
//! The entry probe keeps the call's buffer in a per-thread slot of `TLS_CALLS`. While the call runs, the
//! socket hooks (`main.rs`) see the thread's slot: they note the fd of any socket the library reads or
//! writes, mark that socket as TLS and send none of its ciphertext. The return probe then sends the
//! plaintext on that socket's plaintext stream (`SocketState::tls_pos`), flagged `flags::TLS`. A call
//! served from the library's buffer makes no socket call; it finds its socket through `TLS_SOCKETS`,
//! which remembers the fd of every `SSL` object seen on a socket. Handshakes are hooked only so their
//! ciphertext is recognised and held back, and their `SSL` object's socket learnt.
//!
//! Some programs (Node.js) run OpenSSL on memory buffers and move the ciphertext themselves, after the
//! call: no socket call happens inside any TLS call. For them, a call that ends wanting I/O (returns 0
//! or less) without having touched a socket leaves its slot waiting: the thread's next write to a TCP
//! socket is that connection's ciphertext (the handshake bytes the library just produced), and names
//! the `SSL` object's socket from then on.
//!
//! One entry and one return program serve every function: the attach cookie says which one fired.
//! Nothing here writes to the traced process's memory.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
        generated::bpf_get_attach_cookie,
    },
    programs::{ProbeContext, RetProbeContext},
    EbpfContext,
};
use watcher_common::{direction, flags, tls_function, KernelConfig};

use crate::{
    loss,
    maps::{InFlight, TlsCall, TlsFrame, TLS_CALLS, TLS_SOCKETS},
    payload, socket, task,
};

/// `TlsFrame::function` of a slot whose call returned wanting I/O without touching a socket: waiting
/// for the thread's next socket write (see the module doc). Not a cookie value.
const AWAITING_FLUSH: u64 = 0x100;

/// The socket hooks saw the current thread's call use `fd` (a known TCP socket) in a call that moved
/// no bytes.
#[inline(always)]
pub fn socket_used(slot: &mut TlsCall, fd: i32) {
    if slot.call.function != AWAITING_FLUSH {
        slot.call.fd = fd;
    }
}

/// The socket hooks saw the current thread move bytes on TCP socket `fd` in `direction` while its slot
/// is taken. Returns true if the bytes are TLS ciphertext (never to be sent): those of a call in
/// progress, or the first write after a call that ended waiting for its flush.
#[inline(always)]
pub fn claims(slot: &mut TlsCall, tgid: u32, fd: i32, direction: u8) -> bool {
    if slot.call.function != AWAITING_FLUSH {
        slot.call.fd = fd;
        return true;
    }
    if direction != direction::EGRESS {
        return false;
    }
    // A full LRU map evicts; a failed insert only means the next call waits for a flush again.
    let _ = TLS_SOCKETS.insert([u64::from(tgid), slot.call.ssl], fd, 0);
    slot.owner = 0;
    true
}

/// The [`TLS_CALLS`] slot of a thread.
#[inline(always)]
fn slot_of(pid_tgid: u64) -> u32 {
    (pid_tgid as u32) & (crate::maps::IN_FLIGHT_SLOTS - 1)
}

/// The TLS call the current thread is inside, if any: what the socket hooks ask on every traced call.
#[inline(always)]
pub fn current_call(pid_tgid: u64) -> Option<&'static mut TlsCall> {
    let slot = TLS_CALLS.get_ptr_mut(slot_of(pid_tgid))?;
    // SAFETY: a pointer into the array, valid for this run; the owner check below tells threads that
    // share the slot apart.
    let slot = unsafe { &mut *slot };
    (slot.owner == pid_tgid).then_some(slot)
}

/// The attach cookie: which function's probe fired.
#[inline(always)]
pub fn cookie(ctx: &impl EbpfContext) -> u64 {
    // SAFETY: the context pointer is the program's own; the helper only reads the attach cookie.
    unsafe { bpf_get_attach_cookie(ctx.as_ptr()) }
}

/// Entry of a TLS function: remembers the call for the socket hooks and the return probe.
pub fn try_enter(ctx: &ProbeContext) -> Option<()> {
    let cfg = task::config()?;
    let id = bpf_get_current_pid_tgid();
    if cfg.tls == 0 || !task::task_traced(cfg, (id >> 32) as u32) {
        return None;
    }
    let function = cookie(ctx);
    let (buf, count_ptr) = match function {
        tls_function::READ | tls_function::WRITE => (ctx.arg::<u64>(1)?, 0),
        tls_function::READ_EX | tls_function::WRITE_EX => (ctx.arg::<u64>(1)?, ctx.arg::<u64>(3)?),
        _ => (0, 0),
    };
    let writes = function == tls_function::WRITE || function == tls_function::WRITE_EX;
    let frame = TlsFrame {
        function,
        ssl: ctx.arg::<u64>(0)?,
        buf,
        count_ptr,
        // SAFETY: no preconditions.
        ts_enter_ns: if writes {
            unsafe { bpf_ktime_get_ns() }
        } else {
            0
        },
        fd: -1,
        pad: 0,
    };
    let slot = TLS_CALLS.get_ptr_mut(slot_of(id))?;
    // SAFETY: as in `current_call`.
    let slot = unsafe { &mut *slot };
    if slot.owner != 0 && slot.call.function == AWAITING_FLUSH {
        // A previous call left the slot waiting for a flush that has not come: nothing is lost.
        slot.owner = 0;
    }
    if slot.owner == id {
        // Called from inside another call of this thread (a callback of the library).
        if slot.nested != 0 {
            // Deeper than two: the middle call is given up.
            loss::count(|l| l.tls_pending_full += 1);
        }
        slot.outer = slot.call;
        slot.nested = 1;
        slot.call = frame;
        return Some(());
    }
    if slot.owner != 0 {
        // Another thread's calls (their ids collide in the slot): they are lost.
        loss::count(|l| l.tls_pending_full += 1);
    }
    slot.owner = id;
    slot.nested = 0;
    slot.call = frame;
    Some(())
}

/// Return of a TLS function: sends the plaintext it moved on its socket's plaintext stream.
pub fn try_return(ctx: &RetProbeContext) -> Option<()> {
    let id = bpf_get_current_pid_tgid();
    let slot = current_call(id)?;
    if slot.call.function != cookie(ctx) {
        // Not the return of the call in the slot (whose entry came before the probes were armed).
        return None;
    }
    let call = slot.call;
    let outermost = slot.nested == 0;
    if outermost {
        slot.owner = 0;
    } else {
        slot.call = slot.outer;
        slot.nested = 0;
    }
    let cfg = task::config()?;
    let tgid = (id >> 32) as u32;
    let key = [u64::from(tgid), call.ssl];
    // SAFETY: the value is copied out at once.
    let known = unsafe { TLS_SOCKETS.get(key) }.copied();
    let fd = if call.fd >= 0 {
        // Written only when new: an LRU insert takes a lock and a node where a lookup takes neither,
        // and an `SSL` object keeps its socket, so nearly every call finds it there already.
        if known != Some(call.fd) {
            // A full LRU map evicts; a failed insert only means a later buffered call may go
            // unattributed.
            let _ = TLS_SOCKETS.insert(key, call.fd, 0);
        }
        call.fd
    } else {
        known.unwrap_or(-1)
    };
    // Every probed function returns a C `int`: the upper half of the register is not part of it.
    let ret = i64::from(ctx.ret::<i32>());
    if fd < 0 && ret <= 0 {
        if outermost {
            // Wants I/O it did not do itself: its ciphertext is in memory, and the thread's next
            // socket write carries it.
            slot.owner = id;
            slot.call.function = AWAITING_FLUSH;
            slot.call.ssl = call.ssl;
        }
        return None;
    }
    let (dir, bytes) = match call.function {
        tls_function::READ if ret > 0 => (direction::INGRESS, ret as u64),
        tls_function::WRITE if ret > 0 => (direction::EGRESS, ret as u64),
        // SAFETY (both): the helper validates the user address and fails instead of faulting.
        tls_function::READ_EX if ret == 1 => (
            direction::INGRESS,
            unsafe { bpf_probe_read_user(call.count_ptr as *const u64) }.ok()?,
        ),
        tls_function::WRITE_EX if ret == 1 => (
            direction::EGRESS,
            unsafe { bpf_probe_read_user(call.count_ptr as *const u64) }.ok()?,
        ),
        _ => return None,
    };
    if bytes == 0 {
        return None;
    }
    if fd < 0 {
        loss::count(|l| {
            l.tls_no_socket_calls += 1;
            l.tls_no_socket_bytes += bytes;
        });
        return None;
    }
    let moved_ns = if dir == direction::INGRESS {
        // SAFETY: no preconditions.
        unsafe { bpf_ktime_get_ns() }
    } else {
        call.ts_enter_ns
    };
    send_plaintext(cfg, id, fd, dir, call.buf, bytes, moved_ns);
    Some(())
}

/// Marks socket `fd` of the current process as TLS (its ciphertext is held back from now on), if it is
/// a TCP socket.
#[inline(always)]
pub fn mark_socket(cfg: &KernelConfig, pid_tgid: u64, fd: i32) {
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if let Some(sock) = socket::tcp_socket(cfg, tgid, tid, fd) {
        sock.tls = 1;
    }
}

/// Sends `bytes` of plaintext at `buf` on the plaintext stream of socket `fd` of the current process,
/// moved in `dir` at `moved_ns`, and marks the socket as TLS so its ciphertext is held back. Filters
/// apply as to any socket: an ignored socket's plaintext is ignored too.
#[inline(always)]
pub fn send_plaintext(
    cfg: &KernelConfig,
    pid_tgid: u64,
    fd: i32,
    dir: u8,
    buf: u64,
    bytes: u64,
    moved_ns: u64,
) {
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let Some(sock) = socket::traced_socket(cfg, tgid, tid, fd) else {
        return;
    };
    sock.tls = 1;
    let stream = &raw mut sock.tls_pos[usize::from(dir & 1)];
    let plain = InFlight {
        owner: pid_tgid,
        fd,
        direction: dir,
        vectored: 0,
        pad: [0; 2],
        buf,
        len: bytes,
        ts_enter_ns: moved_ns,
    };
    payload::emit(cfg, &plain, stream, flags::TLS, bytes, tgid, tid, moved_ns);
}
