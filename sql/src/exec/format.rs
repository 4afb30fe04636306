//! `format(fmt, args...)`, as PostgreSQL's `text_format`: `%s` (the text form, NULL as
//! empty), `%I` (an identifier, quoted when needed; NULL is 22004), `%L` (a literal, NULL
//! unquoted) and `%%`, each with an optional argument position `n$`, `-` for left
//! alignment and a width (digits, `*` or `*n$`). An argument without a position is the one
//! after the last one used.

use crate::{DataType, Error, Result, Value};

/// Keywords `quote_ident` quotes: PostgreSQL's reserved, column-name and type/function-name
/// keywords (unreserved ones are valid identifiers).
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// The longest result (PostgreSQL's limit is its 1 GB allocation limit).
const MAX_LEN: usize = 1 << 30;

fn invalid(msg: &str) -> Error {
    Error::InvalidParameter(msg.into())
}

/// Calls `format`: NULL when the format string is.
pub(crate) fn format(args: Vec<Value>) -> Result<Value> {
    let mut args = args.into_iter();
    let fmt = match args.next() {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(Value::Text(s)) => s,
        Some(v) => return Err(Error::Internal(format!("format string {v:?}"))),
    };
    let args: Vec<Value> = args.collect();
    let mut out = String::with_capacity(fmt.len());
    let mut chars = fmt.chars().peekable();
    let mut next_arg = 0usize;
    let unterminated = || invalid("unterminated format() type specifier");
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let spec = Spec::parse(&mut chars)?;
        let kind = chars.next().ok_or_else(unterminated)?;
        if !matches!(kind, 's' | 'I' | 'L') {
            return Err(invalid(&format!(
                "unrecognized format() type specifier \"{kind}\""
            )));
        }
        let mut take = |pos: Option<usize>| -> Result<&Value> {
            let at = pos.unwrap_or(next_arg);
            next_arg = at + 1;
            args.get(at)
                .ok_or_else(|| invalid("too few arguments for format()"))
        };
        let (mut width, mut left) = (spec.width, spec.left);
        if let Some(pos) = spec.width_arg {
            match take(pos)? {
                Value::Null => width = 0,
                v => {
                    let w = match v.clone().cast(DataType::Int4) {
                        Ok(Value::Int(w)) => w,
                        _ => return Err(invalid("width argument must be an integer")),
                    };
                    left |= w < 0;
                    width = usize::try_from(w.unsigned_abs()).unwrap_or(usize::MAX);
                }
            }
        }
        let text = convert(kind, take(spec.arg)?)?;
        let pad = width.saturating_sub(text.chars().count());
        if out.len().saturating_add(pad) > MAX_LEN {
            return Err(Error::OutOfRange("requested length too large".into()));
        }
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(Value::Text(out))
}

/// A conversion's position, flags and width (0-based argument indexes).
#[derive(Default)]
struct Spec {
    arg: Option<usize>,
    left: bool,
    width: usize,
    /// `*` (the next argument) or `*n$`.
    width_arg: Option<Option<usize>>,
}

impl Spec {
    fn parse(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Spec> {
        let mut spec = Spec::default();
        // A leading number is a position when `$` follows it, else the width.
        if let Some(n) = number(chars)? {
            if chars.peek() == Some(&'$') {
                chars.next();
                spec.arg = Some(position(n)?);
            } else {
                spec.width = n;
                return Ok(spec);
            }
        }
        while chars.peek() == Some(&'-') {
            chars.next();
            spec.left = true;
        }
        if chars.peek() == Some(&'*') {
            chars.next();
            spec.width_arg = Some(match number(chars)? {
                Some(n) if chars.peek() == Some(&'$') => {
                    chars.next();
                    Some(position(n)?)
                }
                Some(_) => return Err(invalid("unterminated format() type specifier")),
                None => None,
            });
        } else if let Some(n) = number(chars)? {
            spec.width = n;
        }
        Ok(spec)
    }
}

/// A 1-based position as an index; 0 is 22023.
fn position(n: usize) -> Result<usize> {
    n.checked_sub(1)
        .ok_or_else(|| invalid("format specifies argument 0, but arguments are numbered from 1"))
}

fn number(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Option<usize>> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        chars.next();
        let v = n
            .unwrap_or(0)
            .checked_mul(10)
            .and_then(|v| v.checked_add(d as usize))
            .filter(|v| *v <= i32::MAX as usize)
            .ok_or_else(|| invalid("number is out of range"))?;
        n = Some(v);
    }
    Ok(n)
}

fn convert(kind: char, v: &Value) -> Result<String> {
    let text = match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        v => Some(v.to_string()),
    };
    Ok(match (kind, text) {
        ('I', None) => {
            return Err(Error::NullValueNotAllowed(
                "null values cannot be formatted as an SQL identifier".into(),
            ));
        }
        ('I', Some(s)) => quote_ident(&s),
        ('L', None) => "NULL".into(),
        ('L', Some(s)) => quote_literal(&s),
        (_, s) => s.unwrap_or_default(),
    })
}

/// `s` as an identifier: as it is when it is a lower-case name that is not a keyword,
/// else in double quotes.
pub(crate) fn quote_ident(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !KEYWORDS.contains(&s);
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `s` as a string literal; one with backslashes is an `E'...'` literal.
pub(crate) fn quote_literal(s: &str) -> String {
    let quoted = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Value]) -> Result<String> {
        let mut all = vec![Value::Text(fmt.into())];
        all.extend_from_slice(args);
        format(all).map(|v| v.to_string())
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// Expected strings are PostgreSQL 15's.
    #[test]
    fn conversions() {
        assert_eq!(
            f("Hello %s, %s", &[t("World"), Value::Int(42)]).unwrap(),
            "Hello World, 42"
        );
        assert_eq!(
            f(
                "%I %I %I %I",
                &[t("select"), t("Foo bar"), t("abc"), t("a\"b")]
            )
            .unwrap(),
            "\"select\" \"Foo bar\" abc \"a\"\"b\""
        );
        assert_eq!(
            f("%L %L %L", &[t("O'Reilly"), Value::Null, t("a\\b")]).unwrap(),
            "'O''Reilly' NULL E'a\\\\b'"
        );
        assert_eq!(
            f("%2$s %1$s %s", &[t("a"), t("b"), t("c")]).unwrap(),
            "b a b"
        );
        assert_eq!(
            f("[%10s|%-10s]", &[t("x"), t("y")]).unwrap(),
            "[         x|y         ]"
        );
        assert_eq!(
            f("%*s|%-*s|", &[Value::Int(3), t("a"), Value::Int(3), t("b")]).unwrap(),
            "  a|b  |"
        );
        assert_eq!(f("%s|%%", &[Value::Null]).unwrap(), "|%");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            f("%I", &[Value::Null]),
            Err(Error::NullValueNotAllowed(_))
        ));
        assert!(matches!(
            f("%s %s", &[t("a")]),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(
            f("%x", &[t("a")]),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(
            f("%0$s", &[t("a")]),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(f("abc %", &[]), Err(Error::InvalidParameter(_))));
        assert!(matches!(
            f("%2147483647s", &[t("a")]),
            Err(Error::OutOfRange(_))
        ));
    }
}
