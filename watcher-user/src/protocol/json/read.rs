//! Reading JSON back, value by value, with errors that name the field at fault.
//!
//! A line is parsed into a small [`Json`] tree that borrows its strings from the line, then taken apart
//! field by field ([`Fields::take`]; values are moved out, never cloned). That costs a little speed
//! against derived structs but lets every error name the full path of the field at fault, e.g.
//! ``field `redis.reply.value[2].type`: unknown frame type "foo"``: the path is built outwards as the
//! error returns through each enclosing object and array, so nothing is spent on paths unless a line is
//! bad. The decoders here are shared by the record's own fields (`ndjson::read`) and every protocol's
//! payload (`protocol/<name>/json.rs`).
//!
//! Pure: reads the values it is given, nothing else.

use std::{borrow::Cow, fmt, net::AddrParseError};

use base64::Engine as _;
use serde::{
    de::{self, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::Number;

use crate::protocol::common::{Blob, BlobData};

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

/// A [`FieldProblem`] with the path of the field, built outwards as the error returns through each
/// enclosing object and array (so nothing is spent on paths unless a line is bad).
#[derive(Debug)]
pub struct FieldError {
    /// Where, e.g. `http.request.headers[2][1]` (empty for the value itself).
    pub path: String,
    /// What is wrong.
    pub problem: FieldProblem,
}

/// A decoded value, or what is wrong with it and where.
pub type FieldResult<T> = Result<T, FieldError>;

impl FieldError {
    /// A problem with the value itself (located by the callers it returns through).
    pub fn new(problem: FieldProblem) -> Self {
        Self {
            path: String::new(),
            problem,
        }
    }

    /// The same problem, one object field further out.
    #[must_use]
    pub fn under_key(self, key: &str) -> Self {
        self.under(key)
    }

    /// The same problem, one array element further out.
    #[must_use]
    pub fn under_index(self, index: usize) -> Self {
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

/// Well-typed parts that contradict each other.
pub fn inconsistent(problem: String) -> FieldError {
    FieldError::new(FieldProblem::Inconsistent(problem))
}

/// Not the JSON type (or number range) `expected`.
pub fn wrong_type(expected: &'static str, found: &Json) -> FieldError {
    let found = match found {
        Json::Number(n) => n.to_string(),
        other => kind_of(other).to_owned(),
    };
    FieldError::new(FieldProblem::WrongType { expected, found })
}

/// A name outside the fixed set allowed (`what` says which set).
pub fn unknown(what: &'static str, value: Cow<'_, str>) -> FieldError {
    let value = value.into_owned();
    FieldError::new(FieldProblem::Unknown { what, value })
}

/// What kind of JSON value it is, for messages.
pub fn kind_of(value: &Json) -> &'static str {
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
pub struct Fields<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be an object.
    pub fn of(value: Json<'a>) -> FieldResult<Self> {
        match value {
            Json::Object(fields) => Ok(Self(fields)),
            other => Err(wrong_type("an object", &other)),
        }
    }

    /// Decodes the required field `key`; errors come back located under it.
    pub fn take<T>(
        &mut self,
        key: &str,
        decode: impl FnOnce(Json<'a>) -> FieldResult<T>,
    ) -> FieldResult<T> {
        let value = self.remove(key);
        let value = value.ok_or_else(|| FieldError::new(FieldProblem::Missing));
        value.and_then(decode).map_err(|e| e.under_key(key))
    }

    /// Decodes the field `key` if present.
    pub fn take_optional<T>(
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

/// An integer from 0 to 2^64-1.
pub fn unsigned(value: Json<'_>) -> FieldResult<u64> {
    integer(value, "an integer from 0 to 2^64-1", Number::as_u64)
}

/// An integer from 0 to 2^32-1.
pub fn unsigned_32(value: Json<'_>) -> FieldResult<u32> {
    integer(value, "an integer from 0 to 4294967295", |n| {
        n.as_u64().and_then(|n| u32::try_from(n).ok())
    })
}

/// An integer from 0 to 65535.
pub fn unsigned_16(value: Json<'_>) -> FieldResult<u16> {
    integer(value, "an integer from 0 to 65535", |n| {
        n.as_u64().and_then(|n| u16::try_from(n).ok())
    })
}

/// An integer from -2^63 to 2^63-1.
pub fn signed(value: Json<'_>) -> FieldResult<i64> {
    integer(value, "an integer from -2^63 to 2^63-1", Number::as_i64)
}

/// A JSON number that `convert` accepts (it rejects fractions and values out of its type's range).
pub fn integer<T>(
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

/// `true` or `false`.
pub fn boolean(value: Json<'_>) -> FieldResult<bool> {
    match value {
        Json::Bool(b) => Ok(b),
        other => Err(wrong_type("a boolean", &other)),
    }
}

/// A string, borrowed from the line when it has no escapes.
pub fn string(value: Json<'_>) -> FieldResult<Cow<'_, str>> {
    match value {
        Json::Str(s) => Ok(s),
        other => Err(wrong_type("a string", &other)),
    }
}

/// A string, owned.
pub fn owned_string(value: Json<'_>) -> FieldResult<String> {
    string(value).map(Cow::into_owned)
}

/// `null`.
pub fn null(value: Json<'_>) -> FieldResult<()> {
    match value {
        Json::Null => Ok(()),
        other => Err(wrong_type("null", &other)),
    }
}

/// `decode`, or `None` for a JSON null.
pub fn nullable<'a, T>(
    decode: impl FnOnce(Json<'a>) -> FieldResult<T>,
) -> impl FnOnce(Json<'a>) -> FieldResult<Option<T>> {
    |value| match value {
        Json::Null => Ok(None),
        other => decode(other).map(Some),
    }
}

/// A JSON array decoded item by item; errors come back located at the item's index.
pub fn list<'a, T>(
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
pub fn pair(value: Json<'_>) -> FieldResult<(Json<'_>, Json<'_>)> {
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

/// A binary-safe value: a string when complete and UTF-8, else `{"text"|"base64", "len", "truncated"}`.
pub fn blob(value: Json<'_>) -> FieldResult<Blob> {
    match value {
        Json::Str(text) => Ok(Blob::full(text.as_bytes())),
        Json::Object(fields) => blob_object(Fields(fields)),
        other => Err(wrong_type("a string or a value object", &other)),
    }
}

/// The object form of a blob: `{"text"|"base64": ..., "len": N, "truncated": bool}`, and `"redacted": true`
/// when its secrets were masked.
pub fn blob_object(mut f: Fields<'_>) -> FieldResult<Blob> {
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
    let redacted = f.take_optional("redacted", boolean)?.unwrap_or(false);
    let kept = data.len() as u64;
    if kept > len {
        return Err(inconsistent(format!(
            "`len` {len} is less than the {kept} bytes given"
        )));
    }
    if len > Blob::MAX_LEN {
        return Err(inconsistent(format!(
            "`len` {len} is over the most a value can be ({})",
            Blob::MAX_LEN
        )));
    }
    if truncated != (kept < len) {
        return Err(inconsistent(format!(
            "`truncated` is {truncated} but {kept} of {len} bytes are given"
        )));
    }
    let mut blob = Blob::new(BlobData::from_vec(data), len);
    blob.set_redacted(redacted);
    Ok(blob)
}

/// Bytes written in base64.
pub fn base64_bytes(value: Json<'_>) -> FieldResult<Vec<u8>> {
    let text = string(value)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|error| FieldError::new(FieldProblem::BadBase64 { error }))
}

/// A JSON value parsed from one line. Strings borrow from the line unless they hold escapes, and objects
/// are field lists in line order. Parsing into `serde_json::Value`, which allocates every key and string
/// and keeps objects in B-trees, took about 1.6 times as long.
pub enum Json<'a> {
    /// `null`
    Null,
    /// `true`, `false`
    Bool(bool),
    /// A number, as the parser read it.
    Number(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object: its fields in line order.
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

/// Parses one JSON value from `text`.
pub fn parse(text: &str) -> Result<Json<'_>, serde_json::Error> {
    serde_json::from_str(text)
}
