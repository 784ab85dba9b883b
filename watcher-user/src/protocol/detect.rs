//! Protocol detection per connection, and the session that decodes a connection once it is known.
//!
//! A connection starts undecided. At the start of each syscall's bytes the detector asks every enabled
//! protocol whether the bytes open one of its messages; the first that is sure (in registry order), or
//! else the first that finds them plausible, gets the connection for good. Bytes before that are not decoded, so a watcher started in the middle of a
//! stream picks up at the next message start. A connection that carries data no protocol recognises is
//! counted, never shown. One that starts with TLS records is counted as encrypted instead: its
//! plaintext, when the TLS probes capture it, arrives as a stream of its own (see `conn::shard`).
//!
//! Pure: no I/O.

use super::{
    common::{Flow, Paired, SessionStats},
    plugin::{Chunk, Recognition},
    registry::{Exchange, ProtocolId, ProtocolSession, ProtocolSet},
};

/// Call starts without a recognised message after which a connection is counted as unrecognised.
const UNRECOGNISED_AFTER: u32 = 8;

/// How connections are decoded: shared, read-only, by every session of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoding {
    /// Protocols to recognise.
    pub protocols: ProtocolSet,
    /// Bytes of each value or body kept in records.
    pub keep_bytes: usize,
}

/// The decoding state of one connection.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per connection, touched on every event: a box would add a pointer chase to the hot path"
)]
pub enum Session {
    /// No protocol recognised yet.
    Undecided {
        /// Whether no byte of the connection has been missed so far.
        from_start: bool,
        /// Call starts seen without a match.
        misses: u32,
    },
    /// The bytes are TLS records: nothing to decode. The connection counts as encrypted once
    /// application data flows (before that, the TLS probes may yet capture its plaintext, which then
    /// replaces this session).
    Encrypted {
        /// Whether an application data record was seen.
        application_data: bool,
    },
    /// The protocol is known.
    Decided(ProtocolSession),
}

impl Session {
    /// A connection whose first bytes will be seen when `from_start`.
    pub fn new(from_start: bool) -> Self {
        Session::Undecided {
            from_start,
            misses: 0,
        }
    }

    /// Feeds bytes of one direction (see [`super::plugin::Session::on_data`]). Returns true the one
    /// time an undecided connection is given up as unrecognised.
    pub fn on_data(
        &mut self,
        decoding: &Decoding,
        chunk: Chunk<'_>,
        out: &mut impl FnMut(Paired<Exchange>),
    ) -> bool {
        if let Session::Undecided { from_start, .. } = self {
            if !chunk.call_start {
                *from_start = false;
                return false;
            }
            if looks_like_tls_record(chunk.data) {
                *self = Session::Encrypted {
                    application_data: false,
                };
            }
        }
        match self {
            Session::Encrypted { application_data } => {
                *application_data |= chunk.call_start
                    && chunk.data.first() == Some(&TLS_APPLICATION_DATA)
                    && looks_like_tls_record(chunk.data);
                return false;
            }
            Session::Undecided { from_start, misses } => {
                let Some(detected) = detect(decoding.protocols, chunk.flow, chunk.data) else {
                    *from_start = false;
                    *misses += 1;
                    return *misses == UNRECOGNISED_AFTER;
                };
                *self = Session::Decided(detected.session(decoding.keep_bytes, *from_start));
            }
            Session::Decided(_) => {}
        }
        if let Session::Decided(s) = self {
            s.on_data(chunk, out);
        }
        false
    }

    /// Accounts for `len` bytes that were not captured.
    pub fn on_gap(&mut self, flow: Flow, len: u64, out: &mut impl FnMut(Paired<Exchange>)) {
        match self {
            Session::Undecided { from_start, .. } => *from_start = false,
            Session::Encrypted { .. } => {}
            Session::Decided(s) => s.on_gap(flow, len, out),
        }
    }

    /// The connection closed.
    pub fn on_close(&mut self, out: &mut impl FnMut(Paired<Exchange>)) {
        if let Session::Decided(s) = self {
            s.on_close(out);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SessionStats {
        match self {
            Session::Undecided { .. } => SessionStats::default(),
            Session::Encrypted { application_data } => SessionStats {
                encrypted: u64::from(*application_data),
                ..SessionStats::default()
            },
            Session::Decided(s) => s.stats(),
        }
    }
}

/// Content type of a TLS record carrying application data (after the handshake).
const TLS_APPLICATION_DATA: u8 = 0x17;

/// Largest TLS record on the wire: 2^14 bytes of plaintext plus the most expansion the RFCs allow.
const MAX_TLS_RECORD: u16 = (1 << 14) + 2048;

/// Whether `data` (the start of a syscall's bytes) is the header of a TLS record: a content type
/// (change cipher spec, alert, handshake, application data), version 3.x, and a plausible length.
fn looks_like_tls_record(data: &[u8]) -> bool {
    let [content_type, 3, minor, hi, lo, ..] = *data else {
        return false;
    };
    let len = u16::from_be_bytes([hi, lo]);
    (0x14..=0x17).contains(&content_type) && minor <= 4 && len > 0 && len <= MAX_TLS_RECORD
}

/// Which enabled protocol, if any, `data` (the start of a syscall's bytes) opens a message of: the first
/// that is sure, else the first that finds it plausible.
fn detect(protocols: ProtocolSet, flow: Flow, data: &[u8]) -> Option<ProtocolId> {
    let mut plausible = None;
    for protocol in protocols.iter() {
        match protocol.recognise(flow, data) {
            Recognition::Yes => return Some(protocol),
            Recognition::Maybe => plausible = plausible.or(Some(protocol)),
            Recognition::No => {}
        }
    }
    plausible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_is_recognised_by_its_first_message_only_when_enabled() {
        let all = ProtocolSet::all();
        let http_only = ProtocolSet::only(ProtocolId::Http);
        let get = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        assert_eq!(detect(all, Flow::Request, get), Some(ProtocolId::Http));
        assert_eq!(detect(all, Flow::Request, set), Some(ProtocolId::Redis));
        assert_eq!(
            detect(all, Flow::Request, b"PING\r\n"),
            Some(ProtocolId::Redis)
        );
        assert_eq!(
            detect(all, Flow::Response, b"HTTP/1.1 200 OK\r\n"),
            Some(ProtocolId::Http)
        );
        assert_eq!(detect(http_only, Flow::Request, set), None);
        // A request line alone would pass for an inline Redis command too; HTTP is sure of it.
        assert_eq!(
            detect(all, Flow::Request, b"GET /index.html HTTP/1.1\r\n"),
            Some(ProtocolId::Http)
        );
        // An inline Redis command is not an HTTP request line, and TLS or SSH is neither.
        assert_eq!(
            detect(all, Flow::Request, b"SET k v\r\n"),
            Some(ProtocolId::Redis)
        );
        assert_eq!(detect(http_only, Flow::Request, b"SET k v\r\n"), None);
        assert_eq!(
            detect(all, Flow::Request, b"\x16\x03\x01\x02\x00\x01"),
            None
        );
        assert_eq!(detect(all, Flow::Request, b"SSH-2.0-OpenSSH_9.2\r\n"), None);
    }

    #[test]
    fn an_unrecognised_connection_is_reported_once() {
        let mut session = Session::new(true);
        let mut finished = Vec::new();
        let mut out = |p| finished.push(p);
        let reports = (0..3 * UNRECOGNISED_AFTER)
            .filter(|i| {
                session.on_data(
                    &Decoding {
                        protocols: ProtocolSet::all(),
                        keep_bytes: 64,
                    },
                    Chunk::new(Flow::Request, b"\x00\x03\x01garbage", u64::from(*i), true),
                    &mut out,
                )
            })
            .count();
        assert_eq!(reports, 1);
        assert!(finished.is_empty());
    }

    #[test]
    fn a_connection_that_starts_with_tls_records_is_encrypted_not_unrecognised() {
        let decoding = Decoding {
            protocols: ProtocolSet::all(),
            keep_bytes: 64,
        };
        let mut finished = Vec::new();
        let mut out = |p| finished.push(p);
        // A ClientHello's record header, then application data records.
        let mut session = Session::new(true);
        let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        assert!(!session.on_data(
            &decoding,
            Chunk::new(Flow::Request, hello, 1, true),
            &mut out
        ));
        // Handshake records only: the probes may still capture the plaintext, so not counted yet.
        assert_eq!(session.stats().encrypted, 0);
        for i in 0..2 * UNRECOGNISED_AFTER {
            let record = b"\x17\x03\x03\x00\x20GET / HTTP/1.1\r\n";
            assert!(!session.on_data(
                &decoding,
                Chunk::new(Flow::Request, record, u64::from(i), true),
                &mut out
            ));
        }
        assert_eq!(session.stats().encrypted, 1);
        assert!(finished.is_empty());
        // Not TLS: a zero length, a version other than 3.x, an unknown content type, too short.
        for data in [
            &b"\x16\x03\x01\x00\x00"[..],
            b"\x16\x02\x01\x00\x10",
            b"\x18\x03\x03\x00\x10",
            b"\x16\x03\x01\x00",
            b"\x17\x03\x03\xff\xff",
        ] {
            assert!(!looks_like_tls_record(data), "{data:?}");
        }
    }
}
