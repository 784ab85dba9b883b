//! Incremental RESP2/RESP3 decoder for one direction of a connection, tolerant of capture gaps.
//!
//! Bytes arrive in arbitrary slices (one syscall, or a part of one) and may have holes where the kernel
//! side captured less than was sent. The decoder keeps its position between calls, so a 1 MiB value
//! crossing many syscalls is decoded in one pass, and a hole inside a bulk payload only shortens that
//! value (marked truncated) instead of derailing the stream. A hole anywhere else, or bytes that are not
//! RESP, put the decoder out of sync: it drops the partial frame and waits for [`RespDecoder::resync`].
//!
//! Memory is bounded by what is kept, not by what is sent: each top-level frame shares one budget of
//! `keep_bytes` between its blob bytes and [`ELEMENT_COST`] per element kept. A value inside an
//! aggregate keeps at most what is left of it (so it is cut, not lost), and once it is spent the
//! remaining elements are skipped by their framing without being stored: the aggregate becomes a
//! [`Frame::Cut`] with its true element count. Deepest nesting and longest lines are bounded too.
//!
//! Hand-written rather than `redis-protocol`: that crate re-parses from the start of a buffer on every
//! attempt and has no notion of a hole of known length, both of which this use needs.
//!
//! Pure: no I/O, no clocks; timestamps are passed in.

use std::mem;

use memchr::memchr;

pub use crate::protocol::common::{Blob, BlobData};
use crate::protocol::{
    common::{vec_bytes, Flow},
    pairing::StreamDecoder,
    plugin::Recognition,
};

/// Longest header or inline-command line accepted; longer means garbage.
const MAX_LINE: usize = 64 * 1024;
/// Largest aggregate length believed; larger means garbage.
const MAX_ELEMENTS: i64 = 16 * 1024 * 1024;
/// Nesting deeper than this means garbage.
const MAX_DEPTH: usize = 64;

/// One decoded RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(Blob),
    /// `-ERR ...`, and RESP3 blob errors `!`.
    Error(Blob),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`
    Bulk(Blob),
    /// `$-1`, `*-1`, `_`
    Null,
    /// `*N`
    Array(Vec<Frame>),
    /// RESP3 `%N`: key/value pairs.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N`
    Set(Vec<Frame>),
    /// RESP3 `>N`: out-of-band data (pub/sub messages, invalidations).
    Push(Vec<Frame>),
    /// RESP3 `,1.5` (kept as text so `inf`/`nan` survive).
    Double(String),
    /// RESP3 `#t`
    Boolean(bool),
    /// RESP3 `(123...`
    BigNumber(String),
    /// RESP3 `=15\r\ntxt:...`: format and text.
    Verbatim {
        /// Three-letter format, e.g. `txt`.
        format: String,
        /// The text after the format prefix. Boxed: verbatim replies are rare, and held inline the
        /// text made every frame 64 bytes rather than 48.
        text: Box<Blob>,
    },
    /// An aggregate (array, map, set or push) of which only the first elements were kept: the capture
    /// size ran out. The rest was skipped by its framing without being stored.
    Cut {
        /// The aggregate with the elements kept.
        kept: Box<Frame>,
        /// How many elements (pairs for a map) it really had.
        len: u64,
    },
}

impl Frame {
    /// Heap bytes the frame holds (what `--max-memory` counts).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => b.heap_bytes(),
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                vec_bytes(items) + items.iter().map(Frame::heap_bytes).sum::<usize>()
            }
            Frame::Map(pairs) => {
                vec_bytes(pairs)
                    + pairs
                        .iter()
                        .map(|(k, v)| k.heap_bytes() + v.heap_bytes())
                        .sum::<usize>()
            }
            Frame::Double(text) | Frame::BigNumber(text) => text.capacity(),
            Frame::Verbatim { format, text } => {
                format.capacity() + size_of::<Blob>() + text.heap_bytes()
            }
            Frame::Cut { kept, .. } => size_of::<Frame>() + kept.heap_bytes(),
            Frame::Integer(_) | Frame::Null | Frame::Boolean(_) => 0,
        }
    }

    /// The elements of an array, set or push; `None` for other frames.
    pub fn elements(&self) -> Option<&[Frame]> {
        match self {
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => Some(items),
            Frame::Cut { kept, .. } => kept.elements(),
            _ => None,
        }
    }

    /// The bytes of a simple string or bulk string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) => Some(&b.data),
            _ => None,
        }
    }

    /// Whether any blob inside this frame was cut short.
    pub fn is_truncated(&self) -> bool {
        match self {
            Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => b.is_truncated(),
            Frame::Verbatim { text, .. } => text.is_truncated(),
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.iter().any(Frame::is_truncated),
            Frame::Map(v) => v.iter().any(|(k, x)| k.is_truncated() || x.is_truncated()),
            Frame::Cut { .. } => true,
            _ => false,
        }
    }
}

/// Which grammar a direction speaks: requests may also be inline commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Client to server: arrays of bulk strings, or inline commands.
    Request,
    /// Server to client: any RESP value.
    Response,
}

impl From<Flow> for Role {
    fn from(flow: Flow) -> Self {
        match flow {
            Flow::Request => Role::Request,
            Flow::Response => Role::Response,
        }
    }
}

/// A complete top-level frame with what the session needs to pair and time it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The value.
    pub frame: Frame,
    /// Whether any blob in it was cut short ([`Frame::is_truncated`]), known where it was decoded: the
    /// one-pass path keeps frames whole, so the usual frame is never walked to find out.
    pub truncated: bool,
    /// Bytes on the wire, holes included.
    pub wire_bytes: u64,
    /// Timestamp of the slice that held the first byte.
    pub start_ns: u64,
    /// Timestamp of the slice that held the last byte.
    pub end_ns: u64,
}

/// What happened to the stream, reported to the session alongside frames.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A complete frame.
    Frame(Decoded),
    /// The decoder lost sync: a partial frame (if any) was dropped and later bytes are ignored until
    /// [`RespDecoder::resync`] succeeds.
    LostSync(SyncLoss),
}

/// Why a decoder lost sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncLoss {
    /// Bytes were missing outside a bulk payload.
    Gap,
    /// The bytes were not valid RESP.
    Malformed,
}

/// A blob being read: how much remains and what is kept.
#[derive(Debug)]
struct BlobInProgress {
    kind: BlobKind,
    blob: Blob,
    /// Payload bytes still to come.
    remaining: u64,
    /// Bytes of the trailing CRLF still to come.
    crlf_remaining: u8,
    /// Whether its aggregate keeps it (decided when it starts).
    keep: bool,
}

/// What a decoder knows of a replication link it is the primary's side of.
#[derive(Debug, Default)]
struct ReplicaLink {
    /// `PSYNC` or `SYNC` was sent: bare newlines between frames are keep-alives.
    link: bool,
    /// The next `$` frame is an RDB snapshot (after `+FULLRESYNC`, or the reply to `SYNC`): a payload
    /// with no CRLF after it, or `$EOF:<mark>` and a payload ending with the mark.
    snapshot_next: bool,
    /// A snapshot ended by a mark, being skipped.
    until_mark: Option<MarkScan>,
}

/// An RDB payload ended by a mark (`$EOF:<mark>`), being skipped.
#[derive(Debug)]
struct MarkScan {
    mark: Vec<u8>,
    /// The last bytes seen, in case the mark straddles two slices.
    tail: Vec<u8>,
    /// Payload and mark bytes so far.
    bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlobKind {
    Bulk,
    Error,
    Verbatim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AggKind {
    Array,
    Map,
    Set,
    Push,
    /// RESP3 attribute: parsed and discarded; the value after it takes its place.
    Attribute,
}

#[derive(Debug)]
struct Aggregate {
    kind: AggKind,
    /// Elements announced (pairs for maps and attributes).
    announced: u64,
    remaining: u64,
    items: Vec<Frame>,
    /// Elements not kept: the frame's budget ran out.
    dropped: u64,
    /// Whether its own parent does not keep it (decided when it starts): nothing inside is kept.
    skip: bool,
}

/// What keeping one element costs a frame's budget beyond its bytes: an element of nulls or integers
/// costs memory too (16 million nulls in one reply would otherwise be kept whole).
const ELEMENT_COST: usize = 16;

/// Requests of more elements are rare and take the general way, not the one-pass one.
const WHOLE_ARRAY_MOST: usize = 64;

/// Elements the spare vectors of a decoder have room for, together (3 KiB): the commands of a
/// `redis-benchmark -P 16` read, or one of the longest a whole request may be.
const SPARE_ELEMENTS: usize = WHOLE_ARRAY_MOST;

/// Decoder state for one direction.
#[derive(Debug)]
pub struct RespDecoder {
    role: Role,
    keep_bytes: usize,
    in_sync: bool,
    line: Vec<u8>,
    stack: Vec<Aggregate>,
    blob: Option<BlobInProgress>,
    /// Replication-link state (a primary's side of the link only).
    replica: ReplicaLink,
    /// What the frame being decoded keeps so far: its blob bytes plus [`ELEMENT_COST`] per element kept
    /// in an aggregate. Elements that would take it past `keep_bytes` are skipped.
    frame_kept: usize,
    frame_started: bool,
    frame_bytes: u64,
    frame_start_ns: u64,
    /// Emptied element vectors handed back by the frames' consumer ([`Self::recycle`]), which the next
    /// whole requests fill instead of allocating their own. Several: a pipelined read holds many
    /// requests, all decoded before the session takes back the first vector.
    spare_items: Vec<Vec<Frame>>,
    /// Elements the spare vectors have room for, together at most [`SPARE_ELEMENTS`].
    spare_elements: usize,
}

impl RespDecoder {
    /// A decoder that keeps at most `keep_bytes` of each blob. `in_sync` is false for a stream that
    /// may start in the middle of a frame.
    pub fn new(role: Role, keep_bytes: usize, in_sync: bool) -> Self {
        Self {
            role,
            keep_bytes,
            in_sync,
            line: Vec::new(),
            stack: Vec::new(),
            blob: None,
            replica: ReplicaLink::default(),
            frame_kept: 0,
            frame_started: false,
            frame_bytes: 0,
            frame_start_ns: 0,
            spare_items: Vec::new(),
            spare_elements: 0,
        }
    }

    /// Takes back the element vector of a frame this decoder made, once emptied, for a later request.
    /// Kept while the spares have room for at most [`SPARE_ELEMENTS`] elements in all, so they never
    /// hold much.
    pub fn recycle(&mut self, mut items: Vec<Frame>) {
        items.clear();
        let room = self.spare_elements + items.capacity();
        if room <= SPARE_ELEMENTS && items.capacity() > 0 {
            self.spare_elements = room;
            self.spare_items.push(items);
        }
    }

    /// A spare element vector, or a new one.
    fn spare(&mut self) -> Vec<Frame> {
        let items = self.spare_items.pop().unwrap_or_default();
        self.spare_elements -= items.capacity();
        items
    }

    /// Whether the decoder is between frames and in sync (a good moment to resynchronise or to tell
    /// that nothing is pending).
    pub fn is_idle(&self) -> bool {
        self.in_sync && !self.frame_started
    }

    /// Whether the decoder is following the stream.
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// At the start of a syscall's bytes, regains sync if `data` plausibly starts a frame. Returns whether
    /// the decoder is in sync afterwards.
    pub fn resync(&mut self, data: &[u8]) -> bool {
        if !self.in_sync && starts_frame(self.role, data) {
            self.in_sync = true;
            self.reset_frame();
        }
        self.in_sync
    }

    /// Decodes `data`, which arrived at `ts_ns`, appending results to `out`.
    pub fn feed(&mut self, mut data: &[u8], ts_ns: u64, out: &mut Vec<Output>) {
        while !data.is_empty() && self.in_sync {
            if !self.frame_started {
                if let Some(used) = self.whole_frame(data, ts_ns, out) {
                    data = &data[used..];
                    continue;
                }
                self.frame_started = true;
                self.frame_start_ns = ts_ns;
                self.frame_bytes = 0;
            }
            let used = if self.replica.until_mark.is_some() {
                self.feed_rdb_until_mark(data, ts_ns, out)
            } else if self.blob.is_some() {
                self.feed_blob(data, ts_ns, out)
            } else if let Ok(used) = self.feed_line(data, ts_ns, out) {
                used
            } else {
                self.lose_sync(SyncLoss::Malformed, out);
                return;
            };
            data = &data[used..];
        }
    }

    /// Decodes a frame of the shapes nearly all traffic has, when it lies wholly in `data` and is kept
    /// whole: a request's array of bulk strings, and a reply's bulk or simple string. One pass over the
    /// bytes, instead of a header line, a blob in progress and a placement per element. Returns the
    /// bytes used, or `None` (having changed nothing) to leave the frame to the general path, which
    /// decodes it to the same result: the `resp` fuzz target checks the two agree.
    fn whole_frame(&mut self, data: &[u8], ts_ns: u64, out: &mut Vec<Output>) -> Option<usize> {
        let idle = self.stack.is_empty()
            && self.blob.is_none()
            && self.line.is_empty()
            && self.replica.until_mark.is_none()
            && !self.replica.snapshot_next;
        let frame_and_used = match (self.role, data.first()) {
            (_, _) if !idle => None,
            (Role::Request, Some(b'*')) => self.whole_bulk_array(data),
            (Role::Response, Some(b'$')) => {
                whole_bulk(data, 0, self.keep_bytes).map(|(blob, used)| (Frame::Bulk(blob), used))
            }
            // A replication link's `+FULLRESYNC` announces the snapshot: the general path's to see.
            (Role::Response, Some(b'+')) if !self.replica.link => {
                whole_line(data).map(|(line, used)| (Frame::Simple(Blob::full(line)), used))
            }
            _ => None,
        };
        let (frame, used) = frame_and_used?;
        out.push(Output::Frame(Decoded {
            frame,
            truncated: false,
            wire_bytes: used as u64,
            start_ns: ts_ns,
            end_ns: ts_ns,
        }));
        Some(used)
    }

    /// `*<n>` and `n` bulk strings, all in `data`, that the frame's budget keeps whole (so nothing
    /// would be cut or skipped). The budget is spent as the general path spends it: an element is kept
    /// while less than `keep_bytes` was charged before it, keeps what is left of the budget, and is
    /// charged [`ELEMENT_COST`] plus its bytes.
    fn whole_bulk_array(&mut self, data: &[u8]) -> Option<(Frame, usize)> {
        let (count, mut at) = header_count(data, 1)?;
        if count == 0 || count > WHOLE_ARRAY_MOST as u64 {
            return None;
        }
        let mut items = self.spare();
        items.reserve(count as usize);
        let mut charged = 0;
        for _ in 0..count {
            let bulk = (charged < self.keep_bytes)
                .then(|| whole_bulk(data, at, self.keep_bytes - charged))
                .flatten();
            let Some((blob, used)) = bulk else {
                // The general way decodes it; the vector waits for the next request.
                self.recycle(items);
                return None;
            };
            charged += ELEMENT_COST + blob.data.len();
            items.push(Frame::Bulk(blob));
            at += used;
        }
        Some((Frame::Array(items), at))
    }

    /// Accounts for `len` bytes that were sent but not captured.
    pub fn gap(&mut self, len: u64, out: &mut Vec<Output>) {
        if len == 0 || !self.in_sync {
            return;
        }
        if let Some(blob) = &mut self.blob {
            let absorbable = blob.remaining + u64::from(blob.crlf_remaining);
            if len <= absorbable {
                let from_payload = len.min(blob.remaining);
                blob.remaining -= from_payload;
                blob.crlf_remaining -= (len - from_payload) as u8;
                self.frame_bytes += len;
                if blob.remaining == 0 && blob.crlf_remaining == 0 {
                    let ts = self.frame_start_ns;
                    self.finish_blob(ts, out);
                }
                return;
            }
        }
        self.lose_sync(SyncLoss::Gap, out);
    }

    /// The stream is a primary's side of a replication link (`PSYNC` was sent): bare newlines between
    /// frames are keep-alives, and a snapshot follows `+FULLRESYNC`; with `snapshot_next` (`SYNC` was
    /// sent) the next bulk string is the snapshot.
    pub fn replication_link(&mut self, snapshot_next: bool) {
        self.replica.link = true;
        self.replica.snapshot_next |= snapshot_next;
    }

    /// Skips an RDB payload until its end mark, keeping the last bytes in case the mark straddles two
    /// slices; the transfer is reported as a bulk string of its length, nothing kept.
    fn feed_rdb_until_mark(&mut self, data: &[u8], ts_ns: u64, out: &mut Vec<Output>) -> usize {
        let Some(scan) = &mut self.replica.until_mark else {
            return 0;
        };
        let seen = scan.tail.len();
        scan.tail
            .extend_from_slice(&data[..data.len().min(scan.mark.len() * 2)]);
        // A mark found in the tail ends in `data` (one ending earlier was found in the last slice).
        let end = memchr::memmem::find(&scan.tail, &scan.mark)
            .map(|at| (at + scan.mark.len()).saturating_sub(seen))
            .or_else(|| memchr::memmem::find(data, &scan.mark).map(|at| at + scan.mark.len()));
        let used = end.unwrap_or(data.len());
        scan.bytes += used as u64;
        self.frame_bytes += used as u64;
        if end.is_none() {
            if data.len() >= scan.mark.len() {
                scan.tail.clear();
                scan.tail
                    .extend_from_slice(&data[data.len() - scan.mark.len()..]);
            } else {
                let excess = scan.tail.len().saturating_sub(scan.mark.len());
                scan.tail.drain(..excess);
            }
            return used;
        }
        let payload = scan.bytes - scan.mark.len() as u64;
        self.replica.until_mark = None;
        let blob = Blob::new(BlobData::new(), payload);
        self.place(Frame::Bulk(blob), true, 0, ts_ns, out);
        used
    }

    /// Drops any partial frame and waits for a fresh start (used when the other direction lost sync).
    pub fn force_out_of_sync(&mut self) {
        self.in_sync = false;
        self.reset_frame();
    }

    fn lose_sync(&mut self, why: SyncLoss, out: &mut Vec<Output>) {
        self.in_sync = false;
        self.reset_frame();
        out.push(Output::LostSync(why));
    }

    fn reset_frame(&mut self) {
        self.line.clear();
        self.stack.clear();
        self.blob = None;
        self.replica.until_mark = None;
        self.frame_kept = 0;
        self.frame_started = false;
        self.frame_bytes = 0;
    }

    /// Consumes blob payload and its CRLF; returns bytes used.
    fn feed_blob(&mut self, data: &[u8], ts_ns: u64, out: &mut Vec<Output>) -> usize {
        let Some(blob) = &mut self.blob else { return 0 };
        let take = (blob.remaining.min(data.len() as u64)) as usize;
        // Keep nothing more once a hole was skipped: the bytes after it would not continue the prefix.
        // Nor for an element its aggregate will not keep: the frame's budget is spent.
        let consumed = blob.blob.len().saturating_sub(blob.remaining);
        let room = if (blob.blob.data.len() as u64) < consumed || !blob.keep {
            0
        } else {
            // Inside an aggregate, the frame's budget left (`frame_kept` is 0 for a top-level value).
            self.keep_bytes
                .saturating_sub(self.frame_kept)
                .saturating_sub(blob.blob.data.len())
        };
        blob.blob.data.extend_from_slice(&data[..take.min(room)]);
        blob.remaining -= take as u64;
        let mut used = take;
        while used < data.len() && blob.remaining == 0 && blob.crlf_remaining > 0 {
            // The terminator is not checked byte by byte: a wrong byte here means the length lied,
            // which the next header line will reveal as malformed.
            blob.crlf_remaining -= 1;
            used += 1;
        }
        self.frame_bytes += used as u64;
        if blob.remaining == 0 && blob.crlf_remaining == 0 {
            self.finish_blob(ts_ns, out);
        }
        used
    }

    fn finish_blob(&mut self, ts_ns: u64, out: &mut Vec<Output>) {
        let Some(done) = self.blob.take() else { return };
        let charge = ELEMENT_COST + done.blob.data.len();
        let frame = match done.kind {
            BlobKind::Bulk => Frame::Bulk(done.blob),
            BlobKind::Error => Frame::Error(done.blob),
            BlobKind::Verbatim => verbatim(done.blob),
        };
        self.place(frame, done.keep, charge, ts_ns, out);
    }

    /// Consumes (part of) a header line; returns bytes used.
    fn feed_line(&mut self, data: &[u8], ts_ns: u64, out: &mut Vec<Output>) -> Result<usize, ()> {
        let Some(nl) = memchr(b'\n', data) else {
            // `+ 1`: the line's `\r` may arrive before its `\n`.
            if self.line.len() + data.len() > MAX_LINE + 1 {
                return Err(());
            }
            self.line.extend_from_slice(data);
            self.frame_bytes += data.len() as u64;
            return Ok(data.len());
        };
        self.frame_bytes += nl as u64 + 1;
        if self.replica.link && nl == 0 && self.line.is_empty() && self.stack.is_empty() {
            // A primary sends bare newlines to a replica while it prepares the snapshot, to keep the
            // link alive; they belong to no frame.
            self.frame_started = false;
            return Ok(1);
        }
        let mut start = mem::take(&mut self.line);
        // A line wholly inside `data` (nearly always) is read where it lies, not copied first.
        let line = if start.is_empty() {
            &data[..nl]
        } else {
            start.extend_from_slice(&data[..nl]);
            &start[..]
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            return Err(());
        }
        self.header(line, ts_ns, out)?;
        start.clear();
        self.line = start;
        Ok(nl + 1)
    }

    fn header(&mut self, line: &[u8], ts_ns: u64, out: &mut Vec<Output>) -> Result<(), ()> {
        if self.role == Role::Request && self.stack.is_empty() && line.first() != Some(&b'*') {
            if line.iter().all(|b| *b == b' ' || *b == b'\t') {
                // Redis skips an inline line without words; it is not part of the next frame.
                self.frame_started = false;
                return Ok(());
            }
            let frame = inline_command(line).ok_or(())?;
            self.complete(frame, ts_ns, out);
            return Ok(());
        }
        let (&tag, rest) = line.split_first().ok_or(())?;
        match tag {
            b'+' if self.replica.link
                && self.stack.is_empty()
                && rest.starts_with(b"FULLRESYNC") =>
            {
                self.replica.snapshot_next = true;
                self.complete(Frame::Simple(Blob::full(rest)), ts_ns, out);
            }
            b'$' if self.replica.snapshot_next && self.stack.is_empty() => {
                self.start_snapshot(rest, ts_ns, out)?;
            }
            b'+' => self.complete(Frame::Simple(Blob::full(rest)), ts_ns, out),
            b'-' => self.complete(Frame::Error(Blob::full(rest)), ts_ns, out),
            b':' => self.complete(Frame::Integer(parse_int(rest)?), ts_ns, out),
            b'_' => self.complete(Frame::Null, ts_ns, out),
            b',' => self.complete(Frame::Double(text(rest)?), ts_ns, out),
            b'(' => self.complete(Frame::BigNumber(text(rest)?), ts_ns, out),
            b'#' => match rest {
                b"t" => self.complete(Frame::Boolean(true), ts_ns, out),
                b"f" => self.complete(Frame::Boolean(false), ts_ns, out),
                _ => return Err(()),
            },
            b'$' | b'!' | b'=' => {
                let len = parse_int(rest)?;
                if len < 0 {
                    self.complete(Frame::Null, ts_ns, out);
                    return Ok(());
                }
                let kind = match tag {
                    b'$' => BlobKind::Bulk,
                    b'!' => BlobKind::Error,
                    _ => BlobKind::Verbatim,
                };
                let len = len as u64;
                let keep = self.keeps_next();
                let capacity = if keep {
                    len.min(self.keep_bytes as u64).min(4096)
                } else {
                    0
                };
                self.blob = Some(BlobInProgress {
                    kind,
                    blob: Blob::new(BlobData::with_capacity(capacity as usize), len),
                    remaining: len,
                    crlf_remaining: 2,
                    keep,
                });
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => self.start_aggregate(tag, rest, ts_ns, out)?,
            _ => return Err(()),
        }
        Ok(())
    }

    /// `*`, `%`, `~`, `>` or `|` with its count.
    fn start_aggregate(
        &mut self,
        tag: u8,
        rest: &[u8],
        ts_ns: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), ()> {
        let n = parse_int(rest)?;
        if n > MAX_ELEMENTS || self.stack.len() >= MAX_DEPTH {
            return Err(());
        }
        if n < 0 {
            self.complete(Frame::Null, ts_ns, out);
            return Ok(());
        }
        let (kind, count) = match tag {
            b'*' => (AggKind::Array, n),
            b'%' => (AggKind::Map, n * 2),
            b'~' => (AggKind::Set, n),
            b'>' => (AggKind::Push, n),
            _ => (AggKind::Attribute, n * 2),
        };
        let keep = self.keeps_next();
        if keep && !self.stack.is_empty() {
            self.frame_kept += ELEMENT_COST;
        }
        self.stack.push(Aggregate {
            kind,
            announced: n as u64,
            remaining: count as u64,
            items: Vec::with_capacity(if keep { count.min(64) as usize } else { 0 }),
            dropped: 0,
            skip: !keep,
        });
        if count == 0 {
            self.close_empty(ts_ns, out);
        }
        Ok(())
    }

    /// The `$<len>` or `$EOF:<mark>` line opening an RDB snapshot.
    fn start_snapshot(&mut self, rest: &[u8], ts_ns: u64, out: &mut Vec<Output>) -> Result<(), ()> {
        self.replica.snapshot_next = false;
        if let Some(mark) = rest.strip_prefix(b"EOF:") {
            if mark.is_empty() {
                return Err(());
            }
            self.replica.until_mark = Some(MarkScan {
                mark: mark.to_vec(),
                tail: Vec::new(),
                bytes: 0,
            });
            return Ok(());
        }
        let len = u64::try_from(parse_int(rest)?).map_err(|_| ())?;
        self.blob = Some(BlobInProgress {
            kind: BlobKind::Bulk,
            blob: Blob::new(BlobData::new(), len),
            remaining: len,
            // An RDB payload has no CRLF after it.
            crlf_remaining: 0,
            keep: false,
        });
        if len == 0 {
            self.finish_blob(ts_ns, out);
        }
        Ok(())
    }

    fn close_empty(&mut self, ts_ns: u64, out: &mut Vec<Output>) {
        if let Some(agg) = self.stack.pop() {
            self.finish_aggregate(agg, ts_ns, out);
        }
    }

    fn finish_aggregate(&mut self, agg: Aggregate, ts_ns: u64, out: &mut Vec<Output>) {
        let frame = match agg.kind {
            AggKind::Array => Frame::Array(agg.items),
            AggKind::Set => Frame::Set(agg.items),
            AggKind::Push => Frame::Push(agg.items),
            AggKind::Map => Frame::Map(pairs(agg.items)),
            // The attribute is metadata about the value that follows; that value fills the slot.
            AggKind::Attribute => return,
        };
        let frame = if agg.dropped > 0 {
            Frame::Cut {
                kept: Box::new(frame),
                len: agg.announced,
            }
        } else {
            frame
        };
        // Its own cost was charged when it started, its elements' as they were kept.
        self.place(frame, !agg.skip, 0, ts_ns, out);
    }

    /// Whether the element starting now will be kept: always at the top level; inside an aggregate,
    /// while the frame's budget is not spent (so the last element kept may pass it by one element's
    /// cost, and a value is held to what is left), and a map's value whenever its key was kept.
    fn keeps_next(&self) -> bool {
        let Some(parent) = self.stack.last() else {
            return true;
        };
        if parent.skip || parent.kind == AggKind::Attribute {
            return false;
        }
        let pair_started = parent.kind == AggKind::Map && parent.items.len() % 2 == 1;
        pair_started || (parent.dropped == 0 && self.frame_kept < self.keep_bytes)
    }

    /// A finished one-line value (decided and charged now).
    fn complete(&mut self, frame: Frame, ts_ns: u64, out: &mut Vec<Output>) {
        let keep = self.keeps_next();
        let charge = ELEMENT_COST + blob_bytes(&frame);
        self.place(frame, keep, charge, ts_ns, out);
    }

    /// Places a finished value into its parent (kept and charged `charge`, or counted as dropped), or
    /// emits it when it is top-level.
    fn place(
        &mut self,
        frame: Frame,
        keep: bool,
        charge: usize,
        ts_ns: u64,
        out: &mut Vec<Output>,
    ) {
        let Some(parent) = self.stack.last_mut() else {
            out.push(Output::Frame(Decoded {
                truncated: frame.is_truncated(),
                frame,
                wire_bytes: self.frame_bytes,
                start_ns: self.frame_start_ns,
                end_ns: ts_ns,
            }));
            self.frame_started = false;
            self.frame_kept = 0;
            return;
        };
        // An attribute's elements are discarded when it ends: never kept, never missed.
        if parent.kind != AggKind::Attribute {
            if keep {
                self.frame_kept += charge;
                parent.items.push(frame);
            } else {
                parent.dropped += 1;
            }
        }
        parent.remaining -= 1;
        if parent.remaining == 0 {
            if let Some(agg) = self.stack.pop() {
                self.finish_aggregate(agg, ts_ns, out);
            }
        }
    }
}

/// The bytes a finished element keeps itself (its children were counted as they were kept).
fn blob_bytes(frame: &Frame) -> usize {
    match frame {
        Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => b.data.len(),
        Frame::Verbatim { text, .. } => text.data.len(),
        Frame::Double(t) | Frame::BigNumber(t) => t.len(),
        _ => 0,
    }
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    pairs
}

fn verbatim(blob: Blob) -> Frame {
    // `=15\r\ntxt:Some string`: a three-byte format, a colon, then the text.
    let truncated_by = blob.len() - blob.data.len() as u64;
    if blob.data.len() >= 4 && blob.data[3] == b':' {
        let format = String::from_utf8_lossy(&blob.data[..3]).into_owned();
        let data = BlobData::from_slice(&blob.data[4..]);
        let len = data.len() as u64 + truncated_by;
        return Frame::Verbatim {
            format,
            text: Box::new(Blob::new(data, len)),
        };
    }
    Frame::Verbatim {
        format: String::new(),
        text: Box::new(blob),
    }
}

/// The count of a `$` or `*` header line at `data[at..]` (after its tag), written as plain digits and
/// ended by CRLF, with the bytes the line takes from `at`. `None` for anything else: a sign, a missing
/// `\r`, or a line not wholly in `data` are the general path's to judge.
fn header_count(data: &[u8], at: usize) -> Option<(u64, usize)> {
    /// Enough digits for any length the general path accepts, and few enough not to overflow.
    const MOST_DIGITS: usize = 18;
    let digits = data.get(at..)?;
    let end = digits
        .iter()
        .take(MOST_DIGITS + 1)
        .position(|b| !b.is_ascii_digit())?;
    if end == 0 || end > MOST_DIGITS || digits.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    let count = digits[..end]
        .iter()
        .fold(0, |n, d| n * 10 + u64::from(d - b'0'));
    Some((count, at + end + 2))
}

/// A bulk string `$<len>\r\n<len bytes>\r\n` starting at `data[at]`, wholly in `data` and of at most
/// `room` bytes, with the bytes it takes. The length is checked before anything is copied, so a large
/// value that will be cut, or that has not all arrived, costs nothing here.
fn whole_bulk(data: &[u8], at: usize, room: usize) -> Option<(Blob, usize)> {
    if data.get(at) != Some(&b'$') {
        return None;
    }
    let (len, start) = header_count(data, at + 1)?;
    if len > room as u64 {
        return None;
    }
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    if data.get(end..end.checked_add(2)?)? != b"\r\n" {
        return None;
    }
    let blob = Blob::new(BlobData::from_slice(&data[start..end]), len);
    Some((blob, end + 2 - at))
}

/// A line wholly in `data` (which holds its tag first) read as the general path reads it: up to the
/// first `\n`, a `\r` before it dropped, at most [`MAX_LINE`] long. Returns what follows the tag, and
/// the bytes used.
fn whole_line(data: &[u8]) -> Option<(&[u8], usize)> {
    let nl = memchr(b'\n', data)?;
    let line = &data[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return None;
    }
    Some((line.get(1..)?, nl + 1))
}

fn parse_int(digits: &[u8]) -> Result<i64, ()> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(())
}

fn text(bytes: &[u8]) -> Result<String, ()> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ())
}

/// An inline command (`SET k v` typed into telnet) as the array a client library would have sent.
fn inline_command(line: &[u8]) -> Option<Frame> {
    let words: Vec<Frame> = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
        .map(|w| Frame::Bulk(Blob::full(w)))
        .collect();
    let first = words.first()?.as_bytes()?;
    if !first.iter().all(u8::is_ascii_alphabetic) || looks_like_http(line) {
        return None;
    }
    Some(Frame::Array(words))
}

fn looks_like_http(line: &[u8]) -> bool {
    line.windows(6).any(|w| w == b" HTTP/")
}

/// Whether `data` plausibly begins a frame of `role`: the test used to regain sync at a syscall start.
pub fn starts_frame(role: Role, data: &[u8]) -> bool {
    match (role, data) {
        (_, [b'*', d, ..]) if d.is_ascii_digit() || *d == b'-' => true,
        (Role::Request, [first, ..]) if first.is_ascii_alphabetic() => {
            let line_end = memchr(b'\n', data).unwrap_or(data.len());
            !looks_like_http(&data[..line_end])
        }
        (Role::Response, [tag, ..]) => b"+-:$_,#(!=%~>|".contains(tag),
        _ => false,
    }
}

/// Whether `data` opens a command: surely for a RESP command array (`*3\r\n$3\r\nSET...`); plausibly
/// for an inline command line (`PING\r\n`) when it is the whole of the bytes, since any line of words
/// looks like one.
pub fn recognise_command(data: &[u8]) -> Recognition {
    if let [b'*', digit, ..] = data {
        return if digit.is_ascii_digit() {
            Recognition::Yes
        } else {
            Recognition::No
        };
    }
    let Some(line) = data.strip_suffix(b"\n") else {
        return Recognition::No;
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word = line.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let inline = word > 0
        && (word == line.len() || line[word] == b' ')
        && line.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    if inline {
        Recognition::Maybe
    } else {
        Recognition::No
    }
}

impl StreamDecoder for RespDecoder {
    fn resync(&mut self, data: &[u8]) {
        RespDecoder::resync(self, data);
    }

    fn force_out_of_sync(&mut self) {
        RespDecoder::force_out_of_sync(self);
    }
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
