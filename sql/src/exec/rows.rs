//! Table rows to and from key-value pairs.

use crate::catalog::{Index, Table};
use crate::encoding::{decode_key, decode_key_value, decode_row, encode_key, encode_row};
use crate::{Error, Result, Value};

/// A row of values, in the column order of the node that produced it.
pub(crate) type Row = Vec<Value>;

/// The primary-index key of a full table row.
pub(crate) fn row_key(table: &Table, row: &[Value]) -> Vec<u8> {
    let values: Vec<Value> = table.primary_key.iter().map(|&i| row[i].clone()).collect();
    primary_key(table, &values)
}

/// The primary-index key of the row with these primary-key values (or of the first row of a
/// key prefix, when only leading key columns are given).
pub(crate) fn primary_key(table: &Table, values: &[Value]) -> Vec<u8> {
    let mut key = table.prefix();
    key.extend(encode_key(values, &[]));
    key
}

/// The key and value of a full table row.
pub(crate) fn encode_table_row(table: &Table, row: &[Value]) -> (Vec<u8>, Vec<u8>) {
    let value = encode_row(
        table
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !table.is_key(*i))
            .map(|(i, c)| (c.id, &row[i])),
    );
    (row_key(table, row), value)
}

/// Decodes a full table row from its key and value.
pub(crate) fn decode_table_row(table: &Table, key: &[u8], value: &[u8]) -> Result<Row> {
    let prefix = table.prefix();
    let suffix = key.strip_prefix(prefix.as_slice()).ok_or_else(|| {
        Error::Internal(format!(
            "key {} is not in table {}",
            txn::keys::Pretty(key),
            table.name
        ))
    })?;
    let key_values = decode_key(suffix, &table.key_types())?;
    let mut row = vec![Value::Null; table.columns.len()];
    for (&i, v) in table.primary_key.iter().zip(key_values) {
        row[i] = v;
    }
    for (id, v) in decode_row(value)? {
        if let Some(i) = table.columns.iter().position(|c| c.id == id)
            && !table.is_key(i)
        {
            row[i] = v;
        }
    }
    Ok(row)
}

/// An index entry of a full table row (docs/formats.md, "Secondary indexes").
pub(crate) struct IndexEntry {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    /// The key is the index values alone (a UNIQUE index without NULLs): it must not exist.
    pub(crate) must_be_new: bool,
}

/// The entry of `row` in `index`.
pub(crate) fn index_entry(table: &Table, index: &Index, row: &[Value]) -> IndexEntry {
    let mut key = index.prefix(table);
    let values: Vec<Value> = index.columns.iter().map(|&c| row[c].clone()).collect();
    key.extend(encode_key(&values, &index.descending));
    let suffix = index.key_suffix(table);
    let must_be_new = index.unique && !values.iter().any(Value::is_null);
    if !must_be_new {
        let pk: Vec<Value> = suffix.iter().map(|&c| row[c].clone()).collect();
        key.extend(encode_key(&pk, &[]));
    }
    let stored = suffix
        .iter()
        .chain(index.include.iter().filter(|c| !index.columns.contains(c)))
        .map(|&c| (table.columns[c].id, &row[c]));
    IndexEntry {
        key,
        value: encode_row(stored),
        must_be_new,
    }
}

/// Decodes an index entry into a table-shaped row holding the columns the index covers (the
/// others are NULL).
pub(crate) fn decode_index_entry(
    table: &Table,
    index: &Index,
    key: &[u8],
    value: &[u8],
) -> Result<Row> {
    let prefix = index.prefix(table);
    let mut rest = key.strip_prefix(prefix.as_slice()).ok_or_else(|| {
        Error::Internal(format!(
            "key {} is not in index {}",
            txn::keys::Pretty(key),
            index.name
        ))
    })?;
    let mut row = vec![Value::Null; table.columns.len()];
    for (&c, (ty, desc)) in index.columns.iter().zip(index.key_types(table)) {
        let (v, tail) = decode_key_value(rest, ty, desc)?;
        row[c] = v;
        rest = tail;
    }
    for (id, v) in decode_row(value)? {
        if let Some(i) = table.columns.iter().position(|c| c.id == id) {
            row[i] = v;
        }
    }
    Ok(row)
}
