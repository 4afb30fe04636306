//! MVCC on fjall: versioned records in `data`, transaction locks in `locks`.
//!
//! A version lives at `escaped(key) ++ !commit_ts` in `data` (newest first; the key is escaped and
//! terminated so versions of `a` never interleave with key `ab`, even when one key is a byte prefix
//! of another). Its value is a [`Record`]: `Put`, `Delete` (a tombstone), `Rollback` (written at
//! `start_ts` by a rollback, so a delayed prewrite of a rolled-back transaction is refused) or
//! `Lock` (the commit of a primary key the transaction only locked: the evidence of its outcome).
//! Only `Put` and `Delete` are versions of the data; readers skip the other two.
//! `locks` maps a raw key to the [`Lock`] of the transaction that prewrote it.
//!
//! Reads go through one fjall snapshot across both keyspaces. The write side ([`Mvcc::prewrite`],
//! [`Mvcc::commit`], [`Mvcc::rollback`], [`Mvcc::check_txn_status`]) is evaluated at apply time:
//! it reads the current state and adds its effects to the caller's atomic batch. Every command is
//! idempotent and evidence-based: it decides from the records and locks it finds, never from who
//! sent it.

use std::io;

use fjall::{Keyspace, OwnedWriteBatch as WriteBatch, Readable, Snapshot};
use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer, corrupt};
use crate::keys::encode_bytes;

/// A timestamp from the oracle: `physical_ms << 18 | logical`.
pub type Timestamp = u64;

/// The physical part (milliseconds) of a timestamp.
pub fn physical_ms(ts: Timestamp) -> u64 {
    ts >> 18
}

const RECORD_V1: u8 = 1;
const LOCK_V1: u8 = 1;

/// The kind of a committed version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    Put = 1,
    Delete = 2,
    Rollback = 3,
    /// The commit record of a primary key that was locked but not written.
    Lock = 4,
}

impl RecordKind {
    /// Whether the record is a version of the data (`Put` or `Delete`), not bookkeeping.
    pub fn is_version(self) -> bool {
        matches!(self, RecordKind::Put | RecordKind::Delete)
    }
}

/// A version in `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    /// The start timestamp of the transaction that wrote it.
    pub start_ts: Timestamp,
    pub value: Vec<u8>,
}

impl Record {
    /// `[1] [kind u8] [start_ts u64] [value...]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::versioned(RECORD_V1);
        w.u8(self.kind as u8).u64(self.start_ts);
        w.0.extend_from_slice(&self.value);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> io::Result<Record> {
        let (kind, start_ts, value) = Record::view(buf)?;
        Ok(Record {
            kind,
            start_ts,
            value: value.to_vec(),
        })
    }

    /// The kind, start timestamp and value of an encoded record, without copying the value.
    fn view(buf: &[u8]) -> io::Result<(RecordKind, Timestamp, &[u8])> {
        let mut r = Reader::versioned(buf, RECORD_V1, "record")?;
        let kind = match r.u8()? {
            1 => RecordKind::Put,
            2 => RecordKind::Delete,
            3 => RecordKind::Rollback,
            4 => RecordKind::Lock,
            _ => return Err(corrupt("record kind")),
        };
        let start_ts = r.u64()?;
        Ok((kind, start_ts, r.rest()))
    }
}

/// What a lock will do to its key when its transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockKind {
    Put = 1,
    Delete = 2,
    /// Locks the key without changing it (SELECT FOR UPDATE; the pessimistic locks of later work).
    Lock = 3,
}

/// A transaction's lock on a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub start_ts: Timestamp,
    /// The transaction's primary key, whose record is the commit point.
    pub primary: Vec<u8>,
    /// Expiry in TSO-physical milliseconds; past it, the primary may be rolled back.
    pub expiry_ms: u64,
    pub kind: LockKind,
    pub for_update_ts: Timestamp,
    /// The value to write on commit (`Put` only). Kept inline for now.
    pub value: Option<Vec<u8>>,
}

impl Lock {
    /// `[1] [kind u8] [start_ts] [for_update_ts] [expiry_ms] [primary: len u32, bytes] [value: 0 | 1 len bytes]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::versioned(LOCK_V1);
        w.u8(self.kind as u8)
            .u64(self.start_ts)
            .u64(self.for_update_ts)
            .u64(self.expiry_ms)
            .bytes(&self.primary)
            .opt_bytes(self.value.as_deref());
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> io::Result<Lock> {
        let mut r = Reader::versioned(buf, LOCK_V1, "lock")?;
        let kind = match r.u8()? {
            1 => LockKind::Put,
            2 => LockKind::Delete,
            3 => LockKind::Lock,
            _ => return Err(corrupt("lock kind")),
        };
        let lock = Lock {
            kind,
            start_ts: r.u64()?,
            for_update_ts: r.u64()?,
            expiry_ms: r.u64()?,
            primary: r.bytes()?,
            value: r.opt_bytes()?,
        };
        r.end("lock")?;
        Ok(lock)
    }
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put(Vec<u8>),
    /// A put that requires the key to hold no value at the transaction's read timestamp (an
    /// INSERT's primary key): checked where the write applies, refused with
    /// [`KeyError::AlreadyExists`].
    Insert(Vec<u8>),
    Delete,
    Lock,
}

/// A key and the write to make to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    pub key: Vec<u8>,
    pub op: Op,
}

/// The transaction a write command acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMeta<'a> {
    /// The transaction's start timestamp (its identity).
    pub start_ts: Timestamp,
    /// The timestamp its reads were made at; a version committed after it is a conflict.
    pub read_ts: Timestamp,
    /// Its primary key, whose record is the commit point.
    pub primary: &'a [u8],
}

/// How a status check may decide a transaction: roll back a primary lock that expired before
/// `now_ms` (or a primary never prewritten), unless its `start_ts` is below `gc_threshold`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollbackExpired {
    pub now_ms: u64,
    pub gc_threshold: Timestamp,
}

/// Why a transactional command could not act on a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyError {
    /// Another transaction's lock is on the key.
    Locked { key: Vec<u8>, lock: Lock },
    /// A version committed after the transaction started (first-committer-wins).
    WriteConflict {
        key: Vec<u8>,
        conflict_ts: Timestamp,
    },
    /// The transaction was already rolled back on this key.
    RolledBack { key: Vec<u8> },
    /// The transaction already committed on this key.
    Committed { key: Vec<u8>, commit_ts: Timestamp },
    /// Neither the transaction's lock nor a record of it is on the key.
    LockNotFound { key: Vec<u8> },
    /// An [`Op::Insert`] found a value on the key at the transaction's read timestamp.
    AlreadyExists { key: Vec<u8> },
}

/// The recorded outcome of a transaction, as read from its primary key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    Committed {
        commit_ts: Timestamp,
    },
    RolledBack,
    /// The primary lock is present and has not expired (or the caller did not ask to roll back).
    Pending {
        expiry_ms: u64,
    },
    /// No lock and no record: the primary was never prewritten (or not yet).
    Missing,
}

/// A key read at a timestamp that another transaction has locked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedKey {
    pub key: Vec<u8>,
    pub lock: Lock,
}

/// The result of a scan: rows in key order, where to resume, and any locks met.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResult {
    pub rows: Vec<(Vec<u8>, Vec<u8>)>,
    /// Set when the limit stopped the scan: the next key to read from.
    pub resume: Option<Vec<u8>>,
    /// Locks of other transactions on keys the scan examined; when non-empty, `rows` must not be used.
    pub locks: Vec<LockedKey>,
}

/// The outcome of validating a read span (see [`Mvcc::validate`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// A key with a version committed inside the validated interval, and its commit timestamp.
    pub conflict: Option<(Vec<u8>, Timestamp)>,
    /// Locks of other transactions that may commit inside the interval.
    pub locks: Vec<LockedKey>,
}

/// Changes to a range's MVCC statistics made by one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsDelta {
    pub version_bytes: i64,
    pub versions: i64,
    pub locks: i64,
}

/// The `data` key of the version of `key` committed at `ts`.
pub fn version_key(key: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 10);
    encode_bytes(&mut out, key);
    out.extend_from_slice(&(!ts).to_be_bytes());
    out
}

/// Splits a `data` key into the escaped key prefix length and the commit timestamp.
fn split_version_key(raw: &[u8]) -> io::Result<(Vec<u8>, Timestamp)> {
    let (key, rest) = crate::keys::decode_bytes(raw).ok_or_else(|| corrupt("version key"))?;
    let ts: [u8; 8] = rest.try_into().map_err(|_| corrupt("version key"))?;
    Ok((key, !u64::from_be_bytes(ts)))
}

/// A version key's encoded user key (still escaped) and its commit timestamp, borrowed: the
/// versions of one key share the encoded part, so it can be compared without decoding.
fn split_version_key_raw(raw: &[u8]) -> io::Result<(&[u8], Timestamp)> {
    let at = raw
        .len()
        .checked_sub(8)
        .ok_or_else(|| corrupt("version key"))?;
    let (key, ts) = raw.split_at(at);
    let ts: [u8; 8] = ts.try_into().map_err(|_| corrupt("version key"))?;
    Ok((key, !u64::from_be_bytes(ts)))
}

/// The user key of a version key's encoded part ([`split_version_key_raw`]).
fn decode_user_key(encoded: &[u8]) -> io::Result<Vec<u8>> {
    match crate::keys::decode_bytes(encoded) {
        Some((key, [])) => Ok(key),
        _ => Err(corrupt("version key")),
    }
}

/// The `data` span holding every version of every key in `[start, end)`.
fn data_span(start: &[u8], end: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut s, mut e) = (Vec::new(), Vec::new());
    encode_bytes(&mut s, start);
    encode_bytes(&mut e, end);
    (s, e)
}

fn io_err(e: fjall::Error) -> io::Error {
    io::Error::other(e)
}

/// MVCC reads and command evaluation over one consistent fjall snapshot.
pub struct Mvcc<'a> {
    pub snapshot: &'a Snapshot,
    pub data: &'a Keyspace,
    pub locks: &'a Keyspace,
}

impl Mvcc<'_> {
    /// The lock on `key`, if any.
    pub fn lock(&self, key: &[u8]) -> io::Result<Option<Lock>> {
        match self.snapshot.get(self.locks, key).map_err(io_err)? {
            Some(v) => Lock::decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Versions of `key` with commit_ts in `[from_ts, to_ts]`, newest first.
    fn versions(
        &self,
        key: &[u8],
        to_ts: Timestamp,
        from_ts: Timestamp,
    ) -> impl Iterator<Item = io::Result<(Timestamp, Record)>> {
        let range = version_key(key, to_ts)..=version_key(key, from_ts);
        self.snapshot.range(self.data, range).map(|g| {
            let (k, v) = g.into_inner().map_err(io_err)?;
            let (_, ts) = split_version_key(&k)?;
            Ok((ts, Record::decode(&v)?))
        })
    }

    /// The newest `Put` or `Delete` of `key` with commit_ts <= ts (other records skipped).
    pub fn latest(&self, key: &[u8], ts: Timestamp) -> io::Result<Option<(Timestamp, Record)>> {
        for version in self.versions(key, ts, 0) {
            let (commit_ts, record) = version?;
            if record.kind.is_version() {
                return Ok(Some((commit_ts, record)));
            }
        }
        Ok(None)
    }

    /// Reads `key` at `ts`: its value, or the foreign lock that hides it.
    pub fn get(&self, key: &[u8], ts: Timestamp) -> io::Result<Result<Option<Vec<u8>>, LockedKey>> {
        if let Some(lock) = self.lock(key)?
            && lock.start_ts <= ts
            && lock.kind != LockKind::Lock
        {
            return Ok(Err(LockedKey {
                key: key.to_vec(),
                lock,
            }));
        }
        Ok(Ok(self.latest(key, ts)?.and_then(|(_, r)| match r.kind {
            RecordKind::Put => Some(r.value),
            _ => None,
        })))
    }

    /// Reads up to `limit` live rows of `[start, end)` at `ts`, and the locks on keys examined.
    pub fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: usize,
    ) -> io::Result<ScanResult> {
        let (ds, de) = data_span(start, end);
        let mut result = ScanResult::default();
        // The encoded key whose visible version was decided (the versions of a key are
        // adjacent, newest first); only the keys returned are decoded.
        let mut current: Option<Vec<u8>> = None;
        for guard in self.snapshot.range(self.data, ds..de) {
            let (k, v) = guard.into_inner().map_err(io_err)?;
            let (encoded, commit_ts) = split_version_key_raw(&k)?;
            if current.as_deref() == Some(encoded) || commit_ts > ts {
                continue;
            }
            let (kind, _, value) = Record::view(&v)?;
            match kind {
                RecordKind::Rollback | RecordKind::Lock => continue,
                RecordKind::Delete => {}
                RecordKind::Put => {
                    if result.rows.len() == limit {
                        result.resume = Some(decode_user_key(encoded)?);
                        break;
                    }
                    result
                        .rows
                        .push((decode_user_key(encoded)?, value.to_vec()));
                }
            }
            let buf = current.get_or_insert_with(Vec::new);
            buf.clear();
            buf.extend_from_slice(encoded);
        }
        // Locks on keys the scan examined block it: up to the resume key, or the whole span.
        let lock_end = result.resume.clone().unwrap_or_else(|| end.to_vec());
        for guard in self.snapshot.range(self.locks, start.to_vec()..lock_end) {
            let (k, v) = guard.into_inner().map_err(io_err)?;
            let lock = Lock::decode(&v)?;
            if lock.start_ts <= ts && lock.kind != LockKind::Lock {
                result.locks.push(LockedKey {
                    key: k.to_vec(),
                    lock,
                });
            }
        }
        Ok(result)
    }

    /// Validates a read of `[start, end)` made at `from_ts` by the transaction `own_start_ts`
    /// committing (or moving its reads) to `to_ts`: reports the first version committed in
    /// `(from_ts, to_ts]` (rollback records aside), and every prewrite lock of another
    /// transaction with `start_ts <= to_ts`, which the caller must resolve through its primary.
    pub fn validate(
        &self,
        start: &[u8],
        end: &[u8],
        own_start_ts: Timestamp,
        from_ts: Timestamp,
        to_ts: Timestamp,
    ) -> io::Result<Validation> {
        let (ds, de) = data_span(start, end);
        let mut result = Validation::default();
        for guard in self.snapshot.range(self.data, ds..de) {
            let (k, v) = guard.into_inner().map_err(io_err)?;
            let (key, commit_ts) = split_version_key(&k)?;
            if commit_ts > from_ts && commit_ts <= to_ts && Record::decode(&v)?.kind.is_version() {
                result.conflict = Some((key, commit_ts));
                return Ok(result);
            }
        }
        for guard in self
            .snapshot
            .range(self.locks, start.to_vec()..end.to_vec())
        {
            let (k, v) = guard.into_inner().map_err(io_err)?;
            let lock = Lock::decode(&v)?;
            // Pessimistic locks are ignored: their owner has not prewritten, so it will commit
            // after `to_ts`.
            if lock.start_ts != own_start_ts
                && lock.start_ts <= to_ts
                && lock.kind != LockKind::Lock
            {
                result.locks.push(LockedKey {
                    key: k.to_vec(),
                    lock,
                });
            }
        }
        Ok(result)
    }

    /// The locks in `[start, end)` of transactions with `start_ts < before`.
    pub fn locks_before(
        &self,
        start: &[u8],
        end: &[u8],
        before: Timestamp,
    ) -> io::Result<Vec<LockedKey>> {
        let mut out = Vec::new();
        for guard in self
            .snapshot
            .range(self.locks, start.to_vec()..end.to_vec())
        {
            let (k, v) = guard.into_inner().map_err(io_err)?;
            let lock = Lock::decode(&v)?;
            if lock.start_ts < before {
                out.push(LockedKey {
                    key: k.to_vec(),
                    lock,
                });
            }
        }
        Ok(out)
    }

    /// The record this transaction left on `key` (its commit or its rollback), if any.
    fn own_record(
        &self,
        key: &[u8],
        start_ts: Timestamp,
    ) -> io::Result<Option<(Timestamp, Record)>> {
        for version in self.versions(key, u64::MAX, start_ts) {
            let (commit_ts, record) = version?;
            if record.start_ts == start_ts {
                return Ok(Some((commit_ts, record)));
            }
        }
        Ok(None)
    }

    /// Checks one key before locking it for the transaction `start_ts`: a foreign lock or a record
    /// of this transaction refuses it; otherwise reports whether the transaction already holds the
    /// lock, and the newest commit after `read_ts` (a version the transaction did not read).
    fn check_lock(
        &self,
        key: &[u8],
        start_ts: Timestamp,
        read_ts: Timestamp,
    ) -> io::Result<Result<(bool, Option<Timestamp>), KeyError>> {
        // A lock this transaction already holds makes the check idempotent, but the versions
        // committed after `read_ts` are still reported: a retried lock whose first attempt
        // applied (and whose reply was lost) must see the same newer version the first saw.
        let held = match self.lock(key)? {
            Some(lock) if lock.start_ts == start_ts => true,
            Some(lock) => {
                return Ok(Err(KeyError::Locked {
                    key: key.to_vec(),
                    lock,
                }));
            }
            None => false,
        };
        let mut newer = None;
        for version in self.versions(key, u64::MAX, start_ts) {
            let (commit_ts, record) = version?;
            if record.start_ts == start_ts {
                return Ok(Err(match record.kind {
                    RecordKind::Rollback => KeyError::RolledBack { key: key.to_vec() },
                    _ => KeyError::Committed {
                        key: key.to_vec(),
                        commit_ts,
                    },
                }));
            }
            if record.kind.is_version() && commit_ts > read_ts && newer.is_none() {
                newer = Some(commit_ts);
            }
        }
        Ok(Ok((held, newer)))
    }

    /// Checks every key a transaction is about to write (see `check_lock`): the first foreign
    /// lock, record of this transaction, version committed after `read_ts` or (for an
    /// [`Op::Insert`]) value visible at `read_ts` refuses them all. Otherwise reports, per key,
    /// whether the transaction already holds its lock.
    fn check_writes(
        &self,
        mutations: &[Mutation],
        start_ts: Timestamp,
        read_ts: Timestamp,
    ) -> io::Result<Result<Vec<bool>, KeyError>> {
        let mut held = Vec::with_capacity(mutations.len());
        for m in mutations {
            match self.check_lock(&m.key, start_ts, read_ts)? {
                Ok((_, Some(conflict_ts))) => {
                    return Ok(Err(KeyError::WriteConflict {
                        key: m.key.clone(),
                        conflict_ts,
                    }));
                }
                Ok((h, None)) => held.push(h),
                Err(e) => return Ok(Err(e)),
            }
            // No version is newer than `read_ts`, so the newest is the one the transaction sees.
            if matches!(m.op, Op::Insert(_))
                && let Some((_, record)) = self.latest(&m.key, read_ts)?
                && record.kind == RecordKind::Put
            {
                return Ok(Err(KeyError::AlreadyExists { key: m.key.clone() }));
            }
        }
        Ok(Ok(held))
    }

    /// Prewrite: locks every key with its write, or (on the first error) writes nothing. A
    /// version committed after `read_ts` refuses the prewrite (first-committer-wins), even over
    /// the transaction's own lock: a transaction whose lock reported a newer version moved its
    /// read timestamp past it, or stopped.
    pub fn prewrite(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        mutations: &[Mutation],
        txn: TxnMeta<'_>,
        expiry_ms: u64,
    ) -> io::Result<Result<(), KeyError>> {
        let TxnMeta {
            start_ts,
            read_ts,
            primary,
        } = txn;
        let held = match self.check_writes(mutations, start_ts, read_ts)? {
            Ok(held) => held,
            Err(e) => return Ok(Err(e)),
        };
        for (m, held) in mutations.iter().zip(held) {
            let (kind, value) = match &m.op {
                Op::Put(v) | Op::Insert(v) => (LockKind::Put, Some(v.clone())),
                Op::Delete => (LockKind::Delete, None),
                Op::Lock => (LockKind::Lock, None),
            };
            let lock = Lock {
                start_ts,
                primary: primary.to_vec(),
                expiry_ms,
                kind,
                for_update_ts: read_ts,
                value,
            };
            batch.insert(self.locks, m.key.clone(), lock.encode());
            stats.locks += !held as i64;
        }
        Ok(Ok(()))
    }

    /// One-phase commit of a transaction whose writes and reads all lie in this range: checks
    /// every key as [`prewrite`](Self::prewrite) does, validates every span in `reads` from
    /// `read_ts` to `commit_ts` as [`validate`](Self::validate) does (none under SNAPSHOT), then
    /// writes the versions at `commit_ts` and removes the transaction's own locks — or, on the
    /// first error, writes nothing. A foreign prewrite lock in a read span is reported as
    /// `Locked`: it cannot be resolved here, so the coordinator resolves it and commits in two
    /// phases instead. The leader's latches make evaluating this at apply time safe (see
    /// `latch`).
    pub fn one_phase_commit(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        mutations: &[Mutation],
        reads: &[(Vec<u8>, Vec<u8>)],
        txn: TxnMeta<'_>,
        commit_ts: Timestamp,
    ) -> io::Result<Result<(), KeyError>> {
        let TxnMeta {
            start_ts,
            read_ts,
            primary,
        } = txn;
        let held = match self.check_writes(mutations, start_ts, read_ts)? {
            Ok(held) => held,
            Err(e) => return Ok(Err(e)),
        };
        for (start, end) in reads {
            let v = self.validate(start, end, start_ts, read_ts, commit_ts)?;
            if let Some((key, conflict_ts)) = v.conflict {
                return Ok(Err(KeyError::WriteConflict { key, conflict_ts }));
            }
            if let Some(LockedKey { key, lock }) = v.locks.into_iter().next() {
                return Ok(Err(KeyError::Locked { key, lock }));
            }
        }
        for (m, held) in mutations.iter().zip(held) {
            let record = match &m.op {
                Op::Put(v) | Op::Insert(v) => Some((RecordKind::Put, v.clone())),
                Op::Delete => Some((RecordKind::Delete, Vec::new())),
                Op::Lock if m.key == primary => Some((RecordKind::Lock, Vec::new())),
                Op::Lock => None,
            };
            if let Some((kind, value)) = record {
                let record = Record {
                    kind,
                    start_ts,
                    value,
                };
                let (k, v) = (version_key(&m.key, commit_ts), record.encode());
                stats.version_bytes += (k.len() + v.len()) as i64;
                stats.versions += 1;
                batch.insert(self.data, k, v);
            }
            if held {
                batch.remove(self.locks, m.key.clone());
                stats.locks -= 1;
            }
        }
        Ok(Ok(()))
    }

    /// Pessimistic locking at statement time: takes a `Lock`-kind lock on every key, or (on the
    /// first foreign lock or record of this transaction) nothing. Returns the newest commit after
    /// `read_ts` on any of the keys: the caller must then read them at a later timestamp.
    pub fn pessimistic_lock(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        keys: &[Vec<u8>],
        txn: TxnMeta<'_>,
        expiry_ms: u64,
    ) -> io::Result<Result<Option<Timestamp>, KeyError>> {
        let TxnMeta {
            start_ts,
            read_ts,
            primary,
        } = txn;
        let mut newest = None;
        let mut fresh = Vec::with_capacity(keys.len());
        for key in keys {
            match self.check_lock(key, start_ts, read_ts)? {
                Ok((held, newer)) => {
                    newest = newest.max(newer);
                    fresh.push(!held);
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        for (key, fresh) in keys.iter().zip(fresh) {
            if fresh {
                let kind = LockKind::Lock;
                let lock = Lock {
                    start_ts,
                    primary: primary.to_vec(),
                    expiry_ms,
                    kind,
                    for_update_ts: read_ts,
                    value: None,
                };
                batch.insert(self.locks, key.clone(), lock.encode());
                stats.locks += 1;
            }
        }
        Ok(Ok(newest))
    }

    /// Removes the transaction's `Lock`-kind locks on `keys` (other locks and keys untouched).
    pub fn release_locks(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        keys: &[Vec<u8>],
        start_ts: Timestamp,
    ) -> io::Result<()> {
        for key in keys {
            if let Some(lock) = self.lock(key)?
                && lock.start_ts == start_ts
                && lock.kind == LockKind::Lock
            {
                batch.remove(self.locks, key.clone());
                stats.locks -= 1;
            }
        }
        Ok(())
    }

    /// Pushes the expiry of a transaction's primary lock forward (never backward) and reports the
    /// transaction's status: `Pending` while the lock is there, else its recorded outcome.
    pub fn heartbeat(
        &self,
        batch: &mut WriteBatch,
        primary: &[u8],
        start_ts: Timestamp,
        expiry_ms: u64,
    ) -> io::Result<TxnStatus> {
        match self.lock(primary)? {
            Some(mut lock) if lock.start_ts == start_ts => {
                lock.expiry_ms = lock.expiry_ms.max(expiry_ms);
                batch.insert(self.locks, primary.to_vec(), lock.encode());
                Ok(TxnStatus::Pending {
                    expiry_ms: lock.expiry_ms,
                })
            }
            _ => Ok(match self.own_record(primary, start_ts)? {
                Some((commit_ts, r)) if r.kind != RecordKind::Rollback => {
                    TxnStatus::Committed { commit_ts }
                }
                Some(_) => TxnStatus::RolledBack,
                None => TxnStatus::Missing,
            }),
        }
    }

    /// Commits each key: writes the version its lock holds at `commit_ts` and removes the lock.
    /// A key whose lock is gone is fine if this transaction's commit record is there.
    pub fn commit(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        keys: &[Vec<u8>],
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> io::Result<Vec<KeyError>> {
        let mut errors = Vec::new();
        for key in keys {
            match self.lock(key)? {
                Some(lock) if lock.start_ts == start_ts => {
                    let record = match lock.kind {
                        LockKind::Put => Some(Record {
                            kind: RecordKind::Put,
                            start_ts,
                            value: lock.value.unwrap_or_default(),
                        }),
                        LockKind::Delete => Some(Record {
                            kind: RecordKind::Delete,
                            start_ts,
                            value: Vec::new(),
                        }),
                        // A primary that was only locked keeps a record of the commit: it is the
                        // outcome that the transaction's other locks are resolved by.
                        LockKind::Lock if lock.primary == *key => Some(Record {
                            kind: RecordKind::Lock,
                            start_ts,
                            value: Vec::new(),
                        }),
                        LockKind::Lock => None,
                    };
                    if let Some(record) = record {
                        let (k, v) = (version_key(key, commit_ts), record.encode());
                        stats.version_bytes += (k.len() + v.len()) as i64;
                        stats.versions += 1;
                        batch.insert(self.data, k, v);
                    }
                    batch.remove(self.locks, key.clone());
                    stats.locks -= 1;
                }
                _ => match self.own_record(key, start_ts)? {
                    Some((_, r)) if r.kind != RecordKind::Rollback => {}
                    Some(_) => errors.push(KeyError::RolledBack { key: key.clone() }),
                    None => errors.push(KeyError::LockNotFound { key: key.clone() }),
                },
            }
        }
        Ok(errors)
    }

    /// Rolls back each key: removes this transaction's lock and leaves a `Rollback` record at
    /// `start_ts`, so a delayed prewrite of the transaction is refused. A key on which the
    /// transaction already committed is reported, not touched.
    pub fn rollback(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        keys: &[Vec<u8>],
        start_ts: Timestamp,
    ) -> io::Result<Vec<KeyError>> {
        let mut errors = Vec::new();
        for key in keys {
            if let Some(lock) = self.lock(key)?
                && lock.start_ts == start_ts
            {
                batch.remove(self.locks, key.clone());
                stats.locks -= 1;
            }
            match self.own_record(key, start_ts)? {
                Some((commit_ts, r)) if r.kind != RecordKind::Rollback => {
                    errors.push(KeyError::Committed {
                        key: key.clone(),
                        commit_ts,
                    })
                }
                Some(_) => {}
                None => {
                    let record = Record {
                        kind: RecordKind::Rollback,
                        start_ts,
                        value: Vec::new(),
                    };
                    let (k, v) = (version_key(key, start_ts), record.encode());
                    stats.version_bytes += (k.len() + v.len()) as i64;
                    stats.versions += 1;
                    batch.insert(self.data, k, v);
                }
            }
        }
        Ok(errors)
    }

    /// A transaction's status as recorded on its primary key, deciding nothing: `Pending` while
    /// its lock is there, else its recorded outcome, else `Missing`.
    pub fn txn_status(&self, primary: &[u8], start_ts: Timestamp) -> io::Result<TxnStatus> {
        if let Some(lock) = self.lock(primary)?
            && lock.start_ts == start_ts
        {
            return Ok(TxnStatus::Pending {
                expiry_ms: lock.expiry_ms,
            });
        }
        Ok(match self.own_record(primary, start_ts)? {
            Some((commit_ts, r)) if r.kind != RecordKind::Rollback => {
                TxnStatus::Committed { commit_ts }
            }
            Some(_) => TxnStatus::RolledBack,
            None => TxnStatus::Missing,
        })
    }

    /// Reads a transaction's outcome from its primary key. With `rollback`, a primary lock that
    /// expired before `now_ms` (or a primary that was never prewritten) is rolled back here,
    /// and the outcome is then `RolledBack` — except a primary with neither lock nor record
    /// whose `start_ts` is below `gc_threshold`: its record may have been collected, so nothing
    /// here can tell a commit from a transaction that never prewrote, and it stays `Missing`.
    pub fn check_txn_status(
        &self,
        batch: &mut WriteBatch,
        stats: &mut StatsDelta,
        primary: &[u8],
        start_ts: Timestamp,
        rollback: Option<RollbackExpired>,
    ) -> io::Result<TxnStatus> {
        let pending = match self.lock(primary)? {
            Some(lock) if lock.start_ts == start_ts => Some(lock.expiry_ms),
            _ => None,
        };
        if let Some(expiry_ms) = pending
            && rollback.is_none_or(|r| expiry_ms >= r.now_ms)
        {
            return Ok(TxnStatus::Pending { expiry_ms });
        }
        if pending.is_none() {
            match self.own_record(primary, start_ts)? {
                Some((commit_ts, r)) if r.kind != RecordKind::Rollback => {
                    return Ok(TxnStatus::Committed { commit_ts });
                }
                Some(_) => return Ok(TxnStatus::RolledBack),
                None if rollback.is_none_or(|r| start_ts < r.gc_threshold) => {
                    return Ok(TxnStatus::Missing);
                }
                None => {}
            }
        }
        let errors = self.rollback(batch, stats, &[primary.to_vec()], start_ts)?;
        debug_assert!(errors.is_empty(), "no commit record was found above");
        Ok(TxnStatus::RolledBack)
    }
}

/// Garbage-collects the versions of `[start, end)` below `safe_point`: per key it keeps the newest
/// version at or below the safe point unless that is a tombstone (then it goes with everything
/// older), and drops every older version and every rollback record at or below the safe point.
/// Locks are not touched: the caller resolves those below the safe point first.
pub fn gc_span(
    snapshot: &Snapshot,
    data: &Keyspace,
    batch: &mut WriteBatch,
    stats: &mut StatsDelta,
    start: &[u8],
    end: &[u8],
    safe_point: Timestamp,
) -> io::Result<()> {
    let (ds, de) = data_span(start, end);
    let mut current: Option<Vec<u8>> = None; // the key whose kept version was decided
    for guard in snapshot.range(data, ds..de) {
        let (k, v) = guard.into_inner().map_err(io_err)?;
        let (key, commit_ts) = split_version_key(&k)?;
        if commit_ts > safe_point {
            continue;
        }
        let record = Record::decode(&v)?;
        let keep = current.as_deref() != Some(&key) && record.kind == RecordKind::Put;
        if record.kind.is_version() {
            current = Some(key);
        }
        if !keep {
            stats.version_bytes -= (k.len() + v.len()) as i64;
            stats.versions -= 1;
            batch.remove(data, k);
        }
    }
    Ok(())
}

/// Counts the versions (and their bytes) and locks in `[start, end)`, as the statistics track
/// them.
pub fn count_span(
    snapshot: &Snapshot,
    data: &Keyspace,
    locks: &Keyspace,
    start: &[u8],
    end: &[u8],
) -> io::Result<StatsDelta> {
    let mut stats = StatsDelta::default();
    let (ds, de) = data_span(start, end);
    for guard in snapshot.range(data, ds..de) {
        let (k, v) = guard.into_inner().map_err(io_err)?;
        stats.version_bytes += (k.len() + v.len()) as i64;
        stats.versions += 1;
    }
    for guard in snapshot.range(locks, start.to_vec()..end.to_vec()) {
        guard.key().map_err(io_err)?;
        stats.locks += 1;
    }
    Ok(stats)
}

/// Clears every version and lock in `[start, end)` (per-key removes: fjall has no range delete).
pub fn clear_span(
    snapshot: &Snapshot,
    data: &Keyspace,
    locks: &Keyspace,
    batch: &mut WriteBatch,
    start: &[u8],
    end: &[u8],
) -> io::Result<()> {
    let (ds, de) = data_span(start, end);
    for guard in snapshot.range(data, ds..de) {
        batch.remove(data, guard.key().map_err(io_err)?);
    }
    for guard in snapshot.range(locks, start.to_vec()..end.to_vec()) {
        batch.remove(locks, guard.key().map_err(io_err)?);
    }
    Ok(())
}
