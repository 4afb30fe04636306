//! Planning CREATE TABLE: columns with their types, NOT NULL and DEFAULT, the primary key
//! (a hidden `rowid` without one) and UNIQUE constraints.

use std::collections::HashMap;

use sqlparser::ast;

use super::Planner;
use super::expr::{ident_name, object_name};
use crate::catalog::{Column, Identity, ROWID, Sequence, Table};
use crate::plan::Plan;
use crate::{DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

/// Builds a table descriptor from CREATE TABLE (the id is assigned when it is created).
pub(super) fn plan_create_table(c: &ast::CreateTable) -> Result<Plan> {
    if c.query.is_some() || c.or_replace || c.temporary || c.like.is_some() || c.clone.is_some() {
        return Err(not_supported(
            "CREATE TABLE AS, LIKE, CLONE, OR REPLACE and TEMPORARY",
        ));
    }
    let name = object_name(&c.name)?;
    let no_tables = HashMap::new();
    let mut planner = Planner::new(&no_tables, &[]);
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key: Option<Vec<usize>> = None;
    let mut uniques = Vec::new();
    let mut sequences = Vec::new();
    let mut checks: Vec<(Option<String>, &ast::Expr)> = Vec::new();
    let set_pk = |pk: Vec<usize>, primary_key: &mut Option<Vec<usize>>| {
        if primary_key.is_some() {
            return Err(Error::InvalidParameter(format!(
                "multiple primary keys for table \"{name}\" are not allowed"
            )));
        }
        *primary_key = Some(pk);
        Ok(())
    };
    for def in &c.columns {
        let col_name = ident_name(&def.name);
        if columns.iter().any(|c| c.name == col_name) {
            return Err(Error::InvalidParameter(format!(
                "column \"{col_name}\" specified more than once"
            )));
        }
        let serial = super::sequence::serial_type(&def.data_type);
        let mut column = Column {
            id: columns.len() as u32 + 1,
            name: col_name,
            data_type: match serial {
                Some(t) => t,
                None => DataType::from_ast(&def.data_type)?,
            },
            nullable: serial.is_none(),
            hidden: false,
            default: None,
            identity: None,
        };
        if serial.is_some() {
            own_sequence(&name, &mut column, &[], &mut sequences)?;
        }
        for opt in &def.options {
            match &opt.option {
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => column.nullable = false,
                ast::ColumnOption::PrimaryKey(_) => set_pk(vec![columns.len()], &mut primary_key)?,
                ast::ColumnOption::Unique(u) => {
                    uniques.push(super::ddl::unique_constraint(u, Some(&column.name))?)
                }
                ast::ColumnOption::Default(ast::Expr::Value(v)) if v.value == ast::Value::Null => {
                    column.default = None
                }
                ast::ColumnOption::Check(c) => {
                    checks.push((opt.name.as_ref().map(ident_name), &c.expr))
                }
                ast::ColumnOption::Default(e) => {
                    planner.check_default(&column, e)?;
                    column.default = Some(e.to_string());
                }
                ast::ColumnOption::Generated {
                    generated_as: g @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                    sequence_options,
                    generation_expr: None,
                    ..
                } => {
                    if !column.data_type.is_integer() {
                        return Err(Error::InvalidParameter(
                            "identity column type must be smallint, integer, or bigint".into(),
                        ));
                    }
                    let options = sequence_options.as_deref().unwrap_or(&[]);
                    own_sequence(&name, &mut column, options, &mut sequences)?;
                    column.identity = Some(match g {
                        ast::GeneratedAs::Always => Identity::Always,
                        _ => Identity::ByDefault,
                    });
                }
                other => return Err(not_supported(format!("column option {other}"))),
            }
        }
        columns.push(column);
    }
    for constraint in &c.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                let mut idx = Vec::new();
                for ic in &pk.columns {
                    let ast::Expr::Identifier(id) = &ic.column.expr else {
                        return Err(not_supported(format!("primary key on {}", ic.column.expr)));
                    };
                    let n = ident_name(id);
                    let i = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                        Error::UndefinedColumn(format!(
                            "column \"{n}\" named in key does not exist"
                        ))
                    })?;
                    idx.push(i);
                }
                set_pk(idx, &mut primary_key)?;
            }
            ast::TableConstraint::Check(c) => {
                checks.push((c.name.as_ref().map(ident_name), &c.expr))
            }
            ast::TableConstraint::Unique(u) => {
                uniques.push(super::ddl::unique_constraint(u, None)?);
            }
            other => return Err(not_supported(format!("constraint {other}"))),
        }
    }
    let primary_key = match primary_key {
        Some(pk) => {
            pk.iter()
                .try_for_each(|&i| super::ddl::keyable(&columns[i]))?;
            pk.iter().for_each(|&i| columns[i].nullable = false);
            pk
        }
        None => {
            columns.push(Column {
                id: columns.len() as u32 + 1,
                name: ROWID.into(),
                data_type: DataType::Int8,
                nullable: false,
                hidden: true,
                default: None,
                identity: None,
            });
            vec![columns.len() - 1]
        }
    };
    let next_column_id = columns.len() as u32 + 1;
    let indexes = super::ddl::unique_constraints(&name, &columns, &uniques)?;
    let mut table = Table {
        next_index_id: crate::catalog::FIRST_INDEX_ID + indexes.len() as u32,
        indexes,
        id: 0,
        name,
        columns,
        primary_key,
        next_column_id,
        sequences: sequences
            .iter()
            .map(|s: &Sequence| s.name.clone())
            .collect(),
        checks: vec![],
    };
    table.checks = super::checks::table_checks(&table, &checks)?;
    Ok(Plan::CreateTable {
        table,
        if_not_exists: c.if_not_exists,
        sequences,
    })
}

/// Gives a SERIAL or identity column its owned sequence `<table>_<column>_seq` and the
/// sequence's `nextval` as its default; the column is NOT NULL.
fn own_sequence(
    table: &str,
    column: &mut Column,
    options: &[ast::SequenceOptions],
    sequences: &mut Vec<Sequence>,
) -> Result<()> {
    let seq = super::sequence::owned_sequence(table, &column.name, column.data_type, options)?;
    column.default = Some(format!("nextval('{}')", seq.name.replace('\'', "''")));
    column.nullable = false;
    sequences.push(seq);
    Ok(())
}
