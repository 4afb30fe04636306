//! Plan rewrites: a list of small rules, applied in a fixed order ([`rules`]).
//!
//! The planner reads every table with a full scan under the filters of its query. The rules
//! fold constants, push filter conjuncts through filters and joins down to the inputs whose
//! columns they read ([`PushDownFilters`]), lower each filtered full scan to the table's access
//! path — a point get, a key span of the primary index or of a secondary index
//! ([`AccessPaths`]) — turn equi-joins into hash joins ([`HashJoins`]), clean up, make index
//! scans index-only where the index covers what is read above them ([`IndexOnlyScans`]), turn
//! hash joins whose keys give a right-hand table's whole primary key into lookup joins
//! ([`LookupJoins`]), and finally optimize the plans of subqueries in expressions.

use std::sync::Arc;

use crate::catalog::Table;
use crate::exec::eval::eval;
use crate::plan::{CmpOp, Expr, JoinKind, Node, Plan, Span};
use crate::planner::access::access;
use crate::{DataType, Value};

/// A rewrite of a plan tree.
pub trait Rule {
    /// The rule's name, for tracing.
    fn name(&self) -> &'static str;
    /// Rewrites a whole tree.
    fn apply(&self, node: Node) -> Node;
}

/// Evaluates sub-expressions that read no column and no parameter. An expression whose
/// evaluation fails (e.g. `1/0`) is left in place so the error surfaces when it runs.
pub struct FoldConstants;

impl Rule for FoldConstants {
    fn name(&self) -> &'static str {
        "fold_constants"
    }

    fn apply(&self, node: Node) -> Node {
        node.map_exprs(&mut |e| e.transform(&mut fold))
    }
}

fn fold(e: Expr) -> Expr {
    if matches!(e, Expr::Constant(_) | Expr::Column(_) | Expr::Param(_)) {
        return e;
    }
    // A strict operator with a NULL constant operand is NULL whatever the other operands are,
    // so (as PostgreSQL's planner does) it is folded without evaluating them: `x / 0 = NULL`
    // is NULL, never a division by zero.
    let strict = match &e {
        Expr::Function(f, _) => f.is_strict(),
        Expr::Compare(..) | Expr::Arith(..) | Expr::Neg(..) | Expr::Concat(..) | Expr::Cast(..) => {
            true
        }
        _ => false,
    };
    if strict
        && e.children()
            .iter()
            .any(|c| matches!(c, Expr::Constant(Value::Null)))
    {
        return Expr::Constant(Value::Null);
    }
    let mut foldable = true;
    e.walk(&mut |n| {
        foldable &= !matches!(
            n,
            Expr::Column(_) | Expr::Param(_) | Expr::Outer { .. } | Expr::Subquery(_)
        ) && !matches!(n, Expr::Function(f, _) if f.is_volatile())
    });
    if !foldable {
        return e;
    }
    match eval(&e, &[]) {
        Ok(v) => Expr::Constant(v),
        Err(_) => e,
    }
}

/// Removes filters whose predicate is the constant TRUE.
pub struct RemoveTrueFilters;

impl Rule for RemoveTrueFilters {
    fn name(&self) -> &'static str {
        "remove_true_filters"
    }

    fn apply(&self, node: Node) -> Node {
        let r: Result<Node, std::convert::Infallible> = node.transform(&mut |n| {
            Ok(match n {
                Node::Filter {
                    source,
                    predicate: Expr::Constant(Value::Bool(true)),
                } => *source,
                n => n,
            })
        });
        match r {
            Ok(n) => n,
            Err(never) => match never {},
        }
    }
}

/// Removes projections that emit their input unchanged (`SELECT *`).
pub struct RemoveIdentityProjections;

impl Rule for RemoveIdentityProjections {
    fn name(&self) -> &'static str {
        "remove_identity_projections"
    }

    fn apply(&self, node: Node) -> Node {
        let r: Result<Node, std::convert::Infallible> = node.transform(&mut |n| {
            Ok(match n {
                Node::Projection {
                    source,
                    exprs,
                    columns,
                } if exprs.iter().enumerate().all(|(i, e)| *e == Expr::Column(i))
                    && source.columns() == columns =>
                {
                    *source
                }
                n => n,
            })
        });
        match r {
            Ok(n) => n,
            Err(never) => match never {},
        }
    }
}

/// Pushes filter conjuncts down through filters and joins, to the lowest input that has every
/// column they read: a conjunct over one side of an inner join goes to that side, one over both
/// becomes part of the join condition. Above a LEFT join only left-side conjuncts move down;
/// in its ON condition, only right-side ones. Conjuncts over columns a projection passes
/// through move below it (into views and FROM subqueries). Conjuncts with subqueries stay
/// where they are.
pub struct PushDownFilters;

impl Rule for PushDownFilters {
    fn name(&self) -> &'static str {
        "push_down_filters"
    }

    fn apply(&self, node: Node) -> Node {
        push_down(node)
    }
}

fn push_down(node: Node) -> Node {
    match node {
        Node::Filter { source, predicate } => push_into(*source, predicate.into_conjuncts()),
        Node::Join {
            left,
            right,
            kind,
            on,
            keys,
        } => push_join(*left, *right, kind, on, keys, vec![]),
        n => map_inputs(n, push_down),
    }
}

fn push_into(node: Node, mut conjuncts: Vec<Expr>) -> Node {
    match node {
        Node::Filter { source, predicate } => {
            conjuncts.extend(predicate.into_conjuncts());
            push_into(*source, conjuncts)
        }
        Node::Join {
            left,
            right,
            kind,
            on,
            keys,
        } => push_join(*left, *right, kind, on, keys, conjuncts),
        Node::Lateral {
            left,
            right,
            kind,
            on,
        } => {
            // Conjuncts over the left row alone filter it before the right side runs for it
            // (the join keeps or drops each left row as a whole, INNER or LEFT).
            let width = left.columns().len();
            let (to_left, stay): (Vec<Expr>, Vec<Expr>) = conjuncts
                .into_iter()
                .partition(|c| side(c, width) == Side::Left);
            let node = Node::Lateral {
                left: Box::new(push_into(*left, to_left)),
                right,
                kind,
                on,
            };
            filter(node, stay)
        }
        Node::Projection {
            source,
            exprs,
            columns,
        } => {
            // A conjunct over columns the projection passes through (input columns or
            // constants) is evaluated below it instead, so a view's or FROM subquery's
            // filters reach its tables. One over computed columns stays: evaluated below, it
            // could fail (1/x) on rows a filter under the projection would have removed.
            let (mut below, mut stay) = (Vec::new(), Vec::new());
            for c in conjuncts {
                let movable = !c.has_subquery()
                    && c.columns_used()
                        .iter()
                        .all(|&i| matches!(exprs[i], Expr::Column(_) | Expr::Constant(_)));
                if movable {
                    below.push(substitute(c, &exprs));
                } else {
                    stay.push(c);
                }
            }
            let node = Node::Projection {
                source: Box::new(push_into(*source, below)),
                exprs,
                columns,
            };
            filter(node, stay)
        }
        n => filter(push_down(n), conjuncts),
    }
}

/// Replaces each column of a conjunct over a projection's rows with the projection's
/// expression for it.
fn substitute(e: Expr, exprs: &[Expr]) -> Expr {
    match e {
        Expr::Column(i) => exprs[i].clone(),
        e => e.map_children(&mut |c| substitute(c, exprs)),
    }
}

/// Which inputs of a join a conjunct reads.
#[derive(PartialEq)]
enum Side {
    Neither,
    Left,
    Right,
    Both,
}

fn side(e: &Expr, width: usize) -> Side {
    let cols = e.columns_used();
    match (
        cols.iter().all(|&c| c < width),
        cols.iter().all(|&c| c >= width),
    ) {
        _ if e.has_subquery() => Side::Both,
        _ if cols.is_empty() => Side::Neither,
        (true, _) => Side::Left,
        (_, true) => Side::Right,
        _ => Side::Both,
    }
}

fn push_join(
    left: Node,
    right: Node,
    kind: JoinKind,
    on: Option<Expr>,
    keys: Vec<(usize, usize)>,
    above: Vec<Expr>,
) -> Node {
    let width = left.columns().len();
    let (mut to_left, mut to_right, mut stay, mut new_on) = (vec![], vec![], vec![], vec![]);
    // A side whose unmatched rows the join keeps cannot be filtered below it by the ON
    // condition; a side the join NULL-extends cannot be filtered below it by conditions above.
    for c in above {
        match side(&c, width) {
            Side::Left if !kind.keeps_right() => to_left.push(c),
            Side::Right if !kind.keeps_left() => to_right.push(shift(c, width)),
            _ if kind == JoinKind::Inner && !c.has_subquery() => new_on.push(c),
            _ => stay.push(c),
        }
    }
    for c in on.map(Expr::into_conjuncts).unwrap_or_default() {
        match side(&c, width) {
            Side::Left if !kind.keeps_left() => to_left.push(c),
            Side::Right if !kind.keeps_right() => to_right.push(shift(c, width)),
            _ => new_on.push(c),
        }
    }
    let join = Node::Join {
        left: Box::new(push_into(left, to_left)),
        right: Box::new(push_into(right, to_right)),
        kind,
        on: Expr::and_all(new_on),
        keys,
    };
    filter(join, stay)
}

/// Renumbers the columns of a conjunct over a join's right side to that side's own rows.
fn shift(e: Expr, by: usize) -> Expr {
    match e {
        Expr::Column(i) => Expr::Column(i - by),
        e => e.map_children(&mut |c| shift(c, by)),
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

/// Applies `f` to each direct input of a node.
fn map_inputs(node: Node, mut f: impl FnMut(Node) -> Node) -> Node {
    match node.try_map_inputs(|n| Ok::<_, std::convert::Infallible>(f(n))) {
        Ok(n) => n,
        Err(never) => match never {},
    }
}

/// Orders the inputs of each tree of inner joins greedily: starting from the first FROM item,
/// the next input is the first one linked to those already joined by a condition, so that
/// unrelated inputs are not cross-joined while a condition could have connected them. The
/// conditions move to the lowest join that has their columns; a projection restores the
/// original column order when it changed.
pub struct JoinOrder;

impl Rule for JoinOrder {
    fn name(&self) -> &'static str {
        "join_order"
    }

    fn apply(&self, node: Node) -> Node {
        reorder(node)
    }
}

fn reorder(node: Node) -> Node {
    if !matches!(
        node,
        Node::Join {
            kind: JoinKind::Inner,
            ..
        }
    ) {
        return map_inputs(node, reorder);
    }
    let columns = node.columns();
    let (mut leaves, mut conjuncts) = (Vec::new(), Vec::new());
    flatten(node, 0, &mut leaves, &mut conjuncts);
    let leaves: Vec<(Node, std::ops::Range<usize>)> =
        leaves.into_iter().map(|(n, r)| (reorder(n), r)).collect();
    let mut remaining: Vec<Option<(Node, std::ops::Range<usize>)>> =
        leaves.into_iter().map(Some).collect();
    // The original column of each position of the joined rows, as inputs are added.
    let mut order: Vec<usize> = Vec::new();
    let mut placed = vec![false; columns.len()];
    let mut current: Option<Node> = None;
    let mut unused: Vec<Option<Expr>> = conjuncts.into_iter().map(Some).collect();
    while remaining.iter().any(Option::is_some) {
        let pick = match &current {
            None => 0,
            Some(_) => (0..remaining.len())
                .filter(|&i| remaining[i].is_some())
                .find(|&i| {
                    let r = &remaining[i].as_ref().expect("filtered").1;
                    unused.iter().flatten().any(|c| {
                        let cols = c.columns_used();
                        cols.iter().any(|&x| r.contains(&x))
                            && cols.iter().any(|&x| placed[x])
                            && cols.iter().all(|&x| placed[x] || r.contains(&x))
                    })
                })
                .or_else(|| remaining.iter().position(Option::is_some))
                .expect("an input remains"),
        };
        let (leaf, range) = remaining[pick].take().expect("picked input remains");
        range.clone().for_each(|c| placed[c] = true);
        order.extend(range);
        current = Some(match current {
            None => leaf,
            Some(left) => {
                let position = |c: usize| order.iter().position(|&o| o == c).expect("placed");
                let mut on = Vec::new();
                for slot in unused.iter_mut() {
                    if slot
                        .as_ref()
                        .is_some_and(|c| c.columns_used().iter().all(|&x| placed[x]))
                    {
                        let c = slot.take().expect("checked");
                        on.push(remap(c, &position));
                    }
                }
                Node::Join {
                    left: Box::new(left),
                    right: Box::new(leaf),
                    kind: JoinKind::Inner,
                    on: Expr::and_all(on),
                    keys: vec![],
                }
            }
        });
    }
    let mut node = current.expect("a join has inputs");
    // Conditions without columns (constants) go on top.
    let rest: Vec<Expr> = unused.into_iter().flatten().collect();
    node = filter(node, rest);
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        return node;
    }
    let exprs = (0..columns.len())
        .map(|c| Expr::Column(order.iter().position(|&o| o == c).expect("placed")))
        .collect();
    Node::Projection {
        source: Box::new(node),
        exprs,
        columns,
    }
}

/// Collects the inputs of a tree of inner joins (with the original columns each covers) and
/// their conditions, in the tree's column numbering.
fn flatten(
    node: Node,
    offset: usize,
    leaves: &mut Vec<(Node, std::ops::Range<usize>)>,
    conjuncts: &mut Vec<Expr>,
) {
    match node {
        Node::Join {
            left,
            right,
            kind: JoinKind::Inner,
            on,
            keys,
        } if keys.is_empty() => {
            let width = left.columns().len();
            for c in on.map(Expr::into_conjuncts).unwrap_or_default() {
                conjuncts.push(remap(c, &|i| i + offset));
            }
            flatten(*left, offset, leaves, conjuncts);
            flatten(*right, offset + width, leaves, conjuncts);
        }
        n => {
            let width = n.columns().len();
            leaves.push((n, offset..offset + width));
        }
    }
}

/// Renumbers the columns of an expression (in its own scope).
fn remap(e: Expr, f: &impl Fn(usize) -> usize) -> Expr {
    match e {
        Expr::Column(i) => Expr::Column(f(i)),
        e => e.map_children(&mut |c| remap(c, f)),
    }
}

/// Lowers a filter over a full table scan to the table's access path: a point get for
/// equality on the whole primary key, a key span for a prefix and/or a range, else the scan
/// (conjuncts the key does not express stay in a filter just above).
pub struct AccessPaths {
    /// Parameter types (a parameter bounds a span only if it encodes like the key column).
    pub params: Vec<Option<DataType>>,
}

impl Rule for AccessPaths {
    fn name(&self) -> &'static str {
        "access_paths"
    }

    fn apply(&self, node: Node) -> Node {
        infallible(node.transform(&mut |n| {
            Ok(match n {
                Node::Filter { source, predicate } => match *source {
                    Node::Scan { table, span, .. } if span == Span::full() => {
                        access(table, Some(predicate), &self.params)
                    }
                    source => Node::Filter {
                        source: Box::new(source),
                        predicate,
                    },
                },
                n => n,
            })
        }))
    }
}

/// Turns a nested-loop join with equalities between a left and a right column of one type
/// family into a hash join on those columns (the other conjuncts stay as its condition).
pub struct HashJoins;

impl Rule for HashJoins {
    fn name(&self) -> &'static str {
        "hash_joins"
    }

    fn apply(&self, node: Node) -> Node {
        infallible(node.transform(&mut |n| {
            Ok(match n {
                Node::Join {
                    left,
                    right,
                    kind,
                    on: Some(on),
                    keys,
                } if keys.is_empty() => {
                    let (lcols, rcols) = (left.columns(), right.columns());
                    let width = lcols.len();
                    let mut keys = Vec::new();
                    let mut rest = Vec::new();
                    for c in on.into_conjuncts() {
                        match equi_key(&c, width) {
                            Some((l, r))
                                if lcols[l].data_type.family() == rcols[r].data_type.family() =>
                            {
                                keys.push((l, r))
                            }
                            _ => rest.push(c),
                        }
                    }
                    Node::Join {
                        left,
                        right,
                        kind,
                        on: Expr::and_all(rest),
                        keys,
                    }
                }
                n => n,
            })
        }))
    }
}

/// Turns a hash join (INNER or LEFT) whose keys equate the whole primary key of a right-hand
/// table scan with left columns into a lookup join: each batch of left rows reads just the
/// rows it matches (the join falls back to hashing the table once the left input has proved
/// large; see [`Node::LookupJoin`]).
pub struct LookupJoins;

impl Rule for LookupJoins {
    fn name(&self) -> &'static str {
        "lookup_joins"
    }

    fn apply(&self, node: Node) -> Node {
        infallible(node.transform(&mut |n| {
            Ok(match n {
                Node::Join {
                    left,
                    right,
                    kind: kind @ (JoinKind::Inner | JoinKind::Left),
                    on,
                    keys,
                } if !keys.is_empty() => match lookup_columns(&left, &right, &keys) {
                    Some((table, lookup)) => Node::LookupJoin {
                        left,
                        right,
                        table,
                        lookup,
                        kind,
                        on,
                        keys,
                    },
                    None => Node::Join {
                        left,
                        right,
                        kind,
                        on,
                        keys,
                    },
                },
                n => n,
            })
        }))
    }
}

/// The table a lookup join would read and, for each of its primary-key columns, the left
/// column a join key equates with it; None unless `right` is a whole-table scan (under a
/// filter without subqueries) and every key column has such a left column whose values
/// encode like the key's once cast (one integer or string family, or the same type).
fn lookup_columns(
    left: &Node,
    right: &Node,
    keys: &[(usize, usize)],
) -> Option<(Arc<Table>, Vec<usize>)> {
    let table = match right {
        Node::Scan { table, span, .. } if *span == Span::full() => table,
        Node::Filter { source, predicate } if !predicate.has_subquery() => match source.as_ref() {
            Node::Scan { table, span, .. } if *span == Span::full() => table,
            _ => return None,
        },
        _ => return None,
    };
    let lcols = left.columns();
    let encodes_like = |l: DataType, r: DataType| {
        l.without_typmod() == r.without_typmod()
            || (l.family() == r.family() && matches!(l.family(), 0 | 2))
    };
    let lookup = table
        .primary_key
        .iter()
        .map(|&c| {
            keys.iter()
                .find(|&&(l, r)| {
                    r == c && encodes_like(lcols[l].data_type, table.columns[c].data_type)
                })
                .map(|&(l, _)| l)
        })
        .collect::<Option<Vec<usize>>>()?;
    Some((table.clone(), lookup))
}

/// `left_column = right_column` (either order), as (left index, right index in its input).
fn equi_key(c: &Expr, width: usize) -> Option<(usize, usize)> {
    let Expr::Compare(CmpOp::Eq, a, b) = c else {
        return None;
    };
    match (a.as_ref(), b.as_ref()) {
        (Expr::Column(l), Expr::Column(r)) if *l < width && *r >= width => Some((*l, r - width)),
        (Expr::Column(r), Expr::Column(l)) if *l < width && *r >= width => Some((*l, r - width)),
        _ => None,
    }
}

/// Turns an index scan into an index-only scan when the index covers every column the nodes
/// above it read, and tells a table scan which columns to decode: the columns each node needs
/// are passed down from the root (which needs all of its own), so a scan under a projection of
/// covered columns reads no table row, and a table scan skips the values no one reads.
pub struct IndexOnlyScans;

impl Rule for IndexOnlyScans {
    fn name(&self) -> &'static str {
        "index_only_scans"
    }

    fn apply(&self, node: Node) -> Node {
        let all = vec![true; node.columns().len()];
        cover(node, all)
    }
}

/// Marks the input columns `e` reads; an expression with a subquery (which may read the whole
/// row through outer references) needs every column.
fn mark(need: &mut [bool], e: &Expr) {
    if e.has_subquery() {
        need.fill(true);
        return;
    }
    for c in e.columns_used() {
        if let Some(n) = need.get_mut(c) {
            *n = true;
        }
    }
}

/// Rewrites `node`, of which the nodes above read the columns marked in `needed`.
fn cover(node: Node, mut needed: Vec<bool>) -> Node {
    let none = |n: &Node| vec![false; n.columns().len()];
    match node {
        Node::Scan { table, span, read } => {
            let read = if needed.iter().all(|&n| n) {
                read
            } else {
                Some(needed)
            };
            Node::Scan { table, span, read }
        }
        Node::IndexScan {
            table,
            index,
            span,
            covering,
        } => {
            let covered = (0..needed.len()).all(|c| !needed[c] || index.covers(&table, c));
            Node::IndexScan {
                table,
                index,
                span,
                covering: covering || covered,
            }
        }
        Node::Filter { source, predicate } => {
            mark(&mut needed, &predicate);
            Node::Filter {
                source: Box::new(cover(*source, needed)),
                predicate,
            }
        }
        Node::Projection {
            source,
            exprs,
            columns,
        } => {
            let mut need = none(&source);
            exprs.iter().for_each(|e| mark(&mut need, e));
            Node::Projection {
                source: Box::new(cover(*source, need)),
                exprs,
                columns,
            }
        }
        Node::Order { source, keys } => {
            keys.iter().for_each(|k| needed[k.column] = true);
            Node::Order {
                source: Box::new(cover(*source, needed)),
                keys,
            }
        }
        Node::Limit {
            source,
            limit,
            offset,
            ties,
        } => Node::Limit {
            source: Box::new(cover(*source, needed)),
            limit,
            offset,
            ties,
        },
        Node::Aggregate {
            source,
            group_by,
            aggregates,
            columns,
        } => {
            let mut need = none(&source);
            group_by.iter().for_each(|e| mark(&mut need, e));
            aggregates
                .iter()
                .flat_map(crate::plan::Aggregate::exprs)
                .for_each(|e| mark(&mut need, e));
            Node::Aggregate {
                source: Box::new(cover(*source, need)),
                group_by,
                aggregates,
                columns,
            }
        }
        Node::Join {
            left,
            right,
            kind,
            on,
            keys,
        } => {
            let width = left.columns().len();
            if let Some(on) = &on {
                mark(&mut needed, on);
            }
            for &(l, r) in &keys {
                needed[l] = true;
                needed[width + r] = true;
            }
            let right_need = needed.split_off(width);
            Node::Join {
                left: Box::new(cover(*left, needed)),
                right: Box::new(cover(*right, right_need)),
                kind,
                on,
                keys,
            }
        }
        // Every column of a row takes part in DISTINCT and set operations.
        n => map_inputs(n, |c| {
            let all = vec![true; c.columns().len()];
            cover(c, all)
        }),
    }
}

/// Optimizes the plans of subqueries inside expressions.
pub struct OptimizeSubqueries {
    pub params: Vec<Option<DataType>>,
}

impl Rule for OptimizeSubqueries {
    fn name(&self) -> &'static str {
        "optimize_subqueries"
    }

    fn apply(&self, node: Node) -> Node {
        node.map_exprs(&mut |e| optimize_subqueries(e, &self.params))
    }
}

fn optimize_subqueries(e: Expr, params: &[Option<DataType>]) -> Expr {
    match e {
        Expr::Subquery(s) => {
            let mut s = *s;
            s.plan = optimize_node(s.plan, params);
            if let crate::plan::SubqueryKind::In(operand) = s.kind {
                s.kind = crate::plan::SubqueryKind::In(optimize_subqueries(operand, params));
            }
            Expr::Subquery(Box::new(s))
        }
        e => e.map_children(&mut |c| optimize_subqueries(c, params)),
    }
}

fn infallible(r: Result<Node, std::convert::Infallible>) -> Node {
    match r {
        Ok(n) => n,
        Err(never) => match never {},
    }
}

/// The rules, in the order they run; `params` are the statement's parameter types.
pub fn rules(params: &[Option<DataType>]) -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(FoldConstants),
        Box::new(PushDownFilters),
        Box::new(JoinOrder),
        Box::new(AccessPaths {
            params: params.to_vec(),
        }),
        Box::new(HashJoins),
        Box::new(RemoveTrueFilters),
        Box::new(RemoveIdentityProjections),
        Box::new(IndexOnlyScans),
        Box::new(LookupJoins),
        Box::new(OptimizeSubqueries {
            params: params.to_vec(),
        }),
    ]
}

/// Re-plans the table accesses of a plan whose outer references were just replaced by an
/// enclosing row's values (a correlated subquery or a LATERAL item, once per row): a filter
/// that compared a key column with an outer reference now bounds a key span.
pub(crate) fn optimize_bound(node: Node) -> Node {
    let node = AccessPaths { params: vec![] }.apply(node);
    IndexOnlyScans.apply(node)
}

fn optimize_node(node: Node, params: &[Option<DataType>]) -> Node {
    rules(params)
        .iter()
        .fold(node, |node, rule| rule.apply(node))
}

/// Optimizes every query tree of a plan.
pub fn optimize(plan: Plan, params: &[Option<DataType>]) -> Plan {
    let opt = |n| optimize_node(n, params);
    match plan {
        Plan::Select(n) => Plan::Select(opt(n)),
        Plan::LockingSelect { table, node } => Plan::LockingSelect {
            table,
            node: opt(node),
        },
        Plan::Update { table, source, set } => Plan::Update {
            table,
            source: opt(source),
            set,
        },
        Plan::Delete { table, source } => Plan::Delete {
            table,
            source: opt(source),
        },
        Plan::Insert {
            table,
            columns,
            source,
            on_conflict,
        } => Plan::Insert {
            table,
            columns,
            source: opt(source),
            on_conflict,
        },
        p @ (Plan::CreateTable { .. }
        | Plan::DropTable { .. }
        | Plan::CreateIndex(_)
        | Plan::DropIndex { .. }
        | Plan::CreateView { .. }
        | Plan::DropView { .. }
        | Plan::Schema(_)
        | Plan::Returning { .. }) => p,
    }
}
