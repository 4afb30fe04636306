//! Deadlock detection among lock waits. Each waiting transaction waits for one lock holder at a
//! time; a wait that would close a cycle in the wait-for graph makes the waiter the victim
//! (40P01), which then rolls back and releases what the others wait for.
//!
//! The detector's home is the leader of range 1. Every node keeps a graph of the waits of its
//! own coordinators (a cycle among them is found without a network hop), and a node that does
//! not lead range 1 also sends each wait to the node that does (`Waits` calls, through
//! [`crate::oracle::Forward`]), whose graph thus holds the waits of the whole cluster. A waiter
//! repeats its wait at every lock re-check, so a wait is forgotten once it has not been
//! repeated for [`STALE_AFTER`]: the waits of a node that died, or that range 1's previous
//! leader knew, fade out, and a new leader's graph fills within one re-check. Detection is a
//! liveness aid only: a cycle missed while range 1's leadership moves or its leader is
//! unreachable ends at the lock wait timeout (55P03), as any long wait does.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Timestamp;

/// How long a wait counts without being repeated.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(5);

/// The wait-for graph: waiter start_ts → holder start_ts, with when the wait was last recorded.
#[derive(Default)]
pub(crate) struct Detector {
    waits: Mutex<HashMap<Timestamp, (Timestamp, Instant)>>,
    /// Waiters of this node whose waits were also sent to range 1's leader (their end is sent
    /// there too).
    forwarded: Mutex<HashSet<Timestamp>>,
}

impl Detector {
    /// Records that `waiter` waits for `holder`. Returns false, recording nothing, when the wait
    /// would close a cycle: the waiter must abort.
    pub(crate) fn wait(&self, waiter: Timestamp, holder: Timestamp) -> bool {
        let mut waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        waits.retain(|_, (_, at)| now.duration_since(*at) < STALE_AFTER);
        let mut current = holder;
        for _ in 0..=waits.len() {
            if current == waiter {
                return false;
            }
            match waits.get(&current) {
                Some(&(next, _)) => current = next,
                None => break,
            }
        }
        waits.insert(waiter, (holder, now));
        true
    }

    /// Removes `waiter`'s wait (it got the lock, gave up, or ended).
    pub(crate) fn done(&self, waiter: Timestamp) {
        self.waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&waiter);
    }

    /// Notes that `waiter`'s wait was sent to range 1's leader.
    pub(crate) fn forwarded(&self, waiter: Timestamp) {
        self.forwarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(waiter);
    }

    /// Whether `waiter`'s waits were sent to range 1's leader (forgetting that they were).
    pub(crate) fn take_forwarded(&self, waiter: Timestamp) -> bool {
        self.forwarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&waiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_that_closes_a_cycle_is_refused() {
        let d = Detector::default();
        assert!(d.wait(1, 2));
        assert!(d.wait(2, 3));
        assert!(!d.wait(3, 1), "3 → 1 → 2 → 3 is a cycle");
        assert!(d.wait(3, 4), "a wait elsewhere is fine");
        d.done(1);
        assert!(d.wait(4, 1), "1 no longer waits: no cycle");
        assert!(!d.wait(5, 5), "waiting for oneself");
        let now = Instant::now();
        d.waits.lock().unwrap().insert(7, (6, now - STALE_AFTER));
        assert!(
            d.wait(6, 7),
            "a wait not repeated for STALE_AFTER is forgotten"
        );
    }
}
