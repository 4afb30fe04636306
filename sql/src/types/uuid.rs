//! UUID: 16 bytes, read as 32 hex digits (any case, optionally in braces, with a hyphen
//! allowed after any group of four digits, as `uuid_in` does) and printed as the lower-case
//! 8-4-4-4-12 form.

use crate::{Error, Result};

/// Parses uuid text input.
pub(crate) fn parse(s: &str) -> Result<[u8; 16]> {
    let invalid = || Error::InvalidInput(format!("invalid input syntax for type uuid: \"{s}\""));
    let t = s.trim();
    let t = match t.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}').ok_or_else(invalid)?,
        None => t,
    };
    let mut out = [0u8; 16];
    let mut digits = 0;
    let mut last_hyphen = true;
    for c in t.chars() {
        if c == '-' {
            // A hyphen may follow a group of four digits, never start or double.
            if last_hyphen || digits % 4 != 0 || digits == 32 {
                return Err(invalid());
            }
            last_hyphen = true;
            continue;
        }
        let d = c.to_digit(16).ok_or_else(invalid)? as u8;
        if digits == 32 {
            return Err(invalid());
        }
        out[digits / 2] |= if digits % 2 == 0 { d << 4 } else { d };
        digits += 1;
        last_hyphen = false;
    }
    if digits != 32 || last_hyphen {
        return Err(invalid());
    }
    Ok(out)
}

/// The canonical text form.
pub(crate) fn format(u: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted and rejected forms are PostgreSQL 15's.
    #[test]
    fn text_forms() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for input in [
            canonical,
            "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ] {
            assert_eq!(format(&parse(input).unwrap()), canonical, "{input}");
        }
        for bad in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11-",
            "a0eebc99--9c0b4ef8bb6d6bb9bd380a11",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "g0eebc999c0b4ef8bb6d6bb9bd380a11",
            "",
        ] {
            assert!(matches!(parse(bad), Err(Error::InvalidInput(_))), "{bad}");
        }
    }
}
