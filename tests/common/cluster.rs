//! Clusters of real `tinkerdb` processes on loopback ports picked at run time, formed with
//! `--join` and `tinkerdb init`, for the multi-node tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tinkerdb::Addresses;

/// A free loopback port (bound and released; the node binds it next).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    // Below Linux's ephemeral range (32768-60999): a port the OS hands out for bind(0) or for
    // an outgoing connection could be taken by another node before this one binds it.
    for _ in 0..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::UNIX_EPOCH
                .elapsed()
                .map_or(0, |d| d.as_nanos()),
        );
        let port = 20000 + (h.finish() % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

/// One node of a test cluster: its data directory, its fixed gRPC address, its process.
pub struct ClusterNode {
    pub dir: PathBuf,
    pub grpc: String,
    pub child: Option<Child>,
    pub addresses: Option<Addresses>,
    /// More arguments of `tinkerdb start`.
    pub args: Vec<String>,
}

impl ClusterNode {
    pub fn new(root: &Path, i: usize) -> ClusterNode {
        ClusterNode {
            dir: root.join(format!("n{i}")),
            grpc: format!("127.0.0.1:{}", free_port()),
            child: None,
            addresses: None,
            args: Vec::new(),
        }
    }

    /// Starts the process with `--join`; does not wait for it to be ready.
    pub fn spawn(&mut self, join: &str) {
        let _ = std::fs::remove_file(self.dir.join("addresses.json"));
        std::fs::create_dir_all(&self.dir).unwrap();
        // Appended: the log of every run of the node, in order.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
            .args(["start", "--data-dir"])
            .arg(&self.dir)
            .args(["--sql-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--grpc-addr", &self.grpc, "--join", join])
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tinkerdb starts");
        self.child = Some(child);
        self.addresses = None;
    }

    /// Waits (bounded) until the node wrote its addresses: it is serving.
    pub fn ready(&mut self) -> &Addresses {
        let path = self.dir.join("addresses.json");
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.addresses.is_none() {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(a) = serde_json::from_str::<Addresses>(&text)
            {
                self.addresses = Some(a);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not ready; its log:\n{}",
                self.dir.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.addresses.as_ref().expect("set above")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.addresses = None;
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    pub async fn sql(&mut self) -> tokio_postgres::Client {
        let addr = self.ready().sql;
        super::connect(addr).await
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts `n` nodes with `--join` naming all of them and initialises the cluster on the
/// first.
pub fn start_cluster(root: &Path, n: usize) -> Vec<ClusterNode> {
    start_cluster_with(root, n, &[])
}

/// [`start_cluster`], each node started with `args` as well.
pub fn start_cluster_with(root: &Path, n: usize, args: &[&str]) -> Vec<ClusterNode> {
    let mut nodes: Vec<ClusterNode> = (1..=n)
        .map(|i| {
            let mut node = ClusterNode::new(root, i);
            node.args = args.iter().map(|a| a.to_string()).collect();
            node
        })
        .collect();
    let join = nodes
        .iter()
        .map(|n| n.grpc.clone())
        .collect::<Vec<_>>()
        .join(",");
    for node in &mut nodes {
        node.spawn(&join);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
            .args(["init", "--host", &nodes[0].grpc])
            .output()
            .expect("tinkerdb init runs");
        if out.status.success() {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("initialised"),
                "init output: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for node in &mut nodes {
        node.ready();
    }
    nodes
}

pub fn join_list(nodes: &[ClusterNode]) -> String {
    nodes
        .iter()
        .map(|n| n.grpc.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `stmt` until it succeeds (a cluster may be electing leaders), at most `timeout`.
pub async fn eventually(client: &tokio_postgres::Client, stmt: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match client.batch_execute(stmt).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying {stmt:?}: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{stmt:?} kept failing: {e:?}"),
        }
    }
}

/// Waits (bounded) until every range on `node` has exactly `n` voters in one settled voter
/// set, as its `/status` reports.
pub async fn wait_replicated(node: &mut ClusterNode, n: usize) {
    let http = node.ready().http;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (code, body) = super::http_get(http, "/status").await;
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let replicas = status["replicas"].as_array().cloned().unwrap_or_default();
        let settled = |r: &serde_json::Value| {
            let voters = r["voters"].as_array().cloned().unwrap_or_default();
            voters.len() == 1
                && voters[0].as_array().map_or(0, |v| v.len()) == n
                && r["learners"].as_array().is_some_and(|l| l.is_empty())
                && r["replicas"].as_array().map_or(0, |v| v.len()) == n
        };
        if code == 200 && !replicas.is_empty() && replicas.iter().all(settled) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ranges not on {n} nodes: {body}\nlog:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the test table `t (id, v)` through the first node and waits until every range is on
/// three nodes; returns the first node's client.
pub async fn replicated_table(nodes: &mut [ClusterNode]) -> tokio_postgres::Client {
    let a = nodes[0].sql().await;
    eventually(
        &a,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
        Duration::from_secs(30),
    )
    .await;
    wait_replicated(&mut nodes[0], 3).await;
    a
}

/// Inserts `ids` one statement each through `client`, retrying each until it succeeds (a
/// leader may be failing over); a retry that finds the row (23505: an attempt whose outcome
/// was unknown had applied) counts as done. Every id passed was acknowledged on return.
pub async fn insert_all(client: &tokio_postgres::Client, ids: impl Iterator<Item = i32>) {
    for id in ids {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stmt = format!("INSERT INTO t VALUES ({id}, 'v')");
            match client.batch_execute(&stmt).await {
                Ok(()) => break,
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("retrying {stmt:?}: {e:?}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("{stmt:?} kept failing: {e:?}"),
            }
        }
    }
}

pub async fn ids(client: &tokio_postgres::Client) -> Vec<i32> {
    client
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect()
}
