//! The YCSB core workloads.

use anyhow::{Result, bail};

use super::{Options, Report};

/// Creates and loads `usertable`.
pub async fn init(_opts: &Options) -> Result<()> {
    bail!("the ycsb workload is not supported yet")
}

/// Runs a YCSB workload.
pub async fn run(_opts: &Options) -> Result<Report> {
    bail!("the ycsb workload is not supported yet")
}
