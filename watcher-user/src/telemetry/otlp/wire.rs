//! Protobuf written field by field into one byte buffer, for the messages made per record (spans).
//!
//! The generated OTLP structs would need an owned `String` for every attribute key and value and
//! compute each nested message's length once per level above it: most of a span's export cost. Here
//! fields go straight into the buffer on prost's wire primitives (the ones its generated code calls); a
//! nested message is written in place and its length put in front of it when it ends, or written with
//! its length up front where that is known (attributes, whose size follows from their key and value).
//! Tests decode what is written with the generated structs, so the layout is checked against the
//! protocol's own definition.

use prost::encoding::{encode_varint, encoded_len_varint, key_len, WireType};

/// A varint. Nearly all are keys and lengths below 128: one byte, pushed without prost's general loop
/// (which, not inlined, was a fifth of a span's cost).
#[inline]
fn put_varint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else {
        encode_varint(value, out);
    }
}

/// A field's key: its number and wire type.
#[inline]
fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    put_varint(out, u64::from(tag << 3 | wire_type as u32));
}

/// Where a nested message's body starts, returned by [`begin`] and given back to [`end`].
#[must_use = "a nested message needs its end"]
pub struct Nested(usize);

/// Starts nested message field `tag`; its fields follow, then [`end`].
pub fn begin(out: &mut Vec<u8>, tag: u32) -> Nested {
    put_key(out, tag, WireType::LengthDelimited);
    Nested(out.len())
}

/// Ends a nested message: puts its length in front of its body (a move of the body by the length's
/// one to three bytes: cheap for a span, which is what this serves; a span's group is written with its
/// length up front instead, see [`header`]).
pub fn end(out: &mut Vec<u8>, Nested(start): Nested) {
    let length = out.len() - start;
    let width = encoded_len_varint(length as u64);
    let mut head = [0u8; 10];
    encode_varint(length as u64, &mut &mut head[..]);
    out.extend_from_slice(&head[..width]);
    out.copy_within(start..start + length, start + width);
    out[start..start + width].copy_from_slice(&head[..width]);
}

/// The bytes a length-delimited field `tag` of `length` bytes takes, key and length included.
pub fn delimited_len(tag: u32, length: usize) -> usize {
    key_len(tag) + encoded_len_varint(length as u64) + length
}

/// The key and length of length-delimited field `tag`, whose `length` bytes the caller writes next.
pub fn header(out: &mut Vec<u8>, tag: u32, length: usize) {
    put_key(out, tag, WireType::LengthDelimited);
    put_varint(out, length as u64);
}

/// A `bytes` field.
pub fn bytes(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    header(out, tag, value.len());
    out.extend_from_slice(value);
}

/// A `string` field.
pub fn string(out: &mut Vec<u8>, tag: u32, value: &str) {
    bytes(out, tag, value.as_bytes());
}

/// A varint field: `uint32`, `uint64`, an enum, or (two's complement) `int64`.
pub fn varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    put_key(out, tag, WireType::Varint);
    put_varint(out, value);
}

/// A `fixed64` field.
pub fn fixed64(out: &mut Vec<u8>, tag: u32, value: u64) {
    put_key(out, tag, WireType::SixtyFourBit);
    out.extend_from_slice(&value.to_le_bytes());
}

/// An attribute's value: OTLP's `AnyValue`, of the kinds watcher sends.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// `string_value`.
    Text(&'a str),
    /// `int_value`.
    Int(i64),
    /// `bool_value`.
    Bool(bool),
}

/// `AnyValue`'s fields.
mod any_value {
    pub const STRING: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
}

/// `KeyValue`'s fields.
mod key_value {
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
}

/// Field `tag`, a `KeyValue` (an attribute) of `key` and `value`: written with its lengths up front.
pub fn attribute(out: &mut Vec<u8>, tag: u32, key: &str, value: Value<'_>) {
    let value_len = match value {
        Value::Text(text) => delimited_len(any_value::STRING, text.len()),
        Value::Int(n) => key_len(any_value::INT) + encoded_len_varint(n as u64),
        Value::Bool(_) => key_len(any_value::BOOL) + 1,
    };
    let length =
        delimited_len(key_value::KEY, key.len()) + delimited_len(key_value::VALUE, value_len);
    header(out, tag, length);
    string(out, key_value::KEY, key);
    header(out, key_value::VALUE, value_len);
    match value {
        Value::Text(text) => string(out, any_value::STRING, text),
        Value::Int(n) => varint(out, any_value::INT, n as u64),
        Value::Bool(b) => varint(out, any_value::BOOL, u64::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue, KeyValueList};
    use prost::Message;

    use super::*;

    /// `KeyValueList`: field 1 is a repeated `KeyValue`, a message made of attributes alone.
    fn decode_attributes(bytes: &[u8]) -> Vec<KeyValue> {
        KeyValueList::decode(bytes).expect("decodes").values
    }

    fn value_of(kv: &KeyValue) -> Option<&any_value::Value> {
        kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref())
    }

    #[test]
    fn attributes_of_every_kind_and_size_decode_as_written() {
        let long = "x".repeat(300);
        let mut out = Vec::new();
        attribute(&mut out, 1, "a", Value::Text("b"));
        attribute(&mut out, 1, "long", Value::Text(&long));
        attribute(&mut out, 1, &long, Value::Int(-7));
        attribute(&mut out, 1, "big", Value::Int(i64::MAX));
        attribute(&mut out, 1, "yes", Value::Bool(true));
        attribute(&mut out, 1, "", Value::Text(""));
        let back = decode_attributes(&out);
        let got: Vec<(&str, Option<&any_value::Value>)> = back
            .iter()
            .map(|kv| (kv.key.as_str(), value_of(kv)))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Some(&any_value::Value::StringValue("b".into()))),
                ("long", Some(&any_value::Value::StringValue(long.clone()))),
                (long.as_str(), Some(&any_value::Value::IntValue(-7))),
                ("big", Some(&any_value::Value::IntValue(i64::MAX))),
                ("yes", Some(&any_value::Value::BoolValue(true))),
                // Written even though empty (proto3 would leave it out): it reads back as empty text.
                ("", Some(&any_value::Value::StringValue(String::new()))),
            ]
        );
    }

    #[test]
    fn a_nested_message_of_any_length_gets_its_length_in_front() {
        for length in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let text = "y".repeat(length);
            let mut out = vec![0xAA];
            // Nested as an AnyValue's `bytes_value` (field 7), so it reads back as the bytes written.
            let nested = begin(&mut out, 7);
            attribute(&mut out, 1, "k", Value::Text(&text));
            end(&mut out, nested);
            let value = AnyValue::decode(&out[1..]).expect("decodes");
            let Some(any_value::Value::BytesValue(inner)) = value.value else {
                panic!("a bytes value at length {length}");
            };
            let list = decode_attributes(&inner);
            assert_eq!(list.len(), 1, "length {length}");
            assert_eq!(
                value_of(&list[0]),
                Some(&any_value::Value::StringValue(text))
            );
            assert_eq!(out[0], 0xAA, "what came before is untouched");
        }
    }
}
