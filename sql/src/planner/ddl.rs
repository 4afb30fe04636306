//! Planning index DDL: CREATE INDEX, and the UNIQUE constraints of CREATE TABLE.

use sqlparser::ast;

use super::expr::{ident_name, object_name};
use crate::catalog::{Column, FIRST_INDEX_ID, Index, IndexState};
use crate::plan::{IndexSpec, Plan};
use crate::{Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

/// PostgreSQL's longest identifier (NAMEDATALEN - 1 bytes).
const MAX_NAME: usize = 63;

/// A column name and direction of an index column; plain columns only.
fn index_column(ic: &ast::IndexColumn) -> Result<(String, bool)> {
    let ast::Expr::Identifier(id) = &ic.column.expr else {
        return Err(not_supported(format!("an index on {}", ic.column.expr)));
    };
    if ic.operator_class.is_some() {
        return Err(not_supported("an index operator class"));
    }
    let descending = match &ic.column.options.sort {
        None | Some(ast::OrderBySort::Asc) => false,
        Some(ast::OrderBySort::Desc) => true,
        Some(_) => return Err(not_supported("ORDER BY USING in an index")),
    };
    // NULL placement other than the direction's default needs its own encoding.
    if ic
        .column
        .options
        .nulls_first
        .is_some_and(|f| f != descending)
    {
        return Err(not_supported("NULLS FIRST/LAST on an index column"));
    }
    Ok((ident_name(id), descending))
}

/// Plans CREATE [UNIQUE] INDEX (the table and names are resolved when it runs).
pub(super) fn plan_create_index(c: &ast::CreateIndex) -> Result<Plan> {
    index_spec(c).map(Plan::CreateIndex)
}

/// The index a CREATE INDEX statement describes.
pub(crate) fn index_spec(c: &ast::CreateIndex) -> Result<IndexSpec> {
    if c.predicate.is_some() {
        return Err(not_supported("a partial index (CREATE INDEX ... WHERE)"));
    }
    if c.nulls_distinct == Some(false) {
        return Err(not_supported("NULLS NOT DISTINCT"));
    }
    if !c.with.is_empty() || !c.index_options.is_empty() || !c.alter_options.is_empty() {
        return Err(not_supported("index storage options"));
    }
    if let Some(using) = &c.using
        && !using.to_string().eq_ignore_ascii_case("btree")
    {
        return Err(not_supported(format!("index method {using}")));
    }
    let name = c.name.as_ref().map(object_name).transpose()?;
    if c.if_not_exists && name.is_none() {
        return Err(Error::Syntax(
            "syntax error: CREATE INDEX IF NOT EXISTS needs an index name".into(),
        ));
    }
    Ok(IndexSpec {
        table: object_name(&c.table_name)?,
        name,
        columns: c.columns.iter().map(index_column).collect::<Result<_>>()?,
        include: c.include.iter().map(ident_name).collect(),
        unique: c.unique,
        if_not_exists: c.if_not_exists,
    })
}

/// PostgreSQL's default name for an index: `<table>_<col>_<col>_<suffix>`, shortened to fit
/// an identifier, then `<name>1`, `<name>2`, ... while `taken` says the name is in use.
pub(crate) fn default_index_name(
    table: &str,
    columns: &[String],
    suffix: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    let mut base = format!("{table}_{}", columns.join("_"));
    let room = MAX_NAME - suffix.len() - 1;
    if base.len() > room {
        let mut end = room;
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        base.truncate(end);
    }
    let name = format!("{base}_{suffix}");
    if !taken(&name) {
        return name;
    }
    (1..)
        .map(|n| format!("{name}{n}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// Resolves the columns of an index over `columns` (42703 for a name that is not a column,
/// 0A000 for a column whose type has no key encoding).
pub(crate) fn resolve_columns(
    columns: &[Column],
    names: &[String],
    what: &str,
) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            let i = columns
                .iter()
                .position(|c| c.name == *n && !c.hidden)
                .ok_or_else(|| {
                    Error::UndefinedColumn(format!("column \"{n}\" {what}does not exist"))
                })?;
            keyable(&columns[i]).map(|_| i)
        })
        .collect()
}

/// 0A000 for a column that cannot be part of a primary key or index: jsonb and arrays have
/// no order-preserving stored key encoding here (PostgreSQL indexes both, jsonb with btree
/// and GIN).
pub(crate) fn keyable(column: &Column) -> Result<()> {
    if column.data_type == crate::DataType::Jsonb {
        return Err(Error::NotSupported(format!(
            "column \"{}\" of type jsonb cannot be part of a primary key or index yet",
            column.name
        )));
    }
    if let crate::DataType::Array(_) = column.data_type {
        return Err(Error::NotSupported(format!(
            "column \"{}\" of type {} cannot be part of a key or index",
            column.name, column.data_type
        )));
    }
    Ok(())
}

/// The unique indexes backing CREATE TABLE's UNIQUE constraints (named `<table>_<cols>_key`
/// unless named), with ids from [`FIRST_INDEX_ID`]; public at once (the table is empty).
pub(super) fn unique_constraints(
    table: &str,
    columns: &[Column],
    constraints: &[(Option<String>, Vec<String>)],
) -> Result<Vec<Index>> {
    let mut indexes: Vec<Index> = Vec::new();
    for (name, cols) in constraints {
        let positions = resolve_columns(columns, cols, "named in key ")?;
        let name = match name {
            Some(n) => n.clone(),
            None => default_index_name(table, cols, "key", |n| {
                n == format!("{table}_pkey") || indexes.iter().any(|i| i.name == n)
            }),
        };
        if indexes.iter().any(|i| i.name == name) {
            return Err(Error::DuplicateTable(format!(
                "relation \"{name}\" already exists"
            )));
        }
        indexes.push(Index {
            id: FIRST_INDEX_ID + indexes.len() as u32,
            name,
            descending: vec![false; positions.len()],
            columns: positions,
            include: vec![],
            unique: true,
            state: IndexState::Public,
        });
    }
    Ok(indexes)
}

/// The name and columns of a UNIQUE constraint (`columns` empty: the column it is declared on).
pub(super) fn unique_constraint(
    u: &ast::UniqueConstraint,
    column: Option<&str>,
) -> Result<(Option<String>, Vec<String>)> {
    if !u.include.is_empty() || u.nulls_distinct == ast::NullsDistinctOption::NotDistinct {
        return Err(not_supported("UNIQUE with INCLUDE or NULLS NOT DISTINCT"));
    }
    let mut cols = Vec::new();
    for ic in &u.columns {
        let (name, desc) = index_column(ic)?;
        if desc {
            return Err(Error::Syntax("syntax error at or near \"DESC\"".into()));
        }
        cols.push(name);
    }
    if cols.is_empty()
        && let Some(c) = column
    {
        cols.push(c.to_string());
    }
    Ok((u.name.as_ref().map(ident_name), cols))
}
