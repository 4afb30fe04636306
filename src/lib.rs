//! # tinkerdb: a node
//!
//! [`Node::start`] assembles one TinkerDB node from the layers below it: the kv store (ranges on
//! fjall, each a Raft group), the transaction layer (timestamp oracle, two-phase commit), the SQL
//! engine, the PostgreSQL wire-protocol server, the raw KV gRPC API (`txn::kvapi`, with gRPC
//! reflection and health) and the HTTP endpoint (`/health`, `/metrics`, `/status`). The
//! command line in `main.rs`, the integration tests and the sqllogictest runner all start nodes
//! through this type.
//!
//! A storage failure (disk full, I/O error) stops the Raft groups that met it for good: the node
//! reports it on `/health` ([`Node::storage_failure`]) and `tinkerdb start` exits with a `fatal:`
//! line, to be restarted by its supervisor once the cause is fixed; the [`ballast`] file in the
//! data directory is space an operator can free at once.
//!
//! ## Clusters
//!
//! Every node serves Raft, kv requests, the oracle and joins on its gRPC address (`cluster`):
//! `tinkerdb start --join a,b,c` on an empty directory waits for `tinkerdb init` or to be
//! admitted by a member; a node restarted on its directory comes back as itself.
//!
//! ## Caveats
//!
//! - Every range is replicated on `--replication-factor` nodes (default 3, every node when
//!   fewer) by its leader's replicate queue; a cluster of three keeps serving with one node
//!   down. `tinkerdb node decommission N` moves a node's replicas away, and a node silent to
//!   a range's leader for `--dead-node-timeout` has its replica there re-created elsewhere;
//!   there is no rebalancing. `SHOW NODES`/`SHOW RANGES` list the cluster in SQL; `/status`
//!   shows this node's replicas.
//! - A schema change made through one node is seen by another node's next statement only if
//!   that node's caches are refreshed (the SQL catalog cache is per node).
//! - `--config` and TLS certificates are rejected as "not supported yet".

pub mod ballast;
mod cluster;
pub mod demo;
mod http;
pub mod recover;
pub mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The default SQL (pgwire) address.
pub const DEFAULT_SQL_ADDR: &str = "127.0.0.1:5433";
/// The default gRPC address (raw KV API).
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";
/// The default HTTP address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "tinkerdb-data";

/// How a node is configured.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// The SQL (PostgreSQL wire protocol) listen address; port 0 picks a free port.
    pub sql_addr: SocketAddr,
    /// The HTTP listen address (`/health`, `/metrics`); port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// The gRPC listen address (raw KV API); port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// A file of `token tenant` lines: with it, KV API calls need a bearer token of their tenant.
    pub kv_auth_file: Option<PathBuf>,
    /// Accept plaintext connections on non-loopback addresses.
    pub insecure: bool,
    /// Skip fsyncs: acknowledged writes can be lost on a crash. For semantic test suites only.
    pub unsafe_no_fsync: bool,
    /// gRPC addresses of nodes of the cluster to join (or to find peers through after a
    /// restart); empty for a node that is its own cluster until others join it.
    pub join: Vec<String>,
    /// Replicas per range (every node when the cluster has fewer).
    pub replication_factor: usize,
    /// How long a node may leave a range's leader unanswered before the range's replica on it
    /// is replaced on another node.
    pub dead_node_timeout: std::time::Duration,
    /// Split a range once its versions pass this many bytes.
    pub range_max_bytes: u64,
    /// How long old versions are kept for AS OF SYSTEM TIME before GC removes them.
    pub gc_ttl: std::time::Duration,
    /// How long a transaction waiting for a lock sleeps before it re-checks the lock's owner
    /// when no release wakes it (the owner may have died).
    pub lock_recheck: std::time::Duration,
    /// The ballast file's size ([`ballast`]): None for 1% of the filesystem (at most 256 MiB),
    /// `Some(0)` for none.
    pub ballast_size: Option<u64>,
    /// Bytes the node's queries may hold in sorts, hash tables, aggregation groups and
    /// buffered results (a query needing more fails with 53200); None for a quarter of the
    /// machine's memory.
    pub max_sql_memory: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            sql_addr: DEFAULT_SQL_ADDR.parse().expect("valid default address"),
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default address"),
            grpc_addr: DEFAULT_GRPC_ADDR.parse().expect("valid default address"),
            kv_auth_file: None,
            insecure: false,
            unsafe_no_fsync: false,
            join: Vec::new(),
            replication_factor: 3,
            dead_node_timeout: std::time::Duration::from_secs(300),
            range_max_bytes: 64 << 20,
            gc_ttl: txn::Config::default().gc_ttl,
            lock_recheck: txn::Config::default().lock_recheck,
            ballast_size: None,
            max_sql_memory: None,
        }
    }
}

impl Config {
    /// Checks the configuration before anything starts.
    pub fn validate(&self) -> Result<()> {
        for (name, addr) in [
            ("SQL", self.sql_addr),
            ("HTTP", self.http_addr),
            ("gRPC", self.grpc_addr),
        ] {
            if !addr.ip().is_loopback() && !self.insecure {
                bail!(
                    "the {name} address {addr} is not a loopback address: without certificates this requires --insecure"
                );
            }
        }
        if self.gc_ttl < std::time::Duration::from_secs(1) {
            bail!(
                "--gc-ttl must be at least 1s (got {})",
                humantime::format_duration(self.gc_ttl)
            );
        }
        if self.dead_node_timeout < std::time::Duration::from_secs(2) {
            bail!(
                "--dead-node-timeout must be at least 2s (got {})",
                humantime::format_duration(self.dead_node_timeout)
            );
        }
        if !(1..=7).contains(&self.replication_factor) {
            bail!(
                "--replication-factor must be between 1 and 7 (got {})",
                self.replication_factor
            );
        }
        if self.range_max_bytes < 64 << 10 {
            bail!(
                "--range-max-bytes must be at least 65536 (got {})",
                self.range_max_bytes
            );
        }
        Ok(())
    }
}

/// The addresses a started node listens on, as written to `<data-dir>/addresses.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Addresses {
    pub sql: SocketAddr,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

/// A running node.
pub struct Node {
    addresses: Addresses,
    store: kv::Node,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts a node: opens (or bootstraps) the store, then serves SQL, gRPC and HTTP.
    pub async fn start(config: Config) -> Result<Node> {
        config.validate()?;
        let mut kv_options = txn::kvapi::Options::default();
        if let Some(path) = &config.kv_auth_file {
            kv_options.auth = Some(txn::kvapi::Auth::load(path).map_err(anyhow::Error::msg)?);
        }
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        ballast::ensure(&config.data_dir, config.ballast_size)?;
        let metrics = http::install_metrics();
        let sql_listener = bind("SQL", config.sql_addr).await?;
        let http_listener = bind("HTTP", config.http_addr).await?;
        let grpc_listener = bind("gRPC", config.grpc_addr).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        let advertise = grpc_addr.to_string();
        let mut store_options = kv::StoreOptions::new(&config.data_dir);
        store_options.engine.unsafe_no_fsync = config.unsafe_no_fsync;
        store_options.advertise_addr = advertise.clone();
        store_options.network = kv::Network::Grpc(raft::GrpcOptions::default());
        let (store, members, grpc_listener) =
            cluster::open_store(store_options, &config.join, grpc_listener).await?;
        let txn_config = txn::Config {
            range_max_bytes: config.range_max_bytes,
            gc_ttl: config.gc_ttl,
            lock_recheck: config.lock_recheck,
            ..txn::Config::default()
        };
        let (db, peers) = cluster::open_db(store.clone(), &advertise, members, txn_config).await?;
        let engine = sql::Engine::new(db.clone());
        if let Some(bytes) = config.max_sql_memory {
            engine.set_memory_limit(bytes);
        }
        // A node that may share its cluster plans every statement from the catalog (no plan
        // cached past a schema change made elsewhere).
        let shared_schema = !config.join.is_empty();
        engine.set_schema_shared(shared_schema);
        let single_engine = (!shared_schema).then(|| engine.clone());

        let addresses = Addresses {
            sql: sql_listener.local_addr()?,
            http: http_listener.local_addr()?,
            grpc: grpc_addr,
        };
        write_addresses(&config.data_dir, &addresses)?;

        let (shutdown, stop) = watch::channel(false);
        let wait = |mut stop: watch::Receiver<bool>| async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        let pg_stop = wait(stop.clone());
        let stop_refresh = stop.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                pgserver::serve(sql_listener, engine, pgserver::Options::default(), pg_stop).await
            {
                tracing::error!("SQL server: {e}");
            }
        }));
        let grpc_stop = wait(stop.clone());
        // The one gRPC port carries the KV API and all inter-node traffic.
        let raft_service = store.raft_service();
        let node_service = txn::cluster::NodeService::running(db.clone(), peers.clone());
        let grpc_db = db.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = txn::kvapi::serve(
                grpc_listener,
                grpc_db,
                kv_options,
                raft_service,
                node_service,
                grpc_stop,
            )
            .await
            {
                tracing::error!("gRPC server: {e}");
            }
        }));
        let refresh = tokio::spawn(cluster::refresh_peers(
            db.clone(),
            peers.clone(),
            config.join.clone(),
            single_engine,
        ));
        let replicate = tokio::spawn(cluster::replicate(
            db.clone(),
            peers,
            txn::cluster::Replication {
                factor: config.replication_factor,
                dead_after: config.dead_node_timeout,
            },
        ));
        tasks.push(tokio::spawn(async move {
            let _ = wait(stop_refresh).await;
            refresh.abort();
            replicate.abort();
        }));
        tasks.push(tokio::spawn(http::serve(
            http_listener,
            metrics,
            store.clone(),
            wait(stop),
        )));
        // The ranges elect their leaders once every node's server answers.
        if let Err(e) = store
            .wait_for_leaders(std::time::Duration::from_secs(30))
            .await
        {
            tracing::warn!("not every range has a leader yet: {e}");
        }
        tracing::info!(sql = %addresses.sql, http = %addresses.http, grpc = %addresses.grpc, data_dir = %config.data_dir.display(), "node started");
        Ok(Node {
            addresses,
            store,
            shutdown,
            tasks,
        })
    }

    /// Resolves, with the reason, once the node can no longer serve because a range's Raft
    /// group stopped on a storage failure (disk full, I/O error). The process should then exit
    /// so that a supervisor restarts it: recovery replays the durable log, and nothing
    /// acknowledged is lost.
    pub async fn storage_failure(&self) -> String {
        loop {
            if let Err(failure) = self.store.health() {
                return failure;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// The address the SQL server listens on.
    pub fn sql_addr(&self) -> SocketAddr {
        self.addresses.sql
    }

    /// The address the HTTP server listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.addresses.http
    }

    /// The address the gRPC server (raw KV API) listens on.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addresses.grpc
    }

    /// A PostgreSQL connection URL for this node.
    pub fn sql_url(&self) -> String {
        format!(
            "postgresql://root@{}/tinkerdb?sslmode=disable",
            self.addresses.sql
        )
    }

    /// Stops serving, stops the Raft groups and makes the store durable.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.store.shutdown().await?;
        Ok(())
    }
}

pub(crate) async fn bind(name: &str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!("the {name} address {addr} is already in use by another process")
        }
        _ => anyhow::anyhow!("cannot listen on the {name} address {addr}: {e}"),
    })
}

fn write_addresses(dir: &std::path::Path, addresses: &Addresses) -> Result<()> {
    let path = dir.join("addresses.json");
    let tmp = dir.join("addresses.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(addresses)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
