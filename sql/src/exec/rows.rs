//! Table rows to and from key-value pairs.

use crate::catalog::Table;
use crate::encoding::{decode_key, decode_row, encode_key, encode_row};
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
