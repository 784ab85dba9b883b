//! The record: one request with its response (or one pushed message), as every later stage sees it.
//!
//! Records are immutable once built and shared as `Arc<Record>` between the store, the TUI and exporters.
//! This module defines data, and `filter` which records are kept; what a record's exchange means is
//! asked of its protocol (`protocol::Payload`), and JSON lives in `ndjson`.

pub mod filter;

use std::{net::SocketAddr, sync::Arc};

use crate::cgroup::Cgroup;

pub use crate::protocol::Exchange;

/// Which end of the connection the traced process was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The process sent the request.
    Client,
    /// The process received the request.
    Server,
}

impl Side {
    /// Lower-case name used in JSON and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Who and where: the process and the connection a record was seen on. Built once per connection and
/// shared by its records, so the addresses are rendered as text once, not per record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread command name of the process when the connection was first seen.
    pub comm: Box<str>,
    /// Which end the process is.
    pub side: Side,
    /// Whether the connection is TLS and its records were decoded from the plaintext of the TLS
    /// library's calls.
    pub tls: bool,
    /// The cgroup the process was in, with the container it names; `None` when the kernel could not
    /// tell (or in captures made before cgroups were recorded).
    pub cgroup: Option<Arc<Cgroup>>,
    // Private, so the rendered text can never disagree with the address it was rendered from.
    local: SocketAddr,
    remote: SocketAddr,
    local_text: Box<str>,
    remote_text: Box<str>,
}

impl Endpoint {
    /// An endpoint, with its addresses rendered.
    pub fn new(pid: u32, comm: &str, local: SocketAddr, remote: SocketAddr, side: Side) -> Self {
        Self {
            pid,
            comm: comm.into(),
            local,
            remote,
            side,
            tls: false,
            cgroup: None,
            local_text: local.to_string().into(),
            remote_text: remote.to_string().into(),
        }
    }

    /// The traced process's address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The traced process's address as text.
    pub fn local_text(&self) -> &str {
        &self.local_text
    }

    /// The peer's address as text.
    pub fn remote_text(&self) -> &str {
        &self.remote_text
    }

    /// The same endpoint, marked as carrying TLS plaintext.
    #[must_use]
    pub fn with_tls(&self) -> Self {
        Self {
            tls: true,
            ..self.clone()
        }
    }

    /// The full container id, when the cgroup names one.
    pub fn container(&self) -> Option<&str> {
        self.cgroup.as_deref().and_then(|c| c.container.as_deref())
    }

    /// `(client, server)` addresses, whichever side the process is.
    pub fn client_server(&self) -> (SocketAddr, SocketAddr) {
        match self.side {
            Side::Client => (self.local, self.remote),
            Side::Server => (self.remote, self.local),
        }
    }

    /// The client's and the server's addresses as text, in [`Endpoint::client_server`]'s order.
    pub fn client_server_text(&self) -> (&str, &str) {
        match self.side {
            Side::Client => (&self.local_text, &self.remote_text),
            Side::Server => (&self.remote_text, &self.local_text),
        }
    }
}

/// The IP address in an endpoint's address text (`10.0.0.5:80`, `[::1]:80`), as `IpAddr` prints it.
pub fn ip_of(address_text: &str) -> &str {
    let host = address_text
        .rsplit_once(':')
        .map_or(address_text, |(host, _port)| host);
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // A link-local IPv6 socket address prints its scope (`[fe80::1%2]:80`); the address does not.
        Some(v6) => v6.split_once('%').map_or(v6, |(address, _scope)| address),
        None => host,
    }
}

/// One finished exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Position in the capture, from 1, assigned by the store.
    pub id: u64,
    /// Where it was seen (shared with the other records of the connection).
    pub endpoint: Arc<Endpoint>,
    /// Wall-clock time of the request's first byte (or of the push), ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Wall-clock time of the response's last byte; `None` if no response came.
    pub end_unix_ns: Option<u64>,
    /// Request bytes on the wire.
    pub request_bytes: u64,
    /// Response bytes on the wire.
    pub response_bytes: u64,
    /// Whether any part was not captured in full.
    pub truncated: bool,
    /// Whether secrets in it were masked (`protocol/redact.rs`).
    pub redacted: bool,
    /// The decoded exchange.
    pub exchange: Exchange,
}

impl Record {
    /// Latency in ns, when a response came.
    pub fn latency_ns(&self) -> Option<u64> {
        self.end_unix_ns
            .map(|end| end.saturating_sub(self.start_unix_ns))
    }

    /// Protocol name used in JSON and the UI.
    pub fn protocol(&self) -> &'static str {
        self.exchange.protocol().name()
    }

    /// What was asked (a Redis command, `(push)` for a push; an HTTP method): how views and statistics
    /// name it.
    pub fn command(&self) -> &str {
        self.exchange.payload().operation()
    }

    /// Bytes it takes in memory, about: itself, its exchange's heap, and the `Arc` it is stored in (the
    /// endpoint is shared by the connection's records and not counted).
    pub fn memory_bytes(&self) -> usize {
        // An Arc's allocation: two counts and the record.
        2 * size_of::<usize>() + size_of::<Record>() + self.exchange.heap_bytes()
    }

    /// Whether the response reports an error, by its protocol's rule (a Redis error reply, an HTTP 4xx
    /// or 5xx).
    pub fn is_error(&self) -> bool {
        self.exchange.payload().is_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::redis::{Blob, Frame, RedisExchange};

    /// A stored record is one allocation: the `Arc`'s two counts and the record. jemalloc's classes
    /// there are 256 and 320 bytes, so a record a few bytes larger costs a fifth more memory and a
    /// cache line more at every stage that touches it (the shard that builds it, the store, the
    /// exporter, the eviction). Redis records are held inline; other protocols' exchanges are boxed
    /// when larger.
    #[test]
    fn a_stored_record_with_its_counts_fits_the_256_byte_class() {
        let arc_inner = 2 * size_of::<usize>() + size_of::<Record>();
        assert!(
            arc_inner <= 256,
            "Arc<Record> takes {arc_inner} bytes (Record {}, RedisExchange {}, Frame {}, Blob {})",
            size_of::<Record>(),
            size_of::<RedisExchange>(),
            size_of::<Frame>(),
            size_of::<Blob>(),
        );
    }

    #[test]
    fn the_ip_of_an_address_text_is_what_the_address_prints() {
        let addresses: [SocketAddr; 4] = [
            "10.0.0.5:50001".parse().unwrap(),
            "[::1]:6379".parse().unwrap(),
            "[2001:db8::8:800:200c:417a]:443".parse().unwrap(),
            SocketAddr::V6(std::net::SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                80,
                0,
                2,
            )),
        ];
        for address in addresses {
            let endpoint = Endpoint::new(1, "p", address, address, Side::Server);
            assert_eq!(
                ip_of(endpoint.local_text()),
                address.ip().to_string(),
                "{address}"
            );
        }
    }
}
