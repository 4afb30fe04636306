//! Aggregation: groups rows in memory and runs one accumulator per aggregate and group.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::eval::{eval, truth};
use super::jsonb;
use super::memory::{Budget, KEY_OVERHEAD, row_bytes};
use super::ops::{Operator, sort_order};
use super::rows::Row;
use crate::encoding::{encode_key, encode_key_value};
use crate::plan::{Aggregate, Expr};
use crate::store::KvTxn;
use crate::types::jsonb::Json;
use crate::types::{ArithOp, numeric};
use crate::{DataType, Error, Result, Value};

/// Groups its input by the group-by expressions and emits one row per group: the group
/// values then each aggregate's result.
pub(super) struct Aggregation {
    source: Box<dyn Operator>,
    group_by: Vec<Expr>,
    aggregates: Vec<Aggregate>,
    done: bool,
    /// What the groups reserve their memory from.
    budget: Budget,
}

impl Aggregation {
    pub(super) fn new(
        source: Box<dyn Operator>,
        group_by: Vec<Expr>,
        aggregates: Vec<Aggregate>,
    ) -> Aggregation {
        Aggregation {
            source,
            group_by,
            aggregates,
            done: false,
            budget: Budget::current(),
        }
    }
}

/// The running state of one aggregate.
#[derive(Clone)]
pub(super) enum Acc {
    Count(i64),
    Sum(Value, DataType),
    /// The sum (of the result type) and count of the values so far.
    Avg(Value, i64, DataType),
    /// The extreme so far; `true` for max.
    MinMax(Value, bool),
    /// bool_and (`true`) or bool_or of the values so far.
    Bool(Option<bool>, bool),
    /// string_agg's text (or bytes) so far.
    Concat(Option<Value>),
    /// array_agg's values so far (None before the first row).
    Array(Option<Vec<Value>>),
    /// The count, sum and sum of squares of exact values (variance of numerics).
    Exact(i64, Decimal, Decimal),
    /// The count, sum and sum of squared deviations of doubles (Youngs-Cramer, as
    /// PostgreSQL's `float8_accum`).
    Float(f64, f64, f64),
    /// jsonb_agg's elements so far (None before the first row).
    JsonbArray(Option<Vec<Json>>),
    /// jsonb_object_agg's pairs so far (None before the first row).
    JsonbObject(Option<Vec<(String, Json)>>),
    /// The encodings of the argument lists seen so far, and the aggregate over the first of each.
    Distinct(HashSet<Vec<u8>>, Box<Acc>),
    /// The aggregate over the rows that pass the filter.
    Filter(Box<Acc>),
    /// The sort keys and rows seen so far, fed to the aggregate in order at the end.
    Ordered(Vec<(Row, Row)>, Box<Acc>),
}

/// Whether the aggregate takes NULL values (array_agg, jsonb_agg and jsonb_object_agg,
/// also in ORDER BY).
fn keeps_nulls(a: &Aggregate) -> bool {
    match a {
        Aggregate::ArrayAgg(_) | Aggregate::JsonbAgg(_) | Aggregate::JsonbObjectAgg(..) => true,
        Aggregate::Ordered(a, _) => keeps_nulls(a),
        _ => false,
    }
}

fn mismatch() -> Error {
    Error::Internal("aggregate state mismatch".into())
}

impl Acc {
    pub(super) fn new(a: &Aggregate) -> Acc {
        match a {
            Aggregate::CountStar | Aggregate::Count(_) => Acc::Count(0),
            Aggregate::Sum(_, t) => Acc::Sum(Value::Null, *t),
            Aggregate::Avg(_, t) => Acc::Avg(Value::Null, 0, *t),
            Aggregate::Min(_) => Acc::MinMax(Value::Null, false),
            Aggregate::Max(_) => Acc::MinMax(Value::Null, true),
            Aggregate::BoolAnd(_) => Acc::Bool(None, true),
            Aggregate::BoolOr(_) => Acc::Bool(None, false),
            Aggregate::StringAgg(..) => Acc::Concat(None),
            Aggregate::JsonbAgg(_) => Acc::JsonbArray(None),
            Aggregate::JsonbObjectAgg(..) => Acc::JsonbObject(None),
            Aggregate::ArrayAgg(_) => Acc::Array(None),
            Aggregate::Stat(_, _, DataType::Float8) => Acc::Float(0.0, 0.0, 0.0),
            Aggregate::Stat(..) => Acc::Exact(0, Decimal::ZERO, Decimal::ZERO),
            Aggregate::Distinct(a) => Acc::Distinct(HashSet::new(), Box::new(Acc::new(a))),
            Aggregate::Filter(a, _) => Acc::Filter(Box::new(Acc::new(a))),
            Aggregate::Ordered(a, _) => Acc::Ordered(Vec::new(), Box::new(Acc::new(a))),
        }
    }

    pub(super) fn add(&mut self, a: &Aggregate, row: &[Value]) -> Result<()> {
        match (self, a) {
            (Acc::Filter(acc), Aggregate::Filter(inner, predicate)) => {
                if truth(eval(predicate, row)?)? == Some(true) {
                    acc.add(inner, row)?;
                }
                Ok(())
            }
            (Acc::Distinct(seen, acc), Aggregate::Distinct(inner)) => {
                let values = inner
                    .args()
                    .into_iter()
                    .map(|e| eval(e, row))
                    .collect::<Result<Vec<_>>>()?;
                // array_agg keeps a NULL, once, like any other value.
                let null = values.first().is_none_or(Value::is_null) && !keeps_nulls(inner);
                if !null && seen.insert(encode_key(&values, &[])) {
                    acc.add(inner, row)?;
                }
                Ok(())
            }
            (Acc::Ordered(rows, _), Aggregate::Ordered(_, keys)) => {
                let key = keys
                    .iter()
                    .map(|k| eval(&k.expr, row))
                    .collect::<Result<Row>>()?;
                rows.push((key, row.to_vec()));
                Ok(())
            }
            (Acc::Count(n), Aggregate::CountStar) => {
                *n += 1;
                Ok(())
            }
            (Acc::Count(n), Aggregate::Count(e)) => {
                if !eval(e, row)?.is_null() {
                    *n += 1;
                }
                Ok(())
            }
            (acc, a) => {
                let args = match a {
                    Aggregate::Sum(e, _)
                    | Aggregate::Avg(e, _)
                    | Aggregate::Min(e)
                    | Aggregate::Max(e) => {
                        vec![eval(e, row)?]
                    }
                    a => a
                        .args()
                        .into_iter()
                        .map(|e| eval(e, row))
                        .collect::<Result<Vec<_>>>()?,
                };
                if let Acc::Array(items) = acc {
                    let v = args.into_iter().next().unwrap_or(Value::Null);
                    items.get_or_insert_with(Vec::new).push(v);
                    return Ok(());
                }
                match (args.first(), a) {
                    (_, Aggregate::JsonbAgg(_) | Aggregate::JsonbObjectAgg(..)) => {
                        jsonb::add(acc, args)
                    }
                    (Some(Value::Null), _) => Ok(()),
                    _ => acc.add_values(args),
                }
            }
        }
    }

    /// Adds the argument values of one row whose first argument is not NULL.
    fn add_values(&mut self, args: Vec<Value>) -> Result<()> {
        let mut args = args.into_iter();
        let v = args.next().unwrap_or(Value::Bool(true));
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum(s, t) if s.is_null() => *s = v.cast(*t)?,
            Acc::Sum(s, t) => *s = ArithOp::Add.apply(std::mem::replace(s, Value::Null), v, *t)?,
            Acc::Avg(sum, n, t) => {
                let v = v.cast(*t)?;
                *sum = match std::mem::replace(sum, Value::Null) {
                    Value::Null => v,
                    s => ArithOp::Add.apply(s, v, *t)?,
                };
                *n += 1;
            }
            Acc::MinMax(m, max) => {
                let replace = m.is_null() || {
                    let o = v.compare(m)?.unwrap_or(std::cmp::Ordering::Equal);
                    if *max { o.is_gt() } else { o.is_lt() }
                };
                if replace {
                    *m = v;
                }
            }
            Acc::Bool(state, and) => {
                let Value::Bool(b) = v else {
                    return Err(mismatch());
                };
                *state = Some(match *state {
                    None => b,
                    Some(s) if *and => s && b,
                    Some(s) => s || b,
                });
            }
            Acc::Concat(state) => match (state.as_mut(), v, args.next()) {
                (None, v, _) => *state = Some(v),
                (Some(Value::Text(s)), Value::Text(t), d) => {
                    if let Some(Value::Text(d)) = d {
                        s.push_str(&d);
                    }
                    s.push_str(&t);
                }
                (Some(Value::Bytes(s)), Value::Bytes(b), d) => {
                    if let Some(Value::Bytes(d)) = d {
                        s.extend_from_slice(&d);
                    }
                    s.extend_from_slice(&b);
                }
                _ => return Err(mismatch()),
            },
            Acc::Exact(n, sum, sum_sq) => add_exact(n, sum, sum_sq, &v)?,
            Acc::Float(n, sx, sxx) => add_float(n, sx, sxx, &v)?,
            Acc::Distinct(..)
            | Acc::Filter(_)
            | Acc::Ordered(..)
            | Acc::Array(_)
            | Acc::JsonbArray(_)
            | Acc::JsonbObject(_) => return Err(mismatch()),
        }
        Ok(())
    }

    pub(super) fn finish(self, a: &Aggregate) -> Result<Value> {
        Ok(match (self, a) {
            // PostgreSQL sorts a DISTINCT aggregate's input, so its array is in order.
            (Acc::Distinct(_, acc), Aggregate::Distinct(inner))
                if matches!(**inner, Aggregate::ArrayAgg(_)) =>
            {
                match acc.finish(inner)? {
                    Value::Array(mut items) => {
                        items.sort_by(Value::sort_cmp);
                        Value::Array(items)
                    }
                    v => v,
                }
            }
            (Acc::Distinct(_, acc), Aggregate::Distinct(inner))
            | (Acc::Filter(acc), Aggregate::Filter(inner, _)) => acc.finish(inner)?,
            (Acc::Ordered(mut rows, mut acc), Aggregate::Ordered(inner, keys)) => {
                // A stable sort: rows with equal keys stay in input order.
                rows.sort_by(|(x, _), (y, _)| {
                    keys.iter()
                        .zip(x.iter().zip(y))
                        .map(|(k, (x, y))| sort_order(x, y, k.descending, k.nulls_first))
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                for (_, row) in &rows {
                    acc.add(inner, row)?;
                }
                acc.finish(inner)?
            }
            (Acc::Count(n), _) => Value::Int(n),
            (Acc::Avg(_, 0, _), _) => Value::Null,
            (Acc::Avg(sum, n, t), _) => ArithOp::Div.apply(sum, Value::Int(n), t)?,
            (Acc::Sum(v, _) | Acc::MinMax(v, _), _) => v,
            (Acc::Bool(b, _), _) => b.map_or(Value::Null, Value::Bool),
            (Acc::Concat(v), _) => v.unwrap_or(Value::Null),
            (acc @ (Acc::JsonbArray(_) | Acc::JsonbObject(_)), _) => jsonb::finish(acc),
            (Acc::Array(items), _) => items.map_or(Value::Null, Value::Array),
            (Acc::Exact(n, sum, sum_sq), Aggregate::Stat(s, ..)) => {
                numeric::variance(n, sum, sum_sq, s.is_sample(), s.is_stddev())?
                    .map_or(Value::Null, numeric::value)
            }
            (Acc::Float(n, _, sxx), Aggregate::Stat(s, ..)) => {
                let d = if s.is_sample() { n - 1.0 } else { n };
                if d <= 0.0 {
                    Value::Null
                } else if s.is_stddev() {
                    Value::Float((sxx / d).sqrt())
                } else {
                    Value::Float(sxx / d)
                }
            }
            _ => return Err(mismatch()),
        })
    }
}

fn add_exact(n: &mut i64, sum: &mut Decimal, sum_sq: &mut Decimal, v: &Value) -> Result<()> {
    let d = match v {
        Value::Int(i) => Decimal::from(*i),
        Value::Numeric(d) => *d,
        _ => return Err(mismatch()),
    };
    *n += 1;
    *sum = sum.checked_add(d).ok_or_else(numeric::overflow)?;
    *sum_sq = d
        .checked_mul(d)
        .and_then(|sq| sum_sq.checked_add(sq))
        .ok_or_else(numeric::overflow)?;
    Ok(())
}

/// One step of PostgreSQL's `float8_accum`: the running count, sum and sum of squared
/// deviations from the mean.
fn add_float(n: &mut f64, sx: &mut f64, sxx: &mut f64, v: &Value) -> Result<()> {
    let x = match v {
        Value::Float(f) => *f,
        Value::Float4(f) => f64::from(*f),
        v => match v.clone().cast(DataType::Float8)? {
            Value::Float(f) => f,
            _ => return Err(mismatch()),
        },
    };
    let before = *n;
    *n += 1.0;
    *sx += x;
    if before > 0.0 {
        let tmp = x * *n - *sx;
        *sxx += tmp * tmp / (*n * before);
        if (sx.is_infinite() || sxx.is_infinite()) && x.is_finite() {
            return Err(Error::OutOfRange("value out of range: overflow".into()));
        }
    } else if !x.is_finite() {
        *sxx = f64::NAN;
    }
    Ok(())
}

#[async_trait]
impl Operator for Aggregation {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(None);
        }
        let init: Vec<Acc> = self.aggregates.iter().map(Acc::new).collect();
        let mut groups: Vec<(Row, Vec<Acc>)> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        if self.group_by.is_empty() {
            groups.push((vec![], init.clone()));
            index.insert(vec![], 0);
        }
        let mut key_values: Row = Vec::with_capacity(self.group_by.len());
        let mut key = Vec::new();
        while let Some(batch) = self.source.next(txn).await? {
            for row in batch {
                key_values.clear();
                for e in &self.group_by {
                    key_values.push(eval(e, &row)?);
                }
                // The key encoding is canonical (one encoding per distinct value), so it groups.
                key.clear();
                for v in &key_values {
                    encode_key_value(&mut key, v, false);
                }
                let i = match index.get(key.as_slice()) {
                    Some(&i) => i,
                    None => {
                        self.budget.reserve(
                            row_bytes(&key_values)
                                + key.len()
                                + KEY_OVERHEAD
                                + init.len() * std::mem::size_of::<Acc>(),
                        )?;
                        groups.push((key_values.clone(), init.clone()));
                        index.insert(key.clone(), groups.len() - 1);
                        groups.len() - 1
                    }
                };
                for (acc, a) in groups[i].1.iter_mut().zip(&self.aggregates) {
                    acc.add(a, &row)?;
                }
            }
        }
        let rows: Vec<Row> = groups
            .into_iter()
            .map(|(mut key, accs)| {
                for (acc, a) in accs.into_iter().zip(&self.aggregates) {
                    key.push(acc.finish(a)?);
                }
                Ok(key)
            })
            .collect::<Result<_>>()?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows))
    }
}
