//! Range splits: a split is a transaction whose trigger creates the right-hand range's Raft group
//! without `initialize()`; transactions then span the new ranges, and everything survives a
//! restart.

mod common;

use common::row;
use kv::keys::Key;
use txn::{Config, Db, Error, TxnOptions};

async fn open(dir: &std::path::Path) -> Db {
    common::open(dir, Config::default()).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_create_ranges_that_serve_transactions_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path()).await;
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        for i in 0..30 {
            t.put(row(i), vec![i]).unwrap();
        }
        t.commit().await.unwrap();

        let (left, right) = db.split_at(&row(10)).await.unwrap();
        assert_eq!((left, right), (2, 3));
        let (left, right) = db.split_at(&row(20)).await.unwrap();
        assert_eq!((left, right), (3, 4));
        assert_eq!(
            db.split_at(&row(20)).await.unwrap(),
            (3, 4),
            "splitting at a boundary does nothing"
        );
        // The directory walk GC uses sees every range, contiguous from KeyMin to KeyMax.
        let all = db.client().all_ranges().await.unwrap();
        let ids: Vec<u64> = all.iter().map(|d| d.range_id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(all[0].start, kv::keys::KEY_MIN);
        assert_eq!(all.last().unwrap().end, kv::keys::KEY_MAX);
        assert!(all.windows(2).all(|w| w[0].end == w[1].start), "{all:?}");
        assert_eq!(
            (all[2].start.clone(), all[3].start.clone()),
            (row(10), row(20))
        );
        let err = db
            .split_at(&Key::Catalog { suffix: vec![1] }.encode())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

        let ranges: Vec<_> = db
            .client()
            .store()
            .replicas()
            .iter()
            .map(|r| r.descriptor())
            .collect();
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[1].end, row(10));
        assert_eq!(
            (ranges[2].start.clone(), ranges[2].end.clone()),
            (row(10), row(20))
        );
        assert_eq!(ranges[3].start, row(20));

        // A transaction across three ranges (and range 1) is atomic.
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        for i in [5u8, 15, 25] {
            t.put(row(i), b"x".to_vec()).unwrap();
        }
        t.put(Key::Catalog { suffix: vec![9] }.encode(), b"meta".to_vec())
            .unwrap();
        t.commit().await.unwrap();
        let mut r = db.begin(TxnOptions::default()).await.unwrap();
        let all = r.scan(&row(0), &row(100), 1000).await.unwrap();
        assert_eq!(all.len(), 30, "a scan reads across range boundaries");
        assert_eq!(all[15].1, b"x".to_vec());
        db.shutdown().await.unwrap();
    }
    let db = open(dir.path()).await;
    assert_eq!(
        db.client().store().replicas().len(),
        4,
        "every range comes back after a restart"
    );
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(25)).await.unwrap(), Some(b"x".to_vec()));
    assert_eq!(r.scan(&row(0), &row(100), 1000).await.unwrap().len(), 30);
    let mut w = db.begin(TxnOptions::default()).await.unwrap();
    w.put(row(21), b"after restart".to_vec()).unwrap();
    w.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_past_the_size_limit_split_in_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = kv::store::Store::open(kv::StoreOptions::new(dir.path()))
        .await
        .unwrap();
    let config = Config {
        range_max_bytes: 8 << 10,
        ..Config::default()
    };
    let db = Db::open(kv::testing::client(store), config).await.unwrap();
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for i in 0..200u8 {
        t.put(row(i), vec![i; 100]).unwrap();
    }
    t.commit().await.unwrap();
    assert_eq!(db.split_large_ranges().await.unwrap(), 1);
    let ranges: Vec<_> = db
        .client()
        .store()
        .replicas()
        .iter()
        .map(|r| r.descriptor())
        .collect();
    assert_eq!(ranges.len(), 3);
    let at = ranges[2].start.clone();
    assert!(
        at > row(50) && at < row(150),
        "the split key is near the middle: {}",
        kv::keys::Pretty(&at)
    );
    // The halves (their statistics are estimates: half the parent's) split again until every
    // range is under the limit.
    let mut passes = 0;
    while db.split_large_ranges().await.unwrap() > 0 {
        passes += 1;
        assert!(passes < 10, "splitting does not converge");
    }
    for r in db.client().store().replicas().iter().skip(1) {
        assert!(
            r.stats().unwrap().version_bytes < 8 << 10,
            "{}",
            r.descriptor()
        );
    }
    // Every estimate is replaced by a count: then the ranges' statistics add up to exactly what
    // the store holds (once the splits' directory entries, committed in the background, are).
    let engine = db.client().store().engine();
    for _ in 0..1000 {
        if engine.locks.iter().count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    db.recount_estimated_stats().await.unwrap();
    let (mut versions, mut locks) = (0, 0);
    for r in db.client().store().replicas() {
        let stats = r.stats().unwrap();
        assert!(!stats.estimate, "{}", r.descriptor());
        versions += stats.versions;
        locks += stats.locks;
    }
    assert_eq!(versions, engine.data.iter().count() as i64);
    assert_eq!(locks, engine.locks.iter().count() as i64);
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.scan(&row(0), &row(255), 1000).await.unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_is_refused_while_the_parent_has_a_learner() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for i in 0..20 {
        t.put(row(i), vec![i]).unwrap();
    }
    t.commit().await.unwrap();

    // A membership change in progress on the parent: a learner (a node that never answers).
    let store = db.client().store().clone();
    let parent = store.replicas().last().unwrap().clone();
    assert!(parent.descriptor().contains(&row(10)));
    parent
        .group()
        .add_learner(9, "127.0.0.1:9".to_string())
        .await
        .unwrap();

    let err = db.split_at(&row(10)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Serialization(m) if m.contains("split refused")),
        "{err:?}"
    );
    assert_eq!(store.replicas().len(), 2, "no range was created");
    assert_eq!(parent.descriptor().end, kv::keys::KEY_MAX);
    // Nothing of the split is left: every key is readable and writable, no lock remains.
    let mut w = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(w.scan(&row(0), &row(100), 1000).await.unwrap().len(), 20);
    w.put(row(10), b"after".to_vec()).unwrap();
    w.commit().await.unwrap();
    let engine = store.engine();
    for _ in 0..1000 {
        if engine.locks.iter().count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        engine.locks.iter().count(),
        0,
        "the split's locks were rolled back"
    );
    db.shutdown().await.unwrap();
}
