//! Tests of record encoding: every line is checked against `docs/record.schema.json` and read back with
//! `serde_json`; the cached encoder writes exactly what `write_record` writes.

use std::{net::SocketAddr, sync::Arc};

use super::*;
use crate::{
    protocol::{
        http::{Headers, HttpExchange},
        redis::Frame,
        Blob, Exchange,
    },
    record::Side,
    test_records::{redis_with_args, with_latency},
};

/// `SET` with `args` from `redis-cli` (pid 42, 127.0.0.1:50000 → 127.0.0.1:6379), id 7, 500 ns.
fn record(args: Vec<Blob>, reply: Frame) -> Record {
    let mut r = with_latency(redis_with_args("SET", args, Some(reply)), Some(500));
    r.id = 7;
    r
}

/// Encodes `r`, checks the line against the published JSON Schema, and parses it back.
fn json(r: &Record) -> serde_json::Value {
    let mut out = Vec::new();
    write_record(r, &mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    let value = serde_json::from_slice(&out).unwrap();
    assert_matches_schema(&value);
    value
}

/// `docs/record.schema.json`, compiled once.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = include_str!("../../../docs/record.schema.json");
        let schema: serde_json::Value = serde_json::from_str(text).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    })
}

fn assert_matches_schema(value: &serde_json::Value) {
    let errors: Vec<String> = schema()
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{value} breaks the schema: {errors:#?}");
}

#[test]
fn an_aggregate_cut_by_the_capture_size_says_how_long_it_was() {
    let cut = Frame::Cut {
        kept: Box::new(Frame::Array(vec![Frame::Bulk(Blob::full("a"))])),
        len: 1000,
    };
    let v = json(&record(vec![Blob::full("list")], cut));
    assert_eq!(
        v["redis"]["reply"],
        serde_json::json!({"type": "array", "value": [{"type": "bulk", "value": "a"}], "len": 1000, "truncated": true})
    );
    let mut broken = v.clone();
    broken["redis"]["reply"]["truncated"] = false.into();
    assert!(!schema().is_valid(&broken));
    let mut broken = v;
    broken["redis"]["reply"]["type"] = "bulk".into();
    assert!(!schema().is_valid(&broken));
}

#[test]
fn redacted_values_are_marked_objects_and_the_record_says_so() {
    let mut r = record(vec![Blob::full("hunter2")], Frame::Simple(Blob::full("OK")));
    r.redacted = true;
    let Exchange::Redis(x) = &mut r.exchange else {
        panic!("redis")
    };
    x.command = "AUTH".into();
    x.args[0].redact();
    let v = json(&r);
    assert_eq!(v["redacted"], true);
    assert_eq!(
        v["redis"]["args"][0],
        serde_json::json!({"text": "*******", "len": 7, "truncated": false, "redacted": true})
    );
    let mut headers = Headers::default();
    headers.push_marked("Authorization", b"Bearer ***", true);
    let mut h = with_latency(crate::test_records::http("GET", "/", Some(200)), Some(1));
    h.id = 1;
    let Exchange::Http(x) = &mut h.exchange else {
        panic!("http")
    };
    x.request.headers = headers;
    let v = json(&h);
    assert_eq!(
        v["http"]["request"]["headers"][0][1],
        serde_json::json!({"text": "Bearer ***", "len": 10, "truncated": false, "redacted": true})
    );
}

#[test]
fn the_schema_rejects_what_the_format_does_not_allow() {
    let good = json(&record(vec![Blob::full("k")], Frame::Integer(1)));
    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        !schema().is_valid(&v)
    };
    assert!(broken(&|v| v["schema"] = 2.into()));
    assert!(broken(&|v| v["side"] = "both".into()));
    assert!(broken(&|v| v["redis"]["reply"]["value"] = "1".into()));
    assert!(broken(
        &|v| v["redis"]["args"][0] =
            serde_json::json!({"base64": "!!", "len": 1, "truncated": false})
    ));
    assert!(broken(&|v| v["local"] = "localhost".into()));
    assert!(broken(&|v| {
        v.as_object_mut().unwrap().remove("redis");
    }));
    assert!(broken(&|v| v["http"] = serde_json::json!({})));
    assert!(broken(&|v| v["extra"] = 1.into()));
}

#[test]
fn the_encoder_writes_exactly_what_write_record_writes() {
    let endpoints: Vec<Arc<Endpoint>> = (0..CACHED_ENDPOINTS as u16 + 10)
        .map(|i| {
            Arc::new(Endpoint::new(
                u32::from(i),
                if i % 2 == 0 {
                    "a \"quoted\" name"
                } else {
                    "plain"
                },
                SocketAddr::from(([127, 0, 0, 1], i)),
                "[::1]:6379".parse().unwrap(),
                Side::Server,
            ))
        })
        .collect();
    let mut encoder = RecordEncoder::default();
    let (mut cached, mut plain) = (Vec::new(), Vec::new());
    // Each endpoint twice in a row, then all of them again: hits, misses and a cache that overflows.
    for (i, endpoint) in endpoints
        .iter()
        .flat_map(|e| [e, e])
        .chain(endpoints.iter())
        .enumerate()
    {
        let mut r = record(vec![Blob::full(format!("key{i}"))], Frame::Integer(1));
        r.id = i as u64;
        r.endpoint = Arc::clone(endpoint);
        encoder.write(&r, &mut cached);
        write_record(&r, &mut plain);
    }
    assert!(encoder.endpoints.len() <= CACHED_ENDPOINTS);
    assert_eq!(String::from_utf8(cached), String::from_utf8(plain));
}

#[test]
fn text_values_are_strings_and_fields_are_present() {
    let v = json(&record(
        vec![Blob::full("k"), Blob::full("v")],
        Frame::Simple(Blob::full("OK")),
    ));
    assert_eq!(v["schema"], 1);
    assert_eq!(v["latency_ns"], 500);
    assert_eq!(v["side"], "client");
    assert_eq!(v["local"], "127.0.0.1:50000");
    assert_eq!(v["redis"]["command"], "SET");
    assert_eq!(v["redis"]["args"], serde_json::json!(["k", "v"]));
    assert_eq!(
        v["redis"]["reply"],
        serde_json::json!({"type": "simple", "value": "OK"})
    );
}

#[test]
fn binary_and_truncated_values_are_lossless_objects() {
    let truncated = Blob::new(b"abc"[..].into(), 10);
    let v = json(&record(
        vec![Blob::full(vec![0xff, 0x00]), truncated],
        Frame::Array(vec![Frame::Integer(3), Frame::Null]),
    ));
    assert_eq!(
        v["redis"]["args"][0],
        serde_json::json!({"base64": "/wA=", "len": 2, "truncated": false})
    );
    assert_eq!(
        v["redis"]["args"][1],
        serde_json::json!({"text": "abc", "len": 10, "truncated": true})
    );
    assert_eq!(
        v["redis"]["reply"]["value"][0],
        serde_json::json!({"type": "integer", "value": 3})
    );
    assert_eq!(v["redis"]["reply"]["value"][1]["type"], "null");
}

#[test]
fn strings_are_escaped_and_every_frame_type_encodes() {
    let nasty = "quote\" backslash\\ nl\n tab\t bell\u{7} é ✓";
    let reply = Frame::Map(vec![
        (Frame::Bulk(Blob::full(nasty)), Frame::Double("1.5".into())),
        (
            Frame::Simple(Blob::full("inf")),
            Frame::Double("inf".into()),
        ),
        (
            Frame::Boolean(true),
            Frame::BigNumber("123456789012345678901234567890".into()),
        ),
        (
            Frame::Set(vec![Frame::Integer(-7)]),
            Frame::Verbatim {
                format: "txt".into(),
                text: Box::new(Blob::full("hi")),
            },
        ),
    ]);
    let v = json(&record(vec![Blob::full(nasty)], reply));
    assert_eq!(v["redis"]["args"][0], nasty);
    let pairs = &v["redis"]["reply"]["value"];
    assert_eq!(pairs[0][0]["value"], nasty);
    assert_eq!(pairs[0][1]["value"], 1.5);
    assert_eq!(pairs[1][1]["value"], "inf");
    assert_eq!(pairs[2][0]["value"], true);
    assert_eq!(pairs[2][1]["value"], "123456789012345678901234567890");
    assert_eq!(pairs[3][0]["value"][0]["value"], -7);
    assert_eq!(
        pairs[3][1],
        serde_json::json!({"type": "verbatim", "format": "txt", "value": "hi"})
    );
}

fn http_record(response_body: Blob) -> Record {
    use crate::protocol::http::{HttpRequest, HttpResponse};
    let mut r = record(Vec::new(), Frame::Null);
    r.exchange = Exchange::Http(Box::new(HttpExchange {
        request: HttpRequest {
            method: "POST".into(),
            target: "/api/items?limit=2".into(),
            version: 1,
            headers: [("Host", &b"shop.test"[..]), ("X-Raw", b"\xff\x00")]
                .into_iter()
                .collect(),
            body: Blob::full("{\"a\":1}"),
            trailers: Headers::default(),
        },
        response: Some(HttpResponse {
            version: 1,
            status: 503,
            reason: "Service Unavailable".into(),
            headers: [("Content-Type", &b"application/octet-stream"[..])]
                .into_iter()
                .collect(),
            body: response_body,
            trailers: [("X-Checksum", &b"abc"[..])].into_iter().collect(),
        }),
    }));
    r
}

#[test]
fn http_records_carry_request_response_headers_and_lossless_bodies() {
    let body = Blob::new([0x00, 0xff][..].into(), 5000);
    let v = json(&http_record(body));
    assert_eq!(v["protocol"], "http");
    assert_eq!(v["error"], true);
    let h = &v["http"];
    assert_eq!(
        (
            &h["method"],
            &h["target"],
            &h["path"],
            &h["query"],
            &h["host"]
        ),
        (
            &"POST".into(),
            &"/api/items?limit=2".into(),
            &"/api/items".into(),
            &"limit=2".into(),
            &"shop.test".into()
        )
    );
    assert_eq!(
        (&h["version"], &h["status"]),
        (&"HTTP/1.1".into(), &503.into())
    );
    assert_eq!(h["reason"], "Service Unavailable");
    assert_eq!(
        h["request"]["headers"][0],
        serde_json::json!(["Host", "shop.test"])
    );
    assert_eq!(h["request"]["headers"][1][1]["base64"], "/wA=");
    assert_eq!(h["request"]["body"], "{\"a\":1}");
    assert_eq!(h["request"]["body_bytes"], 7);
    let rsp = &h["response"];
    assert_eq!(rsp["body"]["base64"], "AP8=");
    assert_eq!(
        (&rsp["body_bytes"], &rsp["body_truncated"]),
        (&5000.into(), &true.into())
    );
    assert_eq!(rsp["trailers"][0], serde_json::json!(["X-Checksum", "abc"]));
}

#[test]
fn mysql_records_match_the_schema_and_it_rejects_a_result_of_two_kinds() {
    use crate::protocol::mysql::{
        exchange::{Column, ErrorInfo, OkInfo, ResultSet},
        Outcome,
    };
    let rows = Outcome::Rows(Box::new(ResultSet {
        columns: vec![Column {
            name: "note".into(),
            type_code: 0xfc,
            flags: 0,
        }],
        rows: 2,
        first_rows: vec![vec![None], vec![Some(Blob::new(vec![0xff; 4].into(), 10))]],
        binary: false,
        end: OkInfo::default(),
    }));
    let error = Outcome::Error(ErrorInfo {
        code: 1146,
        sql_state: "42S02".into(),
        message: "no".into(),
    });
    let r = crate::test_records::mysql(
        "SELECT note FROM t; SELECT * FROM u",
        Some(vec![rows, error]),
    );
    let v = json(&r);
    assert_eq!(v["protocol"], "mysql");
    assert_eq!(v["error"], true);
    assert_eq!(v["mysql"]["rows"], 2);
    assert_eq!(v["mysql"]["error_code"], 1146);
    assert_eq!(
        v["mysql"]["results"][0]["rows"]["first_rows"][0][0],
        serde_json::Value::Null
    );
    json(&crate::test_records::mysql("SELECT 1", None));
    let mut broken = v.clone();
    broken["mysql"]["results"][1]["ok"] = serde_json::json!({});
    assert!(!schema().is_valid(&broken));
    let mut broken = v;
    broken["http"] = serde_json::json!({});
    assert!(!schema().is_valid(&broken), "one payload object per record");
}
