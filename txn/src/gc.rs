//! MVCC garbage collection. Each pass computes a safe point from the oracle,
//! `min(now - gc_ttl, oldest active start_ts)`, resolves every lock that started below it, and
//! proposes a `Gc` command to each range this node leads: the command removes, at apply time on
//! every replica, the versions no read at or above the safe point can see, and raises the
//! range's GC threshold so that reads below it fail instead of returning wrong answers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::oracle::{compose, physical};
use crate::transaction::{Db, kv_err};
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
        for replica in self.client().store().replicas() {
            if !replica.group().is_leader() || safe_point <= replica.gc_threshold() {
                continue;
            }
            for locked in replica.locks_before(safe_point).await.map_err(kv_err)? {
                self.resolve_lock(&locked).await?;
            }
            replica
                .propose(kv::Command::Gc { safe_point })
                .await
                .map_err(kv_err)?;
            tracing::debug!(range = replica.range_id, safe_point, "gc");
        }
        Ok(safe_point)
    }
}
