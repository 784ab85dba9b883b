//! What the fuzz targets share: turning the fuzzer's bytes into the steps the kernel side delivers for
//! one connection (chunks of either direction, each starting a syscall's bytes or continuing one, and
//! gaps of a known length), so every target meets input split, cut and holed the way live capture does.
//!
//! Input format, so seed files are easy to write: one settings byte (bit 0: the stream is followed from
//! its start; the rest: bytes kept per value), then records of a header byte (bit 0: server to client;
//! bit 1: begins a syscall's bytes; bit 2: a gap instead of data) and a little-endian `u16` length,
//! followed by that many bytes for data. A record cut short by the end of the input takes what is left.

use std::fmt::Debug;

use watcher::protocol::{
    json::read::parse,
    plugin::{Chunk, PayloadJson, Session},
    redact::{Redact, Redaction},
    Flow, Paired,
};

/// One thing the kernel side delivers for a connection.
#[derive(Debug)]
pub enum Step<'a> {
    /// Bytes that moved, timed by their position in the script.
    Data(Chunk<'a>),
    /// Bytes that moved but were not captured.
    Gap {
        /// Direction.
        flow: Flow,
        /// How many.
        len: u64,
    },
}

/// How a session is set up, and the steps to feed it.
#[derive(Debug)]
pub struct Script<'a> {
    /// Whether the connection is followed from its start.
    pub from_start: bool,
    /// Bytes kept per value (at least 1).
    pub keep_bytes: usize,
    /// What happens, in order.
    pub steps: Vec<Step<'a>>,
}

/// Reads a script from fuzzer input (see the module doc); never fails.
pub fn script(data: &[u8]) -> Script<'_> {
    let (settings, mut rest) = data.split_first().map_or((0, data), |(s, r)| (*s, r));
    let mut steps = Vec::new();
    while let Some((&header, after)) = rest.split_first() {
        let (len, after) = match after {
            [lo, hi, tail @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), tail),
            _ => (after.len(), &after[after.len()..]),
        };
        let flow = if header & 1 == 0 {
            Flow::Request
        } else {
            Flow::Response
        };
        if header & 4 == 0 {
            let (bytes, tail) = after.split_at(len.min(after.len()));
            let ts = steps.len() as u64;
            steps.push(Step::Data(Chunk::new(flow, bytes, ts, header & 2 != 0)));
            rest = tail;
        } else {
            steps.push(Step::Gap {
                flow,
                len: len as u64,
            });
            rest = after;
        }
    }
    Script {
        from_start: settings & 1 != 0,
        keep_bytes: 1 + usize::from(settings >> 1) * 64,
        steps,
    }
}

/// Feeds `script` to a protocol session, then closes it; every exchange it finishes is redacted, written
/// as JSON and read back, which must succeed (what export writes, `show` must read).
pub fn drive<S>(session: &mut S, script: &Script<'_>)
where
    S: Session,
    S::Exchange: PayloadJson + Redact + Debug,
{
    let mut out: Vec<Paired<S::Exchange>> = Vec::new();
    for step in &script.steps {
        match *step {
            Step::Data(chunk) => session.on_data(chunk, &mut out),
            Step::Gap { flow, len } => session.on_gap(flow, len, &mut out),
        }
    }
    session.on_close(&mut out);
    let policy = Redaction::default();
    let mut json = Vec::new();
    for mut paired in out {
        paired.exchange.redact(&policy);
        json.clear();
        paired.exchange.write_json(&mut json);
        let text = std::str::from_utf8(&json).expect("the writer writes UTF-8");
        let value = parse(text).expect("the writer writes JSON");
        if let Err(e) = S::Exchange::read_json(value) {
            panic!("{e:?}: cannot read back {text}");
        }
    }
}
