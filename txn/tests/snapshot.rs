//! Range snapshots between two nodes' stores: a node joining the cluster receives each range as
//! a snapshot of `RangeStateMachine` (built from a fjall snapshot on the leader's node, sent
//! through the transport, installed into the receiver's engine), including a parent range
//! snapshotted after a split, which must leave the right half's data on the receiver alone.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::row;
use kv::mvcc::Mvcc;
use kv::replica::replicated_spans;
use kv::store::Store;
use kv::{Join, Network, StoreOptions};
use txn::{Config, Db, TxnOptions};

/// Live rows and the number of locks.
type Contents = (Vec<(Vec<u8>, Vec<u8>)>, usize);

/// Every live row and lock of the range's spans in `store`'s engine, as the state machine
/// holds them (not through Raft: a learner serves no reads).
fn contents(store: &Store, range_id: u64) -> Contents {
    let desc = store.replica(range_id).unwrap().descriptor();
    let engine = store.engine();
    let snapshot = engine.db.snapshot();
    let mvcc = Mvcc {
        snapshot: &snapshot,
        data: &engine.data,
        locks: &engine.locks,
    };
    let mut rows = Vec::new();
    let mut locks = 0;
    for (start, end) in replicated_spans(&desc) {
        let scan = mvcc.scan(&start, &end, u64::MAX, usize::MAX).unwrap();
        rows.extend(scan.rows);
        locks += scan.locks.len();
    }
    (rows, locks)
}

/// Waits until `store`'s replica of `range_id` has applied what the leader's has and holds the
/// same data (the leader's applied index, read from its metrics, may trail its engine, and
/// secondaries commit in the background), then checks that it does.
async fn caught_up(leader: &Store, store: &Store, range_id: u64) {
    for _ in 0..100 {
        let target = leader
            .replica(range_id)
            .unwrap()
            .group()
            .status()
            .applied_index
            .unwrap();
        store
            .replica(range_id)
            .unwrap()
            .group()
            .wait_applied(target, Duration::from_secs(30))
            .await
            .unwrap();
        if contents(store, range_id) == contents(leader, range_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        contents(store, range_id),
        contents(leader, range_id),
        "range {range_id}"
    );
}

async fn write(db: &Db, ids: impl IntoIterator<Item = u8>, value: &[u8]) {
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for i in ids {
        t.put(row(i), value.to_vec()).unwrap();
    }
    t.commit().await.unwrap();
}

/// How the two stores of a test reach each other.
enum Net {
    /// One in-process transport shared by both stores.
    Local(Arc<raft::LocalTransport>),
    /// Each store on its own gRPC server on a loopback port.
    Grpc,
}

impl Net {
    /// Opens a store in `dir` reachable from the other, returning it and its options.
    async fn open(&self, dir: &std::path::Path, join: Option<Join>) -> (Arc<Store>, StoreOptions) {
        let mut options = StoreOptions {
            join,
            ..StoreOptions::new(dir)
        };
        let listener = match self {
            Net::Local(transport) => {
                options.advertise_addr = format!("node-{}", dir.display());
                options.network = Network::Custom(transport.clone());
                None
            }
            Net::Grpc => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                options.advertise_addr = listener.local_addr().unwrap().to_string();
                options.network = Network::Grpc(raft::GrpcOptions::default());
                Some(listener)
            }
        };
        let store = Store::open(options.clone()).await.unwrap();
        match (self, listener) {
            (Net::Local(transport), _) => {
                transport.add_node(store.node_id(), store.registry().clone())
            }
            (Net::Grpc, Some(listener)) => {
                let service = store.raft_service().into_server();
                tokio::spawn(
                    tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                            listener,
                        )),
                );
            }
            (Net::Grpc, None) => unreachable!("a listener is bound for gRPC"),
        }
        (store, options)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_receives_ranges_as_snapshots_across_a_split() {
    joining_node_receives_snapshots(Net::Local(Arc::new(raft::LocalTransport::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_cross_real_sockets_over_grpc() {
    joining_node_receives_snapshots(Net::Grpc).await;
}

async fn joining_node_receives_snapshots(net: Net) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, _) = net.open(dir_a.path(), None).await;
    let db = Db::open(kv::testing::client(a.clone()), Config::default())
        .await
        .unwrap();
    write(&db, 0..40, b"before").await;
    let (left, right) = db.split_at(&row(20)).await.unwrap();
    write(&db, [5, 25], b"after").await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.delete(row(30)).unwrap();
    t.commit().await.unwrap();

    let join = Join {
        cluster_id: a.cluster_id(),
        node_id: 2,
    };
    let (b, b_options) = net.open(dir_b.path(), Some(join)).await;
    let b_addr = b.advertise_addr().to_string();

    // The right half first, then the parent (snapshotted after its split).
    for range in [right, left] {
        b.add_replica(range).await.unwrap();
        a.replica(range)
            .unwrap()
            .add_learner(2, b_addr.clone())
            .await
            .unwrap();
        caught_up(&a, &b, range).await;
        let status = b.replica(range).unwrap().group().status();
        assert!(
            status.snapshot_index.is_some(),
            "range {range} reached node 2 as a snapshot: {status:?}"
        );
        assert_eq!(
            b.replica(range).unwrap().descriptor(),
            a.replica(range).unwrap().descriptor(),
            "the snapshot installed the range's descriptor"
        );
    }
    for range in [left, right] {
        let (rows, _) = contents(&a, range);
        assert!(
            rows.len() >= 19,
            "range {range} has its rows: {}",
            rows.len()
        );
        assert_eq!(contents(&b, range), contents(&a, range), "range {range}");
    }
    let (right_rows, _) = contents(&b, right);
    assert!(right_rows.contains(&(row(25), b"after".to_vec())));
    assert!(!right_rows.iter().any(|(k, _)| *k == row(30)), "deleted");

    // The learners go on from the snapshot with the log.
    write(&db, [1, 21], b"later").await;
    // The write's secondary (row 21) commits in the background after the commit is
    // acknowledged: wait for it on the leader, so that what is compared is settled.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while contents(&a, right).1 != 0 {
        assert!(std::time::Instant::now() < deadline, "row 21's lock stays");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for range in [left, right] {
        caught_up(&a, &b, range).await;
    }

    // The joined node restarts as itself, with its replicas and their data.
    let expected = (contents(&b, left), contents(&b, right));
    b.shutdown().await.unwrap();
    drop(b);
    if let Net::Local(transport) = &net {
        transport.remove_node(2);
    }
    let b = loop {
        match Store::open(b_options.clone()).await {
            Err(kv::Error::DirectoryLocked(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            r => break r.unwrap(),
        }
    };
    assert_eq!(b.node_id(), 2);
    assert_eq!(b.cluster_id(), a.cluster_id());
    assert_eq!((contents(&b, left), contents(&b, right)), expected);
    b.shutdown().await.unwrap();
    db.shutdown().await.unwrap();
}
