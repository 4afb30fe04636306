//! A history checker for SERIALIZABLE: concurrent transactions over keys in three ranges (three
//! Raft groups) record every read and write; the committed ones are replayed in commit-timestamp order
//! (read-only ones at their read timestamp) against a model, and every read must match.
//!
//! Schedules come from seeded randomness (set `HISTORY_SEED` to replay one); the interleaving
//! comes from concurrent tasks on a multi-threaded runtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kv::keys::{Key, next_key};
use txn::{Config, Db, Error, Timestamp, TxnOptions};

/// A small deterministic generator (xorshift64*), enough to vary schedules by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Keys 0..3 live in one range, 3 in another, 4..6 in a third (splits at keys 3 and 4).
const KEYS: u8 = 6;

fn key(i: u8) -> Vec<u8> {
    Key::Sql {
        table_id: if i < KEYS / 2 { 6 } else { 7 },
        index_id: 1,
        columns: vec![i],
    }
    .encode()
}

/// One operation of a transaction and what it observed (read-modify-write statements record a
/// `Get` then a `Put`).
#[derive(Clone, Debug)]
enum Op {
    Get(Vec<u8>, Option<Vec<u8>>),
    /// A scan of the sql keys: the rows it returned.
    Scan(Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>),
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

#[derive(Debug)]
struct Committed {
    /// The serialization point: commit_ts for writers, start_ts for read-only transactions.
    at: Timestamp,
    ops: Vec<Op>,
}

async fn run_txn(db: &Db, rng: &mut Rng, id: u64) -> Result<Committed, Error> {
    let mut txn = db.begin(TxnOptions::default()).await?;
    match Box::pin(run_ops(&mut txn, rng, id)).await {
        Ok(ops) => Ok(Committed {
            at: txn.commit_at().await?,
            ops,
        }),
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

async fn run_ops(txn: &mut txn::Transaction, rng: &mut Rng, id: u64) -> Result<Vec<Op>, Error> {
    let mut ops = Vec::new();
    for n in 0..1 + rng.below(5) {
        let k = key(rng.below(KEYS as u64) as u8);
        txn.statement_start();
        match rng.below(12) {
            // A read-modify-write statement (like UPDATE): read, lock, and if the lock moved the
            // read timestamp, read again.
            10 | 11 => {
                let seen = loop {
                    let seen = txn.get(&k).await?;
                    if !txn.lock_keys(vec![k.clone()]).await? {
                        break seen;
                    }
                };
                let mut v = seen.clone().unwrap_or_default();
                v.extend_from_slice(format!("+t{id}.{n}").as_bytes());
                txn.put(k.clone(), v.clone())?;
                ops.push(Op::Get(k.clone(), seen));
                ops.push(Op::Put(k, v));
            }
            0..=3 => {
                let v = txn.get(&k).await?;
                ops.push(Op::Get(k, v));
            }
            4 => {
                let (start, end) = (key(KEYS / 2), next_key(&key(KEYS - 1)));
                let rows = txn.scan(&start, &end, 100).await?;
                ops.push(Op::Scan(start, end, rows));
            }
            5 => {
                txn.delete(k.clone())?;
                ops.push(Op::Delete(k));
            }
            _ => {
                let v = format!("t{id}.{n}").into_bytes();
                txn.put(k.clone(), v.clone())?;
                ops.push(Op::Put(k, v));
            }
        }
        if rng.below(2) == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(ops)
}

/// Replays committed transactions in serialization order and checks every read.
fn check(mut history: Vec<Committed>) -> Result<(), String> {
    history.sort_by_key(|c| c.at);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for txn in &history {
        let mut view = model.clone();
        for op in &txn.ops {
            match op {
                Op::Get(k, seen) => {
                    if view.get(k) != seen.as_ref() {
                        return Err(format!(
                            "txn at {} read {k:?} = {seen:?}, model has {:?}",
                            txn.at,
                            view.get(k)
                        ));
                    }
                }
                Op::Scan(start, end, rows) => {
                    let expected: Vec<_> = view
                        .range(start.clone()..end.clone())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if &expected != rows {
                        return Err(format!(
                            "txn at {} scanned {rows:?}, model has {expected:?}",
                            txn.at
                        ));
                    }
                }
                Op::Put(k, v) => {
                    view.insert(k.clone(), v.clone());
                }
                Op::Delete(k) => {
                    view.remove(k);
                }
            }
        }
        model = view;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serializable_histories_replay_in_commit_order() {
    let seeds: Vec<u64> = match std::env::var("HISTORY_SEED") {
        Ok(s) => vec![s.parse().expect("HISTORY_SEED is a number")],
        Err(_) => vec![1, 2, 3],
    };
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        let store = kv::store::Store::open(kv::StoreOptions::new(dir.path()))
            .await
            .unwrap();
        let config = Config {
            lock_wait_timeout: Duration::from_millis(300),
            ..Config::default()
        };
        let db = Db::open(kv::testing::client(store.clone()), config)
            .await
            .unwrap();
        // Three ranges hold the keys: the sql range split at keys 3 and 4.
        db.split_at(&key(3)).await.unwrap();
        db.split_at(&key(4)).await.unwrap();
        let history = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut committed, mut aborted) = (0, 0);
        let mut tasks = Vec::new();
        for worker in 0..8u64 {
            let (db, history) = (db.clone(), history.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(seed.wrapping_mul(1_000_003).wrapping_add(worker) | 1);
                let (mut ok, mut conflicts) = (0, 0);
                for i in 0..25 {
                    match run_txn(&db, &mut rng, worker * 1000 + i).await {
                        Ok(c) => {
                            history.lock().unwrap().push(c);
                            ok += 1;
                        }
                        // Read-modify-write statements deadlock: the detector aborts one (a timeout is a backstop).
                        Err(
                            Error::Serialization(_) | Error::Deadlock(_) | Error::LockTimeout(_),
                        ) => conflicts += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                (ok, conflicts)
            }));
        }
        for t in tasks {
            let (ok, conflicts) = tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .unwrap()
                .unwrap();
            committed += ok;
            aborted += conflicts;
        }
        let history = std::mem::take(&mut *history.lock().unwrap());
        assert_eq!(history.len(), committed);
        assert!(committed > 0, "seed {seed}: nothing committed");
        if let Err(e) = check(history) {
            panic!("seed {seed}: history is not serializable in commit order: {e}");
        }
        eprintln!(
            "seed {seed}: {committed} committed, {aborted} aborted (40001, 40P01 or lock timeout)"
        );
        store.shutdown().await.unwrap();
    }
}

/// The checker itself catches a non-serializable history (a read that no serial order explains).
#[test]
fn the_checker_rejects_a_stale_read() {
    let k = key(1);
    let history = vec![
        Committed {
            at: 10,
            ops: vec![Op::Put(k.clone(), b"a".to_vec())],
        },
        Committed {
            at: 20,
            ops: vec![Op::Get(k.clone(), None), Op::Put(key(2), b"x".to_vec())],
        },
    ];
    assert!(check(history).is_err());
}
