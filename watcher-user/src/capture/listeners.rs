//! Listening TCP ports of the host, read once from /proc/net/tcp{,6}: tells the side of connections that
//! were already open when tracing began (a local port that is listening means the process is the server).

use std::collections::HashSet;

use procfs::net::TcpState;

/// Local ports in the LISTEN state, IPv4 and IPv6. Unreadable tables give an empty set: such connections
/// then default to the client side.
pub fn listening_ports() -> HashSet<u16> {
    let v4 = procfs::net::tcp().unwrap_or_default();
    let v6 = procfs::net::tcp6().unwrap_or_default();
    v4.iter()
        .chain(v6.iter())
        .filter(|e| e.state == TcpState::Listen)
        .map(|e| e.local_address.port())
        .collect()
}
