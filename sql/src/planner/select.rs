//! Planning queries: FROM, WHERE, aggregates, projections, ORDER BY, LIMIT/OFFSET.

use std::sync::Arc;

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, aggregate_name, for_each_child, ident_name, object_name};
use super::expr::{char_as_text, common_type, not_grouped};
use super::window::{collect_windows, over_exprs};
use crate::plan::{Aggregate, AggregateOrder, Expr, Node, SetOp, SortKey, Statistic};
use crate::{Column, DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

/// The column name PostgreSQL gives an unaliased select item.
pub(crate) fn figure_colname(e: &ast::Expr) -> Option<String> {
    figure_colname_strength(e).map(|(name, _)| name)
}

/// A type's name as a column name.
fn type_colname(t: &ast::DataType) -> Option<String> {
    DataType::from_ast(t)
        .ok()
        .map(|t| t.short_name().to_string())
}

/// PostgreSQL's `FigureColnameInternal`: the name and its strength, 2 for a name taken from
/// the expression and 1 for one taken from a type (which an enclosing cast replaces).
fn figure_colname_strength(e: &ast::Expr) -> Option<(String, u8)> {
    let strong = |name: String| Some((name, 2));
    match e {
        ast::Expr::Identifier(i) => strong(ident_name(i)),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(|p| (ident_name(p), 2)),
        ast::Expr::Nested(e) => figure_colname_strength(e),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match figure_colname_strength(expr) {
            Some((name, 2)) => Some((name, 2)),
            inner => type_colname(data_type).map(|t| (t, 1)).or(inner),
        },
        ast::Expr::TypedString(ts) => type_colname(&ts.data_type).map(|t| (t, 1)),
        ast::Expr::Interval(_) => Some(("interval".into(), 1)),
        ast::Expr::Function(f) => strong(f.name.to_string().to_lowercase()),
        ast::Expr::Case { .. } => strong("case".into()),
        ast::Expr::Exists { .. } => strong("exists".into()),
        ast::Expr::Subquery(q) => match q.body.as_ref() {
            ast::SetExpr::Select(s) => match s.projection.as_slice() {
                [ast::SelectItem::ExprWithAlias { alias, .. }] => strong(ident_name(alias)),
                [ast::SelectItem::UnnamedExpr(e)] => figure_colname_strength(e),
                _ => None,
            },
            _ => None,
        },
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => {
            Some(("bool".into(), 1))
        }
        _ => None,
    }
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

    fn bind_predicate(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Expr> {
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
            (node, scope) = self.plan_window(node, &scope, &windows)?;
        }
        self.plan_projection(node, &scope, &s.projection, order_by, distinct)
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

    fn plan_aggregate(
        &mut self,
        source: Node,
        scope: &Scope,
        group_by: &[ast::Expr],
        aggs: &[ast::Function],
    ) -> Result<(Node, Scope)> {
        let mut grouped = Vec::new();
        let mut columns = Vec::new();
        let mut groups = Vec::new();
        let mut group_columns = Vec::new();
        for g in group_by {
            let (e, t) = self.bind(g, scope, None)?;
            if let Expr::Column(j) = e {
                group_columns.push((j, columns.len()));
            }
            grouped.push((g.clone(), columns.len()));
            columns.push(Column {
                name: figure_colname(g).unwrap_or_else(|| "?column?".into()),
                data_type: t,
            });
            groups.push(e);
        }
        let mut aggregates = Vec::new();
        for f in aggs {
            let (agg, t) = self.bind_aggregate(f, scope)?;
            grouped.push((ast::Expr::Function(f.clone()), columns.len()));
            columns.push(Column {
                name: agg.name().into(),
                data_type: t,
            });
            aggregates.push(agg);
        }
        let new_scope = Scope {
            columns: columns
                .iter()
                .map(|c| ScopeColumn {
                    relation: None,
                    name: c.name.clone(),
                    data_type: c.data_type,
                    hidden: false,
                    merged: false,
                })
                .collect(),
            grouped: Some(grouped),
            ungrouped: Some(Box::new(scope.clone())),
            group_columns,
        };
        Ok((
            Node::Aggregate {
                source: Box::new(source),
                group_by: groups,
                aggregates,
                columns,
            },
            new_scope,
        ))
    }

    /// Binds an aggregate call with its DISTINCT, ORDER BY and FILTER.
    pub(crate) fn bind_aggregate(
        &mut self,
        f: &ast::Function,
        scope: &Scope,
    ) -> Result<(Aggregate, DataType)> {
        let name = aggregate_name(f).unwrap_or_default();
        let list = match &f.args {
            ast::FunctionArguments::List(l)
                if f.over.is_none() && f.within_group.is_empty() && f.null_treatment.is_none() =>
            {
                l
            }
            _ => return Err(not_supported(format!("aggregate {f}"))),
        };
        let mut order_by: &[ast::OrderByExpr] = &[];
        for c in &list.clauses {
            match c {
                ast::FunctionArgumentClause::OrderBy(o) => order_by = o,
                _ => return Err(not_supported(format!("aggregate {f}"))),
            }
        }
        let distinct = list.duplicate_treatment == Some(ast::DuplicateTreatment::Distinct);
        let (mut agg, t) = self.bind_aggregate_args(&name, &list.args, scope)?;
        if !order_by.is_empty() {
            let mut keys = Vec::with_capacity(order_by.len());
            for o in order_by {
                let is_arg = list.args.iter().any(|a| {
                    matches!(a, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) if *e == o.expr)
                });
                if distinct && !is_arg {
                    return Err(Error::InvalidColumnReference(
                        "in an aggregate with DISTINCT, ORDER BY expressions must appear in argument list"
                            .into(),
                    ));
                }
                let key = sort_key(o, 0)?;
                keys.push(AggregateOrder {
                    expr: self.bind(&o.expr, scope, None)?.0,
                    descending: key.descending,
                    nulls_first: key.nulls_first,
                });
            }
            agg = Aggregate::Ordered(Box::new(agg), keys);
        }
        if distinct {
            if agg == Aggregate::CountStar {
                return Err(Error::Syntax("count(DISTINCT *) is not valid".into()));
            }
            agg = Aggregate::Distinct(Box::new(agg));
        }
        if let Some(filter) = &f.filter {
            let (p, pt) = self.bind(filter, scope, Some(DataType::Bool))?;
            if pt != DataType::Bool {
                return Err(Error::DatatypeMismatch(format!(
                    "argument of FILTER must be type boolean, not type {pt}"
                )));
            }
            agg = Aggregate::Filter(Box::new(agg), p);
        }
        Ok((agg, t))
    }

    /// Binds an aggregate function's arguments and picks its variant and result type.
    fn bind_aggregate_args(
        &mut self,
        name: &str,
        args: &[ast::FunctionArg],
        scope: &Scope,
    ) -> Result<(Aggregate, DataType)> {
        if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] = args
            && name == "count"
        {
            return Ok((Aggregate::CountStar, DataType::Int8));
        }
        let mut exprs = Vec::with_capacity(args.len());
        for a in args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => exprs.push(e),
                _ => return Err(not_supported(format!("argument {a} of {name}"))),
            }
        }
        let hint = match name {
            "bool_and" | "bool_or" | "every" => Some(DataType::Bool),
            "string_agg" => Some(DataType::Text),
            _ => None,
        };
        let mut bound = Vec::with_capacity(exprs.len());
        for e in &exprs {
            bound.push(self.bind(e, scope, hint)?);
        }
        let types: Vec<DataType> = bound.iter().map(|(_, t)| *t).collect();
        let undefined = || {
            let t: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            Error::UndefinedFunction(format!("function {name}({}) does not exist", t.join(", ")))
        };
        if name == "string_agg" {
            return match <[_; 2]>::try_from(bound) {
                Ok([(v, tv), (d, td)]) if tv.is_string() && td.is_string() => Ok((
                    Aggregate::StringAgg(char_as_text(v, tv), char_as_text(d, td)),
                    DataType::Text,
                )),
                _ => Err(undefined()),
            };
        }
        let Ok([(e, t)]) = <[_; 1]>::try_from(bound) else {
            return Err(undefined());
        };
        let stat = |s: Statistic| {
            let out = match t {
                DataType::Float4 | DataType::Float8 => DataType::Float8,
                _ => DataType::Numeric(None),
            };
            (Aggregate::Stat(s, e.clone(), out), out)
        };
        Ok(match name {
            "count" => (Aggregate::Count(e), DataType::Int8),
            "sum" | "avg" if t == DataType::Interval => {
                let a = if name == "sum" {
                    Aggregate::Sum(e, t)
                } else {
                    Aggregate::Avg(e, t)
                };
                (a, t)
            }
            "sum" if t.is_numeric() => {
                let out = match t {
                    DataType::Int2 | DataType::Int4 => DataType::Int8,
                    DataType::Int8 | DataType::Numeric(_) => DataType::Numeric(None),
                    t => t,
                };
                (Aggregate::Sum(e, out), out)
            }
            "avg" if t.is_numeric() => {
                let out = match t {
                    DataType::Float4 | DataType::Float8 => DataType::Float8,
                    _ => DataType::Numeric(None),
                };
                (Aggregate::Avg(e, out), out)
            }
            "min" => (Aggregate::Min(e), t),
            "max" => (Aggregate::Max(e), t),
            "bool_and" | "every" if t == DataType::Bool => (Aggregate::BoolAnd(e), t),
            "bool_or" if t == DataType::Bool => (Aggregate::BoolOr(e), t),
            "stddev" | "stddev_samp" if t.is_numeric() => stat(Statistic::StddevSamp),
            "stddev_pop" if t.is_numeric() => stat(Statistic::StddevPop),
            "variance" | "var_samp" if t.is_numeric() => stat(Statistic::VarSamp),
            "var_pop" if t.is_numeric() => stat(Statistic::VarPop),
            _ => return Err(undefined()),
        })
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

/// The direction and NULL placement of an ORDER BY item on `column`.
pub(crate) fn sort_key(o: &ast::OrderByExpr, column: usize) -> Result<SortKey> {
    let descending = match &o.options.sort {
        None | Some(ast::OrderBySort::Asc) => false,
        Some(ast::OrderBySort::Desc) => true,
        Some(other) => return Err(not_supported(format!("ORDER BY {other:?}"))),
    };
    let nulls_first = o.options.nulls_first.unwrap_or(descending);
    Ok(SortKey {
        column,
        descending,
        nulls_first,
    })
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

/// The select list as PostgreSQL's target list: each item's output name (if it has one) and
/// expression, with `*` expanded to the columns it stands for.
fn select_targets(
    items: &[ast::SelectItem],
    scope: &Scope,
) -> Result<Vec<(Option<String>, ast::Expr)>> {
    let quoted = |name: &str| ast::Ident::with_quote('"', name);
    let mut targets = Vec::with_capacity(items.len());
    for item in items {
        let relation = match item {
            ast::SelectItem::UnnamedExpr(e) => {
                targets.push((figure_colname(e), e.clone()));
                continue;
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                targets.push((Some(ident_name(alias)), expr.clone()));
                continue;
            }
            ast::SelectItem::Wildcard(_) => None,
            ast::SelectItem::QualifiedWildcard(
                ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) => Some(object_name(n)?),
            other => return Err(not_supported(format!("select item {other}"))),
        };
        for c in &scope.columns {
            let excluded = match &relation {
                Some(r) => c.relation.as_deref() != Some(r.as_str()),
                None => c.merged,
            };
            if c.hidden || excluded {
                continue;
            }
            let e = match &c.relation {
                Some(r) => ast::Expr::CompoundIdentifier(vec![quoted(r), quoted(&c.name)]),
                None => ast::Expr::Identifier(quoted(&c.name)),
            };
            targets.push((Some(c.name.clone()), e));
        }
    }
    Ok(targets)
}

/// GROUP BY items as PostgreSQL resolves them: a position stands for that select-list item;
/// a bare name that is no input column stands for the select-list item of that output name
/// (input column names win); anything else is an expression over the input.
fn resolve_group_by(
    group_by: &[ast::Expr],
    items: &[ast::SelectItem],
    scope: &Scope,
) -> Result<Vec<ast::Expr>> {
    if group_by.is_empty() {
        return Ok(vec![]);
    }
    let targets = select_targets(items, scope)?;
    let position = |n: &str, negative: bool| -> Result<ast::Expr> {
        let Ok(i) = n.parse::<i64>() else {
            return Err(Error::Syntax("non-integer constant in GROUP BY".into()));
        };
        let i = if negative { -i } else { i };
        match usize::try_from(i) {
            Ok(i) if (1..=targets.len()).contains(&i) => Ok(targets[i - 1].1.clone()),
            _ => Err(Error::InvalidColumnReference(format!(
                "GROUP BY position {i} is not in select list"
            ))),
        }
    };
    let mut out = Vec::with_capacity(group_by.len());
    for g in group_by {
        if let Some((n, negative)) = number_literal(g) {
            out.push(position(n, negative)?);
            continue;
        }
        out.push(match g {
            ast::Expr::Identifier(id) if scope.resolve(None, &ident_name(id))?.is_none() => {
                let name = ident_name(id);
                let mut found: Option<&ast::Expr> = None;
                for (n, e) in &targets {
                    if n.as_deref() != Some(name.as_str()) {
                        continue;
                    }
                    if found.is_some_and(|f| f != e) {
                        return Err(Error::AmbiguousColumn(format!(
                            "GROUP BY \"{name}\" is ambiguous"
                        )));
                    }
                    found = Some(e);
                }
                found.unwrap_or(g).clone()
            }
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Placeholder(_) | ast::Value::Null => g.clone(),
                _ => return Err(Error::Syntax("non-integer constant in GROUP BY".into())),
            },
            g => g.clone(),
        });
    }
    Ok(out)
}

/// The digits of a number literal, and whether it is negated (`-1`).
fn number_literal(e: &ast::Expr) -> Option<(&str, bool)> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Some((n.as_str(), false)),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match number_literal(expr) {
            Some((n, false)) => Some((n, true)),
            _ => None,
        },
        _ => None,
    }
}

/// Collects aggregate calls (not nested in other aggregates or in subqueries), without
/// duplicates.
fn collect_aggregates(e: &ast::Expr, out: &mut Vec<ast::Function>) {
    match e {
        ast::Expr::Function(f) if aggregate_name(f).is_some() => {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        e => {
            if let ast::Expr::Function(f) = e {
                over_exprs(f)
                    .into_iter()
                    .for_each(|o| collect_aggregates(o, out));
            }
            for_each_child(e, &mut |c| collect_aggregates(c, out))
        }
    }
}
