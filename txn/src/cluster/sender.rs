//! [`NodeSender`]: kv requests to range leaders wherever they are.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kv::{LocalSender, NodeId, RangeDescriptor, RangeSender, Reply, Request};

use super::peers::Peers;
use super::proto;
use crate::{Error, Result, Timestamp};

/// How many `NotLeader` hints one send follows before giving up (the client then retries
/// with a fresh descriptor).
const MAX_HOPS: usize = 6;
/// How long a write to another node may take: above a proposal's timeout on the leader, so
/// that a slow leader reports an unknown outcome itself.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a read (or an oracle batch) from another node may take before the next node is
/// tried: a paused or partitioned leader must not hold requests much past an election.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The node's [`RangeSender`]: requests run on this node's replica when it leads the range,
/// and go to the leader's node otherwise.
pub struct NodeSender {
    local: Arc<LocalSender>,
    peers: Arc<Peers>,
}

impl NodeSender {
    /// A sender over the node's local sender and address book.
    pub fn new(local: Arc<LocalSender>, peers: Arc<Peers>) -> Arc<NodeSender> {
        Arc::new(NodeSender { local, peers })
    }

    /// The node to try first for `range`: this one when it leads; else the leader its replica
    /// knows of, the last leader seen, or the first replica of the descriptor.
    fn first_target(&self, range: &RangeDescriptor) -> Option<NodeId> {
        let me = self.peers.node_id();
        match self.local.leader(range.range_id) {
            Some(Some(leader)) => return Some(leader),
            Some(None) => {}
            None => {}
        }
        if let Some(hint) = self.peers.leader_hint(range.range_id) {
            return Some(hint);
        }
        self.candidates(range, &[]).into_iter().find(|n| *n != me)
    }

    /// Nodes that may hold a replica of `range`, not in `tried`: the descriptor's replicas,
    /// then every known node (a descriptor may be older than its range's replicas).
    fn candidates(&self, range: &RangeDescriptor, tried: &[NodeId]) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = Vec::new();
        let known = self.peers.nodes().into_iter().map(|(n, _)| n);
        for n in range.replicas.iter().copied().chain(known) {
            if !tried.contains(&n) && !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    async fn run(&self, range: RangeDescriptor, req: Request) -> kv::Result<Reply> {
        let me = self.peers.node_id();
        let mut tried: Vec<NodeId> = Vec::new();
        let mut target = self.first_target(&range);
        let mut last_error = None;
        for _ in 0..MAX_HOPS {
            let Some(node) = target else { break };
            tried.push(node);
            let started = std::time::Instant::now();
            let result = if node == me {
                self.local.send(&range, req.clone()).await
            } else {
                self.remote(node, &range, &req).await
            };
            if let Err(e) = &result {
                tracing::debug!(
                    range = range.range_id,
                    node,
                    request = req.name(),
                    elapsed = ?started.elapsed(),
                    "request failed: {e}"
                );
            }
            match result {
                Ok(reply) => {
                    self.peers.note_leader(range.range_id, node);
                    return Ok(reply);
                }
                Err(kv::Error::NotLeader {
                    leader: Some(leader),
                }) if !tried.contains(&leader) => {
                    self.peers.note_leader(range.range_id, leader);
                    target = Some(leader);
                }
                Err(
                    e @ (kv::Error::NotLeader { .. }
                    | kv::Error::RangeNotFound(_)
                    | kv::Error::Unavailable(_)),
                ) => {
                    target = self.candidates(&range, &tried).into_iter().next();
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            kv::Error::Unavailable(format!("no node leads range {}", range.range_id))
        }))
    }

    /// Sends one request to `node`. A write whose call failed after it was sent may have
    /// applied there: `Ambiguous`.
    async fn remote(
        &self,
        node: NodeId,
        range: &RangeDescriptor,
        req: &Request,
    ) -> kv::Result<Reply> {
        let write = matches!(req, Request::Propose(_) | Request::OnePhaseCommit { .. });
        let mut client = self.peers.client(node).await?;
        let call = proto::CallRequest {
            header: Some(self.peers.header(node)),
            body: kv::encode_request(range, req).into(),
        };
        let lost = |why: String| {
            if write {
                kv::Error::Ambiguous(format!("{} to node {node}: {why}", req.name()))
            } else {
                kv::Error::Unavailable(format!("{} to node {node}: {why}", req.name()))
            }
        };
        let timeout = match req {
            // Answered when the lock is released, or after its own bound.
            Request::WaitForRelease { max_wait_ms, .. } => {
                READ_TIMEOUT + Duration::from_millis(*max_wait_ms)
            }
            _ if write => WRITE_TIMEOUT,
            _ => READ_TIMEOUT,
        };
        match tokio::time::timeout(timeout, client.call(call)).await {
            Ok(Ok(reply)) => kv::decode_reply(&reply.into_inner().body),
            // Refused before it ran (another cluster, another node, not serving yet).
            Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                self.peers.forget_connection(node);
                Err(kv::Error::Unavailable(format!(
                    "node {node} refused the request: {}",
                    status.message()
                )))
            }
            Ok(Err(status)) => {
                self.peers.forget_connection(node);
                Err(lost(status.message().to_string()))
            }
            Err(_) => {
                self.peers.forget_connection(node);
                Err(lost(format!("no reply within {timeout:?}")))
            }
        }
    }

    /// Asks `node` for `count` timestamps.
    async fn timestamps_from(&self, node: NodeId, count: u64) -> Answer {
        let failed =
            |why: String| Answer::Failed(format!("timestamp oracle on node {node}: {why}"));
        let mut client = match self.peers.client(node).await {
            Ok(c) => c,
            Err(e) => return failed(e.to_string()),
        };
        let req = proto::TimestampsRequest {
            header: Some(self.peers.header(node)),
            count,
        };
        match tokio::time::timeout(READ_TIMEOUT, client.timestamps(req)).await {
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                if reply.first > 0 {
                    Answer::First(reply.first)
                } else if reply.leader > 0 {
                    Answer::Leader(reply.leader)
                } else {
                    failed(reply.error)
                }
            }
            Ok(Err(status)) => {
                self.peers.forget_connection(node);
                failed(status.message().to_string())
            }
            Err(_) => {
                self.peers.forget_connection(node);
                failed(format!("no reply within {READ_TIMEOUT:?}"))
            }
        }
    }
}

/// What a node answered to a forwarded oracle batch.
enum Answer {
    /// The first of the batch's timestamps.
    First(Timestamp),
    /// It does not lead range 1; this node does, as far as it knows.
    Leader(NodeId),
    /// It could not answer (unreachable, not serving, the oracle failed).
    Failed(String),
}

impl RangeSender for NodeSender {
    fn send(&self, range: &RangeDescriptor, req: Request) -> BoxFuture<'_, kv::Result<Reply>> {
        Box::pin(self.run(range.clone(), req))
    }
}

/// A node that does not lead range 1 obtains timestamps from the one that does. Timestamps
/// are issued only by that leader after its own leadership check, so a lost reply loses
/// nothing: the batch is asked again (unused timestamps are harmless).
impl crate::oracle::Forward for NodeSender {
    fn timestamps(&self, leader: Option<NodeId>, count: u64) -> BoxFuture<'_, Result<Timestamp>> {
        Box::pin(async move {
            let me = self.peers.node_id();
            let mut order: Vec<NodeId> = leader
                .or_else(|| self.peers.leader_hint(1))
                .into_iter()
                .collect();
            for (n, _) in self.peers.nodes() {
                if !order.contains(&n) {
                    order.push(n);
                }
            }
            order.retain(|n| *n != me);
            let mut tried: Vec<NodeId> = Vec::new();
            let mut last = "range 1 has no known leader".to_string();
            while let Some(node) = order.iter().copied().find(|n| !tried.contains(n)) {
                tried.push(node);
                let started = std::time::Instant::now();
                let answer = self.timestamps_from(node, count).await;
                if let Answer::Failed(why) = &answer {
                    tracing::debug!(node, elapsed = ?started.elapsed(), "oracle batch: {why}");
                }
                match answer {
                    Answer::First(first) => {
                        self.peers.note_leader(1, node);
                        return Ok(first);
                    }
                    Answer::Leader(l) => {
                        // Ask the named leader next.
                        if l != me && !tried.contains(&l) {
                            order.retain(|n| *n != l);
                            order.insert(0, l);
                        }
                    }
                    Answer::Failed(why) => last = why,
                }
            }
            Err(Error::Unavailable(format!("timestamp oracle: {last}")))
        })
    }

    fn wait_for(
        &self,
        waiter: Timestamp,
        holder: Option<Timestamp>,
    ) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let me = self.peers.node_id();
            let mut next = self
                .peers
                .leader_hint(1)
                .or_else(|| self.local.leader(1).flatten())
                .filter(|n| *n != me);
            let mut tried = Vec::new();
            while let Some(node) = next.take() {
                tried.push(node);
                let reply = self.waits_at(node, waiter, holder).await?;
                if reply.recorded {
                    self.peers.note_leader(1, node);
                    return Ok(reply.cycle);
                }
                next = Some(reply.leader).filter(|l| *l != 0 && *l != me && !tried.contains(l));
            }
            Err(Error::Unavailable(
                "the deadlock detector: range 1's leader is not known here".into(),
            ))
        })
    }
}

impl NodeSender {
    /// Sends a lock wait (or its end) to `node`'s deadlock detector.
    async fn waits_at(
        &self,
        node: NodeId,
        waiter: Timestamp,
        holder: Option<Timestamp>,
    ) -> Result<proto::WaitsReply> {
        let unavailable = |why: String| Error::Unavailable(format!("node {node}: {why}"));
        let mut client = self
            .peers
            .client(node)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let req = proto::WaitsRequest {
            header: Some(self.peers.header(node)),
            waiter,
            holder: holder.unwrap_or(0),
        };
        match tokio::time::timeout(READ_TIMEOUT, client.waits(req)).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => {
                self.peers.forget_connection(node);
                Err(unavailable(status.message().to_string()))
            }
            Err(_) => {
                self.peers.forget_connection(node);
                Err(unavailable(format!("no reply within {READ_TIMEOUT:?}")))
            }
        }
    }
}
