//! The kv client: routes each request to the range that holds its keys, through a cached range
//! directory, and retries on routing errors.
//!
//! Range 1 always starts at KeyMin and holds the directory itself, so a lookup starts there. Every
//! other range is found by the directory entry with the smallest end key greater than the key.
//! Directory reads take the latest committed descriptor and ignore locks on directory keys.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::command::{Command, Response};
use crate::error::{Error, Result};
use crate::keys::{Key, SYS_RANGES, TAG_SYS, next_key, prefix_end, routing_key, sql_start};
use crate::mvcc::{LockedKey, ScanResult, Timestamp};
use crate::range::{RangeDescriptor, RangeId};
use crate::store::Store;

/// How often a request is retried after routing errors before giving up.
const MAX_ATTEMPTS: usize = 20;

/// Routes requests to ranges.
#[derive(Clone)]
pub struct Client {
    store: Arc<Store>,
    /// Cached descriptors by end key.
    cache: Arc<RwLock<BTreeMap<Vec<u8>, RangeDescriptor>>>,
}

impl Client {
    /// A client over the node's store.
    pub fn new(store: Arc<Store>) -> Client {
        Client {
            store,
            cache: Arc::default(),
        }
    }

    /// The node's store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The descriptor of the range holding `key` (a routing key).
    pub async fn range_for(&self, key: &[u8]) -> Result<RangeDescriptor> {
        if let Some((_, desc)) = self
            .cache
            .read()
            .expect("cache lock")
            .range(next_key(key)..)
            .next()
            && desc.contains(key)
        {
            return Ok(desc.clone());
        }
        let desc = if key < sql_start().as_slice() {
            self.store.replica(1)?.descriptor()
        } else {
            self.lookup(key).await?
        };
        self.cache
            .write()
            .expect("cache lock")
            .insert(desc.end.clone(), desc.clone());
        Ok(desc)
    }

    /// Reads the directory entry of the range holding `key` from range 1.
    ///
    /// Directory entries are written by split transactions, whose primary is the parent range's
    /// range-local descriptor key. A lock met on an entry is resolved here when its transaction
    /// is decided: a committed split whose coordinator died past the commit point would otherwise
    /// leave the right-hand range routed by the parent's old descriptor until GC resolved the lock.
    /// While the split is undecided the committed entries are still the truth (the parent has not
    /// split before its primary commits), so they are used as they are.
    async fn lookup(&self, key: &[u8]) -> Result<RangeDescriptor> {
        for _ in 0..3 {
            let found = self.scan_directory(key).await?;
            let mut resolved = false;
            for locked in &found.locks {
                resolved |= self.resolve_directory_lock(locked).await?;
            }
            if !resolved {
                return first_entry(key, &found);
            }
        }
        first_entry(key, &self.scan_directory(key).await?)
    }

    /// The directory entries from the one covering `key`: committed rows and the locks met.
    async fn scan_directory(&self, key: &[u8]) -> Result<ScanResult> {
        let start = Key::RangeDirectory {
            end_key: next_key(key),
        }
        .encode();
        let end = prefix_end(&[TAG_SYS, SYS_RANGES]).expect("not all 0xFF");
        self.store.replica(1)?.scan(&start, &end, u64::MAX, 1).await
    }

    /// Rolls a directory entry's lock forward or back when its transaction is decided; returns
    /// whether it did. The status is read from the primary's range found through the committed
    /// directory (not through `range_for`, which would meet the same locks again): a split's
    /// primary is its parent's descriptor key, and the parent keeps its start key.
    async fn resolve_directory_lock(&self, locked: &LockedKey) -> Result<bool> {
        let lock = &locked.lock;
        let route = routing_key(&lock.primary).into_owned();
        let owner = if route.as_slice() < sql_start().as_slice() {
            self.store.replica(1)?
        } else {
            let desc = first_entry(&route, &self.scan_directory(&route).await?)?;
            self.store.replica(desc.range_id)?
        };
        let cmd = match owner.txn_status(&lock.primary, lock.start_ts).await? {
            crate::mvcc::TxnStatus::Committed { commit_ts } => Command::Commit {
                start_ts: lock.start_ts,
                commit_ts,
                keys: vec![locked.key.clone()],
            },
            crate::mvcc::TxnStatus::RolledBack => Command::Rollback {
                start_ts: lock.start_ts,
                keys: vec![locked.key.clone()],
            },
            crate::mvcc::TxnStatus::Pending { .. } | crate::mvcc::TxnStatus::Missing => {
                return Ok(false);
            }
        };
        tracing::info!(
            key = %crate::keys::Pretty(&locked.key),
            start_ts = lock.start_ts,
            "resolving a decided split's lock on a range directory entry"
        );
        self.store.replica(1)?.propose(cmd).await?;
        Ok(true)
    }

    /// Forgets a cached descriptor (after a routing error or a change of the range).
    pub fn evict(&self, desc: &RangeDescriptor) {
        self.cache.write().expect("cache lock").remove(&desc.end);
    }

    /// Runs `op` against the replica of the range holding `key`, retrying on routing errors.
    async fn with_range<T, F, Fut>(&self, key: &[u8], op: F) -> Result<T>
    where
        F: Fn(Arc<crate::replica::Replica>, RangeDescriptor) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            let desc = self.range_for(key).await?;
            let result = match self.store.replica(desc.range_id) {
                Ok(replica) => op(replica, desc.clone()).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(range = desc.range_id, attempt, "retrying after {e}");
                    self.evict(&desc);
                    tokio::time::sleep(Duration::from_millis(10 * attempt as u64)).await;
                }
                other => return other,
            }
        }
    }

    /// Reads `key` at `ts`.
    pub async fn get(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<std::result::Result<Option<Vec<u8>>, LockedKey>> {
        let route = routing_key(key).into_owned();
        self.with_range(
            &route,
            |replica, _| async move { replica.get(key, ts).await },
        )
        .await
    }

    /// Scans up to `limit` rows of `[start, end)` at `ts` across ranges. Stops at the first range
    /// that reports locks (the result then carries them and a resume key where the scan stopped).
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: usize,
    ) -> Result<ScanResult> {
        let mut result = ScanResult::default();
        let mut from = start.to_vec();
        while from.as_slice() < end {
            let want = limit - result.rows.len();
            let (part, range_end) = self
                .with_range(&from, |replica, desc| {
                    let from = from.clone();
                    async move {
                        let to = end.min(desc.end.as_slice());
                        Ok((replica.scan(&from, to, ts, want).await?, to.to_vec()))
                    }
                })
                .await?;
            result.rows.extend(part.rows);
            if !part.locks.is_empty() {
                result.locks = part.locks;
                result.resume = Some(from);
                return Ok(result);
            }
            if let Some(resume) = part.resume {
                result.resume = Some(resume);
                return Ok(result);
            }
            if result.rows.len() == limit && range_end.as_slice() < end {
                result.resume = Some(range_end);
                return Ok(result);
            }
            from = range_end;
        }
        Ok(result)
    }

    /// Validates a read of `[start, end)` across ranges: the first conflicting version, or the
    /// foreign locks met (see `Mvcc::validate`).
    pub async fn validate(
        &self,
        start: &[u8],
        end: &[u8],
        own_start_ts: Timestamp,
        from_ts: Timestamp,
        to_ts: Timestamp,
    ) -> Result<crate::mvcc::Validation> {
        let mut result = crate::mvcc::Validation::default();
        let mut from = start.to_vec();
        while from.as_slice() < end {
            let (part, range_end) = self
                .with_range(&from, |replica, desc| {
                    let from = from.clone();
                    async move {
                        let to = end.min(desc.end.as_slice());
                        Ok((
                            replica
                                .validate(&from, to, own_start_ts, from_ts, to_ts)
                                .await?,
                            to.to_vec(),
                        ))
                    }
                })
                .await?;
            if part.conflict.is_some() {
                return Ok(part);
            }
            result.locks.extend(part.locks);
            from = range_end;
        }
        Ok(result)
    }

    /// Reads the status of the transaction `start_ts` from its primary key (see
    /// `Mvcc::txn_status`); deciding an outcome takes a `CheckTxnStatus` command instead.
    pub async fn txn_status(
        &self,
        primary: &[u8],
        start_ts: Timestamp,
    ) -> Result<crate::mvcc::TxnStatus> {
        let route = routing_key(primary).into_owned();
        self.with_range(&route, |replica, _| async move {
            replica.txn_status(primary, start_ts).await
        })
        .await
    }

    /// Sends a command whose keys all lie in one range (routed by its first key; range 1 when it
    /// has none) and returns its response.
    pub async fn send(&self, cmd: Command) -> Result<Response> {
        let route = cmd
            .keys()
            .first()
            .map(|k| routing_key(k).into_owned())
            .unwrap_or_default();
        let cmd = &cmd;
        self.with_range(&route, |replica, _| async move {
            replica.propose(cmd.clone()).await
        })
        .await
    }

    /// The local replica of the range holding `key` (a raw key) and its descriptor: one-phase
    /// commit latches and proposes there.
    pub async fn replica_for(
        &self,
        key: &[u8],
    ) -> Result<(Arc<crate::replica::Replica>, RangeDescriptor)> {
        let desc = self.range_for(&routing_key(key)).await?;
        Ok((self.store.replica(desc.range_id)?, desc))
    }

    /// Groups keys by the range that holds them, in key order.
    pub async fn group_by_range<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> &[u8],
    ) -> Result<Vec<(RangeId, Vec<T>)>> {
        let mut groups: BTreeMap<Vec<u8>, (RangeId, Vec<T>)> = BTreeMap::new();
        for item in items {
            let desc = self.range_for(&routing_key(key(&item))).await?;
            groups
                .entry(desc.end.clone())
                .or_insert_with(|| (desc.range_id, Vec::new()))
                .1
                .push(item);
        }
        Ok(groups.into_values().collect())
    }

    /// Proposes a command to range 1 (the oracle's bound lives there).
    pub async fn send_range1(&self, cmd: Command) -> Result<Response> {
        self.store.replica(1)?.propose(cmd).await
    }

    /// The persisted oracle bound, read from range 1 after a leadership check.
    pub async fn tso_bound(&self) -> Result<Option<Timestamp>> {
        self.store.replica(1)?.tso_bound().await
    }
}

impl Client {
    /// Confirms that range 1's leader (the oracle's home) is still the leader, with a ReadIndex
    /// check issued after the call, and returns the term of that leadership.
    pub async fn range1_read_index(&self) -> Result<u64> {
        Ok(self.store.replica(1)?.group().read_index().await?)
    }
}

/// The descriptor in the first directory entry of a scan started at `key`'s entry.
fn first_entry(key: &[u8], found: &ScanResult) -> Result<RangeDescriptor> {
    let (_, value) = found.rows.first().ok_or_else(|| {
        Error::Storage(format!(
            "no range directory entry covers key {}",
            crate::keys::Pretty(key)
        ))
    })?;
    Ok(RangeDescriptor::decode(value)?)
}
