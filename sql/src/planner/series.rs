//! Planning `generate_series(start, stop [, step])` in FROM, with PostgreSQL's forms:
//! integers (int4, or int8 when an argument is one) and numerics with a default step of 1,
//! and timestamps or timestamptz with an interval step (a date is read as a timestamptz).
//! An alias names the relation and, without a column list, its one column too.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, cast_expr, ident_name, is_flexible};
use crate::plan::{Expr, Node};
use crate::{Column, DataType, Error, Result, Value};

/// The function's name, and its column's name without an alias.
const NAME: &str = "generate_series";

impl Planner<'_> {
    /// Plans a `generate_series` FROM item.
    pub(super) fn plan_series(
        &mut self,
        args: &ast::TableFunctionArgs,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Node, Scope)> {
        let exprs = args
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                a => Err(Error::NotSupported(format!(
                    "argument {a} of {NAME} is not supported yet"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let ([start, stop, step], ty) = self.bind_series(&exprs, &Scope::default())?;
        let relation = alias.map_or_else(|| NAME.to_string(), |a| ident_name(&a.name));
        let name = match alias {
            Some(a) if a.columns.len() > 1 => {
                return Err(Error::Syntax(format!(
                    "too many column aliases specified for function {NAME}"
                )));
            }
            Some(a) => a
                .columns
                .first()
                .map_or_else(|| relation.clone(), |c| ident_name(&c.name)),
            None => NAME.to_string(),
        };
        let node = Node::Series {
            start,
            stop,
            step,
            column: Column {
                name: name.clone(),
                data_type: ty,
            },
        };
        let scope = Scope {
            columns: vec![ScopeColumn {
                relation: Some(relation),
                name,
                data_type: ty,
                hidden: false,
                merged: false,
            }],
            ..Scope::default()
        };
        Ok((node, scope))
    }

    /// Binds generate_series' arguments in `scope`: start, stop and step (1 by default) as
    /// the series' type, which is returned with them.
    pub(super) fn bind_series(
        &mut self,
        exprs: &[&ast::Expr],
        scope: &Scope,
    ) -> Result<([Expr; 3], DataType)> {
        if !(2..=3).contains(&exprs.len()) {
            return Err(self.undefined(NAME, exprs, scope));
        }
        let ty = self
            .series_type(exprs, scope)?
            .ok_or_else(|| self.undefined(NAME, exprs, scope))?;
        let mut bound = Vec::with_capacity(3);
        for (i, e) in exprs.iter().enumerate() {
            let want = if i == 2 && is_time(ty) {
                DataType::Interval
            } else {
                ty
            };
            let (b, t) = self.bind(e, scope, Some(want))?;
            let fits = match want {
                DataType::Interval => t == DataType::Interval,
                w if is_time(w) => is_time(t) || t == DataType::Date,
                DataType::Numeric(_) => t.is_integer() || matches!(t, DataType::Numeric(_)),
                _ => t.is_integer(),
            };
            if !fits {
                return Err(self.undefined(NAME, exprs, scope));
            }
            bound.push(if t == want { b } else { cast_expr(b, t, want)? });
        }
        if bound.len() == 2 {
            bound.push(Expr::Constant(match ty {
                DataType::Numeric(_) => Value::Numeric(1.into()),
                _ => Value::Int(1),
            }));
        }
        let args = <[Expr; 3]>::try_from(bound)
            .map_err(|_| Error::Internal("generate_series without three arguments".into()))?;
        Ok((args, ty))
    }

    /// The type of the series from its typed arguments; None when no form takes them.
    fn series_type(&mut self, exprs: &[&ast::Expr], scope: &Scope) -> Result<Option<DataType>> {
        let mut types = Vec::with_capacity(exprs.len());
        for e in exprs {
            types.push(match is_flexible(e) {
                true => None,
                false => Some(self.bind(e, scope, None)?.1),
            });
        }
        let ends: Vec<DataType> = types.iter().take(2).flatten().copied().collect();
        let step = types.get(2).copied().flatten();
        let timed = ends.iter().any(|t| is_time(*t) || *t == DataType::Date)
            || step == Some(DataType::Interval);
        Ok(Some(if timed {
            if exprs.len() < 3 {
                return Ok(None);
            }
            match ends.iter().all(|t| *t == DataType::Timestamp) && !ends.is_empty() {
                true => DataType::Timestamp,
                false => DataType::Timestamptz,
            }
        } else if types
            .iter()
            .flatten()
            .any(|t| matches!(t, DataType::Numeric(_)))
        {
            DataType::Numeric(None)
        } else if types.iter().flatten().any(|t| *t == DataType::Int8) {
            DataType::Int8
        } else {
            DataType::Int4
        }))
    }
}

fn is_time(t: DataType) -> bool {
    matches!(t, DataType::Timestamp | DataType::Timestamptz)
}
