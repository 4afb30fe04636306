//! Tests that run the real `tinkerdb` binary: durability across `kill -9`, the data-directory
//! lock, and address-in-use errors.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Process, start_args};

impl ProcessExt for Process {
    async fn connect(&self) -> tokio_postgres::Client {
        common::connect(self.addresses.sql).await
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// What these tests do with a node process.
trait ProcessExt {
    async fn connect(&self) -> tokio_postgres::Client;
    fn kill9(self);
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tmp, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_kill_9() {
    let (_tmp, dir) = data_dir();
    let node = Process::start(&dir);
    let client = node.connect().await;
    client
        .simple_query("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score BIGINT)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO t VALUES ($1, $2, $3)")
        .await
        .unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..200i32 {
        client
            .execute(&insert, &[&i, &format!("row {i}"), &(i as i64 * 10)])
            .await
            .unwrap();
        acknowledged.push(i);
    }
    // An explicit multi-statement transaction, acknowledged by COMMIT.
    client
        .batch_execute(
            "BEGIN; UPDATE t SET score = -1 WHERE id = 7; DELETE FROM t WHERE id = 8; COMMIT",
        )
        .await
        .unwrap();
    node.kill9();

    let node = Process::start(&dir);
    let client = node.connect().await;
    let rows = client
        .query("SELECT id, name, score FROM t ORDER BY id", &[])
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i32> = acknowledged.iter().copied().filter(|&i| i != 8).collect();
    assert_eq!(
        ids, expected,
        "every acknowledged row is there after kill -9"
    );
    let seven = client
        .query_one("SELECT score FROM t WHERE id = 7", &[])
        .await
        .unwrap();
    assert_eq!(seven.get::<_, i64>(0), -1);
    let name: String = client
        .query_one("SELECT name FROM t WHERE id = 199", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "row 199");
    // The restarted node keeps accepting writes.
    client
        .simple_query("INSERT INTO t VALUES (1000, 'after', 0)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_directory_fails_at_once() {
    let (_tmp, dir) = data_dir();
    let node = Process::start(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(start_args(&dir))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is in use by another tinkerdb process"),
        "stderr: {stderr}"
    );
    // The first node is unharmed.
    let client = node.connect().await;
    client
        .simple_query("CREATE TABLE still_ok (id INT PRIMARY KEY)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_by_name() {
    let (_tmp, dir) = data_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args([
            "start",
            "--data-dir",
            &dir.display().to_string(),
            "--sql-addr",
            &addr.to_string(),
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("the SQL address {addr} is already in use")),
        "stderr: {stderr}"
    );
}

#[test]
fn unsupported_flags_are_rejected() {
    let (_tmp, dir) = data_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args([
            "start",
            "--data-dir",
            &dir.display().to_string(),
            "--config",
            "tinkerdb.toml",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--config is not supported yet"));

    let output = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(["start", "--data-dir", &dir.display().to_string()])
        .args(["--gc-ttl", "0s"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--gc-ttl must be at least 1s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully_and_the_node_reopens() {
    let (_tmp, dir) = data_dir();
    let mut node = Process::start(&dir);
    let client = node.connect().await;
    client
        .batch_execute("CREATE TABLE g (id INT PRIMARY KEY); INSERT INTO g VALUES (1)")
        .await
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = node.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    drop(node);
    let node = Process::start(&dir);
    let client = node.connect().await;
    let n: i32 = client
        .query_one("SELECT id FROM g", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// The node's one gRPC port also carries Raft messages from other nodes of its cluster, and
/// refuses those of another cluster (a node started without --join talks to no other cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_port_serves_raft_and_refuses_other_clusters() {
    use raft::Transport;
    let dir = tempfile::tempdir().unwrap();
    let node = Process::start(dir.path());
    let vote = raft::Message {
        group: 1,
        from: 2,
        to: 1,
        kind: raft::RpcKind::Vote,
        body: Vec::new(),
    };
    let stranger = raft::GrpcTransport::new(0x5eed, raft::GrpcOptions::default());
    let err = stranger
        .send(&node.addresses.grpc.to_string(), vote)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, raft::Error::Invalid(m) if m.contains("cluster")),
        "{err:?}"
    );
}
