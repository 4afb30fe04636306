//! Deadlock detection among lock waits. Each waiting transaction waits for one lock holder at a
//! time; a wait that would close a cycle in the wait-for graph makes the waiter the victim
//! (40P01), which then rolls back and releases what the others wait for.
//!
//! The detector's home is the leader of range 1. With a single node, every coordinator runs on
//! that node, so the graph is this process's; a cluster will route waits to range 1's leader.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Timestamp;

/// The wait-for graph: waiter start_ts → holder start_ts.
#[derive(Default)]
pub(crate) struct Detector {
    waits: Mutex<HashMap<Timestamp, Timestamp>>,
}

impl Detector {
    /// Records that `waiter` waits for `holder`. Returns false, recording nothing, when the wait
    /// would close a cycle: the waiter must abort.
    pub(crate) fn wait(&self, waiter: Timestamp, holder: Timestamp) -> bool {
        let mut waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        let mut current = holder;
        for _ in 0..=waits.len() {
            if current == waiter {
                return false;
            }
            match waits.get(&current) {
                Some(&next) => current = next,
                None => break,
            }
        }
        waits.insert(waiter, holder);
        true
    }

    /// Removes `waiter`'s wait (it got the lock, gave up, or ended).
    pub(crate) fn done(&self, waiter: Timestamp) {
        self.waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&waiter);
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
    }
}
