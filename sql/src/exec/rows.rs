//! Table rows to and from key-value pairs.

use crate::catalog::{Index, Table};
use crate::encoding::{decode_key_value, decode_row, decode_row_selected, encode_key, encode_row};
use crate::{DataType, Error, Result, Value};

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
    RowDecoder::new(table).decode(key, value)
}

/// Decodes the rows of one table, with what every row needs worked out once: the key prefix,
/// the key columns' types and the position of each stored column.
pub(crate) struct RowDecoder {
    prefix: Vec<u8>,
    name: String,
    width: usize,
    /// Each primary-key column's position and type, in key order.
    key: Vec<(usize, DataType)>,
    /// The position of the column with each id (`usize::MAX`: a key column or none).
    position: Vec<usize>,
}

impl RowDecoder {
    /// The decoder of `table`'s rows.
    pub(crate) fn new(table: &Table) -> RowDecoder {
        RowDecoder::reading(table, None)
    }

    /// The decoder of `table`'s rows that decodes only the stored columns marked in `read`
    /// (all of them for `None`); the others are NULL in the rows it returns.
    pub(crate) fn reading(table: &Table, read: Option<&[bool]>) -> RowDecoder {
        let max_id = table.columns.iter().map(|c| c.id).max().unwrap_or(0);
        let mut position = vec![usize::MAX; max_id as usize + 1];
        for (i, c) in table.columns.iter().enumerate() {
            let wanted = read.is_none_or(|r| r.get(i).copied().unwrap_or(true));
            if !table.is_key(i) && wanted {
                position[c.id as usize] = i;
            }
        }
        RowDecoder {
            prefix: table.prefix(),
            name: table.name.clone(),
            width: table.columns.len(),
            key: table
                .primary_key
                .iter()
                .map(|&i| (i, table.columns[i].data_type))
                .collect(),
            position,
        }
    }

    /// The row stored under `key` with `value`.
    pub(crate) fn decode(&self, key: &[u8], value: &[u8]) -> Result<Row> {
        let mut input = key.strip_prefix(self.prefix.as_slice()).ok_or_else(|| {
            Error::Internal(format!(
                "key {} is not in table {}",
                txn::keys::Pretty(key),
                self.name
            ))
        })?;
        let mut row = Vec::with_capacity(self.width);
        row.resize_with(self.width, || Value::Null);
        for &(i, data_type) in &self.key {
            let (v, rest) = decode_key_value(input, data_type, false)?;
            row[i] = v;
            input = rest;
        }
        if !input.is_empty() {
            return Err(Error::Internal(format!(
                "key {} of table {} has trailing bytes",
                txn::keys::Pretty(key),
                self.name
            )));
        }
        let slot = |id: u32| {
            self.position
                .get(id as usize)
                .copied()
                .filter(|&i| i != usize::MAX)
        };
        decode_row_selected(value, slot, |i, v| row[i] = v)?;
        Ok(row)
    }
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
