//! One-dimensional arrays: the element types, PostgreSQL's text input and output
//! (`array_in`, `array_out`) and the element-wise order.
//!
//! `DataType::Array` carries an [`ElemType`], a `Copy` enum of the scalar types without
//! their modifiers, so that `DataType` stays `Copy` and arrays of arrays cannot be named. An
//! element of `VARCHAR(3)[]` is a `varchar` without a length (the modifier is dropped), and
//! a `CHAR(n)` element is held as text (`bpchar` without padding). Values are
//! `Value::Array(elements)` with a lower bound of 1; every element is NULL or a value of the
//! element type.

use std::cmp::Ordering;

use crate::{DataType, Error, Result, Value};

/// The element type of an array: a scalar type without its modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ElemType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Varchar,
    /// `bpchar`: held as text without padding.
    Bpchar,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Uuid,
    Interval,
}

impl ElemType {
    /// The element type of arrays of `t`; None for an array type (no nested arrays) and for
    /// jsonb (no jsonb arrays): [`no_array_of`] is the error.
    pub fn of(t: DataType) -> Option<ElemType> {
        Some(match t {
            DataType::Bool => ElemType::Bool,
            DataType::Int2 => ElemType::Int2,
            DataType::Int4 => ElemType::Int4,
            DataType::Int8 => ElemType::Int8,
            DataType::Float4 => ElemType::Float4,
            DataType::Float8 => ElemType::Float8,
            DataType::Numeric(_) => ElemType::Numeric,
            DataType::Text => ElemType::Text,
            DataType::Varchar(_) => ElemType::Varchar,
            DataType::Char(_) => ElemType::Bpchar,
            DataType::Bytea => ElemType::Bytea,
            DataType::Date => ElemType::Date,
            DataType::Time => ElemType::Time,
            DataType::Timestamp => ElemType::Timestamp,
            DataType::Timestamptz => ElemType::Timestamptz,
            DataType::Uuid => ElemType::Uuid,
            DataType::Interval => ElemType::Interval,
            DataType::Array(_) | DataType::Jsonb => return None,
        })
    }

    /// The type of one element.
    pub fn data_type(self) -> DataType {
        match self {
            ElemType::Bool => DataType::Bool,
            ElemType::Int2 => DataType::Int2,
            ElemType::Int4 => DataType::Int4,
            ElemType::Int8 => DataType::Int8,
            ElemType::Float4 => DataType::Float4,
            ElemType::Float8 => DataType::Float8,
            ElemType::Numeric => DataType::Numeric(None),
            ElemType::Text | ElemType::Bpchar => DataType::Text,
            ElemType::Varchar => DataType::Varchar(None),
            ElemType::Bytea => DataType::Bytea,
            ElemType::Date => DataType::Date,
            ElemType::Time => DataType::Time,
            ElemType::Timestamp => DataType::Timestamp,
            ElemType::Timestamptz => DataType::Timestamptz,
            ElemType::Uuid => DataType::Uuid,
            ElemType::Interval => DataType::Interval,
        }
    }

    /// The array type's name as `format_type` prints it (`integer[]`).
    pub fn array_name(self) -> &'static str {
        match self {
            ElemType::Bool => "boolean[]",
            ElemType::Int2 => "smallint[]",
            ElemType::Int4 => "integer[]",
            ElemType::Int8 => "bigint[]",
            ElemType::Float4 => "real[]",
            ElemType::Float8 => "double precision[]",
            ElemType::Numeric => "numeric[]",
            ElemType::Text => "text[]",
            ElemType::Varchar => "character varying[]",
            ElemType::Bpchar => "character[]",
            ElemType::Bytea => "bytea[]",
            ElemType::Date => "date[]",
            ElemType::Time => "time without time zone[]",
            ElemType::Timestamp => "timestamp without time zone[]",
            ElemType::Timestamptz => "timestamp with time zone[]",
            ElemType::Uuid => "uuid[]",
            ElemType::Interval => "interval[]",
        }
    }

    /// The array type's internal name (`_int4`), the column name of a bare cast.
    pub fn array_short_name(self) -> &'static str {
        match self {
            ElemType::Bool => "_bool",
            ElemType::Int2 => "_int2",
            ElemType::Int4 => "_int4",
            ElemType::Int8 => "_int8",
            ElemType::Float4 => "_float4",
            ElemType::Float8 => "_float8",
            ElemType::Numeric => "_numeric",
            ElemType::Text => "_text",
            ElemType::Varchar => "_varchar",
            ElemType::Bpchar => "_bpchar",
            ElemType::Bytea => "_bytea",
            ElemType::Date => "_date",
            ElemType::Time => "_time",
            ElemType::Timestamp => "_timestamp",
            ElemType::Timestamptz => "_timestamptz",
            ElemType::Uuid => "_uuid",
            ElemType::Interval => "_interval",
        }
    }

    /// The array type's oid.
    pub fn array_oid(self) -> u32 {
        match self {
            ElemType::Bool => 1000,
            ElemType::Int2 => 1005,
            ElemType::Int4 => 1007,
            ElemType::Int8 => 1016,
            ElemType::Float4 => 1021,
            ElemType::Float8 => 1022,
            ElemType::Numeric => 1231,
            ElemType::Text => 1009,
            ElemType::Varchar => 1015,
            ElemType::Bpchar => 1014,
            ElemType::Bytea => 1001,
            ElemType::Date => 1182,
            ElemType::Time => 1183,
            ElemType::Timestamp => 1115,
            ElemType::Timestamptz => 1185,
            ElemType::Uuid => 2951,
            ElemType::Interval => 1187,
        }
    }

    /// The element type of the array type with oid `oid`.
    pub fn from_array_oid(oid: u32) -> Option<ElemType> {
        ALL.iter().copied().find(|e| e.array_oid() == oid)
    }
}

/// 0A000 for an array of `t`, a type without an [`ElemType`].
pub fn no_array_of(t: DataType) -> Error {
    match t {
        DataType::Array(_) => {
            Error::NotSupported("multidimensional arrays are not supported".into())
        }
        t => Error::NotSupported(format!("arrays of type {t} are not supported")),
    }
}

/// Every element type.
const ALL: [ElemType; 17] = [
    ElemType::Bool,
    ElemType::Int2,
    ElemType::Int4,
    ElemType::Int8,
    ElemType::Float4,
    ElemType::Float8,
    ElemType::Numeric,
    ElemType::Text,
    ElemType::Varchar,
    ElemType::Bpchar,
    ElemType::Bytea,
    ElemType::Date,
    ElemType::Time,
    ElemType::Timestamp,
    ElemType::Timestamptz,
    ElemType::Uuid,
    ElemType::Interval,
];

/// An array function or operator, chosen at bind time (`planner::array`) and evaluated in
/// `exec::array`. Arguments arrive converted to the element type where one is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrayFunc {
    /// `ARRAY[a, b, ...]`: the arguments as elements.
    Make,
    /// `a[i]` (NULL out of range).
    Subscript,
    /// `a[lo:hi]`, with which bounds are given (the arguments after the array).
    Slice { lower: bool, upper: bool },
    /// array_length(a, dim).
    Length,
    /// cardinality(a).
    Cardinality,
    /// array_lower(a, dim).
    Lower,
    /// array_upper(a, dim).
    Upper,
    /// array_ndims(a).
    Ndims,
    /// array_append(a, x), `a || x`.
    Append,
    /// array_prepend(x, a), `x || a`.
    Prepend,
    /// array_cat(a, b), `a || b`.
    Cat,
    /// array_position(a, x [, start]).
    Position,
    /// array_remove(a, x).
    Remove,
    /// array_to_string(a, delimiter [, null_string]).
    ToString,
    /// string_to_array(s, delimiter [, null_string]).
    StringToArray,
    /// `a @> b`.
    Contains,
    /// `a <@ b`.
    ContainedBy,
    /// `a && b`.
    Overlap,
    /// `x op ANY (a)`.
    Any(crate::plan::CmpOp),
    /// `x op ALL (a)`.
    All(crate::plan::CmpOp),
}

impl ArrayFunc {
    /// The SQL name (an operator's symbol for the operators).
    pub fn name(self) -> &'static str {
        match self {
            ArrayFunc::Make => "array",
            ArrayFunc::Subscript | ArrayFunc::Slice { .. } => "subscript",
            ArrayFunc::Length => "array_length",
            ArrayFunc::Cardinality => "cardinality",
            ArrayFunc::Lower => "array_lower",
            ArrayFunc::Upper => "array_upper",
            ArrayFunc::Ndims => "array_ndims",
            ArrayFunc::Append => "array_append",
            ArrayFunc::Prepend => "array_prepend",
            ArrayFunc::Cat => "array_cat",
            ArrayFunc::Position => "array_position",
            ArrayFunc::Remove => "array_remove",
            ArrayFunc::ToString => "array_to_string",
            ArrayFunc::StringToArray => "string_to_array",
            ArrayFunc::Contains => "@>",
            ArrayFunc::ContainedBy => "<@",
            ArrayFunc::Overlap => "&&",
            ArrayFunc::Any(_) => "any",
            ArrayFunc::All(_) => "all",
        }
    }

    /// Whether a NULL argument makes the result NULL.
    pub fn is_strict(self) -> bool {
        !matches!(
            self,
            ArrayFunc::Make
                | ArrayFunc::Append
                | ArrayFunc::Prepend
                | ArrayFunc::Cat
                | ArrayFunc::Position
                | ArrayFunc::Remove
                | ArrayFunc::ToString
                | ArrayFunc::StringToArray
                | ArrayFunc::Any(_)
                | ArrayFunc::All(_)
        )
    }
}

/// 22P02 for a malformed literal (without PostgreSQL's DETAIL line).
fn malformed(s: &str) -> Error {
    Error::InvalidInput(format!("malformed array literal: \"{s}\""))
}

/// Parses PostgreSQL's array text input (`{1,2,NULL}`, `{a,"b c"}`) into elements of type
/// `elem`: 22P02 for a malformed literal or element; multi-dimensional literals are 0A000.
pub fn parse(s: &str, elem: ElemType) -> Result<Value> {
    let mut items = Vec::new();
    for item in split(s)? {
        items.push(match item {
            None => Value::Null,
            Some(text) => super::cast::parse_text(&text, elem.data_type())?,
        });
    }
    Ok(Value::Array(items))
}

/// The element texts of an array literal; None for an unquoted NULL.
fn split(s: &str) -> Result<Vec<Option<String>>> {
    let body = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if body.starts_with('[') {
        return Err(Error::NotSupported(
            "array literals with dimensions are not supported".into(),
        ));
    }
    let Some(inner) = body.strip_prefix('{') else {
        return Err(malformed(s));
    };
    let mut chars = inner.chars().peekable();
    let mut items = Vec::new();
    let skip_space = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
    };
    skip_space(&mut chars);
    if chars.next_if_eq(&'}').is_some() {
        skip_space(&mut chars);
        return match chars.next() {
            None => Ok(items),
            Some(_) => Err(malformed(s)),
        };
    }
    loop {
        skip_space(&mut chars);
        let mut text = String::new();
        let mut quoted = false;
        // Characters of an unquoted element up to the last non-space one (inner spaces stay).
        let mut kept = 0;
        let mut escaped_any = false;
        match chars.peek() {
            Some('"') => {
                chars.next();
                quoted = true;
                loop {
                    match chars.next() {
                        None => return Err(malformed(s)),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => text.push(c),
                            None => return Err(malformed(s)),
                        },
                        Some(c) => text.push(c),
                    }
                }
                skip_space(&mut chars);
            }
            Some('{') => {
                return Err(Error::NotSupported(
                    "multidimensional arrays are not supported".into(),
                ));
            }
            _ => loop {
                match chars.peek().copied() {
                    None => return Err(malformed(s)),
                    Some(',' | '}') => break,
                    Some('"' | '{') => {
                        return Err(malformed(s));
                    }
                    Some('\\') => {
                        chars.next();
                        match chars.next() {
                            Some(c) => text.push(c),
                            None => return Err(malformed(s)),
                        }
                        escaped_any = true;
                        kept = text.len();
                    }
                    Some(c) => {
                        chars.next();
                        text.push(c);
                        if !c.is_ascii_whitespace() {
                            kept = text.len();
                        }
                    }
                }
            },
        }
        if !quoted {
            text.truncate(kept);
            if text.is_empty() {
                return Err(malformed(s));
            }
        }
        let null = !quoted && !escaped_any && text.eq_ignore_ascii_case("NULL");
        items.push((!null).then_some(text));
        match chars.next() {
            Some(',') => continue,
            Some('}') => break,
            _ => return Err(malformed(s)),
        }
    }
    skip_space(&mut chars);
    match chars.next() {
        None => Ok(items),
        Some(_) => Err(malformed(s)),
    }
}

/// PostgreSQL's array text output: `{1,2,NULL}`, with elements quoted where they hold a
/// delimiter, brace, quote, backslash or space, are empty, or spell NULL.
pub fn format(items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            v => {
                let text = v.to_string();
                let quote = text.is_empty()
                    || text.eq_ignore_ascii_case("NULL")
                    || text.chars().any(|c| {
                        matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace()
                    });
                if quote {
                    out.push('"');
                    for c in text.chars() {
                        if matches!(c, '"' | '\\') {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(&text);
                }
            }
        }
    }
    out.push('}');
    out
}

/// PostgreSQL's array order (`btarraycmp`): element by element, a NULL element after every
/// value and equal to another NULL, then the shorter array first.
pub fn compare(a: &[Value], b: &[Value]) -> Result<Ordering> {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            (x, y) => x.compare(y)?.unwrap_or(Ordering::Equal),
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

/// Casts every element of an array to `elem` (NULL elements stay NULL).
pub(crate) fn cast_elements(items: Vec<Value>, elem: ElemType) -> Result<Value> {
    let ty = elem.data_type();
    let items = items
        .into_iter()
        .map(|v| v.cast(ty))
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(s: &str) -> Result<Value> {
        parse(s, ElemType::Int4)
    }

    #[test]
    fn text_input_and_output() {
        assert_eq!(
            ints("{1, 2 ,NULL}").unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Null])
        );
        assert_eq!(ints(" { } ").unwrap(), Value::Array(vec![]));
        let t = parse(r#"{a,"b c","",NULL,"NULL",x\,y, d e }"#, ElemType::Text).unwrap();
        let Value::Array(items) = &t else {
            panic!("not an array: {t:?}")
        };
        assert_eq!(items[1], Value::Text("b c".into()));
        assert_eq!(items[3], Value::Null);
        assert_eq!(items[4], Value::Text("NULL".into()));
        assert_eq!(items[5], Value::Text("x,y".into()));
        assert_eq!(items[6], Value::Text("d e".into()));
        assert_eq!(format(items), r#"{a,"b c","",NULL,"NULL","x,y","d e"}"#);
        assert_eq!(format(&[Value::Text("a\"b\\".into())]), r#"{"a\"b\\"}"#);
    }

    #[test]
    fn malformed_input_is_22p02() {
        for bad in ["1,2", "{1,2", "{1,,2}", "{1}x", "{\"a}", "{,}", "{a\"b}"] {
            assert!(
                matches!(parse(bad, ElemType::Text), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
        assert!(matches!(ints("{1,x}"), Err(Error::InvalidInput(_))));
        assert!(matches!(ints("{{1},{2}}"), Err(Error::NotSupported(_))));
    }

    #[test]
    fn order_is_elementwise() {
        let a = |v: &[i64]| v.iter().map(|i| Value::Int(*i)).collect::<Vec<_>>();
        assert_eq!(compare(&a(&[1, 2]), &a(&[1, 3])).unwrap(), Ordering::Less);
        assert_eq!(compare(&a(&[1, 2]), &a(&[1])).unwrap(), Ordering::Greater);
        assert_eq!(compare(&a(&[2]), &a(&[1, 9])).unwrap(), Ordering::Greater);
        let with_null = vec![Value::Int(1), Value::Null];
        assert_eq!(compare(&with_null, &a(&[1, 5])).unwrap(), Ordering::Greater);
        assert_eq!(compare(&with_null, &with_null).unwrap(), Ordering::Equal);
    }
}
