//! Types shared by the kernel programs (`watcher-ebpf`) and user space (`watcher-user`).
//!
//! Everything here is `#[repr(C)]` plain data with a fixed layout, because the same bytes are written by
//! eBPF code and read by the user-space decoder. This crate must stay `no_std`, free of allocation and
//! free of logic beyond trivial accessors: the kernel side cannot run anything else.
#![no_std]
#![deny(unsafe_code)]

/// Largest payload slice carried by one data event. A call's bytes are sent as consecutive chunks of this
/// size (the last one shorter), whatever its buffers: the iovecs of a vectored call are packed together.
/// Must be a power of two: the eBPF side bounds copy sizes with it for the verifier.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Largest `--max-call-bytes`: the most bytes the kernel side copies from one syscall.
pub const MAX_CALL_BYTES: u32 = 16 * 1024 * 1024;
/// Vectored calls (`readv`, `writev`, `recvmsg`, `sendmsg`) are copied from all their iovecs; the kernel
/// itself refuses more than this many (`UIO_MAXIOV`).
pub const MAX_IOVECS: u32 = 1024;
/// Most `--port` values the kernel filter holds.
pub const MAX_PORT_FILTERS: usize = 8;
/// Most cgroups that `--cgroup`/`--container` may name at once.
pub const MAX_CGROUP_FILTERS: usize = 8;
/// Length of a task's command name, as in the kernel (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// What an [`EventHeader`] introduces.
pub mod kind {
    /// A slice of socket payload ([`super::DataEvent`]).
    pub const DATA: u8 = 1;
    /// A TCP connection started being traced ([`super::OpenEvent`]).
    pub const OPEN: u8 = 2;
    /// A traced connection's fd was closed (header only).
    pub const CLOSE: u8 = 3;
    /// A traced process ran a new program or mapped a file executable (header only, `tgid` set): the
    /// TLS finder's doorbell, so it reads [`super::NewCode`] now instead of on a timer.
    pub const NEW_CODE: u8 = 4;
}

/// Direction of a data event, seen from the traced process.
pub mod direction {
    /// Bytes the process received (read, recvfrom, readv, recvmsg).
    pub const INGRESS: u8 = 0;
    /// Bytes the process sent (write, sendto, writev, sendmsg).
    pub const EGRESS: u8 = 1;
}

/// Which end of a connection the traced process is.
pub mod side {
    /// Not known from the syscall that revealed the connection (it existed before tracing began).
    pub const UNKNOWN: u8 = 0;
    /// The process called `connect`.
    pub const CLIENT: u8 = 1;
    /// The process got the connection from `accept`.
    pub const SERVER: u8 = 2;
}

/// Bits of [`EventHeader::flags`].
pub mod flags {
    /// Data: the last chunk of its syscall; bytes after it up to `call_bytes` were not captured.
    pub const LAST_CHUNK: u8 = 1;
    /// Data: copying the user buffer failed; the chunk carries no bytes.
    pub const COPY_FAILED: u8 = 2;
    /// Open: the connection was found on first use, not at accept/connect, so its streams may start
    /// in the middle of a message.
    pub const MID_STREAM: u8 = 4;
    /// Data: plaintext of a TLS library call (`SSL_read`, `SSL_write`, ...) on the socket, with its own
    /// stream positions. The socket's ciphertext is not sent once its plaintext is known.
    pub const TLS: u8 = 8;
}

/// The TLS library functions the uprobes sit on, passed to the programs as the attach cookie so one
/// entry and one return program serve them all.
pub mod tls_function {
    /// `int SSL_read(SSL *ssl, void *buf, int num)`: returns the bytes read.
    pub const READ: u64 = 1;
    /// `int SSL_write(SSL *ssl, const void *buf, int num)`: returns the bytes written.
    pub const WRITE: u64 = 2;
    /// `int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes)`: returns 1 on success.
    pub const READ_EX: u64 = 3;
    /// `int SSL_write_ex(SSL *ssl, const void *buf, size_t num, size_t *written)`: returns 1 on success.
    pub const WRITE_EX: u64 = 4;
    /// `int SSL_do_handshake(SSL *ssl)`: its socket calls are ciphertext of the connection.
    pub const HANDSHAKE: u64 = 5;
    /// Go: entry of `crypto/tls.(*Conn).Read(b []byte) (int, error)`.
    pub const GO_READ: u64 = 16;
    /// Go: a `RET` instruction of `(*Conn).Read`.
    pub const GO_READ_RETURN: u64 = 17;
    /// Go: entry of `crypto/tls.(*Conn).Write(b []byte) (int, error)`.
    pub const GO_WRITE: u64 = 18;
    /// Go: a `RET` instruction of `(*Conn).Write`.
    pub const GO_WRITE_RETURN: u64 = 19;
    /// Go: entry of `crypto/tls.(*Conn).serverHandshake` or `clientHandshake` (else of
    /// `handshakeContext`): the connection is TLS from its first byte.
    pub const GO_HANDSHAKE: u64 = 20;
    /// Go: `(*Conn).Read`'s call of `runtime.memmove(to, from, n)` (arguments in RAX, RBX, RCX) that
    /// copies the plaintext it returns into `b`: what a `RET` would report, known before the copy.
    pub const GO_READ_COPY: u64 = 21;
    /// Go: one of `(*Conn).Write`'s calls of `(*Conn).writeRecordLocked(typ, data []byte)` (receiver
    /// in RAX, `typ` in BL, `data` in RCX and RDI): the plaintext it is about to seal and send.
    pub const GO_WRITE_RECORD: u64 = 22;
}

/// Common prefix of every ring-buffer event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of [`kind`].
    pub kind: u8,
    /// One of [`direction`] (data events).
    pub direction: u8,
    /// One of [`side`] (open events).
    pub side: u8,
    /// Bits of [`flags`].
    pub flags: u8,
    /// Process id (thread group id).
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// File descriptor of the socket in `tgid`.
    pub fd: i32,
    /// `bpf_ktime_get_ns` when the bytes moved: at the exit of a read (data has arrived), at the entry
    /// of a write (data leaves); for open and close events, when they happened. One clock read per
    /// syscall, not two: reading the clock is a measurable part of the cost in a VM.
    pub ts_ns: u64,
    /// Bytes the syscall actually transferred (its return value).
    pub call_bytes: u64,
    /// Position of the syscall's first byte in this direction's stream, counted since the connection
    /// started being traced. Lets user space see exactly which bytes it never received.
    pub stream_pos: u64,
    /// Offset of this chunk within the syscall's bytes.
    pub chunk_offset: u32,
    /// Bytes of payload following this header.
    pub chunk_len: u32,
    /// Thread command name, in open events only (zeroes elsewhere).
    pub comm: [u8; COMM_LEN],
}

/// A data event as the kernel builds it: header plus a payload area of which `chunk_len` bytes are sent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DataEvent {
    /// Header; `kind` is [`kind::DATA`].
    pub header: EventHeader,
    /// Payload; only the first `header.chunk_len` bytes are meaningful and sent.
    pub data: [u8; CHUNK_SIZE],
}

/// Socket addresses of a connection, as the kernel's `sock_common` holds them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketAddrs {
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u16,
    /// Local port, host byte order.
    pub local_port: u16,
    /// Remote port, host byte order.
    pub remote_port: u16,
    /// Padding, always zero.
    pub pad: u16,
    /// Local address: IPv4 in the first 4 bytes, or IPv6, network byte order.
    pub local_addr: [u8; 16],
    /// Remote address, same encoding.
    pub remote_addr: [u8; 16],
}

/// A connection started being traced.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenEvent {
    /// Header; `kind` is [`kind::OPEN`].
    pub header: EventHeader,
    /// Addresses read from the socket.
    pub addrs: SocketAddrs,
    /// The cgroup (v2) of the task that opened or first used the connection: the id is the cgroup
    /// directory's inode number.
    pub cgroup_id: u64,
}

/// Declares [`KernelLoss`] from one list of named counters, with the sum user space needs, so adding a
/// counter is one line here (plus its increment in the programs) and no code depends on field order.
macro_rules! kernel_loss {
    ($( $(#[doc = $doc:literal])+ $name:ident, )+) => {
        /// Ways the kernel side loses or shortens data, counted per CPU and summed by user space.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct KernelLoss {
            $( $(#[doc = $doc])+ pub $name: u64, )+
        }

        impl KernelLoss {
            /// Adds `other`'s counts to these (summing the per-CPU copies).
            pub fn add(&mut self, other: &KernelLoss) {
                $( self.$name += other.$name; )+
            }
        }
    };
}

kernel_loss! {
    /// Events that did not fit in the ring buffer.
    ring_full_events,
    /// Payload bytes in those events.
    ring_full_bytes,
    /// Chunks whose user memory could not be read.
    copy_failed,
    /// Syscalls that moved more than `--max-call-bytes`.
    truncated_calls,
    /// Bytes beyond `--max-call-bytes` that were not copied.
    truncated_bytes,
    /// Syscalls dropped because another thread took their in-flight slot before they returned.
    pending_full,
    /// Processes that should have been followed (children of a recorded command) but did not fit in
    /// the pid table (their id is beyond the `kernel.pid_max` it was sized for at start), so their
    /// traffic is missed.
    pid_table_full,
    /// TLS library calls dropped because another thread took their slot before they returned, or
    /// because their return probe never fired.
    tls_pending_full,
    /// TLS calls with plaintext whose socket could not be told (no socket call seen for the `SSL`
    /// object yet, or its entry evicted), so their plaintext was not sent.
    tls_no_socket_calls,
    /// Plaintext bytes of those calls.
    tls_no_socket_bytes,
}

/// Byte offsets of the kernel struct fields the programs read, found in the running kernel's BTF.
///
/// Rust eBPF code gets no CO-RE relocations, so user space resolves these at start-up.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.files`
    pub task_files: u32,
    /// `files_struct.fdt`
    pub files_fdt: u32,
    /// `fdtable.max_fds`
    pub fdt_max_fds: u32,
    /// `fdtable.fd`
    pub fdt_fd: u32,
    /// `file.f_inode`
    pub file_inode: u32,
    /// `file.private_data`
    pub file_private_data: u32,
    /// `inode.i_mode`
    pub inode_mode: u32,
    /// `socket.type`
    pub socket_type: u32,
    /// `socket.sk`
    pub socket_sk: u32,
    /// `sock.sk_protocol`
    pub sock_protocol: u32,
    /// `sock_common.skc_family` (as an offset into `struct sock`)
    pub skc_family: u32,
    /// `sock_common.skc_daddr`
    pub skc_daddr: u32,
    /// `sock_common.skc_rcv_saddr`
    pub skc_rcv_saddr: u32,
    /// `sock_common.skc_dport`
    pub skc_dport: u32,
    /// `sock_common.skc_num`
    pub skc_num: u32,
    /// `sock_common.skc_v6_daddr`
    pub skc_v6_daddr: u32,
    /// `sock_common.skc_v6_rcv_saddr`
    pub skc_v6_rcv_saddr: u32,
}

/// Filters and limits the kernel programs apply, set once at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// Struct offsets for walking from an fd to its socket.
    pub offsets: KernelOffsets,
    /// The watcher's own tgid, never traced.
    pub self_tgid: u32,
    /// Bytes copied per syscall at most (≤ [`MAX_CALL_BYTES`]); the rest of a longer call is reported
    /// as not captured.
    pub max_call_bytes: u32,
    /// Non-zero: only tgids present in the `PID_FILTER` map are traced.
    pub pid_filter_on: u8,
    /// Non-zero: only threads whose comm equals `comm` are traced.
    pub comm_filter_on: u8,
    /// Side filter: 0 both, otherwise one of [`side`].
    pub side_filter: u8,
    /// Number of valid entries in `ports` (0: no port filter).
    pub port_count: u8,
    /// Ports matched against either end of a connection.
    pub ports: [u16; MAX_PORT_FILTERS],
    /// Command name for the comm filter, NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// Producers wake the ring reader only once this many bytes are waiting (it polls otherwise); 0
    /// asks the next record to wake it (a reader asleep while the ring stays empty).
    pub wake_bytes: u32,
    /// Non-zero: processes forked by the watcher's main thread, and their descendants, are added to
    /// the `PID_FILTER` map as [`pid_mark::DESCENDANT`] (and removed when they exit).
    pub follow_children: u8,
    /// Non-zero: a task outside the pid filter is still traced on connections matching `ports`, and
    /// tasks inside it are traced on every port (the filters widen each other instead of narrowing).
    pub widen_by_port: u8,
    /// Zero: every program returns at once. User space arms the programs only once all of them are
    /// attached, and disarms them before detaching, because attaching and detaching take seconds on
    /// some machines and a half-attached set (reads seen, writes not) would show broken exchanges.
    pub armed: u8,
    /// Non-zero: the TLS uprobes run (`--no-tls` clears it; they are then not attached either).
    pub tls: u8,
    /// Offset of `child_pid` in `sched_process_fork` records (it moved between kernel versions).
    pub fork_child_pid: u32,
    /// Number of valid entries in `cgroups` (0: no cgroup filter).
    pub cgroup_count: u32,
    /// Only tasks in one of these cgroups, or below one, are traced.
    pub cgroups: [CgroupFilter; MAX_CGROUP_FILTERS],
}

/// One cgroup of the cgroup filter: a task is inside when its ancestor at `level` is `id`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupFilter {
    /// The cgroup's id (its directory's inode number on the cgroup v2 mount).
    pub id: u64,
    /// Its depth below the root cgroup (the root is level 0).
    pub level: u32,
    /// Padding, always zero.
    pub pad: u32,
}

/// How many processes each CPU's [`NewCode`] remembers between two looks of the TLS finder.
pub const NEW_CODE_SLOTS: usize = 64;

/// One CPU's notes of the traced processes that brought new code into memory: an `execve` that
/// succeeded, or a file mapped executable (a library loaded, at start or with `dlopen`). The TLS
/// finder looks at these processes instead of re-reading every process's maps on a timer.
///
/// Written only by the programs on that CPU, `tgids` slot first and `count` after; user space reads
/// `count` first, so a count it sees covers tgids already written. More than [`NEW_CODE_SLOTS`] notes
/// between two looks overwrite the oldest: the reader sees that from `count` and looks everywhere.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewCode {
    /// Notes taken on this CPU since the programs were loaded; note `n` is in slot
    /// `n % NEW_CODE_SLOTS`.
    pub count: u64,
    /// The tgid of each note.
    pub tgids: [u32; NEW_CODE_SLOTS],
}

impl Default for NewCode {
    fn default() -> Self {
        Self {
            count: 0,
            tgids: [0; NEW_CODE_SLOTS],
        }
    }
}

/// Where the pid filter keeps the mark of `id`: the `PID_FILTER` entry, and the byte of it (the
/// entry's value is a little-endian `u64`, byte `i` the mark of id `8 * entry + i`).
#[inline]
pub const fn pid_slot(id: u32) -> (u32, u32) {
    (id / 8, id % 8)
}

/// Values of the `PID_FILTER` map: why a tgid is traced (0: it is not).
pub mod pid_mark {
    /// Named with `--pid`.
    pub const GIVEN: u8 = 1;
    /// A descendant of the command being recorded (followed across fork, removed at exit).
    pub const DESCENDANT: u8 = 2;
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY (for every impl below): the types are #[repr(C)], contain only integers and integer arrays,
    // and are valid for any bit pattern, which is what aya::Pod requires.
    #![allow(unsafe_code)]
    unsafe impl aya::Pod for super::KernelConfig {}
    unsafe impl aya::Pod for super::KernelLoss {}
    unsafe impl aya::Pod for super::NewCode {}
}
