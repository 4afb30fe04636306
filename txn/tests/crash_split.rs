//! A split whose coordinator stops just after the commit point: the parent's descriptor is
//! committed (the split trigger applied, the right-hand range runs) but both directory entries in
//! range 1 are still locked. After a restart, keys on both sides must be routable at once, not
//! only once range 1's GC resolves the locks hours later: directory lookups resolve the locks of a
//! decided split themselves.

mod common;

use common::row;
use txn::{Config, Db, TxnOptions};

async fn open(dir: &std::path::Path) -> Db {
    common::open(dir, Config::default()).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_crashed_after_its_commit_point_is_routable_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path()).await;
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        for i in 0..100 {
            t.put(row(i), vec![i]).unwrap();
        }
        t.commit().await.unwrap();

        fail::cfg("txn::after_commit_primary", "return").unwrap();
        let err = db.split_at(&row(50)).await.unwrap_err();
        fail::remove("txn::after_commit_primary");
        assert!(err.to_string().contains("after_commit_primary"), "{err}");
        db.shutdown().await.unwrap();
    }

    let db = open(dir.path()).await;
    let ranges: Vec<_> = db
        .client()
        .store()
        .replicas()
        .iter()
        .map(|r| r.descriptor())
        .collect();
    assert_eq!(ranges.len(), 3, "the split applied: {ranges:?}");
    assert!(
        ranges.iter().any(|d| d.start == row(50)),
        "a range starts at the split key: {ranges:?}"
    );

    // Both halves are readable and writable, through the directory.
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for i in [10u8, 49, 50, 77, 99] {
        assert_eq!(t.get(&row(i)).await.unwrap(), Some(vec![i]), "row {i}");
        t.put(row(i), vec![i, i]).unwrap();
    }
    t.commit().await.unwrap();

    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    for i in [10u8, 49, 50, 77, 99] {
        assert_eq!(r.get(&row(i)).await.unwrap(), Some(vec![i, i]), "row {i}");
    }
    let rows = r.scan(&row(0), &row(100), 1000).await.unwrap();
    assert_eq!(rows.len(), 100);
    drop(r);
    db.shutdown().await.unwrap();
}
