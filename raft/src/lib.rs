//! Raft replication for TinkerDB: generic glue over openraft that knows nothing of kv.
//!
//! Every range is one Raft group. A node hosts many groups; each is a [`Group`] over a
//! [`StateMachine`] that the kv layer implements. This crate provides the rest:
//!
//! - **Log storage** ([`LogStore`]): one fjall keyspace, `raft`, holds the log, vote, committed
//!   and purged log ids of every group on the node, keyed by group id. Entries are stored in an
//!   explicit, versioned binary envelope around the command's own binary encoding
//!   ([`Command::encode`]); a format marker ([`LOG_FORMAT`]) makes an older log refused at open
//!   rather than misread. Appends are group-committed: a node-wide syncer thread
//!   fsyncs (`SyncData`) the journal once for every append of any group that arrived meanwhile,
//!   and only then tells openraft they are done; votes are fsynced before `save_vote` returns.
//!   So an acknowledged write is durable on a quorum.
//! - **State machine glue**: openraft's asynchronous state machine API is adapted to the plain,
//!   synchronous [`StateMachine`] trait. Every applied entry comes with its [`AppliedState`]
//!   (applied log id and membership), which the state machine writes in the same atomic batch as
//!   the entry's effects, so the applied index never disagrees with the data.
//! - **Membership changes** ([`Group::change_membership`], [`Group::remove_learners`],
//!   [`Group::add_learner`]): a membership entry may carry a command, which the state machine
//!   applies at that entry with the entry's membership as its applied state. A voter change
//!   writes a joint entry and then a uniform one (only the latter when the new voters already
//!   are a voter set in force), each with its own command, so whatever the commands record
//!   (kv's range descriptor) changes in the same entries as the membership. A
//!   change can be made conditional on the membership in force ([`MembershipId`], read with
//!   [`Group::membership`]): a stale one fails with [`Error::MembershipChanged`] and writes
//!   nothing, which serialises concurrent changes.
//! - **Snapshots**: openraft's log compaction "snapshot" is a metadata checkpoint: the state
//!   machine is persisted (fsync) and openraft may purge the log up to what it has applied. No
//!   data is copied. Only when a follower needs a snapshot is one built, fresh, from the state
//!   machine's data and applied state read at one point: the state machine fixes that point
//!   (a fjall snapshot) under its lock, and the replication task sending the snapshot reads
//!   the data from it on a blocking thread, while entries go on applying.
//! - **Quiescence** (`quiesce`, [`Options::quiesce_after`]): a leader idle for a few seconds
//!   whose followers hold its whole log asks them to stop their Raft timers, then stops its
//!   own; any request or message wakes the group, and a node-wide monitor pings the peers of
//!   quiesced groups and wakes the groups of a peer that stops answering, so that followers
//!   still elect a new leader when theirs dies and a leader still reports a dead follower.
//! - **Transport seam** ([`Transport`], [`Message`], [`Registry`]): Raft RPCs are messages
//!   addressed to (node, group), with explicit, versioned binary bodies and a byte form of
//!   their own ([`Message::to_bytes`]). [`LocalTransport`] delivers them in process, through
//!   that byte form; [`GrpcTransport`] carries them between processes on one bidirectional
//!   gRPC stream per node pair, and [`RaftService`] hands them to the receiver's
//!   [`Registry`] after checking the cluster id and the target node ([`grpc`]).
//!
//! openraft stays behind this crate's own types: no openraft type is public, so moving to
//! another openraft alpha touches only this crate.
//!
//! # Invariants
//!
//! - An append or vote is durable before openraft is told so (`SyncData`).
//! - The state machine is persisted (`SyncAll`, through [`StateMachine::persist`]) before any
//!   log entry is purged and before a checkpoint is reported: the durably applied index never
//!   falls behind the purged log, so a restart can always re-apply from the log.
//! - `get_current_snapshot` never reports "no snapshot" while the log is purged: during start-up
//!   it reports a checkpoint of the durable applied state, afterwards a fresh data snapshot.
//! - A checkpoint is never sent to a follower or installed; a data snapshot is installed
//!   atomically by the state machine and persisted before openraft purges behind it.
//! - Messages for a group not running on a node are refused; groups are never created on
//!   demand (an empty replica would need a full snapshot and could disturb the group).
//! - A membership entry's command is applied with that entry's membership in the entry's
//!   [`AppliedState`], in the same batch: the command's effects and the membership it was
//!   written with are never applied apart.
//! - A restarted leader must win an election again (`enable_leader_restore = false`), because
//!   applies are not fsynced one by one.
//! - Reads use ReadIndex, never leases: openraft 0.10.0-alpha.37 forgets the vote lease on
//!   restart.
//!
//! # Caveats
//!
//! - Heartbeats are per group, not batched per node pair. Idle groups quiesce instead
//!   (`quiesce`): a quiesced group sends nothing and wakes no timer; each node pings the
//!   peers of its quiesced groups once per heartbeat interval to notice a dead member. A
//!   follower that misses the wake-up (a peer slow to answer pings) holds an unneeded
//!   election at worst.
//! - A follower's snapshot travels in pieces of [`Options::snapshot_chunk_bytes`], one
//!   message each, but is still whole in memory on both sides: read into memory before it
//!   is sent, joined in memory on the receiver and installed in one fjall batch.
//! - A log in an older format is refused at open, not upgraded.
//! - Storage calls other than the appends' fsync (fjall writes, vote fsyncs) run on the async
//!   runtime's threads, not on a blocking pool.
//! - Adding a learner carries no command ([`Group::add_learner`], after [`Group::compact`] so
//!   it starts from a snapshot); promoting, demoting and removing members do.
//! - A membership change left half done (a joint membership after a leader change, a timeout,
//!   or a failed uniform step) is not repaired here: the caller sees it in
//!   [`Group::membership`] and finishes or reverts it with another change.
//! - Commands are not size-checked here; the caller rejects commands that are too large.
//! - Unsafe recovery ([`LogStore::remove_dead_members`], offline) appends a membership entry
//!   without the dead nodes after the last entry of a survivor's log; it cannot know what only
//!   the dead nodes held, which is lost.
//! - A proposal that times out is reported as [`Error::Ambiguous`]: it may still commit.

#![warn(missing_docs)]

mod codec;
mod error;
mod faults;
mod group;
pub mod grpc;
mod log_store;
mod membership;
mod options;
mod quiesce;
mod sm;
mod state;
mod transport;
mod types;
mod wire;

use std::fmt::{Debug, Display};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::Error;
pub use faults::Faults;
pub use group::{Group, Status};
pub use grpc::{GrpcOptions, GrpcTransport, RaftService};
pub use log_store::{ForcedMembership, KEYSPACE, LOG_FORMAT, LogStore};
pub use membership::{MembershipChange, MembershipId, MembershipStatus};
pub use options::Options;
pub use state::{AppliedState, Entry, SPLIT_INITIAL_INDEX, split_initial_state};
pub use transport::{LocalTransport, Message, Registry, Reply, RpcKind, Transport};

/// Id of a node in the cluster. Node id 0 is reserved (see [`split_initial_state`]).
pub type NodeId = u64;

/// Id of a Raft group; equal to the id of the range it replicates.
pub type GroupId = u64;

/// A replicated command. Commands are stored in log entries and sent in append-entries
/// messages in their own binary encoding ([`encode`](Self::encode)), which the implementing
/// crate chooses and versions; this crate wraps it in its own versioned envelope.
///
/// The serde bounds are required by openraft (its `serde` feature is enabled), not used by this
/// crate to store or send commands.
pub trait Command:
    Clone + Debug + Display + Send + Sync + Serialize + DeserializeOwned + 'static
{
    /// The command's stable, versioned binary encoding.
    fn encode(&self) -> Vec<u8>;

    /// Decodes bytes written by [`encode`](Self::encode). Malformed bytes (from a disk or a
    /// peer) are an error, never a panic.
    fn decode(bytes: &[u8]) -> std::io::Result<Self>;
}

/// Builds a snapshot's data from a consistent view taken under the state machine's lock, after
/// the lock is released ([`StateMachine::snapshot`]).
pub type SnapshotBuild = Box<dyn FnOnce() -> std::io::Result<Vec<u8>> + Send + 'static>;

/// A state machine's response to an applied command. Implemented for every type with these
/// bounds.
pub trait Response: Clone + Debug + Send + Sync + Serialize + DeserializeOwned + 'static {}

impl<T> Response for T where T: Clone + Debug + Send + Sync + Serialize + DeserializeOwned + 'static {}

/// The replicated state machine of one group. Plain synchronous code; every method runs with
/// exclusive access to the state machine.
pub trait StateMachine: Send + Sync + 'static {
    /// The commands this state machine applies.
    type Command: Command;
    /// The responses it returns (blank and membership entries return a "none" response too).
    type Response: Response;

    /// The durable applied state, None when nothing was applied yet.
    fn applied_state(&self) -> std::io::Result<Option<AppliedState>>;

    /// Applies one entry: its effects and `entry.state` in ONE atomic fjall batch. Must be
    /// deterministic. An error is an I/O failure and is fatal for the group.
    fn apply(&mut self, entry: Entry<Self::Command>) -> std::io::Result<Self::Response>;

    /// Makes everything applied so far durable (fjall `PersistMode::SyncAll`). Called before the
    /// log is purged and before a checkpoint is reported.
    fn persist(&self) -> std::io::Result<()>;

    /// A snapshot for a follower: the applied state, and a builder of the data, both fixed at
    /// ONE consistent point (e.g. a fjall snapshot taken here). Called with the state machine
    /// locked; the builder runs afterwards on a blocking thread, while applies go on.
    fn snapshot(&self) -> std::io::Result<(AppliedState, SnapshotBuild)>;

    /// Replaces the state with `data` and records `state`, atomically.
    fn install_snapshot(&mut self, state: &AppliedState, data: &[u8]) -> std::io::Result<()>;
}
