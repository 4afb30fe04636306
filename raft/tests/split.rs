//! The split bootstrap: a right-hand group created from a written initial state, without
//! `initialize()`, on three nodes that already run the parent group.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use raft::{Group, LocalTransport, LogStore, Registry, SPLIT_INITIAL_INDEX, split_initial_state};

const PARENT: u64 = 1;
const RIGHT: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_hand_group_starts_from_initial_state() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let voters: BTreeMap<u64, String> = (1..=3).map(|id| (id, addr(id))).collect();

    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as u64 + 1;
        let db = open_db(dir.path());
        let log = LogStore::open(&db).unwrap();
        let registry = Registry::new();
        transport.add_node(id, registry.clone());
        let sm = TestSm::new(&db, PARENT);
        let parent = Group::start(
            PARENT,
            id,
            &log,
            sm,
            Arc::new(transport.clone()),
            &registry,
            &opts,
        )
        .await
        .unwrap();
        nodes.push((id, db, log, registry, parent));
    }
    nodes[0].4.initialize(voters.clone()).await.unwrap();
    let parent_leader = nodes[0].4.wait_for_leader(WAIT).await.unwrap();

    // What the split trigger's apply batch does on every replica.
    let state = split_initial_state(voters.clone());
    let mut rights = Vec::new();
    for (id, db, log, registry, _) in &nodes {
        let sm = TestSm::new(db, RIGHT);
        let mut batch = db.batch();
        sm.write_initial(&mut batch, &state);
        log.write_initial_log_state(&mut batch, RIGHT, &state);
        batch.commit().unwrap();
        assert!(log.has_group(RIGHT).unwrap());
        let g = Group::start(
            RIGHT,
            *id,
            log,
            sm,
            Arc::new(transport.clone()),
            registry,
            &opts,
        )
        .await
        .unwrap();
        assert!(g.is_initialized().await.unwrap());
        rights.push(g);
    }
    assert_eq!(nodes[0].3.groups(), vec![PARENT, RIGHT]);

    // The parent's leader campaigns for the new group at once.
    let idx = (parent_leader - 1) as usize;
    rights[idx].campaign().await.unwrap();
    let leader = rights[idx].wait_for_leader(WAIT).await.unwrap();
    let leader = rights.iter().find(|g| g.node() == leader).unwrap();
    let resp = leader.propose(put("a", "1")).await.unwrap();
    assert!(resp.index > SPLIT_INITIAL_INDEX, "{}", resp.index);
    for g in &rights {
        g.wait_applied(resp.index, WAIT).await.unwrap();
        let data = g.with_state_machine(|sm| sm.dump()).unwrap();
        assert_eq!(data, BTreeMap::from([("a".to_string(), "1".to_string())]));
    }
    // The parent is untouched.
    let parent_data = nodes[0].4.with_state_machine(|sm| sm.dump()).unwrap();
    assert!(parent_data.is_empty());

    for g in rights.iter().chain(nodes.iter().map(|n| &n.4)) {
        g.shutdown().await.unwrap();
    }
}
