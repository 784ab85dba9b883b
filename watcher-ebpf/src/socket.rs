//! Which fds are TCP sockets, and their addresses.
//!
//! An fd is classified once, on its first hooked use (or at accept/connect), by walking
//! task -> files -> fdtable -> file -> socket -> sock with offsets user space read from BTF. The result is
//! cached in `SOCKETS` until `close`, so the walk never runs on the hot path of an already-known fd.
//! Never copies payload.

use aya_ebpf::helpers::{
    bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_task,
    bpf_ktime_get_ns, bpf_probe_read_kernel,
};
use watcher_common::{
    flags, kind, side, EventHeader, KernelConfig, OpenEvent, SocketAddrs, MAX_CGROUP_FILTERS,
};

use crate::maps::{
    SocketState, EVENTS, OPEN_SCRATCH, SOCKETS, STATE_IGNORED, STATE_NOT_TCP, STATE_TRACED,
};

const S_IFMT: u16 = 0o170_000;
const S_IFSOCK: u16 = 0o140_000;
const SOCK_STREAM: u16 = 1;
const IPPROTO_TCP: u16 = 6;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Map key of an fd of a process.
#[inline(always)]
pub fn socket_key(tgid: u32, fd: i32) -> u64 {
    (u64::from(tgid) << 32) | u64::from(fd as u32)
}

#[inline(always)]
fn read<T>(base: u64, offset: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails instead of faulting.
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

/// The `struct file` that `fd` names in the current task now (0 for a free fd).
#[inline(always)]
fn fd_file(cfg: &KernelConfig, fd: i32) -> Option<u64> {
    let off = &cfg.offsets;
    // SAFETY: the helper has no preconditions; it returns the current task pointer.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task, off.task_files)?;
    let fdt: u64 = read(files, off.files_fdt)?;
    let max_fds: u32 = read(fdt, off.fdt_max_fds)?;
    if fd < 0 || fd as u32 >= max_fds {
        return Some(0);
    }
    let fd_array: u64 = read(fdt, off.fdt_fd)?;
    read(fd_array, (fd as u32) * 8)
}

/// Reads the addresses of `fd` in the current task into `addrs`, if it is a TCP socket, and returns its
/// `struct file`.
#[inline(always)]
fn tcp_socket_addrs(cfg: &KernelConfig, fd: i32, addrs: &mut SocketAddrs) -> Option<u64> {
    let off = &cfg.offsets;
    let file = fd_file(cfg, fd)?;
    if file == 0 {
        return None;
    }
    let inode: u64 = read(file, off.file_inode)?;
    let mode: u16 = read(inode, off.inode_mode)?;
    if mode & S_IFMT != S_IFSOCK {
        return None;
    }
    let socket: u64 = read(file, off.file_private_data)?;
    let sock_type: u16 = read(socket, off.socket_type)?;
    if sock_type != SOCK_STREAM {
        return None;
    }
    let sk: u64 = read(socket, off.socket_sk)?;
    if read::<u16>(sk, off.sock_protocol)? != IPPROTO_TCP {
        return None;
    }
    let family: u16 = read(sk, off.skc_family)?;
    addrs.family = family;
    addrs.local_port = read(sk, off.skc_num)?;
    addrs.remote_port = u16::from_be(read(sk, off.skc_dport)?);
    addrs.pad = 0;
    match family {
        AF_INET => {
            addrs.local_addr = [0; 16];
            addrs.remote_addr = [0; 16];
            let local: [u8; 4] = read(sk, off.skc_rcv_saddr)?;
            let remote: [u8; 4] = read(sk, off.skc_daddr)?;
            addrs.local_addr[..4].copy_from_slice(&local);
            addrs.remote_addr[..4].copy_from_slice(&remote);
        }
        AF_INET6 => {
            addrs.local_addr = read(sk, off.skc_v6_rcv_saddr)?;
            addrs.remote_addr = read(sk, off.skc_v6_daddr)?;
        }
        _ => return None,
    }
    Some(file)
}

#[inline(always)]
fn passes_connection_filters(cfg: &KernelConfig, tgid: u32, side: u8, addrs: &SocketAddrs) -> bool {
    if cfg.side_filter != 0 && side != side::UNKNOWN && side != cfg.side_filter {
        return false;
    }
    if cfg.cgroup_count != 0 && !in_cgroups(cfg) {
        return false;
    }
    if cfg.port_count == 0 {
        return true;
    }
    // Widening: processes in the pid filter are traced on every port, the others only on these ports.
    if cfg.widen_by_port != 0 && crate::task::pid_mark(tgid).is_some() {
        return true;
    }
    let mut i = 0;
    while i < watcher_common::MAX_PORT_FILTERS {
        if i >= cfg.port_count as usize {
            break;
        }
        let port = cfg.ports[i];
        if port == addrs.local_port || port == addrs.remote_port {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether the current task is inside one of the filter's cgroups. Asked once per connection, at
/// classification, so its helper calls never run on the data path.
#[inline(always)]
fn in_cgroups(cfg: &KernelConfig) -> bool {
    let mut i = 0;
    while i < MAX_CGROUP_FILTERS {
        if i >= cfg.cgroup_count as usize {
            break;
        }
        let filter = &cfg.cgroups[i];
        // SAFETY: no preconditions; a level deeper than the task's cgroup gives 0, which no cgroup has.
        if unsafe { bpf_get_current_ancestor_cgroup_id(filter.level as i32) } == filter.id {
            return true;
        }
        i += 1;
    }
    false
}

/// Classifies `fd`, remembers the result and announces traced connections. `side` is what the calling
/// hook knows (`UNKNOWN` when the fd is met for the first time in the middle of its life).
///
/// The open event is built in a per-CPU map slot, not on the stack: this runs inside the data path,
/// whose copy loop needs its share of the 512-byte stack too.
#[inline(always)]
pub fn classify(cfg: &KernelConfig, tgid: u32, tid: u32, fd: i32, side: u8) -> u8 {
    let Some(open) = OPEN_SCRATCH.get_ptr_mut(0) else {
        return STATE_NOT_TCP;
    };
    // SAFETY: this CPU's slot, valid for the program's run and used by no other run meanwhile.
    let open = unsafe { &mut *open };
    let file = tcp_socket_addrs(cfg, fd, &mut open.addrs);
    let state = if file.is_none() {
        STATE_NOT_TCP
    } else if passes_connection_filters(cfg, tgid, side, &open.addrs) {
        STATE_TRACED
    } else {
        STATE_IGNORED
    };
    let entry = SocketState {
        state,
        side,
        tls: 0,
        pad: [0; 5],
        file: file.unwrap_or(0),
        stream_pos: [0; 2],
        tls_pos: [0; 2],
    };
    // A full LRU map evicts; an insert failure only means we classify again next time.
    let _ = SOCKETS.insert(socket_key(tgid, fd), entry, 0);
    if state == STATE_TRACED {
        announce(cfg, open, tgid, tid, fd, side);
    }
    state
}

/// Sends `open`, whose addresses are filled in, as the open event of `fd`.
#[inline(always)]
fn announce(cfg: &KernelConfig, open: &mut OpenEvent, tgid: u32, tid: u32, fd: i32, side: u8) {
    let header = &mut open.header;
    header.kind = kind::OPEN;
    header.direction = 0;
    header.side = side;
    header.flags = if side == side::UNKNOWN {
        flags::MID_STREAM
    } else {
        0
    };
    header.tgid = tgid;
    header.tid = tid;
    header.fd = fd;
    // SAFETY: the ts helper has no preconditions.
    header.ts_ns = unsafe { bpf_ktime_get_ns() };
    header.call_bytes = 0;
    header.stream_pos = 0;
    header.chunk_offset = 0;
    header.chunk_len = 0;
    header.comm = aya_ebpf::helpers::bpf_get_current_comm().unwrap_or_default();
    // SAFETY: no preconditions.
    open.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    if EVENTS
        .output::<OpenEvent>(
            &*open,
            crate::ring::submit_flags(cfg.wake_bytes, size_of::<OpenEvent>() as u64),
        )
        .is_err()
    {
        crate::loss::count(|l| l.ring_full_events += 1);
    }
}

/// Looks up `fd`, classifying it on first sight. Returns the map entry if the fd is a TCP socket, traced
/// or ignored by the filters (`state` tells which).
#[inline(always)]
pub fn tcp_socket(
    cfg: &KernelConfig,
    tgid: u32,
    tid: u32,
    fd: i32,
) -> Option<&'static mut SocketState> {
    let key = socket_key(tgid, fd);
    let ptr = match SOCKETS.get_ptr_mut(key) {
        Some(ptr) => ptr,
        None => {
            if classify(cfg, tgid, tid, fd, side::UNKNOWN) == STATE_NOT_TCP {
                return None;
            }
            SOCKETS.get_ptr_mut(key)?
        }
    };
    // SAFETY: map value pointer, valid during this program run.
    let sock = unsafe { &mut *ptr };
    (sock.state != STATE_NOT_TCP).then_some(sock)
}

/// Looks up `fd`, classifying it on first sight. Returns the map entry if the fd is traced.
#[inline(always)]
pub fn traced_socket(
    cfg: &KernelConfig,
    tgid: u32,
    tid: u32,
    fd: i32,
) -> Option<&'static mut SocketState> {
    tcp_socket(cfg, tgid, tid, fd).filter(|sock| sock.state == STATE_TRACED)
}

/// Whether `fd` is already known as a TCP socket (traced or not); never classifies.
#[inline(always)]
pub fn known_tcp(tgid: u32, fd: i32) -> bool {
    // SAFETY: the value is read at once.
    unsafe { SOCKETS.get(socket_key(tgid, fd)) }.is_some_and(|s| s.state != STATE_NOT_TCP)
}

/// Forgets `fd` as close(2) begins, telling user space if it was traced.
#[inline(always)]
pub fn forget(cfg: &KernelConfig, tgid: u32, tid: u32, fd: i32) {
    // SAFETY: the value is copied out immediately.
    let Some(state) = (unsafe { SOCKETS.get(socket_key(tgid, fd)) }).map(|s| s.state) else {
        return;
    };
    remove(cfg, tgid, tid, fd, state);
}

/// Forgets `fd` after close(2) returned. Another thread may already have reused the number: if the
/// entry is that new file's (classified since), it stays, and the new connection's open event has
/// already ended the old one in user space.
#[inline(always)]
pub fn forget_closed(cfg: &KernelConfig, tgid: u32, tid: u32, fd: i32) {
    // SAFETY: the values are copied out immediately.
    let Some((state, file)) =
        (unsafe { SOCKETS.get(socket_key(tgid, fd)) }).map(|s| (s.state, s.file))
    else {
        return;
    };
    // The closed file is released only on the way back to user space, after this hook, so a new file
    // cannot have its address yet.
    if file != 0 && fd_file(cfg, fd) == Some(file) {
        return;
    }
    remove(cfg, tgid, tid, fd, state);
}

/// Removes the entry of `fd`, whose state is `state`, and sends a close event if it was traced.
#[inline(always)]
fn remove(cfg: &KernelConfig, tgid: u32, tid: u32, fd: i32, state: u8) {
    let _ = SOCKETS.remove(socket_key(tgid, fd));
    if state != STATE_TRACED {
        return;
    }
    let Some(mut slot) = EVENTS.reserve::<EventHeader>(0) else {
        crate::loss::count(|l| l.ring_full_events += 1);
        return;
    };
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    slot.write(EventHeader {
        kind: kind::CLOSE,
        tgid,
        tid,
        fd,
        ts_ns: now,
        ..EventHeader::default()
    });
    slot.submit(crate::ring::submit_flags(
        cfg.wake_bytes,
        size_of::<EventHeader>() as u64,
    ));
}
