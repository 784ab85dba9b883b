//! Loading the eBPF object, configuring it, attaching every program to its tracepoint, and the TLS
//! programs to each file that holds OpenSSL (found by `tls`).
//!
//! Socket syscalls are seen through one of two sets of hooks ([`SyscallHooks`]): the raw `sys_exit`
//! tracepoint, one program per call (x86-64), or, where that cannot be attached, the per-syscall
//! tracepoints, an entry and an exit program per call.
//!
//! Owns the `aya::Ebpf` handle: dropping a [`LoadedPrograms`] detaches everything.

use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{
        raw_trace_point::RawTracePointLinkId,
        trace_point::TracePointLinkId,
        uprobe::{UProbeAttachPoint, UProbeLinkId, UProbeScope},
        RawTracePoint, TracePoint, UProbe,
    },
    Ebpf, EbpfLoader,
};
use watcher_common::{pid_mark, pid_slot, KernelConfig, KernelLoss, NewCode};

use super::tls::{TlsLibrary, TlsTarget};

/// The compiled kernel side, embedded at build time (empty when `cargo xtask build-ebpf` has not run).
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/watcher-ebpf.o"));

/// Bytes copied from one syscall at most, unless `--max-call-bytes` says otherwise.
pub const DEFAULT_MAX_CALL_BYTES: u32 = 1024 * 1024;
/// The ring buffer's size in MiB, unless `--ring-mib` says otherwise.
pub const DEFAULT_RING_MIB: u32 = 32;

/// The program on the raw `sys_exit` tracepoint, which stands for all of [`SYSCALL_PROGRAMS`].
const RAW_EXIT: &str = "sys_exit";

/// Which hooks see the socket syscalls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyscallHooks {
    /// The raw `sys_exit` tracepoint where it can be used, otherwise the syscall tracepoints.
    #[default]
    Auto,
    /// Only the raw `sys_exit` tracepoint (x86-64): one program per call, at its return.
    RawExit,
    /// The `syscalls:sys_enter_*` / `sys_exit_*` tracepoints: two programs per call.
    Tracepoints,
}

/// Tracepoints of `syscalls:*` that the object's programs attach to, by program name.
const SYSCALL_PROGRAMS: &[&str] = &[
    "sys_enter_read",
    "sys_exit_read",
    "sys_enter_recvfrom",
    "sys_exit_recvfrom",
    "sys_enter_readv",
    "sys_exit_readv",
    "sys_enter_recvmsg",
    "sys_exit_recvmsg",
    "sys_enter_write",
    "sys_exit_write",
    "sys_enter_sendto",
    "sys_exit_sendto",
    "sys_enter_writev",
    "sys_exit_writev",
    "sys_enter_sendmsg",
    "sys_exit_sendmsg",
    "sys_enter_sendfile64",
    "sys_exit_sendfile64",
    "sys_exit_accept",
    "sys_exit_accept4",
    "sys_enter_connect",
    "sys_exit_connect",
    "sys_enter_close",
];

/// Tracepoints of `sched:*` that follow a recorded command's process tree. They are attached only when
/// `KernelConfig::follow_children` is set, so a plain `watch` pays nothing at every fork.
const PROCESS_PROGRAMS: &[&str] = &["sched_process_fork", "sched_process_exit"];

/// The TLS programs: one entry and one return probe per function, told apart by the attach cookie.
const TLS_ENTRY: &str = "tls_enter";
const TLS_RETURN: &str = "tls_return";
/// The Go TLS program: one uprobe for entries and `RET` instructions alike, told apart by the cookie.
const GO_TLS: &str = "go_tls";

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The binary was built without the eBPF object.
    #[error("this watcher binary has no eBPF object embedded; build it with `cargo xtask build` (or run `cargo xtask run -- ...`)")]
    NotBuilt,
    /// The kernel refused the object or a program.
    #[error("loading eBPF program {program} failed: {source} (a kernel with BPF ring buffers, 5.8 or newer, is needed)")]
    Program {
        /// Program name.
        program: String,
        /// The aya error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A TLS probe could not be attached to a file.
    #[error("attaching the TLS probes to {file}: {source}")]
    Tls {
        /// The file, as its processes see it.
        file: String,
        /// The aya error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The raw `sys_exit` tracepoint was asked for and cannot be used.
    #[error("the raw sys_exit tracepoint cannot be used here: {0}")]
    NoRawExit(String),
    /// A map was missing or of the wrong type.
    #[error("eBPF map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The aya error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn program_error(program: &str, e: impl std::error::Error + Send + Sync + 'static) -> LoadError {
    LoadError::Program {
        program: program.to_owned(),
        source: Box::new(e),
    }
}

fn map_error(map: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> LoadError {
    LoadError::Map {
        map,
        source: Box::new(e),
    }
}

/// Every attachment made, so they can be detached together (see [`detach`]).
#[derive(Debug, Default)]
pub struct Links {
    tracepoints: Vec<(&'static str, TracePointLinkId)>,
    raw_tracepoints: Vec<(&'static str, RawTracePointLinkId)>,
    uprobes: Vec<(&'static str, UProbeLinkId)>,
}

/// Programs loaded and attached, with the maps user space reads.
pub struct LoadedPrograms {
    /// Keeps the programs attached; dropping it detaches them (one by one: see [`detach`]).
    pub ebpf: Ebpf,
    /// The attachments.
    pub links: Links,
    /// The event ring.
    pub ring: RingBuf<MapData>,
    /// Per-CPU loss counters.
    pub loss: PerCpuArray<MapData, KernelLoss>,
    /// The configuration the programs run with.
    pub config: KernelConfig,
    /// Why the syscall tracepoints are used instead of the raw `sys_exit` hook, if they are.
    pub fallback: Option<String>,
    /// The per-CPU notes of processes that brought new code (`watcher_common::NewCode`), for the TLS
    /// finder: only with TLS capture on the raw `sys_exit` hook, the one hook that takes them.
    pub new_code: Option<PerCpuArray<MapData, NewCode>>,
}

/// Loads the object with `config`, fills the pid filter, attaches all programs (the syscall ones on
/// `hooks`, the `sched` ones only when children are followed, the TLS ones when `config.tls` is set, to
/// each of `tls`) and then arms them, so capture starts at one instant. A TLS file that cannot be
/// instrumented is not fatal: the second value has the outcome for each of `tls`, in order (none when
/// `config.tls` is off).
pub fn load(
    config: &KernelConfig,
    pids: &[u32],
    ring_bytes: u32,
    tls: &[TlsTarget],
    hooks: SyscallHooks,
) -> Result<(LoadedPrograms, Vec<Result<(), LoadError>>), LoadError> {
    let mut ebpf = open_object(ring_bytes)?;
    let config = KernelConfig {
        // A quarter full: early enough that the reader catches up long before the ring overflows.
        wake_bytes: ring_bytes / 4,
        ..*config
    };
    write_config(&mut ebpf, &KernelConfig { armed: 0, ..config })?;
    fill_pid_filter(&mut ebpf, pids)?;
    let process_programs = if config.follow_children == 0 {
        &[][..]
    } else {
        PROCESS_PROGRAMS
    };
    let mut links = Links::default();
    let fallback = attach_syscall_hooks(&mut ebpf, &mut links, hooks)?;
    for (category, name) in process_programs.iter().map(|name| ("sched", *name)) {
        let program = tracepoint(&mut ebpf, name)?;
        program.load().map_err(|e| program_error(name, e))?;
        let link = program
            .attach(category, name)
            .map_err(|e| program_error(name, e))?;
        links.tracepoints.push((name, link));
    }
    let mut tls_outcomes = Vec::new();
    if config.tls != 0 {
        for name in [TLS_ENTRY, TLS_RETURN, GO_TLS] {
            uprobe(&mut ebpf, name)?
                .load()
                .map_err(|e| program_error(name, e))?;
        }
        tls_outcomes = tls
            .iter()
            .map(|target| attach_tls(&mut ebpf, &mut links, target))
            .collect();
    }
    write_config(&mut ebpf, &KernelConfig { armed: 1, ..config })?;
    let ring = take_ring(&mut ebpf)?;
    let loss = take_loss(&mut ebpf)?;
    let new_code = if config.tls != 0 && fallback.is_none() {
        let map = ebpf
            .take_map("NEW_CODE")
            .ok_or_else(|| map_error("NEW_CODE", MissingMap))?;
        Some(PerCpuArray::try_from(map).map_err(|e| map_error("NEW_CODE", e))?)
    } else {
        None
    };
    Ok((
        LoadedPrograms {
            ebpf,
            links,
            ring,
            loss,
            config,
            fallback,
            new_code,
        },
        tls_outcomes,
    ))
}

/// Attaches the socket syscall programs on `hooks`. With [`SyscallHooks::Auto`], a raw `sys_exit`
/// program that cannot be used gives way to the syscall tracepoints, and the reason is returned.
fn attach_syscall_hooks(
    ebpf: &mut Ebpf,
    links: &mut Links,
    hooks: SyscallHooks,
) -> Result<Option<String>, LoadError> {
    let mut fallback = None;
    if hooks != SyscallHooks::Tracepoints {
        match attach_raw(ebpf, RAW_EXIT) {
            Ok(link) => {
                links.raw_tracepoints.push((RAW_EXIT, link));
                return Ok(None);
            }
            Err(why) if hooks == SyscallHooks::Auto => fallback = Some(why),
            Err(why) => return Err(LoadError::NoRawExit(why)),
        }
    }
    for name in SYSCALL_PROGRAMS {
        let program = tracepoint(ebpf, name)?;
        program.load().map_err(|e| program_error(name, e))?;
        let link = program
            .attach("syscalls", name)
            .map_err(|e| program_error(name, e))?;
        links.tracepoints.push((name, link));
    }
    Ok(fallback)
}

/// Loads `name` and attaches it to the raw `sys_exit` tracepoint, or says why it cannot be.
fn attach_raw(ebpf: &mut Ebpf, name: &str) -> Result<RawTracePointLinkId, String> {
    // The program reads x86_64's saved registers: elsewhere their layout differs.
    if !cfg!(target_arch = "x86_64") {
        return Err(format!(
            "its programs read x86_64 registers, and this is {}",
            std::env::consts::ARCH
        ));
    }
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| "the program is missing from the object".to_owned())?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program.load().map_err(|e| format!("loading: {e}"))?;
    program
        .attach("sys_exit")
        .map_err(|e| format!("attaching: {e}"))
}

/// Puts the TLS probes on every probe point of `target`, for every process that maps it. For OpenSSL,
/// the return probes go first, so no call is entered without a return to end it; for Go, one program
/// goes on the entries and on the `RET` instructions alike.
pub fn attach_tls(ebpf: &mut Ebpf, links: &mut Links, target: &TlsTarget) -> Result<(), LoadError> {
    let tls_error = |e: aya::programs::ProgramError| LoadError::Tls {
        file: target.shown.clone(),
        source: Box::new(e),
    };
    let programs: &[&'static str] = match target.library {
        TlsLibrary::OpenSsl => &[TLS_RETURN, TLS_ENTRY],
        TlsLibrary::Go => &[GO_TLS],
    };
    for &name in programs {
        let program = uprobe(ebpf, name)?;
        for &(function, offset) in &target.functions {
            let point = UProbeAttachPoint {
                location: offset.into(),
                cookie: Some(function),
            };
            let link = program
                .attach(point, &target.path, UProbeScope::AllProcesses)
                .map_err(tls_error)?;
            links.uprobes.push((name, link));
        }
    }
    Ok(())
}

fn write_config(ebpf: &mut Ebpf, config: &KernelConfig) -> Result<(), LoadError> {
    let map = ebpf
        .map_mut("CONFIG")
        .ok_or_else(|| map_error("CONFIG", MissingMap))?;
    let mut array: Array<_, KernelConfig> =
        Array::try_from(map).map_err(|e| map_error("CONFIG", e))?;
    array.set(0, config, 0).map_err(|e| map_error("CONFIG", e))
}

/// Detaches every program and unloads the object, with all detachments in flight at once.
///
/// Each detachment waits for the kernel's grace periods (tens to hundreds of milliseconds for a uprobe);
/// one after another, as dropping the `Ebpf` would do them, fifty of them took seconds. Concurrent
/// ones share the waits. Call it after disarming, so the order of detachment does not matter.
pub fn detach(mut ebpf: Ebpf, links: Links) {
    let mut owned: Vec<Box<dyn Send>> = Vec::new();
    for (name, id) in links.tracepoints {
        if let Ok(link) = tracepoint(&mut ebpf, name)
            .and_then(|p| p.take_link(id).map_err(|e| program_error(name, e)))
        {
            owned.push(Box::new(link));
        }
    }
    for (name, id) in links.raw_tracepoints {
        if let Ok(link) = raw_tracepoint(&mut ebpf, name)
            .and_then(|p| p.take_link(id).map_err(|e| program_error(name, e)))
        {
            owned.push(Box::new(link));
        }
    }
    for (name, id) in links.uprobes {
        if let Ok(link) = uprobe(&mut ebpf, name)
            .and_then(|p| p.take_link(id).map_err(|e| program_error(name, e)))
        {
            owned.push(Box::new(link));
        }
    }
    std::thread::scope(|scope| {
        for link in owned {
            // If no thread can be started the closure, and the link with it, is dropped right here.
            let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(link));
        }
    });
    drop(ebpf);
}

/// Leaves detaching to the kernel after this process has exited, so neither the summary nor the exit
/// waits for it: removing uprobes takes the kernel tens of milliseconds each, one after another (three
/// seconds for the sixty-odd probes a host with a few OpenSSL copies and Go programs gets), whoever
/// closes them and however many threads do it at once.
///
/// A child process keeps a copy of every descriptor until this process is gone (its end of a pipe sees
/// end-of-file), then exits, and its exit releases the last references. Call it after disarming: the
/// programs do nothing meanwhile. If the child cannot be made, a thread detaches instead.
#[allow(unsafe_code)]
pub fn detach_after_exit(ebpf: Ebpf, links: Links) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array with two new descriptors, or fails and touches nothing.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        detach_on_thread(ebpf, links);
        return;
    }
    let [read_end, write_end] = fds;
    // SAFETY: fork in a multi-threaded process. The child makes only async-signal-safe calls (signal,
    // close, read, _exit) on values prepared before the fork; it allocates nothing and runs no
    // destructor. The parent goes on as before.
    match unsafe { libc::fork() } {
        0 => unsafe {
            // Ctrl-C reaches the whole process group: the child must outlive its parent regardless.
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(signal, libc::SIG_IGN);
            }
            // Standard streams: a reader of watcher's output must see its end when watcher ends.
            for fd in [0, 1, 2, write_end] {
                libc::close(fd);
            }
            let mut byte = 0u8;
            while libc::read(read_end, (&raw mut byte).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            libc::_exit(0)
        },
        -1 => {
            // SAFETY: both descriptors are ours and used nowhere else.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            detach_on_thread(ebpf, links);
        }
        _ => {
            // SAFETY: the read end is ours and used nowhere else.
            unsafe { libc::close(read_end) };
            // The write end stays open until this process exits; the programs' descriptors too.
            std::mem::forget((ebpf, links));
        }
    }
}

/// Detaches on a thread of its own; if none can be started, process exit detaches.
fn detach_on_thread(ebpf: Ebpf, links: Links) {
    let _ = std::thread::Builder::new()
        .name("watcher-detach".into())
        .spawn(move || detach(ebpf, links));
}

/// Attaches a program that does nothing to every syscall hook [`load`] uses with `hooks`: the cost of
/// the hooks alone, for `watcher bench-probes`. Dropping the result detaches it.
pub fn load_noop(hooks: SyscallHooks) -> Result<Ebpf, LoadError> {
    let mut ebpf = open_object(4096)?;
    if hooks == SyscallHooks::Tracepoints {
        let program = tracepoint(&mut ebpf, "noop")?;
        program.load().map_err(|e| program_error("noop", e))?;
        for name in SYSCALL_PROGRAMS {
            program
                .attach("syscalls", name)
                .map_err(|e| program_error(name, e))?;
        }
    } else {
        attach_raw(&mut ebpf, "noop_raw").map_err(LoadError::NoRawExit)?;
    }
    Ok(ebpf)
}

/// The least-copy program, loaded and attached: the object, its ring (which the caller must drain)
/// and its loss counters.
pub struct LeastCopy {
    pub ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub loss: PerCpuArray<MapData, KernelLoss>,
}

/// Loads the least-copy program (`floor` on the kernel side) for process `pid` and attaches it to the
/// raw `sys_exit` tracepoint, armed.
pub fn load_least_copy(pid: u32) -> Result<LeastCopy, LoadError> {
    const RING_BYTES: u32 = DEFAULT_RING_MIB * 1024 * 1024;
    let mut ebpf = open_object(RING_BYTES)?;
    let config = KernelConfig {
        self_tgid: std::process::id(),
        max_call_bytes: DEFAULT_MAX_CALL_BYTES,
        pid_filter_on: 1,
        wake_bytes: RING_BYTES / 4,
        ..KernelConfig::default()
    };
    write_config(&mut ebpf, &config)?;
    fill_pid_filter(&mut ebpf, &[pid])?;
    attach_raw(&mut ebpf, LEAST_COPY).map_err(LoadError::NoRawExit)?;
    write_config(&mut ebpf, &KernelConfig { armed: 1, ..config })?;
    let ring = take_ring(&mut ebpf)?;
    let loss = take_loss(&mut ebpf)?;
    Ok(LeastCopy { ebpf, ring, loss })
}

/// Marks `pids` as given in the pid filter.
fn fill_pid_filter(ebpf: &mut Ebpf, pids: &[u32]) -> Result<(), LoadError> {
    let map = ebpf
        .map_mut("PID_FILTER")
        .ok_or_else(|| map_error("PID_FILTER", MissingMap))?;
    let mut filter: Array<_, u64> = Array::try_from(map).map_err(|e| map_error("PID_FILTER", e))?;
    for (index, marks) in pid_filter_entries(pids) {
        filter
            .set(index, marks, 0)
            .map_err(|e| map_error("PID_FILTER", e))?;
    }
    Ok(())
}

/// Takes the events ring out of the object, for its reader.
fn take_ring(ebpf: &mut Ebpf) -> Result<RingBuf<MapData>, LoadError> {
    RingBuf::try_from(
        ebpf.take_map("EVENTS")
            .ok_or_else(|| map_error("EVENTS", MissingMap))?,
    )
    .map_err(|e| map_error("EVENTS", e))
}

/// Takes the kernel's loss counters out of the object.
fn take_loss(ebpf: &mut Ebpf) -> Result<PerCpuArray<MapData, KernelLoss>, LoadError> {
    PerCpuArray::try_from(
        ebpf.take_map("LOSS")
            .ok_or_else(|| map_error("LOSS", MissingMap))?,
    )
    .map_err(|e| map_error("LOSS", e))
}

/// The benchmark's least-copy program, on the raw `sys_exit` tracepoint.
const LEAST_COPY: &str = "least_copy";

fn open_object(ring_bytes: u32) -> Result<Ebpf, LoadError> {
    if EBPF_OBJECT.is_empty() {
        return Err(LoadError::NotBuilt);
    }
    EbpfLoader::new()
        .map_max_entries("EVENTS", ring_bytes)
        .map_max_entries("SCRATCH", possible_cpus())
        .map_max_entries("PID_FILTER", pid_slot(max_pid()).0 + 1)
        .load(EBPF_OBJECT)
        .map_err(|e| program_error("(object)", e))
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut UProbe, LoadError> {
    ebpf.program_mut(name)
        .ok_or_else(|| program_error(name, MissingMap))?
        .try_into()
        .map_err(|e| program_error(name, e))
}

fn raw_tracepoint<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut RawTracePoint, LoadError> {
    ebpf.program_mut(name)
        .ok_or_else(|| program_error(name, MissingMap))?
        .try_into()
        .map_err(|e| program_error(name, e))
}

fn tracepoint<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut TracePoint, LoadError> {
    ebpf.program_mut(name)
        .ok_or_else(|| program_error(name, MissingMap))?
        .try_into()
        .map_err(|e| program_error(name, e))
}

impl LoadedPrograms {
    /// Makes every program return at once, so detaching (which takes a while) cannot cut exchanges
    /// in odd places: events stop at one instant, as they started.
    pub fn disarm(ebpf: &mut Ebpf, config: &KernelConfig) -> Result<(), LoadError> {
        write_config(
            ebpf,
            &KernelConfig {
                armed: 0,
                ..*config
            },
        )
    }

    /// With `asleep`, asks the armed programs to wake the ring reader at the next record; without,
    /// to wake it only for a burst again (`KernelConfig::wake_bytes`; `watcher-ebpf/src/ring.rs`).
    pub fn wake_at_next_record(
        ebpf: &mut Ebpf,
        config: &KernelConfig,
        asleep: bool,
    ) -> Result<(), LoadError> {
        write_config(
            ebpf,
            &KernelConfig {
                armed: 1,
                wake_bytes: if asleep { 0 } else { config.wake_bytes },
                ..*config
            },
        )
    }

    /// Loss counters of `loss` summed over CPUs.
    pub fn sum_loss(loss: &PerCpuArray<MapData, KernelLoss>) -> KernelLoss {
        let mut total = KernelLoss::default();
        if let Ok(values) = loss.get(&0, 0) {
            for v in values.iter() {
                total.add(v);
            }
        }
        total
    }
}

/// The largest process or thread id this kernel hands out (`kernel.pid_max`, less one). Where it
/// cannot be read, the largest any Linux allows.
fn max_pid() -> u32 {
    const PID_MAX_LIMIT: i32 = 4 * 1024 * 1024;
    let pid_max = procfs::sys::kernel::pid_max().unwrap_or(PID_MAX_LIMIT);
    pid_max.clamp(1, PID_MAX_LIMIT) as u32 - 1
}

/// The `PID_FILTER` entries that mark `pids` as given (`--pid`): each entry holds eight ids' marks.
fn pid_filter_entries(pids: &[u32]) -> std::collections::BTreeMap<u32, u64> {
    let mut entries = std::collections::BTreeMap::new();
    for &pid in pids {
        let (index, byte) = pid_slot(pid);
        *entries.entry(index).or_default() |= u64::from(pid_mark::GIVEN) << (8 * byte);
    }
    entries
}

/// Number of possible CPUs (the scratch area has one slot per CPU id).
fn possible_cpus() -> u32 {
    aya::util::nr_cpus().map_or(256, |n| n as u32)
}

/// A program or map the object should contain is absent.
#[derive(Debug, thiserror::Error)]
#[error("not found in the eBPF object")]
struct MissingMap;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_pids_share_entries_eight_to_one() {
        let entries = pid_filter_entries(&[1, 7, 8, 4_194_303]);
        let given = u64::from(pid_mark::GIVEN);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[&0], given << 8 | given << 56);
        assert_eq!(entries[&1], given);
        assert_eq!(entries[&524_287], given << 56);
    }

    #[test]
    fn the_pid_filter_covers_every_id_below_pid_max() {
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .expect("pid_max")
            .trim()
            .parse()
            .expect("a number");
        assert_eq!(max_pid(), pid_max - 1);
    }
}
