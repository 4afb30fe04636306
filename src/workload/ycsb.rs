//! The YCSB core workloads A–F on
//! `usertable (ycsb_key TEXT PRIMARY KEY, field0 TEXT, ..., field9 TEXT)`.
//!
//! | workload | mix                                  | key choice                      |
//! |----------|--------------------------------------|---------------------------------|
//! | A        | 50% read, 50% update                 | scrambled zipfian               |
//! | B        | 95% read, 5% update                  | scrambled zipfian               |
//! | C        | 100% read                            | scrambled zipfian               |
//! | D        | 95% read, 5% insert                  | latest                          |
//! | E        | 95% scan (1–100 rows), 5% insert    | scrambled zipfian start key     |
//! | F        | 50% read, 50% read-modify-write      | scrambled zipfian               |
//!
//! Reads fetch the whole record, updates overwrite one random field. Keys are `user` plus a
//! zero-padded number, so key order is number order and a scan is
//! `WHERE ycsb_key >= $1 ORDER BY ycsb_key LIMIT $2`.
//!
//! Approximations, documented rather than hidden:
//! - D's "latest": a zipfian distance back from the newest inserted key (the distribution is
//!   sized by `--rows`, not regrown as keys are inserted).
//! - E's start keys and A/B/C/F's keys come from the `--rows` loaded keys only; keys inserted
//!   during runs are scanned over but not chosen as start keys.
//! - F's read-modify-write reads the record and updates one field in a REPEATABLE READ
//!   transaction, so a conflict is retried like any other transaction.
//! - Inserts of a run start after the largest key present when the run starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, IsolationLevel, Statement};

use super::rng::{Rng, Zipfian};
use super::{Options, Report, Workload, YcsbWorkload};

/// Fields per record.
pub const FIELDS: usize = 10;
/// Bytes per field.
pub const FIELD_BYTES: usize = 100;
/// The longest scan of workload E.
pub const MAX_SCAN: i64 = 100;

/// The key of record `n`.
pub fn key(n: u64) -> String {
    format!("user{n:012}")
}

/// Creates `usertable` and loads `opts.rows` records.
pub async fn init(opts: &Options) -> Result<()> {
    let client = super::connect(opts.url(0)).await?;
    client
        .batch_execute("DROP TABLE IF EXISTS usertable")
        .await
        .context("dropping usertable")?;
    let fields: Vec<String> = (0..FIELDS).map(|i| format!("field{i} TEXT")).collect();
    client
        .batch_execute(&format!(
            "CREATE TABLE usertable (ycsb_key TEXT PRIMARY KEY, {})",
            fields.join(", ")
        ))
        .await
        .context("creating usertable")?;
    let seed = opts.seed;
    super::load(
        opts,
        opts.rows,
        move |client: Arc<Client>, start, end| async move {
            let rows = (end - start) as usize;
            let sql = super::insert_sql("usertable", &columns(), rows);
            let statement = client
                .prepare_typed(&sql, &vec![Type::TEXT; rows * (FIELDS + 1)])
                .await?;
            let mut rng = Rng::new(seed ^ start);
            let values: Vec<String> = (start..end).flat_map(|n| record(n, &mut rng)).collect();
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            client
                .execute(&statement, &params)
                .await
                .with_context(|| format!("loading usertable records {start}..{end}"))?;
            Ok(())
        },
    )
    .await
}

fn columns() -> Vec<&'static str> {
    const NAMES: [&str; FIELDS + 1] = [
        "ycsb_key", "field0", "field1", "field2", "field3", "field4", "field5", "field6", "field7",
        "field8", "field9",
    ];
    NAMES.to_vec()
}

/// The key and field values of a new record `n`.
fn record(n: u64, rng: &mut Rng) -> Vec<String> {
    std::iter::once(key(n))
        .chain((0..FIELDS).map(|_| rng.text(FIELD_BYTES)))
        .collect()
}

/// Runs the YCSB workload `opts.ycsb`.
pub async fn run(opts: &Options) -> Result<Report> {
    let client = super::connect(opts.url(0)).await?;
    let last = client
        .query_opt(
            "SELECT ycsb_key FROM usertable ORDER BY ycsb_key DESC LIMIT 1",
            &[],
        )
        .await
        .context("finding the last key of usertable")?;
    let next_insert = match last {
        Some(row) => {
            let last: String = row.try_get(0)?;
            last.strip_prefix("user")
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(opts.rows, |n| (n + 1).max(opts.rows))
        }
        None => opts.rows,
    };
    let workload = Ycsb {
        workload: opts.ycsb,
        zipfian: Zipfian::new(opts.rows),
        next_insert: AtomicU64::new(next_insert),
    };
    let name = format!("ycsb-{}", format!("{:?}", opts.ycsb).to_lowercase());
    super::drive(name, Arc::new(workload), opts).await
}

/// A YCSB workload.
#[derive(Debug)]
pub struct Ycsb {
    workload: YcsbWorkload,
    zipfian: Zipfian,
    next_insert: AtomicU64,
}

/// One YCSB operation.
#[derive(Debug)]
pub enum Op {
    /// Read a whole record.
    Read(String),
    /// Overwrite one field.
    Update(String, usize, String),
    /// Insert a new record (key first).
    Insert(Vec<String>),
    /// Read up to `n` records from a start key on.
    Scan(String, i64),
    /// Read a record, then overwrite one field, in one transaction.
    ReadModifyWrite(String, usize, String),
}

/// The prepared statements of one connection.
#[derive(Debug)]
pub struct Statements {
    read: Statement,
    updates: Vec<Statement>,
    insert: Statement,
    scan: Statement,
}

impl Ycsb {
    fn zipfian_key(&self, rng: &mut Rng) -> String {
        key(self.zipfian.next_scrambled(rng))
    }

    fn latest_key(&self, rng: &mut Rng) -> String {
        let latest = self.next_insert.load(Ordering::Relaxed).saturating_sub(1);
        key(latest.saturating_sub(self.zipfian.next(rng)))
    }

    fn insert(&self, rng: &mut Rng) -> Op {
        let n = self.next_insert.fetch_add(1, Ordering::Relaxed);
        Op::Insert(record(n, rng))
    }

    fn update(&self, rng: &mut Rng, rmw: bool) -> Op {
        let key = self.zipfian_key(rng);
        let field = rng.below(FIELDS as u64) as usize;
        let value = rng.text(FIELD_BYTES);
        if rmw {
            Op::ReadModifyWrite(key, field, value)
        } else {
            Op::Update(key, field, value)
        }
    }
}

impl Workload for Ycsb {
    type Op = Op;
    type Statements = Statements;

    async fn prepare(&self, client: &Client) -> Result<Statements, tokio_postgres::Error> {
        let mut updates = Vec::with_capacity(FIELDS);
        for i in 0..FIELDS {
            let sql = format!("UPDATE usertable SET field{i} = $1 WHERE ycsb_key = $2");
            updates.push(
                client
                    .prepare_typed(&sql, &[Type::TEXT, Type::TEXT])
                    .await?,
            );
        }
        Ok(Statements {
            read: client
                .prepare_typed("SELECT * FROM usertable WHERE ycsb_key = $1", &[Type::TEXT])
                .await?,
            updates,
            insert: client
                .prepare_typed(
                    &super::insert_sql("usertable", &columns(), 1),
                    &[Type::TEXT; FIELDS + 1],
                )
                .await?,
            scan: client
                .prepare_typed(
                    "SELECT * FROM usertable WHERE ycsb_key >= $1 ORDER BY ycsb_key LIMIT $2",
                    &[Type::TEXT, Type::INT8],
                )
                .await?,
        })
    }

    fn next_op(&self, rng: &mut Rng) -> Op {
        let dice = rng.below(100);
        match self.workload {
            YcsbWorkload::A if dice < 50 => Op::Read(self.zipfian_key(rng)),
            YcsbWorkload::B if dice < 95 => Op::Read(self.zipfian_key(rng)),
            YcsbWorkload::A | YcsbWorkload::B => self.update(rng, false),
            YcsbWorkload::C => Op::Read(self.zipfian_key(rng)),
            YcsbWorkload::D if dice < 95 => Op::Read(self.latest_key(rng)),
            YcsbWorkload::E if dice < 95 => {
                Op::Scan(self.zipfian_key(rng), 1 + rng.below(MAX_SCAN as u64) as i64)
            }
            YcsbWorkload::D | YcsbWorkload::E => self.insert(rng),
            YcsbWorkload::F if dice < 50 => Op::Read(self.zipfian_key(rng)),
            YcsbWorkload::F => self.update(rng, true),
        }
    }

    async fn execute(
        &self,
        client: &mut Client,
        statements: &Statements,
        op: &Op,
    ) -> Result<(), tokio_postgres::Error> {
        match op {
            Op::Read(key) => client.query_opt(&statements.read, &[key]).await.map(|_| ()),
            Op::Update(key, field, value) => client
                .execute(&statements.updates[*field], &[value, key])
                .await
                .map(|_| ()),
            Op::Insert(values) => {
                let params: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                client
                    .execute(&statements.insert, &params)
                    .await
                    .map(|_| ())
            }
            Op::Scan(key, n) => client.query(&statements.scan, &[key, n]).await.map(|_| ()),
            Op::ReadModifyWrite(key, field, value) => {
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .start()
                    .await?;
                tx.query_opt(&statements.read, &[key]).await?;
                tx.execute(&statements.updates[*field], &[value, key])
                    .await?;
                tx.commit().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_numbers() {
        assert!(key(9) < key(10));
        assert!(key(99_999) < key(100_000));
    }
}
