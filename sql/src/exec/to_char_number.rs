//! `to_char(number, pattern)` for PostgreSQL's common numeric template patterns: `9` (a
//! digit, blank when leading), `0` (a digit, zero when leading, and every digit position
//! after it), `.` / `D` (the decimal point), `,` / `G` (a group separator, printed after a
//! digit), `S` (the sign, next to the number when it leads), `MI` / `PL` / `SG` (minus,
//! plus, either, in place), `FM` (no padding, no trailing fraction zeros at `9`), quoted
//! text and other characters as literals. A number with more integer digits than the
//! pattern has is `#` in every digit position. Without `S`, `MI` or `SG` the result has a
//! leading sign position, as in PostgreSQL. `RN`, `EEEE`, `V`, `TH`, `L`, `B` are 0A000.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::{Error, Result, Value};

/// A pattern element.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A digit position; `true` for `0`.
    Digit(bool),
    Point,
    Group,
    /// `S`.
    Sign,
    /// `MI`.
    Minus,
    /// `PL`.
    Plus,
    /// `SG`.
    SignAlways,
    Literal(char),
}

struct Pattern {
    toks: Vec<Tok>,
    fm: bool,
    /// Digit positions before and after the point.
    pre: usize,
    post: usize,
    /// The first `0` among the integer positions (all later ones print zeros).
    first_zero: usize,
}

fn parse(p: &str) -> Result<Pattern> {
    let mut toks = Vec::new();
    let mut fm = false;
    let mut rest = p;
    let (mut pre, mut post, mut first_zero, mut point) = (0, 0, usize::MAX, false);
    while let Some(c) = rest.chars().next() {
        let upper = rest.to_ascii_uppercase();
        let two = upper.get(..2).unwrap_or("");
        let (tok, len) = match (c, two) {
            (_, "FM") => {
                fm = true;
                rest = &rest[2..];
                continue;
            }
            (_, "MI") => (Tok::Minus, 2),
            (_, "PL") => (Tok::Plus, 2),
            (_, "SG") => (Tok::SignAlways, 2),
            (_, "RN" | "TH" | "EE") => return Err(unsupported(two)),
            ('9' | '0', _) => (Tok::Digit(c == '0'), 1),
            ('.' | 'D' | 'd', _) => (Tok::Point, 1),
            (',' | 'G' | 'g', _) => (Tok::Group, 1),
            ('S' | 's', _) => (Tok::Sign, 1),
            ('V' | 'v' | 'L' | 'l' | 'B' | 'b', _) => return Err(unsupported(&c.to_string())),
            ('"', _) => {
                let end = rest[1..].find('"').map_or(rest.len(), |i| i + 2);
                toks.extend(
                    rest[1..end.min(rest.len())]
                        .trim_end_matches('"')
                        .chars()
                        .map(Tok::Literal),
                );
                rest = &rest[end.min(rest.len())..];
                continue;
            }
            (c, _) => (Tok::Literal(c), c.len_utf8()),
        };
        match tok {
            Tok::Point if point => return Err(Error::Syntax("multiple decimal points".into())),
            Tok::Point => point = true,
            Tok::Digit(zero) if !point => {
                if zero && first_zero == usize::MAX {
                    first_zero = pre;
                }
                pre += 1;
            }
            Tok::Digit(_) => post += 1,
            _ => {}
        }
        toks.push(tok);
        rest = &rest[len..];
    }
    Ok(Pattern {
        toks,
        fm,
        pre,
        post,
        first_zero,
    })
}

fn unsupported(what: &str) -> Error {
    Error::NotSupported(format!(
        "the to_char number pattern \"{what}\" is not supported yet"
    ))
}

/// The digits of `v` rounded to `post` decimals: integer digits (none for zero), fraction
/// digits, and whether the rounded value is negative.
fn digits(v: &Value, post: usize) -> Result<(String, String, bool)> {
    let text = match v {
        Value::Int(i) => i.to_string(),
        Value::Numeric(d) => {
            let dp = u32::try_from(post).unwrap_or(u32::MAX).min(28);
            let r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
            if r.is_zero() {
                Decimal::ZERO.to_string()
            } else {
                r.to_string()
            }
        }
        // Doubles round as C's printf does (half to even on the exact binary value).
        Value::Float(x) => format!("{x:.post$}"),
        Value::Float4(x) => format!("{:.post$}", f64::from(*x)),
        v => return Err(Error::Internal(format!("to_char of {v:?}"))),
    };
    let (neg, abs) = match text.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, text.as_str()),
    };
    let (int, frac) = abs.split_once('.').unwrap_or((abs, ""));
    let int = int.trim_start_matches('0').to_string();
    let mut frac: String = frac.chars().take(post).collect();
    while frac.len() < post {
        frac.push('0');
    }
    let zero = int.is_empty() && frac.bytes().all(|b| b == b'0');
    Ok((int, frac, neg && !zero))
}

/// Formats a number with `pattern`.
pub(crate) fn format(v: &Value, pattern: &str) -> Result<String> {
    let p = parse(pattern)?;
    let (int, frac, neg) = digits(v, p.post)?;
    let overflow = int.len() > p.pre;
    let slot = !p
        .toks
        .iter()
        .any(|t| matches!(t, Tok::Sign | Tok::Minus | Tok::SignAlways));
    // The fraction positions FM leaves out: trailing zeros at `9`.
    let frac_kinds: Vec<bool> = p
        .toks
        .iter()
        .skip_while(|t| **t != Tok::Point)
        .filter_map(|t| match t {
            Tok::Digit(z) => Some(*z),
            _ => None,
        })
        .collect();
    let mut keep_frac = frac.len();
    if p.fm {
        while keep_frac > 0 && frac.as_bytes()[keep_frac - 1] == b'0' && !frac_kinds[keep_frac - 1]
        {
            keep_frac -= 1;
        }
    }
    // A zero integer part prints its last position as 0 when nothing else would show.
    let zero_digit = int.is_empty() && (p.post == 0 || (p.fm && keep_frac == 0));
    let lead = p.pre - int.len().min(p.pre);
    let sign_char = |plus: char| if neg { '-' } else { plus };
    let mut out = String::new();
    // The number's leading blanks, and whether its first character has been written.
    let mut blanks = 0usize;
    let mut started = false;
    let mut pending_sign: Option<char> = slot.then(|| sign_char(' '));
    let (mut i_pos, mut f_pos, mut in_frac) = (0usize, 0usize, false);
    let flush = |out: &mut String, blanks: &mut usize, pending: &mut Option<char>| {
        if !p.fm {
            out.extend(std::iter::repeat_n(' ', *blanks));
        }
        *blanks = 0;
        if let Some(s) = pending.take()
            && !(p.fm && s == ' ')
        {
            out.push(s);
        }
    };
    for (t_at, t) in p.toks.iter().enumerate() {
        match t {
            Tok::Digit(_) if !in_frac => {
                let at = i_pos;
                i_pos += 1;
                let ch = if overflow {
                    Some('#')
                } else if at >= lead {
                    int.chars().nth(at - lead)
                } else if at >= p.first_zero || (zero_digit && at + 1 == p.pre) {
                    Some('0')
                } else {
                    None
                };
                match ch {
                    Some(c) => {
                        flush(&mut out, &mut blanks, &mut pending_sign);
                        started = true;
                        out.push(c);
                    }
                    None => blanks += 1,
                }
            }
            Tok::Digit(_) => {
                let at = f_pos;
                f_pos += 1;
                if overflow {
                    out.push('#');
                } else if at < keep_frac {
                    out.push(frac.as_bytes()[at] as char);
                }
            }
            Tok::Point => {
                in_frac = true;
                flush(&mut out, &mut blanks, &mut pending_sign);
                started = true;
                if p.post > 0 {
                    out.push('.');
                }
            }
            Tok::Group if started => out.push(','),
            Tok::Group => blanks += 1,
            Tok::Sign => {
                let next_is_number = p.toks[t_at + 1..]
                    .iter()
                    .any(|t| matches!(t, Tok::Digit(_) | Tok::Point));
                if next_is_number && !started {
                    pending_sign = Some(sign_char('+'));
                } else {
                    out.push(sign_char('+'));
                }
            }
            Tok::Minus => out.push(if neg {
                '-'
            } else if p.fm {
                continue;
            } else {
                ' '
            }),
            Tok::Plus => out.push(if neg { ' ' } else { '+' }),
            Tok::SignAlways => out.push(sign_char('+')),
            Tok::Literal(c) => {
                if !started && (blanks > 0 || pending_sign.is_some()) && i_pos > 0 {
                    flush(&mut out, &mut blanks, &mut pending_sign);
                }
                out.push(*c);
            }
        }
    }
    flush(&mut out, &mut blanks, &mut pending_sign);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Value {
        Value::Numeric(s.parse().unwrap())
    }

    /// Expected strings are PostgreSQL 15's.
    #[test]
    fn patterns() {
        let cases = [
            (n("0"), "999", "   0"),
            (n("0"), "999.99", "    .00"),
            (n("0.5"), "999", "   1"),
            (n("-0.5"), "9.99", " -.50"),
            (n("0"), "FM999", "0"),
            (n("0"), "FM9.99", "0."),
            (n("0"), "0.00", " 0.00"),
            (n("12.5"), "FM99.99", "12.5"),
            (n("12"), "FM99.99", "12."),
            (n("12.30"), "FM00.00", "12.30"),
            (n("5"), "9909", "   05"),
            (n("1234567"), "9,999", " #,###"),
            (n("123"), "9,999", "   123"),
            (n("-123"), "FM9,999", "-123"),
            (n("1234"), "S9,999", "+1,234"),
            (n("-12"), "S999", " -12"),
            (n("-12"), "999S", " 12-"),
            (n("12"), "999S", " 12+"),
            (n("-12"), "MI999", "- 12"),
            (n("-12"), "999MI", " 12-"),
            (n("-12"), "FM999MI", "12-"),
            (n("12"), "FMS999", "+12"),
            (n("-12.5"), "S00.0", "-12.5"),
            (n("12345"), "99", " ##"),
            (n("12.345"), "99.9", " 12.3"),
            (n("-12345"), "99.9", "-##.#"),
            (Value::Float(2.5), "9", " 2"),
            (Value::Float(0.125), "9.99", "  .12"),
            (Value::Int(123), "99999", "   123"),
            (n("12"), "999D99", "  12.00"),
            (n("1234.5"), "9G999D9", " 1,234.5"),
            (n("12"), "PL999", "+  12"),
            (n("-12"), "PL999", "  -12"),
            (n("-12"), "SG999", "- 12"),
            (n("12"), "xx999yy", "xx  12yy"),
            (n("12"), "999.", "  12"),
            (n("12"), "FM999.", "12"),
            (n("-0.0001"), "9.99", "  .00"),
            (n("12"), "\"n=\"99", "n= 12"),
        ];
        for (v, p, want) in cases {
            assert_eq!(format(&v, p).unwrap(), want, "{v:?} {p}");
        }
        assert!(matches!(format(&n("1"), "9.9.9"), Err(Error::Syntax(_))));
        assert!(matches!(format(&n("1"), "RN"), Err(Error::NotSupported(_))));
    }
}
