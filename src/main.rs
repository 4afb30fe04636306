//! The `tinkerdb` command line: parses arguments and runs a node.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tinkerdb::{Config, Node};

/// mimalloc: the database allocates many small, short-lived buffers (keys, rows, messages) on
/// every thread; it is markedly cheaper on that pattern than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Cluster node operations.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Last-resort tools for a stopped node's data directory.
    Debug {
        #[command(subcommand)]
        command: DebugCommand,
    },
    /// Raw KV API client: values are printed raw on stdout.
    Kv(KvArgs),
    /// Load generators: kv, bank and YCSB over the PostgreSQL protocol.
    Workload {
        #[command(subcommand)]
        command: tinkerdb::workload::Command,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Move every replica off node N, then report it can be stopped.
    Decommission {
        /// The node's id.
        node: u64,
        /// gRPC address of any node of the cluster.
        #[arg(long, default_value = tinkerdb::DEFAULT_GRPC_ADDR)]
        host: String,
    },
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Remove dead nodes from the Raft membership of every range on this (stopped) node, so
    /// that ranges that lost their quorum elect a leader among the survivors on restart. Writes
    /// acknowledged only by the dead nodes are lost: see README.
    UnsafeRecover {
        /// The stopped node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Ids of the nodes that are gone for good, comma-separated.
        #[arg(long)]
        dead_nodes: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
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
    /// gRPC listen address (raw KV API); port 0 picks a free port.
    #[arg(long, default_value = tinkerdb::DEFAULT_GRPC_ADDR)]
    grpc_addr: SocketAddr,
    /// HTTP listen address (/health, /metrics); port 0 picks a free port.
    #[arg(long, default_value = tinkerdb::DEFAULT_HTTP_ADDR)]
    http_addr: SocketAddr,
    /// gRPC addresses of nodes of the cluster to join, comma-separated (on an empty data
    /// directory the node waits to be admitted, or for `tinkerdb init`).
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
    /// Split ranges larger than this many bytes (default 64 MiB).
    #[arg(long)]
    range_max_bytes: Option<u64>,
    /// Size in bytes of the ballast file created in the data directory, which an operator can
    /// delete to free space if the disk fills up (default: 1% of the filesystem, at most
    /// 256 MiB; 0 for none).
    #[arg(long)]
    ballast_size: Option<u64>,
    /// Memory the node's queries may hold in sorts, hash tables, aggregation groups and
    /// buffered results, as a share of the machine's memory (25%) or a size (4GiB, 512MiB,
    /// bytes); a query that needs more fails with 53200.
    #[arg(long, default_value = "25%", value_parser = parse_memory)]
    max_sql_memory: MemorySize,
    /// How long old row versions are kept for AS OF SYSTEM TIME reads before garbage
    /// collection removes them (e.g. 4h, 90m, 25h).
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    gc_ttl: Duration,
    /// Replicas per range (default 3; every node when the cluster has fewer).
    #[arg(long)]
    replication_factor: Option<u32>,
    /// How long a node may be unreachable before its replicas are replaced on other nodes
    /// (e.g. 5m, 90s).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    dead_node_timeout: Duration,
    /// How long a transaction waiting for a lock sleeps before it re-checks the lock's owner
    /// when no release wakes it (the owner may have died; e.g. 250ms, 2s).
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    lock_recheck: Duration,
    /// Configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory with TLS certificates.
    #[arg(long)]
    certs_dir: Option<PathBuf>,
    /// Allow plaintext connections on non-loopback addresses.
    #[arg(long)]
    insecure: bool,
    /// File of `token tenant` lines (`#` comments): KV API calls then need
    /// `authorization: Bearer <token>` of their tenant.
    #[arg(long)]
    kv_auth_file: Option<PathBuf>,
    /// Skip fsyncs. UNSAFE: acknowledged writes can be lost on a crash; for semantic test suites.
    #[arg(long)]
    unsafe_no_fsync: bool,
}

#[derive(Args)]
struct KvArgs {
    /// Address of a node's gRPC API.
    #[arg(long, global = true, default_value = tinkerdb::DEFAULT_GRPC_ADDR)]
    addr: String,
    /// The tenant whose keys to use.
    #[arg(long, global = true, default_value = txn::kvapi::DEFAULT_TENANT)]
    tenant: String,
    /// Bearer token (when the node runs with --kv-auth-file).
    #[arg(long, global = true)]
    token: Option<String>,
    /// Timeout of each call.
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Subcommand)]
enum KvCommand {
    /// Print a key's value (raw bytes); exit 1 with "not found" if it has none.
    Get { key: String },
    /// Write a value given as an argument or read from a file (`-` = stdin).
    Set {
        key: String,
        value: Option<String>,
        #[arg(long, conflicts_with = "value")]
        file: Option<PathBuf>,
        /// Expire the value after this long (e.g. 10s, 5m).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Delete a key; prints "deleted" or "not found".
    Del { key: String },
    /// Print "true" or "false".
    Exists { key: String },
    /// Print keys, one per line.
    Keys {
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        reverse: bool,
    },
    /// Print key<TAB>value lines.
    Scan {
        /// First key (inclusive).
        #[arg(long, default_value = "")]
        from: String,
        /// End key (exclusive).
        #[arg(long, default_value = "")]
        to: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        reverse: bool,
    },
    /// Print every stored version of a key and any lock on it.
    History { key: String },
}

impl StartArgs {
    /// The node configuration, refusing flags whose feature does not exist yet.
    fn into_config(self) -> Result<Config, String> {
        let unsupported = [
            ("--config", self.config.is_some()),
            ("--certs-dir", self.certs_dir.is_some()),
        ];
        if let Some((flag, _)) = unsupported.iter().find(|(_, given)| *given) {
            return Err(format!("{flag} is not supported yet"));
        }
        Ok(Config {
            data_dir: self.data_dir,
            sql_addr: self.sql_addr,
            http_addr: self.http_addr,
            grpc_addr: self.grpc_addr,
            kv_auth_file: self.kv_auth_file,
            insecure: self.insecure,
            unsafe_no_fsync: self.unsafe_no_fsync,
            join: self.join,
            replication_factor: self.replication_factor.unwrap_or(3) as usize,
            dead_node_timeout: self.dead_node_timeout,
            range_max_bytes: self.range_max_bytes.unwrap_or(64 << 20),
            gc_ttl: self.gc_ttl,
            lock_recheck: self.lock_recheck,
            ballast_size: self.ballast_size,
            max_sql_memory: match self.max_sql_memory {
                MemorySize::Share(25.0) => None,
                MemorySize::Share(pct) => {
                    let total = sql::machine_memory().unwrap_or(4 << 30);
                    Some((total as f64 * pct / 100.0) as usize)
                }
                MemorySize::Bytes(b) => Some(b),
            },
        })
    }
}

/// A memory size given on the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
enum MemorySize {
    /// A percentage of the machine's memory.
    Share(f64),
    Bytes(usize),
}

/// Parses `25%`, `4GiB`, `512MiB`, `64KiB` or a number of bytes.
fn parse_memory(s: &str) -> Result<MemorySize, String> {
    let s = s.trim();
    if let Some(pct) = s.strip_suffix('%') {
        return match pct.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Ok(MemorySize::Share(p)),
            _ => Err(format!("{s}: a share must be above 0% and at most 100%")),
        };
    }
    let units = [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    let (digits, unit) = units
        .iter()
        .find_map(|&(u, m)| s.strip_suffix(u).map(|d| (d.trim(), m)))
        .unwrap_or((s, 1));
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .map(MemorySize::Bytes)
        .ok_or_else(|| format!("{s}: expected a size such as 4GiB, 512MiB or 25%"))
}

fn main() -> ExitCode {
    // Crash tests build the binary with failpoints and set them through FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,openraft=warn,lsm_tree=warn,fjall=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Start(args) => args.into_config().map_err(anyhow::Error::msg).and_then(run),
        Command::Init { host } => init_main(&host),
        Command::Demo { nodes } => demo_main(nodes),
        Command::Node {
            command: NodeCommand::Decommission { node, host },
        } => decommission_main(node, &host),
        Command::Debug {
            command:
                DebugCommand::UnsafeRecover {
                    data_dir,
                    dead_nodes,
                    yes,
                },
        } => tinkerdb::recover::parse_nodes(&dead_nodes).and_then(|dead| {
            tinkerdb::recover::unsafe_recover(
                &data_dir,
                &dead,
                yes,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout(),
            )
        }),
        Command::Kv(args) => kv_main(args),
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

/// `tinkerdb demo --nodes N`: an N-node cluster in this process, data in a temporary
/// directory (removed on exit), until Ctrl-C.
fn demo_main(n: usize) -> anyhow::Result<()> {
    if !(1..=9).contains(&n) {
        anyhow::bail!("--nodes must be between 1 and 9 (got {n})");
    }
    let root = std::env::temp_dir().join(format!("tinkerdb-demo-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let cluster = tinkerdb::demo::Demo::start(&root, n).await?;
        for (i, node) in cluster.nodes().iter().enumerate() {
            println!(
                "node {}: {}  (HTTP http://{}, gRPC {})",
                i + 1,
                node.sql_url(),
                node.http_addr(),
                node.grpc_addr()
            );
        }
        println!(
            "{n}-node cluster ready (data in {}); Ctrl-C stops it",
            root.display()
        );
        wait_for_signal().await;
        tracing::info!("stopping the demo cluster");
        cluster.shutdown().await
    });
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// `tinkerdb node decommission N --host H`: marks node N and waits, printing progress, until no
/// range has a replica on it.
fn decommission_main(node: u64, host: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut last = None;
        loop {
            let remaining = txn::cluster::request_decommission(host, node)
                .await
                .map_err(|e| anyhow::anyhow!("decommissioning node {node} through {host}: {e}"))?;
            if remaining == 0 {
                println!("node {node} decommissioned: it holds no replicas and can be stopped");
                return Ok(());
            }
            if last != Some(remaining) {
                println!("node {node}: {remaining} ranges still have a replica on it");
                last = Some(remaining);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// `tinkerdb init --host H`: bootstraps a cluster on the node at H (started with --join).
fn init_main(host: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cluster_id = runtime
        .block_on(txn::cluster::init(host))
        .map_err(|e| anyhow::anyhow!("initialising the cluster through {host}: {e}"))?;
    println!("cluster {cluster_id:x} initialised");
    Ok(())
}

/// Runs one `tinkerdb kv` command against a node's gRPC API.
fn kv_main(args: KvArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = txn::kvapi::Client::connect(&args.addr)
            .await
            .map_err(status_error)?
            .with_tenant(&args.tenant)
            .with_timeout(args.timeout);
        if let Some(token) = &args.token {
            client = client.with_token(token).map_err(status_error)?;
        }
        kv_run(&client, args.command).await
    })
}

fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}

async fn kv_run(client: &txn::kvapi::Client, command: KvCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        KvCommand::Get { key } => match client.get(key.as_bytes()).await.map_err(status_error)? {
            Some(value) => out.write_all(&value)?,
            None => anyhow::bail!("not found"),
        },
        KvCommand::Set {
            key,
            value,
            file,
            ttl,
        } => {
            let value = match (value, file) {
                (Some(v), None) => v.into_bytes(),
                (None, Some(f)) if f.as_os_str() == "-" => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                    buf
                }
                (None, Some(f)) => std::fs::read(&f)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
                _ => anyhow::bail!("give a VALUE or --file FILE"),
            };
            client
                .set_with_ttl(key.as_bytes(), &value, ttl)
                .await
                .map_err(status_error)?;
        }
        KvCommand::Del { key } => {
            let deleted = client.delete(key.as_bytes()).await.map_err(status_error)?;
            writeln!(out, "{}", if deleted { "deleted" } else { "not found" })?;
        }
        KvCommand::Exists { key } => {
            let exists = client.exists(key.as_bytes()).await.map_err(status_error)?;
            writeln!(out, "{exists}")?;
        }
        KvCommand::Keys {
            prefix,
            limit,
            reverse,
        } => {
            let range = txn::kvapi::ScanRange {
                prefix: prefix.into_bytes(),
                reverse,
                ..Default::default()
            };
            for key in client.keys_all(&range, limit).await.map_err(status_error)? {
                out.write_all(&key)?;
                out.write_all(b"\n")?;
            }
        }
        KvCommand::Scan {
            from,
            to,
            prefix,
            limit,
            reverse,
        } => {
            let range = txn::kvapi::ScanRange {
                prefix: prefix.into_bytes(),
                start: from.into_bytes(),
                end: to.into_bytes(),
                reverse,
                ..Default::default()
            };
            for (key, value) in client.scan_all(&range, limit).await.map_err(status_error)? {
                out.write_all(&key)?;
                out.write_all(b"\t")?;
                out.write_all(&value)?;
                out.write_all(b"\n")?;
            }
        }
        KvCommand::History { key } => {
            let history = client.history(key.as_bytes()).await.map_err(status_error)?;
            print_history(&mut out, &history)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn print_history(
    out: &mut impl Write,
    history: &txn::kvapi::proto::MvccHistoryResponse,
) -> std::io::Result<()> {
    use txn::kvapi::proto::{LockKind, VersionKind};
    if let Some(lock) = &history.lock {
        let kind = LockKind::try_from(lock.kind).unwrap_or(LockKind::Unspecified);
        let primary = if lock.primary_in_tenant {
            lock.primary.escape_ascii().to_string()
        } else {
            "(another tenant)".into()
        };
        writeln!(
            out,
            "lock {kind:?} start_ts={} primary={primary} expiry_ms={}",
            lock.start_ts, lock.expiry_ms
        )?;
    }
    for v in &history.versions {
        let kind = VersionKind::try_from(v.kind).unwrap_or(VersionKind::Unspecified);
        write!(
            out,
            "{kind:?} commit_ts={} start_ts={}",
            v.commit_ts, v.start_ts
        )?;
        if kind == VersionKind::Put {
            write!(out, " value={}", v.value.escape_ascii())?;
        }
        if v.expires_at_ms != 0 {
            write!(out, " expires_at_ms={}", v.expires_at_ms)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// How long a node whose storage failed keeps answering (unhealthy) before it exits.
const FATAL_GRACE: Duration = Duration::from_secs(2);

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
        let failure = tokio::select! {
            _ = wait_for_signal() => None,
            failure = node.storage_failure() => Some(failure),
        };
        match failure {
            None => {
                tracing::info!("shutting down");
                node.shutdown().await
            }
            Some(failure) => {
                tracing::error!(
                    "fatal: {failure}; exiting in {}s: restart the node once the cause is fixed \
                     (nothing acknowledged is lost)",
                    FATAL_GRACE.as_secs()
                );
                // Meanwhile /health reports the failure and clients get its error.
                tokio::time::sleep(FATAL_GRACE).await;
                anyhow::bail!("fatal storage failure: {failure}")
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_shares_units_or_bytes() {
        assert_eq!(parse_memory("25%"), Ok(MemorySize::Share(25.0)));
        assert_eq!(parse_memory("4GiB"), Ok(MemorySize::Bytes(4 << 30)));
        assert_eq!(parse_memory("512 MiB"), Ok(MemorySize::Bytes(512 << 20)));
        assert_eq!(parse_memory("1000"), Ok(MemorySize::Bytes(1000)));
        for bad in ["0", "0%", "150%", "4GB", "-1", "lots", ""] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }
}
