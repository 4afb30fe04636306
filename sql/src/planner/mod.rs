//! The planner: binds a parsed statement against the catalog and builds a [`Plan`].
//!
//! Planning is synchronous. The session first loads the descriptors of every table the
//! statement names ([`referenced_tables`]) in the statement's transaction, then hands them to
//! the [`Planner`]. Names are resolved through scopes (`expr::Scope`): the FROM items of the
//! query being bound ([`from`]: tables, aliases, joins, subqueries), then the scopes of the
//! queries enclosing a subquery, innermost first, whose columns become [`Expr::Outer`]
//! references. Parameter types are inferred while binding. A plan holds parameters, not their
//! values, so the session can cache it for later executions.
//!
//! The planner builds the logical shape only: every table is read by a full scan under the
//! filters of its query; the optimizer pushes filters down and chooses key spans and joins.
//!
//! [`Expr::Outer`]: crate::plan::Expr::Outer

pub(crate) mod access;
mod aggregate;
mod array;
pub(crate) mod checks;
mod create_table;
mod cte;
pub(crate) mod ddl;
mod defaults;
mod dml;
pub(crate) mod expr;
mod from;
mod functions;
mod jsonb;
mod lock;
mod output;
mod returning;
mod select;
mod sequence;
mod series;
mod srf;
mod table_stmts;
mod upsert;
pub(crate) mod view;
mod window;

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

use crate::catalog::Table;
use crate::plan::Plan;
use crate::{DataType, Error, Result};
use expr::{Scope, object_name};

/// Plans one statement against a set of loaded tables.
pub struct Planner<'a> {
    tables: &'a HashMap<String, Arc<Table>>,
    /// Types of `$1..$n` known so far (declared by the client or inferred).
    params: Vec<Option<DataType>>,
    /// The scopes of the queries enclosing the subquery being bound, outermost first.
    outer: Vec<Scope>,
    /// The views the statement reads (directly or through other views).
    views: HashMap<String, Arc<view::ViewDef>>,
    /// How many view expansions enclose the query being bound.
    view_depth: usize,
    /// The WITH queries in scope, outermost first.
    ctes: Vec<cte::CteDef>,
    /// The type each operand of an array operator was found to have, by the operand's and
    /// its scope's address and the depth of enclosing queries: finding out binds the
    /// operand, and a chain of `||` would otherwise bind its first operands once per link
    /// twice over (exponential in the chain's length).
    operand_types: HashMap<(usize, usize, usize), DataType>,
}

impl<'a> Planner<'a> {
    /// A planner over `tables`, with the parameter types the client declared.
    pub fn new(
        tables: &'a HashMap<String, Arc<Table>>,
        declared: &[Option<DataType>],
    ) -> Planner<'a> {
        Planner {
            tables,
            params: declared.to_vec(),
            outer: Vec::new(),
            views: HashMap::new(),
            view_depth: 0,
            ctes: Vec::new(),
            operand_types: HashMap::new(),
        }
    }

    /// The planner with the views the statement reads (see [`view::load_relations`]).
    pub fn with_views(mut self, views: HashMap<String, Arc<view::ViewDef>>) -> Self {
        self.views = views;
        self
    }

    /// The parameter types known after planning (`None` where nothing constrains one).
    pub fn param_hints(&self) -> &[Option<DataType>] {
        &self.params
    }

    /// The parameter types: declared or inferred, TEXT where nothing constrains them.
    pub fn params(&self) -> Vec<DataType> {
        self.params
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
            ast::Statement::CreateTable(c) => match &c.query {
                Some(q) => self.plan_create_table_as(c, q),
                None => create_table::plan_create_table(c),
            },
            ast::Statement::Truncate(t) => table_stmts::plan_truncate(t),
            ast::Statement::CreateIndex(c) => ddl::plan_create_index(c),
            ast::Statement::CreateView(c) => self.plan_create_view(c),
            ast::Statement::Drop {
                object_type: ast::ObjectType::View,
                if_exists,
                names,
                ..
            } => Ok(Plan::DropView {
                names: names.iter().map(object_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            }),
            ast::Statement::Drop {
                object_type: ast::ObjectType::Index,
                if_exists,
                names,
                ..
            } => Ok(Plan::DropIndex {
                names: names.iter().map(object_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            }),
            ast::Statement::CreateSequence {
                temporary,
                if_not_exists,
                name,
                sequence_options,
            } => sequence::plan_create_sequence(*temporary, *if_not_exists, name, sequence_options),
            ast::Statement::Drop {
                object_type: ast::ObjectType::Sequence,
                if_exists,
                names,
                ..
            } => Ok(Plan::Schema(crate::plan::SchemaPlan::DropSequence {
                names: names.iter().map(object_name).collect::<Result<_>>()?,
                if_exists: *if_exists,
            })),
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

/// The names of the tables a statement reads or writes (for loading their descriptors),
/// including those of joins and subqueries.
pub fn referenced_tables(stmt: &ast::Statement) -> Vec<String> {
    let mut out = Vec::new();
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
        ast::Statement::Update(u) => {
            from_tables(std::slice::from_ref(&u.table), &mut out);
            for a in &u.assignments {
                expr_tables(&a.value, &mut out);
            }
            u.selection.iter().for_each(|e| expr_tables(e, &mut out));
        }
        ast::Statement::Delete(d) => {
            match &d.from {
                ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => {
                    from_tables(t, &mut out)
                }
            }
            d.selection.iter().for_each(|e| expr_tables(e, &mut out));
        }
        ast::Statement::Explain { statement, .. } => out = referenced_tables(statement),
        ast::Statement::CreateView(c) => query_tables(&c.query, &mut out),
        ast::Statement::CreateTable(c) => c.query.iter().for_each(|q| query_tables(q, &mut out)),
        _ => {}
    }
    out
}

pub(crate) fn query_tables(q: &ast::Query, out: &mut Vec<String>) {
    if let Some(with) = &q.with {
        with.cte_tables
            .iter()
            .for_each(|c| query_tables(&c.query, out));
    }
    set_expr_tables(&q.body, out);
    if let Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(items),
        ..
    }) = &q.order_by
    {
        items.iter().for_each(|o| expr_tables(&o.expr, out));
    }
}

pub(crate) fn set_expr_tables(body: &ast::SetExpr, out: &mut Vec<String>) {
    match body {
        ast::SetExpr::Select(s) => {
            from_tables(&s.from, out);
            for item in &s.projection {
                if let ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    expr_tables(e, out);
                }
            }
            s.selection.iter().for_each(|e| expr_tables(e, out));
            s.having.iter().for_each(|e| expr_tables(e, out));
            if let ast::GroupByExpr::Expressions(e, _) = &s.group_by {
                e.iter().for_each(|e| expr_tables(e, out));
            }
        }
        ast::SetExpr::Query(q) => query_tables(q, out),
        ast::SetExpr::SetOperation { left, right, .. } => {
            set_expr_tables(left, out);
            set_expr_tables(right, out);
        }
        ast::SetExpr::Values(v) => v
            .rows
            .iter()
            .flat_map(|r| r.iter())
            .for_each(|e| expr_tables(e, out)),
        _ => {}
    }
}

fn from_tables(from: &[ast::TableWithJoins], out: &mut Vec<String>) {
    for t in from {
        factor_tables(&t.relation, out);
        for j in &t.joins {
            factor_tables(&j.relation, out);
            if let Some(ast::JoinConstraint::On(e)) = from::join_constraint(&j.join_operator) {
                expr_tables(e, out);
            }
        }
    }
}

fn factor_tables(f: &ast::TableFactor, out: &mut Vec<String>) {
    match f {
        ast::TableFactor::Table { name, .. } => {
            if let Ok(n) = object_name(name) {
                out.push(n);
            }
        }
        ast::TableFactor::Derived { subquery, .. } => query_tables(subquery, out),
        ast::TableFactor::NestedJoin {
            table_with_joins, ..
        } => from_tables(std::slice::from_ref(table_with_joins), out),
        _ => {}
    }
}

/// Tables named by subqueries inside an expression.
fn expr_tables(e: &ast::Expr, out: &mut Vec<String>) {
    use ast::Expr as A;
    match e {
        A::Subquery(q) | A::Exists { subquery: q, .. } => query_tables(q, out),
        A::In {
            expr,
            target: ast::InTarget::Subquery(q),
            ..
        } => {
            expr_tables(expr, out);
            query_tables(q, out);
        }
        A::Function(ast::Function {
            args: ast::FunctionArguments::Subquery(q),
            ..
        }) => query_tables(q, out),
        _ => expr::for_each_child(e, &mut |c| expr_tables(c, out)),
    }
}
