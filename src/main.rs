//! The `tinkerdb` command line: parses arguments and runs a node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tinkerdb::{Config, Node};

#[derive(Parser)]
#[command(
    name = "tinkerdb",
    version,
    about = "TinkerDB: a distributed SQL database speaking the PostgreSQL protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node (without --join: bootstrap or reopen a single-node cluster).
    Start(Box<StartArgs>),
    /// Bootstrap a cluster whose nodes were started with --join.
    Init {
        #[arg(long)]
        host: String,
    },
    /// Run a local N-node cluster and print its URLs.
    Demo {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
    /// Raw KV API client.
    Kv {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Load generators: kv, bank and YCSB over the PostgreSQL protocol.
    Workload {
        #[command(subcommand)]
        command: tinkerdb::workload::Command,
    },
}

#[derive(Args)]
struct StartArgs {
    /// Data directory.
    #[arg(long, default_value = tinkerdb::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// SQL (PostgreSQL wire protocol) listen address; port 0 picks a free port.
    #[arg(long, default_value = tinkerdb::DEFAULT_SQL_ADDR)]
    sql_addr: SocketAddr,
    /// gRPC listen address (raw KV API, inter-node traffic).
    #[arg(long)]
    grpc_addr: Option<SocketAddr>,
    /// HTTP listen address (/health, /metrics); port 0 picks a free port.
    #[arg(long, default_value = tinkerdb::DEFAULT_HTTP_ADDR)]
    http_addr: SocketAddr,
    /// Addresses of nodes to join, comma-separated.
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
    /// Split ranges larger than this many bytes.
    #[arg(long)]
    range_max_bytes: Option<u64>,
    /// Replicas per range.
    #[arg(long)]
    replication_factor: Option<u32>,
    /// Configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory with TLS certificates.
    #[arg(long)]
    certs_dir: Option<PathBuf>,
    /// Allow plaintext connections on non-loopback addresses.
    #[arg(long)]
    insecure: bool,
    /// File mapping bearer tokens to KV tenants.
    #[arg(long)]
    kv_auth_file: Option<PathBuf>,
    /// Skip fsyncs. UNSAFE: acknowledged writes can be lost on a crash; for semantic test suites.
    #[arg(long)]
    unsafe_no_fsync: bool,
}

impl StartArgs {
    /// The node configuration, refusing flags whose feature does not exist yet.
    fn into_config(self) -> Result<Config, String> {
        let unsupported = [
            ("--grpc-addr", self.grpc_addr.is_some()),
            ("--join", !self.join.is_empty()),
            ("--range-max-bytes", self.range_max_bytes.is_some()),
            (
                "--replication-factor",
                self.replication_factor.is_some_and(|n| n != 1),
            ),
            ("--config", self.config.is_some()),
            ("--certs-dir", self.certs_dir.is_some()),
            ("--kv-auth-file", self.kv_auth_file.is_some()),
        ];
        if let Some((flag, _)) = unsupported.iter().find(|(_, given)| *given) {
            return Err(format!("{flag} is not supported yet"));
        }
        Ok(Config {
            data_dir: self.data_dir,
            sql_addr: self.sql_addr,
            http_addr: self.http_addr,
            insecure: self.insecure,
            unsafe_no_fsync: self.unsafe_no_fsync,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Start(args) => args.into_config().map_err(anyhow::Error::msg).and_then(run),
        Command::Init { .. } => Err(anyhow::anyhow!(
            "`tinkerdb init` is not supported yet: nodes cannot join a cluster yet"
        )),
        Command::Demo { .. } => Err(anyhow::anyhow!("`tinkerdb demo` is not supported yet")),
        Command::Kv { .. } => Err(anyhow::anyhow!("`tinkerdb kv` is not supported yet")),
        Command::Workload { command } => tinkerdb::workload::cli::main(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    if config.unsafe_no_fsync {
        tracing::warn!("--unsafe-no-fsync: acknowledged writes can be lost on a crash");
    }
    tracing::warn!("running in insecure mode: plaintext connections, no TLS");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let node = Node::start(config).await?;
        eprintln!(
            "TinkerDB is ready: psql -h {} -p {} -U root tinkerdb",
            node.sql_addr().ip(),
            node.sql_addr().port()
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        node.shutdown().await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
