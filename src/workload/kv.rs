//! The `kv` workload: uniform point reads and single-row updates on
//! `kv (k BIGINT PRIMARY KEY, v TEXT)`.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

use super::rng::Rng;
use super::{Options, Report, Workload};

/// The default percentage of reads.
pub const DEFAULT_READ_PERCENT: u8 = 95;
/// The length of every value, in bytes.
pub const VALUE_BYTES: usize = 64;

/// Creates `kv` and loads `opts.rows` rows.
pub async fn init(opts: &Options) -> Result<()> {
    let client = super::connect(opts.url(0)).await?;
    client
        .batch_execute("DROP TABLE IF EXISTS kv")
        .await
        .context("dropping kv")?;
    client
        .batch_execute("CREATE TABLE kv (k BIGINT PRIMARY KEY, v TEXT)")
        .await
        .context("creating kv")?;
    let seed = opts.seed;
    super::load(
        opts,
        opts.rows,
        move |client: Arc<Client>, start, end| async move {
            let rows = (end - start) as usize;
            let sql = super::insert_sql("kv", &["k", "v"], rows);
            let types: Vec<Type> = (0..rows).flat_map(|_| [Type::INT8, Type::TEXT]).collect();
            let statement = client.prepare_typed(&sql, &types).await?;
            let mut rng = Rng::new(seed ^ start);
            let keys: Vec<i64> = (start..end).map(|k| k as i64).collect();
            let values: Vec<String> = keys.iter().map(|_| rng.text(VALUE_BYTES)).collect();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
            for (k, v) in keys.iter().zip(&values) {
                params.push(k);
                params.push(v);
            }
            client
                .execute(&statement, &params)
                .await
                .with_context(|| format!("loading kv rows {start}..{end}"))?;
            Ok(())
        },
    )
    .await
}

/// Runs the `kv` workload.
pub async fn run(opts: &Options) -> Result<Report> {
    let workload = Kv {
        rows: opts.rows,
        read_percent: opts.read_percent.unwrap_or(DEFAULT_READ_PERCENT),
    };
    let name = format!("kv-{}r", workload.read_percent);
    super::drive(name, Arc::new(workload), opts).await
}

/// The `kv` workload.
#[derive(Debug)]
pub struct Kv {
    rows: u64,
    read_percent: u8,
}

/// One `kv` operation.
#[derive(Debug)]
pub enum Op {
    /// Read the value of a key.
    Read(i64),
    /// Overwrite the value of an existing key.
    Write(i64, String),
}

/// The prepared statements of one connection.
#[derive(Debug)]
pub struct Statements {
    read: Statement,
    write: Statement,
}

impl Workload for Kv {
    type Op = Op;
    type Statements = Statements;

    async fn prepare(&self, client: &Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            read: client
                .prepare_typed("SELECT v FROM kv WHERE k = $1", &[Type::INT8])
                .await?,
            write: client
                .prepare_typed(
                    "UPDATE kv SET v = $1 WHERE k = $2",
                    &[Type::TEXT, Type::INT8],
                )
                .await?,
        })
    }

    fn next_op(&self, rng: &mut Rng) -> Op {
        let key = rng.below(self.rows) as i64;
        if rng.percent(self.read_percent) {
            Op::Read(key)
        } else {
            Op::Write(key, rng.text(VALUE_BYTES))
        }
    }

    async fn execute(
        &self,
        client: &mut Client,
        statements: &Statements,
        op: &Op,
    ) -> Result<(), tokio_postgres::Error> {
        match op {
            Op::Read(k) => client.query_opt(&statements.read, &[k]).await.map(|_| ()),
            Op::Write(k, v) => client.execute(&statements.write, &[v, k]).await.map(|_| ()),
        }
    }
}
