//! Tests of request/reply pairing: timing, pipelining, transactions, pub/sub and pushes, errors,
//! connection close, loss and recovery of sync, and the key positions of commands.

use super::*;
use crate::protocol::plugin::Chunk;
use crate::protocol::{plugin::Payload as _, redis::view};

const KEEP_ALL: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/// Feeds one syscall's bytes (so sync may be regained at their start) and returns what was paired.
fn send(session: &mut RedisSession, flow: Flow, data: &[u8], ts: u64) -> Vec<Paired> {
    send_part(session, flow, data, ts, true)
}

/// Feeds bytes that may or may not begin a syscall's bytes.
fn send_part(
    session: &mut RedisSession,
    flow: Flow,
    data: &[u8],
    ts: u64,
    call_start: bool,
) -> Vec<Paired> {
    let mut out = Vec::new();
    session.on_data(Chunk::new(flow, data, ts, call_start), &mut out);
    out
}

fn gap(session: &mut RedisSession, flow: Flow, len: u64) -> Vec<Paired> {
    let mut out = Vec::new();
    session.on_gap(flow, len, &mut out);
    out
}

fn close(session: &mut RedisSession) -> Vec<Paired> {
    let mut out = Vec::new();
    session.on_close(&mut out);
    out
}

/// A command as a client library sends it.
fn cmd(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    out
}

/// A bulk-string reply.
fn bulk_reply(value: &str) -> Vec<u8> {
    format!("${}\r\n{value}\r\n", value.len()).into_bytes()
}

/// A (un)subscribe confirmation or message: `tag` is `*` (RESP2) or `>` (RESP3 push).
fn pubsub(tag: char, kind: &str, channel: &str, last: &PubSubLast) -> Vec<u8> {
    let last = match last {
        PubSubLast::Count(n) => format!(":{n}\r\n"),
        PubSubLast::Payload(p) => format!("${}\r\n{p}\r\n", p.len()),
    };
    format!(
        "{tag}3\r\n${}\r\n{kind}\r\n${}\r\n{channel}\r\n{last}",
        kind.len(),
        channel.len()
    )
    .into_bytes()
}

/// The third element of a pub/sub frame.
enum PubSubLast<'a> {
    Count(i64),
    Payload(&'a str),
}

fn confirmation(kind: &str, channel: &str, count: i64) -> Vec<u8> {
    pubsub('*', kind, channel, &PubSubLast::Count(count))
}

fn message(channel: &str, payload: &str) -> Vec<u8> {
    pubsub('*', "message", channel, &PubSubLast::Payload(payload))
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Blob::full(s))
}

fn confirmation_frame(kind: &str, channel: &str, count: i64) -> Frame {
    Frame::Array(vec![bulk(kind), bulk(channel), Frame::Integer(count)])
}

fn args_of(p: &Paired) -> Vec<&[u8]> {
    p.exchange.args.iter().map(|b| b.data.as_slice()).collect()
}

fn exchange(command: &str, args: &[&str]) -> RedisExchange {
    RedisExchange {
        kind: ExchangeKind::Command,
        command: command.into(),
        args: args.iter().map(|a| Blob::full(*a)).collect(),
        reply: None,
    }
}

fn keys_of(x: &RedisExchange) -> Vec<&[u8]> {
    x.keys().into_iter().map(|b| b.data.as_slice()).collect()
}

// ---------------------------------------------------------------------------------------------------
// Pairing
// ---------------------------------------------------------------------------------------------------

#[test]
fn request_and_reply_pair_with_request_start_and_reply_end() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let request = cmd(&["GET", "user:1"]);
    let (req_a, req_b) = request.split_at(5);
    assert!(send(&mut s, Flow::Request, req_a, 100).is_empty());
    assert!(send_part(&mut s, Flow::Request, req_b, 110, false).is_empty());
    let reply = bulk_reply("alice");
    let (rsp_a, rsp_b) = reply.split_at(3);
    assert!(send(&mut s, Flow::Response, rsp_a, 150).is_empty());
    let out = send_part(&mut s, Flow::Response, rsp_b, 170, false);
    assert_eq!(
        out,
        [Paired {
            exchange: RedisExchange {
                kind: ExchangeKind::Command,
                command: "GET".into(),
                args: vec![Blob::full("user:1")].into(),
                reply: Some(bulk("alice")),
            },
            start_ns: 100,
            end_ns: Some(170),
            request_bytes: request.len() as u64,
            response_bytes: reply.len() as u64,
            truncated: false,
        }]
    );
    assert_eq!(s.stats(), SessionStats::default());
}

#[test]
fn command_name_is_upper_cased_and_inline_commands_pair_too() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, b"ping\r\n", 1);
    let out = send(&mut s, Flow::Response, b"+PONG\r\n", 2);
    assert_eq!(out[0].exchange.command, "PING");
    assert!(out[0].exchange.args.is_empty());
    assert_eq!(
        out[0].exchange.reply,
        Some(Frame::Simple(Blob::full("PONG")))
    );
    assert_eq!((out[0].request_bytes, out[0].response_bytes), (6, 7));
}

#[test]
fn sixteen_pipelined_requests_pair_in_order_with_sixteen_replies() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let requests: Vec<Vec<u8>> = (0..16)
        .map(|i| cmd(&["INCRBY", &format!("counter:{i}"), &i.to_string()]))
        .collect();
    let replies: Vec<Vec<u8>> = (0..16).map(|i| format!(":{i}\r\n").into_bytes()).collect();
    assert!(send(&mut s, Flow::Request, &requests.concat(), 100).is_empty());
    let out = send(&mut s, Flow::Response, &replies.concat(), 200);
    assert_eq!(out.len(), 16);
    for (i, p) in out.iter().enumerate() {
        let key = format!("counter:{i}");
        let value = i.to_string();
        assert_eq!(p.exchange.command, "INCRBY");
        assert_eq!(args_of(p), [key.as_bytes(), value.as_bytes()]);
        assert_eq!(p.exchange.reply, Some(Frame::Integer(i as i64)));
        assert_eq!((p.start_ns, p.end_ns), (100, Some(200)));
        assert_eq!(p.request_bytes, requests[i].len() as u64);
        assert_eq!(p.response_bytes, replies[i].len() as u64);
    }
    assert!(close(&mut s).is_empty());
}

#[test]
fn multi_queued_exec_pairs_each_command_with_its_own_reply() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let mut out = Vec::new();
    out.extend(send(&mut s, Flow::Request, &cmd(&["MULTI"]), 1));
    out.extend(send(&mut s, Flow::Response, b"+OK\r\n", 2));
    out.extend(send(&mut s, Flow::Request, &cmd(&["SET", "k", "v"]), 3));
    out.extend(send(&mut s, Flow::Response, b"+QUEUED\r\n", 4));
    out.extend(send(&mut s, Flow::Request, &cmd(&["INCR", "n"]), 5));
    out.extend(send(&mut s, Flow::Response, b"+QUEUED\r\n", 6));
    out.extend(send(&mut s, Flow::Request, &cmd(&["EXEC"]), 7));
    out.extend(send(&mut s, Flow::Response, b"*2\r\n+OK\r\n:1\r\n", 8));
    let got: Vec<(&str, Option<&Frame>, u64)> = out
        .iter()
        .map(|p| {
            (
                p.exchange.command.as_str(),
                p.exchange.reply.as_ref(),
                p.start_ns,
            )
        })
        .collect();
    let ok = Frame::Simple(Blob::full("OK"));
    let queued = Frame::Simple(Blob::full("QUEUED"));
    let exec = Frame::Array(vec![ok.clone(), Frame::Integer(1)]);
    assert_eq!(
        got,
        [
            ("MULTI", Some(&ok), 1),
            ("SET", Some(&queued), 3),
            ("INCR", Some(&queued), 5),
            ("EXEC", Some(&exec), 7),
        ]
    );
}

#[test]
fn error_replies_are_errors() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["FOO"]), 1);
    send(&mut s, Flow::Request, &cmd(&["GET", "k"]), 1);
    send(&mut s, Flow::Request, &cmd(&["GET", "j"]), 1);
    let out = send(
        &mut s,
        Flow::Response,
        b"-ERR unknown command 'FOO'\r\n!9\r\nWRONGTYPE\r\n$1\r\nv\r\n",
        2,
    );
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[0].exchange.reply,
        Some(Frame::Error(Blob::full("ERR unknown command 'FOO'")))
    );
    assert!(out[0].exchange.is_error());
    assert!(out[1].exchange.is_error());
    assert!(!out[2].exchange.is_error());
}

#[test]
fn truncated_reply_marks_the_exchange_truncated() {
    let mut s = RedisSession::new(4, true);
    send(&mut s, Flow::Request, &cmd(&["GET", "k"]), 1);
    let out = send(&mut s, Flow::Response, &bulk_reply("0123456789"), 2);
    assert!(out[0].truncated);
    assert_eq!(out[0].response_bytes, 17);
}

#[test]
fn a_cut_reply_before_the_last_of_several_marks_the_exchange_truncated() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(
        &mut s,
        Flow::Request,
        &cmd(&["SUBSCRIBE", "0123456789", "d"]),
        1,
    );
    // The first confirmation loses four bytes of its channel to a capture gap; the second is whole.
    let first = confirmation("subscribe", "0123456789", 1);
    let (head, tail) = first.split_at(first.len() - 10);
    assert!(send(&mut s, Flow::Response, head, 2).is_empty());
    assert!(gap(&mut s, Flow::Response, 4).is_empty());
    assert!(send_part(&mut s, Flow::Response, &tail[4..], 3, false).is_empty());
    let out = send(
        &mut s,
        Flow::Response,
        &confirmation("subscribe", "d", 2),
        4,
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].truncated, "{:?}", out[0]);
    let Some(Frame::Array(replies)) = &out[0].exchange.reply else {
        panic!("both confirmations: {:?}", out[0].exchange.reply);
    };
    assert!(replies[0].is_truncated() && !replies[1].is_truncated());
}

#[test]
fn gap_inside_a_reply_value_keeps_the_pairing() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["GET", "k"]), 1);
    send(&mut s, Flow::Response, b"$10\r\n0123", 2);
    assert!(gap(&mut s, Flow::Response, 4).is_empty());
    let out = send_part(&mut s, Flow::Response, b"89\r\n", 3, false);
    assert_eq!(out.len(), 1);
    assert!(out[0].truncated);
    assert_eq!(out[0].end_ns, Some(3));
    assert_eq!(s.stats().lost_sync, 0);
}

#[test]
fn close_reports_pending_requests_without_reply() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["BLPOP", "queue", "0"]), 10);
    send(&mut s, Flow::Request, &cmd(&["GET", "k"]), 20);
    let out = close(&mut s);
    let commands: Vec<&str> = out.iter().map(|p| p.exchange.command.as_str()).collect();
    assert_eq!(commands, ["BLPOP", "GET"]);
    let starts: Vec<u64> = out.iter().map(|p| p.start_ns).collect();
    assert_eq!(starts, [10, 20]);
    for p in &out {
        assert_eq!(p.exchange.reply, None);
        assert_eq!((p.end_ns, p.response_bytes), (None, 0));
    }
    assert_eq!(view::reply_summary(&out[0].exchange, 40), "(no reply)");
    assert!(close(&mut s).is_empty(), "a second close reports nothing");
}

#[test]
fn reply_with_nothing_pending_is_an_orphan() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    assert!(send(&mut s, Flow::Response, b"+OK\r\n", 1).is_empty());
    assert_eq!(s.stats().orphan_replies, 1);
}

// ---------------------------------------------------------------------------------------------------
// Pub/sub, pushes, MONITOR
// ---------------------------------------------------------------------------------------------------

#[test]
fn subscribe_to_two_channels_collects_both_confirmations_then_messages_are_pushes() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let request = cmd(&["SUBSCRIBE", "news", "sport"]);
    send(&mut s, Flow::Request, &request, 100);
    let first = confirmation("subscribe", "news", 1);
    let second = confirmation("subscribe", "sport", 2);
    assert!(send(&mut s, Flow::Response, &first, 110).is_empty());
    let out = send(&mut s, Flow::Response, &second, 120);
    assert_eq!(
        out,
        [Paired {
            exchange: RedisExchange {
                kind: ExchangeKind::Command,
                command: "SUBSCRIBE".into(),
                args: vec![Blob::full("news"), Blob::full("sport")].into(),
                reply: Some(Frame::Array(vec![
                    confirmation_frame("subscribe", "news", 1),
                    confirmation_frame("subscribe", "sport", 2),
                ])),
            },
            start_ns: 100,
            end_ns: Some(120),
            request_bytes: request.len() as u64,
            response_bytes: (first.len() + second.len()) as u64,
            truncated: false,
        }]
    );

    let msg = message("news", "hello");
    let out = send(&mut s, Flow::Response, &msg, 130);
    assert_eq!(
        out,
        [Paired {
            exchange: RedisExchange {
                kind: ExchangeKind::Push,
                command: CompactString::default(),
                args: crate::protocol::redis::exchange::Args::new(),
                reply: Some(Frame::Array(vec![
                    bulk("message"),
                    bulk("news"),
                    bulk("hello")
                ])),
            },
            start_ns: 130,
            end_ns: Some(130),
            request_bytes: 0,
            response_bytes: msg.len() as u64,
            truncated: false,
        }]
    );
    assert!(out[0].exchange.keys().is_empty());
    assert_eq!(s.stats().orphan_replies, 0);
}

#[test]
fn message_between_subscribe_confirmations_is_a_push() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["SUBSCRIBE", "a", "b"]), 1);
    let mut stream = confirmation("subscribe", "a", 1);
    stream.extend(message("a", "early"));
    stream.extend(confirmation("subscribe", "b", 2));
    let out = send(&mut s, Flow::Response, &stream, 2);
    let kinds: Vec<ExchangeKind> = out.iter().map(|p| p.exchange.kind).collect();
    assert_eq!(kinds, [ExchangeKind::Push, ExchangeKind::Command]);
    assert_eq!(out[1].exchange.command, "SUBSCRIBE");
}

#[test]
fn resp3_push_with_nothing_pending_is_a_push_exchange() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let push = pubsub('>', "message", "ch", &PubSubLast::Payload("hi"));
    let out = send(&mut s, Flow::Response, &push, 50);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.kind, ExchangeKind::Push);
    assert_eq!(
        out[0].exchange.reply,
        Some(Frame::Push(vec![bulk("message"), bulk("ch"), bulk("hi")]))
    );
    assert_eq!((out[0].start_ns, out[0].end_ns), (50, Some(50)));
    assert_eq!(out[0].response_bytes, push.len() as u64);
    assert_eq!(s.stats().orphan_replies, 0);
}

#[test]
fn resp3_push_while_a_command_is_pending_does_not_take_its_reply() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["GET", "k"]), 1);
    let out = send(
        &mut s,
        Flow::Response,
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n",
        2,
    );
    let kinds: Vec<ExchangeKind> = out.iter().map(|p| p.exchange.kind).collect();
    assert_eq!(kinds, [ExchangeKind::Push, ExchangeKind::Command]);
    assert_eq!(out[1].exchange.reply, Some(bulk("v")));
}

#[test]
fn resp3_subscribe_confirmations_arrive_as_pushes_but_answer_the_request() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["SUBSCRIBE", "ch"]), 1);
    let confirm = pubsub('>', "subscribe", "ch", &PubSubLast::Count(1));
    let out = send(&mut s, Flow::Response, &confirm, 2);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.kind, ExchangeKind::Command);
    assert_eq!(
        out[0].exchange.reply,
        Some(Frame::Array(vec![Frame::Push(vec![
            bulk("subscribe"),
            bulk("ch"),
            Frame::Integer(1)
        ])]))
    );
    let msg = pubsub('>', "message", "ch", &PubSubLast::Payload("x"));
    let out = send(&mut s, Flow::Response, &msg, 3);
    assert_eq!(out[0].exchange.kind, ExchangeKind::Push);
}

#[test]
fn unsubscribe_without_channels_collects_confirmations_until_count_zero() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["SUBSCRIBE", "a", "b"]), 1);
    let mut confirmations = confirmation("subscribe", "a", 1);
    confirmations.extend(confirmation("subscribe", "b", 2));
    assert_eq!(send(&mut s, Flow::Response, &confirmations, 2).len(), 1);

    send(&mut s, Flow::Request, &cmd(&["UNSUBSCRIBE"]), 3);
    assert!(send(
        &mut s,
        Flow::Response,
        &confirmation("unsubscribe", "a", 1),
        4
    )
    .is_empty());
    let out = send(
        &mut s,
        Flow::Response,
        &confirmation("unsubscribe", "b", 0),
        5,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.command, "UNSUBSCRIBE");
    assert_eq!(
        out[0].exchange.reply,
        Some(Frame::Array(vec![
            confirmation_frame("unsubscribe", "a", 1),
            confirmation_frame("unsubscribe", "b", 0),
        ]))
    );
    assert_eq!((out[0].start_ns, out[0].end_ns), (3, Some(5)));

    // No longer subscribed: a `message`-shaped array is not a push, and with nothing pending it is an
    // orphan.
    assert!(send(&mut s, Flow::Response, &message("a", "late"), 6).is_empty());
    assert_eq!(s.stats().orphan_replies, 1);
}

#[test]
fn unsubscribe_without_channels_when_not_subscribed_takes_one_reply() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["UNSUBSCRIBE"]), 1);
    let out = send(
        &mut s,
        Flow::Response,
        b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
        2,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].exchange.reply,
        Some(Frame::Array(vec![Frame::Array(vec![
            bulk("unsubscribe"),
            Frame::Null,
            Frame::Integer(0)
        ])]))
    );
}

#[test]
fn monitor_output_lines_are_pushes() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["MONITOR"]), 1);
    let out = send(&mut s, Flow::Response, b"+OK\r\n", 2);
    assert_eq!(out[0].exchange.command, "MONITOR");
    let out = send(
        &mut s,
        Flow::Response,
        b"+1700000000.123456 [0 127.0.0.1:5000] \"GET\" \"k\"\r\n",
        3,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.kind, ExchangeKind::Push);
}

// ---------------------------------------------------------------------------------------------------
// Sync
// ---------------------------------------------------------------------------------------------------

#[test]
fn session_met_mid_stream_ignores_partial_frames_and_syncs_at_a_proper_frame() {
    let mut s = RedisSession::new(KEEP_ALL, false);
    assert!(!s.requests_in_sync());
    // The tail of a request whose start was missed, in the middle of a syscall's bytes.
    assert!(send_part(&mut s, Flow::Request, b"T\r\n$1\r\nk\r\n", 10, false).is_empty());
    // A syscall starting inside a bulk header is not a frame start.
    assert!(send(&mut s, Flow::Request, b"3\r\nfoo\r\n", 20).is_empty());
    assert!(!s.requests_in_sync());
    // The reply to the unseen request is ignored, not counted as an orphan.
    assert!(send(&mut s, Flow::Response, &bulk_reply("bar"), 30).is_empty());

    send(&mut s, Flow::Request, &cmd(&["GET", "k"]), 40);
    assert!(s.requests_in_sync());
    let out = send(&mut s, Flow::Response, &bulk_reply("v"), 50);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.command, "GET");
    assert_eq!(out[0].exchange.reply, Some(bulk("v")));
    assert_eq!((out[0].start_ns, out[0].end_ns), (40, Some(50)));
    assert_eq!(s.stats(), SessionStats::default());
}

#[test]
fn after_a_request_gap_replies_are_ignored_until_a_fresh_request_is_pending() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["GET", "a"]), 10);
    send(&mut s, Flow::Request, &cmd(&["GET", "b"]), 11);
    // Bytes missing between request frames: the request stream is lost.
    assert!(gap(&mut s, Flow::Request, 20).is_empty());
    assert!(!s.requests_in_sync());
    assert_eq!(
        s.stats(),
        SessionStats {
            lost_sync: 1,
            dropped_requests: 2,
            orphan_replies: 0,
            encrypted: 0,
        }
    );
    // Replies to the dropped requests are ignored.
    assert!(send(&mut s, Flow::Response, &bulk_reply("A"), 20).is_empty());
    assert!(send(&mut s, Flow::Response, &bulk_reply("B"), 21).is_empty());

    send(&mut s, Flow::Request, &cmd(&["GET", "c"]), 30);
    assert!(s.requests_in_sync());
    // A reply that started before the fresh request cannot be its reply.
    assert!(send(&mut s, Flow::Response, &bulk_reply("late"), 25).is_empty());
    let out = send(&mut s, Flow::Response, &bulk_reply("C"), 40);
    assert_eq!(out.len(), 1);
    assert_eq!(args_of(&out[0]), [b"c".as_slice()]);
    assert_eq!(out[0].exchange.reply, Some(bulk("C")));
    assert_eq!(s.stats().orphan_replies, 0);
}

#[test]
fn malformed_reply_drops_pending_requests_and_waits_for_a_fresh_one() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["GET", "a"]), 10);
    send(&mut s, Flow::Request, &cmd(&["GET", "b"]), 11);
    assert!(send(&mut s, Flow::Response, b"?garbage\r\n", 12).is_empty());
    assert_eq!(s.stats().lost_sync, 1);
    assert_eq!(s.stats().dropped_requests, 2);
    // The request side is unaffected.
    assert!(s.requests_in_sync());
    assert!(send(&mut s, Flow::Response, &bulk_reply("B"), 13).is_empty());
    assert!(close(&mut s).is_empty());

    send(&mut s, Flow::Request, &cmd(&["GET", "c"]), 20);
    let out = send(&mut s, Flow::Response, &bulk_reply("C"), 21);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].exchange.reply, Some(bulk("C")));
}

#[test]
fn reply_continuation_does_not_resync_mid_syscall() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["GET", "a"]), 10);
    gap(&mut s, Flow::Response, 3);
    send(&mut s, Flow::Request, &cmd(&["GET", "b"]), 20);
    // Not at a syscall start: no resync even though the bytes look like a frame.
    assert!(send_part(&mut s, Flow::Response, b"+x\r\n", 21, false).is_empty());
    let out = send(&mut s, Flow::Response, b"+y\r\n", 22);
    assert_eq!(out.len(), 1);
    assert_eq!(args_of(&out[0]), [b"b".as_slice()]);
}

// ---------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------

#[test]
fn keys_of_single_key_commands() {
    assert_eq!(keys_of(&exchange("GET", &["user:1"])), [b"user:1"]);
    assert_eq!(keys_of(&exchange("SET", &["k", "v", "EX", "10"])), [b"k"]);
    assert!(keys_of(&exchange("GET", &[])).is_empty());
}

#[test]
fn keys_of_mset_are_every_other_argument() {
    assert_eq!(
        keys_of(&exchange("MSET", &["k1", "v1", "k2", "v2", "k3", "v3"])),
        [b"k1", b"k2", b"k3"]
    );
}

#[test]
fn keys_of_eval_follow_the_key_count() {
    assert_eq!(
        keys_of(&exchange(
            "EVAL",
            &["return 1", "2", "k1", "k2", "arg1", "arg2"]
        )),
        [b"k1", b"k2"]
    );
    assert!(keys_of(&exchange("EVAL", &["return 1", "0", "arg"])).is_empty());
    assert!(keys_of(&exchange("EVAL", &["return 1", "nope", "arg"])).is_empty());
    // A count larger than the arguments takes what is there.
    assert_eq!(keys_of(&exchange("EVALSHA", &["abc", "5", "k1"])), [b"k1"]);
}

#[test]
fn keys_of_del_are_all_arguments() {
    assert_eq!(
        keys_of(&exchange("DEL", &["a", "b", "c"])),
        [b"a", b"b", b"c"]
    );
}

#[test]
fn ping_has_no_keys() {
    assert!(keys_of(&exchange("PING", &[])).is_empty());
    assert!(keys_of(&exchange("PING", &["hello"])).is_empty());
}

#[test]
fn keys_of_a_paired_request() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    send(&mut s, Flow::Request, &cmd(&["mget", "x", "y"]), 1);
    let out = send(&mut s, Flow::Response, b"*2\r\n$-1\r\n$1\r\n1\r\n", 2);
    assert_eq!(keys_of(&out[0].exchange), [b"x", b"y"]);
}

// ---------------------------------------------------------------------------------------------------
// Replies that never come, and bounded memory
// ---------------------------------------------------------------------------------------------------

/// Commands and whether each got a reply, in the order recorded.
fn commands_and_replies(paired: &[Paired]) -> Vec<(String, bool)> {
    paired
        .iter()
        .map(|p| {
            let first = p
                .exchange
                .args
                .first()
                .map(|a| String::from_utf8_lossy(&a.data).into_owned());
            let name = match first {
                Some(a) if p.exchange.command == "CLIENT" => format!("CLIENT {a}"),
                _ => p.exchange.command.to_string(),
            };
            (name, p.exchange.reply.is_some())
        })
        .collect()
}

#[test]
fn client_reply_off_commands_get_no_reply_and_never_take_a_later_one() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let mut out = send(&mut s, Flow::Request, &cmd(&["CLIENT", "REPLY", "OFF"]), 1);
    for i in 0..3 {
        out.extend(send(
            &mut s,
            Flow::Request,
            &cmd(&["SET", &format!("k{i}"), "v"]),
            2 + i,
        ));
    }
    out.extend(send(
        &mut s,
        Flow::Request,
        &cmd(&["CLIENT", "REPLY", "ON"]),
        10,
    ));
    out.extend(send(&mut s, Flow::Request, &cmd(&["GET", "k0"]), 11));
    out.extend(send(&mut s, Flow::Response, b"+OK\r\n", 12));
    out.extend(send(&mut s, Flow::Response, &bulk_reply("v"), 13));
    let expected: Vec<(String, bool)> = [
        ("CLIENT REPLY", false),
        ("SET", false),
        ("SET", false),
        ("SET", false),
        ("CLIENT REPLY", true),
        ("GET", true),
    ]
    .iter()
    .map(|(c, r)| ((*c).to_owned(), *r))
    .collect();
    assert_eq!(commands_and_replies(&out), expected);
    assert_eq!(out[5].exchange.reply, Some(bulk("v")));
    assert_eq!(s.stats(), SessionStats::default());
}

#[test]
fn client_reply_skip_skips_only_the_next_command() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let mut out = send(&mut s, Flow::Request, &cmd(&["client", "reply", "skip"]), 1);
    out.extend(send(&mut s, Flow::Request, &cmd(&["SET", "a", "1"]), 2));
    out.extend(send(&mut s, Flow::Request, &cmd(&["GET", "a"]), 3));
    out.extend(send(&mut s, Flow::Response, &bulk_reply("1"), 4));
    let names: Vec<(String, bool)> = commands_and_replies(&out);
    assert_eq!(
        names,
        [
            ("CLIENT reply".to_owned(), false),
            ("SET".to_owned(), false),
            ("GET".to_owned(), true)
        ]
    );
}

#[test]
fn a_flood_of_unanswered_requests_is_bounded_and_counted() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let one = cmd(&["SET", "k", "v"]);
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(&one);
    }
    for i in 0..=(MAX_PENDING / 1000) as u64 {
        assert!(send(&mut s, Flow::Request, &batch, i).is_empty());
    }
    assert!(s.pairing.pending.len() <= MAX_PENDING);
    let stats = s.stats();
    assert_eq!(stats.lost_sync, 1);
    assert_eq!(stats.dropped_requests, MAX_PENDING as u64);
}

#[test]
fn past_the_byte_budget_requests_wait_without_arguments_and_still_pair() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let value = "x".repeat(64 * 1024);
    let count = MAX_PENDING_BYTES / value.len() + 10;
    for i in 0..count {
        let key = format!("k{i}");
        send(
            &mut s,
            Flow::Request,
            &cmd(&["SET", &key, &value]),
            i as u64,
        );
    }
    assert!(s.pending_bytes <= MAX_PENDING_BYTES);
    let mut out = Vec::new();
    for i in 0..count {
        out.extend(send(&mut s, Flow::Response, b"+OK\r\n", (count + i) as u64));
    }
    assert_eq!(out.len(), count);
    assert!(out
        .iter()
        .all(|p| p.exchange.command == "SET" && p.exchange.reply.is_some()));
    assert_eq!(args_of(&out[0])[0], b"k0");
    let last = &out[count - 1];
    assert!(last.exchange.args.is_empty() && last.truncated);
    assert_eq!((s.pending_bytes, s.stats()), (0, SessionStats::default()));
}

// ---------------------------------------------------------------------------------------------------
// Replication links
// ---------------------------------------------------------------------------------------------------

fn kinds_and_commands(paired: &[Paired]) -> Vec<(ExchangeKind, String)> {
    paired
        .iter()
        .map(|p| (p.exchange.kind, p.exchange.command.to_string()))
        .collect()
}

/// A replica's handshake up to PSYNC, answered; returns what was recorded.
fn handshake(s: &mut RedisSession) -> Vec<Paired> {
    let mut out = Vec::new();
    for (i, words) in [
        &["PING"][..],
        &["REPLCONF", "listening-port", "6380"],
        &["REPLCONF", "capa", "eof", "capa", "psync2"],
    ]
    .iter()
    .enumerate()
    {
        out.extend(send(s, Flow::Request, &cmd(words), i as u64 * 2));
        let reply: &[u8] = if i == 0 { b"+PONG\r\n" } else { b"+OK\r\n" };
        out.extend(send(s, Flow::Response, reply, i as u64 * 2 + 1));
    }
    out.extend(send(s, Flow::Request, &cmd(&["PSYNC", "?", "-1"]), 10));
    out
}

#[test]
fn a_full_resync_skips_the_snapshot_then_records_replicated_commands() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let mut out = handshake(&mut s);
    // Keep-alive newlines, the snapshot without a CRLF, then the command stream.
    out.extend(send(
        &mut s,
        Flow::Response,
        b"\n\n+FULLRESYNC 8de1 0\r\n$9\r\nREDIS0011",
        11,
    ));
    out.extend(send(&mut s, Flow::Response, &cmd(&["SELECT", "0"]), 12));
    out.extend(send(&mut s, Flow::Response, &cmd(&["SET", "k", "v"]), 13));
    out.extend(send(
        &mut s,
        Flow::Request,
        &cmd(&["REPLCONF", "ACK", "42"]),
        14,
    ));
    out.extend(send(
        &mut s,
        Flow::Response,
        &cmd(&["REPLCONF", "GETACK", "*"]),
        15,
    ));
    let kinds = kinds_and_commands(&out);
    let command = |c: &str| (ExchangeKind::Command, c.to_owned());
    let replicated = |c: &str| (ExchangeKind::Replicated, c.to_owned());
    assert_eq!(
        kinds,
        [
            command("PING"),
            command("REPLCONF"),
            command("REPLCONF"),
            command("PSYNC"),
            replicated("SELECT"),
            replicated("SET"),
            command("REPLCONF"),
            replicated("REPLCONF"),
        ]
    );
    let psync = &out[3];
    let Some(Frame::Array(replies)) = &psync.exchange.reply else {
        panic!("FULLRESYNC and the snapshot: {:?}", psync.exchange.reply)
    };
    assert_eq!(replies[0], Frame::Simple(Blob::full("FULLRESYNC 8de1 0")));
    let Frame::Bulk(rdb) = &replies[1] else {
        panic!("the snapshot")
    };
    assert_eq!((rdb.len(), rdb.data.len()), (9, 0), "counted, not kept");
    assert_eq!(psync.end_ns, Some(11));
    assert!(out[6].exchange.reply.is_none(), "an ACK gets no reply");
    assert_eq!(out[5].exchange.args.len(), 2);
    assert_eq!(s.stats(), SessionStats::default());
}

#[test]
fn a_diskless_snapshot_ends_at_its_mark_even_split_across_calls() {
    let mark = "0123456789abcdef0123456789abcdef01234567";
    let mut stream = format!("+FULLRESYNC 8de1 0\r\n$EOF:{mark}\r\n").into_bytes();
    stream.extend_from_slice(&[0xAB; 300]);
    stream.extend_from_slice(mark.as_bytes());
    stream.extend_from_slice(&cmd(&["SET", "k", "v"]));
    for split in [1, 20, 330, 340, 360, stream.len() - 5] {
        let mut s = RedisSession::new(KEEP_ALL, true);
        let mut out = handshake(&mut s);
        let (head, tail) = stream.split_at(split);
        out.extend(send_part(&mut s, Flow::Response, head, 11, true));
        out.extend(send_part(&mut s, Flow::Response, tail, 12, false));
        let last = out.last().expect("records");
        assert_eq!(
            (last.exchange.kind, last.exchange.command.as_str()),
            (ExchangeKind::Replicated, "SET"),
            "split at {split}"
        );
        let Some(Frame::Array(replies)) = &out[3].exchange.reply else {
            panic!("split at {split}: {:?}", out[3].exchange.reply)
        };
        assert_eq!(replies[1], Frame::Bulk(Blob::new(BlobData::new(), 300)));
        assert_eq!(s.stats(), SessionStats::default(), "split at {split}");
    }
}

#[test]
fn a_partial_resync_streams_at_once_and_a_refused_one_is_an_ordinary_reply() {
    let mut s = RedisSession::new(KEEP_ALL, true);
    let mut out = handshake(&mut s);
    out.extend(send(&mut s, Flow::Response, b"+CONTINUE 8de1\r\n", 11));
    out.extend(send(&mut s, Flow::Response, &cmd(&["INCR", "n"]), 12));
    assert_eq!(
        out[3].exchange.reply,
        Some(Frame::Simple(Blob::full("CONTINUE 8de1")))
    );
    assert_eq!(out[4].exchange.kind, ExchangeKind::Replicated);

    let mut s = RedisSession::new(KEEP_ALL, true);
    let mut out = handshake(&mut s);
    out.extend(send(
        &mut s,
        Flow::Response,
        b"-NOMASTERLINK Can't SYNC\r\n",
        11,
    ));
    out.extend(send(&mut s, Flow::Request, &cmd(&["PING"]), 12));
    out.extend(send(&mut s, Flow::Response, b"+PONG\r\n", 13));
    assert_eq!(
        kinds_and_commands(&out[3..]),
        [
            (ExchangeKind::Command, "PSYNC".to_owned()),
            (ExchangeKind::Command, "PING".to_owned())
        ]
    );
    assert!(out[4].exchange.reply.is_some());
}

#[test]
fn a_link_already_streaming_is_recognised_by_its_first_ack() {
    let mut s = RedisSession::new(KEEP_ALL, false);
    // The middle of a replicated command, then a whole one: nothing until the replica acknowledges.
    let mut out = send(&mut s, Flow::Response, b"k\r\n$1\r\nv\r\n", 1);
    out.extend(send(
        &mut s,
        Flow::Request,
        &cmd(&["REPLCONF", "ACK", "100"]),
        2,
    ));
    out.extend(send(&mut s, Flow::Response, &cmd(&["DEL", "k"]), 3));
    out.extend(send(
        &mut s,
        Flow::Request,
        &cmd(&["REPLCONF", "ACK", "120"]),
        4,
    ));
    assert_eq!(
        kinds_and_commands(&out),
        [
            (ExchangeKind::Command, "REPLCONF".to_owned()),
            (ExchangeKind::Replicated, "DEL".to_owned()),
            (ExchangeKind::Command, "REPLCONF".to_owned()),
        ]
    );
    assert!(out.iter().all(|p| p.exchange.reply.is_none()));
}
