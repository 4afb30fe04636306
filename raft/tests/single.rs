//! Single-voter groups: proposals, restart, log purge.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use raft::{Error, LocalTransport, Options, StateMachine};

const GROUP: u64 = 7;

async fn propose_n(node: &TestNode, from: usize, n: usize) -> u64 {
    let mut last = 0;
    for i in from..from + n {
        let resp = node
            .group
            .propose(put(&format!("k{i}"), &format!("v{i}")))
            .await
            .unwrap();
        assert_eq!(resp.prev, None, "k{i} is new");
        assert!(resp.index > last, "indexes grow");
        last = resp.index;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_propose_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = fast_options();
    let transport = LocalTransport::new();

    let node = start_node(1, GROUP, dir.path(), &transport, &opts).await;
    assert!(!node.group.is_initialized().await.unwrap());
    node.group
        .initialize(BTreeMap::from([(1, addr(1))]))
        .await
        .unwrap();
    assert_eq!(node.group.wait_for_leader(WAIT).await.unwrap(), 1);

    let last = propose_n(&node, 0, 20).await;
    let resp = node.group.propose(put("k3", "again")).await.unwrap();
    assert_eq!(resp.prev.as_deref(), Some("v3"));
    assert!(resp.index > last);
    let last = resp.index;
    node.group.read_index().await.unwrap();
    let data = node.group.with_state_machine(|sm| sm.dump()).unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(data["k3"], "again");

    // Initializing twice is refused.
    let err = node
        .group
        .initialize(BTreeMap::from([(1, addr(1))]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");

    node.group.shutdown().await.unwrap();
    assert!(
        !node
            .group
            .propose(put("x", "y"))
            .await
            .unwrap_err()
            .is_fatal()
    );
    drop(node);

    // Restart over the same directory with a fresh state machine.
    let node = start_node(1, GROUP, dir.path(), &transport, &opts).await;
    assert!(node.group.is_initialized().await.unwrap());
    assert_eq!(node.group.wait_for_leader(WAIT).await.unwrap(), 1);
    node.group.read_index().await.unwrap();
    let applied = node
        .group
        .with_state_machine(|sm| sm.applied_state().unwrap())
        .unwrap()
        .unwrap();
    assert!(applied.index().unwrap() >= last);
    assert_eq!(applied.voters(), [1].into());
    let data = node.group.with_state_machine(|sm| sm.dump()).unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(data["k3"], "again");
    assert_eq!(data["k19"], "v19");

    let resp = node.group.propose(put("k100", "v100")).await.unwrap();
    assert!(resp.index > last, "{} > {last}", resp.index);
    assert!(node.group.is_leader());
    assert_eq!(node.group.leader(), Some(1));
    node.group.shutdown().await.unwrap();
}

fn purge_options() -> Options {
    Options {
        snapshot_logs_since_last: Some(5),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..fast_options()
    }
}

/// Waits until the group has purged its log at least up to `index`.
async fn wait_purged(node: &TestNode, index: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(p) = node.group.status().purged_index.filter(|p| *p >= index) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "log not purged: {:?}",
            node.group.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_persists_state_machine_first() {
    let dir = tempfile::tempdir().unwrap();
    let opts = purge_options();
    let transport = LocalTransport::new();

    let node = start_node(1, GROUP, dir.path(), &transport, &opts).await;
    node.group
        .initialize(BTreeMap::from([(1, addr(1))]))
        .await
        .unwrap();
    node.group.wait_for_leader(WAIT).await.unwrap();
    let last = propose_n(&node, 0, 40).await;
    let purged = wait_purged(&node, 20).await;

    // The state machine was persisted at or beyond every purged index.
    assert!(node.probe.persists.load(Ordering::SeqCst) > 0);
    let durable = node
        .probe
        .durable_index
        .load(Ordering::SeqCst)
        .checked_sub(1)
        .expect("persisted after applying");
    assert!(durable >= purged, "durable {durable} < purged {purged}");
    let status = node.group.status();
    assert!(status.snapshot_index.unwrap() >= purged);

    node.group.shutdown().await.unwrap();
    drop(node);

    let node = start_node(1, GROUP, dir.path(), &transport, &opts).await;
    assert!(node.group.is_initialized().await.unwrap());
    node.group.wait_for_leader(WAIT).await.unwrap();
    let status = node.group.status();
    assert!(status.purged_index.unwrap() >= purged, "{status:?}");
    node.group.read_index().await.unwrap();
    let data = node.group.with_state_machine(|sm| sm.dump()).unwrap();
    assert_eq!(data.len(), 40);
    let resp = node.group.propose(put("after", "restart")).await.unwrap();
    assert!(resp.index > last);
    // No snapshot data was ever built or installed on a single voter.
    assert_eq!(node.probe.installs.load(Ordering::SeqCst), 0);
    node.group.shutdown().await.unwrap();
}

/// A read barrier whose caller goes away in the middle of the round it runs leaves the callers
/// that joined meanwhile with a task that answers them, and later barriers still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_index_survives_a_cancelled_round() {
    let dir = tempfile::tempdir().unwrap();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let node = start_node(1, GROUP, dir.path(), &transport, &opts).await;
    node.group
        .initialize(BTreeMap::from([(1, addr(1))]))
        .await
        .unwrap();
    node.group.wait_for_leader(WAIT).await.unwrap();
    propose_n(&node, 0, 3).await;

    for _ in 0..20 {
        // The first caller finds no round in flight and starts one itself; the second waits.
        let mut first = Box::pin(node.group.read_index());
        assert!(futures::poll!(first.as_mut()).is_pending());
        let mut second = Box::pin(node.group.read_index());
        let polled = futures::poll!(second.as_mut());
        drop(first);
        let term = match polled {
            std::task::Poll::Ready(r) => r.unwrap(),
            std::task::Poll::Pending => tokio::time::timeout(WAIT, second)
                .await
                .expect("a waiting barrier is answered after its round's caller left")
                .unwrap(),
        };
        assert!(term > 0);
        let again = tokio::time::timeout(WAIT, node.group.read_index()).await;
        assert_eq!(again.expect("a later barrier is answered").unwrap(), term);
    }
    node.group.shutdown().await.unwrap();
}
