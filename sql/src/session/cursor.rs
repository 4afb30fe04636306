//! Queries fetched incrementally (portals with a row limit): the statement's operators stay
//! open between fetches in the session's transaction. Outside a block that transaction is an
//! implicit block (reported `Idle`, as in PostgreSQL, where the extended protocol's messages up
//! to Sync form one implicit transaction), committed by `end_batch` at Sync and rolled back by
//! an error.

use sqlparser::ast;
use txn::TxnOptions;

use super::{Block, TxnState};
use crate::{Cursor, Error, Result, Statement, Value, exec};

impl crate::Session {
    /// Opens a cursor over a query's rows, for a client that fetches them a few at a time.
    /// `None` when the statement is not a query that reads tables (or runs AS OF SYSTEM TIME,
    /// or the block failed): the caller executes it whole instead. The rows are those of the
    /// transaction's snapshot when the cursor opens; an implicit block begun for it lasts until
    /// [`Session::end_batch`](crate::Session) (Sync), and 40001 is not retried inside it (rows
    /// may already have reached the client).
    pub async fn open_cursor(
        &mut self,
        stmt: &Statement,
        params: &[Value],
    ) -> Result<Option<Cursor>> {
        let backend = self.start_statement();
        exec::interrupt::scope(backend, self.open_cursor_in(stmt, params)).await
    }

    async fn open_cursor_in(
        &mut self,
        stmt: &Statement,
        params: &[Value],
    ) -> Result<Option<Cursor>> {
        let query = matches!(&*stmt.ast, ast::Statement::Query(_));
        if !query || !stmt.needs_txn || stmt.as_of.is_some() || stmt.split_at.is_some() {
            return Ok(None);
        }
        let mut block = match std::mem::take(&mut self.state) {
            TxnState::InBlock(block) => block,
            TxnState::Idle => {
                let opts = TxnOptions {
                    isolation: self.settings.default_isolation(),
                    ..TxnOptions::default()
                };
                let (txn, seen) = self.engine.begin(opts).await?;
                Block::new(txn, true, seen)
            }
            state => {
                self.state = state;
                return Ok(None);
            }
        };
        let generation = block.generation();
        let opened = self.open_in(&mut block, stmt, generation, params).await;
        self.state = TxnState::InBlock(block);
        if let Err(e) = &opened {
            self.fail(e).await;
        }
        opened
    }

    async fn open_in(
        &self,
        block: &mut Block,
        stmt: &Statement,
        generation: Option<u64>,
        params: &[Value],
    ) -> Result<Option<Cursor>> {
        let txn = block.txn.as_mut();
        txn.statement_start();
        txn.set_lock_timeout(self.settings.lock_timeout());
        let (plan, types) = Self::plan_cached(txn, stmt, generation).await?;
        let plan = exec::bind_params(plan, &types, params, &block.now)?;
        exec::cursor::open(plan, &self.engine.memory)
    }

    /// The next rows of a cursor, at most `max` (fewer only once it is done). An error fails
    /// the transaction as a statement's would.
    pub async fn fetch(&mut self, cursor: &mut Cursor, max: usize) -> Result<Vec<Vec<Value>>> {
        let backend = self.start_statement();
        exec::interrupt::scope(backend, self.fetch_in(cursor, max)).await
    }

    async fn fetch_in(&mut self, cursor: &mut Cursor, max: usize) -> Result<Vec<Vec<Value>>> {
        let TxnState::InBlock(block) = &mut self.state else {
            return Err(Error::InvalidParameter(
                "the transaction of this portal has ended".into(),
            ));
        };
        let fetched = cursor.fetch(block.txn.as_mut(), max).await;
        if let Err(e) = &fetched {
            self.fail(e).await;
        }
        fetched
    }
}

impl crate::Session {
    /// Sync (extended protocol): commits the implicit block a cursor began, if one is open.
    pub async fn sync(&mut self) -> Result<()> {
        match &self.state {
            TxnState::InBlock(block) if block.implicit => self.end_batch().await,
            _ => Ok(()),
        }
    }
}
