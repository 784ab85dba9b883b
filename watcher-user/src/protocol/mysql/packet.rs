//! One direction's byte stream as MySQL packets: the 4-byte header (3-byte length, sequence id),
//! payloads of 16 MiB and more split over several packets and joined again, and the compressed
//! protocol (`CLIENT_COMPRESS`, zlib) underneath when the connection turned it on.
//!
//! Loss is exact: a capture gap inside a payload shortens that packet (it is delivered, marked
//! incomplete, with its true length) and framing goes on; a gap across a header, a sequence id out of
//! order inside a multi-packet payload, or a corrupt compressed packet lose sync until
//! [`Stream::resync`] finds a packet start at the start of a syscall's bytes.
//!
//! A packet that arrives whole in one chunk is handed out borrowed from the chunk; only packets split
//! over chunks are assembled, and at most `keep` bytes of any payload are kept.
//!
//! Pure: no I/O.

use flate2::{Decompress, FlushDecompress, Status};

use crate::protocol::common::Flow;

/// A physical packet of this length is followed by another carrying the rest of the payload.
pub const MAX_PHYSICAL: usize = 0xff_ffff;

/// Capacity of a connection's assembly buffer kept between packets; a larger one is freed once its
/// packet was handed out.
const KEEP_BUFFER: usize = 4096;

/// Bytes of a compressed packet's header: compressed length, compressed sequence id, length before
/// compression.
const COMPRESSED_HEADER: usize = 7;

/// One logical packet (its physical pieces joined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Sequence id of its first physical packet.
    pub seq: u8,
    /// The payload, or as much of it as was kept.
    pub payload: &'a [u8],
    /// The payload's true length.
    pub len: u64,
    /// False when bytes of it were not captured (they are missing from `payload`'s end or middle).
    pub complete: bool,
    /// Monotonic ns of its first byte.
    pub start_ns: u64,
    /// Monotonic ns of its last byte.
    pub end_ns: u64,
}

impl Packet<'_> {
    /// Whether every byte of the payload is here.
    pub fn is_whole(&self) -> bool {
        self.complete && self.payload.len() as u64 == self.len
    }

    /// The payload's first byte (its type for most response packets), 0 when empty.
    pub fn first(&self) -> u8 {
        self.payload.first().copied().unwrap_or(0)
    }
}

/// What the receiver of a packet asks of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// The bytes after this packet are compressed.
    Compress,
    /// The packet makes no sense here: stop decoding until the next resync.
    LoseSync,
    /// The connection stops speaking the protocol here (TLS follows): stop for good.
    Stop,
}

/// What feeding bytes did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fed {
    /// Everything was decoded or skipped.
    Ok,
    /// Sync was lost (framing, or the receiver said so).
    LostSync,
}

/// Where the reader is in the current physical packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Header,
    /// `more`: the physical packet is full, so the payload goes on in the next.
    Payload {
        left: usize,
        more: bool,
    },
}

/// Whether the packet in the buffer is waiting to be handed out, or was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handout {
    /// Nothing to hand out.
    None,
    /// A gap finished it: hand it out at the next call.
    Ready,
    /// It was handed out: clear the buffer before going on.
    Done,
}

/// Packet framing of one direction.
#[derive(Debug)]
struct PacketReader {
    in_sync: bool,
    keep: usize,
    at: At,
    head: [u8; 4],
    head_len: usize,
    /// A logical packet is being assembled.
    started: bool,
    seq: u8,
    next_seq: u8,
    len: u64,
    complete: bool,
    start_ns: u64,
    end_ns: u64,
    buf: Vec<u8>,
    handout: Handout,
}

/// A step of framing.
enum Step<'a> {
    Packet(Packet<'a>),
    LostSync,
}

impl PacketReader {
    fn new(keep: usize, in_sync: bool) -> Self {
        Self {
            in_sync,
            keep,
            at: At::Header,
            head: [0; 4],
            head_len: 0,
            started: false,
            seq: 0,
            next_seq: 0,
            len: 0,
            complete: true,
            start_ns: 0,
            end_ns: 0,
            buf: Vec::new(),
            handout: Handout::None,
        }
    }

    fn reset(&mut self) {
        self.at = At::Header;
        self.head_len = 0;
        self.started = false;
        self.handout = Handout::None;
        self.buf.clear();
    }

    fn lose_sync(&mut self) {
        self.in_sync = false;
        self.reset();
    }

    fn assembled(&mut self) -> Packet<'_> {
        self.handout = Handout::Done;
        Packet {
            seq: self.seq,
            payload: &self.buf,
            len: self.len,
            complete: self.complete,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
        }
    }

    /// The next packet that `rest` completes, consuming what it reads.
    fn next<'s, 'd: 's>(&'s mut self, rest: &mut &'d [u8], ts: u64) -> Option<Step<'s>> {
        match std::mem::replace(&mut self.handout, Handout::None) {
            Handout::Done => {
                if self.buf.capacity() > KEEP_BUFFER {
                    // A large packet was assembled: an idle connection must not hold on to it.
                    self.buf = Vec::new();
                } else {
                    self.buf.clear();
                }
                self.started = false;
            }
            Handout::Ready => return Some(Step::Packet(self.assembled())),
            Handout::None => {}
        }
        if !self.in_sync {
            *rest = &[];
            return None;
        }
        loop {
            match self.at {
                At::Header => {
                    if self.head_len == 0 && !self.started {
                        if let Some((packet, tail)) = whole_packet(rest, self.keep, ts) {
                            *rest = tail;
                            return Some(Step::Packet(packet));
                        }
                    }
                    if rest.is_empty() {
                        return None;
                    }
                    let n = (4 - self.head_len).min(rest.len());
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&rest[..n]);
                    self.head_len += n;
                    *rest = &rest[n..];
                    if self.head_len < 4 {
                        return None;
                    }
                    self.head_len = 0;
                    let len = u24(&self.head);
                    let seq = self.head[3];
                    if !self.started {
                        self.started = true;
                        self.seq = seq;
                        self.start_ns = ts;
                        self.len = 0;
                        self.complete = true;
                    } else if seq != self.next_seq {
                        self.lose_sync();
                        return Some(Step::LostSync);
                    }
                    self.next_seq = seq.wrapping_add(1);
                    self.at = At::Payload {
                        left: len,
                        more: len == MAX_PHYSICAL,
                    };
                }
                At::Payload { left, more } => {
                    let n = left.min(rest.len());
                    let room = self.keep.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&rest[..n.min(room)]);
                    *rest = &rest[n..];
                    self.len += n as u64;
                    if left > n {
                        self.at = At::Payload {
                            left: left - n,
                            more,
                        };
                        return None;
                    }
                    self.at = At::Header;
                    if !more {
                        self.end_ns = ts;
                        return Some(Step::Packet(self.assembled()));
                    }
                }
            }
        }
    }

    /// `len` bytes were not captured. False when that loses sync.
    fn gap(&mut self, len: u64, ts: u64) -> bool {
        if !self.in_sync {
            return true;
        }
        match self.at {
            At::Payload { left, more } if len <= left as u64 => {
                let left = left - len as usize;
                self.len += len;
                self.complete = false;
                if left > 0 {
                    self.at = At::Payload { left, more };
                } else {
                    self.at = At::Header;
                    if !more {
                        self.end_ns = ts;
                        self.handout = Handout::Ready;
                    }
                }
                true
            }
            _ => {
                self.lose_sync();
                false
            }
        }
    }
}

/// A packet whose header and payload are all in `data`, not split: borrowed, with what follows it.
fn whole_packet(data: &[u8], keep: usize, ts: u64) -> Option<(Packet<'_>, &[u8])> {
    let len = u24(data.get(..4)?);
    if len == MAX_PHYSICAL || data.len() < 4 + len {
        return None;
    }
    let payload = &data[4..4 + len];
    Some((
        Packet {
            seq: data[3],
            payload: &payload[..len.min(keep)],
            len: len as u64,
            complete: true,
            start_ns: ts,
            end_ns: ts,
        },
        &data[4 + len..],
    ))
}

fn u24(b: &[u8]) -> usize {
    usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16
}

/// The compressed protocol's layer: compressed packets in, the plain byte stream out.
struct Inflater {
    head: [u8; COMPRESSED_HEADER],
    head_len: usize,
    /// Compressed bytes left of the current compressed packet.
    left: usize,
    /// Its length before compression; 0 when it was sent uncompressed.
    plain_len: usize,
    /// Plain bytes it has produced so far.
    produced: usize,
    /// A gap cut it: the rest of it is skipped.
    skipping: bool,
    zlib: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("left", &self.left)
            .field("plain_len", &self.plain_len)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

/// Plain bytes produced per step of decompression.
const INFLATE_STEP: usize = 32 * 1024;

impl Inflater {
    fn new() -> Self {
        Self {
            head: [0; COMPRESSED_HEADER],
            head_len: 0,
            left: 0,
            plain_len: 0,
            produced: 0,
            skipping: false,
            zlib: Decompress::new(true),
        }
    }

    /// Appends the plain bytes `data` carries to `out`; false when the data is not a valid compressed
    /// stream.
    fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> bool {
        while !data.is_empty() {
            if self.left == 0 {
                let n = (COMPRESSED_HEADER - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
                self.head_len += n;
                data = &data[n..];
                if self.head_len < COMPRESSED_HEADER {
                    return true;
                }
                self.head_len = 0;
                self.left = u24(&self.head);
                self.plain_len = u24(&self.head[4..]);
                self.produced = 0;
                self.skipping = false;
                self.zlib.reset(true);
                continue;
            }
            let n = self.left.min(data.len());
            let piece = &data[..n];
            data = &data[n..];
            self.left -= n;
            if self.skipping {
                continue;
            }
            if self.plain_len == 0 {
                out.extend_from_slice(piece);
            } else if !self.inflate(piece, out) {
                return false;
            }
            if self.left == 0 && self.plain_len != 0 && self.produced != self.plain_len {
                return false;
            }
        }
        true
    }

    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> bool {
        loop {
            let want = (self.plain_len - self.produced).min(INFLATE_STEP);
            out.reserve(want.max(1));
            let (in_before, out_before) = (self.zlib.total_in(), out.len());
            let Ok(status) = self.zlib.decompress_vec(input, out, FlushDecompress::None) else {
                return false;
            };
            let consumed = (self.zlib.total_in() - in_before) as usize;
            let made = out.len() - out_before;
            input = &input[consumed..];
            self.produced += made;
            if self.produced > self.plain_len {
                return false;
            }
            if status == Status::StreamEnd || (input.is_empty() && made == 0) {
                return true;
            }
            if consumed == 0 && made == 0 {
                // The output is all there is (checked when the packet ends).
                return true;
            }
        }
    }

    /// `len` compressed bytes were not captured: the plain bytes lost with them, or `None` when the gap
    /// crosses a header.
    fn gap(&mut self, len: u64) -> Option<u64> {
        if self.left == 0 || len > self.left as u64 {
            return None;
        }
        self.left -= len as usize;
        if self.plain_len == 0 {
            return Some(len);
        }
        if std::mem::replace(&mut self.skipping, true) {
            return Some(0);
        }
        Some((self.plain_len - self.produced) as u64)
    }
}

/// One direction of a connection: compressed layer (once on), framing, and what resyncs it.
#[derive(Debug)]
pub struct Stream {
    flow: Flow,
    packets: PacketReader,
    inflater: Option<Box<Inflater>>,
    plain: Vec<u8>,
}

impl Stream {
    /// A stream flowing `flow`, keeping at most `keep` bytes of each payload.
    pub fn new(flow: Flow, keep: usize, in_sync: bool) -> Self {
        Self {
            flow,
            packets: PacketReader::new(keep, in_sync),
            inflater: None,
            plain: Vec::new(),
        }
    }

    /// Whether packets are being decoded.
    pub fn in_sync(&self) -> bool {
        self.packets.in_sync
    }

    /// Whether the compressed protocol is on.
    pub fn is_compressed(&self) -> bool {
        self.inflater.is_some()
    }

    /// From the next byte on, the stream is compressed.
    pub fn compress(&mut self) {
        self.inflater = Some(Box::new(Inflater::new()));
    }

    /// Feeds `data`, handing each completed packet to `handle`.
    pub fn feed(
        &mut self,
        data: &[u8],
        ts: u64,
        handle: &mut dyn FnMut(Packet<'_>) -> Control,
    ) -> Fed {
        let mut rest = data;
        loop {
            if let Some(inflater) = &mut self.inflater {
                let mut plain = std::mem::take(&mut self.plain);
                plain.clear();
                if !inflater.feed(rest, &mut plain) {
                    self.plain = plain;
                    self.packets.lose_sync();
                    return Fed::LostSync;
                }
                let fed = self.frame(&mut plain.as_slice(), ts, handle);
                self.plain = plain;
                return match fed {
                    Framed::Compress | Framed::Done => Fed::Ok,
                    Framed::Lost => Fed::LostSync,
                };
            }
            match self.frame(&mut rest, ts, handle) {
                Framed::Done => return Fed::Ok,
                Framed::Lost => return Fed::LostSync,
                Framed::Compress => self.compress(),
            }
        }
    }

    /// Frames plain bytes until they run out or the receiver asks for compression.
    fn frame(
        &mut self,
        rest: &mut &[u8],
        ts: u64,
        handle: &mut dyn FnMut(Packet<'_>) -> Control,
    ) -> Framed {
        while let Some(step) = self.packets.next(rest, ts) {
            let control = match step {
                Step::Packet(packet) => handle(packet),
                Step::LostSync => return Framed::Lost,
            };
            match control {
                Control::Continue => {}
                Control::Compress => return Framed::Compress,
                Control::LoseSync => {
                    self.packets.lose_sync();
                    return Framed::Lost;
                }
                Control::Stop => {
                    self.packets.lose_sync();
                    return Framed::Done;
                }
            }
        }
        Framed::Done
    }

    /// `len` bytes were not captured; packets the gap completes go to `handle`.
    pub fn gap(&mut self, len: u64, ts: u64, handle: &mut dyn FnMut(Packet<'_>) -> Control) -> Fed {
        if !self.packets.in_sync {
            return Fed::Ok;
        }
        let plain_gap = match &mut self.inflater {
            Some(inflater) => inflater.gap(len),
            None => Some(len),
        };
        let Some(plain_gap) = plain_gap else {
            self.packets.lose_sync();
            return Fed::LostSync;
        };
        if plain_gap > 0 && !self.packets.gap(plain_gap, ts) {
            return Fed::LostSync;
        }
        match self.frame(&mut &[][..], ts, handle) {
            Framed::Lost => Fed::LostSync,
            Framed::Done | Framed::Compress => Fed::Ok,
        }
    }

    /// At the start of a syscall's bytes: when out of sync and `data` opens a packet of this direction,
    /// decode again from here. Returns whether it is in sync.
    pub fn resync(&mut self, data: &[u8]) -> bool {
        if self.packets.in_sync {
            return true;
        }
        let opens = match &self.inflater {
            Some(_) => opens_compressed(data),
            None => opens_packet(self.flow, data),
        };
        if opens {
            self.packets.reset();
            self.packets.in_sync = true;
            if self.inflater.is_some() {
                self.compress();
            }
        }
        opens
    }

    /// Stops decoding until the next resync.
    pub fn force_out_of_sync(&mut self) {
        self.packets.lose_sync();
    }
}

enum Framed {
    Done,
    Lost,
    Compress,
}

/// Whether `data` opens a packet flowing `flow`: a command from the client (sequence id 0, a known
/// command), anything but a first packet from the server.
fn opens_packet(flow: Flow, data: &[u8]) -> bool {
    let Some(head) = data.get(..4) else {
        return false;
    };
    let len = u24(head);
    let fits = len == MAX_PHYSICAL || data.len() >= 4 + len;
    match flow {
        Flow::Request => {
            fits && head[3] == 0
                && data
                    .get(4)
                    .is_some_and(|&c| super::command::Command::from_code(c).is_known())
        }
        Flow::Response => fits && head[3] != 0 && len > 0,
    }
}

/// Whether `data` opens a compressed packet.
fn opens_compressed(data: &[u8]) -> bool {
    let Some(head) = data.get(..COMPRESSED_HEADER) else {
        return false;
    };
    let len = u24(head);
    let plain = u24(&head[4..]);
    len > 0
        && data.len() >= COMPRESSED_HEADER + len.min(MAX_PHYSICAL)
        && (plain == 0 || data.get(COMPRESSED_HEADER) == Some(&0x78))
}

/// Whether `data`, a client's syscall on a connection met in the middle, is one command in the
/// compressed protocol: exactly one compressed packet with compressed sequence id 0, holding either a
/// zlib stream or, uncompressed, exactly one command packet. A plain command packet never passes (its
/// header gives a length 3 bytes shorter than the data's).
pub fn opens_compressed_command(data: &[u8]) -> bool {
    let Some(head) = data.get(..COMPRESSED_HEADER) else {
        return false;
    };
    let (len, plain) = (u24(head), u24(&head[4..]));
    if head[3] != 0 || data.len() != COMPRESSED_HEADER + len {
        return false;
    }
    let body = &data[COMPRESSED_HEADER..];
    if plain == 0 {
        return opens_packet(Flow::Request, body) && body.len() == 4 + u24(body);
    }
    // A zlib header: deflate with a 32 KiB window at most, and a check value.
    matches!(body, [cmf, flg, ..] if cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

impl crate::protocol::pairing::StreamDecoder for Stream {
    fn resync(&mut self, data: &[u8]) {
        Stream::resync(self, data);
    }

    fn force_out_of_sync(&mut self) {
        Stream::force_out_of_sync(self);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        out.extend_from_slice(payload);
        out
    }

    /// A packet as (seq, payload kept, true length, complete).
    type Seen = (u8, Vec<u8>, u64, bool);

    fn collect(stream: &mut Stream, chunks: &[&[u8]]) -> (Vec<Seen>, Fed) {
        let mut got = Vec::new();
        let mut fed = Fed::Ok;
        for (i, chunk) in chunks.iter().enumerate() {
            fed = stream.feed(chunk, i as u64, &mut |p| {
                got.push((p.seq, p.payload.to_vec(), p.len, p.complete));
                Control::Continue
            });
        }
        (got, fed)
    }

    #[test]
    fn packets_split_at_every_byte_are_framed_the_same() {
        let mut wire = packet(0, b"\x03SELECT 1");
        wire.extend(packet(1, b""));
        wire.extend(packet(2, &[7; 300]));
        for cut in 0..wire.len() {
            for cut2 in cut..wire.len() {
                let mut s = Stream::new(Flow::Request, 1 << 20, true);
                let (got, fed) = collect(&mut s, &[&wire[..cut], &wire[cut..cut2], &wire[cut2..]]);
                assert_eq!(fed, Fed::Ok);
                assert_eq!(got.len(), 3, "cuts {cut} {cut2}");
                assert_eq!(got[0], (0, b"\x03SELECT 1".to_vec(), 9, true));
                assert_eq!(got[1], (1, vec![], 0, true));
                assert_eq!(got[2], (2, vec![7; 300], 300, true));
            }
        }
    }

    #[test]
    fn a_payload_of_16_mib_and_more_is_joined_and_kept_to_its_prefix() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0xff, 0xff, 0xff, 0]);
        wire.extend(std::iter::repeat_n(b'a', MAX_PHYSICAL));
        wire.extend(packet(1, b"tail"));
        let mut s = Stream::new(Flow::Request, 100, true);
        let (got, _) = collect(&mut s, &[&wire[..1000], &wire[1000..]]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
        assert_eq!(got[0].1, vec![b'a'; 100]);
        assert_eq!(got[0].2, MAX_PHYSICAL as u64 + 4);
        // The continuation's sequence id must follow.
        let mut bad = wire.clone();
        bad[4 + MAX_PHYSICAL + 3] = 5;
        let mut s = Stream::new(Flow::Request, 100, true);
        let (got, fed) = collect(&mut s, &[&bad]);
        assert!(got.is_empty());
        assert_eq!(fed, Fed::LostSync);
    }

    #[test]
    fn a_gap_inside_a_payload_keeps_framing_and_one_across_a_header_loses_it() {
        let wire = [packet(1, &[1; 50]), packet(2, b"next")].concat();
        let mut s = Stream::new(Flow::Response, 1 << 20, true);
        let mut got = Vec::new();
        let mut record = |p: Packet<'_>| {
            got.push((p.seq, p.payload.len(), p.len, p.complete));
            Control::Continue
        };
        s.feed(&wire[..10], 0, &mut record);
        assert_eq!(s.gap(44, 1, &mut record), Fed::Ok, "inside the payload");
        s.feed(&wire[54..], 2, &mut record);
        assert_eq!(got, vec![(1, 6, 50, false), (2, 4, 4, true)]);
        let mut s = Stream::new(Flow::Response, 1 << 20, true);
        s.feed(&wire[..10], 0, &mut |_| Control::Continue);
        assert_eq!(s.gap(50, 1, &mut |_| Control::Continue), Fed::LostSync);
        assert!(!s.in_sync());
        assert!(!s.resync(&wire[54..57]), "too short for a header");
        assert!(s.resync(&wire[54..]));
    }

    #[test]
    fn a_gap_ending_a_payload_hands_the_packet_out() {
        let wire = packet(1, &[1; 50]);
        let mut s = Stream::new(Flow::Response, 1 << 20, true);
        let mut got = Vec::new();
        s.feed(&wire[..10], 0, &mut |_| Control::Continue);
        s.gap(44, 1, &mut |p| {
            got.push((p.len, p.complete));
            Control::Continue
        });
        assert_eq!(got, vec![(50, false)]);
    }

    fn compressed(plain: &[u8], seq: u8) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(plain).unwrap();
        let body = z.finish().unwrap();
        let mut out = vec![
            body.len() as u8,
            (body.len() >> 8) as u8,
            (body.len() >> 16) as u8,
            seq,
            plain.len() as u8,
            (plain.len() >> 8) as u8,
            (plain.len() >> 16) as u8,
        ];
        out.extend(body);
        out
    }

    #[test]
    fn compressed_packets_are_inflated_whatever_the_cuts() {
        let plain = [
            packet(0, b"\x03SELECT 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"),
            packet(0, b"\x0e"),
        ]
        .concat();
        let raw = packet(0, b"\x0e");
        let mut wire = compressed(&plain, 0);
        // An uncompressed piece inside the compressed protocol: length before compression 0.
        wire.extend_from_slice(&[raw.len() as u8, 0, 0, 1, 0, 0, 0]);
        wire.extend_from_slice(&raw);
        for cut in 0..wire.len() {
            let mut s = Stream::new(Flow::Request, 1 << 20, true);
            s.compress();
            let (got, fed) = collect(&mut s, &[&wire[..cut], &wire[cut..]]);
            assert_eq!(fed, Fed::Ok, "cut {cut}");
            let payloads: Vec<_> = got.iter().map(|g| g.1.clone()).collect();
            assert_eq!(
                payloads,
                vec![
                    b"\x03SELECT 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'".to_vec(),
                    b"\x0e".to_vec(),
                    b"\x0e".to_vec()
                ],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn corrupt_compressed_data_loses_sync_and_a_gap_in_it_is_exact() {
        // One packet's plain bytes over two compressed packets; the second is lost but for its header.
        let plain = packet(1, &[9; 1000]);
        let first = compressed(&plain[..100], 0);
        let second = compressed(&plain[100..], 1);
        let mut s = Stream::new(Flow::Response, 1 << 20, true);
        s.compress();
        let mut got = Vec::new();
        let mut record = |p: Packet<'_>| {
            got.push((p.len, p.complete));
            Control::Continue
        };
        s.feed(&first, 0, &mut record);
        s.feed(&second[..COMPRESSED_HEADER], 1, &mut record);
        let lost = (second.len() - COMPRESSED_HEADER) as u64;
        assert_eq!(s.gap(lost, 2, &mut record), Fed::Ok);
        assert_eq!(
            got,
            vec![(1000, false)],
            "the 904 plain bytes lost are counted exactly"
        );
        let mut corrupt = first.clone();
        let last = corrupt.len() - 1;
        corrupt[8..last].fill(0xaa);
        let mut s = Stream::new(Flow::Response, 1 << 20, true);
        s.compress();
        assert_eq!(
            s.feed(&corrupt, 0, &mut |_| Control::Continue),
            Fed::LostSync
        );
    }

    #[test]
    fn the_receiver_can_turn_compression_on_between_packets_of_one_chunk() {
        let wire = [
            packet(2, b"\x00\x00\x00\x02\x00\x00\x00"),
            compressed(&packet(1, b"\x00ok"), 0),
        ]
        .concat();
        let mut s = Stream::new(Flow::Response, 1 << 20, true);
        let mut got = Vec::new();
        s.feed(&wire, 0, &mut |p| {
            got.push(p.payload.to_vec());
            if got.len() == 1 {
                Control::Compress
            } else {
                Control::Continue
            }
        });
        assert_eq!(
            got,
            vec![b"\x00\x00\x00\x02\x00\x00\x00".to_vec(), b"\x00ok".to_vec()]
        );
        assert!(s.is_compressed());
    }
}
