//! EXPLAIN ANALYZE: runs a query with every operator instrumented and prints its plan with the
//! rows each operator returned and the time spent in it (including its inputs, as PostgreSQL
//! reports it), then the statement's KV requests and the rows they read.
//!
//! Operators are instrumented as they are built: while a [`Collector`] is installed on the
//! building thread, [`super::ops::build`] gives each node a slot, in the order the plan
//! printer lists nodes (a node, then its inputs from left to right), and wraps its operator.
//! A plan whose operators are built more than once or lazily (a recursive query's iterations)
//! gets more or fewer slots than printed nodes; its per-operator figures are then left out,
//! and only the totals are printed.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::ops::{Operator, build};
use super::rows::Row;
use crate::plan::{Node, Plan};
use crate::store::{KvResult, KvTxn, Savepoint};
use crate::{Error, Result};

/// What one operator did.
#[derive(Clone, Copy, Debug, Default)]
struct NodeStats {
    rows: u64,
    busy: Duration,
}

/// Per-operator figures of one run, by slot.
#[derive(Default)]
pub(super) struct Collector {
    nodes: Mutex<Vec<NodeStats>>,
}

impl Collector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NodeStats>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

thread_local! {
    static COLLECTOR: RefCell<Option<Arc<Collector>>> = const { RefCell::new(None) };
}

/// A slot for the operator about to be built, when a collector is installed.
pub(super) fn slot() -> Option<(Arc<Collector>, usize)> {
    COLLECTOR.with(|c| {
        let c = c.borrow().clone()?;
        let mut nodes = c.lock();
        nodes.push(NodeStats::default());
        let index = nodes.len() - 1;
        drop(nodes);
        Some((c, index))
    })
}

/// Wraps `op` to record into its slot (unchanged without one).
pub(super) fn wrap(
    slot: Option<(Arc<Collector>, usize)>,
    op: Box<dyn Operator>,
) -> Box<dyn Operator> {
    match slot {
        None => op,
        Some((collector, index)) => Box::new(Instrumented {
            inner: op,
            collector,
            index,
        }),
    }
}

struct Instrumented {
    inner: Box<dyn Operator>,
    collector: Arc<Collector>,
    index: usize,
}

#[async_trait]
impl Operator for Instrumented {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let start = Instant::now();
        let batch = self.inner.next(txn).await;
        let busy = start.elapsed();
        let mut nodes = self.collector.lock();
        let stats = &mut nodes[self.index];
        stats.busy += busy;
        if let Ok(Some(rows)) = &batch {
            stats.rows += rows.len() as u64;
        }
        batch
    }
}

/// Builds `node`'s operators with `collector` installed on this thread.
fn build_instrumented(node: Node, collector: &Arc<Collector>) -> Result<Box<dyn Operator>> {
    COLLECTOR.with(|c| *c.borrow_mut() = Some(collector.clone()));
    let op = build(node);
    COLLECTOR.with(|c| *c.borrow_mut() = None);
    op
}

/// Runs the query of `plan` and returns its annotated plan, one line per row of the result.
pub(crate) async fn explain_analyze(plan: Plan, txn: &mut dyn KvTxn) -> Result<Vec<String>> {
    let Plan::Select(node) = plan else {
        return Err(Error::NotSupported(
            "EXPLAIN ANALYZE of statements other than queries is not supported yet".into(),
        ));
    };
    let printed = Plan::Select(node.clone()).explain();
    let collector = Arc::new(Collector::default());
    let op = build_instrumented(node, &collector)?;
    let mut counting = Counting {
        txn,
        requests: 0,
        rows_read: 0,
    };
    let start = Instant::now();
    let mut op = op;
    let mut returned = 0u64;
    while let Some(batch) = op.next(&mut counting).await? {
        returned += batch.len() as u64;
    }
    let total = start.elapsed();
    let stats = collector.lock().clone();
    let lines: Vec<&str> = printed.lines().collect();
    let mut out: Vec<String> = if stats.len() == lines.len() {
        lines
            .iter()
            .zip(&stats)
            .map(|(line, s)| format!("{line} (actual rows={} time={} ms)", s.rows, ms(s.busy)))
            .collect()
    } else {
        lines.iter().map(|l| l.to_string()).collect()
    };
    out.push(format!(
        "Execution Time: {} ms, rows returned: {returned}, KV requests: {}, KV rows read: {}",
        ms(total),
        counting.requests,
        counting.rows_read
    ));
    Ok(out)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// A transaction that counts the KV reads made through it (a query's reads only: it refuses
/// to end the transaction, which stays the caller's).
struct Counting<'a> {
    txn: &'a mut dyn KvTxn,
    requests: u64,
    rows_read: u64,
}

#[async_trait]
impl KvTxn for Counting<'_> {
    fn isolation(&self) -> txn::IsolationLevel {
        self.txn.isolation()
    }
    fn read_ts(&self) -> txn::Timestamp {
        self.txn.read_ts()
    }
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.requests += 1;
        let v = self.txn.get(key).await?;
        self.rows_read += u64::from(v.is_some());
        Ok(v)
    }
    async fn get_many(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        self.requests += 1;
        let values = self.txn.get_many(keys).await?;
        self.rows_read += values.iter().filter(|v| v.is_some()).count() as u64;
        Ok(values)
    }
    async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.requests += 1;
        let rows = self.txn.scan(start, end, limit).await?;
        self.rows_read += rows.len() as u64;
        Ok(rows)
    }
    fn statement_start(&mut self) {
        self.txn.statement_start()
    }
    async fn lock_keys(&mut self, keys: Vec<Vec<u8>>) -> KvResult<bool> {
        self.requests += 1;
        self.txn.lock_keys(keys).await
    }
    fn set_isolation(&mut self, isolation: txn::IsolationLevel) -> bool {
        self.txn.set_isolation(isolation)
    }
    fn set_lock_timeout(&mut self, timeout: Option<Duration>) {
        self.txn.set_lock_timeout(timeout)
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        self.txn.put(key, value)
    }
    async fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        self.txn.put_new(key, value).await
    }
    fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        self.txn.delete(key)
    }
    fn savepoint(&self) -> Savepoint {
        self.txn.savepoint()
    }
    async fn rollback_to(&mut self, savepoint: &Savepoint) -> KvResult<()> {
        self.txn.rollback_to(savepoint).await
    }
    async fn commit(self: Box<Self>) -> KvResult<()> {
        Err(txn::Error::Internal(
            "a counted query cannot end its transaction".into(),
        ))
    }
    async fn rollback(self: Box<Self>) -> KvResult<()> {
        Err(txn::Error::Internal(
            "a counted query cannot end its transaction".into(),
        ))
    }
}
