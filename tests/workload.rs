//! The load generators against an in-process node, through the library API: they load their
//! tables, run without errors, and the bank keeps its money. Outcomes only, never timings.

use std::time::Duration;

use tinkerdb::workload::{self, Kind, Options, YcsbWorkload};
use tinkerdb::{Config, Node};

async fn start_node(dir: &tempfile::TempDir) -> anyhow::Result<Node> {
    Node::start(Config {
        data_dir: dir.path().to_path_buf(),
        sql_addr: "127.0.0.1:0".parse()?,
        http_addr: "127.0.0.1:0".parse()?,
        grpc_addr: "127.0.0.1:0".parse()?,
        ..Default::default()
    })
    .await
}

fn options(node: &Node) -> Options {
    Options {
        urls: vec![node.sql_url()],
        duration: Duration::from_secs(2),
        concurrency: 4,
        rows: 500,
        batch: 50,
        accounts: 20,
        seed: 42,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_loads_and_runs_reads_and_writes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = start_node(&dir).await?;
    let opts = Options {
        read_percent: Some(50),
        ..options(&node)
    };
    workload::init(Kind::Kv, &opts).await?;

    let client = workload::connect(&node.sql_url()).await?;
    let rows = client.query("SELECT k FROM kv ORDER BY k", &[]).await?;
    let keys: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(keys, (0..500).collect::<Vec<i64>>());

    let report = workload::run(Kind::Kv, &opts).await?;
    assert!(report.ops > 0, "{}", report.summary());
    assert_eq!(report.errors, 0, "{}", report.summary());
    assert!(report.is_ok());
    // The run overwrote values, but never added or removed a key.
    let rows = client.query("SELECT k FROM kv ORDER BY k", &[]).await?;
    assert_eq!(rows.len(), 500);

    drop(client);
    node.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_transfers_conserve_money() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = start_node(&dir).await?;
    // Few accounts and several workers, so transfers conflict and must be retried.
    let opts = options(&node);
    workload::init(Kind::Bank, &opts).await?;

    let report = workload::run(Kind::Bank, &opts).await?;
    assert!(report.ops > 0, "{}", report.summary());
    assert_eq!(report.errors, 0, "{}", report.summary());
    let invariant = report.invariant.clone().expect("bank checks its invariant");
    assert!(invariant.ok, "{}", report.summary());
    assert_eq!(invariant.expected_total, 20 * 1_000);
    assert_eq!(invariant.actual_total, 20 * 1_000);
    assert!(report.is_ok());

    node.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_detects_a_broken_invariant() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = start_node(&dir).await?;
    let opts = Options {
        duration: Duration::from_millis(200),
        concurrency: 1,
        ..options(&node)
    };
    workload::init(Kind::Bank, &opts).await?;
    // Money vanishes while the run is under way: the check must notice.
    let client = workload::connect(&node.sql_url()).await?;
    let vandal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The delete can conflict with a concurrent transfer; retry it like any client would.
        for _ in 0..100 {
            match client.batch_execute("DELETE FROM bank WHERE id = 0").await {
                Err(e) if workload::is_retryable(&e) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                result => return result.map(|_| client),
            }
        }
        panic!("the delete kept conflicting");
    });
    let report = workload::run(Kind::Bank, &opts).await?;
    drop(vandal.await??);
    let invariant = report.invariant.clone().expect("bank checks its invariant");
    assert!(!invariant.ok, "{}", report.summary());
    assert!(!report.is_ok());
    assert_eq!(invariant.accounts, 19);

    node.shutdown().await
}

#[test]
fn options_are_validated() {
    let opts = Options {
        read_percent: Some(101),
        ..Options::default()
    };
    assert!(opts.validate(Kind::Kv).is_err());
    assert!(Options::default().validate(Kind::Kv).is_ok());
    let opts = Options {
        read_percent: Some(50),
        ..Options::default()
    };
    assert!(opts.validate(Kind::Bank).is_err());
    let opts = Options {
        concurrency: 0,
        ..Options::default()
    };
    assert!(opts.validate(Kind::Bank).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ycsb_workloads_run_without_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = start_node(&dir).await?;
    let opts = Options {
        duration: Duration::from_millis(500),
        ..options(&node)
    };
    workload::init(Kind::Ycsb, &opts).await?;
    for ycsb in [
        YcsbWorkload::A,
        YcsbWorkload::D,
        YcsbWorkload::E,
        YcsbWorkload::F,
    ] {
        let opts = Options {
            ycsb,
            ..opts.clone()
        };
        let report = workload::run(Kind::Ycsb, &opts).await?;
        assert!(report.ops > 0, "{}", report.summary());
        assert_eq!(report.errors, 0, "{}", report.summary());
    }
    // D and E inserted records after the 500 loaded ones; E's inserts did not collide with D's
    // (no errors above) because each run continues after the largest key.
    let client = workload::connect(&node.sql_url()).await?;
    let inserted = client
        .query(
            "SELECT ycsb_key FROM usertable WHERE ycsb_key >= $1",
            &[&workload::ycsb::key(500)],
        )
        .await?
        .len();
    assert!(inserted > 0);

    drop(client);
    node.shutdown().await
}
