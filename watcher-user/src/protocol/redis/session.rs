//! Pairing Redis requests with replies on one connection.
//!
//! Replies come back in request order, so pending requests form a queue; the exceptions handled here are
//! commands with several replies ((P|S)SUBSCRIBE and friends), commands the server does not answer
//! (`CLIENT REPLY OFF` until `CLIENT REPLY ON`, the command after `CLIENT REPLY SKIP`: recorded at once,
//! without a reply, so they never take another command's reply), out-of-band pushes (pub/sub messages in
//! RESP2 subscribed mode and RESP3 `>` frames, MONITOR output) and the loss of sync in either direction,
//! after which replies are ignored until they can be tied to a request decoded after the loss (the
//! rules of `protocol::pairing`, shared with every request/response protocol).
//!
//! A replication link is followed from its start: the replica's `SYNC`/`PSYNC` is answered by
//! `+FULLRESYNC` and the RDB snapshot (skipped by its length or end mark, never stored) or by
//! `+CONTINUE`; from then on every frame the primary sends is a replicated command (its own record, no
//! reply), and the replica's `REPLCONF ACK`s are recorded without waiting for a reply. A link met while
//! already streaming is recognised by its first `REPLCONF ACK`.
//!
//! Memory is bounded whatever the client sends: at most [`MAX_PENDING`] requests wait per connection
//! (more is a loss of sync, counted with the requests dropped), and once their kept arguments reach
//! [`MAX_PENDING_BYTES`], further requests wait without their arguments (recorded as truncated), so
//! pairing stays exact for a deep pipeline while it costs at most a few MiB.
//!
//! Pure: no I/O; owned by the one shard thread that owns the connection.

use compact_str::CompactString;

use super::exchange::{Args, ExchangeKind, RedisExchange};
use super::resp::{Blob, BlobData, Decoded, Frame, Output, RespDecoder};
use crate::protocol::{
    common::{Flow, SessionStats},
    pairing::{Pairing, PendingRequest},
    plugin::{Chunk, Finish, Session},
};

/// A finished Redis exchange with its timing.
pub type Paired = crate::protocol::common::Paired<RedisExchange>;

/// Most requests waiting for replies on one connection. Deep pipelines (`redis-cli --pipe`, client
/// auto-pipelining) stay far below; more means the replies are not coming the way requests suggest.
pub const MAX_PENDING: usize = 65_536;

/// Argument bytes kept for the requests waiting on one connection; beyond it requests wait without their
/// arguments.
pub const MAX_PENDING_BYTES: usize = 4 << 20;

/// How far a connection is a replication link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// An ordinary client.
    No,
    /// `SYNC` or `PSYNC` sent; the snapshot may be on its way.
    Syncing,
    /// Every frame from the server is a replicated command.
    Streaming,
}

/// Whether the server answers the client's commands (`CLIENT REPLY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replies {
    /// Every command is answered.
    On,
    /// No command is answered, until `CLIENT REPLY ON`.
    Off,
    /// The next command is not answered.
    SkipNext,
}

/// How many reply frames a request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    One,
    /// (P|S)SUBSCRIBE or UNSUBSCRIBE with channels: one confirmation per channel.
    Count(usize),
    /// UNSUBSCRIBE with no channels: confirmations until the remaining count is 0.
    UntilZero,
    /// SYNC or PSYNC: `+FULLRESYNC` and then the snapshot, or `+CONTINUE`, or an error.
    Sync,
}

#[derive(Debug)]
struct Pending {
    command: CompactString,
    args: Args,
    start_ns: u64,
    bytes: u64,
    /// Whether the request, or a reply to it so far, was cut short.
    truncated: bool,
    want: Want,
    replies: Vec<Frame>,
    reply_bytes: u64,
    /// Argument bytes kept, counted in [`RedisSession::pending_bytes`].
    kept_bytes: usize,
}

impl PendingRequest for Pending {
    fn start_ns(&self) -> u64 {
        self.start_ns
    }
}

/// Request/reply state of one connection.
#[derive(Debug)]
pub struct RedisSession {
    pairing: Pairing<RespDecoder, Pending>,
    subscribed: bool,
    monitoring: bool,
    replies: Replies,
    link: Link,
    /// Argument bytes kept by the pending requests.
    pending_bytes: usize,
    scratch: Vec<Output>,
}

impl RedisSession {
    /// Whether the request side has decoded at least one command since it was last in doubt.
    pub fn requests_in_sync(&self) -> bool {
        self.pairing.requests.in_sync()
    }

    fn handle(
        &mut self,
        flow: Flow,
        outputs: &mut Vec<Output>,
        out: &mut impl Finish<RedisExchange>,
    ) {
        for output in outputs.drain(..) {
            match output {
                Output::LostSync(_) => self.lose_sync(),
                Output::Frame(decoded) => match flow {
                    Flow::Request => self.on_request(decoded, out),
                    Flow::Response => self.on_reply(decoded, out),
                },
            }
        }
    }

    fn lose_sync(&mut self) {
        self.pairing.lose_sync();
        self.pending_bytes = 0;
        if self.link == Link::Syncing {
            // Lost in the snapshot: what follows it is the command stream, to be found again at a
            // syscall start.
            self.link = Link::Streaming;
        }
    }

    fn on_request(&mut self, decoded: Decoded, out: &mut impl Finish<RedisExchange>) {
        let truncated = decoded.truncated;
        let Some(Command {
            name: command,
            mut args,
            announced_args,
        }) = command(decoded.frame, |items| self.pairing.requests.recycle(items))
        else {
            return;
        };
        let want = replies_wanted(&command, announced_args);
        match command.as_str() {
            "SYNC" | "PSYNC" => {
                self.pairing.responses.replication_link(command == "SYNC");
                self.link = Link::Syncing;
            }
            _ => {}
        }
        let ack = command == "REPLCONF"
            && args
                .first()
                .is_some_and(|a| a.data.eq_ignore_ascii_case(b"ACK"));
        if ack && self.link == Link::No {
            // A link that was streaming before the watcher started.
            self.link = Link::Streaming;
        }
        let answered = !ack && self.answered(&command, &args);
        let mut kept_bytes: usize = args.iter().map(|a| a.data.len()).sum();
        let mut truncated = truncated;
        if answered && self.pending_bytes + kept_bytes > MAX_PENDING_BYTES {
            // Waiting without its arguments keeps the pairing exact at a bounded cost.
            args = Args::new();
            kept_bytes = 0;
            truncated = true;
        }
        let mut request = Pending {
            command,
            args,
            start_ns: decoded.start_ns,
            bytes: decoded.wire_bytes,
            truncated,
            want,
            replies: Vec::new(),
            reply_bytes: 0,
            kept_bytes,
        };
        if !answered {
            out.push(finish(&mut request, None));
            return;
        }
        if self.pairing.pending.len() >= MAX_PENDING {
            self.lose_sync();
        }
        self.pending_bytes += request.kept_bytes;
        self.pairing.pending.push_back(request);
    }

    /// Whether the server will answer this command, following `CLIENT REPLY`.
    fn answered(&mut self, command: &str, args: &[Blob]) -> bool {
        let client_reply = (command == "CLIENT"
            && args
                .first()
                .is_some_and(|a| a.data.eq_ignore_ascii_case(b"REPLY")))
        .then(|| args.get(1).map(|a| a.data.to_ascii_uppercase()))
        .flatten();
        match (client_reply.as_deref(), self.replies) {
            // `CLIENT REPLY ON` is answered, whatever the mode was.
            (Some(b"ON"), _) => {
                self.replies = Replies::On;
                true
            }
            (Some(b"OFF"), _) => {
                self.replies = Replies::Off;
                false
            }
            (Some(b"SKIP"), Replies::Off) => false,
            (Some(b"SKIP"), _) => {
                self.replies = Replies::SkipNext;
                false
            }
            (_, Replies::Off) => false,
            (_, Replies::SkipNext) => {
                self.replies = Replies::On;
                false
            }
            (_, Replies::On) => true,
        }
    }

    fn on_reply(&mut self, decoded: Decoded, out: &mut impl Finish<RedisExchange>) {
        if self.link == Link::Streaming {
            match replicated(decoded) {
                Some(command) => out.push(command),
                None => self.pairing.orphan(),
            }
            return;
        }
        if self.is_push(&decoded.frame) {
            out.push(push(decoded));
            return;
        }
        let Some(front) = self.pairing.pending.front_mut() else {
            self.pairing.orphan();
            return;
        };
        front.reply_bytes += decoded.wire_bytes;
        front.truncated |= decoded.truncated;
        let count = subscription_count(&decoded.frame);
        if let Some(count) = count {
            self.subscribed = count > 0;
        }
        let done = match front.want {
            Want::One => true,
            Want::Count(n) => front.replies.len() + 1 >= n,
            Want::UntilZero => count.is_none_or(|c| c == 0),
            // `+FULLRESYNC` is followed by the snapshot; anything else ends the exchange.
            Want::Sync => {
                !matches!(&decoded.frame, Frame::Simple(b) if b.data.starts_with(b"FULLRESYNC"))
            }
        };
        if front.want == Want::Sync && done {
            self.link = if matches!(decoded.frame, Frame::Error(_)) {
                Link::No
            } else {
                Link::Streaming
            };
        }
        if !done {
            front.replies.push(decoded.frame);
            return;
        }
        self.pending_bytes -= front.kept_bytes;
        if front.command == "MONITOR" {
            self.monitoring = true;
        }
        // The usual single reply goes straight into the exchange, not through a vector of replies.
        let single = matches!(front.want, Want::One | Want::Sync) && front.replies.is_empty();
        let reply = if single {
            decoded.frame
        } else {
            front.replies.push(decoded.frame);
            Frame::Array(std::mem::take(&mut front.replies))
        };
        // Made from the request where it waits, whose emptied husk is then dropped: popped first, the
        // request was copied out of the queue and again into the exchange.
        out.push(finish(front, Some((reply, decoded.end_ns))));
        self.pairing.pending.pop_front();
    }

    /// Whether a reply frame is out-of-band rather than the answer to the oldest request.
    fn is_push(&self, frame: &Frame) -> bool {
        let waiting_for_confirmation = self
            .pairing
            .pending
            .front()
            .is_some_and(|p| p.want != Want::One && subscription_count(frame).is_some());
        match frame {
            Frame::Push(_) => !waiting_for_confirmation,
            Frame::Array(items) if self.subscribed => matches!(
                items.first().and_then(Frame::as_bytes),
                Some(b"message" | b"pmessage" | b"smessage")
            ),
            Frame::Simple(_) => self.monitoring && self.pairing.pending.is_empty(),
            _ => false,
        }
    }
}

impl Session for RedisSession {
    type Exchange = RedisExchange;

    fn new(keep_bytes: usize, in_sync: bool) -> Self {
        Self {
            pairing: Pairing::new(|flow| RespDecoder::new(flow.into(), keep_bytes, in_sync)),
            subscribed: false,
            monitoring: false,
            replies: Replies::On,
            link: Link::No,
            pending_bytes: 0,
            scratch: Vec::new(),
        }
    }

    fn on_data(&mut self, chunk: Chunk<'_>, out: &mut impl Finish<RedisExchange>) {
        if self.link == Link::Streaming && chunk.flow == Flow::Response && chunk.call_start {
            // Replicated commands answer no request, so the pairing's rule (a request pending) would
            // never let a link that lost sync back in.
            self.pairing.responses.resync(chunk.data);
        }
        let mut outputs = std::mem::take(&mut self.scratch);
        self.pairing
            .decoder_for(chunk)
            .feed(chunk.data, chunk.ts_ns, &mut outputs);
        self.handle(chunk.flow, &mut outputs, out);
        self.scratch = outputs;
    }

    fn on_gap(&mut self, flow: Flow, len: u64, out: &mut impl Finish<RedisExchange>) {
        let mut outputs = std::mem::take(&mut self.scratch);
        self.pairing.decoder(flow).gap(len, &mut outputs);
        self.handle(flow, &mut outputs, out);
        self.scratch = outputs;
    }

    /// Requests still waiting are reported without a reply.
    fn on_close(&mut self, out: &mut impl Finish<RedisExchange>) {
        for mut p in self.pairing.pending.drain(..) {
            out.push(finish(&mut p, None));
        }
        self.pending_bytes = 0;
    }

    fn stats(&self) -> SessionStats {
        self.pairing.stats
    }
}

/// A command as a frame carries it: a client's request, or what a primary propagates.
struct Command {
    /// Upper-cased.
    name: CompactString,
    /// The arguments kept.
    args: Args,
    /// How many arguments it really had (more than kept when the frame was cut).
    announced_args: usize,
}

/// Bytes a [`CompactString`] holds without allocating (on 64-bit targets).
const NAME_INLINE: usize = 3 * size_of::<usize>();

/// The command an array frame (whole or cut by the capture size) carries; `None` for anything else.
/// The frame's emptied element vector goes to `recycle`, so the decoder can fill it with the next
/// command instead of allocating one per request.
fn command(frame: Frame, recycle: impl FnOnce(Vec<Frame>)) -> Option<Command> {
    let (mut items, announced) = match frame {
        Frame::Array(items) => {
            let n = items.len();
            (items, n)
        }
        Frame::Cut { kept, len } => match *kept {
            Frame::Array(items) => (items, usize::try_from(len).unwrap_or(usize::MAX)),
            _ => return None,
        },
        _ => return None,
    };
    let mut words = items.drain(..).filter_map(|item| match item {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        Frame::Integer(i) => Some(Blob::full(i.to_string())),
        _ => None,
    });
    let name = words.next();
    let args: Args = words.collect();
    recycle(items);
    Some(Command {
        name: command_name(name?.data),
        args,
        announced_args: announced.saturating_sub(1),
    })
}

/// The upper-cased command name (inline: every Redis command name fits, so naming costs no allocation).
fn command_name(mut name: BlobData) -> CompactString {
    // Upper-cased in a buffer of fixed size, which the compiler works through a vector at a time;
    // byte by byte, over a length known only at run time, naming took a twentieth of the pipeline.
    // Longer names (none that Redis knows) are upper-cased where they are.
    let mut padded = [0u8; NAME_INLINE];
    let upper: &[u8] = if let Some(kept) = padded.get_mut(..name.len()) {
        kept.copy_from_slice(&name);
        padded.make_ascii_uppercase();
        &padded[..name.len()]
    } else {
        name.make_ascii_uppercase();
        &name
    };
    // Checked as a whole first: the lossy conversion walks the bytes in chunks even when all are valid.
    match std::str::from_utf8(upper) {
        Ok(upper) => CompactString::new(upper),
        Err(_) => CompactString::from_utf8_lossy(upper),
    }
}

fn replies_wanted(command: &str, arg_count: usize) -> Want {
    match command {
        "SYNC" | "PSYNC" => Want::Sync,
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => Want::Count(arg_count.max(1)),
        "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" if arg_count > 0 => Want::Count(arg_count),
        "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => Want::UntilZero,
        _ => Want::One,
    }
}

/// For a (un)subscribe confirmation `[kind, channel, count]`, the subscription count it reports.
fn subscription_count(frame: &Frame) -> Option<i64> {
    let items = frame.elements()?;
    let kind = items.first()?.as_bytes()?;
    let is_confirmation = matches!(
        kind,
        b"subscribe"
            | b"psubscribe"
            | b"ssubscribe"
            | b"unsubscribe"
            | b"punsubscribe"
            | b"sunsubscribe"
    );
    match (is_confirmation, items.get(2)) {
        (true, Some(Frame::Integer(n))) => Some(*n),
        _ => None,
    }
}

/// The exchange of request `p`, whose command and arguments it takes, answered by `reply` (the frame and
/// when it ended).
fn finish(p: &mut Pending, reply: Option<(Frame, u64)>) -> Paired {
    let end_ns = reply.as_ref().map(|(_, end)| *end);
    Paired {
        exchange: RedisExchange {
            kind: ExchangeKind::Command,
            command: std::mem::take(&mut p.command),
            args: std::mem::take(&mut p.args),
            reply: reply.map(|(f, _)| f),
        },
        start_ns: p.start_ns,
        end_ns,
        request_bytes: p.bytes,
        response_bytes: p.reply_bytes,
        truncated: p.truncated,
    }
}

/// A command the primary propagated over a replication link; `None` if the frame is not a command.
fn replicated(decoded: Decoded) -> Option<Paired> {
    let truncated = decoded.truncated;
    // Not handed back: replicated commands are a primary's replies, decoded by the other decoder.
    let Command { name, args, .. } = command(decoded.frame, drop)?;
    Some(Paired {
        exchange: RedisExchange {
            kind: ExchangeKind::Replicated,
            command: name,
            args,
            reply: None,
        },
        start_ns: decoded.start_ns,
        end_ns: None,
        request_bytes: decoded.wire_bytes,
        response_bytes: 0,
        truncated,
    })
}

fn push(decoded: Decoded) -> Paired {
    Paired {
        truncated: decoded.truncated,
        exchange: RedisExchange {
            kind: ExchangeKind::Push,
            command: CompactString::default(),
            args: Args::new(),
            reply: Some(decoded.frame),
        },
        start_ns: decoded.start_ns,
        end_ns: Some(decoded.end_ns),
        request_bytes: 0,
        response_bytes: decoded.wire_bytes,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
