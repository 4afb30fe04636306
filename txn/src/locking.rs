//! Pessimistic locking: UPDATE and DELETE lock the keys they change at statement time, waiting
//! behind another transaction's lock instead of failing at commit.
//!
//! A statement reads at the transaction's read timestamp, then locks the keys it will write. A
//! lock that finds a version committed after the read timestamp (by a transaction the statement
//! waited for, typically) means the statement read stale data: under SERIALIZABLE the
//! transaction moves its read timestamp forward — after validating that nothing it read before
//! this statement changed in between — and the statement runs again at the new timestamp, still
//! holding its locks; under SNAPSHOT (REPEATABLE READ) the statement fails with 40001, as in
//! PostgreSQL. While a transaction holds locks, a heartbeat task keeps its primary lock alive.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kv::{Command, KeyError, LockedKey, Response, TxnStatus};

use crate::db::{Db, kv_err};
use crate::oracle::physical;
use crate::transaction::{conflict, merge_spans};
use crate::{Error, IsolationLevel, Result, Transaction};

impl Transaction {
    /// Marks the start of a statement: a statement restarted by [`lock_keys`](Self::lock_keys)
    /// forgets the reads it made before the restart.
    pub fn statement_start(&mut self) {
        self.statement_reads = self.reads.len();
    }

    /// The timestamp reads are made at.
    pub fn read_ts(&self) -> crate::Timestamp {
        self.read_ts
    }

    /// Locks `keys` for this transaction, waiting (up to the lock wait timeout, then 55P03)
    /// behind live locks of other transactions. Returns true when the read timestamp moved
    /// forward: the current statement must then run again (its reads so far are forgotten).
    pub async fn lock_keys(&mut self, keys: Vec<Vec<u8>>) -> Result<bool> {
        // Boxed: the lock loop's state machine is large and would nest into every caller's.
        let result = Box::pin(self.lock_keys_inner(keys)).await;
        self.db.deadlock_done(self.start_ts);
        result
    }

    async fn lock_keys_inner(&mut self, keys: Vec<Vec<u8>>) -> Result<bool> {
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        if self.opts.optimistic {
            return Ok(false);
        }
        let keys: BTreeSet<Vec<u8>> = keys
            .into_iter()
            .filter(|k| !self.locked.contains(k))
            .collect();
        let Some(first) = keys.first() else {
            return Ok(false);
        };
        let primary = self.primary.get_or_insert_with(|| first.clone()).clone();
        let db = self.db.clone();
        let client = db.client().clone();
        let timeout = self
            .lock_timeout
            .unwrap_or(db.inner.config.lock_wait_timeout);
        // Zero waits without limit (a century stands in for it).
        let timeout = if timeout.is_zero() {
            Duration::from_secs(100 * 365 * 24 * 3600)
        } else {
            timeout
        };
        let deadline = Instant::now() + timeout;
        let mut newest = None;
        let mut waited = false;
        for (_, group) in client
            .group_by_range(keys.into_iter().collect(), |k| k)
            .await
            .map_err(kv_err)?
        {
            loop {
                let cmd = Command::PessimisticLock {
                    start_ts: self.start_ts,
                    read_ts: self.read_ts,
                    primary: primary.clone(),
                    expiry_ms: physical(db.now().await?) + db.inner.config.lock_ttl_ms,
                    keys: group.clone(),
                };
                match client.send(cmd).await.map_err(kv_err)? {
                    Response::Locked { newer } => {
                        db.deadlock_done(self.start_ts);
                        newest = newest.max(newer);
                        self.locked.extend(group);
                        break;
                    }
                    Response::KeyErrors(errors) => match errors.into_iter().next() {
                        Some(KeyError::Locked { key, lock }) => {
                            let locked = LockedKey { key, lock };
                            // In line before the owner is checked, so that a release in
                            // between is not missed; a waiter that waited before keeps its
                            // place at the front.
                            let turn = client.lock_wait(&locked.key, locked.lock.start_ts, waited);
                            if !db.try_resolve_lock(&locked).await? {
                                if !db.deadlock_wait(self.start_ts, locked.lock.start_ts).await {
                                    db.deadlock_done(self.start_ts);
                                    return Err(Error::Deadlock(format!(
                                        "waiting for the lock on {} would close a cycle of lock waits",
                                        kv::keys::Pretty(&locked.key)
                                    )));
                                }
                                let now = Instant::now();
                                if now >= deadline {
                                    db.deadlock_done(self.start_ts);
                                    return Err(Error::LockTimeout(format!(
                                        "key {} is locked by another transaction",
                                        kv::keys::Pretty(&locked.key)
                                    )));
                                }
                                let recheck = (now + db.inner.config.lock_recheck).min(deadline);
                                turn.wait_until(recheck.into()).await;
                                metrics::counter!("tinkerdb_lock_waits_total").increment(1);
                                waited = true;
                            }
                        }
                        Some(e) => return Err(conflict(&e)),
                        None => return Err(Error::Internal("empty lock response".into())),
                    },
                    other => {
                        return Err(Error::Internal(format!(
                            "unexpected lock response {other:?}"
                        )));
                    }
                }
            }
        }
        self.maybe_start_heartbeat(primary);
        match newest {
            Some(newer) if newer > self.read_ts => self.refresh().await.map(|()| true),
            _ => Ok(false),
        }
    }

    /// Moves the read timestamp forward to a new timestamp, if everything read before the
    /// current statement is unchanged up to it (SERIALIZABLE only).
    async fn refresh(&mut self) -> Result<()> {
        if self.opts.isolation != IsolationLevel::Serializable {
            return Err(Error::Serialization(
                "a row this statement changes was updated after the transaction started".into(),
            ));
        }
        self.reads.truncate(self.statement_reads);
        let to = self.db.now().await?;
        let spans = merge_spans(self.reads.clone());
        self.db
            .validate(spans, self.start_ts, self.read_ts, to)
            .await?;
        tracing::debug!(
            start_ts = self.start_ts,
            from = self.read_ts,
            to,
            "read timestamp moved forward"
        );
        self.read_ts = to;
        Ok(())
    }

    /// A savepoint: the buffered writes and locks at this point of the transaction.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            writes: self.writes.clone(),
            locked: self.locked.clone(),
        }
    }

    /// Rolls back to a savepoint: undoes the writes buffered since, and releases the locks taken
    /// since (except the primary's, which carries the transaction's status). The reads made since
    /// stay in the read set.
    pub async fn rollback_to(&mut self, savepoint: &Savepoint) -> Result<()> {
        self.writes = savepoint.writes.clone();
        let release: Vec<Vec<u8>> = self
            .locked
            .difference(&savepoint.locked)
            .filter(|k| Some(*k) != self.primary.as_ref())
            .cloned()
            .collect();
        if release.is_empty() {
            return Ok(());
        }
        let client = self.db.client().clone();
        for (_, keys) in client
            .group_by_range(release.clone(), |k| k)
            .await
            .map_err(kv_err)?
        {
            let cmd = Command::ReleaseLocks {
                start_ts: self.start_ts,
                keys,
            };
            client.send(cmd).await.map_err(kv_err)?;
        }
        for k in release {
            self.locked.remove(&k);
        }
        Ok(())
    }

    fn maybe_start_heartbeat(&mut self, primary: Vec<u8>) {
        if self.heartbeat.is_some() {
            return;
        }
        let (db, start_ts) = (self.db.clone(), self.start_ts);
        let task = tokio::spawn(heartbeat(db, primary, start_ts));
        self.heartbeat = Some(task.abort_handle());
    }
}

/// The state a transaction can roll back to (see [`Transaction::savepoint`]).
#[derive(Clone, Debug)]
pub struct Savepoint {
    writes: std::collections::BTreeMap<Vec<u8>, crate::transaction::Write>,
    locked: BTreeSet<Vec<u8>>,
}

/// Pushes the primary lock's expiry forward every interval until the transaction is decided
/// (or the task is aborted when the transaction is dropped).
async fn heartbeat(db: Db, primary: Vec<u8>, start_ts: crate::Timestamp) {
    let config = &db.inner.config;
    let mut tick = tokio::time::interval(config.heartbeat_interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Ok(now) = db.now().await else { continue };
        let cmd = Command::Heartbeat {
            primary: primary.clone(),
            start_ts,
            expiry_ms: physical(now) + config.lock_ttl_ms,
        };
        match db.client().send(cmd).await {
            Ok(Response::TxnStatus(TxnStatus::Pending { .. })) => {}
            Ok(_) => return,
            Err(e) => tracing::warn!(start_ts, "heartbeat: {e}"),
        }
    }
}
