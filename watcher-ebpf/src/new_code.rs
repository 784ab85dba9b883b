//! Noting the traced processes that bring new code into memory, so the TLS finder in user space looks
//! at those processes when it happens instead of re-reading every process's maps on a timer.
//!
//! Two calls bring code: an `execve` that succeeded (a new program, whose own TLS code may need
//! probes: a Go binary, a program with OpenSSL built in) and an `mmap` of a file with `PROT_EXEC` (a
//! library, loaded by the dynamic loader at start or by `dlopen` later). Anonymous executable memory
//! (a JIT) is no file a probe could bind to, so it is not noted. Seen from the raw `sys_exit` hook
//! only; with the syscall tracepoints user space keeps polling.
//!
//! Each note also rings the finder's bell: a header-only event on the ring, which the ring reader
//! passes on, so the finder sleeps until there is something to look at. The notes, not the bell,
//! say what to look at: a bell lost to a full ring only delays the look to the finder's next one.

use aya_ebpf::{helpers::bpf_probe_read_kernel, programs::RawTracePointContext};
use watcher_common::{kind, EventHeader, KernelConfig, NEW_CODE_SLOTS};

use crate::maps::{EVENTS, NEW_CODE};

/// `PROT_EXEC` of mmap(2).
const PROT_EXEC: u64 = 4;
/// Offset of `r8` (mmap's fd) in x86_64's `struct pt_regs`.
const PT_REGS_R8: u64 = 72;
const _: () = assert!(NEW_CODE_SLOTS.is_power_of_two());

/// `execve` or `execveat` of process `tgid` returned `ret`.
#[inline(always)]
pub fn exec(cfg: &KernelConfig, tgid: u32, ret: i64) -> Option<()> {
    (ret == 0).then(|| note(cfg, tgid))
}

/// `mmap(addr, len, prot, flags, fd, off)` of process `tgid` with protection `prot` returned `ret`.
#[inline(always)]
pub fn mmap(
    ctx: &RawTracePointContext,
    cfg: &KernelConfig,
    tgid: u32,
    prot: u64,
    ret: i64,
) -> Option<()> {
    // A mapped address is below the top of user space; an error is a small negative number.
    if prot & PROT_EXEC == 0 || ret < 0 {
        return None;
    }
    let regs: u64 = ctx.arg(0);
    // SAFETY: the kernel's saved register frame of the current task, as in `syscall::saved_regs`;
    // the helper checks the address and fails instead of faulting.
    let fd = unsafe { bpf_probe_read_kernel((regs + PT_REGS_R8) as *const u64) }.ok()? as i32;
    (fd >= 0).then(|| note(cfg, tgid))
}

/// Notes `tgid` in this CPU's [`NEW_CODE`]: the slot first, then the count (see
/// `watcher_common::NewCode`); then rings the bell.
#[inline(always)]
fn note(cfg: &KernelConfig, tgid: u32) {
    let Some(notes) = NEW_CODE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's entry, valid for this run; a raw tracepoint program runs to completion on its
    // CPU, so no other program writes the entry meanwhile.
    let notes = unsafe { &mut *notes };
    let count = notes.count;
    notes.tgids[count as usize & (NEW_CODE_SLOTS - 1)] = tgid;
    // SAFETY: a valid, aligned field. Volatile, so the compiler keeps it after the slot's store.
    unsafe { core::ptr::write_volatile(&raw mut notes.count, count + 1) };
    // Not counted as lost when the ring is full: no record is missing, and the note stays.
    let Some(mut bell) = EVENTS.reserve::<EventHeader>(0) else {
        return;
    };
    bell.write(EventHeader {
        kind: kind::NEW_CODE,
        tgid,
        ..EventHeader::default()
    });
    bell.submit(crate::ring::submit_flags(
        cfg.wake_bytes,
        size_of::<EventHeader>() as u64,
    ));
}
