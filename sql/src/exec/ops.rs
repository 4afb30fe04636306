//! Query operators: pull-based, each call returns the next batch of rows.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::eval::{eval, eval_count, truth};
use super::memory::Budget;
use super::rows::{Row, RowDecoder, decode_table_row};
use super::subquery::{eval_row, resolve_uncorrelated};
use crate::catalog::Table;
use crate::encoding::encode_key;
use crate::plan::{Expr, JoinKind, Node, SortKey, Span, SpanBound};
use crate::store::KvTxn;
use crate::{Result, Value};

/// Rows of the first KV scan request of a span; each full batch doubles the size of the
/// next request, up to [`MAX_SCAN_BATCH`] (the scan resumes after the last key of a full batch).
pub const SCAN_BATCH: usize = 1024;

/// The largest KV scan request: a long scan reads in few requests, a short one (or one under
/// a LIMIT) reads little more than it returns.
pub const MAX_SCAN_BATCH: usize = 8192;

/// A query operator.
#[async_trait]
pub(crate) trait Operator: Send {
    /// The next batch of rows (never empty), or `None` when done.
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>>;
}

/// Builds the operator tree of a node (whose parameters are already substituted); each
/// operator is instrumented while EXPLAIN ANALYZE collects (`analyze`).
pub(crate) fn build(node: Node) -> Result<Box<dyn Operator>> {
    let slot = super::analyze::slot();
    let op = build_node(node)?;
    Ok(super::analyze::wrap(slot, op))
}

fn build_node(node: Node) -> Result<Box<dyn Operator>> {
    Ok(match node {
        Node::Get { table, key } => Box::new(Get {
            table,
            key: Some(key),
        }),
        Node::Scan { table, span, read } => Box::new(Scan::new(table, &span, read.as_deref())?),
        Node::IndexScan {
            table,
            index,
            span,
            covering,
        } => Box::new(super::index_scan::IndexScan::new(
            table, index, &span, covering,
        )?),
        Node::Values { rows, .. } => Box::new(Values { rows: Some(rows) }),
        Node::Series {
            start,
            stop,
            step,
            column,
        } => Box::new(super::series::Series::new(
            [start, stop, step],
            column.data_type,
        )),
        Node::JsonbTable { func, arg, .. } => {
            Box::new(super::jsonb_table::JsonbTable::new(func, arg))
        }
        Node::Filter { source, predicate } => Box::new(Filter {
            source: build(*source)?,
            predicate: Exprs::new(vec![predicate]),
        }),
        Node::Projection { source, exprs, .. } => Box::new(Projection {
            source: build(*source)?,
            moved: moved_columns(&exprs),
            exprs: Exprs::new(exprs),
        }),
        Node::Join {
            left,
            right,
            kind,
            on,
            keys,
        } => {
            let widths = (left.columns().len(), right.columns().len());
            let left = build(*left)?;
            hash_join(left, build(*right)?, widths, kind, on, keys)
        }
        Node::LookupJoin {
            left,
            right,
            table,
            lookup,
            kind,
            on,
            keys,
        } => super::lookup_join::LookupJoin::build(*left, *right, table, lookup, kind, on, keys)?,
        Node::Lateral {
            left,
            right,
            kind,
            on,
        } => Box::new(super::lateral::LateralJoin::new(
            build(*left)?,
            right,
            kind,
            on,
        )?),
        Node::Distinct { source } => Box::new(super::setops::Distinct {
            source: build(*source)?,
            seen: Default::default(),
            budget: Budget::current(),
        }),
        Node::Window {
            source, windows, ..
        } => Box::new(super::window::WindowOp::new(build(*source)?, windows)),
        Node::ProjectSet {
            source,
            functions,
            ordinality,
            ..
        } => Box::new(super::srf::ProjectSet::new(
            build(*source)?,
            functions,
            ordinality,
        )),
        Node::DistinctOn { source, columns } => Box::new(super::setops::DistinctOn {
            source: build(*source)?,
            columns,
            last: None,
        }),
        Node::SetOp {
            op,
            all,
            left,
            right,
        } => Box::new(super::setops::SetOperation {
            op,
            all,
            left: Some(build(*left)?),
            right: Some(build(*right)?),
            counts: None,
            seen: Default::default(),
            budget: Budget::current(),
        }),
        Node::RecursiveCte {
            anchor,
            recursive,
            all,
        } => Box::new(super::setops::Recursive::new(*anchor, *recursive, all)?),
        Node::WorkTable { .. } => {
            return Err(crate::Error::Internal(
                "a work table outside its recursive query".into(),
            ));
        }
        Node::Order { source, keys } => Box::new(Order {
            source: build(*source)?,
            keys,
            done: false,
            keep: None,
            budget: Budget::current(),
        }),
        Node::Limit {
            source,
            limit,
            offset,
            ties,
        } => {
            let limit = limit
                .as_ref()
                .map(|l| eval_count(l, "LIMIT"))
                .transpose()?
                .flatten();
            let offset = offset
                .as_ref()
                .map(|o| eval_count(o, "OFFSET"))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            // A sort below a limit (without ties) needs to keep only the rows the limit can
            // return: a top-N sort.
            let keep = limit
                .filter(|_| ties.is_empty())
                .map(|l| usize::try_from(l.saturating_add(offset)).unwrap_or(usize::MAX));
            let source = match (*source, keep) {
                (Node::Order { source, keys }, Some(keep)) => {
                    let slot = super::analyze::slot();
                    let order = Box::new(Order {
                        source: build(*source)?,
                        keys,
                        done: false,
                        keep: Some(keep),
                        budget: Budget::default(),
                    });
                    super::analyze::wrap(slot, order)
                }
                (source, _) => build(source)?,
            };
            Box::new(Limit {
                source,
                limit,
                offset,
                ties,
                last: None,
            })
        }
        Node::Aggregate {
            source,
            group_by,
            aggregates,
            ..
        } => Box::new(super::aggregate::Aggregation::new(
            build(*source)?,
            group_by,
            aggregates,
        )),
    })
}

/// Reads all rows of an operator, reserving their memory from `budget`.
pub(crate) async fn collect(
    mut op: Box<dyn Operator>,
    txn: &mut dyn KvTxn,
    budget: &Budget,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    while let Some(batch) = op.next(txn).await? {
        super::interrupt::check()?;
        budget.reserve_rows(&batch)?;
        rows.extend(batch);
    }
    Ok(rows)
}

pub(super) fn const_values(exprs: &[Expr]) -> Result<Option<Vec<Value>>> {
    let values = exprs
        .iter()
        .map(|e| eval(e, &[]))
        .collect::<Result<Vec<_>>>()?;
    // A NULL bound matches no key (key columns are NOT NULL and `= NULL` is never true).
    Ok((!values.iter().any(Value::is_null)).then_some(values))
}

struct Get {
    table: Arc<Table>,
    key: Option<Vec<Expr>>,
}

#[async_trait]
impl Operator for Get {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let Some(key) = self.key.take() else {
            return Ok(None);
        };
        let Some(values) = const_values(&key)? else {
            return Ok(None);
        };
        let values = values
            .into_iter()
            .zip(&self.table.primary_key)
            .map(|(v, &c)| v.cast(self.table.columns[c].data_type.without_typmod()))
            .collect::<Result<Vec<_>>>();
        // A value out of the column's range cannot match.
        let Ok(values) = values else { return Ok(None) };
        let mut raw = self.table.prefix();
        raw.extend(encode_key(&values, &[]));
        match txn.get(&raw).await? {
            Some(v) => Ok(Some(vec![decode_table_row(&self.table, &raw, &v)?])),
            None => Ok(None),
        }
    }
}

struct Scan {
    rows: RowDecoder,
    /// The size of the next KV request.
    batch: usize,
    /// The next key to read; `None` when done.
    start: Option<Vec<u8>>,
    end: Vec<u8>,
}

impl Scan {
    fn new(table: Arc<Table>, span: &Span, read: Option<&[bool]>) -> Result<Scan> {
        let prefix = table.prefix();
        let bound = |b: &SpanBound| -> Result<Option<Vec<u8>>> {
            let Some(values) = const_values(&b.values)? else {
                return Ok(None);
            };
            let mut key = prefix.clone();
            key.extend(encode_key(&values, &[]));
            Ok(Some(if b.after {
                txn::keys::prefix_end(&key).unwrap_or_else(|| txn::keys::KEY_MAX.to_vec())
            } else {
                key
            }))
        };
        let (start, end) = (bound(&span.start)?, bound(&span.end)?);
        match (start, end) {
            (Some(start), Some(end)) => Ok(Scan {
                rows: RowDecoder::reading(&table, read),
                batch: SCAN_BATCH,
                start: Some(start),
                end,
            }),
            _ => Ok(Scan {
                rows: RowDecoder::new(&table),
                batch: SCAN_BATCH,
                start: None,
                end: vec![],
            }),
        }
    }
}

/// The next batch (up to `*size` pairs) of the span from `*start` to `end`, moving `*start`
/// past it (and doubling `*size`, up to [`MAX_SCAN_BATCH`], after a full batch); `None` once
/// the span is exhausted.
pub(crate) async fn scan_batch(
    txn: &mut dyn KvTxn,
    start: &mut Option<Vec<u8>>,
    end: &[u8],
    size: &mut usize,
) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>> {
    super::interrupt::check()?;
    let Some(from) = start.take() else {
        return Ok(None);
    };
    if from.as_slice() >= end {
        return Ok(None);
    }
    let batch = txn.scan(&from, end, *size).await?;
    if batch.len() == *size
        && let Some((last, _)) = batch.last()
    {
        *start = Some(txn::keys::next_key(last));
        *size = (*size * 2).min(MAX_SCAN_BATCH);
    }
    Ok((!batch.is_empty()).then_some(batch))
}

#[async_trait]
impl Operator for Scan {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let Some(batch) = scan_batch(txn, &mut self.start, &self.end, &mut self.batch).await?
        else {
            return Ok(None);
        };
        batch
            .iter()
            .map(|(k, v)| self.rows.decode(k, v))
            .collect::<Result<_>>()
            .map(Some)
    }
}

struct Values {
    rows: Option<Vec<Vec<Expr>>>,
}

#[async_trait]
impl Operator for Values {
    async fn next(&mut self, _txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let Some(rows) = self.rows.take().filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let rows = rows
            .iter()
            .map(|r| r.iter().map(|e| eval(e, &[])).collect())
            .collect::<Result<_>>()?;
        Ok(Some(rows))
    }
}

/// The expressions of a Filter or Projection, which may hold subqueries: uncorrelated ones
/// are run before the first row, correlated ones for every row.
struct Exprs {
    exprs: Vec<Expr>,
    resolved: bool,
    correlated: bool,
}

impl Exprs {
    fn new(exprs: Vec<Expr>) -> Exprs {
        let resolved = !exprs.iter().any(Expr::has_subquery);
        Exprs {
            exprs,
            resolved,
            correlated: false,
        }
    }

    async fn prepare(&mut self, txn: &mut dyn KvTxn) -> Result<()> {
        if std::mem::replace(&mut self.resolved, true) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(self.exprs.len());
        for e in std::mem::take(&mut self.exprs) {
            out.push(resolve_uncorrelated(e, txn).await?);
        }
        self.correlated = out.iter().any(Expr::has_subquery);
        self.exprs = out;
        Ok(())
    }

    async fn eval(&self, i: usize, row: &[Value], txn: &mut dyn KvTxn) -> Result<Value> {
        if self.correlated {
            eval_row(&self.exprs[i], row, txn).await
        } else {
            eval(&self.exprs[i], row)
        }
    }
}

struct Filter {
    source: Box<dyn Operator>,
    predicate: Exprs,
}

#[async_trait]
impl Operator for Filter {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        self.predicate.prepare(txn).await?;
        while let Some(batch) = self.source.next(txn).await? {
            let mut out = Vec::with_capacity(batch.len());
            if self.predicate.correlated {
                for row in batch {
                    if truth(self.predicate.eval(0, &row, txn).await?)? == Some(true) {
                        out.push(row);
                    }
                }
            } else {
                let predicate = &self.predicate.exprs[0];
                for row in batch {
                    if truth(eval(predicate, &row)?)? == Some(true) {
                        out.push(row);
                    }
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

struct Projection {
    source: Box<dyn Operator>,
    exprs: Exprs,
    /// For each expression: it is a column no other expression reads, which can be moved out
    /// of the input row once every expression before it has been evaluated.
    moved: Vec<bool>,
}

/// Which of a projection's expressions are columns read by no other expression (nor twice).
fn moved_columns(exprs: &[Expr]) -> Vec<bool> {
    let mut reads = std::collections::HashMap::<usize, usize>::new();
    for e in exprs {
        for c in e.columns_used() {
            *reads.entry(c).or_default() += 1;
        }
    }
    exprs
        .iter()
        .map(|e| matches!(e, Expr::Column(c) if reads.get(c) == Some(&1)))
        .collect()
}

#[async_trait]
impl Operator for Projection {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        self.exprs.prepare(txn).await?;
        let Some(batch) = self.source.next(txn).await? else {
            return Ok(None);
        };
        if !self.exprs.correlated {
            // Without correlated subqueries evaluation needs no transaction: no await per value.
            // Each output row is built in the input row's place; columns projected once are
            // moved out rather than copied.
            let mut batch = batch;
            let exprs = &self.exprs.exprs;
            let mut scratch = Vec::with_capacity(exprs.len());
            for row in &mut batch {
                for (e, &moved) in exprs.iter().zip(&self.moved) {
                    match (e, moved) {
                        (Expr::Column(c), true) => {
                            scratch.push(std::mem::replace(&mut row[*c], Value::Null))
                        }
                        (e, _) => scratch.push(eval(e, row)?),
                    }
                }
                row.clear();
                row.append(&mut scratch);
            }
            return Ok(Some(batch));
        }
        let mut rows = Vec::with_capacity(batch.len());
        for row in &batch {
            let mut out = Vec::with_capacity(self.exprs.exprs.len());
            for i in 0..self.exprs.exprs.len() {
                out.push(self.exprs.eval(i, row, txn).await?);
            }
            rows.push(out);
        }
        Ok(Some(rows))
    }
}

/// The right input of a join, read whole, hashed on the join keys when there are any.
#[derive(Default)]
struct Built {
    rows: Vec<Row>,
    index: HashMap<Vec<u8>, Vec<usize>>,
    /// Which right rows some left row matched (for RIGHT and FULL joins).
    matched: Vec<bool>,
}

struct Join {
    left: Box<dyn Operator>,
    /// The right input until it has been read into `built`.
    right: Option<Box<dyn Operator>>,
    right_width: usize,
    left_width: usize,
    /// The left input is exhausted (and unmatched right rows, if kept, were emitted).
    left_done: bool,
    kind: JoinKind,
    on: Option<Expr>,
    keys: Vec<(usize, usize)>,
    built: Built,
    budget: Budget,
}

impl Join {
    async fn build(&mut self, txn: &mut dyn KvTxn) -> Result<()> {
        let Some(right) = self.right.take() else {
            return Ok(());
        };
        self.built.rows = collect(right, txn, &self.budget).await?;
        self.built.matched = vec![false; self.built.rows.len()];
        if self.keys.is_empty() {
            return Ok(());
        }
        for (i, row) in self.built.rows.iter().enumerate() {
            // A NULL key equals nothing.
            if let Some(key) = join_key(row, self.keys.iter().map(|k| k.1)) {
                self.built.index.entry(key).or_default().push(i);
            }
        }
        Ok(())
    }

    /// The joined rows of one left row.
    fn probe(&mut self, left: &Row, out: &mut Vec<Row>) -> Result<()> {
        let all: Vec<usize>;
        let candidates: &[usize] = if self.keys.is_empty() {
            all = (0..self.built.rows.len()).collect();
            &all
        } else {
            match join_key(left, self.keys.iter().map(|k| k.0)) {
                Some(key) => self.built.index.get(&key).map_or(&[], |v| v.as_slice()),
                None => &[],
            }
        };
        let mut matched = false;
        for &i in candidates {
            let mut row = left.clone();
            row.extend(self.built.rows[i].iter().cloned());
            let keep = match &self.on {
                Some(on) => truth(eval(on, &row)?)? == Some(true),
                None => true,
            };
            if keep {
                matched = true;
                self.built.matched[i] = true;
                out.push(row);
            }
        }
        if !matched && self.kind.keeps_left() {
            let mut row = left.clone();
            row.extend(std::iter::repeat_n(Value::Null, self.right_width));
            out.push(row);
        }
        Ok(())
    }
}

/// A join of `left` and `right` (of `widths` columns), hashing the right input on the
/// `keys` when there are any (see [`Node::Join`]).
pub(super) fn hash_join(
    left: Box<dyn Operator>,
    right: Box<dyn Operator>,
    (left_width, right_width): (usize, usize),
    kind: JoinKind,
    on: Option<Expr>,
    keys: Vec<(usize, usize)>,
) -> Box<dyn Operator> {
    Box::new(Join {
        right_width,
        left_width,
        left_done: false,
        left,
        right: Some(right),
        kind,
        on,
        keys,
        built: Built::default(),
        budget: Budget::current(),
    })
}

/// The encoded key of a row's join columns; `None` if one is NULL.
pub(super) fn join_key(row: &[Value], columns: impl Iterator<Item = usize>) -> Option<Vec<u8>> {
    let values: Vec<Value> = columns.map(|c| row[c].clone()).collect();
    (!values.iter().any(Value::is_null)).then(|| encode_key(&values, &[]))
}

#[async_trait]
impl Operator for Join {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        self.build(txn).await?;
        if self.left_done {
            return Ok(None);
        }
        while let Some(batch) = self.left.next(txn).await? {
            let mut out = Vec::new();
            for left in &batch {
                self.probe(left, &mut out)?;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        self.left_done = true;
        if !self.kind.keeps_right() {
            return Ok(None);
        }
        // The right rows no left row matched, NULL-extended on the left.
        let out: Vec<Row> = (0..self.built.rows.len())
            .filter(|&i| !self.built.matched[i])
            .map(|i| {
                let mut row = vec![Value::Null; self.left_width];
                row.extend(self.built.rows[i].iter().cloned());
                row
            })
            .collect();
        Ok((!out.is_empty()).then_some(out))
    }
}

struct Order {
    source: Box<dyn Operator>,
    keys: Vec<SortKey>,
    done: bool,
    /// Under a limit: only the first `keep` rows in order are wanted (top-N).
    keep: Option<usize>,
    /// What a full sort reserves its rows from (a top-N sort holds a bounded number).
    budget: Budget,
}

/// Rows a top-N sort gathers beyond twice its `keep` before it sorts and cuts them again.
const TOP_N_SLACK: usize = 1024;

impl Order {
    /// Sorts stably, so rows with equal keys keep their input order whether or not the rows
    /// were cut down meanwhile (the first `keep` of a stable sort of a prefix's first `keep`
    /// followed by more rows are those of the whole).
    fn sort(&self, rows: &mut [Row]) {
        rows.sort_by(|a, b| self.compare(a, b));
    }

    /// How two rows compare in the sort's order.
    fn compare(&self, a: &Row, b: &Row) -> std::cmp::Ordering {
        for k in &self.keys {
            let o = sort_order(&a[k.column], &b[k.column], k.descending, k.nulls_first);
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    }
}

#[async_trait]
impl Operator for Order {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(None);
        }
        let mut rows = Vec::new();
        // Under a limit, once `keep` rows have been cut from a sorted prefix, the last of them:
        // a later row that does not sort before it cannot be among the first `keep` (an equal
        // one comes after it in input order, and the sort is stable).
        let mut threshold: Option<Row> = None;
        while let Some(batch) = self.source.next(txn).await? {
            let Some(keep) = self.keep else {
                self.budget.reserve_rows(&batch)?;
                rows.extend(batch);
                continue;
            };
            match &threshold {
                Some(t) => rows.extend(batch.into_iter().filter(|r| self.compare(r, t).is_lt())),
                None => rows.extend(batch),
            }
            if rows.len() > keep.saturating_mul(2).saturating_add(TOP_N_SLACK) {
                self.sort(&mut rows);
                rows.truncate(keep);
                threshold = rows.last().cloned();
            }
        }
        self.sort(&mut rows);
        if let Some(keep) = self.keep {
            rows.truncate(keep);
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

/// How two values of a sort key compare in the key's direction and NULL placement.
pub(crate) fn sort_order(
    x: &Value,
    y: &Value,
    descending: bool,
    nulls_first: bool,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (x.is_null(), y.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) if nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if descending => y.sort_cmp(x),
        (false, false) => x.sort_cmp(y),
    }
}

struct Limit {
    source: Box<dyn Operator>,
    limit: Option<u64>,
    offset: u64,
    /// The columns whose values, equal to the last row's within the limit, let a row past it
    /// through (WITH TIES).
    ties: Vec<usize>,
    /// The tie columns' encoding in the last row emitted (WITH TIES).
    last: Option<Vec<u8>>,
}

impl Limit {
    fn tie_key(&self, row: &Row) -> Vec<u8> {
        let values: Row = self.ties.iter().map(|&c| row[c].clone()).collect();
        encode_key(&values, &[])
    }

    /// The rows of a batch past the limit that tie with the last row within it; whether the
    /// ties go on past the batch.
    fn take_ties(&mut self, batch: Vec<Row>) -> (Vec<Row>, bool) {
        let mut out = Vec::new();
        for row in batch {
            if self.last.is_none() || Some(self.tie_key(&row)) != self.last {
                return (out, false);
            }
            out.push(row);
        }
        (out, true)
    }
}

#[async_trait]
impl Operator for Limit {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        loop {
            if self.limit == Some(0) && (self.ties.is_empty() || self.last.is_none()) {
                return Ok(None);
            }
            let Some(mut batch) = self.source.next(txn).await? else {
                return Ok(None);
            };
            let skip = self.offset.min(batch.len() as u64) as usize;
            self.offset -= skip as u64;
            batch.drain(..skip);
            if self.limit == Some(0) {
                let (out, more) = self.take_ties(batch);
                if !more {
                    self.last = None;
                }
                if !out.is_empty() {
                    return Ok(Some(out));
                }
                continue;
            }
            let mut rest = Vec::new();
            if let Some(limit) = &mut self.limit {
                let keep = (*limit).min(batch.len() as u64) as usize;
                rest = batch.split_off(keep);
                *limit -= batch.len() as u64;
            }
            if !self.ties.is_empty() && self.limit == Some(0) {
                if let Some(row) = batch.last() {
                    self.last = Some(self.tie_key(row));
                }
                let (more_rows, more) = self.take_ties(rest);
                batch.extend(more_rows);
                if !more {
                    self.last = None;
                }
            }
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
        }
    }
}
