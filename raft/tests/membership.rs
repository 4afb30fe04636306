//! Membership changes that carry a command in the membership entries themselves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use common::*;
use raft::{AppliedState, Error, Group, LocalTransport, MembershipStatus, NodeId, StateMachine};

const GROUP: u64 = 5;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn members(ids: &[NodeId]) -> BTreeMap<NodeId, String> {
    ids.iter().map(|&id| (id, addr(id))).collect()
}

/// Runs `f` on the leader's group, following leadership while the cluster settles.
async fn on_leader<T, F, Fut>(nodes: &[&TestNode], mut f: F) -> Result<T, Error>
where
    F: FnMut(Group<TestSm>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let id = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
        let node = nodes
            .iter()
            .find(|n| n.id == id)
            .expect("leader is started");
        match f(node.group.clone()).await {
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => return r,
        }
    }
}

/// The applied states of the entries that wrote `joint` and `desc`, the value of `desc`, and
/// the state machine's own applied state, on `node` once it applied `index`.
async fn applied(
    node: &TestNode,
    index: u64,
) -> (Option<AppliedState>, AppliedState, String, AppliedState) {
    node.group.wait_applied(index, WAIT).await.unwrap();
    node.group
        .with_state_machine(|sm| {
            (
                sm.applied_at("joint"),
                sm.applied_at("desc").expect("desc applied"),
                sm.get("desc").expect("desc written"),
                sm.applied_state().unwrap().expect("applied"),
            )
        })
        .unwrap()
}

/// Waits until `node` knows its membership entry `index` to be committed.
async fn membership_committed(node: &TestNode, index: u64) -> MembershipStatus {
    wait_membership(node, |m| {
        m.committed && m.id.is_some_and(|id| id.index >= index)
    })
    .await
}

/// Waits until `node`'s membership satisfies `done`.
async fn wait_membership(
    node: &TestNode,
    done: impl Fn(&MembershipStatus) -> bool,
) -> MembershipStatus {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = node.group.membership();
        if done(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {}: {m:?}",
            node.id
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A learner is promoted with a command in each membership entry: every replica applies the
/// joint entry's command at the joint entry, with the joint membership, and the uniform entry's
/// command at the uniform entry, with the new membership; all of it survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_a_learner_applies_each_command_with_its_membership() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), &transport, &opts).await);
    }
    nodes[0].group.initialize(members(&[1, 2])).await.unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    on_leader(&all, |g| async move { g.propose(put("k", "v")).await })
        .await
        .unwrap();

    on_leader(&all, |g| async move { g.add_learner(3, addr(3)).await })
        .await
        .unwrap();
    let leader = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
    let leader = nodes.iter().find(|n| n.id == leader).unwrap();
    let before = wait_membership(leader, |m| m.committed && !m.learners.is_empty()).await;
    assert_eq!(before.voters, vec![set(&[1, 2])]);
    assert_eq!(before.learners, set(&[3]));
    assert_eq!(before.nodes, members(&[1, 2, 3]));
    assert!(before.committed && !before.is_joint() && !before.is_settled());

    let change = on_leader(&all, |g| async move {
        g.change_membership(
            set(&[1, 2, 3]),
            false,
            put("joint", "1,2 + 1,2,3"),
            put("desc", "1,2,3"),
            before.id,
        )
        .await
    })
    .await
    .unwrap();
    let joint = change
        .joint
        .clone()
        .expect("a voter change writes a joint entry");
    // The test state machine answers with the index of the entry that carried the command.
    assert_eq!(change.uniform.index, change.id.index);
    assert!(before.id.unwrap().index < joint.index && joint.index < change.id.index);

    for node in &nodes {
        let (joint_state, desc_state, desc, state) = applied(node, change.id.index).await;
        let joint_state = joint_state.expect("joint applied");
        assert_eq!(joint_state.index(), Some(joint.index), "node {}", node.id);
        let jm = joint_state.membership();
        assert_eq!(
            jm.id.map(|id| id.index),
            Some(joint.index),
            "node {}",
            node.id
        );
        assert_eq!(jm.voters, vec![set(&[1, 2]), set(&[1, 2, 3])]);
        assert!(jm.is_joint());

        assert_eq!(
            desc_state.index(),
            Some(change.id.index),
            "node {}",
            node.id
        );
        assert_eq!(desc, "1,2,3");
        let dm = desc_state.membership();
        assert_eq!(dm.id, Some(change.id), "node {}", node.id);
        assert_eq!(dm.voters, vec![set(&[1, 2, 3])]);
        assert!(dm.learners.is_empty() && dm.is_settled());
        assert_eq!(state.membership(), dm, "node {}", node.id);
        assert_eq!(membership_committed(node, change.id.index).await, dm);
    }

    // Restart every node over its log and state machine.
    for node in &nodes {
        node.group.shutdown().await.unwrap();
    }
    drop(all);
    drop(nodes);
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), &transport, &opts).await);
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    let resp = on_leader(
        &all,
        |g| async move { g.propose(put("after", "restart")).await },
    )
    .await
    .unwrap();
    for node in &nodes {
        let (joint_state, desc_state, desc, state) = applied(node, resp.index).await;
        assert_eq!(joint_state.and_then(|s| s.index()), Some(joint.index));
        assert_eq!(desc_state.index(), Some(change.id.index));
        assert_eq!(desc, "1,2,3");
        assert_eq!(state.membership().id, Some(change.id));
        let m = node.group.membership();
        assert_eq!(m.id, Some(change.id), "node {}", node.id);
        assert_eq!(m.voters, vec![set(&[1, 2, 3])]);
    }
    for node in &nodes {
        node.group.shutdown().await.unwrap();
    }
}

/// A change based on a membership that is no longer in force is refused with
/// `MembershipChanged` and writes nothing; voters are demoted and removed, and learners removed,
/// each with its command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_changes_are_refused_and_voters_and_learners_are_removed() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), &transport, &opts).await);
    }
    nodes[0]
        .group
        .initialize(members(&[1, 2, 3]))
        .await
        .unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    on_leader(&all, |g| async move { g.propose(put("k", "v")).await })
        .await
        .unwrap();
    let m0 = on_leader(&all, |g| async move { Ok(g.membership()) })
        .await
        .unwrap();
    assert_eq!(m0.voters, vec![set(&[1, 2, 3])]);

    // Keep the leader a voter throughout: demote the others, one after the other.
    let leader = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
    let others: Vec<NodeId> = (1..=3).filter(|&id| id != leader).collect();
    let (a, b) = (others[0], others[1]);
    let keep = set(&[leader, a]);
    let demoted = on_leader(&all, |g| {
        let keep = keep.clone();
        async move {
            g.change_membership(
                keep,
                true,
                put("joint", "demote"),
                put("desc", "2 voters"),
                m0.id,
            )
            .await
        }
    })
    .await
    .unwrap();
    let leader_node = all.iter().find(|n| n.id == leader).unwrap();
    let leader_group = leader_node.group.clone();
    let m1 = membership_committed(leader_node, demoted.id.index).await;
    assert_eq!(m1.id, Some(demoted.id));
    assert_eq!(m1.voters, vec![keep.clone()]);
    assert_eq!(m1.learners, set(&[b]), "the removed voter stays a learner");

    // The same change again, based on the first membership: refused, nothing written.
    let last = leader_group.status().last_log_index;
    let err = leader_group
        .change_membership(
            set(&[1, 2, 3]),
            false,
            put("joint", "stale"),
            put("desc", "stale"),
            m0.id,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MembershipChanged(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(leader_group.status().last_log_index, last);
    assert_eq!(leader_group.membership().id, Some(demoted.id));
    let desc = leader_group
        .with_state_machine(|sm| sm.get("desc"))
        .unwrap();
    assert_eq!(desc.as_deref(), Some("2 voters"));

    // Remove voter `a` from the group altogether; learner `b` is not affected.
    let removed = leader_group
        .change_membership(
            set(&[leader]),
            false,
            put("joint", "remove"),
            put("desc", "1 voter"),
            Some(demoted.id),
        )
        .await
        .unwrap();
    assert!(removed.joint.is_some());
    let m2 = membership_committed(leader_node, removed.id.index).await;
    assert_eq!(m2.id, Some(removed.id));
    assert_eq!(m2.voters, vec![set(&[leader])]);
    assert_eq!(m2.learners, set(&[b]));
    assert_eq!(m2.nodes, members(&[leader, b]));
    let learner = all.iter().find(|n| n.id == b).unwrap();
    let (_, desc_state, desc, _) = applied(learner, removed.id.index).await;
    assert_eq!(desc, "1 voter");
    assert_eq!(desc_state.membership().voters, vec![set(&[leader])]);

    // A voter is not a learner to remove.
    let err = leader_group
        .remove_learners(set(&[leader]), put("desc", "x"), Some(removed.id))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");

    // Removing the learner writes one uniform entry with its command.
    let gone = leader_group
        .remove_learners(set(&[b]), put("desc", "learner gone"), Some(removed.id))
        .await
        .unwrap();
    assert!(gone.joint.is_none());
    assert_eq!(gone.uniform.index, gone.id.index);
    let m3 = membership_committed(leader_node, gone.id.index).await;
    assert_eq!(m3.id, Some(gone.id));
    assert!(m3.is_settled());
    assert_eq!(m3.nodes, members(&[leader]));
    let (_, desc_state, desc, _) = applied(leader_node, gone.id.index).await;
    assert_eq!(desc, "learner gone");
    assert_eq!(desc_state.membership(), m3);
    for node in &nodes {
        node.group.shutdown().await.unwrap();
    }
}

/// A change the caller stops waiting for (here: a proposal timeout shorter than any commit)
/// is reported as ambiguous and still completes, both steps with their commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_change_completes_in_the_background() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &opts).await;
    let n2 = start_node(2, GROUP, dirs[1].path(), &transport, &opts).await;
    n1.group.initialize(members(&[1])).await.unwrap();
    wait_membership(&n1, |m| m.committed).await;
    n1.group.add_learner(2, addr(2)).await.unwrap();
    n1.group.shutdown().await.unwrap();
    drop(n1);

    let short = raft::Options {
        propose_timeout: Duration::from_micros(1),
        ..opts
    };
    let n1 = start_node(1, GROUP, dirs[0].path(), &transport, &short).await;
    n1.group.wait_for_leader(WAIT).await.unwrap();
    // Leadership confirmed and the new term's first entry applied: the change is accepted.
    n1.group.read_index().await.unwrap();
    let last = n1.group.status().last_log_index.unwrap();
    n1.group.wait_applied(last, WAIT).await.unwrap();
    let before = n1.group.membership();
    assert_eq!(before.voters, vec![set(&[1])]);
    assert_eq!(before.learners, set(&[2]));

    let err = n1
        .group
        .change_membership(
            set(&[1, 2]),
            false,
            put("joint", "1 + 1,2"),
            put("desc", "1,2"),
            before.id,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Ambiguous(_)), "{err:?}");

    let m = wait_membership(&n1, |m| m.committed && m.voters == vec![set(&[1, 2])]).await;
    assert!(m.is_settled());
    let index = m.id.unwrap().index;
    for node in [&n1, &n2] {
        let (joint_state, desc_state, desc, _) = applied(node, index).await;
        let jm = joint_state.expect("joint applied").membership();
        assert_eq!(jm.voters, vec![set(&[1]), set(&[1, 2])], "node {}", node.id);
        assert_eq!(desc, "1,2");
        assert_eq!(desc_state.membership(), m, "node {}", node.id);
    }
    for node in [&n1, &n2] {
        node.group.shutdown().await.unwrap();
    }
}

/// A leader that fails between the joint and the uniform entry leaves the group joint; the next
/// leader sees it in `membership()` and finishes the change with one uniform entry and its
/// command, conditional on the joint membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_left_joint_is_finished_by_the_next_leader() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let opts = fast_options();
    let transport = LocalTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, GROUP, dir.path(), &transport, &opts).await);
    }
    nodes[0]
        .group
        .initialize(members(&[1, 2, 3]))
        .await
        .unwrap();
    let all: Vec<&TestNode> = nodes.iter().collect();
    on_leader(&all, |g| async move { g.propose(put("k", "v")).await })
        .await
        .unwrap();
    on_leader(&all, |g| async move { g.add_learner(4, addr(4)).await })
        .await
        .unwrap();
    let old = nodes[0].group.wait_for_leader(WAIT).await.unwrap();
    let old = nodes.iter().find(|n| n.id == old).unwrap();
    let before = wait_membership(old, |m| m.committed && !m.learners.is_empty()).await;

    // The leader's state machine fails on the joint entry's command: its Raft core stops
    // before it proposes the uniform entry.
    *old.probe.fail_apply_of.lock().unwrap() = Some("joint".to_string());
    let err = old
        .group
        .change_membership(
            set(&[1, 2, 3, 4]),
            false,
            put("joint", "1,2,3 + 1,2,3,4"),
            put("desc", "1,2,3,4"),
            before.id,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fatal(_)), "{err:?}");
    transport.remove_node(old.id);
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.id != old.id).collect();

    // A survivor takes over, in the joint membership.
    let deadline = tokio::time::Instant::now() + WAIT;
    let new = loop {
        if let Some(n) = survivors.iter().find(|n| n.group.is_leader()) {
            break *n;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let joint = wait_membership(new, |m| m.committed && m.is_joint()).await;
    assert_eq!(joint.voters, vec![set(&[1, 2, 3]), set(&[1, 2, 3, 4])]);

    let done = new
        .group
        .change_membership(
            set(&[1, 2, 3, 4]),
            false,
            put("joint", "not written"),
            put("desc", "1,2,3,4 repaired"),
            joint.id,
        )
        .await
        .unwrap();
    assert!(
        done.joint.is_none(),
        "finishing a joint change writes one entry"
    );
    assert_eq!(done.uniform.index, done.id.index);
    let joint_index = joint.id.unwrap().index;
    for node in &survivors {
        let (joint_state, desc_state, desc, _) = applied(node, done.id.index).await;
        assert_eq!(desc, "1,2,3,4 repaired", "node {}", node.id);
        assert_eq!(desc_state.index(), Some(done.id.index));
        assert_eq!(desc_state.membership().voters, vec![set(&[1, 2, 3, 4])]);
        assert_eq!(joint_state.and_then(|s| s.index()), Some(joint_index));
        let value = node.group.with_state_machine(|sm| sm.get("joint")).unwrap();
        assert_eq!(
            value.as_deref(),
            Some("1,2,3 + 1,2,3,4"),
            "node {}",
            node.id
        );
    }
    for node in &survivors {
        node.group.shutdown().await.unwrap();
    }
    let _ = old.group.shutdown().await;
}
