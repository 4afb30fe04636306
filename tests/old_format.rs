//! A data directory whose Raft log is in an older format is refused by `tinkerdb start` with a
//! message saying what to do, and the process exits instead of serving.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Process, connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_log_in_an_older_format_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = Process::start(dir.path());
        let client = connect(node.addresses.sql).await;
        client
            .batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
            .await
            .unwrap();
    }
    // Make the log look as format 1 wrote it: records, no format marker.
    {
        let db = fjall::Database::builder(dir.path().join("store"))
            .open()
            .unwrap();
        let raft = db
            .keyspace("raft", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        assert!(raft.get(b"format").unwrap().is_some(), "the marker exists");
        raft.remove(b"format").unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    std::fs::remove_file(dir.path().join("addresses.json")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(common::start_args(dir.path()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the node did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("raft log format 1")
            && stderr.contains("give this version a new, empty data directory"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("addresses.json").exists(),
        "the refused node never served"
    );
}
