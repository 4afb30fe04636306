//! Micro-benchmark of the timestamp oracle: timestamps per second from `Db::now()` with one
//! requester and with 64 concurrent requesters.
//!
//! The oracle answers the requests waiting in its queue as one batch after one leadership check
//! (a ReadIndex on range 1), and pushes its persisted bound through Raft once per
//! `BOUND_WINDOW_MS`. One requester pays a whole check per timestamp; 64 requesters share it, so
//! the per-timestamp time is the check divided by the batch size. The store is on disk with
//! fsync on (the bound's Raft write is then a real fsync, a few per second at most).
//!
//! Run with `cargo bench -p txn --bench oracle`; BENCHMARKS.md records the results.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use txn::Db;

/// Concurrent requesters of the batched case.
const REQUESTERS: u64 = 64;

fn oracle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = rt.block_on(Db::open_local(dir.path())).expect("open db");

    let mut g = c.benchmark_group("oracle_now");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_requester", |b| {
        b.to_async(&rt)
            .iter(|| async { db.now().await.expect("timestamp") })
    });
    g.bench_function(format!("{REQUESTERS}_requesters"), |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let db = db.clone();
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..REQUESTERS)
                    .map(|j| {
                        // Spread `iters` timestamps over the requesters exactly.
                        let n = iters / REQUESTERS + u64::from(j < iters % REQUESTERS);
                        let db = db.clone();
                        tokio::spawn(async move {
                            for _ in 0..n {
                                db.now().await.expect("timestamp");
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("requester task");
                }
                start.elapsed()
            }
        })
    });
    g.finish();
    rt.block_on(db.shutdown()).expect("shutdown");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = oracle
}
criterion_main!(benches);
