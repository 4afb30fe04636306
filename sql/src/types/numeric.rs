//! NUMERIC: exact decimals with PostgreSQL's type modifier, division scale and rounding.
//!
//! Values are `rust_decimal::Decimal`: a 96-bit integer mantissa and a scale of 0 to 28, so a
//! value has at most 28 digits after the point and about 28 significant digits (PostgreSQL's
//! numeric has up to 131072 before and 16383 after the point). A value that does not fit is
//! 22003 "value overflows numeric format". The scale of a value is kept as PostgreSQL's display
//! scale: `1.50` stays `1.50`; sums keep the larger scale and products the sum of the scales.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::{DataType, Error, Result, Value};

/// The largest scale a value can have.
pub const MAX_SCALE: u32 = 28;

/// The largest precision a NUMERIC(p, s) can declare (PostgreSQL's limit).
const MAX_PRECISION: u64 = 1000;

/// The significant digits a quotient has at least (PostgreSQL's `NUMERIC_MIN_SIG_DIGITS`).
const MIN_SIG_DIGITS: i64 = 16;

/// 22003 for a value that does not fit the representation.
pub(crate) fn overflow() -> Error {
    Error::OutOfRange("value overflows numeric format".into())
}

/// A decimal as a value, with zero's sign dropped (PostgreSQL has no negative zero).
pub(crate) fn value(mut d: Decimal) -> Value {
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    Value::Numeric(d)
}

/// Parses numeric text input as `numeric_in` does: an optional sign, digits with an optional
/// point, an optional exponent; surrounding whitespace is ignored. Digits past the 28th after
/// the point are rounded away.
pub(crate) fn parse(s: &str) -> Result<Decimal> {
    let t = s.trim();
    let invalid = || Error::InvalidInput(format!("invalid input syntax for type numeric: \"{s}\""));
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "nan" | "infinity" | "inf") {
        return Err(Error::NotSupported(
            "numeric NaN and infinity are not supported".into(),
        ));
    }
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let points = mantissa.bytes().filter(|b| *b == b'.').count();
    let well_formed = digits > 0
        && points <= 1
        && digits + points == mantissa.len()
        && lower.len() - unsigned.len() <= 1
        && exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        });
    if !well_formed {
        return Err(invalid());
    }
    let d = match exponent {
        Some(_) => Decimal::from_scientific(t).map_err(|_| overflow())?,
        None => t.parse::<Decimal>().map_err(|_| overflow())?,
    };
    Ok(d)
}

/// The type modifier of NUMERIC(p) / NUMERIC(p, s): precision 1 to 1000, scale 0 to the
/// precision (and at most [`MAX_SCALE`] here).
pub(crate) fn typmod(info: &sqlparser::ast::ExactNumberInfo) -> Result<DataType> {
    use sqlparser::ast::ExactNumberInfo as I;
    let (p, s) = match info {
        I::None => return Ok(DataType::Numeric(None)),
        I::Precision(p) => (*p, 0),
        I::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=MAX_PRECISION).contains(&p) {
        return Err(Error::InvalidParameter(format!(
            "NUMERIC precision {p} must be between 1 and {MAX_PRECISION}"
        )));
    }
    if s < 0 || s as u64 > p {
        return Err(Error::NotSupported(format!(
            "NUMERIC scale {s} must be between 0 and precision {p}"
        )));
    }
    if s as u32 > MAX_SCALE {
        return Err(Error::NotSupported(format!(
            "NUMERIC scale {s} is larger than the supported {MAX_SCALE}"
        )));
    }
    Ok(DataType::Numeric(Some((p as u16, s as u16))))
}

/// Rounds half away from zero to `scale` digits after the point and shows exactly that many.
fn round_to(d: Decimal, scale: u32) -> Decimal {
    let scale = scale.min(MAX_SCALE);
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}

/// Applies NUMERIC(p, s) to a value: rounds it to s digits, then 22003 "numeric field
/// overflow" if more than p - s digits remain before the point.
pub(crate) fn apply_typmod(d: Decimal, to: DataType) -> Result<Decimal> {
    let DataType::Numeric(Some((p, s))) = to else {
        return Ok(d);
    };
    let r = round_to(d, u32::from(s));
    let int_digits = u32::from(p - s);
    // Every Decimal is below 10^29.
    if int_digits < 29 && r.abs() >= Decimal::from_i128_with_scale(10i128.pow(int_digits), 0) {
        return Err(Error::OutOfRange("numeric field overflow".into()));
    }
    Ok(r)
}

/// The decimal exponent of the leading digit of a non-zero value (|d| in [10^e, 10^(e+1))).
fn leading_exponent(d: Decimal) -> i64 {
    let m = d.mantissa().unsigned_abs();
    let digits = m.checked_ilog10().unwrap_or(0) as i64 + 1;
    digits - 1 - i64::from(d.scale())
}

/// PostgreSQL's weight (in base-10000 digits) and first base-10000 digit of a value.
fn weight_and_first_digit(d: Decimal) -> (i64, u128) {
    if d.is_zero() {
        return (0, 0);
    }
    let e = leading_exponent(d);
    let weight = e.div_euclid(4);
    // The first base-10000 digit: the decimal digits from e down to 4 * weight.
    let m = d.mantissa().unsigned_abs();
    let shift = 4 * weight + i64::from(d.scale());
    let first = if shift >= 0 {
        m / 10u128.pow(shift as u32)
    } else {
        m * 10u128.pow((-shift) as u32)
    };
    (weight, first)
}

/// The scale of a quotient as PostgreSQL's `select_div_scale` chooses it: at least 16
/// significant digits, and no fewer digits after the point than either operand shows.
fn div_scale(a: Decimal, b: Decimal) -> u32 {
    let (w1, f1) = weight_and_first_digit(a);
    let (w2, f2) = weight_and_first_digit(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let scale = (MIN_SIG_DIGITS - qweight * 4)
        .max(i64::from(a.scale()))
        .max(i64::from(b.scale()))
        .clamp(0, 1000);
    scale as u32
}

/// Divides as numeric division does: 22012 for zero, the quotient rounded to PostgreSQL's
/// scale (at most [`MAX_SCALE`]).
pub(crate) fn div(a: Decimal, b: Decimal) -> Result<Decimal> {
    if b.is_zero() {
        return Err(Error::DivisionByZero);
    }
    let q = a.checked_div(b).ok_or_else(overflow)?;
    Ok(round_to(q, div_scale(a, b)))
}

/// The variance (or, with `stddev`, the standard deviation) of `n` exact values with sum
/// `sum` and sum of squares `sum_sq`, as PostgreSQL's `numeric_stddev_internal` computes
/// it: `(n * sum_sq - sum^2) / (n * (n - 1))` (`n * n` for the population), at the scale of
/// that division, and its square root at the same scale. `None` without values, or with one
/// for a sample.
pub(crate) fn variance(
    n: i64,
    sum: Decimal,
    sum_sq: Decimal,
    sample: bool,
    stddev: bool,
) -> Result<Option<Decimal>> {
    if n == 0 || (sample && n == 1) {
        return Ok(None);
    }
    let count = Decimal::from(n);
    let numerator = count
        .checked_mul(sum_sq)
        .zip(sum.checked_mul(sum))
        .and_then(|(a, b)| a.checked_sub(b))
        .ok_or_else(overflow)?;
    if numerator <= Decimal::ZERO {
        // Roundoff cannot make it negative here, but PostgreSQL shows a plain 0 either way.
        return Ok(Some(Decimal::ZERO));
    }
    let other = if sample { count - Decimal::ONE } else { count };
    let denominator = count.checked_mul(other).ok_or_else(overflow)?;
    let var = div(numerator, denominator)?;
    if !stddev {
        return Ok(Some(var));
    }
    Ok(Some(sqrt(var, div_scale(numerator, denominator))?))
}

/// The square root of a non-negative value rounded to `scale` digits: Newton's iteration in
/// decimal from the double's root (about 28 significant digits before rounding).
fn sqrt(d: Decimal, scale: u32) -> Result<Decimal> {
    if d.is_zero() {
        return Ok(round_to(d, scale));
    }
    let mut x = from_f64(to_f64(d).sqrt(), 15)?;
    for _ in 0..6 {
        let next = x
            .checked_add(d.checked_div(x).ok_or_else(overflow)?)
            .and_then(|s| s.checked_div(Decimal::TWO))
            .ok_or_else(overflow)?;
        if next == x {
            break;
        }
        x = next;
    }
    Ok(round_to(x, scale))
}

/// The remainder of a division, with the dividend's sign (22012 for zero).
pub(crate) fn rem(a: Decimal, b: Decimal) -> Result<Decimal> {
    if b.is_zero() {
        return Err(Error::DivisionByZero);
    }
    a.checked_rem(b).ok_or_else(overflow)
}

/// A double as numeric, through its 15 significant digits as PostgreSQL does (`0.1` stays
/// `0.1`); NaN and infinities are not supported.
pub(crate) fn from_f64(f: f64, digits: usize) -> Result<Decimal> {
    if !f.is_finite() {
        return Err(Error::NotSupported(
            "numeric NaN and infinity are not supported".into(),
        ));
    }
    let text = format!("{:.*e}", digits - 1, f);
    let d = Decimal::from_scientific(&text).map_err(|_| overflow())?;
    Ok(d.normalize())
}

/// A numeric as an integer of type `t`, rounded half away from zero.
pub(crate) fn to_int(d: Decimal, t: DataType) -> Result<Value> {
    let r = d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let i = r.to_i64().ok_or_else(|| super::out_of_range(t))?;
    super::check_int(i, t)
}

/// A numeric as a double (the nearest one).
pub(crate) fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

/// The sign words of PostgreSQL's binary numeric format.
const BINARY_POSITIVE: u16 = 0x0000;
const BINARY_NEGATIVE: u16 = 0x4000;

/// PostgreSQL's binary send format (`numeric_send`): `ndigits i16, weight i16, sign u16,
/// dscale u16`, then the base-10000 digits as `i16`, most significant first, without leading
/// or trailing zero digits.
pub fn to_binary(d: &Decimal) -> Vec<u8> {
    let scale = d.scale() as usize;
    let mut s = d.mantissa().unsigned_abs().to_string();
    if s.len() <= scale {
        s = format!("{}{s}", "0".repeat(scale + 1 - s.len()));
    }
    let (int, frac) = s.split_at(s.len() - scale);
    let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let all = format!("{int}{frac}");
    let mut groups: Vec<u16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |g, b| g * 10 + u16::from(b - b'0')))
        .collect();
    let mut weight = (int.len() / 4) as i16 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i16;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign = if d.is_sign_negative() && !d.is_zero() {
        BINARY_NEGATIVE
    } else {
        BINARY_POSITIVE
    };
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

/// Decodes PostgreSQL's binary numeric format (`numeric_recv`); None when the bytes are not
/// a numeric this representation holds (NaN and infinities included).
pub fn from_binary(b: &[u8]) -> Option<Decimal> {
    let word = |i: usize| b.get(i..i + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = u32::from(word(6)?);
    if b.len() != 8 + 2 * ndigits || dscale > MAX_SCALE || ndigits > 10 {
        return None;
    }
    let negative = match sign {
        BINARY_POSITIVE => false,
        BINARY_NEGATIVE => true,
        _ => return None,
    };
    let mut mantissa: i128 = 0;
    for i in 0..ndigits {
        let g = word(8 + 2 * i)?;
        if g >= 10000 {
            return None;
        }
        mantissa = mantissa.checked_mul(10000)?.checked_add(i128::from(g))?;
    }
    // mantissa × 10000^(weight + 1 - ndigits).
    let mut exp = 4 * (weight + 1 - ndigits as i64);
    while exp > 0 {
        mantissa = mantissa.checked_mul(10)?;
        exp -= 1;
    }
    let scale = u32::try_from(-exp).ok()?;
    if mantissa >= 1 << 96 || scale > MAX_SCALE {
        return None;
    }
    let mut d = Decimal::from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale);
    d.rescale(dscale);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        parse(s).expect("valid")
    }

    /// Variances and standard deviations of exact values, as PostgreSQL 15 shows them.
    #[test]
    fn variance_matches_postgres() {
        let stat = |values: &[&str], sample: bool, stddev: bool| {
            let values: Vec<Decimal> = values.iter().map(|v| dec(v)).collect();
            let sum: Decimal = values.iter().sum();
            let sum_sq: Decimal = values.iter().map(|v| v * v).sum();
            variance(values.len() as i64, sum, sum_sq, sample, stddev)
                .expect("in range")
                .map(|d| d.to_string())
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(stat(&["1", "2", "4"], true, false), s("2.3333333333333333"));
        assert_eq!(stat(&["1", "2", "4"], true, true), s("1.5275252316519467"));
        assert_eq!(stat(&["1", "2", "4"], false, true), s("1.2472191289246471"));
        assert_eq!(
            stat(&["1.50", "2.25", "4.00"], false, true),
            s("1.04748375749804455964")
        );
        assert_eq!(
            stat(&["1.123456789", "2.1", "3"], true, false),
            s("0.88084184428339684033")
        );
        assert_eq!(stat(&["5", "5"], true, true), s("0"));
        assert_eq!(stat(&["7"], true, false), None);
        assert_eq!(stat(&["7"], false, false), s("0"));
        assert_eq!(stat(&[], false, false), None);
    }

    /// Expected quotients are PostgreSQL 15's.
    #[test]
    fn division_scale_is_postgres() {
        let cases = [
            ("1", "3", "0.33333333333333333333"),
            ("2", "3", "0.66666666666666666667"),
            ("10", "4", "2.5000000000000000"),
            ("1", "8", "0.12500000000000000000"),
            ("100000", "3", "33333.333333333333"),
            ("1.50", "2", "0.75000000000000000000"),
            ("7", "7", "1.00000000000000000000"),
            ("-1", "3", "-0.33333333333333333333"),
            ("12345678", "0.001", "12345678000.00000000"),
        ];
        for (a, b, want) in cases {
            assert_eq!(div(dec(a), dec(b)).unwrap().to_string(), want, "{a} / {b}");
        }
        assert_eq!(div(dec("1"), dec("0")), Err(Error::DivisionByZero));
    }

    #[test]
    fn typmod_rounds_and_overflows() {
        let t = DataType::Numeric(Some((5, 2)));
        assert_eq!(apply_typmod(dec("1.005"), t).unwrap().to_string(), "1.01");
        assert_eq!(apply_typmod(dec("-1.005"), t).unwrap().to_string(), "-1.01");
        assert_eq!(apply_typmod(dec("2"), t).unwrap().to_string(), "2.00");
        assert_eq!(
            apply_typmod(dec("999.994"), t).unwrap().to_string(),
            "999.99"
        );
        assert_eq!(
            apply_typmod(dec("999.995"), t),
            Err(Error::OutOfRange("numeric field overflow".into()))
        );
        let t = DataType::Numeric(Some((3, 0)));
        assert_eq!(apply_typmod(dec("12.5"), t).unwrap().to_string(), "13");
    }

    #[test]
    fn input_syntax() {
        assert_eq!(dec(" 1.50 ").to_string(), "1.50");
        assert_eq!(dec("-.5").to_string(), "-0.5");
        assert_eq!(dec("1e3").to_string(), "1000");
        assert_eq!(dec("1.5E-2").to_string(), "0.015");
        assert_eq!(dec("+7.").to_string(), "7");
        for bad in ["", "abc", "1.2.3", "--1", "1e", "e5", ".", "1 2"] {
            assert!(matches!(parse(bad), Err(Error::InvalidInput(_))), "{bad:?}");
        }
        assert_eq!(parse("1e100"), Err(overflow()));
        // Nothing a client can type panics; what does not fit is 22003.
        let long = "9".repeat(100);
        for s in [
            "1e99999999999999999999",
            "1e-99999",
            long.as_str(),
            "0.0000000000000000000000000000001",
        ] {
            match parse(s) {
                Ok(_) | Err(Error::OutOfRange(_)) => {}
                other => panic!("{s}: {other:?}"),
            }
        }
        assert!(matches!(parse("NaN"), Err(Error::NotSupported(_))));
    }

    /// Expected bytes are what PostgreSQL 15 sends (`numeric_send`).
    #[test]
    fn binary_format() {
        let cases: [(&str, &[u8]); 5] = [
            ("0", &[0, 0, 0, 0, 0, 0, 0, 0]),
            ("1.50", &[0, 2, 0, 0, 0, 0, 0, 2, 0x00, 0x01, 0x13, 0x88]),
            (
                "-12345.6789",
                &[0, 3, 0, 1, 0x40, 0, 0, 4, 0, 1, 0x09, 0x29, 0x1a, 0x85],
            ),
            ("10000", &[0, 1, 0, 1, 0, 0, 0, 0, 0, 1]),
            ("0.0001", &[0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1]),
        ];
        for (text, bytes) in cases {
            let d = dec(text);
            assert_eq!(to_binary(&d), bytes, "{text}");
            assert_eq!(from_binary(bytes).map(|d| d.to_string()), Some(text.into()));
        }
        assert_eq!(from_binary(&[0, 0, 0, 0, 0xc0, 0, 0, 0]), None, "NaN");
        assert_eq!(from_binary(&[0, 1, 0, 0]), None, "short");
    }

    #[test]
    fn conversions() {
        assert_eq!(from_f64(0.1, 15).unwrap().to_string(), "0.1");
        assert_eq!(
            from_f64(1e20, 15).unwrap().to_string(),
            "100000000000000000000"
        );
        assert_eq!(to_int(dec("2.5"), DataType::Int4), Ok(Value::Int(3)));
        assert_eq!(to_int(dec("-2.5"), DataType::Int4), Ok(Value::Int(-3)));
        assert!(to_int(dec("40000"), DataType::Int2).is_err());
        assert_eq!(to_f64(dec("0.5")), 0.5);
    }
}
