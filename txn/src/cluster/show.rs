//! What `SHOW NODES` and `SHOW RANGES` report: the cluster's nodes and ranges as this node
//! sees them (the node directory and the range directory in `sys`, read in a transaction, and
//! what this node's own replicas know of leaders and liveness).

use std::collections::BTreeMap;
use std::time::Duration;

use kv::{NodeId, RangeDescriptor};

use crate::db::kv_err;
use crate::{Db, Result};

/// A node is reported live when one of this node's Raft groups heard from it this recently.
pub const LIVE_WITHIN: Duration = Duration::from_secs(5);

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    /// Its id.
    pub node_id: NodeId,
    /// Its gRPC address.
    pub address: String,
    /// `live`, `unreachable` (silent to a group this node leads for [`LIVE_WITHIN`]), or
    /// `unknown` (it shares no range with this node).
    pub liveness: &'static str,
    /// Whether it is being decommissioned.
    pub decommissioning: bool,
    /// Ranges whose descriptor lists it.
    pub ranges: u64,
    /// Ranges it leads, as far as this node knows.
    pub leaders: u64,
}

/// One range of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRow {
    /// Its descriptor (span, replicas, generation).
    pub desc: RangeDescriptor,
    /// Its leader as this node's replica of it knows (None without a replica here, or while
    /// it has no leader).
    pub leader: Option<NodeId>,
}

/// Every range of the cluster, in key order.
pub async fn ranges(db: &Db) -> Result<Vec<RangeRow>> {
    let client = db.client();
    Ok(client
        .all_ranges()
        .await
        .map_err(kv_err)?
        .into_iter()
        .map(|desc| {
            let leader = client.leader_of(desc.range_id);
            RangeRow { desc, leader }
        })
        .collect())
}

/// Every node of the node directory, in id order.
pub async fn nodes(db: &Db) -> Result<Vec<NodeRow>> {
    let directory = super::node_directory(db).await?;
    let ranges = ranges(db).await?;
    let me = db.client().node_id();
    let heard = db.client().peer_liveness(LIVE_WITHIN);
    let mut held: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut led: BTreeMap<NodeId, u64> = BTreeMap::new();
    for r in &ranges {
        for n in &r.desc.replicas {
            *held.entry(*n).or_default() += 1;
        }
        if let Some(l) = r.leader {
            *led.entry(l).or_default() += 1;
        }
    }
    Ok(directory
        .into_iter()
        .map(|n| NodeRow {
            liveness: match heard.get(&n.node_id) {
                _ if n.node_id == me => "live",
                Some(true) => "live",
                Some(false) => "unreachable",
                None => "unknown",
            },
            ranges: held.get(&n.node_id).copied().unwrap_or(0),
            leaders: led.get(&n.node_id).copied().unwrap_or(0),
            node_id: n.node_id,
            address: n.addr,
            decommissioning: n.decommissioning,
        })
        .collect())
}
