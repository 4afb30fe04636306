//! INSERT, UPDATE and DELETE.
//!
//! UPDATE and DELETE first read every row they will change and only then write, so a statement
//! never sees its own writes (a key moved forward by `SET id = id + 1` is not updated twice).
//!
//! Every index of the table, write-only or public, gets its entries changed in the statement's
//! transaction. A key that must not exist yet (a primary key, a UNIQUE entry without NULLs)
//! is written through [`put_new`] only.

use std::sync::Arc;

use super::RowIds;
use super::eval::{eval, truth};
use super::memory::{Budget, row_bytes};
use super::ops::{build, collect};
use super::rows::{Row, encode_table_row, index_entry, primary_key, row_key};
use super::subquery::eval_row;
use crate::catalog;
use crate::catalog::{Index, Table};
use crate::plan::{Expr, Node};
use crate::store::{KvTxn, Store};
use crate::{Error, Result, Value};

/// The rows a write with RETURNING keeps until it has written them all, reserved from the
/// statement's memory account as they are kept (53200 past the pool's limit).
pub(crate) struct Returned {
    /// The rows kept, in the order written.
    pub(crate) rows: Vec<Row>,
    budget: Budget,
}

impl Returned {
    /// No rows yet; `budget` is the statement's.
    pub(crate) fn new(budget: Budget) -> Returned {
        Returned {
            rows: Vec::new(),
            budget,
        }
    }

    /// Keeps one more row.
    pub(crate) fn push(&mut self, row: Row) -> Result<()> {
        self.budget.reserve(row_bytes(&row))?;
        self.rows.push(row);
        Ok(())
    }
}

/// Casts each value to its column's type and checks NOT NULL and the CHECK constraints
/// (`checks`, bound over the table's rows; NULL passes).
pub(crate) fn check_row(table: &Table, checks: &[(String, Expr)], row: Row) -> Result<Row> {
    let row: Row = row
        .into_iter()
        .zip(&table.columns)
        .map(|(v, c)| {
            let v = v.assign(c.data_type)?;
            if v.is_null() && !c.nullable {
                return Err(Error::NotNullViolation(format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, table.name
                )));
            }
            Ok(v)
        })
        .collect::<Result<_>>()?;
    for (name, e) in checks {
        if truth(eval(e, &row)?)? == Some(false) {
            return Err(Error::CheckViolation(format!(
                "new row for relation \"{}\" violates check constraint \"{name}\"",
                table.name
            )));
        }
    }
    Ok(row)
}

/// 23505 for a second row with the same values in unique constraint `constraint`.
fn duplicate(constraint: &str) -> Error {
    Error::UniqueViolation(format!(
        "duplicate key value violates unique constraint \"{constraint}\""
    ))
}

/// The name of a table's primary-key constraint (PostgreSQL's `<table>_pkey`).
pub(crate) fn pkey_name(table: &Table) -> String {
    format!("{}_pkey", table.name)
}

/// Writes a key that must not exist yet, failing with 23505 naming `constraint` if it does:
/// at once, or at commit in a transaction that defers its checks (the condition travels with
/// the write and is checked where it applies, see `txn::Transaction::insert`;
/// [`duplicate_at_commit`] names the constraint then). Every insert of a key that must be new
/// goes through here.
pub(crate) async fn put_new(
    txn: &mut dyn KvTxn,
    key: Vec<u8>,
    value: Vec<u8>,
    constraint: &str,
) -> Result<()> {
    txn.put_new(key, value).await.map_err(|e| match e {
        txn::Error::Duplicate { .. } => duplicate(constraint),
        e => e.into(),
    })
}

/// The 23505 error of a commit refused because `key` held a value, naming the constraint the
/// key belongs to (the primary key or a unique index, read from the catalog in a new
/// transaction).
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
    let Ok(Some(table)) = table else {
        return generic();
    };
    if index_id == catalog::PRIMARY_INDEX_ID {
        return duplicate(&pkey_name(&table));
    }
    match table.indexes.iter().find(|i| i.id == index_id) {
        Some(index) => duplicate(&index.name),
        None => generic(),
    }
}

/// Writes the entry of `row` in `index`.
async fn put_index_entry(
    txn: &mut dyn KvTxn,
    table: &Table,
    index: &Index,
    row: &[Value],
) -> Result<()> {
    let entry = index_entry(table, index, row);
    if entry.must_be_new {
        put_new(txn, entry.key, entry.value, &index.name).await
    } else {
        Ok(txn.put(entry.key, entry.value)?)
    }
}

/// Writes a new row and its index entries, failing with 23505 if its key exists.
pub(crate) async fn insert_row(txn: &mut dyn KvTxn, table: &Table, row: &[Value]) -> Result<()> {
    let (key, value) = encode_table_row(table, row);
    put_new(txn, key, value, &pkey_name(table)).await?;
    for index in &table.indexes {
        put_index_entry(txn, table, index, row).await?;
    }
    Ok(())
}

/// The rows an INSERT proposes, as full table rows: the source's values in their columns
/// (NULL in the others), a new rowid where the table has one, each cast to its column's type
/// and checked (NOT NULL, CHECK).
pub(crate) struct Proposed<'a> {
    table: &'a Table,
    columns: &'a [usize],
    rowids: &'a RowIds,
    checks: Vec<(String, Expr)>,
    op: Option<Box<dyn super::ops::Operator>>,
    values_rows: Option<Vec<Vec<Expr>>>,
}

impl<'a> Proposed<'a> {
    /// The rows of `source` for `columns` of `table`.
    pub(crate) fn new(
        table: &'a Table,
        columns: &'a [usize],
        rowids: &'a RowIds,
        source: Node,
    ) -> Result<Proposed<'a>> {
        // VALUES rows are evaluated here, row by row, so that sequence calls in them (a SERIAL
        // column's default) run with the session's state.
        let (op, values_rows) = match source {
            Node::Values { rows, .. } => (None, Some(rows)),
            source => (Some(build(source)?), None),
        };
        Ok(Proposed {
            table,
            columns,
            rowids,
            checks: crate::planner::checks::bind_checks(table)?,
            op,
            values_rows,
        })
    }

    /// The next batch of rows; None when there are no more.
    pub(crate) async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        let batch = match (&mut self.op, self.values_rows.take()) {
            (Some(op), _) => match op.next(txn).await? {
                Some(batch) => batch,
                None => return Ok(None),
            },
            (None, Some(rows)) => {
                let mut batch = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut values = Vec::with_capacity(row.len());
                    for e in &row {
                        values.push(if e.has_subquery() {
                            eval_row(e, &[], txn).await?
                        } else {
                            super::eval::eval(e, &[])?
                        });
                    }
                    batch.push(values);
                }
                batch
            }
            (None, None) => return Ok(None),
        };
        let mut rows = Vec::with_capacity(batch.len());
        for values in batch {
            let mut row = vec![Value::Null; self.table.columns.len()];
            for (v, &c) in values.into_iter().zip(self.columns) {
                row[c] = v;
            }
            if self.table.has_rowid() {
                row[self.table.primary_key[0]] = Value::Int(self.rowids.next().await?);
            }
            rows.push(check_row(self.table, &self.checks, row)?);
        }
        Ok(Some(rows))
    }
}

/// Inserts the rows of `source` into the given columns; returns the row count, and the rows
/// as stored in `returned` if given.
pub(crate) async fn insert(
    txn: &mut dyn KvTxn,
    rowids: &RowIds,
    table: &Table,
    columns: &[usize],
    source: Node,
    mut returned: Option<&mut Returned>,
) -> Result<u64> {
    let mut proposed = Proposed::new(table, columns, rowids, source)?;
    let mut count = 0;
    while let Some(batch) = proposed.next(txn).await? {
        for row in batch {
            insert_row(txn, table, &row).await?;
            if let Some(out) = returned.as_deref_mut() {
                out.push(row)?;
            }
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
        let rows = collect(build(source.clone())?, txn, &Budget::default()).await?;
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
        let mut rows = collect(build(node.clone())?, txn, &Budget::default()).await?;
        let keys = rows
            .iter_mut()
            .map(|r| primary_key(table, &r.split_off(r.len() - n)))
            .collect();
        if !txn.lock_keys(keys).await? {
            return Ok(rows);
        }
    }
}

/// Updates the rows `source` emits; returns the row count, and the new rows in `returned` if
/// given.
pub(crate) async fn update(
    txn: &mut dyn KvTxn,
    table: &Arc<Table>,
    source: Node,
    set: &[(usize, Expr)],
    mut returned: Option<&mut Returned>,
) -> Result<u64> {
    let checks = crate::planner::checks::bind_checks(table)?;
    let rows = read_and_lock(txn, table, &source).await?;
    let mut moved = Vec::new();
    // Entries whose key changed are written after every old one is gone, like moved rows.
    let mut entries = Vec::new();
    for old in &rows {
        let mut new = old.clone();
        for (c, e) in set {
            new[*c] = eval(e, old)?;
        }
        let new = check_row(table, &checks, new)?;
        if let Some(out) = returned.as_deref_mut() {
            out.push(new.clone())?;
        }
        for index in &table.indexes {
            let (was, now) = (
                index_entry(table, index, old),
                index_entry(table, index, &new),
            );
            if was.key != now.key {
                txn.delete(was.key)?;
                entries.push((index, now));
            } else if was.value != now.value {
                txn.put(now.key, now.value)?;
            }
        }
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
        let (key, value) = encode_table_row(table, new);
        put_new(txn, key, value, &pkey_name(table)).await?;
    }
    for (index, entry) in entries {
        if entry.must_be_new {
            put_new(txn, entry.key, entry.value, &index.name).await?;
        } else {
            txn.put(entry.key, entry.value)?;
        }
    }
    Ok(rows.len() as u64)
}

/// Deletes the rows `source` emits; returns the row count, and the deleted rows in
/// `returned` if given.
pub(crate) async fn delete(
    txn: &mut dyn KvTxn,
    table: &Arc<Table>,
    source: Node,
    returned: Option<&mut Returned>,
) -> Result<u64> {
    let rows = read_and_lock(txn, table, &source).await?;
    for row in &rows {
        txn.delete(row_key(table, row))?;
        for index in &table.indexes {
            txn.delete(index_entry(table, index, row).key)?;
        }
    }
    let count = rows.len() as u64;
    if let Some(out) = returned {
        for row in rows {
            out.push(row)?;
        }
    }
    Ok(count)
}
