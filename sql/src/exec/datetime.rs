//! Evaluation of the date/time functions: `date_trunc`, `extract` / `date_part`, `age` and
//! `make_date` / `make_timestamp` / `make_interval`, with PostgreSQL 15's results and errors.
//!
//! Units and fields are read as PostgreSQL's `DecodeUnits` and `DecodeSpecial` read them:
//! lower case, cut to 10 characters, from the same word lists (so `'microseconds'`, `'usec'`
//! and `'us'` are one unit). A word in neither list is 22023; a known unit a type has no
//! such field for is 0A000. Timestamps with time zone are taken in UTC, the only session
//! time zone (`types::datetime`).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::plan::Function;
use crate::types::datetime::{self, USECS_PER_DAY};
use crate::types::interval::Interval;
use crate::{Error, Result, Value};

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const UNIX_TO_PG_EPOCH_SECS: i64 = 946_684_800;

/// The Julian day number of 2000-01-01.
const PG_EPOCH_JDATE: i64 = 2_451_545;

const USECS_PER_HOUR: i64 = 3_600_000_000;
const USECS_PER_MINUTE: i64 = 60_000_000;
const USECS_PER_SEC: i64 = 1_000_000;

/// A date/time unit or field, as PostgreSQL's `DTK_*` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Microseconds,
    Milliseconds,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
    Timezone,
    TimezoneHour,
    TimezoneMinute,
    Dow,
    Isodow,
    Doy,
    Isoyear,
    Julian,
    Epoch,
    /// Another reserved word (`now`, `infinity`...): known, but a field of no type.
    Reserved,
}

/// A unit word as `DecodeUnits` reads it (PostgreSQL's `deltatktbl`).
fn unit(word: &str) -> Option<Field> {
    use Field as F;
    Some(match word {
        "c" | "cent" | "centuries" | "century" => F::Century,
        "d" | "day" | "days" => F::Day,
        "dec" | "decade" | "decades" | "decs" => F::Decade,
        "h" | "hour" | "hours" | "hr" | "hrs" => F::Hour,
        "m" | "min" | "mins" | "minute" | "minutes" => F::Minute,
        "microsecon" | "us" | "usec" | "usecond" | "useconds" | "usecs" => F::Microseconds,
        "mil" | "millennia" | "millennium" | "mils" => F::Millennium,
        "millisecon" | "ms" | "msec" | "msecond" | "mseconds" | "msecs" => F::Milliseconds,
        "mon" | "mons" | "month" | "months" => F::Month,
        "qtr" | "quarter" => F::Quarter,
        "s" | "sec" | "second" | "seconds" | "secs" => F::Second,
        "timezone" => F::Timezone,
        "timezone_h" => F::TimezoneHour,
        "timezone_m" => F::TimezoneMinute,
        "w" | "week" | "weeks" => F::Week,
        "y" | "year" | "years" | "yr" | "yrs" => F::Year,
        _ => return None,
    })
}

/// A field word of `DecodeSpecial` (PostgreSQL's `datetktbl`) that `extract` accepts.
fn special(word: &str) -> Option<Field> {
    use Field as F;
    Some(match word {
        "dow" => F::Dow,
        "isodow" => F::Isodow,
        "doy" => F::Doy,
        "isoyear" => F::Isoyear,
        "j" | "jd" | "julian" => F::Julian,
        "epoch" => F::Epoch,
        "-infinity" | "infinity" | "now" | "today" | "tomorrow" | "yesterday" | "allballs" => {
            F::Reserved
        }
        _ => return None,
    })
}

/// The word PostgreSQL looks up: lower case, at most 10 characters (`TOKMAXLEN`).
fn lookup_word(word: &str) -> String {
    word.to_lowercase().chars().take(10).collect()
}

fn not_recognized(word: &str, type_name: &str) -> Error {
    Error::InvalidParameter(format!(
        "unit \"{}\" not recognized for type {type_name}",
        word.to_lowercase()
    ))
}

fn not_supported(word: &str, type_name: &str) -> Error {
    Error::NotSupported(format!(
        "unit \"{}\" not supported for type {type_name}",
        word.to_lowercase()
    ))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Timestamp(_) => "timestamp without time zone",
        Value::Timestamptz(_) => "timestamp with time zone",
        Value::Date(_) => "date",
        Value::Time(_) => "time without time zone",
        Value::Interval(_) => "interval",
        _ => "unknown",
    }
}

/// Calls one of this module's functions on `args` (NULL in, NULL out).
pub(crate) fn call(f: Function, args: Vec<Value>) -> Result<Value> {
    use Function as F;
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    match (f, args.as_slice()) {
        (F::DateTrunc, [Value::Text(u), v]) => date_trunc(u, v),
        (F::DatePart, [Value::Text(u), v]) => Ok(Value::Float(part(u, v)?.float())),
        (F::Extract, [Value::Text(u), v]) => {
            Ok(crate::types::numeric::value(part(u, v)?.numeric()))
        }
        (F::Age, [Value::Timestamp(a), Value::Timestamp(b)]) => age(*a, *b),
        (F::Age, [Value::Timestamptz(a), Value::Timestamptz(b)]) => age(*a, *b),
        (F::MakeDate, [Value::Int(y), Value::Int(m), Value::Int(d)]) => make_date(*y, *m, *d),
        (F::MakeTimestamp, [y, mo, d, h, mi, s]) => {
            make_timestamp([int(y)?, int(mo)?, int(d)?, int(h)?, int(mi)?], float(s)?)
        }
        (F::MakeInterval, [y, mo, w, d, h, mi, s]) => make_interval(
            [int(y)?, int(mo)?, int(w)?, int(d)?, int(h)?, int(mi)?],
            float(s)?,
        ),
        (f, args) => Err(Error::Internal(format!(
            "{}({args:?}) is not a date/time call",
            f.name()
        ))),
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
        Value::Int(i) => Ok(*i as f64),
        v => Err(Error::Internal(format!("expected a double, got {v}"))),
    }
}

/// A timestamp broken into calendar fields (PostgreSQL's `pg_tm` and `fsec`).
#[derive(Clone, Copy)]
struct Tm {
    date: NaiveDate,
    hour: i64,
    min: i64,
    sec: i64,
    usec: i64,
}

fn overflow() -> Error {
    Error::DatetimeOverflow("timestamp out of range".into())
}

impl Tm {
    fn of(micros: i64) -> Result<Tm> {
        let date = datetime::date_of(micros.div_euclid(USECS_PER_DAY)).ok_or_else(overflow)?;
        let t = micros.rem_euclid(USECS_PER_DAY);
        Ok(Tm {
            date,
            hour: t / USECS_PER_HOUR,
            min: t / USECS_PER_MINUTE % 60,
            sec: t / USECS_PER_SEC % 60,
            usec: t % USECS_PER_SEC,
        })
    }

    fn micros(&self) -> Result<i64> {
        let days = i64::from(datetime::days_since_epoch(self.date));
        let time = self.hour * USECS_PER_HOUR
            + self.min * USECS_PER_MINUTE
            + self.sec * USECS_PER_SEC
            + self.usec;
        days.checked_mul(USECS_PER_DAY)
            .and_then(|d| d.checked_add(time))
            .ok_or_else(overflow)
    }

    fn ymd(y: i32, m: u32, d: u32) -> Result<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d).ok_or_else(overflow)
    }

    /// Microseconds into the day.
    fn time(&self) -> i64 {
        self.hour * USECS_PER_HOUR
            + self.min * USECS_PER_MINUTE
            + self.sec * USECS_PER_SEC
            + self.usec
    }

    /// The Julian day number of the date.
    fn julian_day(&self) -> i64 {
        i64::from(datetime::days_since_epoch(self.date)) + PG_EPOCH_JDATE
    }
}

/// How far a truncation clears: each unit clears what the ones below it clear.
fn trunc_rank(f: Field) -> Option<u8> {
    use Field as F;
    Some(match f {
        F::Microseconds => 0,
        F::Milliseconds => 1,
        F::Second => 2,
        F::Minute => 3,
        F::Hour => 4,
        F::Day => 5,
        F::Month => 6,
        F::Quarter => 7,
        F::Year => 8,
        F::Decade => 9,
        F::Century => 10,
        F::Millennium => 11,
        _ => return None,
    })
}

/// `date_trunc(unit, v)` for a timestamp, timestamptz or interval.
fn date_trunc(word: &str, v: &Value) -> Result<Value> {
    let ty = type_name(v);
    let field = unit(&lookup_word(word)).ok_or_else(|| not_recognized(word, ty))?;
    match v {
        Value::Timestamp(t) => Ok(Value::Timestamp(trunc_timestamp(field, *t, word, ty)?)),
        Value::Timestamptz(t) => Ok(Value::Timestamptz(trunc_timestamp(field, *t, word, ty)?)),
        Value::Interval(i) => Ok(Value::Interval(trunc_interval(field, i, word)?)),
        v => Err(Error::Internal(format!("date_trunc of {v:?}"))),
    }
}

fn trunc_timestamp(field: Field, micros: i64, word: &str, ty: &str) -> Result<i64> {
    let mut tm = Tm::of(micros)?;
    if field == Field::Week {
        // The Monday of the ISO week.
        let back = i64::from(tm.date.weekday().num_days_from_monday());
        let days = i64::from(datetime::days_since_epoch(tm.date)) - back;
        return days.checked_mul(USECS_PER_DAY).ok_or_else(overflow);
    }
    let rank = trunc_rank(field).ok_or_else(|| not_supported(word, ty))?;
    let (mut y, mut m, mut d) = (tm.date.year(), tm.date.month(), tm.date.day());
    // Years as PostgreSQL counts them: 0 is 1 BC; centuries and millennia start at year 1.
    match field {
        Field::Millennium if y > 0 => y = ((y + 999) / 1000) * 1000 - 999,
        Field::Millennium => y = -((999 - (y - 1)) / 1000) * 1000 + 1,
        Field::Century if y > 0 => y = ((y + 99) / 100) * 100 - 99,
        Field::Century => y = -((99 - (y - 1)) / 100) * 100 + 1,
        Field::Decade if y > 0 => y = (y / 10) * 10,
        Field::Decade => y = -((8 - (y - 1)) / 10) * 10,
        _ => {}
    }
    if rank >= 8 {
        m = 1;
    }
    if rank == 7 {
        m = 3 * ((m - 1) / 3) + 1;
    }
    if rank >= 6 {
        d = 1;
    }
    tm.date = Tm::ymd(y, m, d)?;
    if rank >= 5 {
        tm.hour = 0;
    }
    if rank >= 4 {
        tm.min = 0;
    }
    if rank >= 3 {
        tm.sec = 0;
    }
    if rank >= 2 {
        tm.usec = 0;
    }
    if rank == 1 {
        tm.usec = tm.usec / 1000 * 1000;
    }
    tm.micros()
}

/// An interval's fields as PostgreSQL's `interval2tm` splits them (each with the sign of
/// its source field).
struct IntervalTm {
    year: i64,
    mon: i64,
    mday: i64,
    hour: i64,
    min: i64,
    sec: i64,
    usec: i64,
}

impl IntervalTm {
    fn of(i: &Interval) -> IntervalTm {
        let t = i.micros;
        IntervalTm {
            year: i64::from(i.months / 12),
            mon: i64::from(i.months % 12),
            mday: i64::from(i.days),
            hour: t / USECS_PER_HOUR,
            min: t % USECS_PER_HOUR / USECS_PER_MINUTE,
            sec: t % USECS_PER_MINUTE / USECS_PER_SEC,
            usec: t % USECS_PER_SEC,
        }
    }

    fn interval(&self) -> Result<Interval> {
        let out = || Error::DatetimeOverflow("interval out of range".into());
        let months = self.year * 12 + self.mon;
        let micros = self
            .hour
            .checked_mul(USECS_PER_HOUR)
            .and_then(|h| h.checked_add(self.min * USECS_PER_MINUTE))
            .and_then(|t| t.checked_add(self.sec * USECS_PER_SEC + self.usec))
            .ok_or_else(out)?;
        Ok(Interval {
            months: i32::try_from(months).map_err(|_| out())?,
            days: i32::try_from(self.mday).map_err(|_| out())?,
            micros,
        })
    }
}

fn trunc_interval(field: Field, i: &Interval, word: &str) -> Result<Interval> {
    if field == Field::Week {
        // PostgreSQL adds the detail "Months usually have fractional weeks."
        return Err(not_supported(word, "interval"));
    }
    let rank = trunc_rank(field).ok_or_else(|| not_supported(word, "interval"))?;
    let mut tm = IntervalTm::of(i);
    let years = [(11, 1000), (10, 100), (9, 10)];
    for (r, n) in years {
        if rank >= r {
            tm.year = tm.year / n * n;
        }
    }
    if rank >= 8 {
        tm.mon = 0;
    }
    if rank >= 7 {
        tm.mon = 3 * (tm.mon / 3);
    }
    if rank >= 6 {
        tm.mday = 0;
    }
    if rank >= 5 {
        tm.hour = 0;
    }
    if rank >= 4 {
        tm.min = 0;
    }
    if rank >= 3 {
        tm.sec = 0;
    }
    if rank >= 2 {
        tm.usec = 0;
    }
    if rank == 1 {
        tm.usec = tm.usec / 1000 * 1000;
    }
    tm.interval()
}

/// A field's value: an integer, `n / 10^scale` (with the double PostgreSQL's float8 form
/// computes, which can differ from the exact quotient in its last bit), or a Julian date.
enum Part {
    Int(i64),
    Scaled { n: i64, scale: u32, float: f64 },
    Julian { day: i64, micros: i64, float: f64 },
}

impl Part {
    fn float(&self) -> f64 {
        match self {
            Part::Int(i) => *i as f64,
            Part::Scaled { float, .. } | Part::Julian { float, .. } => *float,
        }
    }

    fn numeric(&self) -> Decimal {
        match self {
            Part::Int(i) => Decimal::from(*i),
            Part::Scaled { n, scale, .. } => Decimal::new(*n, *scale),
            Part::Julian { day, micros, .. } => {
                // PostgreSQL divides the time of day by a day's microseconds with at least 16
                // significant digits (`select_div_scale`); the scale is capped where the sum
                // would not fit 28 digits here.
                let scale = julian_scale(*micros).min(28 - digits(*day).min(28));
                let frac = (Decimal::from(*micros) / Decimal::from(USECS_PER_DAY))
                    .round_dp_with_strategy(
                        scale,
                        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                    );
                let mut sum = Decimal::from(*day) + frac;
                sum.rescale(scale);
                sum
            }
        }
    }
}

fn digits(n: i64) -> u32 {
    n.unsigned_abs().checked_ilog10().map_or(1, |d| d + 1)
}

/// The scale of `micros / 86400000000` by PostgreSQL's `select_div_scale`: 16 significant
/// digits from the estimated weight of the quotient, in base-10000 digits.
fn julian_scale(micros: i64) -> u32 {
    let weight_digit = |x: i64| -> (i64, i64) {
        if x == 0 {
            return (0, 0);
        }
        let w = i64::from(x.unsigned_abs().ilog(10_000));
        (w, x.abs() / 10_000i64.pow(w as u32))
    };
    let (w1, d1) = weight_digit(micros);
    let (w2, d2) = weight_digit(USECS_PER_DAY);
    let mut q = w1 - w2;
    if d1 <= d2 {
        q -= 1;
    }
    (16 - q * 4).clamp(0, 1000) as u32
}

/// Seconds and their fraction as `extract` gives them: `SECOND` with 6 decimals,
/// `MILLISECONDS` with 3, `MICROSECONDS` whole.
fn seconds_part(field: Field, sec: i64, usec: i64) -> Part {
    let n = sec * USECS_PER_SEC + usec;
    match field {
        Field::Second => Part::Scaled {
            n,
            scale: 6,
            float: sec as f64 + usec as f64 / 1e6,
        },
        Field::Milliseconds => Part::Scaled {
            n,
            scale: 3,
            float: sec as f64 * 1000.0 + usec as f64 / 1000.0,
        },
        _ => Part::Int(n),
    }
}

/// `extract(field FROM v)` / `date_part(field, v)`.
fn part(word: &str, v: &Value) -> Result<Part> {
    let ty = type_name(v);
    let w = lookup_word(word);
    let field = unit(&w)
        .or_else(|| special(&w))
        .ok_or_else(|| not_recognized(word, ty))?;
    let part = match v {
        Value::Timestamp(t) => timestamp_part(field, *t),
        Value::Timestamptz(t) => match field {
            Field::Timezone | Field::TimezoneHour | Field::TimezoneMinute => Some(Ok(Part::Int(0))),
            _ => timestamp_part(field, *t),
        },
        Value::Date(d) => date_part(field, *d),
        Value::Time(t) => time_part(field, *t),
        Value::Interval(i) => interval_part(field, i),
        v => return Err(Error::Internal(format!("extract from {v:?}"))),
    };
    part.transpose()?.ok_or_else(|| not_supported(word, ty))
}

fn timestamp_part(field: Field, micros: i64) -> Option<Result<Part>> {
    let tm = match Tm::of(micros) {
        Ok(tm) => tm,
        Err(e) => return Some(Err(e)),
    };
    use Field as F;
    let y = i64::from(tm.date.year());
    Some(Ok(Part::Int(match field {
        F::Microseconds | F::Milliseconds | F::Second => {
            return Some(Ok(seconds_part(field, tm.sec, tm.usec)));
        }
        F::Epoch => {
            let n = micros + UNIX_TO_PG_EPOCH_SECS * USECS_PER_SEC;
            return Some(Ok(Part::Scaled {
                n,
                scale: 6,
                float: n as f64 / 1e6,
            }));
        }
        F::Julian => {
            let day = tm.julian_day();
            let secs = (tm.hour * 60 + tm.min) * 60 + tm.sec;
            let float = day as f64 + (secs as f64 + tm.usec as f64 / 1e6) / 86400.0;
            return Some(Ok(Part::Julian {
                day,
                micros: tm.time(),
                float,
            }));
        }
        F::Minute => tm.min,
        F::Hour => tm.hour,
        _ => return date_fields(field, tm.date, y).map(|i| Ok(Part::Int(i))),
    })))
}

/// The fields a date and a timestamp share.
fn date_fields(field: Field, date: NaiveDate, y: i64) -> Option<i64> {
    use Field as F;
    Some(match field {
        F::Day => i64::from(date.day()),
        F::Month => i64::from(date.month()),
        F::Quarter => (i64::from(date.month()) - 1) / 3 + 1,
        F::Week => i64::from(date.iso_week().week()),
        // There is no year 0: 1 BC is year 0 in the calendar arithmetic.
        F::Year if y > 0 => y,
        F::Year => y - 1,
        F::Decade if y >= 0 => y / 10,
        F::Decade => -((8 - (y - 1)) / 10),
        F::Century if y > 0 => (y + 99) / 100,
        F::Century => -((99 - (y - 1)) / 100),
        F::Millennium if y > 0 => (y + 999) / 1000,
        F::Millennium => -((999 - (y - 1)) / 1000),
        F::Isoyear => {
            let iy = i64::from(date.iso_week().year());
            if iy <= 0 { iy - 1 } else { iy }
        }
        F::Dow => i64::from(date.weekday().num_days_from_sunday()),
        F::Isodow => i64::from(date.weekday().number_from_monday()),
        F::Doy => i64::from(date.ordinal()),
        _ => return None,
    })
}

fn date_part(field: Field, days: i32) -> Option<Result<Part>> {
    let Some(date) = datetime::date_of(i64::from(days)) else {
        return Some(Err(datetime::out_of_range(crate::DataType::Date)));
    };
    let days = i64::from(days);
    Some(Ok(Part::Int(match field {
        Field::Epoch => (days * 86_400) + UNIX_TO_PG_EPOCH_SECS,
        Field::Julian => days + PG_EPOCH_JDATE,
        _ => date_fields(field, date, i64::from(date.year()))?,
    })))
}

fn time_part(field: Field, micros: i64) -> Option<Result<Part>> {
    let (sec, usec) = (micros / USECS_PER_SEC % 60, micros % USECS_PER_SEC);
    Some(Ok(match field {
        Field::Microseconds | Field::Milliseconds | Field::Second => seconds_part(field, sec, usec),
        Field::Minute => Part::Int(micros / USECS_PER_MINUTE % 60),
        Field::Hour => Part::Int(micros / USECS_PER_HOUR),
        Field::Epoch => Part::Scaled {
            n: micros,
            scale: 6,
            float: micros as f64 / 1e6,
        },
        _ => return None,
    }))
}

fn interval_part(field: Field, i: &Interval) -> Option<Result<Part>> {
    use Field as F;
    let tm = IntervalTm::of(i);
    Some(Ok(Part::Int(match field {
        F::Microseconds | F::Milliseconds | F::Second => {
            return Some(Ok(seconds_part(field, tm.sec, tm.usec)));
        }
        F::Epoch => return Some(interval_epoch(i)),
        F::Minute => tm.min,
        F::Hour => tm.hour,
        F::Day => tm.mday,
        F::Month => tm.mon,
        F::Quarter => tm.mon / 3 + 1,
        F::Year => tm.year,
        F::Decade => tm.year / 10,
        F::Century => tm.year / 100,
        F::Millennium => tm.year / 1000,
        _ => return None,
    })))
}

/// An interval's seconds with years of 365.25 days and months of 30.
fn interval_epoch(i: &Interval) -> Result<Part> {
    let (years, months) = (i64::from(i.months / 12), i64::from(i.months % 12));
    let quarter_days = 1461 * years + 120 * months + 4 * i64::from(i.days);
    let n = (quarter_days * 21_600)
        .checked_mul(USECS_PER_SEC)
        .and_then(|s| s.checked_add(i.micros))
        .ok_or_else(|| Error::OutOfRange("interval out of range".into()))?;
    let float = i.micros as f64 / 1e6
        + 365.25 * 86400.0 * years as f64
        + 30.0 * 86400.0 * months as f64
        + 86400.0 * f64::from(i.days);
    Ok(Part::Scaled { n, scale: 6, float })
}

/// `age(a, b)`: `a - b` in years, months and days by the calendar (PostgreSQL's
/// `timestamp_age`), borrowing days from the month of the earlier argument.
fn age(a: i64, b: i64) -> Result<Value> {
    let (t1, t2) = (Tm::of(a)?, Tm::of(b)?);
    let neg = a < b;
    let sign = if neg { -1 } else { 1 };
    let mut usec = sign * (t1.usec - t2.usec);
    let mut sec = sign * (t1.sec - t2.sec);
    let mut min = sign * (t1.min - t2.min);
    let mut hour = sign * (t1.hour - t2.hour);
    let mut mday = sign * (i64::from(t1.date.day()) - i64::from(t2.date.day()));
    let mut mon = sign * (i64::from(t1.date.month()) - i64::from(t2.date.month()));
    let mut year = sign * (i64::from(t1.date.year()) - i64::from(t2.date.year()));
    if usec < 0 {
        usec += USECS_PER_SEC;
        sec -= 1;
    }
    if sec < 0 {
        sec += 60;
        min -= 1;
    }
    if min < 0 {
        min += 60;
        hour -= 1;
    }
    if hour < 0 {
        hour += 24;
        mday -= 1;
    }
    let borrow = if neg { t1.date } else { t2.date };
    while mday < 0 {
        mday += days_in_month(borrow);
        mon -= 1;
    }
    while mon < 0 {
        mon += 12;
        year -= 1;
    }
    let tm = IntervalTm {
        year: sign * year,
        mon: sign * mon,
        mday: sign * mday,
        hour: sign * hour,
        min: sign * min,
        sec: sign * sec,
        usec: sign * usec,
    };
    Ok(Value::Interval(tm.interval()?))
}

fn days_in_month(d: NaiveDate) -> i64 {
    let (y, m) = (d.year(), d.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    let first = NaiveDate::from_ymd_opt(y, m, 1);
    match (first, next) {
        (Some(f), Some(n)) => (n - f).num_days(),
        _ => 31,
    }
}

/// `make_date(year, month, day)`: a negative year is BC.
fn make_date(y: i64, m: i64, d: i64) -> Result<Value> {
    let date = calendar_date(y, m, d, true)?;
    Ok(Value::Date(datetime::days_since_epoch(date)))
}

fn calendar_date(y: i64, m: i64, d: i64, allow_bc: bool) -> Result<NaiveDate> {
    let bad =
        || Error::DatetimeOverflow(format!("date field value out of range: {y}-{m:02}-{d:02}"));
    // BC year n is astronomical year 1 - n.
    let year = match y {
        y if y > 0 => y,
        y if y < 0 && allow_bc => y + 1,
        _ => return Err(bad()),
    };
    let (year, m, d) = (
        i32::try_from(year).map_err(|_| bad())?,
        u32::try_from(m).map_err(|_| bad())?,
        u32::try_from(d).map_err(|_| bad())?,
    );
    NaiveDate::from_ymd_opt(year, m, d).ok_or_else(bad)
}

/// `make_timestamp(year, month, day, hour, min, sec)`.
fn make_timestamp(f: [i64; 5], sec: f64) -> Result<Value> {
    let [y, mo, d, h, mi] = f;
    let date = calendar_date(y, mo, d, false)?;
    let bad = || {
        let s = if sec.fract() == 0.0 && sec.abs() < 1e15 {
            format!("{:02}", sec as i64)
        } else {
            format!("{sec}")
        };
        Error::DatetimeOverflow(format!("time field value out of range: {h}:{mi:02}:{s}"))
    };
    if !(0..=24).contains(&h) || !(0..=59).contains(&mi) || !(0.0..=60.0).contains(&sec) {
        return Err(bad());
    }
    let time = (h * 60 + mi) * USECS_PER_MINUTE + (sec * 1e6).round_ties_even() as i64;
    if time > USECS_PER_DAY {
        return Err(bad());
    }
    i64::from(datetime::days_since_epoch(date))
        .checked_mul(USECS_PER_DAY)
        .and_then(|t| t.checked_add(time))
        .map(Value::Timestamp)
        .ok_or_else(overflow)
}

/// `make_interval(years, months, weeks, days, hours, mins, secs)`.
fn make_interval(f: [i64; 6], secs: f64) -> Result<Value> {
    let [years, months, weeks, days, hours, mins] = f;
    let out = || Error::DatetimeOverflow("interval out of range".into());
    let secs = (secs * 1e6).round_ties_even();
    if !secs.is_finite() || secs.abs() >= 9.2e18 {
        return Err(out());
    }
    let months = years
        .checked_mul(12)
        .and_then(|y| y.checked_add(months))
        .and_then(|m| i32::try_from(m).ok())
        .ok_or_else(out)?;
    let days = weeks
        .checked_mul(7)
        .and_then(|w| w.checked_add(days))
        .and_then(|d| i32::try_from(d).ok())
        .ok_or_else(out)?;
    let micros = hours
        .checked_mul(USECS_PER_HOUR)
        .and_then(|h| h.checked_add(mins.checked_mul(USECS_PER_MINUTE)?))
        .and_then(|t| t.checked_add(secs as i64))
        .ok_or_else(out)?;
    Ok(Value::Interval(Interval {
        months,
        days,
        micros,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataType;

    fn ts(s: &str) -> Value {
        datetime::parse(s, DataType::Timestamp).unwrap()
    }

    fn iv(s: &str) -> Value {
        Value::Interval(crate::types::interval::parse(s).unwrap())
    }

    /// Expected values are PostgreSQL 15's.
    #[test]
    fn trunc_follows_postgresql() {
        let t = |u: &str, s: &str| date_trunc(u, &ts(s)).unwrap().to_string();
        assert_eq!(t("month", "2024-02-29 13:14:15.5"), "2024-02-01 00:00:00");
        assert_eq!(t("week", "2023-01-01 10:00"), "2022-12-26 00:00:00");
        assert_eq!(t("century", "1900-05-05"), "1801-01-01 00:00:00");
        assert_eq!(t("millennium", "2000-02-29"), "1001-01-01 00:00:00");
        assert_eq!(t("decade", "0005-01-01"), "0001-01-01 00:00:00 BC");
        assert_eq!(
            t("milliseconds", "2024-01-01 00:00:01.123456"),
            "2024-01-01 00:00:01.123"
        );
        assert_eq!(t("QTR", "2024-08-07"), "2024-07-01 00:00:00");
        let i = |u: &str, s: &str| date_trunc(u, &iv(s)).unwrap().to_string();
        assert_eq!(i("quarter", "1 year 5 mons 3 days"), "1 year 3 mons");
        assert_eq!(i("hour", "-03:30"), "-03:00:00");
        assert_eq!(i("century", "150 years"), "100 years");
        assert!(matches!(
            date_trunc("dow", &ts("2024-01-01")),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(
            date_trunc("week", &iv("1 day")),
            Err(Error::NotSupported(_))
        ));
    }

    #[test]
    fn extract_follows_postgresql() {
        let n = |u: &str, v: &Value| part(u, v).unwrap().numeric().to_string();
        let v = ts("2024-02-29 13:14:15.5");
        assert_eq!(n("second", &v), "15.500000");
        assert_eq!(n("milliseconds", &v), "15500.000");
        assert_eq!(n("epoch", &v), "1709212455.500000");
        assert_eq!(n("julian", &v), "2460370.55156828703703703704");
        assert_eq!(n("doy", &v), "60");
        assert_eq!(n("isodow", &ts("2021-01-03")), "7");
        assert_eq!(n("isoyear", &ts("2021-01-03")), "2020");
        assert_eq!(n("epoch", &iv("1 year")), "31557600.000000");
        assert_eq!(n("quarter", &iv("-1 year -2 mons")), "1");
        assert_eq!(
            part("second", &ts("2024-01-01 00:00:01.25"))
                .unwrap()
                .float(),
            1.25
        );
        assert!(matches!(
            part("dow", &iv("1 day")),
            Err(Error::NotSupported(_))
        ));
        assert!(matches!(
            part("fortnight", &v),
            Err(Error::InvalidParameter(_))
        ));
    }

    #[test]
    fn age_borrows_from_the_earlier_month() {
        let a = |x: &str, y: &str| match (ts(x), ts(y)) {
            (Value::Timestamp(x), Value::Timestamp(y)) => age(x, y).unwrap().to_string(),
            _ => unreachable!(),
        };
        assert_eq!(a("2024-03-31", "2024-02-29"), "1 mon 2 days");
        assert_eq!(a("2024-02-29", "2024-03-31"), "-1 mons -2 days");
        assert_eq!(a("2001-04-10", "1957-06-13"), "43 years 9 mons 27 days");
        assert_eq!(
            a("2024-01-31 10:00", "2023-02-28 12:00:00.5"),
            "11 mons 2 days 21:59:59.5"
        );
    }
}
