//! Import: reads watcher's own NDJSON export (schema 1, `docs/json-schema.md`) back into records, so a
//! saved capture can be opened again. Decoding is the inverse of `export::json::write_record`; the few
//! places where it cannot be exact are listed on [`parse_line`].
//!
//! A line that cannot be read as a record is reported and skipped, never fatal: only failing to read the
//! input at all is an error. This module must never touch the store, the terminal or the file system; it
//! reads the `BufRead` it is given and hands back plain records.
//!
//! Each line is parsed into a small JSON tree that borrows its strings from the line, then taken apart
//! field by field (values are moved out, never cloned). That costs a little speed against derived structs
//! but lets every error name the full path of the field at fault, e.g.
//! ``field `redis.reply.value[2].type`: unknown frame type "foo"``.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    io::{self, BufRead},
    net::{AddrParseError, SocketAddr},
    sync::Arc,
};

use base64::Engine as _;
use serde::{
    de::{self, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::Number;

use crate::{
    export::json::SCHEMA_VERSION,
    protocol::{
        http::{Headers, HttpExchange, HttpRequest, HttpResponse},
        redis::{ExchangeKind, Frame, RedisExchange},
        Blob, BlobData,
    },
    record::{Endpoint, Exchange, Record, Side},
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

/// What is wrong with one field.
#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    /// A required field is absent.
    #[error("missing")]
    Missing,
    /// The JSON type or number range does not fit.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What schema 1 allows here.
        expected: &'static str,
        /// What the line holds: the kind of JSON value, or the number itself.
        found: String,
    },
    /// A name outside the fixed set schema 1 allows (protocol, side, kind, frame type, HTTP version).
    #[error("unknown {what} {value:?}")]
    Unknown {
        /// What kind of name it should be.
        what: &'static str,
        /// The name found.
        value: String,
    },
    /// An endpoint address that does not parse.
    #[error("{value:?} is not an ip:port address ({error})")]
    BadAddress {
        /// The text found.
        value: String,
        /// Why it does not parse.
        error: AddrParseError,
    },
    /// A `base64` value that does not decode.
    #[error("invalid base64 ({error})")]
    BadBase64 {
        /// Why it does not decode.
        error: base64::DecodeError,
    },
    /// Well-typed parts that contradict each other.
    #[error("{0}")]
    Inconsistent(String),
}

/// Reads every line of `input`, keeping the records and reporting the lines that are not records. Blank
/// lines are skipped silently. Records on equal endpoints share one `Arc<Endpoint>`, as the records of
/// one connection do in a live capture.
pub fn read(mut input: impl BufRead) -> Result<Imported, ImportError> {
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
            Ok(Some(record)) => imported.records.push(record),
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
    let value: Json = serde_json::from_str(line).map_err(|error| LineError::NotJson { error })?;
    let Json::Object(fields) = value else {
        return Err(LineError::NotObject {
            found: kind_of(&value),
        });
    };
    let mut fields = Fields(fields);
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

impl SharedEndpoints {
    fn get(
        &mut self,
        pid: u32,
        comm: &str,
        local: SocketAddr,
        remote: SocketAddr,
        side: Side,
    ) -> Arc<Endpoint> {
        let same_addresses = self.0.entry((local, remote)).or_default();
        let found = same_addresses
            .iter()
            .find(|e| e.pid == pid && e.side == side && *e.comm == *comm);
        if let Some(endpoint) = found {
            return Arc::clone(endpoint);
        }
        let endpoint = Arc::new(Endpoint::new(pid, comm, local, remote, side));
        same_addresses.push(Arc::clone(&endpoint));
        endpoint
    }
}

/// A [`FieldProblem`] with the path of the field, built outwards as the error returns through each
/// enclosing object and array (so nothing is spent on paths unless a line is bad).
#[derive(Debug)]
struct FieldError {
    path: String,
    problem: FieldProblem,
}

type FieldResult<T> = Result<T, FieldError>;

impl FieldError {
    fn new(problem: FieldProblem) -> Self {
        Self {
            path: String::new(),
            problem,
        }
    }

    fn under_key(self, key: &str) -> Self {
        self.under(key)
    }

    fn under_index(self, index: usize) -> Self {
        self.under(&format!("[{index}]"))
    }

    fn under(mut self, segment: &str) -> Self {
        let separator = if self.path.is_empty() || self.path.starts_with('[') {
            ""
        } else {
            "."
        };
        self.path = format!("{segment}{separator}{}", self.path);
        self
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

fn inconsistent(problem: String) -> FieldError {
    FieldError::new(FieldProblem::Inconsistent(problem))
}

fn wrong_type(expected: &'static str, found: &Json) -> FieldError {
    let found = match found {
        Json::Number(n) => n.to_string(),
        other => kind_of(other).to_owned(),
    };
    FieldError::new(FieldProblem::WrongType { expected, found })
}

fn unknown(what: &'static str, value: Cow<'_, str>) -> FieldError {
    let value = value.into_owned();
    FieldError::new(FieldProblem::Unknown { what, value })
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::Str(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The fields of one JSON object, moved out one at a time.
struct Fields<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Fields<'a> {
    fn of(value: Json<'a>) -> FieldResult<Self> {
        match value {
            Json::Object(fields) => Ok(Self(fields)),
            other => Err(wrong_type("an object", &other)),
        }
    }

    /// Decodes the required field `key`; errors come back located under it.
    fn take<T>(
        &mut self,
        key: &str,
        decode: impl FnOnce(Json<'a>) -> FieldResult<T>,
    ) -> FieldResult<T> {
        let value = self.remove(key);
        let value = value.ok_or_else(|| FieldError::new(FieldProblem::Missing));
        value.and_then(decode).map_err(|e| e.under_key(key))
    }

    /// Decodes the field `key` if present.
    fn take_optional<T>(
        &mut self,
        key: &str,
        decode: impl FnOnce(Json<'a>) -> FieldResult<T>,
    ) -> FieldResult<Option<T>> {
        self.remove(key)
            .map(|value| decode(value).map_err(|e| e.under_key(key)))
            .transpose()
    }

    /// Moves the field `key` out, if present. Objects have at most a few dozen fields, so a scan is
    /// cheaper than building an index.
    fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let index = self.0.iter().position(|(name, _)| name == key)?;
        Some(self.0.swap_remove(index).1)
    }
}

fn unsigned(value: Json<'_>) -> FieldResult<u64> {
    integer(value, "an integer from 0 to 2^64-1", Number::as_u64)
}

fn unsigned_32(value: Json<'_>) -> FieldResult<u32> {
    integer(value, "an integer from 0 to 4294967295", |n| {
        n.as_u64().and_then(|n| u32::try_from(n).ok())
    })
}

fn unsigned_16(value: Json<'_>) -> FieldResult<u16> {
    integer(value, "an integer from 0 to 65535", |n| {
        n.as_u64().and_then(|n| u16::try_from(n).ok())
    })
}

fn signed(value: Json<'_>) -> FieldResult<i64> {
    integer(value, "an integer from -2^63 to 2^63-1", Number::as_i64)
}

/// A JSON number that `convert` accepts (it rejects fractions and values out of its type's range).
fn integer<T>(
    value: Json<'_>,
    expected: &'static str,
    convert: impl FnOnce(&Number) -> Option<T>,
) -> FieldResult<T> {
    match value {
        Json::Number(n) => convert(&n).ok_or_else(|| {
            FieldError::new(FieldProblem::WrongType {
                expected,
                found: n.to_string(),
            })
        }),
        other => Err(wrong_type(expected, &other)),
    }
}

fn boolean(value: Json<'_>) -> FieldResult<bool> {
    match value {
        Json::Bool(b) => Ok(b),
        other => Err(wrong_type("a boolean", &other)),
    }
}

fn string(value: Json<'_>) -> FieldResult<Cow<'_, str>> {
    match value {
        Json::Str(s) => Ok(s),
        other => Err(wrong_type("a string", &other)),
    }
}

fn owned_string(value: Json<'_>) -> FieldResult<String> {
    string(value).map(Cow::into_owned)
}

fn null(value: Json<'_>) -> FieldResult<()> {
    match value {
        Json::Null => Ok(()),
        other => Err(wrong_type("null", &other)),
    }
}

/// `decode`, or `None` for a JSON null.
fn nullable<'a, T>(
    decode: impl FnOnce(Json<'a>) -> FieldResult<T>,
) -> impl FnOnce(Json<'a>) -> FieldResult<Option<T>> {
    |value| match value {
        Json::Null => Ok(None),
        other => decode(other).map(Some),
    }
}

/// A JSON array decoded item by item; errors come back located at the item's index.
fn list<'a, T>(
    value: Json<'a>,
    decode: impl Fn(Json<'a>) -> FieldResult<T>,
) -> FieldResult<Vec<T>> {
    let Json::Array(items) = value else {
        return Err(wrong_type("an array", &value));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| decode(item).map_err(|e| e.under_index(i)))
        .collect()
}

/// A two-element JSON array (a map entry or a header field).
fn pair(value: Json<'_>) -> FieldResult<(Json<'_>, Json<'_>)> {
    let expected = "a two-element array";
    let Json::Array(items) = value else {
        return Err(wrong_type(expected, &value));
    };
    let count = items.len();
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next()) {
        (Some(first), Some(second), None) => Ok((first, second)),
        _ => Err(FieldError::new(FieldProblem::WrongType {
            expected,
            found: format!("an array of {count}"),
        })),
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
    let exchange = match protocol.as_ref() {
        "redis" => Exchange::Redis(f.take("redis", redis)?),
        "http" => Exchange::Http(Box::new(f.take("http", http)?)),
        _ => return Err(unknown("protocol", protocol).under_key("protocol")),
    };
    Ok(Record {
        id,
        endpoint: endpoints.get(pid, &comm, local, remote, side),
        start_unix_ns: f.take("start_unix_ns", unsigned)?,
        end_unix_ns: f.take("end_unix_ns", nullable(unsigned))?,
        request_bytes: f.take("request_bytes", unsigned)?,
        response_bytes: f.take("response_bytes", unsigned)?,
        truncated: f.take("truncated", boolean)?,
        exchange,
    })
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

/// A binary-safe value: a string when complete and UTF-8, else `{"text"|"base64", "len", "truncated"}`.
fn blob(value: Json<'_>) -> FieldResult<Blob> {
    match value {
        Json::Str(text) => Ok(Blob::full(text.into_owned())),
        Json::Object(fields) => blob_object(Fields(fields)),
        other => Err(wrong_type("a string or a value object", &other)),
    }
}

fn blob_object(mut f: Fields<'_>) -> FieldResult<Blob> {
    let text = f.take_optional("text", owned_string)?;
    let base64 = f.take_optional("base64", base64_bytes)?;
    let data = match (text, base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(bytes)) => bytes,
        (Some(_), Some(_)) => return Err(inconsistent("has both `text` and `base64`".into())),
        (None, None) => return Err(inconsistent("has neither `text` nor `base64`".into())),
    };
    let len = f.take("len", unsigned)?;
    let truncated = f.take("truncated", boolean)?;
    let kept = data.len() as u64;
    if kept > len {
        return Err(inconsistent(format!(
            "`len` {len} is less than the {kept} bytes given"
        )));
    }
    if truncated != (kept < len) {
        return Err(inconsistent(format!(
            "`truncated` is {truncated} but {kept} of {len} bytes are given"
        )));
    }
    Ok(Blob {
        data: BlobData::from_vec(data),
        len,
    })
}

fn base64_bytes(value: Json<'_>) -> FieldResult<Vec<u8>> {
    let text = string(value)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|error| FieldError::new(FieldProblem::BadBase64 { error }))
}

fn redis(value: Json<'_>) -> FieldResult<RedisExchange> {
    let mut f = Fields::of(value)?;
    let kind = f.take("kind", exchange_kind)?;
    let command = match kind {
        ExchangeKind::Command => f.take("command", owned_string)?,
        ExchangeKind::Push => {
            f.take("command", null)?;
            String::new()
        }
    };
    Ok(RedisExchange {
        kind,
        command,
        args: f.take("args", |v| list(v, blob))?,
        reply: f.take("reply", nullable(frame))?,
    })
}

fn exchange_kind(value: Json<'_>) -> FieldResult<ExchangeKind> {
    let name = string(value)?;
    match name.as_ref() {
        "command" => Ok(ExchangeKind::Command),
        "push" => Ok(ExchangeKind::Push),
        _ => Err(unknown("kind", name)),
    }
}

/// A reply `{"type": T, "value": V}` (verbatim replies also have `"format"`).
fn frame(value: Json<'_>) -> FieldResult<Frame> {
    let mut f = Fields::of(value)?;
    let frame_type = f.take("type", string)?;
    let frame = match frame_type.as_ref() {
        "simple" => Frame::Simple(f.take("value", blob)?),
        "error" => Frame::Error(f.take("value", blob)?),
        "bulk" => Frame::Bulk(f.take("value", blob)?),
        "integer" => Frame::Integer(f.take("value", signed)?),
        "null" => {
            f.take("value", null)?;
            Frame::Null
        }
        "array" => Frame::Array(f.take("value", frames)?),
        "set" => Frame::Set(f.take("value", frames)?),
        "push" => Frame::Push(f.take("value", frames)?),
        "map" => Frame::Map(f.take("value", |v| list(v, map_entry))?),
        "double" => Frame::Double(f.take("value", double_text)?),
        "boolean" => Frame::Boolean(f.take("value", boolean)?),
        "bignumber" => Frame::BigNumber(f.take("value", owned_string)?),
        "verbatim" => Frame::Verbatim {
            format: f.take("format", owned_string)?,
            text: f.take("value", blob)?,
        },
        _ => return Err(unknown("frame type", frame_type).under_key("type")),
    };
    Ok(frame)
}

fn frames(value: Json<'_>) -> FieldResult<Vec<Frame>> {
    list(value, frame)
}

fn map_entry(value: Json<'_>) -> FieldResult<(Frame, Frame)> {
    let (key, value) = pair(value)?;
    let key = frame(key).map_err(|e| e.under_index(0))?;
    let value = frame(value).map_err(|e| e.under_index(1))?;
    Ok((key, value))
}

/// A double's text. Numbers are rendered the way the writer renders them (shortest round-trip form), so
/// reading and writing again gives the same line.
fn double_text(value: Json<'_>) -> FieldResult<String> {
    match value {
        Json::Str(text) => Ok(text.into_owned()),
        Json::Number(n) => Ok(match n.as_f64() {
            Some(v) if n.is_f64() => ryu::Buffer::new().format_finite(v).to_owned(),
            // Integers are never written, but a hand-edited file may hold one; keep its digits.
            _ => n.to_string(),
        }),
        other => Err(wrong_type("a number or a string", &other)),
    }
}

/// The parts a request and a response share.
struct Message {
    version: u8,
    headers: Headers,
    body: Blob,
    trailers: Headers,
}

fn http(value: Json<'_>) -> FieldResult<HttpExchange> {
    let mut f = Fields::of(value)?;
    let method = f.take("method", owned_string)?;
    let target = f.take("target", owned_string)?;
    let version = f.take("version", http_version)?;
    let status = f.take("status", nullable(unsigned_16))?;
    let reason = f.take("reason", nullable(owned_string))?;
    let request = f.take("request", message)?;
    if request.version != version {
        let problem = inconsistent(format!("disagrees with `http.version` (HTTP/1.{version})"));
        return Err(problem.under_key("version").under_key("request"));
    }
    let response = f
        .take("response", nullable(message))?
        .map(|m| response(m, status, reason))
        .transpose()?;
    Ok(HttpExchange {
        request: HttpRequest {
            method,
            target,
            version,
            headers: request.headers,
            body: request.body,
            trailers: request.trailers,
        },
        response,
    })
}

/// The response from its message and the exchange's `status` and `reason`, which must then be present.
fn response(
    message: Message,
    status: Option<u16>,
    reason: Option<String>,
) -> FieldResult<HttpResponse> {
    let required = |key| wrong_type("a value when there is a response", &Json::Null).under_key(key);
    Ok(HttpResponse {
        version: message.version,
        status: status.ok_or_else(|| required("status"))?,
        reason: reason.ok_or_else(|| required("reason"))?,
        headers: message.headers,
        body: message.body,
        trailers: message.trailers,
    })
}

fn http_version(value: Json<'_>) -> FieldResult<u8> {
    let text = string(value)?;
    match text.as_ref() {
        "HTTP/1.0" => Ok(0),
        "HTTP/1.1" => Ok(1),
        _ => Err(unknown("HTTP version", text)),
    }
}

fn message(value: Json<'_>) -> FieldResult<Message> {
    let mut f = Fields::of(value)?;
    Ok(Message {
        version: f.take("version", http_version)?,
        headers: f.take("headers", headers)?,
        body: f.take("body", blob)?,
        trailers: f.take("trailers", headers)?,
    })
}

/// Header or trailer fields: `[[name, value], ...]`, values as blobs that are always complete.
fn headers(value: Json<'_>) -> FieldResult<Headers> {
    let Json::Array(items) = value else {
        return Err(wrong_type("an array", &value));
    };
    let mut headers = Headers::default();
    for (i, item) in items.into_iter().enumerate() {
        let (name, value) = header_field(item).map_err(|e| e.under_index(i))?;
        headers.push(&name, &value);
    }
    Ok(headers)
}

fn header_field(value: Json<'_>) -> FieldResult<(Cow<'_, str>, Vec<u8>)> {
    let (name, value) = pair(value)?;
    let name = string(name).map_err(|e| e.under_index(0))?;
    let value = blob(value).map_err(|e| e.under_index(1))?;
    if value.is_truncated() {
        let problem = inconsistent("header values are always complete, not truncated".into());
        return Err(problem.under_index(1));
    }
    Ok((name, value.data.into_vec()))
}

/// A JSON value parsed from one line. Strings borrow from the line unless they hold escapes, and objects
/// are field lists in line order. Parsing into `serde_json::Value`, which allocates every key and string
/// and keeps objects in B-trees, took about 1.6 times as long.
enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        // JSON has no infinities or NaN, so the parser never hands one over.
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key()? {
            // The JSON parser only hands over string keys.
            let Json::Str(name) = key else {
                return Err(de::Error::custom("object key is not a string"));
            };
            fields.push((name, map.next_value()?));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
