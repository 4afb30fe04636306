//! Multi-node tests: real `tinkerdb` processes on loopback ports picked at run time, formed
//! into a cluster with `--join` and `tinkerdb init`, killed and restarted.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;

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
    // A schema change through one node is seen by the next statement on another, even one
    // whose text ran there before (no plan kept past it).
    let b = nodes[1].sql().await;
    let first_row = |messages: Vec<tokio_postgres::SimpleQueryMessage>| {
        messages.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).map(str::to_string))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
    };
    let before = first_row(
        b.simple_query("SELECT * FROM t WHERE id = 1")
            .await
            .unwrap(),
    );
    assert_eq!(before, Some(vec![Some("1".into()), Some("x".into())]));
    a.batch_execute("DROP TABLE t; CREATE TABLE t (id INT PRIMARY KEY, v TEXT, w INT)")
        .await
        .unwrap();
    a.batch_execute(
        "INSERT INTO t VALUES (1, 'new', 7), (2, 'n', 0), (3, 'n', 0), (11, 'n', 0), (12, 'n', 0)",
    )
    .await
    .unwrap();
    let rows = b.query("SELECT * FROM t WHERE id = 1", &[]).await.unwrap();
    assert_eq!(rows[0].len(), 3, "the new table's columns");
    let after = first_row(
        b.simple_query("SELECT * FROM t WHERE id = 1")
            .await
            .unwrap(),
    );
    assert_eq!(
        after,
        Some(vec![Some("1".into()), Some("new".into()), Some("7".into())])
    );
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
    let opened: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("store open node_id=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(opened.len(), 2, "opened twice:\n{log}");
    assert_eq!(opened[0], opened[1], "the same node id both times:\n{log}");
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

/// `SHOW NODES` through `client`: (node id, liveness).
async fn show_nodes(client: &tokio_postgres::Client) -> Vec<(i64, String)> {
    client
        .query("SHOW NODES", &[])
        .await
        .expect("SHOW NODES")
        .iter()
        .map(|r| (r.get("node_id"), r.get("liveness")))
        .collect()
}

/// Waits (bounded) until `SHOW NODES` through `client` reports exactly `want`.
async fn wait_liveness(client: &tokio_postgres::Client, want: &[(i64, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = show_nodes(client).await;
        let matches = got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|((i, l), (j, m))| i == j && l == m);
        if matches {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "SHOW NODES: {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_and_the_others_keep_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let join = join_list(&nodes);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..50).await;
    // Node 1 leads every range, and hears from the two others.
    let ranges = a.query("SHOW RANGES FROM TABLE t", &[]).await.unwrap();
    assert!(!ranges.is_empty());
    for r in &ranges {
        assert_eq!(r.get::<_, Option<i64>>("leader"), Some(1));
        assert_eq!(r.get::<_, String>("replicas").split(',').count(), 3);
    }
    let all = a.query("SHOW RANGES", &[]).await.unwrap();
    assert!(all.len() > ranges.len(), "range 1 holds no table");
    wait_liveness(&a, &[(1, "live"), (2, "live"), (3, "live")]).await;
    // Killing node 1 forces a failover of every range.
    nodes[0].kill9();
    let b = nodes[1].sql().await;
    insert_all(&b, 50..100).await;
    let c = nodes[2].sql().await;
    assert_eq!(ids(&c).await, (0..100).collect::<Vec<_>>());
    // The new leaders stop hearing from node 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views = [show_nodes(&b).await, show_nodes(&c).await];
        let of_1: Vec<&str> = views
            .iter()
            .map(|v| {
                v.iter()
                    .find(|(id, _)| *id == 1)
                    .map_or("", |(_, l)| l.as_str())
            })
            .collect();
        if of_1.contains(&"unreachable") && !of_1.contains(&"live") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 as nodes 2 and 3 see it: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    nodes[0].spawn(&join);
    let a = nodes[0].sql().await;
    eventually(&a, "SELECT 1 FROM t LIMIT 1", Duration::from_secs(30)).await;
    assert_eq!(ids(&a).await, (0..100).collect::<Vec<_>>());
    insert_all(&a, 100..110).await;
    assert_eq!(ids(&b).await, (0..110).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_writes_never_succeed_and_resume_after() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let join = join_list(&nodes);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..20).await;
    nodes[1].kill9();
    nodes[2].kill9();
    // One node of three: a write waits or fails, and never succeeds.
    let write = a.batch_execute("INSERT INTO t VALUES (1000, 'lost?')");
    match tokio::time::timeout(Duration::from_secs(20), write).await {
        Err(_) => {}
        Ok(result) => assert!(result.is_err(), "a write without a quorum succeeded"),
    }
    // A read fails as a transaction that did not commit and can be retried: 40001, with a
    // message that says the range is unavailable (not an internal error).
    let a = nodes[0].sql().await;
    let read = a.query("SELECT id FROM t", &[]);
    match tokio::time::timeout(Duration::from_secs(60), read).await {
        Err(_) => panic!("a read without a quorum neither failed nor answered"),
        Ok(Ok(rows)) => panic!("a read without a quorum answered {} rows", rows.len()),
        Ok(Err(e)) => {
            let db = e.as_db_error().expect("a database error");
            assert_eq!(
                db.code(),
                &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE,
                "{}",
                db.message()
            );
            assert!(db.message().contains("unavailable"), "{}", db.message());
        }
    }
    drop(a);
    nodes[1].spawn(&join);
    let b = nodes[1].sql().await;
    insert_all(&b, 20..30).await;
    let got = ids(&b).await;
    let expected: Vec<i32> = (0..30).collect();
    // The write that had no quorum may still have applied (its outcome was unknown): the
    // acknowledged ones are all there, nothing else is.
    let without_unknown: Vec<i32> = got.iter().copied().filter(|i| *i != 1000).collect();
    assert_eq!(without_unknown, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restarted_all_at_once_comes_back_with_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let join = join_list(&nodes);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..30).await;
    drop(a);
    for node in &mut nodes {
        node.kill9();
    }
    for node in &mut nodes {
        node.spawn(&join);
    }
    for node in &mut nodes {
        let c = node.sql().await;
        eventually(&c, "SELECT 1 FROM t LIMIT 1", Duration::from_secs(60)).await;
        assert_eq!(ids(&c).await, (0..30).collect::<Vec<_>>());
    }
    let c = nodes[2].sql().await;
    insert_all(&c, 30..40).await;
    assert_eq!(ids(&c).await, (0..40).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_serves_no_stale_read_when_it_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..10).await;
    // Node 1 leads range 1 (the oracle) and the table's range: pause it past the election
    // timeout, write through the others, resume it.
    nodes[0].signal("STOP");
    let b = nodes[1].sql().await;
    insert_all(&b, 10..20).await;
    b.batch_execute("UPDATE t SET v = 'new' WHERE id = 0")
        .await
        .unwrap();
    nodes[0].signal("CONT");
    // The resumed node reads through whoever leads now: never the state before the pause.
    let v: String = a
        .query_one("SELECT v FROM t WHERE id = 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "new");
    assert_eq!(ids(&a).await, (0..20).collect::<Vec<_>>());
    // Timestamps it hands out after resuming are above every one issued meanwhile: a write
    // through it commits after the update and is seen by the others.
    a.batch_execute("UPDATE t SET v = 'newer' WHERE id = 0")
        .await
        .unwrap();
    let v: String = b
        .query_one("SELECT v FROM t WHERE id = 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "newer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_a_three_node_cluster_and_stops_cleanly() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(["demo", "--nodes", "3"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut urls = Vec::new();
    let data_dir = loop {
        let line = lines.next().expect("demo output").unwrap();
        if let Some(rest) = line.strip_prefix("node ") {
            urls.push(rest.split_whitespace().nth(1).unwrap().to_string());
        }
        if let Some(dir) = line.split("(data in ").nth(1) {
            break PathBuf::from(dir.split(')').next().unwrap());
        }
    };
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert!(data_dir.exists());
    let mut clients = Vec::new();
    for url in &urls {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        clients.push(client);
    }
    eventually(
        &clients[1],
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
        Duration::from_secs(30),
    )
    .await;
    insert_all(&clients[2], 0..5).await;
    assert_eq!(ids(&clients[0]).await, (0..5).collect::<Vec<_>>());
    drop(clients);
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exit: {status:?}");
    assert!(!data_dir.exists(), "the demo's data is removed");
}

/// The replicas `/status` of `node` lists: (range id, voter sets).
async fn replicas_on(node: &mut ClusterNode) -> Vec<(u64, serde_json::Value)> {
    let http = node.ready().http;
    let (_, body) = common::http_get(http, "/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    status["replicas"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| (r["range_id"].as_u64().unwrap_or(0), r["voters"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommissioned_node_hands_its_replicas_to_a_new_node() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..30).await;
    // A fourth node joins: with three replicas per range it gets none yet.
    let mut fourth = ClusterNode::new(tmp.path(), 4);
    let join = format!("{},{}", join_list(&nodes), fourth.grpc);
    fourth.spawn(&join);
    let d = fourth.sql().await;
    assert_eq!(ids(&d).await, (0..30).collect::<Vec<_>>());
    // Decommissioning node 1 moves its replicas (by snapshot) to the fourth node.
    let out = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
        .args(["node", "decommission", "1", "--host", &nodes[1].grpc])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "decommission: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("node 1 decommissioned"), "{stdout}");
    wait_replicated(&mut fourth, 3).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !replicas_on(&mut nodes[0]).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "node 1 still holds {:?}",
            replicas_on(&mut nodes[0]).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        fourth.log().contains("installed snapshot"),
        "{}",
        fourth.log()
    );
    // Node 1 can go: the other three serve everything.
    nodes[0].kill9();
    insert_all(&d, 30..40).await;
    let b = nodes[1].sql().await;
    assert_eq!(ids(&b).await, (0..40).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_replicas_are_replaced_so_a_second_failure_is_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--dead-node-timeout", "3s"];
    let mut nodes = start_cluster_with(tmp.path(), 3, &args);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..20).await;
    let mut fourth = ClusterNode::new(tmp.path(), 4);
    fourth.args = args.iter().map(|a| a.to_string()).collect();
    let join = format!("{},{}", join_list(&nodes), fourth.grpc);
    fourth.spawn(&join);
    fourth.ready();
    // Node 2 dies: once it has been silent for the timeout, every range it held gets a replica
    // on the fourth node instead.
    nodes[1].kill9();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let held = replicas_on(&mut nodes[0]).await.len();
        if replicas_on(&mut fourth).await.len() == held {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead node's replicas were not replaced: {:?}\nlog:\n{}",
            replicas_on(&mut fourth).await,
            nodes[0].log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_replicated(&mut fourth, 3).await;
    wait_replicated(&mut nodes[0], 3).await;
    insert_all(&a, 20..40).await;
    // A second node dies: each range still has two live voters of three.
    nodes[2].kill9();
    insert_all(&a, 40..60).await;
    let d = fourth.sql().await;
    assert_eq!(ids(&d).await, (0..60).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_between_sessions_on_two_nodes_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 1..=2).await;
    let b = nodes[1].sql().await;
    a.batch_execute("BEGIN; UPDATE t SET v = 'a' WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE t SET v = 'b' WHERE id = 2")
        .await
        .unwrap();
    // Each now waits for the other's row: a cycle no single node's waits show.
    let first = tokio::spawn(async move {
        let r = a.batch_execute("UPDATE t SET v = 'a' WHERE id = 2").await;
        (r, a)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = tokio::spawn(async move {
        let r = b.batch_execute("UPDATE t SET v = 'b' WHERE id = 1").await;
        (r, b)
    });
    let deadlock = Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED);
    let mut victims = 0;
    for task in [first, second] {
        let (result, client) = task.await.unwrap();
        match result {
            Ok(()) => client.batch_execute("COMMIT").await.unwrap(),
            Err(e) => {
                assert_eq!(e.code(), deadlock, "{e:?}");
                victims += 1;
                client.batch_execute("ROLLBACK").await.unwrap();
            }
        }
    }
    assert_eq!(victims, 1, "one transaction of the cycle is the victim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_a_split_catches_up_on_both_halves() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let join = join_list(&nodes);
    let a = replicated_table(&mut nodes).await;
    insert_all(&a, 0..20).await;
    nodes[2].kill9();
    eventually(
        &a,
        "ALTER TABLE t SPLIT AT VALUES (10)",
        Duration::from_secs(30),
    )
    .await;
    insert_all(&a, 20..30).await;
    // The third node comes back: it applies the split from the log and catches up on both
    // halves; then, with the first node gone, it is needed for a quorum of each.
    nodes[2].spawn(&join);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ranges = replicas_on(&mut nodes[2]).await;
        if ranges.len() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the split's right half never reached the node: {ranges:?}\n{}",
            nodes[2].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_replicated(&mut nodes[2], 3).await;
    nodes[0].kill9();
    let c = nodes[2].sql().await;
    insert_all(&c, 30..40).await;
    assert_eq!(ids(&c).await, (0..40).collect::<Vec<_>>());
    let b = nodes[1].sql().await;
    assert_eq!(ids(&b).await, (0..40).collect::<Vec<_>>());
}

/// A transaction waiting for a lock on a node with no replica of the lock's range is woken by
/// the release, through the range's leader: with re-checks every 10 minutes, and a lock
/// timeout as long, only the wake-up can let it through in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_waiter_on_a_node_without_the_range_is_woken_by_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster_with(
        tmp.path(),
        2,
        &["--replication-factor", "1", "--lock-recheck", "600s"],
    );
    let a = nodes[0].sql().await;
    eventually(
        &a,
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)",
        Duration::from_secs(30),
    )
    .await;
    insert_all(&a, 1..=1).await;
    // The second node holds no replica: every range stays on the first.
    let http = nodes[1].ready().http;
    let (_, body) = common::http_get(http, "/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["replicas"].as_array().map(Vec::len),
        Some(0),
        "{body}"
    );

    a.batch_execute("BEGIN; UPDATE t SET v = 'a' WHERE id = 1")
        .await
        .unwrap();
    let b = nodes[1].sql().await;
    b.batch_execute("SET lock_timeout = '600s'").await.unwrap();
    let waiter = tokio::spawn(async move {
        let r = b.batch_execute("UPDATE t SET v = 'b' WHERE id = 1").await;
        (r, b)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "the update waits for the lock");
    a.batch_execute("COMMIT").await.unwrap();
    let (result, b) = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter is woken by the release")
        .unwrap();
    result.unwrap();
    let rows = b.query("SELECT v FROM t WHERE id = 1", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "b");
}
