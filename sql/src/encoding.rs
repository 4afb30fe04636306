//! Encodings of SQL values: order-preserving key columns and compact row values.
//!
//! **Key columns** (primary and index keys). Each value is a marker byte followed by a payload,
//! and the byte order of the encodings equals the SQL order of the values:
//!
//! - marker `0x01` = a non-NULL value, `0x02` = NULL, so NULL sorts after every value;
//! - integers (every width): 8 bytes big-endian with the sign bit flipped;
//! - floats: the IEEE bits big-endian, all bits inverted for negatives and the sign bit flipped
//!   for positives; -0.0 is written as 0.0 and every NaN as one NaN, which sorts after +inf; a
//!   real is written as the double of the same value;
//! - booleans: one byte 0 or 1;
//! - numerics: a class byte (`01` negative, `02` zero, `03` positive); a non-zero value
//!   `0.d1d2…dn × 10^E` (d1 ≠ 0, dn ≠ 0) continues with `E + 128` (one byte), the digits as
//!   bytes `d + 1` and a `00` terminator, all of that inverted for negatives. Equal values
//!   of different scales (1.5, 1.50) encode alike; a key column's decoder restores the scale
//!   of its type's modifier;
//! - dates (days), times, timestamps and timestamptz values (microseconds), all counted from
//!   2000-01-01 00:00:00 UTC: as integers;
//! - bytea: the bytes escaped and terminated like text;
//! - uuid: the 16 bytes as they are (fixed width);
//! - interval: its span (30-day months, 24-hour days, in microseconds) as 16 bytes
//!   big-endian with the sign bit flipped; equal spans ('1 day', '24 hours') are one key,
//!   which decodes as days and microseconds;
//! - text, varchar and char (with its padding): the UTF-8 bytes escaped and terminated with `txn::keys::encode_bytes` (byte order,
//!   i.e. collation "C");
//! - jsonb (for in-memory grouping and comparison only: no stored key holds one): see
//!   `types::jsonb::encode_key`, in PostgreSQL's jsonb order;
//! - arrays (only in the keys that group and deduplicate rows, never stored): the elements'
//!   encodings, then `0x00`.
//!
//! A descending column inverts every byte of its encoding (marker included), so NULL then
//! sorts first. Every encoding is prefix-free, which is what makes inversion and concatenation of
//! several columns order-preserving.
//!
//! **Row values** hold the non-key columns as `0x01` (format version) then, for each non-NULL
//! column, `varint(column id) type-tag payload`. NULL columns are absent, so a column added later
//! reads as NULL and a dropped column's bytes are skipped: neither needs a rewrite.

use rust_decimal::Decimal;
use txn::keys::{decode_bytes, encode_bytes};

use crate::types::interval::Interval;

use crate::{DataType, Error, Result, Value};

const MARKER_VALUE: u8 = 0x01;
const MARKER_NULL: u8 = 0x02;
/// Ends the elements of an array's key encoding; below both markers, so a prefix sorts first.
const ARRAY_END: u8 = 0x00;

/// Appends the order-preserving encoding of `value` (of type `ty`) to `out`.
pub fn encode_key_value(out: &mut Vec<u8>, value: &Value, descending: bool) {
    let start = out.len();
    match value {
        Value::Null => out.push(MARKER_NULL),
        Value::Bool(b) => out.extend_from_slice(&[MARKER_VALUE, *b as u8]),
        Value::Int(i) => {
            out.push(MARKER_VALUE);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float(f) => {
            out.push(MARKER_VALUE);
            out.extend_from_slice(&encode_float(*f).to_be_bytes());
        }
        Value::Float4(f) => {
            out.push(MARKER_VALUE);
            out.extend_from_slice(&encode_float(f64::from(*f)).to_be_bytes());
        }
        Value::Text(s) => {
            out.push(MARKER_VALUE);
            encode_bytes(out, s.as_bytes());
        }
        Value::Numeric(d) => {
            out.push(MARKER_VALUE);
            encode_numeric(out, *d);
        }
        Value::Bytes(b) => {
            out.push(MARKER_VALUE);
            encode_bytes(out, b);
        }
        Value::Date(d) => encode_key_int(out, i64::from(*d)),
        Value::Time(t) | Value::Timestamp(t) | Value::Timestamptz(t) => encode_key_int(out, *t),
        Value::Uuid(u) => {
            out.push(MARKER_VALUE);
            out.extend_from_slice(u);
        }
        Value::Interval(v) => {
            out.push(MARKER_VALUE);
            out.extend_from_slice(&((v.span() as u128) ^ (1 << 127)).to_be_bytes());
        }
        Value::Jsonb(j) => {
            out.push(MARKER_VALUE);
            crate::types::jsonb::encode_key(out, j);
        }
        Value::Array(items) => {
            // Used only to group and deduplicate: arrays are never key columns.
            out.push(MARKER_VALUE);
            for item in items {
                encode_key_value(out, item, false);
            }
            out.push(ARRAY_END);
        }
    }
    if descending {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
}

/// An integer key payload: 8 bytes big-endian with the sign bit flipped.
fn encode_key_int(out: &mut Vec<u8>, i: i64) {
    out.push(MARKER_VALUE);
    out.extend_from_slice(&((i as u64) ^ (1 << 63)).to_be_bytes());
}

const NUMERIC_NEGATIVE: u8 = 0x01;
const NUMERIC_ZERO: u8 = 0x02;
const NUMERIC_POSITIVE: u8 = 0x03;

/// The order-preserving numeric payload (see the module documentation).
pub(crate) fn encode_numeric(out: &mut Vec<u8>, d: Decimal) {
    if d.is_zero() {
        out.push(NUMERIC_ZERO);
        return;
    }
    let digits = d.mantissa().unsigned_abs().to_string();
    let digits = digits.trim_end_matches('0');
    // mantissa = digits × 10^zeros, so d = 0.digits × 10^(len(mantissa) - scale).
    let e = d.mantissa().unsigned_abs().to_string().len() as i64 - i64::from(d.scale());
    let start = out.len() + 1;
    out.push(if d.is_sign_negative() {
        NUMERIC_NEGATIVE
    } else {
        NUMERIC_POSITIVE
    });
    out.push((e + 128) as u8);
    out.extend(digits.bytes().map(|b| b - b'0' + 1));
    out.push(0);
    if d.is_sign_negative() {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
}

/// Decodes a numeric payload; returns the value and the bytes used.
fn decode_numeric(input: &[u8], ty: DataType) -> Result<(Decimal, usize)> {
    let (&class, rest) = input.split_first().ok_or_else(|| corrupt("numeric"))?;
    if class == NUMERIC_ZERO {
        return Ok((with_type_scale(Decimal::ZERO, ty), 1));
    }
    let negative = match class {
        NUMERIC_NEGATIVE => true,
        NUMERIC_POSITIVE => false,
        _ => return Err(corrupt("numeric class")),
    };
    let byte = |b: u8| if negative { !b } else { b };
    let (&e, rest) = rest.split_first().ok_or_else(|| corrupt("numeric"))?;
    let e = i64::from(byte(e)) - 128;
    let end = rest
        .iter()
        .position(|b| byte(*b) == 0)
        .ok_or_else(|| corrupt("numeric digits"))?;
    let mut mantissa: u128 = 0;
    for &b in &rest[..end] {
        let digit = byte(b).checked_sub(1).filter(|d| *d < 10);
        let digit = digit.ok_or_else(|| corrupt("numeric digit"))?;
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(digit)))
            .ok_or_else(|| corrupt("numeric too long"))?;
    }
    let mut scale = end as i64 - e;
    while scale < 0 {
        mantissa = mantissa.checked_mul(10).ok_or_else(|| corrupt("numeric"))?;
        scale += 1;
    }
    let d = decimal(mantissa, negative, scale)?;
    Ok((with_type_scale(d, ty), 2 + end + 1))
}

/// A decimal from its parts, checked against the representation's limits.
fn decimal(mantissa: u128, negative: bool, scale: i64) -> Result<Decimal> {
    if mantissa >= 1 << 96 || scale > i64::from(crate::types::numeric::MAX_SCALE) {
        return Err(corrupt("numeric out of range"));
    }
    let m = mantissa as i128;
    Ok(Decimal::from_i128_with_scale(
        if negative { -m } else { m },
        scale as u32,
    ))
}

/// Shows a decoded key value with the scale of its column's NUMERIC(p, s).
fn with_type_scale(mut d: Decimal, ty: DataType) -> Decimal {
    if let DataType::Numeric(Some((_, s))) = ty {
        d.rescale(u32::from(s));
    }
    d
}

fn encode_float(f: f64) -> u64 {
    let f = if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn decode_float(bits: u64) -> f64 {
    f64::from_bits(if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    })
}

/// Encodes several key columns: `(value, descending)` pairs.
pub fn encode_key(values: &[Value], descending: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        encode_key_value(&mut out, v, descending.get(i).copied().unwrap_or(false));
    }
    out
}

fn corrupt(what: &str) -> Error {
    Error::Internal(format!("corrupt key encoding: {what}"))
}

/// Decodes one key column of type `ty` from the front of `input`; returns it and the rest.
pub fn decode_key_value(input: &[u8], ty: DataType, descending: bool) -> Result<(Value, &[u8])> {
    // Work on an un-inverted copy for descending columns; the consumed length is the same.
    let owned;
    let buf: &[u8] = if descending {
        owned = input.iter().map(|b| !*b).collect::<Vec<u8>>();
        &owned
    } else {
        input
    };
    let (&marker, rest) = buf.split_first().ok_or_else(|| corrupt("empty"))?;
    if marker == MARKER_NULL {
        return Ok((Value::Null, &input[1..]));
    }
    if marker != MARKER_VALUE {
        return Err(corrupt("marker"));
    }
    let fixed = |n: usize| rest.get(..n).ok_or_else(|| corrupt("short"));
    let (value, used) = match ty {
        DataType::Bool => (Value::Bool(fixed(1)?[0] != 0), 1),
        DataType::Int2 | DataType::Int4 | DataType::Int8 => {
            let b: [u8; 8] = fixed(8)?.try_into().map_err(|_| corrupt("int"))?;
            (Value::Int((u64::from_be_bytes(b) ^ (1 << 63)) as i64), 8)
        }
        DataType::Float8 => {
            let b: [u8; 8] = fixed(8)?.try_into().map_err(|_| corrupt("float"))?;
            (Value::Float(decode_float(u64::from_be_bytes(b))), 8)
        }
        DataType::Float4 => {
            let b: [u8; 8] = fixed(8)?.try_into().map_err(|_| corrupt("float"))?;
            // A real is stored as the double of the same value, which converts back exactly.
            (Value::Float4(decode_float(u64::from_be_bytes(b)) as f32), 8)
        }
        DataType::Numeric(_) => {
            let (d, used) = decode_numeric(rest, ty)?;
            (Value::Numeric(d), used)
        }
        DataType::Date | DataType::Time | DataType::Timestamp | DataType::Timestamptz => {
            let b: [u8; 8] = fixed(8)?.try_into().map_err(|_| corrupt("int"))?;
            let i = (u64::from_be_bytes(b) ^ (1 << 63)) as i64;
            (datetime_value(ty, i)?, 8)
        }
        DataType::Bytea => {
            let (bytes, tail) = decode_bytes(rest).ok_or_else(|| corrupt("bytea"))?;
            (Value::Bytes(bytes), rest.len() - tail.len())
        }
        DataType::Uuid => {
            let u: [u8; 16] = fixed(16)?.try_into().map_err(|_| corrupt("uuid"))?;
            (Value::Uuid(u), 16)
        }
        DataType::Interval => {
            let b: [u8; 16] = fixed(16)?.try_into().map_err(|_| corrupt("interval"))?;
            let span = (u128::from_be_bytes(b) ^ (1 << 127)) as i128;
            let v = Interval::from_span(span).ok_or_else(|| corrupt("interval"))?;
            (Value::Interval(v), 16)
        }
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => {
            let (bytes, tail) = decode_bytes(rest).ok_or_else(|| corrupt("text"))?;
            let s = String::from_utf8(bytes).map_err(|_| corrupt("utf-8"))?;
            (Value::Text(s), rest.len() - tail.len())
        }
        // Never a stored key column (the catalog refuses it), so keys are not decoded.
        DataType::Jsonb => return Err(corrupt("jsonb key")),
        DataType::Array(_) => return Err(corrupt("an array is never a key column")),
    };
    Ok((value, &input[1 + used..]))
}

/// A date or time value of type `ty` from its integer form (days or microseconds).
fn datetime_value(ty: DataType, i: i64) -> Result<Value> {
    Ok(match ty {
        DataType::Date => Value::Date(i32::try_from(i).map_err(|_| corrupt("date"))?),
        DataType::Time => Value::Time(i),
        DataType::Timestamp => Value::Timestamp(i),
        _ => Value::Timestamptz(i),
    })
}

/// Decodes key columns of the given types from `input`, which must be consumed entirely.
pub fn decode_key(mut input: &[u8], types: &[(DataType, bool)]) -> Result<Vec<Value>> {
    let mut values = Vec::with_capacity(types.len());
    for &(ty, desc) in types {
        let (v, rest) = decode_key_value(input, ty, desc)?;
        values.push(v);
        input = rest;
    }
    if !input.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(values)
}

const ROW_FORMAT: u8 = 0x01;
const TAG_FALSE: u8 = 1;
const TAG_TRUE: u8 = 2;
const TAG_INT: u8 = 3;
const TAG_FLOAT: u8 = 4;
const TAG_TEXT: u8 = 5;
const TAG_FLOAT4: u8 = 6;
const TAG_NUMERIC: u8 = 7;
const TAG_BYTEA: u8 = 8;
const TAG_DATE: u8 = 9;
const TAG_TIME: u8 = 10;
const TAG_TIMESTAMP: u8 = 11;
const TAG_TIMESTAMPTZ: u8 = 12;
const TAG_UUID: u8 = 13;
const TAG_INTERVAL: u8 = 14;
const TAG_JSONB: u8 = 15;
/// An array: varint(count), then each element's tag and payload.
const TAG_ARRAY: u8 = 20;
/// A NULL array element (row columns that are NULL are absent instead).
const TAG_NULL: u8 = 21;

/// Appends a zigzag varint: small magnitudes of either sign take few bytes.
fn put_zigzag(out: &mut Vec<u8>, i: i64) {
    put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
}

fn get_zigzag(input: &mut &[u8]) -> Result<i64> {
    let z = get_varint(input)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint128(input: &mut &[u8]) -> Result<u128> {
    let mut v = 0u128;
    for shift in (0..128).step_by(7) {
        let (&b, rest) = input.split_first().ok_or_else(|| corrupt("varint"))?;
        *input = rest;
        v |= ((b & 0x7F) as u128) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(corrupt("varint too long"))
}

fn get_varint(input: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().ok_or_else(|| corrupt("varint"))?;
        *input = rest;
        v |= ((b & 0x7F) as u64) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(corrupt("varint too long"))
}

/// Encodes a row value from `(column id, value)` pairs; NULLs are left out.
pub fn encode_row<'a>(columns: impl IntoIterator<Item = (u32, &'a Value)>) -> Vec<u8> {
    let mut out = vec![ROW_FORMAT];
    for (id, value) in columns {
        if value.is_null() {
            continue;
        }
        put_varint(&mut out, id as u64);
        encode_tagged(&mut out, value);
    }
    out
}

/// Appends a value's tag and payload (a NULL, written only as an array element, is a tag).
fn encode_tagged(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            put_varint(out, items.len() as u64);
            for item in items {
                encode_tagged(out, item);
            }
        }
        Value::Bool(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
        Value::Int(i) => {
            out.push(TAG_INT);
            put_varint(out, ((*i << 1) ^ (*i >> 63)) as u64);
        }
        Value::Float(f) => {
            out.push(TAG_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Float4(f) => {
            out.push(TAG_FLOAT4);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Bytes(b) => {
            out.push(TAG_BYTEA);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Date(d) => {
            out.push(TAG_DATE);
            put_zigzag(out, i64::from(*d));
        }
        Value::Time(t) => {
            out.push(TAG_TIME);
            put_zigzag(out, *t);
        }
        Value::Timestamp(t) => {
            out.push(TAG_TIMESTAMP);
            put_zigzag(out, *t);
        }
        Value::Timestamptz(t) => {
            out.push(TAG_TIMESTAMPTZ);
            put_zigzag(out, *t);
        }
        Value::Uuid(u) => {
            out.push(TAG_UUID);
            out.extend_from_slice(u);
        }
        Value::Interval(v) => {
            out.push(TAG_INTERVAL);
            put_zigzag(out, i64::from(v.months));
            put_zigzag(out, i64::from(v.days));
            put_zigzag(out, v.micros);
        }
        Value::Numeric(d) => {
            out.push(TAG_NUMERIC);
            out.push(d.scale() as u8);
            let m = d.mantissa();
            put_varint128(out, ((m << 1) ^ (m >> 127)) as u128);
        }
        Value::Text(s) => {
            out.push(TAG_TEXT);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Jsonb(j) => {
            let s = j.to_string();
            out.push(TAG_JSONB);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Decodes a row value into `(column id, value)` pairs (NULL columns are absent).
pub fn decode_row(input: &[u8]) -> Result<Vec<(u32, Value)>> {
    let mut out = Vec::new();
    decode_row_each(input, |id, value| out.push((id, value)))?;
    Ok(out)
}

/// Decodes a row value, handing each `(column id, value)` pair to `f` in the order they are
/// stored (NULL columns are absent).
pub fn decode_row_each(input: &[u8], mut f: impl FnMut(u32, Value)) -> Result<()> {
    decode_row_selected(input, |id| Some(id as usize), |id, v| f(id as u32, v))
}

/// Decodes the columns of a row value that `slot` maps to a position, handing each
/// `(position, value)` to `f`; the values of other columns are skipped without being decoded.
pub fn decode_row_selected(
    mut input: &[u8],
    mut slot: impl FnMut(u32) -> Option<usize>,
    mut f: impl FnMut(usize, Value),
) -> Result<()> {
    let (&format, rest) = input.split_first().ok_or_else(|| corrupt("empty row"))?;
    if format != ROW_FORMAT {
        return Err(corrupt("row format"));
    }
    input = rest;
    while !input.is_empty() {
        let id = u32::try_from(get_varint(&mut input)?).map_err(|_| corrupt("column id"))?;
        let (&tag, rest) = input.split_first().ok_or_else(|| corrupt("tag"))?;
        input = rest;
        match slot(id) {
            Some(i) => f(i, decode_tagged(tag, &mut input)?),
            None => skip_tagged(tag, &mut input)?,
        }
    }
    Ok(())
}

/// Moves `input` past a value's payload after its tag, as [`decode_tagged`] would, without
/// building the value.
fn skip_tagged(tag: u8, input: &mut &[u8]) -> Result<()> {
    let skip = |input: &mut &[u8], n: usize, what: &str| -> Result<()> {
        *input = input.get(n..).ok_or_else(|| corrupt(what))?;
        Ok(())
    };
    match tag {
        TAG_NULL | TAG_FALSE | TAG_TRUE => {}
        TAG_ARRAY => {
            let len = get_varint(input)?;
            for _ in 0..len {
                let (&tag, rest) = input.split_first().ok_or_else(|| corrupt("tag"))?;
                *input = rest;
                skip_tagged(tag, input)?;
            }
        }
        TAG_INT | TAG_DATE | TAG_TIME | TAG_TIMESTAMP | TAG_TIMESTAMPTZ => {
            get_varint(input)?;
        }
        TAG_INTERVAL => {
            for _ in 0..3 {
                get_varint(input)?;
            }
        }
        TAG_FLOAT => skip(input, 8, "float")?,
        TAG_FLOAT4 => skip(input, 4, "float4")?,
        TAG_UUID => skip(input, 16, "uuid")?,
        TAG_NUMERIC => {
            skip(input, 1, "numeric")?;
            get_varint128(input)?;
        }
        TAG_TEXT | TAG_BYTEA | TAG_JSONB => {
            let len = usize::try_from(get_varint(input)?).map_err(|_| corrupt("len"))?;
            skip(input, len, "bytes")?;
        }
        _ => return Err(corrupt("value tag")),
    }
    Ok(())
}

/// Decodes a value's payload after its tag from the front of `input`.
fn decode_tagged(tag: u8, input: &mut &[u8]) -> Result<Value> {
    Ok(match tag {
        TAG_NULL => Value::Null,
        TAG_ARRAY => {
            let len = usize::try_from(get_varint(input)?).map_err(|_| corrupt("len"))?;
            // Every element takes at least its tag byte, which bounds the allocation.
            let mut items = Vec::with_capacity(len.min(input.len()));
            for _ in 0..len {
                let (&tag, rest) = input.split_first().ok_or_else(|| corrupt("tag"))?;
                *input = rest;
                items.push(decode_tagged(tag, input)?);
            }
            Value::Array(items)
        }
        TAG_FALSE => Value::Bool(false),
        TAG_TRUE => Value::Bool(true),
        TAG_INT => {
            let z = get_varint(input)?;
            Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        TAG_FLOAT => {
            let b: [u8; 8] = input
                .get(..8)
                .ok_or_else(|| corrupt("float"))?
                .try_into()
                .map_err(|_| corrupt("float"))?;
            *input = &input[8..];
            Value::Float(f64::from_bits(u64::from_le_bytes(b)))
        }
        TAG_FLOAT4 => {
            let b: [u8; 4] = input
                .get(..4)
                .ok_or_else(|| corrupt("float4"))?
                .try_into()
                .map_err(|_| corrupt("float4"))?;
            *input = &input[4..];
            Value::Float4(f32::from_bits(u32::from_le_bytes(b)))
        }
        TAG_BYTEA => {
            let len = usize::try_from(get_varint(input)?).map_err(|_| corrupt("len"))?;
            let bytes = input.get(..len).ok_or_else(|| corrupt("bytea"))?;
            *input = &input[len..];
            Value::Bytes(bytes.to_vec())
        }
        TAG_DATE => datetime_value(DataType::Date, get_zigzag(input)?)?,
        TAG_TIME => Value::Time(get_zigzag(input)?),
        TAG_TIMESTAMP => Value::Timestamp(get_zigzag(input)?),
        TAG_TIMESTAMPTZ => Value::Timestamptz(get_zigzag(input)?),
        TAG_INTERVAL => {
            let field = |i: i64| i32::try_from(i).map_err(|_| corrupt("interval"));
            let months = field(get_zigzag(input)?)?;
            let days = field(get_zigzag(input)?)?;
            let micros = get_zigzag(input)?;
            Value::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        TAG_UUID => {
            let u: [u8; 16] = input
                .get(..16)
                .ok_or_else(|| corrupt("uuid"))?
                .try_into()
                .map_err(|_| corrupt("uuid"))?;
            *input = &input[16..];
            Value::Uuid(u)
        }
        TAG_NUMERIC => {
            let (&scale, rest) = input.split_first().ok_or_else(|| corrupt("numeric"))?;
            *input = rest;
            let z = get_varint128(input)?;
            let m = ((z >> 1) as i128) ^ -((z & 1) as i128);
            Value::Numeric(decimal(m.unsigned_abs(), m < 0, i64::from(scale))?)
        }
        TAG_TEXT => {
            let len = usize::try_from(get_varint(input)?).map_err(|_| corrupt("len"))?;
            let bytes = input.get(..len).ok_or_else(|| corrupt("text"))?;
            *input = &input[len..];
            Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("utf-8"))?)
        }
        TAG_JSONB => {
            let len = usize::try_from(get_varint(input)?).map_err(|_| corrupt("len"))?;
            let bytes = input.get(..len).ok_or_else(|| corrupt("jsonb"))?;
            *input = &input[len..];
            let s = std::str::from_utf8(bytes).map_err(|_| corrupt("utf-8"))?;
            let j = crate::types::jsonb::parse(s).map_err(|_| corrupt("jsonb"))?;
            Value::Jsonb(Box::new(j))
        }
        _ => return Err(corrupt("value tag")),
    })
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;

    /// A value with its type, for the property tests.
    fn typed_value() -> impl Strategy<Value = (DataType, Value)> {
        let float = prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MIN_POSITIVE),
        ];
        let text = proptest::collection::vec(
            prop_oneof![Just('\0'), Just('a'), Just('\u{ff}'), any::<char>()],
            0..5,
        )
        .prop_map(|c| c.into_iter().collect::<String>());
        let with_null = |s: BoxedStrategy<Value>| prop_oneof![1 => Just(Value::Null), 6 => s];
        prop_oneof![
            with_null(any::<bool>().prop_map(Value::Bool).boxed())
                .prop_map(|v| (DataType::Bool, v)),
            with_null(
                prop_oneof![any::<i64>(), -3i64..3, Just(i64::MIN), Just(i64::MAX)]
                    .prop_map(Value::Int)
                    .boxed()
            )
            .prop_map(|v| (DataType::Int8, v)),
            with_null(float.prop_map(Value::Float).boxed()).prop_map(|v| (DataType::Float8, v)),
            with_null(
                prop_oneof![
                    any::<f32>(),
                    Just(-0.0f32),
                    Just(f32::NAN),
                    Just(f32::INFINITY)
                ]
                .prop_map(Value::Float4)
                .boxed()
            )
            .prop_map(|v| (DataType::Float4, v)),
            with_null(any::<i16>().prop_map(|i| Value::Int(i.into())).boxed())
                .prop_map(|v| (DataType::Int2, v)),
            with_null(
                (
                    prop_oneof![any::<i64>(), -1000i64..1000, Just(0)],
                    0u32..12,
                    any::<bool>()
                )
                    .prop_map(|(m, scale, wide)| {
                        // Wide values use the whole 96-bit mantissa.
                        let m = if wide {
                            i128::from(m) << 30
                        } else {
                            i128::from(m)
                        };
                        Value::Numeric(Decimal::from_i128_with_scale(m, scale))
                    })
                    .boxed()
            )
            .prop_map(|v| (DataType::Numeric(None), v)),
            with_null(
                proptest::collection::vec(
                    prop_oneof![Just(0u8), Just(1), Just(255), any::<u8>()],
                    0..5
                )
                .prop_map(Value::Bytes)
                .boxed()
            )
            .prop_map(|v| (DataType::Bytea, v)),
            with_null(any::<i32>().prop_map(Value::Date).boxed()).prop_map(|v| (DataType::Date, v)),
            with_null(any::<i64>().prop_map(Value::Timestamptz).boxed())
                .prop_map(|v| (DataType::Timestamptz, v)),
            with_null(any::<i64>().prop_map(Value::Timestamp).boxed())
                .prop_map(|v| (DataType::Timestamp, v)),
            with_null((0..86_400_000_000i64).prop_map(Value::Time).boxed())
                .prop_map(|v| (DataType::Time, v)),
            with_null(any::<[u8; 16]>().prop_map(Value::Uuid).boxed())
                .prop_map(|v| (DataType::Uuid, v)),
            with_null(
                (-1000i32..1000, any::<i32>(), any::<i64>())
                    .prop_map(|(months, days, micros)| Value::Interval(Interval {
                        months,
                        days: days / 2,
                        micros: micros / 2,
                    }))
                    .boxed()
            )
            .prop_map(|v| (DataType::Interval, v)),
            with_null(text.prop_map(Value::Text).boxed()).prop_map(|v| (DataType::Text, v)),
        ]
    }

    /// The value a key decodes to: -0.0 is stored as 0.0.
    fn normalize(v: Value) -> Value {
        match v {
            Value::Float(f) => Value::Float(if f == 0.0 { 0.0 } else { f }),
            Value::Float4(f) => Value::Float4(if f == 0.0 { 0.0 } else { f }),
            // Keys keep a numeric's value, not its scale (the column's modifier sets that),
            // and an interval's span, not its fields.
            Value::Numeric(d) => Value::Numeric(d.normalize()),
            Value::Interval(v) => Value::Interval(Interval::from_span(v.span()).expect("fits")),
            v => v,
        }
    }

    /// Tuples of 1..3 columns of one fixed type sequence, with a per-column direction.
    fn tuples() -> impl Strategy<Value = (Vec<(DataType, bool)>, Vec<Value>, Vec<Value>)> {
        proptest::collection::vec((typed_value(), typed_value(), any::<bool>()), 1..4)
            .prop_flat_map(|cols| {
                // Make both tuples share types: take b's value only when its type matches a's.
                let types: Vec<(DataType, bool)> =
                    cols.iter().map(|((t, _), _, d)| (*t, *d)).collect();
                let a: Vec<Value> = cols.iter().map(|((_, v), _, _)| v.clone()).collect();
                let b: Vec<Value> = cols
                    .iter()
                    .map(|((ta, va), (tb, vb), _)| if ta == tb { vb.clone() } else { va.clone() })
                    .collect();
                (Just(types), Just(a), Just(b), 0..=cols.len()).prop_map(|(t, a, mut b, keep)| {
                    b.truncate(keep.max(1));
                    (t, a, b)
                })
            })
    }

    fn tuple_cmp(types: &[(DataType, bool)], a: &[Value], b: &[Value]) -> Ordering {
        for ((_, desc), (x, y)) in types.iter().zip(a.iter().zip(b)) {
            let o = x.sort_cmp(y);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.len().cmp(&b.len())
    }

    proptest! {
        /// Encoded order equals value order (NULL last ascending, first descending), including
        /// tuples that are prefixes of one another; encodings round-trip.
        #[test]
        fn key_order_is_value_order((types, a, b) in tuples()) {
            let desc: Vec<bool> = types.iter().map(|(_, d)| *d).collect();
            let (ea, eb) = (encode_key(&a, &desc), encode_key(&b, &desc));
            prop_assert_eq!(tuple_cmp(&types, &a, &b), ea.cmp(&eb), "{:?} vs {:?}", a, b);
            let decoded = decode_key(&ea, &types).expect("decodes");
            let want: Vec<Value> = a.into_iter().map(normalize).collect();
            prop_assert_eq!(format!("{decoded:?}"), format!("{want:?}"));
        }

        /// Row values round-trip, leaving NULLs out.
        #[test]
        fn row_round_trip(values in proptest::collection::vec(typed_value(), 0..6)) {
            let cols: Vec<(u32, Value)> = values.into_iter().enumerate().map(|(i, (_, v))| (i as u32 * 70, v)).collect();
            let enc = encode_row(cols.iter().map(|(i, v)| (*i, v)));
            let want: Vec<(u32, Value)> = cols.into_iter().filter(|(_, v)| !v.is_null()).collect();
            prop_assert_eq!(format!("{:?}", decode_row(&enc).expect("decodes")), format!("{want:?}"));
        }

        /// Decoding a selection of a row's columns skips the others exactly: what is decoded
        /// equals the selected part of the whole row.
        #[test]
        fn selected_columns_decode_as_in_the_whole_row(
            values in proptest::collection::vec(typed_value(), 0..8),
            mask in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let cols: Vec<(u32, Value)> = values.into_iter().enumerate().map(|(i, (_, v))| (i as u32, v)).collect();
            let enc = encode_row(cols.iter().map(|(i, v)| (*i, v)));
            let want: Vec<(usize, Value)> = decode_row(&enc)
                .expect("decodes")
                .into_iter()
                .filter(|(id, _)| mask[*id as usize])
                .map(|(id, v)| (id as usize, v))
                .collect();
            let mut got = Vec::new();
            decode_row_selected(&enc, |id| mask[id as usize].then_some(id as usize), |i, v| got.push((i, v)))
                .expect("decodes");
            prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
        }
    }

    /// Arrays of values round-trip through row values, and their key encodings (used to
    /// group rows) order like PostgreSQL's element-wise array order.
    #[test]
    fn arrays() {
        let arr = |v: &[Option<i64>]| {
            Value::Array(
                v.iter()
                    .map(|i| i.map_or(Value::Null, Value::Int))
                    .collect(),
            )
        };
        let nested = Value::Array(vec![
            Value::Text("a b".into()),
            Value::Null,
            Value::Bool(true),
        ]);
        for v in [arr(&[]), arr(&[Some(1), None, Some(-7)]), nested] {
            let enc = encode_row([(3, &v)]);
            assert_eq!(decode_row(&enc).expect("decodes"), vec![(3, v)]);
        }
        let key = |v: &[Option<i64>]| encode_key(&[arr(v)], &[false]);
        let ordered = [
            key(&[]),
            key(&[Some(1)]),
            key(&[Some(1), Some(2)]),
            key(&[Some(1), None]),
            key(&[Some(2)]),
            key(&[None]),
        ];
        assert!(ordered.windows(2).all(|w| w[0] < w[1]));
        let truncated = encode_row([(1, &arr(&[Some(1), Some(2)]))]);
        assert!(decode_row(&truncated[..truncated.len() - 1]).is_err());
    }

    #[test]
    fn floats_normalise() {
        let enc = |f: f64| encode_key(&[Value::Float(f)], &[false]);
        assert_eq!(enc(-0.0), enc(0.0));
        assert_eq!(enc(f64::NAN), enc(-f64::NAN));
        assert!(enc(f64::NAN) > enc(f64::INFINITY));
        assert!(enc(f64::INFINITY) < encode_key(&[Value::Null], &[false]));
    }

    #[test]
    fn numeric_keys() {
        let dec = |s: &str| Value::Numeric(s.parse().expect("decimal"));
        let enc = |s: &str| encode_key(&[dec(s)], &[false]);
        assert_eq!(enc("1.5"), enc("1.50"));
        assert_eq!(enc("0"), vec![MARKER_VALUE, NUMERIC_ZERO]);
        // 1.5 = 0.15 × 10^1: exponent byte 129, digits 1 and 5 as 2 and 6, terminator.
        assert_eq!(
            enc("1.5"),
            vec![MARKER_VALUE, NUMERIC_POSITIVE, 129, 2, 6, 0]
        );
        let ordered = [
            "-100", "-1.5", "-1.25", "-0.001", "0", "0.001", "0.01", "1", "1.25", "10",
        ];
        for pair in ordered.windows(2) {
            assert!(enc(pair[0]) < enc(pair[1]), "{pair:?}");
        }
        let ty = DataType::Numeric(Some((8, 3)));
        let decoded = decode_key(&enc("2.25"), &[(ty, false)]).expect("decodes");
        assert_eq!(decoded, vec![dec("2.250")]);
        let row = encode_row([(1, &dec("-12.50"))]);
        assert_eq!(decode_row(&row).expect("decodes"), vec![(1, dec("-12.50"))]);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        assert!(decode_key(&[0x07], &[(DataType::Int8, false)]).is_err());
        assert!(decode_key(&[0x01, 0x00], &[(DataType::Int8, false)]).is_err());
        assert!(decode_row(&[0x01, 0x05, 0x09]).is_err());
    }
}
