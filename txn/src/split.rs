//! Range splits as transactions: the split rewrites the parent's range-local descriptor key (its
//! primary, so the commit point lands in the parent range) and the two directory entries in
//! range 1, allocates the new range id from a counter in range 1, and attaches the split trigger
//! to the commit of the primary (kv applies the trigger).

use std::time::{Duration, Instant};

use kv::RangeDescriptor;
use kv::keys::{Key, Pretty, range_descriptor_key, range_id_counter_key, sql_start};

use crate::db::kv_err;
use crate::{Db, Error, Result, TxnOptions};

/// How often a split that lost a race with a concurrent change is retried.
const ATTEMPTS: usize = 5;

pub(crate) async fn split_at(db: &Db, key: &[u8]) -> Result<(kv::RangeId, kv::RangeId)> {
    if key < sql_start().as_slice() {
        return Err(Error::InvalidArgument(format!(
            "cannot split at {}: the system range does not split",
            Pretty(key)
        )));
    }
    for attempt in 1..=ATTEMPTS {
        match try_split(db, key).await {
            Err(Error::Serialization(m)) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "split at {} retried: {m}", Pretty(key));
            }
            Ok(ids) => {
                wait_for_replica(db, ids.1).await?;
                return Ok(ids);
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

async fn try_split(db: &Db, key: &[u8]) -> Result<(kv::RangeId, kv::RangeId)> {
    let parent = db.client().range_for(key).await.map_err(kv_err)?;
    let mut txn = db.begin(TxnOptions::default()).await?;
    if parent.start == key {
        // Already a boundary: the left-hand range is the one that ends here.
        let left = txn
            .get(
                &Key::RangeDirectory {
                    end_key: key.to_vec(),
                }
                .encode(),
            )
            .await?;
        let left = left
            .map(|v| RangeDescriptor::decode(&v))
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?;
        return Ok((
            left.map_or(parent.range_id, |l| l.range_id),
            parent.range_id,
        ));
    }
    let local = range_descriptor_key(&parent.start);
    let current = txn.get(&local).await?.map(|v| RangeDescriptor::decode(&v));
    let current = current
        .transpose()
        .map_err(|e| Error::Internal(e.to_string()))?;
    if current.as_ref() != Some(&parent) {
        // The cached descriptor is stale (a concurrent split); look again.
        db.client().evict(&parent);
        return Err(Error::Serialization(
            "the range changed while splitting".into(),
        ));
    }
    let counter = txn.get(&range_id_counter_key()).await?;
    let next_id = counter
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Internal("the range id counter is missing".into()))?;
    let generation = parent.generation + 1;
    let left = RangeDescriptor {
        end: key.to_vec(),
        generation,
        ..parent.clone()
    };
    let right = RangeDescriptor {
        range_id: next_id,
        start: key.to_vec(),
        end: parent.end.clone(),
        replicas: parent.replicas.clone(),
        generation,
    };
    txn.put(range_id_counter_key(), (next_id + 1).to_be_bytes().to_vec())?;
    txn.put(local.clone(), left.encode())?;
    txn.put(
        Key::RangeDirectory {
            end_key: left.end.clone(),
        }
        .encode(),
        left.encode(),
    )?;
    txn.put(
        Key::RangeDirectory {
            end_key: right.end.clone(),
        }
        .encode(),
        right.encode(),
    )?;
    txn.primary = Some(local);
    txn.split = Some(kv::SplitTrigger {
        left: left.clone(),
        right: right.clone(),
    });
    txn.commit().await?;
    db.client().evict(&parent);
    Ok((left.range_id, right.range_id))
}

/// Waits (bounded) until the new range's replica runs on this node and has a leader.
async fn wait_for_replica(db: &Db, range_id: kv::RangeId) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if db.client().range_has_leader(range_id) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Internal(format!(
                "range {range_id} did not start after its split"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Db {
    /// Splits every range this node leads whose versions pass `range_max_bytes`, at a key near
    /// the middle of its data; returns how many ranges were split.
    pub async fn split_large_ranges(&self) -> Result<usize> {
        let max = self.inner.config.range_max_bytes;
        let mut splits = 0;
        self.recount_estimated_stats().await?;
        for range in self.client().led_ranges().map_err(kv_err)? {
            let desc = &range.desc;
            if desc.end.as_slice() <= sql_start().as_slice() {
                continue;
            }
            if range.stats.version_bytes < max as i64 {
                continue;
            }
            if let Some(key) = self.client().split_key(desc).await.map_err(kv_err)? {
                let (left, right) = split_at(self, &key).await?;
                tracing::info!(left, right, at = %Pretty(&key), "split a range past {max} bytes");
                splits += 1;
            }
        }
        Ok(splits)
    }

    /// Recounts the statistics of every range this node leads whose statistics are estimates
    /// (the halves of a split), through a replicated command; returns how many were recounted.
    pub async fn recount_estimated_stats(&self) -> Result<usize> {
        let mut recounted = 0;
        for range in self.client().led_ranges().map_err(kv_err)? {
            if range.stats.estimate {
                self.client()
                    .propose_to(&range.desc, kv::Command::RecomputeStats)
                    .await
                    .map_err(kv_err)?;
                recounted += 1;
            }
        }
        Ok(recounted)
    }
}
