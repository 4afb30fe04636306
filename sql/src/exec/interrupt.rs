//! Stopping a running statement: query cancellation (a CancelRequest, `pg_cancel_backend`)
//! and `statement_timeout`.
//!
//! Each session is a [`Backend`] with a process id and a secret key, registered with its
//! engine's [`Backends`] while it lives. A statement runs inside [`scope`], which makes the
//! session's backend the current one for the statement's task; the executor calls [`check`]
//! in the loops that produce rows (table and index scans, `generate_series`, VALUES, the
//! collection of a result) and `pg_sleep` sleeps in short slices between checks, so a
//! cancelled or timed-out statement stops within a batch of rows with 57014. A cancel that
//! arrives while no statement runs is dropped, as in PostgreSQL.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The longest `pg_sleep` waits between two checks for cancellation.
const SLEEP_SLICE: Duration = Duration::from_millis(10);

/// No stop was asked for.
const RUNNING: u8 = 0;
/// A client asked to cancel the statement.
const CANCELLED: u8 = 1;

tokio::task_local! {
    static CURRENT: Arc<Backend>;
}

/// One session as other sessions and cancel requests see it.
#[derive(Debug)]
pub struct Backend {
    pid: i32,
    secret: i32,
    state: AtomicU8,
    /// When the running statement's `statement_timeout` expires.
    deadline: Mutex<Option<Instant>>,
    /// The sessions it can cancel (`pg_cancel_backend`).
    peers: Weak<Backends>,
}

impl Backend {
    /// The process id reported to the client (BackendKeyData, `pg_backend_pid()`).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The key a CancelRequest must carry.
    pub fn secret(&self) -> i32 {
        self.secret
    }

    /// Asks the running statement, if any, to stop.
    fn cancel(&self) {
        self.state.store(CANCELLED, Ordering::Release);
    }

    /// Marks the start of a statement: forgets earlier cancels and sets its deadline.
    pub(crate) fn start(&self, timeout: Option<Duration>) {
        self.state.store(RUNNING, Ordering::Release);
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) =
            timeout.map(|t| Instant::now() + t);
    }

    /// 57014 if the statement was cancelled or ran past its deadline.
    fn check(&self) -> Result<()> {
        if self.state.load(Ordering::Acquire) == CANCELLED {
            return Err(Error::QueryCanceled(
                "canceling statement due to user request".into(),
            ));
        }
        let deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::QueryCanceled(
                "canceling statement due to statement timeout".into(),
            ));
        }
        Ok(())
    }
}

/// The live sessions of an engine, by process id.
#[derive(Debug, Default)]
pub struct Backends {
    live: Mutex<HashMap<i32, Arc<Backend>>>,
}

impl Backends {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Arc<Backend>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new session under a process id no live session has.
    pub(crate) fn register(self: &Arc<Self>) -> Arc<Backend> {
        let mut live = self.live();
        loop {
            // Positive, like an operating system's process ids.
            let pid = rand::random::<i32>() & i32::MAX;
            if pid == 0 || live.contains_key(&pid) {
                continue;
            }
            let backend = Arc::new(Backend {
                pid,
                secret: rand::random(),
                state: AtomicU8::new(RUNNING),
                deadline: Mutex::new(None),
                peers: Arc::downgrade(self),
            });
            live.insert(pid, backend.clone());
            return backend;
        }
    }

    /// Forgets a session that ended.
    pub(crate) fn unregister(&self, pid: i32) {
        self.live().remove(&pid);
    }

    /// A CancelRequest: cancels the running statement of `pid` if `secret` is its key
    /// (otherwise nothing happens, as in PostgreSQL). Returns whether it matched.
    pub fn cancel_request(&self, pid: i32, secret: i32) -> bool {
        match self.live().get(&pid) {
            Some(b) if b.secret == secret => {
                b.cancel();
                true
            }
            _ => false,
        }
    }

    /// `pg_cancel_backend(pid)`: whether a session of that pid exists (and was signalled).
    pub(crate) fn cancel_pid(&self, pid: i32) -> bool {
        match self.live().get(&pid) {
            Some(b) => {
                b.cancel();
                true
            }
            None => false,
        }
    }
}

/// Runs `f` (a statement) with `backend` as the current one, so [`check`] can stop it.
pub(crate) async fn scope<F: Future>(backend: Arc<Backend>, f: F) -> F::Output {
    CURRENT.scope(backend, f).await
}

/// 57014 when the current statement was cancelled or timed out (nothing outside [`scope`]).
pub(crate) fn check() -> Result<()> {
    CURRENT.try_with(|b| b.check()).unwrap_or(Ok(()))
}

/// The current session's process id (0 outside a session).
pub(crate) fn current_pid() -> i32 {
    CURRENT.try_with(|b| b.pid).unwrap_or(0)
}

/// `pg_cancel_backend(pid)` from the current session: whether `pid` is a live session.
pub(crate) fn cancel_backend(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    CURRENT
        .try_with(|b| b.peers.upgrade().is_some_and(|peers| peers.cancel_pid(pid)))
        .unwrap_or(false)
}

/// `pg_sleep(seconds)`: waits, checking for cancellation at least every [`SLEEP_SLICE`].
pub(crate) async fn sleep(seconds: f64) -> Result<()> {
    let total = if seconds.is_finite() && seconds > 0.0 {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    };
    let end = Instant::now().checked_add(total);
    loop {
        check()?;
        let left = match end {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => SLEEP_SLICE,
        };
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(SLEEP_SLICE)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_with_the_right_key_stops_the_running_statement() {
        let backends = Arc::new(Backends::default());
        let b = backends.register();
        b.start(None);
        assert!(!backends.cancel_request(b.pid(), b.secret().wrapping_add(1)));
        assert!(scope(b.clone(), async { check() }).await.is_ok());
        assert!(backends.cancel_request(b.pid(), b.secret()));
        let err = scope(b.clone(), async { check() }).await.unwrap_err();
        assert_eq!(
            err,
            Error::QueryCanceled("canceling statement due to user request".into())
        );
        assert!(check().is_ok(), "no statement outside a scope");
        b.start(None);
        assert!(scope(b.clone(), async { check() }).await.is_ok());
        backends.unregister(b.pid());
        assert!(!backends.cancel_pid(b.pid()));
    }

    #[tokio::test]
    async fn a_timeout_stops_a_sleep() {
        let backends = Arc::new(Backends::default());
        let b = backends.register();
        b.start(Some(Duration::from_millis(30)));
        let started = Instant::now();
        let err = scope(b.clone(), sleep(30.0)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            err,
            Error::QueryCanceled("canceling statement due to statement timeout".into())
        );
    }
}
