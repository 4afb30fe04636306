//! The node handle: what layers above kv hold of a node's store.
//!
//! [`Node::open`] opens (or bootstraps, or joins with) the node's store; the handle hands out
//! [`Client`]s, whose requests reach ranges as [`Request`](crate::Request) values through a
//! [`RangeSender`], and the few things the process around the node needs: its identity, the
//! Raft service and registry its network serves, fault injection, health and a view of its
//! replicas for `/status` and metrics. The store, its replicas and its engine stay inside kv.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::range::{NodeId, RangeDescriptor, RangeId};
use crate::request::{LocalSender, RangeSender};
use crate::store::{Store, StoreOptions};

/// A handle on a node's open store.
#[derive(Clone)]
pub struct Node {
    store: Arc<Store>,
}

/// What the node knows of one of its replicas.
#[derive(Clone, Debug)]
pub struct ReplicaState {
    /// The replica's descriptor.
    pub desc: RangeDescriptor,
    /// Its Raft progress.
    pub status: raft::Status,
    /// Its Raft membership.
    pub membership: raft::MembershipStatus,
}

impl Node {
    /// Opens the node's store in `options.dir`: bootstraps a single-node cluster on an empty
    /// directory (or joins the cluster `options.join` names), and waits until every range has a
    /// leader.
    pub async fn open(options: StoreOptions) -> Result<Node> {
        Ok(Node {
            store: Store::open(options).await?,
        })
    }

    /// The cluster id and node id stored in `dir`, if it holds a node (without opening it).
    pub fn identity(dir: &Path) -> Result<Option<(u64, NodeId)>> {
        Store::identity(dir)
    }

    /// A client that sends through this node's [`LocalSender`] (every leader is local).
    pub fn client(&self) -> Client {
        Client::new(self.store.clone())
    }

    /// A client whose requests go through the sender `make` builds from the node's
    /// [`LocalSender`] (a network sender serves local leaders through it).
    pub fn client_with_sender(
        &self,
        make: impl FnOnce(Arc<LocalSender>) -> Arc<dyn RangeSender>,
    ) -> Client {
        Client::with_sender(self.store.clone(), make)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.store.node_id()
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.store.cluster_id()
    }

    /// The address peers reach this node at.
    pub fn advertise_addr(&self) -> &str {
        self.store.advertise_addr()
    }

    /// Where messages for this node's Raft groups are delivered (the receiving side of a
    /// transport).
    pub fn registry(&self) -> &raft::Registry {
        self.store.registry()
    }

    /// The gRPC service through which other nodes reach this node's Raft groups.
    pub fn raft_service(&self) -> raft::RaftService {
        self.store.raft_service()
    }

    /// The nodes this node is cut off from (fault injection).
    pub fn faults(&self) -> raft::Faults {
        self.store.faults()
    }

    /// Whether the node can serve: `Err` names the first range whose Raft group stopped on a
    /// fatal storage error.
    pub fn health(&self) -> std::result::Result<(), String> {
        self.store.health()
    }

    /// Every replica on this node, by range id.
    pub fn replicas(&self) -> Vec<ReplicaState> {
        self.store
            .replicas()
            .iter()
            .map(|r| ReplicaState {
                desc: r.descriptor(),
                status: r.group().status(),
                membership: r.group().membership(),
            })
            .collect()
    }

    /// The Raft progress of this node's replica of `range_id`.
    pub fn raft_status(&self, range_id: RangeId) -> Result<raft::Status> {
        Ok(self.store.replica(range_id)?.group().status())
    }

    /// Waits (bounded) until every replica on this node knows a leader.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<()> {
        self.store.wait_for_leaders(timeout).await
    }

    /// Stops a replica's Raft group and starts it again on its stored log and state, so that it
    /// must win an election (a change of leadership on one node), then waits for a leader.
    pub async fn restart_replica(&self, range_id: RangeId) -> Result<()> {
        self.store.restart_replica(range_id).await
    }

    /// Stops every Raft group and makes applied state durable.
    pub async fn shutdown(&self) -> Result<()> {
        self.store.shutdown().await
    }

    pub(crate) fn from_store(store: Arc<Store>) -> Node {
        Node { store }
    }

    /// The store (kv's test surface: tests look inside the node).
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}
