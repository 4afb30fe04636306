//! The lookup join ([`Node::LookupJoin`]): the right rows of each batch of left rows are read
//! by primary key, with one request per range for the batch.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::eval::{eval, truth};
use super::ops::{Operator, build, hash_join, join_key};
use super::rows::{Row, RowDecoder};
use crate::catalog::Table;
use crate::encoding::encode_key;
use crate::plan::{Expr, JoinKind, Node};
use crate::store::KvTxn;
use crate::{Error, Result, Value};

/// How many left rows are joined by lookups; the join reads its right input whole (a hash
/// join) for the rows after them. Without table statistics the size of the right table is
/// unknown: this bounds what lookups can cost a join whose left input is large, while a
/// small left input never reads more of the right table than it matches.
pub(crate) const LOOKUP_ROWS: usize = 2048;

pub(super) struct LookupJoin {
    /// The left input, until the join becomes a hash join.
    left: Option<Box<dyn Operator>>,
    /// The right input, read only by the hash join (built with the rest of the operators,
    /// so that EXPLAIN ANALYZE's slots follow the printed plan).
    right: Option<Box<dyn Operator>>,
    /// The hash join this join became.
    hash: Option<Box<dyn Operator>>,
    table: Arc<Table>,
    rows: RowDecoder,
    lookup: Vec<usize>,
    /// The condition of the filter over the table's scan, which looked-up rows must pass.
    filter: Option<Expr>,
    kind: JoinKind,
    on: Option<Expr>,
    keys: Vec<(usize, usize)>,
    widths: (usize, usize),
    /// Left rows joined by lookups so far.
    joined: usize,
}

impl LookupJoin {
    /// The operator of a [`Node::LookupJoin`].
    pub(super) fn build(
        left: Node,
        right: Node,
        table: Arc<Table>,
        lookup: Vec<usize>,
        kind: JoinKind,
        on: Option<Expr>,
        keys: Vec<(usize, usize)>,
    ) -> Result<Box<dyn Operator>> {
        let filter = match &right {
            Node::Scan { .. } => None,
            Node::Filter { predicate, .. } => Some(predicate.clone()),
            other => {
                return Err(Error::Internal(format!(
                    "a lookup join into {}",
                    other.explain_inline()
                )));
            }
        };
        let widths = (left.columns().len(), right.columns().len());
        let left = build(left)?;
        let right = build(right)?;
        Ok(Box::new(LookupJoin {
            left: Some(left),
            right: Some(right),
            hash: None,
            rows: RowDecoder::new(&table),
            table,
            lookup,
            filter,
            kind,
            on,
            keys,
            widths,
            joined: 0,
        }))
    }

    /// The primary key a left row looks up; None when it can match no row (a NULL, or a
    /// value out of the key column's range).
    fn key(&self, row: &Row) -> Option<Vec<u8>> {
        let mut values = Vec::with_capacity(self.lookup.len());
        for (&l, &c) in self.lookup.iter().zip(&self.table.primary_key) {
            if row[l].is_null() {
                return None;
            }
            let data_type = self.table.columns[c].data_type.without_typmod();
            values.push(row[l].clone().cast(data_type).ok()?);
        }
        let mut key = self.table.prefix();
        key.extend(encode_key(&values, &[]));
        Some(key)
    }

    /// Joins one batch of left rows to the rows they look up.
    async fn join_batch(&mut self, batch: Vec<Row>, txn: &mut dyn KvTxn) -> Result<Vec<Row>> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut position: HashMap<Vec<u8>, usize> = HashMap::new();
        let of_row: Vec<Option<usize>> = batch
            .iter()
            .map(|row| {
                let key = self.key(row)?;
                Some(*position.entry(key.clone()).or_insert_with(|| {
                    keys.push(key);
                    keys.len() - 1
                }))
            })
            .collect();
        let values = match keys.is_empty() {
            true => Vec::new(),
            false => txn.get_many(&keys).await?,
        };
        let mut found: Vec<Option<Row>> = Vec::with_capacity(keys.len());
        for (key, value) in keys.iter().zip(values) {
            let Some(value) = value else {
                found.push(None);
                continue;
            };
            let row = self.rows.decode(key, &value)?;
            let keep = match &self.filter {
                Some(f) => truth(eval(f, &row)?)? == Some(true),
                None => true,
            };
            found.push(keep.then_some(row));
        }
        let mut out = Vec::with_capacity(batch.len());
        for (left, at) in batch.into_iter().zip(of_row) {
            let right = at.and_then(|i| found[i].as_ref());
            match right {
                Some(right) if self.matches(&left, right)? => {
                    let mut row = left;
                    row.extend(right.iter().cloned());
                    out.push(row);
                }
                _ if self.kind == JoinKind::Left => {
                    let mut row = left;
                    row.extend(std::iter::repeat_n(Value::Null, self.widths.1));
                    out.push(row);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether a left row and the right row it looked up join: equal, non-NULL join keys
    /// (as a hash join compares them) and the join condition.
    fn matches(&self, left: &Row, right: &Row) -> Result<bool> {
        let l = join_key(left, self.keys.iter().map(|k| k.0));
        if l.is_none() || l != join_key(right, self.keys.iter().map(|k| k.1)) {
            return Ok(false);
        }
        let Some(on) = &self.on else {
            return Ok(true);
        };
        let mut row = left.clone();
        row.extend(right.iter().cloned());
        Ok(truth(eval(on, &row)?)? == Some(true))
    }

    /// Turns the join into a hash join whose left input starts with `batch`.
    fn become_hash(&mut self, batch: Vec<Row>) {
        let rest = self
            .left
            .take()
            .expect("the left input until the join is hashed");
        let right = self
            .right
            .take()
            .expect("the right input until the join is hashed");
        let left = Box::new(Prepend {
            first: Some(batch),
            rest,
        });
        let (on, keys) = (self.on.take(), std::mem::take(&mut self.keys));
        self.hash = Some(hash_join(left, right, self.widths, self.kind, on, keys));
    }
}

#[async_trait]
impl Operator for LookupJoin {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        loop {
            if let Some(hash) = &mut self.hash {
                return hash.next(txn).await;
            }
            let left = self.left.as_mut().expect("the left input until hashed");
            let Some(batch) = left.next(txn).await? else {
                return Ok(None);
            };
            if self.joined >= LOOKUP_ROWS {
                self.become_hash(batch);
                continue;
            }
            self.joined += batch.len();
            let out = self.join_batch(batch, txn).await?;
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// A batch already read, then the rest of an input.
struct Prepend {
    first: Option<Vec<Row>>,
    rest: Box<dyn Operator>,
}

#[async_trait]
impl Operator for Prepend {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        match self.first.take() {
            Some(batch) => Ok(Some(batch)),
            None => self.rest.next(txn).await,
        }
    }
}
