//! NDJSON encoding of records, schema version 1 (documented in `docs/json-schema.md`).
//!
//! Binary-safe values ("blobs") are a JSON string when complete and valid UTF-8, and otherwise an object
//! `{"text"|"base64": ..., "len": true_length, "truncated": bool}`, so no byte is ever lost or guessed.
//!
//! Written straight into a byte buffer instead of through serde: export touches every field of every
//! record and is the busiest stage of a capture. Keys are constants written in one piece (`serde_json`
//! escapes each key on every record) and strings are escaped in runs. The tests read the output back with
//! `serde_json`, so the encoder is held to a real JSON parser.

use base64::Engine as _;

use crate::{
    protocol::{
        http::{version_text, Headers, HttpExchange},
        redis::{ExchangeKind, Frame, RedisExchange},
        Blob,
    },
    record::{Endpoint, Exchange, Record},
};

use std::{collections::HashMap, sync::Arc};

/// Version written in every record's `schema` field.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes `record` as one JSON line (with the trailing newline) into `out`.
pub fn write_record(record: &Record, out: &mut Vec<u8>) {
    write_head(out, record);
    write_endpoint(out, &record.endpoint);
    write_tail(out, record);
}

/// Endpoints whose encoded text an encoder keeps; past this it starts afresh, so a long capture over
/// many short connections cannot grow it without bound.
const CACHED_ENDPOINTS: usize = 4096;

/// Writes records one after another like [`write_record`], but encodes the endpoint part (process and
/// addresses, the same for every record of a connection) once per connection rather than per record.
#[derive(Default)]
pub struct RecordEncoder {
    /// By the endpoint's address; the `Arc` held keeps that address from being reused meanwhile.
    endpoints: HashMap<usize, (Arc<Endpoint>, Vec<u8>), foldhash::fast::RandomState>,
}

impl RecordEncoder {
    /// Writes `record` as one JSON line (with the trailing newline) into `out`.
    pub fn write(&mut self, record: &Record, out: &mut Vec<u8>) {
        write_head(out, record);
        let key = Arc::as_ptr(&record.endpoint) as usize;
        // Checked only when full, so the usual record costs one lookup.
        if self.endpoints.len() >= CACHED_ENDPOINTS && !self.endpoints.contains_key(&key) {
            self.endpoints.clear();
        }
        let (_, text) = self.endpoints.entry(key).or_insert_with(|| {
            let mut text = Vec::with_capacity(128);
            write_endpoint(&mut text, &record.endpoint);
            (Arc::clone(&record.endpoint), text)
        });
        out.extend_from_slice(text);
        write_tail(out, record);
    }
}

fn write_head(out: &mut Vec<u8>, r: &Record) {
    out.extend_from_slice(b"{\"schema\":");
    write_u64(out, u64::from(SCHEMA_VERSION));
    out.extend_from_slice(b",\"id\":");
    write_u64(out, r.id);
    out.extend_from_slice(b",\"protocol\":");
    write_str(out, r.protocol());
}

fn write_endpoint(out: &mut Vec<u8>, e: &Endpoint) {
    out.extend_from_slice(b",\"side\":");
    write_str(out, e.side.as_str());
    out.extend_from_slice(b",\"pid\":");
    write_u64(out, u64::from(e.pid));
    out.extend_from_slice(b",\"comm\":");
    write_str(out, &e.comm);
    out.extend_from_slice(b",\"local\":");
    write_str(out, e.local_text());
    out.extend_from_slice(b",\"remote\":");
    write_str(out, e.remote_text());
}

fn write_tail(out: &mut Vec<u8>, r: &Record) {
    out.extend_from_slice(b",\"start_unix_ns\":");
    write_u64(out, r.start_unix_ns);
    out.extend_from_slice(b",\"end_unix_ns\":");
    write_opt_u64(out, r.end_unix_ns);
    out.extend_from_slice(b",\"latency_ns\":");
    write_opt_u64(out, r.latency_ns());
    out.extend_from_slice(b",\"request_bytes\":");
    write_u64(out, r.request_bytes);
    out.extend_from_slice(b",\"response_bytes\":");
    write_u64(out, r.response_bytes);
    out.extend_from_slice(b",\"truncated\":");
    write_bool(out, r.truncated);
    out.extend_from_slice(b",\"error\":");
    write_bool(out, r.is_error());
    match &r.exchange {
        Exchange::Redis(x) => {
            out.extend_from_slice(b",\"redis\":");
            write_redis(out, x);
        }
        Exchange::Http(x) => {
            out.extend_from_slice(b",\"http\":");
            write_http(out, x);
        }
    }
    out.extend_from_slice(b"}\n");
}

fn write_redis(out: &mut Vec<u8>, x: &RedisExchange) {
    let kind = match x.kind {
        ExchangeKind::Command => "command",
        ExchangeKind::Push => "push",
    };
    out.extend_from_slice(b"{\"kind\":");
    write_str(out, kind);
    out.extend_from_slice(b",\"command\":");
    if x.kind == ExchangeKind::Command {
        write_str(out, &x.command);
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"args\":[");
    for (i, arg) in x.args.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_blob(out, arg);
    }
    out.extend_from_slice(b"],\"reply\":");
    match &x.reply {
        Some(frame) => write_frame(out, frame),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn write_http(out: &mut Vec<u8>, x: &HttpExchange) {
    let req = &x.request;
    let rsp = x.response.as_ref();
    out.extend_from_slice(b"{\"method\":");
    write_str(out, &req.method);
    out.extend_from_slice(b",\"target\":");
    write_str(out, &req.target);
    out.extend_from_slice(b",\"path\":");
    write_str(out, x.path());
    out.extend_from_slice(b",\"query\":");
    write_opt_str(out, x.query());
    out.extend_from_slice(b",\"host\":");
    write_opt_str(out, x.host());
    out.extend_from_slice(b",\"version\":");
    write_str(out, version_text(req.version));
    out.extend_from_slice(b",\"status\":");
    write_opt_u64(out, rsp.map(|r| u64::from(r.status)));
    out.extend_from_slice(b",\"reason\":");
    write_opt_str(out, rsp.map(|r| r.reason.as_str()));
    out.extend_from_slice(b",\"request\":");
    write_message(out, req.version, &req.headers, &req.body, &req.trailers);
    out.extend_from_slice(b",\"response\":");
    match rsp {
        Some(r) => write_message(out, r.version, &r.headers, &r.body, &r.trailers),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn write_message(
    out: &mut Vec<u8>,
    version: u8,
    headers: &Headers,
    body: &Blob,
    trailers: &Headers,
) {
    out.extend_from_slice(b"{\"version\":");
    write_str(out, version_text(version));
    out.extend_from_slice(b",\"headers\":");
    write_headers(out, headers);
    out.extend_from_slice(b",\"body\":");
    write_blob(out, body);
    out.extend_from_slice(b",\"body_bytes\":");
    write_u64(out, body.len);
    out.extend_from_slice(b",\"body_truncated\":");
    write_bool(out, body.is_truncated());
    out.extend_from_slice(b",\"trailers\":");
    write_headers(out, trailers);
    out.push(b'}');
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    out.push(b'[');
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_str(out, name);
        out.push(b',');
        write_value(out, value, value.len() as u64);
        out.push(b']');
    }
    out.push(b']');
}

fn write_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => write_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_blob(out: &mut Vec<u8>, b: &Blob) {
    write_value(out, &b.data, b.len);
}

/// A value of true length `len` of which `data` was kept (see the module doc).
fn write_value(out: &mut Vec<u8>, data: &[u8], len: u64) {
    let truncated = (data.len() as u64) < len;
    let text = std::str::from_utf8(data).ok();
    if let (Some(text), false) = (text, truncated) {
        return write_str(out, text);
    }
    if let Some(text) = text {
        out.extend_from_slice(b"{\"text\":");
        write_str(out, text);
    } else {
        out.extend_from_slice(b"{\"base64\":\"");
        // Base64 needs no escaping.
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        out.extend_from_slice(encoded.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"len\":");
    write_u64(out, len);
    out.extend_from_slice(b",\"truncated\":");
    write_bool(out, truncated);
    out.push(b'}');
}

fn frame_type(frame: &Frame) -> &'static str {
    match frame {
        Frame::Simple(_) => "simple",
        Frame::Error(_) => "error",
        Frame::Integer(_) => "integer",
        Frame::Bulk(_) => "bulk",
        Frame::Null => "null",
        Frame::Array(_) => "array",
        Frame::Map(_) => "map",
        Frame::Set(_) => "set",
        Frame::Push(_) => "push",
        Frame::Double(_) => "double",
        Frame::Boolean(_) => "boolean",
        Frame::BigNumber(_) => "bignumber",
        Frame::Verbatim { .. } => "verbatim",
    }
}

fn write_frame(out: &mut Vec<u8>, frame: &Frame) {
    out.extend_from_slice(b"{\"type\":");
    write_str(out, frame_type(frame));
    if let Frame::Verbatim { format, .. } = frame {
        out.extend_from_slice(b",\"format\":");
        write_str(out, format);
    }
    out.extend_from_slice(b",\"value\":");
    match frame {
        Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => {
            write_blob(out, b);
        }
        Frame::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Frame::Null => out.extend_from_slice(b"null"),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_frame(out, item);
            }
            out.push(b']');
        }
        Frame::Map(pairs) => {
            out.push(b'[');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                write_frame(out, k);
                out.push(b',');
                write_frame(out, v);
                out.push(b']');
            }
            out.push(b']');
        }
        Frame::Double(d) => match d.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
            }
            _ => write_str(out, d),
        },
        Frame::Boolean(b) => write_bool(out, *b),
        Frame::BigNumber(n) => write_str(out, n),
    }
    out.push(b'}');
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn write_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => write_u64(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped, everything else
/// copied in runs.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    if is_clean(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
    out.push(b'"');
}

/// Bytes checked at a time when a string does need escaping: values such as stored JSON have a quote
/// every few dozen bytes, and checking a block at once keeps the clean stretches between them cheap.
const BLOCK: usize = 16;

/// Whether no byte of `bytes` needs escaping. Deliberately not short-circuiting, so that it compiles
/// to a vectorised scan.
#[inline]
fn is_clean(bytes: &[u8]) -> bool {
    #[allow(
        clippy::needless_bitwise_bool,
        reason = "branch-free on purpose, see above"
    )]
    bytes
        .iter()
        .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run_start = 0;
    for (block_index, block) in bytes.chunks(BLOCK).enumerate() {
        if is_clean(block) {
            continue;
        }
        for (j, &b) in block.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            let at = block_index * BLOCK + j;
            out.extend_from_slice(&bytes[run_start..at]);
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            } else {
                out.extend_from_slice(escape);
            }
            run_start = at + 1;
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Arc};

    use super::*;
    use crate::record::{Endpoint, Side};

    fn record(args: Vec<Blob>, reply: Frame) -> Record {
        Record {
            id: 7,
            endpoint: Arc::new(Endpoint::new(
                42,
                "redis-cli",
                "127.0.0.1:50000".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:6379".parse().unwrap(),
                Side::Client,
            )),
            start_unix_ns: 1_000,
            end_unix_ns: Some(1_500),
            request_bytes: 30,
            response_bytes: 5,
            truncated: false,
            exchange: Exchange::Redis(RedisExchange {
                kind: ExchangeKind::Command,
                command: "SET".into(),
                args,
                reply: Some(reply),
            }),
        }
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

    proptest::proptest! {
        /// Escaping works on blocks; whatever the string and wherever its special bytes fall relative
        /// to the block boundaries, a JSON parser reads back exactly the string.
        #[test]
        fn strings_read_back_exactly(
            s in proptest::string::string_regex("[a-z\"\\\\\n\t\u{1}\u{1f}é€]{0,70}").unwrap()
        ) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
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
        let truncated = Blob {
            data: b"abc"[..].into(),
            len: 10,
        };
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
                    text: Blob::full("hi"),
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
        let body = Blob {
            data: [0x00, 0xff][..].into(),
            len: 5000,
        };
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
}
