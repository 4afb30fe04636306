//! Helpers shared by the transaction tests: real stores in temporary directories.

#![allow(dead_code)] // each test file uses a part

use std::sync::Arc;
use std::time::Duration;

use kv::keys::Key;
use txn::{Config, Db};

/// Opens the store in `dir`. A store shut down in this process releases its directory once its
/// background tasks have finished, so a reopen waits for that (bounded).
pub async fn open_store(dir: &std::path::Path) -> Arc<kv::store::Store> {
    let mut attempts = 0;
    loop {
        match kv::store::Store::open(kv::StoreOptions::new(dir)).await {
            Err(kv::Error::DirectoryLocked(_)) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return result.expect("store opens"),
        }
    }
}

/// Opens the store in `dir` and the transaction layer over it.
pub async fn open(dir: &std::path::Path, config: Config) -> (Arc<kv::store::Store>, Db) {
    let store = open_store(dir).await;
    let db = Db::open(kv::testing::client(store.clone()), config)
        .await
        .expect("transactions start");
    (store, db)
}

/// A SQL row key of table 1.
pub fn row(id: u8) -> Vec<u8> {
    Key::Sql {
        table_id: 1,
        index_id: 1,
        columns: vec![id],
    }
    .encode()
}

/// A key in range 1 (sys), so that a transaction writing it and a row spans two Raft groups.
pub fn sys(id: u8) -> Vec<u8> {
    Key::Catalog { suffix: vec![id] }.encode()
}

/// The local replica of the range holding `key` (tests look at its latches and Raft status).
pub async fn replica_of(db: &Db, key: &[u8]) -> Arc<kv::replica::Replica> {
    let desc = db
        .client()
        .range_for(&kv::keys::routing_key(key))
        .await
        .expect("routed");
    db.client()
        .store()
        .replica(desc.range_id)
        .expect("a local replica")
}
