//! Lowering a table access to key spans: equality on the whole primary key becomes a point
//! [`Node::Get`], equality on a key prefix and/or a range on the next key column becomes a
//! [`Node::Scan`] of that span, anything else a full-table scan. Conjuncts not expressed by the
//! key stay in a [`Node::Filter`] just above.

use std::sync::Arc;

use crate::catalog::Table;
use crate::plan::{CmpOp, Expr, Node, Span, SpanBound};
use crate::{DataType, Value};

/// Builds the access path for `table` with an optional WHERE predicate over its columns.
pub(crate) fn access(
    table: Arc<Table>,
    predicate: Option<Expr>,
    params: &[Option<DataType>],
) -> Node {
    let mut conjuncts = predicate.map(Expr::into_conjuncts).unwrap_or_default();
    let mut eq = Vec::new();
    for &col in &table.primary_key {
        let ty = table.columns[col].data_type;
        match take(&mut conjuncts, col, ty, params, |op| op == CmpOp::Eq) {
            Some((_, v)) => eq.push(v),
            None => break,
        }
    }
    let node = if eq.len() == table.primary_key.len() {
        Node::Get { table, key: eq }
    } else {
        let span = range_span(&table, eq, &mut conjuncts, params);
        Node::Scan { table, span }
    };
    match Expr::and_all(conjuncts) {
        Some(predicate) => Node::Filter {
            source: Box::new(node),
            predicate,
        },
        None => node,
    }
}

/// The span for an equality prefix `eq` plus at most one lower and one upper bound on the
/// next key column.
fn range_span(
    table: &Table,
    eq: Vec<Expr>,
    conjuncts: &mut Vec<Expr>,
    params: &[Option<DataType>],
) -> Span {
    let mut span = Span {
        start: SpanBound {
            values: eq.clone(),
            after: false,
        },
        end: SpanBound {
            values: eq.clone(),
            after: true,
        },
    };
    let Some(&col) = table.primary_key.get(eq.len()) else {
        return span;
    };
    let ty = table.columns[col].data_type;
    if let Some((op, v)) = take(conjuncts, col, ty, params, |op| {
        matches!(op, CmpOp::Gt | CmpOp::GtEq)
    }) {
        let mut values = eq.clone();
        values.push(v);
        span.start = SpanBound {
            values,
            after: op == CmpOp::Gt,
        };
    }
    if let Some((op, v)) = take(conjuncts, col, ty, params, |op| {
        matches!(op, CmpOp::Lt | CmpOp::LtEq)
    }) {
        let mut values = eq;
        values.push(v);
        span.end = SpanBound {
            values,
            after: op == CmpOp::LtEq,
        };
    }
    span
}

/// Removes and returns the first conjunct `column <op> constant` (either operand order) whose
/// operator passes `want` and whose constant has the column's key encoding.
fn take(
    conjuncts: &mut Vec<Expr>,
    column: usize,
    ty: DataType,
    params: &[Option<DataType>],
    want: impl Fn(CmpOp) -> bool,
) -> Option<(CmpOp, Expr)> {
    let pos = conjuncts
        .iter()
        .position(|c| match_bound(c, column, ty, params).is_some_and(|(op, _)| want(op)))?;
    let (op, v) = match_bound(&conjuncts[pos], column, ty, params)?;
    let v = v.clone();
    conjuncts.remove(pos);
    Some((op, v))
}

/// Matches `column <op> constant` or `constant <op> column`, normalised to the first form.
fn match_bound<'a>(
    c: &'a Expr,
    column: usize,
    ty: DataType,
    params: &[Option<DataType>],
) -> Option<(CmpOp, &'a Expr)> {
    let Expr::Compare(op, a, b) = c else {
        return None;
    };
    let (op, v) = match (a.as_ref(), b.as_ref()) {
        (Expr::Column(i), v) if *i == column => (*op, v),
        (v, Expr::Column(i)) if *i == column => (op.flip(), v),
        _ => return None,
    };
    if op == CmpOp::NotEq || !v.is_constant() || !same_encoding(v, ty, params) {
        return None;
    }
    Some((op, v))
}

/// Whether a constant expression's values encode like the key column's (so that the span is
/// exact): integers for integer columns, floats for float columns, and so on.
fn same_encoding(v: &Expr, ty: DataType, params: &[Option<DataType>]) -> bool {
    let family = |t: DataType| match t {
        DataType::Int4 | DataType::Int8 => 0,
        DataType::Float8 => 1,
        DataType::Text => 2,
        DataType::Bool => 3,
    };
    let vt = match v {
        Expr::Constant(Value::Int(_)) => DataType::Int8,
        Expr::Constant(Value::Float(_)) => DataType::Float8,
        Expr::Constant(Value::Text(_)) => DataType::Text,
        Expr::Constant(Value::Bool(_)) => DataType::Bool,
        Expr::Param(i) => match params.get(*i) {
            Some(Some(t)) => *t,
            _ => return false,
        },
        Expr::Cast(_, t) => *t,
        _ => return false,
    };
    family(vt) == family(ty)
}
