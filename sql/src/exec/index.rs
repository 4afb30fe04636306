//! Building and dropping secondary indexes.
//!
//! An index is built online, as F1 and CockroachDB change schemas: its descriptor is first
//! committed in the write-only state (every writer that plans from then on maintains its
//! entries, no reader uses it), then the existing rows are backfilled in transactions of
//! [`BACKFILL_BATCH`] rows each, and finally the index is made public. A backfill that finds
//! two rows with equal values for a UNIQUE index fails with 23505 and removes the index again.
//! Inside a transaction block the three steps run in the block's transaction instead, so the
//! index appears complete at its commit.

use super::rows::{decode_index_entry, decode_table_row, index_entry, row_key};
use crate::catalog::{self, Index, IndexState, Table};
use crate::plan::IndexSpec;
use crate::planner::ddl::{default_index_name, resolve_columns};
use crate::store::KvTxn;
use crate::{Engine, Error, ExecResult, Result};

/// Rows read and indexed per backfill transaction.
pub(crate) const BACKFILL_BATCH: usize = 1000;

/// How often a backfill batch is retried after a conflict with a concurrent writer.
const BACKFILL_RETRIES: usize = 20;

fn command(tag: &str) -> ExecResult {
    ExecResult::Command {
        tag: tag.into(),
        rows: None,
    }
}

fn must_table(table: Option<Table>, name: &str) -> Result<Table> {
    table.ok_or_else(|| Error::UndefinedTable(format!("relation \"{name}\" does not exist")))
}

/// Adds the index `spec` describes to its table in `state`; returns the table (with the
/// index, last) or None when IF NOT EXISTS found the name taken.
async fn add_index(
    txn: &mut dyn KvTxn,
    spec: &IndexSpec,
    state: IndexState,
) -> Result<Option<Table>> {
    let mut table = must_table(catalog::get_table(txn, &spec.table).await?, &spec.table)?;
    if let Some(name) = &spec.name
        && catalog::relation_exists(txn, name).await?
    {
        if spec.if_not_exists {
            return Ok(None);
        }
        return Err(Error::DuplicateTable(format!(
            "relation \"{name}\" already exists"
        )));
    }
    let names: Vec<String> = spec.columns.iter().map(|(n, _)| n.clone()).collect();
    let columns = resolve_columns(&table.columns, &names, "")?;
    let include = resolve_columns(&table.columns, &spec.include, "")?;
    let name = match &spec.name {
        Some(n) => n.clone(),
        None => {
            let mut taken = Vec::new();
            loop {
                let n = default_index_name(&table.name, &names, "idx", |n| {
                    taken.iter().any(|t: &String| t == n)
                });
                if !catalog::relation_exists(txn, &n).await? {
                    break n;
                }
                taken.push(n);
            }
        }
    };
    let index = Index {
        id: table.next_index_id,
        name,
        descending: spec.columns.iter().map(|(_, d)| *d).collect(),
        columns,
        include,
        unique: spec.unique,
        state,
    };
    catalog::add_index(txn, &mut table, index).await?;
    Ok(Some(table))
}

/// Writes the entries of up to [`BACKFILL_BATCH`] rows from primary key `start` on; returns
/// where the next batch starts (None: done). An entry a concurrent writer already wrote for
/// the same row is left alone; one of another row is a duplicate (23505).
async fn backfill_batch(
    txn: &mut dyn KvTxn,
    table: &Table,
    index: &Index,
    start: &[u8],
) -> Result<Option<Vec<u8>>> {
    let end = txn::keys::sql_index_prefix(table.id, catalog::PRIMARY_INDEX_ID + 1);
    let batch = txn.scan(start, &end, BACKFILL_BATCH).await?;
    let next = (batch.len() == BACKFILL_BATCH)
        .then(|| batch.last().map(|(k, _)| txn::keys::next_key(k)))
        .flatten();
    for (key, value) in &batch {
        let row = decode_table_row(table, key, value)?;
        let entry = index_entry(table, index, &row);
        if entry.must_be_new
            && let Some(existing) = txn.get(&entry.key).await?
        {
            let other = decode_index_entry(table, index, &entry.key, &existing)?;
            if row_key(table, &other) != *key {
                return Err(Error::UniqueViolation(format!(
                    "could not create unique index \"{}\"",
                    index.name
                )));
            }
            continue;
        }
        txn.put(entry.key, entry.value)?;
    }
    Ok(next)
}

/// The index just added to `table` (the last one).
fn new_index(table: &Table) -> Index {
    table.indexes.last().expect("the index was added").clone()
}

/// CREATE INDEX inside a transaction: the index is public and filled when the block commits.
pub(crate) async fn create_index(txn: &mut dyn KvTxn, spec: &IndexSpec) -> Result<ExecResult> {
    let Some(table) = add_index(txn, spec, IndexState::Public).await? else {
        return Ok(command("CREATE INDEX"));
    };
    let index = new_index(&table);
    let mut start = Some(table.prefix());
    while let Some(s) = start {
        start = backfill_batch(txn, &table, &index, &s).await?;
    }
    Ok(command("CREATE INDEX"))
}

/// Drops indexes (42P01 for one that does not exist, unless IF EXISTS).
pub(crate) async fn drop_indexes(
    txn: &mut dyn KvTxn,
    names: &[String],
    if_exists: bool,
) -> Result<ExecResult> {
    for name in names {
        let Some(table_name) = catalog::index_table(txn, name).await? else {
            if if_exists {
                continue;
            }
            return Err(Error::UndefinedTable(format!(
                "index \"{name}\" does not exist"
            )));
        };
        let mut table = must_table(catalog::get_table(txn, &table_name).await?, &table_name)?;
        catalog::drop_index(txn, &mut table, name).await?;
    }
    Ok(command("DROP INDEX"))
}

/// Commits `txn` if `result` is Ok (bumping the schema generation for a schema change), else
/// rolls it back and returns the error.
async fn finish<T>(
    engine: &Engine,
    txn: Box<dyn KvTxn>,
    result: Result<T>,
    schema_change: bool,
) -> Result<T> {
    match result {
        Ok(v) => {
            let _commit = schema_change.then(|| engine.schema.committing());
            txn.commit().await.map(|()| v).map_err(Error::from)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

/// Runs `$body` (with `$txn: &mut dyn KvTxn`) in transactions of its own until one commits,
/// retrying conflicts with concurrent writers.
macro_rules! in_txn {
    ($engine:expr, $schema_change:expr, |$txn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            let mut owned = $engine.store.begin(txn::TxnOptions::default()).await?;
            let result = {
                let $txn: &mut dyn KvTxn = owned.as_mut();
                $body
            };
            match finish($engine, owned, result, $schema_change).await {
                Err(Error::Serialization(_)) if attempt < BACKFILL_RETRIES => attempt += 1,
                r => break r,
            }
        }
    }};
}

/// CREATE INDEX outside a transaction block: write-only descriptor, batched backfill, public.
pub(crate) async fn create_index_online(engine: &Engine, spec: &IndexSpec) -> Result<ExecResult> {
    let added = in_txn!(engine, true, |txn| add_index(
        txn,
        spec,
        IndexState::WriteOnly
    )
    .await)?;
    let Some(table) = added else {
        return Ok(command("CREATE INDEX"));
    };
    let index = new_index(&table);
    let mut start = Some(table.prefix());
    while let Some(s) = start.take() {
        match in_txn!(engine, false, |txn| backfill_batch(txn, &table, &index, &s)
            .await)
        {
            Ok(next) => start = next,
            Err(e) => {
                // Leave no trace of the index; the backfill's error is what the client needs.
                let names = [index.name.clone()];
                let _ = in_txn!(engine, true, |txn| drop_indexes(txn, &names, true).await);
                return Err(e);
            }
        }
    }
    in_txn!(engine, true, |txn| publish(txn, &spec.table, &index).await)?;
    Ok(command("CREATE INDEX"))
}

/// Makes a write-only index public.
async fn publish(txn: &mut dyn KvTxn, table: &str, index: &Index) -> Result<()> {
    let mut table = must_table(catalog::get_table(txn, table).await?, table)?;
    let Some(i) = table.indexes.iter_mut().find(|i| i.id == index.id) else {
        return Err(Error::UndefinedTable(format!(
            "index \"{}\" does not exist",
            index.name
        )));
    };
    i.state = IndexState::Public;
    catalog::put_table(txn, &table)
}
