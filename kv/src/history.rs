//! MVCC history of one key, for debug tools: every stored version (including deletes and
//! rollback records) and the lock on the key, read from one consistent snapshot after a
//! leadership check.
//!
//! This is a read of stored state, not a transactional read: it sees versions above any
//! timestamp and reports locks instead of resolving them.

use std::io;
use std::time::Duration;

use fjall::Readable;

use crate::error::{Error, Result};
use crate::keys::routing_key;
use crate::mvcc::{Lock, Mvcc, Record, Timestamp, version_key};
use crate::replica::Replica;
use crate::{Client, RangeDescriptor};

/// How often a history read is retried after routing errors before giving up.
const MAX_ATTEMPTS: u64 = 20;

/// One stored version of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The commit timestamp (for a rollback record: the rolled-back transaction's start_ts).
    pub commit_ts: Timestamp,
    /// The record: kind, writer's start_ts, value.
    pub record: Record,
}

/// Every stored version of a key, newest first, and the lock on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub versions: Vec<Version>,
    pub lock: Option<Lock>,
}

impl Mvcc<'_> {
    /// Every version of `key` in the snapshot, newest first, and its lock.
    pub fn history(&self, key: &[u8]) -> io::Result<History> {
        let prefix_len = version_key(key, 0).len() - 8;
        let span = version_key(key, u64::MAX)..=version_key(key, 0);
        let mut versions = Vec::new();
        for guard in self.snapshot.range(self.data, span) {
            let (k, v) = guard.into_inner().map_err(io::Error::other)?;
            let ts: [u8; 8] = k
                .get(prefix_len..)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "version key"))?;
            versions.push(Version {
                commit_ts: !u64::from_be_bytes(ts),
                record: Record::decode(&v)?,
            });
        }
        Ok(History {
            versions,
            lock: self.lock(key)?,
        })
    }
}

impl Replica {
    /// The MVCC history of `key` (linearizable: read after a leadership check).
    pub async fn history(&self, key: &[u8]) -> Result<History> {
        let (snapshot, desc) = self.read_snapshot().await?;
        if !desc.contains(&routing_key(key)) {
            return Err(Error::RangeKeyMismatch(Box::new(desc)));
        }
        Ok(self.mvcc(&snapshot).history(key)?)
    }
}

impl Client {
    /// The MVCC history of `key`, routed to the range holding it.
    pub async fn history(&self, key: &[u8]) -> Result<History> {
        let route = routing_key(key).into_owned();
        let mut attempt = 0;
        loop {
            let desc = self.range_for(&route).await?;
            let result = match self.store.replica(desc.range_id) {
                Ok(replica) => replica.history(key).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// The descriptor of the range holding `key` (a raw key) and its replica's view of the
    /// leader and statistics on this node, for debug tools.
    pub async fn range_info(&self, key: &[u8]) -> Result<RangeInfo> {
        let desc = self.range_for(&routing_key(key)).await?;
        let replica = self.store.replica(desc.range_id)?;
        let stats = match self.store.engine().meta.get(crate::engine::meta_key(
            desc.range_id,
            crate::engine::RANGE_STATS,
        ))? {
            Some(v) => crate::engine::Stats::decode(&v)?,
            None => crate::engine::Stats::default(),
        };
        Ok(RangeInfo {
            leader: replica.group().leader(),
            desc: replica.descriptor(),
            stats,
        })
    }
}

/// A range as seen from this node.
#[derive(Clone, Debug)]
pub struct RangeInfo {
    pub desc: RangeDescriptor,
    /// The leader this node knows of.
    pub leader: Option<crate::NodeId>,
    /// The range's MVCC statistics as last applied on this node.
    pub stats: crate::engine::Stats,
}
