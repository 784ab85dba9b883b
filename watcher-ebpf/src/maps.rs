//! Every BPF map of the kernel side, in one place so their sizes and roles can be read together.
//!
//! Only plain data lives here; the logic that reads and writes the maps is in the sibling modules.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use watcher_common::{DataEvent, KernelConfig, KernelLoss, NewCode, OpenEvent, CHUNK_SIZE};

/// Default ring size; user space may resize it at load time (`set_max_entries("EVENTS", ..)`).
const RING_BYTES: u32 = 32 * 1024 * 1024;

/// What the kernel side knows about one `(tgid, fd)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SocketState {
    /// One of the `STATE_*` constants.
    pub state: u8,
    /// One of `watcher_common::side`.
    pub side: u8,
    /// Non-zero once a TLS library call was seen on the socket: from then on its plaintext is sent and
    /// its ciphertext is not.
    pub tls: u8,
    pub pad: [u8; 5],
    /// The `struct file` the fd named when classified (0 if not a socket): tells, after a close, whether
    /// a reused fd number's entry is already the new file's.
    pub file: u64,
    /// Bytes seen so far in each direction (indexed by `watcher_common::direction`).
    pub stream_pos: [u64; 2],
    /// Plaintext bytes of TLS calls so far in each direction.
    pub tls_pos: [u64; 2],
}

/// The fd is not a TCP socket: skip it cheaply from now on.
pub const STATE_NOT_TCP: u8 = 0;
/// A TCP socket that passes the filters: its payload is captured.
pub const STATE_TRACED: u8 = 1;
/// A TCP socket that the port or side filter excludes.
pub const STATE_IGNORED: u8 = 2;

/// How to find the bytes of an I/O syscall at its exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InFlight {
    /// pid_tgid of the thread whose call this is; 0 when the slot is free.
    pub owner: u64,
    /// Fd of the call.
    pub fd: i32,
    /// One of `watcher_common::direction`.
    pub direction: u8,
    /// Non-zero when `buf` points to an iovec array of `len` entries.
    pub vectored: u8,
    pub pad: [u8; 2],
    /// User buffer, or iovec array.
    pub buf: u64,
    /// Buffer length, or iovec count.
    pub len: u64,
    /// Entry timestamp of writes (0 for reads, which are stamped at exit).
    pub ts_enter_ns: u64,
}

/// Events to user space.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Bytes of records each CPU submitted since it last asked how full [`EVENTS`] is (see `ring`).
#[map]
pub static UNASKED_BYTES: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU, the traced processes that brought new code into memory, for the TLS finder (see
/// `new_code`). Per CPU so that no two programs ever write one entry at once.
#[map]
pub static NEW_CODE: PerCpuArray<NewCode> = PerCpuArray::with_max_entries(1, 0);

/// Filters and struct offsets, written once by user space before attaching.
#[map]
pub static CONFIG: Array<KernelConfig> = Array::with_max_entries(1, 0);

/// Tgids to trace when `KernelConfig::pid_filter_on` is set: one byte per id, its
/// `watcher_common::pid_mark` (0 when not traced), eight ids to an entry (`watcher_common::pid_slot`).
/// An array, not a hash map, because every I/O call of every process on the host asks it: an array
/// lookup is a few instructions the JIT inlines, a hash lookup a helper call that hashes and walks a
/// bucket. User space sizes it to cover every id up to `kernel.pid_max` (4 MiB at the largest), so a
/// recorded command's whole process tree fits however many it forks; followed thread ids land here
/// too, see `process`.
#[map]
pub static PID_FILTER: Array<u64> = Array::with_max_entries(PID_FILTER_ENTRIES, 0);

/// [`PID_FILTER`]'s size in the object: ids up to 32768 (user space resizes it at load).
const PID_FILTER_ENTRIES: u32 = 32_768 / 8;

/// Classification of `(tgid << 32) | fd`. LRU because entries of processes that exit are never
/// closed explicitly; eviction re-classifies an fd on its next use, which is only a cost.
#[map]
pub static SOCKETS: LruHashMap<u64, SocketState> = LruHashMap::with_max_entries(131_072, 0);

/// Slots of [`IN_FLIGHT`]; a power of two.
pub const IN_FLIGHT_SLOTS: u32 = 65_536;

/// I/O syscalls of traced processes between entry and exit, one slot per thread id modulo the slot
/// count. An array, not a hash map, because this is touched twice per hooked syscall: an array slot
/// costs no hashing, locking or allocation. Each slot names its owner, so two threads sharing a slot at
/// the same instant cost one lost (and counted) call, never a mixed-up one.
#[map]
pub static IN_FLIGHT: Array<InFlight> = Array::with_max_entries(IN_FLIGHT_SLOTS, 0);

/// One TLS library call between its entry and return probes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TlsFrame {
    /// Which function (`watcher_common::tls_function`).
    pub function: u64,
    /// The `SSL *` argument.
    pub ssl: u64,
    /// The plaintext buffer.
    pub buf: u64,
    /// Where `SSL_read_ex`/`SSL_write_ex` store the byte count (0 for the others).
    pub count_ptr: u64,
    /// Entry timestamp of writes (0 for reads, which are stamped at return).
    pub ts_enter_ns: u64,
    /// The socket the library read or wrote during the call, or -1 while none was seen.
    pub fd: i32,
    pub pad: u32,
}

/// A thread's TLS calls in progress: the innermost, and the one it interrupted, if any. Calls nest
/// when the library calls back into the program, which calls the library again: Node.js writes from
/// inside `SSL_read`, in the handshake-done callback.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TlsCall {
    /// pid_tgid of the thread whose calls these are; 0 when the slot is free.
    pub owner: u64,
    /// Non-zero when `outer` holds the call `call` interrupted.
    pub nested: u64,
    /// The innermost call.
    pub call: TlsFrame,
    /// The interrupted call.
    pub outer: TlsFrame,
}

/// TLS library calls in progress, one slot per thread id modulo the slot count, like [`IN_FLIGHT`]
/// (the socket hooks look here on every traced call, so this must be an array lookup, not a hash).
#[map]
pub static TLS_CALLS: Array<TlsCall> = Array::with_max_entries(IN_FLIGHT_SLOTS, 0);

/// The socket fd of each `SSL` object, keyed by `[tgid, SSL *]`, learnt from the socket calls made
/// during its calls. A call served from the library's buffer makes no socket call and finds its fd
/// here. LRU: `SSL_free` is not hooked, so stale entries are evicted rather than removed.
#[map]
pub static TLS_SOCKETS: LruHashMap<[u64; 2], i32> = LruHashMap::with_max_entries(65_536, 0);

/// A Go `crypto/tls` read or write between its entry and the probe that sends its plaintext (a `RET`,
/// or the read's copy into `b`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoTlsCall {
    /// `GO_READ` or `GO_WRITE` (`watcher_common::tls_function`).
    pub function: u64,
    /// The plaintext buffer.
    pub buf: u64,
    /// Entry timestamp of writes (0 for reads, which are stamped at return).
    pub ts_enter_ns: u64,
    /// The connection's socket fd, read from the `tls.Conn` at entry.
    pub fd: i32,
    pub pad: u32,
}

/// Go TLS calls in progress, keyed by `[tgid, goroutine]` (the `g` pointer in R14): a goroutine that
/// blocks in a read resumes on whichever thread picks it up, so a thread id names nothing. A slot
/// stays when its call is done (marked finished) and the goroutine's next call is written into it;
/// LRU evicts those of goroutines gone, and of calls never finished (a goroutine that dies inside one,
/// a read that fails before its copy).
#[map]
pub static GO_TLS_CALLS: LruHashMap<[u64; 2], GoTlsCall> = LruHashMap::with_max_entries(16_384, 0);

/// Connect calls between entry and exit: pid_tgid -> fd.
#[map]
pub static CONNECTING: HashMap<u64, i32> = HashMap::with_max_entries(16_384, 0);

/// Where the copy of one call stands, between the steps of its `bpf_loop`.
///
/// Kept in a map slot rather than on the stack: the verifier tracks stack values exactly, so a position
/// that grows every step would make it walk every one of up to a thousand steps, for every program, at
/// load time (seconds). Values loaded from a map are unknown to it, so the step is verified once.
#[repr(C)]
pub struct CopyState {
    /// The call's user buffer, or its iovec array.
    pub buf: u64,
    /// The buffer's length, or the iovec count.
    pub len: u64,
    /// Non-zero when `buf` is an iovec array.
    pub vectored: u64,
    /// Bytes of the call to copy: what it moved, up to the ceiling.
    pub want: u64,
    /// Bytes copied so far (sent, or waiting in the event).
    pub done: u64,
    /// Bytes waiting in the event, always less than `CHUNK_SIZE` between steps.
    pub fill: u64,
    /// Index of the next iovec to load.
    pub next_segment: u64,
    /// Where the not yet copied part of the current buffer starts, and its length.
    pub segment_base: u64,
    pub segment_left: u64,
    /// Non-zero once user memory could not be read; the copy stops there.
    pub failed: u64,
    /// `KernelConfig::wake_bytes`, for the submit flags.
    pub wake_bytes: u64,
    /// Flags every chunk of the call carries (`watcher_common::flags::TLS`).
    pub base_flags: u64,
}

/// A data event being built, with room after it that is never sent, and the state of its copy.
///
/// Buffers are packed into the event at a variable fill level, each copy up to `CHUNK_SIZE` long. The
/// verifier bounds the fill level and the copy length separately, so it only accepts the copy if both
/// maxima together fit in the slot: the slack makes that true.
#[repr(C)]
pub struct Scratch {
    /// First, so the slot's start is the event's start.
    pub event: DataEvent,
    pub slack: [u8; CHUNK_SIZE],
    pub copy: CopyState,
}

/// Build area for data events, one slot per CPU (indexed by CPU id), too large for the 512-byte BPF
/// stack. A plain array rather than a per-CPU one because per-CPU values are limited to 32 KiB; user
/// space sets `max_entries` to the number of possible CPUs at load time.
#[map]
pub static SCRATCH: Array<Scratch> = Array::with_max_entries(1, 0);

/// Build area for open events, one per CPU: kept off the stack, which the data path needs.
#[map]
pub static OPEN_SCRATCH: PerCpuArray<OpenEvent> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU loss counters.
#[map]
pub static LOSS: PerCpuArray<KernelLoss> = PerCpuArray::with_max_entries(1, 0);
