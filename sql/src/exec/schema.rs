//! Schema statements of `plan::SchemaPlan`: sequence DDL, CREATE TABLE AS and TRUNCATE, run in
//! the statement's transaction.

use crate::catalog;
use crate::store::KvTxn;
use crate::{Error, Result};

/// Runs a schema statement in the statement's transaction.
pub(crate) async fn execute(
    plan: crate::plan::SchemaPlan,
    txn: &mut dyn KvTxn,
    rowids: &super::RowIds,
) -> Result<crate::ExecResult> {
    use crate::plan::SchemaPlan as S;
    let tag = match plan {
        S::CreateSequence { seq, if_not_exists } => {
            let exists = catalog::relation_exists(txn, &seq.name).await?;
            if !(if_not_exists && exists) {
                catalog::sequence::create_sequence(txn, seq).await?;
            }
            "CREATE SEQUENCE"
        }
        S::CreateTableAs {
            table,
            source,
            with_data,
            if_not_exists,
        } => {
            if if_not_exists && catalog::get_table(txn, &table.name).await?.is_some() {
                return Ok(command("CREATE TABLE AS", None));
            }
            let table = catalog::create_table(txn, *table).await?;
            if !with_data {
                return Ok(command("CREATE TABLE AS", None));
            }
            let columns: Vec<usize> = (0..table.columns.len())
                .filter(|&c| !table.columns[c].hidden)
                .collect();
            let n = super::write::insert(txn, rowids, &table, &columns, *source, None).await?;
            return Ok(command("SELECT", Some(n)));
        }
        S::Truncate {
            names,
            restart_identity,
        } => {
            let mut tables = Vec::with_capacity(names.len());
            for name in &names {
                tables.push(catalog::get_table(txn, name).await?.ok_or_else(|| {
                    Error::UndefinedTable(format!("relation \"{name}\" does not exist"))
                })?);
            }
            for table in &tables {
                catalog::truncate_table(txn, table, restart_identity).await?;
            }
            "TRUNCATE TABLE"
        }
        S::DropSequence { names, if_exists } => {
            for name in &names {
                match catalog::sequence::get_sequence(txn, name).await? {
                    Some(seq) => {
                        if let Some((table, _)) = &seq.owner
                            && catalog::get_table(txn, table).await?.is_some()
                        {
                            return Err(Error::DependentObjects(format!(
                                "cannot drop sequence {name} because other objects depend on it"
                            )));
                        }
                        catalog::sequence::drop_sequence(txn, &seq)?;
                        if let Some(seqs) = txn.sequences() {
                            seqs.forget(name);
                        }
                    }
                    None if if_exists => {}
                    None => {
                        return Err(Error::UndefinedTable(format!(
                            "sequence \"{name}\" does not exist"
                        )));
                    }
                }
            }
            "DROP SEQUENCE"
        }
    };
    Ok(command(tag, None))
}

fn command(tag: &str, rows: Option<u64>) -> crate::ExecResult {
    crate::ExecResult::Command {
        tag: tag.into(),
        rows,
    }
}
