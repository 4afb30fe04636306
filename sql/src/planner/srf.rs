//! Planning set-returning functions: `unnest` and `generate_series` in the select list (a
//! [`Node::ProjectSet`] between the query's input and its projection, with PostgreSQL 10's
//! lockstep semantics), and `unnest(array [, ...]) [WITH ORDINALITY]` in FROM (a
//! ProjectSet over one empty row).
//!
//! In the select list each call is replaced in the AST by a reference to a hidden column of
//! the ProjectSet's output, so the projection, DISTINCT and ORDER BY bind as usual. A call
//! nested inside another call's arguments, or in WHERE, ORDER BY or GROUP BY, is refused.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, for_each_child, ident_name};
use super::output::figure_colname;
use crate::plan::{Node, SetFunction};
use crate::{Column, DataType, Error, Result};

/// The set-returning functions the select list takes.
const NAMES: &[&str] = &["unnest", "generate_series"];

/// The name of the hidden column that holds the `i`th call's values (of function `name`):
/// not an identifier a query can spell without quotes.
fn placeholder(name: &str, i: usize) -> String {
    format!("{name}#{i}")
}

/// Whether `e` calls a set-returning function (outside subqueries).
fn has_srf(e: &ast::Expr) -> bool {
    if srf_name(e).is_some() {
        return true;
    }
    let mut found = false;
    for_each_child(e, &mut |c| found |= has_srf(c));
    found
}

fn srf_name(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Function(f) if matches!(f.args, ast::FunctionArguments::List(_)) => {
            let name = f.name.to_string().to_lowercase();
            NAMES.contains(&name.as_str()).then_some(name)
        }
        _ => None,
    }
}

/// Replaces each set-returning call in `e` by its placeholder column, appending the calls.
fn replace(e: &mut ast::Expr, calls: &mut Vec<ast::Expr>) {
    use ast::Expr as A;
    if let Some(name) = srf_name(e) {
        let call = std::mem::replace(
            e,
            A::Identifier(ast::Ident::with_quote('"', placeholder(&name, calls.len()))),
        );
        calls.push(call);
        return;
    }
    match e {
        A::BinaryOp { left, right, .. } => {
            replace(left, calls);
            replace(right, calls);
        }
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::Cast { expr, .. }
        | A::IsNull(expr)
        | A::IsNotNull(expr) => replace(expr, calls),
        A::Function(f) => {
            if let ast::FunctionArguments::List(l) = &mut f.args {
                for a in &mut l.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a {
                        replace(e, calls);
                    }
                }
            }
        }
        _ => {}
    }
}

fn call_args(e: &ast::Expr) -> Result<Vec<&ast::Expr>> {
    let ast::Expr::Function(f) = e else {
        return Ok(vec![]);
    };
    let ast::FunctionArguments::List(l) = &f.args else {
        return Ok(vec![]);
    };
    l.args
        .iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
            a => Err(Error::NotSupported(format!(
                "argument {a} of a set-returning function"
            ))),
        })
        .collect()
}

fn nested_srf() -> Error {
    Error::NotSupported(
        "set-returning functions are supported only in the select list and FROM".into(),
    )
}

impl Planner<'_> {
    /// Puts a ProjectSet under the projection when the select list calls set-returning
    /// functions: returns the new input, its scope and the rewritten select list (None, and
    /// the input as it was, when there are none).
    pub(super) fn plan_select_srfs(
        &mut self,
        node: Node,
        scope: Scope,
        projection: &[ast::SelectItem],
    ) -> Result<(Node, Scope, Option<Vec<ast::SelectItem>>)> {
        let exprs = projection.iter().filter_map(|item| match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(e)
            }
            _ => None,
        });
        if !exprs.into_iter().any(has_srf) {
            return Ok((node, scope, None));
        }
        let mut items = projection.to_vec();
        let mut calls = Vec::new();
        for item in &mut items {
            if let ast::SelectItem::UnnamedExpr(e) = item
                && let Some(name) = figure_colname(e)
            {
                let alias = ast::Ident::with_quote('"', name);
                *item = ast::SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias,
                };
            }
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                replace(e, &mut calls);
            }
        }
        let mut functions = Vec::with_capacity(calls.len());
        let mut columns = node.columns();
        let mut out = scope.clone();
        for (i, call) in calls.iter().enumerate() {
            let (f, ty) = self.bind_srf(call, &scope)?;
            functions.push(f);
            let name = placeholder(&srf_name(call).unwrap_or_default(), i);
            if let Some(grouped) = &mut out.grouped {
                let id = ast::Expr::Identifier(ast::Ident::with_quote('"', name.clone()));
                grouped.push((id, out.columns.len()));
            }
            out.columns.push(ScopeColumn {
                relation: None,
                name: name.clone(),
                data_type: ty,
                hidden: true,
                merged: false,
            });
            columns.push(Column {
                name,
                data_type: ty,
            });
        }
        let node = Node::ProjectSet {
            source: Box::new(node),
            functions,
            ordinality: false,
            columns,
        };
        Ok((node, out, Some(items)))
    }

    /// Binds one set-returning call in `scope`: the function and its values' type.
    fn bind_srf(&mut self, call: &ast::Expr, scope: &Scope) -> Result<(SetFunction, DataType)> {
        let args = call_args(call)?;
        if args.iter().any(|a| has_srf(a)) {
            return Err(nested_srf());
        }
        match srf_name(call).as_deref() {
            Some("unnest") => match args.as_slice() {
                [a] => self.bind_unnest(a, scope),
                _ => Err(self.undefined("unnest", &args, scope)),
            },
            _ => {
                let (args, ty) = self.bind_series(&args, scope)?;
                Ok((SetFunction::Series(args, ty), ty))
            }
        }
    }

    fn bind_unnest(&mut self, a: &ast::Expr, scope: &Scope) -> Result<(SetFunction, DataType)> {
        let (e, t) = self.bind(a, scope, None)?;
        match t {
            DataType::Array(elem) => Ok((SetFunction::Unnest(e), elem.data_type())),
            _ => Err(Error::UndefinedFunction(format!(
                "function unnest({t}) does not exist"
            ))),
        }
    }

    /// Plans `unnest(a [, b ...]) [WITH ORDINALITY] [AS alias [(columns)]]` in FROM.
    pub(super) fn plan_unnest(
        &mut self,
        arrays: &[ast::Expr],
        ordinality: bool,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Node, Scope)> {
        let scope = Scope::default();
        let mut functions = Vec::with_capacity(arrays.len());
        let mut types = Vec::with_capacity(arrays.len() + 1);
        for a in arrays {
            if has_srf(a) {
                return Err(nested_srf());
            }
            let (f, t) = self.bind_unnest(a, &scope)?;
            functions.push(f);
            types.push(t);
        }
        let relation = alias.map_or_else(|| "unnest".to_string(), |a| ident_name(&a.name));
        let mut names: Vec<String> = match (alias, arrays.len()) {
            (Some(a), 1) if a.columns.is_empty() => vec![relation.clone()],
            _ => vec!["unnest".to_string(); arrays.len()],
        };
        if ordinality {
            names.push("ordinality".into());
            types.push(DataType::Int8);
        }
        if let Some(a) = alias {
            if a.columns.len() > names.len() {
                return Err(Error::Syntax(
                    "too many column aliases specified for function unnest".into(),
                ));
            }
            for (n, c) in names.iter_mut().zip(&a.columns) {
                *n = ident_name(&c.name);
            }
        }
        let columns: Vec<Column> = names
            .iter()
            .zip(&types)
            .map(|(name, t)| Column {
                name: name.clone(),
                data_type: *t,
            })
            .collect();
        let one_row = Node::Values {
            columns: vec![],
            rows: vec![vec![]],
        };
        let node = Node::ProjectSet {
            source: Box::new(one_row),
            functions,
            ordinality,
            columns,
        };
        let scope = Scope {
            columns: names
                .into_iter()
                .zip(types)
                .map(|(name, data_type)| ScopeColumn {
                    relation: Some(relation.clone()),
                    name,
                    data_type,
                    hidden: false,
                    merged: false,
                })
                .collect(),
            ..Scope::default()
        };
        Ok((node, scope))
    }
}
