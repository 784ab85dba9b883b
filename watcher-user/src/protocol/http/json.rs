//! The `http` object of a JSON record (`docs/json-schema.md`): written and read back by the
//! exchange's `PayloadJson`. Headers and trailers are `[name, value]` pairs in their order and case; bodies are blobs.

use std::borrow::Cow;

use super::exchange::{version_text, Headers, HttpExchange, HttpRequest, HttpResponse};
use crate::protocol::{
    common::Blob,
    json::{
        read::{
            blob, inconsistent, nullable, owned_string, pair, string, unknown, unsigned_16,
            wrong_type, FieldResult, Fields, Json,
        },
        write::{
            write_array, write_blob, write_bool, write_name, write_opt_str, write_opt_u64,
            write_pair, write_str, write_u64, write_value,
        },
    },
    plugin::PayloadJson,
};

impl PayloadJson for HttpExchange {
    /// Writes the `http` object of a record.
    fn write_json(&self, out: &mut Vec<u8>) {
        let req = &self.request;
        let rsp = self.response.as_ref();
        out.extend_from_slice(b"{\"method\":");
        write_str(out, &req.method);
        out.extend_from_slice(b",\"target\":");
        write_str(out, &req.target);
        out.extend_from_slice(b",\"path\":");
        write_str(out, self.path());
        out.extend_from_slice(b",\"query\":");
        write_opt_str(out, self.query());
        out.extend_from_slice(b",\"host\":");
        write_opt_str(out, self.host());
        out.extend_from_slice(b",\"version\":");
        write_name(out, version_text(req.version));
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

    /// Reads the `http` object of a record. `path`, `query`, `host` and each message's `body_bytes` and
    /// `body_truncated` are derived and ignored.
    fn read_json(value: Json<'_>) -> FieldResult<Self> {
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
                method: method.into(),
                target: target.into(),
                version,
                headers: request.headers,
                body: request.body,
                trailers: request.trailers,
            },
            response,
        })
    }
}

fn write_message(
    out: &mut Vec<u8>,
    version: u8,
    headers: &Headers,
    body: &Blob,
    trailers: &Headers,
) {
    out.extend_from_slice(b"{\"version\":");
    write_name(out, version_text(version));
    out.extend_from_slice(b",\"headers\":");
    write_headers(out, headers);
    out.extend_from_slice(b",\"body\":");
    write_blob(out, body);
    out.extend_from_slice(b",\"body_bytes\":");
    write_u64(out, body.len());
    out.extend_from_slice(b",\"body_truncated\":");
    write_bool(out, body.is_truncated());
    out.extend_from_slice(b",\"trailers\":");
    write_headers(out, trailers);
    out.push(b'}');
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    write_array(
        out,
        headers.iter_marked(),
        |out, (name, value, redacted)| {
            write_pair(
                out,
                |out| write_str(out, name),
                |out| write_value(out, value, value.len() as u64, redacted),
            );
        },
    );
}

/// The parts a request and a response share.
struct Message {
    version: u8,
    headers: Headers,
    body: Blob,
    trailers: Headers,
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
        reason: reason.ok_or_else(|| required("reason"))?.into(),
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
        headers.push_marked(&name, &value.data, value.redacted());
    }
    Ok(headers)
}

fn header_field(value: Json<'_>) -> FieldResult<(Cow<'_, str>, Blob)> {
    let (name, value) = pair(value)?;
    let name = string(name).map_err(|e| e.under_index(0))?;
    let value = blob(value).map_err(|e| e.under_index(1))?;
    if value.is_truncated() {
        let problem = inconsistent("header values are always complete, not truncated".into());
        return Err(problem.under_index(1));
    }
    Ok((name, value))
}
