//! Subqueries inside expressions: each is run as a plan of its own in the statement's
//! transaction and replaced by its result (a constant, or the value list of an IN).
//!
//! A subquery that refers to no column of the enclosing row runs once per operator
//! ([`resolve_uncorrelated`]); one that does runs for every row, after its outer references
//! are replaced by that row's values ([`eval_row`]).

use super::eval::eval;
use super::memory::Budget;
use super::ops;
use super::rows::Row;
use crate::plan::{Expr, Node, Subquery, SubqueryKind};
use crate::store::KvTxn;
use crate::{Error, Result, Value};

/// Replaces the subqueries of `e` that do not depend on the enclosing row by their results.
pub(crate) async fn resolve_uncorrelated(e: Expr, txn: &mut dyn KvTxn) -> Result<Expr> {
    resolve(e, None, txn).await
}

/// Evaluates `e` over `row`, running its subqueries with the row's values and calling its
/// sequence functions.
pub(crate) async fn eval_row(e: &Expr, row: &[Value], txn: &mut dyn KvTxn) -> Result<Value> {
    let e = resolve(e.clone(), Some(row), txn).await?;
    let e = super::sequence::resolve(e, row, txn).await?;
    eval(&e, row)
}

fn eligible(s: &Subquery, row: Option<&[Value]>) -> bool {
    s.kind != SubqueryKind::Lateral && (row.is_some() || !s.plan.refers_to(1))
}

/// Runs the eligible subqueries of `e` and puts their results in their place, until none is
/// left (an IN subquery's operand may hold another).
async fn resolve(mut e: Expr, row: Option<&[Value]>, txn: &mut dyn KvTxn) -> Result<Expr> {
    loop {
        let mut found = Vec::new();
        collect(&e, row, &mut found);
        if found.is_empty() {
            return Ok(e);
        }
        let mut results = Vec::with_capacity(found.len());
        for s in found {
            results.push(run(s, row, txn).await?);
        }
        let mut results = results.into_iter();
        e = replace(e, row, &mut results);
    }
}

/// The eligible subqueries of `e`, in the order [`replace`] meets them.
fn collect(e: &Expr, row: Option<&[Value]>, out: &mut Vec<Subquery>) {
    match e {
        Expr::Subquery(s) if eligible(s, row) => out.push(s.as_ref().clone()),
        e => e.children().into_iter().for_each(|c| collect(c, row, out)),
    }
}

fn replace(e: Expr, row: Option<&[Value]>, results: &mut impl Iterator<Item = Expr>) -> Expr {
    match e {
        Expr::Subquery(s) if eligible(&s, row) => results
            .next()
            .expect("one result was computed for each subquery collected"),
        e => e.map_children(&mut |c| replace(c, row, results)),
    }
}

/// Runs one subquery (with the enclosing row's values, if given) and returns its result.
async fn run(s: Subquery, row: Option<&[Value]>, txn: &mut dyn KvTxn) -> Result<Expr> {
    let mut plan = match row {
        Some(row) => crate::optimizer::optimize_bound(bind_outer_node(s.plan, row, 1)),
        None => s.plan,
    };
    if s.kind == SubqueryKind::Exists {
        plan = Node::Limit {
            source: Box::new(plan),
            limit: Some(Expr::Constant(Value::Int(1))),
            offset: None,
            ties: vec![],
        };
    }
    let rows: Vec<Row> = ops::collect(ops::build(plan)?, txn, &Budget::default()).await?;
    Ok(match s.kind {
        SubqueryKind::Exists => Expr::Constant(Value::Bool(!rows.is_empty())),
        SubqueryKind::Scalar => match rows.len() {
            0 => Expr::Constant(Value::Null),
            1 => Expr::Constant(rows.into_iter().flatten().next().unwrap_or(Value::Null)),
            _ => {
                return Err(Error::CardinalityViolation(
                    "more than one row returned by a subquery used as an expression".into(),
                ));
            }
        },
        SubqueryKind::Lateral => {
            return Err(Error::Internal(
                "a LATERAL item was evaluated as an expression".into(),
            ));
        }
        SubqueryKind::Array => Expr::Constant(Value::Array(
            rows.into_iter()
                .map(|r| r.into_iter().next().unwrap_or(Value::Null))
                .collect(),
        )),
        SubqueryKind::In(operand) => {
            let values = rows
                .into_iter()
                .map(|r| Expr::Constant(r.into_iter().next().unwrap_or(Value::Null)))
                .collect();
            Expr::InList(Box::new(operand), values)
        }
    })
}

/// Replaces a plan's references to the row `depth` levels out by that row's values.
pub(crate) fn bind_outer_node(node: Node, row: &[Value], depth: usize) -> Node {
    node.map_exprs(&mut |e| bind_outer(e, row, depth))
}

fn bind_outer(e: Expr, row: &[Value], depth: usize) -> Expr {
    match e {
        Expr::Outer { depth: d, index } if d == depth => {
            Expr::Constant(row.get(index).cloned().unwrap_or(Value::Null))
        }
        Expr::Subquery(s) => {
            let Subquery { kind, plan } = *s;
            let kind = match kind {
                SubqueryKind::In(op) => SubqueryKind::In(bind_outer(op, row, depth)),
                k => k,
            };
            let plan = bind_outer_node(plan, row, depth + 1);
            Expr::Subquery(Box::new(Subquery { kind, plan }))
        }
        e => e.map_children(&mut |c| bind_outer(c, row, depth)),
    }
}
