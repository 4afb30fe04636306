//! `AS OF SYSTEM TIME` (CockroachDB syntax): a SELECT that reads a consistent snapshot at a past
//! timestamp, in a read-only transaction of its own.
//!
//! sqlparser does not know the clause, so [`strip`] removes it from a statement's tokens before
//! the statement is parsed, and records its value. The value is a negative interval relative to
//! the statement's start (`'-10s'`, `'-1m'`, `'-500ms'`, `'-1h30m'`), a TSO timestamp (an integer,
//! `physical_ms << 18 | logical`), or an RFC 3339 time (`'2026-01-02T03:04:05Z'`).

use std::time::Duration;

use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::{Error, Result};

/// When an `AS OF SYSTEM TIME` statement reads.
#[derive(Clone, Debug, PartialEq)]
pub enum AsOf {
    /// This long before the statement starts.
    Ago(Duration),
    /// A TSO timestamp.
    Timestamp(txn::Timestamp),
    /// Milliseconds since the Unix epoch.
    UnixMs(u64),
}

impl AsOf {
    /// The TSO timestamp to read at, given the oracle's current timestamp.
    pub(crate) fn resolve(&self, now: txn::Timestamp) -> txn::Timestamp {
        use txn::oracle::{compose, physical};
        match self {
            AsOf::Ago(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                compose(physical(now).saturating_sub(ms), 0)
            }
            AsOf::Timestamp(ts) => *ts,
            AsOf::UnixMs(ms) => compose(*ms, 0),
        }
    }
}

fn invalid(text: &str) -> Error {
    Error::InvalidParameter(format!(
        "AS OF SYSTEM TIME: \"{text}\" is neither a negative interval, a TSO timestamp nor an \
         RFC 3339 time"
    ))
}

/// Parses the clause's value.
pub(crate) fn parse(text: &str) -> Result<AsOf> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('-') {
        return parse_interval(rest.trim())
            .map(AsOf::Ago)
            .ok_or_else(|| invalid(text));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A TSO timestamp is an integer; a decimal form is accepted with a zero fraction.
        let (integer, frac) = t.split_once('.').unwrap_or((t, ""));
        if !frac.bytes().all(|b| b == b'0') {
            return Err(invalid(text));
        }
        return integer
            .parse()
            .map(AsOf::Timestamp)
            .map_err(|_| invalid(text));
    }
    parse_rfc3339(t)
        .map(AsOf::UnixMs)
        .ok_or_else(|| invalid(text))
}

/// `10s`, `500ms`, `1h30m`, `2m 5s`: numbers with units h, m, s, ms, us.
fn parse_interval(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let n: f64 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let secs = match &after[..unit_len] {
            "h" => 3600.0,
            "m" | "min" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" => 1e-6,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(n * secs).ok()?;
        rest = after[unit_len..].trim_start();
    }
    Some(total)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM]` (no offset: UTC) as Unix milliseconds.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let digits = format!("{:0<3}", &frac[..n.min(3)]);
        ms = digits.parse().ok()?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Removes `AS OF SYSTEM TIME <value>` from one statement's tokens; returns its value.
pub(crate) fn strip(tokens: &mut Vec<TokenWithSpan>) -> Result<Option<AsOf>> {
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let is_word = |i: usize, w: &str| matches!(&tokens[i].token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let Some(at) = words.windows(5).position(|w| {
        is_word(w[0], "as")
            && is_word(w[1], "of")
            && is_word(w[2], "system")
            && is_word(w[3], "time")
    }) else {
        return Ok(None);
    };
    let (first, value) = (words[at], words[at + 4]);
    let as_of = match &tokens[value].token {
        Token::SingleQuotedString(s) | Token::Number(s, _) => parse(s)?,
        other => return Err(invalid(&other.to_string())),
    };
    tokens.drain(first..=value);
    Ok(Some(as_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let ago = |ms| Ok(AsOf::Ago(Duration::from_millis(ms)));
        assert_eq!(parse("-10s"), ago(10_000));
        assert_eq!(parse("-1m"), ago(60_000));
        assert_eq!(parse("-500ms"), ago(500));
        assert_eq!(parse("-1h30m"), ago(5_400_000));
        assert_eq!(parse("123456"), Ok(AsOf::Timestamp(123_456)));
        assert_eq!(parse("123456.000"), Ok(AsOf::Timestamp(123_456)));
        assert_eq!(
            parse("2024-03-01T00:00:01.5Z"),
            Ok(AsOf::UnixMs(1_709_251_201_500))
        );
        assert_eq!(
            parse("2024-03-01 02:00:01+02:00"),
            Ok(AsOf::UnixMs(1_709_251_201_000))
        );
        for bad in [
            "10s",
            "-",
            "-10 parsecs",
            "1.5",
            "2024-13-01T00:00:00Z",
            "yesterday",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidParameter(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolves_against_the_oracle() {
        use txn::oracle::compose;
        let now = compose(10_000, 7);
        assert_eq!(
            AsOf::Ago(Duration::from_secs(2)).resolve(now),
            compose(8_000, 0)
        );
        assert_eq!(AsOf::Timestamp(5).resolve(now), 5);
        assert_eq!(AsOf::UnixMs(9_000).resolve(now), compose(9_000, 0));
    }
}
