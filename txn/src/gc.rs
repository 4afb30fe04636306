//! MVCC garbage collection. Each pass computes a safe point from the oracle,
//! `min(now - gc_ttl, oldest active start_ts)`, resolves every lock that started below it in
//! every range of the cluster (whoever leads it), and only then proposes a `Gc` command to each range this node leads: the
//! command removes, at apply time on every replica, the versions no read at or above the safe
//! point can see, and raises the range's GC threshold so that reads below it fail instead of
//! returning wrong answers.
//!
//! Each node of a cluster publishes its oldest live transaction in `sys` every
//! [`PUBLISH_EVERY`]; a pass's safe point stays below every node's that was published within
//! [`PUBLISHED_FOR`] (a node that stopped publishing no longer holds GC back; a transaction of
//! its that outlives the TTL may then fail with 55000, never read collected data).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use kv::keys::{oldest_active_key, oldest_active_span};

use crate::db::{Db, kv_err};
use crate::oracle::{compose, physical};
use crate::{Error, Result, Timestamp, TxnOptions};

/// How often a node of a cluster publishes its oldest live transaction.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_secs(30);
/// How long a published oldest live transaction holds GC back after it was written: a node
/// that stopped publishing (down, cut off) stops holding it back then.
pub(crate) const PUBLISHED_FOR: Duration = Duration::from_secs(120);

/// A node's published oldest live transaction (`<sys> 06 <node_id>`):
/// `[1] [u64 BE oldest start_ts, 0 for none] [u64 BE written at, an oracle timestamp]`.
fn encode_published(oldest: Option<Timestamp>, at: Timestamp) -> Vec<u8> {
    let mut v = vec![1];
    v.extend_from_slice(&oldest.unwrap_or(0).to_be_bytes());
    v.extend_from_slice(&at.to_be_bytes());
    v
}

fn decode_published(v: &[u8]) -> Result<(Option<Timestamp>, Timestamp)> {
    match v {
        [1, rest @ ..] if rest.len() == 16 => {
            let word = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().expect("8 bytes"));
            Ok(((word(0) != 0).then(|| word(0)), word(8)))
        }
        _ => Err(Error::Internal(
            "malformed published oldest transaction".into(),
        )),
    }
}

/// The start timestamps of this node's live transactions.
#[derive(Default)]
pub(crate) struct Active(Mutex<BTreeMap<Timestamp, usize>>);

impl Active {
    pub(crate) fn begin(&self, ts: Timestamp) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ts)
            .or_default() += 1;
    }

    pub(crate) fn end(&self, ts: Timestamp) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ts);
            }
        }
    }

    fn oldest(&self) -> Option<Timestamp> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .next()
            .copied()
    }
}

impl Db {
    /// Writes this node's oldest live transaction where every node's GC reads it.
    pub async fn publish_oldest_active(&self) -> Result<()> {
        let oldest = self.inner.active.oldest();
        let mut txn = self.begin(TxnOptions::default()).await?;
        let value = encode_published(oldest, txn.start_ts());
        txn.put(oldest_active_key(self.client().node_id()), value)?;
        txn.commit().await
    }

    /// The oldest live transaction any node published within [`PUBLISHED_FOR`] of `now`.
    async fn oldest_published(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        let (start, end) = oldest_active_span();
        let rows = self.read_span(&start, &end).await?;
        let fresh_ms = PUBLISHED_FOR.as_millis() as u64;
        let mut oldest: Option<Timestamp> = None;
        for (_, v) in rows {
            let (published, at) = decode_published(&v)?;
            if physical(at) + fresh_ms >= physical(now)
                && let Some(ts) = published
            {
                oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
            }
        }
        Ok(oldest)
    }

    /// Runs one GC pass over the ranges this node leads; returns the safe point used. The safe
    /// point stays below this node's oldest live transaction and every other node's, as they
    /// published it.
    pub async fn run_gc(&self) -> Result<Timestamp> {
        let now = self.now().await?;
        let ttl_ms = self.inner.config.gc_ttl.as_millis() as u64;
        let by_ttl = compose(physical(now).saturating_sub(ttl_ms), 0);
        let published = self.oldest_published(now).await?;
        let safe_point = [self.inner.active.oldest(), published]
            .into_iter()
            .flatten()
            .fold(by_ttl, Timestamp::min);
        let ranges: Vec<_> = self
            .client()
            .led_ranges()
            .map_err(kv_err)?
            .into_iter()
            .filter(|r| safe_point > r.gc_threshold)
            .collect();
        if ranges.is_empty() {
            return Ok(safe_point);
        }
        // Every lock below the safe point, in every range of the cluster (not only the ranges
        // led here), is resolved before any range is collected: a transaction's commit record
        // on its primary is its only proof, and a secondary still locked in a range not yet
        // collected would otherwise meet a primary whose record is gone, and stay locked for
        // good. A range that split or changed meanwhile may hide a lock this pass did not see:
        // then nothing is collected, and the next pass tries again.
        let all = self.client().all_ranges().await.map_err(kv_err)?;
        for desc in &all {
            let locks = self
                .client()
                .locks_before(desc, safe_point)
                .await
                .map_err(kv_err)?;
            for locked in locks {
                self.resolve_lock(&locked).await?;
            }
        }
        let generations = |r: &[kv::RangeDescriptor]| -> Vec<(kv::RangeId, u64)> {
            r.iter().map(|d| (d.range_id, d.generation)).collect()
        };
        let again = self.client().all_ranges().await.map_err(kv_err)?;
        if generations(&all) != generations(&again) {
            tracing::debug!("gc: the ranges changed while their locks were resolved; next pass");
            return Ok(safe_point);
        }
        for range in &ranges {
            self.client()
                .propose_to(&range.desc, kv::Command::Gc { safe_point })
                .await
                .map_err(kv_err)?;
            tracing::debug!(range = range.desc.range_id, safe_point, "gc");
        }
        Ok(safe_point)
    }
}
