//! The decoded HTTP exchange: a request and its final response, with the header fields in one buffer,
//! and what filters and views read of it (path, query, host, status).

use crate::protocol::common::{vec_bytes, Blob};

/// Header (or trailer) fields in order, names in their original case, values as sent (not necessarily
/// UTF-8), secrets masked. All fields share one buffer: a head has dozens of them, and a `String` per
/// name and value was the largest allocation cost of decoding HTTP.
#[derive(Clone, Debug, Default)]
pub struct Headers {
    raw: Vec<u8>,
    fields: Vec<Field>,
}

/// Where one field lies in [`Headers::raw`]: the value starts where the name ends.
#[derive(Clone, Copy, Debug)]
struct Field {
    start: u32,
    name_end: u32,
    end: u32,
    /// Whether the value's secrets were masked.
    redacted: bool,
}

impl Headers {
    /// Heap bytes they hold.
    pub fn heap_bytes(&self) -> usize {
        self.raw.capacity() + vec_bytes(&self.fields)
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.push_marked(name, value, false);
    }

    /// Appends a field whose value was already masked when `redacted`.
    pub fn push_marked(&mut self, name: &str, value: &[u8], redacted: bool) {
        let start = self.raw.len() as u32;
        self.raw.extend_from_slice(name.as_bytes());
        let name_end = self.raw.len() as u32;
        self.raw.extend_from_slice(value);
        self.fields.push(Field {
            start,
            name_end,
            end: self.raw.len() as u32,
            redacted,
        });
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter_marked().map(|(name, value, _)| (name, value))
    }

    /// The fields, in order, each with whether its value was masked.
    pub fn iter_marked(&self) -> impl Iterator<Item = (&str, &[u8], bool)> {
        self.fields.iter().map(|f| {
            let name = &self.raw[f.start as usize..f.name_end as usize];
            (
                // Names only ever come from `push`, which takes `&str`.
                std::str::from_utf8(name).unwrap_or_default(),
                &self.raw[f.name_end as usize..f.end as usize],
                f.redacted,
            )
        })
    }

    /// Lets `rule` mask each field's value in place, given the field's name; marks the fields where it
    /// found a secret and returns whether it found any.
    pub fn redact_with(&mut self, mut rule: impl FnMut(&str, &mut [u8]) -> bool) -> bool {
        let mut found = false;
        for f in &mut self.fields {
            let (names, values) = self.raw.split_at_mut(f.name_end as usize);
            let name = std::str::from_utf8(&names[f.start as usize..]).unwrap_or_default();
            if rule(name, &mut values[..(f.end - f.name_end) as usize]) {
                f.redacted = true;
                found = true;
            }
        }
        found
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        // On raw bytes: this runs for several names on every message.
        self.fields
            .iter()
            .find(|f| {
                self.raw[f.start as usize..f.name_end as usize]
                    .eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|f| &self.raw[f.name_end as usize..f.end as usize])
    }

    /// Bytes of names and values together.
    pub fn byte_len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.iter_marked().eq(other.iter_marked())
    }
}

impl Eq for Headers {}

impl<'a> FromIterator<(&'a str, &'a [u8])> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a [u8])>>(fields: I) -> Self {
        let mut headers = Headers::default();
        for (name, value) in fields {
            headers.push(name, value);
        }
        headers
    }
}

/// A request as it was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent: `/path?query`, `http://host/path`, `host:port` or `*`.
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in order.
    pub headers: Headers,
    /// The body, de-chunked, with its true length.
    pub body: Blob,
    /// Trailer fields of a chunked body.
    pub trailers: Headers,
}

/// A response as it was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// Minor version.
    pub version: u8,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in order.
    pub headers: Headers,
    /// The body, de-chunked, with its true length.
    pub body: Blob,
    /// Trailer fields of a chunked body.
    pub trailers: Headers,
}

/// A decoded HTTP exchange: a request and its final response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpExchange {
    /// The request.
    pub request: HttpRequest,
    /// The final (non-1xx, or 101) response; `None` if none came before the connection closed.
    pub response: Option<HttpResponse>,
}

impl HttpRequest {
    /// Heap bytes it holds.
    fn heap_bytes(&self) -> usize {
        self.method.capacity()
            + self.target.capacity()
            + self.headers.heap_bytes()
            + self.body.heap_bytes()
            + self.trailers.heap_bytes()
    }
}

impl HttpResponse {
    /// Heap bytes it holds.
    fn heap_bytes(&self) -> usize {
        self.reason.capacity()
            + self.headers.heap_bytes()
            + self.body.heap_bytes()
            + self.trailers.heap_bytes()
    }
}

impl HttpExchange {
    /// Heap bytes it holds (what `--max-memory` counts).
    pub fn heap_bytes(&self) -> usize {
        self.request.heap_bytes() + self.response.as_ref().map_or(0, HttpResponse::heap_bytes)
    }

    /// The path of the target, without query; for absolute-form targets, without scheme and authority.
    pub fn path(&self) -> &str {
        let target = origin_form(&self.request.target);
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        origin_form(&self.request.target)
            .split_once('?')
            .map(|(_, q)| q)
    }

    /// The `Host` header, or the authority of an absolute-form target.
    pub fn host(&self) -> Option<&str> {
        self.request
            .headers
            .get("host")
            .and_then(|v| std::str::from_utf8(v).ok())
            .or_else(|| authority(&self.request.target))
    }

    /// The final status, if a response came.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }
}

/// `HTTP/1.x` for a minor version.
pub fn version_text(minor: u8) -> &'static str {
    if minor == 0 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

fn scheme_rest(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    scheme
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        .then_some(rest)
}

fn authority(target: &str) -> Option<&str> {
    let rest = scheme_rest(target)?;
    Some(rest.split(['/', '?']).next().unwrap_or(rest))
}

fn origin_form(target: &str) -> &str {
    match scheme_rest(target) {
        Some(rest) => rest.find(['/', '?']).map_or("/", |i| &rest[i..]),
        None => target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(target: &str, host: Option<&str>) -> HttpExchange {
        HttpExchange {
            request: HttpRequest {
                method: "GET".into(),
                target: target.into(),
                version: 1,
                headers: host.map(|h| ("Host", h.as_bytes())).into_iter().collect(),
                ..HttpRequest::default()
            },
            response: None,
        }
    }

    #[test]
    fn path_query_and_host_come_from_origin_and_absolute_forms() {
        let x = exchange("/a/b?x=1&y=2", Some("example.com"));
        assert_eq!(
            (x.path(), x.query(), x.host()),
            ("/a/b", Some("x=1&y=2"), Some("example.com"))
        );
        let x = exchange("http://proxy.test:8080/p?q", None);
        assert_eq!(
            (x.path(), x.query(), x.host()),
            ("/p", Some("q"), Some("proxy.test:8080"))
        );
        let x = exchange("http://bare.test", None);
        assert_eq!((x.path(), x.query()), ("/", None));
        let x = exchange("*", None);
        assert_eq!((x.path(), x.query(), x.host()), ("*", None, None));
    }
}
