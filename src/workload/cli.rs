//! The `tinkerdb workload` command line.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::{Kind, Options, YcsbWorkload};

/// `tinkerdb workload init|run`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the workload's table and load it (an existing table is replaced).
    Init(WorkloadArgs),
    /// Drive load against a table loaded by `init` and report throughput and latency.
    Run(WorkloadArgs),
}

/// The arguments shared by `init` and `run`.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// The workload.
    #[arg(value_enum, value_name = "WORKLOAD")]
    pub workload_kind: Kind,
    /// PostgreSQL URLs, comma-separated; connections are spread over them round-robin.
    #[arg(long, value_delimiter = ',', default_value = super::DEFAULT_URL)]
    pub url: Vec<String>,
    /// How long to run (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Percentage of point reads (kv only; default 95).
    #[arg(long)]
    pub read_percent: Option<u8>,
    /// Rows to load (kv, ycsb); `run` must be given the same number.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    /// Rows per multi-row INSERT while loading.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Accounts (bank); `run` must be given the same number.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: u64,
    /// The YCSB workload (ycsb only).
    #[arg(long, value_enum)]
    pub workload: Option<YcsbWorkload>,
    /// Random seed (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print exactly one JSON object with the results on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Do not print a progress line every second.
    #[arg(long)]
    pub quiet: bool,
}

impl WorkloadArgs {
    fn options(&self) -> Result<Options> {
        if self.workload.is_some() && self.workload_kind != Kind::Ycsb {
            bail!("--workload applies to ycsb only");
        }
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        Ok(Options {
            urls: self.url.clone(),
            duration: self.duration,
            concurrency: self.concurrency,
            read_percent: self.read_percent,
            rows: self.rows,
            batch: self.batch,
            accounts: self.accounts,
            ycsb: self.workload.unwrap_or(YcsbWorkload::A),
            seed,
            progress: !self.quiet,
            ..Options::default()
        })
    }
}

/// Runs a `tinkerdb workload` command to completion on its own runtime.
pub fn main(command: Command) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match command {
            Command::Init(args) => {
                let opts = args.options()?;
                let started = std::time::Instant::now();
                super::init(args.workload_kind, &opts).await?;
                eprintln!(
                    "loaded {} in {:.1}s",
                    format!("{:?}", args.workload_kind).to_lowercase(),
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Command::Run(args) => {
                let opts = args.options()?;
                let report = super::run(args.workload_kind, &opts).await?;
                if args.json {
                    eprintln!("{}", report.summary());
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("{}", report.summary());
                }
                if !report.is_ok() {
                    bail!("the {} invariant is broken", report.workload);
                }
                Ok(())
            }
        }
    })
}
