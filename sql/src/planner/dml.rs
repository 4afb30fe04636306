//! Planning INSERT, UPDATE, DELETE, CREATE TABLE.

use sqlparser::ast;

use super::Planner;
use super::expr::object_name;
use crate::catalog::Table;
use crate::plan::{Node, Plan};
use crate::{DataType, Error, Result};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    pub(super) fn plan_insert(&mut self, i: &ast::Insert) -> Result<Plan> {
        if i.or.is_some() || matches!(i.on, Some(ast::OnInsert::DuplicateKeyUpdate(_))) {
            return Err(not_supported("INSERT OR and ON DUPLICATE KEY"));
        }
        let ast::TableObject::TableName(name) = &i.table else {
            return Err(not_supported("INSERT INTO a table function"));
        };
        let table = self.table(&object_name(name)?)?;
        let relation = match &i.table_alias {
            Some(a) => super::expr::ident_name(&a.alias),
            None => table.name.clone(),
        };
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
        let source = match i.source.as_deref() {
            // DEFAULT VALUES: one row of no columns, filled with the defaults below.
            None => Node::Values {
                columns: vec![],
                rows: vec![vec![]],
            },
            Some(source) => self.plan_insert_source(&table, &columns, source)?,
        };
        let width = source.columns().len();
        if width > columns.len() {
            return Err(Error::Syntax(
                "INSERT has more expressions than target columns".into(),
            ));
        }
        if width < columns.len() && !i.columns.is_empty() && i.source.is_some() {
            return Err(Error::Syntax(
                "INSERT has more target columns than expressions".into(),
            ));
        }
        let mut columns = columns[..width].to_vec();
        if let Some(node) = &i.source {
            super::defaults::check_identity_insert(&table, &columns, node)?;
        }
        let defaults = self.omitted_defaults(&table, &columns)?;
        let source = with_defaults(&table, source, &defaults);
        columns.extend(defaults.iter().map(|(c, _)| *c));
        let scope = super::from::table_scope(&table, &relation);
        let on_conflict = match &i.on {
            Some(ast::OnInsert::OnConflict(c)) => Some(self.plan_on_conflict(&table, &scope, c)?),
            _ => None,
        };
        let plan = Plan::Insert {
            table,
            columns,
            source,
            on_conflict,
        };
        self.plan_returning(plan, &scope, i.returning.as_ref())
    }

    /// The rows an INSERT stores, for its target columns (VALUES, with its DEFAULT keywords
    /// replaced by the columns' defaults, or a query).
    fn plan_insert_source(
        &mut self,
        table: &Table,
        columns: &[usize],
        source: &ast::Query,
    ) -> Result<Node> {
        let hints: Vec<DataType> = columns
            .iter()
            .map(|&c| table.columns[c].data_type)
            .collect();
        let assignable = |i: usize, from: DataType| match columns.get(i) {
            Some(&c) => assignable(&table.columns[c], from),
            None => Ok(()),
        };
        Ok(match source.body.as_ref() {
            ast::SetExpr::Values(v)
                if source.order_by.is_none() && source.limit_clause.is_none() =>
            {
                let v = self.values_with_defaults(table, columns, v)?;
                self.plan_values_checked(&v, &hints, &mut |i, t| assignable(i, t))?
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
        })
    }

    pub(super) fn plan_update(&mut self, u: &ast::Update) -> Result<Plan> {
        if u.from.is_some() || !u.table.joins.is_empty() || u.limit.is_some() {
            return Err(not_supported("UPDATE with FROM or LIMIT"));
        }
        let (table, scope) = self.plan_target(std::slice::from_ref(&u.table))?;
        let set = self.bind_assignments(&table, &scope, &u.assignments)?;
        let source = self.plan_where(table.clone(), &scope, u.selection.as_ref())?;
        let plan = Plan::Update { table, source, set };
        self.plan_returning(plan, &scope, u.returning.as_ref())
    }

    /// Binds the SET list of an UPDATE (or of ON CONFLICT DO UPDATE) over `scope`: new values
    /// by column of `table`.
    pub(super) fn bind_assignments(
        &mut self,
        table: &Table,
        scope: &super::expr::Scope,
        assignments: &[ast::Assignment],
    ) -> Result<Vec<(usize, crate::plan::Expr)>> {
        let mut set = Vec::new();
        for a in assignments {
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
            if super::defaults::is_default_keyword(&a.value) {
                set.push((col, self.bind_default(table, col)?));
                continue;
            }
            super::defaults::check_identity_update(&table.columns[col])?;
            let (e, t) = self.bind(&a.value, scope, Some(table.columns[col].data_type))?;
            assignable(&table.columns[col], t)?;
            set.push((col, e));
        }
        Ok(set)
    }

    pub(super) fn plan_delete(&mut self, d: &ast::Delete) -> Result<Plan> {
        if d.using.is_some() || !d.tables.is_empty() || d.limit.is_some() {
            return Err(not_supported("DELETE with USING or LIMIT"));
        }
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
        };
        let (table, scope) = self.plan_target(from)?;
        let source: Node = self.plan_where(table.clone(), &scope, d.selection.as_ref())?;
        let plan = Plan::Delete { table, source };
        self.plan_returning(plan, &scope, d.returning.as_ref())
    }
}

/// Appends the omitted columns' defaults to the rows of `source`: to each row of a VALUES
/// list (where the write evaluates them row by row), else through a projection.
fn with_defaults(table: &Table, source: Node, defaults: &[(usize, crate::plan::Expr)]) -> Node {
    if defaults.is_empty() {
        return source;
    }
    let extra = defaults.iter().map(|(_, e)| e.clone());
    let extra_columns = defaults.iter().map(|(c, _)| crate::Column {
        name: table.columns[*c].name.clone(),
        data_type: table.columns[*c].data_type,
    });
    match source {
        Node::Values { mut columns, rows } => {
            columns.extend(extra_columns);
            let rows = rows
                .into_iter()
                .map(|mut r| {
                    r.extend(extra.clone());
                    r
                })
                .collect();
            Node::Values { columns, rows }
        }
        source => {
            let mut columns = source.columns();
            let mut exprs: Vec<_> = (0..columns.len()).map(crate::plan::Expr::Column).collect();
            exprs.extend(extra);
            columns.extend(extra_columns);
            Node::Projection {
                source: Box::new(source),
                exprs,
                columns,
            }
        }
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
pub(super) fn assignable(column: &crate::catalog::Column, from: DataType) -> Result<()> {
    if DataType::assignable(from, column.data_type) {
        return Ok(());
    }
    Err(Error::DatatypeMismatch(format!(
        "column \"{}\" is of type {} but expression is of type {from}",
        column.name, column.data_type
    )))
}
