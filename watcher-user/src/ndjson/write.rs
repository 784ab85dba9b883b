//! NDJSON encoding of records, schema version 1 (documented in `docs/json-schema.md`): the record's own
//! fields, then its payload under its protocol's name, written by the protocol (`Payload::write_json`).
//! Built on the primitives of `protocol::json::write`.

use std::{collections::HashMap, sync::Arc};

use crate::{
    protocol::json::write::{write_bool, write_name, write_opt_u64, write_str, write_u64},
    record::{Endpoint, Record},
};

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
    write_name(out, r.protocol());
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
    // Only when true: plain connections are most of a capture, and the field is additive.
    if e.tls {
        out.extend_from_slice(b",\"tls\":true");
    }
    // Only when known: captures read back from files written before cgroups were recorded have none.
    if let Some(cgroup) = &e.cgroup {
        out.extend_from_slice(b",\"cgroup\":{\"id\":");
        write_u64(out, cgroup.id);
        out.extend_from_slice(b",\"path\":");
        write_str(out, &cgroup.path);
        out.push(b'}');
        if let Some(container) = &cgroup.container {
            out.extend_from_slice(b",\"container\":");
            write_str(out, container);
        }
    }
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
    out.extend_from_slice(b",\"redacted\":");
    write_bool(out, r.redacted);
    out.extend_from_slice(b",\"error\":");
    write_bool(out, r.is_error());
    // The payload sits under its protocol's name: `"redis":{...}`.
    out.extend_from_slice(b",\"");
    out.extend_from_slice(r.protocol().as_bytes());
    out.extend_from_slice(b"\":");
    r.exchange.payload().write_json(out);
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
