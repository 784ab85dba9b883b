//! Column types and the binary protocol's values: a prepared statement's bound parameters
//! (`COM_STMT_EXECUTE`) and its result rows, each turned into the text people and JSON see (numbers and
//! dates formatted, strings as sent).

use std::fmt::Write as _;

use super::{
    exchange::{Param, Row},
    wire::Reader,
};
use crate::protocol::common::{Blob, BlobData};

/// Column flag: the integer is unsigned.
pub const UNSIGNED_FLAG: u16 = 0x20;

/// Parameter type flag (second byte of a bound type): the integer is unsigned.
const PARAM_UNSIGNED: u8 = 0x80;

/// `MYSQL_TYPE_NULL`.
pub const TYPE_NULL: u8 = 0x06;

/// Names of type codes, by code.
const TYPES: &[(u8, &str)] = &[
    (0x00, "DECIMAL"),
    (0x01, "TINY"),
    (0x02, "SHORT"),
    (0x03, "LONG"),
    (0x04, "FLOAT"),
    (0x05, "DOUBLE"),
    (0x06, "NULL"),
    (0x07, "TIMESTAMP"),
    (0x08, "LONGLONG"),
    (0x09, "INT24"),
    (0x0a, "DATE"),
    (0x0b, "TIME"),
    (0x0c, "DATETIME"),
    (0x0d, "YEAR"),
    (0x0e, "NEWDATE"),
    (0x0f, "VARCHAR"),
    (0x10, "BIT"),
    (0x11, "TIMESTAMP2"),
    (0x12, "DATETIME2"),
    (0x13, "TIME2"),
    (0xf2, "VECTOR"),
    (0xf5, "JSON"),
    (0xf6, "NEWDECIMAL"),
    (0xf7, "ENUM"),
    (0xf8, "SET"),
    (0xf9, "TINY_BLOB"),
    (0xfa, "MEDIUM_BLOB"),
    (0xfb, "LONG_BLOB"),
    (0xfc, "BLOB"),
    (0xfd, "VAR_STRING"),
    (0xfe, "STRING"),
    (0xff, "GEOMETRY"),
];

/// The name of type `code` (`LONGLONG`), or `TYPE_<code>` for a code this list lacks.
pub fn type_name(code: u8) -> std::borrow::Cow<'static, str> {
    match TYPES.iter().find(|(c, _)| *c == code) {
        Some((_, name)) => (*name).into(),
        None => format!("TYPE_{code}").into(),
    }
}

/// The type code named `name` (as [`type_name`] gives it).
pub fn type_code(name: &str) -> Option<u8> {
    TYPES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
        .or_else(|| name.strip_prefix("TYPE_")?.parse().ok())
}

/// Reads one binary value of type `code`; keeps at most `keep` bytes of a string. `None` when the
/// payload ends first.
pub fn value(r: &mut Reader<'_>, code: u8, unsigned: bool, keep: usize) -> Option<Blob> {
    let mut text = String::new();
    match code {
        0x01 => int(&mut text, r.uint(1)?, 1, unsigned),
        0x02 | 0x0d => int(&mut text, r.uint(2)?, 2, unsigned),
        0x03 | 0x09 => int(&mut text, r.uint(4)?, 4, unsigned),
        0x08 => int(&mut text, r.uint(8)?, 8, unsigned),
        0x04 => {
            let bits = r.u32()?;
            text.push_str(ryu::Buffer::new().format(f32::from_bits(bits)));
        }
        0x05 => {
            let bits = r.uint(8)?;
            text.push_str(ryu::Buffer::new().format(f64::from_bits(bits)));
        }
        0x07 | 0x0a | 0x0c | 0x0e => date_time(&mut text, r, code == 0x0a || code == 0x0e)?,
        0x0b => time(&mut text, r)?,
        TYPE_NULL => return None,
        _ => {
            let (data, len) = r.lenenc_prefix()?;
            return Some(Blob::new(
                BlobData::from_slice(&data[..data.len().min(keep)]),
                len,
            ));
        }
    }
    Some(Blob::full(text))
}

/// A little-endian integer of `width` bytes, signed unless `unsigned`.
fn int(out: &mut String, raw: u64, width: u32, unsigned: bool) {
    if unsigned {
        out.push_str(itoa::Buffer::new().format(raw));
    } else {
        let shift = 64 - 8 * width;
        let signed = ((raw << shift) as i64) >> shift;
        out.push_str(itoa::Buffer::new().format(signed));
    }
}

/// `DATE`, `DATETIME`, `TIMESTAMP`: a length (0, 4, 7 or 11) and as many fields.
fn date_time(out: &mut String, reader: &mut Reader<'_>, date_only: bool) -> Option<()> {
    let len = reader.u8()?;
    let mut fields = [0u32; 7];
    let mut body = Reader::new(reader.bytes(usize::from(len))?);
    if len >= 4 {
        fields[0] = u32::from(body.u16()?);
        fields[1] = u32::from(body.u8()?);
        fields[2] = u32::from(body.u8()?);
    }
    if len >= 7 {
        for field in &mut fields[3..6] {
            *field = u32::from(body.u8()?);
        }
    }
    if len >= 11 {
        fields[6] = body.u32()?;
    }
    let [year, month, day, hour, minute, second, micros] = fields;
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    if !date_only {
        let _ = write!(out, " {hour:02}:{minute:02}:{second:02}");
        if micros != 0 {
            let _ = write!(out, ".{micros:06}");
        }
    }
    Some(())
}

/// `TIME`: a length (0, 8 or 12), sign, days, hours, minutes, seconds, microseconds; shown as hours.
fn time(out: &mut String, r: &mut Reader<'_>) -> Option<()> {
    let len = r.u8()?;
    let body = r.bytes(usize::from(len))?;
    let mut b = Reader::new(body);
    let (mut negative, mut days, mut h, mut mi, mut s, mut us) = (false, 0u64, 0u64, 0, 0, 0);
    if len >= 8 {
        negative = b.u8()? == 1;
        days = u64::from(b.u32()?);
        h = u64::from(b.u8()?);
        mi = b.u8()?;
        s = b.u8()?;
    }
    if len >= 12 {
        us = b.u32()?;
    }
    if negative {
        out.push('-');
    }
    let _ = write!(out, "{:02}:{mi:02}:{s:02}", days * 24 + h);
    if us != 0 {
        let _ = write!(out, ".{us:06}");
    }
    Some(())
}

/// The bound parameters of `COM_STMT_EXECUTE`, from the null bitmap on: `count` parameters whose types
/// are sent here when the new-params-bound flag is set, else the `types` of the previous execution.
/// `types` is updated when new ones are sent. The parameters in `long_data` (index, bytes) were sent
/// before with `COM_STMT_SEND_LONG_DATA`: the execution carries no value for them, and each is given
/// as a value of that many bytes, none kept. Returns the parameters, or `None` when they cannot be read
/// (types never seen, or the payload ends first); keeps `keep` bytes of all values together.
pub fn params(
    r: &mut Reader<'_>,
    count: usize,
    types: &mut Vec<(u8, bool)>,
    long_data: &[(u16, u64)],
    keep: usize,
) -> Option<Vec<Param>> {
    let bitmap = r.bytes(count.div_ceil(8))?;
    if r.u8()? == 1 {
        types.clear();
        for _ in 0..count {
            let code = r.u8()?;
            let flags = r.u8()?;
            types.push((code, flags & PARAM_UNSIGNED != 0));
        }
    }
    if types.len() != count {
        return None;
    }
    let mut left = keep;
    let mut out = Vec::with_capacity(count);
    for (i, &(code, unsigned)) in types.iter().enumerate() {
        let null = bitmap[i / 8] & (1 << (i % 8)) != 0;
        let sent_before = long_data.iter().find(|(p, _)| usize::from(*p) == i);
        let value = if let Some(&(_, len)) = sent_before {
            Some(Blob::new(BlobData::new(), len))
        } else if null || code == TYPE_NULL {
            None
        } else {
            let v = value(r, code, unsigned, left)?;
            left = left.saturating_sub(v.data.len());
            Some(v)
        };
        out.push(Param {
            type_code: code,
            unsigned,
            value,
        });
    }
    Some(out)
}

/// A binary result row (after its 0x00 header): null bitmap with an offset of 2, then the values of
/// the non-null columns, of the columns' `types`. Stops early, keeping what it read, when the payload
/// was cut.
pub fn row(r: &mut Reader<'_>, types: &[(u8, bool)], keep: usize) -> Row {
    let Some(bitmap) = r.bytes((types.len() + 2).div_ceil(8)) else {
        return Row::new();
    };
    let mut left = keep;
    let mut out = Row::with_capacity(types.len());
    for (i, &(code, unsigned)) in types.iter().enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 || code == TYPE_NULL {
            out.push(None);
            continue;
        }
        let Some(v) = value(r, code, unsigned, left) else {
            break;
        };
        left = left.saturating_sub(v.data.len());
        out.push(Some(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Option<&Blob>) -> String {
        String::from_utf8_lossy(&b.unwrap().data).into_owned()
    }

    #[test]
    fn params_of_every_common_type_are_read_as_text() {
        let mut payload = vec![0b0000_0100, 1];
        for (code, flag) in [
            (0x08, 0),
            (0x03, 0x80),
            (0x06, 0),
            (0x05, 0),
            (0xfd, 0),
            (0x0c, 0),
            (0x0b, 0),
            (0x01, 0),
        ] {
            payload.extend([code, flag]);
        }
        payload.extend((-42i64).to_le_bytes());
        payload.extend(4_000_000_000u32.to_le_bytes());
        payload.extend(2.5f64.to_le_bytes());
        payload.extend(b"\x05hello");
        payload.extend([11, 0xe8, 0x07, 2, 29, 13, 14, 15, 0x40, 0xe2, 0x01, 0]);
        payload.extend([8, 1, 1, 0, 0, 0, 2, 3, 4]);
        payload.extend([0xff]);
        let mut types = Vec::new();
        let got = params(&mut Reader::new(&payload), 8, &mut types, &[], 1024).unwrap();
        let texts: Vec<_> = got
            .iter()
            .map(|p| p.value.as_ref().map(|v| text(Some(v))))
            .collect();
        assert_eq!(
            texts,
            vec![
                Some("-42".into()),
                Some("4000000000".into()),
                None,
                Some("2.5".into()),
                Some("hello".into()),
                Some("2024-02-29 13:14:15.123456".into()),
                Some("-26:03:04".into()),
                Some("-1".into()),
            ]
        );
        assert_eq!(types.len(), 8, "remembered for the next execution");
        // The next execution sends no types: the remembered ones are used.
        let mut again = vec![0xfe, 0];
        again.extend(7i64.to_le_bytes());
        again.extend(1u32.to_le_bytes());
        let got = params(&mut Reader::new(&again), 8, &mut types, &[], 1024).unwrap();
        assert_eq!(text(got[0].value.as_ref()), "7");
        assert!(got[1..].iter().all(|p| p.value.is_none()));
        let mut cut = vec![0, 0];
        cut.extend(7i64.to_le_bytes());
        let got = params(&mut Reader::new(&cut), 8, &mut types, &[], 1024);
        assert!(got.is_none(), "the values run out before the second");
        assert!(params(&mut Reader::new(&[0, 0]), 1, &mut Vec::new(), &[], 10).is_none());
        // Parameter 1 went as long data: the execution holds only parameter 0's value.
        let mut two = vec![0, 1, 0x08, 0, 0xfc, 0];
        two.extend(9i64.to_le_bytes());
        let got = params(
            &mut Reader::new(&two),
            2,
            &mut Vec::new(),
            &[(1, 70_000)],
            10,
        )
        .unwrap();
        assert_eq!(text(got[0].value.as_ref()), "9");
        let long = got[1].value.as_ref().unwrap();
        assert_eq!((long.data.len(), long.len()), (0, 70_000));
    }

    #[test]
    fn binary_rows_skip_null_columns_and_stop_where_the_payload_was_cut() {
        let types = [(0x03, false), (0xfd, false), (0x0a, false)];
        let payload = [
            &[0b0000_1000][..],
            &7i32.to_le_bytes(),
            &[4, 0xe8, 0x07, 1, 2],
        ]
        .concat();
        let row = row(&mut Reader::new(&payload), &types, 100);
        assert_eq!(row.len(), 3);
        assert_eq!(text(row[0].as_ref()), "7");
        assert!(row[1].is_none());
        assert_eq!(text(row[2].as_ref()), "2024-01-02");
        assert_eq!(type_name(0x08), "LONGLONG");
        assert_eq!(type_code("TYPE_42"), Some(42));
        assert_eq!(type_code(&type_name(0xf6)), Some(0xf6));
    }
}
