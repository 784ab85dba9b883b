//! Decoding ring-buffer records into typed events: the one place user space reinterprets kernel bytes.
//!
//! Records are checked for kind and length before any field is read; a short or unknown record is
//! reported, never trusted.

use watcher_common::{kind, EventHeader, OpenEvent, SocketAddrs};

/// A ring-buffer record, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawEvent<'a> {
    /// Payload of a syscall.
    Data {
        /// Common fields.
        header: EventHeader,
        /// The chunk's bytes (`header.chunk_len` of them).
        payload: &'a [u8],
    },
    /// A connection began to be traced.
    Open {
        /// Common fields.
        header: EventHeader,
        /// Its addresses.
        addrs: SocketAddrs,
        /// The cgroup v2 id of the task that opened or first used it.
        cgroup_id: u64,
    },
    /// A traced connection was closed.
    Close {
        /// Common fields.
        header: EventHeader,
    },
    /// A traced process (`header.tgid`) brought new code: the TLS finder's doorbell, which the ring
    /// reader passes on (it is no connection's).
    NewCode {
        /// Common fields.
        header: EventHeader,
    },
}

/// A record that is not a valid event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed ring-buffer record of {len} bytes (kind {kind})")]
pub struct MalformedEvent {
    /// Record length.
    pub len: usize,
    /// Kind byte, if any.
    pub kind: u8,
}

#[allow(unsafe_code)]
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length was checked above; `T` is one of the #[repr(C)] integer-only types from
    // watcher-common, valid for any bit pattern, and read_unaligned has no alignment requirement.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<RawEvent<'_>, MalformedEvent> {
    let malformed = || MalformedEvent {
        len: bytes.len(),
        kind: bytes.first().copied().unwrap_or(0),
    };
    let header: EventHeader = read(bytes).ok_or_else(malformed)?;
    match header.kind {
        kind::DATA => {
            let start = size_of::<EventHeader>();
            let payload = bytes
                .get(start..start + header.chunk_len as usize)
                .ok_or_else(malformed)?;
            Ok(RawEvent::Data { header, payload })
        }
        kind::OPEN => {
            let open: OpenEvent = read(bytes).ok_or_else(malformed)?;
            Ok(RawEvent::Open {
                header,
                addrs: open.addrs,
                cgroup_id: open.cgroup_id,
            })
        }
        kind::CLOSE => Ok(RawEvent::Close { header }),
        kind::NEW_CODE => Ok(RawEvent::NewCode { header }),
        _ => Err(malformed()),
    }
}

/// Encodes an event the way the kernel does; used by tests and benchmarks that replay traffic.
pub fn encode_data(header: &EventHeader, payload: &[u8], out: &mut Vec<u8>) {
    encode_pod(header, out);
    out.extend_from_slice(payload);
}

#[allow(unsafe_code)]
fn encode_pod<T: Copy>(value: &T, out: &mut Vec<u8>) {
    // SAFETY: `T` is a #[repr(C)] integer-only type without padding bytes that matter to the reader
    // (padding is read back as whatever was written, and never interpreted).
    let bytes = unsafe {
        std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), size_of::<T>())
    };
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_event_round_trips() {
        let header = EventHeader {
            kind: kind::DATA,
            chunk_len: 5,
            fd: 7,
            ..EventHeader::default()
        };
        let mut buf = Vec::new();
        encode_data(&header, b"hello", &mut buf);
        assert_eq!(
            decode(&buf),
            Ok(RawEvent::Data {
                header,
                payload: b"hello"
            })
        );
    }

    #[test]
    fn short_or_unknown_records_are_rejected() {
        assert!(decode(&[1, 2, 3]).is_err());
        let header = EventHeader {
            kind: kind::DATA,
            chunk_len: 100,
            ..EventHeader::default()
        };
        let mut buf = Vec::new();
        encode_data(&header, b"short", &mut buf);
        assert!(decode(&buf).is_err());
        let mut unknown = Vec::new();
        encode_data(
            &EventHeader {
                kind: 99,
                ..EventHeader::default()
            },
            b"",
            &mut unknown,
        );
        assert!(decode(&unknown).is_err());
    }

    #[test]
    fn close_and_new_code_events_are_a_header_alone() {
        type Expected = fn(EventHeader) -> RawEvent<'static>;
        let cases: [(u8, Expected); 2] = [
            (kind::CLOSE, |header| RawEvent::Close { header }),
            (kind::NEW_CODE, |header| RawEvent::NewCode { header }),
        ];
        for (kind, expected) in cases {
            let header = EventHeader {
                kind,
                tgid: 42,
                ..EventHeader::default()
            };
            let mut buf = Vec::new();
            encode_data(&header, b"", &mut buf);
            assert_eq!(decode(&buf), Ok(expected(header)));
            assert!(decode(&buf[..buf.len() - 1]).is_err(), "a short header");
        }
    }
}
