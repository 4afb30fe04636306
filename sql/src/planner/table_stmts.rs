//! Planning CREATE TABLE ... AS and TRUNCATE.

use sqlparser::ast;

use super::Planner;
use super::expr::{ident_name, object_name};
use crate::catalog::{Column, ROWID, Table};
use crate::plan::{Plan, SchemaPlan};
use crate::{DataType, Error, Result};

impl Planner<'_> {
    /// Plans `CREATE TABLE t [(names)] AS query [WITH [NO] DATA]`: a table without a primary
    /// key whose columns take the query's names (or the given ones) and types.
    pub(super) fn plan_create_table_as(
        &mut self,
        c: &ast::CreateTable,
        query: &ast::Query,
    ) -> Result<Plan> {
        if c.or_replace || c.temporary || !c.constraints.is_empty() {
            return Err(Error::NotSupported(
                "CREATE TABLE AS with OR REPLACE, TEMPORARY or constraints is not supported yet"
                    .into(),
            ));
        }
        let name = object_name(&c.name)?;
        let source = self.plan_query(query)?;
        let out = source.columns();
        if c.columns.len() > out.len() {
            return Err(Error::Syntax("too many column names were specified".into()));
        }
        let mut columns: Vec<Column> = Vec::with_capacity(out.len() + 1);
        for (i, col) in out.iter().enumerate() {
            let col_name = c
                .columns
                .get(i)
                .map(|d| ident_name(&d.name))
                .unwrap_or_else(|| col.name.clone());
            if columns.iter().any(|c| c.name == col_name) {
                return Err(Error::InvalidParameter(format!(
                    "column \"{col_name}\" specified more than once"
                )));
            }
            columns.push(plain_column(i, col_name, col.data_type, false));
        }
        let width = columns.len();
        columns.push(plain_column(width, ROWID.into(), DataType::Int8, true));
        let table = Table {
            id: 0,
            name,
            next_column_id: columns.len() as u32 + 1,
            columns,
            primary_key: vec![width],
            indexes: vec![],
            next_index_id: crate::catalog::FIRST_INDEX_ID,
            sequences: vec![],
            checks: vec![],
        };
        let Plan::Select(source) =
            crate::optimizer::optimize(Plan::Select(source), self.param_hints())
        else {
            unreachable!("a query optimizes to a query");
        };
        Ok(Plan::Schema(SchemaPlan::CreateTableAs {
            table: Box::new(table),
            source: Box::new(source),
            with_data: c.with_data.is_none_or(|w| w.data),
            if_not_exists: c.if_not_exists,
        }))
    }
}

fn plain_column(i: usize, name: String, data_type: DataType, hidden: bool) -> Column {
    Column {
        id: i as u32 + 1,
        name,
        data_type,
        nullable: !hidden,
        hidden,
        default: None,
        identity: None,
    }
}

/// Plans `TRUNCATE [TABLE] a, b [RESTART IDENTITY | CONTINUE IDENTITY] [CASCADE | RESTRICT]`.
pub(super) fn plan_truncate(t: &ast::Truncate) -> Result<Plan> {
    if t.partitions.is_some() || t.on_cluster.is_some() {
        return Err(Error::NotSupported(
            "TRUNCATE with partitions is not supported yet".into(),
        ));
    }
    Ok(Plan::Schema(SchemaPlan::Truncate {
        names: t
            .table_names
            .iter()
            .map(|n| object_name(&n.name))
            .collect::<Result<_>>()?,
        restart_identity: t.identity == Some(ast::TruncateIdentityOption::Restart),
    }))
}
