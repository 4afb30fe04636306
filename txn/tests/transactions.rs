//! Transactions over a real single-node store (fjall on disk, Raft groups for ranges 1 and 2).

use std::time::Duration;

mod common;

use common::{open, row, sys};
use kv::keys::sql_index_prefix;
use kv::{Command, Mutation, Op, Response};
use txn::{Config, Db, Error, IsolationLevel, TxnOptions};

#[tokio::test]
async fn commit_is_atomic_across_ranges_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, db) = open(dir.path(), Config::default()).await;
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        t.put(row(1), b"one".to_vec()).unwrap();
        t.put(sys(1), b"meta".to_vec()).unwrap();
        t.commit().await.unwrap();
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        t.delete(row(1)).unwrap();
        t.put(row(2), b"two".to_vec()).unwrap();
        t.rollback().await.unwrap();
        store.shutdown().await.unwrap();
    }
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(t.get(&row(1)).await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(t.get(&sys(1)).await.unwrap(), Some(b"meta".to_vec()));
    assert_eq!(
        t.get(&row(2)).await.unwrap(),
        None,
        "a rolled-back write is not visible"
    );
}

#[tokio::test]
async fn timestamps_increase_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (store, db) = open(dir.path(), Config::default()).await;
        let mut last = 0;
        for _ in 0..100 {
            let ts = db.now().await.unwrap();
            assert!(ts > last);
            last = ts;
        }
        store.shutdown().await.unwrap();
        last
    };
    let (_store, db) = open(dir.path(), Config::default()).await;
    assert!(db.now().await.unwrap() > before);
}

#[tokio::test]
async fn concurrent_timestamps_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::new();
            for _ in 0..50 {
                v.push(db.now().await.unwrap());
            }
            v
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let v = t.await.unwrap();
        assert!(
            v.windows(2).all(|w| w[0] < w[1]),
            "each caller sees increasing timestamps"
        );
        all.extend(v);
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "no timestamp is issued twice");
}

#[tokio::test]
async fn snapshot_reads_and_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut setup = db.begin(TxnOptions::default()).await.unwrap();
    for i in 1..=5 {
        setup.put(row(i), vec![i]).unwrap();
    }
    setup.commit().await.unwrap();

    let mut reader = db.begin(TxnOptions::default()).await.unwrap();
    let mut writer = db.begin(TxnOptions::default()).await.unwrap();
    writer.put(row(3), b"new".to_vec()).unwrap();
    writer.delete(row(4)).unwrap();
    writer.commit().await.unwrap();

    // The reader keeps its snapshot; its own writes are merged into scans.
    reader.delete(row(1)).unwrap();
    reader.put(row(6), vec![6]).unwrap();
    let start = sql_index_prefix(1, 1);
    let end = sql_index_prefix(1, 2);
    let rows = reader.scan(&start, &end, 100).await.unwrap();
    let ids: Vec<u8> = rows.iter().map(|(k, _)| *k.last().unwrap()).collect();
    assert_eq!(ids, vec![2, 3, 4, 5, 6]);
    assert_eq!(rows[1].1, vec![3], "the snapshot hides the later write");
    // Paging with a small limit returns the same rows.
    let mut paged = Vec::new();
    let mut from = start.clone();
    loop {
        let page = reader.scan(&from, &end, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        from = kv::keys::next_key(&page.last().unwrap().0);
        paged.extend(page);
    }
    assert_eq!(paged, rows);
}

#[tokio::test]
async fn write_write_conflict_aborts_the_later_committer() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut a = db.begin(TxnOptions::default()).await.unwrap();
    let mut b = db.begin(TxnOptions::default()).await.unwrap();
    a.put(row(1), b"a".to_vec()).unwrap();
    b.put(row(1), b"b".to_vec()).unwrap();
    a.commit().await.unwrap();
    let err = b.commit().await.unwrap_err();
    assert!(matches!(err, Error::Serialization(_)), "{err:?}");
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"a".to_vec()));
    // The loser left no lock behind: a new transaction writes the key.
    let mut c = db.begin(TxnOptions::default()).await.unwrap();
    c.put(row(1), b"c".to_vec()).unwrap();
    c.commit().await.unwrap();
}

#[tokio::test]
async fn read_only_transactions_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut t = db
        .begin(TxnOptions {
            read_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(t.put(row(1), vec![]), Err(Error::ReadOnly));
}

/// A coordinator that died between prewrite and commit: its locks block readers until the
/// primary's TTL expires, then the first reader rolls the primary back and the secondaries follow.
#[tokio::test]
async fn abandoned_locks_are_rolled_back_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        lock_ttl_ms: 300,
        ..Config::default()
    };
    let (_store, db) = open(dir.path(), config).await;
    let start_ts = db.now().await.unwrap();
    let expiry_ms = txn::oracle::physical(start_ts) + 300;
    let prewrite = |key: Vec<u8>| Command::Prewrite {
        start_ts,
        read_ts: start_ts,
        primary: sys(9),
        expiry_ms,
        mutations: vec![Mutation {
            key,
            op: Op::Put(b"ghost".to_vec()),
        }],
    };
    for key in [sys(9), row(9)] {
        let r = db.client().send(prewrite(key)).await.unwrap();
        assert_eq!(r, Response::KeyErrors(vec![]));
    }
    let mut reader = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(
        reader.get(&row(9)).await.unwrap(),
        None,
        "the reader waited, then rolled the lock back"
    );
    // The primary's outcome is recorded: a delayed prewrite of the dead transaction is refused.
    let late = db.client().send(prewrite(sys(9))).await.unwrap();
    assert!(matches!(late, Response::KeyErrors(e) if !e.is_empty()));
    let mut w = db.begin(TxnOptions::default()).await.unwrap();
    w.put(row(9), b"live".to_vec()).unwrap();
    w.commit().await.unwrap();
}

/// A reader that meets a secondary lock of a committed transaction rolls it forward.
#[tokio::test]
async fn secondary_locks_of_committed_transactions_roll_forward() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let start_ts = db.now().await.unwrap();
    let prewrite = |key: Vec<u8>| Command::Prewrite {
        start_ts,
        read_ts: start_ts,
        primary: sys(7),
        expiry_ms: txn::oracle::physical(start_ts) + 60_000,
        mutations: vec![Mutation {
            key,
            op: Op::Put(b"v".to_vec()),
        }],
    };
    db.client().send(prewrite(sys(7))).await.unwrap();
    db.client().send(prewrite(row(7))).await.unwrap();
    let commit_ts = db.now().await.unwrap();
    let r = db
        .client()
        .send(Command::Commit {
            start_ts,
            commit_ts,
            keys: vec![sys(7)],
        })
        .await
        .unwrap();
    assert_eq!(r, Response::KeyErrors(vec![]));
    // The coordinator "crashed" before committing the secondary.
    let mut reader = db.begin(TxnOptions::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        assert_eq!(reader.get(&row(7)).await.unwrap(), Some(b"v".to_vec()));
    })
    .await
    .expect("the reader resolves the lock without waiting for its TTL");
}

async fn put_all(db: &Db, rows: &[(Vec<u8>, &[u8])]) {
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for (k, v) in rows {
        t.put(k.clone(), v.to_vec()).unwrap();
    }
    t.commit().await.unwrap();
}

fn opts(isolation: IsolationLevel) -> TxnOptions {
    TxnOptions {
        isolation,
        ..Default::default()
    }
}

/// The on-call doctors: each transaction checks that the other is on call, then goes off call.
/// SERIALIZABLE aborts the second committer; SNAPSHOT lets both commit (write skew).
async fn write_skew(isolation: IsolationLevel) -> (Result<(), Error>, Result<(), Error>) {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"on"), (row(2), b"on")]).await;
    let mut alice = db.begin(opts(isolation)).await.unwrap();
    let mut bob = db.begin(opts(isolation)).await.unwrap();
    assert_eq!(alice.get(&row(2)).await.unwrap(), Some(b"on".to_vec()));
    assert_eq!(bob.get(&row(1)).await.unwrap(), Some(b"on".to_vec()));
    alice.put(row(1), b"off".to_vec()).unwrap();
    bob.put(row(2), b"off".to_vec()).unwrap();
    (alice.commit().await, bob.commit().await)
}

#[tokio::test]
async fn write_skew_is_prevented_under_serializable() {
    let (a, b) = write_skew(IsolationLevel::Serializable).await;
    assert!(a.is_ok(), "{a:?}");
    assert!(matches!(b, Err(Error::Serialization(_))), "{b:?}");
}

#[tokio::test]
async fn write_skew_is_allowed_under_snapshot() {
    let (a, b) = write_skew(IsolationLevel::Snapshot).await;
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
}

/// A phantom: a scan that saw no row in a span, and a concurrent insert into that span.
#[tokio::test]
async fn phantom_in_a_scanned_span_aborts_under_serializable() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"x")]).await;
    let mut reader = db.begin(TxnOptions::default()).await.unwrap();
    let rows = reader.scan(&row(2), &row(9), 100).await.unwrap();
    assert!(rows.is_empty());
    reader.put(sys(1), b"saw nothing".to_vec()).unwrap();
    put_all(&db, &[(row(5), b"phantom")]).await;
    let err = reader.commit().await.unwrap_err();
    assert!(matches!(err, Error::Serialization(_)), "{err:?}");
    // A scan under a LIMIT is validated only up to the last key it examined.
    let mut limited = db.begin(TxnOptions::default()).await.unwrap();
    let first = limited.scan(&row(0), &row(200), 1).await.unwrap();
    assert_eq!(first.len(), 1);
    limited.put(sys(2), b"first only".to_vec()).unwrap();
    put_all(&db, &[(row(100), b"beyond")]).await;
    limited.commit().await.unwrap();
}

/// A read-only transaction needs no validation: it reads one consistent snapshot.
#[tokio::test]
async fn read_only_transactions_commit_without_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"a")]).await;
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"a".to_vec()));
    put_all(&db, &[(row(1), b"b")]).await;
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"a".to_vec()));
    r.commit().await.unwrap();
}

/// Validation resolves a reader's conflict with a pending writer through the writer's primary:
/// a live lock on a key read aborts the committer.
#[tokio::test]
async fn a_pending_writer_on_a_read_key_aborts_the_validating_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"a")]).await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.get(&row(1)).await.unwrap();
    t.put(row(2), b"w".to_vec()).unwrap();
    // Another transaction prewrites row 1 (started before t's commit) and stays pending.
    let other_ts = db.now().await.unwrap();
    let r = db
        .client()
        .send(Command::Prewrite {
            start_ts: other_ts,
            read_ts: other_ts,
            primary: row(1),
            expiry_ms: txn::oracle::physical(other_ts) + 60_000,
            mutations: vec![Mutation {
                key: row(1),
                op: Op::Put(b"b".to_vec()),
            }],
        })
        .await
        .unwrap();
    assert_eq!(r, Response::KeyErrors(vec![]));
    let err = t.commit().await.unwrap_err();
    assert!(matches!(err, Error::Serialization(_)), "{err:?}");
}

#[tokio::test]
async fn rollback_to_savepoint_undoes_writes_and_releases_later_locks() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        lock_wait_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let (_store, db) = open(dir.path(), config).await;
    put_all(&db, &[(row(1), b"1"), (row(2), b"2"), (row(3), b"3")]).await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    assert!(!t.lock_keys(vec![row(1)]).await.unwrap());
    t.put(row(1), b"one".to_vec()).unwrap();
    let sp = t.savepoint();
    assert!(!t.lock_keys(vec![row(2)]).await.unwrap());
    t.put(row(2), b"two".to_vec()).unwrap();
    // Another transaction cannot lock row 2 while t holds it...
    let mut other = db.begin(TxnOptions::default()).await.unwrap();
    assert!(matches!(
        other.lock_keys(vec![row(2)]).await,
        Err(Error::LockTimeout(_))
    ));
    t.rollback_to(&sp).await.unwrap();
    // ...and can once t rolled back to the savepoint.
    assert!(!other.lock_keys(vec![row(2)]).await.unwrap());
    other.rollback().await.unwrap();
    assert_eq!(t.get(&row(2)).await.unwrap(), Some(b"2".to_vec()));
    t.commit().await.unwrap();
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(r.get(&row(2)).await.unwrap(), Some(b"2".to_vec()));
}

#[tokio::test]
async fn as_of_reads_a_past_snapshot_and_refuses_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"old")]).await;
    let then = db.now().await.unwrap();
    put_all(&db, &[(row(1), b"new")]).await;
    let past = TxnOptions {
        as_of: Some(then),
        ..Default::default()
    };
    let mut t = db.begin(past).await.unwrap();
    assert_eq!(t.get(&row(1)).await.unwrap(), Some(b"old".to_vec()));
    assert_eq!(t.put(row(1), vec![]), Err(Error::ReadOnly));
    let future = TxnOptions {
        as_of: Some(db.now().await.unwrap() + (60_000 << 18)),
        ..Default::default()
    };
    assert!(matches!(
        db.begin(future).await,
        Err(Error::InvalidArgument(_))
    ));
}

/// A statement that locks a row changed since the transaction's read timestamp moves the read
/// timestamp forward when nothing read before changed (SERIALIZABLE), and fails with 40001 when
/// something did, or under SNAPSHOT.
#[tokio::test]
async fn locking_a_changed_row_refreshes_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"a"), (row(2), b"b")]).await;

    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    let before = t.read_ts();
    put_all(&db, &[(row(1), b"a2")]).await;
    t.statement_start();
    assert!(
        t.lock_keys(vec![row(1)]).await.unwrap(),
        "the read timestamp moved"
    );
    assert!(t.read_ts() > before);
    assert_eq!(t.get(&row(1)).await.unwrap(), Some(b"a2".to_vec()));
    t.put(row(1), b"a3".to_vec()).unwrap();
    t.commit().await.unwrap();

    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.get(&row(2)).await.unwrap();
    put_all(&db, &[(row(1), b"x"), (row(2), b"y")]).await;
    t.statement_start();
    let err = t.lock_keys(vec![row(1)]).await.unwrap_err();
    assert!(
        matches!(err, Error::Serialization(_)),
        "an earlier read changed: {err:?}"
    );
    t.rollback().await.unwrap();

    let mut t = db.begin(opts(IsolationLevel::Snapshot)).await.unwrap();
    put_all(&db, &[(row(1), b"z")]).await;
    let err = t.lock_keys(vec![row(1)]).await.unwrap_err();
    assert!(matches!(err, Error::Serialization(_)), "{err:?}");
}

fn deferred() -> TxnOptions {
    TxnOptions {
        defer_checks: true,
        ..TxnOptions::default()
    }
}

/// An insert's condition is checked where the write applies: over a committed value the
/// commit fails with Duplicate, in one phase (one range) and in two (row and sys keys), and
/// nothing of the transaction is written.
#[tokio::test]
async fn a_deferred_insert_over_a_value_fails_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"old"), (sys(1), b"old")]).await;
    for second in [row(2), sys(2)] {
        let mut t = db.begin(deferred()).await.unwrap();
        t.insert(row(1), b"new".to_vec()).await.unwrap();
        t.put(second.clone(), b"x".to_vec()).unwrap();
        let err = t.commit().await.unwrap_err();
        assert_eq!(err, Error::Duplicate { key: row(1) });
        let mut r = db.begin(TxnOptions::default()).await.unwrap();
        assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"old".to_vec()));
        assert_eq!(r.get(&second).await.unwrap(), None, "nothing else written");
    }
    // Inserting a fresh key, or one deleted before, commits.
    let mut t = db.begin(deferred()).await.unwrap();
    t.delete(sys(1)).unwrap();
    t.commit().await.unwrap();
    let mut t = db.begin(deferred()).await.unwrap();
    t.insert(row(3), b"three".to_vec()).await.unwrap();
    t.insert(sys(1), b"again".to_vec()).await.unwrap();
    t.commit().await.unwrap();
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(3)).await.unwrap(), Some(b"three".to_vec()));
    assert_eq!(r.get(&sys(1)).await.unwrap(), Some(b"again".to_vec()));
}

/// Without deferral the insert reads its key and reports the duplicate at once; the
/// transaction's own writes count (insert twice, insert after put), its own delete frees the key.
#[tokio::test]
async fn an_eager_insert_reports_the_duplicate_at_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    put_all(&db, &[(row(1), b"old")]).await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    let err = t.insert(row(1), b"new".to_vec()).await.unwrap_err();
    assert_eq!(err, Error::Duplicate { key: row(1) });
    t.insert(row(2), b"a".to_vec()).await.unwrap();
    let err = t.insert(row(2), b"b".to_vec()).await.unwrap_err();
    assert_eq!(err, Error::Duplicate { key: row(2) });
    t.delete(row(1)).unwrap();
    t.insert(row(1), b"replaced".to_vec()).await.unwrap();
    t.commit().await.unwrap();
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"replaced".to_vec()));
    assert_eq!(r.get(&row(2)).await.unwrap(), Some(b"a".to_vec()));
}

/// Two transactions insert the same new key concurrently, neither seeing the other: exactly
/// one commits; the other fails (a conflict, or the duplicate) and writes nothing.
#[tokio::test]
async fn concurrent_inserts_of_one_key_commit_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut a = db.begin(deferred()).await.unwrap();
    let mut b = db.begin(deferred()).await.unwrap();
    a.insert(row(7), b"a".to_vec()).await.unwrap();
    b.insert(row(7), b"b".to_vec()).await.unwrap();
    b.put(sys(7), b"b".to_vec()).unwrap();
    a.commit().await.unwrap();
    let err = b.commit().await.unwrap_err();
    assert!(
        matches!(err, Error::Serialization(_) | Error::Duplicate { .. }),
        "{err:?}"
    );
    // A retry at a new snapshot reports the duplicate.
    let mut b = db.begin(deferred()).await.unwrap();
    b.insert(row(7), b"b".to_vec()).await.unwrap();
    assert_eq!(
        b.commit().await.unwrap_err(),
        Error::Duplicate { key: row(7) }
    );
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(7)).await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(r.get(&sys(7)).await.unwrap(), None);
}

#[tokio::test]
async fn get_many_reads_keys_of_several_ranges_and_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    for id in [1, 5, 30] {
        t.put(row(id), vec![id]).unwrap();
    }
    t.put(sys(1), b"meta".to_vec()).unwrap();
    t.commit().await.unwrap();
    db.split_at(&row(10)).await.unwrap();
    let mut t = db.begin(TxnOptions::default()).await.unwrap();
    t.put(row(7), b"own".to_vec()).unwrap();
    t.delete(row(5)).unwrap();
    let keys = vec![row(30), sys(1), row(2), row(1), row(7), row(5)];
    let got = t.get_many(&keys).await.unwrap();
    assert_eq!(
        got,
        vec![
            Some(vec![30]),
            Some(b"meta".to_vec()),
            None,
            Some(vec![1]),
            Some(b"own".to_vec()),
            None,
        ]
    );
    for (key, value) in keys.iter().zip(&got) {
        assert_eq!(
            &t.get(key).await.unwrap(),
            value,
            "get agrees with get_many"
        );
    }
}
