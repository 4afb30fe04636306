//! A one-phase commit whose first attempt applied but whose reply was lost. In a file of its
//! own: failpoints are process-wide.

mod common;

use common::row;
use txn::{Config, Error, TxnOptions};

/// Reads row 1 as a counter, adds one and commits (one range: a one-phase commit).
async fn increment(db: &txn::Db) -> txn::Result<()> {
    let mut t = db.begin(TxnOptions::default()).await?;
    let v = t.get(&row(1)).await?.map_or(0, |v| v[0]);
    t.put(row(1), vec![v + 1])?;
    t.commit().await
}

async fn counter(db: &txn::Db) -> u8 {
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    r.get(&row(1)).await.unwrap().unwrap()[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_one_phase_commit_is_decided_by_its_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    increment(&db).await.unwrap();
    assert_eq!(counter(&db).await, 1);

    // The first attempt applies and its reply is lost; the retry is refused as if leadership
    // had moved. Falling back to two phases would find the transaction's own commit and
    // report a conflict, and a statement retried on it would add one twice.
    fail::cfg(
        "kv::one_phase_commit_reply",
        "1*return(ambiguous)->1*return(not_leader)",
    )
    .unwrap();
    let result = increment(&db).await;
    fail::remove("kv::one_phase_commit_reply");
    result.expect("the commit that applied is reported as a success");
    assert_eq!(counter(&db).await, 2);

    // Every attempt unknown: the record decides, and it shows the commit.
    fail::cfg("kv::one_phase_commit_reply", "return(ambiguous)").unwrap();
    let result = increment(&db).await;
    fail::remove("kv::one_phase_commit_reply");
    result.expect("the record on the primary shows the commit");
    assert_eq!(counter(&db).await, 3);

    // Nothing committed and one attempt unknown: 40003, never a conflict to retry on. `other`
    // commits first, so `t` cannot commit; its first attempt applied as a conflict, reported
    // lost, and its retry meets the same conflict.
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.get(&row(1)).await.unwrap();
    t.put(row(1), vec![100]).unwrap();
    let mut other = db.begin(TxnOptions::default()).await.unwrap();
    other.put(row(1), vec![50]).unwrap();
    other.commit().await.unwrap();
    fail::cfg("kv::one_phase_commit_reply", "1*return(ambiguous)").unwrap();
    let err = t.commit().await.unwrap_err();
    fail::remove("kv::one_phase_commit_reply");
    assert!(matches!(err, Error::Ambiguous(_)), "{err:?}");
    assert_eq!(counter(&db).await, 50);
}
