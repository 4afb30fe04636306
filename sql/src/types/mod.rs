//! SQL types and values: names, comparisons, casts, arithmetic and PostgreSQL text rendering.
//!
//! Integers of every width are held as `i64`; the width is a property of the expression's
//! [`DataType`] and is checked after every operation that can leave it (`int4` arithmetic
//! overflows at the `i32` bounds, as in PostgreSQL). Strings of every type are text, with
//! VARCHAR(n) and CHAR(n) lengths applied by casts and assignments.
//!
//! This module is the one place of PostgreSQL's type resolution: implicit-cast order and
//! common types ([`DataType::common_type`]), operator result types (`DataType::arith_type`)
//! and the casts themselves (`cast`). The value types with their own input and output
//! live in submodules: [`numeric`], [`datetime`], [`interval`], [`bytea`], [`uuid`] and
//! [`jsonb`].

use std::cmp::Ordering;
use std::fmt;

use sqlparser::ast;

use crate::{DataType, Error, Result, Value};

pub mod array;
pub mod bytea;
mod cast;
pub mod datetime;
pub mod interval;
pub mod jsonb;
pub mod numeric;
pub mod uuid;

pub(crate) use cast::{check_int, float4, out_of_range};
use cast::{date_micros, float_cmp};

impl DataType {
    /// The PostgreSQL name used in error messages (`integer`, `character varying`, ...),
    /// without the type modifier.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int2 => "smallint",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float4 => "real",
            DataType::Float8 => "double precision",
            DataType::Numeric(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Bytea => "bytea",
            DataType::Date => "date",
            DataType::Time => "time without time zone",
            DataType::Timestamp => "timestamp without time zone",
            DataType::Timestamptz => "timestamp with time zone",
            DataType::Uuid => "uuid",
            DataType::Interval => "interval",
            DataType::Jsonb => "jsonb",
            DataType::Array(e) => e.array_name(),
        }
    }

    /// The name with the type modifier, as PostgreSQL's `format_type` prints it
    /// (`character varying(3)`).
    pub fn sql_name(self) -> String {
        match self {
            DataType::Varchar(Some(n)) | DataType::Char(n) => format!("{}({n})", self.name()),
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            t => t.name().to_string(),
        }
    }

    /// The short PostgreSQL type name (`int4`, ...), used as the column name of a bare cast.
    pub fn short_name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int2 => "int2",
            DataType::Int4 => "int4",
            DataType::Int8 => "int8",
            DataType::Float4 => "float4",
            DataType::Float8 => "float8",
            DataType::Numeric(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "varchar",
            DataType::Char(_) => "bpchar",
            DataType::Bytea => "bytea",
            DataType::Date => "date",
            DataType::Time => "time",
            DataType::Timestamp => "timestamp",
            DataType::Timestamptz => "timestamptz",
            DataType::Uuid => "uuid",
            DataType::Interval => "interval",
            DataType::Jsonb => "jsonb",
            DataType::Array(e) => e.array_short_name(),
        }
    }

    /// The PostgreSQL type oid.
    pub fn oid(self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Numeric(_) => 1700,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Bytea => 17,
            DataType::Date => 1082,
            DataType::Time => 1083,
            DataType::Timestamp => 1114,
            DataType::Timestamptz => 1184,
            DataType::Uuid => 2950,
            DataType::Interval => 1186,
            DataType::Jsonb => 3802,
            DataType::Array(e) => e.array_oid(),
        }
    }

    /// Whether the type is an integer or floating-point type.
    pub fn is_numeric(self) -> bool {
        self.numeric_rank().is_some()
    }

    /// Whether the type is an integer type.
    pub fn is_integer(self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8)
    }

    /// Whether the type is a string type (text, varchar, char).
    pub fn is_string(self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_)
        )
    }

    /// The type without its modifier: what a value is converted to before the modifier
    /// (length) is applied. A CHAR without a length is text here (its values keep their
    /// spaces).
    pub fn without_typmod(self) -> DataType {
        match self {
            DataType::Varchar(_) => DataType::Varchar(None),
            DataType::Char(_) => DataType::Text,
            DataType::Numeric(_) => DataType::Numeric(None),
            t => t,
        }
    }

    /// Types whose equal values have equal key encodings (every integer width shares one,
    /// every string type another): a key span or hash join may mix types of one family.
    pub fn family(self) -> u8 {
        match self {
            DataType::Int2 | DataType::Int4 | DataType::Int8 => 0,
            DataType::Float4 | DataType::Float8 => 1,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) => 2,
            DataType::Bool => 3,
            DataType::Numeric(_) => 4,
            DataType::Date => 5,
            DataType::Time => 6,
            DataType::Timestamp => 7,
            DataType::Timestamptz => 8,
            DataType::Bytea => 9,
            DataType::Uuid => 10,
            DataType::Interval => 11,
            DataType::Jsonb => 12,
            DataType::Array(_) => 13,
        }
    }

    /// The position of a date or timestamp type in the implicit-cast order (date →
    /// timestamp → timestamptz); None for other types.
    fn datetime_rank(self) -> Option<u8> {
        Some(match self {
            DataType::Date => 0,
            DataType::Timestamp => 1,
            DataType::Timestamptz => 2,
            _ => return None,
        })
    }

    /// The position of a numeric type in PostgreSQL's implicit-cast order (int2 → int4 →
    /// int8 → numeric → float4 → float8); None for other types.
    fn numeric_rank(self) -> Option<u8> {
        Some(match self {
            DataType::Int2 => 0,
            DataType::Int4 => 1,
            DataType::Int8 => 2,
            DataType::Numeric(_) => 3,
            DataType::Float4 => 4,
            DataType::Float8 => 5,
            _ => return None,
        })
    }

    /// Translates a parsed type name; unsupported types are 0A000.
    pub fn from_ast(t: &ast::DataType) -> Result<DataType> {
        use ast::DataType as T;
        Ok(match t {
            T::Int(_) | T::Integer(_) | T::Int4(_) => DataType::Int4,
            T::BigInt(_) | T::Int8(_) => DataType::Int8,
            T::SmallInt(_) | T::Int2(_) => DataType::Int2,
            T::Text | T::String(None) => DataType::Text,
            T::Varchar(len) | T::CharacterVarying(len) | T::CharVarying(len) => {
                DataType::Varchar(char_length(len.as_ref())?)
            }
            T::Char(len) | T::Character(len) => {
                DataType::Char(char_length(len.as_ref())?.unwrap_or(1))
            }
            T::Bool | T::Boolean => DataType::Bool,
            T::Bytea => DataType::Bytea,
            T::Uuid => DataType::Uuid,
            T::Interval { fields: None, .. } => DataType::Interval,
            T::Date => DataType::Date,
            T::Time(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
                DataType::Time
            }
            T::Timestamp(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
                DataType::Timestamp
            }
            T::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => {
                DataType::Timestamptz
            }
            T::DoublePrecision | T::Float8 | T::Double(ast::ExactNumberInfo::None) => {
                DataType::Float8
            }
            T::Real | T::Float4 => DataType::Float4,
            T::Numeric(info) | T::Decimal(info) | T::Dec(info) => numeric::typmod(info)?,
            T::Float(info) => float_precision(info)?,
            T::JSON | T::JSONB => DataType::Jsonb,
            T::Array(ast::ArrayElemTypeDef::SquareBracket(inner, _)) => {
                let elem = DataType::from_ast(inner)?;
                DataType::Array(array::ElemType::of(elem).ok_or_else(|| array::no_array_of(elem))?)
            }
            T::Custom(name, args) if args.is_empty() => {
                let name = name.to_string().to_lowercase();
                match name.as_str() {
                    "int4" | "integer" | "int" => DataType::Int4,
                    "int2" | "smallint" => DataType::Int2,
                    "int8" | "bigint" => DataType::Int8,
                    "text" => DataType::Text,
                    "varchar" => DataType::Varchar(None),
                    // A bare bpchar keeps its values as they are (no padding).
                    "bpchar" => DataType::Text,
                    "bool" | "boolean" => DataType::Bool,
                    "float8" => DataType::Float8,
                    "float4" => DataType::Float4,
                    "numeric" | "decimal" => DataType::Numeric(None),
                    "bytea" => DataType::Bytea,
                    "date" => DataType::Date,
                    "time" => DataType::Time,
                    "timestamp" => DataType::Timestamp,
                    "timestamptz" => DataType::Timestamptz,
                    "uuid" => DataType::Uuid,
                    "interval" => DataType::Interval,
                    "json" | "jsonb" => DataType::Jsonb,
                    _ => return Err(undefined_type(&name)),
                }
            }
            other => {
                return Err(Error::NotSupported(format!(
                    "type {other} is not supported"
                )));
            }
        })
    }

    /// The result type of arithmetic between two numeric types, as PostgreSQL's operators
    /// resolve it: the wider integer; real only with real; double precision otherwise.
    pub(crate) fn arith_result(a: DataType, b: DataType) -> DataType {
        match (a, b) {
            (DataType::Float4, DataType::Float4) => DataType::Float4,
            (DataType::Float4 | DataType::Float8, _) | (_, DataType::Float4 | DataType::Float8) => {
                DataType::Float8
            }
            _ => common_numeric(a, b),
        }
    }

    /// The type values of types `a` and `b` are both converted to where one type is needed
    /// (CASE, COALESCE, set operations): PostgreSQL's implicit-cast order for numbers, text
    /// for mixed string types (varchar with varchar stays varchar); None when there is none.
    pub fn common_type(a: DataType, b: DataType) -> Option<DataType> {
        if a == b {
            return Some(a);
        }
        if a.is_numeric() && b.is_numeric() {
            return Some(common_numeric(a, b));
        }
        if let (Some(ra), Some(rb)) = (a.datetime_rank(), b.datetime_rank()) {
            return Some(if ra >= rb { a } else { b });
        }
        match (a, b) {
            (DataType::Array(x), DataType::Array(y)) => {
                let e = Self::common_type(x.data_type(), y.data_type())?;
                array::ElemType::of(e).map(DataType::Array)
            }
            (DataType::Varchar(_), DataType::Varchar(_)) => Some(DataType::Varchar(None)),
            (DataType::Varchar(_), DataType::Text) => Some(a.without_typmod()),
            (DataType::Char(_), DataType::Char(_)) => Some(DataType::Varchar(None)),
            (a, b) if a.is_string() && b.is_string() => Some(DataType::Text),
            _ => None,
        }
    }

    /// The result type of `a op b` for the date operators PostgreSQL has: date ± integer is a
    /// date, date - date an integer; numbers as [`DataType::arith_result`]. None where no
    /// operator exists.
    pub(crate) fn arith_type(op: ArithOp, a: DataType, b: DataType) -> Option<DataType> {
        use DataType::Date;
        match (op, a, b) {
            (_, a, b) if a.is_numeric() && b.is_numeric() => Some(Self::arith_result(a, b)),
            (ArithOp::Add | ArithOp::Sub, Date, i) if i.is_integer() && i != DataType::Int8 => {
                Some(Date)
            }
            (ArithOp::Add, i, Date) if i.is_integer() && i != DataType::Int8 => Some(Date),
            (ArithOp::Sub, Date, Date) => Some(DataType::Int4),
            (ArithOp::Add | ArithOp::Sub, DataType::Interval, DataType::Interval) => {
                Some(DataType::Interval)
            }
            (ArithOp::Add | ArithOp::Sub, Date | DataType::Timestamp, DataType::Interval) => {
                Some(DataType::Timestamp)
            }
            (ArithOp::Add, DataType::Interval, Date | DataType::Timestamp) => {
                Some(DataType::Timestamp)
            }
            (ArithOp::Add | ArithOp::Sub, DataType::Timestamptz, DataType::Interval)
            | (ArithOp::Add, DataType::Interval, DataType::Timestamptz) => {
                Some(DataType::Timestamptz)
            }
            (ArithOp::Add, Date, DataType::Time) | (ArithOp::Add, DataType::Time, Date) => {
                Some(DataType::Timestamp)
            }
            (ArithOp::Sub, DataType::Time, DataType::Time) => Some(DataType::Interval),
            (ArithOp::Add | ArithOp::Sub, DataType::Time, DataType::Interval)
            | (ArithOp::Add, DataType::Interval, DataType::Time) => Some(DataType::Time),
            (
                ArithOp::Sub,
                Date | DataType::Timestamp | DataType::Timestamptz,
                Date | DataType::Timestamp | DataType::Timestamptz,
            ) => Some(DataType::Interval),
            (ArithOp::Mul | ArithOp::Div, DataType::Interval, n) if n.is_numeric() => {
                Some(DataType::Interval)
            }
            (ArithOp::Mul, n, DataType::Interval) if n.is_numeric() => Some(DataType::Interval),
            _ => None,
        }
    }

    /// Whether a value of type `from` can be stored in a column of type `to`: PostgreSQL's
    /// implicit and assignment casts (numbers among themselves, anything to a string type,
    /// dates and timestamps among themselves, a timestamp or interval to a time). Untyped
    /// literals and parameters take the column's type before this applies.
    pub fn assignable(from: DataType, to: DataType) -> bool {
        use DataType as T;
        if let (T::Array(a), T::Array(b)) = (from, to) {
            return Self::assignable(a.data_type(), b.data_type());
        }
        from.without_typmod() == to.without_typmod()
            || (from.is_numeric() && to.is_numeric())
            || to.is_string()
            || (from.datetime_rank().is_some() && to.datetime_rank().is_some())
            || matches!(
                (from, to),
                (T::Timestamp | T::Timestamptz | T::Interval, T::Time) | (T::Time, T::Interval)
            )
    }

    /// Whether values of the two types can be compared (after the binder's casts).
    pub(crate) fn comparable(a: DataType, b: DataType) -> bool {
        Self::common_type(a, b).is_some()
    }
}

/// The wider of two numeric types in the implicit-cast order (a NUMERIC without its
/// modifier unless both are the same type).
fn common_numeric(a: DataType, b: DataType) -> DataType {
    if a == b {
        return a;
    }
    let wider = if a.numeric_rank() >= b.numeric_rank() {
        a
    } else {
        b
    };
    wider.without_typmod()
}

/// 42704 for a type name that does not exist.
fn undefined_type(name: &str) -> Error {
    Error::UndefinedObject(format!("type \"{name}\" does not exist"))
}

/// The length of VARCHAR(n) / CHAR(n): 1 to 10485760, as in PostgreSQL.
fn char_length(len: Option<&ast::CharacterLength>) -> Result<Option<u32>> {
    match len {
        None => Ok(None),
        Some(ast::CharacterLength::IntegerLength { length, .. }) => match u32::try_from(*length) {
            Ok(n @ 1..=10_485_760) => Ok(Some(n)),
            _ if *length == 0 => Err(Error::InvalidParameter(
                "length for type varchar must be at least 1".into(),
            )),
            _ => Err(Error::InvalidParameter(
                "length for type varchar cannot exceed 10485760".into(),
            )),
        },
        Some(ast::CharacterLength::Max) => {
            Err(Error::Syntax("syntax error at or near \"max\"".into()))
        }
    }
}

/// FLOAT(p): real for 1 to 24 bits of precision, double precision for 25 to 53.
fn float_precision(info: &ast::ExactNumberInfo) -> Result<DataType> {
    match info {
        ast::ExactNumberInfo::None => Ok(DataType::Float8),
        ast::ExactNumberInfo::Precision(1..=24) => Ok(DataType::Float4),
        ast::ExactNumberInfo::Precision(25..=53) => Ok(DataType::Float8),
        ast::ExactNumberInfo::Precision(0) => Err(Error::InvalidParameter(
            "precision for type float must be at least 1 bit".into(),
        )),
        _ => Err(Error::InvalidParameter(
            "precision for type float must be less than 54 bits".into(),
        )),
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
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Numeric(a), Value::Numeric(b)) => a.cmp(b),
            (Value::Numeric(a), Value::Int(b)) => a.cmp(&(*b).into()),
            (Value::Int(a), Value::Numeric(b)) => rust_decimal::Decimal::from(*a).cmp(b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
            (Value::Interval(a), Value::Interval(b)) => a.span().cmp(&b.span()),
            (Value::Time(a), Value::Time(b)) => a.cmp(b),
            (Value::Jsonb(a), Value::Jsonb(b)) => jsonb::compare(a, b),
            (Value::Array(a), Value::Array(b)) => array::compare(a, b)?,
            (a, b) if a.as_instant().is_some() && b.as_instant().is_some() => {
                a.as_instant().cmp(&b.as_instant())
            }
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => float_cmp(a, b),
                _ => {
                    return Err(Error::DatatypeMismatch(format!(
                        "cannot compare {} with {}",
                        a.kind(),
                        b.kind()
                    )));
                }
            },
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

    /// The value as a double, if it is a number.
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float4(f) => Some(f64::from(*f)),
            Value::Float(f) => Some(*f),
            Value::Numeric(d) => Some(numeric::to_f64(*d)),
            _ => None,
        }
    }

    /// A date or timestamp as microseconds since the epoch (a date at midnight, UTC).
    fn as_instant(&self) -> Option<i128> {
        match self {
            Value::Date(d) => Some(i128::from(*d) * i128::from(datetime::USECS_PER_DAY)),
            Value::Timestamp(t) | Value::Timestamptz(t) => Some(i128::from(*t)),
            _ => None,
        }
    }

    /// The value as a decimal, if it is an integer or a numeric.
    fn as_decimal(&self) -> Option<rust_decimal::Decimal> {
        match self {
            Value::Int(i) => Some((*i).into()),
            Value::Numeric(d) => Some(*d),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float4(_) => "real",
            Value::Float(_) => "double precision",
            Value::Numeric(_) => "numeric",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytea",
            Value::Date(_) => "date",
            Value::Time(_) => "time without time zone",
            Value::Timestamp(_) => "timestamp without time zone",
            Value::Timestamptz(_) => "timestamp with time zone",
            Value::Uuid(_) => "uuid",
            Value::Interval(_) => "interval",
            Value::Jsonb(_) => "jsonb",
            Value::Array(_) => "array",
        }
    }
}

/// Formats a float like PostgreSQL's `float8out` (shortest round-trip digits; exponent form
/// below 1e-4 and from 1e15 on).
pub(crate) fn format_float(f: f64) -> String {
    format_shortest(f, format!("{f:e}"), 15, || format!("{f}"))
}

/// Formats a real like PostgreSQL's `float4out` (shortest digits that round-trip as a real;
/// exponent form below 1e-4 and from 1e6 on).
pub(crate) fn format_float4(f: f32) -> String {
    format_shortest(f64::from(f), format!("{f:e}"), 6, || format!("{f}"))
}

/// The shared layout of `float4out` and `float8out`: `sci` is the shortest digits in
/// Rust's exponent form, `positional` the same digits without exponent.
fn format_shortest(
    f: f64,
    sci: String,
    max_exp: i32,
    positional: impl FnOnce() -> String,
) -> String {
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
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..max_exp).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    positional()
}

impl fmt::Display for Value {
    /// PostgreSQL's text output; NULL shows as `NULL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(true) => f.write_str("t"),
            Value::Bool(false) => f.write_str("f"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float4(x) => f.write_str(&format_float4(*x)),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::Numeric(d) => write!(f, "{d}"),
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&bytea::format(b)),
            Value::Date(d) => f.write_str(&datetime::format_date(*d)),
            Value::Time(t) => f.write_str(&datetime::format_time(*t)),
            Value::Timestamp(t) => f.write_str(&datetime::format_timestamp(*t, false)),
            Value::Timestamptz(t) => f.write_str(&datetime::format_timestamp(*t, true)),
            Value::Uuid(u) => f.write_str(&uuid::format(u)),
            Value::Interval(v) => f.write_str(&interval::format(v)),
            Value::Jsonb(j) => write!(f, "{j}"),
            Value::Array(items) => f.write_str(&array::format(items)),
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
            (Value::Date(d), Value::Int(n)) if self == ArithOp::Add => datetime::add_days(d, n),
            (Value::Date(d), Value::Int(n)) if self == ArithOp::Sub => {
                datetime::add_days(d, n.checked_neg().ok_or_else(|| out_of_range(ty))?)
            }
            (Value::Int(n), Value::Date(d)) if self == ArithOp::Add => datetime::add_days(d, n),
            (Value::Date(a), Value::Date(b)) if self == ArithOp::Sub => {
                Ok(Value::Int(i64::from(a) - i64::from(b)))
            }
            (Value::Date(d), Value::Time(t)) | (Value::Time(t), Value::Date(d))
                if self == ArithOp::Add =>
            {
                // A date at a time of day.
                i64::from(d)
                    .checked_mul(datetime::USECS_PER_DAY)
                    .and_then(|m| m.checked_add(t))
                    .map(Value::Timestamp)
                    .ok_or_else(|| datetime::out_of_range(DataType::Timestamp))
            }
            (Value::Time(a), Value::Time(b)) if self == ArithOp::Sub => {
                Ok(Value::Interval(interval::Interval {
                    months: 0,
                    days: 0,
                    micros: a - b,
                }))
            }
            (a, b)
                if self == ArithOp::Sub && ty == DataType::Interval && a.as_instant().is_some() =>
            {
                // Timestamps (and a date with a timestamp) subtract to an interval.
                match (a.as_instant(), b.as_instant()) {
                    (Some(a), Some(b)) => interval::between_wide(a, b),
                    _ => Err(Error::DatatypeMismatch("operator does not exist".into())),
                }
            }
            (Value::Interval(v), n) if matches!(self, ArithOp::Mul | ArithOp::Div) => {
                let f = as_float(n)?;
                Ok(Value::Interval(if self == ArithOp::Mul {
                    v.mul(f)?
                } else if f == 0.0 {
                    return Err(Error::DivisionByZero);
                } else {
                    v.mul(1.0 / f)?
                }))
            }
            (n, Value::Interval(v)) if self == ArithOp::Mul => {
                Ok(Value::Interval(v.mul(as_float(n)?)?))
            }
            (a, b) if matches!(a, Value::Interval(_)) || matches!(b, Value::Interval(_)) => {
                self.interval(a, b, ty)
            }
            (Value::Int(a), Value::Int(b)) if ty.is_integer() => self.int(a, b, ty),
            (a, b) if matches!(ty, DataType::Numeric(_)) => {
                let (Some(a), Some(b)) = (a.as_decimal(), b.as_decimal()) else {
                    return Err(Error::DatatypeMismatch(format!(
                        "operator does not exist: {} {} {}",
                        a.kind(),
                        self.symbol(),
                        b.kind()
                    )));
                };
                self.decimal(a, b).map(numeric::value)
            }
            (a, b) => {
                let (a, b) = (as_float(a)?, as_float(b)?);
                let r = self.float(a, b)?;
                if ty == DataType::Float4 {
                    return float4(r);
                }
                Ok(Value::Float(r))
            }
        }
    }

    /// Interval arithmetic: interval ± interval, and a date or timestamp ± an interval
    /// (`ty` is the result type; a date is taken at midnight).
    fn interval(self, a: Value, b: Value, ty: DataType) -> Result<Value> {
        let Value::Interval(iv) = b else {
            // interval + timestamp: the same as timestamp + interval.
            return match a {
                Value::Interval(_) if self == ArithOp::Add => self.interval(b, a, ty),
                a => Err(Error::DatatypeMismatch(format!(
                    "operator does not exist: {} {} {}",
                    a.kind(),
                    self.symbol(),
                    b.kind()
                ))),
            };
        };
        let iv = match self {
            ArithOp::Add => iv,
            ArithOp::Sub => iv.neg()?,
            _ => {
                return Err(Error::DatatypeMismatch(format!(
                    "operator does not exist: {} {} interval",
                    a.kind(),
                    self.symbol()
                )));
            }
        };
        Ok(match a {
            Value::Interval(x) => Value::Interval(x.add(iv)?),
            Value::Date(d) => {
                Value::Timestamp(interval::add_to_timestamp(date_micros(d, ty)?, &iv)?)
            }
            Value::Timestamp(t) => Value::Timestamp(interval::add_to_timestamp(t, &iv)?),
            Value::Timestamptz(t) => Value::Timestamptz(interval::add_to_timestamp(t, &iv)?),
            Value::Time(t) => {
                let day = i128::from(datetime::USECS_PER_DAY);
                Value::Time((i128::from(t) + i128::from(iv.micros)).rem_euclid(day) as i64)
            }
            a => {
                return Err(Error::DatatypeMismatch(format!(
                    "operator does not exist: {} {} interval",
                    a.kind(),
                    self.symbol()
                )));
            }
        })
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

    fn decimal(
        self,
        a: rust_decimal::Decimal,
        b: rust_decimal::Decimal,
    ) -> Result<rust_decimal::Decimal> {
        let r = match self {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Div => return numeric::div(a, b),
            ArithOp::Rem => return numeric::rem(a, b),
        };
        let mut r = r.ok_or_else(numeric::overflow)?;
        // PostgreSQL shows the larger scale of a sum and the sum of the scales of a product,
        // also for zero (0.0 * 5 is 0.0); Decimal drops them from a zero result.
        if r.is_zero() {
            let scale = match self {
                ArithOp::Mul => a.scale() + b.scale(),
                _ => a.scale().max(b.scale()),
            };
            r.rescale(scale.min(numeric::MAX_SCALE));
        }
        Ok(r)
    }

    fn float(self, a: f64, b: f64) -> Result<f64> {
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
        Ok(r)
    }
}

fn as_float(v: Value) -> Result<f64> {
    v.as_f64()
        .ok_or_else(|| Error::DatatypeMismatch(format!("{} is not a number", v.kind())))
}

/// Negates a number of type `ty`.
pub(crate) fn negate(v: Value, ty: DataType) -> Result<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Int(i) => check_int(i.checked_neg().ok_or_else(|| out_of_range(ty))?, ty),
        Value::Float4(f) => Ok(Value::Float4(-f)),
        Value::Float(f) => Ok(Value::Float(-f)),
        Value::Numeric(d) => Ok(numeric::value(-d)),
        Value::Interval(i) => Ok(Value::Interval(i.neg()?)),
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
            Ok(Value::Text("true".into()))
        );
        assert_eq!(Value::Null.cast(DataType::Int4), Ok(Value::Null));
    }

    #[test]
    fn smallint_and_real() {
        let i2 = DataType::Int2;
        assert_eq!(Value::Int(32767).cast(i2), Ok(Value::Int(32767)));
        assert_eq!(
            Value::Int(32768).cast(i2),
            Err(Error::OutOfRange("smallint out of range".into()))
        );
        assert_eq!(
            Value::Text("-40000".into()).cast(i2),
            Err(Error::OutOfRange(
                "value \"-40000\" is out of range for type smallint".into()
            ))
        );
        assert_eq!(
            ArithOp::Add.apply(Value::Int(32767), Value::Int(1), i2),
            Err(Error::OutOfRange("smallint out of range".into()))
        );
        assert_eq!(DataType::arith_result(i2, i2), i2);
        assert_eq!(DataType::arith_result(i2, DataType::Int4), DataType::Int4);
        let f4 = DataType::Float4;
        assert_eq!(DataType::arith_result(f4, f4), f4);
        assert_eq!(DataType::arith_result(f4, DataType::Int4), DataType::Float8);
        assert_eq!(DataType::common_type(DataType::Int4, f4), Some(f4));
        assert_eq!(Value::Float(0.1).cast(f4), Ok(Value::Float4(0.1)));
        assert!(matches!(
            Value::Float(1e39).cast(f4),
            Err(Error::OutOfRange(_))
        ));
        assert!(matches!(
            Value::Float(1e-50).cast(f4),
            Err(Error::OutOfRange(_))
        ));
        let cases = [
            (0.1f32, "0.1"),
            (1e8, "1e+08"),
            (1234567.0, "1.234567e+06"),
            (123456.0, "123456"),
            (0.00001, "1e-05"),
            (1.5, "1.5"),
        ];
        for (f, want) in cases {
            assert_eq!(Value::Float4(f).to_string(), want, "{f}");
        }
        assert_eq!(
            Value::Float4(0.1).cast(DataType::Float8),
            Ok(Value::Float(0.10000000149011612))
        );
    }

    /// Catalog descriptors store types as JSON (docs/formats.md): the unit forms written
    /// before parameterised types existed still read, and the new ones are stable.
    #[test]
    fn catalog_json_of_types() {
        let cases = [
            ("\"Int4\"", DataType::Int4),
            ("\"Text\"", DataType::Text),
            ("\"Float8\"", DataType::Float8),
            ("{\"Varchar\":3}", DataType::Varchar(Some(3))),
            ("{\"Varchar\":null}", DataType::Varchar(None)),
            ("{\"Char\":1}", DataType::Char(1)),
            ("{\"Numeric\":[5,2]}", DataType::Numeric(Some((5, 2)))),
            ("{\"Numeric\":null}", DataType::Numeric(None)),
            ("\"Timestamptz\"", DataType::Timestamptz),
            ("\"Interval\"", DataType::Interval),
            ("\"Jsonb\"", DataType::Jsonb),
        ];
        for (json, t) in cases {
            assert_eq!(serde_json::from_str::<DataType>(json).unwrap(), t, "{json}");
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
        }
    }

    #[test]
    fn varchar_and_char_lengths() {
        let text = |s: &str| Value::Text(s.into());
        let v3 = DataType::Varchar(Some(3));
        let c3 = DataType::Char(3);
        assert_eq!(text("abcdef").cast(v3), Ok(text("abc")));
        assert_eq!(text("ab").cast(c3), Ok(text("ab ")));
        assert_eq!(text("abcd").cast(c3), Ok(text("abc")));
        assert_eq!(text("ab").assign(v3), Ok(text("ab")));
        assert_eq!(text("ab   ").assign(v3), Ok(text("ab ")));
        assert_eq!(text("ab    ").assign(c3), Ok(text("ab ")));
        assert_eq!(
            text("abcd").assign(v3),
            Err(Error::StringTooLong(
                "value too long for type character varying(3)".into()
            ))
        );
        assert_eq!(
            text("abcd").assign(c3),
            Err(Error::StringTooLong(
                "value too long for type character(3)".into()
            ))
        );
        // Lengths count characters, not bytes.
        assert_eq!(text("äöü").assign(v3), Ok(text("äöü")));
        assert_eq!(text("äöüß").cast(v3), Ok(text("äöü")));
        assert_eq!(Value::Int(12345).cast(v3), Ok(text("123")));
        assert_eq!(Value::Int(12).assign(c3), Ok(text("12 ")));
        assert_eq!(
            DataType::common_type(v3, DataType::Varchar(Some(5))),
            Some(DataType::Varchar(None))
        );
        assert_eq!(
            DataType::common_type(c3, DataType::Text),
            Some(DataType::Text)
        );
        assert!(!DataType::comparable(c3, DataType::Int4));
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
