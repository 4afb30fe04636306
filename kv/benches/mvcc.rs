//! Micro-benchmarks of key encoding and of the MVCC layer against raw fjall on the same data.
//!
//! The database holds [`KEYS`] SQL-row keys with [`VERSIONS`] versions each (commit timestamps
//! 10, 20, 30...), flushed to disk tables so reads go through the block cache rather than the
//! memtable, plus a few locks on keys of another table, so the lock check is a real lookup in a
//! non-empty keyspace. Reads are at timestamp 25: the MVCC read skips the version at 30 and
//! returns the one at 20. Every raw operation targets the same entries the MVCC operation
//! touches, so the ratio of the two is the cost of the layer (lock check, bounds, decoding).
//!
//! Writes run with fsync off and batches without durability, so they measure the layer, not the
//! disk. Run with `cargo bench -p kv --bench mvcc`; BENCHMARKS.md records the results.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fjall::Readable;
use kv::engine::{Engine, EngineOptions};
use kv::keys::Key;
use kv::mvcc::{Mvcc, Record, RecordKind, StatsDelta, version_key};
use kv::{Mutation, Op, Timestamp};

/// Keys in the data set.
const KEYS: u64 = 100_000;
/// Versions per key.
const VERSIONS: u64 = 3;
/// The read timestamp: between the second and the third version.
const READ_TS: Timestamp = 25;
/// Rows per scan.
const SCAN_ROWS: u64 = 100;
/// Table of the data set; locks live on `LOCK_TABLE`, writes go to `WRITE_TABLE`.
const DATA_TABLE: u32 = 1;
const LOCK_TABLE: u32 = 2;
const WRITE_TABLE: u32 = 3;

fn row_key(table_id: u32, i: u64) -> Vec<u8> {
    Key::Sql {
        table_id,
        index_id: 1,
        columns: i.to_be_bytes().to_vec(),
    }
    .encode()
}

fn value(i: u64) -> Vec<u8> {
    format!("value-{i:012}-{}", "x".repeat(16)).into_bytes()
}

/// A cheap deterministic key picker (xorshift), so reads spread over the whole data set.
struct Picker(u64);

impl Picker {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % KEYS
    }
}

/// Opens an engine in a temporary directory and loads the data set.
fn load() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = EngineOptions {
        unsafe_no_fsync: true,
        ..Default::default()
    };
    let engine = Engine::open(dir.path(), options).expect("open engine");
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(10_000) {
        let mut batch = engine.db.batch().durability(None);
        for &i in chunk {
            let key = row_key(DATA_TABLE, i);
            for v in 1..=VERSIONS {
                let record = Record {
                    kind: RecordKind::Put,
                    start_ts: v * 10 - 1,
                    value: value(i),
                };
                batch.insert(&engine.data, version_key(&key, v * 10), record.encode());
            }
        }
        batch.commit().expect("load batch");
    }
    let lock = kv::Lock {
        start_ts: 5,
        primary: row_key(LOCK_TABLE, 0),
        expiry_ms: u64::MAX,
        kind: kv::mvcc::LockKind::Put,
        for_update_ts: 5,
        value: Some(value(0)),
    };
    for i in 0..1_000 {
        engine
            .locks
            .insert(row_key(LOCK_TABLE, i), lock.encode())
            .expect("insert lock");
    }
    for ks in [&engine.data, &engine.locks] {
        ks.rotate_memtable_and_wait().expect("flush");
        ks.major_compact().expect("compact");
    }
    (dir, engine)
}

fn key_encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys");
    let sql = Key::Sql {
        table_id: 42,
        index_id: 1,
        columns: 123_456u64.to_be_bytes().to_vec(),
    };
    let kv_key = Key::Kv {
        tenant: b"tenant-1".to_vec(),
        key: b"user/\x00profile/12345".to_vec(),
    };
    let (sql_raw, kv_raw) = (sql.encode(), kv_key.encode());
    g.bench_function("sql_encode", |b| b.iter(|| black_box(&sql).encode()));
    g.bench_function("sql_decode", |b| {
        b.iter(|| Key::decode(black_box(&sql_raw)))
    });
    g.bench_function("kv_encode", |b| b.iter(|| black_box(&kv_key).encode()));
    g.bench_function("kv_decode", |b| b.iter(|| Key::decode(black_box(&kv_raw))));
    g.bench_function("version_key", |b| {
        b.iter(|| version_key(black_box(&sql_raw), black_box(READ_TS)))
    });
    g.finish();
}

fn point_reads(c: &mut Criterion, engine: &Engine) {
    let mut g = c.benchmark_group("point_read");
    // Keys are encoded outside the timed loop for the raw reads, so the raw side is the bare
    // fjall operation; the MVCC read builds its version keys itself, which is part of its cost.
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| row_key(DATA_TABLE, i)).collect();
    let exact: Vec<Vec<u8>> = keys.iter().map(|k| version_key(k, 20)).collect();
    let seek: Vec<Vec<u8>> = keys.iter().map(|k| version_key(k, READ_TS)).collect();

    let mut p = Picker(0x9E37_79B9_7F4A_7C15);
    g.bench_function("raw_get", |b| {
        b.iter(|| engine.data.get(&exact[p.next() as usize]).expect("get"))
    });
    let mut p = Picker(0x9E37_79B9_7F4A_7C15);
    g.bench_function("raw_seek", |b| {
        b.iter(|| {
            let guard = engine
                .data
                .range(seek[p.next() as usize].as_slice()..)
                .next();
            guard.expect("a version").into_inner().expect("read")
        })
    });
    let snapshot = engine.db.snapshot();
    let mut p = Picker(0x9E37_79B9_7F4A_7C15);
    g.bench_function("raw_seek_snapshot", |b| {
        b.iter(|| {
            let from = seek[p.next() as usize].as_slice();
            let guard = snapshot.range(&engine.data, from..).next();
            guard.expect("a version").into_inner().expect("read")
        })
    });
    let mvcc = Mvcc {
        snapshot: &snapshot,
        data: &engine.data,
        locks: &engine.locks,
    };
    let mut p = Picker(0x9E37_79B9_7F4A_7C15);
    g.bench_function("mvcc_get", |b| {
        b.iter(|| {
            let value = mvcc.get(&keys[p.next() as usize], READ_TS).expect("read");
            value.expect("not locked").expect("a value")
        })
    });
    // What a replica read does per request: a fresh snapshot, then the MVCC read.
    let mut p = Picker(0x9E37_79B9_7F4A_7C15);
    g.bench_function("mvcc_get_new_snapshot", |b| {
        b.iter(|| {
            let snapshot = engine.db.snapshot();
            let mvcc = Mvcc {
                snapshot: &snapshot,
                data: &engine.data,
                locks: &engine.locks,
            };
            let value = mvcc.get(&keys[p.next() as usize], READ_TS).expect("read");
            value.expect("not locked").expect("a value")
        })
    });
    g.finish();
}

fn scans(c: &mut Criterion, engine: &Engine) {
    let mut g = c.benchmark_group("scan_100");
    let snapshot = engine.db.snapshot();
    let mvcc = Mvcc {
        snapshot: &snapshot,
        data: &engine.data,
        locks: &engine.locks,
    };
    let start = |p: &mut Picker| p.next() % (KEYS - SCAN_ROWS);
    let mut p = Picker(0x2545_F491_4F6C_DD1D);
    // 100 entries: the raw cost of reading as many entries as MVCC returns rows.
    g.bench_function("raw_100_entries", |b| {
        b.iter(|| {
            let from = version_key(&row_key(DATA_TABLE, start(&mut p)), u64::MAX);
            let mut n = 0;
            for guard in engine.data.range(from..).take(SCAN_ROWS as usize) {
                black_box(guard.into_inner().expect("read"));
                n += 1;
            }
            n
        })
    });
    // Every version of 100 keys: the entries the MVCC scan has to step over.
    let mut p = Picker(0x2545_F491_4F6C_DD1D);
    g.bench_function("raw_100_keys_all_versions", |b| {
        b.iter(|| {
            let from = version_key(&row_key(DATA_TABLE, start(&mut p)), u64::MAX);
            let mut n = 0;
            let entries = (SCAN_ROWS * VERSIONS) as usize;
            for guard in engine.data.range(from..).take(entries) {
                black_box(guard.into_inner().expect("read"));
                n += 1;
            }
            n
        })
    });
    let mut p = Picker(0x2545_F491_4F6C_DD1D);
    g.bench_function("mvcc_scan", |b| {
        b.iter(|| {
            let i = start(&mut p);
            let (from, to) = (row_key(DATA_TABLE, i), row_key(DATA_TABLE, i + SCAN_ROWS));
            let result = mvcc.scan(&from, &to, READ_TS, SCAN_ROWS as usize);
            let result = result.expect("scan");
            assert_eq!(result.rows.len(), SCAN_ROWS as usize);
            result
        })
    });
    g.finish();
}

fn writes(c: &mut Criterion, engine: &Engine) {
    let mut g = c.benchmark_group("write_one_key");
    let mut next = 0u64;
    let mut fresh = move || {
        next += 1;
        next
    };
    g.bench_function("raw_batch_insert", |b| {
        b.iter_batched(
            || row_key(WRITE_TABLE, fresh()),
            |key| {
                let mut batch = engine.db.batch().durability(None);
                batch.insert(&engine.data, version_key(&key, 20), value(0));
                batch.commit().expect("commit");
            },
            BatchSize::SmallInput,
        )
    });
    // Prewrite and commit are two commands, each evaluated over a fresh snapshot and applied as
    // its own batch, as at apply time (without the Raft log and the applied-index write).
    g.bench_function("mvcc_prewrite_commit", |b| {
        b.iter_batched(
            || row_key(WRITE_TABLE, fresh() + (1 << 40)),
            |key| {
                let mut stats = StatsDelta::default();
                let mutation = Mutation {
                    key: key.clone(),
                    op: Op::Put(value(0)),
                };
                let snapshot = engine.db.snapshot();
                let mvcc = Mvcc {
                    snapshot: &snapshot,
                    data: &engine.data,
                    locks: &engine.locks,
                };
                let mut batch = engine.db.batch().durability(None);
                let prewrite = mvcc.prewrite(
                    &mut batch,
                    &mut stats,
                    &[mutation],
                    kv::mvcc::TxnMeta {
                        start_ts: 10,
                        read_ts: 10,
                        primary: &key,
                    },
                    0,
                );
                prewrite.expect("prewrite").expect("no conflict");
                batch.commit().expect("commit");

                let snapshot = engine.db.snapshot();
                let mvcc = Mvcc {
                    snapshot: &snapshot,
                    data: &engine.data,
                    locks: &engine.locks,
                };
                let mut batch = engine.db.batch().durability(None);
                let errors = mvcc.commit(&mut batch, &mut stats, &[key], 10, 20);
                assert!(errors.expect("commit").is_empty());
                batch.commit().expect("commit");
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn mvcc_vs_raw(c: &mut Criterion) {
    let (_dir, engine) = load();
    point_reads(c, &engine);
    scans(c, &engine);
    writes(c, &engine);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = key_encoding, mvcc_vs_raw
}
criterion_main!(benches);
