//! Crash tests: failpoints stop a transaction's coordinator exactly between prewrite and the
//! commit of its primary, or just after the commit point, across three ranges; the node is then
//! shut down and reopened on the same directory (the coordinator is gone). The transaction must
//! be all-or-nothing, and its keys writable again once the primary's TTL has passed.

mod common;

use common::{row, sys};
use txn::{Config, Db, TxnOptions};

async fn open(dir: &std::path::Path) -> Db {
    let config = Config {
        lock_ttl_ms: 500,
        ..Config::default()
    };
    common::open(dir, config).await.1
}

/// Writes keys in range 1, and on both sides of a split of the sql range, and stops at `point`.
async fn crash_at(dir: &std::path::Path, point: &str, value: &[u8]) {
    let db = open(dir).await;
    if db.client().store().replicas().len() < 3 {
        db.split_at(&row(50)).await.unwrap();
    }
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for k in [sys(1), row(1), row(99)] {
        t.put(k, value.to_vec()).unwrap();
    }
    fail::cfg(point, "return").unwrap();
    let err = t.commit().await.unwrap_err();
    fail::remove(point);
    assert!(err.to_string().contains(point), "{err}");
    db.shutdown().await.unwrap();
}

async fn read_all(db: &Db) -> Vec<Option<Vec<u8>>> {
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    let mut out = Vec::new();
    for k in [sys(1), row(1), row(99)] {
        out.push(r.get(&k).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_crash_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();

    // Stopped between prewrite and the commit point: nothing is visible after the restart, and
    // the keys can be written again once the primary's TTL passed (readers waited for it).
    crash_at(dir.path(), "txn::before_commit_primary", b"lost").await;
    let db = open(dir.path()).await;
    assert_eq!(read_all(&db).await, vec![None, None, None]);
    let mut w = db.begin(TxnOptions::default()).await.unwrap();
    for k in [sys(1), row(1), row(99)] {
        w.put(k, b"written again".to_vec()).unwrap();
    }
    w.commit().await.unwrap();
    db.shutdown().await.unwrap();
    drop(db);

    // Stopped just after the commit point: every key is visible after the restart (the
    // secondaries are rolled forward by the readers that meet them).
    crash_at(dir.path(), "txn::after_commit_primary", b"kept").await;
    let db = open(dir.path()).await;
    let kept = Some(b"kept".to_vec());
    assert_eq!(read_all(&db).await, vec![kept.clone(), kept.clone(), kept]);
}
