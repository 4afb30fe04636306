//! SQL types and values: names, comparisons, casts, arithmetic and PostgreSQL text rendering.
//!
//! Integers of every width are held as `i64`; the width is a property of the expression's
//! [`DataType`] and is checked after every operation that can leave it (`int4` arithmetic
//! overflows at the `i32` bounds, as in PostgreSQL).

use std::cmp::Ordering;
use std::fmt;

use sqlparser::ast;

use crate::{DataType, Error, Result, Value};

impl DataType {
    /// The PostgreSQL name used in error messages (`integer`, `bigint`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float8 => "double precision",
            DataType::Text => "text",
        }
    }

    /// The short PostgreSQL type name (`int4`, ...), used as the column name of a bare cast.
    pub fn short_name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int4 => "int4",
            DataType::Int8 => "int8",
            DataType::Float8 => "float8",
            DataType::Text => "text",
        }
    }

    /// The PostgreSQL type oid.
    pub fn oid(self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float8 => 701,
            DataType::Text => 25,
        }
    }

    /// Whether the type is an integer or floating-point type.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int4 | DataType::Int8 | DataType::Float8)
    }

    /// Translates a parsed type name; unsupported types are 0A000.
    pub fn from_ast(t: &ast::DataType) -> Result<DataType> {
        use ast::DataType as T;
        Ok(match t {
            T::Int(_) | T::Integer(_) | T::Int4(_) => DataType::Int4,
            T::BigInt(_) | T::Int8(_) => DataType::Int8,
            T::SmallInt(_) | T::Int2(_) => DataType::Int4,
            T::Text | T::Varchar(_) | T::CharacterVarying(_) | T::String(_) => DataType::Text,
            T::Bool | T::Boolean => DataType::Bool,
            T::DoublePrecision | T::Float8 | T::Double(_) => DataType::Float8,
            T::Float(_) | T::Real | T::Float4 => DataType::Float8,
            T::Custom(name, args) if args.is_empty() => {
                let name = name.to_string().to_lowercase();
                match name.as_str() {
                    "int4" | "integer" | "int" | "int2" | "smallint" => DataType::Int4,
                    "int8" | "bigint" => DataType::Int8,
                    "text" | "varchar" => DataType::Text,
                    "bool" | "boolean" => DataType::Bool,
                    "float8" | "float4" => DataType::Float8,
                    _ => return Err(Error::NotSupported(format!("type {name} is not supported"))),
                }
            }
            other => {
                return Err(Error::NotSupported(format!(
                    "type {other} is not supported"
                )));
            }
        })
    }

    /// The result type of arithmetic between two numeric types.
    pub(crate) fn arith_result(a: DataType, b: DataType) -> DataType {
        match (a, b) {
            (DataType::Float8, _) | (_, DataType::Float8) => DataType::Float8,
            (DataType::Int8, _) | (_, DataType::Int8) => DataType::Int8,
            _ => DataType::Int4,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Value {
    /// Whether the value is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value in PostgreSQL's text output format; `None` for NULL.
    pub fn to_pg_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }

    /// SQL comparison: `None` if either side is NULL. Integers and floats compare numerically;
    /// NaN equals NaN and is greater than every other number (as in PostgreSQL).
    pub fn compare(&self, other: &Value) -> Result<Option<Ordering>> {
        Ok(Some(match (self, other) {
            (Value::Null, _) | (_, Value::Null) => return Ok(None),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => float_cmp(*a, *b),
            (Value::Int(a), Value::Float(b)) => float_cmp(*a as f64, *b),
            (Value::Float(a), Value::Int(b)) => float_cmp(*a, *b as f64),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => {
                return Err(Error::DatatypeMismatch(format!(
                    "cannot compare {} with {}",
                    a.kind(),
                    b.kind()
                )));
            }
        }))
    }

    /// A total order for sorting: NULL is greater than every value (PostgreSQL's default).
    pub(crate) fn sort_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            (a, b) => a.compare(b).ok().flatten().unwrap_or(Ordering::Equal),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "double precision",
            Value::Text(_) => "text",
        }
    }

    /// Casts the value to `to` (NULL stays NULL), with PostgreSQL's errors: 22P02 for invalid
    /// text, 22003 for out-of-range numbers.
    pub fn cast(self, to: DataType) -> Result<Value> {
        Ok(match (self, to) {
            (Value::Null, _) => Value::Null,
            (Value::Bool(b), DataType::Bool) => Value::Bool(b),
            (Value::Bool(b), DataType::Int4 | DataType::Int8) => Value::Int(b as i64),
            (Value::Int(i), DataType::Int4 | DataType::Int8) => check_int(i, to)?,
            (Value::Int(i), DataType::Float8) => Value::Float(i as f64),
            (Value::Int(i), DataType::Bool) => Value::Bool(i != 0),
            (Value::Float(f), DataType::Float8) => Value::Float(f),
            (Value::Float(f), DataType::Int4 | DataType::Int8) => float_to_int(f, to)?,
            (Value::Text(s), t) => parse_text(&s, t)?,
            (v, DataType::Text) => Value::Text(v.to_string()),
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

fn float_cmp(a: f64, b: f64) -> Ordering {
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
    if t == DataType::Int4 && i32::try_from(i).is_err() {
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
        DataType::Text => Value::Text(s.to_string()),
        DataType::Int4 | DataType::Int8 => {
            if trimmed.is_empty()
                || !trimmed
                    .trim_start_matches(['-', '+'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                return Err(invalid_input(t, s));
            }
            match trimmed.parse::<i64>() {
                Ok(i) => check_int(i, t)?,
                Err(_) => {
                    return Err(Error::OutOfRange(format!(
                        "value \"{s}\" is out of range for type {}",
                        t.name()
                    )));
                }
            }
        }
        DataType::Float8 => Value::Float(parse_float(trimmed).ok_or_else(|| invalid_input(t, s))?),
        DataType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err(invalid_input(t, s)),
        },
    })
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

/// Formats a float like PostgreSQL's `float8out` (shortest round-trip digits; exponent form
/// below 1e-4 and from 1e15 on).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

impl fmt::Display for Value {
    /// PostgreSQL's text output; NULL shows as `NULL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(true) => f.write_str("t"),
            Value::Bool(false) => f.write_str("f"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    /// The operator's SQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }

    /// Applies the operator; `ty` is the result type (its range is checked). NULL in, NULL out.
    pub(crate) fn apply(self, a: Value, b: Value, ty: DataType) -> Result<Value> {
        match (a, b) {
            (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
            (Value::Int(a), Value::Int(b)) if ty != DataType::Float8 => self.int(a, b, ty),
            (a, b) => {
                let (a, b) = (as_float(a)?, as_float(b)?);
                self.float(a, b)
            }
        }
    }

    fn int(self, a: i64, b: i64, ty: DataType) -> Result<Value> {
        if matches!(self, ArithOp::Div | ArithOp::Rem) && b == 0 {
            return Err(Error::DivisionByZero);
        }
        let r = match self {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Div => a.checked_div(b),
            // i64::MIN % -1 is 0 mathematically; checked_rem reports overflow.
            ArithOp::Rem => Some(a.checked_rem(b).unwrap_or(0)),
        };
        check_int(r.ok_or_else(|| out_of_range(ty))?, ty)
    }

    fn float(self, a: f64, b: f64) -> Result<Value> {
        if matches!(self, ArithOp::Div | ArithOp::Rem) && b == 0.0 {
            return Err(Error::DivisionByZero);
        }
        let r = match self {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div => a / b,
            ArithOp::Rem => a % b,
        };
        if r.is_infinite() && a.is_finite() && b.is_finite() {
            return Err(Error::OutOfRange("value out of range: overflow".into()));
        }
        Ok(Value::Float(r))
    }
}

fn as_float(v: Value) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(i as f64),
        Value::Float(f) => Ok(f),
        v => Err(Error::DatatypeMismatch(format!(
            "{} is not a number",
            v.kind()
        ))),
    }
}

/// Negates a number of type `ty`.
pub(crate) fn negate(v: Value, ty: DataType) -> Result<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Int(i) => check_int(i.checked_neg().ok_or_else(|| out_of_range(ty))?, ty),
        Value::Float(f) => Ok(Value::Float(-f)),
        v => Err(Error::DatatypeMismatch(format!(
            "cannot negate {}",
            v.kind()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts() {
        assert_eq!(
            Value::Text(" 42 ".into()).cast(DataType::Int4),
            Ok(Value::Int(42))
        );
        assert!(matches!(
            Value::Text("4x".into()).cast(DataType::Int4),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            Value::Text("".into()).cast(DataType::Int8),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            Value::Text("3000000000".into()).cast(DataType::Int4),
            Err(Error::OutOfRange(_))
        ));
        assert_eq!(
            Value::Text("3000000000".into()).cast(DataType::Int8),
            Ok(Value::Int(3_000_000_000))
        );
        assert_eq!(Value::Float(2.5).cast(DataType::Int4), Ok(Value::Int(2)));
        assert_eq!(Value::Float(3.5).cast(DataType::Int4), Ok(Value::Int(4)));
        assert!(matches!(
            Value::Float(f64::NAN).cast(DataType::Int8),
            Err(Error::OutOfRange(_))
        ));
        assert_eq!(
            Value::Text("yes".into()).cast(DataType::Bool),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            Value::Text("-Infinity".into()).cast(DataType::Float8),
            Ok(Value::Float(f64::NEG_INFINITY))
        );
        assert!(matches!(
            Value::Text("infinityx".into()).cast(DataType::Float8),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(
            Value::Bool(true).cast(DataType::Text),
            Ok(Value::Text("t".into()))
        );
        assert_eq!(Value::Null.cast(DataType::Int4), Ok(Value::Null));
    }

    #[test]
    fn arithmetic_overflow_and_division() {
        let (i4, i8) = (DataType::Int4, DataType::Int8);
        let max4 = Value::Int(i32::MAX as i64);
        assert!(matches!(
            ArithOp::Add.apply(max4.clone(), Value::Int(1), i4),
            Err(Error::OutOfRange(_))
        ));
        assert_eq!(
            ArithOp::Add.apply(max4, Value::Int(1), i8),
            Ok(Value::Int(1 << 31))
        );
        assert!(matches!(
            ArithOp::Mul.apply(Value::Int(i64::MAX), Value::Int(2), i8),
            Err(Error::OutOfRange(_))
        ));
        assert!(matches!(
            ArithOp::Div.apply(Value::Int(i64::MIN), Value::Int(-1), i8),
            Err(Error::OutOfRange(_))
        ));
        assert_eq!(
            ArithOp::Div.apply(Value::Int(7), Value::Int(0), i4),
            Err(Error::DivisionByZero)
        );
        assert_eq!(
            ArithOp::Rem.apply(Value::Int(-7), Value::Int(3), i4),
            Ok(Value::Int(-1))
        );
        assert_eq!(
            ArithOp::Div.apply(Value::Int(-7), Value::Int(2), i4),
            Ok(Value::Int(-3))
        );
        assert_eq!(
            ArithOp::Div.apply(Value::Float(1.0), Value::Float(0.0), DataType::Float8),
            Err(Error::DivisionByZero)
        );
        assert_eq!(
            ArithOp::Div.apply(Value::Int(3), Value::Float(2.0), DataType::Float8),
            Ok(Value::Float(1.5))
        );
        assert!(matches!(
            ArithOp::Mul.apply(Value::Float(1e300), Value::Float(1e300), DataType::Float8),
            Err(Error::OutOfRange(_))
        ));
        assert_eq!(
            ArithOp::Add.apply(Value::Null, Value::Int(1), i4),
            Ok(Value::Null)
        );
        assert!(matches!(
            negate(Value::Int(i32::MIN as i64), i4),
            Err(Error::OutOfRange(_))
        ));
    }

    #[test]
    fn text_rendering() {
        let cases = [
            (Value::Bool(true), "t"),
            (Value::Bool(false), "f"),
            (Value::Int(-42), "-42"),
            (Value::Float(1.5), "1.5"),
            (Value::Float(100.0), "100"),
            (Value::Float(0.1 + 0.2), "0.30000000000000004"),
            (Value::Float(1e20), "1e+20"),
            (Value::Float(1e15), "1e+15"),
            (Value::Float(123456789012345.0), "123456789012345"),
            (Value::Float(0.0001), "0.0001"),
            (Value::Float(0.00001), "1e-05"),
            (Value::Float(-2.5e-300), "-2.5e-300"),
            (Value::Float(f64::INFINITY), "Infinity"),
            (Value::Float(f64::NEG_INFINITY), "-Infinity"),
            (Value::Float(f64::NAN), "NaN"),
            (Value::Float(-0.0), "-0"),
            (Value::Text("a b".into()), "a b"),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_pg_text().as_deref(), Some(want), "{v:?}");
        }
        assert_eq!(Value::Null.to_pg_text(), None);
    }

    #[test]
    fn comparisons() {
        use Ordering::*;
        assert_eq!(Value::Int(1).compare(&Value::Float(1.5)), Ok(Some(Less)));
        assert_eq!(
            Value::Float(f64::NAN).compare(&Value::Float(f64::INFINITY)),
            Ok(Some(Greater))
        );
        assert_eq!(
            Value::Float(f64::NAN).compare(&Value::Float(f64::NAN)),
            Ok(Some(Equal))
        );
        assert_eq!(Value::Null.compare(&Value::Int(1)), Ok(None));
        assert_eq!(
            Value::Text("B".into()).compare(&Value::Text("a".into())),
            Ok(Some(Less))
        );
        assert!(Value::Int(1).compare(&Value::Text("a".into())).is_err());
        assert_eq!(Value::Null.sort_cmp(&Value::Int(i64::MAX)), Greater);
    }
}
