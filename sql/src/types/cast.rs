//! Casts between SQL types: explicit CASTs, assignments to columns and text input, with
//! PostgreSQL's rules and errors.

use std::cmp::Ordering;

use super::{bytea, datetime, interval, jsonb, numeric, uuid};
use crate::{DataType, Error, Result, Value};

impl Value {
    /// Casts the value to `to` as an explicit CAST does (NULL stays NULL), with PostgreSQL's
    /// errors: 22P02 for invalid text, 22003 for out-of-range numbers. A string longer than a
    /// VARCHAR(n) or CHAR(n) is cut to n characters; CHAR(n) pads with spaces.
    pub fn cast(self, to: DataType) -> Result<Value> {
        let v = self.convert(to)?;
        Ok(match (v, to) {
            (Value::Text(s), DataType::Varchar(Some(n)) | DataType::Char(n)) => {
                let cut = match s.char_indices().nth(n as usize) {
                    Some((i, _)) => s[..i].to_string(),
                    None => s,
                };
                pad_char(cut, to)
            }
            (v, _) => v,
        })
    }

    /// Converts the value for storing in a column of type `to` (an assignment cast): like
    /// [`Value::cast`], but a string longer than the type's length is 22001 unless only
    /// spaces are past the length (those are cut, as in PostgreSQL).
    pub fn assign(self, to: DataType) -> Result<Value> {
        let v = self.convert(to)?;
        Ok(match (v, to) {
            (Value::Text(s), DataType::Varchar(Some(n)) | DataType::Char(n)) => {
                let s = match s.char_indices().nth(n as usize) {
                    Some((i, _)) if s[i..].bytes().all(|b| b == b' ') => s[..i].to_string(),
                    Some(_) => {
                        return Err(Error::StringTooLong(format!(
                            "value too long for type {}",
                            to.sql_name()
                        )));
                    }
                    None => s,
                };
                pad_char(s, to)
            }
            (v, _) => v,
        })
    }

    /// The conversion between base types shared by casts and assignments.
    fn convert(self, to: DataType) -> Result<Value> {
        use DataType as T;
        Ok(match (self, to) {
            (Value::Null, _) => Value::Null,
            (Value::Bool(b), T::Bool) => Value::Bool(b),
            (Value::Bool(b), T::Int4) => Value::Int(b as i64),
            (Value::Int(i), T::Int2 | T::Int4 | T::Int8) => check_int(i, to)?,
            (Value::Int(i), T::Float4) => Value::Float4(i as f32),
            (Value::Int(i), T::Float8) => Value::Float(i as f64),
            (Value::Int(i), T::Bool) => Value::Bool(i != 0),
            (Value::Float4(f), T::Float4) => Value::Float4(f),
            (Value::Float4(f), T::Float8) => Value::Float(f64::from(f)),
            (Value::Float4(f), T::Int2 | T::Int4 | T::Int8) => float_to_int(f64::from(f), to)?,
            (Value::Float(f), T::Float8) => Value::Float(f),
            (Value::Float(f), T::Float4) => float4(f)?,
            (Value::Float(f), T::Int2 | T::Int4 | T::Int8) => float_to_int(f, to)?,
            (Value::Int(i), T::Numeric(_)) => numeric::value(numeric::apply_typmod(i.into(), to)?),
            (Value::Numeric(d), T::Numeric(_)) => numeric::value(numeric::apply_typmod(d, to)?),
            (Value::Numeric(d), T::Int2 | T::Int4 | T::Int8) => numeric::to_int(d, to)?,
            (Value::Numeric(d), T::Float8) => Value::Float(numeric::to_f64(d)),
            (Value::Numeric(d), T::Float4) => float4(numeric::to_f64(d))
                .map_err(|_| Error::OutOfRange(format!("\"{d}\" is out of range for type real")))?,
            (Value::Float(f), T::Numeric(_)) => {
                numeric::value(numeric::apply_typmod(numeric::from_f64(f, 15)?, to)?)
            }
            (Value::Float4(f), T::Numeric(_)) => numeric::value(numeric::apply_typmod(
                numeric::from_f64(f64::from(f), 6)?,
                to,
            )?),
            (Value::Array(items), T::Array(e)) => super::array::cast_elements(items, e)?,
            (Value::Text(s), t) => parse_text(&s, t)?,
            (Value::Bytes(b), T::Bytea) => Value::Bytes(b),
            (Value::Uuid(u), T::Uuid) => Value::Uuid(u),
            (Value::Interval(v), T::Interval) => Value::Interval(v),
            (Value::Time(t), T::Interval) => Value::Interval(interval::Interval {
                months: 0,
                days: 0,
                micros: t,
            }),
            (Value::Time(t), T::Time) => Value::Time(t),
            (Value::Date(d), T::Date) => Value::Date(d),
            (Value::Date(d), T::Timestamp) => Value::Timestamp(date_micros(d, to)?),
            (Value::Date(d), T::Timestamptz) => Value::Timestamptz(date_micros(d, to)?),
            (Value::Timestamp(t) | Value::Timestamptz(t), T::Date) => {
                Value::Date(datetime::timestamp_date(t))
            }
            (Value::Timestamp(t) | Value::Timestamptz(t), T::Time) => {
                Value::Time(datetime::timestamp_time(t))
            }
            (Value::Timestamp(t) | Value::Timestamptz(t), T::Timestamp) => Value::Timestamp(t),
            (Value::Timestamp(t) | Value::Timestamptz(t), T::Timestamptz) => Value::Timestamptz(t),
            (Value::Jsonb(j), T::Jsonb) => Value::Jsonb(j),
            (Value::Jsonb(j), t) if !t.is_string() => jsonb::cast_scalar(*j, t)?,
            // A boolean cast to a string is spelt out (booltext), unlike its output 't'/'f'.
            (Value::Bool(b), t) if t.is_string() => Value::Text(b.to_string()),
            (v, t) if t.is_string() => Value::Text(v.to_string()),
            (v, t) => {
                return Err(Error::DatatypeMismatch(format!(
                    "cannot cast type {} to {}",
                    v.kind(),
                    t.name()
                )));
            }
        })
    }
}

/// Midnight of a date as microseconds since the epoch; 22008 past the timestamp range.
pub(super) fn date_micros(days: i32, to: DataType) -> Result<i64> {
    i64::from(days)
        .checked_mul(datetime::USECS_PER_DAY)
        .ok_or_else(|| datetime::out_of_range(to))
}

/// Pads a CHAR(n) value with spaces to n characters; other types' values are returned as
/// they are.
fn pad_char(s: String, to: DataType) -> Value {
    let DataType::Char(n) = to else {
        return Value::Text(s);
    };
    let len = s.chars().count();
    let mut s = s;
    s.extend(std::iter::repeat_n(' ', (n as usize).saturating_sub(len)));
    Value::Text(s)
}

/// A double as a real: 22003 when a finite value overflows or a non-zero one underflows.
pub(crate) fn float4(f: f64) -> Result<Value> {
    let r = f as f32;
    if r.is_infinite() && f.is_finite() {
        return Err(Error::OutOfRange("value out of range: overflow".into()));
    }
    if r == 0.0 && f != 0.0 {
        return Err(Error::OutOfRange("value out of range: underflow".into()));
    }
    Ok(Value::Float4(r))
}

pub(super) fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // Neither is NaN, so partial_cmp is total here.
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// The out-of-range error of an integer type.
pub(crate) fn out_of_range(t: DataType) -> Error {
    Error::OutOfRange(format!("{} out of range", t.name()))
}

/// Checks that `i` fits the integer type `t`.
pub(crate) fn check_int(i: i64, t: DataType) -> Result<Value> {
    let fits = match t {
        DataType::Int2 => i16::try_from(i).is_ok(),
        DataType::Int4 => i32::try_from(i).is_ok(),
        _ => true,
    };
    if !fits {
        return Err(out_of_range(t));
    }
    Ok(Value::Int(i))
}

fn float_to_int(f: f64, t: DataType) -> Result<Value> {
    // PostgreSQL rounds half to even (rint) when casting floats to integers.
    let r = f.round_ties_even();
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
        return Err(out_of_range(t));
    }
    check_int(r as i64, t)
}

fn invalid_input(t: DataType, s: &str) -> Error {
    Error::InvalidInput(format!(
        "invalid input syntax for type {}: \"{s}\"",
        t.name()
    ))
}

/// Parses text input for a type, as PostgreSQL's input functions do.
pub(crate) fn parse_text(s: &str, t: DataType) -> Result<Value> {
    let trimmed = s.trim();
    Ok(match t {
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => Value::Text(s.to_string()),
        DataType::Int2 | DataType::Int4 | DataType::Int8 => {
            if trimmed.is_empty()
                || !trimmed
                    .trim_start_matches(['-', '+'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                return Err(invalid_input(t, s));
            }
            let out_of_range = || {
                Error::OutOfRange(format!(
                    "value \"{s}\" is out of range for type {}",
                    t.name()
                ))
            };
            let i = trimmed.parse::<i64>().map_err(|_| out_of_range())?;
            check_int(i, t).map_err(|_| out_of_range())?
        }
        DataType::Float8 => {
            let f = parse_float(trimmed).ok_or_else(|| invalid_input(t, s))?;
            if float_out_of_range(trimmed, f) {
                return Err(Error::OutOfRange(format!(
                    "\"{s}\" is out of range for type double precision"
                )));
            }
            Value::Float(f)
        }
        DataType::Numeric(_) => numeric::value(numeric::apply_typmod(numeric::parse(s)?, t)?),
        DataType::Bytea => Value::Bytes(bytea::parse(s)?),
        DataType::Uuid => Value::Uuid(uuid::parse(s)?),
        DataType::Jsonb => Value::Jsonb(Box::new(jsonb::parse(s)?)),
        DataType::Interval => Value::Interval(interval::parse(s)?),
        DataType::Array(e) => super::array::parse(s, e)?,
        DataType::Date | DataType::Time | DataType::Timestamp | DataType::Timestamptz => {
            datetime::parse(s, t)?
        }
        DataType::Float4 => {
            let f = parse_float(trimmed).ok_or_else(|| invalid_input(t, s))?;
            float4(f)
                .map_err(|_| Error::OutOfRange(format!("\"{s}\" is out of range for type real")))?
        }
        DataType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err(invalid_input(t, s)),
        },
    })
}

/// Whether a parsed float literal overflowed to infinity or underflowed to zero (PostgreSQL
/// rejects both; an explicit `Infinity` or a zero literal is fine).
fn float_out_of_range(s: &str, f: f64) -> bool {
    let digits = s.split(['e', 'E']).next().unwrap_or_default();
    let nonzero = digits.bytes().any(|b| matches!(b, b'1'..=b'9'));
    let literal_infinity = s.to_ascii_lowercase().contains("inf");
    (f.is_infinite() && !literal_infinity) || (f == 0.0 && nonzero)
}

fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        l if l.contains("inf") || l.contains("nan") => None,
        _ => s.parse::<f64>().ok(),
    }
}
