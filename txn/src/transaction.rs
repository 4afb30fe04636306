//! Transactions: reads at `start_ts`, buffered writes, Percolator-style two-phase commit with the
//! primary key's range as the single arbiter of the outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Duration;

use kv::keys::Pretty;
use kv::{Command, KeyError, LockedKey, Mutation, Op, Response, TxnStatus};

use crate::Db;
use crate::db::kv_err;
use crate::oracle::physical;
use crate::{Error, IsolationLevel, Result, Timestamp, TxnOptions};

impl Db {
    /// Begins a transaction (takes its start timestamp from the oracle).
    pub async fn begin(&self, mut opts: TxnOptions) -> Result<Transaction> {
        let now = self.inner.oracle.now().await?;
        let start_ts = match opts.as_of {
            Some(ts) if ts > now => {
                return Err(Error::InvalidArgument(format!(
                    "AS OF SYSTEM TIME {ts} is in the future (the current timestamp is {now})"
                )));
            }
            Some(ts) => {
                opts.read_only = true;
                ts
            }
            None => now,
        };
        self.inner.active.begin(start_ts);
        Ok(Transaction {
            db: self.clone(),
            start_ts,
            opts,
            writes: BTreeMap::new(),
            reads: Vec::new(),
            read_ts: start_ts,
            statement_reads: 0,
            primary: None,
            locked: BTreeSet::new(),
            heartbeat: None,
            split: None,
            lock_timeout: None,
        })
    }
}

/// A buffered write of a [`Transaction`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    Put(Vec<u8>),
    /// A put that requires the key to hold no value at the transaction's read timestamp.
    Insert(Vec<u8>),
    Delete,
}

impl Write {
    /// The value the transaction reads back.
    fn value(&self) -> Option<&Vec<u8>> {
        match self {
            Write::Put(v) | Write::Insert(v) => Some(v),
            Write::Delete => None,
        }
    }

    fn into_op(self) -> Op {
        match self {
            Write::Put(v) => Op::Put(v),
            Write::Insert(v) => Op::Insert(v),
            Write::Delete => Op::Delete,
        }
    }
}

/// A transaction: reads at its read timestamp (`start_ts` until a locking statement moves it
/// forward), writes buffered until `commit`, pessimistic locks taken by locking statements.
pub struct Transaction {
    pub(crate) db: Db,
    pub(crate) start_ts: Timestamp,
    pub(crate) opts: TxnOptions,
    /// Buffered writes.
    pub(crate) writes: BTreeMap<Vec<u8>, Write>,
    /// The spans read from the store (SERIALIZABLE only): `[start, end)` actually examined.
    pub(crate) reads: Vec<(Vec<u8>, Vec<u8>)>,
    /// The timestamp reads are made at: every read is valid at it (SERIALIZABLE refreshes).
    pub(crate) read_ts: Timestamp,
    /// How many of `reads` precede the current statement (a restarted statement drops the rest).
    pub(crate) statement_reads: usize,
    /// The primary key, once chosen (the first key locked, or the first key written).
    pub(crate) primary: Option<Vec<u8>>,
    /// Keys this transaction holds pessimistic locks on.
    pub(crate) locked: BTreeSet<Vec<u8>>,
    /// The task that keeps the primary lock alive.
    pub(crate) heartbeat: Option<tokio::task::AbortHandle>,
    /// A split transaction's trigger, applied with the commit of its primary.
    pub(crate) split: Option<kv::SplitTrigger>,
    /// How long a locking statement waits behind another transaction's lock (None: the
    /// configured default; zero: without limit, as PostgreSQL's `lock_timeout = 0`).
    pub(crate) lock_timeout: Option<Duration>,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        self.db.inner.active.end(self.start_ts);
    }
}

impl Transaction {
    /// The transaction's start (read) timestamp.
    pub fn start_ts(&self) -> Timestamp {
        self.start_ts
    }

    /// The transaction's isolation level.
    pub fn isolation(&self) -> IsolationLevel {
        self.opts.isolation
    }

    /// Changes the isolation level; only before the transaction has read or written anything
    /// (returns false, changing nothing, after that).
    pub fn set_isolation(&mut self, isolation: IsolationLevel) -> bool {
        if !self.reads.is_empty() || !self.writes.is_empty() {
            return self.opts.isolation == isolation;
        }
        self.opts.isolation = isolation;
        true
    }

    /// Sets how long locking statements wait behind other transactions' locks (then 55P03);
    /// None is the node's default, zero waits without limit.
    pub fn set_lock_timeout(&mut self, timeout: Option<Duration>) {
        self.lock_timeout = timeout;
    }

    /// Whether the transaction is read-only.
    pub fn read_only(&self) -> bool {
        self.opts.read_only
    }

    fn client(&self) -> &kv::Client {
        &self.db.inner.client
    }

    /// Reads a key (the transaction's own writes first).
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(w) = self.writes.get(key) {
            return Ok(w.value().cloned());
        }
        loop {
            match self.client().get(key, self.read_ts).await.map_err(kv_err)? {
                Ok(value) => {
                    self.record_read(key.to_vec(), kv::keys::next_key(key));
                    return Ok(value);
                }
                Err(locked) => self.db.resolve_lock(&locked).await?,
            }
        }
    }

    /// Reads several keys (the transaction's own writes first) with one request per range
    /// holding some of them; answers their values in the order of `keys`.
    pub async fn get_many(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = vec![None; keys.len()];
        let mut pending = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match self.writes.get(key) {
                Some(w) => out[i] = w.value().cloned(),
                None => pending.push(i),
            }
        }
        while !pending.is_empty() {
            let wanted: Vec<Vec<u8>> = pending.iter().map(|&i| keys[i].clone()).collect();
            let answers = self
                .client()
                .get_many(&wanted, self.read_ts)
                .await
                .map_err(kv_err)?;
            let mut locked = None;
            let mut again = Vec::new();
            for (i, answer) in pending.into_iter().zip(answers) {
                match answer {
                    Ok(value) => {
                        self.record_read(keys[i].clone(), kv::keys::next_key(&keys[i]));
                        out[i] = value;
                    }
                    Err(l) => {
                        locked.get_or_insert(l);
                        again.push(i);
                    }
                }
            }
            if let Some(l) = locked {
                self.db.resolve_lock(&l).await?;
            }
            pending = again;
        }
        Ok(out)
    }

    /// Reads up to `limit` pairs of `[start, end)` in key order, own writes merged in. To read
    /// on, call again with `start` = `keys::next_key(last key returned)`.
    pub async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut from = start.to_vec();
        while out.len() < limit && from.as_slice() < end {
            let part = self
                .client()
                .scan(&from, end, self.read_ts, limit - out.len())
                .await
                .map_err(kv_err)?;
            if let Some(locked) = part.locks.first() {
                self.db.resolve_lock(locked).await?;
                continue;
            }
            let covered = part.resume.clone().unwrap_or_else(|| end.to_vec());
            self.record_read(from.clone(), covered.clone());
            let own = self.writes.range::<[u8], _>((
                Bound::Included(from.as_slice()),
                Bound::Excluded(covered.as_slice()),
            ));
            out.extend(merge(part.rows, own));
            from = covered;
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Remembers a span read from the store, for validation at commit (SERIALIZABLE only).
    /// Reads of the system space (catalog, range directory) are not validated: schema changes
    /// are ordered by descriptor versions, not by the read sets of the transactions using them.
    fn record_read(&mut self, start: Vec<u8>, end: Vec<u8>) {
        let system = start.first() == Some(&kv::keys::TAG_SYS)
            && end.as_slice() <= [kv::keys::TAG_SYS + 1].as_slice();
        if self.opts.isolation == IsolationLevel::Serializable && start < end && !system {
            self.reads.push((start, end));
        }
    }

    /// Buffers a write.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.writable()?;
        // Overwriting the transaction's own insert keeps its condition: the key still must not
        // have held a value before this transaction.
        let write = match self.writes.get(&key) {
            Some(Write::Insert(_)) => Write::Insert(value),
            _ => Write::Put(value),
        };
        self.writes.insert(key, write);
        Ok(())
    }

    /// Buffers a write of a key that must hold no value ([`Error::Duplicate`] otherwise): an
    /// INSERT's primary key. The condition travels with the write and is checked where it
    /// applies (prewrite or one-phase commit), so concurrent inserts of one key cannot both
    /// commit. Unless the transaction defers its checks ([`TxnOptions::defer_checks`]) the key
    /// is also read now, so the violation is reported by this call rather than by the commit.
    pub async fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.writable()?;
        let write = match self.writes.get(&key) {
            Some(Write::Put(_) | Write::Insert(_)) => return Err(Error::Duplicate { key }),
            // The transaction deleted the value it saw: the key may be written again.
            Some(Write::Delete) => Write::Put(value),
            None => {
                if !self.opts.defer_checks && self.get(&key).await?.is_some() {
                    return Err(Error::Duplicate { key });
                }
                Write::Insert(value)
            }
        };
        self.writes.insert(key, write);
        Ok(())
    }

    /// Buffers a delete.
    pub fn delete(&mut self, key: Vec<u8>) -> Result<()> {
        self.writable()?;
        if let Some(Write::Insert(_)) = self.writes.get(&key) {
            // Deleting what this transaction inserted leaves the key as it found it.
            self.writes.remove(&key);
        } else {
            self.writes.insert(key, Write::Delete);
        }
        Ok(())
    }

    fn writable(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Commits: prewrites every write, takes `commit_ts`, commits the primary (the commit point),
    /// then the other keys. A transaction that wrote nothing commits without any of this.
    pub async fn commit(self) -> Result<()> {
        self.commit_at().await.map(|_| ())
    }

    /// Commits like [`commit`](Self::commit) and returns the transaction's place in the serial
    /// order: its commit timestamp, or its read timestamp if it wrote nothing.
    pub async fn commit_at(self) -> Result<Timestamp> {
        // Boxed: two-phase commit's state machine is large and would nest into every caller's.
        Box::pin(self.commit_inner()).await
    }

    async fn commit_inner(mut self) -> Result<Timestamp> {
        let writes = std::mem::take(&mut self.writes);
        let locked = std::mem::take(&mut self.locked);
        let db = self.db.clone();
        let (start_ts, read_ts) = (self.start_ts, self.read_ts);
        if writes.is_empty() {
            // Locks taken by statements that wrote nothing are released; the reads were made at
            // read_ts, which is where the transaction is serialized.
            db.rollback_keys(locked.into_iter().collect(), start_ts)
                .await;
            metrics::counter!("tinkerdb_txn_commits_total", "kind" => "read_only").increment(1);
            return Ok(read_ts);
        }
        let mut mutations: Vec<Mutation> = writes
            .into_iter()
            .map(|(key, w)| Mutation {
                key,
                op: w.into_op(),
            })
            .collect();
        let written: BTreeSet<&Vec<u8>> = mutations.iter().map(|m| &m.key).collect();
        let only_locked: Vec<Vec<u8>> = locked
            .iter()
            .filter(|k| !written.contains(k))
            .cloned()
            .collect();
        mutations.extend(
            only_locked
                .into_iter()
                .map(|key| Mutation { key, op: Op::Lock }),
        );
        let primary = self
            .primary
            .clone()
            .unwrap_or_else(|| mutations[0].key.clone());
        let mut keys: Vec<Vec<u8>> = mutations.iter().map(|m| m.key.clone()).collect();
        // The primary goes first: it is committed first, the rest follow.
        if let Some(i) = keys.iter().position(|k| *k == primary) {
            keys.swap(0, i);
        }
        let reads = merge_spans(std::mem::take(&mut self.reads));
        if self.split.is_none() {
            match db
                .one_phase_commit(&mutations, &reads, &primary, start_ts, read_ts)
                .await
            {
                Ok(Some(commit_ts)) => {
                    metrics::counter!("tinkerdb_txn_commits_total", "kind" => "one_phase")
                        .increment(1);
                    return Ok(commit_ts);
                }
                Ok(None) => {}
                Err(e @ Error::Ambiguous(_)) => return Err(e),
                Err(e) => {
                    db.rollback_keys(keys, start_ts).await;
                    metrics::counter!("tinkerdb_txn_aborts_total").increment(1);
                    return Err(e);
                }
            }
        }
        let expiry_ms = physical(db.now().await?) + db.inner.config.lock_ttl_ms;
        if let Err(e) = db
            .prewrite(mutations, &primary, start_ts, read_ts, expiry_ms)
            .await
        {
            db.rollback_keys(keys, start_ts).await;
            metrics::counter!("tinkerdb_txn_aborts_total").increment(1);
            return Err(e);
        }
        let commit_ts = db.now().await?;
        if let Err(e) = db.validate(reads, start_ts, read_ts, commit_ts).await {
            db.rollback_keys(keys, start_ts).await;
            metrics::counter!("tinkerdb_txn_aborts_total").increment(1);
            return Err(e);
        }
        // Crash tests stop the coordinator here (prewritten, not committed) and just after the
        // commit point, leaving what a crash leaves.
        fail::fail_point!("txn::before_commit_primary", |_| {
            Err(Error::Internal(
                "failpoint txn::before_commit_primary".into(),
            ))
        });
        if let Err(e) = db
            .commit_primary(&primary, &keys, start_ts, commit_ts, self.split.take())
            .await
        {
            metrics::counter!("tinkerdb_txn_aborts_total").increment(1);
            return Err(e);
        }
        fail::fail_point!("txn::after_commit_primary", |_| {
            Err(Error::Internal(
                "failpoint txn::after_commit_primary".into(),
            ))
        });
        // The outcome is decided: the secondaries are committed in the background, and whoever
        // meets one of their locks first rolls it forward from the primary's record.
        let secondaries = keys[1..].to_vec();
        if !secondaries.is_empty() {
            tokio::spawn(async move {
                db.commit_secondaries(secondaries, start_ts, commit_ts)
                    .await
            });
        }
        metrics::counter!("tinkerdb_txn_commits_total", "kind" => "read_write").increment(1);
        Ok(commit_ts)
    }

    /// Rolls back: drops the buffered writes and releases the locks taken by statements.
    pub async fn rollback(mut self) -> Result<()> {
        let locked = std::mem::take(&mut self.locked);
        if !locked.is_empty() {
            self.db
                .rollback_keys(locked.into_iter().collect(), self.start_ts)
                .await;
        }
        Ok(())
    }
}

/// Sorts spans and merges the ones that overlap or touch.
pub(crate) fn merge_spans(mut spans: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    spans.sort();
    let mut merged: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => {
                if end > last.1 {
                    last.1 = end;
                }
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Overlays buffered writes on rows read from the store (both in key order).
fn merge<'a>(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    own: impl Iterator<Item = (&'a Vec<u8>, &'a Write)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = rows.into_iter().collect();
    for (k, w) in own {
        match w.value() {
            Some(v) => merged.insert(k.clone(), v.clone()),
            None => merged.remove(k),
        };
    }
    merged.into_iter().collect()
}

/// The error a refused write reports: a duplicate, or a conflict with another transaction.
pub(crate) fn conflict(e: &KeyError) -> Error {
    Error::Serialization(match e {
        KeyError::AlreadyExists { key } => return Error::Duplicate { key: key.clone() },
        KeyError::Locked { key, .. } => {
            format!("key {} is locked by another transaction", Pretty(key))
        }
        KeyError::WriteConflict { key, .. } => format!(
            "key {} was written after this transaction started",
            Pretty(key)
        ),
        KeyError::RolledBack { .. } | KeyError::LockNotFound { .. } => {
            "the transaction was rolled back by another transaction after its locks expired".into()
        }
        KeyError::Committed { key, .. } => format!(
            "key {} was already committed by this transaction",
            Pretty(key)
        ),
    })
}

impl Db {
    /// Prewrites every mutation, range by range. A foreign lock is resolved once if it can be
    /// (committed, rolled back or expired); a live one aborts (optimistic prewrite never waits).
    async fn prewrite(
        &self,
        mutations: Vec<Mutation>,
        primary: &[u8],
        start_ts: Timestamp,
        read_ts: Timestamp,
        expiry_ms: u64,
    ) -> Result<()> {
        let client = &self.inner.client;
        for (_, group) in client
            .group_by_range(mutations, |m| &m.key)
            .await
            .map_err(kv_err)?
        {
            let cmd = Command::Prewrite {
                start_ts,
                read_ts,
                primary: primary.to_vec(),
                expiry_ms,
                mutations: group,
            };
            for attempt in 0.. {
                match client.send(cmd.clone()).await.map_err(kv_err)? {
                    Response::KeyErrors(errors) if errors.is_empty() => break,
                    Response::KeyErrors(errors) => match &errors[0] {
                        KeyError::Locked { key, lock } if attempt == 0 => {
                            let locked = LockedKey {
                                key: key.clone(),
                                lock: lock.clone(),
                            };
                            if !self.try_resolve_lock(&locked).await? {
                                return Err(conflict(&errors[0]));
                            }
                        }
                        e => return Err(conflict(e)),
                    },
                    other => {
                        return Err(Error::Internal(format!(
                            "unexpected prewrite response {other:?}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// One-phase commit, when every write and read of the transaction lies in one range: on the
    /// range's leader the write keys are latched, the commit timestamp is taken, the latches of
    /// transactions that may commit at or below it on the read spans are waited for, and one
    /// command checks, validates and writes at apply (`kv::request`; `kv::latch` says why the
    /// latches are needed). Returns None, having written nothing, when the transaction must
    /// commit in two phases instead: it spans ranges, the range changed, or a foreign lock must
    /// be resolved.
    ///
    /// The command is idempotent: a retry after an unknown outcome finds this transaction's
    /// records and reports the commit. Once any attempt's outcome is unknown, the transaction
    /// never falls back to two phases and never reports a conflict: either a later attempt or
    /// the primary's record shows the commit, or the outcome is unknown.
    async fn one_phase_commit(
        &self,
        mutations: &[Mutation],
        reads: &[(Vec<u8>, Vec<u8>)],
        primary: &[u8],
        start_ts: Timestamp,
        read_ts: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let client = &self.inner.client;
        let reply = client
            .one_phase_commit(start_ts, read_ts, primary, mutations, reads)
            .await;
        let (commit_ts, response, ambiguous) = match reply {
            Ok(kv::Reply::OnePhase {
                commit_ts,
                response,
                ambiguous,
            }) => (commit_ts, response, ambiguous),
            Ok(other) => {
                return Err(Error::Internal(format!(
                    "unexpected one-phase commit reply {other:?}"
                )));
            }
            Err(
                kv::Error::RangeKeyMismatch(_)
                | kv::Error::NotLeader { .. }
                | kv::Error::CommandTooLarge { .. },
            ) => return Ok(None),
            // Never applied: nothing was written.
            Err(e) => return Err(kv_err(e)),
        };
        let decided = match &response {
            Some(Response::KeyErrors(errors)) => match errors.first() {
                None => Some(Ok(Some(commit_ts))),
                Some(KeyError::Committed { commit_ts: c, .. }) if *c == commit_ts => {
                    Some(Ok(Some(commit_ts)))
                }
                _ if ambiguous.is_some() => None,
                Some(KeyError::Locked { .. }) => Some(Ok(None)),
                Some(e) => Some(Err(conflict(e))),
            },
            _ => None,
        };
        match (decided, ambiguous) {
            (Some(outcome), _) => outcome,
            (None, Some(why)) => self.one_phase_outcome(primary, start_ts, &why).await,
            (None, None) => Err(Error::Internal(format!(
                "unexpected one-phase commit response {response:?}"
            ))),
        }
    }

    /// The outcome of a one-phase commit some attempt of which is unknown, read from the
    /// transaction's own record on its primary (every one-phase commit leaves one there):
    /// committed is success; anything else is reported as unknown (40003), never as a
    /// conflict, since a statement retried after a conflict would apply twice.
    async fn one_phase_outcome(
        &self,
        primary: &[u8],
        start_ts: Timestamp,
        why: &str,
    ) -> Result<Option<Timestamp>> {
        match self.inner.client.txn_status(primary, start_ts).await {
            Ok(TxnStatus::Committed { commit_ts }) => Ok(Some(commit_ts)),
            _ => Err(Error::Ambiguous(format!(
                "the one-phase commit's outcome is unknown: {why}"
            ))),
        }
    }

    /// SERIALIZABLE validation, after prewrite and after taking `commit_ts` (or when a locking
    /// statement moves the reads forward): every span read at `read_ts` must have no version
    /// committed in `(read_ts, commit_ts]`, and every foreign
    /// lock with `start_ts <= commit_ts` on it must belong to a transaction that rolled back or
    /// commits after `commit_ts`. Then commit-timestamp order is a valid serial order.
    pub(crate) async fn validate(
        &self,
        spans: Vec<(Vec<u8>, Vec<u8>)>,
        start_ts: Timestamp,
        read_ts: Timestamp,
        commit_ts: Timestamp,
    ) -> Result<()> {
        let client = &self.inner.client;
        for (start, end) in spans {
            let v = client
                .validate(&start, &end, start_ts, read_ts, commit_ts)
                .await
                .map_err(kv_err)?;
            if let Some((key, ts)) = v.conflict {
                return Err(Error::Serialization(format!(
                    "key {} read by this transaction was written by a transaction committed at {ts}",
                    Pretty(&key)
                )));
            }
            for locked in v.locks {
                match self.lock_status(&locked).await? {
                    TxnStatus::RolledBack => {}
                    TxnStatus::Committed { commit_ts: c } if c > commit_ts => {}
                    _ => {
                        return Err(Error::Serialization(format!(
                            "key {} read by this transaction is being written by a concurrent transaction",
                            Pretty(&locked.key)
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits the primary key: the commit point. When the reply is lost, the recorded outcome
    /// is read back; if it cannot be read, the outcome is reported as unknown (never as a
    /// serialization failure, which a client would retry).
    async fn commit_primary(
        &self,
        primary: &[u8],
        keys: &[Vec<u8>],
        start_ts: Timestamp,
        commit_ts: Timestamp,
        split: Option<kv::SplitTrigger>,
    ) -> Result<()> {
        let client = &self.inner.client;
        let cmd = match split {
            Some(trigger) => Command::CommitSplit {
                start_ts,
                commit_ts,
                key: primary.to_vec(),
                trigger,
            },
            None => Command::Commit {
                start_ts,
                commit_ts,
                keys: vec![primary.to_vec()],
            },
        };
        let errors = match client.send(cmd).await {
            Ok(Response::KeyErrors(errors)) => errors,
            Ok(Response::SplitRefused { reason }) => {
                self.rollback_keys(keys.to_vec(), start_ts).await;
                return Err(Error::Serialization(format!("split refused: {reason}")));
            }
            Ok(other) => {
                return Err(Error::Internal(format!(
                    "unexpected commit response {other:?}"
                )));
            }
            Err(e) => {
                tracing::warn!(
                    start_ts,
                    "commit of the primary failed: {e}; reading its outcome"
                );
                let check = Command::CheckTxnStatus {
                    primary: primary.to_vec(),
                    start_ts,
                    now_ms: 0,
                    rollback_if_expired: false,
                };
                return match client.send(check).await {
                    Ok(Response::TxnStatus(TxnStatus::Committed { .. })) => Ok(()),
                    Ok(Response::TxnStatus(TxnStatus::RolledBack)) => Err(Error::Serialization(
                        "the transaction was rolled back".into(),
                    )),
                    _ => Err(Error::Ambiguous(format!(
                        "the commit of the primary key failed: {e}"
                    ))),
                };
            }
        };
        if let Some(e) = errors.first() {
            self.rollback_keys(keys.to_vec(), start_ts).await;
            return Err(conflict(e));
        }
        Ok(())
    }

    /// Commits the secondaries. The outcome is already decided by the primary; a failure here is
    /// repaired by whoever meets a leftover lock.
    async fn commit_secondaries(
        &self,
        keys: Vec<Vec<u8>>,
        start_ts: Timestamp,
        commit_ts: Timestamp,
    ) {
        let client = &self.inner.client;
        let groups = match client.group_by_range(keys, |k| k).await {
            Ok(g) => g,
            Err(e) => return tracing::warn!(start_ts, "committing secondaries: {e}"),
        };
        for (_, keys) in groups {
            if let Err(e) = client
                .send(Command::Commit {
                    start_ts,
                    commit_ts,
                    keys,
                })
                .await
            {
                tracing::warn!(start_ts, "committing secondaries: {e}");
            }
        }
    }

    /// Rolls back `keys` (best effort: leftover locks are resolved by whoever meets them).
    pub(crate) async fn rollback_keys(&self, keys: Vec<Vec<u8>>, start_ts: Timestamp) {
        let client = &self.inner.client;
        let Ok(groups) = client.group_by_range(keys, |k| k).await else {
            return;
        };
        for (_, keys) in groups {
            if let Err(e) = client.send(Command::Rollback { start_ts, keys }).await {
                tracing::warn!(start_ts, "rollback: {e}");
            }
        }
    }

    /// Resolves a lock met by a reader, waiting in the key's queue while its transaction is live.
    pub(crate) async fn resolve_lock(&self, locked: &LockedKey) -> Result<()> {
        let mut waited = false;
        loop {
            let turn = self.wait_queues().join(&locked.key, waited);
            if self.try_resolve_lock(locked).await? {
                return Ok(());
            }
            let _ = tokio::time::timeout(self.inner.config.lock_recheck, turn).await;
            waited = true;
        }
    }

    /// The node's per-key lock wait queues.
    pub(crate) fn wait_queues(&self) -> &kv::wait::WaitQueues {
        self.inner.client.wait_queues()
    }

    /// Checks the lock owner's primary and rolls the lock forward (committed) or back (rolled
    /// back, or the primary's TTL expired and the primary was rolled back here). Returns false
    /// while the owner is live.
    pub(crate) async fn try_resolve_lock(&self, locked: &LockedKey) -> Result<bool> {
        let lock = &locked.lock;
        let resolve = match self.lock_status(locked).await? {
            TxnStatus::Committed { commit_ts } => Command::Commit {
                start_ts: lock.start_ts,
                commit_ts,
                keys: vec![locked.key.clone()],
            },
            TxnStatus::RolledBack => Command::Rollback {
                start_ts: lock.start_ts,
                keys: vec![locked.key.clone()],
            },
            TxnStatus::Pending { .. } | TxnStatus::Missing => return Ok(false),
        };
        if locked.key != lock.primary {
            self.inner.client.send(resolve).await.map_err(kv_err)?;
        }
        Ok(true)
    }

    /// The outcome of a lock's transaction, read from its primary. A primary whose TTL has
    /// expired (judged by the lock met, and again by the primary's own lock at apply) is rolled
    /// back there and reported `RolledBack`.
    async fn lock_status(&self, locked: &LockedKey) -> Result<TxnStatus> {
        let client = &self.inner.client;
        let lock = &locked.lock;
        // Reading the recorded status needs no proposal; only rolling back an expired primary
        // does.
        let status = client
            .txn_status(&lock.primary, lock.start_ts)
            .await
            .map_err(kv_err)?;
        let now_ms = physical(self.now().await?);
        let expired = match status {
            TxnStatus::Committed { .. } | TxnStatus::RolledBack => return Ok(status),
            TxnStatus::Pending { expiry_ms } => expiry_ms < now_ms,
            TxnStatus::Missing => lock.expiry_ms < now_ms,
        };
        if !expired {
            return Ok(status);
        }
        let check = Command::CheckTxnStatus {
            primary: lock.primary.clone(),
            start_ts: lock.start_ts,
            now_ms,
            rollback_if_expired: true,
        };
        match client.send(check).await.map_err(kv_err)? {
            // Refused only below the primary range's GC threshold (see
            // `Mvcc::check_txn_status`): the outcome may have been collected, and guessing
            // could roll back a committed write.
            Response::TxnStatus(TxnStatus::Missing) => Err(Error::Internal(format!(
                "the outcome of transaction {} (primary {}) is below the GC threshold; \
                 its lock on {} is left in place",
                lock.start_ts,
                kv::keys::Pretty(&lock.primary),
                kv::keys::Pretty(&locked.key)
            ))),
            Response::TxnStatus(s) => Ok(s),
            other => Err(Error::Internal(format!(
                "unexpected status response {other:?}"
            ))),
        }
    }
}
