//! Planning INSERT ... ON CONFLICT: the arbiter constraints of the conflict target and the DO
//! UPDATE action, bound over the existing row and the proposed one (`excluded`).

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, ident_name, object_name};
use crate::catalog::{IndexState, Table};
use crate::plan::{ConflictUpdate, OnConflict};
use crate::{DataType, Error, Result};

impl Planner<'_> {
    /// Plans an ON CONFLICT clause of an INSERT into `table`, whose rows `scope` names.
    pub(super) fn plan_on_conflict(
        &mut self,
        table: &Table,
        scope: &Scope,
        c: &ast::OnConflict,
    ) -> Result<OnConflict> {
        let arbiters = match &c.conflict_target {
            Some(ast::ConflictTarget::Columns { columns, predicate }) => {
                if let Some(p) = predicate {
                    // Every unique index satisfies an index predicate (none is partial), as
                    // PostgreSQL infers them; the predicate is only checked.
                    self.bind(p, scope, Some(DataType::Bool))?;
                }
                inferred_arbiters(table, columns)?
            }
            Some(ast::ConflictTarget::OnConstraint(name)) => {
                vec![constraint_arbiter(table, &object_name(name)?)?]
            }
            None => {
                if matches!(c.action, ast::OnConflictAction::DoUpdate(_)) {
                    return Err(Error::Syntax(
                        "ON CONFLICT DO UPDATE requires inference specification or constraint name"
                            .into(),
                    ));
                }
                let mut all: Vec<Option<u32>> = Vec::new();
                if !table.has_rowid() {
                    all.push(None);
                }
                all.extend(public_unique(table).map(|i| Some(i.id)));
                all
            }
        };
        let update = match &c.action {
            ast::OnConflictAction::DoNothing => None,
            ast::OnConflictAction::DoUpdate(u) => {
                let scope = with_excluded(table, scope);
                let set = self.bind_assignments(table, &scope, &u.assignments)?;
                let filter = match &u.selection {
                    Some(w) => Some(self.bind_predicate(w, &scope)?),
                    None => None,
                };
                Some(ConflictUpdate { set, filter })
            }
        };
        Ok(OnConflict { arbiters, update })
    }
}

/// The public unique indexes of a table (write-only ones are no arbiters, as in PostgreSQL,
/// which infers valid indexes only).
fn public_unique(table: &Table) -> impl Iterator<Item = &crate::catalog::Index> {
    table
        .indexes
        .iter()
        .filter(|i| i.unique && i.state == IndexState::Public)
}

/// The unique constraints whose columns are exactly the conflict target's: the primary key
/// and every unique index on them (42P10 if there is none).
fn inferred_arbiters(table: &Table, columns: &[ast::Ident]) -> Result<Vec<Option<u32>>> {
    let mut target = Vec::new();
    for c in columns {
        let name = ident_name(c);
        let i = table
            .column_index(&name)
            .filter(|&i| !table.columns[i].hidden)
            .ok_or_else(|| Error::UndefinedColumn(format!("column \"{name}\" does not exist")))?;
        if !target.contains(&i) {
            target.push(i);
        }
    }
    let same =
        |cols: &[usize]| cols.len() == target.len() && cols.iter().all(|c| target.contains(c));
    let mut arbiters = Vec::new();
    if !table.has_rowid() && same(&table.primary_key) {
        arbiters.push(None);
    }
    arbiters.extend(
        public_unique(table)
            .filter(|i| same(&i.columns))
            .map(|i| Some(i.id)),
    );
    if arbiters.is_empty() {
        return Err(Error::InvalidColumnReference(
            "there is no unique or exclusion constraint matching the ON CONFLICT specification"
                .into(),
        ));
    }
    Ok(arbiters)
}

/// The arbiter ON CONSTRAINT names: the primary key (`<table>_pkey`) or a unique index.
fn constraint_arbiter(table: &Table, name: &str) -> Result<Option<u32>> {
    if !table.has_rowid() && name == format!("{}_pkey", table.name) {
        return Ok(None);
    }
    match table.index(name) {
        Some(i) if i.unique && i.state == IndexState::Public => Ok(Some(i.id)),
        _ => Err(Error::UndefinedObject(format!(
            "constraint \"{name}\" for table \"{}\" does not exist",
            table.name
        ))),
    }
}

/// `scope` (the existing row) followed by the proposed row, named `excluded` (an unqualified
/// name both have is ambiguous, 42702, as in PostgreSQL).
fn with_excluded(table: &Table, scope: &Scope) -> Scope {
    let mut scope = scope.clone();
    scope
        .columns
        .extend(table.columns.iter().map(|c| ScopeColumn {
            relation: Some("excluded".into()),
            name: c.name.clone(),
            data_type: c.data_type,
            hidden: c.hidden,
            merged: false,
        }));
    scope
}
