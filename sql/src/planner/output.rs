//! The select list's output: the column names PostgreSQL gives unaliased items, and the sort
//! keys of ORDER BY items (shared by ORDER BY, DISTINCT ON, aggregate calls and windows).

use sqlparser::ast;

use super::expr::ident_name;
use crate::plan::SortKey;
use crate::{DataType, Error, Result};

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

/// The direction and NULL placement of an ORDER BY item on `column`.
pub(crate) fn sort_key(o: &ast::OrderByExpr, column: usize) -> Result<SortKey> {
    let descending = match &o.options.sort {
        None | Some(ast::OrderBySort::Asc) => false,
        Some(ast::OrderBySort::Desc) => true,
        Some(other) => {
            return Err(Error::NotSupported(format!(
                "ORDER BY {other:?} is not supported yet"
            )));
        }
    };
    let nulls_first = o.options.nulls_first.unwrap_or(descending);
    Ok(SortKey {
        column,
        descending,
        nulls_first,
    })
}
