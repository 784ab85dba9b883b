//! NDJSON encoding of records, schema version 1 (documented in `docs/json-schema.md`).
//!
//! Binary-safe values ("blobs") are a JSON string when complete and valid UTF-8, and otherwise an object
//! `{"text"|"base64": ..., "len": true_length, "truncated": bool}`, so no byte is ever lost or guessed.

use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::{
    protocol::redis::{Blob, ExchangeKind, Frame, RedisExchange},
    record::{Exchange, Record},
};

/// Version written in every record's `schema` field.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes `record` as one JSON line (with the trailing newline) into `out`.
pub fn write_record(record: &Record, out: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, &JsonRecord(record))?;
    out.push(b'\n');
    Ok(())
}

struct JsonRecord<'a>(&'a Record);

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("schema", &SCHEMA_VERSION)?;
        m.serialize_entry("id", &r.id)?;
        m.serialize_entry("protocol", r.protocol())?;
        m.serialize_entry("side", r.endpoint.side.as_str())?;
        m.serialize_entry("pid", &r.endpoint.pid)?;
        m.serialize_entry("comm", &*r.endpoint.comm)?;
        m.serialize_entry("local", &r.endpoint.local.to_string())?;
        m.serialize_entry("remote", &r.endpoint.remote.to_string())?;
        m.serialize_entry("start_unix_ns", &r.start_unix_ns)?;
        m.serialize_entry("end_unix_ns", &r.end_unix_ns)?;
        m.serialize_entry("latency_ns", &r.latency_ns())?;
        m.serialize_entry("request_bytes", &r.request_bytes)?;
        m.serialize_entry("response_bytes", &r.response_bytes)?;
        m.serialize_entry("truncated", &r.truncated)?;
        m.serialize_entry("error", &r.is_error())?;
        match &r.exchange {
            Exchange::Redis(x) => m.serialize_entry("redis", &JsonRedis(x))?,
        }
        m.end()
    }
}

struct JsonRedis<'a>(&'a RedisExchange);

impl Serialize for JsonRedis<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut m = s.serialize_map(None)?;
        let kind = match x.kind {
            ExchangeKind::Command => "command",
            ExchangeKind::Push => "push",
        };
        m.serialize_entry("kind", kind)?;
        m.serialize_entry(
            "command",
            &(x.kind == ExchangeKind::Command).then_some(x.command.as_str()),
        )?;
        m.serialize_entry("args", &Blobs(&x.args))?;
        m.serialize_entry("reply", &x.reply.as_ref().map(JsonFrame))?;
        m.end()
    }
}

struct Blobs<'a>(&'a [Blob]);

impl Serialize for Blobs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for b in self.0 {
            seq.serialize_element(&JsonBlob(b))?;
        }
        seq.end()
    }
}

struct JsonBlob<'a>(&'a Blob);

impl Serialize for JsonBlob<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        let text = std::str::from_utf8(&b.data).ok();
        if let (Some(text), false) = (text, b.is_truncated()) {
            return s.serialize_str(text);
        }
        let mut m = s.serialize_map(Some(3))?;
        match text {
            Some(text) => m.serialize_entry("text", text)?,
            None => m.serialize_entry(
                "base64",
                &base64::engine::general_purpose::STANDARD.encode(&b.data),
            )?,
        }
        m.serialize_entry("len", &b.len)?;
        m.serialize_entry("truncated", &b.is_truncated())?;
        m.end()
    }
}

struct JsonFrame<'a>(&'a Frame);

impl JsonFrame<'_> {
    fn type_name(&self) -> &'static str {
        match self.0 {
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
}

impl Serialize for JsonFrame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.type_name())?;
        match self.0 {
            Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => {
                m.serialize_entry("value", &JsonBlob(b))?;
            }
            Frame::Integer(i) => m.serialize_entry("value", i)?,
            Frame::Null => m.serialize_entry("value", &())?,
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                m.serialize_entry("value", &Frames(items))?;
            }
            Frame::Map(pairs) => m.serialize_entry("value", &Pairs(pairs))?,
            Frame::Double(d) => match d.parse::<f64>() {
                Ok(v) if v.is_finite() => m.serialize_entry("value", &v)?,
                _ => m.serialize_entry("value", d)?,
            },
            Frame::Boolean(b) => m.serialize_entry("value", b)?,
            Frame::BigNumber(n) => m.serialize_entry("value", n)?,
            Frame::Verbatim { format, text } => {
                m.serialize_entry("format", format)?;
                m.serialize_entry("value", &JsonBlob(text))?;
            }
        }
        m.end()
    }
}

struct Frames<'a>(&'a [Frame]);

impl Serialize for Frames<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in self.0 {
            seq.serialize_element(&JsonFrame(f))?;
        }
        seq.end()
    }
}

struct Pairs<'a>(&'a [(Frame, Frame)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&(JsonFrame(k), JsonFrame(v)))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Arc};

    use super::*;
    use crate::record::{Endpoint, Side};

    fn record(args: Vec<Blob>, reply: Frame) -> Record {
        Record {
            id: 7,
            endpoint: Endpoint {
                pid: 42,
                comm: Arc::from("redis-cli"),
                local: "127.0.0.1:50000".parse::<SocketAddr>().unwrap(),
                remote: "127.0.0.1:6379".parse().unwrap(),
                side: Side::Client,
            },
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

    fn json(r: &Record) -> serde_json::Value {
        let mut out = Vec::new();
        write_record(r, &mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        serde_json::from_slice(&out).unwrap()
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
            data: b"abc".to_vec(),
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
}
