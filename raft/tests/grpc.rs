//! Three nodes in one process, each with its own gRPC server on a loopback port: the groups
//! replicate over real sockets, a node cut off (through a proxy) catches up once it is back, and
//! frames of another cluster or for another node are refused.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use raft::{
    Error, Group, GrpcOptions, GrpcTransport, LogStore, Message, RaftService, Registry, RpcKind,
    Transport,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const GROUP: u64 = 9;
const CLUSTER: u64 = 0xc1;

/// Serves `registry` as node `id` of `cluster` on `listener` until the task is aborted.
fn serve(listener: TcpListener, registry: Registry, cluster: u64, id: u64) -> JoinHandle<()> {
    let service = RaftService::new(registry, cluster, id, GrpcOptions::default()).into_server();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    })
}

/// A loopback TCP proxy in front of a server, which the test can cut (every connection and the
/// listener closed) and restore on the same port.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            target,
            tasks: Arc::default(),
        };
        proxy.run(listener);
        proxy
    }

    fn run(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    async fn cut(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restore(&self) {
        self.run(TcpListener::bind(self.addr).await.unwrap());
    }
}

struct Node {
    id: u64,
    addr: SocketAddr,
    group: Group<TestSm>,
    _db: fjall::Database,
}

async fn start(id: u64, path: &std::path::Path) -> Node {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = open_db(path);
    let log = LogStore::open(&db).unwrap();
    let registry = Registry::new();
    let transport: Arc<dyn Transport> =
        Arc::new(GrpcTransport::new(CLUSTER, GrpcOptions::default()));
    let group = Group::start(
        GROUP,
        id,
        &log,
        TestSm::new(&db, GROUP),
        transport,
        &registry,
        &fast_options(),
    )
    .await
    .unwrap();
    serve(listener, registry, CLUSTER, id);
    Node {
        id,
        addr,
        group,
        _db: db,
    }
}

async fn propose(nodes: &[&Node], key: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let leader = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
        let node = nodes.iter().find(|n| n.id == leader);
        if let Some(node) = node {
            match node.group.propose(put(key, "v")).await {
                Ok(r) => return r.index,
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {}
                Err(e) => panic!("propose: {e:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_replicate_over_grpc_and_a_returning_node_catches_up() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start(i as u64 + 1, dir.path()).await);
    }
    // Node 3 is reached through a proxy the test can cut.
    let proxy = Proxy::start(nodes[2].addr).await;
    let mut voters: BTreeMap<u64, String> =
        nodes.iter().map(|n| (n.id, n.addr.to_string())).collect();
    voters.insert(3, proxy.addr.to_string());
    nodes[0].group.initialize(voters).await.unwrap();
    let all: Vec<&Node> = nodes.iter().collect();
    let mut last = 0;
    for i in 0..20 {
        last = propose(&all, &format!("k{i}")).await;
    }
    for n in &nodes {
        n.group.wait_applied(last, WAIT).await.unwrap();
        let data = n.group.with_state_machine(|sm| sm.dump()).unwrap();
        assert_eq!(data.len(), 20, "node {}", n.id);
    }

    // Node 3 is cut off (its group keeps running; it may have been the leader): the other two
    // elect a leader if needed and go on without it.
    proxy.cut().await;
    let two: Vec<&Node> = nodes[..2].iter().collect();
    let cut_at = nodes[2].group.status().applied_index.unwrap_or(0);
    for i in 20..30 {
        last = propose(&two, &format!("k{i}")).await;
    }
    let behind = nodes[2].group.status().applied_index.unwrap_or(0);
    assert!(
        behind < last,
        "node 3 cannot have applied {last}: {behind} (cut at {cut_at})"
    );

    // Back on the same port: the senders reconnect and node 3 catches up.
    proxy.restore().await;
    nodes[2].group.wait_applied(last, WAIT).await.unwrap();
    let data = nodes[2].group.with_state_machine(|sm| sm.dump()).unwrap();
    assert_eq!(data.len(), 30);
    for n in &nodes {
        n.group.shutdown().await.unwrap();
    }
    proxy.cut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_another_cluster_or_for_another_node_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(1, dir.path()).await;
    let vote = |to: u64| Message {
        group: GROUP,
        from: 2,
        to,
        kind: RpcKind::Vote,
        body: vec![1, 2, 3],
    };
    let addr = node.addr.to_string();
    let other = GrpcTransport::new(CLUSTER + 1, GrpcOptions::default());
    let err = other.send(&addr, vote(1)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("cluster")),
        "{err:?}"
    );
    let same = GrpcTransport::new(CLUSTER, GrpcOptions::default());
    let err = same.send(&addr, vote(7)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("for node 7")),
        "{err:?}"
    );
    // The right cluster and node reach the group, which refuses the malformed body.
    let err = same.send(&addr, vote(1)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("decode")),
        "{err:?}"
    );
    // A node that is not listening is unavailable, not an error of the message.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let err = same.send(&closed_addr, vote(1)).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    node.group.shutdown().await.unwrap();
}
