//! Memory for query state: what sorts, hash tables, aggregation groups, DISTINCT sets, window
//! partitions and buffered results hold is reserved from one pool per node, so that a query
//! that would need more than the node can give fails with 53200 instead of the process being
//! killed for running out of memory.
//!
//! Each statement reserves through its own [`Account`], which gives everything back when the
//! statement ends. Operators that buffer rows reserve an estimate of their size (the values
//! and what their strings and byte arrays hold, [`row_bytes`]) as they grow. Operators get the
//! account they reserve from when they are built: [`ops::build`](super::ops::build) hands them
//! the account installed on the building thread ([`building`]), as EXPLAIN ANALYZE installs its
//! collector. Plans built while no account is installed (a correlated subquery's, built again
//! for each row) reserve nothing.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Error, Result, Value};

/// The share of the machine's memory a node gives query state by default (CockroachDB's
/// `--max-sql-memory` default).
const DEFAULT_SHARE: f64 = 0.25;

/// What a hash set or map spends on each key beyond its bytes (an estimate).
pub(crate) const KEY_OVERHEAD: usize = 48;

/// The limit when the machine's memory cannot be read.
const FALLBACK_LIMIT: usize = 1 << 30;

/// The node's memory for query state.
#[derive(Debug)]
pub struct Pool {
    limit: AtomicUsize,
    used: AtomicUsize,
}

impl Pool {
    /// A pool of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
        })
    }

    /// A pool of a quarter of the machine's memory (1 GiB when that cannot be read).
    pub fn with_default_limit() -> Arc<Pool> {
        Pool::new(default_limit())
    }

    /// The pool's size in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Changes the pool's size (reservations made already stay).
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// The bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn reserve(&self, bytes: usize) -> Result<()> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let want = used.saturating_add(bytes);
            let limit = self.limit();
            if want > limit {
                return Err(Error::OutOfMemory(format!(
                    "memory budget exceeded: {bytes} bytes requested, {used} bytes in use, \
                     {limit} bytes limit (--max-sql-memory)"
                )));
            }
            match self
                .used
                .compare_exchange_weak(used, want, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The machine's memory in bytes, from `/proc/meminfo` (None where it cannot be read).
pub fn machine_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    kib.checked_mul(1024)
}

/// A quarter of the machine's memory.
fn default_limit() -> usize {
    match machine_memory() {
        Some(bytes) => (bytes as f64 * DEFAULT_SHARE) as usize,
        None => FALLBACK_LIMIT,
    }
}

/// One statement's reservations, given back to the pool when the account is dropped.
#[derive(Debug)]
pub(crate) struct Account {
    pool: Arc<Pool>,
    held: AtomicUsize,
}

impl Account {
    /// An empty account of `pool`.
    pub(crate) fn new(pool: &Arc<Pool>) -> Arc<Account> {
        Arc::new(Account {
            pool: pool.clone(),
            held: AtomicUsize::new(0),
        })
    }

    /// Reserves `bytes` more (53200 when the pool has not got them).
    pub(crate) fn reserve(&self, bytes: usize) -> Result<()> {
        self.pool.reserve(bytes)?;
        self.held.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.pool.release(*self.held.get_mut());
    }
}

/// What an operator reserves through: its statement's account, if it has one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Budget(Option<Arc<Account>>);

impl Budget {
    /// The account installed on this thread ([`building`]), if any.
    pub(crate) fn current() -> Budget {
        Budget(CURRENT.with(|c| c.borrow().clone()))
    }

    /// Reserves `bytes` (nothing without an account).
    pub(crate) fn reserve(&self, bytes: usize) -> Result<()> {
        match &self.0 {
            Some(account) => account.reserve(bytes),
            None => Ok(()),
        }
    }

    /// Reserves the size of `rows`.
    pub(crate) fn reserve_rows(&self, rows: &[Vec<Value>]) -> Result<()> {
        if self.0.is_none() {
            return Ok(());
        }
        self.reserve(rows.iter().map(|r| row_bytes(r)).sum())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Account>>> = const { RefCell::new(None) };
}

/// Runs `f` (which builds operators) with `account` installed on this thread.
pub(crate) fn building<T>(account: &Arc<Account>, f: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.borrow_mut().replace(account.clone()));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = before);
    out
}

/// An estimate of the memory a row holds: its values and their heap parts.
pub(crate) fn row_bytes(row: &[Value]) -> usize {
    std::mem::size_of::<Vec<Value>>()
        + row
            .iter()
            .map(|v| {
                std::mem::size_of::<Value>()
                    + match v {
                        Value::Text(s) => s.capacity(),
                        Value::Bytes(b) => b.capacity(),
                        _ => 0,
                    }
            })
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_limited_and_given_back_when_the_account_drops() {
        let pool = Pool::new(1000);
        let a = Account::new(&pool);
        a.reserve(600).unwrap();
        let b = Account::new(&pool);
        let err = b.reserve(500).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory(_)), "{err:?}");
        b.reserve(400).unwrap();
        assert_eq!(pool.used(), 1000);
        drop(a);
        assert_eq!(pool.used(), 400);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn the_default_limit_is_a_share_of_the_machine() {
        let limit = Pool::with_default_limit().limit();
        assert!(limit >= 64 << 20, "{limit}");
    }

    #[test]
    fn a_budget_reserves_from_the_account_installed_while_building() {
        let pool = Pool::new(1 << 20);
        let account = Account::new(&pool);
        let budget = building(&account, Budget::current);
        assert!(Budget::current().0.is_none(), "uninstalled after building");
        budget
            .reserve_rows(&[vec![Value::Text("x".repeat(100)), Value::Int(1)]])
            .unwrap();
        assert!(pool.used() > 100);
        drop((budget, account));
        assert_eq!(pool.used(), 0);
    }
}
