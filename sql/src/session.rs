//! The session state machine: explicit and implicit transactions, the failed-block state,
//! session settings, and the dispatch of one statement.
//!
//! States: `Idle` (each statement runs in an implicit transaction committed at its end, retried
//! internally on 40001), `InBlock` (after BEGIN; statements share the block's transaction, and
//! SAVEPOINT pushes a named savepoint of it) and `Failed` (a statement in the block failed: every
//! statement but COMMIT/ROLLBACK/ROLLBACK TO fails with 25P02; COMMIT then reports ROLLBACK).
//!
//! A failed block keeps its transaction only while a savepoint can still recover it: when it has
//! savepoints and the error left the transaction usable (anything but 40001, 40003 and internal
//! errors). Otherwise the transaction is rolled back at once, releasing its locks.
//!
//! A multi-statement batch (one simple-protocol Query) runs as one implicit block: a `Block`
//! flagged `implicit`, begun by the first statement that needs a transaction, committed at the
//! end of the batch and rolled back by an error. BEGIN turns it into an explicit block, COMMIT
//! and ROLLBACK end it (the statements after them start a new one), as in PostgreSQL.

use std::sync::Arc;

use sqlparser::ast;
use txn::TxnOptions;

use crate::as_of::AsOf;
use crate::cache::{Schema, changes_schema};
use crate::plan::Plan;
use crate::planner::{Planner, referenced_tables};
use crate::store::{KvTxn, NoTxn, Savepoint};
use crate::types::datetime::now;
use crate::{
    Column, DataType, Description, Engine, Error, ExecResult, Prepared, Result, Statement,
    TxnStatus, Value, exec, optimizer,
};

pub(crate) mod copy;
mod cursor;
mod settings;

use settings::{Settings, isolation_name, parse_isolation, set_value, show_name, txn_options};

/// How often an implicit transaction is retried after a serialization failure.
pub(crate) const IMPLICIT_RETRIES: usize = 5;

/// The server version reported to clients.
pub const SERVER_VERSION: &str = concat!("15.0 (TinkerDB ", env!("CARGO_PKG_VERSION"), ")");

/// The transaction state of a session.
#[derive(Default)]
pub(crate) enum TxnState {
    #[default]
    Idle,
    InBlock(Block),
    /// A block whose statement failed. `block` is kept while a savepoint can recover it;
    /// `lost_savepoints` says the block had savepoints but the error made them unusable.
    Failed {
        block: Option<Block>,
        lost_savepoints: bool,
    },
}

/// The transaction of a block and its savepoints, oldest first (names may repeat).
pub(crate) struct Block {
    txn: Box<dyn KvTxn>,
    savepoints: Vec<(String, Savepoint)>,
    /// The implicit block of a multi-statement batch (reported to the client as `Idle`).
    implicit: bool,
    /// The schema generation the snapshot sees and the read timestamp it was seen at; None
    /// once a statement of the block may have changed the schema.
    schema: Option<(u64, txn::Timestamp)>,
    /// A statement of the block may have changed the schema.
    changed_schema: bool,
    /// When the block began: `now()` for all of its statements, as in PostgreSQL.
    now: Value,
}

impl Block {
    fn new(txn: Box<dyn KvTxn>, implicit: bool, seen: Option<u64>) -> Block {
        let schema = seen.map(|g| (g, txn.read_ts()));
        Block {
            txn,
            savepoints: Vec::new(),
            implicit,
            schema,
            changed_schema: false,
            now: now(),
        }
    }

    /// The schema generation the block's statements see (see `cache`): the one its snapshot
    /// saw, while its reads stay at that snapshot and it has not changed the schema itself.
    fn generation(&self) -> Option<u64> {
        let (generation, ts) = self.schema?;
        (ts == self.txn.read_ts()).then_some(generation)
    }

    /// Runs `stmt` in the block's transaction.
    async fn run(
        &mut self,
        session: &crate::Session,
        stmt: &Statement,
        params: &[Value],
    ) -> Result<ExecResult> {
        if changes_schema(&stmt.ast) {
            self.schema = None;
            self.changed_schema = true;
        }
        let generation = self.generation();
        session
            .run_in(self.txn.as_mut(), stmt, generation, params, &self.now)
            .await
    }

    /// Commits; the commit of a schema change bumps the schema generation (see `cache`).
    async fn commit(self, schema: &Schema) -> txn::Result<()> {
        let _commit = self.changed_schema.then(|| schema.committing());
        self.txn.commit().await
    }

    /// The index of the most recent savepoint named `name`.
    fn find(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| no_savepoint(name))
    }
}

fn no_savepoint(name: &str) -> Error {
    Error::InvalidSavepoint(format!("savepoint \"{name}\" does not exist"))
}

/// The 25P01 error of a savepoint command outside a transaction block.
fn outside_block(command: &str) -> Error {
    Error::NoActiveTransaction(format!("{command} can only be used in transaction blocks"))
}

/// Whether the transaction is still usable after a statement failed with `err`, so that a
/// savepoint can recover the block: a conflict, an unknown outcome or an internal failure may
/// have left it rolled back or half-refreshed.
fn recoverable(err: &Error) -> bool {
    !matches!(
        err,
        Error::Serialization(_)
            | Error::CompletionUnknown(_)
            | Error::Unavailable(_)
            | Error::Internal(_)
    )
}

/// A savepoint name as PostgreSQL compares it: unquoted names fold to lower case.
fn savepoint_name(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

impl TxnState {
    pub(crate) fn status(&self) -> TxnStatus {
        match self {
            TxnState::Idle => TxnStatus::Idle,
            TxnState::InBlock(b) if b.implicit => TxnStatus::Idle,
            TxnState::InBlock(_) => TxnStatus::InBlock,
            TxnState::Failed { .. } => TxnStatus::Failed,
        }
    }

    fn is_failed(&self) -> bool {
        matches!(self, TxnState::Failed { .. })
    }

    fn failed(block: Option<Block>, lost_savepoints: bool) -> TxnState {
        TxnState::Failed {
            block,
            lost_savepoints,
        }
    }
}

fn command(tag: &str) -> ExecResult {
    ExecResult::Command {
        tag: tag.into(),
        rows: None,
    }
}

/// A statement that only reads `SHOW`-style rows.
fn text_rows(name: &str, lines: impl IntoIterator<Item = String>) -> ExecResult {
    ExecResult::Rows {
        columns: vec![Column {
            name: name.into(),
            data_type: DataType::Text,
        }],
        rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
    }
}

/// Whether a statement controls the transaction (a batch holding one is not retried).
pub(crate) fn is_transaction_control(stmt: &ast::Statement) -> bool {
    matches!(
        stmt,
        ast::Statement::StartTransaction { .. }
            | ast::Statement::Commit { .. }
            | ast::Statement::Rollback { .. }
            | ast::Statement::Savepoint { .. }
            | ast::Statement::ReleaseSavepoint { .. }
    )
}

/// A statement with no table access to plan.
fn is_transaction_exit(stmt: &ast::Statement) -> bool {
    matches!(
        stmt,
        ast::Statement::Commit { .. } | ast::Statement::Rollback { .. }
    )
}

/// One client session: its explicit transaction (if any), its failed state, its settings, and
/// the statements of the SQL texts it parsed last.
pub struct Session {
    pub(crate) engine: Arc<Engine>,
    pub(crate) state: TxnState,
    pub(crate) settings: Settings,
    /// Inside `execute_batch`: statements join one implicit block.
    pub(crate) in_batch: bool,
    pub(crate) parsed: crate::cache::ParseCache,
    /// Prepared statements by name ("" is the unnamed one).
    pub(crate) prepared: std::collections::HashMap<String, Arc<Prepared>>,
    /// The session's sequence values (`nextval` blocks, `currval`, `lastval`).
    pub(crate) sequences: exec::sequence::SessionSequences,
    /// The session as cancel requests and `pg_cancel_backend` see it.
    pub(crate) backend: Arc<exec::interrupt::Backend>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.engine.backends.unregister(self.backend.pid());
    }
}

impl Session {
    /// Opens a session for `user` on `database` (the only database is `tinkerdb`; others are
    /// `InvalidParameter`, which pgserver reports as 3D000 at start-up).
    pub fn new(engine: Arc<Engine>, _user: &str, database: &str) -> Result<Session> {
        if database != crate::DATABASE {
            return Err(Error::InvalidParameter(format!(
                "database \"{database}\" does not exist"
            )));
        }
        Ok(Session {
            sequences: exec::sequence::SessionSequences::new(engine.clone()),
            backend: engine.backends.register(),
            engine,
            state: Default::default(),
            settings: Default::default(),
            in_batch: false,
            parsed: Default::default(),
            prepared: Default::default(),
        })
    }

    /// Parses SQL text into statements (several when `;`-separated). Errors are 42601. A text
    /// the session parsed recently gives the same statements again, with their cached plans.
    pub fn parse(&mut self, sql: &str) -> Result<Vec<Statement>> {
        if let Some(stmts) = self.parsed.get(sql) {
            return Ok(stmts);
        }
        let stmts = match crate::split_at::parse(sql)? {
            Some((split_at, query)) => vec![Statement::new(query, None, Some(split_at))],
            None => crate::parser::parse_with_as_of(sql)?
                .into_iter()
                .map(|(ast, as_of)| Statement::new(ast, as_of, None))
                .collect(),
        };
        self.parsed.put(sql, &stmts);
        Ok(stmts)
    }

    /// Describes a statement for the extended protocol. `declared` holds the parameter types the
    /// client declared in Parse (None where it left them unspecified).
    pub async fn describe(
        &mut self,
        stmt: &Statement,
        declared: &[Option<DataType>],
    ) -> Result<Description> {
        if stmt.split_at.is_some() {
            let params = declared
                .iter()
                .map(|d| d.unwrap_or(DataType::Text))
                .collect();
            return Ok(Description {
                params,
                columns: crate::split_at::columns(),
            });
        }
        self.describe_statement(&stmt.ast, declared).await
    }

    /// Executes one statement with its parameter values (empty for the simple protocol). Inside a
    /// failed transaction block every statement except COMMIT/ROLLBACK returns 25P02; an error in a
    /// block moves the session to `TxnStatus::Failed`; an error outside a block rolls back the
    /// implicit transaction.
    /// A running statement stops with 57014 when the session is cancelled or its
    /// `statement_timeout` passes.
    pub async fn execute(&mut self, stmt: &Statement, params: &[Value]) -> Result<ExecResult> {
        let backend = self.start_statement();
        exec::interrupt::scope(backend, self.execute_one(stmt, params)).await
    }

    /// Sets a session variable from a start-up parameter or `-c name=value` option.
    pub fn set_parameter(&mut self, name: &str, value: &str) -> Result<()> {
        self.settings.set_text(name, value)
    }

    /// The process id and secret key of the session (BackendKeyData): a CancelRequest with
    /// both cancels its running statement ([`Engine::cancel_request`]).
    pub fn backend_key(&self) -> (i32, i32) {
        (self.backend.pid(), self.backend.secret())
    }

    /// Marks the start of a statement for cancellation and `statement_timeout`.
    pub(crate) fn start_statement(&self) -> Arc<exec::interrupt::Backend> {
        self.backend.start(self.settings.statement_timeout());
        self.backend.clone()
    }

    async fn execute_one(&mut self, stmt: &Statement, params: &[Value]) -> Result<ExecResult> {
        let result = match (&stmt.as_of, &stmt.split_at) {
            (_, Some(split)) => self.execute_split_at(split, stmt, params).await,
            (Some(as_of), None) => self.execute_as_of(stmt, as_of, params).await,
            (None, None) => self.execute_statement(stmt, params).await,
        };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("tinkerdb_sql_statements_total", "outcome" => outcome).increment(1);
        result
    }

    /// Executes the statements of one simple-protocol Query as PostgreSQL does: without an
    /// explicit block they form one implicit transaction, committed after the last statement
    /// and rolled back by an error (BEGIN, COMMIT and ROLLBACK inside the batch work as in
    /// PostgreSQL). Returns one result per statement run, stopping after the first error, plus
    /// a final error if committing the implicit transaction fails. A batch without transaction
    /// control that starts outside a block is retried as a whole on 40001, like a single
    /// statement.
    pub async fn execute_batch(&mut self, stmts: &[Statement]) -> Vec<Result<ExecResult>> {
        if stmts.len() == 1 {
            return vec![self.execute(&stmts[0], &[]).await];
        }
        let backend = self.start_statement();
        exec::interrupt::scope(backend, self.execute_many(stmts)).await
    }

    async fn execute_many(&mut self, stmts: &[Statement]) -> Vec<Result<ExecResult>> {
        let retryable = self.txn_status() == TxnStatus::Idle
            && stmts.iter().all(|s| !is_transaction_control(&s.ast));
        let mut attempt = 0;
        loop {
            let results = self.run_batch(stmts).await;
            let conflict = matches!(results.last(), Some(Err(Error::Serialization(_))));
            if !(retryable && conflict && attempt < IMPLICIT_RETRIES) {
                return results;
            }
            attempt += 1;
        }
    }

    async fn run_batch(&mut self, stmts: &[Statement]) -> Vec<Result<ExecResult>> {
        self.in_batch = true;
        let mut results = Vec::with_capacity(stmts.len());
        for stmt in stmts {
            let result = self.execute_one(stmt, &[]).await;
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        if let Err(e) = self.end_batch().await {
            results.push(Err(e));
        }
        results
    }

    /// The session's transaction state, for ReadyForQuery.
    pub fn txn_status(&self) -> TxnStatus {
        self.state.status()
    }
}

impl crate::Session {
    /// Loads the tables a statement names and plans it; returns the plan and parameter types.
    pub(crate) async fn plan(
        txn: &mut dyn KvTxn,
        stmt: &ast::Statement,
        declared: &[Option<DataType>],
    ) -> Result<(Plan, Vec<DataType>)> {
        let (tables, views) = crate::planner::view::load_relations(txn, stmt).await?;
        let mut planner = Planner::new(&tables, declared).with_views(views);
        let plan = planner.plan(stmt)?;
        let plan = optimizer::optimize(plan, planner.param_hints());
        Ok((plan, planner.params()))
    }

    /// Runs a planned statement (or EXPLAIN) in a transaction that sees schema `generation`
    /// (None: unknown, plan from the catalog).
    async fn run_in(
        &self,
        txn: &mut dyn KvTxn,
        stmt: &Statement,
        generation: Option<u64>,
        params: &[Value],
        now: &Value,
    ) -> Result<ExecResult> {
        txn.statement_start();
        txn.set_lock_timeout(self.settings.lock_timeout());
        if let ast::Statement::Explain {
            statement,
            analyze,
            options,
            format,
            ..
        } = &*stmt.ast
        {
            if options.is_some() || format.is_some() {
                return Err(Error::NotSupported(
                    "EXPLAIN options are not supported yet".into(),
                ));
            }
            let (plan, types) = Self::plan(txn, statement, &[]).await?;
            if *analyze {
                let plan = exec::bind_params(plan, &types, params, now)?;
                let lines = exec::explain_analyze(plan, txn, &self.engine.memory).await?;
                return Ok(text_rows("QUERY PLAN", lines));
            }
            return Ok(text_rows(
                "QUERY PLAN",
                plan.explain().lines().map(String::from),
            ));
        }
        let (plan, types) = Self::plan_cached(txn, stmt, generation).await?;
        let plan = exec::bind_params(plan, &types, params, now)?;
        let mut txn = exec::sequence::WithSequences::new(txn, &self.sequences);
        exec::execute(plan, &mut txn, &self.engine.rowids, &self.engine.memory).await
    }

    /// Whether a statement must run in a transaction (everything but queries without tables).
    pub(crate) fn needs_txn(stmt: &ast::Statement) -> bool {
        let query = match stmt {
            ast::Statement::Explain { statement, .. } => {
                matches!(**statement, ast::Statement::Query(_))
            }
            s => matches!(s, ast::Statement::Query(_)),
        };
        !query || !referenced_tables(stmt).is_empty()
    }

    /// Runs a statement in an implicit transaction, retrying serialization failures.
    async fn run_implicit(&self, stmt: &Statement, params: &[Value]) -> Result<ExecResult> {
        if let ast::Statement::CreateIndex(c) = &*stmt.ast {
            let spec = crate::planner::ddl::index_spec(c)?;
            return exec::index::create_index_online(&self.engine, &spec).await;
        }
        if !stmt.needs_txn {
            // Without tables the plan does not depend on the schema.
            let generation = self.engine.schema.stable();
            return self
                .run_in(&mut NoTxn, stmt, generation, params, &now())
                .await;
        }
        let ddl = changes_schema(&stmt.ast);
        let mut attempt = 0;
        loop {
            // The first attempt takes no row locks (they would be released at once, and each
            // costs a replicated command); a retry after a conflict locks, queueing behind the
            // other writers instead of racing them again.
            // The statement is the whole transaction: an INSERT's keys are checked where its
            // writes apply, with no read before them.
            let opts = TxnOptions {
                isolation: self.settings.default_isolation(),
                optimistic: attempt == 0,
                defer_checks: true,
                ..TxnOptions::default()
            };
            let (mut txn, seen) = self.engine.begin(opts).await?;
            let generation = seen.filter(|_| !ddl);
            let result = self
                .run_in(txn.as_mut(), stmt, generation, params, &now())
                .await;
            let result = match result {
                Ok(r) => {
                    let _commit = ddl.then(|| self.engine.schema.committing());
                    match txn.commit().await {
                        Ok(()) => Ok(r),
                        Err(txn::Error::Duplicate { key }) => {
                            Err(exec::duplicate_at_commit(self.engine.store.as_ref(), &key).await)
                        }
                        Err(e) => Err(Error::from(e)),
                    }
                }
                Err(e) => {
                    // The statement's error is what the client needs; a failed rollback only
                    // leaves locks that expire.
                    let _ = txn.rollback().await;
                    Err(e)
                }
            };
            match result {
                Err(Error::Serialization(_)) if attempt < IMPLICIT_RETRIES => attempt += 1,
                r => return r,
            }
        }
    }

    /// Dispatches one statement (the body of `Session::execute`).
    pub(crate) async fn execute_statement(
        &mut self,
        stmt: &Statement,
        params: &[Value],
    ) -> Result<ExecResult> {
        let ast = &*stmt.ast;
        tracing::debug!(statement = %ast, params = params.len(), status = ?self.state.status(), "execute");
        match ast {
            ast::Statement::Commit { chain: false, .. } => return self.commit().await,
            ast::Statement::Rollback {
                chain: false,
                savepoint: None,
            } => return self.rollback().await,
            ast::Statement::Rollback {
                chain: false,
                savepoint: Some(name),
            } => return self.rollback_to(&savepoint_name(name)).await,
            _ if self.state.is_failed() => return Err(Error::InFailedTransaction),
            ast::Statement::StartTransaction {
                modes,
                statements,
                exception: None,
                ..
            } if statements.is_empty() => {
                return self.begin(modes).await;
            }
            _ => {}
        }
        let result = match ast {
            s if crate::prepared::is_prepared_command(s) => self.prepared_command(s, params).await,
            ast::Statement::Set(set) => self.set(set).map(|()| command("SET")),
            ast::Statement::ShowVariable { variable }
                if crate::show_cluster::parse(variable).is_some() =>
            {
                match crate::show_cluster::parse(variable).expect("checked") {
                    Ok(show) => crate::show_cluster::run(&self.engine, &show).await,
                    Err(e) => Err(e),
                }
            }
            ast::Statement::ShowVariable { variable } => self.show(variable),
            ast::Statement::Savepoint { name } => self.savepoint(savepoint_name(name)),
            ast::Statement::ReleaseSavepoint { name } => self.release(&savepoint_name(name)),
            _ => match std::mem::take(&mut self.state) {
                TxnState::InBlock(mut block) => {
                    let r = block.run(self, stmt, params).await;
                    self.state = TxnState::InBlock(block);
                    r
                }
                TxnState::Idle if self.in_batch && stmt.needs_txn => {
                    let opts = TxnOptions {
                        isolation: self.settings.default_isolation(),
                        ..TxnOptions::default()
                    };
                    match self.engine.begin(opts).await {
                        Ok((txn, seen)) => {
                            let mut block = Block::new(txn, true, seen);
                            let r = block.run(self, stmt, params).await;
                            self.state = TxnState::InBlock(block);
                            r
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                state => {
                    self.state = state;
                    self.run_implicit(stmt, params).await
                }
            },
        };
        if let Err(e) = &result {
            self.fail(e).await;
        }
        result
    }

    /// Runs `ALTER TABLE ... SPLIT AT <query>`: evaluates the query's rows (primary-key
    /// prefixes) and splits the table's ranges at each. Not in a transaction block (25001).
    pub(crate) async fn execute_split_at(
        &mut self,
        split: &crate::split_at::SplitAt,
        query: &Statement,
        params: &[Value],
    ) -> Result<ExecResult> {
        match self.state.status() {
            TxnStatus::Failed => return Err(Error::InFailedTransaction),
            TxnStatus::InBlock => {
                let e = Error::ActiveTransaction(
                    "ALTER TABLE ... SPLIT AT cannot run inside a transaction block".into(),
                );
                self.fail(&e).await;
                return Err(e);
            }
            TxnStatus::Idle => {}
        }
        let rows = match self.run_implicit(query, params).await? {
            ExecResult::Rows { rows, .. } => rows,
            _ => {
                return Err(Error::Syntax(
                    "SPLIT AT expects a query such as VALUES (...)".into(),
                ));
            }
        };
        let name = split.table.to_string();
        let opts = TxnOptions {
            read_only: true,
            ..TxnOptions::default()
        };
        let mut txn = self.engine.store.begin(opts).await?;
        let table = crate::catalog::get_table(txn.as_mut(), &name).await;
        let _ = txn.rollback().await;
        let table = table?
            .ok_or_else(|| Error::UndefinedTable(format!("relation \"{name}\" does not exist")))?;
        let mut splits = Vec::with_capacity(rows.len());
        for row in rows {
            let prefix = crate::split_at::key_prefix(&table, row)?;
            let key = crate::exec::rows::primary_key(&table, &prefix);
            let range_id = self
                .engine
                .store
                .split_at(&key)
                .await
                .map_err(|e| match e {
                    txn::Error::InvalidArgument(m) => Error::NotSupported(m),
                    e => e.into(),
                })?;
            let mut pretty = format!("/Table/{}/{}", table.id, crate::catalog::PRIMARY_INDEX_ID);
            for v in &prefix {
                pretty.push_str(&format!("/{v}"));
            }
            splits.push((range_id, pretty));
        }
        Ok(crate::split_at::result(splits))
    }

    /// Runs a SELECT ... AS OF SYSTEM TIME in a read-only transaction of its own at that
    /// timestamp. Not in an explicit block (0A000): the block reads at its own timestamp.
    pub(crate) async fn execute_as_of(
        &mut self,
        stmt: &Statement,
        as_of: &AsOf,
        params: &[Value],
    ) -> Result<ExecResult> {
        let result = match self.state.status() {
            TxnStatus::Failed => return Err(Error::InFailedTransaction),
            TxnStatus::InBlock => Err(Error::NotSupported(
                "AS OF SYSTEM TIME is not supported inside a transaction block".into(),
            )),
            TxnStatus::Idle => self.run_as_of(stmt, as_of, params).await,
        };
        if let Err(e) = &result {
            self.fail(e).await;
        }
        result
    }

    async fn run_as_of(
        &self,
        stmt: &Statement,
        as_of: &AsOf,
        params: &[Value],
    ) -> Result<ExecResult> {
        let ts = as_of.resolve(self.engine.store.now().await?);
        let opts = TxnOptions {
            isolation: self.settings.default_isolation(),
            read_only: true,
            as_of: Some(ts),
            ..TxnOptions::default()
        };
        let mut txn = self.engine.store.begin(opts).await.map_err(|e| match e {
            txn::Error::InvalidArgument(_) => Error::InvalidParameter(format!(
                "AS OF SYSTEM TIME: timestamp {ts} is in the future"
            )),
            e => e.into(),
        })?;
        // Its snapshot is not the present one: plan from the catalog it sees.
        let result = self.run_in(txn.as_mut(), stmt, None, params, &now()).await;
        let _ = txn.rollback().await;
        result
    }

    /// Handles a statement's error: an implicit block is rolled back; an explicit block moves
    /// to the failed state, keeping its transaction if a savepoint can recover it.
    async fn fail(&mut self, err: &Error) {
        self.state = match std::mem::take(&mut self.state) {
            TxnState::InBlock(block) if block.implicit => {
                let _ = block.txn.rollback().await;
                TxnState::Idle
            }
            TxnState::InBlock(block) if !block.savepoints.is_empty() && recoverable(err) => {
                TxnState::failed(Some(block), false)
            }
            TxnState::InBlock(block) => {
                let lost = !block.savepoints.is_empty();
                let _ = block.txn.rollback().await;
                TxnState::failed(None, lost)
            }
            state => state,
        };
    }

    /// SAVEPOINT: pushes a savepoint of the block's transaction.
    fn savepoint(&mut self, name: String) -> Result<ExecResult> {
        match &mut self.state {
            TxnState::InBlock(block) if !block.implicit => {
                let savepoint = block.txn.savepoint();
                block.savepoints.push((name, savepoint));
                Ok(command("SAVEPOINT"))
            }
            _ => Err(outside_block("SAVEPOINT")),
        }
    }

    /// RELEASE SAVEPOINT: forgets the most recent savepoint of that name and all later ones.
    fn release(&mut self, name: &str) -> Result<ExecResult> {
        match &mut self.state {
            TxnState::InBlock(block) if !block.implicit => {
                let i = block.find(name)?;
                block.savepoints.truncate(i);
                Ok(command("RELEASE"))
            }
            _ => Err(outside_block("RELEASE SAVEPOINT")),
        }
    }

    /// ROLLBACK TO SAVEPOINT: undoes the block's work since the most recent savepoint of that
    /// name (which stays), forgets later savepoints, and leaves the failed state.
    async fn rollback_to(&mut self, name: &str) -> Result<ExecResult> {
        let block = match std::mem::take(&mut self.state) {
            TxnState::InBlock(block) if !block.implicit => block,
            TxnState::Failed {
                block: Some(block), ..
            } => block,
            TxnState::Failed {
                block: None,
                lost_savepoints,
            } => {
                self.state = TxnState::failed(None, lost_savepoints);
                if lost_savepoints {
                    return Err(Error::Serialization(
                        "cannot roll back to a savepoint after a serialization failure or an \
                         unknown commit outcome; roll back the transaction and retry it"
                            .into(),
                    ));
                }
                return Err(no_savepoint(name));
            }
            state => {
                self.state = state;
                let err = outside_block("ROLLBACK TO SAVEPOINT");
                self.fail(&err).await;
                return Err(err);
            }
        };
        let was_failed = std::mem::replace(&mut self.state, TxnState::InBlock(block)).is_failed();
        let TxnState::InBlock(block) = &mut self.state else {
            unreachable!("just set");
        };
        let i = match block.find(name) {
            Ok(i) => i,
            Err(e) => {
                if was_failed {
                    let TxnState::InBlock(block) = std::mem::take(&mut self.state) else {
                        unreachable!("just set");
                    };
                    self.state = TxnState::failed(Some(block), false);
                } else {
                    self.fail(&e).await;
                }
                return Err(e);
            }
        };
        block.savepoints.truncate(i + 1);
        let result = block.txn.rollback_to(&block.savepoints[i].1).await;
        if let Err(e) = result {
            let e = Error::from(e);
            // The transaction may hold locks it failed to release: give it up.
            if let TxnState::InBlock(block) = std::mem::take(&mut self.state) {
                let _ = block.txn.rollback().await;
            }
            self.state = TxnState::failed(None, true);
            return Err(e);
        }
        Ok(command("ROLLBACK"))
    }

    fn show(&self, variable: &[ast::Ident]) -> Result<ExecResult> {
        let name = show_name(variable);
        if name == "all" {
            return Err(Error::NotSupported("SHOW ALL is not supported yet".into()));
        }
        let value = match (&self.state, name.as_str()) {
            (TxnState::InBlock(block), "transaction_isolation") => {
                isolation_name(block.txn.isolation()).to_string()
            }
            _ => self.settings.show(&name)?,
        };
        Ok(text_rows(&name, [value]))
    }

    /// SET: session variables, and the transaction's isolation level (SET TRANSACTION, or SET
    /// transaction_isolation), which must come before the transaction's first query.
    fn set(&mut self, set: &ast::Set) -> Result<()> {
        let level = match set {
            ast::Set::SetTransaction {
                modes,
                session: true,
                ..
            } => {
                let level = txn_options(modes, self.settings.default_isolation())?.isolation;
                self.settings.0.insert(
                    "default_transaction_isolation".into(),
                    isolation_name(level).into(),
                );
                return Ok(());
            }
            ast::Set::SetTransaction { modes, .. } => {
                txn_options(modes, self.settings.default_isolation())?.isolation
            }
            ast::Set::SingleAssignment {
                variable, values, ..
            } if variable
                .to_string()
                .eq_ignore_ascii_case("transaction_isolation") =>
            {
                let value = values.iter().map(set_value).collect::<Vec<_>>().join(" ");
                parse_isolation(&value)?
            }
            _ => return self.settings.set(set),
        };
        match &mut self.state {
            TxnState::InBlock(block) => {
                if block.txn.set_isolation(level) {
                    Ok(())
                } else {
                    Err(Error::ActiveTransaction(
                        "SET TRANSACTION ISOLATION LEVEL must be called before any query".into(),
                    ))
                }
            }
            // Outside a block it has no effect, as in PostgreSQL (which warns).
            _ => Ok(()),
        }
    }

    async fn begin(&mut self, modes: &[ast::TransactionMode]) -> Result<ExecResult> {
        let opts = txn_options(modes, self.settings.default_isolation())?;
        match &mut self.state {
            TxnState::Idle => {
                let (txn, seen) = self.engine.begin(opts).await?;
                self.state = TxnState::InBlock(Block::new(txn, false, seen));
            }
            // BEGIN in a batch makes its implicit block explicit: the statements before it
            // belong to the block, as in PostgreSQL.
            TxnState::InBlock(block) if block.implicit => {
                if !modes.is_empty() && !block.txn.set_isolation(opts.isolation) {
                    return Err(Error::ActiveTransaction(
                        "SET TRANSACTION ISOLATION LEVEL must be called before any query".into(),
                    ));
                }
                block.implicit = false;
            }
            // PostgreSQL only warns about BEGIN inside a block; so do we (silently).
            _ => {}
        }
        Ok(command("BEGIN"))
    }

    async fn commit(&mut self) -> Result<ExecResult> {
        match std::mem::take(&mut self.state) {
            TxnState::InBlock(block) => {
                block.commit(&self.engine.schema).await?;
                Ok(command("COMMIT"))
            }
            TxnState::Failed { block, .. } => {
                if let Some(block) = block {
                    let _ = block.txn.rollback().await;
                }
                Ok(command("ROLLBACK"))
            }
            TxnState::Idle => Ok(command("COMMIT")),
        }
    }

    async fn rollback(&mut self) -> Result<ExecResult> {
        match std::mem::take(&mut self.state) {
            TxnState::InBlock(block)
            | TxnState::Failed {
                block: Some(block), ..
            } => block.txn.rollback().await?,
            _ => {}
        }
        Ok(command("ROLLBACK"))
    }

    /// Ends a batch: commits its implicit block, if one is open.
    pub(crate) async fn end_batch(&mut self) -> Result<()> {
        self.in_batch = false;
        match std::mem::take(&mut self.state) {
            TxnState::InBlock(block) if block.implicit => {
                Ok(block.commit(&self.engine.schema).await?)
            }
            state => {
                self.state = state;
                Ok(())
            }
        }
    }

    /// Describes a statement (the body of `Session::describe`).
    pub(crate) async fn describe_statement(
        &mut self,
        stmt: &ast::Statement,
        declared: &[Option<DataType>],
    ) -> Result<Description> {
        let declared_only = || {
            declared
                .iter()
                .map(|d| d.unwrap_or(DataType::Text))
                .collect()
        };
        match stmt {
            s if is_transaction_exit(s) => {
                return Ok(Description {
                    params: declared_only(),
                    columns: vec![],
                });
            }
            _ if self.state.is_failed() => return Err(Error::InFailedTransaction),
            ast::Statement::StartTransaction { .. }
            | ast::Statement::Set(_)
            | ast::Statement::Copy { .. }
            | ast::Statement::Savepoint { .. }
            | ast::Statement::ReleaseSavepoint { .. } => {
                return Ok(Description {
                    params: declared_only(),
                    columns: vec![],
                });
            }
            s if crate::prepared::is_prepared_command(s) => {
                return self.describe_prepared_command(s, declared);
            }
            ast::Statement::ShowVariable { variable }
                if crate::show_cluster::parse(variable).is_some() =>
            {
                let show = crate::show_cluster::parse(variable).expect("checked")?;
                return Ok(Description {
                    params: declared_only(),
                    columns: crate::show_cluster::columns(&show),
                });
            }
            ast::Statement::ShowVariable { variable } => {
                let columns = vec![Column {
                    name: show_name(variable),
                    data_type: DataType::Text,
                }];
                return Ok(Description {
                    params: declared_only(),
                    columns,
                });
            }
            _ => {}
        }
        let result = match std::mem::take(&mut self.state) {
            TxnState::InBlock(mut block) => {
                let r = Self::plan_for_describe(block.txn.as_mut(), stmt, declared).await;
                self.state = TxnState::InBlock(block);
                r
            }
            state => {
                self.state = state;
                self.describe_implicit(stmt, declared).await
            }
        };
        if let Err(e) = &result {
            self.fail(e).await;
        }
        result
    }

    async fn describe_implicit(
        &self,
        stmt: &ast::Statement,
        declared: &[Option<DataType>],
    ) -> Result<Description> {
        if !Self::needs_txn(stmt) {
            return Self::plan_for_describe(&mut NoTxn, stmt, declared).await;
        }
        let opts = TxnOptions {
            read_only: true,
            ..TxnOptions::default()
        };
        let mut txn = self.engine.store.begin(opts).await?;
        let r = Self::plan_for_describe(txn.as_mut(), stmt, declared).await;
        let _ = txn.rollback().await;
        r
    }

    async fn plan_for_describe(
        txn: &mut dyn KvTxn,
        stmt: &ast::Statement,
        declared: &[Option<DataType>],
    ) -> Result<Description> {
        if let ast::Statement::Explain { statement, .. } = stmt {
            let (_, params) = Self::plan(txn, statement, declared).await?;
            let columns = vec![Column {
                name: "QUERY PLAN".into(),
                data_type: DataType::Text,
            }];
            return Ok(Description { params, columns });
        }
        let (plan, params) = Self::plan(txn, stmt, declared).await?;
        Ok(Description {
            params,
            columns: plan.columns(),
        })
    }
}
