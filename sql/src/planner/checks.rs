//! CHECK constraints: named and checked when a table is created, bound over the table's row
//! by each statement that writes it.

use std::collections::HashMap;

use sqlparser::ast;

use super::Planner;
use super::defaults::check_stored_expr;
use super::expr::{for_each_child, ident_name};
use super::from::table_scope;
use crate::catalog::{Check, Table};
use crate::plan::Expr;
use crate::{DataType, Error, Result};

/// The columns an expression names (unqualified or qualified), in order, each once.
fn referenced_columns(e: &ast::Expr, out: &mut Vec<String>) {
    let name = match e {
        ast::Expr::Identifier(id) => Some(ident_name(id)),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident_name),
        _ => None,
    };
    if let Some(n) = name
        && !out.contains(&n)
    {
        out.push(n);
    }
    for_each_child(e, &mut |c| referenced_columns(c, out));
}

/// PostgreSQL's name for an unnamed CHECK: `<table>_<column>_check` when it reads one column,
/// else `<table>_check`, numbered from 1 while taken.
fn default_name(table: &str, e: &ast::Expr, taken: &[Check]) -> String {
    let mut columns = Vec::new();
    referenced_columns(e, &mut columns);
    let base = match columns.as_slice() {
        [c] => format!("{table}_{c}_check"),
        _ => format!("{table}_check"),
    };
    let free = |n: &str| !taken.iter().any(|c| c.name == n);
    if free(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| free(n))
        .expect("some suffix is free")
}

/// The CHECK constraints of CREATE TABLE (column-level, then table-level, each as
/// `(name, expression)`), named and checked against the table's columns: a boolean
/// expression (42804) without subqueries (0A000) or aggregates (42803).
pub(super) fn table_checks(
    table: &Table,
    declared: &[(Option<String>, &ast::Expr)],
) -> Result<Vec<Check>> {
    let no_tables = HashMap::new();
    let mut planner = Planner::new(&no_tables, &[]);
    let scope = table_scope(table, &table.name);
    let mut checks: Vec<Check> = Vec::new();
    for (name, e) in declared {
        check_stored_expr(e, "check constraint", true)?;
        let (_, ty) = planner.bind(e, &scope, Some(DataType::Bool))?;
        if ty != DataType::Bool {
            return Err(Error::DatatypeMismatch(format!(
                "argument of CHECK must be type boolean, not type {ty}"
            )));
        }
        let name = match name {
            Some(n) if checks.iter().any(|c| &c.name == n) => {
                return Err(Error::DuplicateObject(format!(
                    "constraint \"{n}\" for relation \"{}\" already exists",
                    table.name
                )));
            }
            Some(n) => n.clone(),
            None => default_name(&table.name, e, &checks),
        };
        checks.push(Check {
            name,
            expr: e.to_string(),
        });
    }
    Ok(checks)
}

/// The table's CHECK constraints bound over its rows (column `i` is the table's column `i`).
pub(crate) fn bind_checks(table: &Table) -> Result<Vec<(String, Expr)>> {
    if table.checks.is_empty() {
        return Ok(vec![]);
    }
    let no_tables = HashMap::new();
    let mut planner = Planner::new(&no_tables, &[]);
    let scope = table_scope(table, &table.name);
    table
        .checks
        .iter()
        .map(|c| {
            let e = crate::parser::parse_expr(&c.expr)?;
            Ok((
                c.name.clone(),
                planner.bind(&e, &scope, Some(DataType::Bool))?.0,
            ))
        })
        .collect()
}
