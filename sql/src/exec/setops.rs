//! DISTINCT and the set operations UNION, INTERSECT and EXCEPT [ALL]. Rows are compared by
//! their key encoding, which is canonical (one encoding per value, NULL equal to NULL), as
//! these operations require.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::memory::{Budget, KEY_OVERHEAD};
use super::ops::{Operator, build, collect};
use super::rows::Row;
use crate::encoding::encode_key;
use crate::plan::{Expr, Node, SetOp};
use crate::store::KvTxn;
use crate::{Error, Result};

fn row_key(row: &Row) -> Vec<u8> {
    encode_key(row, &[])
}

/// Emits each distinct row once, in input order (the set of rows seen is kept in memory).
pub(crate) struct Distinct {
    pub source: Box<dyn Operator>,
    pub seen: HashSet<Vec<u8>>,
    pub budget: Budget,
}

#[async_trait]
impl Operator for Distinct {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        while let Some(batch) = self.source.next(txn).await? {
            let mut out = Vec::new();
            for row in batch {
                let key = row_key(&row);
                if !self.seen.contains(&key) {
                    self.budget.reserve(key.len() + KEY_OVERHEAD)?;
                    self.seen.insert(key);
                    out.push(row);
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

/// Emits the first row of each run of rows with equal values in `columns` (DISTINCT ON over
/// input sorted so that such rows are adjacent); only the last run's key is kept.
pub(crate) struct DistinctOn {
    pub source: Box<dyn Operator>,
    pub columns: Vec<usize>,
    pub last: Option<Vec<u8>>,
}

#[async_trait]
impl Operator for DistinctOn {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        while let Some(batch) = self.source.next(txn).await? {
            let mut out = Vec::new();
            for row in batch {
                let values: Row = self.columns.iter().map(|&c| row[c].clone()).collect();
                let key = Some(encode_key(&values, &[]));
                if key != self.last {
                    self.last = key;
                    out.push(row);
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

/// A set operation: UNION streams both inputs (through a DISTINCT filter unless ALL);
/// INTERSECT and EXCEPT read the right input whole into a multiset, then stream the left.
pub(crate) struct SetOperation {
    pub op: SetOp,
    pub all: bool,
    pub left: Option<Box<dyn Operator>>,
    pub right: Option<Box<dyn Operator>>,
    /// Rows of the right input by key, with their multiplicity (INTERSECT, EXCEPT).
    pub counts: Option<HashMap<Vec<u8>, usize>>,
    /// Rows already emitted (without ALL).
    pub seen: HashSet<Vec<u8>>,
    pub budget: Budget,
}

impl SetOperation {
    /// Whether a left row (or, for UNION, any row) is emitted.
    fn keep(&mut self, row: &Row) -> Result<bool> {
        let key = row_key(row);
        let pass = match (self.op, self.counts.as_mut()) {
            (SetOp::Union, _) | (_, None) => true,
            (SetOp::Intersect, Some(counts)) => match counts.get_mut(&key) {
                Some(n) if *n > 0 => {
                    if self.all {
                        *n -= 1;
                    }
                    true
                }
                _ => false,
            },
            (SetOp::Except, Some(counts)) => match counts.get_mut(&key) {
                Some(n) if *n > 0 => {
                    if self.all {
                        *n -= 1;
                        false
                    } else {
                        false
                    }
                }
                _ => true,
            },
        };
        if !pass || self.all {
            return Ok(pass);
        }
        if self.seen.contains(&key) {
            return Ok(false);
        }
        self.budget.reserve(key.len() + KEY_OVERHEAD)?;
        Ok(self.seen.insert(key))
    }
}

#[async_trait]
impl Operator for SetOperation {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        if self.op != SetOp::Union
            && let Some(right) = self.right.take()
        {
            let mut counts = HashMap::new();
            for row in collect(right, txn, &self.budget).await? {
                *counts.entry(row_key(&row)).or_insert(0) += 1;
            }
            self.counts = Some(counts);
        }
        loop {
            let batch = match self.left.as_mut() {
                Some(left) => match left.next(txn).await? {
                    Some(b) => Some(b),
                    None => {
                        self.left = None;
                        continue;
                    }
                },
                None => match self.right.as_mut() {
                    Some(right) => right.next(txn).await?,
                    None => None,
                },
            };
            let Some(batch) = batch else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for row in batch {
                if self.keep(&row)? {
                    out.push(row);
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// The most rows a recursive query may return: one that never stops fails instead of
/// exhausting memory (PostgreSQL runs until it does).
pub(crate) const MAX_RECURSIVE_ROWS: usize = 1_000_000;

/// WITH RECURSIVE: the anchor's rows, then round after round of the recursive term over the
/// previous round's rows (substituted for its work table as constant rows) until a round
/// adds nothing. Each round's rows are emitted as one batch.
pub(crate) struct Recursive {
    anchor: Option<Box<dyn Operator>>,
    recursive: Node,
    all: bool,
    /// The rows of the last round (the next round's work table).
    working: Vec<Row>,
    seen: HashSet<Vec<u8>>,
    total: usize,
    budget: Budget,
}

impl Recursive {
    pub(crate) fn new(anchor: Node, recursive: Node, all: bool) -> Result<Recursive> {
        Ok(Recursive {
            anchor: Some(build(anchor)?),
            recursive,
            all,
            working: Vec::new(),
            seen: HashSet::new(),
            total: 0,
            budget: Budget::current(),
        })
    }

    /// Keeps the rows not seen before (all of them with UNION ALL).
    fn fresh(&mut self, rows: Vec<Row>) -> Result<Vec<Row>> {
        let rows: Vec<Row> = match self.all {
            true => rows,
            false => {
                let mut fresh = Vec::new();
                for row in rows {
                    let key = row_key(&row);
                    if !self.seen.contains(&key) {
                        self.budget.reserve(key.len() + KEY_OVERHEAD)?;
                        self.seen.insert(key);
                        fresh.push(row);
                    }
                }
                fresh
            }
        };
        self.total += rows.len();
        if self.total > MAX_RECURSIVE_ROWS {
            return Err(Error::InvalidParameter(format!(
                "recursive query returned more than {MAX_RECURSIVE_ROWS} rows"
            )));
        }
        Ok(rows)
    }

    /// The recursive term with the work table replaced by the last round's rows.
    fn round(&self) -> Result<Node> {
        let rows: Vec<Vec<Expr>> = self
            .working
            .iter()
            .map(|r| r.iter().cloned().map(Expr::Constant).collect())
            .collect();
        self.recursive.clone().transform(&mut |n| {
            Ok(match n {
                Node::WorkTable { columns } => Node::Values {
                    columns,
                    rows: rows.clone(),
                },
                n => n,
            })
        })
    }
}

#[async_trait]
impl Operator for Recursive {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let rows = match self.anchor.take() {
            Some(anchor) => collect(anchor, txn, &self.budget).await?,
            None if self.working.is_empty() => return Ok(None),
            None => collect(build(self.round()?)?, txn, &self.budget).await?,
        };
        let rows = self.fresh(rows)?;
        self.working = rows.clone();
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows))
    }
}
