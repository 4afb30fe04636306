//! The transport seam: Raft RPCs as serializable messages between nodes.
//!
//! A [`Message`] names its target node and group and carries an opaque body (openraft's request,
//! encoded by this crate); a [`Reply`] carries the opaque response. A [`Transport`] delivers a
//! message to the target node, whose [`Registry`] hands it to the group. [`LocalTransport`]
//! does this in process, passing every message through its byte form
//! ([`Message::to_bytes`]); a gRPC transport would carry `Message` and `Reply` as bytes and call
//! [`Registry::handle`] on the receiving node.
//!
//! Bodies have explicit, versioned binary encodings (the `wire` module); only this crate encodes
//! and decodes them. A body that does not decode is refused with [`Error::Invalid`] on the
//! receiving side and treated as an unreachable peer on the sending side.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Raft, RaftNetworkV2};
use serde::{Deserialize, Serialize};

use crate::quiesce::{Monitor, QuiesceReply, QuiesceRequest, Quiet};
use crate::sm::{SnapshotBody, Store};
use crate::state::AppliedState;
use crate::types::{Cfg, Node, SnapshotMeta, Vote};
use crate::wire::{Body, SnapshotChunk, SnapshotRequest};
use crate::{Command, Error, GroupId, NodeId, Options, Response, StateMachine};

/// The kind of a Raft RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RpcKind {
    /// Append entries (also heartbeats).
    AppendEntries,
    /// Request vote.
    Vote,
    /// Pre-vote: would the peer grant a vote?
    PreVote,
    /// A full snapshot.
    Snapshot,
    /// Leadership transfer notice.
    TransferLeader,
    /// A leader asks an idle follower to stop its ticker (`quiesce`).
    Quiesce,
    /// Is the node there? Answered by the node itself, for no group (`quiesce`'s monitor).
    Ping,
    /// A piece of a full snapshot too large for one message.
    SnapshotChunk,
}

/// One Raft RPC from node `from` to group `group` on node `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Target group.
    pub group: GroupId,
    /// Sending node.
    pub from: NodeId,
    /// Target node.
    pub to: NodeId,
    /// Kind of RPC; decides how `body` is decoded.
    pub kind: RpcKind,
    /// The request, encoded by this crate.
    pub body: Vec<u8>,
}

impl Message {
    /// The message's explicit, versioned binary form, for transports that carry bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes bytes written by [`to_bytes`](Self::to_bytes); malformed bytes are
    /// [`Error::Invalid`].
    pub fn from_bytes(b: &[u8]) -> Result<Message, Error> {
        Message::decode(b).map_err(|e| Error::Invalid(format!("decode raft message: {e}")))
    }
}

/// The answer to a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The response, encoded by this crate.
    pub body: Vec<u8>,
}

/// Delivers messages to other nodes. `addr` is the target's address from the group membership.
/// A failure to deliver is [`Error::Unavailable`]; the receiving side's errors come back as is.
pub trait Transport: Send + Sync + 'static {
    /// Delivers `msg` to node `msg.to` (at `addr`) and returns its reply.
    fn send(&self, addr: &str, msg: Message) -> BoxFuture<'static, Result<Reply, Error>>;
}

/// A group's receiving side, with its types erased.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, kind: RpcKind, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Error>>;

    /// While the group is quiesced, its members (node id → address); else None.
    fn quiesced_peers(&self) -> Option<BTreeMap<NodeId, String>>;

    /// Restarts the group's ticker if it is quiesced.
    fn wake(&self);
}

/// The groups hosted on one node, by id, so that incoming messages find their group. Messages
/// for groups not registered are answered [`Error::Unavailable`]; a group is never created on
/// demand. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    groups: Arc<RwLock<HashMap<GroupId, Arc<dyn Handler>>>>,
    /// Set once the node's quiescence monitor runs.
    monitor: Arc<std::sync::OnceLock<()>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids of the registered groups.
    pub fn groups(&self) -> Vec<GroupId> {
        let mut ids: Vec<_> = self.read().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// True when `group` is registered.
    pub fn contains(&self, group: GroupId) -> bool {
        self.read().contains_key(&group)
    }

    /// Hands an incoming message to its group and returns the group's reply.
    pub fn handle(&self, msg: Message) -> BoxFuture<'static, Result<Reply, Error>> {
        if msg.kind == RpcKind::Ping {
            return Box::pin(async { Ok(Reply { body: Vec::new() }) });
        }
        let handler = self.read().get(&msg.group).cloned();
        match handler {
            None => Box::pin(async move {
                Err(Error::Unavailable(format!(
                    "group {} not on this node",
                    msg.group
                )))
            }),
            Some(h) => {
                let fut = h.handle(msg.kind, msg.body);
                Box::pin(async move { fut.await.map(|body| Reply { body }) })
            }
        }
    }

    pub(crate) fn register<SM: StateMachine>(
        &self,
        group: GroupId,
        raft: GroupRaft<SM>,
        quiet: Arc<Quiet>,
        hold_elections: Duration,
    ) -> Result<(), Error> {
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        if groups.contains_key(&group) {
            return Err(Error::Invalid(format!(
                "group {group} already runs on this node"
            )));
        }
        groups.insert(
            group,
            Arc::new(RaftHandler {
                raft,
                quiet,
                incoming: Default::default(),
                hold_elections,
            }),
        );
        Ok(())
    }

    pub(crate) fn unregister(&self, group: GroupId) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group);
    }

    /// Starts the node's quiescence monitor (once per registry): it pings the peers of the
    /// quiesced groups through `transport` and wakes those with a silent member.
    pub(crate) fn start_monitor(
        &self,
        transport: Arc<dyn Transport>,
        node: NodeId,
        opts: &Options,
    ) {
        let monitor = Monitor {
            groups: Arc::downgrade(&self.groups),
            transport,
            node,
            every: opts.heartbeat_interval,
            dead_after: opts.election_timeout_max * 2 + opts.heartbeat_interval,
        };
        self.monitor.get_or_init(|| {
            tokio::spawn(monitor.run());
        });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<GroupId, Arc<dyn Handler>>> {
        self.groups.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// In-process transport: a map from node id to that node's [`Registry`]. Messages still go
/// through their encoded form. Nodes can be removed and re-added to simulate failures.
#[derive(Clone, Default)]
pub struct LocalTransport {
    nodes: Arc<RwLock<HashMap<NodeId, Registry>>>,
    sent: Arc<std::sync::Mutex<HashMap<RpcKind, u64>>>,
}

impl LocalTransport {
    /// A transport with no nodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `node` reachable, delivering its messages to `registry`.
    pub fn add_node(&self, node: NodeId, registry: Registry) {
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node, registry);
    }

    /// Makes `node` unreachable.
    pub fn remove_node(&self, node: NodeId) {
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node);
    }

    /// How many messages of `kind` were sent so far (delivered or not).
    pub fn sent(&self, kind: RpcKind) -> u64 {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.get(&kind).copied().unwrap_or(0)
    }
}

impl Transport for LocalTransport {
    fn send(&self, _addr: &str, msg: Message) -> BoxFuture<'static, Result<Reply, Error>> {
        *self
            .sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(msg.kind)
            .or_default() += 1;
        let registry = self
            .nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&msg.to)
            .cloned();
        match registry {
            None => {
                Box::pin(
                    async move { Err(Error::Unavailable(format!("node {} unreachable", msg.to))) },
                )
            }
            Some(r) => {
                let bytes = msg.to_bytes();
                match Message::from_bytes(&bytes) {
                    // The receiving side's error travels in its byte form too.
                    Ok(msg) => {
                        let reply = r.handle(msg);
                        Box::pin(async move {
                            reply.await.map_err(|e| Error::from_bytes(&e.to_bytes()))
                        })
                    }
                    Err(e) => Box::pin(async move { Err(e) }),
                }
            }
        }
    }
}

pub(crate) type GroupRaft<SM> =
    Raft<Cfg<<SM as StateMachine>::Command, <SM as StateMachine>::Response>, Store<SM>>;

fn decode<T: Body>(b: &[u8]) -> Result<T, Error> {
    T::decode(b).map_err(|e| Error::Invalid(format!("decode raft message: {e}")))
}

fn raft_err(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

struct RaftHandler<SM: StateMachine> {
    raft: GroupRaft<SM>,
    quiet: Arc<Quiet>,
    /// The snapshot arriving in pieces, if any.
    incoming: Arc<std::sync::Mutex<Option<SnapshotChunk>>>,
    /// How long a follower woken by the monitor holds its elections.
    hold_elections: Duration,
}

impl<SM: StateMachine> Handler for RaftHandler<SM> {
    fn handle(&self, kind: RpcKind, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, Error>> {
        let raft = self.raft.clone();
        let quiet = self.quiet.clone();
        let incoming = self.incoming.clone();
        Box::pin(async move {
            if kind == RpcKind::Quiesce {
                let req: QuiesceRequest = decode(&body)?;
                return Ok(maybe_quiesce_follower(&raft, &quiet, &req).encode());
            }
            let reply = match kind {
                RpcKind::SnapshotChunk => match assemble(&incoming, decode(&body)?)? {
                    None => Ok(Vec::new()),
                    Some(whole) => install(&raft, whole.vote, whole.state, whole.data).await,
                },
                _ => handle_raft(&raft, kind, body).await,
            };
            // After openraft took the message in: a leader's message has renewed this
            // follower's view of it before the election timer runs again.
            quiet.wake(|on| raft.runtime_config().tick(on));
            reply
        })
    }

    fn quiesced_peers(&self) -> Option<BTreeMap<NodeId, String>> {
        if !self.quiet.is_quiesced() {
            return None;
        }
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        Some(
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
        )
    }

    fn wake(&self) {
        let config = self.raft.runtime_config();
        if self.quiet.wake(|on| config.tick(on))
            && !self.raft.metrics().borrow_watched().state.is_leader()
        {
            // Its leader may be alive and merely slow: give it one election timeout to
            // heartbeat before campaigning (see `quiesce`).
            config.elect(false);
            let raft = self.raft.clone();
            let hold = self.hold_elections;
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                raft.runtime_config().elect(true);
            });
        }
    }
}

/// A follower quiesces when its leader's request names its own vote and last log index.
fn maybe_quiesce_follower<SM: StateMachine>(
    raft: &GroupRaft<SM>,
    quiet: &Quiet,
    req: &QuiesceRequest,
) -> QuiesceReply {
    let agrees = {
        let m = raft.metrics();
        let m = m.borrow_watched();
        !m.state.is_leader()
            && m.vote == req.vote
            && req.vote.is_committed()
            && m.current_leader == Some(req.vote.leader_id().node_id)
            && m.last_log_index == req.last_index
    };
    QuiesceReply {
        quiesced: agrees && quiet.quiesce(None, |on| raft.runtime_config().tick(on)),
    }
}

async fn handle_raft<SM: StateMachine>(
    raft: &GroupRaft<SM>,
    kind: RpcKind,
    body: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    match kind {
        RpcKind::AppendEntries => Ok(raft
            .append_entries(decode(&body)?)
            .await
            .map_err(raft_err)?
            .encode()),
        RpcKind::Vote => Ok(raft.vote(decode(&body)?).await.map_err(raft_err)?.encode()),
        RpcKind::PreVote => Ok(raft
            .pre_vote(decode(&body)?)
            .await
            .map_err(raft_err)?
            .encode()),
        RpcKind::TransferLeader => Ok(raft
            .handle_transfer_leader(decode(&body)?)
            .await
            .map_err(raft_err)?
            .encode()),
        RpcKind::Snapshot => {
            let SnapshotRequest { vote, state, data } = decode(&body)?;
            install(raft, vote, state, data).await
        }
        RpcKind::Quiesce | RpcKind::Ping | RpcKind::SnapshotChunk => Err(Error::Invalid(format!(
            "{kind:?} is not an openraft message"
        ))),
    }
}

async fn install<SM: StateMachine>(
    raft: &GroupRaft<SM>,
    vote: Vote,
    state: AppliedState,
    data: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    let meta = SnapshotMeta {
        last_log_id: state.log_id,
        last_membership: state.membership,
    };
    let snap = openraft::Snapshot {
        meta,
        snapshot: SnapshotBody::Data(data),
    };
    Ok(raft
        .install_full_snapshot(vote, snap)
        .await
        .map_err(raft_err)?
        .encode())
}

/// Adds a piece to the snapshot arriving in pieces; returns the whole snapshot with its last
/// piece. A first piece starts a new transfer (dropping an unfinished one); a piece that does
/// not continue the transfer in progress is refused, and the sender starts over.
fn assemble(
    incoming: &std::sync::Mutex<Option<SnapshotChunk>>,
    chunk: SnapshotChunk,
) -> Result<Option<SnapshotChunk>, Error> {
    let mut slot = incoming.lock().unwrap_or_else(|e| e.into_inner());
    if chunk.offset == 0 {
        *slot = None;
    }
    let whole = match slot.take() {
        None if chunk.offset == 0 => chunk,
        Some(mut whole)
            if whole.transfer == chunk.transfer
                && whole.vote == chunk.vote
                && whole.total == chunk.total
                && whole.data.len() as u64 == chunk.offset =>
        {
            whole.data.extend_from_slice(&chunk.data);
            whole
        }
        _ => {
            return Err(Error::Invalid(format!(
                "snapshot piece at {} of transfer {} does not continue a transfer here",
                chunk.offset, chunk.transfer
            )));
        }
    };
    if whole.data.len() as u64 > whole.total {
        return Err(Error::Invalid("snapshot pieces exceed their total".into()));
    }
    if whole.data.len() as u64 == whole.total {
        return Ok(Some(whole));
    }
    *slot = Some(whole);
    Ok(None)
}

/// Creates the per-peer clients of one group.
pub(crate) struct NetworkFactory {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) group: GroupId,
    pub(crate) node: NodeId,
    /// Snapshots larger than this are sent in pieces of this size.
    pub(crate) chunk_bytes: usize,
}

impl<C: Command, R: Response> RaftNetworkFactory<Cfg<C, R>> for NetworkFactory {
    type Network = Client;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Client {
        Client {
            transport: self.transport.clone(),
            group: self.group,
            from: self.node,
            to: target,
            addr: node.addr.clone(),
            chunk_bytes: self.chunk_bytes,
        }
    }
}

/// Sends one group's RPCs to one peer.
pub(crate) struct Client {
    transport: Arc<dyn Transport>,
    group: GroupId,
    from: NodeId,
    to: NodeId,
    addr: String,
    chunk_bytes: usize,
}

/// Numbers snapshot transfers, so that a receiver never joins pieces of two of them.
static TRANSFERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Client {
    /// Sends `data` in pieces of `chunk_bytes`, in order, each acknowledged before the next;
    /// the receiver installs the snapshot on the last and answers it with its vote.
    async fn send_chunks(
        &self,
        vote: Vote,
        state: AppliedState,
        data: &[u8],
        ttl: Duration,
    ) -> Result<Vec<u8>, String> {
        let transfer = TRANSFERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let total = data.len() as u64;
        let mut reply = Vec::new();
        for (i, piece) in data.chunks(self.chunk_bytes).enumerate() {
            let chunk = SnapshotChunk {
                vote,
                transfer,
                offset: (i * self.chunk_bytes) as u64,
                total,
                state: state.clone(),
                data: piece.to_vec(),
            };
            reply = self
                .call(RpcKind::SnapshotChunk, chunk.encode(), ttl)
                .await?;
        }
        Ok(reply)
    }

    async fn call(&self, kind: RpcKind, body: Vec<u8>, ttl: Duration) -> Result<Vec<u8>, String> {
        let msg = Message {
            group: self.group,
            from: self.from,
            to: self.to,
            kind,
            body,
        };
        match tokio::time::timeout(ttl, self.transport.send(&self.addr, msg)).await {
            Ok(Ok(reply)) => Ok(reply.body),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "{kind:?} to node {} timed out after {ttl:?}",
                self.to
            )),
        }
    }

    async fn rpc<Req: Body, Resp: Body, C: Command, R: Response>(
        &self,
        kind: RpcKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<Cfg<C, R>>> {
        let unreachable = |m: String| RPCError::Unreachable(Unreachable::from_string(m));
        let body = req.encode();
        let reply = self
            .call(kind, body, option.soft_ttl())
            .await
            .map_err(unreachable)?;
        decode(&reply).map_err(|e| unreachable(e.to_string()))
    }
}

impl<C: Command, R: Response> RaftNetworkV2<Cfg<C, R>> for Client {
    type SnapshotData = SnapshotBody;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Cfg<C, R>>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<Cfg<C, R>>, RPCError<Cfg<C, R>>> {
        let resp = self.rpc(RpcKind::AppendEntries, &rpc, &option).await?;
        // A log always matches at its start; openraft panics on a conflict there.
        if rpc.prev_log_id.is_none() && resp == AppendEntriesResponse::Conflict {
            return Err(RPCError::Unreachable(Unreachable::from_string(format!(
                "node {} reported a conflict at the start of the log",
                self.to
            ))));
        }
        Ok(resp)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Cfg<C, R>>,
        option: RPCOption,
    ) -> Result<VoteResponse<Cfg<C, R>>, RPCError<Cfg<C, R>>> {
        self.rpc(RpcKind::Vote, &rpc, &option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Cfg<C, R>>,
        option: RPCOption,
    ) -> Result<VoteResponse<Cfg<C, R>>, RPCError<Cfg<C, R>>> {
        self.rpc(RpcKind::PreVote, &rpc, &option).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<Cfg<C, R>>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<Cfg<C, R>>, RPCError<Cfg<C, R>>> {
        self.rpc(RpcKind::TransferLeader, &req, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::Snapshot<crate::types::Clid, NodeId, Node, SnapshotBody>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<Cfg<C, R>>, StreamingError<Cfg<C, R>>> {
        let unreachable = |m: String| StreamingError::Unreachable(Unreachable::from_string(m));
        let data = match snapshot.snapshot {
            SnapshotBody::Data(data) => data,
            SnapshotBody::Pending(pending) => {
                let data = pending
                    .build()
                    .await
                    .map_err(|e| unreachable(format!("snapshot data not read: {e}")))?;
                tracing::info!(
                    bytes = data.len(),
                    to = self.to,
                    "built snapshot for a follower"
                );
                data
            }
            SnapshotBody::Checkpoint => {
                return Err(unreachable(
                    "a log checkpoint is not sent to followers".to_string(),
                ));
            }
        };
        let state = AppliedState::new(snapshot.meta.last_log_id, snapshot.meta.last_membership);
        let ttl = option.hard_ttl();
        let send = async {
            if data.len() <= self.chunk_bytes {
                let body = SnapshotRequest { vote, state, data }.encode();
                self.call(RpcKind::Snapshot, body, ttl).await
            } else {
                self.send_chunks(vote, state, &data, ttl).await
            }
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            reply = send => {
                let reply = reply.map_err(unreachable)?;
                decode(&reply).map_err(|e| unreachable(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Clid;

    fn piece(transfer: u64, offset: u64, data: &[u8]) -> SnapshotChunk {
        SnapshotChunk {
            vote: Vote {
                leader_id: Clid {
                    term: 3,
                    node_id: 1,
                },
                committed: true,
            },
            transfer,
            offset,
            total: 6,
            state: AppliedState::default(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn pieces_join_in_order_and_strays_are_refused() {
        let slot = std::sync::Mutex::new(None);
        assert!(assemble(&slot, piece(1, 0, b"ab")).unwrap().is_none());
        // A piece of another transfer, or out of place, is refused and changes nothing.
        assert!(assemble(&slot, piece(2, 2, b"cd")).is_err());
        assert!(assemble(&slot, piece(1, 4, b"ef")).is_err());
        // The refusal dropped the transfer: the sender starts over.
        assert!(assemble(&slot, piece(1, 2, b"cd")).is_err());
        assert!(assemble(&slot, piece(1, 0, b"ab")).unwrap().is_none());
        assert!(assemble(&slot, piece(1, 2, b"cd")).unwrap().is_none());
        let whole = assemble(&slot, piece(1, 4, b"ef")).unwrap().unwrap();
        assert_eq!(whole.data, b"abcdef");
        assert!(slot.lock().unwrap().is_none());
        // A new first piece replaces an unfinished transfer.
        assert!(assemble(&slot, piece(5, 0, b"xy")).unwrap().is_none());
        assert!(assemble(&slot, piece(6, 0, b"ab")).unwrap().is_none());
        assert!(assemble(&slot, piece(5, 2, b"zz")).is_err());
    }
}
