//! Multi-node tests: real `tinkerdb` processes on loopback ports picked at run time, formed
//! into a cluster with `--join` and `tinkerdb init`, killed and restarted.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tinkerdb::Addresses;

/// A free loopback port (bound and released; the node binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One node of a test cluster: its data directory, its fixed gRPC address, its process.
struct ClusterNode {
    dir: PathBuf,
    grpc: String,
    child: Option<Child>,
    addresses: Option<Addresses>,
}

impl ClusterNode {
    fn new(root: &Path, i: usize) -> ClusterNode {
        ClusterNode {
            dir: root.join(format!("n{i}")),
            grpc: format!("127.0.0.1:{}", free_port()),
            child: None,
            addresses: None,
        }
    }

    /// Starts the process with `--join`; does not wait for it to be ready.
    fn spawn(&mut self, join: &str) {
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
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tinkerdb starts");
        self.child = Some(child);
        self.addresses = None;
    }

    /// Waits (bounded) until the node wrote its addresses: it is serving.
    fn ready(&mut self) -> &Addresses {
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.addresses = None;
    }

    async fn sql(&mut self) -> tokio_postgres::Client {
        let addr = self.ready().sql;
        common::connect(addr).await
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts `n` nodes with `--join` naming all of them and initialises the cluster on the
/// first.
fn start_cluster(root: &Path, n: usize) -> Vec<ClusterNode> {
    let mut nodes: Vec<ClusterNode> = (1..=n).map(|i| ClusterNode::new(root, i)).collect();
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

fn join_list(nodes: &[ClusterNode]) -> String {
    nodes
        .iter()
        .map(|n| n.grpc.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `stmt` until it succeeds (a cluster may be electing leaders), at most `timeout`.
async fn eventually(client: &tokio_postgres::Client, stmt: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match client.batch_execute(stmt).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying {stmt:?}: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{stmt:?} kept failing: {e}"),
        }
    }
}

async fn ids(client: &tokio_postgres::Client) -> Vec<i32> {
    client
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_a_cluster_and_serve_the_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let a = nodes[0].sql().await;
    eventually(
        &a,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
        Duration::from_secs(30),
    )
    .await;
    a.batch_execute("INSERT INTO t VALUES (1, 'a')")
        .await
        .unwrap();
    // Writes and reads through the nodes that joined reach the same ranges.
    for (i, node) in nodes.iter_mut().enumerate().skip(1) {
        let c = node.sql().await;
        c.batch_execute(&format!("INSERT INTO t VALUES ({}, 'n')", i + 1))
            .await
            .unwrap();
        c.batch_execute(&format!(
            "BEGIN; UPDATE t SET v = 'x' WHERE id = 1; INSERT INTO t VALUES ({}, 'tx'); COMMIT",
            i + 10
        ))
        .await
        .unwrap();
    }
    for node in &mut nodes {
        let c = node.sql().await;
        assert_eq!(ids(&c).await, vec![1, 2, 3, 11, 12]);
        let v: String = c
            .query_one("SELECT v FROM t WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "x");
    }
    // A node restarted on its data directory comes back as itself (no second join).
    let join = join_list(&nodes);
    nodes[2].kill9();
    nodes[2].spawn(&join);
    let c = nodes[2].sql().await;
    eventually(
        &c,
        "INSERT INTO t VALUES (4, 'again')",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(ids(&c).await, vec![1, 2, 3, 4, 11, 12]);
    let log = nodes[2].log();
    assert_eq!(
        log.matches("joined a cluster").count(),
        1,
        "joined once:\n{log}"
    );
    assert_eq!(
        log.matches("store open node_id=3").count(),
        2,
        "node 3 twice:\n{log}"
    );
}

#[test]
fn init_refuses_a_node_that_is_already_initialised() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = start_cluster(tmp.path(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(["init", "--host", &nodes[0].grpc])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already initialised"), "{err}");
}
