//! # Workloads: load generators over the PostgreSQL protocol
//!
//! `tinkerdb workload init|run <kv|bank|ycsb>` loads a schema and then drives it with
//! `--concurrency` connections for `--duration`, reporting throughput and latency quantiles from
//! an HDR histogram. Everything goes through tokio-postgres with prepared statements and plain
//! SQL, so the same command runs against TinkerDB and against PostgreSQL, which is how
//! `bench/compare-postgres.sh` compares the two.
//!
//! - [`kv`]: point reads and single-row updates on `kv (k BIGINT PRIMARY KEY, v TEXT)`.
//! - [`bank`]: transfers between two accounts in a REPEATABLE READ transaction; at the end of a
//!   run the total balance must be unchanged and no balance negative, or the run fails.
//! - [`ycsb`]: the YCSB core workloads A–F on `usertable`.
//!
//! A client-visible operation is retried when the server reports a serialization failure
//! (40001) or a deadlock (40P01), at most [`MAX_RETRIES`] times with jittered exponential backoff;
//! its latency includes the retries. Any other failure counts as an error and the worker
//! reconnects if the connection is gone. `--url` takes a comma-separated list; worker `i` connects
//! to URL `i mod n`.
//!
//! ## Caveats
//!
//! - `run` must be given the same `--rows`/`--accounts` as `init`: there is no aggregate to find
//!   the table size.
//! - Latencies are measured by a closed-loop client: a slow server lowers the offered load
//!   rather than building a queue (coordinated omission is not corrected).

pub mod bank;
pub mod cli;
pub mod kv;
pub mod rng;
pub mod stats;
pub mod ycsb;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

pub use cli::Command;
use rng::Rng;
use stats::{Counts, Recorder};

/// The URL used when `--url` is not given: a local TinkerDB node.
pub const DEFAULT_URL: &str = "postgresql://root@127.0.0.1:5433/tinkerdb?sslmode=disable";
/// How often one operation is retried after a serialization failure or deadlock.
pub const MAX_RETRIES: u32 = 10;
/// The first retry backoff; it doubles up to [`MAX_BACKOFF`], with full jitter.
pub const MIN_BACKOFF: Duration = Duration::from_millis(1);
/// The largest retry backoff.
pub const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Point reads and updates on a key-value table.
    Kv,
    /// Transfers between accounts, checking that money is conserved.
    Bank,
    /// The YCSB core workloads (see `--workload`).
    Ycsb,
}

/// The YCSB core workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum YcsbWorkload {
    /// 50% reads, 50% updates, zipfian.
    A,
    /// 95% reads, 5% updates, zipfian.
    B,
    /// 100% reads, zipfian.
    C,
    /// 95% reads of recently inserted keys, 5% inserts.
    D,
    /// 95% short scans, 5% inserts, zipfian start keys.
    E,
    /// 50% reads, 50% read-modify-write transactions, zipfian.
    F,
}

/// How a workload is loaded and run.
#[derive(Clone, Debug)]
pub struct Options {
    /// PostgreSQL URLs; connections are spread over them round-robin.
    pub urls: Vec<String>,
    /// How long `run` drives load.
    pub duration: Duration,
    /// Concurrent connections (each runs one operation at a time).
    pub concurrency: usize,
    /// Percentage of point reads in `kv` (default 95).
    pub read_percent: Option<u8>,
    /// Rows loaded by `init` of `kv` and `ycsb`, and the key range `run` uses.
    pub rows: u64,
    /// Rows per multi-row INSERT during `init`.
    pub batch: usize,
    /// Accounts of `bank`.
    pub accounts: u64,
    /// Starting balance of every `bank` account.
    pub initial_balance: i64,
    /// The YCSB workload.
    pub ycsb: YcsbWorkload,
    /// The random seed; worker `i` uses `seed + i`.
    pub seed: u64,
    /// Print a progress line every second on stderr.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            urls: vec![DEFAULT_URL.to_string()],
            duration: Duration::from_secs(30),
            concurrency: 8,
            read_percent: None,
            rows: 10_000,
            batch: 100,
            accounts: 1_000,
            initial_balance: 1_000,
            ycsb: YcsbWorkload::A,
            seed: 1,
            progress: false,
        }
    }
}

impl Options {
    /// Checks the options before connecting anywhere.
    pub fn validate(&self, kind: Kind) -> Result<()> {
        if self.urls.is_empty() {
            bail!("--url must name at least one server");
        }
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self.batch == 0 || self.batch > 10_000 {
            bail!("--batch must be between 1 and 10000");
        }
        if self.rows == 0 {
            bail!("--rows must be at least 1");
        }
        if self.accounts < 2 {
            bail!("--accounts must be at least 2");
        }
        if self.initial_balance < 0 {
            bail!("the initial balance cannot be negative");
        }
        match (kind, self.read_percent) {
            (Kind::Kv, Some(p)) if p > 100 => bail!("--read-percent must be between 0 and 100"),
            (Kind::Bank | Kind::Ycsb, Some(_)) => {
                bail!("--read-percent applies to kv only (ycsb mixes are set by --workload)")
            }
            _ => Ok(()),
        }
    }

    /// The URL worker `i` connects to.
    fn url(&self, i: usize) -> &str {
        &self.urls[i % self.urls.len()]
    }
}

/// The outcome of a run, printed as JSON by `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The workload name (`kv`, `bank`, `ycsb-a`, ...).
    pub workload: String,
    /// How long load was driven, in seconds.
    pub duration_s: f64,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Successful operations.
    pub ops: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Median latency of successful operations, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Largest latency, in milliseconds.
    pub max_ms: f64,
    /// Failed operations.
    pub errors: u64,
    /// Retries after serialization failures or deadlocks.
    pub retries: u64,
    /// The first error message, if any operation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The invariant check of `bank`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invariant: Option<bank::Invariant>,
}

impl Report {
    fn new(workload: String, opts: &Options, elapsed: Duration, counts: &Counts) -> Report {
        let h = &counts.total;
        let secs = elapsed.as_secs_f64();
        Report {
            workload,
            duration_s: secs,
            concurrency: opts.concurrency,
            ops: h.len(),
            ops_per_sec: if secs > 0.0 {
                h.len() as f64 / secs
            } else {
                0.0
            },
            p50_ms: stats::quantile_ms(h, 0.50),
            p95_ms: stats::quantile_ms(h, 0.95),
            p99_ms: stats::quantile_ms(h, 0.99),
            max_ms: h.max() as f64 / 1000.0,
            errors: counts.errors,
            retries: counts.retries,
            first_error: counts.first_error.clone(),
            invariant: None,
        }
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} ops in {:.1}s with {} connections: {:.1} ops/s, p50 {:.2} ms, p95 {:.2} ms, \
             p99 {:.2} ms, max {:.2} ms, {} errors, {} retries",
            self.workload,
            self.ops,
            self.duration_s,
            self.concurrency,
            self.ops_per_sec,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.retries
        );
        if let Some(e) = &self.first_error {
            s += &format!("\nfirst error: {e}");
        }
        if let Some(inv) = &self.invariant {
            s += &format!("\ninvariant: {}", inv.describe());
        }
        s
    }

    /// Whether the run's correctness checks passed (errors alone do not fail a run).
    pub fn is_ok(&self) -> bool {
        self.invariant.as_ref().is_none_or(|i| i.ok)
    }
}

/// Creates and loads the workload's table, replacing an existing one.
pub async fn init(kind: Kind, opts: &Options) -> Result<()> {
    opts.validate(kind)?;
    match kind {
        Kind::Kv => kv::init(opts).await,
        Kind::Bank => bank::init(opts).await,
        Kind::Ycsb => ycsb::init(opts).await,
    }
}

/// Drives the workload for `opts.duration` and reports what happened.
pub async fn run(kind: Kind, opts: &Options) -> Result<Report> {
    opts.validate(kind)?;
    match kind {
        Kind::Kv => kv::run(opts).await,
        Kind::Bank => bank::run(opts).await,
        Kind::Ycsb => ycsb::run(opts).await,
    }
}

/// Opens a connection and drives it in the background.
pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("workload connection closed: {e}");
        }
    });
    Ok(client)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Whether the server asks the client to retry the transaction.
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// One workload as the run loop sees it: how to prepare a connection, pick an operation and
/// execute it. An operation is executed again, unchanged, when it is retried.
pub(crate) trait Workload: Send + Sync + 'static {
    /// One operation.
    type Op: Send + Sync;
    /// The prepared statements of one connection.
    type Statements: Send + Sync;

    /// Prepares the statements on a new connection.
    fn prepare(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<Self::Statements, tokio_postgres::Error>> + Send;

    /// Picks the next operation.
    fn next_op(&self, rng: &mut Rng) -> Self::Op;

    /// Executes one operation, rolling back any transaction it opened if it fails.
    fn execute(
        &self,
        client: &mut Client,
        statements: &Self::Statements,
        op: &Self::Op,
    ) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send;
}

/// Runs `workload` with `opts.concurrency` workers for `opts.duration`.
pub(crate) async fn drive<W: Workload>(
    name: String,
    workload: Arc<W>,
    opts: &Options,
) -> Result<Report> {
    // Connect and prepare everything first, so a bad URL fails the run before it starts.
    let mut workers = Vec::with_capacity(opts.concurrency);
    for i in 0..opts.concurrency {
        let url = opts.url(i).to_string();
        let client = connect(&url).await?;
        let statements = workload
            .prepare(&client)
            .await
            .with_context(|| format!("preparing the {name} statements"))?;
        workers.push((url, client, statements));
    }
    let recorders: Vec<_> = (0..opts.concurrency)
        .map(|_| Arc::new(Recorder::new()))
        .collect();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let progress = opts
        .progress
        .then(|| tokio::spawn(stats::progress(recorders.clone(), start, deadline)));
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for (i, (url, client, statements)) in workers.into_iter().enumerate() {
        let worker = Worker {
            workload: workload.clone(),
            recorder: recorders[i].clone(),
            rng: Rng::new(opts.seed.wrapping_add(i as u64).wrapping_mul(0x2545_f491)),
            url,
            client,
            statements,
        };
        tasks.push(tokio::spawn(worker.run(deadline)));
    }
    for task in tasks {
        task.await.context("a workload worker panicked")?;
    }
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    let mut counts = Counts::new();
    for recorder in &recorders {
        counts.merge(&recorder.take_interval());
    }
    Ok(Report::new(name, opts, elapsed, &counts))
}

/// One connection's run loop.
struct Worker<W: Workload> {
    workload: Arc<W>,
    recorder: Arc<Recorder>,
    rng: Rng,
    url: String,
    client: Client,
    statements: W::Statements,
}

impl<W: Workload> Worker<W> {
    async fn run(mut self, deadline: Instant) {
        while Instant::now() < deadline {
            let op = self.workload.next_op(&mut self.rng);
            let started = Instant::now();
            match self.execute_with_retries(&op).await {
                Ok(()) => self.recorder.record(started.elapsed()),
                Err(e) => {
                    self.recorder.error(format!("{e:#}"));
                    if self.client.is_closed() {
                        self.reconnect(deadline).await;
                    }
                }
            }
        }
    }

    async fn execute_with_retries(&mut self, op: &W::Op) -> Result<()> {
        let mut backoff = MIN_BACKOFF;
        let mut attempt = 0;
        loop {
            match self
                .workload
                .execute(&mut self.client, &self.statements, op)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if is_retryable(&e) && attempt < MAX_RETRIES => {
                    attempt += 1;
                    self.recorder.retry();
                    let jitter = self.rng.unit();
                    tokio::time::sleep(backoff.mul_f64(jitter)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) if is_retryable(&e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("gave up after {MAX_RETRIES} retries")));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reconnects after the connection was lost, pausing between attempts so a down server is
    /// not hammered; errors while reconnecting are counted.
    async fn reconnect(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let attempt = async {
                let client = connect(&self.url).await?;
                let statements = self.workload.prepare(&client).await?;
                anyhow::Ok((client, statements))
            };
            match attempt.await {
                Ok((client, statements)) => {
                    self.client = client;
                    self.statements = statements;
                    return;
                }
                Err(e) => self.recorder.error(format!("{e:#}")),
            }
        }
    }
}

/// Loads rows `0..total` with `opts.concurrency` connections, `opts.batch` rows per INSERT.
/// `insert` builds and runs one batch of rows `start..end` on a connection.
pub(crate) async fn load<F, Fut>(opts: &Options, total: u64, insert: F) -> Result<()>
where
    F: Fn(Arc<Client>, u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let insert = Arc::new(insert);
    let batch = opts.batch as u64;
    let mut tasks: Vec<tokio::task::JoinHandle<Result<()>>> = Vec::new();
    for i in 0..opts.concurrency {
        let client = Arc::new(connect(opts.url(i)).await?);
        let (next, insert) = (next.clone(), insert.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if start >= total {
                    return Ok(());
                }
                insert(client.clone(), start, (start + batch).min(total)).await?;
            }
        }));
    }
    for task in tasks {
        task.await.context("a loader panicked")??;
    }
    Ok(())
}

/// A multi-row INSERT of `rows` rows into `table` with `columns`, as `$n` placeholders.
pub(crate) fn insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let width = columns.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_numbers_parameters_row_by_row() {
        assert_eq!(
            insert_sql("kv", &["k", "v"], 2),
            "INSERT INTO kv (k, v) VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgresql://u:secret@h:1/db"),
            "postgresql://u:***@h:1/db"
        );
        assert_eq!(redact("postgresql://root@h/db"), "postgresql://root@h/db");
    }
}
