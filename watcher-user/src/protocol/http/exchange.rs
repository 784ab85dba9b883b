//! The decoded HTTP exchange: a request and its final response, with each head's header fields in one
//! buffer, and what filters and views read of it (path, query, host, status).

use std::fmt;

use compact_str::CompactString;

use crate::protocol::common::{compact_bytes, Blob};

/// Header (or trailer) fields in order, names in their original case, values as sent (not necessarily
/// UTF-8), secrets masked.
///
/// A head's fields share one buffer, each an [`ENTRY`] (the lengths of its name and value, and whether
/// the value was masked) followed by its name and its value. A head has dozens of fields: a `String`
/// per name and value was the largest allocation cost of decoding HTTP, and three shared buffers
/// (names, values, field ends) were still six of an exchange's ten allocations.
#[derive(Clone, Default)]
pub struct Headers {
    /// The fields, one after the other. Only [`Headers::push_marked`] writes entries and names, from a
    /// `&str`, so every name's bytes are UTF-8 (and [`Headers::redact_with`] changes values only).
    bytes: Vec<u8>,
    /// How many fields.
    count: u32,
}

/// Bytes before each field's name: the name's length and the value's (`u32`, little-endian), and
/// whether the value was masked.
const ENTRY: usize = 9;

/// Where one field is in [`Headers::bytes`].
struct Field {
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
    redacted: bool,
}

/// The field whose entry starts at `*at` of `bytes` (written by [`Headers::push_marked`]); moves `at`
/// to the entry after it.
fn next_field(bytes: &[u8], at: &mut usize) -> Field {
    let field = field_at(bytes, *at);
    *at = field.value.end;
    field
}

/// The field whose entry starts at `at` of `bytes`, written by [`Headers::push_marked`].
fn field_at(bytes: &[u8], at: usize) -> Field {
    let len = |from: usize| {
        bytes
            .get(from..from + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
    };
    let name = at + ENTRY..at + ENTRY + len(at);
    let value = name.end..name.end + len(at + 4);
    Field {
        redacted: bytes.get(at + 8) == Some(&1),
        name,
        value,
    }
}

/// The name of `field`, found in `bytes`.
///
/// # Safety
/// `bytes` is a [`Headers::bytes`] (or the part of it before the field's value) and `field` was read
/// from it by [`next_field`]: a field's name is copied whole from a `&str` and never written again
/// (the invariant of `Headers::bytes`), so these bytes are UTF-8.
#[allow(unsafe_code)]
unsafe fn name_of<'b>(bytes: &'b [u8], field: &Field) -> &'b str {
    let name = bytes.get(field.name.clone()).unwrap_or_default();
    debug_assert!(std::str::from_utf8(name).is_ok());
    // SAFETY: the caller's promise. Checking the bytes again cost every reader of every field.
    unsafe { std::str::from_utf8_unchecked(name) }
}

impl Headers {
    /// Room for `fields` fields of `name_bytes` and `value_bytes` in all, so a head is stored in one
    /// allocation made once.
    pub fn with_capacity(fields: usize, name_bytes: usize, value_bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(fields * ENTRY + name_bytes + value_bytes),
            count: 0,
        }
    }

    /// Heap bytes they hold.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.push_marked(name, value, false);
    }

    /// Appends a field whose value was already masked when `redacted`.
    pub fn push_marked(&mut self, name: &str, value: &[u8], redacted: bool) {
        let (Ok(name_len), Ok(value_len)) = (u32::try_from(name.len()), u32::try_from(value.len()))
        else {
            // Longer than any head can be (`message::MAX_HEAD`): no such field arrives.
            return;
        };
        self.bytes.extend_from_slice(&name_len.to_le_bytes());
        self.bytes.extend_from_slice(&value_len.to_le_bytes());
        self.bytes.push(u8::from(redacted));
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(value);
        self.count += 1;
    }

    /// Where each field is, in order.
    fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        let mut at = 0;
        (0..self.count).map(move |_| next_field(&self.bytes, &mut at))
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter_marked().map(|(name, value, _)| (name, value))
    }

    /// The fields, in order, each with whether its value was masked.
    pub fn iter_marked(&self) -> impl Iterator<Item = (&str, &[u8], bool)> {
        self.fields().map(|f| {
            (
                // SAFETY: `f` was read from these bytes.
                #[allow(unsafe_code)]
                unsafe {
                    name_of(&self.bytes, &f)
                },
                self.bytes.get(f.value).unwrap_or_default(),
                f.redacted,
            )
        })
    }

    /// Lets `rule` mask each field's value in place, given the field's name; marks the fields where it
    /// found a secret and returns whether it found any.
    pub fn redact_with(&mut self, mut rule: impl FnMut(&str, &mut [u8]) -> bool) -> bool {
        let mut found = false;
        let mut at = 0;
        for _ in 0..self.count {
            let entry = at;
            let field = next_field(&self.bytes, &mut at);
            if field.value.end > self.bytes.len() {
                break;
            }
            // The name before the value: split there, so both can be borrowed at once.
            let (head, value) = self.bytes.split_at_mut(field.name.end);
            // SAFETY: `field` was read from these bytes, and `head` ends where its name does.
            #[allow(unsafe_code)]
            let name = unsafe { name_of(head, &field) };
            if let Some(value) = value.get_mut(..field.value.len()) {
                if rule(name, value) {
                    head[entry + 8] = 1;
                    found = true;
                }
            }
        }
        found
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Bytes of names and values together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len() - self.count as usize * ENTRY
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter_marked().map(|(name, value, redacted)| {
                    (name, String::from_utf8_lossy(value), redacted)
                }),
            )
            .finish()
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
    /// `GET`, `POST`, ... (kept inline: a `String` was one allocation of a dozen per exchange).
    pub method: CompactString,
    /// The request target as sent: `/path?query`, `http://host/path`, `host:port` or `*` (kept inline
    /// up to 24 bytes, so a short path costs no allocation).
    pub target: CompactString,
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
    /// Reason phrase (kept inline unless longer than 24 bytes).
    pub reason: CompactString,
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
        compact_bytes(&self.method)
            + compact_bytes(&self.target)
            + self.headers.heap_bytes()
            + self.body.heap_bytes()
            + self.trailers.heap_bytes()
    }
}

impl HttpResponse {
    /// Heap bytes it holds.
    fn heap_bytes(&self) -> usize {
        compact_bytes(&self.reason)
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
    // A scheme starts with a letter: an origin-form target (`/path`, nearly all of them) has none, and
    // is not searched for `://` (a substring search, set up anew for every call).
    if !target.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
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
        // A URL in the query of an origin-form target is not its scheme and authority.
        let x = exchange("/go?to=https://elsewhere.test/x", Some("example.com"));
        assert_eq!(
            (x.path(), x.query(), x.host()),
            (
                "/go",
                Some("to=https://elsewhere.test/x"),
                Some("example.com")
            )
        );
    }

    #[test]
    fn headers_keep_their_fields_in_order_and_mask_values_in_place() {
        let fields: [(&str, &[u8]); 4] = [
            ("Host", b"example.com"),
            ("X-Empty", b""),
            ("Authorization", b"Bearer abc"),
            // Not UTF-8, and a name that is.
            ("X-\u{e9}t\u{e9}", b"\xff\xfe"),
        ];
        let mut sized = Headers::with_capacity(4, 30, 30);
        for (name, value) in fields {
            sized.push(name, value);
        }
        let mut grown: Headers = fields.into_iter().collect();
        assert_eq!(sized, grown);
        assert_eq!(grown.iter().collect::<Vec<_>>(), fields);
        assert_eq!(grown.byte_len(), 4 + 11 + 7 + 13 + 10 + 7 + 2);
        assert_eq!(grown.get("authorization"), Some(&b"Bearer abc"[..]));
        assert_eq!(grown.get("x-empty"), Some(&b""[..]));
        assert_eq!(grown.get("cookie"), None);
        let found = grown.redact_with(|name, value| {
            let secret = name == "Authorization";
            if secret {
                value[7..].fill(b'*');
            }
            secret
        });
        assert!(found);
        let marked: Vec<_> = grown.iter_marked().collect();
        assert_eq!(marked[2], ("Authorization", &b"Bearer ***"[..], true));
        assert!(marked.iter().filter(|m| m.2).count() == 1);
        assert_ne!(sized, grown, "a masked field differs from the one sent");
    }
}
