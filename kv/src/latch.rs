//! Leader latches: what makes one-phase commit safe.
//!
//! A one-phase commit writes its versions at apply time, with no locks before, so between taking
//! its commit timestamp `c` and the apply of its command nothing in the store shows that versions
//! at `c` are coming. A reader at `ts >= c` would miss them, and a transaction validating its
//! reads up to a commit timestamp `>= c` would miss a conflict (write skew). So the leader
//! latches the write keys *before* the commit timestamp is requested, and everything that must
//! see versions up to some timestamp `t` — reads at `t`, validations up to `t`, other one-phase
//! commits validating their reads — first waits for the latches on its span whose holder may
//! commit at or below `t`: holders that have not got their timestamp yet, and holders whose
//! timestamp is `<= t`. A latch is released after its command has applied (or failed).
//!
//! Why this suffices: anything that reads up to `t` got `t` from the oracle; a holder that latched
//! after `t` was issued requests its timestamp later, so it commits above `t` and need not be
//! waited for, and a holder that latched before is seen. Waits cannot form a cycle: a holder
//! waits only for holders with a smaller timestamp, or for ones still fetching theirs (which
//! never wait for anything to get it).
//!
//! Latches live on the leader's replica in memory. Write keys are exclusive among holders (a
//! second one-phase commit on the same key waits for the first to apply).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::mvcc::Timestamp;

/// A holder's commit timestamp before it is known.
const UNKNOWN: Timestamp = 0;

/// One holder of latches.
#[derive(Debug)]
struct Holder {
    commit_ts: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Latched key → its holder.
    held: BTreeMap<Vec<u8>, Arc<Holder>>,
}

/// The latch table of one replica.
#[derive(Default)]
pub struct Latches {
    state: Mutex<State>,
    /// Woken when a latch is released or a holder learns its timestamp.
    changed: Notify,
}

/// Latches held on a set of keys; released when dropped.
pub struct LatchGuard {
    latches: Arc<Latches>,
    holder: Arc<Holder>,
    keys: Vec<Vec<u8>>,
}

impl Latches {
    /// Latches `keys` (all or none), waiting while any of them is latched by another holder.
    pub async fn acquire(self: &Arc<Self>, keys: Vec<Vec<u8>>) -> LatchGuard {
        let holder = Arc::new(Holder {
            commit_ts: AtomicU64::new(UNKNOWN),
        });
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state.lock().expect("latch table");
                if keys.iter().all(|k| !state.held.contains_key(k)) {
                    for k in &keys {
                        state.held.insert(k.clone(), holder.clone());
                    }
                    break;
                }
            }
            changed.await;
        }
        metrics::counter!("tinkerdb_latches_acquired_total").increment(1);
        LatchGuard {
            latches: self.clone(),
            holder,
            keys,
        }
    }

    /// Waits until no latch on a key in `[start, end)` has a holder that may commit at or below
    /// `ts` (holders without a timestamp yet included), ignoring `own`.
    pub async fn wait(&self, start: &[u8], end: &[u8], ts: Timestamp, own: Option<&LatchGuard>) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.blocks(start, end, ts, own) {
                return;
            }
            metrics::counter!("tinkerdb_latch_waits_total").increment(1);
            changed.await;
        }
    }

    fn blocks(&self, start: &[u8], end: &[u8], ts: Timestamp, own: Option<&LatchGuard>) -> bool {
        let state = self.state.lock().expect("latch table");
        if state.held.is_empty() || start >= end {
            return false;
        }
        state
            .held
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .any(|(_, h)| {
                let c = h.commit_ts.load(Ordering::SeqCst);
                !own.is_some_and(|g| Arc::ptr_eq(&g.holder, h)) && (c == UNKNOWN || c <= ts)
            })
    }

    /// The number of keys latched now.
    pub fn len(&self) -> usize {
        self.state.lock().expect("latch table").held.len()
    }

    /// Whether no key is latched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LatchGuard {
    /// Records the holder's commit timestamp: waiters reading below it need not wait any more.
    pub fn set_commit_ts(&self, ts: Timestamp) {
        self.holder.commit_ts.store(ts, Ordering::SeqCst);
        self.latches.changed.notify_waiters();
    }

    /// The latched keys.
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

impl Drop for LatchGuard {
    fn drop(&mut self) {
        let mut state = self.latches.state.lock().expect("latch table");
        for k in &self.keys {
            if state
                .held
                .get(k)
                .is_some_and(|h| Arc::ptr_eq(h, &self.holder))
            {
                state.held.remove(k);
            }
        }
        drop(state);
        self.latches.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    /// Whether `fut` is still pending after the runtime had a chance to run it.
    async fn pending<F: std::future::Future>(fut: F) -> bool {
        tokio::time::timeout(Duration::from_millis(50), fut)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn readers_wait_for_holders_that_may_commit_below_them() {
        let latches = Arc::new(Latches::default());
        let guard = latches.acquire(vec![k("b")]).await;
        // Timestamp unknown: every reader of the span waits; readers elsewhere do not.
        assert!(pending(latches.wait(b"a", b"c", 100, None)).await);
        assert!(!pending(latches.wait(b"c", b"d", 100, None)).await);
        assert!(!pending(latches.wait(b"b", b"b", 100, None)).await);
        // The holder's own reads are not blocked by itself.
        assert!(!pending(latches.wait(b"a", b"c", 100, Some(&guard))).await);
        guard.set_commit_ts(50);
        assert!(pending(latches.wait(b"a", b"c", 50, None)).await);
        assert!(!pending(latches.wait(b"a", b"c", 49, None)).await);
        // A waiter is released when the latch is.
        let l2 = latches.clone();
        let waiter = tokio::spawn(async move { l2.wait(b"a", b"z", 60, None).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter released")
            .unwrap();
        assert!(latches.is_empty());
    }

    #[tokio::test]
    async fn writers_of_a_key_take_turns() {
        let latches = Arc::new(Latches::default());
        let first = latches.acquire(vec![k("a"), k("b")]).await;
        assert!(pending(latches.acquire(vec![k("b"), k("c")])).await);
        // Nothing of the refused set was taken.
        assert_eq!(latches.len(), 2);
        let other = latches.acquire(vec![k("c")]).await;
        drop(other);
        let l2 = latches.clone();
        let second =
            tokio::spawn(async move { l2.acquire(vec![k("b"), k("c")]).await.keys().len() });
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("second writer latched")
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn a_waiter_is_woken_when_a_holder_learns_a_higher_timestamp() {
        let latches = Arc::new(Latches::default());
        let guard = latches.acquire(vec![k("x")]).await;
        let l2 = latches.clone();
        let waiter = tokio::spawn(async move { l2.wait(b"x", b"y", 10, None).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        guard.set_commit_ts(11);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter released by the timestamp")
            .unwrap();
    }
}
