//! Range descriptors: a range is `[start, end)` of the keyspace, replicated by one Raft group.

use std::io;

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::keys::Pretty;

/// Identifies a range and its Raft group.
pub type RangeId = u64;
/// Identifies a node.
pub type NodeId = u64;

const DESCRIPTOR_V1: u8 = 1;

/// The bounds and replicas of a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDescriptor {
    pub range_id: RangeId,
    /// First key of the range (inclusive).
    pub start: Vec<u8>,
    /// End of the range (exclusive).
    pub end: Vec<u8>,
    /// Nodes holding a replica.
    pub replicas: Vec<NodeId>,
    /// Incremented by every split, merge and replica change.
    pub generation: u64,
}

impl RangeDescriptor {
    /// Whether the range holds `key` (a routing key: range-local keys already mapped).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }

    /// Whether `[start, end)` lies inside the range.
    pub fn contains_span(&self, start: &[u8], end: &[u8]) -> bool {
        self.start.as_slice() <= start && end <= self.end.as_slice() && start <= end
    }

    /// `[1] [range_id] [generation] [start] [end] [replicas: u32 count, u64 each]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::versioned(DESCRIPTOR_V1);
        w.u64(self.range_id)
            .u64(self.generation)
            .bytes(&self.start)
            .bytes(&self.end);
        w.list(&self.replicas, |w, n| {
            w.u64(*n);
        });
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> io::Result<RangeDescriptor> {
        let mut r = Reader::versioned(buf, DESCRIPTOR_V1, "range descriptor")?;
        let range_id = r.u64()?;
        let generation = r.u64()?;
        let start = r.bytes()?;
        let end = r.bytes()?;
        let replicas = r.list(|r| r.u64())?;
        r.end("range descriptor")?;
        Ok(RangeDescriptor {
            range_id,
            start,
            end,
            replicas,
            generation,
        })
    }
}

impl std::fmt::Display for RangeDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "r{} [{}, {}) replicas {:?} gen {}",
            self.range_id,
            Pretty(&self.start),
            Pretty(&self.end),
            self.replicas,
            self.generation
        )
    }
}

const NODE_RECORD_V1: u8 = 1;

/// A node of the cluster as the node directory in `sys` records it (`keys::node_key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub node_id: NodeId,
    /// The address the node serves gRPC on (Raft, kv requests, the oracle).
    pub addr: String,
    /// Being decommissioned: it gets no new replicas, and its replicas move to other nodes.
    pub decommissioning: bool,
}

impl NodeRecord {
    /// `[1] [node_id u64] [addr: len u32, UTF-8 bytes] [decommissioning u8]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::versioned(NODE_RECORD_V1);
        w.u64(self.node_id)
            .bytes(self.addr.as_bytes())
            .u8(self.decommissioning as u8);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> io::Result<NodeRecord> {
        let mut r = Reader::versioned(buf, NODE_RECORD_V1, "node record")?;
        let node_id = r.u64()?;
        let addr = String::from_utf8(r.bytes()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "node address not UTF-8"))?;
        let decommissioning = r.bool()?;
        r.end("node record")?;
        Ok(NodeRecord {
            node_id,
            addr,
            decommissioning,
        })
    }
}

#[cfg(test)]
mod node_record_tests {
    use super::*;

    #[test]
    fn node_records_round_trip() {
        let rec = NodeRecord {
            node_id: 3,
            addr: "127.0.0.1:26257".into(),
            decommissioning: true,
        };
        assert_eq!(NodeRecord::decode(&rec.encode()).unwrap(), rec);
        assert!(NodeRecord::decode(&rec.encode()[..5]).is_err());
    }
}
