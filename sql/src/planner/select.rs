//! Planning queries: FROM, WHERE, aggregation (`aggregate`), window functions (`window`),
//! projections, DISTINCT [ON], ORDER BY, LIMIT/OFFSET and FETCH FIRST.

use std::sync::Arc;

use sqlparser::ast;

use super::Planner;
use super::aggregate::{collect_aggregates, resolve_group_by};
use super::expr::{Scope, common_type, ident_name, not_grouped, object_name};
use super::output::{figure_colname, sort_key};
use super::window::collect_windows;
use crate::plan::{Expr, Node, SetOp, SortKey};
use crate::{Column, DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    /// Plans a query.
    pub(crate) fn plan_query(&mut self, q: &ast::Query) -> Result<Node> {
        match &q.with {
            Some(with) => self.with_ctes(with, |p| p.plan_query_body(q)),
            None => self.plan_query_body(q),
        }
    }

    /// Binds a set operation's operand (for a recursive CTE's anchor and term).
    pub(crate) fn plan_set_expr_public(&mut self, e: &ast::SetExpr) -> Result<Node> {
        self.plan_set_expr(e)
    }

    fn plan_query_body(&mut self, q: &ast::Query) -> Result<Node> {
        if !q.locks.is_empty() {
            return Err(not_supported("FOR UPDATE in a subquery"));
        }
        let order_by: &[ast::OrderByExpr] = match &q.order_by {
            None => &[],
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(e),
                ..
            }) => e,
            Some(_) => return Err(not_supported("ORDER BY ALL")),
        };
        let (node, hidden) = match q.body.as_ref() {
            ast::SetExpr::Select(s) => self.plan_select(s, order_by)?,
            body @ ast::SetExpr::SetOperation { .. } => {
                let node = self.plan_set_expr(body)?;
                (self.order_set_op(node, order_by)?, 0)
            }
            ast::SetExpr::Values(v) if order_by.is_empty() => (self.plan_values(v, &[])?, 0),
            ast::SetExpr::Query(inner) if order_by.is_empty() && q.limit_clause.is_none() => {
                (self.plan_query(inner)?, 0)
            }
            other => return Err(not_supported(format!("query {other}"))),
        };
        let node = self.plan_limit(node, q.limit_clause.as_ref(), q.fetch.as_ref())?;
        Ok(drop_hidden(node, hidden))
    }

    /// Plans `VALUES (...), (...)`; `hints` gives each column's expected type.
    pub(crate) fn plan_values(&mut self, v: &ast::Values, hints: &[DataType]) -> Result<Node> {
        self.plan_values_checked(v, hints, &mut |_, _| Ok(()))
    }

    /// Plans `VALUES`, passing each bound expression's column and type to `check` (INSERT
    /// checks that it can be stored in its column).
    pub(crate) fn plan_values_checked(
        &mut self,
        v: &ast::Values,
        hints: &[DataType],
        check: &mut dyn FnMut(usize, DataType) -> Result<()>,
    ) -> Result<Node> {
        let width = v.rows.first().map(|r| r.len()).unwrap_or(0);
        let mut types: Vec<Option<DataType>> = hints.iter().copied().map(Some).collect();
        types.resize(width, None);
        let mut rows = Vec::with_capacity(v.rows.len());
        for row in &v.rows {
            if row.len() != width {
                return Err(Error::Syntax(
                    "VALUES lists must all be the same length".into(),
                ));
            }
            let mut out = Vec::with_capacity(width);
            for (i, e) in row.iter().enumerate() {
                let (e, t) = self.bind(e, &Scope::default(), types[i])?;
                check(i, t)?;
                types[i].get_or_insert(t);
                out.push(e);
            }
            rows.push(out);
        }
        let columns = types
            .into_iter()
            .enumerate()
            .map(|(i, t)| Column {
                name: format!("column{}", i + 1),
                data_type: t.unwrap_or(DataType::Text),
            })
            .collect();
        Ok(Node::Values { columns, rows })
    }

    /// Binds a WHERE predicate over the rows of a table (UPDATE, DELETE): a filter over a
    /// full scan, which the optimizer turns into the table's access path.
    pub(crate) fn plan_where(
        &mut self,
        table: Arc<crate::catalog::Table>,
        scope: &Scope,
        selection: Option<&ast::Expr>,
    ) -> Result<Node> {
        let scan = Node::Scan {
            table,
            span: crate::plan::Span::full(),
            read: None,
        };
        self.maybe_filter(scan, scope, selection)
    }

    /// `source` under a filter of the bound `selection`, if there is one.
    fn maybe_filter(
        &mut self,
        source: Node,
        scope: &Scope,
        selection: Option<&ast::Expr>,
    ) -> Result<Node> {
        Ok(match selection {
            Some(e) => Node::Filter {
                source: Box::new(source),
                predicate: self.bind_predicate(e, scope)?,
            },
            None => source,
        })
    }

    /// Binds a WHERE condition (42804 unless boolean).
    pub(super) fn bind_predicate(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Expr> {
        let (p, t) = self.bind(e, scope, Some(DataType::Bool))?;
        if t != DataType::Bool {
            return Err(Error::DatatypeMismatch(format!(
                "argument of WHERE must be type boolean, not type {t}"
            )));
        }
        Ok(p)
    }

    /// Plans a SELECT; returns the node and how many hidden sort columns trail its output.
    fn plan_select(
        &mut self,
        s: &ast::Select,
        order_by: &[ast::OrderByExpr],
    ) -> Result<(Node, usize)> {
        if s.top.is_some() || s.into.is_some() || !s.lateral_views.is_empty() {
            return Err(not_supported("TOP and INTO"));
        }
        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => SelectDistinct::No,
            Some(ast::Distinct::Distinct) => SelectDistinct::All,
            Some(ast::Distinct::On(on)) => SelectDistinct::On(on),
        };
        let (source, mut scope) = self.plan_from(&s.from)?;
        let mut node = self.maybe_filter(source, &scope, s.selection.as_ref())?;
        let group_by = match &s.group_by {
            ast::GroupByExpr::Expressions(e, m) if m.is_empty() => e.as_slice(),
            _ => return Err(not_supported("GROUP BY ALL and grouping modifiers")),
        };
        let group_by = resolve_group_by(group_by, &s.projection, &scope)?;
        let group_by = group_by.as_slice();
        let mut aggs = Vec::new();
        for item in &s.projection {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                collect_aggregates(e, &mut aggs);
            }
        }
        s.having
            .iter()
            .for_each(|h| collect_aggregates(h, &mut aggs));
        order_by
            .iter()
            .for_each(|o| collect_aggregates(&o.expr, &mut aggs));
        if let SelectDistinct::On(on) = distinct {
            on.iter().for_each(|e| collect_aggregates(e, &mut aggs));
        }
        if !aggs.is_empty() || !group_by.is_empty() || s.having.is_some() {
            (node, scope) = self.plan_aggregate(node, &scope, group_by, &aggs)?;
            if let Some(h) = &s.having {
                node = Node::Filter {
                    source: Box::new(node),
                    predicate: self.bind_predicate(h, &scope)?,
                };
            }
        }
        let mut windows = Vec::new();
        for item in &s.projection {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                collect_windows(e, &mut windows);
            }
        }
        order_by
            .iter()
            .for_each(|o| collect_windows(&o.expr, &mut windows));
        if let SelectDistinct::On(on) = distinct {
            on.iter().for_each(|e| collect_windows(e, &mut windows));
        }
        if !windows.is_empty() {
            (node, scope) = self.plan_window(node, &scope, &windows, &s.named_window)?;
        }
        let (node, scope, rewritten) = self.plan_select_srfs(node, scope, &s.projection)?;
        let projection = rewritten.as_deref().unwrap_or(&s.projection);
        self.plan_projection(node, &scope, projection, order_by, distinct)
    }

    /// Plans one operand of a set operation (or a whole set operation tree).
    fn plan_set_expr(&mut self, e: &ast::SetExpr) -> Result<Node> {
        match e {
            ast::SetExpr::Select(s) => Ok(drop_hidden_pair(self.plan_select(s, &[])?)),
            ast::SetExpr::Values(v) => self.plan_values(v, &[]),
            ast::SetExpr::Query(q) => self.plan_query(q),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let op = match op {
                    ast::SetOperator::Union => SetOp::Union,
                    ast::SetOperator::Intersect => SetOp::Intersect,
                    ast::SetOperator::Except | ast::SetOperator::Minus => SetOp::Except,
                };
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    q => return Err(not_supported(format!("{q} in a set operation"))),
                };
                let (left, right) = (self.plan_set_expr(left)?, self.plan_set_expr(right)?);
                let (left, right) = unify_set_operands(left, right, op)?;
                Ok(Node::SetOp {
                    op,
                    all,
                    left: Box::new(left),
                    right: Box::new(right),
                })
            }
            other => Err(not_supported(format!("query {other}"))),
        }
    }

    /// Sorts a set operation's result by output columns (names or positions).
    fn order_set_op(&mut self, node: Node, order_by: &[ast::OrderByExpr]) -> Result<Node> {
        if order_by.is_empty() {
            return Ok(node);
        }
        let columns = node.columns();
        let mut keys = Vec::new();
        for o in order_by {
            let Some(column) = output_column(&o.expr, &columns, columns.len(), "ORDER BY")? else {
                return Err(not_supported(
                    "ORDER BY expressions other than result columns on UNION/INTERSECT/EXCEPT",
                ));
            };
            keys.push(sort_key(o, column)?);
        }
        Ok(Node::Order {
            source: Box::new(node),
            keys,
        })
    }

    /// Binds a select list (or a RETURNING list) over `scope`: an expression and an output
    /// column per item, wildcards expanded.
    pub(super) fn bind_select_list(
        &mut self,
        items: &[ast::SelectItem],
        scope: &Scope,
    ) -> Result<(Vec<Expr>, Vec<Column>)> {
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in items {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let (b, t) = self.bind(e, scope, None)?;
                    exprs.push(b);
                    columns.push(Column {
                        name: figure_colname(e).unwrap_or_else(|| "?column?".into()),
                        data_type: t,
                    });
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let (b, t) = self.bind(expr, scope, None)?;
                    exprs.push(b);
                    columns.push(Column {
                        name: ident_name(alias),
                        data_type: t,
                    });
                }
                ast::SelectItem::Wildcard(_) => {
                    expand_wildcard(scope, None, &mut exprs, &mut columns)?
                }
                ast::SelectItem::QualifiedWildcard(
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => expand_wildcard(scope, Some(&object_name(n)?), &mut exprs, &mut columns)?,
                other => return Err(not_supported(format!("select item {other}"))),
            }
        }
        Ok((exprs, columns))
    }

    /// Plans the select list and ORDER BY. Sort expressions that are not output columns are
    /// computed as hidden trailing columns, dropped after sorting.
    fn plan_projection(
        &mut self,
        source: Node,
        scope: &Scope,
        items: &[ast::SelectItem],
        order_by: &[ast::OrderByExpr],
        distinct: SelectDistinct,
    ) -> Result<(Node, usize)> {
        let (mut exprs, mut columns) = self.bind_select_list(items, scope)?;
        let visible = exprs.len();
        let mut keys = Vec::new();
        for o in order_by {
            let column = match output_column(&o.expr, &columns, visible, "ORDER BY")? {
                Some(i) => i,
                None => self.bind_hidden(&o.expr, scope, &mut exprs, &mut columns)?,
            };
            keys.push(sort_key(o, column)?);
        }
        let mut on_columns = Vec::new();
        if let SelectDistinct::On(on) = distinct {
            for e in on {
                let column = match output_column(e, &columns, visible, "DISTINCT ON")? {
                    Some(i) => i,
                    None => self.bind_hidden(e, scope, &mut exprs, &mut columns)?,
                };
                on_columns.push(column);
            }
            distinct_on_sort(&on_columns, &mut keys)?;
        }
        let hidden = exprs.len() - visible;
        let mut node = Node::Projection {
            source: Box::new(source),
            exprs,
            columns,
        };
        if distinct == SelectDistinct::All {
            if hidden > 0 {
                return Err(Error::InvalidColumnReference(
                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list".into(),
                ));
            }
            node = Node::Distinct {
                source: Box::new(node),
            };
        }
        if !keys.is_empty() {
            node = Node::Order {
                source: Box::new(node),
                keys,
            };
        }
        if !on_columns.is_empty() {
            node = Node::DistinctOn {
                source: Box::new(node),
                columns: on_columns,
            };
        }
        let hidden = node.columns().len() - visible;
        Ok((node, hidden))
    }

    /// The column of the select list (visible or hidden) that computes `e`, adding a hidden
    /// one when none does (an ORDER BY or DISTINCT ON expression that is not an output).
    fn bind_hidden(
        &mut self,
        e: &ast::Expr,
        scope: &Scope,
        exprs: &mut Vec<Expr>,
        columns: &mut Vec<Column>,
    ) -> Result<usize> {
        let (b, t) = self.bind(e, scope, None)?;
        if let Some(i) = exprs.iter().position(|x| *x == b) {
            return Ok(i);
        }
        exprs.push(b);
        columns.push(Column {
            name: format!("?sort{}?", exprs.len()),
            data_type: t,
        });
        Ok(exprs.len() - 1)
    }

    /// Plans LIMIT / OFFSET, or the standard's `OFFSET n ROWS FETCH FIRST n ROWS ONLY` (the
    /// same thing; a FETCH without a count fetches one row).
    fn plan_limit(
        &mut self,
        node: Node,
        clause: Option<&ast::LimitClause>,
        fetch: Option<&ast::Fetch>,
    ) -> Result<Node> {
        let (mut limit, offset) = match clause {
            None => (None, None),
            Some(ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) if limit_by.is_empty() => (limit.as_ref(), offset.as_ref().map(|o| &o.value)),
            Some(_) => return Err(not_supported("this LIMIT form")),
        };
        let one = ast::Expr::Value(ast::Value::Number("1".into(), false).into());
        let mut ties = Vec::new();
        if let Some(f) = fetch {
            if limit.is_some() {
                return Err(Error::Syntax("multiple LIMIT clauses not allowed".into()));
            }
            if f.percent {
                return Err(not_supported("FETCH FIRST ... PERCENT"));
            }
            if f.with_ties {
                ties = tie_columns(&node)?;
            }
            limit = Some(f.quantity.as_ref().unwrap_or(&one));
        }
        if limit.is_none() && offset.is_none() {
            return Ok(node);
        }
        let mut bind = |e: Option<&ast::Expr>| -> Result<Option<Expr>> {
            let Some(e) = e else { return Ok(None) };
            let (b, t) = self.bind(e, &Scope::default(), Some(DataType::Int8))?;
            if !t.is_integer() {
                return Err(Error::DatatypeMismatch(format!(
                    "argument of LIMIT/OFFSET must be an integer, not {t}"
                )));
            }
            Ok(Some(b))
        };
        let (limit, offset) = (bind(limit)?, bind(offset)?);
        Ok(Node::Limit {
            source: Box::new(node),
            limit,
            offset,
            ties,
        })
    }
}

/// The sort columns of a sorted query, which rows past a WITH TIES limit must share with the
/// last row within it (42601 without ORDER BY, as in PostgreSQL).
fn tie_columns(node: &Node) -> Result<Vec<usize>> {
    match node {
        Node::Order { keys, .. } => Ok(keys.iter().map(|k| k.column).collect()),
        Node::DistinctOn { source, .. } => tie_columns(source),
        _ => Err(Error::Syntax(
            "WITH TIES cannot be specified without ORDER BY clause".into(),
        )),
    }
}

fn drop_hidden_pair((node, hidden): (Node, usize)) -> Node {
    drop_hidden(node, hidden)
}

/// Whether and how a SELECT removes duplicate rows.
#[derive(Clone, Copy, PartialEq)]
enum SelectDistinct<'a> {
    No,
    /// `SELECT DISTINCT`: whole rows.
    All,
    /// `SELECT DISTINCT ON (exprs)`.
    On(&'a [ast::Expr]),
}

/// Checks PostgreSQL's rule that ORDER BY starts with the DISTINCT ON expressions (in any
/// order; 42P10 otherwise) and sorts by those ORDER BY leaves out, after the others, so that
/// rows with equal DISTINCT ON values are adjacent.
fn distinct_on_sort(on: &[usize], keys: &mut Vec<SortKey>) -> Result<()> {
    let mismatch = || {
        Error::InvalidColumnReference(
            "SELECT DISTINCT ON expressions must match initial ORDER BY expressions".into(),
        )
    };
    let mut skipped = false;
    let mut covered = Vec::new();
    for k in keys.iter() {
        if !on.contains(&k.column) {
            skipped = true;
        } else if skipped {
            return Err(mismatch());
        } else {
            covered.push(k.column);
        }
    }
    for &c in on {
        if covered.contains(&c) {
            continue;
        }
        if skipped {
            return Err(mismatch());
        }
        covered.push(c);
        keys.push(SortKey {
            column: c,
            descending: false,
            nulls_first: false,
        });
    }
    Ok(())
}

/// Checks that two set operands have the same number of columns and casts columns of
/// different numeric types to their common type.
fn unify_set_operands(left: Node, right: Node, op: SetOp) -> Result<(Node, Node)> {
    let (lc, rc) = (left.columns(), right.columns());
    let name = op.keyword().to_uppercase();
    if lc.len() != rc.len() {
        return Err(Error::Syntax(format!(
            "each {name} query must have the same number of columns"
        )));
    }
    let mut types = Vec::with_capacity(lc.len());
    for (l, r) in lc.iter().zip(&rc) {
        types.push(common_type(l.data_type, r.data_type).ok_or_else(|| {
            Error::DatatypeMismatch(format!(
                "{name} types {} and {} cannot be matched",
                l.data_type, r.data_type
            ))
        })?);
    }
    let cast = |node: Node, columns: Vec<Column>| {
        if columns.iter().zip(&types).all(|(c, t)| c.data_type == *t) {
            return node;
        }
        let exprs = columns
            .iter()
            .enumerate()
            .zip(&types)
            .map(|((i, c), t)| match c.data_type == *t {
                true => Expr::Column(i),
                false => Expr::Cast(Box::new(Expr::Column(i)), *t),
            })
            .collect();
        let columns = columns
            .into_iter()
            .zip(&types)
            .map(|(c, t)| Column {
                name: c.name,
                data_type: *t,
            })
            .collect();
        Node::Projection {
            source: Box::new(node),
            exprs,
            columns,
        }
    };
    Ok((cast(left, lc), cast(right, rc)))
}

/// Drops `hidden` trailing columns.
fn drop_hidden(node: Node, hidden: usize) -> Node {
    if hidden == 0 {
        return node;
    }
    let mut columns = node.columns();
    columns.truncate(columns.len() - hidden);
    let exprs = (0..columns.len()).map(Expr::Column).collect();
    Node::Projection {
        source: Box::new(node),
        exprs,
        columns,
    }
}

/// An ORDER BY (or DISTINCT ON, `clause`) item naming an output column by name or position.
fn output_column(
    e: &ast::Expr,
    columns: &[Column],
    visible: usize,
    clause: &str,
) -> Result<Option<usize>> {
    match e {
        ast::Expr::Identifier(id) => {
            let name = ident_name(id);
            Ok(columns[..visible].iter().position(|c| c.name == name))
        }
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => match n.parse::<usize>() {
                Ok(i) if (1..=visible).contains(&i) => Ok(Some(i - 1)),
                _ => Err(Error::InvalidColumnReference(format!(
                    "{clause} position {n} is not in select list"
                ))),
            },
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

fn expand_wildcard(
    scope: &Scope,
    relation: Option<&str>,
    exprs: &mut Vec<Expr>,
    columns: &mut Vec<Column>,
) -> Result<()> {
    if let Some(pre) = &scope.ungrouped {
        // `*` after GROUP BY: each column must be grouped by.
        let mut pre_exprs = Vec::new();
        let mut pre_columns = Vec::new();
        expand_wildcard(pre, relation, &mut pre_exprs, &mut pre_columns)?;
        for (e, c) in pre_exprs.into_iter().zip(pre_columns) {
            let Expr::Column(j) = e else {
                return Err(Error::Internal("wildcard of an expression".into()));
            };
            let g = scope.group_column(j).ok_or_else(|| not_grouped(&c.name))?;
            exprs.push(Expr::Column(g));
            columns.push(c);
        }
        return Ok(());
    }
    let before = exprs.len();
    for (i, c) in scope.columns.iter().enumerate() {
        let excluded = match relation {
            Some(r) => c.relation.as_deref() != Some(r),
            None => c.merged,
        };
        if c.hidden || excluded {
            continue;
        }
        exprs.push(Expr::Column(i));
        columns.push(Column {
            name: c.name.clone(),
            data_type: c.data_type,
        });
    }
    if exprs.len() == before && scope.columns.is_empty() {
        return Err(Error::Syntax(
            "SELECT * with no tables specified is not valid".into(),
        ));
    }
    if let (Some(r), true) = (relation, exprs.len() == before) {
        return Err(Error::UndefinedTable(format!(
            "missing FROM-clause entry for table \"{r}\""
        )));
    }
    Ok(())
}
