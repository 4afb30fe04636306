//! # kv: storage and distribution
//!
//! This layer turns one ordered keyspace into a transactional, range-sharded store. Keys
//! ([`keys`]) are typed and order-preserving, tagged by space (`local < sys < sql < kv`). Values
//! are MVCC versions on the fjall LSM engine ([`mvcc`]): a version key is the escaped key plus the
//! bit-inverted commit timestamp, so a point read at a timestamp is one seek, and transaction
//! locks live in their own keyspace. The keyspace is split into ranges ([`range`]); each range is
//! one Raft group whose state machine ([`replica`]) applies [`command`]s to the range's span of
//! the node's database. The [`client`] routes each request to its range through the range
//! directory kept in range 1; a request reaches the range's leader as a [`request::Request`]
//! value through a [`request::RangeSender`] (the node's sender, in `txn`, carries it to
//! another node's [`request::LocalSender`] when the leader is there; [`wire`] is its byte
//! form), and leader duties (latches, one-phase commit with its commit timestamp from the
//! node's [`request::TimestampSource`]) run behind that seam. Transactions blocked by a lock
//! wait in per-key queues ([`wait`]) that the apply of releasing commands wakes (on their own
//! node when it has a replica of the range, else on the leader's, by a
//! [`Request::WaitForRelease`]); one-phase commits hold leader [`latch`]es.
//!
//! ## The public surface
//!
//! Layers above see a [`Node`] (opens the store, hands out [`Client`]s and what the process
//! around the node needs: identity, Raft service, health, a view of its replicas), the
//! [`Client`], requests and their replies as values ([`Request`], [`Command`], [`Reply`],
//! [`Response`] and the MVCC values they carry, [`RangeSender`], the byte form of a request),
//! key and range types ([`keys`], [`range`]), [`Error`] and [`Timestamp`]; and, for a stopped
//! node, [`Recovery`] (the operator's unsafe recovery of ranges that lost their quorum). The
//! store, its replicas and their state machine, the engine, MVCC evaluation, latches, wait
//! queues and splits are `pub(crate)`; the `testing` feature opens them (hidden) to tests and
//! benchmarks of kv and the layers above, never to a normal build.
//!
//! ## Invariants
//!
//! - Commands are evaluated at apply time, in log order, deterministically; any "now" they need
//!   travels inside them. One apply writes one atomic fjall batch: its effects, the range's
//!   applied log position and its statistics together, so a crash never leaves half a command.
//! - Every MVCC read uses one fjall snapshot across `data` and `locks`, taken after a ReadIndex
//!   leadership check issued after the request arrived.
//! - A command larger than [`replica::MAX_COMMAND_BYTES`] is refused before it is proposed.
//! - Transactional commands are idempotent and decide from evidence (locks and records of the
//!   transaction's start timestamp), so a retry or a duplicate never changes an outcome.
//! - A conflicting lock is reported as a value ([`mvcc::LockedKey`]); the transaction layer
//!   decides what to do with it.
//! - A one-phase commit writes versions with no locks before them, so its write keys are latched
//!   on the leader ([`latch`]) from before its commit timestamp is taken until it has applied,
//!   and every read, validation and one-phase commit up to a timestamp waits for the latches of
//!   holders that may commit at or below it.
//! - Nothing is read or written below a range's GC threshold: reads check it after their
//!   snapshot is taken (a `Gc` raises it before its batch lands), prewrites, locks and
//!   one-phase commits of older transactions are refused at apply, and a primary with neither
//!   lock nor record below it is never rolled back (its commit record may have been collected).
//! - A proposal whose outcome is unknown is [`Error::Ambiguous`], never retried as if it had
//!   not been made; a one-phase commit's latches stay held until such an entry applies or is
//!   discarded from the log ([`replica::Replica::propose_holding`]).
//! - A split is refused at its commit point while the parent's membership is joint or has
//!   learners, or when its descriptor changed since the split read it (its primary is rolled
//!   back there); the right half gets the parent's voters only.
//! - A range's descriptor replica list and its Raft membership change in the same log entry.
//! - A directory lookup that meets a decided split's lock on a directory entry rolls it forward
//!   or back, so a split whose coordinator died past its commit point is routable at once.
//!
//! ## Caveats
//!
//! - Replica changes are the leader's: [`Store::add_replica`] creates an empty replica on a
//!   node, [`replica::Replica::add_learner`] compacts the log so the learner starts from a
//!   snapshot, and [`replica::Replica::change_replicas`] promotes or removes voters with the
//!   descriptor ([`Command::ChangeReplicas`]) in the same Raft entries as the membership. The
//!   descriptor's copies (range-local key, directory entry) follow in a transaction of the
//!   caller's (`txn::cluster`); a split planned on an older descriptor is refused at its
//!   commit point. Removing a replica from a node (its Raft state and data) is not done yet.
//! - Splits ([`split`]) only; no merges. The halves' statistics are estimates until the
//!   range's leader recounts them (`Command::RecomputeStats`, in the background size check).
//! - A range snapshot is built whole in memory from one fjall snapshot and sent as one message.
//!   Installing it clears the new descriptor's span and what of the old one no other local
//!   replica covers; a snapshot overlapping another local replica is refused as a storage
//!   error, which stops the group (refusing it before the transfer needs a check on receipt).
//! - The bootstrap data is written outside the Raft log: a new replica must start from a
//!   snapshot, which is why adding a learner compacts the log first.
//! - GC ([`mvcc::gc_span`]) runs over a whole range in one command; lock values are kept inline
//!   in the lock.
//! - Statistics count every version written (no live/dead split yet).
//! - A range that lost its quorum for good is recovered only by hand, on a stopped node
//!   ([`Recovery`], `tinkerdb debug unsafe-recover`): the dead nodes leave the membership and
//!   the descriptor in one appended log entry; writes acknowledged only by the dead nodes are
//!   lost. The descriptor's copies catch up afterwards (the replicate queue rewrites copies
//!   older than the applied descriptor).

/// Declares kv's internal modules: `pub(crate)`, or public (hidden from the documentation)
/// with the `testing` feature, which the tests and benchmarks of kv and of the layers above
/// enable to look inside a node (never a normal build: the seam is enforced by the compiler).
macro_rules! internal {
    ($($(#[$meta:meta])* $name:ident;)*) => {
        $(
            $(#[$meta])*
            #[cfg(feature = "testing")]
            #[doc(hidden)]
            pub mod $name;
            $(#[$meta])*
            #[cfg(not(feature = "testing"))]
            pub(crate) mod $name;
        )*
    };
}

pub mod client;
pub mod error;
pub mod keys;
pub mod node;
pub mod range;
pub mod recover;
pub mod request;

mod codec;
internal! {
    command;
    engine;
    history;
    latch;
    mvcc;
    replica;
    split;
    store;
    wait;
    wire;
}

pub use client::{Client, LedRange, LockWait};
pub use command::{Command, Response, SplitTrigger};
pub use error::{Error, Result};
pub use history::{History, RangeInfo, Version};
pub use mvcc::{
    KeyError, Lock, LockKind, LockedKey, Mutation, Op, RecordKind, ScanResult, Timestamp,
    TxnStatus, Validation, physical_ms,
};
pub use node::{Node, ReplicaState};
pub use range::{NodeId, NodeRecord, RangeDescriptor, RangeId};
pub use recover::{RecoveredRange, Recovery};
pub use replica::MAX_COMMAND_BYTES;
pub use request::{LocalSender, RangeSender, Reply, Request, TimestampSource};
pub use store::{Join, Network, StoreOptions};
pub use wire::{decode_reply, decode_request, encode_reply, encode_request};

/// Tests and benchmarks of kv and the layers above, looking inside a node (feature `testing`).
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    use std::sync::Arc;

    /// A client over `store`, sending through its local sender.
    pub fn client(store: Arc<crate::store::Store>) -> crate::Client {
        crate::Client::new(store)
    }
}
