//! placeholder: public surface of the transaction layer (implementation follows).

/// A timestamp from the oracle: `physical_ms << 18 | logical`.
pub type Timestamp = u64;

/// Key helpers of the store (tags, escaping, typed keys), re-exported for the SQL layer.
pub use kv::keys;

/// Isolation level of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Snapshot isolation with first-committer-wins (PostgreSQL's REPEATABLE READ).
    #[default]
    Snapshot,
}

/// Options of a new transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxnOptions {
    /// The isolation level.
    pub isolation: IsolationLevel,
    /// A read-only transaction: writes fail, commit does nothing.
    pub read_only: bool,
}

/// Errors of the transaction layer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// A conflict with another transaction: the transaction was rolled back; retry it (40001).
    #[error("could not serialize access due to concurrent update: {0}; retry the transaction")]
    Serialization(String),
    /// The commit's outcome is unknown (40003).
    #[error("commit outcome unknown: {0}")]
    Ambiguous(String),
    /// A write in a read-only transaction (25006).
    #[error("cannot execute a write in a read-only transaction")]
    ReadOnly,
    /// A storage, replication or internal failure.
    #[error("{0}")]
    Internal(String),
}

/// Result type of the transaction layer.
pub type Result<T> = std::result::Result<T, Error>;

/// A handle on a node's transactional store; cheap to clone.
#[derive(Clone)]
pub struct Db {}

impl Db {
    /// Begins a transaction (takes its start timestamp from the oracle).
    pub async fn begin(&self, _opts: TxnOptions) -> Result<Transaction> {
        todo!()
    }
}

/// A transaction: reads at `start_ts`, buffered writes, two-phase commit at `commit`.
pub struct Transaction {}

impl Transaction {
    /// The transaction's start (read) timestamp.
    pub fn start_ts(&self) -> Timestamp {
        todo!()
    }

    /// The transaction's isolation level.
    pub fn isolation(&self) -> IsolationLevel {
        todo!()
    }

    /// Reads a key (the transaction's own writes first).
    pub async fn get(&mut self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        todo!()
    }

    /// Reads up to `limit` pairs of `[start, end)` in key order, own writes merged in. To read
    /// on, call again with `start` = `keys::next_key(last key returned)`.
    pub async fn scan(
        &mut self,
        _start: &[u8],
        _end: &[u8],
        _limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        todo!()
    }

    /// Buffers a write.
    pub fn put(&mut self, _key: Vec<u8>, _value: Vec<u8>) -> Result<()> {
        todo!()
    }

    /// Buffers a delete.
    pub fn delete(&mut self, _key: Vec<u8>) -> Result<()> {
        todo!()
    }

    /// Commits: prewrite every write, take commit_ts, commit the primary then the rest.
    pub async fn commit(self) -> Result<()> {
        todo!()
    }

    /// Rolls back (releases whatever was written).
    pub async fn rollback(self) -> Result<()> {
        todo!()
    }
}
