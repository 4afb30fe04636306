//! The ProjectSet operator: set-returning functions (unnest, generate_series) evaluated for
//! each input row and run in lockstep, as PostgreSQL 10 and later do: a row yields as many
//! rows as its longest function, the shorter ones padded with NULL.
//!
//! Each function's values for one input row are collected before that row's output is
//! built, so one call's result is held in memory.

use async_trait::async_trait;

use super::memory::Budget;
use super::ops::{Operator, collect};
use super::rows::Row;
use super::series::Series;
use super::subquery::eval_row;
use crate::plan::{Expr, SetFunction};
use crate::store::KvTxn;
use crate::{Result, Value};

/// Runs the functions over each input row.
pub(crate) struct ProjectSet {
    source: Box<dyn Operator>,
    functions: Vec<SetFunction>,
    ordinality: bool,
}

impl ProjectSet {
    pub(crate) fn new(
        source: Box<dyn Operator>,
        functions: Vec<SetFunction>,
        ordinality: bool,
    ) -> ProjectSet {
        ProjectSet {
            source,
            functions,
            ordinality,
        }
    }
}

/// Appends the rows one input row yields.
async fn expand(
    functions: &[SetFunction],
    ordinality: bool,
    row: Row,
    txn: &mut dyn KvTxn,
    out: &mut Vec<Row>,
) -> Result<()> {
    let mut columns = Vec::with_capacity(functions.len());
    for f in functions {
        columns.push(values(f, &row, txn).await?);
    }
    let n = columns.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..n {
        let mut r = row.clone();
        r.extend(
            columns
                .iter()
                .map(|c| c.get(i).cloned().unwrap_or(Value::Null)),
        );
        if ordinality {
            r.push(Value::Int(i as i64 + 1));
        }
        out.push(r);
    }
    Ok(())
}

/// The values of one function over `row`.
async fn values(f: &SetFunction, row: &[Value], txn: &mut dyn KvTxn) -> Result<Vec<Value>> {
    Ok(match f {
        SetFunction::Unnest(e) => match eval_row(e, row, txn).await? {
            Value::Array(items) => items,
            _ => vec![],
        },
        SetFunction::Series(args, ty) => {
            let mut constants = Vec::with_capacity(3);
            for a in args {
                constants.push(Expr::Constant(eval_row(a, row, txn).await?));
            }
            let [start, stop, step] = <[Expr; 3]>::try_from(constants)
                .map_err(|_| crate::Error::Internal("generate_series arguments".into()))?;
            let series = Series::new([start, stop, step], *ty);
            collect(Box::new(series), txn, &Budget::default())
                .await?
                .into_iter()
                .flatten()
                .collect()
        }
    })
}

#[async_trait]
impl Operator for ProjectSet {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        super::interrupt::check()?;
        loop {
            let Some(batch) = self.source.next(txn).await? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for row in batch {
                expand(&self.functions, self.ordinality, row, txn, &mut out).await?;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}
