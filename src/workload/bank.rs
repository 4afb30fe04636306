//! The `bank` workload: transfers between two random accounts of
//! `bank (id INT PRIMARY KEY, balance BIGINT)`.
//!
//! Each transfer reads both balances and writes both back inside one REPEATABLE READ transaction
//! (snapshot isolation on both TinkerDB and PostgreSQL), skipping the transfer when the source
//! cannot cover it. Because the new balances are computed by the client from what it read, a lost
//! update would show up as a changed total: the end-of-run check is a real test of isolation.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, IsolationLevel, Statement};

use super::rng::Rng;
use super::{Options, Report, Workload};

/// The largest amount moved by one transfer.
pub const MAX_TRANSFER: i64 = 100;

/// The result of the end-of-run check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invariant {
    /// Whether the total is unchanged, no balance is negative and no account is missing.
    pub ok: bool,
    /// The total before the run.
    pub expected_total: i64,
    /// The total after the run.
    pub actual_total: i64,
    /// Accounts found after the run.
    pub accounts: u64,
    /// Accounts expected.
    pub expected_accounts: u64,
    /// Accounts with a negative balance.
    pub negative: u64,
}

impl Invariant {
    /// A one-line description for the summary.
    pub fn describe(&self) -> String {
        format!(
            "{}: total {} (expected {}), {} of {} accounts, {} negative",
            if self.ok { "ok" } else { "BROKEN" },
            self.actual_total,
            self.expected_total,
            self.accounts,
            self.expected_accounts,
            self.negative
        )
    }
}

/// Creates `bank` with `opts.accounts` accounts holding `opts.initial_balance` each.
pub async fn init(opts: &Options) -> Result<()> {
    let client = super::connect(opts.url(0)).await?;
    client
        .batch_execute("DROP TABLE IF EXISTS bank")
        .await
        .context("dropping bank")?;
    client
        .batch_execute("CREATE TABLE bank (id INT PRIMARY KEY, balance BIGINT)")
        .await
        .context("creating bank")?;
    let balance = opts.initial_balance;
    super::load(
        opts,
        opts.accounts,
        move |client: Arc<Client>, start, end| async move {
            let rows = (end - start) as usize;
            let sql = super::insert_sql("bank", &["id", "balance"], rows);
            let types: Vec<Type> = (0..rows).flat_map(|_| [Type::INT4, Type::INT8]).collect();
            let statement = client.prepare_typed(&sql, &types).await?;
            let ids: Vec<i32> = (start..end).map(|id| id as i32).collect();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
            for id in &ids {
                params.push(id);
                params.push(&balance);
            }
            client
                .execute(&statement, &params)
                .await
                .with_context(|| format!("loading bank accounts {start}..{end}"))?;
            Ok(())
        },
    )
    .await
}

/// Runs transfers, then checks the invariant against the total found before the run.
pub async fn run(opts: &Options) -> Result<Report> {
    if opts.accounts > i32::MAX as u64 {
        anyhow::bail!("--accounts must fit in an INT");
    }
    let client = super::connect(opts.url(0)).await?;
    let (before, _, _) = balances(&client)
        .await
        .context("reading balances before the run")?;
    let workload = Bank {
        accounts: opts.accounts,
    };
    let mut report = super::drive("bank".into(), Arc::new(workload), opts).await?;
    let (total, accounts, negative) = balances(&client)
        .await
        .context("reading balances after the run")?;
    report.invariant = Some(Invariant {
        ok: total == before && accounts == opts.accounts && negative == 0,
        expected_total: before,
        actual_total: total,
        accounts,
        expected_accounts: opts.accounts,
        negative,
    });
    Ok(report)
}

/// The total balance, the number of accounts and how many are negative, from one snapshot.
async fn balances(client: &Client) -> Result<(i64, u64, u64)> {
    // Summed by the client: aggregates beyond count(*) are not something every target supports.
    let rows = client
        .query("SELECT id, balance FROM bank ORDER BY id", &[])
        .await?;
    let mut total: i64 = 0;
    let mut negative = 0;
    for row in &rows {
        let balance: i64 = row.try_get(1)?;
        total = total
            .checked_add(balance)
            .context("the total balance overflows")?;
        negative += u64::from(balance < 0);
    }
    Ok((total, rows.len() as u64, negative))
}

/// The `bank` workload.
#[derive(Debug)]
pub struct Bank {
    accounts: u64,
}

/// One transfer.
#[derive(Debug)]
pub struct Transfer {
    from: i32,
    to: i32,
    amount: i64,
}

/// The prepared statements of one connection.
#[derive(Debug)]
pub struct Statements {
    read: Statement,
    write: Statement,
}

impl Workload for Bank {
    type Op = Transfer;
    type Statements = Statements;

    async fn prepare(&self, client: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            read: client
                .prepare_typed("SELECT balance FROM bank WHERE id = $1", &[Type::INT4])
                .await?,
            write: client
                .prepare_typed(
                    "UPDATE bank SET balance = $1 WHERE id = $2",
                    &[Type::INT8, Type::INT4],
                )
                .await?,
        })
    }

    fn next_op(&self, rng: &mut Rng) -> Transfer {
        let from = rng.below(self.accounts);
        // Any other account, uniformly.
        let to = (from + 1 + rng.below(self.accounts - 1)) % self.accounts;
        Transfer {
            from: from as i32,
            to: to as i32,
            amount: 1 + rng.below(MAX_TRANSFER as u64) as i64,
        }
    }

    async fn execute(
        &self,
        client: &mut Client,
        statements: &Statements,
        op: &Transfer,
    ) -> Result<(), tokio_postgres::Error> {
        // Dropping the transaction on an error rolls it back.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let from: i64 = tx
            .query_one(&statements.read, &[&op.from])
            .await?
            .try_get(0)?;
        let to: i64 = tx
            .query_one(&statements.read, &[&op.to])
            .await?
            .try_get(0)?;
        if from >= op.amount {
            tx.execute(&statements.write, &[&(from - op.amount), &op.from])
                .await?;
            tx.execute(&statements.write, &[&(to + op.amount), &op.to])
                .await?;
        }
        tx.commit().await
    }
}
