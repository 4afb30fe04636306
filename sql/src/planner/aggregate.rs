//! Planning aggregation: GROUP BY items resolved as PostgreSQL resolves them, aggregate calls
//! (with DISTINCT, ORDER BY and FILTER) bound to [`Aggregate`]s, and the scope after it.

use sqlparser::ast;

use super::Planner;
use super::expr::object_name;
use super::expr::{Scope, ScopeColumn, aggregate_name, char_as_text, for_each_child, ident_name};
use super::output::{figure_colname, sort_key};
use super::window::over_exprs;
use crate::plan::{Aggregate, AggregateOrder, Expr, Node, Statistic};
use crate::{Column, DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    pub(crate) fn plan_aggregate(
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
        let mut bound: Vec<(Expr, DataType)> = Vec::with_capacity(exprs.len());
        for e in &exprs {
            // string_agg(bytea, bytea): an untyped delimiter takes the value's type.
            let hint = match bound.first() {
                Some((_, DataType::Bytea)) => Some(DataType::Bytea),
                _ => hint,
            };
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
                Ok([(v, DataType::Bytea), (d, DataType::Bytea)]) => {
                    Ok((Aggregate::StringAgg(v, d), DataType::Bytea))
                }
                _ => Err(undefined()),
            };
        }
        if name == "jsonb_object_agg" || name == "json_object_agg" {
            return match <[_; 2]>::try_from(bound) {
                Ok([(k, tk), (v, tv)]) => Ok((
                    Aggregate::JsonbObjectAgg(char_as_text(k, tk), char_as_text(v, tv)),
                    DataType::Jsonb,
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
            "jsonb_agg" | "json_agg" => (Aggregate::JsonbAgg(char_as_text(e, t)), DataType::Jsonb),
            // PostgreSQL has no min or max of jsonb.
            "min" | "max" if t == DataType::Jsonb => return Err(undefined()),
            "array_agg" => {
                let elem = crate::types::array::ElemType::of(t)
                    .ok_or_else(|| crate::types::array::no_array_of(t))?;
                (Aggregate::ArrayAgg(e), DataType::Array(elem))
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
pub(crate) fn resolve_group_by(
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
pub(crate) fn collect_aggregates(e: &ast::Expr, out: &mut Vec<ast::Function>) {
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
