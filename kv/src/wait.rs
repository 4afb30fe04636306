//! Per-key wait queues for transactions blocked by another transaction's lock.
//!
//! A transaction that meets a live foreign lock joins the key's queue and sleeps until a command
//! that can release locks on the key (commit, rollback, release, one-phase commit, a status check
//! that rolls back) has applied on this node; then the first waiter in line is woken and tries
//! again. A waiter woken for nothing (the lock was taken again by someone who did not queue)
//! rejoins at the front, so waiters are served in arrival order. Waiters still re-check after a
//! bounded sleep: the lock's owner may die (its TTL expires with no command applied). A waiter
//! on a node without a replica of the key's range waits in the queue of the range's leader
//! instead (`Request::WaitForRelease`, see `Client::lock_wait`), where the release applies.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::oneshot;

/// The node's lock wait queues, by raw key.
#[derive(Default)]
pub struct WaitQueues {
    queues: Mutex<HashMap<Vec<u8>, VecDeque<oneshot::Sender<()>>>>,
}

impl WaitQueues {
    /// Joins the queue of `key` (at the front when `front`, for a waiter woken for nothing).
    /// The receiver fires when the waiter's turn comes; dropping it leaves the queue.
    pub fn join(&self, key: &[u8], front: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut queues = self.queues.lock().expect("wait queues");
        let queue = queues.entry(key.to_vec()).or_default();
        if front {
            queue.push_front(tx);
        } else {
            queue.push_back(tx);
        }
        rx
    }

    /// Called after a command that may have released locks on `keys` applied: wakes the first
    /// live waiter of each key.
    pub fn released<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let mut queues = self.queues.lock().expect("wait queues");
        if queues.is_empty() {
            return;
        }
        for key in keys {
            let Some(queue) = queues.get_mut(key) else {
                continue;
            };
            while let Some(waiter) = queue.pop_front() {
                if waiter.send(()).is_ok() {
                    break;
                }
            }
            if queue.is_empty() {
                queues.remove(key);
            }
        }
    }

    /// The number of transactions waiting in the queue of `key`.
    pub fn waiting(&self, key: &[u8]) -> usize {
        let queues = self.queues.lock().expect("wait queues");
        queues
            .get(key)
            .map_or(0, |q| q.iter().filter(|w| !w.is_closed()).count())
    }

    /// The number of keys with waiters (for tests and statistics).
    pub fn keys_waited_on(&self) -> usize {
        let mut queues = self.queues.lock().expect("wait queues");
        queues.retain(|_, q| {
            q.retain(|w| !w.is_closed());
            !q.is_empty()
        });
        queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_are_woken_one_at_a_time_in_arrival_order() {
        let queues = WaitQueues::default();
        let mut first = queues.join(b"k", false);
        let mut second = queues.join(b"k", false);
        let mut other = queues.join(b"j", false);
        queues.released([b"k".as_slice()]);
        assert!(first.try_recv().is_ok());
        assert!(second.try_recv().is_err(), "only the first in line");
        assert!(other.try_recv().is_err(), "other keys are not woken");
        // A waiter woken for nothing goes back to the front, ahead of the second.
        let mut again = queues.join(b"k", true);
        queues.released([b"k".as_slice()]);
        assert!(again.try_recv().is_ok());
        assert!(second.try_recv().is_err());
        queues.released([b"k".as_slice()]);
        assert!(second.try_recv().is_ok());
    }

    #[tokio::test]
    async fn waiters_that_left_are_skipped() {
        let queues = WaitQueues::default();
        let gone = queues.join(b"k", false);
        let mut next = queues.join(b"k", false);
        assert_eq!(queues.waiting(b"k"), 2);
        drop(gone);
        assert_eq!(queues.waiting(b"k"), 1);
        assert_eq!(queues.keys_waited_on(), 1);
        queues.released([b"k".as_slice()]);
        assert!(next.try_recv().is_ok());
        assert_eq!(queues.keys_waited_on(), 0);
    }
}
