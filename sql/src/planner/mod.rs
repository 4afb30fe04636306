//! The planner: binds a parsed statement against the catalog and builds a [`Plan`].
//!
//! Planning is synchronous. The session first loads the descriptors of every table the
//! statement names ([`referenced_tables`]) in the statement's transaction, then hands them to
//! the [`Planner`]. Parameter types are inferred while binding (see [`expr::Binder`]). A plan
//! holds parameters, not their values, so the session can cache it for later executions.

mod access;
mod dml;
pub(crate) mod expr;
mod lock;
mod select;

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

use crate::catalog::Table;
use crate::plan::Plan;
use crate::{DataType, Error, Result};
use expr::{Binder, object_name};

/// Plans one statement against a set of loaded tables.
pub struct Planner<'a> {
    tables: &'a HashMap<String, Arc<Table>>,
    binder: Binder,
}

impl<'a> Planner<'a> {
    /// A planner over `tables`, with the parameter types the client declared.
    pub fn new(
        tables: &'a HashMap<String, Arc<Table>>,
        declared: &[Option<DataType>],
    ) -> Planner<'a> {
        Planner {
            tables,
            binder: Binder {
                params: declared.to_vec(),
            },
        }
    }

    /// The parameter types: declared or inferred, TEXT where nothing constrains them.
    pub fn params(&self) -> Vec<DataType> {
        self.binder
            .params
            .iter()
            .map(|p| p.unwrap_or(DataType::Text))
            .collect()
    }

    fn table(&self, name: &str) -> Result<Arc<Table>> {
        self.tables
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UndefinedTable(format!("relation \"{name}\" does not exist")))
    }

    /// Plans a statement (queries, DML and table DDL).
    pub fn plan(&mut self, stmt: &ast::Statement) -> Result<Plan> {
        match stmt {
            ast::Statement::Query(q) if !q.locks.is_empty() => self.plan_locking_query(q),
            ast::Statement::Query(q) => Ok(Plan::Select(self.plan_query(q)?)),
            ast::Statement::Insert(i) => self.plan_insert(i),
            ast::Statement::Update(u) => self.plan_update(u),
            ast::Statement::Delete(d) => self.plan_delete(d),
            ast::Statement::CreateTable(c) => dml::plan_create_table(c),
            ast::Statement::Drop {
                object_type: ast::ObjectType::Table,
                if_exists,
                names,
                ..
            } => Ok(Plan::DropTable {
                names: names.iter().map(object_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            }),
            other => Err(Error::NotSupported(format!(
                "statement is not supported yet: {other}"
            ))),
        }
    }
}

/// The names of the tables a statement reads or writes (for loading their descriptors).
pub fn referenced_tables(stmt: &ast::Statement) -> Vec<String> {
    let mut out = Vec::new();
    let from = |twj: &[ast::TableWithJoins], out: &mut Vec<String>| {
        for t in twj {
            if let ast::TableFactor::Table { name, .. } = &t.relation
                && let Ok(n) = object_name(name)
            {
                out.push(n);
            }
        }
    };
    match stmt {
        ast::Statement::Query(q) => query_tables(q, &mut out),
        ast::Statement::Insert(i) => {
            if let ast::TableObject::TableName(n) = &i.table
                && let Ok(n) = object_name(n)
            {
                out.push(n);
            }
            if let Some(q) = &i.source {
                query_tables(q, &mut out);
            }
        }
        ast::Statement::Update(u) => from(std::slice::from_ref(&u.table), &mut out),
        ast::Statement::Delete(d) => match &d.from {
            ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => {
                from(t, &mut out)
            }
        },
        ast::Statement::Explain { statement, .. } => out = referenced_tables(statement),
        _ => {}
    }
    out
}

fn query_tables(q: &ast::Query, out: &mut Vec<String>) {
    match q.body.as_ref() {
        ast::SetExpr::Select(s) => {
            for t in &s.from {
                if let ast::TableFactor::Table { name, .. } = &t.relation
                    && let Ok(n) = object_name(name)
                {
                    out.push(n);
                }
            }
        }
        ast::SetExpr::Query(q) => query_tables(q, out),
        _ => {}
    }
}
