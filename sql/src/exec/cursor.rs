//! Cursors: a query's operators kept open between fetches, so that a portal Execute with a
//! row limit reads only about what it returns (a batch at a time) instead of the whole result.

use std::collections::VecDeque;
use std::sync::Arc;

use super::memory::{self, Account, Pool};
use super::ops::{self, Operator};
use crate::plan::Plan;
use crate::store::KvTxn;
use crate::{Column, Result, Value};

/// An open query whose rows are fetched a few at a time (see `Session::open_cursor`).
pub struct Cursor {
    columns: Vec<Column>,
    op: Box<dyn Operator>,
    /// Rows of the last batch read that were not fetched yet.
    pending: VecDeque<Vec<Value>>,
    /// The operators are exhausted.
    exhausted: bool,
    /// The reservations of the query's operators (sorts, hash tables), held while it is open.
    _account: Arc<Account>,
}

impl Cursor {
    /// The columns of the rows.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Whether every row has been fetched.
    pub fn is_done(&self) -> bool {
        self.exhausted && self.pending.is_empty()
    }

    /// The next rows, at most `max` (fewer only at the end), read in `txn`.
    pub(crate) async fn fetch(
        &mut self,
        txn: &mut dyn KvTxn,
        max: usize,
    ) -> Result<Vec<Vec<Value>>> {
        while self.pending.len() < max && !self.exhausted {
            match self.op.next(txn).await? {
                Some(batch) => self.pending.extend(batch),
                None => self.exhausted = true,
            }
        }
        let n = max.min(self.pending.len());
        Ok(self.pending.drain(..n).collect())
    }
}

/// Opens a cursor over a query's plan; `None` for any other plan (which runs whole).
pub(crate) fn open(plan: Plan, pool: &Arc<Pool>) -> Result<Option<Cursor>> {
    let Plan::Select(node) = plan else {
        return Ok(None);
    };
    let columns = node.columns();
    let account = Account::new(pool);
    let op = memory::building(&account, || ops::build(node))?;
    Ok(Some(Cursor {
        columns,
        op,
        pending: VecDeque::new(),
        exhausted: false,
        _account: account,
    }))
}
