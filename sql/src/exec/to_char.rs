//! `to_char(timestamp | timestamptz | interval, pattern)`: PostgreSQL's template patterns
//! (`formatting.c`) for dates and times, in English, with the time zone UTC.
//!
//! A pattern is read left to right: `"..."` is literal text (a backslash takes the next
//! character literally), `\"` outside quotes is a quote, a keyword (the longest one that
//! matches; most have an upper- and a lower-case spelling, names also a capitalised one) is
//! replaced by its field, and anything else is copied. Keywords take the prefixes `FM` (no
//! padding), `TM` and `FX` (accepted, no effect here) and the suffix `TH` / `th` (an ordinal).
//! Names of months and days, eras, meridiem, `D`/`ID` and the ISO fields are 22007 for an
//! interval, as are the day-of-year and week fields (PostgreSQL computes some of them from
//! the interval's fields).

use chrono::{Datelike, NaiveDate};

use crate::types::datetime::{self, USECS_PER_DAY};
use crate::types::interval::Interval;
use crate::{Error, Result};

/// How a name is spelt: `MONTH`, `Month` or `month`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Case {
    Upper,
    Capital,
    Lower,
}

/// A template keyword.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kw {
    YearComma,
    Year(u8),
    IsoYear(u8),
    Month,
    MonthName(Case),
    MonthAbbrev(Case),
    Day,
    DayOfYear,
    Dow,
    IsoDow,
    IsoDayOfYear,
    DayName(Case),
    DayAbbrev(Case),
    Hour12,
    Hour24,
    Minute,
    Second,
    SecondsOfDay,
    Millis,
    Micros,
    Fraction(u8),
    /// AM / PM: upper case, with dots.
    Meridiem(bool, bool),
    /// AD / BC: upper case, with dots.
    Era(bool, bool),
    Quarter,
    Week,
    IsoWeek,
    WeekOfMonth,
    Julian,
    Century,
    Zone(bool),
    ZoneHour,
    ZoneMinute,
    Offset,
    RomanMonth(bool),
    Fx,
}

/// Every keyword's spellings.
const KEYWORDS: &[(&str, Kw)] = &[
    ("Y,YYY", Kw::YearComma),
    ("y,yyy", Kw::YearComma),
    ("YYYY", Kw::Year(4)),
    ("yyyy", Kw::Year(4)),
    ("YYY", Kw::Year(3)),
    ("yyy", Kw::Year(3)),
    ("YY", Kw::Year(2)),
    ("yy", Kw::Year(2)),
    ("Y", Kw::Year(1)),
    ("y", Kw::Year(1)),
    ("IYYY", Kw::IsoYear(4)),
    ("iyyy", Kw::IsoYear(4)),
    ("IYY", Kw::IsoYear(3)),
    ("iyy", Kw::IsoYear(3)),
    ("IY", Kw::IsoYear(2)),
    ("iy", Kw::IsoYear(2)),
    ("I", Kw::IsoYear(1)),
    ("i", Kw::IsoYear(1)),
    ("MM", Kw::Month),
    ("mm", Kw::Month),
    ("MONTH", Kw::MonthName(Case::Upper)),
    ("Month", Kw::MonthName(Case::Capital)),
    ("month", Kw::MonthName(Case::Lower)),
    ("MON", Kw::MonthAbbrev(Case::Upper)),
    ("Mon", Kw::MonthAbbrev(Case::Capital)),
    ("mon", Kw::MonthAbbrev(Case::Lower)),
    ("DD", Kw::Day),
    ("dd", Kw::Day),
    ("DDD", Kw::DayOfYear),
    ("ddd", Kw::DayOfYear),
    ("D", Kw::Dow),
    ("d", Kw::Dow),
    ("ID", Kw::IsoDow),
    ("id", Kw::IsoDow),
    ("IDDD", Kw::IsoDayOfYear),
    ("iddd", Kw::IsoDayOfYear),
    ("DAY", Kw::DayName(Case::Upper)),
    ("Day", Kw::DayName(Case::Capital)),
    ("day", Kw::DayName(Case::Lower)),
    ("DY", Kw::DayAbbrev(Case::Upper)),
    ("Dy", Kw::DayAbbrev(Case::Capital)),
    ("dy", Kw::DayAbbrev(Case::Lower)),
    ("HH", Kw::Hour12),
    ("hh", Kw::Hour12),
    ("HH12", Kw::Hour12),
    ("hh12", Kw::Hour12),
    ("HH24", Kw::Hour24),
    ("hh24", Kw::Hour24),
    ("MI", Kw::Minute),
    ("mi", Kw::Minute),
    ("SS", Kw::Second),
    ("ss", Kw::Second),
    ("SSSS", Kw::SecondsOfDay),
    ("ssss", Kw::SecondsOfDay),
    ("SSSSS", Kw::SecondsOfDay),
    ("sssss", Kw::SecondsOfDay),
    ("MS", Kw::Millis),
    ("ms", Kw::Millis),
    ("US", Kw::Micros),
    ("us", Kw::Micros),
    ("FF1", Kw::Fraction(1)),
    ("FF2", Kw::Fraction(2)),
    ("FF3", Kw::Fraction(3)),
    ("FF4", Kw::Fraction(4)),
    ("FF5", Kw::Fraction(5)),
    ("FF6", Kw::Fraction(6)),
    ("ff1", Kw::Fraction(1)),
    ("ff2", Kw::Fraction(2)),
    ("ff3", Kw::Fraction(3)),
    ("ff4", Kw::Fraction(4)),
    ("ff5", Kw::Fraction(5)),
    ("ff6", Kw::Fraction(6)),
    ("AM", Kw::Meridiem(true, false)),
    ("PM", Kw::Meridiem(true, false)),
    ("am", Kw::Meridiem(false, false)),
    ("pm", Kw::Meridiem(false, false)),
    ("A.M.", Kw::Meridiem(true, true)),
    ("P.M.", Kw::Meridiem(true, true)),
    ("a.m.", Kw::Meridiem(false, true)),
    ("p.m.", Kw::Meridiem(false, true)),
    ("AD", Kw::Era(true, false)),
    ("BC", Kw::Era(true, false)),
    ("ad", Kw::Era(false, false)),
    ("bc", Kw::Era(false, false)),
    ("A.D.", Kw::Era(true, true)),
    ("B.C.", Kw::Era(true, true)),
    ("a.d.", Kw::Era(false, true)),
    ("b.c.", Kw::Era(false, true)),
    ("Q", Kw::Quarter),
    ("q", Kw::Quarter),
    ("WW", Kw::Week),
    ("ww", Kw::Week),
    ("IW", Kw::IsoWeek),
    ("iw", Kw::IsoWeek),
    ("W", Kw::WeekOfMonth),
    ("w", Kw::WeekOfMonth),
    ("J", Kw::Julian),
    ("j", Kw::Julian),
    ("CC", Kw::Century),
    ("cc", Kw::Century),
    ("TZ", Kw::Zone(true)),
    ("tz", Kw::Zone(false)),
    ("TZH", Kw::ZoneHour),
    ("tzh", Kw::ZoneHour),
    ("TZM", Kw::ZoneMinute),
    ("tzm", Kw::ZoneMinute),
    ("OF", Kw::Offset),
    ("RM", Kw::RomanMonth(true)),
    ("rm", Kw::RomanMonth(false)),
    ("FX", Kw::Fx),
    ("fx", Kw::Fx),
];

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub(super) const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const ROMAN: [&str; 12] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
];

/// The longest keyword at the start of `s`.
pub(super) fn keyword(s: &str) -> Option<(&'static str, Kw)> {
    KEYWORDS
        .iter()
        .filter(|(p, _)| s.starts_with(p))
        .max_by_key(|(p, _)| p.len())
        .copied()
}

/// The value being formatted, as calendar fields (PostgreSQL's `pg_tm`).
struct Fields {
    /// The calendar date; None for an interval.
    date: Option<NaiveDate>,
    /// Astronomical year (0 is 1 BC), or an interval's years.
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    usec: i64,
    /// Whether the value is a timestamptz (its zone is UTC).
    zoned: bool,
}

/// Formats a timestamp (`zoned` for a timestamptz) with `pattern`.
pub(crate) fn timestamp(micros: i64, zoned: bool, pattern: &str) -> Result<String> {
    let date = datetime::date_of(micros.div_euclid(USECS_PER_DAY))
        .ok_or_else(|| Error::DatetimeOverflow("timestamp out of range".into()))?;
    let t = micros.rem_euclid(USECS_PER_DAY);
    let f = Fields {
        date: Some(date),
        year: i64::from(date.year()),
        month: i64::from(date.month()),
        day: i64::from(date.day()),
        hour: t / 3_600_000_000,
        min: t / 60_000_000 % 60,
        sec: t / 1_000_000 % 60,
        usec: t % 1_000_000,
        zoned,
    };
    format(&f, pattern)
}

/// Formats an interval with `pattern`.
pub(crate) fn interval(v: &Interval, pattern: &str) -> Result<String> {
    let t = v.micros;
    let f = Fields {
        date: None,
        year: i64::from(v.months / 12),
        month: i64::from(v.months % 12),
        day: i64::from(v.days),
        hour: t / 3_600_000_000,
        min: t % 3_600_000_000 / 60_000_000,
        sec: t % 60_000_000 / 1_000_000,
        usec: t % 1_000_000,
        zoned: false,
    };
    format(&f, pattern)
}

fn format(f: &Fields, pattern: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            rest = literal(quoted, &mut out);
            continue;
        }
        if let Some(after) = rest.strip_prefix("\\\"") {
            out.push('"');
            rest = after;
            continue;
        }
        // Prefixes, then the keyword, then an ordinal suffix.
        let mut fm = false;
        let mut s = rest;
        loop {
            if let Some(r) = s.strip_prefix("FM").or_else(|| s.strip_prefix("fm")) {
                fm = true;
                s = r;
            } else if let Some(r) = s.strip_prefix("TM").or_else(|| s.strip_prefix("tm")) {
                s = r;
            } else {
                break;
            }
        }
        match keyword(s) {
            Some((word, kw)) => {
                s = &s[word.len()..];
                let th = if s.starts_with("TH") {
                    Some(true)
                } else if s.starts_with("th") {
                    Some(false)
                } else {
                    None
                };
                if th.is_some() {
                    s = &s[2..];
                }
                let text = field(f, kw, word, fm)?;
                out.push_str(&text);
                if let Some(upper) = th
                    && is_number(kw)
                {
                    out.push_str(&ordinal(&text, upper));
                }
                rest = s;
            }
            None => {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    out.push(c);
                }
                rest = chars.as_str();
            }
        }
    }
    Ok(out)
}

/// Copies quoted text up to its closing quote; returns what follows it.
fn literal<'a>(s: &'a str, out: &mut String) -> &'a str {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return &s[i + 1..],
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    ""
}

fn is_number(kw: Kw) -> bool {
    !matches!(
        kw,
        Kw::MonthName(_)
            | Kw::MonthAbbrev(_)
            | Kw::DayName(_)
            | Kw::DayAbbrev(_)
            | Kw::Meridiem(..)
            | Kw::Era(..)
            | Kw::Zone(_)
            | Kw::ZoneHour
            | Kw::Offset
            | Kw::RomanMonth(_)
            | Kw::Fx
    )
}

/// The ordinal suffix of the number `text` ends with: `st`, `nd`, `rd` or `th` (teens).
fn ordinal(text: &str, upper: bool) -> String {
    let digits: Vec<char> = text.chars().collect();
    let last = digits.last().copied().unwrap_or('0');
    let teen = digits.len() > 1 && digits[digits.len() - 2] == '1';
    let s = match last {
        _ if teen => "th",
        '1' => "st",
        '2' => "nd",
        '3' => "rd",
        _ => "th",
    };
    if upper {
        s.to_uppercase()
    } else {
        s.to_string()
    }
}

/// `n` zero-padded to `width` (C's `%0*d`: the sign counts), or as it is in fill mode.
fn num(n: i64, width: usize, fm: bool) -> String {
    if fm {
        n.to_string()
    } else {
        format!("{n:0width$}")
    }
}

/// As [`num`], one wider when negative (PostgreSQL's widths for the month and the time
/// fields, which an interval can have negative).
fn wide(n: i64, width: usize, fm: bool) -> String {
    num(n, if n < 0 { width + 1 } else { width }, fm)
}

fn spell(name: &str, case: Case, pad: bool) -> String {
    let s = match case {
        Case::Upper => name.to_uppercase(),
        Case::Capital => name.to_string(),
        Case::Lower => name.to_lowercase(),
    };
    if pad { format!("{s:<9}") } else { s }
}

fn invalid_for_interval() -> Error {
    Error::InvalidDatetime("invalid format specification for an interval value".into())
}

/// The text of one keyword.
fn field(f: &Fields, kw: Kw, word: &str, fm: bool) -> Result<String> {
    let Some(date) = f.date else {
        return interval_field(f, kw, word, fm);
    };
    // Years as printed: BC years count up from 1.
    let year = if f.year <= 0 { 1 - f.year } else { f.year };
    let iso = date.iso_week();
    let upper = word.starts_with(|c: char| c.is_ascii_uppercase());
    Ok(match kw {
        Kw::Year(n) => year_digits(year, n, fm),
        Kw::IsoYear(n) => year_digits(i64::from(iso.year()), n, fm),
        Kw::MonthName(c) => spell(MONTHS[date.month0() as usize], c, !fm),
        Kw::MonthAbbrev(c) => spell(&MONTHS[date.month0() as usize][..3], c, false),
        Kw::DayOfYear => num(i64::from(date.ordinal()), 3, fm),
        Kw::Dow => (date.weekday().num_days_from_sunday() + 1).to_string(),
        Kw::IsoDow => date.weekday().number_from_monday().to_string(),
        Kw::IsoDayOfYear => {
            let day =
                (i64::from(iso.week()) - 1) * 7 + i64::from(date.weekday().number_from_monday());
            num(day, 3, fm)
        }
        Kw::DayName(c) => spell(DAYS[date.weekday().num_days_from_sunday() as usize], c, !fm),
        Kw::DayAbbrev(c) => spell(
            &DAYS[date.weekday().num_days_from_sunday() as usize][..3],
            c,
            false,
        ),
        Kw::Era(_, dots) => {
            let s = match (f.year <= 0, dots) {
                (true, true) => "B.C.",
                (true, false) => "BC",
                (false, true) => "A.D.",
                (false, false) => "AD",
            };
            if upper { s.into() } else { s.to_lowercase() }
        }
        Kw::Week => num((i64::from(date.ordinal()) - 1) / 7 + 1, 2, fm),
        Kw::IsoWeek => num(i64::from(iso.week()), 2, fm),
        Kw::Julian => (i64::from(datetime::days_since_epoch(date)) + 2_451_545).to_string(),
        Kw::Century => {
            let c = if f.year > 0 {
                (f.year - 1) / 100 + 1
            } else {
                f.year / 100 - 1
            };
            century(c, fm)
        }
        Kw::Zone(upper) => match (f.zoned, upper) {
            (true, true) => "UTC".into(),
            (true, false) => "utc".into(),
            (false, _) => String::new(),
        },
        _ => return common_field(f, kw, word, fm),
    })
}

fn year_digits(year: i64, n: u8, fm: bool) -> String {
    let (modulo, width) = match n {
        4 => (i64::MAX, 4),
        3 => (1000, 3),
        2 => (100, 2),
        _ => (10, 1),
    };
    let y = year % modulo;
    num(y, if y >= 0 { width } else { width + 1 }, fm)
}

fn century(c: i64, fm: bool) -> String {
    if (-99..=99).contains(&c) {
        num(c, if c >= 0 { 2 } else { 3 }, fm)
    } else {
        c.to_string()
    }
}

/// The keywords an interval has (its years are not adjusted for eras).
fn interval_field(f: &Fields, kw: Kw, word: &str, fm: bool) -> Result<String> {
    Ok(match kw {
        Kw::Year(n) => year_digits(f.year, n, fm),
        Kw::Century => century(f.year / 100, fm),
        Kw::Zone(_) => String::new(),
        Kw::IsoYear(_)
        | Kw::MonthName(_)
        | Kw::MonthAbbrev(_)
        | Kw::DayOfYear
        | Kw::Dow
        | Kw::IsoDow
        | Kw::IsoDayOfYear
        | Kw::DayName(_)
        | Kw::DayAbbrev(_)
        | Kw::Era(..)
        | Kw::Week
        | Kw::IsoWeek
        | Kw::Julian => return Err(invalid_for_interval()),
        _ => return common_field(f, kw, word, fm),
    })
}

/// The keywords a timestamp and an interval format alike.
fn common_field(f: &Fields, kw: Kw, word: &str, fm: bool) -> Result<String> {
    let upper = word.starts_with(|c: char| c.is_ascii_uppercase());
    Ok(match kw {
        Kw::YearComma => {
            let y = if f.date.is_some() && f.year <= 0 {
                1 - f.year
            } else {
                f.year
            };
            format!("{},{:03}", y / 1000, y % 1000)
        }
        Kw::Month => wide(f.month, 2, fm),
        Kw::Day => num(f.day, 2, fm),
        Kw::Hour12 => {
            let h = if f.hour % 12 == 0 { 12 } else { f.hour % 12 };
            num(h, if f.hour < 0 { 3 } else { 2 }, fm)
        }
        Kw::Hour24 => wide(f.hour, 2, fm),
        Kw::Minute => wide(f.min, 2, fm),
        Kw::Second => wide(f.sec, 2, fm),
        Kw::SecondsOfDay => (f.hour * 3600 + f.min * 60 + f.sec).to_string(),
        Kw::Millis => format!("{:03}", f.usec / 1000),
        Kw::Micros => format!("{:06}", f.usec),
        Kw::Fraction(n) => {
            let width = usize::from(n);
            format!("{:0width$}", f.usec / 10i64.pow(6 - u32::from(n)))
        }
        Kw::Meridiem(_, dots) => {
            let pm = f.hour % 24 >= 12;
            let s = match (pm, dots) {
                (true, true) => "P.M.",
                (true, false) => "PM",
                (false, true) => "A.M.",
                (false, false) => "AM",
            };
            if upper { s.into() } else { s.to_lowercase() }
        }
        Kw::Quarter => ((f.month - 1) / 3 + 1).to_string(),
        Kw::WeekOfMonth => ((f.day - 1) / 7 + 1).to_string(),
        Kw::ZoneHour => "+00".into(),
        Kw::ZoneMinute => "00".into(),
        Kw::Offset => {
            if fm {
                "+0".into()
            } else {
                "+00".into()
            }
        }
        Kw::RomanMonth(upper) => {
            let Some(r) = usize::try_from(f.month - 1).ok().and_then(|m| ROMAN.get(m)) else {
                return Ok(String::new());
            };
            let r = if upper {
                r.to_string()
            } else {
                r.to_lowercase()
            };
            if fm { r } else { format!("{r:<4}") }
        }
        Kw::Fx => String::new(),
        kw => return Err(Error::Internal(format!("to_char keyword {kw:?} unhandled"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataType, Value};

    fn ts(s: &str, pattern: &str) -> String {
        match datetime::parse(s, DataType::Timestamp) {
            Ok(Value::Timestamp(t)) => timestamp(t, false, pattern).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// Expected strings are PostgreSQL 15's.
    #[test]
    fn timestamp_patterns() {
        let t = "2024-02-09 13:04:05.123456";
        assert_eq!(
            ts(t, "YYYY YY Y MM Mon MON mon Month DD D DDD Day Dy"),
            "2024 24 4 02 Feb FEB feb February  09 6 040 Friday    Fri"
        );
        assert_eq!(
            ts(t, "HH HH12 HH24 MI SS MS US AM pm A.M. Q WW IW J CC SSSS"),
            "01 01 13 04 05 123 123456 PM pm P.M. 1 06 06 2460350 21 47045"
        );
        assert_eq!(
            ts("2024-02-09 00:04:05", "HH AM FMHH12 FMDD FMMonth|"),
            "12 AM 12 9 February|"
        );
        assert_eq!(
            ts("2024-02-01", "\"Day\" DDth DDTH FMDDth"),
            "Day 01st 01ST 1st"
        );
        assert_eq!(ts("2024-02-11", "DDth xyz\"abc"), "11th x4zabc");
        assert_eq!(ts("2024-02-09", "YYYY\\\"MM\\\""), "2024\"02\"");
        assert_eq!(ts("2024-12-30", "IYYY IW ID IDDD"), "2025 01 1 001");
        assert_eq!(ts("2024-02-09", "RM rm FMRM|"), "II   ii   II|");
    }

    #[test]
    fn interval_patterns() {
        let iv = |s: &str, p: &str| interval(&crate::types::interval::parse(s).unwrap(), p);
        assert_eq!(
            iv(
                "1 year 2 mons 3 days 04:05:06.7",
                "YYYY MM DD HH24 MI SS MS"
            )
            .unwrap(),
            "0001 02 03 04 05 06 700"
        );
        assert_eq!(iv("-3 days 27:00:00", "DD HH24 HH12").unwrap(), "-3 27 03");
        assert_eq!(iv("-1 year -2 mons", "YYYY MM").unwrap(), "-0001 -02");
        assert!(matches!(iv("1 day", "Day"), Err(Error::InvalidDatetime(_))));
    }
}
