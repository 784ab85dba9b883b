//! The vocabulary every protocol shares: which way bytes flow, binary-safe values with their true
//! length, a finished exchange with its timing, and a session's counters.

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blob {
    /// The bytes kept (a prefix of the value when `data.len() < len`).
    pub data: BlobData,
    /// The value's length on the wire.
    pub len: u64,
    /// Whether bytes of a secret in it were replaced by [`MASK`](super::redact::MASK).
    pub redacted: bool,
}

impl Blob {
    /// A complete blob, copied from `data` (a short one is copied into the blob itself, with no
    /// allocation made and freed on the way).
    pub fn full(data: impl AsRef<[u8]>) -> Self {
        let data = BlobData::from_slice(data.as_ref());
        let len = data.len() as u64;
        Self {
            data,
            len,
            redacted: false,
        }
    }

    /// Masks the whole value: it is a secret.
    pub fn redact(&mut self) {
        super::redact::mask(&mut self.data);
        self.redacted = true;
    }

    /// Masks the secrets `rule` finds in the value (see `protocol/redact.rs`); returns whether it found
    /// any.
    pub fn redact_with(&mut self, rule: impl FnOnce(&mut [u8]) -> bool) -> bool {
        let found = rule(&mut self.data);
        self.redacted |= found;
        found
    }

    /// Whether only a prefix of the value is kept.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < self.len
    }

    /// Heap bytes it holds (short values live inside it).
    pub fn heap_bytes(&self) -> usize {
        small_vec_bytes(&self.data)
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
