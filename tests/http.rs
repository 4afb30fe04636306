//! The HTTP endpoint of an in-process node: `/health` and Prometheus `/metrics`.

mod common;

use common::http_get as get;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::start_node(dir.path()).await;
    let client = common::connect(node.sql_addr()).await;
    client
        .batch_execute("CREATE TABLE m (id INT PRIMARY KEY); INSERT INTO m VALUES (1), (2)")
        .await
        .unwrap();

    let (status, body) = get(node.http_addr(), "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = get(node.http_addr(), "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "tinkerdb_sql_statements_total",
        "tinkerdb_txn_commits_total",
        "tinkerdb_raft_proposals_total",
    ] {
        let line = body
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
    assert!(
        body.contains("tinkerdb_range_is_leader{range=\"1\"} 1"),
        "{body}"
    );
    let (status, _) = get(node.http_addr(), "/nope").await;
    assert_eq!(status, 404);
    node.shutdown().await.unwrap();
}
