//! The transactional key-value store as the SQL layer sees it.
//!
//! [`Store`] and [`KvTxn`] are the few operations the executor and catalog need from a
//! transaction. The real implementation delegates to `txn`; [`Memory`] is an in-process store
//! with snapshot isolation and first-committer-wins, used by tests of this crate and of the
//! layers above while no node is running. Errors stay `txn::Error` here and are mapped to SQL
//! categories in one place ([`crate::Error::from`]).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use txn::{IsolationLevel, TxnOptions};

/// Result of a store operation.
pub(crate) type KvResult<T> = std::result::Result<T, txn::Error>;

/// An opaque savepoint of a [`KvTxn`]: only the transaction that made it can roll back to it.
pub(crate) type Savepoint = Box<dyn Any + Send + Sync>;

fn foreign_savepoint() -> txn::Error {
    txn::Error::Internal("savepoint of another kind of transaction".into())
}

/// A store that begins transactions.
#[async_trait]
pub(crate) trait Store: Send + Sync {
    /// Begins a transaction.
    async fn begin(&self, opts: TxnOptions) -> KvResult<Box<dyn KvTxn>>;
    /// A timestamp from the oracle (`physical_ms << 18 | logical`).
    async fn now(&self) -> KvResult<txn::Timestamp>;
    /// Splits the range holding `key` at `key`; returns the id of the range starting there.
    async fn split_at(&self, key: &[u8]) -> KvResult<u64>;
    /// The cluster's nodes (`SHOW NODES`).
    async fn nodes(&self) -> KvResult<Vec<txn::cluster::show::NodeRow>>;
    /// The cluster's ranges, in key order (`SHOW RANGES`).
    async fn ranges(&self) -> KvResult<Vec<txn::cluster::show::RangeRow>>;
}

/// A transaction's reads and writes (see `txn::Transaction` for the semantics).
#[async_trait]
pub(crate) trait KvTxn: Send + Sync {
    /// The isolation level.
    fn isolation(&self) -> IsolationLevel;
    /// The timestamp reads are made at (a locking statement may move it forward).
    fn read_ts(&self) -> txn::Timestamp;
    /// Reads one key.
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;
    /// Reads several keys (one request per range holding some of them): their values in the
    /// order of `keys`.
    async fn get_many(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>>;
    /// Reads up to `limit` pairs of `[start, end)` in key order.
    async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Marks the start of a statement (a restarted statement forgets its reads).
    fn statement_start(&mut self);
    /// Locks keys the statement will write; true when the statement must run again because the
    /// transaction's read timestamp moved forward.
    async fn lock_keys(&mut self, keys: Vec<Vec<u8>>) -> KvResult<bool>;
    /// Changes the isolation level before the first read or write; false when too late.
    fn set_isolation(&mut self, isolation: IsolationLevel) -> bool;
    /// Sets how long locking statements wait behind other transactions' locks (None: the
    /// node's default; zero: without limit).
    fn set_lock_timeout(&mut self, _timeout: Option<std::time::Duration>) {}
    /// Buffers a write.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()>;
    /// Buffers a write of a key that must hold no value (`txn::Error::Duplicate` otherwise,
    /// from this call or, when the transaction defers its checks, from the commit).
    async fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()>;
    /// Buffers a delete.
    fn delete(&mut self, key: Vec<u8>) -> KvResult<()>;
    /// The state to roll back to: the buffered writes and the locks held now.
    fn savepoint(&self) -> Savepoint;
    /// Undoes the writes buffered since `savepoint` and releases the locks taken since; reads
    /// made since stay in the read set.
    async fn rollback_to(&mut self, savepoint: &Savepoint) -> KvResult<()>;
    /// Commits.
    async fn commit(self: Box<Self>) -> KvResult<()>;
    /// Rolls back.
    async fn rollback(self: Box<Self>) -> KvResult<()>;
    /// The session's sequence state, when the statement runs in a session.
    fn sequences(&self) -> Option<&crate::exec::sequence::SessionSequences> {
        None
    }
}

#[async_trait]
impl Store for txn::Db {
    async fn begin(&self, opts: TxnOptions) -> KvResult<Box<dyn KvTxn>> {
        Ok(Box::new(txn::Db::begin(self, opts).await?))
    }
    async fn now(&self) -> KvResult<txn::Timestamp> {
        txn::Db::now(self).await
    }
    async fn split_at(&self, key: &[u8]) -> KvResult<u64> {
        Ok(txn::Db::split_at(self, key).await?.1)
    }
    async fn nodes(&self) -> KvResult<Vec<txn::cluster::show::NodeRow>> {
        txn::cluster::show::nodes(self).await
    }
    async fn ranges(&self) -> KvResult<Vec<txn::cluster::show::RangeRow>> {
        txn::cluster::show::ranges(self).await
    }
}

#[async_trait]
impl KvTxn for txn::Transaction {
    fn isolation(&self) -> IsolationLevel {
        txn::Transaction::isolation(self)
    }
    fn read_ts(&self) -> txn::Timestamp {
        txn::Transaction::read_ts(self)
    }
    fn set_isolation(&mut self, isolation: IsolationLevel) -> bool {
        txn::Transaction::set_isolation(self, isolation)
    }
    fn set_lock_timeout(&mut self, timeout: Option<std::time::Duration>) {
        txn::Transaction::set_lock_timeout(self, timeout)
    }
    fn statement_start(&mut self) {
        txn::Transaction::statement_start(self)
    }
    async fn lock_keys(&mut self, keys: Vec<Vec<u8>>) -> KvResult<bool> {
        txn::Transaction::lock_keys(self, keys).await
    }
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        txn::Transaction::get(self, key).await
    }
    async fn get_many(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        txn::Transaction::get_many(self, keys).await
    }
    async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        txn::Transaction::scan(self, start, end, limit).await
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        txn::Transaction::put(self, key, value)
    }
    async fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        txn::Transaction::insert(self, key, value).await
    }
    fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        txn::Transaction::delete(self, key)
    }
    fn savepoint(&self) -> Savepoint {
        Box::new(txn::Transaction::savepoint(self))
    }
    async fn rollback_to(&mut self, savepoint: &Savepoint) -> KvResult<()> {
        let savepoint = savepoint
            .downcast_ref::<txn::Savepoint>()
            .ok_or_else(foreign_savepoint)?;
        txn::Transaction::rollback_to(self, savepoint).await
    }
    async fn commit(self: Box<Self>) -> KvResult<()> {
        txn::Transaction::commit(*self).await
    }
    async fn rollback(self: Box<Self>) -> KvResult<()> {
        txn::Transaction::rollback(*self).await
    }
}

/// Versions of one key: `(commit_ts, value or tombstone)`, oldest first.
type Versions = Vec<(u64, Option<Vec<u8>>)>;

#[derive(Default)]
struct MemoryState {
    /// The last timestamp handed out.
    clock: u64,
    data: BTreeMap<Vec<u8>, Versions>,
}

/// An in-memory MVCC store with snapshot isolation and first-committer-wins. Not durable; for
/// tests only.
#[derive(Clone, Default)]
pub(crate) struct Memory {
    state: Arc<Mutex<MemoryState>>,
}

impl Memory {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock leaves consistent data (every mutation is one insert).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryState {
    /// The next timestamp: TSO-shaped (the wall clock's milliseconds and a counter), so that
    /// AS OF SYSTEM TIME intervals mean what they say.
    fn tick(&mut self) -> u64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.clock = (self.clock + 1).max(txn::oracle::compose(wall, 0));
        self.clock
    }
}

#[async_trait]
impl Store for Memory {
    async fn begin(&self, opts: TxnOptions) -> KvResult<Box<dyn KvTxn>> {
        let mut state = self.lock();
        let now = state.tick();
        let mut opts = opts;
        let start_ts = match opts.as_of {
            Some(ts) if ts > now => {
                return Err(txn::Error::InvalidArgument(format!(
                    "AS OF SYSTEM TIME {ts} is in the future"
                )));
            }
            Some(ts) => {
                opts.read_only = true;
                ts
            }
            None => now,
        };
        Ok(Box::new(MemoryTxn {
            store: self.clone(),
            start_ts,
            opts,
            writes: BTreeMap::new(),
            inserts: BTreeSet::new(),
        }))
    }
    async fn split_at(&self, _key: &[u8]) -> KvResult<u64> {
        Err(txn::Error::InvalidArgument(
            "the in-memory store has no ranges to split".into(),
        ))
    }
    async fn nodes(&self) -> KvResult<Vec<txn::cluster::show::NodeRow>> {
        Err(txn::Error::InvalidArgument(
            "the in-memory store has no nodes".into(),
        ))
    }
    async fn ranges(&self) -> KvResult<Vec<txn::cluster::show::RangeRow>> {
        Err(txn::Error::InvalidArgument(
            "the in-memory store has no ranges".into(),
        ))
    }
    async fn now(&self) -> KvResult<txn::Timestamp> {
        Ok(self.lock().tick())
    }
}

/// A transaction of the [`Memory`] store: reads at `start_ts`, writes buffered until commit.
struct MemoryTxn {
    store: Memory,
    start_ts: u64,
    opts: TxnOptions,
    writes: Writes,
    /// Written keys that must hold no value at `start_ts` (checked at commit).
    inserts: BTreeSet<Vec<u8>>,
}

/// The buffered writes of a [`MemoryTxn`] (None: a delete).
type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

impl MemoryTxn {
    fn visible(versions: &Versions, ts: u64) -> Option<&Vec<u8>> {
        versions
            .iter()
            .rev()
            .find(|(v, _)| *v <= ts)
            .and_then(|(_, value)| value.as_ref())
    }
}

#[async_trait]
impl KvTxn for MemoryTxn {
    fn isolation(&self) -> IsolationLevel {
        self.opts.isolation
    }
    fn read_ts(&self) -> txn::Timestamp {
        self.start_ts
    }
    fn set_isolation(&mut self, isolation: IsolationLevel) -> bool {
        // The in-memory store runs every level as snapshot isolation.
        self.opts.isolation = isolation;
        true
    }
    fn statement_start(&mut self) {}
    /// The in-memory store has no locks: conflicts surface at commit.
    async fn lock_keys(&mut self, _keys: Vec<Vec<u8>>) -> KvResult<bool> {
        Ok(false)
    }
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        if let Some(w) = self.writes.get(key) {
            return Ok(w.clone());
        }
        let state = self.store.lock();
        Ok(state
            .data
            .get(key)
            .and_then(|v| Self::visible(v, self.start_ts))
            .cloned())
    }
    async fn get_many(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }
    async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let range = (
            Bound::Included(start.to_vec()),
            Bound::Excluded(end.to_vec()),
        );
        if start >= end {
            return Ok(Vec::new());
        }
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        {
            let state = self.store.lock();
            for (k, versions) in state.data.range(range.clone()) {
                if let Some(v) = Self::visible(versions, self.start_ts) {
                    merged.insert(k.clone(), Some(v.clone()));
                }
            }
        }
        for (k, w) in self.writes.range(range) {
            merged.insert(k.clone(), w.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .take(limit)
            .collect())
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        if self.opts.read_only {
            return Err(txn::Error::ReadOnly);
        }
        self.writes.insert(key, Some(value));
        Ok(())
    }
    async fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        if self.opts.read_only {
            return Err(txn::Error::ReadOnly);
        }
        match self.writes.get(&key) {
            Some(Some(_)) => return Err(txn::Error::Duplicate { key }),
            Some(None) => {}
            None => {
                if !self.opts.defer_checks && self.get(&key).await?.is_some() {
                    return Err(txn::Error::Duplicate { key });
                }
                self.inserts.insert(key.clone());
            }
        }
        self.writes.insert(key, Some(value));
        Ok(())
    }
    fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        if self.opts.read_only {
            return Err(txn::Error::ReadOnly);
        }
        if self.inserts.remove(&key) {
            self.writes.remove(&key);
        } else {
            self.writes.insert(key, None);
        }
        Ok(())
    }
    fn savepoint(&self) -> Savepoint {
        Box::new((self.writes.clone(), self.inserts.clone()))
    }
    async fn rollback_to(&mut self, savepoint: &Savepoint) -> KvResult<()> {
        (self.writes, self.inserts) = savepoint
            .downcast_ref::<(Writes, BTreeSet<Vec<u8>>)>()
            .ok_or_else(foreign_savepoint)?
            .clone();
        Ok(())
    }
    async fn commit(self: Box<Self>) -> KvResult<()> {
        let mut state = self.store.lock();
        for key in &self.inserts {
            let exists = state
                .data
                .get(key)
                .and_then(|v| Self::visible(v, self.start_ts))
                .is_some();
            if exists {
                return Err(txn::Error::Duplicate { key: key.clone() });
            }
        }
        for key in self.writes.keys() {
            let newer = state
                .data
                .get(key)
                .and_then(|v| v.last())
                .is_some_and(|(ts, _)| *ts > self.start_ts);
            if newer {
                return Err(txn::Error::Serialization(format!(
                    "write conflict on {}",
                    txn::keys::Pretty(key)
                )));
            }
        }
        let commit_ts = state.tick();
        for (key, value) in self.writes {
            state.data.entry(key).or_default().push((commit_ts, value));
        }
        Ok(())
    }
    async fn rollback(self: Box<Self>) -> KvResult<()> {
        Ok(())
    }
}

/// The transaction of statements that read no table: every access is a bug.
pub(crate) struct NoTxn;

#[async_trait]
impl KvTxn for NoTxn {
    fn isolation(&self) -> IsolationLevel {
        IsolationLevel::default()
    }
    fn read_ts(&self) -> txn::Timestamp {
        0
    }
    fn set_isolation(&mut self, _: IsolationLevel) -> bool {
        false
    }
    fn statement_start(&mut self) {}
    async fn lock_keys(&mut self, _: Vec<Vec<u8>>) -> KvResult<bool> {
        Err(no_txn())
    }
    async fn get(&mut self, _: &[u8]) -> KvResult<Option<Vec<u8>>> {
        Err(no_txn())
    }
    async fn get_many(&mut self, _: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        Err(no_txn())
    }
    async fn scan(&mut self, _: &[u8], _: &[u8], _: usize) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        Err(no_txn())
    }
    fn put(&mut self, _: Vec<u8>, _: Vec<u8>) -> KvResult<()> {
        Err(no_txn())
    }
    async fn put_new(&mut self, _: Vec<u8>, _: Vec<u8>) -> KvResult<()> {
        Err(no_txn())
    }
    fn delete(&mut self, _: Vec<u8>) -> KvResult<()> {
        Err(no_txn())
    }
    fn savepoint(&self) -> Savepoint {
        Box::new(())
    }
    async fn rollback_to(&mut self, _: &Savepoint) -> KvResult<()> {
        Ok(())
    }
    async fn commit(self: Box<Self>) -> KvResult<()> {
        Ok(())
    }
    async fn rollback(self: Box<Self>) -> KvResult<()> {
        Ok(())
    }
}

fn no_txn() -> txn::Error {
    txn::Error::Internal("statement without a transaction read the store".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_snapshot_and_first_committer_wins() {
        let store = Memory::default();
        let mut a = store.begin(TxnOptions::default()).await.expect("begin");
        let mut b = store.begin(TxnOptions::default()).await.expect("begin");
        a.put(b"k".to_vec(), b"a".to_vec()).expect("put");
        b.put(b"k".to_vec(), b"b".to_vec()).expect("put");
        assert_eq!(a.get(b"k").await.expect("get"), Some(b"a".to_vec()));
        a.commit().await.expect("commit");
        assert!(matches!(
            b.commit().await,
            Err(txn::Error::Serialization(_))
        ));
        let mut c = store.begin(TxnOptions::default()).await.expect("begin");
        assert_eq!(
            c.scan(b"a", b"z", 10).await.expect("scan"),
            vec![(b"k".to_vec(), b"a".to_vec())]
        );
        c.delete(b"k".to_vec()).expect("delete");
        assert_eq!(c.scan(b"a", b"z", 10).await.expect("scan"), vec![]);
    }
}
