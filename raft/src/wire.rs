//! Explicit, versioned binary encodings of the Raft RPC bodies that [`Message`](crate::Message)
//! and [`Reply`](crate::Reply) carry, and of the message envelope itself.
//!
//! Every body starts with the version byte [`WIRE_VERSION`] and is built from the pieces of the
//! storage codec (big-endian fixed-width integers, u32-length-prefixed byte strings, optional
//! log ids as a 0/1 tag then the id); flags are 0 or 1. Log entries inside append entries are
//! length-prefixed entry envelopes, exactly as the log stores them. Decoding never panics:
//! truncated, trailing or unknown bytes are an [`io::ErrorKind::InvalidData`] error.

use std::io;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};

use crate::codec::{self, Reader, Writer};
use crate::state::AppliedState;
use crate::transport::{Message, RpcKind};
use crate::types::{Cfg, Vote};
use crate::{Command, Error, Response};

/// Version byte of every RPC body and of the message envelope.
pub(crate) const WIRE_VERSION: u8 = 1;

/// An RPC body with an explicit binary encoding.
pub(crate) trait Body: Sized {
    /// What the body is, for error messages.
    const WHAT: &'static str;

    /// Writes the body after the version byte.
    fn write(&self, w: &mut Writer);

    /// Reads a body written by [`write`](Self::write).
    fn read(r: &mut Reader<'_>) -> io::Result<Self>;

    /// The body with its version byte.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_version(WIRE_VERSION);
        self.write(&mut w);
        w.buf
    }

    /// Decodes bytes written by [`encode`](Self::encode), refusing trailing bytes.
    fn decode(b: &[u8]) -> io::Result<Self> {
        let mut r = Reader::with_version(b, WIRE_VERSION, Self::WHAT)?;
        let body = Self::read(&mut r)?;
        r.finish()?;
        Ok(body)
    }
}

/// Tags of [`AppendEntriesResponse`].
const APPEND_SUCCESS: u8 = 0;
const APPEND_PARTIAL: u8 = 1;
const APPEND_CONFLICT: u8 = 2;
const APPEND_HIGHER_VOTE: u8 = 3;

/// Tags of [`TransferLeaderResponse`].
const TRANSFER_OK: u8 = 0;
const TRANSFER_VOTE_CHANGED: u8 = 1;
const TRANSFER_LOG_NOT_FLUSHED: u8 = 2;

/// Vote, previous log id, leader commit, then the entries (a u64 count, each entry
/// length-prefixed).
impl<C: Command, R: Response> Body for AppendEntriesRequest<Cfg<C, R>> {
    const WHAT: &'static str = "append entries request";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
        w.opt_log_id(self.prev_log_id.as_ref());
        w.opt_log_id(self.leader_commit.as_ref());
        w.u64(self.entries.len() as u64);
        for entry in &self.entries {
            w.bytes(&codec::encode_entry(entry));
        }
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        let vote = r.vote()?;
        let prev_log_id = r.opt_log_id()?;
        let leader_commit = r.opt_log_id()?;
        let n = r.u64()?;
        // No capacity from the count: a peer's count is not trusted until the entries are read.
        let mut entries = Vec::new();
        for _ in 0..n {
            entries.push(codec::decode_entry(r.bytes()?)?);
        }
        Ok(AppendEntriesRequest {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        })
    }
}

/// A tag, then the partially matched log id or the higher vote.
impl<C: Command, R: Response> Body for AppendEntriesResponse<Cfg<C, R>> {
    const WHAT: &'static str = "append entries response";

    fn write(&self, w: &mut Writer) {
        match self {
            AppendEntriesResponse::Success => w.u8(APPEND_SUCCESS),
            AppendEntriesResponse::PartialSuccess(id) => {
                w.u8(APPEND_PARTIAL);
                w.opt_log_id(id.as_ref());
            }
            AppendEntriesResponse::Conflict => w.u8(APPEND_CONFLICT),
            AppendEntriesResponse::HigherVote(vote) => {
                w.u8(APPEND_HIGHER_VOTE);
                w.vote(vote);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(match r.u8()? {
            APPEND_SUCCESS => AppendEntriesResponse::Success,
            APPEND_PARTIAL => AppendEntriesResponse::PartialSuccess(r.opt_log_id()?),
            APPEND_CONFLICT => AppendEntriesResponse::Conflict,
            APPEND_HIGHER_VOTE => AppendEntriesResponse::HigherVote(r.vote()?),
            t => return Err(codec::corrupt(&format!("append entries response tag {t}"))),
        })
    }
}

/// Vote, last log id, leadership-transfer flag (vote and pre-vote requests alike).
impl<C: Command, R: Response> Body for VoteRequest<Cfg<C, R>> {
    const WHAT: &'static str = "vote request";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
        w.opt_log_id(self.last_log_id.as_ref());
        w.bool(self.leadership_transfer);
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(VoteRequest {
            vote: r.vote()?,
            last_log_id: r.opt_log_id()?,
            leadership_transfer: r.bool()?,
        })
    }
}

/// Vote, granted flag, last log id.
impl<C: Command, R: Response> Body for VoteResponse<Cfg<C, R>> {
    const WHAT: &'static str = "vote response";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
        w.bool(self.vote_granted);
        w.opt_log_id(self.last_log_id.as_ref());
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(VoteResponse {
            vote: r.vote()?,
            vote_granted: r.bool()?,
            last_log_id: r.opt_log_id()?,
        })
    }
}

/// The leader's vote, the target node, the leader's last log id.
impl<C: Command, R: Response> Body for TransferLeaderRequest<Cfg<C, R>> {
    const WHAT: &'static str = "transfer leader request";

    fn write(&self, w: &mut Writer) {
        w.vote(self.from_leader());
        w.u64(*self.to_node_id());
        w.opt_log_id(self.last_log_id());
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        let from = r.vote()?;
        let to = r.u64()?;
        let last_log_id = r.opt_log_id()?;
        Ok(TransferLeaderRequest::new(from, to, last_log_id))
    }
}

/// A tag, then the expected and actual votes or log ids of a refusal.
impl<C: Command, R: Response> Body for TransferLeaderResponse<Cfg<C, R>> {
    const WHAT: &'static str = "transfer leader response";

    fn write(&self, w: &mut Writer) {
        match self {
            Ok(()) => w.u8(TRANSFER_OK),
            Err(TransferLeaderError::VoteChanged { expected, actual }) => {
                w.u8(TRANSFER_VOTE_CHANGED);
                w.vote(expected);
                w.vote(actual);
            }
            Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
                w.u8(TRANSFER_LOG_NOT_FLUSHED);
                w.opt_log_id(expected.as_ref());
                w.opt_log_id(actual.as_ref());
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(match r.u8()? {
            TRANSFER_OK => Ok(()),
            TRANSFER_VOTE_CHANGED => Err(TransferLeaderError::VoteChanged {
                expected: r.vote()?,
                actual: r.vote()?,
            }),
            TRANSFER_LOG_NOT_FLUSHED => Err(TransferLeaderError::LogNotFlushed {
                expected: r.opt_log_id()?,
                actual: r.opt_log_id()?,
            }),
            t => {
                return Err(codec::corrupt(&format!("transfer leader response tag {t}")));
            }
        })
    }
}

/// A full snapshot on the wire: the sender's vote, the applied state the data is at, the data.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SnapshotRequest {
    pub(crate) vote: Vote,
    pub(crate) state: AppliedState,
    pub(crate) data: Vec<u8>,
}

/// Vote, the applied state (length-prefixed, in its own versioned encoding), then the data: the
/// rest of the body, so its size is not limited by a length prefix.
impl Body for SnapshotRequest {
    const WHAT: &'static str = "snapshot";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
        w.bytes(&self.state.to_bytes());
        w.buf.extend_from_slice(&self.data);
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(SnapshotRequest {
            vote: r.vote()?,
            state: AppliedState::from_bytes(r.bytes()?)?,
            data: r.rest().to_vec(),
        })
    }
}

/// One piece of a snapshot too large for one message: which transfer it belongs to (the
/// sender's vote and a transfer id), where it starts, the whole data's length, the applied
/// state the data is at, and its bytes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SnapshotChunk {
    pub(crate) vote: Vote,
    pub(crate) transfer: u64,
    pub(crate) offset: u64,
    pub(crate) total: u64,
    pub(crate) state: AppliedState,
    pub(crate) data: Vec<u8>,
}

/// Vote, transfer id, offset, total length, the applied state (length-prefixed), then the bytes:
/// the rest of the body.
impl Body for SnapshotChunk {
    const WHAT: &'static str = "snapshot chunk";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
        w.u64(self.transfer);
        w.u64(self.offset);
        w.u64(self.total);
        w.bytes(&self.state.to_bytes());
        w.buf.extend_from_slice(&self.data);
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(SnapshotChunk {
            vote: r.vote()?,
            transfer: r.u64()?,
            offset: r.u64()?,
            total: r.u64()?,
            state: AppliedState::from_bytes(r.bytes()?)?,
            data: r.rest().to_vec(),
        })
    }
}

/// The receiver's vote.
impl<C: Command, R: Response> Body for SnapshotResponse<Cfg<C, R>> {
    const WHAT: &'static str = "snapshot response";

    fn write(&self, w: &mut Writer) {
        w.vote(&self.vote);
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        Ok(SnapshotResponse::new(r.vote()?))
    }
}

fn kind_tag(kind: RpcKind) -> u8 {
    match kind {
        RpcKind::AppendEntries => 0,
        RpcKind::Vote => 1,
        RpcKind::PreVote => 2,
        RpcKind::Snapshot => 3,
        RpcKind::TransferLeader => 4,
        RpcKind::Quiesce => 5,
        RpcKind::Ping => 6,
        RpcKind::SnapshotChunk => 7,
    }
}

/// Group, sending node, target node, RPC kind (one byte), then the body: the rest.
impl Body for Message {
    const WHAT: &'static str = "raft message";

    fn write(&self, w: &mut Writer) {
        w.u64(self.group);
        w.u64(self.from);
        w.u64(self.to);
        w.u8(kind_tag(self.kind));
        w.buf.extend_from_slice(&self.body);
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        let group = r.u64()?;
        let from = r.u64()?;
        let to = r.u64()?;
        let kind = match r.u8()? {
            0 => RpcKind::AppendEntries,
            1 => RpcKind::Vote,
            2 => RpcKind::PreVote,
            3 => RpcKind::Snapshot,
            4 => RpcKind::TransferLeader,
            5 => RpcKind::Quiesce,
            6 => RpcKind::Ping,
            7 => RpcKind::SnapshotChunk,
            t => return Err(codec::corrupt(&format!("rpc kind {t}"))),
        };
        Ok(Message {
            group,
            from,
            to,
            kind,
            body: r.rest().to_vec(),
        })
    }
}

/// A tag byte, then: `NotLeader` (0): a presence byte and the leader's id; the others
/// (`Unavailable` 1, `Ambiguous` 2, `Invalid` 3, `Fatal` 4, `MembershipChanged` 5): the message
/// (length-prefixed UTF-8).
impl Body for Error {
    const WHAT: &'static str = "raft error";

    fn write(&self, w: &mut Writer) {
        let (tag, text) = match self {
            Error::NotLeader { leader } => {
                w.u8(0);
                w.bool(leader.is_some());
                w.u64(leader.unwrap_or(0));
                return;
            }
            Error::Unavailable(m) => (1, m),
            Error::Ambiguous(m) => (2, m),
            Error::Invalid(m) => (3, m),
            Error::Fatal(m) => (4, m),
            Error::MembershipChanged(m) => (5, m),
        };
        w.u8(tag);
        w.bytes(text.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> io::Result<Self> {
        let tag = r.u8()?;
        if tag == 0 {
            let present = r.bool()?;
            let id = r.u64()?;
            return Ok(Error::NotLeader {
                leader: present.then_some(id),
            });
        }
        let text = String::from_utf8(r.bytes()?.to_vec())
            .map_err(|_| codec::corrupt("raft error message"))?;
        Ok(match tag {
            1 => Error::Unavailable(text),
            2 => Error::Ambiguous(text),
            3 => Error::Invalid(text),
            4 => Error::Fatal(text),
            5 => Error::MembershipChanged(text),
            t => return Err(codec::corrupt(&format!("raft error tag {t}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;
    use crate::codec::tests::{Cmd, assert_rejects_truncated_and_trailing, membership};
    use crate::types::{self, log_id};

    type C = Cfg<Cmd, ()>;

    fn vote(term: u64, node: u64, committed: bool) -> Vote {
        Vote {
            leader_id: types::Clid {
                term,
                node_id: node,
            },
            committed,
        }
    }

    /// Round-trips `body`, checks its version byte, and that damaged copies are errors.
    fn check<T: Body + PartialEq + Debug>(body: T) {
        let bytes = body.encode();
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(T::decode(&bytes).unwrap(), body);
        assert_rejects_truncated_and_trailing(&bytes, T::decode);
        let mut other = bytes.clone();
        other[0] = WIRE_VERSION + 1;
        assert!(T::decode(&other).is_err());
    }

    #[test]
    fn errors_round_trip() {
        check(Error::NotLeader { leader: Some(3) });
        check(Error::NotLeader { leader: None });
        check(Error::Unavailable("group 7 not on this node".into()));
        check(Error::Ambiguous("timed out".into()));
        check(Error::Invalid("bad".into()));
        check(Error::Fatal("disk".into()));
        check(Error::MembershipChanged(
            "expected 1-1-4, found 2-1-9".into(),
        ));
        assert!(matches!(Error::from_bytes(&[0xff]), Error::Invalid(_)));
    }

    #[test]
    fn append_entries_roundtrip() {
        let entries = vec![
            openraft::Entry {
                log_id: log_id(2, 1, 5),
                payload: types::Payload::Blank,
            },
            openraft::Entry {
                log_id: log_id(2, 1, 6),
                payload: types::Payload::Normal(Cmd("put a=1".into())),
            },
            openraft::Entry {
                log_id: log_id(2, 1, 7),
                payload: types::Payload::Membership {
                    membership: membership(),
                    command: None,
                },
            },
            openraft::Entry {
                log_id: log_id(2, 1, 8),
                payload: types::Payload::Membership {
                    membership: membership(),
                    command: Some(Cmd("descriptor".into())),
                },
            },
        ];
        for (prev, commit, entries) in [
            (None, None, Vec::new()),
            (Some(log_id(2, 1, 4)), Some(log_id(1, 2, 3)), entries),
        ] {
            let req = AppendEntriesRequest::<C> {
                vote: vote(2, 1, true),
                prev_log_id: prev,
                entries,
                leader_commit: commit,
            };
            let bytes = req.encode();
            let back = AppendEntriesRequest::<C>::decode(&bytes).unwrap();
            assert_eq!(
                (
                    back.vote,
                    back.prev_log_id,
                    back.leader_commit,
                    back.entries
                ),
                (
                    req.vote,
                    req.prev_log_id,
                    req.leader_commit,
                    req.entries.clone()
                )
            );
            assert_rejects_truncated_and_trailing(&bytes, AppendEntriesRequest::<C>::decode);
        }
        for resp in [
            AppendEntriesResponse::<C>::Success,
            AppendEntriesResponse::PartialSuccess(None),
            AppendEntriesResponse::PartialSuccess(Some(log_id(3, 1, 9))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(vote(4, 2, false)),
        ] {
            check(resp);
        }
        assert!(AppendEntriesResponse::<C>::decode(&[WIRE_VERSION, 4]).is_err());
    }

    #[test]
    fn an_entry_that_does_not_decode_fails_the_request() {
        let req = AppendEntriesRequest::<C> {
            vote: vote(2, 1, true),
            prev_log_id: None,
            entries: vec![openraft::Entry {
                log_id: log_id(2, 1, 1),
                payload: types::Payload::Normal(Cmd("x".into())),
            }],
            leader_commit: None,
        };
        let mut bytes = req.encode();
        *bytes.last_mut().unwrap() = 0xff; // the command is no longer UTF-8
        let e = AppendEntriesRequest::<C>::decode(&bytes).err().unwrap();
        assert!(e.to_string().contains("command"), "{e}");
        // An entry count far beyond the bytes present.
        let mut w = Writer::with_version(WIRE_VERSION);
        w.vote(&vote(1, 1, true));
        w.opt_log_id(None);
        w.opt_log_id(None);
        w.u64(u64::MAX);
        assert!(AppendEntriesRequest::<C>::decode(&w.buf).is_err());
    }

    #[test]
    fn vote_roundtrip() {
        for transfer in [false, true] {
            check(VoteRequest::<C> {
                vote: vote(5, 3, false),
                last_log_id: Some(log_id(4, 1, 20)),
                leadership_transfer: transfer,
            });
        }
        check(VoteRequest::<C>::new(vote(1, 1, false), None));
        for granted in [false, true] {
            check(VoteResponse::<C>::new(
                vote(5, 3, granted),
                Some(log_id(4, 1, 20)),
                granted,
            ));
        }
        check(VoteResponse::<C>::new(vote(5, 3, false), None, false));
        // A flag other than 0 or 1.
        let mut bytes = VoteRequest::<C>::new(vote(1, 1, false), None).encode();
        *bytes.last_mut().unwrap() = 2;
        assert!(VoteRequest::<C>::decode(&bytes).is_err());
    }

    #[test]
    fn transfer_leader_roundtrip() {
        check(TransferLeaderRequest::<C>::new(
            vote(3, 1, true),
            2,
            Some(log_id(3, 1, 8)),
        ));
        check(TransferLeaderRequest::<C>::new(vote(3, 1, true), 2, None));
        let responses: [TransferLeaderResponse<C>; 4] = [
            Ok(()),
            Err(TransferLeaderError::VoteChanged {
                expected: vote(3, 1, true),
                actual: vote(4, 2, false),
            }),
            Err(TransferLeaderError::LogNotFlushed {
                expected: Some(log_id(3, 1, 8)),
                actual: None,
            }),
            Err(TransferLeaderError::LogNotFlushed {
                expected: None,
                actual: Some(log_id(3, 1, 7)),
            }),
        ];
        for resp in responses {
            check(resp);
        }
        assert!(TransferLeaderResponse::<C>::decode(&[WIRE_VERSION, 3]).is_err());
    }

    #[test]
    fn snapshot_roundtrip() {
        let voters = [(1, "a:1".to_string()), (2, "b:2".to_string())].into();
        let req = SnapshotRequest {
            vote: vote(6, 2, true),
            state: crate::split_initial_state(voters),
            data: b"range data".to_vec(),
        };
        let bytes = req.encode();
        assert_eq!(SnapshotRequest::decode(&bytes).unwrap(), req);
        // The data runs to the end, so only cuts into the vote or the state are detected.
        let data_at = bytes.len() - req.data.len();
        for n in 0..data_at {
            assert!(SnapshotRequest::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut state = bytes.clone();
        state[18 + 4] = 9; // the applied state's version byte
        assert!(SnapshotRequest::decode(&state).is_err());
        let empty = SnapshotRequest {
            data: Vec::new(),
            ..req
        };
        assert_eq!(SnapshotRequest::decode(&empty.encode()).unwrap(), empty);
        check(SnapshotResponse::<C>::new(vote(6, 3, false)));
    }

    #[test]
    fn message_roundtrip() {
        for kind in [
            RpcKind::AppendEntries,
            RpcKind::Vote,
            RpcKind::PreVote,
            RpcKind::Snapshot,
            RpcKind::TransferLeader,
            RpcKind::Quiesce,
            RpcKind::Ping,
            RpcKind::SnapshotChunk,
        ] {
            let msg = Message {
                group: 7,
                from: 1,
                to: 2,
                kind,
                body: vec![1, 2, 3],
            };
            let bytes = msg.to_bytes();
            assert_eq!(Message::from_bytes(&bytes).unwrap(), msg);
            for n in 0..26 {
                assert!(Message::from_bytes(&bytes[..n]).is_err(), "prefix {n}");
            }
        }
        let mut bytes = Message {
            group: 7,
            from: 1,
            to: 2,
            kind: RpcKind::Vote,
            body: Vec::new(),
        }
        .to_bytes();
        bytes[25] = 200;
        assert!(Message::from_bytes(&bytes).is_err());
    }

    /// Bytes from a misbehaving peer: every decoder returns, none panics.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400 {
            let mut bytes = vec![WIRE_VERSION];
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(if seed.is_multiple_of(3) {
                    0
                } else {
                    seed as u8
                });
            }
            let _ = AppendEntriesRequest::<C>::decode(&bytes);
            let _ = AppendEntriesResponse::<C>::decode(&bytes);
            let _ = VoteRequest::<C>::decode(&bytes);
            let _ = VoteResponse::<C>::decode(&bytes);
            let _ = TransferLeaderRequest::<C>::decode(&bytes);
            let _ = TransferLeaderResponse::<C>::decode(&bytes);
            let _ = SnapshotRequest::decode(&bytes);
            let _ = SnapshotResponse::<C>::decode(&bytes);
            let _ = Message::decode(&bytes);
        }
    }
}
