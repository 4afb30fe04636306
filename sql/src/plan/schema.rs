//! Plans of schema statements beyond tables, indexes and views.

use super::Node;
use crate::catalog::{Sequence, Table};

/// A schema statement: sequences, CREATE TABLE AS, TRUNCATE.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaPlan {
    /// Creates a sequence (its id is assigned at execution).
    CreateSequence { seq: Sequence, if_not_exists: bool },
    /// Drops sequences.
    DropSequence { names: Vec<String>, if_exists: bool },
    /// Creates a table and fills it with the rows of `source` (unless `with_data` is false).
    CreateTableAs {
        table: Box<Table>,
        source: Box<Node>,
        with_data: bool,
        if_not_exists: bool,
    },
    /// Deletes every row of tables (and restarts their owned sequences).
    Truncate {
        names: Vec<String>,
        restart_identity: bool,
    },
}

impl SchemaPlan {
    /// The EXPLAIN line.
    pub fn explain(&self) -> String {
        match self {
            SchemaPlan::CreateSequence { seq, .. } => format!("CreateSequence {}", seq.name),
            SchemaPlan::DropSequence { names, .. } => {
                format!("DropSequence {}", names.join(", "))
            }
            SchemaPlan::CreateTableAs { table, .. } => format!("CreateTableAs {}", table.name),
            SchemaPlan::Truncate { names, .. } => format!("Truncate {}", names.join(", ")),
        }
    }
}

impl super::Plan {
    /// Transforms the expressions of a plan without any but those of CREATE TABLE AS.
    pub(super) fn map_schema_exprs(self, f: &mut impl FnMut(super::Expr) -> super::Expr) -> Self {
        match self {
            super::Plan::Schema(SchemaPlan::CreateTableAs {
                table,
                source,
                with_data,
                if_not_exists,
            }) => super::Plan::Schema(SchemaPlan::CreateTableAs {
                table,
                source: Box::new(source.map_exprs(f)),
                with_data,
                if_not_exists,
            }),
            p => p,
        }
    }
}
