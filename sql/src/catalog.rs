//! The catalog: table descriptors stored in the KV store under `txn::keys::catalog_prefix()`.
//!
//! Keys (suffixes of the catalog prefix):
//!
//! - `0x01 <escaped table name>` → the table descriptor (JSON, see [`Table`]);
//! - `0x02` → the next table id (u32 big-endian; ids start at [`FIRST_TABLE_ID`]);
//! - `0x03` → the next hidden row id block (i64 big-endian).
//!
//! Catalog entries are read and written inside the statement's transaction, so DDL is
//! transactional and a statement always sees the schema of its own snapshot. Two concurrent
//! CREATE TABLEs conflict on the id counter and one of them retries (40001). Descriptors are
//! read only to plan: a statement whose cached plan is still valid reads none (`cache`).

use serde::{Deserialize, Serialize};
use txn::keys::{catalog_prefix, encode_bytes};

use crate::store::KvTxn;
use crate::{DataType, Error, Result};

/// The first table id handed out (lower ids are reserved for system tables).
pub const FIRST_TABLE_ID: u32 = 100;
/// The index id of every table's primary index.
pub const PRIMARY_INDEX_ID: u32 = 1;
/// The name of the hidden primary-key column of a table declared without a primary key.
pub const ROWID: &str = "rowid";

const TABLES: u8 = 0x01;
const NEXT_TABLE_ID: u8 = 0x02;
const NEXT_ROWID: u8 = 0x03;

/// A table descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The table id (the second component of its keys).
    pub id: u32,
    /// The table name.
    pub name: String,
    /// Columns in declaration order (a hidden `rowid` last, if any).
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key, in key order.
    pub primary_key: Vec<usize>,
    /// The id the next added column gets.
    pub next_column_id: u32,
}

/// A column descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The column id (tags the column in row values; never reused).
    pub id: u32,
    /// The column name.
    pub name: String,
    /// The column type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// A hidden column (the generated `rowid`) is left out of `*` and INSERT.
    #[serde(default)]
    pub hidden: bool,
}

impl Table {
    /// Finds a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether column `i` is part of the primary key.
    pub fn is_key(&self, i: usize) -> bool {
        self.primary_key.contains(&i)
    }

    /// The key prefix of the primary index.
    pub fn prefix(&self) -> Vec<u8> {
        txn::keys::sql_index_prefix(self.id, PRIMARY_INDEX_ID)
    }

    /// Whether the primary key is the generated hidden row id.
    pub fn has_rowid(&self) -> bool {
        self.primary_key.len() == 1 && self.columns[self.primary_key[0]].hidden
    }

    /// The primary key's column types, all ascending.
    pub fn key_types(&self) -> Vec<(DataType, bool)> {
        self.primary_key
            .iter()
            .map(|&i| (self.columns[i].data_type, false))
            .collect()
    }
}

fn table_key(name: &str) -> Vec<u8> {
    let mut key = catalog_prefix();
    key.push(TABLES);
    encode_bytes(&mut key, name.as_bytes());
    key
}

fn counter_key(which: u8) -> Vec<u8> {
    let mut key = catalog_prefix();
    key.push(which);
    key
}

fn corrupt(what: &str) -> Error {
    Error::Internal(format!("corrupt catalog entry: {what}"))
}

/// Reads a table descriptor; `None` if there is no such table.
pub(crate) async fn get_table(txn: &mut dyn KvTxn, name: &str) -> Result<Option<Table>> {
    let Some(raw) = txn.get(&table_key(name)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| corrupt(&e.to_string()))
}

/// Reads the descriptor of the table with id `id`; `None` if there is none (a scan of the
/// catalog: for error messages, not for planning).
pub(crate) async fn table_by_id(txn: &mut dyn KvTxn, id: u32) -> Result<Option<Table>> {
    let start = counter_key(TABLES);
    let end = counter_key(TABLES + 1);
    for (_, raw) in txn.scan(&start, &end, usize::MAX).await? {
        let table: Table = serde_json::from_slice(&raw).map_err(|e| corrupt(&e.to_string()))?;
        if table.id == id {
            return Ok(Some(table));
        }
    }
    Ok(None)
}

/// Creates a table from a descriptor whose id is assigned here; 42P07 if the name is taken.
pub(crate) async fn create_table(txn: &mut dyn KvTxn, mut table: Table) -> Result<Table> {
    if get_table(txn, &table.name).await?.is_some() {
        return Err(Error::DuplicateTable(format!(
            "relation \"{}\" already exists",
            table.name
        )));
    }
    let counter = counter_key(NEXT_TABLE_ID);
    let id = match txn.get(&counter).await? {
        Some(raw) => {
            u32::from_be_bytes(raw.as_slice().try_into().map_err(|_| corrupt("table id"))?)
        }
        None => FIRST_TABLE_ID,
    };
    let next = id
        .checked_add(1)
        .ok_or_else(|| Error::Internal("table ids exhausted".into()))?;
    txn.put(counter, next.to_be_bytes().to_vec())?;
    table.id = id;
    let raw = serde_json::to_vec(&table).map_err(|e| Error::Internal(e.to_string()))?;
    txn.put(table_key(&table.name), raw)?;
    Ok(table)
}

/// Deletes a table descriptor and every row of the table.
pub(crate) async fn drop_table(txn: &mut dyn KvTxn, table: &Table) -> Result<()> {
    txn.delete(table_key(&table.name))?;
    let prefix = txn::keys::sql_index_prefix(table.id, 0);
    let end = txn::keys::sql_index_prefix(table.id + 1, 0);
    let mut start = prefix;
    loop {
        let batch = txn.scan(&start, &end, 1024).await?;
        let full = batch.len() == 1024;
        for (key, _) in batch {
            start = txn::keys::next_key(&key);
            txn.delete(key)?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Reserves `count` hidden row ids and returns the first. Runs in its own transaction in the
/// caller (see `Engine::next_rowid`), like a sequence: ids are never reused, gaps are fine.
pub(crate) async fn reserve_rowids(txn: &mut dyn KvTxn, count: i64) -> Result<i64> {
    let key = counter_key(NEXT_ROWID);
    let first = match txn.get(&key).await? {
        Some(raw) => i64::from_be_bytes(raw.as_slice().try_into().map_err(|_| corrupt("rowid"))?),
        None => 1,
    };
    txn.put(key, (first + count).to_be_bytes().to_vec())?;
    Ok(first)
}
