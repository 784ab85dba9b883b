//! Tests of NDJSON import: records written by `ndjson::write::write_record` read back equal (and write
//! again to the same line), every kind of bad line is reported with its line number and a reason naming
//! the field, and `read` keeps going past bad lines.

use std::{
    io::{self, BufRead, Read},
    net::SocketAddr,
    sync::Arc,
};

use compact_str::CompactString;
use proptest::{collection::vec, prelude::*};
use serde_json::{json, Value};

use super::*;
use crate::{
    ndjson::write::write_record,
    protocol::{
        http::{Headers, HttpExchange, HttpRequest, HttpResponse},
        redis::{ExchangeKind, Frame, RedisExchange},
        Blob, BlobData, Exchange,
    },
};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn client_endpoint() -> Arc<Endpoint> {
    Arc::new(Endpoint::new(
        4242,
        "redis-cli",
        addr("127.0.0.1:50000"),
        addr("127.0.0.1:6379"),
        Side::Client,
    ))
}

fn record(exchange: Exchange) -> Record {
    Record {
        id: 7,
        endpoint: client_endpoint(),
        start_unix_ns: 1_700_000_000_000_000_000,
        end_unix_ns: Some(1_700_000_000_000_250_000),
        request_bytes: 31,
        response_bytes: 5,
        truncated: false,
        redacted: false,
        exchange,
    }
}

fn command(name: &str, args: Vec<Blob>, reply: Option<Frame>) -> Record {
    let answered = reply.is_some();
    let mut r = record(Exchange::Redis(RedisExchange {
        kind: ExchangeKind::Command,
        command: name.into(),
        args: args.into(),
        reply,
    }));
    if !answered {
        r.end_unix_ns = None;
        r.response_bytes = 0;
    }
    r
}

fn push(frame: Frame) -> Record {
    let mut r = record(Exchange::Redis(RedisExchange {
        kind: ExchangeKind::Push,
        command: CompactString::default(),
        args: crate::protocol::redis::exchange::Args::new(),
        reply: Some(frame),
    }));
    r.request_bytes = 0;
    r
}

fn headers(fields: &[(&str, &[u8])]) -> Headers {
    fields.iter().copied().collect()
}

fn http(request: HttpRequest, response: Option<HttpResponse>) -> Record {
    record(Exchange::Http(Box::new(HttpExchange { request, response })))
}

fn get(target: &str, headers: Headers) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        target: target.into(),
        version: 1,
        headers,
        body: Blob::default(),
        trailers: Headers::default(),
    }
}

fn ok(headers: Headers, body: Blob) -> HttpResponse {
    HttpResponse {
        version: 1,
        status: 200,
        reason: "OK".into(),
        headers,
        body,
        trailers: Headers::default(),
    }
}

/// A blob of which only `kept` is captured out of `len` bytes.
fn prefix(kept: impl Into<Vec<u8>>, len: u64) -> Blob {
    Blob::new(BlobData::from_vec(kept.into()), len)
}

fn line_of(record: &Record) -> String {
    let mut out = Vec::new();
    write_record(record, &mut out);
    String::from_utf8(out).unwrap()
}

/// `record` reads back equal, and writing what was read gives the same line again.
fn assert_round_trip(record: &Record) {
    let line = line_of(record);
    let back = parse_line(&line).unwrap_or_else(|e| panic!("{e}\nline: {line}"));
    assert_eq!(&back, record, "line: {line}");
    assert_eq!(line_of(&back), line);
}

fn redis_sample() -> Record {
    command(
        "SET",
        vec![Blob::full("k"), Blob::full("v")],
        Some(Frame::Simple(Blob::full("OK"))),
    )
}

fn http_sample() -> Record {
    http(
        get("/items?limit=2", headers(&[("Host", b"shop.test")])),
        Some(ok(headers(&[("Content-Length", b"2")]), Blob::full("[]"))),
    )
}

/// The error message after `edit` changes the JSON of `sample`.
fn error_after(sample: &Record, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&line_of(sample)).unwrap();
    edit(&mut value);
    parse_line(&value.to_string()).unwrap_err().to_string()
}

/// An expected error message, and an edit of a good record's JSON that should cause it.
type Case = (&'static str, fn(&mut Value));

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key).unwrap();
}

#[test]
fn every_redis_frame_type_round_trips() {
    let frames = [
        Frame::Simple(Blob::full("OK")),
        Frame::Error(Blob::full("ERR unknown command 'FOO'")),
        Frame::Integer(0),
        Frame::Integer(i64::MIN),
        Frame::Integer(i64::MAX),
        Frame::Bulk(Blob::full("hello")),
        Frame::Bulk(Blob::full("")),
        Frame::Null,
        Frame::Array(Vec::new()),
        Frame::Array(vec![Frame::Integer(1), Frame::Null]),
        Frame::Map(Vec::new()),
        Frame::Map(vec![(
            Frame::Simple(Blob::full("proto")),
            Frame::Integer(3),
        )]),
        Frame::Set(vec![
            Frame::Bulk(Blob::full("a")),
            Frame::Bulk(Blob::full("b")),
        ]),
        Frame::Push(vec![Frame::Bulk(Blob::full("invalidate")), Frame::Null]),
        Frame::Double("1.5".into()),
        Frame::Double("-0.25".into()),
        Frame::Double("1e300".into()),
        Frame::Double("5e-324".into()),
        // Read one unit in the last place off without serde_json's `float_roundtrip`.
        Frame::Double("3.5087522911153754e74".into()),
        Frame::Double("inf".into()),
        Frame::Double("-inf".into()),
        Frame::Double("nan".into()),
        Frame::Boolean(true),
        Frame::Boolean(false),
        Frame::BigNumber("-3492890328409238509324850943850943825024385".into()),
        Frame::Verbatim {
            format: "txt".into(),
            text: Box::new(Blob::full("Some string")),
        },
        Frame::Verbatim {
            format: "mkd".into(),
            text: Box::new(prefix("# tit", 4000)),
        },
    ];
    for frame in frames {
        assert_round_trip(&command("DEBUG", Vec::new(), Some(frame)));
    }
}

#[test]
fn nested_arrays_maps_sets_and_pushes_round_trip() {
    let exec = Frame::Array(vec![
        Frame::Simple(Blob::full("OK")),
        Frame::Array(vec![
            Frame::Array(vec![Frame::Bulk(Blob::full("deep")), Frame::Null]),
            Frame::Map(vec![(
                Frame::Set(vec![Frame::Integer(-7)]),
                Frame::Map(vec![(Frame::Boolean(false), Frame::Double("2.5".into()))]),
            )]),
        ]),
        Frame::Error(Blob::full("WRONGTYPE Operation against a key")),
    ]);
    assert_round_trip(&command("EXEC", Vec::new(), Some(exec)));
    let hello = Frame::Map(vec![
        (
            Frame::Bulk(Blob::full("server")),
            Frame::Bulk(Blob::full("redis")),
        ),
        (
            Frame::Bulk(Blob::full("modules")),
            Frame::Array(vec![Frame::Map(vec![(
                Frame::Bulk(Blob::full("name")),
                Frame::Verbatim {
                    format: "txt".into(),
                    text: Box::new(Blob::full("search")),
                },
            )])]),
        ),
    ]);
    assert_round_trip(&command("HELLO", vec![Blob::full("3")], Some(hello)));
    assert_round_trip(&push(Frame::Push(vec![
        Frame::Bulk(Blob::full("message")),
        Frame::Bulk(Blob::full("news")),
        Frame::Bulk(Blob::full(vec![0xff, 0xfe, 0x00])),
    ])));
    assert_round_trip(&push(Frame::Simple(Blob::full(
        "1700000000.123456 [0 127.0.0.1:50000] \"GET\" \"k\"",
    ))));
}

#[test]
fn unanswered_commands_round_trip_with_no_reply_and_no_end() {
    let unanswered = command("BLPOP", vec![Blob::full("queue"), Blob::full("0")], None);
    assert_eq!(unanswered.end_unix_ns, None);
    assert_round_trip(&unanswered);
    assert_round_trip(&command("", Vec::new(), None));
}

#[test]
fn binary_and_truncated_args_and_values_round_trip() {
    let nasty = "quote\" backslash\\ nl\n cr\r tab\t nul\0 bell\u{7} del\u{7f} é ✓ 𝄞";
    let args = vec![
        Blob::full(nasty),
        Blob::full(vec![0xff, 0x00, 0x80]),
        Blob::full(Vec::new()),
        prefix("abc", 10),
        prefix(vec![0xc3], 1_000_000),
        prefix(Vec::new(), 5),
        prefix("é".as_bytes()[..1].to_vec(), 2),
    ];
    let reply = Frame::Array(vec![
        Frame::Bulk(prefix(vec![0x00, 0x01, 0x02], u64::MAX)),
        Frame::Error(Blob::full(vec![b'-', 0xfe])),
        Frame::Simple(Blob::full(nasty)),
    ]);
    let mut r = command("SET", args, Some(reply));
    r.truncated = true;
    assert_round_trip(&r);
}

#[test]
fn http_headers_keep_their_order_case_duplicates_and_bytes() {
    let request_headers = headers(&[
        ("Host", b"shop.test:8080"),
        ("x-lower", b"a"),
        ("X-MIXED-Case", b""),
        ("Accept", b"text/html"),
        ("accept", b"application/json"),
        ("X-Binary", b"\xff\x00\x80"),
        ("X-Escapes", b"\"quoted\" \\ \t"),
    ]);
    let response_headers = headers(&[
        ("Set-Cookie", b"a=1"),
        ("Set-Cookie", b"b=2"),
        ("Content-Type", b"text/plain; charset=utf-8"),
    ]);
    let record = http(
        get("/a/b?x=1&y=%20", request_headers),
        Some(ok(response_headers, Blob::full("hello"))),
    );
    assert_round_trip(&record);
}

#[test]
fn http_binary_and_truncated_bodies_and_trailers_round_trip() {
    let request = HttpRequest {
        method: "POST".into(),
        target: "http://proxy.test/upload?part=1".into(),
        version: 1,
        headers: headers(&[("Transfer-Encoding", b"chunked")]),
        body: Blob::full(vec![0x00, 0xff, 0x10, 0x80]),
        trailers: headers(&[("X-Checksum", b"abc"), ("X-Raw", b"\xfe")]),
    };
    let response = HttpResponse {
        version: 1,
        status: 503,
        reason: "Service Unavailable".into(),
        headers: headers(&[("Content-Length", b"5000")]),
        body: prefix("{\"error\":", 5000),
        trailers: Headers::default(),
    };
    let mut r = http(request, Some(response));
    r.truncated = true;
    assert_round_trip(&r);
    assert!(parse_line(&line_of(&r)).unwrap().is_error());

    let sendfile = ok(
        Headers::default(),
        prefix(vec![0x89, b'P', b'N', b'G'], 1 << 40),
    );
    assert_round_trip(&http(get("/logo.png", Headers::default()), Some(sendfile)));
}

#[test]
fn http_1_0_unanswered_and_odd_targets_round_trip() {
    let mut request = get("/old", headers(&[("User-Agent", b"ancient")]));
    request.version = 0;
    let mut response = ok(Headers::default(), Blob::full("hi"));
    response.version = 0;
    assert_round_trip(&http(request.clone(), Some(response)));

    let mut unanswered = http(request, None);
    unanswered.end_unix_ns = None;
    assert_round_trip(&unanswered);

    let mut connect = get("db.internal:5432", Headers::default());
    connect.method = "CONNECT".into();
    assert_round_trip(&http(connect, None));
    let mut options = get("*", Headers::default());
    options.method = "OPTIONS".into();
    let mut no_content = ok(Headers::default(), Blob::default());
    (no_content.status, no_content.reason) = (204, CompactString::default());
    assert_round_trip(&http(options, Some(no_content)));
}

#[test]
fn cgroups_and_containers_round_trip_and_stay_absent_when_unknown() {
    let mut r = redis_sample();
    assert!(!line_of(&r).contains("cgroup"));
    let id = "ab".repeat(32);
    for path in [
        format!("/system.slice/docker-{id}.scope"),
        "/user.slice/session-1.scope".to_owned(),
        String::new(),
    ] {
        let mut endpoint = (*r.endpoint).clone();
        endpoint.cgroup = Some(Arc::new(crate::cgroup::Cgroup::new(4242, &path)));
        r.endpoint = Arc::new(endpoint);
        assert_round_trip(&r);
    }
    let mut endpoint = (*r.endpoint).clone();
    endpoint.cgroup = Some(Arc::new(crate::cgroup::Cgroup::new(
        9,
        &format!("/docker/{id}"),
    )));
    r.endpoint = Arc::new(endpoint);
    let line = line_of(&r);
    assert!(
        line.contains(&format!(
            ",\"cgroup\":{{\"id\":9,\"path\":\"/docker/{id}\"}},\"container\":\"{id}\""
        )),
        "{line}"
    );
    let missing_path = error_after(&r, |v| {
        v["cgroup"].as_object_mut().unwrap().remove("path");
    });
    assert!(missing_path.contains("cgroup.path"), "{missing_path}");
}

#[test]
fn ipv6_and_server_side_endpoints_round_trip() {
    let mut r = http_sample();
    r.endpoint = Arc::new(Endpoint::new(
        1,
        "nginx: worker",
        addr("[2001:db8::1]:443"),
        addr("[::ffff:10.0.0.2]:61000"),
        Side::Server,
    ));
    assert_round_trip(&r);
    r.endpoint = Arc::new(Endpoint::new(
        u32::MAX,
        "",
        addr("[::1]:6379"),
        addr("[::1]:1"),
        Side::Client,
    ));
    assert_round_trip(&r);
}

#[test]
fn finite_doubles_come_back_in_their_written_shortest_form() {
    let cases = [
        ("3", "3.0"),
        ("1.50", "1.5"),
        ("1e3", "1000.0"),
        ("-0", "-0.0"),
        ("+2.5", "2.5"),
        ("0.1000000000000000055511151231257827", "0.1"),
        // Not finite, or not a number at all: written as a string and kept.
        ("1e400", "1e400"),
        ("Infinity", "Infinity"),
        ("not a number", "not a number"),
    ];
    for (sent, read) in cases {
        let line = line_of(&command(
            "INCRBYFLOAT",
            Vec::new(),
            Some(Frame::Double(sent.into())),
        ));
        let back = parse_line(&line).unwrap();
        let expected = command("INCRBYFLOAT", Vec::new(), Some(Frame::Double(read.into())));
        assert_eq!(back, expected, "{sent}");
    }
}

#[test]
fn an_integer_double_from_a_hand_edited_file_keeps_its_digits() {
    let sample = command("INCRBYFLOAT", Vec::new(), Some(Frame::Double("1.5".into())));
    let mut value: Value = serde_json::from_str(&line_of(&sample)).unwrap();
    value["redis"]["reply"]["value"] = json!(12);
    let back = parse_line(&value.to_string()).unwrap();
    let expected = command("INCRBYFLOAT", Vec::new(), Some(Frame::Double("12".into())));
    assert_eq!(back, expected);
}

#[test]
fn derived_fields_are_ignored_and_recomputed() {
    for sample in [redis_sample(), http_sample()] {
        let mut value: Value = serde_json::from_str(&line_of(&sample)).unwrap();
        value["latency_ns"] = json!("garbage");
        remove(&mut value, "error");
        if let Some(http) = value.get_mut("http") {
            remove(http, "path");
            http["query"] = json!(17);
            http["host"] = json!(["x"]);
            remove(&mut http["request"], "body_bytes");
            http["response"]["body_truncated"] = json!("yes");
        }
        assert_eq!(parse_line(&value.to_string()).unwrap(), sample);
    }
}

#[test]
fn unknown_fields_and_key_order_do_not_matter() {
    let sample = redis_sample();
    let mut value: Value = serde_json::from_str(&line_of(&sample)).unwrap();
    value["future_field"] = json!({"anything": [1, 2]});
    value["redis"]["reply"] = json!({"value": "OK", "note": 1, "type": "simple"});
    assert_eq!(parse_line(&value.to_string()).unwrap(), sample);
}

#[test]
fn a_blob_object_for_a_complete_text_value_reads_as_that_value() {
    let sample = redis_sample();
    let mut value: Value = serde_json::from_str(&line_of(&sample)).unwrap();
    value["redis"]["args"][0] = json!({"text": "k", "len": 1, "truncated": false});
    value["redis"]["args"][1] = json!({"base64": "dg==", "len": 1, "truncated": false});
    assert_eq!(parse_line(&value.to_string()).unwrap(), sample);
}

#[test]
fn a_newer_schema_is_refused_with_both_versions() {
    let message = error_after(&redis_sample(), |v| {
        v["schema"] = json!(2);
        // A newer writer may change anything else too; the schema is what gets reported.
        remove(v, "redis");
    });
    assert_eq!(
        message,
        "schema 2 is newer than this watcher understands (1)"
    );
    let message = error_after(&redis_sample(), |v| v["schema"] = json!(0));
    assert_eq!(message, "field `schema`: schema versions start at 1");
    let message = error_after(&redis_sample(), |v| remove(v, "schema"));
    assert_eq!(message, "field `schema`: missing");
}

#[test]
fn missing_fields_are_named_by_their_path() {
    let cases: [Case; 6] = [
        ("field `comm`: missing", |v| remove(v, "comm")),
        ("field `end_unix_ns`: missing", |v| remove(v, "end_unix_ns")),
        ("field `redis`: missing", |v| remove(v, "redis")),
        ("field `redis.reply`: missing", |v| {
            remove(&mut v["redis"], "reply");
        }),
        ("field `redis.reply.value`: missing", |v| {
            remove(&mut v["redis"]["reply"], "value");
        }),
        ("field `redis.args[1].len`: missing", |v| {
            v["redis"]["args"][1] = json!({"text": "v", "truncated": false});
        }),
    ];
    for (expected, edit) in cases {
        assert_eq!(error_after(&redis_sample(), edit), expected);
    }
    let message = error_after(&http_sample(), |v| {
        remove(&mut v["http"]["response"], "trailers");
    });
    assert_eq!(message, "field `http.response.trailers`: missing");
}

#[test]
fn wrong_types_and_ranges_are_named_by_their_path() {
    let cases: [Case; 8] = [
        ("field `pid`: expected an integer from 0 to 4294967295, found a string", |v| {
            v["pid"] = json!("1");
        }),
        ("field `pid`: expected an integer from 0 to 4294967295, found 4294967296", |v| {
            v["pid"] = json!(4_294_967_296_u64);
        }),
        ("field `id`: expected an integer from 0 to 2^64-1, found -1", |v| {
            v["id"] = json!(-1);
        }),
        ("field `start_unix_ns`: expected an integer from 0 to 2^64-1, found 1.5", |v| {
            v["start_unix_ns"] = json!(1.5);
        }),
        ("field `truncated`: expected a boolean, found null", |v| {
            v["truncated"] = Value::Null;
        }),
        ("field `redis.args`: expected an array, found an object", |v| {
            v["redis"]["args"] = json!({});
        }),
        ("field `redis.reply.value[0]`: expected an object, found a string", |v| {
            v["redis"]["reply"] = json!({"type": "array", "value": ["x"]});
        }),
        ("field `redis.reply.value`: expected an integer from -2^63 to 2^63-1, found 9223372036854775808", |v| {
            v["redis"]["reply"] = json!({"type": "integer", "value": 9_223_372_036_854_775_808_u64});
        }),
    ];
    for (expected, edit) in cases {
        assert_eq!(error_after(&redis_sample(), edit), expected);
    }
    let message = error_after(&http_sample(), |v| v["http"]["status"] = json!(70_000));
    assert_eq!(
        message,
        "field `http.status`: expected an integer from 0 to 65535, found 70000"
    );
}

#[test]
fn unknown_names_are_quoted_with_their_field() {
    let redis_cases: [Case; 5] = [
        (
            "field `redis.reply.type`: unknown frame type \"foo\"",
            |v| {
                v["redis"]["reply"]["type"] = json!("foo");
            },
        ),
        ("field `protocol`: unknown protocol \"ftp\"", |v| {
            v["protocol"] = json!("ftp");
        }),
        ("field `side`: unknown side \"both\"", |v| {
            v["side"] = json!("both");
        }),
        ("field `redis.kind`: unknown kind \"pipeline\"", |v| {
            v["redis"]["kind"] = json!("pipeline");
        }),
        (
            "field `redis.reply.value[1][0].value[2].type`: unknown frame type \"\"",
            |v| {
                v["redis"]["reply"] = json!({"type": "map", "value": [
                    [{"type": "null", "value": null}, {"type": "null", "value": null}],
                    [{"type": "set", "value": [
                        {"type": "integer", "value": 1},
                        {"type": "integer", "value": 2},
                        {"type": "", "value": 3},
                    ]}, {"type": "null", "value": null}],
                ]});
            },
        ),
    ];
    for (expected, edit) in redis_cases {
        assert_eq!(error_after(&redis_sample(), edit), expected);
    }
    let message = error_after(&http_sample(), |v| v["http"]["version"] = json!("HTTP/2"));
    assert_eq!(
        message,
        "field `http.version`: unknown HTTP version \"HTTP/2\""
    );
}

#[test]
fn bad_values_inside_fields_are_explained() {
    let cases: [Case; 10] = [
        (
            "field `local`: \"localhost:80\" is not an ip:port address",
            |v| {
                v["local"] = json!("localhost:80");
            },
        ),
        ("field `redis.args[0].base64`: invalid base64", |v| {
            v["redis"]["args"][0] = json!({"base64": "not base64!", "len": 3, "truncated": false});
        }),
        ("field `redis.args[0]`: has both `text` and `base64`", |v| {
            v["redis"]["args"][0] =
                json!({"text": "a", "base64": "YQ==", "len": 1, "truncated": false});
        }),
        (
            "field `redis.args[0]`: has neither `text` nor `base64`",
            |v| {
                v["redis"]["args"][0] = json!({"len": 1, "truncated": false});
            },
        ),
        (
            "field `redis.args[0]`: `len` 2 is less than the 3 bytes given",
            |v| {
                v["redis"]["args"][0] = json!({"text": "abc", "len": 2, "truncated": false});
            },
        ),
        (
            "field `redis.args[0]`: `len` 9223372036854775808 is over the most a value can be \
             (9223372036854775807)",
            |v| {
                v["redis"]["args"][0] =
                    json!({"text": "abc", "len": 9_223_372_036_854_775_808_u64, "truncated": true});
            },
        ),
        (
            "field `redis.args[0]`: `truncated` is false but 3 of 9 bytes are given",
            |v| {
                v["redis"]["args"][0] = json!({"text": "abc", "len": 9, "truncated": false});
            },
        ),
        (
            "field `redis.args[0]`: `truncated` is true but 3 of 3 bytes are given",
            |v| {
                v["redis"]["args"][0] = json!({"text": "abc", "len": 3, "truncated": true});
            },
        ),
        (
            "field `redis.reply.value[0]`: expected a two-element array, found an array of 3",
            |v| {
                let n = json!({"type": "null", "value": null});
                v["redis"]["reply"] = json!({"type": "map", "value": [[n, n, n]]});
            },
        ),
        (
            "field `redis.command`: expected null, found a string",
            |v| {
                v["redis"]["kind"] = json!("push");
            },
        ),
    ];
    for (expected, edit) in cases {
        let message = error_after(&redis_sample(), edit);
        assert!(
            message.starts_with(expected),
            "{message:?} does not start with {expected:?}"
        );
    }
}

#[test]
fn http_parts_that_contradict_each_other_are_refused() {
    let cases: [Case; 5] = [
        (
            "field `http.status`: expected a value when there is a response, found null",
            |v| {
                v["http"]["status"] = Value::Null;
            },
        ),
        (
            "field `http.reason`: expected a value when there is a response, found null",
            |v| {
                v["http"]["reason"] = Value::Null;
            },
        ),
        (
            "field `http.request.version`: disagrees with `http.version` (HTTP/1.1)",
            |v| {
                v["http"]["request"]["version"] = json!("HTTP/1.0");
            },
        ),
        (
            "field `http.request.headers[0][1]`: header values are always complete, not truncated",
            |v| {
                v["http"]["request"]["headers"][0][1] =
                    json!({"text": "shop", "len": 9, "truncated": true});
            },
        ),
        (
            "field `http.response.headers[0]`: expected a two-element array, found an object",
            |v| {
                v["http"]["response"]["headers"][0] = json!({"Content-Length": "2"});
            },
        ),
    ];
    for (expected, edit) in cases {
        assert_eq!(error_after(&http_sample(), edit), expected);
    }
}

#[test]
fn lines_that_are_not_json_objects_say_so() {
    let message = parse_line("{\"schema\":1,\"id\":").unwrap_err().to_string();
    assert!(
        message.starts_with("not JSON: EOF while parsing"),
        "{message}"
    );
    let message = parse_line("hello").unwrap_err().to_string();
    assert!(
        message.starts_with("not JSON: expected value at line 1 column 1"),
        "{message}"
    );
    let message = parse_line("[1, 2]").unwrap_err().to_string();
    assert_eq!(
        message,
        "not a record: expected a JSON object, found an array"
    );
}

/// Lines 1..=15 of a file with good records (ids 1 to 4) among every kind of bad line.
fn mixed_input() -> Vec<u8> {
    let mut first = redis_sample();
    first.id = 1;
    let mut second = http_sample();
    second.id = 2;
    let mut third = push(Frame::Push(vec![Frame::Bulk(Blob::full("message"))]));
    third.id = 3;
    let mut fourth = command("GET", vec![Blob::full("k")], None);
    fourth.id = 4;
    let good = line_of(&redis_sample());
    let mut input = Vec::new();
    input.extend_from_slice(line_of(&first).as_bytes()); // 1
    input.extend_from_slice(b"\n"); // 2
    input.extend_from_slice(b"   \t\r\n"); // 3
    input.extend_from_slice(b"garbage\n"); // 4
    input.extend_from_slice(line_of(&second).as_bytes()); // 5
    input.extend_from_slice(&good.as_bytes()[..good.len() / 2]); // 6: cut short
    input.push(b'\n');
    input.extend_from_slice(good.replace("\"pid\":4242", "\"pid\":\"4242\"").as_bytes()); // 7
    input.extend_from_slice(good.replace("\"comm\":\"redis-cli\",", "").as_bytes()); // 8
    input.extend_from_slice(good.replace("\"schema\":1", "\"schema\":2").as_bytes()); // 9
    input.extend_from_slice(b"{\"schema\":1,\"comm\":\"\xff\xfe\"}\n"); // 10
    input.extend_from_slice(b"[]\n"); // 11
    input.extend_from_slice(line_of(&third).trim_end().as_bytes()); // 12: CRLF
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"\n"); // 13
    input.extend_from_slice(b"{}\n"); // 14
    input.extend_from_slice(line_of(&fourth).trim_end().as_bytes()); // 15: no newline at the end
    input
}

#[test]
fn read_keeps_good_records_in_order_and_reports_each_bad_line() {
    let imported = read(mixed_input().as_slice(), &Redaction::default()).unwrap();
    assert_eq!(imported.lines, 15);
    let ids: Vec<u64> = imported.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let expected: [(u64, &str); 8] = [
        (4, "not JSON: expected value at line 1 column 1"),
        (6, "not JSON: EOF while parsing"),
        (
            7,
            "field `pid`: expected an integer from 0 to 4294967295, found a string",
        ),
        (8, "field `comm`: missing"),
        (9, "schema 2 is newer than this watcher understands (1)"),
        (10, "not UTF-8 (invalid byte at offset 20)"),
        (11, "not a record: expected a JSON object, found an array"),
        (14, "field `schema`: missing"),
    ];
    assert_eq!(
        imported.bad_lines.len(),
        expected.len(),
        "{:#?}",
        imported.bad_lines
    );
    for (bad, (line, reason)) in imported.bad_lines.iter().zip(expected) {
        assert_eq!(bad.line, line, "{bad:?}");
        assert!(
            bad.reason.starts_with(reason),
            "{bad:?} should start with {reason:?}"
        );
    }
    let mut fourth = command("GET", vec![Blob::full("k")], None);
    fourth.id = 4;
    assert_eq!(imported.records[3], fourth);
}

#[test]
fn read_of_empty_or_blank_input_finds_nothing() {
    let imported = read(&b""[..], &Redaction::default()).unwrap();
    assert_eq!(imported, Imported::default());
    let imported = read(&b"\n\n  \n"[..], &Redaction::default()).unwrap();
    assert_eq!((imported.lines, imported.records.len()), (3, 0));
    assert!(imported.bad_lines.is_empty());
}

#[test]
fn read_shares_one_endpoint_between_records_of_a_connection() {
    let mut other = http_sample();
    other.endpoint = Arc::new(Endpoint::new(
        9,
        "curl",
        addr("10.0.0.1:40000"),
        addr("10.0.0.2:80"),
        Side::Client,
    ));
    let mut input = String::new();
    for r in [redis_sample(), other, redis_sample(), http_sample()] {
        input.push_str(&line_of(&r));
    }
    let records = read(input.as_bytes(), &Redaction::default())
        .unwrap()
        .records;
    assert!(Arc::ptr_eq(&records[0].endpoint, &records[2].endpoint));
    assert!(Arc::ptr_eq(&records[0].endpoint, &records[3].endpoint));
    assert!(!Arc::ptr_eq(&records[0].endpoint, &records[1].endpoint));
    assert_eq!(records[1].endpoint.comm.as_ref(), "curl");
}

/// Gives its first line, then fails.
struct FailsAfterOneLine {
    line: io::Cursor<Vec<u8>>,
}

impl Read for FailsAfterOneLine {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for FailsAfterOneLine {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.line.fill_buf()?.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        self.line.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.line.consume(amount);
    }
}

#[test]
fn read_fails_only_when_the_input_fails_and_says_on_which_line() {
    let input = FailsAfterOneLine {
        line: io::Cursor::new(line_of(&redis_sample()).into_bytes()),
    };
    let error = read(input, &Redaction::default()).unwrap_err();
    let ImportError::Read { line, source } = &error;
    assert_eq!(*line, 2);
    assert_eq!(source.to_string(), "disk on fire");
    assert_eq!(error.to_string(), "reading line 2 of the input failed");
}

#[test]
fn cut_aggregates_round_trip_and_half_a_cut_is_an_error() {
    let cut = |kept: Frame| Frame::Cut {
        kept: Box::new(kept),
        len: 5000,
    };
    for reply in [
        cut(Frame::Array(vec![Frame::Integer(1)])),
        cut(Frame::Map(vec![(
            Frame::Simple(Blob::full("k")),
            Frame::Null,
        )])),
        cut(Frame::Set(Vec::new())),
    ] {
        assert_round_trip(&command("LRANGE", vec![Blob::full("l")], Some(reply)));
    }
    let sample = command("LRANGE", vec![], Some(cut(Frame::Array(Vec::new()))));
    let error = error_after(&sample, |v| {
        v["redis"]["reply"]
            .as_object_mut()
            .unwrap()
            .remove("truncated");
    });
    assert!(
        error.contains("`len` and `truncated: true` go together"),
        "{error}"
    );
}

#[test]
fn a_file_is_masked_as_it_is_read_unless_secrets_are_shown() {
    let mut auth = command(
        "AUTH",
        vec![Blob::full("hunter2")],
        Some(Frame::Simple(Blob::full("OK"))),
    );
    auth.id = 1;
    let mut login = http(
        get("/login?password=pw", headers(&[("Cookie", b"sid=abc")])),
        None,
    );
    login.id = 2;
    // As `--show-secrets` would have written them.
    let file = format!("{}{}", line_of(&auth), line_of(&login));

    let masked = read(file.as_bytes(), &Redaction::default())
        .unwrap()
        .records;
    let Exchange::Redis(x) = &masked[0].exchange else {
        panic!("redis")
    };
    assert_eq!(
        (x.args[0].data.as_slice(), x.args[0].redacted()),
        (&b"*******"[..], true)
    );
    let Exchange::Http(x) = &masked[1].exchange else {
        panic!("http")
    };
    assert_eq!(x.request.target, "/login?password=**");
    assert_eq!(
        x.request.headers.iter_marked().collect::<Vec<_>>(),
        [("Cookie", &b"sid=***"[..], true)]
    );
    assert!(masked.iter().all(|r| r.redacted));
    // Masked records written again read back as they are, marks and all.
    let again = masked.iter().map(line_of).collect::<String>();
    assert_eq!(
        read(again.as_bytes(), &Redaction::default())
            .unwrap()
            .records,
        masked
    );

    let shown = read(file.as_bytes(), &Redaction::off()).unwrap().records;
    assert_eq!(shown, [auth, login]);
}

#[test]
fn a_file_written_before_redaction_existed_still_reads() {
    let line = line_of(&redis_sample());
    let mut value: Value = serde_json::from_str(&line).unwrap();
    value.as_object_mut().unwrap().remove("redacted");
    let record = parse_line(&value.to_string()).unwrap();
    assert!(!record.redacted);
}

/// Bytes that are valid UTF-8 (from `text`) or arbitrary (from `bytes`), with `missing` bytes not kept.
fn blob_strategy() -> impl Strategy<Value = Blob> {
    let data = prop_oneof![
        ".{0,24}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..48),
    ];
    let missing = prop_oneof![Just(0_u64), 1_u64..100, Just(u64::MAX / 2)];
    (data, missing, any::<bool>()).prop_map(|(data, missing, redacted)| {
        let len = data.len() as u64 + missing;
        let mut blob = Blob::new(data.into(), len);
        blob.set_redacted(redacted);
        blob
    })
}

proptest! {
    #[test]
    fn blobs_round_trip_everywhere_they_appear(
        arg in blob_strategy(),
        value in blob_strategy(),
        body in blob_strategy(),
    ) {
        assert_round_trip(&command("SET", vec![arg], Some(Frame::Bulk(value.clone()))));
        let mut request = get("/", Headers::default());
        request.body = body;
        assert_round_trip(&http(request, Some(ok(Headers::default(), value))));
    }

    #[test]
    fn header_fields_round_trip(
        fields in vec(("[!#-'*+.0-9A-Z^-z|~-]{1,12}", vec(any::<u8>(), 0..24)), 0..8),
    ) {
        let headers: Headers = fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        assert_round_trip(&http(get("/", headers), None));
    }

    #[test]
    fn finite_doubles_read_back_to_the_text_written(bits in any::<u64>()) {
        let v = f64::from_bits(bits);
        prop_assume!(v.is_finite());
        let shortest = ryu::Buffer::new().format_finite(v).to_owned();
        assert_round_trip(&command("GET", Vec::new(), Some(Frame::Double(shortest))));
        let longhand = format!("{v:e}");
        let line = line_of(&command("GET", Vec::new(), Some(Frame::Double(longhand))));
        assert_eq!(line_of(&parse_line(&line).unwrap()), line);
    }
}

/// A multi-statement query answered with rows (a NULL, a truncated binary value), an OK and an error,
/// on a connection whose handshake was seen.
fn mysql_multi_result_query(
    connection: Option<Arc<crate::protocol::mysql::ConnectionInfo>>,
) -> crate::protocol::mysql::MysqlExchange {
    use crate::protocol::mysql::{
        exchange::{Column, ErrorInfo, OkInfo, ResultSet},
        Command, MysqlExchange, MysqlResponse, Outcome,
    };
    let column = |name: &str, type_code| Column {
        name: name.into(),
        type_code,
        flags: 0x20,
    };
    let mut query = MysqlExchange::new(Command::QUERY);
    query.sql = Some(prefix("SELECT id, note FROM t; UPDATE t SET", 60));
    query.connection = connection;
    query.response = Some(MysqlResponse {
        results: vec![
            Outcome::Rows(Box::new(ResultSet {
                columns: vec![column("id", 3), column("note", 0xfc)],
                rows: 3,
                first_rows: vec![
                    vec![Some(Blob::full("1")), None],
                    vec![Some(Blob::full("2")), Some(prefix(vec![0xff, 0], 900))],
                ],
                binary: false,
                end: OkInfo {
                    status: 0x0a,
                    ..OkInfo::default()
                },
            })),
            Outcome::Ok(OkInfo {
                affected_rows: 2,
                last_insert_id: 9,
                status: 2,
                warnings: 1,
                info: "Rows matched: 2  Changed: 2  Warnings: 1".into(),
            }),
            Outcome::Error(ErrorInfo {
                code: 1146,
                sql_state: "42S02".into(),
                message: "Table 'shop.u' doesn't exist".into(),
            }),
        ],
    });
    query
}

#[test]
fn mysql_exchanges_of_every_result_kind_round_trip() {
    use crate::protocol::mysql::{
        exchange::{Column, OkInfo, Param, Prepared, ResultSet},
        Command, ConnectionInfo, MysqlExchange, MysqlResponse, Outcome,
    };
    let connection = Some(Arc::new(ConnectionInfo {
        server_version: "10.11.6-MariaDB".into(),
        connection_id: 42,
        user: "app".into(),
        database: Some("shop".into()),
        capabilities: (1 << 5) | (1 << 36),
    }));
    let column = |name: &str, type_code| Column {
        name: name.into(),
        type_code,
        flags: 0x20,
    };
    let query = mysql_multi_result_query(connection);
    let mut execute = MysqlExchange::new(Command::STMT_EXECUTE);
    execute.sql = Some(Blob::full("SELECT c FROM t WHERE id = ? AND d > ?"));
    execute.statement_id = Some(7);
    execute.params = vec![
        Param {
            type_code: 8,
            unsigned: true,
            value: Some(Blob::full("18446744073709551615")),
        },
        Param {
            type_code: 0x99,
            unsigned: false,
            value: None,
        },
    ];
    execute.response = Some(MysqlResponse {
        results: vec![Outcome::Rows(Box::new(ResultSet {
            columns: vec![column("c", 0xfe)],
            rows: 0,
            binary: true,
            ..ResultSet::default()
        }))],
    });
    let mut prepare = MysqlExchange::new(Command::STMT_PREPARE);
    prepare.sql = execute.sql.clone();
    prepare.response = Some(MysqlResponse {
        results: vec![Outcome::Prepared(Box::new(Prepared {
            statement_id: 7,
            params: 2,
            columns: vec![column("c", 0xfe)],
            warnings: 0,
        }))],
    });
    let mut fields = MysqlExchange::new(Command::FIELD_LIST);
    fields.argument = Some(Blob::full("t"));
    fields.response = Some(MysqlResponse {
        results: vec![Outcome::Fields(vec![column("id", 3)])],
    });
    let mut statistics = MysqlExchange::new(Command::STATISTICS);
    statistics.response = Some(MysqlResponse {
        results: vec![Outcome::Text(Blob::full("Uptime: 5  Threads: 1"))],
    });
    let mut infile = MysqlExchange::new(Command::QUERY);
    infile.sql = Some(Blob::full(
        "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t",
    ));
    infile.response = Some(MysqlResponse {
        results: vec![
            Outcome::Infile("/tmp/x.csv".into()),
            Outcome::Ok(OkInfo::default()),
        ],
    });
    let mut close = MysqlExchange::new(Command::STMT_CLOSE);
    close.statement_id = Some(7);
    close.response = Some(MysqlResponse::default());
    let unanswered = MysqlExchange::new(Command::from_code(0x0e));
    for exchange in [query, execute, prepare, fields, statistics, infile, close] {
        assert_round_trip(&record(Exchange::Mysql(Box::new(exchange))));
    }
    let mut r = record(Exchange::Mysql(Box::new(unanswered)));
    r.end_unix_ns = None;
    assert_round_trip(&r);
}
