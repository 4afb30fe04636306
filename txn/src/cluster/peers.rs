//! The address book of a node's peers and its connections to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kv::{NodeId, RangeId};
use tonic::transport::{Channel, Endpoint};

use super::proto;
use super::proto::node_client::NodeClient;

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest message between nodes (above the largest command and snapshot chunk).
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// The nodes of the cluster as this node knows them, and the open connections to them.
pub struct Peers {
    node_id: NodeId,
    cluster_id: u64,
    addrs: RwLock<HashMap<NodeId, String>>,
    channels: Mutex<HashMap<NodeId, Channel>>,
    /// The leader last seen for each range (hints from replies).
    leaders: RwLock<HashMap<RangeId, NodeId>>,
    /// Nodes this node is cut off from (injected faults; shared with the Raft transport).
    faults: raft::Faults,
    /// For each range led here, the descriptor generation whose copies (range-local key and
    /// directory entry) were last found or made current (`replicate::sync_copies`).
    synced: Mutex<HashMap<RangeId, u64>>,
}

impl Peers {
    /// The address book of node `node_id` in cluster `cluster_id`, knowing only `addrs`; calls
    /// to and from the nodes `faults` cuts are refused.
    pub fn new(
        node_id: NodeId,
        cluster_id: u64,
        addrs: impl IntoIterator<Item = (NodeId, String)>,
        faults: raft::Faults,
    ) -> Arc<Peers> {
        Arc::new(Peers {
            node_id,
            cluster_id,
            addrs: RwLock::new(addrs.into_iter().collect()),
            channels: Mutex::default(),
            leaders: RwLock::default(),
            faults,
            synced: Mutex::default(),
        })
    }

    /// Whether the copies of `range`'s descriptor were last found current at `generation`.
    pub(crate) fn copies_synced(&self, range: RangeId, generation: u64) -> bool {
        let synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.get(&range) == Some(&generation)
    }

    /// Records that the copies of `range`'s descriptor are current at `generation`.
    pub(crate) fn set_copies_synced(&self, range: RangeId, generation: u64) {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.insert(range, generation);
    }

    /// Whether calls to and from `node` are refused (an injected fault).
    pub fn is_cut(&self, node: NodeId) -> bool {
        self.faults.is_cut(node)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Records the address of `node` (a changed address drops the old connection).
    pub fn set_addr(&self, node: NodeId, addr: String) {
        let mut addrs = self.addrs.write().expect("addrs lock");
        if addrs.get(&node) != Some(&addr) {
            addrs.insert(node, addr);
            self.channels.lock().expect("channels lock").remove(&node);
        }
    }

    /// Every node this node knows of, with its address, by id.
    pub fn nodes(&self) -> Vec<(NodeId, String)> {
        let mut all: Vec<_> = self
            .addrs
            .read()
            .expect("addrs lock")
            .iter()
            .map(|(n, a)| (*n, a.clone()))
            .collect();
        all.sort();
        all
    }

    /// The address of `node`, if known.
    pub fn addr(&self, node: NodeId) -> Option<String> {
        self.addrs.read().expect("addrs lock").get(&node).cloned()
    }

    pub(crate) fn note_leader(&self, range: RangeId, node: NodeId) {
        self.leaders
            .write()
            .expect("leaders lock")
            .insert(range, node);
    }

    pub(crate) fn leader_hint(&self, range: RangeId) -> Option<NodeId> {
        self.leaders
            .read()
            .expect("leaders lock")
            .get(&range)
            .copied()
    }

    /// The header of a call to `to`.
    pub(crate) fn header(&self, to: NodeId) -> proto::Header {
        proto::Header {
            cluster_id: self.cluster_id,
            to_node: to,
            from_node: self.node_id,
        }
    }

    /// A connected client to `node`; `Unavailable` (nothing was sent) when it cannot be reached.
    pub(crate) async fn client(&self, node: NodeId) -> kv::Result<NodeClient<Channel>> {
        if self.is_cut(node) {
            return Err(kv::Error::Unavailable(format!(
                "node {node} is cut off (injected fault)"
            )));
        }
        let cached = self
            .channels
            .lock()
            .expect("channels lock")
            .get(&node)
            .cloned();
        let channel = match cached {
            Some(c) => c,
            None => {
                let addr = self.addr(node).ok_or_else(|| {
                    kv::Error::Unavailable(format!("the address of node {node} is not known"))
                })?;
                let channel = connect(&addr).await.map_err(|e| {
                    kv::Error::Unavailable(format!("node {node} at {addr} unreachable: {e}"))
                })?;
                self.channels
                    .lock()
                    .expect("channels lock")
                    .insert(node, channel.clone());
                channel
            }
        };
        Ok(NodeClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Drops the connection to `node` (after a failed call), so the next call reconnects.
    pub(crate) fn forget_connection(&self, node: NodeId) {
        self.channels.lock().expect("channels lock").remove(&node);
    }
}

/// Connects to a node's gRPC address.
pub async fn connect(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect()
        .await
}
