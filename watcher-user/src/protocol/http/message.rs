//! Incremental HTTP/1.x message framing for one direction of a connection, tolerant of capture gaps.
//!
//! The decoder is driven step by step: [`MessageDecoder::step`] stops after each head so the session can
//! decide how the body is framed (a response's framing depends on its request: `HEAD` has no body), then
//! [`MessageDecoder::start_body`] continues. Bodies are kept up to `keep_bytes` with their true length; a
//! hole inside a body of known length only shortens what is kept, while a hole anywhere else, or bytes
//! that are not HTTP, put the decoder out of sync until [`MessageDecoder::resync`] sees a message start
//! at the beginning of a syscall's bytes.
//!
//! Pure: no I/O, no clocks; timestamps are passed in.

use std::mem::MaybeUninit;

use compact_str::CompactString;

use memchr::memchr;

use super::exchange::Headers;
use crate::protocol::{
    common::{Blob, Flow},
    pairing::StreamDecoder,
};

/// Longest head (start line and header fields) accepted; longer means garbage.
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Most header fields parsed in one head.
const MAX_HEADERS: usize = 256;
/// Head bytes examined per step, so a body arriving with its head is not copied into the head buffer.
const HEAD_PIECE: usize = 4096;

/// Which grammar a direction speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Request lines.
    Request,
    /// Status lines.
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

/// How the body after a head ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the connection closes.
    UntilClose,
}

/// The first line of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// `GET /x HTTP/1.1`
    Request {
        /// Method token.
        method: CompactString,
        /// Request target.
        target: CompactString,
    },
    /// `HTTP/1.1 200 OK`
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: CompactString,
    },
}

/// A parsed head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Request or status line.
    pub start: StartLine,
    /// Minor version.
    pub version: u8,
    /// Header fields in order.
    pub headers: Headers,
    /// Timestamp of the slice that held the first byte.
    pub start_ns: u64,
    /// Bytes of the head on the wire.
    pub wire_bytes: u64,
}

/// The end of a message: its body and trailers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// The body (de-chunked) with its true length so far.
    pub body: Blob,
    /// Trailer fields.
    pub trailers: Headers,
    /// Body bytes on the wire (chunk framing included).
    pub wire_bytes: u64,
    /// Timestamp of the slice that held the last byte.
    pub end_ns: u64,
    /// False when the connection closed or the stream broke before the body's end.
    pub complete: bool,
}

/// What the decoder reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A head; the decoder waits for [`MessageDecoder::start_body`].
    Head(Head),
    /// A message ended.
    Body(Body),
    /// The stream cannot be followed: a partial message was dropped and bytes are ignored until resync.
    LostSync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

#[derive(Debug)]
enum State {
    OutOfSync,
    Idle,
    Head {
        start_ns: u64,
    },
    AwaitFraming,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    /// The connection switched to another protocol (101, CONNECT): nothing more is HTTP.
    Switched,
}

/// Framing state of one direction.
#[derive(Debug)]
pub struct MessageDecoder {
    role: Role,
    keep_bytes: usize,
    state: State,
    /// The head, or the current chunk-size/trailer line, being assembled.
    buf: Vec<u8>,
    body: Body,
    /// Whether a hole was met in the current body: later bytes are counted, not kept.
    holed: bool,
    last_ts: u64,
}

impl MessageDecoder {
    /// A decoder keeping at most `keep_bytes` of each body; `in_sync` is false for streams met in the
    /// middle.
    pub fn new(role: Role, keep_bytes: usize, in_sync: bool) -> Self {
        Self {
            role,
            keep_bytes,
            state: if in_sync {
                State::Idle
            } else {
                State::OutOfSync
            },
            buf: Vec::new(),
            body: Body::default(),
            holed: false,
            last_ts: 0,
        }
    }

    /// Whether the decoder follows the stream.
    pub fn in_sync(&self) -> bool {
        !matches!(self.state, State::OutOfSync | State::Switched)
    }

    /// At the start of a syscall's bytes: if out of sync and `data` starts a message, follow again.
    pub fn resync(&mut self, data: &[u8]) {
        if matches!(self.state, State::OutOfSync) && starts_message(self.role, data) {
            self.state = State::Idle;
        }
    }

    /// Stops decoding for good: the connection no longer speaks HTTP.
    pub fn switch(&mut self) {
        self.state = State::Switched;
        self.buf = Vec::new();
    }

    /// Drops any partial message and ignores bytes until resync.
    pub fn force_out_of_sync(&mut self) {
        if !matches!(self.state, State::Switched) {
            self.state = State::OutOfSync;
            self.buf.clear();
        }
    }

    /// Consumes bytes from `data` up to the next event. Call again while it returns events.
    pub fn step(&mut self, data: &mut &[u8], ts_ns: u64) -> Option<Event> {
        while !data.is_empty() {
            self.last_ts = ts_ns;
            let event = match self.state {
                State::OutOfSync | State::Switched => {
                    *data = &[];
                    None
                }
                State::AwaitFraming => return None,
                State::Idle => self.begin(data, ts_ns),
                State::Head { start_ns } => self.head(data, start_ns),
                State::Length(left) => self.length_body(data, left),
                State::Chunked(chunk) => self.chunked_body(data, chunk),
                State::UntilClose => {
                    self.take_body(data, u64::MAX);
                    None
                }
            };
            if event.is_some() {
                return event;
            }
        }
        None
    }

    /// After a head: how its body is framed. Returns the message's end at once when it has no body.
    pub fn start_body(&mut self, framing: Framing) -> Option<Event> {
        if !matches!(self.state, State::AwaitFraming) {
            return None;
        }
        self.body = Body::default();
        self.holed = false;
        self.state = match framing {
            Framing::Empty | Framing::Length(0) => return Some(self.finish(true)),
            Framing::Length(n) => {
                // The kept part of a declared length, in one allocation of its size: left to grow
                // as it arrives, a 630-byte body took 1 KiB (the next power of two), or more
                // allocations when it came in pieces.
                let kept = usize::try_from(n).map_or(self.keep_bytes, |n| n.min(self.keep_bytes));
                self.body.body.data.reserve_exact(kept);
                State::Length(n)
            }
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::UntilClose => State::UntilClose,
        };
        None
    }

    /// Accounts for `len` bytes that were not captured.
    pub fn gap(&mut self, len: u64, out: &mut Vec<Event>) {
        match self.state {
            State::OutOfSync | State::Switched => {}
            State::UntilClose => self.skip_body(len),
            State::Length(left) => {
                let inside = len.min(left);
                self.skip_body(inside);
                if inside < left {
                    self.state = State::Length(left - inside);
                    return;
                }
                out.push(self.finish(true));
                if len > inside {
                    out.push(self.lose_sync());
                }
            }
            State::Chunked(Chunk::Data(left)) => {
                let inside = len.min(left);
                self.skip_body(inside);
                if inside < left {
                    self.state = State::Chunked(Chunk::Data(left - inside));
                    return;
                }
                self.state = State::Chunked(Chunk::DataEnd);
                if len > inside {
                    self.gap_at_chunk_end(len - inside, out);
                }
            }
            State::Chunked(Chunk::DataEnd) => self.gap_at_chunk_end(len, out),
            State::Idle
            | State::Head { .. }
            | State::AwaitFraming
            | State::Chunked(Chunk::Size | Chunk::Trailers) => {
                out.push(self.lose_sync());
            }
        }
    }

    /// A gap right after a chunk's data: a capture cut at the end of a syscall often hides just the
    /// CRLF that must follow, so one or two missing bytes there are taken to be it.
    fn gap_at_chunk_end(&mut self, len: u64, out: &mut Vec<Event>) {
        let line_so_far = self.buf.len() as u64;
        match line_so_far + len {
            // Only the CR is missing: the LF that follows reads as an empty line.
            1 => {}
            2 => {
                self.buf.clear();
                self.state = State::Chunked(Chunk::Size);
            }
            _ => {
                out.push(self.lose_sync());
                return;
            }
        }
        self.body.wire_bytes += len;
    }

    /// The connection closed: a body running until close ends here, any other body is cut short.
    pub fn close(&mut self) -> Option<Event> {
        match self.state {
            State::UntilClose => Some(self.finish(true)),
            State::Length(_) | State::Chunked(_) => Some(self.finish(false)),
            _ => None,
        }
    }

    fn lose_sync(&mut self) -> Event {
        self.force_out_of_sync();
        Event::LostSync
    }

    fn finish(&mut self, complete: bool) -> Event {
        self.state = State::Idle;
        let mut body = std::mem::take(&mut self.body);
        body.complete = complete;
        body.end_ns = self.last_ts;
        Event::Body(body)
    }

    /// Between messages: skips blank lines, then starts a head if the bytes can begin one.
    fn begin(&mut self, data: &mut &[u8], ts_ns: u64) -> Option<Event> {
        let blank = data
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(data.len());
        *data = &data[blank..];
        if data.is_empty() {
            return None;
        }
        if !could_start_message(self.role, data) {
            *data = &[];
            return Some(self.lose_sync());
        }
        self.buf.clear();
        self.state = State::Head { start_ns: ts_ns };
        None
    }

    fn head(&mut self, data: &mut &[u8], start_ns: u64) -> Option<Event> {
        let piece = &data[..data.len().min(HEAD_PIECE)];
        let before = self.buf.len();
        // The end may straddle the previous piece: look at its last three bytes with the new ones.
        let scan_from = before.saturating_sub(3);
        let end = if before == 0 {
            // The usual case, a head within one piece: copy the head only, not the body behind it.
            head_end(piece, 0)
        } else {
            self.buf.extend_from_slice(piece);
            let end = head_end(&self.buf, scan_from);
            self.buf.truncate(before);
            end
        };
        let Some(end) = end else {
            self.buf.extend_from_slice(piece);
            *data = &data[piece.len()..];
            if self.buf.len() > MAX_HEAD {
                return Some(self.lose_sync());
            }
            return None;
        };
        self.buf.extend_from_slice(&piece[..end - before]);
        *data = &data[end - before..];
        let event = match parse_head(self.role, &self.buf) {
            Some((start, version, headers)) => {
                self.state = State::AwaitFraming;
                Event::Head(Head {
                    start,
                    version,
                    headers,
                    start_ns,
                    wire_bytes: end as u64,
                })
            }
            None => self.lose_sync(),
        };
        self.buf.clear();
        Some(event)
    }

    fn length_body(&mut self, data: &mut &[u8], left: u64) -> Option<Event> {
        let left = left - self.take_body(data, left);
        if left == 0 {
            return Some(self.finish(true));
        }
        self.state = State::Length(left);
        None
    }

    fn chunked_body(&mut self, data: &mut &[u8], chunk: Chunk) -> Option<Event> {
        match chunk {
            Chunk::Data(left) => {
                let left = left - self.take_body(data, left);
                self.state = State::Chunked(if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                });
                None
            }
            Chunk::Size | Chunk::DataEnd | Chunk::Trailers => match self.line(data) {
                Ok(Some(len)) => {
                    // Borrowed out of `self` while `chunk_line` runs, then put back: no allocation
                    // per chunk.
                    let mut line = std::mem::take(&mut self.buf);
                    let event = self.chunk_line(chunk, &line[..len]);
                    line.clear();
                    self.buf = line;
                    event
                }
                Ok(None) => None,
                Err(()) => Some(self.lose_sync()),
            },
        }
    }

    /// Acts on one complete line of chunk framing.
    fn chunk_line(&mut self, chunk: Chunk, line: &[u8]) -> Option<Event> {
        match chunk {
            Chunk::Size => match chunk_size(line) {
                Some(0) => self.state = State::Chunked(Chunk::Trailers),
                Some(n) => self.state = State::Chunked(Chunk::Data(n)),
                None => return Some(self.lose_sync()),
            },
            Chunk::DataEnd if line.is_empty() => self.state = State::Chunked(Chunk::Size),
            Chunk::Trailers if line.is_empty() => return Some(self.finish(true)),
            Chunk::Trailers => match trailer_field(line) {
                Some((name, value)) if self.body.trailers.byte_len() < MAX_HEAD => {
                    self.body.trailers.push(name, value);
                }
                _ => return Some(self.lose_sync()),
            },
            Chunk::DataEnd | Chunk::Data(_) => return Some(self.lose_sync()),
        }
        None
    }

    /// Assembles a framing line in `buf`; once complete, returns its length without the line ending.
    fn line(&mut self, data: &mut &[u8]) -> Result<Option<usize>, ()> {
        let (piece, done) = match memchr(b'\n', data) {
            Some(i) => (&data[..=i], true),
            None => (*data, false),
        };
        self.body.wire_bytes += piece.len() as u64;
        self.buf.extend_from_slice(piece);
        *data = &data[piece.len()..];
        if self.buf.len() > MAX_LINE {
            return Err(());
        }
        if !done {
            return Ok(None);
        }
        let line = &self.buf[..self.buf.len() - 1];
        Ok(Some(line.strip_suffix(b"\r").unwrap_or(line).len()))
    }

    /// Takes up to `max` body bytes from `data`; returns how many.
    fn take_body(&mut self, data: &mut &[u8], max: u64) -> u64 {
        let n = data.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        let room = self.keep_bytes.saturating_sub(self.body.body.data.len());
        if !self.holed && room > 0 {
            self.body.body.data.extend_from_slice(&data[..n.min(room)]);
        }
        self.body.body.grow(n as u64);
        self.body.wire_bytes += n as u64;
        *data = &data[n..];
        n as u64
    }

    fn skip_body(&mut self, len: u64) {
        self.holed = true;
        self.body.body.grow(len);
        self.body.wire_bytes += len;
    }
}

/// End of the head (index after its blank line) in `buf`, searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr(b'\n', &buf[at..]) {
        let nl = at + i;
        let blank_before = buf[..nl].ends_with(b"\n") || (buf[..nl].ends_with(b"\n\r") && nl >= 2);
        if blank_before {
            return Some(nl + 1);
        }
        at = nl + 1;
    }
    None
}

fn parse_head(role: Role, buf: &[u8]) -> Option<(StartLine, u8, Headers)> {
    // Left uninitialised: httparse writes only the fields it parses. Filling all 256 (8 KiB) before
    // every head was a twentieth of decoding an HTTP exchange.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let config = httparse::ParserConfig::default();
    match role {
        Role::Request => {
            let mut req = httparse::Request::new(&mut []);
            if !config
                .parse_request_with_uninit_headers(&mut req, buf, &mut fields)
                .ok()?
                .is_complete()
            {
                return None;
            }
            let start = StartLine::Request {
                method: req.method?.into(),
                target: req.path?.into(),
            };
            Some((start, req.version?, headers_of(req.headers)))
        }
        Role::Response => {
            let mut rsp = httparse::Response::new(&mut []);
            if !config
                .parse_response_with_uninit_headers(&mut rsp, buf, &mut fields)
                .ok()?
                .is_complete()
            {
                return None;
            }
            let start = StartLine::Response {
                status: rsp.code?,
                reason: rsp.reason.unwrap_or_default().into(),
            };
            Some((start, rsp.version?, headers_of(rsp.headers)))
        }
    }
}

fn headers_of(fields: &[httparse::Header<'_>]) -> Headers {
    let names = fields.iter().map(|h| h.name.len()).sum();
    let values = fields.iter().map(|h| h.value.len()).sum();
    let mut headers = Headers::with_capacity(fields.len(), names, values);
    for h in fields {
        headers.push(h.name, h.value);
    }
    headers
}

/// `1a;ext=x` → 26.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|b| *b == b';').unwrap_or(line.len());
    let digits = std::str::from_utf8(&line[..end])
        .ok()?
        .trim_matches([' ', '\t']);
    if digits.is_empty() {
        return None;
    }
    // Leading zeros are allowed in any number; the rest must fit in 60 bits.
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    if significant.len() > 15 {
        return None;
    }
    u64::from_str_radix(significant, 16).ok()
}

fn trailer_field(line: &[u8]) -> Option<(&str, &[u8])> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = std::str::from_utf8(&line[..colon]).ok()?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return None;
    }
    Some((name, line[colon + 1..].trim_ascii()))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `data` can be the beginning of a message (as far as it goes): checked before a head is
/// assembled, so garbage is refused at its first bytes rather than after 64 KiB.
fn could_start_message(role: Role, data: &[u8]) -> bool {
    match role {
        Role::Response => {
            let n = data.len().min(7);
            data[..n] == b"HTTP/1."[..n]
        }
        Role::Request => {
            let token = data.iter().take_while(|b| is_token_byte(**b)).count();
            token > 0 && (token == data.len() || data[token] == b' ')
        }
    }
}

/// Whether `data` (the start of a syscall's bytes) begins a message: strict enough that bytes in the
/// middle of a body, or another protocol, are not mistaken for one.
pub fn starts_message(role: Role, data: &[u8]) -> bool {
    match role {
        Role::Response => {
            data.len() >= 12
                && data.starts_with(b"HTTP/1.")
                && matches!(data[7], b'0' | b'1')
                && data[8] == b' '
                && data[9..12].iter().all(u8::is_ascii_digit)
        }
        Role::Request => starts_request(data),
    }
}

fn starts_request(data: &[u8]) -> bool {
    let method = data
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-' || **b == b'_')
        .count();
    if method == 0 || method > 20 || data.get(method) != Some(&b' ') {
        return false;
    }
    let rest = &data[method + 1..];
    let line_end = memchr(b'\n', rest).unwrap_or(rest.len());
    let line = rest[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&rest[..line_end]);
    if line_end < rest.len() {
        // The whole request line is here: it must end with the version.
        return line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0");
    }
    // A long request line cut by the capture: judge by how the target starts.
    matches!(rest.first(), Some(b'/' | b'*')) || rest.starts_with(b"http")
}

impl StreamDecoder for MessageDecoder {
    fn resync(&mut self, data: &[u8]) {
        MessageDecoder::resync(self, data);
    }

    fn force_out_of_sync(&mut self) {
        MessageDecoder::force_out_of_sync(self);
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
