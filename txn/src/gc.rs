//! MVCC garbage collection. Each pass computes a safe point from the oracle,
//! `min(now - gc_ttl, oldest active start_ts)`, resolves every lock that started below it in
//! every range of the cluster (whoever leads it), and only then proposes a `Gc` command to each range this node leads: the
//! command removes, at apply time on every replica, the versions no read at or above the safe
//! point can see, and raises the range's GC threshold so that reads below it fail instead of
//! returning wrong answers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::db::{Db, kv_err};
use crate::oracle::{compose, physical};
use crate::{Result, Timestamp};

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
    /// Runs one GC pass over the ranges this node leads; returns the safe point used.
    pub async fn run_gc(&self) -> Result<Timestamp> {
        let now = self.now().await?;
        let ttl_ms = self.inner.config.gc_ttl.as_millis() as u64;
        let by_ttl = compose(physical(now).saturating_sub(ttl_ms), 0);
        let safe_point = self
            .inner
            .active
            .oldest()
            .map_or(by_ttl, |oldest| oldest.min(by_ttl));
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
