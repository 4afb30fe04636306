//! Micro-benchmark of one Raft proposal round trip: a `Noop` command proposed to range 2 of a
//! bootstrapped single-node store (a single-voter group), returned once applied.
//!
//! `fsync_disk` keeps the store in the system temporary directory with fsync on: the log append
//! is fsynced before the entry commits, which is the real cost of a write. `tmpfs` puts the store
//! in `/dev/shm`, where fsync costs nothing, leaving the Raft and apply path itself (the raft log
//! always fsyncs, so `unsafe_no_fsync` would not remove it). Sequential proposals, one at a time.
//!
//! Run with `cargo bench -p kv --bench raft`; BENCHMARKS.md records the results.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kv::store::Store;
use kv::{Command, Response, StoreOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench_in(c: &mut Criterion, name: &str, dir: &Path) {
    let rt = runtime();
    let store = rt
        .block_on(Store::open(StoreOptions::new(dir)))
        .expect("open store");
    let replica = store.replica(2).expect("range 2");
    c.bench_function(&format!("raft_noop_round_trip/{name}"), |b| {
        b.to_async(&rt).iter(|| async {
            let response = replica.propose(Command::Noop).await.expect("propose");
            assert!(matches!(response, Response::Done), "{response:?}");
        })
    });
    rt.block_on(store.shutdown()).expect("shutdown");
}

fn raft_round_trip(c: &mut Criterion) {
    let disk = tempfile::tempdir().expect("temporary directory");
    bench_in(c, "fsync_disk", disk.path());
    if Path::new("/dev/shm").is_dir() {
        let shm = tempfile::tempdir_in("/dev/shm").expect("tmpfs directory");
        bench_in(c, "tmpfs", shm.path());
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = raft_round_trip
}
criterion_main!(benches);
