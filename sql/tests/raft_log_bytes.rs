//! Raft log bytes per committed single-row UPDATE, measured on a real store (a measurement, not
//! a test: `cargo test -p sql --test raft_log_bytes -- --ignored --nocapture`).
//!
//! Two fresh stores run the same setup (a table, one row); one of them then runs 1,000
//! autocommit `UPDATE`s of that row. After each store is shut down, the stored log entries of
//! every Raft group (the values under `group ++ 'e' ++ index` in the `raft` keyspace) are counted
//! and summed. The difference between the two, divided by 1,000, is what one UPDATE adds to the
//! Raft log (entry encodings only; each entry's key adds 17 bytes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fjall::{Database, KeyspaceCreateOptions};
use sql::{Engine, ExecResult, Session};

const UPDATES: u64 = 1_000;

async fn must(s: &mut Session, sql: &str) -> ExecResult {
    let stmt = s.parse(sql).expect("parse").remove(0);
    s.execute(&stmt, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs the setup and `updates` UPDATEs in a fresh store under `dir`, then shuts it down.
async fn run(dir: &Path, updates: u64) {
    let db = txn::Db::open_local(dir).await.expect("open");
    let engine = Engine::new(db.clone());
    let mut s = Session::new(Arc::clone(&engine), "root", "tinkerdb").expect("session");
    must(
        &mut s,
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT, name TEXT)",
    )
    .await;
    must(&mut s, "INSERT INTO accounts VALUES (1, 0, 'alice')").await;
    for _ in 0..updates {
        match must(
            &mut s,
            "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
        )
        .await
        {
            ExecResult::Command { rows: Some(1), .. } => {}
            other => panic!("UPDATE: {other:?}"),
        }
    }
    drop(s);
    drop(engine);
    db.shutdown().await.expect("shutdown");
}

/// Log entries per size, over every group in the store's `raft` keyspace.
fn entry_sizes(dir: &Path) -> BTreeMap<usize, u64> {
    let db = Database::builder(dir.join("store")).open().expect("fjall");
    let ks = db
        .keyspace("raft", KeyspaceCreateOptions::default)
        .expect("raft keyspace");
    let mut sizes = BTreeMap::new();
    for g in ks.iter() {
        let (k, v) = g.into_inner().expect("read");
        if k.len() == 17 && k[8] == b'e' {
            *sizes.entry(v.len()).or_insert(0) += 1;
        }
    }
    sizes
}

fn totals(sizes: &BTreeMap<usize, u64>) -> (u64, u64) {
    let entries = sizes.values().sum();
    let bytes = sizes.iter().map(|(size, n)| *size as u64 * n).sum();
    (entries, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn raft_log_bytes_per_update() {
    let base_dir = tempfile::tempdir().expect("tempdir");
    run(base_dir.path(), 0).await;
    let base = entry_sizes(base_dir.path());

    let dir = tempfile::tempdir().expect("tempdir");
    run(dir.path(), UPDATES).await;
    let sizes = entry_sizes(dir.path());

    let (base_entries, base_bytes) = totals(&base);
    let (entries, bytes) = totals(&sizes);
    let (common_size, common_count) = sizes
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(size, n)| (*size, *n))
        .expect("entries");
    println!("setup only: {base_entries} entries, {base_bytes} bytes");
    println!("with {UPDATES} updates: {entries} entries, {bytes} bytes");
    println!(
        "per UPDATE: {:.2} entries, {:.1} bytes; most common entry size {common_size} bytes ({common_count} entries)",
        (entries - base_entries) as f64 / UPDATES as f64,
        (bytes - base_bytes) as f64 / UPDATES as f64,
    );
    assert!(
        entries >= base_entries + UPDATES,
        "every UPDATE adds an entry"
    );
}
