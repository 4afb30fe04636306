//! Quiescence: an idle group stops its timers on every replica, wakes for the next request, and
//! still notices a dead leader or follower.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use raft::{LocalTransport, Options, RpcKind};

const GROUP: u64 = 9;

fn voters() -> BTreeMap<u64, String> {
    (1..=3).map(|id| (id, addr(id))).collect()
}

fn options() -> Options {
    Options {
        quiesce_after: Some(Duration::from_millis(400)),
        ..fast_options()
    }
}

async fn start(transport: &LocalTransport, dirs: &[tempfile::TempDir]) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), transport, &options()).await);
    }
    nodes[0].group.initialize(voters()).await.unwrap();
    nodes
}

async fn leader(nodes: &[&TestNode]) -> usize {
    let id = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
    nodes.iter().position(|n| n.id == id).unwrap()
}

/// Proposes through whichever node leads, retrying while leadership settles.
async fn propose(nodes: &[&TestNode], key: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for n in nodes {
            match n.group.propose(put(key, "v")).await {
                Ok(resp) => return resp.index,
                Err(e) => assert!(e.is_retryable(), "{e:?}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader took {key}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_group_stops_heartbeating_and_wakes_for_the_next_proposal() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let transport = LocalTransport::new();
    let nodes = start(&transport, &dirs).await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    propose(&refs, "a").await;

    until("every replica quiesced", || {
        nodes.iter().all(|n| n.group.is_quiesced())
    })
    .await;
    // A heartbeat every 50 ms to two followers would be about 40 messages in a second.
    let before = transport.sent(RpcKind::AppendEntries);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        transport.sent(RpcKind::AppendEntries),
        before,
        "a quiesced group sent appends"
    );
    assert!(nodes.iter().all(|n| n.group.is_quiesced()));

    let l = leader(&refs).await;
    let index = nodes[l].group.propose(put("b", "v")).await.unwrap().index;
    for n in &nodes {
        n.group.wait_applied(index, WAIT).await.unwrap();
        assert!(
            !n.group.is_quiesced() || n.id == nodes[l].id,
            "node {} still quiesced",
            n.id
        );
    }
    // Reads wake it too, and it quiesces again afterwards.
    until("quiesced again", || {
        nodes.iter().all(|n| n.group.is_quiesced())
    })
    .await;
    nodes[l].group.read_index().await.unwrap();
    assert!(!nodes[l].group.is_quiesced());
    assert_eq!(
        nodes[l].group.leader(),
        Some(nodes[l].id),
        "waking held no election"
    );
    for n in &nodes {
        n.group.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_followers_of_a_quiesced_group_elect_a_new_leader_when_it_dies() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let transport = LocalTransport::new();
    let nodes = start(&transport, &dirs).await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let first = propose(&refs, "a").await;
    until("every replica quiesced", || {
        nodes.iter().all(|n| n.group.is_quiesced())
    })
    .await;

    let old = nodes[leader(&refs).await].id;
    transport.remove_node(old);
    nodes
        .iter()
        .find(|n| n.id == old)
        .unwrap()
        .group
        .shutdown()
        .await
        .unwrap();
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.id != old).collect();
    // Nothing is asked of the survivors (a request would wake them): they notice by themselves.
    until("a survivor leads", || {
        survivors.iter().any(|n| n.group.is_leader())
    })
    .await;
    let index = propose(&survivors, "b").await;
    assert!(index > first);
    for n in &survivors {
        n.group.wait_applied(index, WAIT).await.unwrap();
        assert_ne!(n.group.leader(), Some(old));
        n.group.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_of_a_quiesced_group_reports_a_dead_follower() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let transport = LocalTransport::new();
    let nodes = start(&transport, &dirs).await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    propose(&refs, "a").await;
    until("every replica quiesced", || {
        nodes.iter().all(|n| n.group.is_quiesced())
    })
    .await;
    let l = leader(&refs).await;
    assert!(nodes[l].group.unresponsive(Duration::ZERO).is_empty());

    let follower = nodes.iter().find(|n| n.id != nodes[l].id).unwrap();
    transport.remove_node(follower.id);
    let after = Duration::from_millis(500);
    until("the dead follower reported", || {
        nodes[l].group.unresponsive(after).contains(&follower.id)
    })
    .await;
    assert!(!nodes[l].group.is_quiesced());
    for n in &nodes {
        n.group.shutdown().await.unwrap();
    }
}
