//! Views: named queries kept in the catalog as SQL text and expanded by the binder wherever a
//! FROM clause names them, like a subquery in FROM under the view's name. A view's query is
//! bound on its own: it sees no column of the query that reads it.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, ident_name, object_name};
use crate::catalog::{self, Table, View};
use crate::plan::{Node, Plan};
use crate::store::KvTxn;
use crate::{Error, Result};

/// How deeply views may be nested in one another (a view replaced to read itself would
/// otherwise expand forever).
const MAX_VIEW_DEPTH: usize = 32;

/// A view with its parsed query.
#[derive(Clone, Debug)]
pub struct ViewDef {
    pub view: View,
    pub query: ast::Query,
}

impl ViewDef {
    /// Parses a view's query text.
    fn parse(view: View) -> Result<ViewDef> {
        let mut stmts = crate::parser::parse(&view.query)?;
        match (stmts.pop(), stmts.is_empty()) {
            (Some(ast::Statement::Query(q)), true) => Ok(ViewDef { view, query: *q }),
            _ => Err(Error::Internal(format!(
                "view \"{}\" holds no query",
                view.name
            ))),
        }
    }
}

/// The tables and views a statement names, directly or through the views it reads.
pub type Relations = (HashMap<String, Arc<Table>>, HashMap<String, Arc<ViewDef>>);

/// Loads the descriptors of the relations a statement names (see [`super::referenced_tables`]),
/// following views to the relations their queries name.
pub(crate) async fn load_relations(
    txn: &mut dyn KvTxn,
    stmt: &ast::Statement,
) -> Result<Relations> {
    let (mut tables, mut views) = (HashMap::new(), HashMap::new());
    let mut pending = super::referenced_tables(stmt);
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(t) = catalog::get_table(txn, &name).await? {
            tables.insert(name, Arc::new(t));
        } else if let Some(v) = catalog::get_view(txn, &name).await? {
            let def = ViewDef::parse(v)?;
            super::query_tables(&def.query, &mut pending);
            views.insert(name, Arc::new(def));
        }
    }
    Ok((tables, views))
}

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    /// Plans a FROM item naming a view under `relation` (its name or alias); None if `name`
    /// is not a view.
    pub(super) fn plan_view(
        &mut self,
        name: &str,
        relation: &str,
    ) -> Result<Option<(Node, Scope)>> {
        let Some(def) = self.views.get(name).cloned() else {
            return Ok(None);
        };
        if self.view_depth >= MAX_VIEW_DEPTH {
            return Err(Error::InvalidParameter(format!(
                "infinite recursion detected in rules for relation \"{name}\""
            )));
        }
        // A view's query sees neither the enclosing query's columns nor its WITH queries.
        let outer = std::mem::take(&mut self.outer);
        let ctes = std::mem::take(&mut self.ctes);
        self.view_depth += 1;
        let node = self.plan_query(&def.query);
        self.view_depth -= 1;
        self.outer = outer;
        self.ctes = ctes;
        let node = node?;
        let scope = named_scope(&node, relation, &def.view.columns);
        Ok(Some((node, scope)))
    }

    /// Plans CREATE [OR REPLACE] VIEW: binds the query now (so a view over missing tables or
    /// columns is refused) and keeps its text.
    pub(super) fn plan_create_view(&mut self, c: &ast::CreateView) -> Result<Plan> {
        if c.materialized || c.temporary || c.or_alter || c.if_not_exists || c.to.is_some() {
            return Err(not_supported(
                "MATERIALIZED, TEMPORARY and IF NOT EXISTS views",
            ));
        }
        if c.columns
            .iter()
            .any(|c| c.data_type.is_some() || c.options.is_some())
        {
            return Err(not_supported("view column types and options"));
        }
        let name = object_name(&c.name)?;
        let node = self.plan_query(&c.query)?;
        let mut columns: Vec<String> = node.columns().into_iter().map(|c| c.name).collect();
        if c.columns.len() > columns.len() {
            return Err(Error::Syntax(
                "CREATE VIEW specifies more column names than columns".into(),
            ));
        }
        for (i, col) in c.columns.iter().enumerate() {
            columns[i] = ident_name(&col.name);
        }
        for (i, col) in columns.iter().enumerate() {
            if columns[..i].contains(col) {
                return Err(Error::InvalidParameter(format!(
                    "column \"{col}\" specified more than once"
                )));
            }
        }
        let view = View {
            name,
            columns,
            query: c.query.to_string(),
        };
        Ok(Plan::CreateView {
            view,
            or_replace: c.or_replace,
        })
    }
}

/// The scope of a named query's rows under `relation`, its columns named `names`.
pub(super) fn named_scope(node: &Node, relation: &str, names: &[String]) -> Scope {
    Scope {
        columns: node
            .columns()
            .into_iter()
            .zip(names)
            .map(|(c, name)| ScopeColumn {
                relation: Some(relation.to_string()),
                name: name.clone(),
                data_type: c.data_type,
                hidden: false,
                merged: false,
            })
            .collect(),
        ..Scope::default()
    }
}
