//! GC and a coordinator stopped after its commit point. In a file of its own: failpoints are
//! process-wide, and the crash tests beside it set the same one.

mod common;

use common::row;
use txn::{Config, TxnOptions};

/// A coordinator stopped just after its commit point leaves its secondary locked; its primary
/// is then overwritten, so the commit record on it is superseded below the next safe point. GC
/// must resolve the secondary (every range) before it collects that record (any range):
/// otherwise a later resolver finds the primary missing and rolls back a committed write. The
/// primary's range is collected before the secondary's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_a_commit_record_until_its_locks_are_resolved() {
    let dir = tempfile::tempdir().unwrap();
    // One node throughout (a restart would start the oracle above its persisted bound, ahead
    // of the clock the safe point is taken from).
    let config = Config {
        lock_ttl_ms: 500,
        gc_ttl: std::time::Duration::ZERO,
        ..Config::default()
    };
    let db = common::open(dir.path(), config).await.1;
    // GC visits ranges by id: the primary goes in the half with the lower id (the first key
    // locked becomes the primary).
    let (left, right) = db.split_at(&row(50)).await.unwrap();
    let (primary, secondary) = if left < right {
        (row(1), row(99))
    } else {
        (row(99), row(1))
    };
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.lock_keys(vec![primary.clone()]).await.unwrap();
    t.put(primary.clone(), b"kept".to_vec()).unwrap();
    t.put(secondary.clone(), b"kept".to_vec()).unwrap();
    fail::cfg("txn::after_commit_primary", "return").unwrap();
    t.commit().await.unwrap_err();
    fail::remove("txn::after_commit_primary");
    let mut w = db.begin(TxnOptions::default()).await.unwrap();
    w.put(primary.clone(), b"newer".to_vec()).unwrap();
    w.commit().await.unwrap();
    // The crashed transaction's lock expires, so a resolver may decide its fate.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    db.run_gc().await.unwrap();

    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&primary).await.unwrap(), Some(b"newer".to_vec()));
    assert_eq!(
        r.get(&secondary).await.unwrap(),
        Some(b"kept".to_vec()),
        "the committed secondary survives the collection of its primary's record"
    );
}
