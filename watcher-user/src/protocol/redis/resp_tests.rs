//! Tests of the RESP decoder: every RESP2/RESP3 type, inline commands, pipelining, every split point,
//! truncation, capture gaps, loss of sync and recovery, limits, and property tests over random input.

use proptest::{collection::vec, prelude::*, sample::Index};

use super::*;

/// Large enough that no test value is truncated.
const KEEP_ALL: usize = 1 << 20;
/// Timestamp for tests that do not look at timing.
const TS: u64 = 7;

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/// Feeds `chunks` in order to a fresh in-sync decoder, all at `TS`.
fn decode_chunks(role: Role, keep: usize, chunks: &[&[u8]]) -> Vec<Output> {
    let mut dec = RespDecoder::new(role, keep, true);
    let mut out = Vec::new();
    for chunk in chunks {
        dec.feed(chunk, TS, &mut out);
    }
    out
}

/// Decodes `data` in one slice, then checks that feeding it split at every byte boundary, and one byte
/// at a time, gives the same outputs (frames, byte counts and times); returns them.
fn decode_every_split(role: Role, keep: usize, data: &[u8]) -> Vec<Output> {
    let whole = decode_chunks(role, keep, &[data]);
    for i in 0..=data.len() {
        let (head, tail) = data.split_at(i);
        assert_eq!(
            decode_chunks(role, keep, &[head, tail]),
            whole,
            "split at byte {i} of {:?}",
            String::from_utf8_lossy(data)
        );
    }
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(
        decode_chunks(role, keep, &bytes),
        whole,
        "one byte at a time: {:?}",
        String::from_utf8_lossy(data)
    );
    whole
}

/// The frames of `outputs`, failing on any loss of sync, or on a frame whose `truncated` mark
/// disagrees with what it holds (every test that decodes through here checks the mark).
fn frames_of(outputs: Vec<Output>) -> Vec<Decoded> {
    outputs
        .into_iter()
        .map(|o| match o {
            Output::Frame(d) => {
                assert_eq!(d.truncated, d.frame.is_truncated(), "{d:?}");
                d
            }
            Output::LostSync(why) => panic!("unexpected loss of sync: {why:?}"),
        })
        .collect()
}

/// Decodes `data`, at every split, as exactly one frame spanning all of it.
fn decode_one(role: Role, data: &[u8]) -> Frame {
    let mut frames = frames_of(decode_every_split(role, KEEP_ALL, data));
    assert_eq!(frames.len(), 1, "{frames:?}");
    let decoded = frames.remove(0);
    assert_eq!(decoded.wire_bytes, data.len() as u64);
    assert_eq!((decoded.start_ns, decoded.end_ns), (TS, TS));
    decoded.frame
}

/// One reply frame spanning all of `data`.
fn reply(data: &[u8]) -> Frame {
    decode_one(Role::Response, data)
}

/// One request frame spanning all of `data`.
fn request(data: &[u8]) -> Frame {
    decode_one(Role::Request, data)
}

/// Asserts that `data` (at every split) makes a fresh decoder lose sync as malformed, emitting nothing
/// else.
fn assert_malformed(role: Role, data: &[u8]) {
    assert_eq!(
        decode_every_split(role, KEEP_ALL, data),
        [Output::LostSync(SyncLoss::Malformed)],
        "{:?}",
        String::from_utf8_lossy(data)
    );
}

fn simple(s: &str) -> Frame {
    Frame::Simple(Blob::full(s))
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Blob::full(b))
}

fn int(i: i64) -> Frame {
    Frame::Integer(i)
}

/// A request as a client library sends it: an array of bulk strings.
fn command(words: &[&str]) -> Frame {
    Frame::Array(words.iter().map(|w| bulk(w.as_bytes())).collect())
}

/// Appends a tag, `text` and CRLF.
fn line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
    out.push(tag);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Appends a length-prefixed blob.
fn blob(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    line(out, tag, data.len().to_string().as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, tag: u8, items: &[Frame]) {
    line(out, tag, items.len().to_string().as_bytes());
    for item in items {
        encode(item, out);
    }
}

/// Test-side RESP encoder (the decoder's inverse, for complete blobs).
fn encode(frame: &Frame, out: &mut Vec<u8>) {
    match frame {
        Frame::Simple(b) => line(out, b'+', &b.data),
        Frame::Error(b) if !b.data.contains(&b'\n') => line(out, b'-', &b.data),
        Frame::Error(b) => blob(out, b'!', &b.data),
        Frame::Integer(i) => line(out, b':', i.to_string().as_bytes()),
        Frame::Bulk(b) => blob(out, b'$', &b.data),
        Frame::Null => line(out, b'_', b""),
        Frame::Array(items) => aggregate(out, b'*', items),
        Frame::Set(items) => aggregate(out, b'~', items),
        Frame::Push(items) => aggregate(out, b'>', items),
        Frame::Map(pairs) => {
            line(out, b'%', pairs.len().to_string().as_bytes());
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
        }
        Frame::Double(d) => line(out, b',', d.as_bytes()),
        Frame::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
        Frame::BigNumber(n) => line(out, b'(', n.as_bytes()),
        Frame::Verbatim { format, text } => {
            let mut data = format.as_bytes().to_vec();
            data.push(b':');
            data.extend_from_slice(&text.data);
            blob(out, b'=', &data);
        }
        Frame::Cut { .. } => unreachable!("the encoder writes whole frames"),
    }
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------------
// RESP2 types
// ---------------------------------------------------------------------------------------------------

#[test]
fn simple_string() {
    assert_eq!(reply(b"+OK\r\n"), simple("OK"));
    assert_eq!(reply(b"+\r\n"), simple(""));
    assert_eq!(
        reply(b"+with spaces: and $ symbols\r\n"),
        simple("with spaces: and $ symbols")
    );
}

#[test]
fn simple_error() {
    assert_eq!(
        reply(b"-ERR unknown command 'FOO'\r\n"),
        Frame::Error(Blob::full("ERR unknown command 'FOO'"))
    );
}

#[test]
fn integers_including_negative_and_extremes() {
    assert_eq!(reply(b":0\r\n"), int(0));
    assert_eq!(reply(b":1000\r\n"), int(1000));
    assert_eq!(reply(b":-42\r\n"), int(-42));
    assert_eq!(reply(b":9223372036854775807\r\n"), int(i64::MAX));
    assert_eq!(reply(b":-9223372036854775808\r\n"), int(i64::MIN));
}

#[test]
fn bulk_string() {
    assert_eq!(reply(b"$5\r\nhello\r\n"), bulk(b"hello"));
}

#[test]
fn bulk_string_is_binary_safe() {
    let value = [0x00, 0xff, b'\r', b'\n', b'$', b'3', b'\r', b'\n', 0x80];
    let mut data = b"$9\r\n".to_vec();
    data.extend_from_slice(&value);
    data.extend_from_slice(b"\r\n");
    assert_eq!(reply(&data), bulk(&value));
}

#[test]
fn empty_bulk_string() {
    assert_eq!(reply(b"$0\r\n\r\n"), bulk(b""));
}

#[test]
fn null_bulk_null_array_and_resp3_null() {
    assert_eq!(reply(b"$-1\r\n"), Frame::Null);
    assert_eq!(reply(b"*-1\r\n"), Frame::Null);
    assert_eq!(reply(b"_\r\n"), Frame::Null);
}

#[test]
fn arrays_flat_empty_and_nested() {
    assert_eq!(reply(b"*0\r\n"), Frame::Array(vec![]));
    assert_eq!(
        reply(b"*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n"),
        Frame::Array(vec![int(1), bulk(b"foo"), simple("bar")])
    );
    assert_eq!(
        reply(b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n"),
        Frame::Array(vec![
            Frame::Array(vec![int(1), int(2), int(3)]),
            Frame::Array(vec![simple("Hello"), Frame::Error(Blob::full("World"))]),
        ])
    );
    assert_eq!(
        reply(b"*3\r\n$1\r\na\r\n$-1\r\n*0\r\n"),
        Frame::Array(vec![bulk(b"a"), Frame::Null, Frame::Array(vec![])])
    );
    assert_eq!(
        reply(b"*1\r\n*1\r\n*1\r\n*0\r\n"),
        Frame::Array(vec![Frame::Array(vec![Frame::Array(vec![Frame::Array(
            vec![]
        )])])])
    );
}

// ---------------------------------------------------------------------------------------------------
// RESP3 types
// ---------------------------------------------------------------------------------------------------

#[test]
fn resp3_map() {
    assert_eq!(
        reply(b"%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n:2\r\n"),
        Frame::Map(vec![
            (simple("first"), int(1)),
            (simple("second"), Frame::Array(vec![int(2)])),
        ])
    );
    assert_eq!(reply(b"%0\r\n"), Frame::Map(vec![]));
}

#[test]
fn resp3_set() {
    assert_eq!(
        reply(b"~3\r\n+a\r\n:1\r\n#t\r\n"),
        Frame::Set(vec![simple("a"), int(1), Frame::Boolean(true)])
    );
    assert_eq!(reply(b"~0\r\n"), Frame::Set(vec![]));
}

#[test]
fn resp3_push() {
    assert_eq!(
        reply(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
        Frame::Push(vec![bulk(b"message"), bulk(b"ch"), bulk(b"hi")])
    );
}

#[test]
fn resp3_double_including_infinities_and_nan() {
    for text in ["1.5", "-0.25", "10", "1.23e-10", "inf", "-inf", "nan"] {
        let data = format!(",{text}\r\n");
        assert_eq!(reply(data.as_bytes()), Frame::Double(text.to_owned()));
    }
}

#[test]
fn resp3_boolean() {
    assert_eq!(reply(b"#t\r\n"), Frame::Boolean(true));
    assert_eq!(reply(b"#f\r\n"), Frame::Boolean(false));
}

#[test]
fn resp3_boolean_other_than_t_or_f_is_malformed() {
    assert_malformed(Role::Response, b"#x\r\n");
    assert_malformed(Role::Response, b"#\r\n");
    assert_malformed(Role::Response, b"#true\r\n");
}

#[test]
fn resp3_big_number() {
    assert_eq!(
        reply(b"(3492890328409238509324850943850943825024385\r\n"),
        Frame::BigNumber("3492890328409238509324850943850943825024385".to_owned())
    );
    assert_eq!(
        reply(b"(-123456789012345678901234567890\r\n"),
        Frame::BigNumber("-123456789012345678901234567890".to_owned())
    );
}

#[test]
fn resp3_blob_error() {
    assert_eq!(
        reply(b"!21\r\nSYNTAX invalid syntax\r\n"),
        Frame::Error(Blob::full("SYNTAX invalid syntax"))
    );
    assert_eq!(reply(b"!-1\r\n"), Frame::Null);
}

#[test]
fn resp3_verbatim_string_splits_format_and_text() {
    assert_eq!(
        reply(b"=15\r\ntxt:Some string\r\n"),
        Frame::Verbatim {
            format: "txt".to_owned(),
            text: Box::new(Blob::full("Some string")),
        }
    );
    assert_eq!(
        reply(b"=4\r\nmkd:\r\n"),
        Frame::Verbatim {
            format: "mkd".to_owned(),
            text: Box::new(Blob::full("")),
        }
    );
}

#[test]
fn resp3_verbatim_string_without_format_prefix_keeps_all_as_text() {
    assert_eq!(
        reply(b"=2\r\nab\r\n"),
        Frame::Verbatim {
            format: String::new(),
            text: Box::new(Blob::full("ab")),
        }
    );
}

#[test]
fn resp3_attribute_before_a_top_level_value_is_skipped() {
    // The example of the RESP3 specification; wire_bytes covers the attribute too.
    let data = b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n\
                 *2\r\n:2039123\r\n:9543892\r\n";
    assert_eq!(
        reply(data),
        Frame::Array(vec![int(2_039_123), int(9_543_892)])
    );
}

#[test]
fn resp3_attribute_inside_an_aggregate_does_not_take_a_slot() {
    assert_eq!(
        reply(b"*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n"),
        Frame::Array(vec![int(1), int(2)])
    );
    assert_eq!(
        reply(b"%1\r\n|1\r\n+a\r\n+b\r\n+key\r\n|0\r\n+value\r\n"),
        Frame::Map(vec![(simple("key"), simple("value"))])
    );
}

#[test]
fn resp3_empty_attribute_is_skipped() {
    assert_eq!(reply(b"|0\r\n:1\r\n"), int(1));
}

// ---------------------------------------------------------------------------------------------------
// Requests and inline commands
// ---------------------------------------------------------------------------------------------------

#[test]
fn request_array_of_bulk_strings() {
    assert_eq!(
        request(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"),
        command(&["SET", "k", "value"])
    );
}

#[test]
fn inline_command_becomes_an_array_of_bulk_strings() {
    assert_eq!(request(b"PING\r\n"), command(&["PING"]));
    assert_eq!(request(b"SET k v\r\n"), command(&["SET", "k", "v"]));
    assert_eq!(request(b"get  key\t \r\n"), command(&["get", "key"]));
}

#[test]
fn inline_command_may_end_with_a_bare_newline() {
    assert_eq!(request(b"EXISTS a b\n"), command(&["EXISTS", "a", "b"]));
}

#[test]
fn pipelined_inline_commands() {
    let frames = frames_of(decode_every_split(
        Role::Request,
        KEEP_ALL,
        b"PING\r\nINCR n\r\n*1\r\n$4\r\nQUIT\r\n",
    ));
    let got: Vec<(Frame, u64)> = frames
        .into_iter()
        .map(|d| (d.frame, d.wire_bytes))
        .collect();
    assert_eq!(
        got,
        [
            (command(&["PING"]), 6),
            (command(&["INCR", "n"]), 8),
            (command(&["QUIT"]), 14),
        ]
    );
}

#[test]
fn http_request_line_is_not_an_inline_command() {
    assert_malformed(Role::Request, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_malformed(Role::Request, b"POST /api HTTP/1.0\r\n");
}

#[test]
fn inline_command_must_start_with_a_word() {
    assert_malformed(Role::Request, b"123 abc\r\n");
    assert_malformed(Role::Request, b"\x16\x03\x01\x02\x00\x01\r\n");
}

#[test]
fn request_side_does_not_accept_reply_types_at_top_level() {
    assert_malformed(Role::Request, b"+OK\r\n");
    assert_malformed(Role::Request, b"$3\r\nGET\r\n");
    assert_malformed(Role::Request, b":1\r\n");
}

#[test]
fn request_side_skips_blank_lines_like_redis() {
    // Redis ignores an inline line with no words (a telnet user pressing Enter); so does the decoder,
    // without counting the blank line into the next frame.
    let frames = frames_of(decode_every_split(
        Role::Request,
        KEEP_ALL,
        b"\r\n  \r\n\nPING\r\n\r\n",
    ));
    let got: Vec<(Frame, u64)> = frames
        .into_iter()
        .map(|d| (d.frame, d.wire_bytes))
        .collect();
    assert_eq!(got, [(command(&["PING"]), 6)]);
    let mut dec = RespDecoder::new(Role::Request, KEEP_ALL, true);
    dec.feed(b"\r\n", TS, &mut Vec::new());
    assert!(dec.is_idle());
}

#[test]
fn reply_side_rejects_an_empty_line() {
    assert_malformed(Role::Response, b"\r\n");
}

#[test]
fn starts_frame_recognises_plausible_frame_starts() {
    assert!(starts_frame(Role::Request, b"*2\r\n$3\r\nGET"));
    assert!(starts_frame(Role::Request, b"*-1\r\n"));
    assert!(starts_frame(Role::Request, b"PING\r\n"));
    assert!(!starts_frame(
        Role::Request,
        b"GET / HTTP/1.1\r\nHost: x\r\n"
    ));
    assert!(!starts_frame(Role::Request, b"$3\r\nGET\r\n"));
    assert!(!starts_frame(Role::Request, b"*x"));
    assert!(!starts_frame(Role::Request, b"3\r\nfoo\r\n"));
    assert!(!starts_frame(Role::Request, b""));
    for tag in b"+-:$_,#(!=%~>|*" {
        let data = [*tag, b'1'];
        assert!(starts_frame(Role::Response, &data), "{}", char::from(*tag));
    }
    assert!(!starts_frame(Role::Response, b"\r\n+OK"));
    assert!(!starts_frame(Role::Response, b"12\r\n"));
    assert!(!starts_frame(Role::Response, b"OK\r\n"));
    assert!(!starts_frame(Role::Response, b""));
}

// ---------------------------------------------------------------------------------------------------
// Streams, splits and timing
// ---------------------------------------------------------------------------------------------------

/// One of every reply type, nested a little.
fn sample_replies() -> Vec<Frame> {
    vec![
        simple("OK"),
        Frame::Error(Blob::full("ERR no")),
        Frame::Error(Blob::full("multi\nline")),
        int(-7),
        bulk(b"value"),
        bulk(&[0, 255, 13, 10]),
        bulk(b""),
        Frame::Null,
        Frame::Array(vec![int(1), Frame::Array(vec![bulk(b"x"), Frame::Null])]),
        Frame::Map(vec![(bulk(b"k"), Frame::Set(vec![int(2), int(3)]))]),
        Frame::Push(vec![bulk(b"invalidate"), Frame::Array(vec![bulk(b"key")])]),
        Frame::Double("inf".to_owned()),
        Frame::Boolean(false),
        Frame::BigNumber("123456789012345678901234567890".to_owned()),
        Frame::Verbatim {
            format: "txt".to_owned(),
            text: Box::new(Blob::full("verbatim\r\ntext")),
        },
    ]
}

#[test]
fn pipelined_stream_of_many_reply_frames_decodes_at_every_split() {
    let sent: Vec<Frame> = sample_replies().into_iter().cycle().take(60).collect();
    let encodings: Vec<Vec<u8>> = sent.iter().map(encoded).collect();
    let stream = encodings.concat();
    let got = frames_of(decode_every_split(Role::Response, KEEP_ALL, &stream));
    let frames: Vec<&Frame> = got.iter().map(|d| &d.frame).collect();
    assert_eq!(frames, sent.iter().collect::<Vec<_>>());
    for (decoded, wire) in got.iter().zip(&encodings) {
        assert_eq!(decoded.wire_bytes, wire.len() as u64, "{:?}", decoded.frame);
    }
}

#[test]
fn pipelined_stream_of_many_requests_decodes_at_every_split() {
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for i in 0..40 {
        let key = format!("key:{i}");
        if i % 3 == 0 {
            stream.extend_from_slice(format!("INCR {key}\r\n").as_bytes());
            sent.push(command(&["INCR", &key]));
        } else {
            let frame = command(&["SET", &key, "v\r\nv"]);
            encode(&frame, &mut stream);
            sent.push(frame);
        }
    }
    let got = frames_of(decode_every_split(Role::Request, KEEP_ALL, &stream));
    let total: u64 = got.iter().map(|d| d.wire_bytes).sum();
    assert_eq!(total, stream.len() as u64);
    assert_eq!(got.into_iter().map(|d| d.frame).collect::<Vec<_>>(), sent);
}

#[test]
fn frame_times_come_from_the_slices_holding_its_first_and_last_bytes() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"+OK\r\n$5\r\nhel", 10, &mut out);
    dec.feed(b"lo\r\n:1", 20, &mut out);
    dec.feed(b"\r\n", 30, &mut out);
    let got: Vec<(Frame, u64, u64, u64)> = frames_of(out)
        .into_iter()
        .map(|d| (d.frame, d.wire_bytes, d.start_ns, d.end_ns))
        .collect();
    assert_eq!(
        got,
        [
            (simple("OK"), 5, 10, 10),
            (bulk(b"hello"), 11, 10, 20),
            (int(1), 4, 20, 30),
        ]
    );
}

#[test]
fn is_idle_only_between_frames() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    assert!(dec.is_idle());
    dec.feed(b"*2\r\n:1\r\n", TS, &mut out);
    assert!(!dec.is_idle());
    dec.feed(b":2\r\n", TS, &mut out);
    assert!(dec.is_idle());
    assert_eq!(frames_of(out).len(), 1);
    let out_of_sync = RespDecoder::new(Role::Response, KEEP_ALL, false);
    assert!(!out_of_sync.is_idle());
    assert!(!out_of_sync.in_sync());
}

// ---------------------------------------------------------------------------------------------------
// Truncation by keep_bytes
// ---------------------------------------------------------------------------------------------------

#[test]
fn keep_bytes_keeps_a_prefix_and_the_true_length() {
    let data = b"$10\r\n0123456789\r\n+OK\r\n";
    let got = frames_of(decode_every_split(Role::Response, 4, data));
    assert_eq!(got.len(), 2);
    let truncated = Blob::new(b"0123"[..].into(), 10);
    assert!(truncated.is_truncated());
    assert_eq!(got[0].frame, Frame::Bulk(truncated));
    assert!(got[0].frame.is_truncated());
    assert_eq!(got[0].wire_bytes, 17);
    assert_eq!(got[1].frame, simple("OK"));
}

#[test]
fn keep_bytes_zero_keeps_only_the_length() {
    let got = frames_of(decode_every_split(Role::Response, 0, b"$3\r\nabc\r\n"));
    assert_eq!(got[0].frame, Frame::Bulk(Blob::new(BlobData::new(), 3)));
}

#[test]
fn value_of_exactly_keep_bytes_is_not_truncated() {
    let got = frames_of(decode_every_split(Role::Response, 3, b"$3\r\nabc\r\n"));
    assert_eq!(got[0].frame, bulk(b"abc"));
    assert!(!got[0].frame.is_truncated());
}

#[test]
fn truncation_inside_aggregates_is_reported_by_the_outer_frame() {
    // The frame's budget: three elements kept (3 × ELEMENT_COST) and `k`, leaving 2 bytes for the error.
    let keep = 3 * ELEMENT_COST + 1 + 2;
    let got = frames_of(decode_every_split(
        Role::Response,
        keep,
        b"*2\r\n:1\r\n%1\r\n+k\r\n!5\r\nERROR\r\n",
    ));
    let error = Frame::Error(Blob::new(b"ER"[..].into(), 5));
    assert_eq!(
        got[0].frame,
        Frame::Array(vec![int(1), Frame::Map(vec![(simple("k"), error)])])
    );
    assert!(got[0].frame.is_truncated());
}

#[test]
fn truncated_verbatim_string_keeps_format_and_text_length() {
    let got = frames_of(decode_every_split(
        Role::Response,
        6,
        b"=10\r\ntxt:abcdef\r\n",
    ));
    assert_eq!(
        got[0].frame,
        Frame::Verbatim {
            format: "txt".to_owned(),
            text: Box::new(Blob::new(b"ab"[..].into(), 6)),
        }
    );
    assert!(got[0].frame.is_truncated());
}

// ---------------------------------------------------------------------------------------------------
// Gaps
// ---------------------------------------------------------------------------------------------------

#[test]
fn gap_inside_a_bulk_payload_is_absorbed_keeping_the_bytes_before_it() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"$10\r\n0123", TS, &mut out);
    dec.gap(3, &mut out);
    dec.feed(b"789\r\n+OK\r\n", TS, &mut out);
    assert!(dec.in_sync());
    let got = frames_of(out);
    // `data` stays a prefix of the value: the bytes after the hole are not glued onto it.
    assert_eq!(got[0].frame, Frame::Bulk(Blob::new(b"0123"[..].into(), 10)));
    assert!(got[0].frame.is_truncated());
    assert_eq!(got[0].wire_bytes, 17);
    assert_eq!(got[1].frame, simple("OK"));
    assert_eq!(got[1].wire_bytes, 5);
}

#[test]
fn gap_covering_the_end_of_a_payload_and_its_crlf_emits_the_value_at_once() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"$5\r\nab", TS, &mut out);
    dec.gap(5, &mut out);
    assert_eq!(
        frames_of(std::mem::take(&mut out))
            .into_iter()
            .map(|d| (d.frame, d.wire_bytes))
            .collect::<Vec<_>>(),
        [(Frame::Bulk(Blob::new(b"ab"[..].into(), 5)), 11)]
    );
    assert!(dec.is_idle());
    dec.feed(b":1\r\n", TS, &mut out);
    assert_eq!(frames_of(out)[0].frame, int(1));
}

#[test]
fn gap_of_only_the_crlf_after_a_payload_keeps_the_value_whole() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"$2\r\nab\r", TS, &mut out);
    dec.gap(1, &mut out);
    let got = frames_of(out);
    assert_eq!(got[0].frame, bulk(b"ab"));
    assert_eq!(got[0].wire_bytes, 8);
}

#[test]
fn gap_inside_a_nested_bulk_keeps_the_enclosing_aggregate() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"*2\r\n$4\r\nab", TS, &mut out);
    dec.gap(2, &mut out);
    dec.feed(b"\r\n:1\r\n", TS, &mut out);
    let got = frames_of(out);
    assert_eq!(
        got[0].frame,
        Frame::Array(vec![Frame::Bulk(Blob::new(b"ab"[..].into(), 4)), int(1)])
    );
    assert!(got[0].frame.is_truncated());
    assert_eq!(got[0].wire_bytes, 18);
}

#[test]
fn gap_after_keep_bytes_truncation_keeps_the_prefix() {
    let mut dec = RespDecoder::new(Role::Response, 2, true);
    let mut out = Vec::new();
    dec.feed(b"$6\r\nabc", TS, &mut out);
    dec.gap(1, &mut out);
    dec.feed(b"ef\r\n", TS, &mut out);
    assert_eq!(
        frames_of(out)[0].frame,
        Frame::Bulk(Blob::new(b"ab"[..].into(), 6))
    );
}

#[test]
fn gap_longer_than_the_rest_of_a_payload_loses_sync() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"$5\r\nab", TS, &mut out);
    dec.gap(6, &mut out);
    assert_eq!(out, [Output::LostSync(SyncLoss::Gap)]);
    assert!(!dec.in_sync());
}

#[test]
fn gap_outside_a_payload_loses_sync() {
    // Between frames, inside a header line, and between the elements of an aggregate.
    let cases: [&[u8]; 5] = [b"", b"+OK\r\n", b"$1", b"*2\r\n:1\r\n", b"$3\r\nabc\r\n"];
    for before in cases {
        let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
        let mut out = Vec::new();
        dec.feed(before, TS, &mut out);
        out.retain(|o| !matches!(o, Output::Frame(_)));
        dec.gap(1, &mut out);
        assert_eq!(
            out,
            [Output::LostSync(SyncLoss::Gap)],
            "{:?}",
            String::from_utf8_lossy(before)
        );
        assert!(!dec.in_sync());
        assert!(!dec.is_idle());
    }
}

#[test]
fn empty_gap_changes_nothing() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"+O", TS, &mut out);
    dec.gap(0, &mut out);
    dec.feed(b"K\r\n", TS, &mut out);
    assert_eq!(frames_of(out)[0].frame, simple("OK"));
}

#[test]
fn lost_sync_ignores_bytes_until_resync_at_a_frame_start() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"*3\r\n:1\r\n", TS, &mut out);
    dec.gap(4, &mut out);
    assert_eq!(out, [Output::LostSync(SyncLoss::Gap)]);
    out.clear();

    // Whole frames are ignored while out of sync, and further gaps report nothing.
    dec.feed(b":2\r\n+OK\r\n", TS, &mut out);
    dec.gap(10, &mut out);
    assert!(out.is_empty());

    // Bytes in the middle of a frame do not regain sync.
    assert!(!dec.resync(b"\r\n+OK\r\n"));
    assert!(!dec.resync(b"12\r\n"));
    assert!(!dec.resync(b""));
    assert!(dec.resync(b"+OK\r\n"));
    assert!(dec.is_idle());

    // The dropped array leaves nothing behind: the next frame stands alone.
    dec.feed(b"+OK\r\n", 9, &mut out);
    assert_eq!(
        out,
        [Output::Frame(Decoded {
            frame: simple("OK"),
            truncated: false,
            wire_bytes: 5,
            start_ns: 9,
            end_ns: 9,
        })]
    );
    // Resync while in sync is a no-op that reports success.
    assert!(dec.resync(b"garbage"));
}

#[test]
fn decoder_created_out_of_sync_waits_for_resync() {
    let mut dec = RespDecoder::new(Role::Request, KEEP_ALL, false);
    let mut out = Vec::new();
    dec.feed(b"lo\r\n*1\r\n$4\r\nPING\r\n", TS, &mut out);
    assert!(out.is_empty());
    assert!(dec.resync(b"*1\r\n$4\r\nPING\r\n"));
    dec.feed(b"*1\r\n$4\r\nPING\r\n", TS, &mut out);
    assert_eq!(frames_of(out)[0].frame, command(&["PING"]));
}

#[test]
fn force_out_of_sync_drops_the_partial_frame() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"*2\r\n:1\r\n", TS, &mut out);
    dec.force_out_of_sync();
    assert!(!dec.in_sync());
    dec.feed(b":2\r\n", TS, &mut out);
    assert!(out.is_empty(), "forcing reports nothing: {out:?}");
    assert!(dec.resync(b":5\r\n"));
    dec.feed(b":5\r\n", TS, &mut out);
    let got = frames_of(out);
    assert_eq!((got[0].frame.clone(), got[0].wire_bytes), (int(5), 4));
}

// ---------------------------------------------------------------------------------------------------
// Malformed input and limits
// ---------------------------------------------------------------------------------------------------

#[test]
fn malformed_headers_lose_sync() {
    let cases: [&[u8]; 12] = [
        b"?x\r\n",
        b":12a\r\n",
        b":\r\n",
        b"$abc\r\n",
        b"$\r\n",
        b"*x\r\n",
        b"%1.5\r\n",
        b",\xff\r\n",
        b"(\xfe\r\n",
        b"OK\r\n",
        b" +OK\r\n",
        b":9223372036854775808\r\n",
    ];
    for data in cases {
        assert_malformed(Role::Response, data);
    }
}

#[test]
fn malformed_frame_after_good_ones_keeps_them_and_ignores_the_rest() {
    let out = decode_every_split(Role::Response, KEEP_ALL, b"+OK\r\n:1\r\n?\r\n+OK\r\n");
    assert_eq!(out.len(), 3);
    assert!(matches!(&out[0], Output::Frame(d) if d.frame == simple("OK")));
    assert!(matches!(&out[1], Output::Frame(d) if d.frame == int(1)));
    assert_eq!(out[2], Output::LostSync(SyncLoss::Malformed));
}

#[test]
fn bulk_whose_length_lies_is_caught_at_the_next_header() {
    // `$2` then `abc`: the payload is `ab`, `c\r` is taken as its CRLF, and the lone `\n` is an empty
    // header line.
    let out = decode_every_split(Role::Response, KEEP_ALL, b"$2\r\nabc\r\n");
    assert!(matches!(&out[0], Output::Frame(d) if d.frame == bulk(b"ab")));
    assert_eq!(out[1..], [Output::LostSync(SyncLoss::Malformed)]);
}

#[test]
fn line_longer_than_max_line_is_malformed_without_waiting_for_its_end() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"+", TS, &mut out);
    let chunk = vec![b'a'; 4096];
    let mut fed = 1;
    while fed <= MAX_LINE + 1 && out.is_empty() {
        dec.feed(&chunk, TS, &mut out);
        fed += chunk.len();
    }
    assert_eq!(out, [Output::LostSync(SyncLoss::Malformed)]);
    assert!(fed <= MAX_LINE + 1 + chunk.len());
}

#[test]
fn line_of_exactly_max_line_bytes_is_accepted_however_its_crlf_is_split() {
    let mut data = vec![b'+'];
    data.resize(MAX_LINE, b'a');
    data.extend_from_slice(b"\r\n");
    let expected = Frame::Simple(Blob::full(vec![b'a'; MAX_LINE - 1]));
    for split in [
        data.len(),
        data.len() - 1,
        data.len() - 2,
        data.len() / 2,
        1,
    ] {
        let (head, tail) = data.split_at(split);
        let out = decode_chunks(Role::Response, KEEP_ALL, &[head, tail]);
        assert_eq!(frames_of(out)[0].frame, expected, "split at {split}");
    }
    let pieces: Vec<&[u8]> = data.chunks(1000).collect();
    let out = decode_chunks(Role::Response, KEEP_ALL, &pieces);
    assert_eq!(frames_of(out)[0].frame, expected, "in chunks of 1000");
}

#[test]
fn line_one_byte_over_max_line_is_malformed_however_split() {
    let mut data = vec![b'+'];
    data.resize(MAX_LINE + 1, b'a');
    data.extend_from_slice(b"\r\n");
    for split in [data.len(), data.len() - 1, data.len() - 2, data.len() / 2] {
        let (head, tail) = data.split_at(split);
        assert_eq!(
            decode_chunks(Role::Response, KEEP_ALL, &[head, tail]),
            [Output::LostSync(SyncLoss::Malformed)],
            "split at {split}"
        );
    }
}

#[test]
fn inline_command_longer_than_max_line_is_malformed() {
    let mut data = b"SET k ".to_vec();
    data.resize(MAX_LINE + 10, b'v');
    data.extend_from_slice(b"\r\n");
    assert_eq!(
        decode_chunks(Role::Request, KEEP_ALL, &[&data]),
        [Output::LostSync(SyncLoss::Malformed)]
    );
}

#[test]
fn aggregate_longer_than_max_elements_is_malformed() {
    for tag in ['*', '%', '~', '>', '|'] {
        let data = format!("{tag}{}\r\n", MAX_ELEMENTS + 1);
        assert_malformed(Role::Response, data.as_bytes());
    }
    assert_malformed(Role::Response, b"*9223372036854775807\r\n");
    assert_malformed(Role::Request, b"*9223372036854775807\r\n");
}

#[test]
fn aggregate_of_max_elements_is_believed_and_awaited() {
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(
        format!("%{MAX_ELEMENTS}\r\n:1\r\n").as_bytes(),
        TS,
        &mut out,
    );
    assert!(out.is_empty());
    assert!(dec.in_sync() && !dec.is_idle());
}

#[test]
fn nesting_up_to_max_depth_is_accepted_and_deeper_is_malformed() {
    let mut deep = b"*1\r\n".repeat(MAX_DEPTH);
    deep.extend_from_slice(b":1\r\n");
    let out = decode_chunks(Role::Response, KEEP_ALL, &[&deep]);
    let mut frame = &frames_of(out)[0].frame;
    for _ in 0..MAX_DEPTH {
        frame = &frame.elements().expect("an array")[0];
    }
    assert_eq!(*frame, int(1));

    let mut too_deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
    too_deep.extend_from_slice(b":1\r\n");
    assert_malformed(Role::Response, &too_deep);
}

#[test]
fn huge_lengths_do_not_panic_or_allocate() {
    // A bulk claiming i64::MAX bytes is awaited; a gap larger than it can hold loses sync.
    let mut dec = RespDecoder::new(Role::Response, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(b"$9223372036854775807\r\nabc", TS, &mut out);
    assert!(out.is_empty() && dec.in_sync());
    dec.gap(1 << 62, &mut out);
    assert!(out.is_empty() && dec.in_sync());
    dec.gap(u64::MAX, &mut out);
    assert_eq!(out, [Output::LostSync(SyncLoss::Gap)]);

    // Negative lengths of any size are nulls.
    assert_eq!(reply(b"$-9223372036854775808\r\n"), Frame::Null);
    assert_eq!(reply(b"*-9223372036854775808\r\n"), Frame::Null);
    assert_eq!(reply(b"$-2\r\n"), Frame::Null);
    // Beyond i64.
    assert_malformed(Role::Response, b"$99999999999999999999\r\n");
}

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

/// Bytes that may sit on a simple line: anything but CR and LF.
fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(
        any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    )
}

fn leaf_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_bytes().prop_map(|b| Frame::Simple(Blob::full(b))),
        // Errors with a newline are encoded as RESP3 blob errors.
        vec(any::<u8>(), 0..12).prop_map(|b| Frame::Error(Blob::full(b))),
        any::<i64>().prop_map(Frame::Integer),
        vec(any::<u8>(), 0..40).prop_map(|b| Frame::Bulk(Blob::full(b))),
        Just(Frame::Null),
        prop_oneof![
            any::<f64>().prop_map(|d| d.to_string()),
            Just("inf".to_owned()),
            Just("-inf".to_owned()),
            Just("nan".to_owned()),
        ]
        .prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[1-9][0-9]{0,40}".prop_map(Frame::BigNumber),
        ("[a-z]{3}", vec(any::<u8>(), 0..20)).prop_map(|(format, text)| Frame::Verbatim {
            format,
            text: Box::new(Blob::full(text)),
        }),
    ]
}

fn any_frame() -> impl Strategy<Value = Frame> {
    leaf_frame().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Frame::Array),
            vec((inner.clone(), inner.clone()), 0..3).prop_map(Frame::Map),
            vec(inner.clone(), 0..5).prop_map(Frame::Set),
            vec(inner, 0..5).prop_map(Frame::Push),
        ]
    })
}

/// Bytes drawn mostly from RESP's alphabet, so that garbage gets deep into the decoder.
fn resp_ish_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"*$+-:_,#(!=%~>|\r\n\r\n0123456789-tf ab".to_vec()),
        1 => any::<u8>(),
    ]
}

/// Cuts `data` at the given points (any order, duplicates allowed).
fn cut<'a>(data: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = points.iter().map(|p| p.index(data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Feeds pieces like the session does (resync at each piece start, then feed), with gaps after some
/// pieces, and checks what must hold of any output.
fn feed_garbage(role: Role, keep: usize, data: &[u8], cuts: &[Index], gaps: &[(Index, u64)]) {
    let pieces = cut(data, cuts);
    let mut dec = RespDecoder::new(role, keep, true);
    let mut out = Vec::new();
    let mut gap_total = 0;
    for (i, piece) in pieces.iter().enumerate() {
        let ts = i as u64;
        dec.resync(piece);
        dec.feed(piece, ts, &mut out);
        for (at, len) in gaps {
            if at.index(pieces.len()) == i {
                dec.gap(*len, &mut out);
                gap_total += len;
            }
        }
    }
    let mut wire = 0;
    for o in &out {
        if let Output::Frame(d) = o {
            assert!(d.wire_bytes > 0);
            assert!(d.start_ns <= d.end_ns);
            wire += d.wire_bytes;
        }
    }
    assert!(wire <= data.len() as u64 + gap_total);
}

proptest! {
    #[test]
    fn arbitrary_bytes_in_arbitrary_splits_never_panic(
        data in vec(any::<u8>(), 0..512),
        cuts in vec(any::<Index>(), 0..16),
        gaps in vec((any::<Index>(), 0u64..32), 0..3),
        request_side in any::<bool>(),
        keep in 0usize..16,
    ) {
        let role = if request_side { Role::Request } else { Role::Response };
        feed_garbage(role, keep, &data, &cuts, &gaps);
    }

    #[test]
    fn resp_like_garbage_in_arbitrary_splits_never_panics(
        data in vec(resp_ish_byte(), 0..512),
        cuts in vec(any::<Index>(), 0..16),
        gaps in vec((any::<Index>(), 0u64..32), 0..3),
        request_side in any::<bool>(),
        keep in 0usize..16,
    ) {
        let role = if request_side { Role::Request } else { Role::Response };
        feed_garbage(role, keep, &data, &cuts, &gaps);
    }

    #[test]
    fn valid_reply_frames_round_trip_regardless_of_split_points(
        sent in vec(any_frame(), 1..8),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        let encodings: Vec<Vec<u8>> = sent.iter().map(encoded).collect();
        let stream = encodings.concat();
        let got = frames_of(decode_chunks(Role::Response, KEEP_ALL, &cut(&stream, &cuts)));
        prop_assert_eq!(got.len(), sent.len());
        for ((decoded, frame), wire) in got.iter().zip(&sent).zip(&encodings) {
            prop_assert_eq!(&decoded.frame, frame);
            prop_assert_eq!(decoded.wire_bytes, wire.len() as u64);
        }
    }

    #[test]
    fn valid_requests_round_trip_regardless_of_split_points(
        commands in vec(vec(vec(any::<u8>(), 0..16), 1..5), 1..8),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        let sent: Vec<Frame> = commands
            .into_iter()
            .map(|words| Frame::Array(words.into_iter().map(|w| Frame::Bulk(Blob::full(w))).collect()))
            .collect();
        let stream: Vec<u8> = sent.iter().flat_map(encoded).collect();
        let got = frames_of(decode_chunks(Role::Request, KEEP_ALL, &cut(&stream, &cuts)));
        prop_assert_eq!(got.into_iter().map(|d| d.frame).collect::<Vec<_>>(), sent);
    }
}

// ---------------------------------------------------------------------------------------------------
// Bounded by what is kept, whatever is sent
// ---------------------------------------------------------------------------------------------------

/// `n` nulls in one RESP3 array.
fn nulls(n: usize) -> Vec<u8> {
    let mut out = format!("*{n}\r\n").into_bytes();
    for _ in 0..n {
        out.extend_from_slice(b"_\r\n");
    }
    out
}

#[test]
fn a_huge_aggregate_keeps_its_first_elements_and_its_true_count() {
    let keep = 1024;
    let data = nulls(100_000);
    let mut dec = RespDecoder::new(Role::Response, keep, true);
    let mut out = Vec::new();
    for chunk in data.chunks(4096) {
        dec.feed(chunk, 1, &mut out);
    }
    let frames = frames_of(out);
    assert_eq!(frames.len(), 1);
    let Frame::Cut { kept, len } = &frames[0].frame else {
        panic!("cut: {:?}", frames[0].frame)
    };
    assert_eq!(*len, 100_000);
    let kept = kept.elements().expect("an array").len();
    assert_eq!(kept, keep / ELEMENT_COST, "elements kept within the budget");
    assert_eq!(
        frames[0].wire_bytes,
        data.len() as u64,
        "every byte accounted for"
    );
    assert!(frames[0].frame.is_truncated());
}

#[test]
fn values_inside_an_aggregate_share_the_budget_and_are_cut_not_lost() {
    // A pub/sub message with a payload larger than the capture size: the payload is cut, the array
    // stays whole, so it is still recognised as a message.
    let payload = vec![b'p'; 4000];
    let message = Frame::Array(vec![bulk(b"message"), bulk(b"news"), bulk(&payload)]);
    let got = frames_of(decode_every_split(Role::Response, 1024, &encoded(&message)));
    let Frame::Array(items) = &got[0].frame else {
        panic!("an array: {:?}", got[0].frame)
    };
    assert_eq!(items.len(), 3);
    let Frame::Bulk(cut) = &items[2] else {
        panic!("a bulk")
    };
    assert_eq!(cut.len(), 4000);
    assert_eq!(
        cut.data.len(),
        1024 - 2 * ELEMENT_COST - "message".len() - "news".len()
    );
}

#[test]
fn a_cut_map_keeps_whole_pairs() {
    let pairs: Vec<(Frame, Frame)> = (0..1000)
        .map(|i| (bulk(format!("field{i}").as_bytes()), int(i)))
        .collect();
    let data = encoded(&Frame::Map(pairs.clone()));
    let (head, tail) = data.split_at(data.len() / 3);
    let got = frames_of(decode_chunks(Role::Response, 512, &[head, tail]));
    let Frame::Cut { kept, len } = &got[0].frame else {
        panic!("cut")
    };
    assert_eq!(*len, 1000);
    let Frame::Map(kept) = &**kept else {
        panic!("a map")
    };
    assert!(!kept.is_empty() && kept.len() < 1000);
    assert_eq!(kept[..], pairs[..kept.len()]);
}

#[test]
fn a_command_with_more_arguments_than_kept_is_cut_with_its_count() {
    let words: Vec<String> = (0..5000).map(|i| format!("member{i}")).collect();
    let mut all: Vec<&str> = vec!["SADD", "set"];
    all.extend(words.iter().map(String::as_str));
    let got = frames_of(decode_chunks(
        Role::Request,
        2048,
        &[&encoded(&command(&all))],
    ));
    let Frame::Cut { kept, len } = &got[0].frame else {
        panic!("cut")
    };
    assert_eq!(*len, 5002);
    assert!(kept
        .elements()
        .is_some_and(|e| e.len() > 2 && e.len() < 5002));
}

// ---------------------------------------------------------------------------------------------------
// The fast path for whole frames (`RespDecoder::whole_frame`): `decode_every_split` decodes each input
// in one slice (fast path) and byte by byte (general path) and asserts the two agree.
// ---------------------------------------------------------------------------------------------------

#[test]
fn a_command_at_every_budget_around_its_size_decodes_as_the_general_path_does() {
    let set = encoded(&command(&["SET", "key:000000001234", "some value"]));
    // The last value is kept whole once the budget holds it after the two elements before it (its
    // own element cost is charged after it is kept).
    let whole = 2 * ELEMENT_COST + "SET".len() + "key:000000001234".len() + "some value".len();
    for keep in whole - 12..whole + 20 {
        let got = frames_of(decode_every_split(Role::Request, keep, &set));
        assert_eq!(got.len(), 1);
        let cut = matches!(got[0].frame, Frame::Cut { .. }) || got[0].frame.is_truncated();
        assert_eq!(cut, keep < whole, "keep {keep} of {whole}");
        assert_eq!(got[0].wire_bytes, set.len() as u64);
    }
}

#[test]
fn a_bulk_reply_at_every_budget_around_its_size_decodes_as_the_general_path_does() {
    let reply = encoded(&bulk(b"0123456789abcdefghijklmnopqrstuvwxyz"));
    for keep in 30..40 {
        let got = frames_of(decode_every_split(Role::Response, keep, &reply));
        let Frame::Bulk(value) = &got[0].frame else {
            panic!("a bulk: {:?}", got[0].frame)
        };
        assert_eq!(value.len(), 36);
        assert_eq!(value.data.len(), keep.min(36), "keep {keep}");
    }
}

#[test]
fn pipelined_commands_in_one_slice_are_each_a_frame() {
    let mut data = Vec::new();
    for i in 0..16 {
        encode(&command(&["GET", &format!("key:{i}")]), &mut data);
    }
    // The last one arrives only in part: it waits for the rest on the general path.
    let last = encoded(&command(&["GET", "key:last"]));
    data.extend_from_slice(&last[..last.len() - 3]);
    let mut dec = RespDecoder::new(Role::Request, KEEP_ALL, true);
    let mut out = Vec::new();
    dec.feed(&data, TS, &mut out);
    assert_eq!(out.len(), 16);
    dec.feed(&last[last.len() - 3..], TS + 1, &mut out);
    let frames = frames_of(out);
    assert_eq!(frames[15].frame, command(&["GET", "key:15"]));
    assert_eq!(frames[16].frame, command(&["GET", "key:last"]));
    assert_eq!((frames[16].start_ns, frames[16].end_ns), (TS, TS + 1));
    assert_eq!(frames[16].wire_bytes, last.len() as u64);
}

#[test]
fn headers_the_fast_path_does_not_take_still_decode() {
    // A sign, a leading zero, a bare `\n`, a nested array and a null element: each goes, whole, the
    // general way (or, for the leading zero, both ways alike).
    for data in [
        &b"*2\r\n$+3\r\nGET\r\n$1\r\nk\r\n"[..],
        b"*2\r\n$03\r\nGET\r\n$1\r\nk\r\n",
        b"*2\n$3\nGET\r\n$1\nk\r\n",
        b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n",
        b"*2\r\n$3\r\nGET\r\n$-1\r\n",
        // The general path does not check a value's terminator (a wrong one shows in the next line).
        b"*1\r\n$3\r\nGETxx",
    ] {
        let got = frames_of(decode_every_split(Role::Request, KEEP_ALL, data));
        assert_eq!(got.len(), 1, "{:?}", String::from_utf8_lossy(data));
    }
}

#[test]
fn simple_replies_decode_in_one_slice_as_the_general_path_does() {
    // `+OK`, an empty one, one ending in a bare `\n`, one with a `\r` inside, then a bulk and an error
    // that follow in the same slice.
    let data = b"+OK\r\n+\r\n+PONG\n+a\rb\r\n$3\r\nabc\r\n-ERR no\r\n";
    let got = frames_of(decode_every_split(Role::Response, KEEP_ALL, data));
    let frames: Vec<&Frame> = got.iter().map(|d| &d.frame).collect();
    assert_eq!(
        frames,
        [
            &Frame::Simple(Blob::full("OK")),
            &Frame::Simple(Blob::full("")),
            &Frame::Simple(Blob::full("PONG")),
            &Frame::Simple(Blob::full("a\rb")),
            &Frame::Bulk(Blob::full("abc")),
            &Frame::Error(Blob::full("ERR no")),
        ]
    );
    let bytes: Vec<u64> = got.iter().map(|d| d.wire_bytes).collect();
    assert_eq!(bytes, [5, 3, 6, 6, 9, 9]);
}

#[test]
fn a_simple_reply_longer_than_a_line_may_be_loses_sync_on_both_paths() {
    let mut data = b"+".to_vec();
    data.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
    data.extend_from_slice(b"\r\n");
    let out = decode_chunks(Role::Response, KEEP_ALL, &[&data]);
    assert!(matches!(out[..], [Output::LostSync(_)]), "{out:?}");
}

#[test]
fn a_recycled_element_vector_carries_the_next_request_and_an_oversized_one_is_let_go() {
    // A capacity no request here would be given fresh tells the recycled vector apart (an address
    // would not: the allocator may hand a freed block straight back).
    const MARKED: usize = 40;
    let mut dec = RespDecoder::new(Role::Request, KEEP_ALL, true);
    let mut out = Vec::new();
    let mut next_items = |dec: &mut RespDecoder, data: &[u8]| {
        out.clear();
        dec.feed(data, TS, &mut out);
        match out.pop() {
            Some(Output::Frame(Decoded {
                frame: Frame::Array(items),
                ..
            })) => items,
            other => panic!("one array frame, got {other:?}"),
        }
    };
    dec.recycle(Vec::with_capacity(MARKED));
    let first = next_items(&mut dec, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(
        first.capacity(),
        MARKED,
        "the recycled vector was not reused"
    );
    assert_eq!(first.len(), 3);
    dec.recycle(first);
    let second = next_items(&mut dec, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_eq!(
        second.capacity(),
        MARKED,
        "the vector was not handed back again"
    );
    assert_eq!(
        second.len(),
        2,
        "elements of the last request were left in it"
    );
    dec.recycle(second);
    // A request too long for the one-pass path leaves the spare where it was.
    let mut long = b"*65\r\n".to_vec();
    for _ in 0..65 {
        long.extend_from_slice(b"$1\r\nx\r\n");
    }
    let long_items = next_items(&mut dec, &long);
    assert_eq!(long_items.len(), 65);
    dec.recycle(long_items);
    let third = next_items(&mut dec, b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(
        third.capacity(),
        MARKED,
        "a vector of 65 elements replaced the spare"
    );
}

#[test]
fn a_pipelined_read_takes_a_spare_vector_for_each_request_while_the_spares_stay_bounded() {
    // As in the test above, a capacity no fresh vector would have marks the recycled ones.
    const MARKED: usize = 8;
    let mut dec = RespDecoder::new(Role::Request, KEEP_ALL, true);
    for _ in 0..10 {
        dec.recycle(Vec::with_capacity(MARKED));
    }
    let read = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".repeat(10);
    let mut out = Vec::new();
    dec.feed(&read, TS, &mut out);
    let capacities: Vec<usize> = out
        .iter()
        .map(|output| match output {
            Output::Frame(Decoded {
                frame: Frame::Array(items),
                ..
            }) => items.capacity(),
            other => panic!("an array frame, got {other:?}"),
        })
        .collect();
    let recycled = capacities.iter().filter(|c| **c == MARKED).count();
    assert_eq!(
        recycled,
        SPARE_ELEMENTS / MARKED,
        "as many requests reuse a vector as the spares have room for: {capacities:?}"
    );
    assert_eq!(capacities.len(), 10, "every request decoded");
}
