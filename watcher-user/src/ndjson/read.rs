//! Import: reads watcher's own NDJSON export (schema 1, `docs/json-schema.md`) back into records, so a
//! saved capture can be opened again. Decoding is the inverse of `ndjson::write::write_record`; the few
//! places where it cannot be exact are listed on [`parse_line`] and in each protocol's `json.rs`.
//!
//! A line that cannot be read as a record is reported and skipped, never fatal: only failing to read the
//! input at all is an error. This module must never touch the store, the terminal or the file system; it
//! reads the `BufRead` it is given and hands back plain records. Values are decoded with
//! `protocol::json::read`, whose errors name the full path of the field at fault.

use std::{
    collections::HashMap,
    io::{self, BufRead},
    net::SocketAddr,
    sync::Arc,
};

use super::write::SCHEMA_VERSION;
use crate::{
    cgroup::Cgroup,
    protocol::{
        json::{
            self,
            read::{
                boolean, inconsistent, kind_of, nullable, string, unknown, unsigned, unsigned_32,
                FieldError, FieldProblem, FieldResult, Fields, Json,
            },
        },
        redact::Redaction,
        ProtocolId,
    },
    record::{Endpoint, Record, Side},
};

/// A line that could not be read as a record (reported, skipped, never fatal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Line number in the input, from 1.
    pub line: u64,
    /// Why it was skipped (the `Display` text of a [`LineError`]).
    pub reason: String,
}

/// What an import found: the records in file order and the lines that were skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imported {
    /// Records read, in the order of their lines, with the ids the file gave them.
    pub records: Vec<Record>,
    /// Lines that were not blank and could not be read, in order.
    pub bad_lines: Vec<BadLine>,
    /// Lines in the input, blank and bad ones included.
    pub lines: u64,
}

/// Why an import stopped: only the input itself failing, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading from the input failed.
    #[error("reading line {line} of the input failed")]
    Read {
        /// The line being read, from 1.
        line: u64,
        /// What the reader reported.
        #[source]
        source: io::Error,
    },
}

/// Why one line is not a record. Inner errors are part of the message rather than `#[source]`s: a bad
/// line is reported by its one-line reason alone.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line's bytes are not UTF-8, so they cannot be JSON.
    #[error("not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte in the line.
        offset: usize,
    },
    /// The line is not one well-formed JSON value.
    #[error("not JSON: {error}")]
    NotJson {
        /// What the parser reported, with the column.
        error: serde_json::Error,
    },
    /// The line is JSON but not an object.
    #[error("not a record: expected a JSON object, found {found}")]
    NotObject {
        /// What kind of JSON value it is.
        found: &'static str,
    },
    /// The record was written by a newer watcher whose format this one cannot know.
    #[error("schema {schema} is newer than this watcher understands ({SCHEMA_VERSION})")]
    NewerSchema {
        /// The line's `schema` value.
        schema: u64,
    },
    /// One field is missing or holds something that is not what schema 1 allows there.
    #[error("field `{field}`: {problem}")]
    Field {
        /// Path of the field, e.g. `http.request.headers[2][1]`.
        field: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
}

/// Reads every line of `input`, keeping the records and reporting the lines that are not records. Blank
/// lines are skipped silently. Records on equal endpoints share one `Arc<Endpoint>`, as the records of
/// one connection do in a live capture. Secrets are masked as `redaction` says, as a live capture masks
/// them, so a file written with `--show-secrets` shows them again only when asked to.
pub fn read(mut input: impl BufRead, redaction: &Redaction) -> Result<Imported, ImportError> {
    let mut imported = Imported::default();
    let mut endpoints = SharedEndpoints::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|source| ImportError::Read {
                line: imported.lines + 1,
                source,
            })?;
        if read == 0 {
            return Ok(imported);
        }
        imported.lines += 1;
        match parse_bytes(&line, &mut endpoints) {
            Ok(None) => {}
            Ok(Some(mut record)) => {
                record.redacted |= record.exchange.redact(redaction);
                imported.records.push(record);
            }
            Err(error) => imported.bad_lines.push(BadLine {
                line: imported.lines,
                reason: error.to_string(),
            }),
        }
    }
}

/// Reads one record from one line (with or without its newline).
///
/// Every field the writer writes is required, except the derived ones, which are ignored and recomputed:
/// `latency_ns`, `error`, and in `http` `path`, `query`, `host`, and each message's `body_bytes` and
/// `body_truncated`. Unknown fields are ignored, so additions within schema 1 still read.
///
/// Where reading is not the exact inverse of writing:
/// - A finite `double` is written as a JSON number, so its text comes back in the shortest form that
///   round-trips: `3` as `3.0`, `1.50` as `1.5`, `1e3` as `1000.0`, `-0` as `-0.0`. Texts that are not a
///   finite number (`inf`, `nan`, garbage) are written as strings and kept as they are.
/// - A blob whose `len` is below its byte count (never built by the decoders) is written as a complete
///   value and reads back with `len` equal to its byte count.
/// - Any HTTP minor version other than 0 is written `HTTP/1.1` and reads back as 1.
/// - A push's command is written as `null` and reads back empty (decoders never give pushes a command).
pub fn parse_line(line: &str) -> Result<Record, LineError> {
    parse(line, &mut SharedEndpoints::default())
}

/// One line as bytes: `None` when blank.
fn parse_bytes(line: &[u8], endpoints: &mut SharedEndpoints) -> Result<Option<Record>, LineError> {
    if line.trim_ascii().is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(line).map_err(|error| LineError::NotUtf8 {
        offset: error.valid_up_to(),
    })?;
    parse(text, endpoints).map(Some)
}

fn parse(line: &str, endpoints: &mut SharedEndpoints) -> Result<Record, LineError> {
    let value = json::read::parse(line).map_err(|error| LineError::NotJson { error })?;
    if !matches!(value, Json::Object(_)) {
        return Err(LineError::NotObject {
            found: kind_of(&value),
        });
    }
    let mut fields = Fields::of(value)?;
    let schema = fields.take("schema", unsigned)?;
    if schema > u64::from(SCHEMA_VERSION) {
        return Err(LineError::NewerSchema { schema });
    }
    if schema == 0 {
        let problem = inconsistent("schema versions start at 1".to_owned());
        return Err(problem.under_key("schema").into());
    }
    Ok(record(fields, endpoints)?)
}

/// One `Arc` per distinct endpoint, looked up before one is built: rendering addresses as text is a
/// good part of the cost of a record, and a capture has far fewer connections than records.
#[derive(Default)]
struct SharedEndpoints(HashMap<(SocketAddr, SocketAddr), Vec<Arc<Endpoint>>>);

/// What an endpoint is besides its addresses, as read from a line.
struct Who<'a> {
    pid: u32,
    comm: &'a str,
    side: Side,
    tls: bool,
    cgroup: Option<Cgroup>,
}

impl SharedEndpoints {
    fn get(&mut self, who: Who<'_>, local: SocketAddr, remote: SocketAddr) -> Arc<Endpoint> {
        let same_addresses = self.0.entry((local, remote)).or_default();
        let found = same_addresses.iter().find(|e| {
            e.pid == who.pid
                && e.side == who.side
                && e.tls == who.tls
                && *e.comm == *who.comm
                && e.cgroup.as_deref() == who.cgroup.as_ref()
        });
        if let Some(endpoint) = found {
            return Arc::clone(endpoint);
        }
        let mut endpoint = Endpoint::new(who.pid, who.comm, local, remote, who.side);
        endpoint.tls = who.tls;
        endpoint.cgroup = who.cgroup.map(Arc::new);
        let endpoint = Arc::new(endpoint);
        same_addresses.push(Arc::clone(&endpoint));
        endpoint
    }
}

impl From<FieldError> for LineError {
    fn from(error: FieldError) -> Self {
        LineError::Field {
            field: error.path,
            problem: error.problem,
        }
    }
}

fn record(mut f: Fields<'_>, endpoints: &mut SharedEndpoints) -> FieldResult<Record> {
    let id = f.take("id", unsigned)?;
    let protocol = f.take("protocol", string)?;
    let side = f.take("side", side)?;
    let pid = f.take("pid", unsigned_32)?;
    let comm = f.take("comm", string)?;
    let local = f.take("local", address)?;
    let remote = f.take("remote", address)?;
    // Written only when true, and absent from files written before TLS capture existed.
    let tls = f.take_optional("tls", boolean)?.unwrap_or(false);
    // Both absent from files written before cgroups were recorded, and when the kernel could not tell.
    let mut cgroup = f.take_optional("cgroup", cgroup)?;
    let container = f.take_optional("container", string)?;
    if let (Some(cgroup), Some(container)) = (&mut cgroup, container) {
        cgroup.container = Some(container.into());
    }
    let Some(payload) = ProtocolId::from_name(&protocol) else {
        return Err(unknown("protocol", protocol).under_key("protocol"));
    };
    // The payload sits under its protocol's name and is read by the protocol.
    let exchange = f.take(payload.name(), |v| payload.read_json(v))?;
    Ok(Record {
        id,
        endpoint: endpoints.get(
            Who {
                pid,
                comm: &comm,
                side,
                tls,
                cgroup,
            },
            local,
            remote,
        ),
        start_unix_ns: f.take("start_unix_ns", unsigned)?,
        end_unix_ns: f.take("end_unix_ns", nullable(unsigned))?,
        request_bytes: f.take("request_bytes", unsigned)?,
        response_bytes: f.take("response_bytes", unsigned)?,
        truncated: f.take("truncated", boolean)?,
        // Absent from files written before redaction existed.
        redacted: f.take_optional("redacted", boolean)?.unwrap_or(false),
        exchange,
    })
}

fn cgroup(value: Json<'_>) -> FieldResult<Cgroup> {
    let mut f = Fields::of(value)?;
    let id = f.take("id", unsigned)?;
    let path = f.take("path", string)?;
    Ok(Cgroup::new(id, &path))
}

fn side(value: Json<'_>) -> FieldResult<Side> {
    let name = string(value)?;
    match name.as_ref() {
        "client" => Ok(Side::Client),
        "server" => Ok(Side::Server),
        _ => Err(unknown("side", name)),
    }
}

fn address(value: Json<'_>) -> FieldResult<SocketAddr> {
    let text = string(value)?;
    text.parse().map_err(|error| {
        let value = text.into_owned();
        FieldError::new(FieldProblem::BadAddress { value, error })
    })
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
