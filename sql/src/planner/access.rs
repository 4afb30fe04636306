//! Lowering a table access to key spans of one of its indexes.
//!
//! Equality on the whole primary key becomes a point [`Node::Get`]; otherwise each index (the
//! primary one and every public secondary one) can serve equalities on a prefix of its
//! columns, then at most one lower and one upper bound on the next column, as a span. The
//! index whose span uses the most columns wins (equalities first, then a range; the primary
//! index on ties): a span of the primary index is a [`Node::Scan`], one of a secondary index
//! an [`Node::IndexScan`] that looks the rows up by primary key. Without any usable conjunct
//! the table is scanned whole. Conjuncts the span does not express stay in a [`Node::Filter`]
//! just above; so does a one-sided range on a secondary index column, whose span would
//! otherwise reach the column's NULL entries.

use std::sync::Arc;

use crate::catalog::Table;
use crate::plan::{CmpOp, Expr, Node, Span, SpanBound};
use crate::{DataType, Value};

/// A span over the leading columns of an index, and how many columns it constrains.
struct KeyPath {
    /// The equality values of the leading columns.
    eq: Vec<Expr>,
    span: Span,
    /// Whether the column after the equalities is bounded.
    range: bool,
}

impl KeyPath {
    /// Equalities count more than a range on the next column.
    fn score(&self) -> usize {
        self.eq.len() * 2 + self.range as usize
    }
}

/// Builds the access path for `table` with an optional WHERE predicate over its columns.
pub(crate) fn access(
    table: Arc<Table>,
    predicate: Option<Expr>,
    params: &[Option<DataType>],
) -> Node {
    let conjuncts = predicate.map(Expr::into_conjuncts).unwrap_or_default();
    let primary: Vec<(usize, DataType, bool)> = table
        .primary_key
        .iter()
        .map(|&c| (c, table.columns[c].data_type, false))
        .collect();
    let mut rest = conjuncts.clone();
    let path = key_path(&primary, &mut rest, params, false);
    if path.eq.len() == primary.len() {
        return filter(
            Node::Get {
                table,
                key: path.eq,
            },
            rest,
        );
    }
    let mut best: Option<(usize, KeyPath, Vec<Expr>)> = None;
    for (i, index) in table.indexes.iter().enumerate() {
        if index.state != crate::catalog::IndexState::Public {
            continue;
        }
        let cols: Vec<(usize, DataType, bool)> = index
            .columns
            .iter()
            .zip(&index.descending)
            .map(|(&c, &d)| (c, table.columns[c].data_type, d))
            .collect();
        let mut left = conjuncts.clone();
        let p = key_path(&cols, &mut left, params, true);
        let better = match &best {
            Some((_, b, _)) => p.score() > b.score(),
            None => p.score() > path.score(),
        };
        if better {
            best = Some((i, p, left));
        }
    }
    match best {
        Some((i, p, left)) => {
            let index = table.indexes[i].clone();
            filter(
                Node::IndexScan {
                    table,
                    index,
                    span: p.span,
                    covering: false,
                },
                left,
            )
        }
        None => filter(
            Node::Scan {
                table,
                span: path.span,
                read: None,
            },
            rest,
        ),
    }
}

fn filter(node: Node, conjuncts: Vec<Expr>) -> Node {
    match Expr::and_all(conjuncts) {
        Some(predicate) => Node::Filter {
            source: Box::new(node),
            predicate,
        },
        None => node,
    }
}

/// The span of an index with columns `cols` (position, type, descending) for the conjuncts,
/// removing those it expresses. With `nullable`, a one-sided range conjunct is kept.
fn key_path(
    cols: &[(usize, DataType, bool)],
    conjuncts: &mut Vec<Expr>,
    params: &[Option<DataType>],
    nullable: bool,
) -> KeyPath {
    let mut eq = Vec::new();
    for &(col, ty, _) in cols {
        match take(conjuncts, col, ty, params, |op| op == CmpOp::Eq) {
            Some((_, v)) => eq.push(v),
            None => break,
        }
    }
    let bound = |values: &[Expr], after| SpanBound {
        values: values.to_vec(),
        after,
    };
    let mut path = KeyPath {
        span: Span {
            start: bound(&eq, false),
            end: bound(&eq, true),
        },
        eq,
        range: false,
    };
    let Some(&(col, ty, descending)) = cols.get(path.eq.len()) else {
        return path;
    };
    let lower = take(conjuncts, col, ty, params, |op| {
        matches!(op, CmpOp::Gt | CmpOp::GtEq)
    });
    let upper = take(conjuncts, col, ty, params, |op| {
        matches!(op, CmpOp::Lt | CmpOp::LtEq)
    });
    let with = |v: &Expr| {
        let mut values = path.eq.clone();
        values.push(v.clone());
        values
    };
    // In key order a descending column's lower value bound is an end, its upper one a start.
    if let Some((op, v)) = &lower {
        let b = with(v);
        if descending {
            path.span.end = bound(&b, *op == CmpOp::GtEq);
        } else {
            path.span.start = bound(&b, *op == CmpOp::Gt);
        }
    }
    if let Some((op, v)) = &upper {
        let b = with(v);
        if descending {
            path.span.start = bound(&b, *op == CmpOp::Lt);
        } else {
            path.span.end = bound(&b, *op == CmpOp::LtEq);
        }
    }
    path.range = lower.is_some() || upper.is_some();
    if nullable && lower.is_some() != upper.is_some() {
        let (op, v) = lower.or(upper).expect("one bound");
        conjuncts.push(Expr::Compare(op, Box::new(Expr::Column(col)), Box::new(v)));
    }
    path
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
    let vt = match v {
        Expr::Constant(Value::Int(_)) => DataType::Int8,
        Expr::Constant(Value::Float(_) | Value::Float4(_)) => DataType::Float8,
        Expr::Constant(Value::Numeric(_)) => DataType::Numeric(None),
        Expr::Constant(Value::Text(_)) => DataType::Text,
        Expr::Constant(Value::Bool(_)) => DataType::Bool,
        Expr::Param(i) => match params.get(*i) {
            Some(Some(t)) => *t,
            _ => return false,
        },
        Expr::Cast(_, t) | Expr::Arith(_, _, _, t) => *t,
        _ => return false,
    };
    vt.family() == ty.family()
}
