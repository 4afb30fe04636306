//! WITH queries (common table expressions). A CTE is a named query visible to the rest of its
//! WITH list and to the query body; each reference expands it in place, like a view (so a
//! CTE read twice runs twice; PostgreSQL materializes such a CTE, with the same results for
//! the queries supported here). In `WITH RECURSIVE`, a CTE whose query is `anchor UNION [ALL]
//! recursive term` with the term reading the CTE becomes a [`Node::RecursiveCte`], the
//! term's reference a [`Node::WorkTable`].

use std::sync::Arc;

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ident_name};
use super::view::named_scope;
use crate::plan::Node;
use crate::{Column, Error, Result};

/// A CTE in scope.
#[derive(Clone, Debug)]
pub(crate) struct CteDef {
    name: String,
    /// Column names from `name(a, b)`, if given.
    aliases: Vec<String>,
    query: Arc<ast::Query>,
    recursive: bool,
    /// While its recursive term is bound: the work table's columns.
    working: Option<Vec<Column>>,
}

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    /// Binds `q`'s WITH list, runs `body` with its CTEs in scope, then removes them.
    pub(super) fn with_ctes<T>(
        &mut self,
        with: &ast::With,
        body: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let mark = self.ctes.len();
        let mut result = Ok(());
        for cte in &with.cte_tables {
            if cte.from.is_some() {
                result = Err(not_supported("WITH ... FROM"));
                break;
            }
            let name = ident_name(&cte.alias.name);
            if self.ctes[mark..].iter().any(|c| c.name == name) {
                result = Err(Error::InvalidParameter(format!(
                    "WITH query name \"{name}\" specified more than once"
                )));
                break;
            }
            self.ctes.push(CteDef {
                name,
                aliases: cte
                    .alias
                    .columns
                    .iter()
                    .map(|c| ident_name(&c.name))
                    .collect(),
                query: Arc::new((*cte.query).clone()),
                recursive: with.recursive,
                working: None,
            });
        }
        let result = result.and_then(|()| body(self));
        self.ctes.truncate(mark);
        result
    }

    /// Plans a FROM item naming a CTE in scope under `relation`; None if none is called
    /// `name`.
    pub(super) fn plan_cte(&mut self, name: &str, relation: &str) -> Result<Option<(Node, Scope)>> {
        let Some(pos) = self.ctes.iter().rposition(|c| c.name == name) else {
            return Ok(None);
        };
        let def = self.ctes[pos].clone();
        if let Some(columns) = &def.working {
            let node = Node::WorkTable {
                columns: columns.clone(),
            };
            let names = column_names(&node, &def.aliases)?;
            let scope = named_scope(&node, relation, &names);
            return Ok(Some((node, scope)));
        }
        // The CTE sees the CTEs before it (and itself, when recursive), not those after.
        let later = self.ctes.split_off(pos + usize::from(def.recursive));
        let node = match recursive_parts(&def) {
            Some((anchor, op, term)) => self.plan_recursive(&def, anchor, op, term),
            None if def.recursive => {
                // A CTE of WITH RECURSIVE that does not read itself: bind it without itself.
                let me = self.ctes.pop();
                let r = self.plan_query(&def.query);
                self.ctes.extend(me);
                r
            }
            None => self.plan_query(&def.query),
        };
        self.ctes.extend(later);
        let node = node?;
        let names = column_names(&node, &def.aliases)?;
        let scope = named_scope(&node, relation, &names);
        Ok(Some((node, scope)))
    }

    fn plan_recursive(
        &mut self,
        def: &CteDef,
        anchor: &ast::SetExpr,
        all: bool,
        term: &ast::SetExpr,
    ) -> Result<Node> {
        let me = self.ctes.len() - 1;
        // The anchor must not read the CTE itself.
        self.ctes[me].working = Some(vec![]);
        let anchor = self.plan_set_expr_public(anchor);
        let anchor = match anchor {
            Ok(a) => a,
            Err(e) => {
                self.ctes[me].working = None;
                return Err(e);
            }
        };
        let columns = anchor.columns();
        column_names(&anchor, &def.aliases)?;
        self.ctes[me].working = Some(columns.clone());
        let term = self.plan_set_expr_public(term);
        self.ctes[me].working = None;
        let term = term?;
        let tc = term.columns();
        if tc.len() != columns.len() {
            return Err(Error::Syntax(
                "each UNION query must have the same number of columns".into(),
            ));
        }
        // The term's rows take the anchor's column types.
        let exprs = tc
            .iter()
            .zip(&columns)
            .enumerate()
            .map(|(i, (t, a))| match t.data_type == a.data_type {
                true => crate::plan::Expr::Column(i),
                false => {
                    crate::plan::Expr::Cast(Box::new(crate::plan::Expr::Column(i)), a.data_type)
                }
            })
            .collect();
        let term = Node::Projection {
            source: Box::new(term),
            exprs,
            columns: columns.clone(),
        };
        Ok(Node::RecursiveCte {
            anchor: Box::new(anchor),
            recursive: Box::new(term),
            all,
        })
    }
}

/// The anchor, UNION ALL-ness and recursive term of a recursive CTE's query, if it is one
/// (`anchor UNION [ALL] term` with no ORDER BY or LIMIT, the term reading the CTE).
fn recursive_parts(def: &CteDef) -> Option<(&ast::SetExpr, bool, &ast::SetExpr)> {
    if !def.recursive || def.query.order_by.is_some() || def.query.limit_clause.is_some() {
        return None;
    }
    let ast::SetExpr::SetOperation {
        left,
        op: ast::SetOperator::Union,
        set_quantifier,
        right,
    } = def.query.body.as_ref()
    else {
        return None;
    };
    let mut names = Vec::new();
    super::set_expr_tables(right, &mut names);
    if !names.contains(&def.name) {
        return None;
    }
    let all = matches!(set_quantifier, ast::SetQuantifier::All);
    Some((left, all, right))
}

/// A named query's column names: the aliases, then the query's own.
fn column_names(node: &Node, aliases: &[String]) -> Result<Vec<String>> {
    let mut names: Vec<String> = node.columns().into_iter().map(|c| c.name).collect();
    if aliases.len() > names.len() {
        return Err(Error::InvalidParameter(format!(
            "WITH query has {} columns available but {} columns specified",
            names.len(),
            aliases.len()
        )));
    }
    names[..aliases.len()].clone_from_slice(aliases);
    Ok(names)
}
