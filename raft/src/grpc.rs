//! The inter-node transport over gRPC (tonic): one long-lived bidirectional stream per pair of
//! nodes carries the Raft messages of every group, multiplexed by the group id inside each
//! [`Message`].
//!
//! The sending side ([`GrpcTransport`]) opens a stream to a peer's address on first use and
//! keeps it; each request frame gets an id, and the reply frame with that id completes the call.
//! When the stream breaks, calls in flight fail with [`Error::Unavailable`] (openraft retries
//! them) and the next call reconnects, after a backoff that doubles per failed attempt up to a
//! second. The receiving side ([`RaftService`]) checks every frame's cluster id and the target
//! node of its message, hands it to the node's [`Registry`], and answers on the same stream;
//! requests are served concurrently, so a snapshot being installed does not hold up heartbeats.
//! Frames are limited to [`GrpcOptions::max_message_bytes`] both ways.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use prost::bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::transport::{Message, Registry, Reply, RpcKind, Transport};
use crate::{Error, NodeId};

/// Generated protobuf types and gRPC stubs of `proto/raft.proto`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("tinkerdb.raft.v1");
}

use proto::Frame;
use proto::frame::Body;
use proto::raft_transport_client::RaftTransportClient;
use proto::raft_transport_server::{RaftTransport, RaftTransportServer};

/// Limits and timeouts of the gRPC transport.
#[derive(Clone, Debug)]
pub struct GrpcOptions {
    /// The largest frame sent or accepted (a snapshot travels as one message).
    pub max_message_bytes: usize,
    /// How long connecting to a peer may take.
    pub connect_timeout: Duration,
    /// How long a Raft RPC may wait for its reply (snapshots get ten times as long).
    pub request_timeout: Duration,
    /// Nodes this node is cut off from (fault injection; none unless a test cuts some).
    pub faults: crate::Faults,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            max_message_bytes: 256 << 20,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            faults: crate::Faults::default(),
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Reply, Error>>>>>;

/// An open stream to one peer.
struct Conn {
    frames: mpsc::Sender<Frame>,
    pending: Pending,
}

/// What the transport knows of one peer address.
#[derive(Default)]
struct Peer {
    conn: Option<Arc<Conn>>,
    /// Consecutive failed connection attempts, and when the last one failed.
    failures: u32,
    failed_at: Option<Instant>,
}

/// The sending side: Raft messages to other nodes of the cluster `cluster_id` over gRPC.
/// Cheap to clone.
#[derive(Clone)]
pub struct GrpcTransport {
    inner: Arc<Inner>,
}

struct Inner {
    cluster_id: u64,
    options: GrpcOptions,
    peers: Mutex<HashMap<String, Peer>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GrpcTransport {
    /// A transport for the nodes of cluster `cluster_id`.
    pub fn new(cluster_id: u64, options: GrpcOptions) -> GrpcTransport {
        GrpcTransport {
            inner: Arc::new(Inner {
                cluster_id,
                options,
                peers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }
}

impl Inner {
    /// The open stream to `addr`, connecting (unless backing off after failures) when none.
    async fn conn(&self, addr: &str) -> Result<Arc<Conn>, Error> {
        {
            let peers = lock(&self.peers);
            if let Some(peer) = peers.get(addr) {
                if let Some(conn) = &peer.conn
                    && !conn.frames.is_closed()
                {
                    return Ok(conn.clone());
                }
                if let Some(at) = peer.failed_at {
                    let backoff = Duration::from_millis(50 << peer.failures.min(5))
                        .min(Duration::from_secs(1));
                    if at.elapsed() < backoff {
                        return Err(Error::Unavailable(format!(
                            "node at {addr} unreachable (retrying in {backoff:?})"
                        )));
                    }
                }
            }
        }
        match self.connect(addr).await {
            Ok(conn) => {
                let mut peers = lock(&self.peers);
                let peer = peers.entry(addr.to_string()).or_default();
                peer.failures = 0;
                peer.failed_at = None;
                peer.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let mut peers = lock(&self.peers);
                let peer = peers.entry(addr.to_string()).or_default();
                peer.failures = peer.failures.saturating_add(1);
                peer.failed_at = Some(Instant::now());
                peer.conn = None;
                Err(e)
            }
        }
    }

    async fn connect(&self, addr: &str) -> Result<Arc<Conn>, Error> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::Unavailable(format!("node at {addr} unreachable: {e}"))
        };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Invalid(format!("peer address {addr}: {e}")))?
            .connect_timeout(self.options.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = tokio::time::timeout(self.options.connect_timeout, endpoint.connect())
            .await
            .map_err(|_| unreachable(&"connect timed out"))?
            .map_err(|e| unreachable(&e))?;
        let mut client = RaftTransportClient::new(channel)
            .max_decoding_message_size(self.options.max_message_bytes)
            .max_encoding_message_size(self.options.max_message_bytes);
        let (frames, rx) = mpsc::channel(1024);
        let replies = tokio::time::timeout(
            self.options.connect_timeout,
            client.stream(ReceiverStream::new(rx)),
        )
        .await
        .map_err(|_| unreachable(&"stream not opened in time"))?
        .map_err(|e| unreachable(&e.message()))?
        .into_inner();
        let pending: Pending = Arc::default();
        tokio::spawn(read_replies(
            replies,
            pending.clone(),
            self.cluster_id,
            addr.to_string(),
        ));
        Ok(Arc::new(Conn { frames, pending }))
    }

    async fn call(&self, addr: String, msg: Message) -> Result<Reply, Error> {
        let timeout = match msg.kind {
            RpcKind::Snapshot | RpcKind::SnapshotChunk => self.options.request_timeout * 10,
            _ => self.options.request_timeout,
        };
        let kind = match msg.kind {
            RpcKind::AppendEntries => "append_entries",
            RpcKind::Vote => "vote",
            RpcKind::PreVote => "pre_vote",
            RpcKind::Snapshot => "snapshot",
            RpcKind::TransferLeader => "transfer_leader",
            RpcKind::Quiesce => "quiesce",
            RpcKind::Ping => "ping",
            RpcKind::SnapshotChunk => "snapshot_chunk",
        };
        metrics::counter!("tinkerdb_raft_messages_sent_total", "kind" => kind).increment(1);
        if self.options.faults.is_cut(msg.to) {
            return Err(Error::Unavailable(format!(
                "node {} at {addr} is cut off (injected fault)",
                msg.to
            )));
        }
        let conn = self.conn(&addr).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(id, tx);
        let frame = Frame {
            cluster_id: self.cluster_id,
            id,
            body: Some(Body::Request(Bytes::from(msg.to_bytes()))),
        };
        if conn.frames.send(frame).await.is_err() {
            lock(&conn.pending).remove(&id);
            return Err(Error::Unavailable(format!("stream to {addr} closed")));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Unavailable(format!("stream to {addr} closed"))),
            Err(_) => {
                lock(&conn.pending).remove(&id);
                Err(Error::Unavailable(format!(
                    "no reply from {addr} within {timeout:?}"
                )))
            }
        }
    }
}

/// Completes the calls of one stream with the replies that come back; when the stream ends,
/// fails every call still waiting.
async fn read_replies(
    mut replies: Streaming<Frame>,
    pending: Pending,
    cluster_id: u64,
    addr: String,
) {
    let why = loop {
        match replies.next().await {
            None => break "closed by the peer".to_string(),
            Some(Err(status)) => break status.message().to_string(),
            Some(Ok(frame)) => {
                if frame.cluster_id != cluster_id {
                    // A node of another cluster: a configuration error, not a transient one.
                    let why = format!(
                        "the node at {addr} belongs to cluster {:x}, not {cluster_id:x}",
                        frame.cluster_id
                    );
                    if let Some(tx) = lock(&pending).remove(&frame.id) {
                        let _ = tx.send(Err(Error::Invalid(why.clone())));
                    }
                    break why;
                }
                let result = match frame.body {
                    Some(Body::Reply(body)) => Ok(Reply {
                        body: body.to_vec(),
                    }),
                    Some(Body::Error(e)) => Err(Error::from_bytes(&e)),
                    _ => Err(Error::Invalid("a reply frame without a reply".into())),
                };
                if let Some(tx) = lock(&pending).remove(&frame.id) {
                    let _ = tx.send(result);
                }
            }
        }
    };
    tracing::debug!(peer = %addr, "raft stream ended: {why}");
    for (_, tx) in lock(&pending).drain() {
        let _ = tx.send(Err(Error::Unavailable(format!(
            "stream to {addr} ended: {why}"
        ))));
    }
}

impl Transport for GrpcTransport {
    fn send(&self, addr: &str, msg: Message) -> BoxFuture<'static, Result<Reply, Error>> {
        let inner = self.inner.clone();
        let addr = addr.to_string();
        Box::pin(async move { inner.call(addr, msg).await })
    }
}

/// The receiving side: serves the streams other nodes of the cluster open to this node.
#[derive(Clone)]
pub struct RaftService {
    registry: Registry,
    cluster_id: u64,
    node_id: NodeId,
    options: GrpcOptions,
}

impl RaftService {
    /// Serves messages for node `node_id` of cluster `cluster_id` from `registry`.
    pub fn new(registry: Registry, cluster_id: u64, node_id: NodeId, options: GrpcOptions) -> Self {
        RaftService {
            registry,
            cluster_id,
            node_id,
            options,
        }
    }

    /// The tonic service, with the frame size limits applied, to add to a node's gRPC server.
    pub fn into_server(self) -> RaftTransportServer<RaftService> {
        let limit = self.options.max_message_bytes;
        RaftTransportServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }

    /// Answers one request frame.
    async fn answer(&self, frame: Frame) -> Frame {
        let body = match self.handle(frame.cluster_id, frame.body).await {
            Ok(reply) => Body::Reply(Bytes::from(reply.body)),
            Err(e) => Body::Error(Bytes::from(e.to_bytes())),
        };
        Frame {
            cluster_id: self.cluster_id,
            id: frame.id,
            body: Some(body),
        }
    }

    async fn handle(&self, cluster_id: u64, body: Option<Body>) -> Result<Reply, Error> {
        if cluster_id != self.cluster_id {
            return Err(Error::Invalid(format!(
                "message of cluster {cluster_id:x} refused by node {} of cluster {:x}",
                self.node_id, self.cluster_id
            )));
        }
        let Some(Body::Request(bytes)) = body else {
            return Err(Error::Invalid("a request frame without a request".into()));
        };
        let msg = Message::from_bytes(&bytes)?;
        if self.options.faults.is_cut(msg.from) {
            return Err(Error::Unavailable(format!(
                "node {} is cut off from node {} (injected fault)",
                self.node_id, msg.from
            )));
        }
        if msg.to != self.node_id {
            return Err(Error::Invalid(format!(
                "message for node {} refused by node {}",
                msg.to, self.node_id
            )));
        }
        self.registry.handle(msg).await
    }
}

#[tonic::async_trait]
impl RaftTransport for RaftService {
    type StreamStream = ReceiverStream<Result<Frame, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut frames = request.into_inner();
        let (tx, rx) = mpsc::channel(1024);
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(frame) = frames.next().await {
                let Ok(frame) = frame else { break };
                let (service, tx) = (service.clone(), tx.clone());
                tokio::spawn(async move {
                    let reply = service.answer(frame).await;
                    let _ = tx.send(Ok(reply)).await;
                });
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
