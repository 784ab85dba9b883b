//! The `redis` object of a JSON record (`docs/json-schema.md`): written and read back by the
//! exchange's `PayloadJson`. Replies are `{"type": T, "value": V}` trees; a finite double is written as a JSON number.

use super::{
    exchange::{ExchangeKind, RedisExchange},
    resp::Frame,
};
use crate::protocol::{
    json::{
        read::{
            blob, boolean, inconsistent, list, null, nullable, owned_string, pair, signed, string,
            unknown, unsigned, wrong_type, FieldResult, Fields, Json,
        },
        write::{
            write_array, write_blob, write_bool, write_name, write_pair, write_str, write_u64,
        },
    },
    plugin::PayloadJson,
};

impl PayloadJson for RedisExchange {
    /// Writes the `redis` object of a record.
    fn write_json(&self, out: &mut Vec<u8>) {
        let kind = match self.kind {
            ExchangeKind::Command => "command",
            ExchangeKind::Push => "push",
            ExchangeKind::Replicated => "replicated",
        };
        out.extend_from_slice(b"{\"kind\":");
        write_name(out, kind);
        out.extend_from_slice(b",\"command\":");
        if self.kind == ExchangeKind::Push {
            out.extend_from_slice(b"null");
        } else {
            write_str(out, &self.command);
        }
        out.extend_from_slice(b",\"args\":");
        write_array(out, &self.args, write_blob);
        out.extend_from_slice(b",\"reply\":");
        match &self.reply {
            Some(frame) => write_frame(out, frame),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }

    /// Reads the `redis` object of a record.
    fn read_json(value: Json<'_>) -> FieldResult<Self> {
        let mut f = Fields::of(value)?;
        let kind = f.take("kind", exchange_kind)?;
        let command = match kind {
            ExchangeKind::Command | ExchangeKind::Replicated => f.take("command", owned_string)?,
            ExchangeKind::Push => {
                f.take("command", null)?;
                String::new()
            }
        };
        Ok(RedisExchange {
            kind,
            command: command.into(),
            args: f.take("args", |v| list(v, blob))?.into(),
            reply: f.take("reply", nullable(frame))?,
        })
    }
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
        Frame::Cut { kept, .. } => frame_type(kept),
    }
}

fn write_frame(out: &mut Vec<u8>, frame: &Frame) {
    if let Frame::Cut { kept, len } = frame {
        // The aggregate kept, then its true length: `{"type":"array","value":[...],"len":N,"truncated":true}`.
        write_frame(out, kept);
        out.pop();
        out.extend_from_slice(b",\"len\":");
        write_u64(out, *len);
        out.extend_from_slice(b",\"truncated\":true}");
        return;
    }
    out.extend_from_slice(b"{\"type\":");
    write_name(out, frame_type(frame));
    if let Frame::Verbatim { format, .. } = frame {
        out.extend_from_slice(b",\"format\":");
        write_str(out, format);
    }
    out.extend_from_slice(b",\"value\":");
    match frame {
        Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => write_blob(out, b),
        Frame::Verbatim { text, .. } => write_blob(out, text),
        Frame::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Frame::Null => out.extend_from_slice(b"null"),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            write_array(out, items, write_frame);
        }
        Frame::Map(pairs) => write_array(out, pairs, |out, (k, v)| {
            write_pair(out, |out| write_frame(out, k), |out| write_frame(out, v));
        }),
        Frame::Double(d) => match d.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
            }
            _ => write_str(out, d),
        },
        Frame::Boolean(b) => write_bool(out, *b),
        Frame::BigNumber(n) => write_str(out, n),
        Frame::Cut { .. } => unreachable!("written above"),
    }
    out.push(b'}');
}

fn exchange_kind(value: Json<'_>) -> FieldResult<ExchangeKind> {
    let name = string(value)?;
    match name.as_ref() {
        "command" => Ok(ExchangeKind::Command),
        "push" => Ok(ExchangeKind::Push),
        "replicated" => Ok(ExchangeKind::Replicated),
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
            text: Box::new(f.take("value", blob)?),
        },
        _ => return Err(unknown("frame type", frame_type).under_key("type")),
    };
    // An aggregate cut short carries its true length.
    match (
        f.take_optional("len", unsigned)?,
        f.take_optional("truncated", boolean)?,
    ) {
        (Some(len), Some(true)) if frame.elements().is_some() || matches!(frame, Frame::Map(_)) => {
            Ok(Frame::Cut {
                kept: Box::new(frame),
                len,
            })
        }
        (None, None | Some(false)) => Ok(frame),
        _ => Err(inconsistent(
            "`len` and `truncated: true` go together, on an array, map, set or push".into(),
        )),
    }
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
