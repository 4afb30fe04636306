//! Session-level tests through the public API: describe and parameter inference, parameters at
//! execution, transaction status, batched scans, and the same behaviour over the real store.

use std::sync::Arc;

use sql::{Column, DataType, Description, Engine, Error, ExecResult, Session, TxnStatus, Value};

fn session(engine: &Arc<Engine>) -> Session {
    Session::new(engine.clone(), "root", "tinkerdb").expect("session")
}

async fn exec(s: &mut Session, sql: &str, params: &[Value]) -> sql::Result<ExecResult> {
    let mut stmts = s.parse(sql)?;
    assert_eq!(stmts.len(), 1, "{sql}");
    let stmt = stmts.remove(0);
    s.execute(&stmt, params).await
}

async fn must(s: &mut Session, sql: &str) -> ExecResult {
    exec(s, sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn rows(s: &mut Session, sql: &str, params: &[Value]) -> Vec<Vec<Value>> {
    match exec(s, sql, params).await {
        Ok(ExecResult::Rows { rows, .. }) => rows,
        other => panic!("{sql}: {other:?}"),
    }
}

async fn describe(
    s: &mut Session,
    sql: &str,
    declared: &[Option<DataType>],
) -> sql::Result<Description> {
    let stmt = s.parse(sql)?.remove(0);
    s.describe(&stmt, declared).await
}

fn col(name: &str, data_type: DataType) -> Column {
    Column {
        name: name.into(),
        data_type,
    }
}

async fn setup(s: &mut Session) {
    must(
        s,
        "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT, n BIGINT, f FLOAT8, b BOOL)",
    )
    .await;
    must(
        s,
        "INSERT INTO kv VALUES (1, 'a', 10, 1.5, true), (2, 'b', 20, NULL, false)",
    )
    .await;
}

#[tokio::test]
async fn describe_infers_parameter_and_result_types() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    setup(&mut s).await;
    use DataType::*;
    let d = describe(
        &mut s,
        "SELECT v, k + 1, n AS total, count(*) FROM kv WHERE k = $1 GROUP BY v, k, n",
        &[],
    )
    .await
    .expect("describe");
    assert_eq!(d.params, vec![Int4]);
    assert_eq!(
        d.columns,
        vec![
            col("v", Text),
            col("?column?", Int4),
            col("total", Int8),
            col("count", Int8)
        ]
    );
    let cases: &[(&str, &[DataType])] = &[
        (
            "INSERT INTO kv VALUES ($1, $2, $3, $4, $5)",
            &[Int4, Text, Int8, Float8, Bool],
        ),
        ("INSERT INTO kv (f, k) VALUES ($1, $2)", &[Float8, Int4]),
        ("UPDATE kv SET v = $1 WHERE k = $2", &[Text, Int4]),
        ("DELETE FROM kv WHERE $1 < n", &[Int8]),
        ("SELECT $1::int8, $2", &[Int8, Text]),
        ("SELECT * FROM kv LIMIT $1 OFFSET $2", &[Int8, Int8]),
        ("SELECT v || $1 FROM kv", &[Text]),
        ("SELECT 1 WHERE $1", &[Bool]),
    ];
    for (sql, want) in cases {
        let d = describe(&mut s, sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(d.params, *want, "{sql}");
    }
    let d = describe(&mut s, "SELECT * FROM kv WHERE k = $1", &[Some(Int8)])
        .await
        .expect("describe");
    assert_eq!(d.params, vec![Int8]);
    assert_eq!(d.columns.len(), 5);
    let d = describe(&mut s, "SELECT $1::int4 AS x", &[])
        .await
        .expect("describe");
    assert_eq!(d.columns, vec![col("x", Int4)]);
    let d = describe(&mut s, "EXPLAIN SELECT * FROM kv", &[])
        .await
        .expect("describe");
    assert_eq!(d.columns, vec![col("QUERY PLAN", Text)]);
    let d = describe(&mut s, "SHOW transaction_isolation", &[])
        .await
        .expect("describe");
    assert_eq!(d.columns, vec![col("transaction_isolation", Text)]);
    let d = describe(&mut s, "INSERT INTO kv (k) VALUES (9)", &[])
        .await
        .expect("describe");
    assert!(d.columns.is_empty());
    // Describing does not execute.
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM kv", &[]).await,
        vec![vec![Value::Int(2)]]
    );
    let err = describe(&mut s, "SELECT nope FROM kv", &[])
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::UndefinedColumn(_)), "{err:?}");
}

#[tokio::test]
async fn parameters_at_execution() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    setup(&mut s).await;
    let got = rows(&mut s, "SELECT v FROM kv WHERE k = $1", &[Value::Int(2)]).await;
    assert_eq!(got, vec![vec![Value::Text("b".into())]]);
    // Text-format parameters are parsed as the inferred type.
    let got = rows(
        &mut s,
        "SELECT v FROM kv WHERE k = $1",
        &[Value::Text("1".into())],
    )
    .await;
    assert_eq!(got, vec![vec![Value::Text("a".into())]]);
    let got = rows(
        &mut s,
        "SELECT k FROM kv WHERE k >= $1 ORDER BY k LIMIT $2",
        &[Value::Int(1), Value::Int(1)],
    )
    .await;
    assert_eq!(got, vec![vec![Value::Int(1)]]);
    let got = rows(&mut s, "SELECT k FROM kv WHERE k = $1", &[Value::Null]).await;
    assert!(got.is_empty());
    let r = exec(
        &mut s,
        "INSERT INTO kv (k, v) VALUES ($1, $2)",
        &[Value::Int(3), Value::Text("c".into())],
    )
    .await;
    assert_eq!(
        r,
        Ok(ExecResult::Command {
            tag: "INSERT".into(),
            rows: Some(1)
        })
    );
    let err = exec(
        &mut s,
        "SELECT v FROM kv WHERE k = $1",
        &[Value::Text("x".into())],
    )
    .await
    .expect_err("fails");
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let err = exec(&mut s, "SELECT v FROM kv WHERE k = $1", &[])
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    let err = exec(&mut s, "SELECT 1 LIMIT $1", &[Value::Int(-1)])
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
}

#[tokio::test]
async fn transaction_status_and_failed_blocks() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    setup(&mut s).await;
    assert_eq!(s.txn_status(), TxnStatus::Idle);
    must(&mut s, "BEGIN").await;
    assert_eq!(s.txn_status(), TxnStatus::InBlock);
    must(&mut s, "INSERT INTO kv (k) VALUES (7)").await;
    let err = exec(&mut s, "INSERT INTO kv (k) VALUES (7)", &[])
        .await
        .expect_err("duplicate");
    assert!(matches!(err, Error::UniqueViolation(_)));
    assert_eq!(s.txn_status(), TxnStatus::Failed);
    assert_eq!(
        exec(&mut s, "SELECT 1", &[]).await,
        Err(Error::InFailedTransaction)
    );
    let stmt = s.parse("SELECT 1").expect("parse").remove(0);
    assert_eq!(
        s.describe(&stmt, &[]).await,
        Err(Error::InFailedTransaction)
    );
    assert_eq!(
        must(&mut s, "COMMIT").await,
        ExecResult::Command {
            tag: "ROLLBACK".into(),
            rows: None
        }
    );
    assert_eq!(s.txn_status(), TxnStatus::Idle);
    assert!(
        rows(&mut s, "SELECT k FROM kv WHERE k = 7", &[])
            .await
            .is_empty()
    );
    // An error outside a block leaves the session idle.
    assert!(exec(&mut s, "SELECT 1 / 0", &[]).await.is_err());
    assert_eq!(s.txn_status(), TxnStatus::Idle);
    assert!(s.parse("").expect("parse").is_empty());
    let err = Session::new(engine.clone(), "root", "other")
        .err()
        .expect("unknown database");
    assert!(matches!(err, Error::InvalidParameter(_)));
}

/// Scans cross several KV batches (resume keys) and spans cut them correctly.
async fn large_table(engine: Arc<Engine>) {
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE big (id INT PRIMARY KEY, sq BIGINT)").await;
    must(&mut s, "BEGIN").await;
    for chunk in (0..2500).collect::<Vec<i64>>().chunks(250) {
        let values: Vec<String> = chunk.iter().map(|i| format!("({i}, {})", i * i)).collect();
        must(
            &mut s,
            &format!("INSERT INTO big VALUES {}", values.join(", ")),
        )
        .await;
    }
    must(&mut s, "COMMIT").await;
    let count = |r: Vec<Vec<Value>>| r[0][0].clone();
    assert_eq!(
        count(rows(&mut s, "SELECT count(*) FROM big", &[]).await),
        Value::Int(2500)
    );
    assert_eq!(
        count(
            rows(
                &mut s,
                "SELECT count(*) FROM big WHERE id >= 1000 AND id < 2100",
                &[]
            )
            .await
        ),
        Value::Int(1100)
    );
    assert_eq!(
        count(rows(&mut s, "SELECT sum(sq) FROM big WHERE id % 2 = 0", &[]).await),
        Value::Numeric(2_601_042_500i64.into())
    );
    let got = rows(
        &mut s,
        "SELECT id FROM big WHERE id > 2000 ORDER BY id DESC LIMIT 2 OFFSET 1",
        &[],
    )
    .await;
    assert_eq!(got, vec![vec![Value::Int(2498)], vec![Value::Int(2497)]]);
    let r = must(&mut s, "DELETE FROM big WHERE id >= 100").await;
    assert_eq!(
        r,
        ExecResult::Command {
            tag: "DELETE".into(),
            rows: Some(2400)
        }
    );
    assert_eq!(
        count(rows(&mut s, "SELECT count(*) FROM big", &[]).await),
        Value::Int(100)
    );
}

#[tokio::test]
async fn large_table_memory() {
    large_table(Engine::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_table_txn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    large_table(Engine::new(db.clone())).await;
    db.shutdown().await.expect("shutdown");
}

/// Data written through one engine is there after the store is reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = txn::Db::open_local(dir.path()).await.expect("open");
        let mut s = session(&Engine::new(db.clone()));
        setup(&mut s).await;
        db.shutdown().await.expect("shutdown");
    }
    let db = txn::Db::open_local(dir.path()).await.expect("reopen");
    let mut s = session(&Engine::new(db.clone()));
    let got = rows(&mut s, "SELECT k, v FROM kv ORDER BY k", &[]).await;
    assert_eq!(got.len(), 2);
    must(&mut s, "CREATE TABLE other (x INT PRIMARY KEY)").await;
    let plan = rows(&mut s, "EXPLAIN SELECT * FROM other WHERE x = 1", &[]).await;
    assert_eq!(
        plan,
        vec![vec![Value::Text("Get other /Table/101/1/1".into())]]
    );
    db.shutdown().await.expect("shutdown");
}

/// ROLLBACK TO SAVEPOINT releases the row locks taken after the savepoint: another session
/// can then update the row at once instead of waiting for the block to end. (Under SERIALIZABLE
/// the block's commit would then fail: the rolled-back statement's read of row 1 stays in the
/// read set. REPEATABLE READ only checks the writes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_savepoint_releases_locks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let engine = Engine::new(db.clone());
    let (mut a, mut b) = (session(&engine), session(&engine));
    must(&mut a, "CREATE TABLE r (id INT PRIMARY KEY, v INT)").await;
    must(&mut a, "INSERT INTO r VALUES (1, 0), (2, 0)").await;
    must(&mut a, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    must(&mut a, "UPDATE r SET v = 1 WHERE id = 2").await;
    must(&mut a, "SAVEPOINT s").await;
    must(&mut a, "UPDATE r SET v = 1 WHERE id = 1").await;
    must(&mut a, "ROLLBACK TO SAVEPOINT s").await;
    let started = std::time::Instant::now();
    must(&mut b, "UPDATE r SET v = 5 WHERE id = 1").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "the lock of row 1 was released by ROLLBACK TO"
    );
    must(&mut a, "COMMIT").await;
    assert_eq!(
        rows(&mut a, "SELECT v FROM r ORDER BY id", &[]).await,
        vec![vec![Value::Int(5)], vec![Value::Int(1)]]
    );
    db.shutdown().await.expect("shutdown");
}

/// A batch is one implicit transaction: its status is Idle throughout, an error rolls back the
/// statements before it, and a failing statement stops the batch.
#[tokio::test]
async fn batches_are_atomic() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let stmts = s
        .parse("INSERT INTO t VALUES (1); SELECT 1 / 0; INSERT INTO t VALUES (2)")
        .expect("parse");
    let results = s.execute_batch(&stmts).await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[1], Err(Error::DivisionByZero));
    assert_eq!(s.txn_status(), TxnStatus::Idle);
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t", &[]).await,
        vec![vec![Value::Int(0)]]
    );
    let stmts = s
        .parse("INSERT INTO t VALUES (1); BEGIN; INSERT INTO t VALUES (2)")
        .expect("parse");
    assert!(s.execute_batch(&stmts).await.iter().all(|r| r.is_ok()));
    assert_eq!(s.txn_status(), TxnStatus::InBlock);
    must(&mut s, "ROLLBACK").await;
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t", &[]).await,
        vec![vec![Value::Int(0)]]
    );
}

/// SELECT ... FOR UPDATE locks the rows it returns: another session's UPDATE of such a row
/// waits until the locking block ends, and then sees its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_for_update_locks_returned_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let engine = Engine::new(db.clone());
    let (mut a, mut b) = (session(&engine), session(&engine));
    must(&mut a, "CREATE TABLE q (id INT PRIMARY KEY, v INT)").await;
    must(&mut a, "INSERT INTO q VALUES (1, 0), (2, 0)").await;
    must(&mut a, "BEGIN").await;
    assert_eq!(
        rows(&mut a, "SELECT v FROM q WHERE id = 1 FOR UPDATE", &[]).await,
        vec![vec![Value::Int(0)]]
    );
    // Row 2 was not returned, so it is not locked.
    must(&mut b, "UPDATE q SET v = 7 WHERE id = 2").await;
    let waiter = tokio::spawn(async move {
        must(&mut b, "UPDATE q SET v = v + 1 WHERE id = 1").await;
        b
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the update waits for the row lock");
    must(&mut a, "UPDATE q SET v = 10 WHERE id = 1").await;
    must(&mut a, "COMMIT").await;
    let mut b = waiter.await.expect("join");
    assert_eq!(
        rows(&mut b, "SELECT v FROM q ORDER BY id", &[]).await,
        vec![vec![Value::Int(11)], vec![Value::Int(7)]]
    );
    db.shutdown().await.expect("shutdown");
}

/// AS OF SYSTEM TIME reads the snapshot of a past moment: a relative interval, or an RFC 3339
/// time.
#[tokio::test]
async fn as_of_system_time_reads_the_past() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE p (id INT PRIMARY KEY, v INT)").await;
    must(&mut s, "INSERT INTO p VALUES (1, 1)").await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let between = std::time::SystemTime::now();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    must(&mut s, "UPDATE p SET v = 2").await;
    let v = |n| vec![vec![Value::Int(n)]];
    assert_eq!(rows(&mut s, "SELECT v FROM p", &[]).await, v(2));
    let sql = "SELECT v FROM p AS OF SYSTEM TIME '-200ms'";
    assert_eq!(rows(&mut s, sql, &[]).await, v(1));
    let ms = between
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis();
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // 1970-01-01 plus `days`, via the civil-from-days algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let time = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let sql = format!("SELECT v FROM p AS OF SYSTEM TIME '{time}'");
    assert_eq!(rows(&mut s, &sql, &[]).await, v(1), "{sql}");
}

async fn execute(s: &mut Session, stmt: &sql::Statement, params: &[Value]) -> ExecResult {
    s.execute(stmt, params)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", stmt.sql()))
}

async fn prepare(s: &mut Session, sql: &str) -> sql::Statement {
    let stmt = s.parse(sql).expect("parse").remove(0);
    s.describe(&stmt, &[]).await.expect("describe");
    stmt
}

/// A prepared statement keeps its plan across executions (parameters are bound each time) and
/// is planned again after a schema change, whichever session made it: never with stale columns.
async fn prepared_across_schema_changes(engine: Arc<Engine>) {
    use DataType::*;
    let (mut a, mut b) = (session(&engine), session(&engine));
    must(&mut b, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    must(&mut b, "INSERT INTO t VALUES (1, 'one'), (2, 'two')").await;
    let select = prepare(&mut a, "SELECT * FROM t WHERE id = $1").await;
    let insert = prepare(&mut a, "INSERT INTO t VALUES ($1, $2)").await;
    for (id, v) in [(1, "one"), (2, "two"), (1, "one")] {
        let want = ExecResult::Rows {
            columns: vec![col("id", Int4), col("v", Text)],
            rows: vec![vec![Value::Int(id), Value::Text(v.into())]],
        };
        assert_eq!(execute(&mut a, &select, &[Value::Int(id)]).await, want);
    }

    must(&mut b, "DROP TABLE t").await;
    let err = a.execute(&select, &[Value::Int(1)]).await;
    assert!(matches!(err, Err(Error::UndefinedTable(_))), "{err:?}");
    must(
        &mut b,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT, f FLOAT8)",
    )
    .await;
    must(&mut b, "INSERT INTO t VALUES (1, 10, 0.5)").await;
    let params = [Value::Int(2), Value::Text("20".into())];
    execute(&mut a, &insert, &params).await;
    let columns = vec![col("id", Int8), col("n", Int8), col("f", Float8)];
    for (id, n, f) in [(1, 10, Value::Float(0.5)), (2, 20, Value::Null)] {
        let want = ExecResult::Rows {
            columns: columns.clone(),
            rows: vec![vec![Value::Int(id), Value::Int(n), f]],
        };
        assert_eq!(execute(&mut a, &select, &[Value::Int(id)]).await, want);
    }

    // A block's own schema change: its statements see it at once, others once it commits.
    let b_select = prepare(&mut b, "SELECT * FROM t WHERE id = $1").await;
    must(&mut a, "BEGIN").await;
    must(&mut a, "DROP TABLE t").await;
    must(&mut a, "CREATE TABLE t (id INT PRIMARY KEY, s TEXT)").await;
    let got = execute(&mut a, &select, &[Value::Int(1)]).await;
    let new_columns = vec![col("id", Int4), col("s", Text)];
    assert_eq!(
        got,
        ExecResult::Rows {
            columns: new_columns.clone(),
            rows: vec![]
        }
    );
    let got = execute(&mut b, &b_select, &[Value::Int(1)]).await;
    assert!(matches!(got, ExecResult::Rows { columns: c, .. } if c == columns));
    must(&mut a, "COMMIT").await;
    let got = execute(&mut b, &b_select, &[Value::Int(1)]).await;
    assert!(matches!(got, ExecResult::Rows { columns: c, .. } if c == new_columns));
}

#[tokio::test]
async fn prepared_across_schema_changes_memory() {
    prepared_across_schema_changes(Engine::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_across_schema_changes_txn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    prepared_across_schema_changes(Engine::new(db.clone())).await;
    db.shutdown().await.expect("shutdown");
}

/// AS OF SYSTEM TIME plans from the catalog of its own timestamp, even when the same text ran
/// before and the present schema differs.
#[tokio::test]
async fn as_of_system_time_reads_the_past_schema() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE p (id INT PRIMARY KEY, v TEXT)").await;
    must(&mut s, "INSERT INTO p VALUES (1, 'old')").await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let past = s
        .parse("SELECT * FROM p AS OF SYSTEM TIME '-200ms'")
        .expect("parse")
        .remove(0);
    let old = vec![vec![Value::Int(1), Value::Text("old".into())]];
    assert!(
        matches!(execute(&mut s, &past, &[]).await, ExecResult::Rows { rows, .. } if rows == old)
    );
    must(&mut s, "DROP TABLE p").await;
    must(&mut s, "CREATE TABLE p (id INT PRIMARY KEY, n INT)").await;
    must(&mut s, "INSERT INTO p VALUES (1, 5)").await;
    let got = execute(&mut s, &past, &[]).await;
    assert!(
        matches!(&got, ExecResult::Rows { rows, .. } if *rows == old),
        "{got:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let got = execute(&mut s, &past, &[]).await;
    let new = vec![vec![Value::Int(1), Value::Int(5)]];
    assert!(
        matches!(&got, ExecResult::Rows { rows, .. } if *rows == new),
        "{got:?}"
    );
}

/// An implicit INSERT's primary keys are checked where its writes apply: a duplicate found
/// at commit is 23505 naming the constraint, concurrent inserts of one key commit once, and an
/// INSERT inside a block reports the duplicate at the statement, as in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_key_duplicates_over_the_real_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let engine = Engine::new(db.clone());
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE u (id INT PRIMARY KEY, v TEXT)").await;
    must(&mut s, "INSERT INTO u VALUES (1, 'one')").await;
    let dup = |r: sql::Result<ExecResult>| match r {
        Err(e @ Error::UniqueViolation(_)) => e.to_string(),
        other => panic!("expected 23505, got {other:?}"),
    };
    let msg = dup(exec(&mut s, "INSERT INTO u VALUES (2, 'two'), (1, 'again')", &[]).await);
    assert_eq!(
        msg,
        "duplicate key value violates unique constraint \"u_pkey\""
    );
    assert_eq!(
        rows(&mut s, "SELECT id FROM u ORDER BY id", &[]).await,
        vec![vec![Value::Int(1)]],
        "the failed statement wrote nothing"
    );

    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut s = session(&engine);
                exec(&mut s, &format!("INSERT INTO u VALUES (7, 'v{i}')"), &[]).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            r => {
                dup(r);
            }
        }
    }
    assert_eq!(ok, 1, "exactly one concurrent insert of a key commits");

    must(&mut s, "BEGIN").await;
    let msg = dup(exec(&mut s, "INSERT INTO u VALUES (1, 'in a block')", &[]).await);
    assert!(msg.contains("\"u_pkey\""), "{msg}");
    must(&mut s, "ROLLBACK").await;

    // A UNIQUE index entry is checked the same way, and the error names the index.
    must(&mut s, "CREATE UNIQUE INDEX u_v ON u (v)").await;
    let msg = dup(exec(&mut s, "INSERT INTO u VALUES (8, 'one')", &[]).await);
    assert_eq!(
        msg,
        "duplicate key value violates unique constraint \"u_v\""
    );
    let msg = dup(exec(&mut s, "UPDATE u SET v = 'one' WHERE id = 7", &[]).await);
    assert!(msg.contains("\"u_v\""), "{msg}");
    must(&mut s, "UPDATE u SET v = v WHERE id = 1").await;
    db.shutdown().await.expect("shutdown");
}

/// EXPLAIN ANALYZE runs the query and reports, per operator, the rows it returned, and for
/// the statement the KV requests and rows read: a point get reads one row, an index lookup
/// reads its entries and their rows only, a full scan reads the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_counts_rows_and_kv_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let mut s = session(&Engine::new(db.clone()));
    must(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, c INT, v TEXT)").await;
    let values: Vec<String> = (1..=100)
        .map(|i| format!("({i}, {}, 'v{i}')", i % 10))
        .collect();
    must(
        &mut s,
        &format!("INSERT INTO t VALUES {}", values.join(", ")),
    )
    .await;
    must(&mut s, "CREATE INDEX t_c ON t (c)").await;

    // Times vary; everything else is exact.
    let times = regex::Regex::new(r"time=[0-9.]+ ms|Execution Time: [0-9.]+ ms").unwrap();
    let mut analyze = async |sql: &str| -> Vec<String> {
        rows(&mut s, &format!("EXPLAIN ANALYZE {sql}"), &[])
            .await
            .into_iter()
            .map(|r| match &r[0] {
                Value::Text(t) => times.replace_all(t, "T").into_owned(),
                v => panic!("{v:?}"),
            })
            .collect()
    };
    assert_eq!(
        analyze("SELECT v FROM t WHERE id = 7").await,
        vec![
            "Projection v (actual rows=1 T)",
            "└─ Get t /Table/100/1/7 (actual rows=1 T)",
            "T, rows returned: 1, KV requests: 1, KV rows read: 1",
        ]
    );
    let indexed = analyze("SELECT id FROM t WHERE c = 3").await;
    assert_eq!(indexed.len(), 3, "{indexed:?}");
    assert!(
        indexed[1].starts_with("└─ IndexScan t@t_c")
            || indexed[1].starts_with("└─ IndexOnlyScan t@t_c"),
        "{indexed:?}"
    );
    assert!(indexed[1].ends_with("(actual rows=10 T)"), "{indexed:?}");
    let kv = &indexed[2];
    assert!(
        kv.starts_with("T, rows returned: 10, KV requests: "),
        "{kv}"
    );
    let read: u64 = kv.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (10..=20).contains(&read),
        "the index entries and their rows only: {kv}"
    );
    let full = analyze("SELECT count(*) FROM t WHERE v = 'v5'").await;
    assert_eq!(
        full.last().unwrap(),
        "T, rows returned: 1, KV requests: 1, KV rows read: 100",
        "{full:?}"
    );
    assert!(
        full.iter()
            .any(|l| l.contains("Scan t") && l.ends_with("(actual rows=100 T)")),
        "{full:?}"
    );
    // Writes are refused, as a clear 0A000.
    let err = exec(&mut s, "EXPLAIN ANALYZE DELETE FROM t", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM t", &[]).await,
        vec![vec![Value::Int(100)]]
    );
    db.shutdown().await.expect("shutdown");
}

/// The last line of EXPLAIN ANALYZE: "..., KV rows read: N" as N.
async fn rows_read(s: &mut Session, sql: &str) -> (Vec<String>, u64) {
    let lines: Vec<String> = rows(s, &format!("EXPLAIN ANALYZE {sql}"), &[])
        .await
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            v => panic!("{v:?}"),
        })
        .collect();
    let last = lines.last().expect("a summary line").clone();
    let read = last.rsplit(' ').next().unwrap().parse().unwrap();
    (lines, read)
}

#[tokio::test]
async fn a_lookup_join_reads_only_the_rows_it_joins_until_its_left_input_proves_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let mut s = session(&Engine::new(db.clone()));
    must(&mut s, "CREATE TABLE c (id INT PRIMARY KEY, label TEXT)").await;
    must(&mut s, "CREATE TABLE i (id INT PRIMARY KEY, cat BIGINT)").await;
    must(
        &mut s,
        "INSERT INTO c SELECT g, 'c' || g FROM generate_series(1, 1000) g",
    )
    .await;
    must(
        &mut s,
        "INSERT INTO i SELECT g, g % 1000 + 1 FROM generate_series(1, 5000) g",
    )
    .await;
    let small = "SELECT i.id, c.label FROM i JOIN c ON c.id = i.cat WHERE i.id BETWEEN 10 AND 29";
    let (plan, read) = rows_read(&mut s, small).await;
    assert!(
        plan.iter().any(|l| l.contains("LookupJoin c on id = cat")),
        "{plan:?}"
    );
    assert_eq!(
        read, 40,
        "20 rows of i and the 20 rows of c they join: {plan:?}"
    );
    // Bounds computed from parameters bound a span too (pgbench's prepared statements).
    let lines: Vec<String> = rows(
        &mut s,
        "EXPLAIN ANALYZE SELECT i.id, c.label FROM i JOIN c ON c.id = i.cat \
         WHERE i.id BETWEEN $1 AND $1 + 19",
        &[Value::Int(10)],
    )
    .await
    .into_iter()
    .map(|r| format!("{:?}", r[0]))
    .collect();
    assert!(
        lines.last().unwrap().ends_with("KV rows read: 40\")"),
        "{lines:?}"
    );
    // The first two batches of i (1,024 rows each, LOOKUP_ROWS in all) look up their 1,000
    // distinct keys each; past them the join reads c whole (once) and hashes it.
    let (plan, read) = rows_read(&mut s, "SELECT count(*) FROM i JOIN c ON c.id = i.cat").await;
    assert_eq!(read, 5000 + 2 * 1000 + 1000, "{plan:?}");
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*), sum(c.id) FROM i JOIN c ON c.id = i.cat",
            &[]
        )
        .await,
        vec![vec![Value::Int(5000), Value::Int(2_502_500)]]
    );
    db.shutdown().await.expect("shutdown");
}

/// A LATERAL item and a correlated subquery are re-planned for each enclosing row once its
/// values are known: a key column compared with an outer reference bounds a key span, so each
/// row reads only what it joins.
#[tokio::test]
async fn lateral_items_and_correlated_subqueries_read_only_the_rows_each_outer_row_needs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let mut s = session(&Engine::new(db.clone()));
    must(&mut s, "CREATE TABLE o (id INT PRIMARY KEY, ref INT)").await;
    must(&mut s, "CREATE TABLE d (id INT PRIMARY KEY, v INT)").await;
    must(&mut s, "CREATE INDEX d_v ON d (v)").await;
    must(
        &mut s,
        "INSERT INTO d SELECT g, g % 100 FROM generate_series(1, 2000) g",
    )
    .await;
    must(
        &mut s,
        "INSERT INTO o SELECT g, g * 7 FROM generate_series(1, 10) g",
    )
    .await;
    let lateral = "SELECT o.id, l.v FROM o, LATERAL (SELECT v FROM d WHERE d.id = o.ref) l";
    let (plan, read) = rows_read(&mut s, lateral).await;
    assert!(plan.iter().any(|l| l.contains("LateralJoin")), "{plan:?}");
    assert_eq!(read, 10 + 10, "10 rows of o, one row of d each: {plan:?}");
    // Through a secondary index: 20 rows of d have each v.
    let by_index =
        "SELECT o.id, l.n FROM o, LATERAL (SELECT count(*) AS n FROM d WHERE d.v = o.id) l";
    let (plan, read) = rows_read(&mut s, by_index).await;
    assert_eq!(read, 10 + 10 * 20, "{plan:?}");
    let correlated = "SELECT o.id, (SELECT d.v FROM d WHERE d.id = o.ref) FROM o";
    let (plan, read) = rows_read(&mut s, correlated).await;
    assert_eq!(read, 10 + 10, "{plan:?}");
    assert_eq!(
        rows(
            &mut s,
            "SELECT sum(l.v) FROM o, LATERAL (SELECT v FROM d WHERE d.id = o.ref) l",
            &[]
        )
        .await,
        vec![vec![Value::Int((1..=10).map(|g| (g * 7) % 100).sum())]]
    );
    db.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn queries_past_the_memory_limit_fail_with_53200_and_give_their_memory_back() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    must(
        &mut s,
        "INSERT INTO t SELECT g, repeat('x', 200) || g FROM generate_series(1, 20000) g",
    )
    .await;
    engine.set_memory_limit(2 << 20);
    for sql in [
        "SELECT * FROM t",
        "SELECT v FROM t ORDER BY v DESC",
        "SELECT v, count(*) FROM t GROUP BY v",
        "SELECT DISTINCT v FROM t",
        "SELECT a.id FROM t a JOIN t b ON a.v = b.v",
        "SELECT v, row_number() OVER (ORDER BY id) FROM t",
        "SELECT v FROM t UNION SELECT v FROM t",
    ] {
        let err = exec(&mut s, sql, &[]).await.unwrap_err();
        assert!(
            matches!(&err, Error::OutOfMemory(m) if m.contains("memory budget exceeded")),
            "{sql}: {err:?}"
        );
        assert_eq!(engine.memory_usage().1, 0, "{sql}: reservations given back");
    }
    // What holds little runs: an aggregate without groups, a top-N sort, few groups.
    assert_eq!(
        rows(&mut s, "SELECT count(*), max(length(v)) FROM t", &[]).await,
        vec![vec![Value::Int(20000), Value::Int(205)]]
    );
    assert_eq!(
        rows(&mut s, "SELECT id FROM t ORDER BY v DESC LIMIT 2", &[]).await,
        vec![vec![Value::Int(9999)], vec![Value::Int(9998)]]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT id % 3, count(*) FROM t GROUP BY 1 ORDER BY 1",
            &[]
        )
        .await
        .len(),
        3
    );
    engine.set_memory_limit(1 << 30);
    assert_eq!(rows(&mut s, "SELECT * FROM t", &[]).await.len(), 20000);
    assert_eq!(engine.memory_usage().1, 0);
}

/// The rows a write with RETURNING keeps are reserved like a query's: past the limit the
/// statement fails with 53200, writes nothing and gives its memory back.
#[tokio::test]
async fn returning_past_the_memory_limit_fails_with_53200() {
    let engine = Engine::memory();
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    must(&mut s, "CREATE TABLE u (id INT PRIMARY KEY, v TEXT)").await;
    must(
        &mut s,
        "INSERT INTO t SELECT g, repeat('x', 200) || g FROM generate_series(1, 20000) g",
    )
    .await;
    engine.set_memory_limit(2 << 20);
    for sql in [
        "INSERT INTO u SELECT * FROM t RETURNING *",
        "UPDATE t SET v = v || 'y' RETURNING v",
        "DELETE FROM t RETURNING v",
    ] {
        let err = exec(&mut s, sql, &[]).await.unwrap_err();
        assert!(
            matches!(&err, Error::OutOfMemory(m) if m.contains("memory budget exceeded")),
            "{sql}: {err:?}"
        );
        assert_eq!(engine.memory_usage().1, 0, "{sql}: reservations given back");
    }
    assert_eq!(
        rows(
            &mut s,
            "SELECT (SELECT count(*) FROM u), count(*), max(length(v)) FROM t",
            &[]
        )
        .await,
        vec![vec![Value::Int(0), Value::Int(20000), Value::Int(205)]]
    );
    // A small RETURNING runs.
    assert_eq!(
        rows(&mut s, "DELETE FROM t WHERE id = 7 RETURNING id", &[]).await,
        vec![vec![Value::Int(7)]]
    );
}

/// Sessions inserting into a SERIAL table at once never get the same id: each takes blocks of
/// values from the sequence's counter in transactions of its own.
async fn serial_ids_are_unique_across_sessions(engine: Arc<Engine>) {
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE ser (id serial, who int)").await;
    let tasks: Vec<_> = (0..8)
        .map(|who| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut s = session(&engine);
                for _ in 0..40 {
                    must(&mut s, &format!("INSERT INTO ser (who) VALUES ({who})")).await;
                }
                // A nextval outside the table takes from the same sequence.
                rows(&mut s, "SELECT nextval('ser_id_seq')", &[]).await
            })
        })
        .collect();
    let mut extra = Vec::new();
    for t in tasks {
        extra.extend(t.await.expect("task"));
    }
    let counts = rows(
        &mut s,
        "SELECT count(*), count(DISTINCT id), min(id) FROM ser",
        &[],
    )
    .await;
    assert_eq!(
        counts,
        vec![vec![Value::Int(320), Value::Int(320), Value::Int(1)]]
    );
    for v in extra {
        let found = rows(&mut s, "SELECT count(*) FROM ser WHERE id = $1", &v).await;
        assert_eq!(
            found,
            vec![vec![Value::Int(0)]],
            "nextval {v:?} was also a row's id"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_ids_are_unique_across_sessions_memory() {
    serial_ids_are_unique_across_sessions(Engine::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_ids_are_unique_across_sessions_txn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    serial_ids_are_unique_across_sessions(Engine::new(db.clone())).await;
    db.shutdown().await.expect("shutdown");
}

/// Sessions upserting the same keys at once: each waits behind the others' locks on the
/// conflicting keys, so no 23505 escapes (only retryable 40001 may), and every applied
/// statement counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_of_the_same_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = txn::Db::open_local(dir.path()).await.expect("open");
    let engine = Engine::new(db.clone());
    let mut s = session(&engine);
    must(&mut s, "CREATE TABLE up (k INT PRIMARY KEY, n INT)").await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut s = session(&engine);
                let mut applied = 0;
                for i in 0..15 {
                    let sql = format!(
                        "INSERT INTO up VALUES ({}, 1) ON CONFLICT (k) DO UPDATE SET n = up.n + 1",
                        i % 3
                    );
                    match exec(&mut s, &sql, &[]).await {
                        Ok(_) => applied += 1,
                        Err(Error::Serialization(_)) => {}
                        Err(e) => panic!("{sql}: {e:?}"),
                    }
                }
                applied
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        applied += t.await.expect("task");
    }
    assert!(applied > 0);
    assert_eq!(
        rows(&mut s, "SELECT count(*), sum(n) FROM up", &[]).await,
        vec![vec![Value::Int(3), Value::Int(applied)]]
    );
    db.shutdown().await.expect("shutdown");
}
