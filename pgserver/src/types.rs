//! Values on the wire: the mapping between `sql::DataType` and PostgreSQL type OIDs, the text and
//! binary encodings of result values, and the decoding of Bind parameters.
//!
//! Text output follows PostgreSQL's output functions (`boolout`, `int8out`, `float8out` with the
//! default `extra_float_digits = 1`, i.e. the shortest digits that round-trip). Parameter input
//! follows the input functions closely enough that the same strings are accepted and rejected
//! with the same SQLSTATE (22P02 for bad syntax, 22003 for out of range).

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::results::FieldFormat;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use sql::types::array::ElemType;
use sql::{DataType, Value};

use crate::error::{code, user_error};

/// The PostgreSQL type a `DataType` is sent as.
pub(crate) fn pg_type(data_type: DataType) -> Type {
    match data_type {
        DataType::Bool => Type::BOOL,
        DataType::Int2 => Type::INT2,
        DataType::Int4 => Type::INT4,
        DataType::Int8 => Type::INT8,
        DataType::Float4 => Type::FLOAT4,
        DataType::Float8 => Type::FLOAT8,
        DataType::Numeric(_) => Type::NUMERIC,
        DataType::Text => Type::TEXT,
        DataType::Varchar(_) => Type::VARCHAR,
        DataType::Char(_) => Type::BPCHAR,
        DataType::Bytea => Type::BYTEA,
        DataType::Date => Type::DATE,
        DataType::Time => Type::TIME,
        DataType::Timestamp => Type::TIMESTAMP,
        DataType::Timestamptz => Type::TIMESTAMPTZ,
        DataType::Uuid => Type::UUID,
        DataType::Interval => Type::INTERVAL,
        DataType::Jsonb => Type::JSONB,
        DataType::Array(e) => Type::from_oid(e.array_oid()).unwrap_or(Type::UNKNOWN),
    }
}

/// How one Bind parameter is laid out on the wire: the declared type if the client declared one
/// TinkerDB understands, else the type the SQL layer inferred. A declared type is handed to the
/// SQL layer as [`ParamType::data_type`] (VARCHAR as VARCHAR without a length, BPCHAR and NAME
/// as TEXT), and the value is decoded in the declared layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Varchar,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Uuid,
    Interval,
    /// JSONB: binary format is a version byte (1) then the text.
    Jsonb,
    /// JSON declared by the client: read as jsonb; binary format is the text alone.
    Json,
    /// A one-dimensional array of the element type.
    Array(ElemType),
}

impl ParamType {
    /// The wire layout of a PostgreSQL type, if supported.
    pub(crate) fn from_pg(ty: &Type) -> Option<ParamType> {
        Some(match *ty {
            Type::BOOL => ParamType::Bool,
            Type::INT2 => ParamType::Int2,
            Type::INT4 => ParamType::Int4,
            Type::INT8 => ParamType::Int8,
            Type::FLOAT4 => ParamType::Float4,
            Type::FLOAT8 => ParamType::Float8,
            Type::NUMERIC => ParamType::Numeric,
            Type::BYTEA => ParamType::Bytea,
            Type::DATE => ParamType::Date,
            Type::TIME => ParamType::Time,
            Type::TIMESTAMP => ParamType::Timestamp,
            Type::TIMESTAMPTZ => ParamType::Timestamptz,
            Type::UUID => ParamType::Uuid,
            Type::INTERVAL => ParamType::Interval,
            Type::JSONB => ParamType::Jsonb,
            Type::JSON => ParamType::Json,
            Type::VARCHAR => ParamType::Varchar,
            Type::TEXT | Type::BPCHAR | Type::NAME => ParamType::Text,
            _ => return ElemType::from_array_oid(ty.oid()).map(ParamType::Array),
        })
    }

    /// The wire layout of a SQL-layer type.
    pub(crate) fn from_data_type(data_type: DataType) -> ParamType {
        match data_type {
            DataType::Bool => ParamType::Bool,
            DataType::Int2 => ParamType::Int2,
            DataType::Int4 => ParamType::Int4,
            DataType::Int8 => ParamType::Int8,
            DataType::Float4 => ParamType::Float4,
            DataType::Float8 => ParamType::Float8,
            DataType::Numeric(_) => ParamType::Numeric,
            DataType::Varchar(_) => ParamType::Varchar,
            DataType::Text | DataType::Char(_) => ParamType::Text,
            DataType::Bytea => ParamType::Bytea,
            DataType::Date => ParamType::Date,
            DataType::Time => ParamType::Time,
            DataType::Timestamp => ParamType::Timestamp,
            DataType::Timestamptz => ParamType::Timestamptz,
            DataType::Uuid => ParamType::Uuid,
            DataType::Interval => ParamType::Interval,
            DataType::Jsonb => ParamType::Jsonb,
            DataType::Array(e) => ParamType::Array(e),
        }
    }

    /// The SQL-layer type values of this layout are held as.
    pub(crate) fn data_type(self) -> DataType {
        match self {
            ParamType::Bool => DataType::Bool,
            ParamType::Int2 => DataType::Int2,
            ParamType::Int4 => DataType::Int4,
            ParamType::Int8 => DataType::Int8,
            ParamType::Float4 => DataType::Float4,
            ParamType::Float8 => DataType::Float8,
            ParamType::Numeric => DataType::Numeric(None),
            ParamType::Text => DataType::Text,
            ParamType::Varchar => DataType::Varchar(None),
            ParamType::Bytea => DataType::Bytea,
            ParamType::Date => DataType::Date,
            ParamType::Time => DataType::Time,
            ParamType::Timestamp => DataType::Timestamp,
            ParamType::Timestamptz => DataType::Timestamptz,
            ParamType::Uuid => DataType::Uuid,
            ParamType::Interval => DataType::Interval,
            ParamType::Jsonb | ParamType::Json => DataType::Jsonb,
            ParamType::Array(e) => DataType::Array(e),
        }
    }

    /// The type name PostgreSQL uses in input error messages.
    fn name(self) -> &'static str {
        match self {
            ParamType::Bool => "boolean",
            ParamType::Int2 => "smallint",
            ParamType::Int4 => "integer",
            ParamType::Int8 => "bigint",
            ParamType::Float4 => "real",
            ParamType::Float8 => "double precision",
            ParamType::Numeric => "numeric",
            ParamType::Text => "text",
            ParamType::Varchar => "character varying",
            ParamType::Bytea => "bytea",
            ParamType::Date => "date",
            ParamType::Time => "time",
            ParamType::Timestamp => "timestamp",
            ParamType::Timestamptz => "timestamp with time zone",
            ParamType::Uuid => "uuid",
            ParamType::Interval => "interval",
            ParamType::Jsonb => "jsonb",
            ParamType::Json => "json",
            ParamType::Array(e) => e.array_name(),
        }
    }
}

/// Renders a value in PostgreSQL's text output format; None is SQL NULL.
pub(crate) fn render_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "t" } else { "f" }.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(format_float8(*f)),
        Value::Text(s) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

/// Formats a float8 as `float8out` does with `extra_float_digits = 1` (PostgreSQL 12+): the
/// shortest digits that round-trip, in positional notation when the decimal exponent is in
/// [-4, 15), else as `d.ddde±XX` with at least two exponent digits.
pub(crate) fn format_float8(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "-1.2345e17", "5e-324".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    // Positional: Rust's `{}` is also shortest round-trip and never uses an exponent.
    format!("{f}")
}

/// Appends one field to a DataRow body: its length (-1 for NULL) and its bytes in `format`.
pub(crate) fn encode_field(
    buf: &mut BytesMut,
    value: &Value,
    data_type: DataType,
    format: FieldFormat,
) -> PgWireResult<()> {
    let bytes = match format {
        FieldFormat::Text => render_text(value).map(String::into_bytes),
        FieldFormat::Binary => encode_binary(value, data_type)?,
    };
    match bytes {
        None => buf.put_i32(-1),
        Some(bytes) => {
            let len = i32::try_from(bytes.len())
                .map_err(|_| user_error(code::PROTOCOL_VIOLATION, "field value too large"))?;
            buf.put_i32(len);
            buf.put_slice(&bytes);
        }
    }
    Ok(())
}

/// Encodes one row; `formats[i]` is the format the client asked for column i.
pub(crate) fn encode_row(
    row: &[Value],
    types: &[DataType],
    formats: &[FieldFormat],
) -> PgWireResult<DataRow> {
    // A field is a length word and its bytes; only text values can need more than 24 bytes
    // in either format. One allocation per row.
    let capacity = row
        .iter()
        .map(|v| 4 + if let Value::Text(s) = v { s.len() } else { 24 })
        .sum();
    let mut buf = BytesMut::with_capacity(capacity);
    for (i, value) in row.iter().enumerate() {
        let data_type = *types
            .get(i)
            .ok_or_else(|| user_error(code::INTERNAL_ERROR, "row has more values than columns"))?;
        let format = formats.get(i).copied().unwrap_or(FieldFormat::Text);
        encode_field(&mut buf, value, data_type, format)?;
    }
    let count = i16::try_from(row.len())
        .map_err(|_| user_error(code::PROTOCOL_VIOLATION, "too many columns"))?;
    Ok(DataRow::new(buf, count))
}

/// Encodes result rows into complete DataRow messages (type byte, length, fields) appended to
/// `out`, every column in text or every column in binary format, exactly as query results are
/// encoded before they are sent; returns the bytes written. Public for the micro-benchmarks.
pub fn encode_data_rows(
    rows: &[Vec<Value>],
    types: &[DataType],
    binary: bool,
    out: &mut BytesMut,
) -> std::io::Result<usize> {
    let format = if binary {
        FieldFormat::Binary
    } else {
        FieldFormat::Text
    };
    let formats = vec![format; types.len()];
    let before = out.len();
    for row in rows {
        encode_row(row, types, &formats)
            .and_then(|row| pgwire::messages::Message::encode(&row, out))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(out.len() - before)
}

/// The binary send format of a value of `data_type` (PostgreSQL's `*send` functions).
pub(crate) fn encode_binary(value: &Value, data_type: DataType) -> PgWireResult<Option<Vec<u8>>> {
    let bytes = match (data_type, value) {
        (_, Value::Null) => return Ok(None),
        (DataType::Bool, Value::Bool(b)) => vec![u8::from(*b)],
        (DataType::Int4, Value::Int(i)) => i32::try_from(*i)
            .map_err(|_| user_error(code::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range"))?
            .to_be_bytes()
            .to_vec(),
        (DataType::Int2, Value::Int(i)) => i16::try_from(*i)
            .map_err(|_| user_error(code::NUMERIC_VALUE_OUT_OF_RANGE, "smallint out of range"))?
            .to_be_bytes()
            .to_vec(),
        (DataType::Int8, Value::Int(i)) => i.to_be_bytes().to_vec(),
        (DataType::Float4, Value::Float4(f)) => f.to_be_bytes().to_vec(),
        (DataType::Float8, Value::Float(f)) => f.to_be_bytes().to_vec(),
        (DataType::Float8, Value::Float4(f)) => f64::from(*f).to_be_bytes().to_vec(),
        (DataType::Float8, Value::Int(i)) => (*i as f64).to_be_bytes().to_vec(),
        (DataType::Numeric(_), Value::Numeric(d)) => sql::types::numeric::to_binary(d),
        (DataType::Bytea, Value::Bytes(b)) => b.clone(),
        (DataType::Date, Value::Date(d)) => d.to_be_bytes().to_vec(),
        (DataType::Time, Value::Time(t))
        | (DataType::Timestamp, Value::Timestamp(t))
        | (DataType::Timestamptz, Value::Timestamptz(t)) => t.to_be_bytes().to_vec(),
        (DataType::Uuid, Value::Uuid(u)) => u.to_vec(),
        (DataType::Interval, Value::Interval(v)) => sql::types::interval::to_binary(v),
        (DataType::Text | DataType::Varchar(_) | DataType::Char(_), Value::Text(s)) => {
            s.as_bytes().to_vec()
        }
        (DataType::Jsonb, Value::Jsonb(j)) => {
            let mut out = vec![JSONB_VERSION];
            out.extend_from_slice(j.to_string().as_bytes());
            out
        }
        (DataType::Array(e), Value::Array(items)) => crate::array::encode_binary(items, e)?,
        (data_type, value) => {
            return Err(user_error(
                code::INTERNAL_ERROR,
                format!("cannot send value {value:?} as type {data_type:?}"),
            ));
        }
    };
    Ok(Some(bytes))
}

/// The version byte that starts jsonb's binary format (`jsonb_send`).
const JSONB_VERSION: u8 = 1;

/// Text that must be valid UTF-8 (22021 otherwise).
fn utf8(bytes: &[u8]) -> PgWireResult<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        user_error(
            code::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\"",
        )
    })
}

/// Decodes the Bind parameter `index` (0-based) laid out as `ty`, in text or binary format; None
/// bytes are SQL NULL.
pub(crate) fn decode_param(
    index: usize,
    ty: ParamType,
    binary: bool,
    bytes: Option<&[u8]>,
) -> PgWireResult<Value> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    if binary {
        return decode_binary(index, ty, bytes);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        user_error(
            code::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\"",
        )
    })?;
    parse_text(ty, text)
}

pub(crate) fn decode_binary(index: usize, ty: ParamType, bytes: &[u8]) -> PgWireResult<Value> {
    let bad = || {
        user_error(
            code::INVALID_BINARY_REPRESENTATION,
            format!(
                "incorrect binary data format in bind parameter {}",
                index + 1
            ),
        )
    };
    Ok(match ty {
        ParamType::Bool => match bytes {
            [b] => Value::Bool(*b != 0),
            _ => return Err(bad()),
        },
        ParamType::Int2 => {
            Value::Int(i16::from_be_bytes(bytes.try_into().map_err(|_| bad())?).into())
        }
        ParamType::Int4 => {
            Value::Int(i32::from_be_bytes(bytes.try_into().map_err(|_| bad())?).into())
        }
        ParamType::Int8 => Value::Int(i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
        ParamType::Float4 => {
            Value::Float4(f32::from_be_bytes(bytes.try_into().map_err(|_| bad())?))
        }
        ParamType::Float8 => Value::Float(f64::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
        ParamType::Bytea => Value::Bytes(bytes.to_vec()),
        ParamType::Uuid => Value::Uuid(bytes.try_into().map_err(|_| bad())?),
        ParamType::Interval => {
            Value::Interval(sql::types::interval::from_binary(bytes).ok_or_else(bad)?)
        }
        ParamType::Date => Value::Date(i32::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
        ParamType::Time => Value::Time(i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?)),
        ParamType::Timestamp => {
            Value::Timestamp(i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?))
        }
        ParamType::Timestamptz => {
            Value::Timestamptz(i64::from_be_bytes(bytes.try_into().map_err(|_| bad())?))
        }
        ParamType::Numeric => {
            Value::Numeric(sql::types::numeric::from_binary(bytes).ok_or_else(bad)?)
        }
        ParamType::Jsonb => match bytes.split_first() {
            Some((&JSONB_VERSION, text)) => Value::Text(utf8(text)?),
            Some((v, _)) => {
                return Err(user_error(
                    code::INVALID_BINARY_REPRESENTATION,
                    format!("unsupported jsonb version number {v}"),
                ));
            }
            None => return Err(bad()),
        },
        ParamType::Json => Value::Text(utf8(bytes)?),
        ParamType::Array(e) => crate::array::decode_binary(index, e, bytes).ok_or_else(bad)??,
        ParamType::Text | ParamType::Varchar => {
            Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| {
                user_error(
                    code::CHARACTER_NOT_IN_REPERTOIRE,
                    "invalid byte sequence for encoding \"UTF8\"",
                )
            })?)
        }
    })
}

/// Parses a value from its text form as PostgreSQL's input functions do.
pub(crate) fn parse_text(ty: ParamType, text: &str) -> PgWireResult<Value> {
    let invalid = || {
        user_error(
            code::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {}: \"{text}\"", ty.name()),
        )
    };
    let out_of_range = || {
        user_error(
            code::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{text}\" is out of range for type {}", ty.name()),
        )
    };
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    Ok(match ty {
        // The SQL layer parses numeric text when it casts the parameter to its type.
        ParamType::Text
        | ParamType::Varchar
        | ParamType::Numeric
        | ParamType::Bytea
        | ParamType::Date
        | ParamType::Time
        | ParamType::Timestamp
        | ParamType::Timestamptz
        | ParamType::Uuid
        | ParamType::Interval
        | ParamType::Jsonb
        | ParamType::Json
        | ParamType::Array(_) => Value::Text(text.to_string()),
        ParamType::Bool => Value::Bool(parse_bool(trimmed).ok_or_else(invalid)?),
        ParamType::Int2 | ParamType::Int4 | ParamType::Int8 => {
            let (min, max) = match ty {
                ParamType::Int2 => (i16::MIN.into(), i16::MAX.into()),
                ParamType::Int4 => (i32::MIN.into(), i32::MAX.into()),
                _ => (i64::MIN, i64::MAX),
            };
            let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let n: i64 = trimmed.parse().map_err(|_| out_of_range())?;
            if n < min || n > max {
                return Err(out_of_range());
            }
            Value::Int(n)
        }
        ParamType::Float4 | ParamType::Float8 => {
            let range = || {
                user_error(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("\"{text}\" is out of range for type {}", ty.name()),
                )
            };
            let f = parse_float(trimmed)
                .ok_or_else(invalid)?
                .ok_or_else(range)?;
            if ty == ParamType::Float8 {
                return Ok(Value::Float(f));
            }
            let r = f as f32;
            if (r.is_infinite() && f.is_finite()) || (r == 0.0 && f != 0.0) {
                return Err(range());
            }
            Value::Float4(r)
        }
    })
}

/// `boolin`: a case-insensitive unique prefix of true/false/yes/no, on/off (two letters at
/// least), or 1/0.
fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    let is_prefix = |word: &str, min: usize| lower.len() >= min && word.starts_with(&lower);
    if is_prefix("true", 1) || is_prefix("yes", 1) || is_prefix("on", 2) || lower == "1" {
        Some(true)
    } else if is_prefix("false", 1) || is_prefix("no", 1) || is_prefix("off", 2) || lower == "0" {
        Some(false)
    } else {
        None
    }
}

/// `float8in`: None when the syntax is invalid, Some(None) when a finite literal overflows.
fn parse_float(s: &str) -> Option<Option<f64>> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(unsigned.as_str(), "inf" | "infinity" | "nan");
    let plain = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
    if !special && !plain {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    let mantissa = unsigned.split('e').next().unwrap_or_default();
    let underflow = f == 0.0 && mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
    if (f.is_infinite() && !special) || underflow {
        return Some(None);
    }
    Some(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_type(ty: &Type) -> Option<DataType> {
        ParamType::from_pg(ty).map(ParamType::data_type)
    }

    #[test]
    fn data_types_round_trip_through_oids() {
        let all = [
            DataType::Bool,
            DataType::Int2,
            DataType::Int4,
            DataType::Int8,
            DataType::Float4,
            DataType::Float8,
            DataType::Text,
            DataType::Varchar(None),
        ];
        for dt in all {
            assert_eq!(data_type(&pg_type(dt)), Some(dt));
        }
        let oids: Vec<u32> = all.iter().map(|dt| pg_type(*dt).oid()).collect();
        assert_eq!(oids, [16, 21, 23, 20, 700, 701, 25, 1043]);
        for dt in all {
            assert_eq!(pg_type(dt).oid(), dt.oid(), "{dt:?}");
        }
        assert_eq!(pg_type(DataType::Varchar(Some(3))).oid(), 1043);
        assert_eq!(pg_type(DataType::Char(3)).oid(), 1042);
        assert_eq!(data_type(&Type::BPCHAR), Some(DataType::Text));
        assert_eq!(data_type(&Type::JSONB), Some(DataType::Jsonb));
        assert_eq!(data_type(&Type::JSON), Some(DataType::Jsonb));
        assert_eq!(pg_type(DataType::Jsonb).oid(), 3802);
        assert_eq!(data_type(&Type::XML), None);
        let more = [
            (DataType::Numeric(None), 1700),
            (DataType::Bytea, 17),
            (DataType::Date, 1082),
            (DataType::Time, 1083),
            (DataType::Timestamp, 1114),
            (DataType::Timestamptz, 1184),
            (DataType::Uuid, 2950),
            (DataType::Interval, 1186),
        ];
        for (dt, oid) in more {
            assert_eq!(pg_type(dt).oid(), oid, "{dt:?}");
            assert_eq!(dt.oid(), oid, "{dt:?}");
            assert_eq!(data_type(&pg_type(dt)), Some(dt));
        }
    }

    /// Expected strings are what PostgreSQL 15 prints for the same float8 values.
    #[test]
    fn floats_render_like_postgres() {
        let cases = [
            (1e20, "1e+20"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123456789012345.6, "123456789012345.6"),
            (-0.0, "-0"),
            (0.0, "0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (1.5, "1.5"),
            (-1.5, "-1.5"),
            (100.0, "100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.5e-5, "2.5e-05"),
            (1234567890123456.0, "1.234567890123456e+15"),
            (123456789012345.6 * 3.0, "370370367037036.75"),
            (123456789012345.6 + 1e15, "1.1234567890123456e+15"),
            (0.0001 * 3.0, "0.00030000000000000003"),
            (1e-5 / 4.0, "2.5e-06"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float8(f), want, "{f:?}");
        }
    }

    #[test]
    fn values_render_like_postgres() {
        assert_eq!(render_text(&Value::Null), None);
        assert_eq!(render_text(&Value::Bool(true)).as_deref(), Some("t"));
        assert_eq!(render_text(&Value::Bool(false)).as_deref(), Some("f"));
        assert_eq!(render_text(&Value::Int(-42)).as_deref(), Some("-42"));
        assert_eq!(
            render_text(&Value::Text(String::new())).as_deref(),
            Some("")
        );
    }

    #[test]
    fn rows_encode_in_requested_formats() {
        let row = [
            Value::Int(7),
            Value::Null,
            Value::Float(1.5),
            Value::Bool(true),
        ];
        let types = [
            DataType::Int4,
            DataType::Text,
            DataType::Float8,
            DataType::Bool,
        ];
        let text = encode_row(&row, &types, &[FieldFormat::Text; 4]).unwrap();
        assert_eq!(text.field_count, 4);
        let want: &[u8] = b"\0\0\0\x017\xff\xff\xff\xff\0\0\0\x031.5\0\0\0\x01t";
        assert_eq!(&text.data[..], want);

        let binary = encode_row(&row, &types, &[FieldFormat::Binary; 4]).unwrap();
        let mut want = vec![0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 8];
        want.extend_from_slice(&1.5f64.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 1, 1]);
        assert_eq!(&binary.data[..], &want[..]);
    }

    #[test]
    fn binary_int4_out_of_range_is_an_error() {
        let err = encode_row(
            &[Value::Int(1 << 40)],
            &[DataType::Int4],
            &[FieldFormat::Binary],
        );
        assert!(err.is_err());
        let err = encode_row(
            &[Value::Text("x".into())],
            &[DataType::Int8],
            &[FieldFormat::Binary],
        );
        assert!(err.is_err());
    }

    fn sqlstate_of(r: PgWireResult<Value>) -> String {
        match r {
            Err(pgwire::error::PgWireError::UserError(info)) => info.code,
            other => panic!("expected a user error, got {other:?}"),
        }
    }

    #[test]
    fn text_params_parse_like_postgres_input_functions() {
        let ok = |ty, s: &str| parse_text(ty, s).unwrap();
        assert_eq!(ok(ParamType::Int4, " 42 "), Value::Int(42));
        assert_eq!(
            ok(ParamType::Int4, "-2147483648"),
            Value::Int(i32::MIN.into())
        );
        assert_eq!(
            ok(ParamType::Int8, "+9223372036854775807"),
            Value::Int(i64::MAX)
        );
        assert_eq!(ok(ParamType::Bool, "TRUE"), Value::Bool(true));
        assert_eq!(ok(ParamType::Bool, "of"), Value::Bool(false));
        assert_eq!(ok(ParamType::Bool, "y"), Value::Bool(true));
        assert_eq!(ok(ParamType::Bool, "0"), Value::Bool(false));
        assert_eq!(ok(ParamType::Float8, "1.5"), Value::Float(1.5));
        assert_eq!(
            ok(ParamType::Float8, "-Infinity"),
            Value::Float(f64::NEG_INFINITY)
        );
        assert_eq!(ok(ParamType::Float8, "1e3"), Value::Float(1000.0));
        assert!(matches!(ok(ParamType::Float8, "NaN"), Value::Float(f) if f.is_nan()));
        assert_eq!(ok(ParamType::Text, " a "), Value::Text(" a ".into()));

        assert_eq!(
            sqlstate_of(parse_text(ParamType::Int4, "2147483648")),
            "22003"
        );
        assert_eq!(sqlstate_of(parse_text(ParamType::Int2, "40000")), "22003");
        assert_eq!(
            sqlstate_of(parse_text(ParamType::Int8, "99999999999999999999")),
            "22003"
        );
        assert_eq!(sqlstate_of(parse_text(ParamType::Int4, "abc")), "22P02");
        assert_eq!(sqlstate_of(parse_text(ParamType::Int4, "1.5")), "22P02");
        assert_eq!(sqlstate_of(parse_text(ParamType::Int4, "")), "22P02");
        assert_eq!(sqlstate_of(parse_text(ParamType::Bool, "o")), "22P02");
        assert_eq!(sqlstate_of(parse_text(ParamType::Bool, "maybe")), "22P02");
        assert_eq!(sqlstate_of(parse_text(ParamType::Float8, "1e400")), "22003");
        assert_eq!(
            sqlstate_of(parse_text(ParamType::Float8, "1e-400")),
            "22003"
        );
        assert_eq!(sqlstate_of(parse_text(ParamType::Float8, "1,5")), "22P02");
        assert_eq!(ok(ParamType::Float8, "0e-400"), Value::Float(0.0));
    }

    #[test]
    fn binary_params_decode_by_declared_layout() {
        let dec = |ty, b: &[u8]| decode_param(0, ty, true, Some(b));
        assert_eq!(dec(ParamType::Int2, &[0xff, 0xfe]).unwrap(), Value::Int(-2));
        assert_eq!(
            dec(ParamType::Int4, &41i32.to_be_bytes()).unwrap(),
            Value::Int(41)
        );
        assert_eq!(
            dec(ParamType::Int8, &(-5i64).to_be_bytes()).unwrap(),
            Value::Int(-5)
        );
        assert_eq!(
            dec(ParamType::Float4, &1.5f32.to_be_bytes()).unwrap(),
            Value::Float4(1.5)
        );
        assert_eq!(
            dec(ParamType::Float8, &2.5f64.to_be_bytes()).unwrap(),
            Value::Float(2.5)
        );
        assert_eq!(dec(ParamType::Bool, &[1]).unwrap(), Value::Bool(true));
        assert_eq!(
            dec(ParamType::Text, b"hi").unwrap(),
            Value::Text("hi".into())
        );
        assert_eq!(sqlstate_of(dec(ParamType::Int4, &[0, 1])), "22P03");
        assert_eq!(sqlstate_of(dec(ParamType::Text, &[0xff])), "22021");
        assert_eq!(
            decode_param(0, ParamType::Int4, true, None).unwrap(),
            Value::Null
        );
        assert_eq!(
            decode_param(0, ParamType::Int4, false, Some(b"7")).unwrap(),
            Value::Int(7)
        );
    }
}
