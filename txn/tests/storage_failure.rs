//! A storage failure under an apply (the disk fills up): the range's Raft group stops, the node
//! says so (`Store::health`, which `/health` and the binary's fatal exit read), the failing
//! commit's outcome is reported unknown (its entry is in the durable log and may apply at the
//! restart), later requests to the range say the disk is full, with no internal type names, and
//! after a restart every acknowledged write is there.

mod common;

use common::row;
use txn::{Config, Error, TxnOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_stops_the_node_visibly_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, db) = common::open(dir.path(), Config::default()).await;
        for i in 0..10u8 {
            let mut t = db.begin(TxnOptions::default()).await.unwrap();
            t.put(row(i), vec![i]).unwrap();
            t.commit().await.unwrap();
        }
        assert_eq!(store.health(), Ok(()));

        fail::cfg("kv::apply_storage_full", "return").unwrap();
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        t.put(row(100), b"maybe".to_vec()).unwrap();
        let err = t.commit().await.unwrap_err();
        fail::remove("kv::apply_storage_full");
        assert!(matches!(err, Error::Ambiguous(_)), "{err:?}");
        assert!(err.to_string().contains("no space left"), "{err}");

        let failure = store.health().unwrap_err();
        assert!(failure.contains("storage failure"), "{failure}");
        assert!(failure.contains("No space left on device"), "{failure}");

        // The range is stopped: a read of it says why, in words a user can act on.
        let mut r = db.begin(TxnOptions::default()).await.unwrap();
        let err = r.get(&row(1)).await.unwrap_err();
        assert!(matches!(err, Error::DiskFull(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("ballast"), "{message}");
        assert!(!message.contains("::"), "no internal type names: {message}");
        drop(r);
        let _ = db.shutdown().await;
    }

    let (store, db) = common::open(dir.path(), Config::default()).await;
    assert_eq!(store.health(), Ok(()));
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    for i in 0..10u8 {
        assert_eq!(r.get(&row(i)).await.unwrap(), Some(vec![i]), "row {i}");
    }
    // The commit whose outcome was unknown was in the durable log: the restart applied it.
    assert_eq!(r.get(&row(100)).await.unwrap(), Some(b"maybe".to_vec()));
    drop(r);
    let mut w = db.begin(TxnOptions::default()).await.unwrap();
    w.put(row(11), b"after restart".to_vec()).unwrap();
    w.commit().await.unwrap();
    db.shutdown().await.unwrap();
}
