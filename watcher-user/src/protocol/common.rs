//! The vocabulary every protocol shares: which way bytes flow, binary-safe values with their true
//! length, a finished exchange with its timing, and a session's counters.

use std::fmt;

use compact_str::CompactString;

/// Which way bytes flow, in protocol terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Client to server.
    Request,
    /// Server to client.
    Response,
}

/// The kept bytes of a [`Blob`]. Values of up to 24 bytes (most keys, small values, status replies)
/// live inside the blob itself: a typical command then costs no allocation per argument, and the thread
/// that finally drops an evicted record has that many fewer frees to do.
pub type BlobData = smallvec::SmallVec<[u8; 24]>;

/// A binary-safe value with its true length; `data` may hold only a prefix of it.
///
/// The wire length and the redaction mark share one word (lengths stay below 2^63: any larger one is
/// kept as 2^63 - 1): a blob is then 40 bytes rather than 48, which is what keeps a frame at 48 bytes
/// and a stored Redis record, with its `Arc`, within 256 (the allocator's next class up is 320).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob {
    /// The bytes kept (a prefix of the value when `data.len() < len()`).
    pub data: BlobData,
    /// The value's length on the wire, and [`Blob::REDACTED`] if bytes of a secret in it were masked.
    len_and_mark: u64,
}

// The packed word is shown as the two values it holds.
#[allow(clippy::missing_fields_in_debug)]
impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("data", &self.data)
            .field("len", &self.len())
            .field("redacted", &self.redacted())
            .finish()
    }
}

impl Blob {
    /// The bit of `len_and_mark` that marks a redacted value.
    const REDACTED: u64 = 1 << 63;

    /// The longest wire length a blob records.
    pub const MAX_LEN: u64 = Self::REDACTED - 1;

    /// The kept bytes `data` of a value `len` bytes long on the wire (at most [`Blob::MAX_LEN`]).
    pub fn new(data: BlobData, len: u64) -> Self {
        Self {
            data,
            len_and_mark: len.min(Self::MAX_LEN),
        }
    }

    /// A complete blob, copied from `data` (a short one is copied into the blob itself, with no
    /// allocation made and freed on the way).
    pub fn full(data: impl AsRef<[u8]>) -> Self {
        let data = BlobData::from_slice(data.as_ref());
        let len = data.len() as u64;
        Self::new(data, len)
    }

    /// The value's length on the wire.
    pub fn len(&self) -> u64 {
        self.len_and_mark & Self::MAX_LEN
    }

    /// Whether the value is empty on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts `n` more bytes of the value on the wire (its kept bytes are the caller's).
    pub fn grow(&mut self, n: u64) {
        let len = self.len().saturating_add(n).min(Self::MAX_LEN);
        self.len_and_mark = (self.len_and_mark & Self::REDACTED) | len;
    }

    /// Whether bytes of a secret in it were replaced by [`MASK`](super::redact::MASK).
    pub fn redacted(&self) -> bool {
        self.len_and_mark & Self::REDACTED != 0
    }

    /// Marks it as holding masked bytes of a secret (or not, when read back from an export).
    pub fn set_redacted(&mut self, redacted: bool) {
        if redacted {
            self.len_and_mark |= Self::REDACTED;
        } else {
            self.len_and_mark &= Self::MAX_LEN;
        }
    }

    /// Masks the whole value: it is a secret.
    pub fn redact(&mut self) {
        super::redact::mask(&mut self.data);
        self.set_redacted(true);
    }

    /// Masks the secrets `rule` finds in the value (see `protocol/redact.rs`); returns whether it found
    /// any.
    pub fn redact_with(&mut self, rule: impl FnOnce(&mut [u8]) -> bool) -> bool {
        let found = rule(&mut self.data);
        if found {
            self.set_redacted(true);
        }
        found
    }

    /// Whether only a prefix of the value is kept.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < self.len()
    }

    /// Heap bytes it holds (short values live inside it).
    pub fn heap_bytes(&self) -> usize {
        small_vec_bytes(&self.data)
    }
}

/// Heap bytes of a compact string: none while its text fits inside it (24 bytes).
pub fn compact_bytes(s: &CompactString) -> usize {
    if s.is_heap_allocated() {
        s.capacity()
    } else {
        0
    }
}

/// Heap bytes of a vector of `T`s (their own heap not included).
pub fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

/// Heap bytes of a small vector: none while its items live inside it, like a vector's once spilled
/// (their own heap not included).
pub fn small_vec_bytes<A: smallvec::Array>(v: &smallvec::SmallVec<A>) -> usize {
    if v.spilled() {
        v.capacity() * size_of::<A::Item>()
    } else {
        0
    }
}

/// A finished exchange of protocol `X` with its timing, before it becomes a `Record`.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired<X> {
    /// What was said.
    pub exchange: X,
    /// Monotonic ns of the request's first byte (or the push's).
    pub start_ns: u64,
    /// Monotonic ns of the response's last byte.
    pub end_ns: Option<u64>,
    /// Request bytes on the wire.
    pub request_bytes: u64,
    /// Response bytes on the wire.
    pub response_bytes: u64,
    /// Whether any value was cut short.
    pub truncated: bool,
}

impl<X> Paired<X> {
    /// The same exchange and timing with the exchange converted.
    pub fn map<Y>(self, convert: impl FnOnce(X) -> Y) -> Paired<Y> {
        Paired {
            exchange: convert(self.exchange),
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            truncated: self.truncated,
        }
    }
}

/// Counters a session contributes to the global statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Times a direction lost sync (gap outside a value, or malformed bytes).
    pub lost_sync: u64,
    /// Requests dropped because sync was lost before their reply.
    pub dropped_requests: u64,
    /// Replies ignored because no request could be tied to them.
    pub orphan_replies: u64,
    /// 1 once the connection is known to carry TLS whose plaintext is not captured (TLS records from
    /// its first bytes, or MySQL's `SSLRequest`): not decoded further, and neither loss nor
    /// unrecognised.
    pub encrypted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_keeps_its_wire_length_and_its_redaction_mark_apart() {
        let mut blob = Blob::new(BlobData::from_slice(b"abc"), 10);
        assert_eq!((blob.len(), blob.redacted()), (10, false));
        blob.redact();
        assert_eq!((blob.len(), blob.redacted()), (10, true));
        blob.grow(5);
        assert_eq!((blob.len(), blob.redacted()), (15, true));
        assert!(blob.is_truncated());
        blob.set_redacted(false);
        assert_eq!((blob.len(), blob.redacted()), (15, false));
        assert_eq!(blob.data.as_slice(), b"***");
    }

    #[test]
    fn a_length_past_the_largest_is_kept_as_the_largest_without_touching_the_mark() {
        let mut blob = Blob::new(BlobData::new(), u64::MAX);
        assert_eq!((blob.len(), blob.redacted()), (Blob::MAX_LEN, false));
        blob.set_redacted(true);
        blob.grow(u64::MAX);
        assert_eq!((blob.len(), blob.redacted()), (Blob::MAX_LEN, true));
        let mut blob = Blob::full(b"xy");
        blob.grow(Blob::MAX_LEN);
        assert_eq!((blob.len(), blob.redacted()), (Blob::MAX_LEN, false));
    }
}
