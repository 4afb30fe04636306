//! INSERT, UPDATE and DELETE.
//!
//! UPDATE and DELETE first read every row they will change and only then write, so a statement
//! never sees its own writes (a key moved forward by `SET id = id + 1` is not updated twice).

use std::sync::Arc;

use super::RowIds;
use super::eval::eval;
use super::ops::{build, collect};
use super::rows::{Row, encode_table_row, primary_key, row_key};
use crate::catalog;
use crate::catalog::Table;
use crate::plan::{Expr, Node};
use crate::store::{KvTxn, Store};
use crate::{Error, Result, Value};

/// Casts each value to its column's type and checks NOT NULL.
fn check_row(table: &Table, row: Row) -> Result<Row> {
    row.into_iter()
        .zip(&table.columns)
        .map(|(v, c)| {
            let v = v.cast(c.data_type)?;
            if v.is_null() && !c.nullable {
                return Err(Error::NotNullViolation(format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, table.name
                )));
            }
            Ok(v)
        })
        .collect()
}

fn duplicate(table: &Table) -> Error {
    Error::UniqueViolation(format!(
        "duplicate key value violates unique constraint \"{}_pkey\"",
        table.name
    ))
}

/// Writes a new row, failing with 23505 if its key exists: at once, or at commit in a
/// transaction that defers its checks (the condition travels with the write, see
/// `txn::Transaction::insert`; [`duplicate_at_commit`] names the constraint then).
async fn put_new(txn: &mut dyn KvTxn, table: &Table, row: &[Value]) -> Result<()> {
    let (key, value) = encode_table_row(table, row);
    txn.put_new(key, value).await.map_err(|e| match e {
        txn::Error::Duplicate { .. } => duplicate(table),
        e => e.into(),
    })
}

/// The 23505 error of a commit refused because `key` held a value, naming the constraint the
/// key belongs to (read from the catalog in a new transaction).
pub(crate) async fn duplicate_at_commit(store: &dyn Store, key: &[u8]) -> Error {
    let generic =
        || Error::UniqueViolation("duplicate key value violates unique constraint".into());
    let Some(txn::keys::Key::Sql {
        table_id, index_id, ..
    }) = txn::keys::Key::decode(key)
    else {
        return generic();
    };
    let Ok(mut txn) = store.begin(txn::TxnOptions::default()).await else {
        return generic();
    };
    let table = catalog::table_by_id(txn.as_mut(), table_id).await;
    let _ = txn.rollback().await;
    match table {
        Ok(Some(table)) if index_id == catalog::PRIMARY_INDEX_ID => duplicate(&table),
        _ => generic(),
    }
}

/// Inserts the rows of `source` into the given columns; returns the row count.
pub(crate) async fn insert(
    txn: &mut dyn KvTxn,
    rowids: &RowIds,
    table: &Table,
    columns: &[usize],
    source: Node,
) -> Result<u64> {
    let mut op = build(source)?;
    let mut count = 0;
    while let Some(batch) = op.next(txn).await? {
        for values in batch {
            let mut row = vec![Value::Null; table.columns.len()];
            for (v, &c) in values.into_iter().zip(columns) {
                row[c] = v;
            }
            if table.has_rowid() {
                row[table.primary_key[0]] = Value::Int(rowids.next().await?);
            }
            let row = check_row(table, row)?;
            put_new(txn, table, &row).await?;
            count += 1;
        }
    }
    Ok(count)
}

/// Reads the rows an UPDATE or DELETE changes and locks them. When locking moved the
/// transaction's read timestamp (a locked row had changed since it was read), the rows are read
/// again at the new timestamp, until a read finds nothing newer under its locks.
async fn read_and_lock(
    txn: &mut dyn KvTxn,
    table: &Arc<Table>,
    source: &Node,
) -> Result<Vec<Vec<Value>>> {
    loop {
        let rows = collect(build(source.clone())?, txn).await?;
        let keys = rows.iter().map(|r| row_key(table, r)).collect();
        if !txn.lock_keys(keys).await? {
            return Ok(rows);
        }
    }
}

/// Runs a locking query (SELECT ... FOR UPDATE) whose rows end with the primary key of their
/// table row: locks those rows, reading again while locking moved the read timestamp, and
/// returns the rows without the key columns.
pub(crate) async fn select_and_lock(
    txn: &mut dyn KvTxn,
    table: &Table,
    node: &Node,
) -> Result<Vec<Vec<Value>>> {
    let n = table.primary_key.len();
    loop {
        let mut rows = collect(build(node.clone())?, txn).await?;
        let keys = rows
            .iter_mut()
            .map(|r| primary_key(table, &r.split_off(r.len() - n)))
            .collect();
        if !txn.lock_keys(keys).await? {
            return Ok(rows);
        }
    }
}

/// Updates the rows `source` emits; returns the row count.
pub(crate) async fn update(
    txn: &mut dyn KvTxn,
    table: &Arc<Table>,
    source: Node,
    set: &[(usize, Expr)],
) -> Result<u64> {
    let rows = read_and_lock(txn, table, &source).await?;
    let mut moved = Vec::new();
    for old in &rows {
        let mut new = old.clone();
        for (c, e) in set {
            new[*c] = eval(e, old)?;
        }
        let new = check_row(table, new)?;
        let old_key = row_key(table, old);
        if row_key(table, &new) == old_key {
            let (key, value) = encode_table_row(table, &new);
            txn.put(key, value)?;
        } else {
            txn.delete(old_key)?;
            moved.push(new);
        }
    }
    for new in &moved {
        put_new(txn, table, new).await?;
    }
    Ok(rows.len() as u64)
}

/// Deletes the rows `source` emits; returns the row count.
pub(crate) async fn delete(txn: &mut dyn KvTxn, table: &Arc<Table>, source: Node) -> Result<u64> {
    let rows = read_and_lock(txn, table, &source).await?;
    for row in &rows {
        txn.delete(row_key(table, row))?;
    }
    Ok(rows.len() as u64)
}
