//! One-phase commit: transactions within one range commit with one replicated command, and the
//! leader latches close the gap such a commit opens (DESIGN.md, Timestamps and transactions).

mod common;

use std::time::Duration;

use common::row;
use kv::{Command, KeyError, Mutation, Op, Response};
use txn::{Config, Db, Error, IsolationLevel, TxnOptions};

fn serializable() -> TxnOptions {
    TxnOptions {
        isolation: IsolationLevel::Serializable,
        ..Default::default()
    }
}

/// The applied Raft index of the range holding `key`, once everything in its log has applied
/// (Raft's metrics trail the apply a little).
async fn applied(db: &Db, key: &[u8]) -> u64 {
    let replica = common::replica_of(db, key).await;
    for _ in 0..500 {
        let status = replica.group().status();
        if status.applied_index == status.last_log_index {
            return status.applied_index.unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the range's log did not finish applying");
}

#[tokio::test]
async fn a_single_range_transaction_commits_with_one_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    let mut t = db.begin(serializable()).await.unwrap();
    assert_eq!(t.get(&row(1)).await.unwrap(), None);
    t.put(row(1), b"a".to_vec()).unwrap();
    t.put(row(2), b"b".to_vec()).unwrap();
    let before = applied(&db, &row(1)).await;
    let commit_ts = t.commit_at().await.unwrap();
    assert_eq!(applied(&db, &row(1)).await, before + 1, "one command");

    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert!(r.start_ts() > commit_ts);
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(r.get(&row(2)).await.unwrap(), Some(b"b".to_vec()));
    let history = db.client().history(&row(1)).await.unwrap();
    assert!(history.lock.is_none(), "no lock is left behind");
    assert_eq!(history.versions.len(), 1);
    assert_eq!(history.versions[0].commit_ts, commit_ts);

    // Across ranges, two-phase commit: prewrite, commit of the primary, then the secondaries.
    db.split_at(&row(50)).await.unwrap();
    // (The split's directory entries are committed in the background: a first transaction may
    // be routed by the old entry once and retried.)
    let mut warm = db.begin(serializable()).await.unwrap();
    warm.put(row(4), b"w".to_vec()).unwrap();
    warm.put(row(61), b"w".to_vec()).unwrap();
    warm.commit().await.unwrap();
    let mut t = db.begin(serializable()).await.unwrap();
    t.put(row(3), b"c".to_vec()).unwrap();
    t.put(row(60), b"d".to_vec()).unwrap();
    let before = applied(&db, &row(3)).await;
    t.commit().await.unwrap();
    assert_eq!(
        applied(&db, &row(3)).await,
        before + 2,
        "prewrite and commit"
    );
}

#[tokio::test]
async fn locked_keys_commit_in_one_phase_and_release_their_locks() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    let mut setup = db.begin(TxnOptions::default()).await.unwrap();
    setup.put(row(1), b"0".to_vec()).unwrap();
    setup.put(row(2), b"0".to_vec()).unwrap();
    setup.commit().await.unwrap();

    // Lock row 1 (primary, only locked) and row 2 (locked and written), like SELECT FOR UPDATE
    // followed by an UPDATE.
    let mut t = db.begin(serializable()).await.unwrap();
    t.get(&row(1)).await.unwrap();
    t.lock_keys(vec![row(1)]).await.unwrap();
    t.lock_keys(vec![row(2)]).await.unwrap();
    t.put(row(2), b"1".to_vec()).unwrap();
    let commit_ts = t.commit_at().await.unwrap();
    for k in [row(1), row(2)] {
        assert!(db.client().history(&k).await.unwrap().lock.is_none());
    }
    // The primary, only locked, keeps a record of the commit for whoever checks its status.
    let primary = db.client().history(&row(1)).await.unwrap();
    assert_eq!(primary.versions[0].commit_ts, commit_ts);
    assert_eq!(primary.versions[0].record.kind, kv::mvcc::RecordKind::Lock);
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"0".to_vec()));
    assert_eq!(r.get(&row(2)).await.unwrap(), Some(b"1".to_vec()));
}

#[tokio::test]
async fn a_pessimistic_lock_on_a_read_key_does_not_block_one_phase() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    // A transaction holding a pessimistic lock on row 2, which the other reads: its owner has
    // not prewritten, so it commits above the reader.
    let mut holder = db.begin(serializable()).await.unwrap();
    holder.lock_keys(vec![row(2)]).await.unwrap();
    holder.put(row(2), b"h".to_vec()).unwrap();

    let mut t = db.begin(serializable()).await.unwrap();
    assert_eq!(t.get(&row(2)).await.unwrap(), None);
    t.put(row(1), b"t".to_vec()).unwrap();
    t.commit().await.unwrap();
    // The holder commits after: it did not read row 1, so both commit in a valid order.
    holder.commit().await.unwrap();
}

/// The gap: two one-phase commits, each writing what the other read, both take their commit
/// timestamps before either applies. Without waiting for latches, each validates before the
/// other's versions exist, and both commit (write skew). The latch wait makes the later one see
/// the earlier one's versions and fail.
#[tokio::test]
async fn latches_close_the_one_phase_commit_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    let replica = common::replica_of(&db, &row(1)).await;
    let latches = replica.latches().clone();
    let span = |k: u8| (row(k), kv::keys::next_key(&row(k)));
    let put = |k: u8, v: &[u8]| Mutation {
        key: row(k),
        op: Op::Put(v.to_vec()),
    };
    let one_phase = |start_ts, commit_ts, write: u8, read: u8| Command::OnePhaseCommit {
        start_ts,
        read_ts: start_ts,
        commit_ts,
        primary: row(write),
        mutations: vec![put(write, b"off")],
        reads: vec![span(read)],
    };
    let ok = |r: Response| matches!(r, Response::KeyErrors(e) if e.is_empty());

    // Without the wait: A reads 1 and writes 2, B reads 2 and writes 1; both commit.
    let (a_start, b_start) = (db.now().await.unwrap(), db.now().await.unwrap());
    let a_guard = latches.acquire(vec![row(2)]).await;
    let a_commit = db.now().await.unwrap();
    a_guard.set_commit_ts(a_commit);
    let b_guard = latches.acquire(vec![row(1)]).await;
    let b_commit = db.now().await.unwrap();
    b_guard.set_commit_ts(b_commit);
    let b = replica
        .propose(one_phase(b_start, b_commit, 1, 2))
        .await
        .unwrap();
    drop(b_guard);
    let a = replica
        .propose(one_phase(a_start, a_commit, 2, 1))
        .await
        .unwrap();
    drop(a_guard);
    assert!(
        ok(b) && ok(a),
        "both commit: the anomaly the latches exist for"
    );

    // With the wait: B waits for A's latch on what it read, then sees A's version and fails.
    let (a_start, b_start) = (db.now().await.unwrap(), db.now().await.unwrap());
    let a_guard = latches.acquire(vec![row(4)]).await;
    let a_commit = db.now().await.unwrap();
    a_guard.set_commit_ts(a_commit);
    let b_guard = latches.acquire(vec![row(3)]).await;
    let b_commit = db.now().await.unwrap();
    b_guard.set_commit_ts(b_commit);
    let (start, end) = span(4);
    let waiting = {
        let latches = latches.clone();
        tokio::spawn(async move {
            latches.wait(&start, &end, b_commit, Some(&b_guard)).await;
            b_guard
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "B waits for A, which commits below it"
    );
    // A itself does not wait for B (B commits above A).
    let (start, end) = span(3);
    latches.wait(&start, &end, a_commit, Some(&a_guard)).await;
    let a = replica
        .propose(one_phase(a_start, a_commit, 4, 3))
        .await
        .unwrap();
    drop(a_guard);
    let b_guard = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("B's wait ends when A's latch is released")
        .unwrap();
    let b = replica
        .propose(one_phase(b_start, b_commit, 3, 4))
        .await
        .unwrap();
    drop(b_guard);
    assert!(ok(a));
    match b {
        Response::KeyErrors(e) => assert!(
            matches!(&e[..], [KeyError::WriteConflict { key, conflict_ts }]
                if *key == row(4) && *conflict_ts == a_commit),
            "{e:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_reader_waits_for_a_latched_commit_below_its_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    let replica = common::replica_of(&db, &row(1)).await;
    let start_ts = db.now().await.unwrap();
    let guard = replica.latches().acquire(vec![row(1)]).await;
    let commit_ts = db.now().await.unwrap();
    guard.set_commit_ts(commit_ts);
    // A reader whose timestamp is above the commit's must see its version: it waits.
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut r = db.begin(TxnOptions::default()).await.unwrap();
            assert!(r.start_ts() > commit_ts);
            r.get(&row(1)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!reader.is_finished(), "the reader waits for the latch");
    let cmd = Command::OnePhaseCommit {
        start_ts,
        read_ts: start_ts,
        commit_ts,
        primary: row(1),
        mutations: vec![Mutation {
            key: row(1),
            op: Op::Put(b"v".to_vec()),
        }],
        reads: Vec::new(),
    };
    replica.propose(cmd).await.unwrap();
    drop(guard);
    let seen = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("reader released")
        .unwrap();
    assert_eq!(seen.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test]
async fn write_conflicts_in_one_phase_are_serialization_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    for isolation in [IsolationLevel::Serializable, IsolationLevel::Snapshot] {
        let opts = TxnOptions {
            isolation,
            ..Default::default()
        };
        let mut a = db.begin(opts).await.unwrap();
        let mut b = db.begin(opts).await.unwrap();
        a.put(row(9), b"a".to_vec()).unwrap();
        b.put(row(9), b"b".to_vec()).unwrap();
        a.commit().await.unwrap();
        let err = b.commit().await.unwrap_err();
        assert!(matches!(err, Error::Serialization(_)), "{err:?}");
    }
}

#[tokio::test]
async fn optimistic_statements_take_no_locks_and_fail_on_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    let optimistic = TxnOptions {
        optimistic: true,
        ..serializable()
    };
    let mut t = db.begin(optimistic).await.unwrap();
    assert_eq!(t.get(&row(1)).await.unwrap(), None);
    assert!(!t.lock_keys(vec![row(1)]).await.unwrap());
    assert!(
        db.client().history(&row(1)).await.unwrap().lock.is_none(),
        "no lock is taken"
    );
    // Another transaction writes the key in between: the commit is a serialization failure.
    let mut other = db.begin(serializable()).await.unwrap();
    other.put(row(1), b"o".to_vec()).unwrap();
    other.commit().await.unwrap();
    t.put(row(1), b"t".to_vec()).unwrap();
    let err = t.commit().await.unwrap_err();
    assert!(matches!(err, Error::Serialization(_)), "{err:?}");
    // Without a conflict it commits.
    let mut t = db.begin(optimistic).await.unwrap();
    assert_eq!(t.get(&row(1)).await.unwrap(), Some(b"o".to_vec()));
    t.lock_keys(vec![row(1)]).await.unwrap();
    t.put(row(1), b"t".to_vec()).unwrap();
    t.commit().await.unwrap();
}
