//! The catalog: table descriptors (with their indexes) and view descriptors, stored in the KV
//! store under `txn::keys::catalog_prefix()`.
//!
//! Keys (suffixes of the catalog prefix):
//!
//! - `0x01 <escaped table name>` → the table descriptor (JSON, see [`Table`]);
//! - `0x02` → the next table id (u32 big-endian; ids start at [`FIRST_TABLE_ID`]);
//! - `0x03` → the next hidden row id block (i64 big-endian);
//! - `0x04 <escaped index name>` → the name of the index's table (index descriptors live in
//!   their table's descriptor; this entry makes index names unique among relations and lets
//!   DROP INDEX find the table);
//! - `0x05 <escaped view name>` → the view descriptor (JSON, see [`View`]);
//! - `0x06`, `0x07`: sequences and their counters ([`sequence`]).
//!
//! Catalog entries are read and written inside the statement's transaction, so DDL is
//! transactional and a statement always sees the schema of its own snapshot. Two concurrent
//! CREATE TABLEs conflict on the id counter and one of them retries (40001). Descriptors are
//! read only to plan: a statement whose cached plan is still valid reads none (`cache`).

use serde::{Deserialize, Serialize};
use txn::keys::{catalog_prefix, encode_bytes};

use crate::store::KvTxn;
use crate::{DataType, Error, Result};

pub mod sequence;
pub use sequence::Sequence;

/// The first table id handed out (lower ids are reserved for system tables).
pub const FIRST_TABLE_ID: u32 = 100;
/// The index id of every table's primary index.
pub const PRIMARY_INDEX_ID: u32 = 1;
/// The name of the hidden primary-key column of a table declared without a primary key.
pub const ROWID: &str = "rowid";

const TABLES: u8 = 0x01;
const NEXT_TABLE_ID: u8 = 0x02;
const NEXT_ROWID: u8 = 0x03;
const INDEX_NAMES: u8 = 0x04;
const VIEWS: u8 = 0x05;
/// The id of a table's first secondary index.
pub const FIRST_INDEX_ID: u32 = 2;

fn first_index_id() -> u32 {
    FIRST_INDEX_ID
}

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
    /// Secondary indexes (absent in descriptors written before indexes existed).
    #[serde(default)]
    pub indexes: Vec<Index>,
    /// The id the next secondary index gets.
    #[serde(default = "first_index_id")]
    pub next_index_id: u32,
    /// The sequences the table's SERIAL and identity columns own (dropped with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<String>,
    /// CHECK constraints, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

/// A CHECK constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The constraint name (unique within the table).
    pub name: String,
    /// The boolean expression over the table's columns, as SQL text.
    pub expr: String,
}

/// Whether an index is being built or in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexState {
    /// Writes maintain the index's entries, reads do not use it (its backfill is under way).
    WriteOnly,
    /// Complete: maintained by writes and used by reads.
    Public,
}

/// A secondary index descriptor (see docs/formats.md for its entries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// The index id (the third component of its keys), unique within the table.
    pub id: u32,
    /// The index name (unique among relations).
    pub name: String,
    /// Positions in the table's columns of the index columns, in key order.
    pub columns: Vec<usize>,
    /// Whether each index column is descending.
    pub descending: Vec<bool>,
    /// Positions of the INCLUDE columns (stored in the entry's value).
    pub include: Vec<usize>,
    /// Whether two rows may not have equal non-NULL index values.
    pub unique: bool,
    /// Whether reads may use the index.
    pub state: IndexState,
}

impl Index {
    /// The key prefix of the index in `table`.
    pub fn prefix(&self, table: &Table) -> Vec<u8> {
        txn::keys::sql_index_prefix(table.id, self.id)
    }

    /// The primary-key columns that are not index columns (the key suffix and value columns).
    pub fn key_suffix(&self, table: &Table) -> Vec<usize> {
        table
            .primary_key
            .iter()
            .copied()
            .filter(|c| !self.columns.contains(c))
            .collect()
    }

    /// The columns an entry holds: index columns, the primary key and the INCLUDE columns.
    pub fn covers(&self, table: &Table, column: usize) -> bool {
        self.columns.contains(&column) || table.is_key(column) || self.include.contains(&column)
    }

    /// The index column types with their directions.
    pub fn key_types(&self, table: &Table) -> Vec<(DataType, bool)> {
        self.columns
            .iter()
            .zip(&self.descending)
            .map(|(&c, &d)| (table.columns[c].data_type, d))
            .collect()
    }
}

/// A view descriptor: a named query, expanded where a FROM clause names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The view name (unique among relations).
    pub name: String,
    /// The names of the view's columns, in order.
    pub columns: Vec<String>,
    /// The query, as SQL text (sqlparser's normalised form of the statement's query).
    pub query: String,
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
    /// The DEFAULT expression, as SQL text (absent: NULL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// `GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY` (its default is the owned sequence's
    /// nextval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

/// How an identity column takes explicit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// GENERATED ALWAYS: an INSERT may not give a value (428C9), UPDATE only DEFAULT.
    Always,
    /// GENERATED BY DEFAULT: an explicit value wins.
    ByDefault,
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

    /// Finds a secondary index by name.
    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The indexes reads may use.
    pub fn public_indexes(&self) -> impl Iterator<Item = &Index> {
        self.indexes
            .iter()
            .filter(|i| i.state == IndexState::Public)
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

fn index_name_key(name: &str) -> Vec<u8> {
    named_key(INDEX_NAMES, name)
}

fn view_key(name: &str) -> Vec<u8> {
    named_key(VIEWS, name)
}

fn named_key(kind: u8, name: &str) -> Vec<u8> {
    let mut key = catalog_prefix();
    key.push(kind);
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
    must_be_new_relation(txn, &table.name).await?;
    for index in &table.indexes {
        must_be_new_relation(txn, &index.name).await?;
        txn.put(index_name_key(&index.name), table.name.as_bytes().to_vec())?;
    }
    table.id = next_id(txn, NEXT_TABLE_ID).await?;
    put_table(txn, &table)?;
    Ok(table)
}

/// Takes the next id of the table id counter (tables and sequences share it).
async fn next_id(txn: &mut dyn KvTxn, which: u8) -> Result<u32> {
    let counter = counter_key(which);
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
    Ok(id)
}

/// Writes a table descriptor (new or changed).
pub(crate) fn put_table(txn: &mut dyn KvTxn, table: &Table) -> Result<()> {
    let raw = serde_json::to_vec(table).map_err(|e| Error::Internal(e.to_string()))?;
    txn.put(table_key(&table.name), raw)?;
    Ok(())
}

/// 42P07 if a table, an index, a view or a sequence is called `name`.
pub(crate) async fn must_be_new_relation(txn: &mut dyn KvTxn, name: &str) -> Result<()> {
    if relation_exists(txn, name).await? {
        return Err(Error::DuplicateTable(format!(
            "relation \"{name}\" already exists"
        )));
    }
    Ok(())
}

/// Whether a table, an index, a view or a sequence is called `name`.
pub(crate) async fn relation_exists(txn: &mut dyn KvTxn, name: &str) -> Result<bool> {
    for key in [
        table_key(name),
        index_name_key(name),
        view_key(name),
        sequence::sequence_key(name),
    ] {
        if txn.get(&key).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a view descriptor; `None` if there is no such view.
pub(crate) async fn get_view(txn: &mut dyn KvTxn, name: &str) -> Result<Option<View>> {
    let Some(raw) = txn.get(&view_key(name)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| corrupt(&e.to_string()))
}

/// Writes a view descriptor (new or replacing one of the same name).
pub(crate) fn put_view(txn: &mut dyn KvTxn, view: &View) -> Result<()> {
    let raw = serde_json::to_vec(view).map_err(|e| Error::Internal(e.to_string()))?;
    txn.put(view_key(&view.name), raw)?;
    Ok(())
}

/// Deletes a view descriptor.
pub(crate) fn drop_view(txn: &mut dyn KvTxn, name: &str) -> Result<()> {
    Ok(txn.delete(view_key(name))?)
}

/// The name of the table of index `name`; `None` if there is no such index.
pub(crate) async fn index_table(txn: &mut dyn KvTxn, name: &str) -> Result<Option<String>> {
    match txn.get(&index_name_key(name)).await? {
        Some(raw) => String::from_utf8(raw)
            .map(Some)
            .map_err(|_| corrupt("index name")),
        None => Ok(None),
    }
}

/// Adds an index to its table's descriptor (the caller assigned its id) and claims its name.
pub(crate) async fn add_index(txn: &mut dyn KvTxn, table: &mut Table, index: Index) -> Result<()> {
    must_be_new_relation(txn, &index.name).await?;
    txn.put(index_name_key(&index.name), table.name.as_bytes().to_vec())?;
    table.next_index_id = table.next_index_id.max(index.id + 1);
    table.indexes.push(index);
    put_table(txn, table)
}

/// Removes an index from its table's descriptor and deletes its name and every entry.
pub(crate) async fn drop_index(txn: &mut dyn KvTxn, table: &mut Table, name: &str) -> Result<()> {
    let Some(pos) = table.indexes.iter().position(|i| i.name == name) else {
        return Err(corrupt("index missing from its table"));
    };
    let index = table.indexes.remove(pos);
    txn.delete(index_name_key(name))?;
    put_table(txn, table)?;
    let start = index.prefix(table);
    let end = txn::keys::sql_index_prefix(table.id, index.id + 1);
    delete_span(txn, start, &end).await
}

/// Deletes every key of `[start, end)`.
async fn delete_span(txn: &mut dyn KvTxn, mut start: Vec<u8>, end: &[u8]) -> Result<()> {
    loop {
        let batch = txn.scan(&start, end, 1024).await?;
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

/// Deletes a table descriptor, its indexes, its owned sequences and every row of the table.
pub(crate) async fn drop_table(txn: &mut dyn KvTxn, table: &Table) -> Result<()> {
    txn.delete(table_key(&table.name))?;
    for name in &table.sequences {
        if let Some(seq) = sequence::get_sequence(txn, name).await? {
            sequence::drop_sequence(txn, &seq)?;
        }
    }
    for index in &table.indexes {
        txn.delete(index_name_key(&index.name))?;
    }
    let prefix = txn::keys::sql_index_prefix(table.id, 0);
    let end = txn::keys::sql_index_prefix(table.id + 1, 0);
    delete_span(txn, prefix, &end).await
}

/// Deletes every row and index entry of a table; with `restart`, its owned sequences start
/// over.
pub(crate) async fn truncate_table(
    txn: &mut dyn KvTxn,
    table: &Table,
    restart: bool,
) -> Result<()> {
    if restart {
        for name in &table.sequences {
            if let Some(seq) = sequence::get_sequence(txn, name).await? {
                sequence::restart(txn, &seq)?;
            }
        }
    }
    let prefix = txn::keys::sql_index_prefix(table.id, 0);
    let end = txn::keys::sql_index_prefix(table.id + 1, 0);
    delete_span(txn, prefix, &end).await
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
