//! Plans of schema statements beyond tables, indexes and views.

use crate::catalog::Sequence;

/// A schema statement: sequences.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaPlan {
    /// Creates a sequence (its id is assigned at execution).
    CreateSequence { seq: Sequence, if_not_exists: bool },
    /// Drops sequences.
    DropSequence { names: Vec<String>, if_exists: bool },
}

impl SchemaPlan {
    /// The EXPLAIN line.
    pub fn explain(&self) -> String {
        match self {
            SchemaPlan::CreateSequence { seq, .. } => format!("CreateSequence {}", seq.name),
            SchemaPlan::DropSequence { names, .. } => {
                format!("DropSequence {}", names.join(", "))
            }
        }
    }
}
