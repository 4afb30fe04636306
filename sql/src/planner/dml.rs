//! Planning INSERT, UPDATE, DELETE, CREATE TABLE.

use sqlparser::ast;

use super::Planner;
use super::expr::{ident_name, object_name};
use crate::catalog::{Column, ROWID, Table};
use crate::plan::{Node, Plan};
use crate::{DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    pub(super) fn plan_insert(&mut self, i: &ast::Insert) -> Result<Plan> {
        if i.on.is_some() || i.returning.is_some() || i.or.is_some() || i.table_alias.is_some() {
            return Err(not_supported("ON CONFLICT, RETURNING and INSERT aliases"));
        }
        let ast::TableObject::TableName(name) = &i.table else {
            return Err(not_supported("INSERT INTO a table function"));
        };
        let table = self.table(&object_name(name)?)?;
        let columns: Vec<usize> = if i.columns.is_empty() {
            (0..table.columns.len())
                .filter(|&c| !table.columns[c].hidden)
                .collect()
        } else {
            let mut cols = Vec::new();
            for c in &i.columns {
                let name = object_name(c)?;
                let idx = table
                    .column_index(&name)
                    .filter(|&i| !table.columns[i].hidden)
                    .ok_or_else(|| {
                        Error::UndefinedColumn(format!(
                            "column \"{name}\" of relation \"{}\" does not exist",
                            table.name
                        ))
                    })?;
                if cols.contains(&idx) {
                    return Err(Error::Syntax(format!(
                        "column \"{name}\" specified more than once"
                    )));
                }
                cols.push(idx);
            }
            cols
        };
        let Some(source) = &i.source else {
            return Err(not_supported("INSERT ... DEFAULT VALUES"));
        };
        let hints: Vec<DataType> = columns
            .iter()
            .map(|&c| table.columns[c].data_type)
            .collect();
        let assignable = |i: usize, from: DataType| match columns.get(i) {
            Some(&c) => assignable(&table.columns[c], from),
            None => Ok(()),
        };
        let source = match source.body.as_ref() {
            ast::SetExpr::Values(v)
                if source.order_by.is_none() && source.limit_clause.is_none() =>
            {
                self.plan_values_checked(v, &hints, &mut |i, t| assignable(i, t))?
            }
            _ => {
                let query = self.plan_query(source)?;
                for (i, c) in query.columns().iter().enumerate() {
                    // An untyped literal in the SELECT list is coerced to its column when
                    // the row is stored, as in PostgreSQL.
                    if !untyped_select_item(source, i) {
                        assignable(i, c.data_type)?;
                    }
                }
                query
            }
        };
        let width = source.columns().len();
        if width > columns.len() {
            return Err(Error::Syntax(
                "INSERT has more expressions than target columns".into(),
            ));
        }
        let columns = columns[..width].to_vec();
        Ok(Plan::Insert {
            table,
            columns,
            source,
        })
    }

    pub(super) fn plan_update(&mut self, u: &ast::Update) -> Result<Plan> {
        if u.from.is_some()
            || u.returning.is_some()
            || !u.table.joins.is_empty()
            || u.limit.is_some()
        {
            return Err(not_supported("UPDATE with FROM, RETURNING or LIMIT"));
        }
        let (table, scope) = self.plan_target(std::slice::from_ref(&u.table))?;
        let mut set = Vec::new();
        for a in &u.assignments {
            let ast::AssignmentTarget::ColumnName(name) = &a.target else {
                return Err(not_supported("tuple assignments"));
            };
            let name = object_name(name)?;
            let col = table
                .column_index(&name)
                .filter(|&i| !table.columns[i].hidden)
                .ok_or_else(|| {
                    Error::UndefinedColumn(format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        table.name
                    ))
                })?;
            if set.iter().any(|(c, _)| *c == col) {
                return Err(Error::Syntax(format!(
                    "multiple assignments to same column \"{name}\""
                )));
            }
            let (e, t) = self.bind(&a.value, &scope, Some(table.columns[col].data_type))?;
            assignable(&table.columns[col], t)?;
            set.push((col, e));
        }
        let source = self.plan_where(table.clone(), &scope, u.selection.as_ref())?;
        Ok(Plan::Update { table, source, set })
    }

    pub(super) fn plan_delete(&mut self, d: &ast::Delete) -> Result<Plan> {
        if d.using.is_some() || d.returning.is_some() || !d.tables.is_empty() || d.limit.is_some() {
            return Err(not_supported("DELETE with USING, RETURNING or LIMIT"));
        }
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
        };
        let (table, scope) = self.plan_target(from)?;
        let source: Node = self.plan_where(table.clone(), &scope, d.selection.as_ref())?;
        Ok(Plan::Delete { table, source })
    }
}

/// Whether item `i` of a plain SELECT's list is an untyped literal or parameter.
fn untyped_select_item(q: &ast::Query, i: usize) -> bool {
    let ast::SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    match s.projection.get(i) {
        Some(ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. }) => {
            super::expr::is_flexible(e)
        }
        _ => false,
    }
}

/// 42804 unless a value of type `from` can be stored in `column` (PostgreSQL's assignment
/// casts, see [`DataType::assignable`]).
fn assignable(column: &crate::catalog::Column, from: DataType) -> Result<()> {
    if DataType::assignable(from, column.data_type) {
        return Ok(());
    }
    Err(Error::DatatypeMismatch(format!(
        "column \"{}\" is of type {} but expression is of type {from}",
        column.name, column.data_type
    )))
}

/// Builds a table descriptor from CREATE TABLE (the id is assigned when it is created).
pub(super) fn plan_create_table(c: &ast::CreateTable) -> Result<Plan> {
    if c.query.is_some() || c.or_replace || c.temporary || c.like.is_some() || c.clone.is_some() {
        return Err(not_supported(
            "CREATE TABLE AS, LIKE, CLONE, OR REPLACE and TEMPORARY",
        ));
    }
    let name = object_name(&c.name)?;
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key: Option<Vec<usize>> = None;
    let mut uniques = Vec::new();
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
        let mut column = Column {
            id: columns.len() as u32 + 1,
            name: col_name,
            data_type: DataType::from_ast(&def.data_type)?,
            nullable: true,
            hidden: false,
        };
        for opt in &def.options {
            match &opt.option {
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => column.nullable = false,
                ast::ColumnOption::PrimaryKey(_) => set_pk(vec![columns.len()], &mut primary_key)?,
                ast::ColumnOption::Unique(u) => {
                    uniques.push(super::ddl::unique_constraint(u, Some(&column.name))?)
                }
                ast::ColumnOption::Default(ast::Expr::Value(v)) if v.value == ast::Value::Null => {}
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
            });
            vec![columns.len() - 1]
        }
    };
    let next_column_id = columns.len() as u32 + 1;
    let indexes = super::ddl::unique_constraints(&name, &columns, &uniques)?;
    let table = Table {
        next_index_id: crate::catalog::FIRST_INDEX_ID + indexes.len() as u32,
        indexes,
        id: 0,
        name,
        columns,
        primary_key,
        next_column_id,
    };
    Ok(Plan::CreateTable {
        table,
        if_not_exists: c.if_not_exists,
    })
}
