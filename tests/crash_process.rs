//! A crash of the whole node between prewrite and commit. The binary is built with failpoints
//! (`cargo test --features failpoints --test crash_process`); `txn::before_commit_primary`
//! stops the coordinator of a multi-range transaction after every key is prewritten and before
//! its primary is committed, and the process is then killed with SIGKILL. After a restart the
//! transaction has left nothing visible, and its keys are writable once the primary's lock TTL
//! (3 s) has passed: the first reader or writer to meet a lock rolls the primary back.

#![cfg(feature = "failpoints")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Process;

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tmp, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_between_prewrite_and_commit_leaves_nothing_behind() {
    let (_tmp, dir) = data_dir();
    // The failpoint lets the first two-phase commit through (the split's) and panics the
    // coordinator of the next: the statement's connection drops, and the node keeps running
    // until it is killed.
    let node = Process::start_with_env(
        &dir,
        &[("FAILPOINTS", "txn::before_commit_primary=1*off->panic")],
    );
    let client = common::connect(node.addresses.sql).await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO t VALUES (1, 'kept'), (99, 'kept')")
        .await
        .unwrap();
    client
        .batch_execute("ALTER TABLE t SPLIT AT VALUES (50)")
        .await
        .unwrap();
    // One-range transactions commit in one phase and never reach the failpoint; this one spans
    // both ranges.
    let err = client
        .batch_execute(
            "BEGIN; UPDATE t SET v = 'lost' WHERE id = 1; INSERT INTO t VALUES (2, 'lost'); \
             UPDATE t SET v = 'lost' WHERE id = 99; INSERT INTO t VALUES (98, 'lost'); COMMIT",
        )
        .await;
    assert!(err.is_err(), "the commit never returns success");
    let mut child = node;
    child.child.kill().unwrap();
    child.child.wait().unwrap();
    drop(child);

    let node = Process::start(&dir);
    let client = common::connect(node.addresses.sql).await;
    // Reads meet the prewrite locks and wait until the primary's TTL lets them roll it back.
    let rows = tokio::time::timeout(
        Duration::from_secs(60),
        client.query("SELECT id, v FROM t ORDER BY id", &[]),
    )
    .await
    .expect("the locks are resolved")
    .unwrap();
    let rows: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows, vec![(1, "kept".into()), (99, "kept".into())]);
    // Every key the transaction touched is writable again, in both ranges.
    client
        .batch_execute(
            "BEGIN; UPDATE t SET v = 'new' WHERE id = 1; INSERT INTO t VALUES (2, 'new'); \
             UPDATE t SET v = 'new' WHERE id = 99; INSERT INTO t VALUES (98, 'new'); COMMIT",
        )
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t WHERE v = 'new'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}
