//! INSERT ... ON CONFLICT.
//!
//! The statement first works out every proposed row and locks the keys of their arbiter
//! constraints (a key no row holds yet is locked too), reading the rows again whenever locking
//! moved the transaction's read timestamp, as UPDATE does. Under those locks no other
//! transaction can insert or change a row with one of these keys until this one ends, so the
//! conflict each row meets is the one it sees: a concurrent upsert of the same key waits, then
//! finds the row and updates it, and never fails with 23505.
//!
//! Each row is then handled in order: without a conflict it is inserted; with one, DO NOTHING
//! skips it and DO UPDATE changes the existing row (once per statement: 21000 for a second
//! time, as in PostgreSQL). Rows inserted earlier by the statement are seen as conflicts.

use std::collections::HashSet;

use super::RowIds;
use super::eval::truth;
use super::rows::{Row, decode_index_entry, decode_table_row, index_entry, row_key};
use super::subquery::eval_row;
use super::write::{Proposed, Returned, check_row, insert_row, pkey_name, put_new};
use crate::catalog::Table;
use crate::plan::{ConflictUpdate, Expr, Node, OnConflict};
use crate::store::KvTxn;
use crate::{Error, Result, Value};

/// Inserts the rows of `source` into `columns` of `table`, resolving conflicts on the
/// arbiters of `on_conflict`; returns the rows inserted or updated, and those rows as stored in
/// `returned` if given.
pub(crate) async fn upsert(
    txn: &mut dyn KvTxn,
    rowids: &RowIds,
    table: &Table,
    columns: &[usize],
    source: Node,
    on_conflict: &OnConflict,
    mut returned: Option<&mut Returned>,
) -> Result<u64> {
    let rows = propose_and_lock(txn, rowids, table, columns, &source, on_conflict).await?;
    let checks = crate::planner::checks::bind_checks(table)?;
    // The primary keys of the rows this statement inserted or updated.
    let mut affected = HashSet::new();
    let mut count = 0;
    for row in rows {
        let stored = match conflict(txn, table, &on_conflict.arbiters, &row).await? {
            None => {
                insert_row(txn, table, &row).await?;
                row
            }
            Some(existing) => {
                let Some(update) = &on_conflict.update else {
                    continue;
                };
                if affected.contains(&row_key(table, &existing)) {
                    return Err(Error::CardinalityViolation(
                        "ON CONFLICT DO UPDATE command cannot affect row a second time".into(),
                    ));
                }
                match updated(txn, table, &checks, update, &existing, &row).await? {
                    Some(new) => {
                        write_update(txn, table, &existing, &new).await?;
                        new
                    }
                    None => continue,
                }
            }
        };
        affected.insert(row_key(table, &stored));
        if let Some(out) = returned.as_deref_mut() {
            out.push(stored)?;
        }
        count += 1;
    }
    Ok(count)
}

/// Works out every proposed row and locks its arbiter keys, again while locking moves the
/// read timestamp (the source is then read at the new one).
async fn propose_and_lock(
    txn: &mut dyn KvTxn,
    rowids: &RowIds,
    table: &Table,
    columns: &[usize],
    source: &Node,
    on_conflict: &OnConflict,
) -> Result<Vec<Row>> {
    loop {
        let mut proposed = Proposed::new(table, columns, rowids, source.clone())?;
        let mut rows = Vec::new();
        while let Some(batch) = proposed.next(txn).await? {
            rows.extend(batch);
        }
        let keys = rows
            .iter()
            .flat_map(|r| arbiter_keys(table, &on_conflict.arbiters, r))
            .collect();
        if !txn.lock_keys(keys).await? {
            return Ok(rows);
        }
    }
}

/// The keys of `row` in the arbiter constraints (a unique index entry with a NULL never
/// conflicts and has none).
fn arbiter_keys(table: &Table, arbiters: &[Option<u32>], row: &[Value]) -> Vec<Vec<u8>> {
    arbiters
        .iter()
        .filter_map(|a| match a {
            None => Some(row_key(table, row)),
            Some(id) => {
                let index = table.indexes.iter().find(|i| i.id == *id)?;
                let entry = index_entry(table, index, row);
                entry.must_be_new.then_some(entry.key)
            }
        })
        .collect()
}

/// The existing row that holds one of `row`'s arbiter keys, if any.
async fn conflict(
    txn: &mut dyn KvTxn,
    table: &Table,
    arbiters: &[Option<u32>],
    row: &[Value],
) -> Result<Option<Row>> {
    for arbiter in arbiters {
        let key = match arbiter {
            None => row_key(table, row),
            Some(id) => {
                let Some(index) = table.indexes.iter().find(|i| i.id == *id) else {
                    continue;
                };
                let entry = index_entry(table, index, row);
                if !entry.must_be_new {
                    continue;
                }
                let Some(value) = txn.get(&entry.key).await? else {
                    continue;
                };
                let key_row = decode_index_entry(table, index, &entry.key, &value)?;
                row_key(table, &key_row)
            }
        };
        if let Some(value) = txn.get(&key).await? {
            return Ok(Some(decode_table_row(table, &key, &value)?));
        }
        if arbiter.is_some() {
            return Err(Error::Internal(format!(
                "the entry of key {} leads to no row",
                txn::keys::Pretty(&key)
            )));
        }
    }
    Ok(None)
}

/// The new version of `existing` under DO UPDATE with the proposed row `excluded`, checked;
/// None when its WHERE is not true.
async fn updated(
    txn: &mut dyn KvTxn,
    table: &Table,
    checks: &[(String, Expr)],
    update: &ConflictUpdate,
    existing: &[Value],
    excluded: &[Value],
) -> Result<Option<Row>> {
    let both: Row = existing.iter().chain(excluded).cloned().collect();
    if let Some(filter) = &update.filter
        && truth(eval_row(filter, &both, txn).await?)? != Some(true)
    {
        return Ok(None);
    }
    let mut new = existing.to_vec();
    for (c, e) in &update.set {
        new[*c] = eval_row(e, &both, txn).await?;
    }
    check_row(table, checks, new).map(Some)
}

/// Replaces `old` by `new` with their index entries; a new key (primary or unique) must be
/// free.
async fn write_update(
    txn: &mut dyn KvTxn,
    table: &Table,
    old: &[Value],
    new: &[Value],
) -> Result<()> {
    let mut entries = Vec::new();
    for index in &table.indexes {
        let (was, now) = (
            index_entry(table, index, old),
            index_entry(table, index, new),
        );
        if was.key != now.key {
            txn.delete(was.key)?;
            entries.push((index, now));
        } else if was.value != now.value {
            txn.put(now.key, now.value)?;
        }
    }
    let old_key = row_key(table, old);
    let (key, value) = super::rows::encode_table_row(table, new);
    if key == old_key {
        txn.put(key, value)?;
    } else {
        txn.delete(old_key)?;
        put_new(txn, key, value, &pkey_name(table)).await?;
    }
    for (index, entry) in entries {
        if entry.must_be_new {
            put_new(txn, entry.key, entry.value, &index.name).await?;
        } else {
            txn.put(entry.key, entry.value)?;
        }
    }
    Ok(())
}
