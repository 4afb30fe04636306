//! Explicit, versioned binary encodings of the Raft bookkeeping this crate stores on disk:
//! log ids, memberships, votes and log entries. Integers are big-endian and fixed-width,
//! strings and byte strings are length-prefixed (u32). Every top-level value starts with a
//! version byte so the layout can evolve without guessing. The RPC bodies (`wire`) are built
//! from the same pieces.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::NodeId;
use crate::types::{LogId, Membership, OrEntry, Payload, StoredMembership, Vote};

/// Version byte of the bookkeeping records: votes, log ids and applied states.
pub(crate) const VERSION: u8 = 1;

/// Version byte of a log entry. Version 1 carried a `Normal` entry's command as JSON; version 2
/// carries the command's own binary encoding ([`Command::encode`](crate::Command::encode)).
pub(crate) const ENTRY_VERSION: u8 = 2;

/// Payload kinds of a log entry envelope.
const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
/// A membership entry that carries a command: the membership, then the command as in
/// [`KIND_NORMAL`]. A membership entry without one keeps [`KIND_MEMBERSHIP`], so the bytes of
/// every entry an earlier build wrote are unchanged.
const KIND_MEMBERSHIP_COMMAND: u8 = 3;

pub(crate) fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt raft record: {what}"),
    )
}

/// Appends encoded values to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// Starts a bookkeeping record ([`VERSION`]).
    pub(crate) fn versioned() -> Self {
        Self::with_version(VERSION)
    }

    /// Starts a record whose first byte is `version`.
    pub(crate) fn with_version(version: u8) -> Self {
        Self { buf: vec![version] }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).expect("raft record field below 4 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn log_id(&mut self, id: &LogId) {
        self.u64(id.leader_id.term);
        self.u64(id.leader_id.node_id);
        self.u64(id.index);
    }

    /// Vote: term, voted-for (or leader) node, committed flag.
    pub(crate) fn vote(&mut self, v: &Vote) {
        self.u64(v.leader_id.term);
        self.u64(v.leader_id.node_id);
        self.bool(v.committed);
    }

    pub(crate) fn opt_log_id(&mut self, id: Option<&LogId>) {
        match id {
            None => self.u8(0),
            Some(id) => {
                self.u8(1);
                self.log_id(id);
            }
        }
    }

    /// Membership: joint configs (each a set of voter ids), then every node with its address.
    pub(crate) fn membership(&mut self, m: &Membership) {
        let configs = m.get_joint_config();
        self.u64(configs.len() as u64);
        for config in configs {
            self.u64(config.len() as u64);
            for id in config {
                self.u64(*id);
            }
        }
        let nodes: Vec<_> = m.nodes().collect();
        self.u64(nodes.len() as u64);
        for (id, node) in nodes {
            self.u64(*id);
            self.bytes(node.addr.as_bytes());
        }
    }

    pub(crate) fn stored_membership(&mut self, m: &StoredMembership) {
        self.opt_log_id(m.log_id().as_ref());
        self.membership(m.membership());
    }
}

/// Reads values written by [`Writer`].
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading a bookkeeping record, checking its version byte ([`VERSION`]).
    pub(crate) fn versioned(buf: &'a [u8], what: &str) -> io::Result<Self> {
        Self::with_version(buf, VERSION, what)
    }

    /// Starts reading a record whose first byte must be `version`.
    pub(crate) fn with_version(buf: &'a [u8], version: u8, what: &str) -> io::Result<Self> {
        match buf.split_first() {
            Some((&v, rest)) if v == version => Ok(Self { buf: rest }),
            Some((v, _)) => Err(corrupt(&format!("{what}: unknown version {v}"))),
            None => Err(corrupt(&format!("{what}: empty"))),
        }
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// A flag written by [`Writer::bool`]: 0 or 1, anything else is an error.
    pub(crate) fn bool(&mut self) -> io::Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(corrupt(&format!("flag {b}"))),
        }
    }

    pub(crate) fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        self.take(len as usize)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn finish(&self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(corrupt("trailing bytes"))
        }
    }

    pub(crate) fn log_id(&mut self) -> io::Result<LogId> {
        let term = self.u64()?;
        let node = self.u64()?;
        let index = self.u64()?;
        Ok(crate::types::log_id(term, node, index))
    }

    /// A vote written by [`Writer::vote`].
    pub(crate) fn vote(&mut self) -> io::Result<Vote> {
        let term = self.u64()?;
        let node: NodeId = self.u64()?;
        let committed = self.bool()?;
        Ok(Vote {
            leader_id: crate::types::Clid {
                term,
                node_id: node,
            },
            committed,
        })
    }

    pub(crate) fn opt_log_id(&mut self) -> io::Result<Option<LogId>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.log_id()?)),
            t => Err(corrupt(&format!("option tag {t}"))),
        }
    }

    pub(crate) fn membership(&mut self) -> io::Result<Membership> {
        let n_configs = self.u64()?;
        let mut configs = Vec::new();
        for _ in 0..n_configs {
            let n = self.u64()?;
            let mut set = BTreeSet::new();
            for _ in 0..n {
                set.insert(self.u64()?);
            }
            configs.push(set);
        }
        let n_nodes = self.u64()?;
        let mut nodes = BTreeMap::new();
        for _ in 0..n_nodes {
            let id = self.u64()?;
            let addr =
                String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt("node address"))?;
            nodes.insert(id, crate::types::node(addr));
        }
        if configs.is_empty() && nodes.is_empty() {
            return Ok(Membership::default());
        }
        Membership::new(configs, nodes).map_err(|e| corrupt(&format!("membership: {e}")))
    }

    pub(crate) fn stored_membership(&mut self) -> io::Result<StoredMembership> {
        let log_id = self.opt_log_id()?;
        let membership = self.membership()?;
        Ok(StoredMembership::new(log_id, membership))
    }
}

/// Vote: version, term, voted-for node, committed flag.
pub(crate) fn encode_vote(v: &Vote) -> Vec<u8> {
    let mut w = Writer::versioned();
    w.vote(v);
    w.buf
}

pub(crate) fn decode_vote(b: &[u8]) -> io::Result<Vote> {
    let mut r = Reader::versioned(b, "vote")?;
    let vote = r.vote()?;
    r.finish()?;
    Ok(vote)
}

pub(crate) fn encode_opt_log_id(id: Option<&LogId>) -> Vec<u8> {
    let mut w = Writer::versioned();
    w.opt_log_id(id);
    w.buf
}

pub(crate) fn decode_opt_log_id(b: &[u8]) -> io::Result<Option<LogId>> {
    let mut r = Reader::versioned(b, "log id")?;
    let id = r.opt_log_id()?;
    r.finish()?;
    Ok(id)
}

/// Log entry envelope: version ([`ENTRY_VERSION`]), term, leader node, index, payload kind,
/// payload.
///
/// The payload of a `Normal` entry is the command's own binary encoding
/// ([`Command::encode`](crate::Command::encode)), length-prefixed so that a truncated entry is
/// detected whatever the command's encoding; the owning crate versions that encoding. Blank
/// entries have no payload; membership entries use this module's membership encoding, followed
/// by the command (as in a `Normal` entry) when they carry one.
pub(crate) fn encode_entry<C: crate::Command>(e: &OrEntry<C>) -> Vec<u8> {
    let mut w = Writer::with_version(ENTRY_VERSION);
    w.log_id(&e.log_id);
    match &e.payload {
        Payload::Blank => w.u8(KIND_BLANK),
        Payload::Normal(cmd) => {
            w.u8(KIND_NORMAL);
            w.bytes(&cmd.encode());
        }
        Payload::Membership {
            membership,
            command: None,
        } => {
            w.u8(KIND_MEMBERSHIP);
            w.membership(membership);
        }
        Payload::Membership {
            membership,
            command: Some(cmd),
        } => {
            w.u8(KIND_MEMBERSHIP_COMMAND);
            w.membership(membership);
            w.bytes(&cmd.encode());
        }
    }
    w.buf
}

fn decode_command<C: crate::Command>(r: &mut Reader<'_>) -> io::Result<C> {
    C::decode(r.bytes()?).map_err(|e| corrupt(&format!("command: {e}")))
}

pub(crate) fn decode_entry<C: crate::Command>(b: &[u8]) -> io::Result<OrEntry<C>> {
    let mut r = Reader::with_version(b, ENTRY_VERSION, "log entry")?;
    let log_id = r.log_id()?;
    let payload = match r.u8()? {
        KIND_BLANK => Payload::Blank,
        KIND_NORMAL => Payload::Normal(decode_command(&mut r)?),
        KIND_MEMBERSHIP => Payload::Membership {
            membership: r.membership()?,
            command: None,
        },
        KIND_MEMBERSHIP_COMMAND => Payload::Membership {
            membership: r.membership()?,
            command: Some(decode_command(&mut r)?),
        },
        k => return Err(corrupt(&format!("entry kind {k}"))),
    };
    r.finish()?;
    Ok(openraft::Entry { log_id, payload })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::types::{self, log_id};

    /// A command whose encoding is its UTF-8 text.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Cmd(pub(crate) String);

    impl fmt::Display for Cmd {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl crate::Command for Cmd {
        fn encode(&self) -> Vec<u8> {
            self.0.as_bytes().to_vec()
        }

        fn decode(bytes: &[u8]) -> io::Result<Self> {
            String::from_utf8(bytes.to_vec())
                .map(Cmd)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
        }
    }

    pub(crate) fn membership() -> Membership {
        let nodes = BTreeMap::from([(1, types::node("a".into())), (2, types::node("b".into()))]);
        Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap()
    }

    /// Every proper prefix of `bytes` and `bytes` with a byte appended fail to decode.
    pub(crate) fn assert_rejects_truncated_and_trailing<T: fmt::Debug>(
        bytes: &[u8],
        decode: impl Fn(&[u8]) -> io::Result<T>,
    ) {
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err(), "trailing byte accepted");
    }

    fn roundtrip(payload: types::Payload<Cmd>) -> Vec<u8> {
        let entry = OrEntry::<Cmd> {
            log_id: log_id(3, 2, 42),
            payload,
        };
        let bytes = encode_entry(&entry);
        assert_eq!(bytes[0], ENTRY_VERSION);
        assert_eq!(&bytes[1..9], &3u64.to_be_bytes(), "term first");
        assert_eq!(decode_entry::<Cmd>(&bytes).unwrap(), entry);
        assert_rejects_truncated_and_trailing(&bytes, decode_entry::<Cmd>);
        bytes
    }

    #[test]
    fn entry_envelope_roundtrip() {
        roundtrip(types::Payload::Blank);
        roundtrip(types::Payload::Membership {
            membership: membership(),
            command: None,
        });
        let bytes = roundtrip(types::Payload::Membership {
            membership: membership(),
            command: Some(Cmd("desc".into())),
        });
        // The membership, then the command's own bytes, length-prefixed, at the end.
        assert_eq!(bytes[25], KIND_MEMBERSHIP_COMMAND);
        assert_eq!(&bytes[bytes.len() - 8..], b"\0\0\0\x04desc");
        let bytes = roundtrip(types::Payload::Normal(Cmd("put a=1".into())));
        // version, log id (3 × u64), kind, then the command's own bytes, length-prefixed.
        assert_eq!(bytes[25], KIND_NORMAL);
        assert_eq!(&bytes[26..30], &7u32.to_be_bytes());
        assert_eq!(&bytes[30..], b"put a=1");
    }

    /// `hex` with spaces removed, as bytes.
    fn unhex(hex: &str) -> Vec<u8> {
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The bytes of each entry kind, written out by hand from `docs/formats.md`: entries an
    /// earlier build wrote (kinds 0 to 2) must keep reading, and keep being written, as they were.
    #[test]
    fn entry_golden_bytes() {
        let header = "02 0000000000000003 0000000000000002 000000000000002a";
        let membership_bytes = "0000000000000001 0000000000000002 0000000000000001 \
             0000000000000002 0000000000000002 0000000000000001 00000001 61 \
             0000000000000002 00000001 62";
        let cases = [
            (types::Payload::Blank, format!("{header} 00")),
            (
                types::Payload::Normal(Cmd("put a=1".into())),
                format!("{header} 01 00000007 70757420613d31"),
            ),
            (
                types::Payload::Membership {
                    membership: membership(),
                    command: None,
                },
                format!("{header} 02 {membership_bytes}"),
            ),
            (
                types::Payload::Membership {
                    membership: membership(),
                    command: Some(Cmd("desc".into())),
                },
                format!("{header} 03 {membership_bytes} 00000004 64657363"),
            ),
        ];
        for (payload, hex) in cases {
            let entry = OrEntry::<Cmd> {
                log_id: log_id(3, 2, 42),
                payload,
            };
            let golden = unhex(&hex);
            assert_eq!(encode_entry(&entry), golden, "{}", entry.payload);
            assert_eq!(decode_entry::<Cmd>(&golden).unwrap(), entry);
        }
    }

    #[test]
    fn entry_decode_rejects_bad_input() {
        let entry = OrEntry::<Cmd> {
            log_id: log_id(3, 2, 42),
            payload: types::Payload::Normal(Cmd("x".into())),
        };
        let bytes = encode_entry(&entry);
        // A version 1 entry: the same header with a JSON command.
        let mut v1 = vec![1];
        v1.extend_from_slice(&bytes[1..26]);
        v1.extend_from_slice(br#""x""#);
        let e = decode_entry::<Cmd>(&v1).unwrap_err();
        assert!(e.to_string().contains("unknown version 1"), "{e}");
        let mut kind = bytes.clone();
        kind[25] = 9;
        assert!(decode_entry::<Cmd>(&kind).is_err());
        // A command its own decoder refuses.
        let mut bad = bytes[..26].to_vec();
        bad.extend_from_slice(&1u32.to_be_bytes());
        bad.push(0xff);
        let e = decode_entry::<Cmd>(&bad).unwrap_err();
        assert!(e.to_string().contains("command: not UTF-8"), "{e}");
    }

    #[test]
    fn vote_and_log_id_roundtrip() {
        for committed in [false, true] {
            let v = Vote {
                leader_id: types::Clid {
                    term: 9,
                    node_id: 4,
                },
                committed,
            };
            assert_eq!(decode_vote(&encode_vote(&v)).unwrap(), v);
        }
        for id in [None, Some(log_id(1, 2, 3))] {
            assert_eq!(
                decode_opt_log_id(&encode_opt_log_id(id.as_ref())).unwrap(),
                id
            );
        }
        assert!(decode_vote(&[2, 0]).is_err());
    }
}
