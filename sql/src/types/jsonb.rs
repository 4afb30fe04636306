//! JSONB: PostgreSQL's binary JSON as a tree of values, with its input normalisation, text
//! output, btree order and containment.
//!
//! Input follows `jsonb_in`: RFC 8259 syntax with PostgreSQL's error details, numbers kept as
//! numerics (`1.50` stays `1.50`, `1e2` becomes `100`), duplicate object keys keep the last
//! value, and keys are kept in PostgreSQL's storage order: shorter keys first, then by bytes.
//! Numbers are [`rust_decimal::Decimal`], so they have the limits of `types::numeric`.
//!
//! The order is `compareJsonbContainers`'s: at the top level a scalar is a one-element array
//! that sorts before a real array of one element (so `[]` sorts before every scalar); object >
//! array > boolean > number > string > null; containers of different sizes sort by size, then
//! element by element (objects by their keys and values in storage order).

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use rust_decimal::Decimal;

use super::numeric;
use crate::{DataType, Error, Result, Value};

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    Array(Vec<Json>),
    /// Pairs with unique keys in storage order (see [`key_cmp`]).
    Object(Vec<(String, Json)>),
}

/// PostgreSQL's storage order of object keys: by length, then by bytes.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

impl Json {
    /// An object from pairs in any order: duplicate keys keep the last value.
    pub fn object(pairs: Vec<(String, Json)>) -> Json {
        let mut pairs = pairs;
        // A stable sort keeps duplicates in input order; the last of each run wins.
        pairs.sort_by(|a, b| key_cmp(&a.0, &b.0));
        let mut out: Vec<(String, Json)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Json::Object(out)
    }

    /// A number, without the sign of a zero (PostgreSQL's numeric has no negative zero).
    pub fn number(mut d: Decimal) -> Json {
        if d.is_zero() {
            d.set_sign_positive(true);
        }
        Json::Number(d)
    }

    /// The name `jsonb_typeof` gives the value's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Whether the value is a scalar (not an array or object).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => self.position(key).map(|i| &pairs[i].1),
            _ => None,
        }
    }

    /// The position of `key` among an object's pairs.
    pub fn position(&self, key: &str) -> Option<usize> {
        match self {
            Json::Object(pairs) => pairs.binary_search_by(|(k, _)| key_cmp(k, key)).ok(),
            _ => None,
        }
    }

    /// The element at `index` of an array, negative indexes counting from the end.
    pub fn index(&self, index: i64) -> Option<&Json> {
        match self {
            Json::Array(items) => resolve_index(index, items.len()).map(|i| &items[i]),
            _ => None,
        }
    }

    /// The text `->>` returns: a string's contents, other values' JSON text; None for null.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            j => Some(j.to_string()),
        }
    }

    /// `jsonb_pretty`'s form: one element per line, four spaces of indentation.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, level: usize) {
        let indent =
            |out: &mut String, level: usize| out.extend(std::iter::repeat_n("    ", level));
        match self {
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    indent(out, level + 1);
                    item.write_pretty(out, level + 1);
                }
                out.push('\n');
                indent(out, level);
                out.push(']');
            }
            Json::Object(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    indent(out, level + 1);
                    write_string(out, k);
                    out.push_str(": ");
                    v.write_pretty(out, level + 1);
                }
                out.push('\n');
                indent(out, level);
                out.push('}');
            }
            scalar => {
                let _ = write!(out, "{scalar}");
            }
        }
    }

    /// The value without object fields whose value is null, at every depth
    /// (`jsonb_strip_nulls`; array elements stay).
    pub fn strip_nulls(self) -> Json {
        match self {
            Json::Object(pairs) => Json::Object(
                pairs
                    .into_iter()
                    .filter(|(_, v)| *v != Json::Null)
                    .map(|(k, v)| (k, v.strip_nulls()))
                    .collect(),
            ),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::strip_nulls).collect()),
            j => j,
        }
    }

    /// `a @> b`: whether this value contains `b` (PostgreSQL's `JsonbDeepContains`, with a
    /// top-level array containing a scalar that is one of its elements).
    pub fn contains(&self, b: &Json) -> bool {
        match (self, b) {
            (Json::Array(items), b) if b.is_scalar() => items.contains_scalar(b),
            (a, b) => deep_contains(a, b),
        }
    }

    /// `?`: whether the text is a key of an object, a string element of an array or the
    /// string itself.
    pub fn exists(&self, key: &str) -> bool {
        match self {
            Json::Object(_) => self.get(key).is_some(),
            Json::Array(items) => items
                .iter()
                .any(|i| matches!(i, Json::String(s) if s == key)),
            Json::String(s) => s == key,
            _ => false,
        }
    }
}

/// A cast of a jsonb value to a scalar type (PostgreSQL 11+): a number to a numeric type, a
/// boolean to boolean; any other value is 22023, any other type 42846.
pub(crate) fn cast_scalar(j: Json, to: DataType) -> Result<Value> {
    match (j, to) {
        (Json::Bool(b), DataType::Bool) => Ok(Value::Bool(b)),
        (Json::Number(d), t) if t.is_numeric() => Value::Numeric(d).cast(t),
        (j, t) if t.is_numeric() || t == DataType::Bool => Err(Error::InvalidParameter(format!(
            "cannot cast jsonb {} to type {}",
            j.type_name(),
            t.name()
        ))),
        (_, t) => Err(Error::DatatypeMismatch(format!(
            "cannot cast type jsonb to {}",
            t.name()
        ))),
    }
}

/// The position an array index names (negative from the end), if it is inside the array.
pub fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

trait Elements {
    fn contains_scalar(&self, b: &Json) -> bool;
}

impl Elements for Vec<Json> {
    fn contains_scalar(&self, b: &Json) -> bool {
        self.iter()
            .any(|a| a.is_scalar() && compare(a, b) == Ordering::Equal)
    }
}

fn deep_contains(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(_), Json::Object(pb)) => pb.iter().all(|(k, vb)| match a.get(k) {
            Some(va) if va.is_scalar() || vb.is_scalar() => {
                va.is_scalar() && vb.is_scalar() && compare(va, vb) == Ordering::Equal
            }
            Some(va) => deep_contains(va, vb),
            None => false,
        }),
        (Json::Array(ia), Json::Array(ib)) => ib.iter().all(|vb| {
            if vb.is_scalar() {
                ia.contains_scalar(vb)
            } else {
                ia.iter().any(|va| {
                    std::mem::discriminant(va) == std::mem::discriminant(vb)
                        && deep_contains(va, vb)
                })
            }
        }),
        (a, b) if a.is_scalar() && b.is_scalar() => compare(a, b) == Ordering::Equal,
        _ => false,
    }
}

/// PostgreSQL's jsonb btree order of two top-level values (see the module documentation).
pub fn compare(a: &Json, b: &Json) -> Ordering {
    // A top-level scalar is a raw-scalar pseudo array of one element: the element count
    // decides first, then a raw scalar sorts before a real array, then the elements.
    let as_array = |j: &Json| match j {
        Json::Array(items) => Some((items.len(), true)),
        Json::Object(_) => None,
        _ => Some((1, false)),
    };
    match (as_array(a), as_array(b)) {
        (Some((na, ra)), Some((nb, rb))) => {
            na.cmp(&nb).then(ra.cmp(&rb)).then_with(|| match (a, b) {
                (Json::Array(x), Json::Array(y)) => elements_cmp(x, y),
                _ => nested_cmp(a, b),
            })
        }
        (None, None) => nested_cmp(a, b),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

fn elements_cmp(x: &[Json], y: &[Json]) -> Ordering {
    x.iter()
        .zip(y)
        .map(|(a, b)| nested_cmp(a, b))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The order of two values below the top level: by type rank, containers by size first.
fn nested_cmp(a: &Json, b: &Json) -> Ordering {
    let rank = |j: &Json| match j {
        Json::Null => 0,
        Json::String(_) => 1,
        Json::Number(_) => 2,
        Json::Bool(_) => 3,
        Json::Array(_) => 4,
        Json::Object(_) => 5,
    };
    match (a, b) {
        (Json::String(x), Json::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Json::Number(x), Json::Number(y)) => x.cmp(y),
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Array(x), Json::Array(y)) => x.len().cmp(&y.len()).then_with(|| elements_cmp(x, y)),
        (Json::Object(x), Json::Object(y)) => x.len().cmp(&y.len()).then_with(|| {
            x.iter()
                .zip(y)
                .map(|((ka, va), (kb, vb))| {
                    ka.as_bytes()
                        .cmp(kb.as_bytes())
                        .then_with(|| nested_cmp(va, vb))
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        }),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Appends the order-preserving key form of a value: the bytes sort as [`compare`] orders
/// values. Top level: `01 count:u32 raw:u8 elements` for an array (`raw` 1) or a scalar (a
/// one-element pseudo array, `raw` 0), `02 count:u32 pairs` for an object; below it each
/// value is a type byte (null 1, string 2, number 3, boolean 4, array 5, object 6) and its
/// payload: `esc(UTF-8)` for a string, the numeric key payload for a number, `00`/`01` for a
/// boolean, `count:u32` then the elements, or `count:u32` then `esc(key) value` pairs.
pub fn encode_key(out: &mut Vec<u8>, j: &Json) {
    let count = |out: &mut Vec<u8>, n: usize| {
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes())
    };
    match j {
        Json::Array(items) => {
            out.push(1);
            count(out, items.len());
            out.push(1);
            items.iter().for_each(|i| encode_nested(out, i));
        }
        Json::Object(pairs) => {
            out.push(2);
            count(out, pairs.len());
            for (k, v) in pairs {
                txn::keys::encode_bytes(out, k.as_bytes());
                encode_nested(out, v);
            }
        }
        scalar => {
            out.push(1);
            count(out, 1);
            out.push(0);
            encode_nested(out, scalar);
        }
    }
}

fn encode_nested(out: &mut Vec<u8>, j: &Json) {
    let count = |out: &mut Vec<u8>, n: usize| {
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes())
    };
    match j {
        Json::Null => out.push(1),
        Json::String(s) => {
            out.push(2);
            txn::keys::encode_bytes(out, s.as_bytes());
        }
        Json::Number(d) => {
            out.push(3);
            crate::encoding::encode_numeric(out, *d);
        }
        Json::Bool(b) => out.extend_from_slice(&[4, u8::from(*b)]),
        Json::Array(items) => {
            out.push(5);
            count(out, items.len());
            items.iter().for_each(|i| encode_nested(out, i));
        }
        Json::Object(pairs) => {
            out.push(6);
            count(out, pairs.len());
            for (k, v) in pairs {
                txn::keys::encode_bytes(out, k.as_bytes());
                encode_nested(out, v);
            }
        }
    }
}

/// Appends a string in JSON's quoted form, escaped as PostgreSQL's `escape_json` does.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl fmt::Display for Json {
    /// `jsonb_out`: `{"a": 1, "b": [1, 2]}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(d) => write!(f, "{d}"),
            Json::String(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                write_string(&mut out, s);
                f.write_str(&out)
            }
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    let mut key = String::with_capacity(k.len() + 2);
                    write_string(&mut key, k);
                    write!(f, "{key}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Parses JSON text as `jsonb_in` does (22P02 with PostgreSQL's detail on bad input).
pub fn parse(s: &str) -> Result<Json> {
    let mut p = Parser { s, pos: 0 };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < s.len() {
        let token = p.token();
        return Err(p.error(format!("Expected end of input, but found \"{token}\".")));
    }
    Ok(v)
}

/// Nesting deeper than this is refused (PostgreSQL: 54001 "stack depth limit exceeded").
const MAX_DEPTH: usize = 6400;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, detail: String) -> Error {
        Error::InvalidJson {
            message: "invalid input syntax for type json".into(),
            detail,
        }
    }

    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        self.pos += rest.len() - trimmed.len();
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// The token at the current position, as PostgreSQL's lexer delimits it for messages.
    fn token(&self) -> &str {
        let rest = &self.s[self.pos..];
        let Some(c) = rest.chars().next() else {
            return "";
        };
        if "{}[],:".contains(c) {
            return &rest[..1];
        }
        if c == '"' {
            return self.string_token(rest);
        }
        let end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || "_$.+-".contains(*c) || !c.is_ascii()))
            .map_or(rest.len(), |(i, _)| i);
        &rest[..end.max(c.len_utf8())]
    }

    /// A string token with its quotes (to the end of the input when unterminated).
    fn string_token<'s>(&self, rest: &'s str) -> &'s str {
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return &rest[..=i],
                _ => {}
            }
        }
        rest
    }

    fn expect_more(&self) -> Result<()> {
        match self.peek() {
            Some(_) => Ok(()),
            None => Err(self.error("The input string ended unexpectedly.".into())),
        }
    }

    #[recursive::recursive]
    fn value(&mut self, depth: usize) -> Result<Json> {
        if depth > MAX_DEPTH {
            return Err(Error::OutOfRange("stack depth limit exceeded".into()));
        }
        self.skip_ws();
        self.expect_more()?;
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Json::String(self.string()?)),
            _ => self.scalar(),
        }
    }

    fn scalar(&mut self) -> Result<Json> {
        let token = self.token();
        let v = match token {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            "null" => Json::Null,
            "}" | "]" | "," | ":" => {
                return Err(self.error(format!("Expected JSON value, but found \"{token}\".")));
            }
            t if is_number(t) => Json::number(numeric::parse(t)?),
            t => return Err(self.error(format!("Token \"{t}\" is invalid."))),
        };
        self.pos += token.len();
        Ok(v)
    }

    fn array(&mut self, depth: usize) -> Result<Json> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            self.expect_more()?;
            if items.is_empty() && self.peek() == Some(b',') {
                return Err(self.error("Expected array element or \"]\", but found \",\".".into()));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            self.expect_more()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => {
                    let t = self.token();
                    return Err(self.error(format!("Expected \",\" or \"]\", but found \"{t}\".")));
                }
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json> {
        self.pos += 1;
        let mut pairs = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(pairs));
        }
        loop {
            self.skip_ws();
            self.expect_more()?;
            if self.peek() != Some(b'"') {
                let t = self.token();
                let expected = if pairs.is_empty() {
                    "string or \"}\""
                } else {
                    "string"
                };
                return Err(self.error(format!("Expected {expected}, but found \"{t}\".")));
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect_more()?;
            if self.peek() != Some(b':') {
                let t = self.token();
                return Err(self.error(format!("Expected \":\", but found \"{t}\".")));
            }
            self.pos += 1;
            pairs.push((key, self.value(depth + 1)?));
            self.skip_ws();
            self.expect_more()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::object(pairs));
                }
                _ => {
                    let t = self.token();
                    return Err(self.error(format!("Expected \",\" or \"}}\", but found \"{t}\".")));
                }
            }
        }
    }

    /// A string at the current position (which holds its opening quote).
    fn string(&mut self) -> Result<String> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.s[start + 1..].char_indices();
        let mut high: Option<u32> = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + 1 + i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let simple = match e {
                        '"' => Some('"'),
                        '\\' => Some('\\'),
                        '/' => Some('/'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        'u' => None,
                        e => {
                            return Err(
                                self.error(format!("Escape sequence \"\\{e}\" is invalid."))
                            );
                        }
                    };
                    if let Some(c) = simple {
                        if high.is_some() {
                            return Err(self.low_surrogate_error());
                        }
                        out.push(c);
                        continue;
                    }
                    let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                    let code = (hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| u32::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .ok_or_else(|| {
                            self.error(
                                "\"\\u\" must be followed by four hexadecimal digits.".into(),
                            )
                        })?;
                    high = self.unicode_escape(&mut out, code, high)?;
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error(format!(
                        "Character with value 0x{:02x} must be escaped.",
                        c as u32
                    )));
                }
                c => {
                    if high.is_some() {
                        return Err(self.low_surrogate_error());
                    }
                    out.push(c);
                }
            }
        }
        let t = &self.s[start..];
        Err(self.error(format!("Token \"{t}\" is invalid.")))
    }

    fn low_surrogate_error(&self) -> Error {
        self.error("Unicode low surrogate must follow a high surrogate.".into())
    }

    /// Applies a `\uXXXX` escape; returns the pending high surrogate, if this is one.
    fn unicode_escape(
        &self,
        out: &mut String,
        code: u32,
        high: Option<u32>,
    ) -> Result<Option<u32>> {
        match (code, high) {
            (0xD800..=0xDBFF, Some(_)) => {
                Err(self.error("Unicode high surrogate must not follow a high surrogate.".into()))
            }
            (0xD800..=0xDBFF, None) => Ok(Some(code)),
            (0xDC00..=0xDFFF, Some(h)) => {
                let c = 0x10000 + ((h - 0xD800) << 10) + (code - 0xDC00);
                out.extend(char::from_u32(c));
                Ok(None)
            }
            (_, Some(_)) | (0xDC00..=0xDFFF, None) => Err(self.low_surrogate_error()),
            (0, None) => Err(Error::InvalidJson {
                message: "unsupported Unicode escape sequence".into(),
                detail: "\\u0000 cannot be converted to text.".into(),
            }),
            (c, None) => {
                out.extend(char::from_u32(c));
                Ok(None)
            }
        }
    }
}

/// Whether a token is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Json {
        parse(s).expect("valid json")
    }

    #[test]
    fn normalises_as_postgres() {
        let cases = [
            (
                r#"{"b":1, "a":2, "aa":3, "a":4}"#,
                r#"{"a": 4, "b": 1, "aa": 3}"#,
            ),
            ("1.50", "1.50"),
            ("1e2", "100"),
            ("-0", "0"),
            ("1.5e1", "15"),
            ("1E-2", "0.01"),
            (r#""\u00e9\n\u0001""#, "\"é\\n\\u0001\""),
            ("[1, {\"a\":null}]", "[1, {\"a\": null}]"),
            (r#""\ud83d\ude00""#, "\"😀\""),
        ];
        for (input, want) in cases {
            assert_eq!(j(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn errors_carry_postgres_details() {
        let cases = [
            (r#"{"a":}"#, "Expected JSON value, but found \"}\"."),
            ("01", "Token \"01\" is invalid."),
            ("abc", "Token \"abc\" is invalid."),
            ("[1,", "The input string ended unexpectedly."),
            (r#"{"a" 1}"#, "Expected \":\", but found \"1\"."),
            ("\"a", "Token \"\"a\" is invalid."),
            (r#""\x""#, "Escape sequence \"\\x\" is invalid."),
            ("", "The input string ended unexpectedly."),
            ("1 2", "Expected end of input, but found \"2\"."),
            ("[1 2]", "Expected \",\" or \"]\", but found \"2\"."),
            ("{1:2}", "Expected string or \"}\", but found \"1\"."),
            ("\"\n\"", "Character with value 0x0a must be escaped."),
            (
                r#"{"a":1 "b"}"#,
                "Expected \",\" or \"}\", but found \"\"b\"\".",
            ),
        ];
        for (input, want) in cases {
            match parse(input) {
                Err(Error::InvalidJson { detail, .. }) => assert_eq!(detail, want, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn order_is_postgres_btree_order() {
        let less = [
            ("[]", "null"),
            ("null", "[1]"),
            ("5", "[1]"),
            ("5", "[1, 2]"),
            ("[]", "\"a\""),
            ("[1, 2, 3]", "{}"),
            ("null", "\"a\""),
            ("\"a\"", "1"),
            ("1", "true"),
            ("[1]", "[\"a\", \"b\"]"),
            (r#"{"b": 1, "d": 1}"#, r#"{"aa": 1, "c": 1}"#),
            ("1", "1.5"),
            ("[null]", "[\"a\"]"),
        ];
        for (a, b) in less {
            assert_eq!(compare(&j(a), &j(b)), Ordering::Less, "{a} < {b}");
            assert_eq!(compare(&j(b), &j(a)), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare(&j("1.0"), &j("1")), Ordering::Equal);
        let key = |s: &str| {
            let mut out = Vec::new();
            encode_key(&mut out, &j(s));
            out
        };
        for (a, b) in less {
            assert!(key(a) < key(b), "key({a}) < key({b})");
        }
        assert_eq!(key("1.0"), key("1"));
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Json> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            (-3i64..3, 0u32..2).prop_map(|(m, s)| Json::number(Decimal::new(m, s))),
            "[ab]{0,2}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
                proptest::collection::vec(("[ab]{0,2}", inner), 0..3).prop_map(Json::object),
            ]
        })
    }

    proptest::proptest! {
        /// The key encoding sorts as `compare` orders, and its text output parses back.
        #[test]
        fn key_order_is_value_order(a in json(), b in json()) {
            let key = |j: &Json| {
                let mut out = Vec::new();
                encode_key(&mut out, j);
                out
            };
            proptest::prop_assert_eq!(key(&a).cmp(&key(&b)), compare(&a, &b), "{} vs {}", a, b);
            proptest::prop_assert_eq!(compare(&parse(&a.to_string()).expect("output parses"), &a), Ordering::Equal);
        }
    }

    /// A jsonb column value reads back from its row encoding as it was written.
    #[test]
    fn row_encoding_round_trip() {
        let v = crate::Value::Jsonb(Box::new(j(r#"{"a": [1.50, "x\n"], "bb": {"c": null}}"#)));
        let row = crate::encoding::encode_row([(3, &v)]);
        let decoded = crate::encoding::decode_row(&row).expect("decodes");
        assert_eq!(decoded, vec![(3, v)]);
    }

    #[test]
    fn containment() {
        let cases = [
            (r#"{"a":1,"b":2}"#, r#"{"a":1}"#, true),
            (r#"{"a":1}"#, r#"{"a":1,"b":2}"#, false),
            ("[1,2,3]", "[3,1]", true),
            ("[1,2]", "1", true),
            ("1", "[1]", false),
            ("[[1,2]]", "[1]", false),
            ("[[1,2]]", "[[1]]", true),
            (r#"{"a":[1,2]}"#, r#"{"a":[2]}"#, true),
            (r#"{"a":{"b":1}}"#, r#"{"a":1}"#, false),
            ("\"a\"", "\"a\"", true),
        ];
        for (a, b, want) in cases {
            assert_eq!(j(a).contains(&j(b)), want, "{a} @> {b}");
        }
    }
}
