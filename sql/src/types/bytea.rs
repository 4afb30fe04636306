//! BYTEA: binary strings in PostgreSQL's hex text format (`\x0102ff`), with the escape
//! format (`ab\\c\001`) accepted on input.

use crate::{Error, Result};

/// Parses bytea text input (`byteain`): `\x` then pairs of hex digits (whitespace allowed
/// between pairs), or the escape format, in which `\\` is a backslash and `\nnn` an octal byte.
pub(crate) fn parse(s: &str) -> Result<Vec<u8>> {
    match s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        Some(hex) => parse_hex(hex),
        None => parse_escape(s),
    }
}

fn hex_digit(c: u8) -> Result<u8> {
    (c as char).to_digit(16).map(|d| d as u8).ok_or_else(|| {
        Error::InvalidParameter(format!("invalid hexadecimal digit: \"{}\"", c as char))
    })
}

fn parse_hex(hex: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut bytes = hex.bytes().filter(|b| !b.is_ascii_whitespace());
    while let Some(hi) = bytes.next() {
        let hi = hex_digit(hi)?;
        let Some(lo) = bytes.next() else {
            return Err(Error::InvalidParameter(
                "invalid hexadecimal data: odd number of digits".into(),
            ));
        };
        out.push(hi << 4 | hex_digit(lo)?);
    }
    Ok(out)
}

fn parse_escape(s: &str) -> Result<Vec<u8>> {
    let invalid = || Error::InvalidInput("invalid input syntax for type bytea".into());
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = b.get(i + 1..i + 4).ok_or_else(invalid)?;
            let ok = octal[0] <= b'3' && octal.iter().all(|c| (b'0'..=b'7').contains(c));
            if !ok {
                return Err(invalid());
            }
            out.push(octal.iter().fold(0u8, |v, c| v * 8 + (c - b'0')));
            i += 4;
        }
    }
    Ok(out)
}

/// The hex output format (`byteaout` with `bytea_output = hex`).
pub(crate) fn format(b: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * b.len());
    out.push_str("\\x");
    for byte in b {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values are PostgreSQL 15's.
    #[test]
    fn text_formats() {
        assert_eq!(parse("\\x 01 AB").unwrap(), vec![0x01, 0xab]);
        assert_eq!(parse("ab\\\\c\\001").unwrap(), b"ab\\c\x01".to_vec());
        assert_eq!(parse("").unwrap(), Vec::<u8>::new());
        assert_eq!(format(&[0x61, 0x62, 0x5c, 0x63, 0x01]), "\\x61625c6301");
        assert_eq!(format(&[]), "\\x");
        assert_eq!(
            parse("\\xzz"),
            Err(Error::InvalidParameter(
                "invalid hexadecimal digit: \"z\"".into()
            ))
        );
        assert!(matches!(parse("\\x123"), Err(Error::InvalidParameter(_))));
        assert!(matches!(parse("a\\q"), Err(Error::InvalidInput(_))));
        assert!(matches!(parse("a\\400"), Err(Error::InvalidInput(_))));
    }
}
