//! Explicit, versioned binary encodings of the Raft bookkeeping this crate stores on disk:
//! log ids, memberships, votes and log entries. Integers are big-endian and fixed-width,
//! strings and byte strings are length-prefixed (u32). Every top-level value starts with a
//! version byte so the layout can evolve without guessing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::NodeId;
use crate::types::{LogId, Membership, OrEntry, StoredMembership, Vote};

/// Version byte of every encoding in this module.
pub(crate) const VERSION: u8 = 1;

/// Payload kinds of a log entry envelope.
const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

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
    pub(crate) fn versioned() -> Self {
        Self { buf: vec![VERSION] }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
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
    /// Starts reading a versioned record, checking its version byte.
    pub(crate) fn versioned(buf: &'a [u8], what: &str) -> io::Result<Self> {
        match buf.split_first() {
            Some((&VERSION, rest)) => Ok(Self { buf: rest }),
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
    w.u64(v.leader_id.term);
    w.u64(v.leader_id.node_id);
    w.u8(u8::from(v.committed));
    w.buf
}

pub(crate) fn decode_vote(b: &[u8]) -> io::Result<Vote> {
    let mut r = Reader::versioned(b, "vote")?;
    let term = r.u64()?;
    let node: NodeId = r.u64()?;
    let committed = r.u8()? != 0;
    r.finish()?;
    Ok(Vote {
        leader_id: crate::types::Clid {
            term,
            node_id: node,
        },
        committed,
    })
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

/// Log entry envelope: version, term, leader node, index, payload kind, payload.
///
/// The payload of a `Normal` entry is the command encoded with `serde_json`: the command type's
/// serde representation is the owning crate's choice, and JSON keeps it self-describing. Blank
/// entries have no payload; membership entries use this module's membership encoding.
pub(crate) fn encode_entry<C: crate::Command>(e: &OrEntry<C>) -> io::Result<Vec<u8>> {
    let mut w = Writer::versioned();
    w.log_id(&e.log_id);
    match &e.payload {
        openraft::EntryPayload::Blank => w.u8(KIND_BLANK),
        openraft::EntryPayload::Normal(cmd) => {
            w.u8(KIND_NORMAL);
            let json = serde_json::to_vec(cmd).map_err(io::Error::other)?;
            w.buf.extend_from_slice(&json);
        }
        openraft::EntryPayload::Membership(m) => {
            w.u8(KIND_MEMBERSHIP);
            w.membership(m);
        }
    }
    Ok(w.buf)
}

pub(crate) fn decode_entry<C: crate::Command>(b: &[u8]) -> io::Result<OrEntry<C>> {
    let mut r = Reader::versioned(b, "log entry")?;
    let log_id = r.log_id()?;
    let payload = match r.u8()? {
        KIND_BLANK => openraft::EntryPayload::Blank,
        KIND_NORMAL => {
            let cmd =
                serde_json::from_slice(r.rest()).map_err(|e| corrupt(&format!("command: {e}")))?;
            openraft::EntryPayload::Normal(cmd)
        }
        KIND_MEMBERSHIP => openraft::EntryPayload::Membership(r.membership()?),
        k => return Err(corrupt(&format!("entry kind {k}"))),
    };
    r.finish()?;
    Ok(openraft::Entry { log_id, payload })
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::types::{self, log_id};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Cmd(String);

    impl fmt::Display for Cmd {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl crate::Command for Cmd {}

    fn roundtrip(payload: types::Payload<Cmd>) {
        let entry = OrEntry::<Cmd> {
            log_id: log_id(3, 2, 42),
            payload,
        };
        let bytes = encode_entry(&entry).unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(&bytes[1..9], &3u64.to_be_bytes(), "term first");
        assert_eq!(decode_entry::<Cmd>(&bytes).unwrap(), entry);
        assert!(decode_entry::<Cmd>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn entry_envelope_roundtrip() {
        roundtrip(openraft::EntryPayload::Blank);
        roundtrip(openraft::EntryPayload::Normal(Cmd("put a=1".into())));
        let nodes = BTreeMap::from([(1, types::node("a".into())), (2, types::node("b".into()))]);
        let m = Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap();
        roundtrip(openraft::EntryPayload::Membership(m));
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
