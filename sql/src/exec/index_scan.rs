//! Reading a span of a secondary index, then the rows its entries point to.

use std::sync::Arc;

use async_trait::async_trait;

use super::ops::{Operator, SCAN_BATCH, const_values, scan_batch};
use super::rows::{Row, RowDecoder, decode_index_entry, row_key};
use crate::Result;
use crate::catalog::{Index, Table};
use crate::encoding::encode_key;
use crate::plan::{Span, SpanBound};
use crate::store::KvTxn;

/// Scans index entries in batches (see [`scan_batch`]); each batch's rows are then read by
/// primary key, one request per range for the batch, unless the scan is index-only.
pub(super) struct IndexScan {
    table: Arc<Table>,
    index: Index,
    covering: bool,
    rows: RowDecoder,
    /// The size of the next KV request for entries.
    batch: usize,
    /// The next key to read; `None` when done.
    start: Option<Vec<u8>>,
    end: Vec<u8>,
}

impl IndexScan {
    pub(super) fn new(
        table: Arc<Table>,
        index: Index,
        span: &Span,
        covering: bool,
    ) -> Result<IndexScan> {
        let prefix = index.prefix(&table);
        let bound = |b: &SpanBound| -> Result<Option<Vec<u8>>> {
            let Some(values) = const_values(&b.values)? else {
                return Ok(None);
            };
            // Bounds encode like their columns (the planner checks the type family; integers
            // of every width share one encoding), so they need no cast.
            let mut key = prefix.clone();
            key.extend(encode_key(&values, &index.descending));
            Ok(Some(if b.after {
                txn::keys::prefix_end(&key).unwrap_or_else(|| txn::keys::KEY_MAX.to_vec())
            } else {
                key
            }))
        };
        let (start, end) = match (bound(&span.start)?, bound(&span.end)?) {
            (Some(s), Some(e)) => (Some(s), e),
            _ => (None, vec![]),
        };
        Ok(IndexScan {
            rows: RowDecoder::new(&table),
            batch: SCAN_BATCH,
            table,
            index,
            covering,
            start,
            end,
        })
    }
}

#[async_trait]
impl Operator for IndexScan {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        loop {
            let Some(batch) = scan_batch(txn, &mut self.start, &self.end, &mut self.batch).await?
            else {
                return Ok(None);
            };
            let mut entries = Vec::with_capacity(batch.len());
            for (k, v) in &batch {
                entries.push(decode_index_entry(&self.table, &self.index, k, v)?);
            }
            if self.covering {
                return Ok(Some(entries));
            }
            let keys: Vec<Vec<u8>> = entries.iter().map(|e| row_key(&self.table, e)).collect();
            let values = txn.get_many(&keys).await?;
            let mut rows = Vec::with_capacity(keys.len());
            // Entries and rows are written in one transaction, so a row is always there.
            for (key, value) in keys.iter().zip(values) {
                if let Some(value) = value {
                    rows.push(self.rows.decode(key, &value)?);
                }
            }
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
    }
}
