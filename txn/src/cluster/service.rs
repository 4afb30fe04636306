//! [`NodeService`]: the node-to-node gRPC service (`proto/node.proto`).

use std::sync::{Arc, RwLock};

use kv::keys::{node_id_counter_key, node_key, node_span};
use kv::{NodeId, NodeRecord};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use super::peers::{MAX_MESSAGE_BYTES, Peers};
use super::proto::node_server::{Node, NodeServer};
use super::proto::*;
use crate::{Db, Error, Result, TxnOptions};

/// How often allocating a node id is retried after a conflict with a concurrent join.
const JOIN_ATTEMPTS: usize = 10;

/// A node started with `--join` on an empty data directory, before it belongs to a cluster:
/// it waits to be initialised (`tinkerdb init`) or to be admitted by a member.
#[derive(Clone)]
pub struct Formation {
    init: mpsc::Sender<oneshot::Sender<std::result::Result<u64, String>>>,
}

impl Formation {
    /// A formation whose init requests arrive on the returned receiver: the node bootstraps
    /// a cluster and answers each with the new cluster's id (or why it could not).
    pub fn new() -> (
        Formation,
        mpsc::Receiver<oneshot::Sender<std::result::Result<u64, String>>>,
    ) {
        let (init, rx) = mpsc::channel(4);
        (Formation { init }, rx)
    }
}

enum State {
    Forming(Formation),
    Running { db: Db, peers: Arc<Peers> },
}

/// The node-to-node service of one node.
#[derive(Clone)]
pub struct NodeService {
    state: Arc<RwLock<State>>,
}

impl NodeService {
    /// The service of a node that is not part of a cluster yet: it answers only `Init`.
    pub fn forming(formation: Formation) -> NodeService {
        NodeService {
            state: Arc::new(RwLock::new(State::Forming(formation))),
        }
    }

    /// The service of a running node.
    pub fn running(db: Db, peers: Arc<Peers>) -> NodeService {
        NodeService {
            state: Arc::new(RwLock::new(State::Running { db, peers })),
        }
    }

    /// The tonic server of this service, with the cluster's message limits.
    pub fn into_server(self) -> NodeServer<NodeService> {
        NodeServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The running node's handles, after checking that a call is meant for it.
    fn running_for(
        &self,
        header: Option<&Header>,
    ) -> std::result::Result<(Db, Arc<Peers>), Status> {
        let state = self.state.read().expect("state lock");
        let State::Running { db, peers } = &*state else {
            return Err(Status::failed_precondition(
                "this node is not part of an initialised cluster yet (run `tinkerdb init`)",
            ));
        };
        if let Some(h) = header {
            if h.cluster_id != peers.cluster_id() {
                return Err(Status::failed_precondition(format!(
                    "this node belongs to cluster {:x}, not {:x}",
                    peers.cluster_id(),
                    h.cluster_id
                )));
            }
            if h.to_node != peers.node_id() {
                return Err(Status::failed_precondition(format!(
                    "this is node {}, not node {}",
                    peers.node_id(),
                    h.to_node
                )));
            }
            if peers.is_cut(h.from_node) {
                return Err(Status::unavailable(format!(
                    "node {} is cut off from node {} (injected fault)",
                    peers.node_id(),
                    h.from_node
                )));
            }
        }
        Ok((db.clone(), peers.clone()))
    }
}

fn header(h: &Option<Header>) -> std::result::Result<&Header, Status> {
    h.as_ref()
        .ok_or_else(|| Status::invalid_argument("the call has no header"))
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn call(
        &self,
        req: Request<CallRequest>,
    ) -> std::result::Result<Response<CallReply>, Status> {
        let req = req.into_inner();
        let (db, _) = self.running_for(Some(header(&req.header)?))?;
        let result = match kv::decode_request(&req.body) {
            Ok((desc, request)) => db.client().call_local(&desc, request).await,
            Err(e) => return Err(Status::invalid_argument(e.to_string())),
        };
        Ok(Response::new(CallReply {
            body: kv::encode_reply(&result).into(),
        }))
    }

    async fn timestamps(
        &self,
        req: Request<TimestampsRequest>,
    ) -> std::result::Result<Response<TimestampsReply>, Status> {
        let req = req.into_inner();
        let (db, _) = self.running_for(Some(header(&req.header)?))?;
        let reply = match db.oracle_local_batch(req.count).await {
            Ok(first) => TimestampsReply {
                first,
                ..Default::default()
            },
            Err(e) => match crate::oracle::leader_of(&e) {
                Some(leader) => TimestampsReply {
                    leader,
                    ..Default::default()
                },
                None => TimestampsReply {
                    error: e.to_string(),
                    ..Default::default()
                },
            },
        };
        Ok(Response::new(reply))
    }

    async fn waits(
        &self,
        req: Request<WaitsRequest>,
    ) -> std::result::Result<Response<WaitsReply>, Status> {
        let req = req.into_inner();
        let (db, _) = self.running_for(Some(header(&req.header)?))?;
        let holder = (req.holder != 0).then_some(req.holder);
        Ok(Response::new(match db.record_wait(req.waiter, holder) {
            Some(cycle) => WaitsReply {
                recorded: true,
                cycle,
                leader: 0,
            },
            None => WaitsReply {
                recorded: false,
                cycle: false,
                leader: db.client().leader_of(1).unwrap_or(0),
            },
        }))
    }

    async fn add_replica(
        &self,
        req: Request<AddReplicaRequest>,
    ) -> std::result::Result<Response<AddReplicaReply>, Status> {
        let req = req.into_inner();
        let (db, _) = self.running_for(Some(header(&req.header)?))?;
        db.client()
            .add_replica(req.range_id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(AddReplicaReply {}))
    }

    async fn join(
        &self,
        req: Request<JoinRequest>,
    ) -> std::result::Result<Response<JoinReply>, Status> {
        let req = req.into_inner();
        let (db, peers) = self.running_for(None)?;
        if req.addr.is_empty() {
            return Err(Status::invalid_argument(
                "a joining node must give its address",
            ));
        }
        let node_id = allocate_node(&db, &req.addr)
            .await
            .map_err(|e| Status::unavailable(format!("admitting the node: {e}")))?;
        peers.set_addr(node_id, req.addr.clone());
        tracing::info!(node_id, addr = %req.addr, "a node joined the cluster");
        Ok(Response::new(JoinReply {
            cluster_id: peers.cluster_id(),
            node_id,
            members: members(&peers),
        }))
    }

    async fn decommission(
        &self,
        req: Request<DecommissionRequest>,
    ) -> std::result::Result<Response<DecommissionReply>, Status> {
        let node = req.into_inner().node_id;
        let (db, _) = self.running_for(None)?;
        let remaining = decommission(&db, node).await.map_err(|e| match e {
            Error::InvalidArgument(m) => Status::not_found(m),
            e => Status::unavailable(e.to_string()),
        })?;
        Ok(Response::new(DecommissionReply { remaining }))
    }

    async fn nodes(
        &self,
        req: Request<NodesRequest>,
    ) -> std::result::Result<Response<NodesReply>, Status> {
        let (_, peers) = self.running_for(None)?;
        if req.into_inner().cluster_id != peers.cluster_id() {
            return Err(Status::failed_precondition(format!(
                "this node belongs to cluster {:x}",
                peers.cluster_id()
            )));
        }
        Ok(Response::new(NodesReply {
            members: members(&peers),
        }))
    }

    async fn init(
        &self,
        _req: Request<InitRequest>,
    ) -> std::result::Result<Response<InitReply>, Status> {
        let formation = match &*self.state.read().expect("state lock") {
            State::Forming(f) => f.clone(),
            State::Running { .. } => {
                return Err(Status::already_exists("the cluster is already initialised"));
            }
        };
        let (tx, rx) = oneshot::channel();
        formation
            .init
            .send(tx)
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        match rx.await {
            Ok(Ok(cluster_id)) => Ok(Response::new(InitReply { cluster_id })),
            Ok(Err(e)) => Err(Status::failed_precondition(e)),
            Err(_) => Err(Status::unavailable("the node stopped while initialising")),
        }
    }
}

fn members(peers: &Peers) -> Vec<Member> {
    peers
        .nodes()
        .into_iter()
        .map(|(node_id, addr)| Member { node_id, addr })
        .collect()
}

/// Allocates the next node id from the counter in `sys` and records the node's address, in
/// one transaction.
async fn allocate_node(db: &Db, addr: &str) -> Result<NodeId> {
    for attempt in 1..=JOIN_ATTEMPTS {
        match try_allocate_node(db, addr).await {
            Err(Error::Serialization(m)) if attempt < JOIN_ATTEMPTS => {
                tracing::debug!(attempt, "node id allocation retried: {m}");
            }
            result => return result,
        }
    }
    unreachable!("the last attempt returns")
}

async fn try_allocate_node(db: &Db, addr: &str) -> Result<NodeId> {
    let mut txn = db.begin(TxnOptions::default()).await?;
    let counter = txn.get(&node_id_counter_key()).await?;
    let node_id = counter
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Internal("the node id counter is missing".into()))?;
    txn.put(node_id_counter_key(), (node_id + 1).to_be_bytes().to_vec())?;
    let record = NodeRecord {
        node_id,
        addr: addr.to_string(),
        decommissioning: false,
    };
    txn.put(node_key(node_id), record.encode())?;
    txn.commit().await?;
    Ok(node_id)
}

/// Marks `node` as being decommissioned (once) and counts the ranges whose descriptor still
/// lists it.
async fn decommission(db: &Db, node: NodeId) -> Result<u64> {
    for attempt in 1..=JOIN_ATTEMPTS {
        let mut txn = db.begin(TxnOptions::default()).await?;
        let Some(v) = txn.get(&node_key(node)).await? else {
            txn.rollback().await?;
            return Err(Error::InvalidArgument(format!(
                "node {node} is not in the cluster"
            )));
        };
        let mut record = NodeRecord::decode(&v).map_err(|e| Error::Internal(e.to_string()))?;
        if record.decommissioning {
            txn.rollback().await?;
            break;
        }
        record.decommissioning = true;
        txn.put(node_key(node), record.encode())?;
        match txn.commit().await {
            Ok(()) => {
                tracing::info!(node, "node marked for decommissioning");
                break;
            }
            Err(Error::Serialization(m)) if attempt < JOIN_ATTEMPTS => {
                tracing::debug!("decommission retried: {m}");
            }
            Err(e) => return Err(e),
        }
    }
    let mut txn = db
        .begin(TxnOptions {
            read_only: true,
            ..TxnOptions::default()
        })
        .await?;
    let (start, end) = kv::keys::directory_span();
    let rows = txn.scan(&start, &end, usize::MAX).await?;
    txn.commit().await?;
    let mut remaining = 0;
    for (_, v) in rows {
        let desc = kv::RangeDescriptor::decode(&v).map_err(|e| Error::Internal(e.to_string()))?;
        remaining += desc.replicas.contains(&node) as u64;
    }
    Ok(remaining)
}

/// A client of the Node service at `addr` (a tool's or a forming node's one-off call).
async fn client_at(
    addr: &str,
) -> std::result::Result<super::proto::node_client::NodeClient<tonic::transport::Channel>, String> {
    let channel = super::peers::connect(addr)
        .await
        .map_err(|e| format!("{addr} unreachable: {e}"))?;
    Ok(super::proto::node_client::NodeClient::new(channel))
}

/// Asks the member at `addr` to decommission `node`: how many ranges still have a replica on
/// it.
pub async fn request_decommission(addr: &str, node: NodeId) -> std::result::Result<u64, String> {
    let reply = client_at(addr)
        .await?
        .decommission(DecommissionRequest { node_id: node })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    Ok(reply.remaining)
}

/// The node directory: every node of the cluster with its address.
pub async fn node_directory(db: &Db) -> Result<Vec<NodeRecord>> {
    let (start, end) = node_span();
    db.read_span(&start, &end)
        .await?
        .into_iter()
        .map(|(_, v)| NodeRecord::decode(&v).map_err(|e| Error::Internal(e.to_string())))
        .collect()
}

/// Serves only the node-to-node service of a forming node ([`NodeService::forming`]) on
/// `listener` until `shutdown` completes (then the node serves everything on the same address).
pub async fn serve_forming(
    listener: tokio::net::TcpListener,
    formation: Formation,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::result::Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(NodeService::forming(formation).into_server())
        .serve_with_incoming_shutdown(crate::kvapi::nodelay(listener), shutdown)
        .await
}

/// Asks the member at `addr` to admit this node (reached at `me`): its cluster id and new node
/// id. Fails while `addr` is not part of an initialised cluster itself.
pub async fn join(
    addr: &str,
    me: &str,
) -> std::result::Result<(kv::Join, Vec<(NodeId, String)>), String> {
    let reply = client_at(addr)
        .await?
        .join(JoinRequest {
            addr: me.to_string(),
        })
        .await
        .map_err(|s| format!("{addr}: {}", s.message()))?
        .into_inner();
    let join = kv::Join {
        cluster_id: reply.cluster_id,
        node_id: reply.node_id,
    };
    Ok((join, from_members(reply.members)))
}

fn from_members(members: Vec<Member>) -> Vec<(NodeId, String)> {
    members.into_iter().map(|m| (m.node_id, m.addr)).collect()
}

/// The nodes the member at `addr` of cluster `cluster_id` knows of.
pub async fn nodes(
    addr: &str,
    cluster_id: u64,
) -> std::result::Result<Vec<(NodeId, String)>, String> {
    let reply = client_at(addr)
        .await?
        .nodes(NodesRequest { cluster_id })
        .await
        .map_err(|s| format!("{addr}: {}", s.message()))?
        .into_inner();
    Ok(from_members(reply.members))
}

/// Asks the node at `addr` (started with `--join`) to bootstrap a new cluster: its id.
pub async fn init(addr: &str) -> std::result::Result<u64, String> {
    let reply = client_at(addr)
        .await?
        .init(InitRequest {})
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    Ok(reply.cluster_id)
}
