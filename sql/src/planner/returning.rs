//! Planning RETURNING lists of INSERT, UPDATE and DELETE.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ident_name, object_name};
use super::output::figure_colname;
use crate::plan::{Expr, Plan};
use crate::{Column, Error, Result};

impl Planner<'_> {
    /// Wraps a write plan with its RETURNING list, bound over the table's rows (`scope`). The
    /// write plan is optimized here, as the optimizer leaves a RETURNING plan alone.
    pub(super) fn plan_returning(
        &mut self,
        plan: Plan,
        scope: &Scope,
        items: Option<&Vec<ast::SelectItem>>,
    ) -> Result<Plan> {
        let Some(items) = items else {
            return Ok(plan);
        };
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
                ast::SelectItem::Wildcard(_) => wildcard(scope, None, &mut exprs, &mut columns),
                ast::SelectItem::QualifiedWildcard(
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => {
                    let relation = object_name(n)?;
                    if !scope
                        .columns
                        .iter()
                        .any(|c| c.relation.as_deref() == Some(&relation))
                    {
                        return Err(Error::UndefinedTable(format!(
                            "missing FROM-clause entry for table \"{relation}\""
                        )));
                    }
                    wildcard(scope, Some(&relation), &mut exprs, &mut columns);
                }
                other => {
                    return Err(Error::NotSupported(format!(
                        "RETURNING {other} is not supported yet"
                    )));
                }
            }
        }
        let plan = crate::optimizer::optimize(plan, self.param_hints());
        Ok(Plan::Returning {
            plan: Box::new(plan),
            exprs,
            columns,
        })
    }
}

fn wildcard(
    scope: &Scope,
    relation: Option<&str>,
    exprs: &mut Vec<Expr>,
    columns: &mut Vec<Column>,
) {
    for (i, c) in scope.columns.iter().enumerate() {
        if c.hidden || relation.is_some_and(|r| c.relation.as_deref() != Some(r)) {
            continue;
        }
        exprs.push(Expr::Column(i));
        columns.push(Column {
            name: c.name.clone(),
            data_type: c.data_type,
        });
    }
}
