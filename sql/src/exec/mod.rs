//! The executor: runs a [`Plan`] inside a transaction.
//!
//! Queries run as pull-based operators over batches of rows ([`ops`]); table reads are point
//! gets or span scans in batches of [`ops::SCAN_BATCH`] rows and more (doubling up to
//! [`ops::MAX_SCAN_BATCH`]) that resume after the last key returned.
//! Parameters are substituted as constants before execution ([`bind_params`]).

mod aggregate;
mod analyze;
mod array;
pub(crate) mod cursor;
mod datetime;
pub(crate) mod eval;
mod format;
mod functions;
pub(crate) mod index;
mod index_scan;
pub(crate) mod interrupt;
mod jsonb;
mod jsonb_table;
mod lateral;
mod lookup_join;
pub(crate) mod memory;
pub(crate) mod ops;
pub(crate) mod rows;
mod schema;
pub(crate) mod sequence;
mod series;
mod setops;
mod srf;
mod subquery;
mod to_char;
mod to_char_number;
mod to_timestamp;
mod upsert;
mod window;
mod write;
pub(crate) use analyze::explain_analyze;
pub(crate) use write::duplicate_at_commit;

use std::sync::{Arc, Mutex};

use crate::catalog::{self, Table};
use crate::plan::{Expr, Function, Plan};
use crate::store::{KvTxn, Store};
use crate::{DataType, Error, ExecResult, Result, Value};

/// How many hidden row ids one reservation takes.
const ROWID_BLOCK: i64 = 1000;

/// Hands out hidden row ids, reserving blocks from the catalog counter in transactions of
/// their own (non-transactional, like a sequence: a rolled-back insert leaves a gap).
pub(crate) struct RowIds {
    store: Arc<dyn Store>,
    /// The next id and the end of the reserved block.
    block: Mutex<(i64, i64)>,
}

impl RowIds {
    pub(crate) fn new(store: Arc<dyn Store>) -> RowIds {
        RowIds {
            store,
            block: Mutex::new((0, 0)),
        }
    }

    fn take(&self) -> Option<i64> {
        let mut b = self.block.lock().unwrap_or_else(|e| e.into_inner());
        (b.0 < b.1).then(|| {
            b.0 += 1;
            b.0 - 1
        })
    }

    /// The next row id.
    pub(crate) async fn next(&self) -> Result<i64> {
        if let Some(id) = self.take() {
            return Ok(id);
        }
        let mut attempt = 0;
        let first = loop {
            let mut txn = self.store.begin(txn::TxnOptions::default()).await?;
            let first = catalog::reserve_rowids(txn.as_mut(), ROWID_BLOCK).await?;
            match txn.commit().await {
                Ok(()) => break first,
                Err(txn::Error::Serialization(_)) if attempt < 10 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        };
        *self.block.lock().unwrap_or_else(|e| e.into_inner()) = (first + 1, first + ROWID_BLOCK);
        Ok(first)
    }
}

/// Replaces parameters with their values, cast to the parameters' types, and `now()` with
/// `now` (the start of the statement's transaction).
pub(crate) fn bind_params(
    plan: Plan,
    types: &[DataType],
    params: &[Value],
    now: &Value,
) -> Result<Plan> {
    if params.len() < types.len() {
        return Err(Error::InvalidParameter(format!(
            "bind message supplies {} parameters, but prepared statement requires {}",
            params.len(),
            types.len()
        )));
    }
    let values: Vec<Value> = params
        .iter()
        .zip(types)
        // A parameter's length is applied where its value is stored or cast, not here.
        .map(|(v, t)| v.clone().cast(t.without_typmod()))
        .collect::<Result<_>>()?;
    Ok(plan.map_exprs(&mut |e| {
        e.transform(&mut |e| match e {
            Expr::Param(i) => Expr::Constant(values.get(i).cloned().unwrap_or(Value::Null)),
            Expr::Function(Function::Now, _) => Expr::Constant(now.clone()),
            e => e,
        })
    }))
}

fn command(tag: &str, rows: Option<u64>) -> ExecResult {
    ExecResult::Command {
        tag: tag.into(),
        rows,
    }
}

/// Executes a plan whose parameters are bound.
pub(crate) async fn execute(
    plan: Plan,
    txn: &mut dyn KvTxn,
    rowids: &RowIds,
    memory: &Arc<memory::Pool>,
) -> Result<ExecResult> {
    match plan {
        Plan::Select(node) => {
            let columns = node.columns();
            // The statement's reservations (its operators' and its buffered result's) last
            // while it runs.
            let account = memory::Account::new(memory);
            let op = memory::building(&account, || ops::build(node))?;
            let budget = memory::building(&account, memory::Budget::current);
            let rows = ops::collect(op, txn, &budget).await?;
            Ok(ExecResult::Rows { columns, rows })
        }
        Plan::LockingSelect { table, node } => {
            let mut columns = node.columns();
            let keys = table.primary_key.len();
            columns.truncate(columns.len() - keys);
            let rows = write::select_and_lock(txn, &table, &node).await?;
            Ok(ExecResult::Rows { columns, rows })
        }
        Plan::Insert {
            table,
            columns,
            source,
            on_conflict,
        } => {
            let n = match on_conflict {
                Some(c) => upsert::upsert(txn, rowids, &table, &columns, source, &c, None).await?,
                None => write::insert(txn, rowids, &table, &columns, source, None).await?,
            };
            Ok(command("INSERT", Some(n)))
        }
        Plan::Update { table, source, set } => Ok(command(
            "UPDATE",
            Some(write::update(txn, &table, source, &set, None).await?),
        )),
        Plan::Delete { table, source } => Ok(command(
            "DELETE",
            Some(write::delete(txn, &table, source, None).await?),
        )),
        Plan::CreateTable {
            table,
            if_not_exists,
            sequences,
        } => create_table(txn, table, if_not_exists, sequences).await,
        Plan::DropTable { names, if_exists } => {
            for name in &names {
                match catalog::get_table(txn, name).await? {
                    Some(t) => catalog::drop_table(txn, &t).await?,
                    None if if_exists => {}
                    None => {
                        return Err(Error::UndefinedTable(format!(
                            "table \"{name}\" does not exist"
                        )));
                    }
                }
            }
            Ok(command("DROP TABLE", None))
        }
        Plan::CreateIndex(spec) => index::create_index(txn, &spec).await,
        Plan::DropIndex { names, if_exists } => index::drop_indexes(txn, &names, if_exists).await,
        Plan::CreateView { view, or_replace } => {
            let exists = catalog::get_view(txn, &view.name).await?.is_some();
            if !(exists && or_replace) {
                catalog::must_be_new_relation(txn, &view.name).await?;
            }
            catalog::put_view(txn, &view)?;
            Ok(command("CREATE VIEW", None))
        }
        Plan::DropView { names, if_exists } => {
            for name in &names {
                match catalog::get_view(txn, name).await? {
                    Some(_) => catalog::drop_view(txn, name)?,
                    None if if_exists => {}
                    None => {
                        return Err(Error::UndefinedTable(format!(
                            "view \"{name}\" does not exist"
                        )));
                    }
                }
            }
            Ok(command("DROP VIEW", None))
        }
        Plan::Schema(s) => schema::execute(s, txn, rowids).await,
        Plan::Returning {
            plan,
            exprs,
            columns,
        } => {
            // The written rows and the result are reserved while the statement runs.
            let account = memory::Account::new(memory);
            let budget = memory::building(&account, memory::Budget::current);
            let mut written = write::Returned::new(budget.clone());
            let kept = Some(&mut written);
            match *plan {
                Plan::Insert {
                    table,
                    columns,
                    source,
                    on_conflict: Some(c),
                } => {
                    upsert::upsert(txn, rowids, &table, &columns, source, &c, kept).await?;
                }
                Plan::Insert {
                    table,
                    columns,
                    source,
                    on_conflict: None,
                } => {
                    write::insert(txn, rowids, &table, &columns, source, kept).await?;
                }
                Plan::Update { table, source, set } => {
                    write::update(txn, &table, source, &set, kept).await?;
                }
                Plan::Delete { table, source } => {
                    write::delete(txn, &table, source, kept).await?;
                }
                _ => {
                    return Err(Error::Internal(
                        "RETURNING of a statement that writes no rows".into(),
                    ));
                }
            }
            let mut out = Vec::with_capacity(written.rows.len());
            for row in &written.rows {
                let mut values = Vec::with_capacity(exprs.len());
                for e in &exprs {
                    values.push(subquery::eval_row(e, row, txn).await?);
                }
                budget.reserve(memory::row_bytes(&values))?;
                out.push(values);
            }
            Ok(ExecResult::Rows { columns, rows: out })
        }
    }
}

async fn create_table(
    txn: &mut dyn KvTxn,
    table: Table,
    if_not_exists: bool,
    sequences: Vec<catalog::Sequence>,
) -> Result<ExecResult> {
    if if_not_exists && catalog::get_table(txn, &table.name).await?.is_some() {
        return Ok(command("CREATE TABLE", None));
    }
    catalog::create_table(txn, table).await?;
    for seq in sequences {
        catalog::sequence::create_sequence(txn, seq).await?;
    }
    Ok(command("CREATE TABLE", None))
}
