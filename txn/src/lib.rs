//! # txn: timestamps and transactions
//!
//! This layer gives the SQL layer atomic, durable transactions over the range-sharded store.
//! The [`oracle`] hands out strictly increasing timestamps from the leader of range 1. A
//! [`Transaction`] reads at its read timestamp (its `start_ts`, moved forward only by a locking
//! statement's refresh, see `locking`) from consistent snapshots, buffers its writes, validates
//! its reads at commit under SERIALIZABLE, and commits. A transaction whose writes and reads all
//! lie in one range commits in one phase: one command, under the range leader's latches, inside kv.
//! Others use Percolator-style two-phase commit: prewrite locks every key (one of them is the
//! primary), `commit_ts` comes from the oracle, the primary's commit is the commit point and is
//! acknowledged, and the other keys are committed in the background. Whoever meets a lock resolves it through the primary's recorded
//! outcome: committed locks are rolled forward, rolled-back ones removed, and only a primary
//! whose TTL has expired may be rolled back by someone else. After a restart nothing special
//! happens: locks of a dead coordinator expire and are resolved by the first transaction that
//! meets them.
//!
//! ## Invariants
//!
//! - Every commit_ts is greater than the transaction's start_ts and than every timestamp issued
//!   before it was requested (the oracle's persisted bound and leadership check).
//! - Commands are idempotent and evidence-based (kv's MVCC layer): a delayed prewrite after a
//!   rollback is refused, a commit of the primary succeeds only while its lock is there.
//! - A lost commit reply is resolved by reading the primary's outcome; when it cannot be read
//!   the error is `Ambiguous` (40003), never a serialization failure. Once an attempt of a
//!   one-phase commit is unknown, the coordinator never falls back to two phases: a later
//!   attempt or the transaction's own record decides, or the error is `Ambiguous`.
//! - GC resolves every lock below the safe point, in every range, before it collects any range:
//!   the commit record on a primary is collected only once no lock of its transaction remains.
//!
//! ## Caveats
//!
//! - SERIALIZABLE (the default) validates the read set at commit; SNAPSHOT keeps only
//!   first-committer-wins. Locking statements wait in per-key queues
//!   ([`kv::Client::lock_wait`]);
//!   the deadlock detector's cluster-wide graph lives at range 1's leader (`deadlock`), so a
//!   cycle is missed while that leadership moves (the lock wait timeout ends it then).
//! - Prewrites of different ranges are sent one after another.
//! - Ranges are reached only through `kv::Client`, by request values (`kv::request`); one-phase
//!   commit is such a request, run on the leader. `txn` imports from kv only its client
//!   ([`kv::Client`], the node handle [`kv::Node`]), request and reply values (`kv::Request`,
//!   `kv::Command`, their results), key and range types, errors and `Timestamp`: replicas, the
//!   store, the engine, latches and wait queues are kv's own (`pub(crate)`; its tests look
//!   inside through kv's `testing` feature). On a node of a cluster the sender is
//!   [`cluster::NodeSender`] (to the leader's node over gRPC); GC, size-based splits and the
//!   replicate queue run for the ranges this node leads.
//! - A lock waiter on a node with a replica of the lock's range waits in that node's queue
//!   (the release applies there too); one on a node without one waits in the queue of the
//!   range's leader, by a `WaitForRelease` request answered when the release applies there.
//!   Both still re-check the owner every `lock_recheck` (it may die with no release at all).
//! - The replicate queue adds replicas (up to `replication_factor`, by empty replica +
//!   learner + promotion) and moves them off decommissioning nodes and off nodes dead to the
//!   range (silent to its leader's heartbeats for `dead_after`); there is no rebalancing.
//! - An INSERT's key condition ([`Transaction::insert`]) is checked where the write applies;
//!   with [`TxnOptions::defer_checks`] the violation is reported by the commit, otherwise the
//!   key is also read at the call.
//! - GC runs on each range leader; its safe point respects the oldest live transaction of
//!   every node as published in the last 2 minutes (`gc`): a transaction on a node that stopped
//!   publishing, older than the GC TTL, may fail with 55000.

pub mod cluster;
mod db;
mod deadlock;
mod gc;
pub mod kvapi;
mod locking;
mod split;
pub use locking::Savepoint;
pub mod oracle;
mod transaction;

pub use db::{Config, Db};
pub use oracle::Oracle;
pub use transaction::Transaction;

/// A timestamp from the oracle: `physical_ms << 18 | logical`.
pub use kv::Timestamp;

/// Key helpers of the store (tags, escaping, typed keys), re-exported for the SQL layer.
pub use kv::keys;

/// Isolation level of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Snapshot isolation with first-committer-wins (PostgreSQL's REPEATABLE READ): no lost
    /// updates, but write skew is possible.
    Snapshot,
    /// Serializable: snapshot isolation plus validation of every read at commit.
    #[default]
    Serializable,
}

/// Options of a new transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxnOptions {
    /// The isolation level.
    pub isolation: IsolationLevel,
    /// A read-only transaction: writes fail, commit does nothing.
    pub read_only: bool,
    /// Read a consistent snapshot at this past timestamp (AS OF SYSTEM TIME); implies read-only.
    pub as_of: Option<Timestamp>,
    /// Locking statements take no locks: a key changed since it was read fails the commit with
    /// a serialization failure instead (first-committer-wins, and validation under
    /// SERIALIZABLE). For an implicit single-statement transaction, whose locks would be
    /// released at once, this saves a replicated command per statement; its retry after a
    /// conflict should lock (queueing behind other writers rather than racing them again).
    pub optimistic: bool,
    /// Conditional writes ([`Transaction::insert`]) are checked only where they apply: a
    /// violation fails the commit with [`Error::Duplicate`] instead of the write's call. For a
    /// transaction that commits right after its one statement this saves a read per inserted
    /// key, and reports the same error at the same point of the statement.
    pub defer_checks: bool,
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
    /// A conditional write found its key holding a value (23505); the transaction is over if
    /// this came from the commit.
    #[error("duplicate key {}", kv::keys::Pretty(key))]
    Duplicate { key: Vec<u8> },
    /// A write in a read-only transaction (25006).
    #[error("cannot execute a write in a read-only transaction")]
    ReadOnly,
    /// A request the transaction layer refuses (e.g. a snapshot timestamp in the future).
    #[error("{0}")]
    InvalidArgument(String),
    /// A read below the GC threshold: the versions it needs were garbage-collected (55000).
    #[error("{0}")]
    BelowGcThreshold(String),
    /// A lock wait would deadlock; this transaction was chosen as the victim (40P01).
    #[error("deadlock detected: {0}; retry the transaction")]
    Deadlock(String),
    /// A lock wait exceeded the lock wait timeout (55P03).
    #[error("lock wait timeout: {0}")]
    LockTimeout(String),
    /// The node's disk is full (53100); the message says what to do.
    #[error("{0}")]
    DiskFull(String),
    /// Storage I/O failed (58030); the message says what to do.
    #[error("{0}")]
    Storage(String),
    /// A range could not be reached (no leader, no quorum, its nodes down or cut off) or an
    /// operation short of the commit point had an unknown outcome: the transaction did not
    /// commit and may be retried (40001).
    #[error("range unavailable: {0}; the transaction did not commit, retry it")]
    Unavailable(String),
    /// A replication or internal failure.
    #[error("{0}")]
    Internal(String),
}

/// Result type of the transaction layer.
pub type Result<T> = std::result::Result<T, Error>;
