//! The envelope a KV API value is stored in: `0x01 flags:u8 [expires_at_ms:u64] value...`.
//!
//! `flags` bit 0 says an expiry follows (TSO-physical milliseconds, big-endian). Other bits are
//! reserved and refused on decode, so a later version can add fields without old readers
//! misreading them.

use crate::Timestamp;

const ENVELOPE_V1: u8 = 1;
const FLAG_EXPIRES: u8 = 0x01;

/// A decoded stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// When the value expires (TSO-physical milliseconds); `None` = never.
    pub expires_at_ms: Option<u64>,
    pub value: Vec<u8>,
}

/// A stored value that is not a valid envelope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed stored KV value: {0}")]
pub struct Malformed(&'static str);

impl Envelope {
    /// Encodes `value` with an optional expiry.
    pub fn encode(value: &[u8], expires_at_ms: Option<u64>) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len() + 10);
        out.push(ENVELOPE_V1);
        match expires_at_ms {
            Some(at) => {
                out.push(FLAG_EXPIRES);
                out.extend_from_slice(&at.to_be_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(value);
        out
    }

    /// The encoded size of a value of `len` bytes with an expiry (the larger form).
    pub fn max_encoded_len(len: usize) -> usize {
        len + 10
    }

    /// Decodes a stored value.
    pub fn decode(mut stored: Vec<u8>) -> Result<Envelope, Malformed> {
        let (version, flags) = match stored.as_slice() {
            [v, f, ..] => (*v, *f),
            _ => return Err(Malformed("truncated header")),
        };
        if version != ENVELOPE_V1 {
            return Err(Malformed("unknown version"));
        }
        if flags & !FLAG_EXPIRES != 0 {
            return Err(Malformed("unknown flags"));
        }
        let (expires_at_ms, header) = if flags & FLAG_EXPIRES != 0 {
            let at: [u8; 8] = stored
                .get(2..10)
                .and_then(|b| b.try_into().ok())
                .ok_or(Malformed("truncated expiry"))?;
            (Some(u64::from_be_bytes(at)), 10)
        } else {
            (None, 2)
        };
        stored.drain(..header);
        Ok(Envelope {
            expires_at_ms,
            value: stored,
        })
    }

    /// Whether the value is expired for a reader at `read_ts`.
    pub fn is_expired(&self, read_ts: Timestamp) -> bool {
        self.expires_at_ms
            .is_some_and(|at| at <= kv::physical_ms(read_ts))
    }

    /// The value if it is live at `read_ts`.
    pub fn live(self, read_ts: Timestamp) -> Option<Envelope> {
        (!self.is_expired(read_ts)).then_some(self)
    }
}

/// The expiry of a value written by a transaction that started at `start_ts` with `ttl_ms`
/// (0 = none).
pub fn expiry(start_ts: Timestamp, ttl_ms: u64) -> Option<u64> {
    (ttl_ms > 0).then(|| kv::physical_ms(start_ts).saturating_add(ttl_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_expiry() {
        for (value, at) in [
            (&b""[..], None),
            (b"\0\x01\xff", None),
            (b"v", Some(42)),
            (b"", Some(u64::MAX)),
        ] {
            let decoded = Envelope::decode(Envelope::encode(value, at)).expect("valid");
            assert_eq!(decoded.value, value);
            assert_eq!(decoded.expires_at_ms, at);
        }
    }

    #[test]
    fn refuses_malformed_values() {
        assert!(Envelope::decode(vec![]).is_err());
        assert!(Envelope::decode(vec![2, 0]).is_err());
        assert!(Envelope::decode(vec![1, 2]).is_err());
        assert!(Envelope::decode(vec![1, 1, 0, 0]).is_err());
    }

    #[test]
    fn expiry_uses_the_physical_time_of_timestamps() {
        let ts = |ms: u64| ms << 18 | 7;
        let e = Envelope::decode(Envelope::encode(b"v", expiry(ts(1000), 50))).expect("valid");
        assert_eq!(e.expires_at_ms, Some(1050));
        assert!(!e.is_expired(ts(1049)));
        assert!(e.is_expired(ts(1050)));
        assert_eq!(expiry(ts(1000), 0), None);
    }
}
