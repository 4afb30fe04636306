//! Evaluation of the string, pattern and math functions (`plan::Function`), with PostgreSQL's
//! results; the date/time and formatting functions are dispatched to their own modules
//! (`exec::datetime`, `exec::to_char`, `exec::to_char_number`, `exec::to_timestamp`,
//! `exec::format`). Arguments arrive already converted to the types the binder chose
//! (`planner::functions`): text as `Value::Text`, integers as `Value::Int`, doubles as
//! `Value::Float`, numerics as `Value::Numeric`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::plan::Function;
use crate::{DataType, Error, Result, Value};

/// Calls `f` on `args`.
pub(crate) fn call(f: Function, args: Vec<Value>) -> Result<Value> {
    use Function as F;
    match f {
        F::Concat => return concat(args),
        F::ConcatWs => return concat_ws(args),
        F::Greatest | F::Least => return extreme(f == F::Greatest, args),
        F::Pi => return Ok(Value::Float(std::f64::consts::PI)),
        F::Random => return Ok(Value::Float(rand::random::<f64>())),
        F::GenRandomUuid => return Ok(Value::Uuid(random_uuid())),
        F::DateTrunc
        | F::DatePart
        | F::Extract
        | F::Age
        | F::MakeDate
        | F::MakeTimestamp
        | F::MakeInterval => return super::datetime::call(f, args),
        F::ToChar => return to_char(args),
        F::ToDate | F::ToTimestamp => return to_timestamp(f, args),
        F::Format => return super::format::format(args),
        F::Jsonb(j) => return super::jsonb::call(j, args),
        F::Array(a) => return super::array::call(a, args),
        F::PgBackendPid => return Ok(Value::Int(i64::from(super::interrupt::current_pid()))),
        F::PgCancelBackend => {
            return Ok(match args.first() {
                Some(Value::Int(pid)) => Value::Bool(super::interrupt::cancel_backend(*pid)),
                _ => Value::Null,
            });
        }
        F::Nextval | F::Currval | F::Setval | F::Lastval | F::PgSleep => {
            return Err(Error::NotSupported(format!(
                "{} is not supported in this context",
                f.name()
            )));
        }
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let mut args = args.into_iter();
    let mut next = || args.next().unwrap_or(Value::Null);
    let (a, b, c) = (next(), next(), next());
    Ok(match f {
        F::Like | F::ILike => {
            let escape = match c {
                Value::Text(e) => Some(e),
                _ => None,
            };
            Value::Bool(like(
                &text(a)?,
                &text(b)?,
                escape.as_deref(),
                f == F::ILike,
            )?)
        }
        F::Regex | F::RegexI => Value::Bool(regex(&text(b)?, f == F::RegexI)?.is_match(&text(a)?)),
        F::SimilarTo => {
            let escape = match c {
                Value::Text(e) => Some(e),
                _ => None,
            };
            let re = similar_to_regex(&text(b)?, escape.as_deref())?;
            Value::Bool(regex(&re, false)?.is_match(&text(a)?))
        }
        F::Substr => substr(
            &text(a)?,
            int(&b)?,
            if c.is_null() { None } else { Some(int(&c)?) },
        )?,
        F::Strpos => {
            let (s, sub) = (text(a)?, text(b)?);
            Value::Int(
                s.find(&sub)
                    .map_or(0, |at| s[..at].chars().count() as i64 + 1),
            )
        }
        F::Replace => {
            let (s, from) = (text(a)?, text(b)?);
            if from.is_empty() {
                Value::Text(s)
            } else {
                Value::Text(s.replace(&from, &text(c)?))
            }
        }
        F::Btrim | F::Ltrim | F::RtrimChars => {
            let s = text(a)?;
            let chars: Vec<char> = match b {
                Value::Null => vec![' '],
                v => text(v)?.chars().collect(),
            };
            let trimmed = match f {
                F::Btrim => s.trim_matches(chars.as_slice()),
                F::Ltrim => s.trim_start_matches(chars.as_slice()),
                _ => s.trim_end_matches(chars.as_slice()),
            };
            Value::Text(trimmed.to_string())
        }
        F::SplitPart => split_part(&text(a)?, &text(b)?, int(&c)?)?,
        F::Lpad | F::Rpad => {
            let fill = match c {
                Value::Null => " ".to_string(),
                v => text(v)?,
            };
            pad(&text(a)?, int(&b)?, &fill, f == F::Lpad)
        }
        F::Left | F::Right => {
            let chars: Vec<char> = text(a)?.chars().collect();
            let n = int(&b)?;
            let len = chars.len() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            let out: String = if f == F::Left {
                chars[..keep].iter().collect()
            } else {
                chars[chars.len() - keep..].iter().collect()
            };
            Value::Text(out)
        }
        F::Repeat => {
            let (s, n) = (text(a)?, int(&b)?.max(0) as usize);
            if s.len().saturating_mul(n) > 1 << 30 {
                return Err(Error::OutOfRange("requested length too large".into()));
            }
            Value::Text(s.repeat(n))
        }
        F::Reverse => Value::Text(text(a)?.chars().rev().collect()),
        F::Initcap => Value::Text(initcap(&text(a)?)),
        F::StartsWith => Value::Bool(text(a)?.starts_with(&text(b)?)),
        F::Chr => {
            let code = int(&a)?;
            match u32::try_from(code).ok().and_then(char::from_u32) {
                Some(ch) if code != 0 => Value::Text(ch.to_string()),
                _ => {
                    return Err(Error::OutOfRange(format!(
                        "requested character not valid for encoding: {code}"
                    )));
                }
            }
        }
        F::Ascii => Value::Int(text(a)?.chars().next().map_or(0, |c| c as i64)),
        F::Round | F::Trunc => round(a, b, f == F::Round)?,
        F::Ceil | F::Floor => match a {
            Value::Numeric(d) => Value::Numeric(if f == F::Ceil { d.ceil() } else { d.floor() }),
            v => {
                let x = float(&v)?;
                Value::Float(if f == F::Ceil { x.ceil() } else { x.floor() })
            }
        },
        F::Sign => match a {
            Value::Numeric(d) => Value::Numeric(Decimal::from(d.cmp(&Decimal::ZERO) as i8)),
            v => {
                let x = float(&v)?;
                Value::Float(if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                })
            }
        },
        F::Sqrt => {
            let x = float(&a)?;
            if x < 0.0 {
                return Err(Error::InvalidArgumentForPower(
                    "cannot take square root of a negative number".into(),
                ));
            }
            Value::Float(x.sqrt())
        }
        F::Power => finite(float(&a)?.powf(float(&b)?))?,
        F::Exp => finite(float(&a)?.exp())?,
        F::Ln | F::Log10 => {
            let x = float(&a)?;
            if x == 0.0 {
                return Err(Error::InvalidArgumentForLog(
                    "cannot take logarithm of zero".into(),
                ));
            }
            if x < 0.0 {
                return Err(Error::InvalidArgumentForLog(
                    "cannot take logarithm of a negative number".into(),
                ));
            }
            Value::Float(if f == F::Ln { x.ln() } else { x.log10() })
        }
        F::Mod => match (a, b) {
            (Value::Int(_), Value::Int(0)) => return Err(Error::DivisionByZero),
            (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_rem(y).unwrap_or(0)),
            (Value::Numeric(_), Value::Numeric(y)) if y.is_zero() => {
                return Err(Error::DivisionByZero);
            }
            (Value::Numeric(x), Value::Numeric(y)) => Value::Numeric(x % y),
            (x, y) => return Err(mismatch(f, &[x, y])),
        },
        _ => {
            return Err(Error::Internal(format!(
                "{} is not evaluated here",
                f.name()
            )));
        }
    })
}

/// to_char(value, pattern); NULL for an empty pattern, as in PostgreSQL.
fn to_char(args: Vec<Value>) -> Result<Value> {
    let [v, Value::Text(pattern)] =
        <[Value; 2]>::try_from(args).unwrap_or([Value::Null, Value::Null])
    else {
        return Ok(Value::Null);
    };
    if pattern.is_empty() {
        return Ok(Value::Null);
    }
    Ok(Value::Text(match v {
        Value::Null => return Ok(Value::Null),
        Value::Timestamp(t) => super::to_char::timestamp(t, false, &pattern)?,
        Value::Timestamptz(t) => super::to_char::timestamp(t, true, &pattern)?,
        Value::Interval(i) => super::to_char::interval(&i, &pattern)?,
        v @ (Value::Int(_) | Value::Numeric(_) | Value::Float(_) | Value::Float4(_)) => {
            super::to_char_number::format(&v, &pattern)?
        }
        v => return Err(mismatch(Function::ToChar, &[v, Value::Text(pattern)])),
    }))
}

/// to_date(text, pattern), to_timestamp(text, pattern) and to_timestamp(seconds).
fn to_timestamp(f: Function, args: Vec<Value>) -> Result<Value> {
    use super::to_timestamp as t;
    match (f, args.as_slice()) {
        (_, args) if args.iter().any(Value::is_null) => Ok(Value::Null),
        (Function::ToDate, [Value::Text(s), Value::Text(p)]) => t::to_date(s, p),
        (Function::ToTimestamp, [Value::Text(s), Value::Text(p)]) => t::to_timestamp(s, p),
        (Function::ToTimestamp, [secs]) => t::from_unix(float(secs)?),
        (f, args) => Err(mismatch(f, args)),
    }
}

fn mismatch(f: Function, args: &[Value]) -> Error {
    let types: Vec<String> = args.iter().map(|v| v.to_string()).collect();
    Error::UndefinedFunction(format!(
        "function {}({}) does not exist",
        f.name(),
        types.join(", ")
    ))
}

fn text(v: Value) -> Result<String> {
    match v {
        Value::Text(s) => Ok(s),
        v => match v.cast(DataType::Text)? {
            Value::Text(s) => Ok(s),
            _ => Err(Error::Internal("a value without a text form".into())),
        },
    }
}

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        v => Err(Error::Internal(format!("expected an integer, got {v}"))),
    }
}

fn float(v: &Value) -> Result<f64> {
    match v {
        Value::Float(x) => Ok(*x),
        Value::Float4(x) => Ok(f64::from(*x)),
        Value::Int(i) => Ok(*i as f64),
        Value::Numeric(d) => d.to_f64().ok_or_else(|| {
            Error::OutOfRange("value out of range for type double precision".into())
        }),
        v => Err(Error::Internal(format!("expected a number, got {v}"))),
    }
}

fn finite(x: f64) -> Result<Value> {
    if x.is_finite() {
        Ok(Value::Float(x))
    } else {
        Err(Error::OutOfRange("value out of range: overflow".into()))
    }
}

/// concat: the text forms of the non-NULL arguments.
fn concat(args: Vec<Value>) -> Result<Value> {
    let mut out = String::new();
    for v in args.into_iter().filter(|v| !v.is_null()) {
        out.push_str(&text(v)?);
    }
    Ok(Value::Text(out))
}

/// concat_ws: NULL when the separator is; otherwise the non-NULL arguments joined by it.
fn concat_ws(args: Vec<Value>) -> Result<Value> {
    let mut args = args.into_iter();
    let sep = match args.next() {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(v) => text(v)?,
    };
    let parts = args
        .filter(|v| !v.is_null())
        .map(text)
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Text(parts.join(&sep)))
}

/// greatest / least: NULLs are ignored; NULL only when every argument is.
fn extreme(greatest: bool, args: Vec<Value>) -> Result<Value> {
    let mut best = Value::Null;
    for v in args.into_iter().filter(|v| !v.is_null()) {
        let better = match best.compare(&v)? {
            None => true,
            Some(o) => (o == std::cmp::Ordering::Less) == greatest && o.is_ne(),
        };
        if best.is_null() || better {
            best = v;
        }
    }
    Ok(best)
}

/// substr(s, from [, count]) with PostgreSQL's treatment of positions before the start.
fn substr(s: &str, from: i64, count: Option<i64>) -> Result<Value> {
    let start = from.max(1);
    let end = match count {
        Some(n) if n < 0 => {
            return Err(Error::InvalidSubstringLength(
                "negative substring length not allowed".into(),
            ));
        }
        Some(n) => from.saturating_add(n),
        None => i64::MAX,
    };
    if end <= start {
        return Ok(Value::Text(String::new()));
    }
    let out: String = s
        .chars()
        .skip((start - 1) as usize)
        .take(usize::try_from(end - start).unwrap_or(usize::MAX))
        .collect();
    Ok(Value::Text(out))
}

fn split_part(s: &str, delimiter: &str, n: i64) -> Result<Value> {
    if n == 0 {
        return Err(Error::InvalidParameter(
            "field position must not be zero".into(),
        ));
    }
    if delimiter.is_empty() {
        return Ok(Value::Text(if n == 1 || n == -1 {
            s.to_string()
        } else {
            String::new()
        }));
    }
    let parts: Vec<&str> = s.split(delimiter).collect();
    let at = if n > 0 {
        usize::try_from(n - 1).ok()
    } else {
        parts
            .len()
            .checked_sub(usize::try_from(-n).unwrap_or(usize::MAX))
    };
    Ok(Value::Text(
        at.and_then(|i| parts.get(i))
            .copied()
            .unwrap_or("")
            .to_string(),
    ))
}

/// lpad / rpad: `s` filled (or cut) to `len` characters.
fn pad(s: &str, len: i64, fill: &str, left: bool) -> Value {
    let len = len.max(0) as usize;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= len || fill.is_empty() {
        return Value::Text(chars.iter().take(len).collect());
    }
    let filler: String = fill.chars().cycle().take(len - chars.len()).collect();
    let s: String = chars.iter().collect();
    Value::Text(if left { filler + &s } else { s + &filler })
}

/// initcap: the first letter of each alphanumeric run upper case, the rest lower case.
fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for ch in s.chars() {
        if ch.is_alphanumeric() {
            if in_word {
                out.extend(ch.to_lowercase());
            } else {
                out.extend(ch.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(ch);
            in_word = false;
        }
    }
    out
}

/// round / trunc of a numeric (to `digits` places) or a double (to an integer).
fn round(x: Value, digits: Value, round: bool) -> Result<Value> {
    match x {
        Value::Numeric(d) => {
            let places = match digits {
                Value::Null => 0,
                v => int(&v)?,
            };
            let strategy = if round {
                RoundingStrategy::MidpointAwayFromZero
            } else {
                RoundingStrategy::ToZero
            };
            if places >= 0 {
                let places = u32::try_from(places.min(28)).unwrap_or(28);
                Ok(Value::Numeric(d.round_dp_with_strategy(places, strategy)))
            } else {
                // Negative places round to tens, hundreds...
                let scale = Decimal::from_i64(10i64.saturating_pow((-places).min(18) as u32))
                    .unwrap_or(Decimal::MAX);
                let scaled = (d / scale).round_dp_with_strategy(0, strategy);
                Ok(Value::Numeric(scaled * scale))
            }
        }
        v => {
            let x = float(&v)?;
            Ok(Value::Float(if round {
                x.round_ties_even()
            } else {
                x.trunc()
            }))
        }
    }
}

/// A version 4 (random) UUID.
fn random_uuid() -> [u8; 16] {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// Compiled regular expressions, by pattern and case sensitivity (patterns are usually
/// constants, so each is compiled once).
fn regex(pattern: &str, ignore_case: bool) -> Result<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<(String, bool), regex::Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (pattern.to_string(), ignore_case);
    if let Some(re) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(re.clone());
    }
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| Error::InvalidRegularExpression(format!("invalid regular expression: {e}")))?;
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= 1024 {
        cache.clear();
    }
    cache.insert(key, re.clone());
    Ok(re)
}

/// The regular expression of a SIMILAR TO pattern, as PostgreSQL's `similar_to_escape`
/// builds it: anchored at both ends, `%` as `.*`, `_` as `.`, groups non-capturing, `.`,
/// `^`, `$` and backslashes literal, bracket expressions and the other regular expression
/// operators as they are. The escape character (backslash by default, none when empty)
/// makes the next character literal; escape-double-quote separators (at most two) split
/// the pattern into the parts SUBSTRING would use. `.` matches newlines, as in PostgreSQL.
fn similar_to_regex(pattern: &str, escape: Option<&str>) -> Result<String> {
    let escape = match escape {
        None => Some('\\'),
        Some(e) => {
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (None, _) => None,
                (Some(c), None) => Some(c),
                _ => {
                    return Err(Error::InvalidEscapeSequence("invalid escape string".into()));
                }
            }
        }
    };
    let mut out = String::from("(?s)^(?:");
    let (mut after_escape, mut in_class, mut quotes) = (false, false, 0);
    for c in pattern.chars() {
        if after_escape {
            if c == '"' && !in_class {
                out.push_str(match quotes {
                    0 => "){1,1}?(",
                    1 => "){1,1}(?:",
                    _ => {
                        return Err(Error::InvalidEscapeCharacter(
                            "SQL regular expression may not contain more than two \
                             escape-double-quote separators"
                                .into(),
                        ));
                    }
                });
                quotes += 1;
            } else {
                out.push('\\');
                out.push(c);
            }
            after_escape = false;
        } else if Some(c) == escape {
            after_escape = true;
        } else if in_class {
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
            in_class = c != ']';
        } else {
            match c {
                '[' => {
                    out.push(c);
                    in_class = true;
                }
                '%' => out.push_str(".*"),
                '_' => out.push('.'),
                '(' => out.push_str("(?:"),
                '\\' | '.' | '^' | '$' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }
    out.push_str(")$");
    Ok(out)
}

/// `s LIKE pattern`: `%` any run, `_` any one character, the escape character (backslash by
/// default, none when empty) takes the next one literally.
fn like(s: &str, pattern: &str, escape: Option<&str>, ignore_case: bool) -> Result<bool> {
    let escape = match escape {
        None => Some('\\'),
        Some(e) => {
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (None, _) => None,
                (Some(c), None) => Some(c),
                _ => {
                    return Err(Error::InvalidEscapeSequence(
                        "invalid escape string: it must be empty or one character".into(),
                    ));
                }
            }
        }
    };
    let fold = |t: &str| -> Vec<char> {
        if ignore_case {
            t.to_lowercase().chars().collect()
        } else {
            t.chars().collect()
        }
    };
    // Pattern tokens: Some(c) a literal, None for `_`, and a separate marker for `%`.
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Lit(char),
        One,
        Any,
        /// An escape character ending the pattern: an error only if matching reaches it.
        DanglingEscape,
    }
    let mut toks = Vec::new();
    let mut chars = fold(pattern).into_iter();
    while let Some(c) = chars.next() {
        toks.push(if Some(c) == escape {
            match chars.next() {
                Some(n) => Tok::Lit(n),
                None => Tok::DanglingEscape,
            }
        } else if c == '%' {
            Tok::Any
        } else if c == '_' {
            Tok::One
        } else {
            Tok::Lit(c)
        });
    }
    let text = fold(s);
    // Greedy matching with backtracking to the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                t += 1;
                p += 1;
            }
            Some(Tok::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::DanglingEscape) => {
                return Err(Error::InvalidEscapeSequence(
                    "LIKE pattern must not end with escape character".into(),
                ));
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return Ok(false),
            },
        }
    }
    Ok(toks[p..].iter().all(|t| *t == Tok::Any))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_as_in_postgresql() {
        let m = |s, p| like(s, p, None, false).unwrap();
        assert!(m("hello", "h%o"));
        assert!(m("hello", "%"));
        assert!(m("", "%"));
        assert!(!m("hello", "h_o"));
        assert!(m("hello", "h___o"));
        assert!(m("a%b", "a\\%b"));
        assert!(!m("axb", "a\\%b"));
        assert!(m("abcabc", "%abc"));
        assert!(!m("abcab", "%abc"));
        assert!(like("HeLLo", "hello", None, true).unwrap());
        assert!(like("a_b", "a#_b", Some("#"), false).unwrap());
        assert!(like("a\\b", "a\\b", Some(""), false).unwrap());
        assert!(!like("x", "x\\", None, false).unwrap());
        assert!(like("x\\", "x\\", None, false).is_err());
    }

    #[test]
    fn similar_to_translates_as_postgresql() {
        let re = |p: &str| similar_to_regex(p, None).unwrap();
        assert_eq!(re("a%b_"), "(?s)^(?:a.*b.)$");
        assert_eq!(re("(a|b).c"), "(?s)^(?:(?:a|b)\\.c)$");
        assert_eq!(re("a\\_[\\x]"), "(?s)^(?:a\\_[\\x])$");
        assert_eq!(
            similar_to_regex("[\\x]", Some("#")).unwrap(),
            "(?s)^(?:[\\\\x])$"
        );
        assert_eq!(
            similar_to_regex("a#%", Some("#")).unwrap(),
            "(?s)^(?:a\\%)$"
        );
        assert_eq!(
            similar_to_regex("a\\%", Some("")).unwrap(),
            "(?s)^(?:a\\\\.*)$"
        );
        assert!(similar_to_regex("a", Some("xy")).is_err());
        assert!(similar_to_regex("a\\\"b\\\"c\\\"", None).is_err());
    }

    #[test]
    fn string_helpers_follow_postgresql() {
        assert_eq!(
            substr("hello", 0, Some(3)).unwrap(),
            Value::Text("he".into())
        );
        assert_eq!(
            substr("hello", 2, None).unwrap(),
            Value::Text("ello".into())
        );
        assert_eq!(
            split_part("a,b,c", ",", -1).unwrap(),
            Value::Text("c".into())
        );
        assert_eq!(split_part("a,b,c", ",", 5).unwrap(), Value::Text("".into()));
        assert_eq!(pad("hi", 5, "xy", true), Value::Text("xyxhi".into()));
        assert_eq!(pad("hello", 3, " ", false), Value::Text("hel".into()));
        assert_eq!(initcap("hi THERE o'neil"), "Hi There O'Neil");
    }

    #[test]
    fn rounding_is_half_away_from_zero_for_numeric_and_half_even_for_double() {
        let n = |s: &str| Value::Numeric(s.parse().unwrap());
        assert_eq!(round(n("2.5"), Value::Null, true).unwrap(), n("3"));
        assert_eq!(round(n("-2.5"), Value::Null, true).unwrap(), n("-3"));
        assert_eq!(round(n("12.345"), Value::Int(2), true).unwrap(), n("12.35"));
        assert_eq!(round(n("1250"), Value::Int(-2), true).unwrap(), n("1300"));
        assert_eq!(
            round(Value::Float(2.5), Value::Null, true).unwrap(),
            Value::Float(2.0)
        );
        assert_eq!(round(n("12.345"), Value::Int(1), false).unwrap(), n("12.3"));
    }
}
