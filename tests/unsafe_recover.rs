//! `tinkerdb debug unsafe-recover`: a three-node cluster loses two nodes for good; the survivor,
//! stopped, has the dead nodes removed from every range's membership, and once restarted it
//! serves every row written before and takes new writes alone.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::cluster::*;

/// Runs `tinkerdb debug unsafe-recover` on `dir` with `args`, stdin answering `answer`.
fn unsafe_recover(dir: &Path, args: &[&str], answer: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(["debug", "unsafe-recover", "--data-dir"])
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tinkerdb debug unsafe-recover runs");
    let mut stdin = child.stdin.take().expect("piped");
    let _ = stdin.write_all(answer.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("it finishes")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn node_id(node: &mut ClusterNode) -> u64 {
    let http = node.ready().http;
    let (_, body) = common::http_get(http, "/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    status["node_id"].as_u64().expect("a node id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_of_a_lost_quorum_serves_again_after_unsafe_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let join = join_list(&nodes);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..50).await;
    let me = node_id(&mut nodes[0]).await.to_string();
    let dead = format!(
        "{},{}",
        node_id(&mut nodes[1]).await,
        node_id(&mut nodes[2]).await
    );

    // A live process holds the directory: refused, nothing written.
    let out = unsafe_recover(&nodes[0].dir, &["--dead-nodes", &dead, "--yes"], "");
    assert!(!out.status.success(), "ran on a live node's directory");
    assert!(text(&out).contains("in use"), "{}", text(&out));

    nodes[1].kill9();
    nodes[2].kill9();
    // Two of three nodes gone: a write waits or fails, and never succeeds.
    let write = a.batch_execute("INSERT INTO t VALUES (1000, 'lost?')");
    match tokio::time::timeout(Duration::from_secs(20), write).await {
        Err(_) => {}
        Ok(result) => assert!(result.is_err(), "a write without a quorum succeeded"),
    }
    drop(a);
    nodes[0].kill9();

    // Without --yes the operator is asked; anything but "yes" changes nothing.
    let out = unsafe_recover(&nodes[0].dir, &["--dead-nodes", &dead], "no\n");
    assert!(!out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains("range 1 "), "{}", text(&out));
    assert!(text(&out).contains("nothing changed"), "{}", text(&out));

    // The node itself cannot be declared dead.
    let out = unsafe_recover(&nodes[0].dir, &["--dead-nodes", &me, "--yes"], "");
    assert!(!out.status.success(), "{}", text(&out));

    let out = unsafe_recover(&nodes[0].dir, &["--dead-nodes", &dead, "--yes"], "");
    assert!(out.status.success(), "{}", text(&out));
    let changed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(changed.contains("range 1 "), "{}", text(&out));
    assert!(
        changed.lines().filter(|l| l.starts_with("range ")).count() >= 2,
        "every range (system and table) is changed: {}",
        text(&out)
    );
    // A second run finds nothing left to change.
    let out = unsafe_recover(&nodes[0].dir, &["--dead-nodes", &dead, "--yes"], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("nothing to change")
            && !String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with("range ")),
        "{}",
        text(&out)
    );

    nodes[0].spawn(&join);
    let a = nodes[0].sql().await;
    eventually(&a, "SELECT 1 FROM t LIMIT 1", Duration::from_secs(60)).await;
    let got: Vec<i32> = ids(&a).await.into_iter().filter(|i| *i != 1000).collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>(), "every row written before");
    insert_all(&a, 50..60).await;
    let got: Vec<i32> = ids(&a).await.into_iter().filter(|i| *i != 1000).collect();
    assert_eq!(got, (0..60).collect::<Vec<_>>());
    nodes[0].kill9();
}
