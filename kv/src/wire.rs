//! The byte form of requests to ranges and their replies, for a [`RangeSender`] that crosses
//! the network: one version byte, then the value in postcard (a compact, stable serde format).
//!
//! A request travels with the descriptor the client routed it by (the leader checks its keys
//! against its own); a reply travels as the whole `Result`, so the receiver's routing errors
//! (`NotLeader` with its leader hint, `RangeKeyMismatch` with the current descriptor) reach
//! the sender as the values the local path returns. Malformed bytes from a peer are an error,
//! never a panic. The layout is in `docs/formats.md`.
//!
//! [`RangeSender`]: crate::request::RangeSender

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::range::RangeDescriptor;
use crate::request::{Reply, Request};

/// The version byte of every encoding in this module; a different one is refused.
pub const WIRE_VERSION: u8 = 1;

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    // Serializing into a Vec fails only for types serde cannot express, which ours are not.
    out.extend(postcard::to_stdvec(value).expect("kv request types serialize"));
    out
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&WIRE_VERSION, body)) => postcard::from_bytes(body)
            .map_err(|e| Error::Unavailable(format!("malformed {what} from a peer: {e}"))),
        Some((v, _)) => Err(Error::Unavailable(format!(
            "{what} in wire version {v}, this node speaks {WIRE_VERSION}: upgrade every node to \
             the same release"
        ))),
        None => Err(Error::Unavailable(format!("empty {what} from a peer"))),
    }
}

/// Encodes a request and the descriptor it was routed by.
pub fn encode_request(range: &RangeDescriptor, req: &Request) -> Vec<u8> {
    encode(&(range, req))
}

/// Decodes [`encode_request`]'s bytes.
pub fn decode_request(bytes: &[u8]) -> Result<(RangeDescriptor, Request)> {
    decode(bytes, "kv request")
}

/// Encodes the outcome of a request.
pub fn encode_reply(reply: &Result<Reply>) -> Vec<u8> {
    encode(reply)
}

/// Decodes [`encode_reply`]'s bytes. A malformed reply is an `Unavailable` error (as is a reply
/// that never came): for a request whose outcome matters the caller's ambiguity rules apply.
pub fn decode_reply(bytes: &[u8]) -> Result<Reply> {
    decode::<Result<Reply>>(bytes, "kv reply")?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Response};
    use crate::mvcc::{Lock, LockKind, LockedKey, Mutation, Op, ScanResult};

    fn desc() -> RangeDescriptor {
        RangeDescriptor {
            range_id: 7,
            start: b"a".to_vec(),
            end: b"m".to_vec(),
            replicas: vec![1, 2, 3],
            generation: 4,
        }
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Get {
                key: b"k".to_vec(),
                ts: 42,
            },
            Request::Scan {
                start: b"a".to_vec(),
                end: b"b".to_vec(),
                ts: u64::MAX,
                limit: usize::MAX,
            },
            Request::ReadIndex,
            Request::GetMany {
                keys: vec![b"a".to_vec(), b"b".to_vec()],
                ts: 7,
            },
            Request::Propose(Command::Rollback {
                start_ts: 9,
                keys: vec![b"x".to_vec()],
            }),
            Request::OnePhaseCommit {
                start_ts: 1,
                read_ts: 2,
                primary: b"p".to_vec(),
                mutations: vec![Mutation {
                    key: b"p".to_vec(),
                    op: Op::Put(vec![0, 1, 255]),
                }],
                reads: vec![(b"a".to_vec(), b"c".to_vec())],
            },
        ];
        for req in requests {
            let bytes = encode_request(&desc(), &req);
            assert_eq!(bytes[0], WIRE_VERSION);
            assert_eq!(decode_request(&bytes).unwrap(), (desc(), req));
        }
    }

    #[test]
    fn replies_and_errors_round_trip() {
        let lock = Lock {
            start_ts: 5,
            primary: b"p".to_vec(),
            expiry_ms: 77,
            kind: LockKind::Put,
            for_update_ts: 0,
            value: Some(b"v".to_vec()),
        };
        let replies: Vec<Result<Reply>> = vec![
            Ok(Reply::Value(Ok(Some(b"v".to_vec())))),
            Ok(Reply::Value(Err(LockedKey {
                key: b"k".to_vec(),
                lock,
            }))),
            Ok(Reply::Scan(ScanResult::default())),
            Ok(Reply::Values(vec![Ok(None), Ok(Some(b"v".to_vec()))])),
            Ok(Reply::Response(Response::default())),
            Ok(Reply::Term(3)),
            Err(Error::NotLeader { leader: Some(2) }),
            Err(Error::RangeKeyMismatch(Box::new(desc()))),
            Err(Error::Ambiguous("timed out".into())),
        ];
        for reply in replies {
            let bytes = encode_reply(&reply);
            assert_eq!(decode_reply(&bytes), reply);
        }
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let good = encode_request(&desc(), &Request::ReadIndex);
        assert!(decode_request(&[]).is_err());
        assert!(decode_request(&[WIRE_VERSION + 1, 0]).is_err());
        for cut in 1..good.len() {
            // Every truncation is refused or decodes to something; none panics.
            let _ = decode_request(&good[..cut]);
        }
        assert!(decode_reply(&[WIRE_VERSION, 0xff, 0xff, 0xff]).is_err());
    }
}
