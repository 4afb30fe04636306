//! INTERVAL: months, days and microseconds kept apart, as PostgreSQL does, read in its
//! `postgres` input style and printed in its default `IntervalStyle = postgres`.
//!
//! Comparisons and key encodings use the interval's span with 30-day months and 24-hour
//! days (PostgreSQL's `interval_cmp_value`), so `'1 day'` equals `'24 hours'`.

use chrono::{Months, NaiveDate};

use super::datetime::USECS_PER_DAY;
use crate::{Error, Result, Value};

/// An interval value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// The span PostgreSQL compares by: months as 30 days, days as 24 hours.
    pub fn span(&self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * i128::from(USECS_PER_DAY)
            + i128::from(self.micros)
    }

    /// The interval of a span (the form a key decodes to): whole days and the rest.
    pub fn from_span(span: i128) -> Option<Interval> {
        let day = i128::from(USECS_PER_DAY);
        Some(Interval {
            months: 0,
            days: i32::try_from(span / day).ok()?,
            micros: i64::try_from(span % day).ok()?,
        })
    }

    fn checked(months: i64, days: i64, micros: Option<i64>) -> Result<Interval> {
        Ok(Interval {
            months: i32::try_from(months).map_err(|_| out_of_range())?,
            days: i32::try_from(days).map_err(|_| out_of_range())?,
            micros: micros.ok_or_else(out_of_range)?,
        })
    }

    /// Field-wise sum (`interval + interval`).
    pub(crate) fn add(self, o: Interval) -> Result<Interval> {
        Self::checked(
            i64::from(self.months) + i64::from(o.months),
            i64::from(self.days) + i64::from(o.days),
            self.micros.checked_add(o.micros),
        )
    }

    /// Multiplies by a number as `interval_mul` does: each field, with the fraction of
    /// months spilling into days (30 per month) and of days into time, each rounded to
    /// microseconds on the way.
    pub(crate) fn mul(self, f: f64) -> Result<Interval> {
        let ts_round = |x: f64| (x * 1e6).round_ties_even() / 1e6;
        let months = (f64::from(self.months) * f).trunc();
        let month_days = ts_round((f64::from(self.months) * f - months) * 30.0);
        let mut days = (f64::from(self.days) * f).trunc();
        let mut secs =
            ts_round((f64::from(self.days) * f - days + month_days - month_days.trunc()) * 86400.0);
        if secs.abs() >= 86400.0 {
            let whole = (secs / 86400.0).trunc();
            days += whole;
            secs -= whole * 86400.0;
        }
        days += month_days.trunc();
        let micros = (self.micros as f64 * f + secs * 1e6).round_ties_even();
        let fits = |x: f64, max: f64| x.is_finite() && x.abs() < max;
        if !fits(months, 2.1e9) || !fits(days, 2.1e9) || !fits(micros, 9.2e18) {
            return Err(out_of_range());
        }
        Self::checked(months as i64, days as i64, Some(micros as i64))
    }

    /// The negation.
    pub(crate) fn neg(self) -> Result<Interval> {
        Self::checked(
            -i64::from(self.months),
            -i64::from(self.days),
            self.micros.checked_neg(),
        )
    }
}

fn out_of_range() -> Error {
    Error::DatetimeOverflow("interval out of range".into())
}

/// Microseconds per unit for the units below a day; months per unit above it.
enum Unit {
    Micros(i64),
    Days(i64),
    Months(i64),
}

fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => Unit::Micros(1),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => Unit::Micros(1_000),
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(1_000_000),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(60_000_000),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(3_600_000_000),
        "day" | "days" | "d" => Unit::Days(1),
        "week" | "weeks" | "w" => Unit::Days(7),
        "month" | "months" | "mon" | "mons" => Unit::Months(1),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12),
        "decade" | "decades" => Unit::Months(120),
        "century" | "centuries" => Unit::Months(1200),
        "millennium" | "millennia" => Unit::Months(12000),
        _ => return None,
    })
}

/// Accumulates interval fields in wide integers while parsing.
#[derive(Default)]
struct Fields {
    months: i64,
    days: i64,
    micros: f64,
}

impl Fields {
    /// Adds `n` units; fractions spill down (a month is 30 days, a day 24 hours). Sums
    /// saturate: a field beyond its range is reported when the interval is built.
    fn add(&mut self, n: f64, u: Unit) {
        let (whole, frac) = (n.trunc(), n.fract());
        match u {
            Unit::Micros(m) => self.micros += n * m as f64,
            Unit::Days(d) => {
                self.days = self.days.saturating_add((whole as i64).saturating_mul(d));
                self.micros += frac * (d * USECS_PER_DAY) as f64;
            }
            Unit::Months(m) => {
                let months = n * m as f64;
                self.months = self.months.saturating_add(months.trunc() as i64);
                let days = months.fract() * 30.0;
                self.days = self.days.saturating_add(days.trunc() as i64);
                self.micros += days.fract() * USECS_PER_DAY as f64;
            }
        }
    }
}

/// Parses `HH:MM[:SS[.f]]` (or `MM:SS.f` never; PostgreSQL reads two fields as hours and
/// minutes) into signed microseconds.
fn parse_clock(s: &str) -> Option<f64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let whole = |p: &str| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<f64>().ok())
            .flatten()
    };
    let h = whole(parts[0])?;
    let m = whole(parts[1])?;
    let sec = match parts.get(2) {
        Some(p) => {
            let ok = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            ok.then(|| p.parse::<f64>().ok()).flatten()?
        }
        None => 0.0,
    };
    if m >= 60.0 || sec >= 60.0 {
        return None;
    }
    let micros = ((h * 60.0 + m) * 60.0 + sec) * 1e6;
    Some(if neg { -micros } else { micros })
}

/// Parses interval text input in the `postgres` style: `[@] {number unit | [±]HH:MM[:SS]}…
/// [ago]`; a bare number is seconds. ISO 8601 (`P1D`) and SQL-standard forms are 22007.
pub(crate) fn parse(s: &str) -> Result<Interval> {
    let invalid =
        || Error::InvalidDatetime(format!("invalid input syntax for type interval: \"{s}\""));
    let lower = s.trim().to_ascii_lowercase();
    let mut words: Vec<&str> = lower.split_whitespace().collect();
    if words.first() == Some(&"@") {
        words.remove(0);
    }
    let ago = words.last() == Some(&"ago");
    if ago {
        words.pop();
    }
    if words.is_empty() {
        return Err(invalid());
    }
    let mut f = Fields::default();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.contains(':') {
            f.micros += parse_clock(w).ok_or_else(invalid)?;
            i += 1;
            continue;
        }
        // A number, with its unit attached ("3days") or as the next word.
        let split = w
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+')))
            .unwrap_or(w.len());
        let (num, attached) = w.split_at(split);
        let n: f64 = num.parse().map_err(|_| invalid())?;
        let (u, used) = if !attached.is_empty() {
            (unit(attached), 1)
        } else if let Some(next) = words.get(i + 1).and_then(|n| unit(n)) {
            (Some(next), 2)
        } else if i + 1 == words.len() {
            (Some(Unit::Micros(1_000_000)), 1)
        } else {
            (None, 1)
        };
        f.add(n, u.ok_or_else(invalid)?);
        i += used;
    }
    let micros = f.micros.round();
    if !micros.is_finite() || micros.abs() >= 9.2e18 {
        return Err(out_of_range());
    }
    let v = Interval::checked(f.months, f.days, Some(micros as i64))?;
    if ago { v.neg() } else { Ok(v) }
}

/// The output of `IntervalStyle = postgres` (PostgreSQL's `EncodeInterval`).
pub(crate) fn format(v: &Interval) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut String, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let sep = if is_zero { "" } else { " " };
        let plus = if is_before && value > 0 { "+" } else { "" };
        let plural = if value != 1 { "s" } else { "" };
        out.push_str(&format!("{sep}{plus}{value} {unit}{plural}"));
        is_before = value < 0;
        is_zero = false;
    };
    part(&mut out, i64::from(v.months / 12), "year");
    part(&mut out, i64::from(v.months % 12), "mon");
    part(&mut out, i64::from(v.days), "day");
    let t = v.micros;
    if is_zero || t != 0 {
        let minus = t < 0;
        let a = t.unsigned_abs();
        let sep = if is_zero { "" } else { " " };
        let sign = if minus {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        };
        let secs = a / 1_000_000;
        out.push_str(&format!(
            "{sep}{sign}{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
        let frac = a % 1_000_000;
        if frac != 0 {
            out.push_str(format!(".{frac:06}").trim_end_matches('0'));
        }
    }
    out
}

/// `timestamp + interval`: months by the calendar (clamped to the month's last day), then
/// days, then the time.
pub(crate) fn add_to_timestamp(micros: i64, v: &Interval) -> Result<i64> {
    let overflow = || Error::DatetimeOverflow("timestamp out of range".into());
    let mut t = micros;
    if v.months != 0 {
        let day = micros.div_euclid(USECS_PER_DAY);
        let time = micros.rem_euclid(USECS_PER_DAY);
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
        let date = epoch
            .checked_add_signed(chrono::TimeDelta::try_days(day).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let m = Months::new(v.months.unsigned_abs());
        let moved = if v.months > 0 {
            date.checked_add_months(m)
        } else {
            date.checked_sub_months(m)
        }
        .ok_or_else(overflow)?;
        t = (moved - epoch).num_days() * USECS_PER_DAY + time;
    }
    i64::from(v.days)
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| t.checked_add(d))
        .and_then(|t| t.checked_add(v.micros))
        .ok_or_else(overflow)
}

/// `timestamp - timestamp` over instants that may be dates (as [`between`]).
pub(crate) fn between_wide(a: i128, b: i128) -> Result<Value> {
    let d = i64::try_from(a - b).map_err(|_| out_of_range())?;
    between(d, 0)
}

/// `timestamp - timestamp`: the difference in microseconds with whole 24-hour spans as days
/// (PostgreSQL's `interval_justify_hours` of the result).
pub(crate) fn between(a: i64, b: i64) -> Result<Value> {
    let d = a.checked_sub(b).ok_or_else(out_of_range)?;
    let days = i32::try_from(d / USECS_PER_DAY).map_err(|_| out_of_range())?;
    Ok(Value::Interval(Interval {
        months: 0,
        days,
        micros: d % USECS_PER_DAY,
    }))
}

/// PostgreSQL's binary send format: microseconds (i64), days (i32), months (i32).
pub fn to_binary(v: &Interval) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&v.micros.to_be_bytes());
    out.extend_from_slice(&v.days.to_be_bytes());
    out.extend_from_slice(&v.months.to_be_bytes());
    out
}

/// Decodes the binary format; None unless it is 16 bytes.
pub fn from_binary(b: &[u8]) -> Option<Interval> {
    let micros = i64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let days = i32::from_be_bytes(b.get(8..12)?.try_into().ok()?);
    let months = i32::from_be_bytes(b.get(12..16)?.try_into().ok()?);
    (b.len() == 16).then_some(Interval {
        months,
        days,
        micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        format(&parse(s).unwrap())
    }

    /// Expected outputs are PostgreSQL 15's.
    #[test]
    fn input_and_output() {
        let cases = [
            (
                "1 year 2 months 3 days 04:05:06.5",
                "1 year 2 mons 3 days 04:05:06.5",
            ),
            ("-1 days 2 hours", "-1 days +02:00:00"),
            ("1 day -2 hours", "1 day -02:00:00"),
            ("-1 year -2 mons", "-1 years -2 mons"),
            ("0", "00:00:00"),
            ("1.5 days", "1 day 12:00:00"),
            ("@ 3 days ago", "-3 days"),
            ("90 minutes", "01:30:00"),
            ("1 mon -1 day", "1 mon -1 days"),
            ("-00:00:01", "-00:00:01"),
            ("1 week", "7 days"),
            ("2 hours 3 minutes", "02:03:00"),
            ("1.5 years", "1 year 6 mons"),
            ("25 hours", "25:00:00"),
            ("1", "00:00:01"),
            ("1:30", "01:30:00"),
            ("-1 day -00:00:01", "-1 days -00:00:01"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        for bad in ["", "abc", "1 2", "1 fortnight", "P1D"] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidDatetime(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("1 day").unwrap().span(),
            parse("24 hours").unwrap().span()
        );
    }

    /// Expected products are PostgreSQL 15's.
    #[test]
    fn multiplication() {
        let mul = |s: &str, f: f64| format(&parse(s).unwrap().mul(f).unwrap());
        assert_eq!(mul("1 year", 0.3), "3 mons 18 days");
        assert_eq!(mul("1 mon", 1.5), "1 mon 15 days");
        assert_eq!(mul("3 days", 0.5), "1 day 12:00:00");
        assert_eq!(mul("1 hour", -1.5), "-01:30:00");
        assert!(parse("1 day").unwrap().mul(f64::INFINITY).is_err());
    }

    #[test]
    fn extremes_are_errors() {
        for s in [
            "1e300 days",
            "99999999999 years",
            "1e300",
            "-1e300 mons",
            "nan days",
        ] {
            assert!(parse(s).is_err(), "{s}");
        }
        let huge = Interval {
            months: 0,
            days: i32::MAX,
            micros: i64::MAX,
        };
        assert!(add_to_timestamp(0, &huge).is_err());
        assert!(huge.add(huge).is_err());
        let months = Interval {
            months: i32::MAX,
            days: 0,
            micros: 0,
        };
        assert!(add_to_timestamp(0, &months).is_err());
    }

    #[test]
    fn timestamp_arithmetic() {
        let ts = |s: &str| match crate::types::datetime::parse(s, crate::DataType::Timestamp) {
            Ok(Value::Timestamp(t)) => t,
            other => panic!("{other:?}"),
        };
        let month = parse("1 month").unwrap();
        assert_eq!(
            add_to_timestamp(ts("2024-01-31 10:00"), &month).unwrap(),
            ts("2024-02-29 10:00")
        );
        assert_eq!(
            add_to_timestamp(ts("2024-03-01"), &parse("1 day").unwrap().neg().unwrap()).unwrap(),
            ts("2024-02-29")
        );
        assert_eq!(
            between(ts("2024-01-03"), ts("2024-01-01 12:00")).map(|v| v.to_string()),
            Ok("1 day 12:00:00".into())
        );
    }
}
