//! Window functions: the input is read whole, each window's partitions are built and sorted
//! in memory, and each row gets the value of every window function appended.

use std::cmp::Ordering;
use std::collections::HashMap;

use async_trait::async_trait;

use super::aggregate::Acc;
use super::eval::eval;
use super::memory::Budget;
use super::ops::{Operator, collect, sort_order};
use super::rows::Row;
use crate::encoding::encode_key;
use crate::plan::{Frame, FrameBound, Window, WindowFunc};
use crate::store::KvTxn;
use crate::{Error, Result, Value};

/// Computes window functions over all of its input's rows.
pub(super) struct WindowOp {
    source: Option<Box<dyn Operator>>,
    windows: Vec<Window>,
    budget: Budget,
}

impl WindowOp {
    pub(super) fn new(source: Box<dyn Operator>, windows: Vec<Window>) -> WindowOp {
        WindowOp {
            source: Some(source),
            windows,
            budget: Budget::current(),
        }
    }
}

#[async_trait]
impl Operator for WindowOp {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let Some(source) = self.source.take() else {
            return Ok(None);
        };
        let mut rows = collect(source, txn, &self.budget).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        for w in &self.windows {
            let values = compute(w, &rows)?;
            for (row, v) in rows.iter_mut().zip(values) {
                row.push(v);
            }
        }
        Ok(Some(rows))
    }
}

/// The partitions of `rows` (indexes, in input order within each), in order of first row.
fn partitions(w: &Window, rows: &[Row]) -> Result<Vec<Vec<usize>>> {
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut parts: Vec<Vec<usize>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let key = w
            .partition_by
            .iter()
            .map(|e| eval(e, row))
            .collect::<Result<Row>>()?;
        let p = *index.entry(encode_key(&key, &[])).or_insert_with(|| {
            parts.push(Vec::new());
            parts.len() - 1
        });
        parts[p].push(i);
    }
    Ok(parts)
}

/// The value of one window function for every row (by input position).
fn compute(w: &Window, rows: &[Row]) -> Result<Vec<Value>> {
    let mut out = vec![Value::Null; rows.len()];
    for mut part in partitions(w, rows)? {
        let keys = part
            .iter()
            .map(|&i| w.order_by.iter().map(|k| eval(&k.expr, &rows[i])).collect())
            .collect::<Result<Vec<Row>>>()?;
        let mut order: Vec<usize> = (0..part.len()).collect();
        // Stable: rows with equal keys keep their input order.
        order.sort_by(|&a, &b| compare_keys(w, &keys[a], &keys[b]));
        let sorted_keys: Vec<&Row> = order.iter().map(|&o| &keys[o]).collect();
        part = order.iter().map(|&o| part[o]).collect();
        let peers = peer_groups(w, &sorted_keys);
        // Each row's frame as a range of the sorted partition (empty when it starts after it
        // ends); neither end decreases along the partition.
        let frames: Vec<(usize, usize)> = match w.frame {
            Frame::ToPeers => peers.iter().map(|&(_, end)| (0, end)).collect(),
            Frame::ToRow => (1..=part.len()).map(|end| (0, end)).collect(),
            Frame::Partition => vec![(0, part.len()); part.len()],
            Frame::Bounded { groups, start, end } => {
                bounded_frames(groups, start, end, &peers, part.len())
            }
        };
        let values = evaluate(&w.func, &part, &peers, &frames, rows)?;
        for (&i, v) in part.iter().zip(values) {
            out[i] = v;
        }
    }
    Ok(out)
}

fn compare_keys(w: &Window, a: &Row, b: &Row) -> Ordering {
    w.order_by
        .iter()
        .zip(a.iter().zip(b))
        .map(|(k, (x, y))| sort_order(x, y, k.descending, k.nulls_first))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The frame of each of a sorted partition's `n` rows, as a range of it, for bounds counted
/// in rows or in peer groups.
fn bounded_frames(
    groups: bool,
    start: FrameBound,
    end: FrameBound,
    peers: &[(usize, usize)],
    n: usize,
) -> Vec<(usize, usize)> {
    // Each distinct peer group, in order, and each row's group.
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut group = Vec::with_capacity(n);
    for &p in peers {
        if bounds.last() != Some(&p) {
            bounds.push(p);
        }
        group.push(bounds.len() - 1);
    }
    let last = bounds.len().saturating_sub(1);
    let off = |k: u64| usize::try_from(k).unwrap_or(usize::MAX);
    (0..n)
        .map(|j| {
            let (first, past) = if groups {
                let g = group[j];
                let from = match start {
                    FrameBound::UnboundedPreceding => 0,
                    FrameBound::Preceding(k) => bounds[g.saturating_sub(off(k))].0,
                    FrameBound::CurrentRow => bounds[g].0,
                    FrameBound::Following(k) => match g.checked_add(off(k)) {
                        Some(t) if t <= last => bounds[t].0,
                        _ => n,
                    },
                    FrameBound::UnboundedFollowing => n,
                };
                let to = match end {
                    FrameBound::UnboundedPreceding => 0,
                    FrameBound::Preceding(k) => match g.checked_sub(off(k)) {
                        Some(t) => bounds[t].1,
                        None => 0,
                    },
                    FrameBound::CurrentRow => bounds[g].1,
                    FrameBound::Following(k) => bounds[g.saturating_add(off(k)).min(last)].1,
                    FrameBound::UnboundedFollowing => n,
                };
                (from, to)
            } else {
                let from = match start {
                    FrameBound::UnboundedPreceding => 0,
                    FrameBound::Preceding(k) => j.saturating_sub(off(k)),
                    FrameBound::CurrentRow => j,
                    FrameBound::Following(k) => j.saturating_add(off(k)).min(n),
                    FrameBound::UnboundedFollowing => n,
                };
                let to = match end {
                    FrameBound::UnboundedPreceding => 0,
                    FrameBound::Preceding(k) => (j + 1).saturating_sub(off(k)),
                    FrameBound::CurrentRow => j + 1,
                    FrameBound::Following(k) => j.saturating_add(off(k)).saturating_add(1).min(n),
                    FrameBound::UnboundedFollowing => n,
                };
                (from, to)
            };
            (first, past.max(first))
        })
        .collect()
}

/// The end (exclusive) of each sorted row's peer group: rows with equal ORDER BY values
/// (all rows of the partition without ORDER BY).
fn peer_groups(w: &Window, keys: &[&Row]) -> Vec<(usize, usize)> {
    let mut groups = vec![(0, 0); keys.len()];
    let mut start = 0;
    while start < keys.len() {
        let mut end = start + 1;
        while end < keys.len() && compare_keys(w, keys[start], keys[end]).is_eq() {
            end += 1;
        }
        for g in &mut groups[start..end] {
            *g = (start, end);
        }
        start = end;
    }
    groups
}

/// The function's values for the rows of one sorted partition (`part` holds input
/// positions, `peers` each row's peer group as a range of `part`, `frames` each row's frame
/// as a range of `part`).
fn evaluate(
    func: &WindowFunc,
    part: &[usize],
    peers: &[(usize, usize)],
    frames: &[(usize, usize)],
    rows: &[Row],
) -> Result<Vec<Value>> {
    let n = part.len();
    let row = |j: usize| rows[part[j]].as_slice();
    Ok(match func {
        WindowFunc::RowNumber => (1..=n as i64).map(Value::Int).collect(),
        WindowFunc::Rank => peers
            .iter()
            .map(|&(start, _)| Value::Int(start as i64 + 1))
            .collect(),
        WindowFunc::DenseRank => {
            let mut rank = 0;
            let mut out = Vec::with_capacity(n);
            for (j, &(start, _)) in peers.iter().enumerate() {
                if start == j {
                    rank += 1;
                }
                out.push(Value::Int(rank));
            }
            out
        }
        WindowFunc::Ntile(buckets) => ntile(eval(buckets, row(0))?, n)?,
        WindowFunc::Lag {
            value,
            offset,
            default,
            lead,
        } => {
            let mut out = Vec::with_capacity(n);
            for j in 0..n {
                let Value::Int(off) = eval(offset, row(j))? else {
                    out.push(Value::Null);
                    continue;
                };
                let target = if *lead {
                    (j as i64).checked_add(off)
                } else {
                    (j as i64).checked_sub(off)
                };
                out.push(match target {
                    Some(t) if (0..n as i64).contains(&t) => eval(value, row(t as usize))?,
                    _ => eval(default, row(j))?,
                });
            }
            out
        }
        WindowFunc::FirstValue(e) => frames
            .iter()
            .map(|&(start, end)| match start < end {
                true => eval(e, row(start)),
                false => Ok(Value::Null),
            })
            .collect::<Result<_>>()?,
        WindowFunc::LastValue(e) => frames
            .iter()
            .map(|&(start, end)| match start < end {
                true => eval(e, row(end - 1)),
                false => Ok(Value::Null),
            })
            .collect::<Result<_>>()?,
        WindowFunc::Aggregate(a) if frames.iter().any(|&(start, _)| start > 0) => {
            // A frame that does not start at the partition's first row: each row's frame is
            // aggregated on its own (there is no inverse transition to remove rows).
            let mut out = Vec::with_capacity(n);
            for &(start, end) in frames {
                let mut acc = Acc::new(a);
                for j in start..end {
                    acc.add(a, row(j))?;
                }
                out.push(acc.finish(a)?);
            }
            out
        }
        WindowFunc::Aggregate(a) => {
            // Frames only grow along the partition: add the new rows, finish a copy.
            let mut acc = Acc::new(a);
            let mut out: Vec<Value> = Vec::with_capacity(n);
            let mut added = 0;
            for &(_, end) in frames {
                if added == end
                    && let Some(v) = out.last()
                {
                    out.push(v.clone());
                    continue;
                }
                while added < end {
                    acc.add(a, row(added))?;
                    added += 1;
                }
                out.push(acc.clone().finish(a)?);
            }
            out
        }
    })
}

/// ntile's bucket for each of `n` rows: the first `n % buckets` buckets have one row more.
fn ntile(buckets: Value, n: usize) -> Result<Vec<Value>> {
    let buckets = match buckets {
        Value::Null => return Ok(vec![Value::Null; n]),
        Value::Int(b) if b > 0 => b as usize,
        Value::Int(_) => {
            return Err(Error::InvalidArgumentForNtile(
                "argument of ntile must be greater than zero".into(),
            ));
        }
        v => return Err(Error::Internal(format!("ntile of {v}"))),
    };
    let per = n / buckets;
    let larger = n % buckets;
    let threshold = larger * (per + 1);
    Ok((0..n)
        .map(|i| {
            let bucket = if i < threshold {
                i / (per + 1) + 1
            } else {
                larger + (i - threshold) / per.max(1) + 1
            };
            Value::Int(bucket as i64)
        })
        .collect())
}
