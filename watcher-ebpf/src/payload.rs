//! Copying the bytes of a finished I/O syscall into the ring buffer: one chunk per buffer (per iovec for
//! vectored calls), each at most `CHUNK_SIZE`.
//!
//! Every chunk carries the call's true byte count and its stream position, so user space can tell exactly
//! which bytes were captured, which were cut by `--capture-bytes` and which were lost.

use aya_ebpf::helpers::{bpf_get_smp_processor_id, bpf_probe_read_user, bpf_probe_read_user_buf};
use watcher_common::{
    flags, kind, DataEvent, EventHeader, KernelConfig, CHUNK_SIZE, COMM_LEN, MAX_IOVECS,
};

use crate::{
    loss,
    maps::{InFlight, SocketState, EVENTS, SCRATCH},
};

const HEADER_SIZE: usize = core::mem::size_of::<EventHeader>();

/// A user-space `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy)]
struct IoVec {
    base: u64,
    len: u64,
}

/// The user buffer segment at `index` of the call.
#[inline(always)]
fn segment(call: &InFlight, index: u32) -> Option<(u64, u64)> {
    if call.vectored == 0 {
        return (index == 0).then_some((call.buf, call.len));
    }
    if u64::from(index) >= call.len || index >= MAX_IOVECS {
        return None;
    }
    let ptr = (call.buf + u64::from(index) * 16) as *const IoVec;
    // SAFETY: bpf_probe_read_user validates the address and fails instead of faulting.
    let iov = unsafe { bpf_probe_read_user(ptr) }.ok()?;
    Some((iov.base, iov.len))
}

/// Sends the first `min(ret, capture_bytes)` bytes of the call to user space.
#[inline(always)]
pub fn emit(
    cfg: &KernelConfig,
    call: &InFlight,
    sock: *mut SocketState,
    ret: u64,
    tgid: u32,
    tid: u32,
    moved_ns: u64,
) {
    // SAFETY: `sock` points into the SOCKETS map and is valid for this run. The update is not atomic
    // (the BPF target offers no 64-bit fetch-add to Rust); two threads writing one socket at the same
    // instant can skew a position, which user space then reports as a gap rather than misparsing.
    let stream_pos = unsafe {
        let pos = &mut (*sock).stream_pos[usize::from(call.direction & 1)];
        let old = *pos;
        *pos = old + ret;
        old
    };
    // A call without a user buffer (sendfile) has nothing to copy.
    let cap = if call.buf == 0 && call.vectored == 0 {
        0
    } else if ret < u64::from(cfg.capture_bytes) {
        ret
    } else {
        u64::from(cfg.capture_bytes)
    };
    if cap < ret {
        loss::count(|l| {
            l.truncated_calls += 1;
            l.truncated_bytes += ret - cap;
        });
    }
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(event) = SCRATCH.get_ptr_mut(cpu) else {
        return;
    };
    // SAFETY: this CPU's slot; a tracepoint program runs to completion on its CPU, so no other run
    // uses the slot meanwhile.
    let event = unsafe { &mut *event };
    event.header = EventHeader {
        kind: kind::DATA,
        direction: call.direction,
        side: 0,
        flags: 0,
        tgid,
        tid,
        fd: call.fd,
        ts_ns: moved_ns,
        call_bytes: ret,
        stream_pos,
        chunk_offset: 0,
        chunk_len: 0,
        // Left empty: user space names a connection from its open event, and this saves a helper
        // call on every data event.
        comm: [0; COMM_LEN],
    };

    let mut offset: u64 = 0;
    for index in 0..MAX_IOVECS {
        if offset >= cap {
            break;
        }
        let Some((base, len)) = segment(call, index) else {
            break;
        };
        let mut n = cap - offset;
        if n > len {
            n = len;
        }
        if n > CHUNK_SIZE as u64 {
            n = CHUNK_SIZE as u64;
        }
        if n == 0 {
            continue;
        }
        let last = offset + n >= cap;
        send_chunk(cfg, event, base, n as usize, offset as u32, last);
        offset += n;
    }
    if offset < cap || cap == 0 {
        // Ran out of iovecs, or had nothing to copy: close the call with an empty chunk so user space
        // knows the rest is missing.
        event.header.flags = flags::LAST_CHUNK;
        event.header.chunk_offset = offset as u32;
        event.header.chunk_len = 0;
        output(cfg, event, 0);
    }
}

#[inline(always)]
fn send_chunk(
    cfg: &KernelConfig,
    event: &mut DataEvent,
    src: u64,
    n: usize,
    offset: u32,
    last: bool,
) {
    event.header.chunk_offset = offset;
    event.header.flags = if last { flags::LAST_CHUNK } else { 0 };
    let Some(dst) = event.data.get_mut(..n) else {
        return;
    };
    // SAFETY: bpf_probe_read_user validates the source and fails instead of faulting.
    let copied = unsafe { bpf_probe_read_user_buf(src as *const u8, dst) }.is_ok();
    if copied {
        event.header.chunk_len = n as u32;
        output(cfg, event, n);
    } else {
        loss::count(|l| l.copy_failed += 1);
        event.header.flags |= flags::COPY_FAILED;
        event.header.chunk_len = 0;
        output(cfg, event, 0);
    }
}

#[inline(always)]
fn output(cfg: &KernelConfig, event: &DataEvent, n: usize) {
    let size = HEADER_SIZE + (n & (CHUNK_SIZE * 2 - 1));
    if size > core::mem::size_of::<DataEvent>() {
        return;
    }
    // SAFETY: `size` is at most the size of the event, so the slice stays inside the per-CPU slot.
    let bytes =
        unsafe { core::slice::from_raw_parts(core::ptr::from_ref(event).cast::<u8>(), size) };
    if EVENTS
        .output::<[u8]>(bytes, crate::ring::submit_flags(cfg))
        .is_err()
    {
        loss::count(|l| {
            l.ring_full_events += 1;
            l.ring_full_bytes += n as u64;
        });
    }
}
