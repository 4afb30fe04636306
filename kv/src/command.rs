//! The commands a range's Raft group replicates, and their responses.
//!
//! Commands are evaluated at apply time, in log order, on every replica: whatever "now" a command
//! needs (a lock's expiry, the time a status check compares it with) travels inside it. They are
//! stored in the Raft log in an explicit, versioned binary form ([`Command::encode`]); their serde
//! implementation carries exactly those bytes.

use std::fmt;
use std::io;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{Reader, Writer, corrupt};
use crate::mvcc::{KeyError, Mutation, Op, Timestamp, TxnStatus};
use crate::range::RangeDescriptor;

const COMMAND_V1: u8 = 1;

/// A replicated command of a range.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Command {
    /// Does nothing (used to confirm leadership and to apply a leader's blank entry).
    #[default]
    Noop,
    /// Locks every mutation's key for the transaction `start_ts`, or nothing; a version
    /// committed after `read_ts` on a key not already locked refuses it.
    Prewrite {
        start_ts: Timestamp,
        read_ts: Timestamp,
        primary: Vec<u8>,
        expiry_ms: u64,
        mutations: Vec<Mutation>,
    },
    /// Takes pessimistic (`Lock`-kind) locks on `keys` for the transaction `start_ts`, or none;
    /// reports the newest commit after `read_ts` on them.
    PessimisticLock {
        start_ts: Timestamp,
        read_ts: Timestamp,
        primary: Vec<u8>,
        expiry_ms: u64,
        keys: Vec<Vec<u8>>,
    },
    /// Removes the transaction's pessimistic (`Lock`-kind) locks on `keys`, leaving no record
    /// (ROLLBACK TO SAVEPOINT; the transaction goes on).
    ReleaseLocks {
        start_ts: Timestamp,
        keys: Vec<Vec<u8>>,
    },
    /// Pushes the expiry of the transaction's primary lock forward.
    Heartbeat {
        primary: Vec<u8>,
        start_ts: Timestamp,
        expiry_ms: u64,
    },
    /// Commits the transaction's locks on `keys` at `commit_ts`.
    Commit {
        start_ts: Timestamp,
        commit_ts: Timestamp,
        keys: Vec<Vec<u8>>,
    },
    /// Commits a transaction whose writes and reads all lie in this range in one step, at
    /// `commit_ts` taken while the leader latched the write keys (see `Mvcc::one_phase_commit`).
    /// `reads` is empty unless the transaction is SERIALIZABLE.
    OnePhaseCommit {
        start_ts: Timestamp,
        read_ts: Timestamp,
        commit_ts: Timestamp,
        primary: Vec<u8>,
        mutations: Vec<Mutation>,
        reads: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Commits a split transaction's primary: the parent range's range-local descriptor key. If
    /// the commit happens here, the split trigger applies in the same batch.
    CommitSplit {
        start_ts: Timestamp,
        commit_ts: Timestamp,
        key: Vec<u8>,
        trigger: SplitTrigger,
    },
    /// Rolls the transaction back on `keys`, leaving rollback records.
    Rollback {
        start_ts: Timestamp,
        keys: Vec<Vec<u8>>,
    },
    /// Reads (and with `rollback_if_expired`, decides) the outcome recorded on a primary key.
    CheckTxnStatus {
        primary: Vec<u8>,
        start_ts: Timestamp,
        now_ms: u64,
        rollback_if_expired: bool,
    },
    /// Garbage-collects versions below `safe_point` and raises the range's GC threshold to it;
    /// reads below the threshold fail from then on.
    Gc { safe_point: Timestamp },
    /// Persists the timestamp oracle's upper bound (range 1 only).
    SetTsoBound { bound: Timestamp },
    /// Recounts the range's MVCC statistics from its data at this log position, replacing
    /// estimates (the halves of a split start with estimates).
    RecomputeStats,
    /// The range's descriptor after a change of its replicas. Carried by the Raft membership
    /// entry that makes the change (never proposed alone), so the descriptor's replica list and
    /// the membership change at the same log index. The span must be the range's own.
    ChangeReplicas { desc: RangeDescriptor },
}

impl Command {
    /// The keys the command touches, for routing and the range bounds check.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Noop
            | Command::SetTsoBound { .. }
            | Command::Gc { .. }
            | Command::RecomputeStats
            | Command::ChangeReplicas { .. } => Vec::new(),
            Command::Prewrite { mutations, .. } | Command::OnePhaseCommit { mutations, .. } => {
                mutations.iter().map(|m| m.key.as_slice()).collect()
            }
            Command::Commit { keys, .. }
            | Command::Rollback { keys, .. }
            | Command::PessimisticLock { keys, .. }
            | Command::ReleaseLocks { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            Command::CommitSplit { key, .. } => vec![key.as_slice()],
            Command::CheckTxnStatus { primary, .. } | Command::Heartbeat { primary, .. } => {
                vec![primary.as_slice()]
            }
        }
    }

    /// Whether applying the command may remove locks on its keys (waiters are then woken).
    pub fn may_release_locks(&self) -> bool {
        matches!(
            self,
            Command::Commit { .. }
                | Command::CommitSplit { .. }
                | Command::OnePhaseCommit { .. }
                | Command::Rollback { .. }
                | Command::ReleaseLocks { .. }
                | Command::CheckTxnStatus { .. }
        )
    }

    /// Encodes the command: a version byte, a tag byte, then the fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::versioned(COMMAND_V1);
        let keys = |w: &mut Writer, keys: &[Vec<u8>]| {
            w.list(keys, |w, k| {
                w.bytes(k);
            });
        };
        match self {
            Command::Noop => {
                w.u8(0);
            }
            Command::Prewrite {
                start_ts,
                read_ts,
                primary,
                expiry_ms,
                mutations,
            } => {
                w.u8(1)
                    .u64(*start_ts)
                    .u64(*read_ts)
                    .bytes(primary)
                    .u64(*expiry_ms);
                write_mutations(&mut w, mutations);
            }
            Command::OnePhaseCommit {
                start_ts,
                read_ts,
                commit_ts,
                primary,
                mutations,
                reads,
            } => {
                w.u8(11)
                    .u64(*start_ts)
                    .u64(*read_ts)
                    .u64(*commit_ts)
                    .bytes(primary);
                write_mutations(&mut w, mutations);
                w.list(reads, |w, (start, end)| {
                    w.bytes(start).bytes(end);
                });
            }
            Command::Commit {
                start_ts,
                commit_ts,
                keys: ks,
            } => {
                w.u8(2).u64(*start_ts).u64(*commit_ts);
                keys(&mut w, ks);
            }
            Command::Rollback { start_ts, keys: ks } => {
                w.u8(3).u64(*start_ts);
                keys(&mut w, ks);
            }
            Command::CheckTxnStatus {
                primary,
                start_ts,
                now_ms,
                rollback_if_expired,
            } => {
                w.u8(4)
                    .bytes(primary)
                    .u64(*start_ts)
                    .u64(*now_ms)
                    .bool(*rollback_if_expired);
            }
            Command::PessimisticLock {
                start_ts,
                read_ts,
                primary,
                expiry_ms,
                keys: ks,
            } => {
                w.u8(6)
                    .u64(*start_ts)
                    .u64(*read_ts)
                    .bytes(primary)
                    .u64(*expiry_ms);
                keys(&mut w, ks);
            }
            Command::CommitSplit {
                start_ts,
                commit_ts,
                key,
                trigger,
            } => {
                w.u8(9).u64(*start_ts).u64(*commit_ts).bytes(key);
                w.bytes(&trigger.left.encode())
                    .bytes(&trigger.right.encode());
            }
            Command::ReleaseLocks { start_ts, keys: ks } => {
                w.u8(8).u64(*start_ts);
                keys(&mut w, ks);
            }
            Command::Heartbeat {
                primary,
                start_ts,
                expiry_ms,
            } => {
                w.u8(7).bytes(primary).u64(*start_ts).u64(*expiry_ms);
            }
            Command::Gc { safe_point } => {
                w.u8(10).u64(*safe_point);
            }
            Command::SetTsoBound { bound } => {
                w.u8(5).u64(*bound);
            }
            Command::ChangeReplicas { desc } => {
                w.u8(13).bytes(&desc.encode());
            }
            Command::RecomputeStats => {
                w.u8(12);
            }
        }
        w.finish()
    }

    /// Decodes a command written by [`Command::encode`].
    pub fn decode(buf: &[u8]) -> io::Result<Command> {
        let mut r = Reader::versioned(buf, COMMAND_V1, "command")?;
        let cmd = match r.u8()? {
            0 => Command::Noop,
            1 => Command::Prewrite {
                start_ts: r.u64()?,
                read_ts: r.u64()?,
                primary: r.bytes()?,
                expiry_ms: r.u64()?,
                mutations: read_mutations(&mut r)?,
            },
            11 => Command::OnePhaseCommit {
                start_ts: r.u64()?,
                read_ts: r.u64()?,
                commit_ts: r.u64()?,
                primary: r.bytes()?,
                mutations: read_mutations(&mut r)?,
                reads: r.list(|r| Ok((r.bytes()?, r.bytes()?)))?,
            },
            2 => Command::Commit {
                start_ts: r.u64()?,
                commit_ts: r.u64()?,
                keys: r.list(|r| r.bytes())?,
            },
            3 => Command::Rollback {
                start_ts: r.u64()?,
                keys: r.list(|r| r.bytes())?,
            },
            4 => Command::CheckTxnStatus {
                primary: r.bytes()?,
                start_ts: r.u64()?,
                now_ms: r.u64()?,
                rollback_if_expired: r.bool()?,
            },
            5 => Command::SetTsoBound { bound: r.u64()? },
            12 => Command::RecomputeStats,
            13 => Command::ChangeReplicas {
                desc: RangeDescriptor::decode(&r.bytes()?)?,
            },
            10 => Command::Gc {
                safe_point: r.u64()?,
            },
            6 => Command::PessimisticLock {
                start_ts: r.u64()?,
                read_ts: r.u64()?,
                primary: r.bytes()?,
                expiry_ms: r.u64()?,
                keys: r.list(|r| r.bytes())?,
            },
            9 => Command::CommitSplit {
                start_ts: r.u64()?,
                commit_ts: r.u64()?,
                key: r.bytes()?,
                trigger: SplitTrigger {
                    left: RangeDescriptor::decode(&r.bytes()?)?,
                    right: RangeDescriptor::decode(&r.bytes()?)?,
                },
            },
            8 => Command::ReleaseLocks {
                start_ts: r.u64()?,
                keys: r.list(|r| r.bytes())?,
            },
            7 => Command::Heartbeat {
                primary: r.bytes()?,
                start_ts: r.u64()?,
                expiry_ms: r.u64()?,
            },
            _ => return Err(corrupt("command tag")),
        };
        r.end("command")?;
        Ok(cmd)
    }
}

fn write_mutations(w: &mut Writer, mutations: &[Mutation]) {
    w.list(mutations, |w, m| {
        w.bytes(&m.key);
        match &m.op {
            Op::Put(v) => w.u8(1).bytes(v),
            Op::Delete => w.u8(2),
            Op::Lock => w.u8(3),
            Op::Insert(v) => w.u8(4).bytes(v),
        };
    });
}

fn read_mutations(r: &mut Reader<'_>) -> io::Result<Vec<Mutation>> {
    r.list(|r| {
        let key = r.bytes()?;
        let op = match r.u8()? {
            1 => Op::Put(r.bytes()?),
            2 => Op::Delete,
            3 => Op::Lock,
            4 => Op::Insert(r.bytes()?),
            _ => return Err(corrupt("mutation")),
        };
        Ok(Mutation { key, op })
    })
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Noop => write!(f, "noop"),
            Command::Prewrite {
                start_ts,
                mutations,
                ..
            } => {
                write!(f, "prewrite txn {start_ts} ({} keys)", mutations.len())
            }
            Command::OnePhaseCommit {
                start_ts,
                commit_ts,
                mutations,
                ..
            } => write!(
                f,
                "one-phase commit txn {start_ts} at {commit_ts} ({} keys)",
                mutations.len()
            ),
            Command::Commit {
                start_ts,
                commit_ts,
                keys,
            } => {
                write!(
                    f,
                    "commit txn {start_ts} at {commit_ts} ({} keys)",
                    keys.len()
                )
            }
            Command::Rollback { start_ts, keys } => {
                write!(f, "rollback txn {start_ts} ({} keys)", keys.len())
            }
            Command::CheckTxnStatus { start_ts, .. } => write!(f, "check txn {start_ts}"),
            Command::PessimisticLock { start_ts, keys, .. } => {
                write!(f, "lock txn {start_ts} ({} keys)", keys.len())
            }
            Command::Heartbeat { start_ts, .. } => write!(f, "heartbeat txn {start_ts}"),
            Command::ReleaseLocks { start_ts, keys } => {
                write!(f, "release txn {start_ts} ({} keys)", keys.len())
            }
            Command::CommitSplit {
                start_ts,
                commit_ts,
                trigger,
                ..
            } => write!(
                f,
                "commit split txn {start_ts} at {commit_ts}: r{} | r{}",
                trigger.left.range_id, trigger.right.range_id
            ),
            Command::SetTsoBound { bound } => write!(f, "set tso bound {bound}"),
            Command::Gc { safe_point } => write!(f, "gc below {safe_point}"),
            Command::RecomputeStats => write!(f, "recompute statistics"),
            Command::ChangeReplicas { desc } => write!(f, "change replicas: {desc}"),
        }
    }
}

/// The log and append-entries messages carry [`Command::encode`]'s bytes.
impl raft::Command for Command {
    fn encode(&self) -> Vec<u8> {
        Command::encode(self)
    }

    fn decode(bytes: &[u8]) -> io::Result<Self> {
        Command::decode(bytes)
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde::de::Deserialize::deserialize(d)?;
        Command::decode(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A split: the parent keeps the left-hand side, a new range takes the right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitTrigger {
    pub left: RangeDescriptor,
    pub right: RangeDescriptor,
}

/// The outcome of applying a command.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Response {
    /// Applied (or nothing to apply).
    #[default]
    Done,
    /// Applied; these keys could not be acted on (empty: all succeeded).
    KeyErrors(Vec<KeyError>),
    /// The transaction status read from a primary.
    TxnStatus(TxnStatus),
    /// Pessimistic locks taken; the newest commit after the read timestamp on their keys.
    Locked { newer: Option<Timestamp> },
    /// A key was outside the range when the command applied; the current descriptor is attached.
    RangeKeyMismatch(RangeDescriptor),
    /// A write of a transaction that started below the range's GC threshold was refused: the
    /// versions it read, and the records that would decide its locks, may be collected.
    BelowGcThreshold { ts: Timestamp, threshold: Timestamp },
    /// A split's commit was refused at its commit point (the parent's membership is changing);
    /// its primary was rolled back.
    SplitRefused { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let cmds = [
            Command::Noop,
            Command::ChangeReplicas {
                desc: RangeDescriptor {
                    range_id: 4,
                    start: b"a".to_vec(),
                    end: b"z".to_vec(),
                    replicas: vec![1, 2, 3],
                    generation: 5,
                },
            },
            Command::PessimisticLock {
                start_ts: 7,
                read_ts: 8,
                primary: b"p".to_vec(),
                expiry_ms: 9,
                keys: vec![b"a".to_vec(), b"b".to_vec()],
            },
            Command::CommitSplit {
                start_ts: 1,
                commit_ts: 2,
                key: b"l".to_vec(),
                trigger: SplitTrigger {
                    left: RangeDescriptor {
                        range_id: 2,
                        start: vec![3],
                        end: vec![3, 5],
                        replicas: vec![1],
                        generation: 1,
                    },
                    right: RangeDescriptor {
                        range_id: 3,
                        start: vec![3, 5],
                        end: vec![0xFF],
                        replicas: vec![1],
                        generation: 1,
                    },
                },
            },
            Command::ReleaseLocks {
                start_ts: 7,
                keys: vec![b"k".to_vec()],
            },
            Command::Heartbeat {
                primary: b"p".to_vec(),
                start_ts: 7,
                expiry_ms: 10,
            },
            Command::Prewrite {
                start_ts: 7,
                read_ts: 7,
                primary: b"p".to_vec(),
                expiry_ms: 99,
                mutations: vec![
                    Mutation {
                        key: b"a\0".to_vec(),
                        op: Op::Put(b"v".to_vec()),
                    },
                    Mutation {
                        key: b"b".to_vec(),
                        op: Op::Delete,
                    },
                    Mutation {
                        key: b"c".to_vec(),
                        op: Op::Lock,
                    },
                ],
            },
            Command::Commit {
                start_ts: 1,
                commit_ts: 2,
                keys: vec![b"k".to_vec()],
            },
            Command::Rollback {
                start_ts: 1,
                keys: vec![],
            },
            Command::CheckTxnStatus {
                primary: b"p".to_vec(),
                start_ts: 3,
                now_ms: 4,
                rollback_if_expired: true,
            },
            Command::SetTsoBound { bound: 1 << 40 },
            Command::Gc { safe_point: 77 },
            Command::RecomputeStats,
            Command::OnePhaseCommit {
                start_ts: 7,
                read_ts: 8,
                commit_ts: 9,
                primary: b"a".to_vec(),
                mutations: vec![
                    Mutation {
                        key: b"a".to_vec(),
                        op: Op::Put(b"v".to_vec()),
                    },
                    Mutation {
                        key: b"c".to_vec(),
                        op: Op::Lock,
                    },
                ],
                reads: vec![(b"a".to_vec(), b"b".to_vec())],
            },
        ];
        for cmd in cmds {
            assert_eq!(Command::decode(&cmd.encode()).unwrap(), cmd);
            let json = serde_json::to_vec(&cmd).unwrap();
            assert_eq!(serde_json::from_slice::<Command>(&json).unwrap(), cmd);
        }
        assert!(
            Command::decode(&[2, 0]).is_err(),
            "unknown version is refused"
        );
        assert!(
            Command::decode(&[1, 1, 0]).is_err(),
            "truncated input is refused"
        );
    }
}
