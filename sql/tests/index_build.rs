//! Building an index over more rows than one backfill transaction holds, and using it.

use std::sync::Arc;

use sql::{Engine, ExecResult, Session, Value};

async fn run(s: &mut Session, sql: &str) -> sql::Result<ExecResult> {
    let stmt = s.parse(sql)?.remove(0);
    s.execute(&stmt, &[]).await
}

async fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    match run(s, sql).await {
        Ok(ExecResult::Rows { rows, .. }) => rows,
        other => panic!("{sql}: {other:?}"),
    }
}

async fn plan(s: &mut Session, sql: &str) -> String {
    let lines = rows(s, &format!("EXPLAIN {sql}")).await;
    lines
        .into_iter()
        .map(|r| r[0].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// 2,500 rows span three backfill batches; every row is found through the index afterwards,
/// and a unique index over them fails on the one duplicate, wherever it lies.
async fn backfill(engine: Arc<Engine>) {
    let mut s = Session::new(engine, "root", "tinkerdb").expect("session");
    run(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT)")
        .await
        .expect("create");
    for chunk in 0..5 {
        let values: Vec<String> = (0..500)
            .map(|i| {
                let id = chunk * 500 + i;
                format!("({id}, {}, {id})", id % 100)
            })
            .collect();
        let sql = format!("INSERT INTO t VALUES {}", values.join(", "));
        run(&mut s, &sql).await.expect("insert");
    }
    run(&mut s, "CREATE INDEX t_a ON t (a)")
        .await
        .expect("index");
    let q = "SELECT count(*) FROM t WHERE a = 42";
    assert!(plan(&mut s, q).await.contains("IndexOnlyScan t@t_a"));
    assert_eq!(rows(&mut s, q).await, vec![vec![Value::Int(25)]]);
    let q = "SELECT sum(b) FROM t WHERE a >= 0 AND a < 100";
    assert!(plan(&mut s, q).await.contains("IndexScan t@t_a"));
    assert_eq!(
        rows(&mut s, q).await,
        vec![vec![Value::Int((0..2500).sum::<i64>())]]
    );
    run(&mut s, "UPDATE t SET b = 2499 WHERE id = 2")
        .await
        .expect("update");
    match run(&mut s, "CREATE UNIQUE INDEX t_b ON t (b)").await {
        Err(sql::Error::UniqueViolation(m)) => {
            assert_eq!(m, "could not create unique index \"t_b\"")
        }
        other => panic!("unique index over a duplicate: {other:?}"),
    }
    // The failed build left neither entries nor a name behind.
    assert!(
        !plan(&mut s, "SELECT id FROM t WHERE b = 7")
            .await
            .contains("t_b")
    );
    run(&mut s, "UPDATE t SET b = 2 WHERE id = 2")
        .await
        .expect("update");
    run(&mut s, "CREATE UNIQUE INDEX t_b ON t (b)")
        .await
        .expect("unique index");
    assert_eq!(
        rows(&mut s, "SELECT id FROM t WHERE b = 1700").await,
        vec![vec![Value::Int(1700)]]
    );
}

#[tokio::test]
async fn backfill_memory() {
    backfill(Engine::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_txn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    backfill(Engine::new(db.clone())).await;
    db.shutdown().await.expect("shutdown");
}
