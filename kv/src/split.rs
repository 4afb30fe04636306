//! Range splits. A split is a transaction (see `txn`) that rewrites the parent's range-local
//! descriptor key and both directory entries; the split trigger rides on the commit of the
//! parent's descriptor key, the transaction's primary. Every replica of the parent applies it at
//! the same log index, and its apply batch writes the right-hand range's complete initial state:
//! descriptor, statistics (estimates), the Raft applied state and log state of a group that
//! starts at a fixed log position with the parent's voters (no `initialize()`), and the right
//! range's own range-local descriptor copy. Range data is not copied: both ranges read the
//! shared keyspace within their bounds.

use std::io;

use crate::command::SplitTrigger;
use crate::engine::{RANGE_APPLIED, RANGE_DESCRIPTOR, RANGE_STATS, Stats, meta_key};
use crate::keys::range_descriptor_key;
use crate::mvcc::{Record, RecordKind, Timestamp, version_key};
use crate::range::RangeDescriptor;
use crate::replica::RangeStateMachine;

/// What a node's store is told by its state machines.
#[derive(Clone, Debug)]
pub enum StoreEvent {
    /// A split applied: start the right-hand range's replica.
    Split {
        left: RangeDescriptor,
        right: RangeDescriptor,
    },
}

/// Whether `trigger` splits `parent` (the descriptor the replica holds when it applies).
pub fn is_valid(parent: &RangeDescriptor, trigger: &SplitTrigger) -> bool {
    let (l, r) = (&trigger.left, &trigger.right);
    l.range_id == parent.range_id
        && l.start == parent.start
        && l.end == r.start
        && r.end == parent.end
        && parent.start < r.start
        && r.start < parent.end
        && r.range_id != parent.range_id
}

/// Adds the split's effects to the parent's apply batch; returns the left-hand range's new
/// statistics.
pub(crate) fn apply_trigger(
    parent: &RangeStateMachine,
    batch: &mut fjall::OwnedWriteBatch,
    trigger: &SplitTrigger,
    state: &raft::AppliedState,
    start_ts: Timestamp,
    commit_ts: Timestamp,
) -> io::Result<Stats> {
    let (engine, log, parent_stats) = (&parent.engine, &parent.log, &parent.stats);
    let (left, right) = (&trigger.left, &trigger.right);
    let meta = &engine.meta;
    // Statistics are estimates at the split, halved between the two sides.
    let half = Stats {
        version_bytes: parent_stats.version_bytes / 2,
        versions: parent_stats.versions / 2,
        locks: parent_stats.locks / 2,
        estimate: true,
    };
    batch.insert(
        meta,
        meta_key(left.range_id, RANGE_DESCRIPTOR),
        left.encode(),
    );
    batch.insert(
        meta,
        meta_key(right.range_id, RANGE_DESCRIPTOR),
        right.encode(),
    );
    batch.insert(meta, meta_key(right.range_id, RANGE_STATS), half.encode());
    // Voters only: a learner of the parent (refused at the commit point anyway, see
    // `RangeStateMachine::eval`) never becomes a voter of the right half.
    let initial = raft::split_initial_state(state.voter_nodes());
    batch.insert(
        meta,
        meta_key(right.range_id, RANGE_APPLIED),
        initial.to_bytes(),
    );
    log.write_initial_log_state(batch, right.range_id, &initial);
    let record = Record {
        kind: RecordKind::Put,
        start_ts,
        value: right.encode(),
    };
    batch.insert(
        &engine.data,
        version_key(&range_descriptor_key(&right.start), commit_ts),
        record.encode(),
    );
    Ok(half)
}
