//! Planning `SELECT ... FOR UPDATE` / `FOR SHARE`: each row of the query carries, after its
//! visible columns, the primary key of the table row it came from, so the executor can lock
//! exactly the rows it returns.

use std::sync::Arc;

use sqlparser::ast;

use super::Planner;
use crate::catalog::Table;
use crate::plan::{Expr, Node, Plan};
use crate::{Error, Result};

fn not_supported(what: &str) -> Error {
    Error::NotSupported(format!("{what} is not supported"))
}

impl Planner<'_> {
    /// Plans a query with locking clauses. FOR SHARE takes the same exclusive lock as FOR UPDATE.
    pub(crate) fn plan_locking_query(&mut self, q: &ast::Query) -> Result<Plan> {
        for lock in &q.locks {
            if lock.nonblock.is_some() {
                return Err(not_supported("FOR UPDATE NOWAIT / SKIP LOCKED"));
            }
            if lock.of.is_some() {
                return Err(not_supported("FOR UPDATE OF"));
            }
        }
        let mut unlocked = q.clone();
        unlocked.locks.clear();
        let node = self.plan_query(&unlocked)?;
        let Some(table) = scanned_table(&node)? else {
            // No table: nothing to lock (as in PostgreSQL, `SELECT 1 FOR UPDATE` just runs).
            return Ok(Plan::Select(node));
        };
        let visible = node.columns().len();
        let (node, keys) = with_keys(node, &table)?;
        let columns = node.columns();
        let exprs = (0..visible)
            .chain(keys)
            .map(Expr::Column)
            .collect::<Vec<_>>();
        let columns = exprs
            .iter()
            .map(|e| match e {
                Expr::Column(i) => columns[*i].clone(),
                _ => unreachable!("only columns"),
            })
            .collect();
        let node = Node::Projection {
            source: Box::new(node),
            exprs,
            columns,
        };
        Ok(Plan::LockingSelect { table, node })
    }
}

/// The table a query reads, if any (one at most: joins are 0A000).
fn scanned_table(node: &Node) -> Result<Option<Arc<Table>>> {
    match node {
        Node::Get { table, .. } | Node::Scan { table, .. } | Node::IndexScan { table, .. } => {
            Ok(Some(table.clone()))
        }
        Node::Values { .. } | Node::Series { .. } | Node::JsonbTable { .. } => Ok(None),
        Node::Join { .. }
        | Node::LookupJoin { .. }
        | Node::Lateral { .. }
        | Node::SetOp { .. }
        | Node::Distinct { .. }
        | Node::DistinctOn { .. }
        | Node::Window { .. }
        | Node::ProjectSet { .. }
        | Node::RecursiveCte { .. }
        | Node::WorkTable { .. } => Err(not_supported(
            "FOR UPDATE with joins, DISTINCT, set operations or WITH RECURSIVE",
        )),
        Node::Filter { source, .. }
        | Node::Projection { source, .. }
        | Node::Order { source, .. }
        | Node::Limit { source, .. }
        | Node::Aggregate { source, .. } => scanned_table(source),
    }
}

/// Appends the table's primary-key columns to every row `node` emits; returns the new node and
/// the positions of the key columns in its rows.
fn with_keys(node: Node, table: &Table) -> Result<(Node, Vec<usize>)> {
    Ok(match node {
        Node::Get { .. } | Node::Scan { .. } | Node::IndexScan { .. } => {
            let keys = table.primary_key.clone();
            (node, keys)
        }
        Node::Projection {
            source,
            mut exprs,
            mut columns,
        } => {
            let (source, keys) = with_keys(*source, table)?;
            let source_columns = source.columns();
            let first = exprs.len();
            for &k in &keys {
                exprs.push(Expr::Column(k));
                columns.push(source_columns[k].clone());
            }
            let node = Node::Projection {
                source: Box::new(source),
                exprs,
                columns,
            };
            (node, (first..first + keys.len()).collect())
        }
        Node::Filter { source, predicate } => {
            let (source, keys) = with_keys(*source, table)?;
            let node = Node::Filter {
                source: Box::new(source),
                predicate,
            };
            (node, keys)
        }
        Node::Order { source, keys: sort } => {
            let (source, keys) = with_keys(*source, table)?;
            let node = Node::Order {
                source: Box::new(source),
                keys: sort,
            };
            (node, keys)
        }
        Node::Limit {
            source,
            limit,
            offset,
            ties,
        } => {
            let (source, keys) = with_keys(*source, table)?;
            let node = Node::Limit {
                source: Box::new(source),
                limit,
                offset,
                ties,
            };
            (node, keys)
        }
        Node::Aggregate { .. } => {
            return Err(not_supported("FOR UPDATE with aggregate functions"));
        }
        Node::Values { .. }
        | Node::Series { .. }
        | Node::JsonbTable { .. }
        | Node::Join { .. }
        | Node::LookupJoin { .. }
        | Node::Lateral { .. }
        | Node::SetOp { .. }
        | Node::Distinct { .. }
        | Node::DistinctOn { .. }
        | Node::Window { .. }
        | Node::ProjectSet { .. }
        | Node::RecursiveCte { .. }
        | Node::WorkTable { .. } => {
            return Err(Error::Internal(
                "VALUES or a join under a locked scan".into(),
            ));
        }
    })
}
