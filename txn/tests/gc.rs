//! MVCC garbage collection: replicated through Raft, bounded by the oldest active transaction,
//! and reads below the threshold fail instead of returning wrong answers.

use std::time::Duration;

mod common;

use common::row;
use txn::{Config, Db, Error, TxnOptions};

async fn put(db: &Db, key: Vec<u8>, value: Option<&[u8]>) {
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    match value {
        Some(v) => t.put(key, v.to_vec()).unwrap(),
        None => t.delete(key).unwrap(),
    }
    t.commit().await.unwrap();
}

/// Number of versions stored for the sql keys (all ranges share the node's `data` keyspace).
fn versions(db: &Db) -> usize {
    let engine = db.client().store().engine();
    engine
        .data
        .iter()
        .filter_map(|g| g.key().ok())
        .filter(|k| k.first() == Some(&3))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_what_no_read_can_see_and_fences_old_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = kv::store::Store::open(kv::StoreOptions::new(dir.path()))
        .await
        .unwrap();
    let config = Config {
        gc_ttl: Duration::ZERO,
        ..Config::default()
    };
    let db = Db::open(kv::testing::client(store), config).await.unwrap();

    put(&db, row(1), Some(b"v1")).await;
    let before_v2 = db.now().await.unwrap();
    put(&db, row(1), Some(b"v2")).await;
    put(&db, row(2), Some(b"gone")).await;
    put(&db, row(2), None).await;
    assert_eq!(versions(&db), 4);

    // A live transaction holds the safe point back: nothing it can read is collected.
    let mut old = db.begin(TxnOptions::default()).await.unwrap();
    put(&db, row(1), Some(b"v3")).await;
    let safe_point = db.run_gc().await.unwrap();
    assert!(safe_point <= old.start_ts());
    assert_eq!(old.get(&row(1)).await.unwrap(), Some(b"v2".to_vec()));
    assert_eq!(
        versions(&db),
        2,
        "v1 and row 2 (its tombstone and the value it hid) are gone; v2 and v3 stay"
    );
    drop(old);

    let safe_point = db.run_gc().await.unwrap();
    assert_eq!(versions(&db), 1, "only the newest version of row 1 is left");
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"v3".to_vec()));
    assert_eq!(r.get(&row(2)).await.unwrap(), None);

    // A snapshot read below the threshold fails clearly.
    let mut past = db
        .begin(TxnOptions {
            as_of: Some(before_v2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(before_v2 < safe_point);
    let err = past.get(&row(1)).await.unwrap_err();
    assert!(matches!(err, Error::BelowGcThreshold(_)), "{err:?}");

    // Writes of a transaction that started below the threshold are refused at apply: a lock
    // left there could never be resolved against its collected primary.
    let mutation = |key| kv::mvcc::Mutation {
        key,
        op: kv::mvcc::Op::Put(b"late".to_vec()),
    };
    let writes = [
        kv::Command::Prewrite {
            start_ts: before_v2,
            read_ts: before_v2,
            primary: row(3),
            expiry_ms: u64::MAX,
            mutations: vec![mutation(row(3))],
        },
        kv::Command::PessimisticLock {
            start_ts: before_v2,
            read_ts: before_v2,
            primary: row(3),
            expiry_ms: u64::MAX,
            keys: vec![row(3)],
        },
        kv::Command::OnePhaseCommit {
            start_ts: before_v2,
            read_ts: before_v2,
            commit_ts: db.now().await.unwrap(),
            primary: row(3),
            mutations: vec![mutation(row(3))],
            reads: Vec::new(),
        },
    ];
    for cmd in writes {
        let result = db.client().send(cmd).await;
        assert!(
            matches!(result, Err(kv::Error::BelowGcThreshold { ts, .. }) if ts == before_v2),
            "{result:?}"
        );
    }
    assert_eq!(r.get(&row(3)).await.unwrap(), None);
}

/// What other nodes publish of their oldest live transactions holds the safe point back while
/// it is fresh; a stale publication (a node that stopped publishing) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_oldest_transactions_of_other_nodes_bound_the_safe_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        gc_ttl: Duration::ZERO,
        ..Config::default()
    };
    let (_store, db) = common::open(dir.path(), config).await;
    put(&db, row(1), Some(b"v1")).await;
    // `<sys> 06 <node>`: [1] [oldest start_ts u64 BE] [written at u64 BE].
    let publish = |oldest: u64, at: u64| {
        let mut v = vec![1];
        v.extend_from_slice(&oldest.to_be_bytes());
        v.extend_from_slice(&at.to_be_bytes());
        v
    };
    let key = kv::keys::oldest_active_key(99);
    let theirs = db.now().await.unwrap();
    let now = db.now().await.unwrap();
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.put(key.clone(), publish(theirs, now)).unwrap();
    t.commit().await.unwrap();
    put(&db, row(1), Some(b"v2")).await;
    assert!(
        db.run_gc().await.unwrap() <= theirs,
        "node 99's transaction is respected"
    );

    // Written three minutes ago: node 99 stopped publishing, and no longer holds GC back.
    let stale = ((now >> 18) - 180_000) << 18;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.put(key, publish(theirs, stale)).unwrap();
    t.commit().await.unwrap();
    assert!(db.run_gc().await.unwrap() > theirs);

    // This node's own publication says what its oldest live transaction was when written.
    let old = db.begin(TxnOptions::default()).await.unwrap();
    let old_ts = old.start_ts();
    db.publish_oldest_active().await.unwrap();
    old.rollback().await.unwrap();
    assert!(db.run_gc().await.unwrap() <= old_ts);
    db.publish_oldest_active().await.unwrap();
    assert!(db.run_gc().await.unwrap() > old_ts);
}
