//! Three nodes in one process over the local transport.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use raft::{Error, LocalTransport, Message, Options, RpcKind};

const GROUP: u64 = 3;

fn voters() -> BTreeMap<u64, String> {
    (1..=3).map(|id| (id, addr(id))).collect()
}

async fn leader_of(nodes: &[&TestNode]) -> usize {
    let leader = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
    nodes
        .iter()
        .position(|n| n.id == leader)
        .expect("leader is a started node")
}

async fn propose_on_leader(nodes: &[&TestNode], from: usize, n: usize) -> u64 {
    let mut last = 0;
    for i in from..from + n {
        // Leadership may move while the cluster settles: follow NotLeader.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let l = leader_of(nodes).await;
            match nodes[l]
                .group
                .propose(put(&format!("k{i}"), &format!("v{i}")))
                .await
            {
                Ok(resp) => {
                    last = resp.index;
                    break;
                }
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("propose failed: {e:?}"),
            }
        }
    }
    last
}

/// Options under which a group checkpoints every 5 entries and purges its log behind it.
fn purging_options() -> Options {
    Options {
        snapshot_logs_since_last: Some(5),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..fast_options()
    }
}

/// Waits until `leader` has purged past the start of its log (a new member then needs a
/// snapshot).
async fn wait_purged(leader: &TestNode) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while leader.group.status().purged_index.is_none_or(|p| p < 5) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no purge: {:?}",
            leader.group.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_replica(node: &TestNode, index: u64, n: usize) {
    node.group.wait_applied(index, WAIT).await.unwrap();
    let data = node.group.with_state_machine(|sm| sm.dump()).unwrap();
    assert_eq!(data.len(), n, "node {}", node.id);
    for i in 0..n {
        assert_eq!(data[&format!("k{i}")], format!("v{i}"), "node {}", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_late_follower_catches_up() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();

    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &opts).await;
    let n2 = start_node(2, GROUP, dirs[1].path(), &transport, &opts).await;
    n1.group.initialize(voters()).await.unwrap();
    let last = propose_on_leader(&[&n1, &n2], 0, 10).await;
    assert_replica(&n1, last, 10).await;
    assert_replica(&n2, last, 10).await;

    // A follower refuses proposals and names the leader.
    let l = leader_of(&[&n1, &n2]).await;
    let follower = if l == 0 { &n2 } else { &n1 };
    let leader_id = [&n1, &n2][l].id;
    match follower.group.propose(put("x", "y")).await {
        Err(Error::NotLeader { leader }) => assert_eq!(leader, Some(leader_id)),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    assert!(matches!(
        follower.group.read_index().await,
        Err(Error::NotLeader { .. })
    ));

    // Node 3 starts late and catches up by log replication.
    let n3 = start_node(3, GROUP, dirs[2].path(), &transport, &opts).await;
    assert_replica(&n3, last, 10).await;
    let last = propose_on_leader(&[&n1, &n2, &n3], 10, 5).await;
    for n in [&n1, &n2, &n3] {
        assert_replica(n, last, 15).await;
    }
    for n in [&n1, &n2, &n3] {
        n.group.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_follower_catches_up_by_snapshot_after_purge() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = purging_options();
    let transport = LocalTransport::new();

    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &opts).await;
    let n2 = start_node(2, GROUP, dirs[1].path(), &transport, &opts).await;
    n1.group.initialize(voters()).await.unwrap();
    let last = propose_on_leader(&[&n1, &n2], 0, 30).await;

    let l = leader_of(&[&n1, &n2]).await;
    let leader = [&n1, &n2][l];
    wait_purged(leader).await;

    let n3 = start_node(3, GROUP, dirs[2].path(), &transport, &opts).await;
    assert_replica(&n3, last, 30).await;
    assert!(
        n3.probe.installs.load(Ordering::SeqCst) >= 1,
        "node 3 installed a snapshot"
    );
    let last = propose_on_leader(&[&n1, &n2, &n3], 30, 3).await;
    assert_replica(&n3, last, 33).await;
    for n in [&n1, &n2, &n3] {
        n.group.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_group_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let transport = LocalTransport::new();
    let n1 = start_node(1, GROUP, dir.path(), &transport, &fast_options()).await;
    assert_eq!(n1.registry.groups(), vec![GROUP]);
    let msg = Message {
        group: 99,
        from: 2,
        to: 1,
        kind: RpcKind::Vote,
        body: b"{}".to_vec(),
    };
    let err = n1.registry.handle(msg).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    n1.group.shutdown().await.unwrap();
    assert!(n1.registry.groups().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failure_elects_new_leader() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), &transport, &opts).await);
    }
    nodes[0].group.initialize(voters()).await.unwrap();
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let last = propose_on_leader(&refs, 0, 5).await;

    // Cut the leader off and stop it.
    let old = leader_of(&refs).await;
    let old_id = nodes[old].id;
    transport.remove_node(old_id);
    nodes[old].group.shutdown().await.unwrap();
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.id != old_id).collect();

    // Some survivor takes over and accepts the next proposal.
    let deadline = tokio::time::Instant::now() + WAIT;
    let resp = 'outer: loop {
        for n in &survivors {
            match n.group.propose(put("k5", "v5")).await {
                Ok(resp) => break 'outer resp,
                Err(e) => assert!(e.is_retryable(), "{e:?}"),
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(resp.index > last);
    for n in &survivors {
        assert_replica(n, resp.index, 6).await;
        assert_ne!(n.group.leader(), Some(old_id));
        n.group.shutdown().await.unwrap();
    }
}

/// A proposal that times out (its entry appended on a leader that cannot reach a quorum) keeps
/// what it holds until the entry's fate is known on that replica: applied, or discarded. If the
/// entry is in the state machine when the hold is released, it stays; if it is not, it never
/// appears later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_proposal_holds_until_its_entry_is_decided() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = Options {
        propose_timeout: Duration::from_millis(300),
        ..fast_options()
    };
    let transport = LocalTransport::new();
    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &opts).await;
    let n2 = start_node(2, GROUP, dirs[1].path(), &transport, &opts).await;
    let two: BTreeMap<u64, String> = (1..=2).map(|id| (id, addr(id))).collect();
    n1.group.initialize(two).await.unwrap();
    let last = propose_on_leader(&[&n1, &n2], 0, 3).await;
    let nodes = [&n1, &n2];
    let l = leader_of(&nodes).await;
    let (leader, follower) = (nodes[l], nodes[1 - l]);
    assert_replica(follower, last, 3).await;

    // Cut the follower off: the leader appends but cannot commit.
    transport.remove_node(follower.id);
    let hold = std::sync::Arc::new(());
    let watch = std::sync::Arc::downgrade(&hold);
    let err = leader
        .group
        .propose_holding(put("late", "v"), hold)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Ambiguous(_)), "{err:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        watch.upgrade().is_some(),
        "released while the entry is neither applied nor discarded"
    );

    // Heal: the entry is committed by this leader, or discarded by a new one.
    let registry = follower.registry.clone();
    transport.add_node(follower.id, registry);
    let deadline = tokio::time::Instant::now() + WAIT;
    while watch.upgrade().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let applied_at_release = leader
        .group
        .with_state_machine(|sm| sm.dump().contains_key("late"))
        .unwrap();

    // Settle and compare: the entry's presence never changes after the release.
    let last = propose_on_leader(&[&n1, &n2], 10, 1).await;
    for n in [&n1, &n2] {
        n.group.wait_applied(last, WAIT).await.unwrap();
        let present = n
            .group
            .with_state_machine(|sm| sm.dump().contains_key("late"))
            .unwrap();
        // Committed: on both nodes; discarded: the cut-off follower never had it either.
        assert_eq!(present, applied_at_release, "node {}", n.id);
    }
    for n in [&n1, &n2] {
        n.group.shutdown().await.unwrap();
    }
}

/// Read barriers issued concurrently share confirmations: on the leader every caller gets the
/// leader's term, on a follower every caller is told where the leader is, and once the group is
/// shut down callers fail instead of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_barriers_are_all_answered() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), &transport, &opts).await);
    }
    nodes[0].group.initialize(voters()).await.unwrap();
    let all: Vec<_> = nodes.iter().collect();
    propose_on_leader(&all, 0, 1).await;
    let l = leader_of(&all).await;
    let (leader, follower) = (nodes[l].group.clone(), nodes[(l + 1) % 3].group.clone());
    let term = leader.status().term;

    let barriers = |group: &raft::Group<TestSm>| {
        futures::future::join_all((0..200).map(|_| {
            let group = group.clone();
            tokio::spawn(async move { group.read_index().await })
        }))
    };
    for r in barriers(&leader).await {
        assert_eq!(r.unwrap().unwrap(), term);
    }
    for r in barriers(&follower).await {
        match r.unwrap() {
            Err(Error::NotLeader { leader }) => assert_eq!(leader, Some(nodes[l].id)),
            other => panic!("expected NotLeader, got {other:?}"),
        }
    }
    for n in &nodes {
        n.group.shutdown().await.unwrap();
    }
    for r in barriers(&leader).await {
        assert!(matches!(r.unwrap(), Err(Error::Unavailable(_))));
    }
}

/// Building a follower's snapshot does not hold the state machine: while the leader reads the
/// snapshot's data (held at a barrier here), its group keeps applying proposals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_applies_while_it_builds_a_snapshot() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = purging_options();
    let transport = LocalTransport::new();
    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &opts).await;
    let n2 = start_node(2, GROUP, dirs[1].path(), &transport, &opts).await;
    n1.group.initialize(voters()).await.unwrap();
    let last = propose_on_leader(&[&n1, &n2], 0, 30).await;
    let l = leader_of(&[&n1, &n2]).await;
    let (leader, other) = if l == 0 { (&n1, &n2) } else { (&n2, &n1) };
    wait_purged(leader).await;
    leader.probe.snapshot_hold.store(true, Ordering::SeqCst);
    // Node 3 needs a snapshot; the leader starts building it and waits at the gate.
    let n3 = start_node(3, GROUP, dirs[2].path(), &transport, &opts).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics_snapshots_started(leader) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot build started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = tokio::time::timeout(WAIT, leader.group.propose(put("k30", "v30")))
        .await
        .expect("a proposal applies while the snapshot is being built")
        .unwrap();
    assert!(resp.index > last);
    leader.probe.snapshot_hold.store(false, Ordering::SeqCst);
    assert_replica(&n3, resp.index, 31).await;
    assert_replica(other, resp.index, 31).await;
    for n in [&n1, &n2, &n3] {
        n.group.shutdown().await.unwrap();
    }
}

fn metrics_snapshots_started(node: &TestNode) -> u64 {
    node.probe.snapshot_builds.load(Ordering::SeqCst)
}

/// A snapshot larger than `snapshot_chunk_bytes` reaches a new follower in pieces, one
/// message each, and is installed whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_snapshot_travels_in_pieces() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = Options {
        snapshot_chunk_bytes: 100,
        ..purging_options()
    };
    let transport = LocalTransport::new();
    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &opts).await;
    let n2 = start_node(2, GROUP, dirs[1].path(), &transport, &opts).await;
    n1.group.initialize(voters()).await.unwrap();
    let last = propose_on_leader(&[&n1, &n2], 0, 30).await;
    let leader = [&n1, &n2][leader_of(&[&n1, &n2]).await];
    wait_purged(leader).await;
    let n3 = start_node(3, GROUP, dirs[2].path(), &transport, &opts).await;
    assert_replica(&n3, last, 30).await;
    assert!(n3.probe.installs.load(Ordering::SeqCst) >= 1);
    // 30 pairs of about 20 bytes as JSON: several pieces of 100 bytes, no whole message.
    assert!(
        transport.sent(RpcKind::SnapshotChunk) >= 5,
        "{}",
        transport.sent(RpcKind::SnapshotChunk)
    );
    assert_eq!(transport.sent(RpcKind::Snapshot), 0);
    for n in [&n1, &n2, &n3] {
        n.group.shutdown().await.unwrap();
    }
}
