//! `to_date(text, pattern)` and `to_timestamp(text, pattern)`: text read by the template
//! keywords of `to_char` (PostgreSQL's non-FX mode), and `to_timestamp(double precision)`
//! (seconds since the Unix epoch).
//!
//! Before each field, spaces in the input are skipped. A number reads as many digits as
//! there are (when `FM` is given or no keyword follows directly) or at most the field's
//! width; `YY`, `YYY` and `Y` take the nearest century to 2020. Month and day names match
//! case-insensitively. A separator in the pattern matches one separator (any character but
//! a letter or digit) in the input, after spaces, or nothing; another pattern character
//! skips one input character; quoted text skips its length. Input left after the pattern is
//! ignored. Missing fields are January 1 of 1 BC at midnight, as in PostgreSQL. Keywords
//! read here: the year, month, day, hour, minute, second and fraction fields, meridiem,
//! eras, and names of days (checked, then ignored); others are 0A000.

use chrono::NaiveDate;

use super::to_char::{DAYS, Kw, MONTHS, keyword};
use crate::types::datetime::{self, USECS_PER_DAY};
use crate::{Error, Result, Value};

/// Seconds from the Unix epoch to PostgreSQL's.
const UNIX_TO_PG_EPOCH_SECS: f64 = 946_684_800.0;

/// `to_timestamp(seconds)`: the instant that many seconds after 1970-01-01 UTC.
pub(crate) fn from_unix(secs: f64) -> Result<Value> {
    if secs.is_nan() {
        return Err(Error::DatetimeOverflow("timestamp cannot be NaN".into()));
    }
    let micros = ((secs - UNIX_TO_PG_EPOCH_SECS) * 1e6).round_ties_even();
    let out = || {
        Error::DatetimeOverflow(format!(
            "timestamp out of range: \"{}\"",
            Value::Float(secs)
        ))
    };
    if !micros.is_finite() || micros.abs() >= 9.2e18 {
        return Err(out());
    }
    let micros = micros as i64;
    datetime::date_of(micros.div_euclid(USECS_PER_DAY)).ok_or_else(out)?;
    Ok(Value::Timestamptz(micros))
}

/// The fields read so far.
#[derive(Default)]
struct Parsed {
    year: Option<i64>,
    bc: bool,
    month: Option<i64>,
    day: Option<i64>,
    hour: i64,
    hour12: bool,
    pm: Option<bool>,
    min: i64,
    sec: i64,
    usec: i64,
}

struct Reader<'a> {
    rest: &'a str,
}

impl<'a> Reader<'a> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(' ');
    }

    fn invalid(&self, chunk: &str, word: &str) -> Error {
        Error::InvalidDatetime(format!("invalid value \"{chunk}\" for \"{word}\""))
    }

    /// Up to `width` digits (all of them when `width` is None), with an optional sign.
    fn number(&mut self, width: Option<usize>, word: &str) -> Result<i64> {
        self.skip_spaces();
        let (neg, body) = match self.rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, self.rest.strip_prefix('+').unwrap_or(self.rest)),
        };
        let all = body.bytes().take_while(u8::is_ascii_digit).count();
        let n = width.map_or(all, |w| w.min(all));
        if n == 0 {
            let chunk: String = self.rest.chars().take(width.unwrap_or(4).max(1)).collect();
            return Err(self.invalid(&chunk, word));
        }
        let v: i64 = body[..n]
            .parse()
            .map_err(|_| self.invalid(&body[..n], word))?;
        self.rest = &body[n..];
        Ok(if neg { -v } else { v })
    }

    /// The index of the first of `names` the input starts with (case-insensitively),
    /// comparing `len` characters of each (all of them when None).
    fn name(&mut self, names: &[&str], len: Option<usize>, word: &str) -> Result<usize> {
        self.skip_spaces();
        for (i, n) in names.iter().enumerate() {
            let n: String = n.chars().take(len.unwrap_or(usize::MAX)).collect();
            if let Some(head) = self.rest.get(..n.len())
                && head.eq_ignore_ascii_case(&n)
            {
                self.rest = &self.rest[n.len()..];
                return Ok(i);
            }
        }
        Err(self.invalid(self.rest, word))
    }
}

/// Parses `input` by `pattern` into a date and the microseconds into its day.
fn parse(input: &str, pattern: &str) -> Result<(NaiveDate, i64)> {
    let mut r = Reader { rest: input };
    let mut p = Parsed::default();
    let mut pat = pattern;
    while !pat.is_empty() && !r.rest.is_empty() {
        if let Some(q) = pat.strip_prefix('"') {
            let text: String = q.chars().take_while(|c| *c != '"').collect();
            pat = q.get(text.len() + 1..).unwrap_or("");
            for _ in text.chars() {
                let mut c = r.rest.chars();
                c.next();
                r.rest = c.as_str();
            }
            continue;
        }
        let mut fm = false;
        while let Some(rest) = pat.strip_prefix("FM").or_else(|| pat.strip_prefix("fm")) {
            fm = true;
            pat = rest;
        }
        let Some((word, kw)) = keyword(pat) else {
            let Some(c) = pat.chars().next() else { break };
            pat = &pat[c.len_utf8()..];
            if c.is_alphanumeric() {
                let mut chars = r.rest.chars();
                chars.next();
                r.rest = chars.as_str();
            } else {
                r.skip_spaces();
                if let Some(n) = r.rest.chars().next()
                    && !n.is_alphanumeric()
                    && c != ' '
                {
                    r.rest = &r.rest[n.len_utf8()..];
                }
            }
            continue;
        };
        pat = &pat[word.len()..];
        // A number reads every digit there is unless another keyword follows at once.
        let greedy = fm || keyword(pat).is_none();
        let width = |w: usize| if greedy { None } else { Some(w) };
        read_field(&mut r, &mut p, kw, word, &width)?;
    }
    finish(input, p)
}

fn read_field(
    r: &mut Reader,
    p: &mut Parsed,
    kw: Kw,
    word: &str,
    width: &dyn Fn(usize) -> Option<usize>,
) -> Result<()> {
    match kw {
        Kw::Year(n) => {
            let before = r.rest.trim_start_matches(' ').len();
            let y = r.number(width(usize::from(n)), word)?;
            let read = before - r.rest.len();
            // A year of fewer than four digits is the nearest to 2020.
            p.year = Some(match y {
                y if n == 4 || read > 3 => y,
                y if y < 70 => y.saturating_add(2000),
                y if y < 100 => y + 1900,
                y if y < 520 => y + 2000,
                y if y < 1000 => y + 1000,
                y => y,
            });
        }
        Kw::YearComma => {
            let thousands = r.number(None, word)?;
            r.rest = r.rest.strip_prefix(',').unwrap_or(r.rest);
            let rest = r.number(Some(3), word)?;
            p.year = Some(thousands.saturating_mul(1000).saturating_add(rest));
        }
        Kw::Month => p.month = Some(r.number(width(2), word)?),
        Kw::MonthName(_) => p.month = Some(r.name(&MONTHS, None, word)? as i64 + 1),
        Kw::MonthAbbrev(_) => p.month = Some(r.name(&MONTHS, Some(3), word)? as i64 + 1),
        Kw::DayName(_) => {
            r.name(&DAYS, None, word)?;
        }
        Kw::DayAbbrev(_) => {
            r.name(&DAYS, Some(3), word)?;
        }
        Kw::Dow => {
            r.number(width(1), word)?;
        }
        Kw::Day => p.day = Some(r.number(width(2), word)?),
        Kw::Hour12 => {
            p.hour = r.number(width(2), word)?;
            p.hour12 = true;
        }
        Kw::Hour24 => p.hour = r.number(width(2), word)?,
        Kw::Minute => p.min = r.number(width(2), word)?,
        Kw::Second => p.sec = r.number(width(2), word)?,
        Kw::Millis | Kw::Micros | Kw::Fraction(_) => {
            let w = match kw {
                Kw::Millis => 3,
                Kw::Micros => 6,
                Kw::Fraction(n) => usize::from(n),
                _ => 6,
            };
            let before = r.rest.trim_start_matches(' ').len();
            let v = r.number(width(w), word)?;
            let digits = u32::try_from(before - r.rest.len()).unwrap_or(6).min(6);
            // "5" read by MS is 500 ms, as PostgreSQL scales a short fraction.
            let scaled = v.saturating_mul(10i64.pow(6 - digits));
            p.usec = if kw == Kw::Millis && digits <= 3 {
                v * 10i64.pow(3 - digits) * 1000
            } else {
                scaled
            };
        }
        Kw::Meridiem(..) => {
            let i = r.name(&["am", "pm", "a.m.", "p.m."], None, word)?;
            p.pm = Some(i % 2 == 1);
        }
        Kw::Era(..) => {
            let i = r.name(&["ad", "bc", "a.d.", "b.c."], None, word)?;
            p.bc = i % 2 == 1;
        }
        Kw::Fx => {}
        _ => {
            return Err(Error::NotSupported(format!(
                "the pattern \"{word}\" is not supported by to_date and to_timestamp yet"
            )));
        }
    }
    Ok(())
}

/// Builds the date and time; 22008 when a field is out of its range.
fn finish(input: &str, p: Parsed) -> Result<(NaiveDate, i64)> {
    let overflow =
        || Error::DatetimeOverflow(format!("date/time field value out of range: \"{input}\""));
    let mut hour = p.hour;
    if p.hour12 || p.pm.is_some() {
        if !(1..=12).contains(&hour) {
            return Err(Error::DatetimeOverflow(format!(
                "hour \"{hour}\" is invalid for the 12-hour clock"
            )));
        }
        hour = match (p.pm == Some(true), hour) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
    }
    // Year 0 is 1 BC; a BC year n is astronomical year 1 - n.
    let year = match (p.year, p.bc) {
        (None, _) => 0,
        (Some(y), true) => 1i64.saturating_sub(y),
        (Some(y), false) => y,
    };
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| {
            NaiveDate::from_ymd_opt(
                y,
                u32::try_from(p.month.unwrap_or(1)).ok()?,
                u32::try_from(p.day.unwrap_or(1)).ok()?,
            )
        })
        .ok_or_else(overflow)?;
    let time_ok = (0..24).contains(&hour)
        && (0..60).contains(&p.min)
        && (0..60).contains(&p.sec)
        && (0..1_000_000).contains(&p.usec);
    if !time_ok {
        return Err(overflow());
    }
    let micros = ((hour * 60 + p.min) * 60 + p.sec) * 1_000_000 + p.usec;
    Ok((date, micros))
}

/// `to_date(text, pattern)`.
pub(crate) fn to_date(input: &str, pattern: &str) -> Result<Value> {
    let (date, _) = parse(input, pattern)?;
    Ok(Value::Date(datetime::days_since_epoch(date)))
}

/// `to_timestamp(text, pattern)`: a timestamptz (the input is read in UTC).
pub(crate) fn to_timestamp(input: &str, pattern: &str) -> Result<Value> {
    let (date, micros) = parse(input, pattern)?;
    i64::from(datetime::days_since_epoch(date))
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(micros))
        .map(Value::Timestamptz)
        .ok_or_else(|| Error::DatetimeOverflow("timestamp out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values are PostgreSQL 15's.
    #[test]
    fn reads_as_postgresql() {
        let d = |s: &str, p: &str| to_date(s, p).unwrap().to_string();
        assert_eq!(d("2024-02-29", "YYYY-MM-DD"), "2024-02-29");
        assert_eq!(d("20240229", "YYYYMMDD"), "2024-02-29");
        assert_eq!(d("29 Feb 2024", "DD Mon YYYY"), "2024-02-29");
        assert_eq!(d("February 29, 2024", "Month DD, YYYY"), "2024-02-29");
        assert_eq!(d("2024/2/9", "YYYY-MM-DD"), "2024-02-09");
        assert_eq!(d("  2024 - 02 - 09", "YYYY-MM-DD"), "2024-02-09");
        assert_eq!(d("02-09", "MM-DD"), "0001-02-09 BC");
        assert_eq!(d("2024-01-01 extra", "YYYY-MM-DD"), "2024-01-01");
        let t = |s: &str, p: &str| to_timestamp(s, p).unwrap().to_string();
        assert_eq!(
            t("2024-02-29 13:14:15.5", "YYYY-MM-DD HH24:MI:SS.MS"),
            "2024-02-29 13:14:15.5+00"
        );
        assert_eq!(
            t("2024-02-29 01:14 PM", "YYYY-MM-DD HH12:MI AM"),
            "2024-02-29 13:14:00+00"
        );
        assert_eq!(
            t("2024-02-29 12:14 am", "YYYY-MM-DD HH:MI am"),
            "2024-02-29 00:14:00+00"
        );
        assert!(matches!(
            to_date("2023-02-29", "YYYY-MM-DD"),
            Err(Error::DatetimeOverflow(_))
        ));
        assert!(matches!(
            to_date("xx24-01-01", "YYYY-MM-DD"),
            Err(Error::InvalidDatetime(_))
        ));
        assert!(matches!(
            to_date("2024-Foo-01", "YYYY-Mon-DD"),
            Err(Error::InvalidDatetime(_))
        ));
        assert_eq!(
            from_unix(1709212455.5).unwrap().to_string(),
            "2024-02-29 13:14:15.5+00"
        );
        assert!(from_unix(f64::NAN).is_err());
        for (s, p) in [
            ("-9223372036854775808", "YY"),
            ("-9223372036854775808", "YYYY BC"),
            ("10:11:12.12345678901", "HH24:MI:SS.US"),
            ("99999999999999", "HH12"),
        ] {
            assert!(to_timestamp(s, p).is_err(), "{s} {p}");
        }
        assert!(from_unix(1e300).is_err());
    }
}
