//! DATE, TIME, TIMESTAMP and TIMESTAMPTZ: text input and output in PostgreSQL's ISO style,
//! with the session time zone fixed at UTC.
//!
//! Values count from PostgreSQL's epoch, 2000-01-01 00:00:00: a date in days, a time of day
//! in microseconds since midnight, a timestamp in microseconds (a timestamptz's instant, in
//! UTC). Those are also the binary wire formats. Input accepts `YYYY-MM-DD`, `HH:MM[:SS[.f]]`
//! and their combination with a space or `T`, optionally followed (for timestamptz) by `Z`,
//! `UTC` or a `±HH[:MM]` offset; a timestamp without time zone ignores an offset, as in
//! PostgreSQL. Other input styles (month names, `epoch`, `infinity`, BC) are 22007.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use crate::{DataType, Error, Result, Value};

/// Microseconds per day.
pub const USECS_PER_DAY: i64 = 86_400_000_000;

/// PostgreSQL's epoch.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("2000-01-01 is a valid date")
}

fn invalid(t: DataType, s: &str) -> Error {
    // Input errors name the types as their input functions do.
    let name = match t {
        DataType::Time => "time",
        DataType::Timestamp => "timestamp",
        t => t.name(),
    };
    Error::InvalidDatetime(format!("invalid input syntax for type {name}: \"{s}\""))
}

fn field_overflow(s: &str) -> Error {
    Error::DatetimeOverflow(format!("date/time field value out of range: \"{s}\""))
}

/// 22008 for a value outside the range a type holds here.
pub(crate) fn out_of_range(t: DataType) -> Error {
    let name = match t {
        DataType::Date => "date",
        _ => "timestamp",
    };
    Error::DatetimeOverflow(format!("{name} out of range"))
}

/// Splits `s` into numbers separated by `sep`, each all digits; None if it is not that shape.
fn numbers(s: &str, sep: char, max: usize) -> Option<Vec<u32>> {
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.is_empty() || parts.len() > max {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            let ok = !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| p.parse().ok()).flatten()
        })
        .collect()
}

fn parse_date_part(d: &str, t: DataType, s: &str) -> Result<NaiveDate> {
    let sep = if d.contains('/') { '/' } else { '-' };
    let n = numbers(d, sep, 3).filter(|n| n.len() == 3);
    let [y, m, day] = n.as_deref().ok_or_else(|| invalid(t, s))? else {
        return Err(invalid(t, s));
    };
    if d.split(sep).next().is_some_and(|y| y.len() < 3) {
        // Two-digit years and other orders are styles this parser does not read.
        return Err(invalid(t, s));
    }
    let y = i32::try_from(*y).map_err(|_| field_overflow(s))?;
    NaiveDate::from_ymd_opt(y, *m, *day).ok_or_else(|| field_overflow(s))
}

/// Parses `HH:MM[:SS[.ffffff]]` into microseconds since midnight.
fn parse_time_part(tm: &str, t: DataType, s: &str) -> Result<i64> {
    let (hms, frac) = match tm.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (tm, None),
    };
    let n = numbers(hms, ':', 3).filter(|n| n.len() >= 2);
    let n = n.ok_or_else(|| invalid(t, s))?;
    let (h, m, sec) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
    if frac.is_some() && n.len() < 3 {
        return Err(invalid(t, s));
    }
    let micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Round to microseconds on the seventh digit.
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(7).collect();
            let n: i64 = digits.parse().map_err(|_| invalid(t, s))?;
            (n + 5) / 10
        }
        Some(_) => return Err(invalid(t, s)),
    };
    if h > 24 || m > 59 || sec > 60 || (h == 24 && (m, sec, micros) != (0, 0, 0)) {
        return Err(field_overflow(s));
    }
    Ok(((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(sec)) * 1_000_000 + micros)
}

/// Splits a trailing time zone off a time: `Z`, `UTC`, or `±HH[[:]MM]`. Returns the rest and
/// the offset east of UTC in seconds.
fn split_zone<'a>(tm: &'a str, t: DataType, s: &str) -> Result<(&'a str, Option<i64>)> {
    let tm = tm.trim_end();
    for zone in ["UTC", "Z", "utc", "z", "GMT", "gmt"] {
        if let Some(rest) = tm.strip_suffix(zone) {
            return Ok((rest.trim_end(), Some(0)));
        }
    }
    let Some(at) = tm.rfind(['+', '-']) else {
        return Ok((tm, None));
    };
    let (rest, zone) = tm.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(t, s));
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().unwrap_or(0), 0),
        _ => {
            let (h, m) = digits.split_at(digits.len() - 2);
            (h.parse().unwrap_or(0), m.parse().unwrap_or(0))
        }
    };
    if h > 15 || m > 59 {
        return Err(Error::DatetimeOverflow(format!(
            "time zone displacement out of range: \"{s}\""
        )));
    }
    Ok((rest.trim_end(), Some(sign * (h * 3600 + m * 60))))
}

/// Parses text input for a date or time type.
pub(crate) fn parse(s: &str, t: DataType) -> Result<Value> {
    let trimmed = s.trim();
    match t {
        DataType::Date => {
            // A date reads a timestamp too and drops its time, as PostgreSQL does.
            let (date, time) = match trimmed.split_once([' ', 'T']) {
                Some((d, tm)) => (d, Some(tm.trim())),
                None => (trimmed, None),
            };
            if let Some(tm) = time {
                let (tm, _) = split_zone(tm, t, s)?;
                parse_time_part(tm, t, s)?;
            }
            date_value(parse_date_part(date, t, s)?)
        }
        DataType::Time => {
            let (tm, _) = split_zone(trimmed, t, s)?;
            let micros = parse_time_part(tm, t, s)?;
            if micros > USECS_PER_DAY {
                return Err(field_overflow(s));
            }
            Ok(Value::Time(micros))
        }
        DataType::Timestamp | DataType::Timestamptz => {
            let (date, time) = match trimmed.split_once([' ', 'T']) {
                Some((d, tm)) => (d, Some(tm.trim())),
                None => (trimmed, None),
            };
            let d = parse_date_part(date, t, s)?;
            let (micros, offset) = match time {
                Some(tm) => {
                    let (tm, offset) = split_zone(tm, t, s)?;
                    (parse_time_part(tm, t, s)?, offset)
                }
                None => (0, None),
            };
            let days = i64::from(days_since_epoch(d));
            let local = days
                .checked_mul(USECS_PER_DAY)
                .and_then(|u| u.checked_add(micros))
                .ok_or_else(|| out_of_range(t))?;
            Ok(match t {
                DataType::Timestamp => Value::Timestamp(local),
                _ => Value::Timestamptz(local - offset.unwrap_or(0) * 1_000_000),
            })
        }
        _ => Err(Error::Internal(format!("{t} is not a date/time type"))),
    }
}

/// The days from PostgreSQL's epoch to `d`.
pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - epoch().date()).num_days() as i32
}

fn date_value(d: NaiveDate) -> Result<Value> {
    Ok(Value::Date(days_since_epoch(d)))
}

/// The date `days` after the epoch, if chrono holds it.
pub(crate) fn date_of(days: i64) -> Option<NaiveDate> {
    epoch()
        .date()
        .checked_add_signed(chrono::TimeDelta::try_days(days)?)
}

/// The date a timestamp falls on.
pub(crate) fn timestamp_date(micros: i64) -> i32 {
    micros.div_euclid(USECS_PER_DAY) as i32
}

/// A date plus `n` days; 22008 outside the range.
pub(crate) fn add_days(days: i32, n: i64) -> Result<Value> {
    let d = i64::from(days)
        .checked_add(n)
        .filter(|d| date_of(*d).is_some())
        .ok_or_else(|| out_of_range(DataType::Date))?;
    Ok(Value::Date(d as i32))
}

fn push_date(out: &mut String, d: NaiveDate) -> bool {
    let bc = d.year() <= 0;
    let year = if bc { 1 - d.year() } else { d.year() };
    out.push_str(&format!("{year:04}-{:02}-{:02}", d.month(), d.day()));
    bc
}

fn push_time(out: &mut String, micros: i64) {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    out.push_str(&format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if frac != 0 {
        let f = format!(".{frac:06}");
        out.push_str(f.trim_end_matches('0'));
    }
}

/// PostgreSQL's ISO output of a date.
pub(crate) fn format_date(days: i32) -> String {
    let mut out = String::new();
    match date_of(i64::from(days)) {
        Some(d) => {
            if push_date(&mut out, d) {
                out.push_str(" BC");
            }
        }
        None => out.push_str("invalid date"),
    }
    out
}

/// PostgreSQL's output of a time of day.
pub(crate) fn format_time(micros: i64) -> String {
    let mut out = String::new();
    push_time(&mut out, micros);
    out
}

/// PostgreSQL's ISO output of a timestamp; `zone` appends the UTC offset of a timestamptz.
pub(crate) fn format_timestamp(micros: i64, zone: bool) -> String {
    let mut out = String::new();
    let Some(d) = date_of(micros.div_euclid(USECS_PER_DAY)) else {
        return "invalid timestamp".into();
    };
    let bc = push_date(&mut out, d);
    out.push(' ');
    push_time(&mut out, micros.rem_euclid(USECS_PER_DAY));
    if zone {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

/// The current time as a timestamptz value.
pub(crate) fn now() -> Value {
    let now = chrono::Utc::now().naive_utc();
    let micros = (now - epoch()).num_microseconds().unwrap_or(i64::MAX);
    Value::Timestamptz(micros)
}

/// The time of day of a timestamp.
pub(crate) fn timestamp_time(micros: i64) -> i64 {
    micros.rem_euclid(USECS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Value) -> String {
        v.to_string()
    }

    /// Expected strings are PostgreSQL 15's output with TimeZone UTC.
    #[test]
    fn input_and_output() {
        let cases = [
            ("2024-02-29", DataType::Date, "2024-02-29"),
            ("2024/01/02", DataType::Date, "2024-01-02"),
            ("2024-01-02 23:59:59+05", DataType::Date, "2024-01-02"),
            (" 0099-1-2 ", DataType::Date, "0099-01-02"),
            ("13:05", DataType::Time, "13:05:00"),
            ("23:59:59.1234567", DataType::Time, "23:59:59.123457"),
            ("24:00:00", DataType::Time, "24:00:00"),
            (
                "2024-01-02 03:04:05.5",
                DataType::Timestamp,
                "2024-01-02 03:04:05.5",
            ),
            (
                "2024-01-02T03:04:05+02",
                DataType::Timestamp,
                "2024-01-02 03:04:05",
            ),
            ("2024-01-02", DataType::Timestamp, "2024-01-02 00:00:00"),
            (
                "2024-01-02 03:04:05+02",
                DataType::Timestamptz,
                "2024-01-02 01:04:05+00",
            ),
            (
                "2024-01-02 03:04:05-05:30",
                DataType::Timestamptz,
                "2024-01-02 08:34:05+00",
            ),
            (
                "1999-12-31 23:00:00Z",
                DataType::Timestamptz,
                "1999-12-31 23:00:00+00",
            ),
            (
                "2024-01-02 03:04",
                DataType::Timestamptz,
                "2024-01-02 03:04:00+00",
            ),
        ];
        for (input, t, want) in cases {
            assert_eq!(text(parse(input, t).unwrap()), want, "{input} as {t}");
        }
    }

    #[test]
    fn errors() {
        let syntax = ["", "x", "2024-01-02 25", "2024-01-02 1:2:3.x", "2024-01"];
        for s in syntax {
            assert!(
                matches!(
                    parse(s, DataType::Timestamp),
                    Err(Error::InvalidDatetime(_))
                ),
                "{s:?}"
            );
        }
        assert_eq!(
            parse("2024-02-30", DataType::Date),
            Err(Error::DatetimeOverflow(
                "date/time field value out of range: \"2024-02-30\"".into()
            ))
        );
        assert!(matches!(
            parse("12:60", DataType::Time),
            Err(Error::DatetimeOverflow(_))
        ));
        assert!(matches!(
            parse("2024-01-01 10:00+16", DataType::Timestamptz),
            Err(Error::DatetimeOverflow(_))
        ));
    }

    #[test]
    fn epoch_and_days() {
        assert_eq!(parse("2000-01-01", DataType::Date), Ok(Value::Date(0)));
        assert_eq!(parse("1999-12-31", DataType::Date), Ok(Value::Date(-1)));
        assert_eq!(
            parse("2000-01-02 00:00:01", DataType::Timestamp),
            Ok(Value::Timestamp(USECS_PER_DAY + 1_000_000))
        );
        assert_eq!(timestamp_date(-1), -1);
        assert_eq!(add_days(0, 31), Ok(Value::Date(31)));
        assert!(add_days(0, i64::MAX).is_err());
        assert_eq!(format_date(-730_119), "0001-01-01");
        assert_eq!(format_date(-730_120), "0001-12-31 BC");
    }
}
