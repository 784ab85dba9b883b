//! Copying the bytes of a finished I/O syscall into the ring buffer, in chunks of up to `CHUNK_SIZE`.
//!
//! A call is copied completely up to `--max-call-bytes` (1 MiB by default), from every iovec of a
//! vectored call (the kernel allows 1024), packing small buffers together so a `writev` of nine pieces
//! costs one event, not nine. A whole chunk's worth of one buffer is read straight into a reserved ring
//! record; smaller pieces are packed in a per-CPU scratch event and then output. The copy runs in a
//! `bpf_loop`, one step per piece, because a plain loop over a thousand iovecs and sixteen chunks is far
//! more than the verifier will walk. The commonest call of all, one buffer smaller than a chunk (a
//! request, a reply), skips the loop: it is the loop's single step, done in place.
//!
//! Every chunk carries the call's true byte count, its stream position and its offset in the call, so
//! user space can tell exactly which bytes were captured and which were not (a call longer than the
//! ceiling, user memory that could not be read, a full ring).

use core::ffi::c_void;

use aya_ebpf::helpers::{
    bpf_get_smp_processor_id, bpf_probe_read_user,
    generated::{bpf_loop, bpf_probe_read_user as bpf_probe_read_user_raw},
};
use watcher_common::{
    flags, kind, DataEvent, EventHeader, KernelConfig, CHUNK_SIZE, COMM_LEN, MAX_CALL_BYTES,
    MAX_IOVECS,
};

use crate::{
    loss,
    maps::{CopyState, InFlight, Scratch, EVENTS, SCRATCH},
};

const HEADER_SIZE: usize = core::mem::size_of::<EventHeader>();
/// The header in 8-byte words (it is a whole number of them, 8-aligned).
const HEADER_WORDS: usize = HEADER_SIZE / 8;
const _: () = assert!(HEADER_SIZE.is_multiple_of(8) && core::mem::align_of::<EventHeader>() == 8);

/// Steps the copy loop may take: one per iovec plus one per chunk sent, at most.
const MAX_STEPS: u32 = MAX_IOVECS + MAX_CALL_BYTES / CHUNK_SIZE as u32 + 1;

/// A user-space `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy)]
struct IoVec {
    base: u64,
    len: u64,
}

/// The user buffer at `index` of the call.
#[inline(always)]
fn segment(copy: &CopyState, index: u64) -> Option<(u64, u64)> {
    if copy.vectored == 0 {
        return (index == 0).then_some((copy.buf, copy.len));
    }
    if index >= copy.len || index >= u64::from(MAX_IOVECS) {
        return None;
    }
    let ptr = (copy.buf + index * 16) as *const IoVec;
    // SAFETY: bpf_probe_read_user validates the address and fails instead of faulting.
    let iov = unsafe { bpf_probe_read_user(ptr) }.ok()?;
    Some((iov.base, iov.len))
}

/// This CPU's scratch event.
#[inline(always)]
fn scratch() -> Option<&'static mut Scratch> {
    // SAFETY: no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let ptr = SCRATCH.get_ptr_mut(cpu)?;
    // SAFETY: this CPU's slot; a tracepoint program runs to completion on its CPU, so no other run
    // uses the slot meanwhile.
    Some(unsafe { &mut *ptr })
}

/// Sends the first `min(ret, max_call_bytes)` bytes of the call to user space. `stream` is the
/// position of the stream the bytes belong to (a socket's bytes, or its TLS plaintext), advanced here;
/// `base_flags` go on every chunk.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn emit(
    cfg: &KernelConfig,
    call: &InFlight,
    stream: *mut u64,
    base_flags: u8,
    ret: u64,
    tgid: u32,
    tid: u32,
    moved_ns: u64,
) {
    // SAFETY: `stream` points into the SOCKETS map and is valid for this run. The update is not atomic
    // (the BPF target offers no 64-bit fetch-add to Rust); two threads writing one socket at the same
    // instant can skew a position, which user space then reports as a gap rather than misparsing.
    let stream_pos = unsafe {
        let old = *stream;
        *stream = old + ret;
        old
    };
    // A call without a user buffer (sendfile) has nothing to copy.
    let want = if call.buf == 0 && call.vectored == 0 {
        0
    } else if ret < u64::from(cfg.max_call_bytes) {
        ret
    } else {
        u64::from(cfg.max_call_bytes)
    };
    if want < ret && want > 0 {
        loss::count(|l| {
            l.truncated_calls += 1;
            l.truncated_bytes += ret - want;
        });
    }
    let Some(slot) = scratch() else {
        return;
    };
    // Field by field: a whole `EventHeader` value would be built on the 512-byte stack first.
    let header = &mut slot.event.header;
    header.kind = kind::DATA;
    header.direction = call.direction;
    header.side = 0;
    header.flags = base_flags;
    header.tgid = tgid;
    header.tid = tid;
    header.fd = call.fd;
    header.ts_ns = moved_ns;
    header.call_bytes = ret;
    header.stream_pos = stream_pos;
    // Left empty: user space names a connection from its open event, and this saves a helper call on
    // every data event.
    let comm = (&raw mut header.comm).cast::<u64>();
    // SAFETY: `comm` is COMM_LEN (16) bytes at an 8-aligned offset of the repr(C) header.
    unsafe {
        store(&mut *comm, 0);
        store(&mut *comm.add(1), 0);
    }
    const _: () = assert!(COMM_LEN == 16);
    if call.vectored == 0 && want > 0 && want < CHUNK_SIZE as u64 && want <= call.len {
        // One buffer, less than a chunk: the copy loop would take one step to do just this, and
        // calling it costs more than the copy of a typical request.
        return emit_one_piece(slot, call.buf, want, base_flags, cfg.wake_bytes);
    }
    let copy = &mut slot.copy;
    store(&mut copy.buf, call.buf);
    store(&mut copy.len, call.len);
    store(&mut copy.vectored, u64::from(call.vectored));
    store(&mut copy.want, want);
    store(&mut copy.done, 0);
    store(&mut copy.fill, 0);
    store(&mut copy.next_segment, 0);
    store(&mut copy.segment_base, 0);
    store(&mut copy.segment_left, 0);
    store(&mut copy.failed, 0);
    store(&mut copy.wake_bytes, u64::from(cfg.wake_bytes));
    store(&mut copy.base_flags, u64::from(base_flags));
    if want > 0 {
        // The steps find the slot themselves (see `CopyState`); no reference to it is held across.
        // SAFETY: the callback is a static function of the signature bpf_loop calls; it takes no context.
        unsafe {
            bpf_loop(
                MAX_STEPS,
                copy_step as *mut c_void,
                core::ptr::null_mut(),
                0,
            );
        }
    }
    let Some(scratch) = scratch() else {
        return;
    };
    if scratch.copy.fill > 0 {
        // The buffers ran out before `want` (or the steps did): send what is waiting.
        flush(scratch, false);
    }
    let copy = &scratch.copy;
    if copy.done < want || want == 0 {
        let (done, failed, wake_bytes) = (copy.done, copy.failed != 0, copy.wake_bytes);
        close_short(scratch, base_flags, done, failed, wake_bytes);
    }
}

/// Closes a call whose copy ended after `done` bytes, short of what it moved, with an empty last
/// chunk, so user space knows the rest is missing (and, when `failed`, that user memory could not be
/// read).
#[inline(always)]
fn close_short(scratch: &mut Scratch, base_flags: u8, done: u64, failed: bool, wake_bytes: u64) {
    let header = &mut scratch.event.header;
    header.flags = base_flags | flags::LAST_CHUNK | if failed { flags::COPY_FAILED } else { 0 };
    header.chunk_offset = done as u32;
    header.chunk_len = 0;
    output(scratch, 0, wake_bytes);
}

/// Sends a call whose `want` bytes lie in one user buffer at `buf` and fit in one chunk, as the copy
/// loop would (one chunk that is the call's last), without entering the loop.
#[inline(always)]
fn emit_one_piece(scratch: &mut Scratch, buf: u64, want: u64, base_flags: u8, wake_bytes: u32) {
    // Masked so the verifier sees the length bounded by the event's data (the caller checked it).
    let n = want & (CHUNK_SIZE as u64 - 1);
    // SAFETY: `n` is less than the event's data; the helper validates the user address and fails
    // instead of faulting.
    let read = unsafe {
        bpf_probe_read_user_raw(
            scratch.event.data.as_mut_ptr().cast(),
            n as u32,
            buf as *const c_void,
        )
    };
    if read != 0 {
        // As the loop ends when a piece cannot be read.
        loss::count(|l| l.copy_failed += 1);
        close_short(scratch, base_flags, 0, true, u64::from(wake_bytes));
        return;
    }
    let header = &mut scratch.event.header;
    header.chunk_offset = 0;
    header.flags = base_flags | flags::LAST_CHUNK;
    header.chunk_len = n as u32;
    output(scratch, n as usize, u64::from(wake_bytes));
}

/// Writes `value` to `field` as stores of its own. Plain stores of zeros side by side are merged by the
/// compiler into a `memset` call, and the BPF target's `memset` is a loop byte by byte: on every event
/// that was 64 iterations, for the empty `comm` and the copy state, more than the rest of the setup.
#[inline(always)]
fn store<T: Copy>(field: &mut T, value: T) {
    // SAFETY: `field` is a valid, aligned, exclusive reference.
    unsafe { core::ptr::write_volatile(field, value) }
}

/// One step of the copy: loads the next buffer if the current one is done, copies as much of it as fits
/// in the scratch event, and sends the event when it is full or the call is complete. Returns 1 to stop.
extern "C" fn copy_step(_index: u32, _ctx: *mut c_void) -> i64 {
    match scratch().and_then(step) {
        Some(true) => 0,
        _ => 1,
    }
}

/// The body of [`copy_step`]: `Some(true)` to go on.
#[inline(always)]
fn step(scratch: &mut Scratch) -> Option<bool> {
    let copy = &mut scratch.copy;
    if copy.segment_left == 0 {
        let (base, len) = segment(copy, copy.next_segment)?;
        copy.next_segment += 1;
        copy.segment_base = base;
        copy.segment_left = len;
        if len == 0 {
            return Some(true);
        }
    }
    if copy.fill == 0
        && copy.segment_left >= CHUNK_SIZE as u64
        && copy.want - copy.done >= CHUNK_SIZE as u64
    {
        return whole_chunk(scratch);
    }
    let copy = &mut scratch.copy;
    // Masks and clamps the verifier can follow: `fill` below CHUNK_SIZE and `n` at most CHUNK_SIZE,
    // which the scratch slot's slack makes safe together.
    let fill = copy.fill & (CHUNK_SIZE as u64 - 1);
    let mut n = copy.segment_left;
    if n > copy.want - copy.done {
        n = copy.want - copy.done;
    }
    if n > CHUNK_SIZE as u64 - fill {
        n = CHUNK_SIZE as u64 - fill;
    }
    if n > CHUNK_SIZE as u64 {
        n = CHUNK_SIZE as u64;
    }
    // SAFETY: `fill + n` stays within the event's data and slack (see above); the helper validates
    // the user address and fails instead of faulting.
    let read = unsafe {
        let dst = scratch.event.data.as_mut_ptr().add(fill as usize);
        bpf_probe_read_user_raw(dst.cast(), n as u32, copy.segment_base as *const c_void)
    };
    if read != 0 {
        loss::count(|l| l.copy_failed += 1);
        copy.failed = 1;
        return None;
    }
    copy.fill = fill + n;
    copy.done += n;
    copy.segment_base += n;
    copy.segment_left -= n;
    let complete = copy.done >= copy.want;
    if copy.fill >= CHUNK_SIZE as u64 || complete {
        flush(scratch, complete);
    }
    Some(!complete)
}

/// Copies the next `CHUNK_SIZE` bytes of the current buffer straight into a ring record, saving the
/// copy through the scratch event that smaller pieces take (half the memory traffic of a large call).
#[inline(always)]
fn whole_chunk(scratch: &mut Scratch) -> Option<bool> {
    let copy = &mut scratch.copy;
    let offset = copy.done;
    let src = copy.segment_base;
    copy.done += CHUNK_SIZE as u64;
    copy.segment_base += CHUNK_SIZE as u64;
    copy.segment_left -= CHUNK_SIZE as u64;
    let complete = copy.done >= copy.want;
    let wake_bytes = copy.wake_bytes as u32;
    let base_flags = copy.base_flags as u8;
    let Some(mut entry) = EVENTS.reserve::<DataEvent>(0) else {
        // Lost like a full ring's `output`; the next chunk's offset shows user space the hole.
        loss::count(|l| {
            l.ring_full_events += 1;
            l.ring_full_bytes += CHUNK_SIZE as u64;
        });
        return Some(!complete);
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` is a reserved ring record of a whole `DataEvent`, written only here before it is
    // submitted or discarded; the helper validates the user address and fails instead of faulting.
    let read = unsafe {
        // Word by word: a plain struct copy becomes a `memmove` call, a loop byte by byte here.
        let words = (&raw const scratch.event.header).cast::<[u64; HEADER_WORDS]>();
        store(
            &mut *(&raw mut (*event).header).cast::<[u64; HEADER_WORDS]>(),
            core::ptr::read_volatile(words),
        );
        (*event).header.chunk_offset = offset as u32;
        (*event).header.chunk_len = CHUNK_SIZE as u32;
        (*event).header.flags = base_flags | if complete { flags::LAST_CHUNK } else { 0 };
        bpf_probe_read_user_raw(
            (*event).data.as_mut_ptr().cast(),
            CHUNK_SIZE as u32,
            src as *const c_void,
        )
    };
    if read != 0 {
        entry.discard(0);
        loss::count(|l| l.copy_failed += 1);
        let copy = &mut scratch.copy;
        copy.failed = 1;
        copy.done = offset;
        return None;
    }
    entry.submit(crate::ring::submit_flags(
        wake_bytes,
        core::mem::size_of::<DataEvent>() as u64,
    ));
    Some(!complete)
}

/// Sends the bytes waiting in the scratch event as the chunk that ends at `copy.done`.
#[inline(always)]
fn flush(scratch: &mut Scratch, last: bool) {
    let (done, fill, wake_bytes, base_flags) = (
        scratch.copy.done,
        scratch.copy.fill,
        scratch.copy.wake_bytes,
        scratch.copy.base_flags as u8,
    );
    let header = &mut scratch.event.header;
    header.chunk_offset = (done - fill) as u32;
    header.chunk_len = fill as u32;
    header.flags = base_flags | if last { flags::LAST_CHUNK } else { 0 };
    output(scratch, fill as usize, wake_bytes);
    scratch.copy.fill = 0;
}

/// Writes the scratch event with `n` payload bytes to the ring.
#[inline(always)]
fn output(scratch: &Scratch, n: usize, wake_bytes: u64) {
    let size = HEADER_SIZE + (n & (CHUNK_SIZE * 2 - 1));
    if size > HEADER_SIZE + CHUNK_SIZE {
        return;
    }
    // SAFETY: the slot starts with the event's header and data (`repr(C)`), and `size` is at most their
    // size, so the slice stays inside the slot.
    let bytes =
        unsafe { core::slice::from_raw_parts(core::ptr::from_ref(scratch).cast::<u8>(), size) };
    if EVENTS
        .output::<[u8]>(
            bytes,
            crate::ring::submit_flags(wake_bytes as u32, size as u64),
        )
        .is_err()
    {
        loss::count(|l| {
            l.ring_full_events += 1;
            l.ring_full_bytes += n as u64;
        });
    }
}
