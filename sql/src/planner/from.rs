//! Planning FROM: tables, views and WITH queries (optionally aliased), subqueries with an
//! alias, `generate_series` (`planner::series`), comma lists, CROSS, [INNER], LEFT, RIGHT and
//! FULL [OUTER] joins with ON, USING or NATURAL, nested in any shape. The result is one
//! node whose rows are the FROM items' columns side by side, and the scope that names them.
//!
//! A LATERAL subquery, or a function (`generate_series`, `unnest`, the jsonb table functions:
//! implicitly LATERAL, as in PostgreSQL), may refer to the FROM items before it; when it does
//! it becomes the right side of a [`Node::Lateral`], run once per row of the left side.
//!
//! Every table is read by a full scan here; WHERE and ON conjuncts are pushed down to joins
//! and scans, and scans narrowed to key spans, by the optimizer.

use std::sync::Arc;

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, ident_name, object_name};
use crate::catalog::Table;
use crate::plan::{CmpOp, Expr, JoinKind, Node, Span, Subquery, SubqueryKind};
use crate::{DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

/// The constraint of a join operator, if it has one.
pub(crate) fn join_constraint(op: &ast::JoinOperator) -> Option<&ast::JoinConstraint> {
    use ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c) => Some(c),
        _ => None,
    }
}

impl Planner<'_> {
    /// Plans a FROM clause: no item is one empty row; several are cross-joined.
    pub(crate) fn plan_from(&mut self, from: &[ast::TableWithJoins]) -> Result<(Node, Scope)> {
        let mut acc: Option<(Node, Scope)> = None;
        for item in from {
            acc = Some(self.plan_table_with_joins(item, acc)?);
        }
        Ok(acc.unwrap_or_else(|| {
            let values = Node::Values {
                columns: vec![],
                rows: vec![vec![]],
            };
            (values, Scope::default())
        }))
    }

    /// Plans the single table of an UPDATE or DELETE.
    pub(crate) fn plan_target(
        &mut self,
        from: &[ast::TableWithJoins],
    ) -> Result<(Arc<Table>, Scope)> {
        match from {
            [
                ast::TableWithJoins {
                    relation:
                        ast::TableFactor::Table {
                            name,
                            alias,
                            args: None,
                            ..
                        },
                    joins,
                },
            ] if joins.is_empty() => {
                let table = self.table(&object_name(name)?)?;
                let relation = match alias {
                    Some(a) if a.columns.is_empty() => ident_name(&a.name),
                    Some(_) => return Err(not_supported("column aliases here")),
                    None => table.name.clone(),
                };
                let scope = table_scope(&table, &relation);
                Ok((table, scope))
            }
            _ => Err(not_supported("several tables in UPDATE or DELETE")),
        }
    }

    /// Plans one item of a FROM list, cross-joined to the items `before` it (a LATERAL first
    /// factor may refer to those).
    fn plan_table_with_joins(
        &mut self,
        item: &ast::TableWithJoins,
        before: Option<(Node, Scope)>,
    ) -> Result<(Node, Scope)> {
        let (node, scope, lateral) =
            self.plan_factor_after(&item.relation, before.as_ref().map(|b| &b.1))?;
        let (mut left, before) = match before {
            Some(b) if lateral => (lateral_join(b, (node, scope), JoinKind::Inner, None), None),
            b => ((node, scope), b),
        };
        for j in &item.joins {
            let (rnode, rscope, lateral) = self.plan_factor_after(&j.relation, Some(&left.1))?;
            let right = (rnode, rscope);
            use ast::JoinOperator as J;
            let (kind, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
                J::FullOuter(c) => (JoinKind::Full, c),
                J::CrossJoin(ast::JoinConstraint::None) => {
                    (JoinKind::Inner, &ast::JoinConstraint::None)
                }
                other => return Err(not_supported(format!("join {other:?}"))),
            };
            if lateral {
                left = self.join_lateral(left, right, kind, constraint)?;
                continue;
            }
            left = match constraint {
                ast::JoinConstraint::None if kind == JoinKind::Inner => {
                    join(left, right, kind, None)
                }
                ast::JoinConstraint::On(e) => {
                    let on = self.bind_on(e, &left.1, &right.1)?;
                    join(left, right, kind, Some(on))
                }
                ast::JoinConstraint::Using(names) => {
                    let names = names.iter().map(object_name).collect::<Result<Vec<_>>>()?;
                    self.join_using(left, right, kind, &names)?
                }
                ast::JoinConstraint::Natural => {
                    // USING the columns both sides have, in the left side's order.
                    let names: Vec<String> = left
                        .1
                        .columns
                        .iter()
                        .filter(|c| !c.hidden && !c.merged)
                        .map(|c| c.name.clone())
                        .filter(|n| {
                            right
                                .1
                                .columns
                                .iter()
                                .any(|c| !c.hidden && !c.merged && c.name == *n)
                        })
                        .collect();
                    match names.is_empty() {
                        true => join(left, right, kind, None),
                        false => self.join_using(left, right, kind, &names)?,
                    }
                }
                _ => return Err(Error::Syntax("a join needs ON or USING".into())),
            };
        }
        Ok(match before {
            Some(b) => join(b, left, JoinKind::Inner, None),
            None => left,
        })
    }

    /// Plans a FROM item that follows the items of `left` (if any): a LATERAL subquery or a
    /// function (implicitly LATERAL, as in PostgreSQL) may refer to their columns. Says
    /// whether it does, in which case its plan reads each left row as its enclosing row.
    fn plan_factor_after(
        &mut self,
        f: &ast::TableFactor,
        left: Option<&Scope>,
    ) -> Result<(Node, Scope, bool)> {
        let may_refer = match f {
            ast::TableFactor::Derived { lateral, .. } => *lateral,
            ast::TableFactor::Table { args, .. } => args.is_some(),
            ast::TableFactor::UNNEST { .. } | ast::TableFactor::Function { .. } => true,
            _ => false,
        };
        let Some(left) = left.filter(|_| may_refer) else {
            let (node, scope) = self.plan_factor(f)?;
            return Ok((node, scope, false));
        };
        self.outer.push(left.clone());
        let planned = self.plan_factor(f);
        self.outer.pop();
        let (node, scope) = planned?;
        Ok(match node.refers_to(1) {
            true => (node, scope, true),
            false => (node.without_outer_level(), scope, false),
        })
    }

    /// Plans a function call in FROM.
    fn plan_table_function(
        &mut self,
        name: &ast::ObjectName,
        args: &ast::TableFunctionArgs,
        with_ordinality: bool,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Node, Scope)> {
        let name = object_name(name)?;
        if with_ordinality && name != "unnest" {
            return Err(not_supported(format!("{name} WITH ORDINALITY")));
        }
        match name.as_str() {
            "generate_series" => self.plan_series(args, alias),
            "unnest" => {
                let exprs = args
                    .args
                    .iter()
                    .map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                        other => Err(not_supported(format!("unnest argument {other}"))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                self.plan_unnest(&exprs, with_ordinality, alias)
            }
            name @ ("jsonb_each"
            | "jsonb_each_text"
            | "jsonb_object_keys"
            | "jsonb_array_elements"
            | "jsonb_array_elements_text") => self.plan_jsonb_table(name, args, alias),
            other => Err(Error::UndefinedFunction(format!(
                "function {other} does not exist"
            ))),
        }
    }

    /// Binds a join's ON condition over the columns of both sides.
    fn bind_on(&mut self, e: &ast::Expr, left: &Scope, right: &Scope) -> Result<Expr> {
        let scope = left.clone().concat(right.clone());
        let (on, t) = self.bind(e, &scope, Some(DataType::Bool))?;
        if t != DataType::Bool {
            return Err(Error::DatatypeMismatch(format!(
                "argument of JOIN/ON must be type boolean, not type {t}"
            )));
        }
        Ok(on)
    }

    /// Joins `left` and a LATERAL item planned after it.
    fn join_lateral(
        &mut self,
        left: (Node, Scope),
        right: (Node, Scope),
        kind: JoinKind,
        constraint: &ast::JoinConstraint,
    ) -> Result<(Node, Scope)> {
        if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
            return Err(Error::InvalidColumnReference(
                "invalid reference to a FROM-clause entry from a LATERAL item: the combining \
                 JOIN type must be INNER or LEFT for a LATERAL reference"
                    .into(),
            ));
        }
        let on = match constraint {
            ast::JoinConstraint::None => None,
            ast::JoinConstraint::On(e) => Some(self.bind_on(e, &left.1, &right.1)?),
            _ => return Err(not_supported("USING or NATURAL with a LATERAL item")),
        };
        Ok(lateral_join(left, right, kind, on))
    }

    /// `USING (a, ...)`: equality of each named column on both sides; the right side's copy
    /// (the left's, in a RIGHT join) is reachable only by its qualified name.
    fn join_using(
        &mut self,
        left: (Node, Scope),
        right: (Node, Scope),
        kind: JoinKind,
        names: &[String],
    ) -> Result<(Node, Scope)> {
        if kind == JoinKind::Full {
            return Err(not_supported("FULL JOIN with USING or NATURAL"));
        }
        let (lnode, mut lscope) = left;
        let (rnode, mut rscope) = right;
        let width = lscope.columns.len();
        let mut on = Vec::new();
        for name in names {
            let name = name.clone();
            let missing = |side: &str| {
                Error::UndefinedColumn(format!(
                    "column \"{name}\" specified in USING clause does not exist in {side} table"
                ))
            };
            let l = lscope
                .resolve(None, &name)?
                .ok_or_else(|| missing("left"))?;
            let r = rscope
                .resolve(None, &name)?
                .ok_or_else(|| missing("right"))?;
            let (tl, tr) = (lscope.columns[l].data_type, rscope.columns[r].data_type);
            if super::expr::common_type(tl, tr).is_none() {
                return Err(Error::DatatypeMismatch(format!(
                    "JOIN/USING types {tl} and {tr} cannot be matched"
                )));
            }
            // The copy a RIGHT join never NULL-extends is the one the name resolves to.
            match kind {
                JoinKind::Right => lscope.columns[l].merged = true,
                _ => rscope.columns[r].merged = true,
            }
            on.push(Expr::Compare(
                CmpOp::Eq,
                Box::new(Expr::Column(l)),
                Box::new(Expr::Column(width + r)),
            ));
        }
        Ok(join(
            (lnode, lscope),
            (rnode, rscope),
            kind,
            Expr::and_all(on),
        ))
    }

    fn plan_factor(&mut self, f: &ast::TableFactor) -> Result<(Node, Scope)> {
        match f {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let name = object_name(name)?;
                let relation = alias
                    .as_ref()
                    .map(|a| ident_name(&a.name))
                    .unwrap_or_else(|| name.clone());
                let named = match self.plan_cte(&name, &relation)? {
                    Some(found) => Some(found),
                    None => self.plan_view(&name, &relation)?,
                };
                if let Some((node, mut scope)) = named {
                    if let Some(a) = alias {
                        rename_columns(&mut scope, a, &relation)?;
                    }
                    return Ok((node, scope));
                }
                let table = self.table(&name)?;
                let mut scope = table_scope(&table, &relation);
                if let Some(a) = alias {
                    rename_columns(&mut scope, a, &table.name)?;
                }
                let node = Node::Scan {
                    table,
                    span: Span::full(),
                    read: None,
                };
                Ok((node, scope))
            }
            ast::TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality,
                ..
            } => self.plan_unnest(array_exprs, *with_ordinality, alias.as_ref()),
            ast::TableFactor::Table {
                name,
                alias,
                args: Some(args),
                with_ordinality,
                ..
            } => self.plan_table_function(name, args, *with_ordinality, alias.as_ref()),
            ast::TableFactor::Function {
                name,
                args,
                with_ordinality,
                alias,
                ..
            } => {
                let args = ast::TableFunctionArgs {
                    args: args.clone(),
                    settings: None,
                };
                self.plan_table_function(name, &args, *with_ordinality, alias.as_ref())
            }
            ast::TableFactor::Derived {
                subquery, alias, ..
            } => {
                let Some(alias) = alias else {
                    return Err(Error::Syntax("subquery in FROM must have an alias".into()));
                };
                let node = self.plan_query(subquery)?;
                let relation = ident_name(&alias.name);
                let mut scope = Scope {
                    columns: node
                        .columns()
                        .into_iter()
                        .map(|c| ScopeColumn {
                            relation: Some(relation.clone()),
                            name: c.name,
                            data_type: c.data_type,
                            hidden: false,
                            merged: false,
                        })
                        .collect(),
                    ..Scope::default()
                };
                rename_columns(&mut scope, alias, &relation)?;
                Ok((node, scope))
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } => self.plan_table_with_joins(table_with_joins, None),
            other => Err(not_supported(format!("FROM item {other}"))),
        }
    }
}

/// Applies a FROM alias's column list (`AS t(a, b)`) to the first columns of `scope`.
fn rename_columns(scope: &mut Scope, alias: &ast::TableAlias, relation: &str) -> Result<()> {
    let visible: Vec<usize> = (0..scope.columns.len())
        .filter(|&i| !scope.columns[i].hidden)
        .collect();
    if alias.columns.len() > visible.len() {
        return Err(Error::InvalidParameter(format!(
            "table \"{relation}\" has {} columns available but {} columns specified",
            visible.len(),
            alias.columns.len()
        )));
    }
    for (c, &i) in alias.columns.iter().zip(&visible) {
        scope.columns[i].name = ident_name(&c.name);
    }
    Ok(())
}

/// Joins two planned FROM items.
fn join(
    left: (Node, Scope),
    right: (Node, Scope),
    kind: JoinKind,
    on: Option<Expr>,
) -> (Node, Scope) {
    let node = Node::Join {
        left: Box::new(left.0),
        right: Box::new(right.0),
        kind,
        on,
        keys: vec![],
    };
    (node, left.1.concat(right.1))
}

/// Joins a planned FROM item to a LATERAL item planned after it.
fn lateral_join(
    left: (Node, Scope),
    right: (Node, Scope),
    kind: JoinKind,
    on: Option<Expr>,
) -> (Node, Scope) {
    let plan = Expr::Subquery(Box::new(Subquery {
        kind: SubqueryKind::Lateral,
        plan: right.0,
    }));
    let node = Node::Lateral {
        left: Box::new(left.0),
        right: plan,
        kind,
        on,
    };
    (node, left.1.concat(right.1))
}

/// The scope of a table's columns under `relation` (its name or alias).
pub(crate) fn table_scope(table: &Table, relation: &str) -> Scope {
    let columns = table
        .columns
        .iter()
        .map(|c| ScopeColumn {
            relation: Some(relation.to_string()),
            name: c.name.clone(),
            data_type: c.data_type,
            hidden: c.hidden,
            merged: false,
        })
        .collect();
    Scope {
        columns,
        ..Scope::default()
    }
}
