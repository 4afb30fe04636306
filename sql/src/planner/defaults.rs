//! Column defaults: checking a DEFAULT expression when a table is created, and binding it where
//! a row is written (an INSERT's omitted columns, the `DEFAULT` keyword in VALUES and in
//! UPDATE's SET).
//!
//! A default is kept in the column descriptor as SQL text and bound again by every statement
//! that uses it, so `now()` is the writing transaction's start and `gen_random_uuid()` or
//! `nextval(...)` is evaluated for every row.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, aggregate_name, for_each_child};
use crate::catalog::{Column, Identity, Table};
use crate::plan::Expr;
use crate::{DataType, Error, Result};

/// Whether `e` is the `DEFAULT` keyword (sqlparser reads it as an unquoted identifier).
pub(super) fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id)
        if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// 0A000 or 42803 for what PostgreSQL refuses in a stored expression (`what`: "DEFAULT
/// expression", "check constraint"): column references (only for a default), subqueries, aggregates.
pub(super) fn check_stored_expr(e: &ast::Expr, what: &str, columns_allowed: bool) -> Result<()> {
    use ast::Expr as A;
    match e {
        A::Identifier(_) | A::CompoundIdentifier(_) if !columns_allowed => {
            return Err(Error::NotSupported(format!(
                "cannot use column reference in {what}"
            )));
        }
        A::Subquery(_)
        | A::Exists { .. }
        | A::In {
            target: ast::InTarget::Subquery(_),
            ..
        } => {
            return Err(Error::NotSupported(format!(
                "cannot use subquery in {what}"
            )));
        }
        A::Function(f) if aggregate_name(f).is_some() => {
            return Err(Error::Grouping(format!(
                "aggregate functions are not allowed in {what}s"
            )));
        }
        _ => {}
    }
    let mut result = Ok(());
    for_each_child(e, &mut |c| {
        if result.is_ok() {
            result = check_stored_expr(c, what, columns_allowed);
        }
    });
    result
}

/// 428C9 for an INSERT that gives a GENERATED ALWAYS identity column a value other than
/// `DEFAULT`.
pub(super) fn check_identity_insert(
    table: &Table,
    columns: &[usize],
    source: &ast::Query,
) -> Result<()> {
    for (i, &c) in columns.iter().enumerate() {
        let column = &table.columns[c];
        if column.identity != Some(Identity::Always) {
            continue;
        }
        let all_default = match source.body.as_ref() {
            ast::SetExpr::Values(v) => v
                .rows
                .iter()
                .all(|r| r.get(i).is_some_and(is_default_keyword)),
            _ => false,
        };
        if !all_default {
            return Err(Error::GeneratedAlways(format!(
                "cannot insert a non-DEFAULT value into column \"{}\"",
                column.name
            )));
        }
    }
    Ok(())
}

/// 428C9 for an UPDATE of a GENERATED ALWAYS identity column to anything but `DEFAULT`.
pub(super) fn check_identity_update(column: &Column) -> Result<()> {
    if column.identity == Some(Identity::Always) {
        return Err(Error::GeneratedAlways(format!(
            "column \"{}\" can only be updated to DEFAULT",
            column.name
        )));
    }
    Ok(())
}

impl Planner<'_> {
    /// Checks a column's DEFAULT expression as CREATE TABLE does: no column references,
    /// subqueries or aggregates (0A000, 42803), a type assignable to the column (42804), and a
    /// constant that converts to the column's type (22P02...).
    pub(super) fn check_default(&mut self, column: &Column, e: &ast::Expr) -> Result<()> {
        check_stored_expr(e, "DEFAULT expression", false)?;
        let (bound, ty) = self.bind(e, &Scope::default(), Some(column.data_type))?;
        if !DataType::assignable(ty, column.data_type) {
            return Err(Error::DatatypeMismatch(format!(
                "column \"{}\" is of type {} but default expression is of type {ty}",
                column.name, column.data_type
            )));
        }
        if let Expr::Constant(v) = bound {
            v.assign(column.data_type)?;
        }
        Ok(())
    }

    /// The bound default of column `c` of `table`, NULL if it has none.
    pub(super) fn bind_default(&mut self, table: &Table, c: usize) -> Result<Expr> {
        let column = &table.columns[c];
        let Some(text) = &column.default else {
            return Ok(Expr::Constant(crate::Value::Null));
        };
        let e = crate::parser::parse_expr(text)?;
        Ok(self.bind(&e, &Scope::default(), Some(column.data_type))?.0)
    }

    /// The columns an INSERT leaves out that have a default, with their bound defaults.
    pub(super) fn omitted_defaults(
        &mut self,
        table: &Table,
        columns: &[usize],
    ) -> Result<Vec<(usize, Expr)>> {
        let mut out = Vec::new();
        for (c, column) in table.columns.iter().enumerate() {
            if !columns.contains(&c) && column.default.is_some() {
                out.push((c, self.bind_default(table, c)?));
            }
        }
        Ok(out)
    }

    /// A VALUES list with each `DEFAULT` keyword replaced by its column's default expression
    /// (NULL for a column without one).
    pub(super) fn values_with_defaults(
        &mut self,
        table: &Table,
        columns: &[usize],
        v: &ast::Values,
    ) -> Result<ast::Values> {
        let mut v = v.clone();
        for row in &mut v.rows {
            for (i, e) in row.iter_mut().enumerate() {
                if !is_default_keyword(e) {
                    continue;
                }
                let Some(&c) = columns.get(i) else {
                    continue;
                };
                *e = match &table.columns[c].default {
                    Some(text) => ast::Expr::Nested(Box::new(crate::parser::parse_expr(text)?)),
                    None => ast::Expr::Value(ast::Value::Null.into()),
                };
            }
        }
        Ok(v)
    }
}
