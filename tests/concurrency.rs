//! Concurrency through the PostgreSQL wire protocol against an in-process node: the isolation
//! claims as clients see them.

mod common;

use std::time::Duration;

use tinkerdb::Node;
use tokio_postgres::Client;

async fn start() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = common::start_node(dir.path()).await;
    (dir, node)
}

async fn connect(node: &Node) -> Client {
    common::connect(node.sql_addr()).await
}

fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

/// Runs `sql` as one transaction, retrying on 40001 and 40P01 (as a good client does); returns
/// the number of retries.
async fn with_retries(client: &Client, sql: &str) -> u32 {
    let mut retries = 0;
    loop {
        match client.batch_execute(sql).await {
            Ok(()) => return retries,
            Err(e) if matches!(code(&e), Some("40001" | "40P01")) => {
                client.batch_execute("ROLLBACK").await.unwrap();
                retries += 1;
                assert!(retries < 1000, "too many retries");
            }
            Err(e) => panic!("{sql}: {e:?}"),
        }
    }
}

/// Every transaction updates the same row inside BEGIN ... COMMIT: UPDATE locks the row at
/// statement time, so they queue behind each other and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_row_updates_complete_without_serialization_failures() {
    let (_dir, node) = start().await;
    let setup = connect(&node).await;
    setup
        .batch_execute(
            "CREATE TABLE hot (id INT PRIMARY KEY, n BIGINT); INSERT INTO hot VALUES (1, 0)",
        )
        .await
        .unwrap();
    let (clients, each) = (8, 20);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = connect(&node).await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                client
                    .batch_execute("BEGIN; UPDATE hot SET n = n + 1 WHERE id = 1; COMMIT")
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .unwrap()
            .unwrap();
    }
    let n: i64 = setup
        .query_one("SELECT n FROM hot WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, clients * each);
}

/// Read-modify-write increments in explicit transactions that read first (SELECT, then UPDATE
/// with the value read): conflicts are retried by the client, and no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_modify_write_increments_lose_nothing() {
    let (_dir, node) = start().await;
    let setup = connect(&node).await;
    setup
        .batch_execute("CREATE TABLE c (id INT PRIMARY KEY, n BIGINT); INSERT INTO c VALUES (1, 0)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let client = connect(&node).await;
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 10 {
                let r: Result<(), tokio_postgres::Error> = async {
                    client.batch_execute("BEGIN").await?;
                    let n: i64 = client
                        .query_one("SELECT n FROM c WHERE id = 1", &[])
                        .await?
                        .get(0);
                    client
                        .execute("UPDATE c SET n = $1 WHERE id = 1", &[&(n + 1)])
                        .await?;
                    client.batch_execute("COMMIT").await
                }
                .await;
                match r {
                    Ok(()) => done += 1,
                    Err(e) if code(&e) == Some("40001") => {
                        client.batch_execute("ROLLBACK").await.unwrap()
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .unwrap()
            .unwrap();
    }
    let n: i64 = setup
        .query_one("SELECT n FROM c WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 60);
}

/// Concurrent transfers and concurrent readers of the total: every reader sees the same total
/// and the final total is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_transfers_keep_every_total() {
    let (_dir, node) = start().await;
    let setup = connect(&node).await;
    setup
        .batch_execute("CREATE TABLE bank (id INT PRIMARY KEY, balance BIGINT)")
        .await
        .unwrap();
    let accounts = 10;
    for id in 0..accounts {
        setup
            .execute("INSERT INTO bank VALUES ($1, 100)", &[&id])
            .await
            .unwrap();
    }
    let total = 100 * accounts as i64;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let client = connect(&node).await;
        tasks.push(tokio::spawn(async move {
            let mut retries = 0;
            for i in 0..15 {
                let (from, to) = (
                    (worker * 7 + i * 3) % accounts,
                    (worker * 5 + i * 7 + 1) % accounts,
                );
                if from == to {
                    continue;
                }
                let sql = format!(
                    "BEGIN; UPDATE bank SET balance = balance - 1 WHERE id = {from}; \
                     UPDATE bank SET balance = balance + 1 WHERE id = {to}; COMMIT"
                );
                retries += with_retries(&client, &sql).await;
            }
            retries
        }));
    }
    let reader = connect(&node).await;
    let reads = tokio::spawn(async move {
        let mut seen = 0;
        for _ in 0..30 {
            let rows = reader.query("SELECT balance FROM bank", &[]).await.unwrap();
            let sum: i64 = rows.iter().map(|r| r.get::<_, i64>(0)).sum();
            assert_eq!(sum, total, "a reader saw a partial transfer");
            seen += 1;
        }
        seen
    });
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(reads.await.unwrap(), 30);
    let rows = setup.query("SELECT balance FROM bank", &[]).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).sum::<i64>(), total);
}

/// The on-call doctors: each transaction checks that another doctor is on call, then takes
/// itself off call. SERIALIZABLE refuses the second commit; REPEATABLE READ allows write skew.
async fn on_call(
    isolation: &str,
) -> (
    Result<(), tokio_postgres::Error>,
    Result<(), tokio_postgres::Error>,
    i64,
) {
    let (_dir, node) = start().await;
    let setup = connect(&node).await;
    setup
        .batch_execute("CREATE TABLE doctors (name TEXT PRIMARY KEY, on_call BOOLEAN); INSERT INTO doctors VALUES ('alice', true), ('bob', true)")
        .await
        .unwrap();
    let (alice, bob) = (connect(&node).await, connect(&node).await);
    for c in [&alice, &bob] {
        c.batch_execute(&format!("BEGIN ISOLATION LEVEL {isolation}"))
            .await
            .unwrap();
        let rows = c
            .query("SELECT name FROM doctors WHERE on_call = true", &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
    }
    alice
        .batch_execute("UPDATE doctors SET on_call = false WHERE name = 'alice'")
        .await
        .unwrap();
    bob.batch_execute("UPDATE doctors SET on_call = false WHERE name = 'bob'")
        .await
        .unwrap();
    let a = alice.batch_execute("COMMIT").await;
    let b = bob.batch_execute("COMMIT").await;
    let on: i64 = setup
        .query("SELECT name FROM doctors WHERE on_call = true", &[])
        .await
        .unwrap()
        .len() as i64;
    (a, b, on)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_skew_is_prevented_under_serializable() {
    let (a, b, on) = on_call("SERIALIZABLE").await;
    assert!(a.is_ok(), "{a:?}");
    let e = b.unwrap_err();
    assert_eq!(code(&e), Some("40001"), "{e:?}");
    assert_eq!(on, 1, "one doctor stays on call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_skew_is_allowed_under_repeatable_read() {
    let (a, b, on) = on_call("REPEATABLE READ").await;
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    assert_eq!(on, 0, "snapshot isolation admits write skew");
}

/// A lock wait is bounded: a statement blocked behind a lock held by an idle transaction fails
/// with 55P03 after the lock wait timeout, and the connection survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waits_time_out_with_55p03() {
    let (_dir, node) = start().await;
    let (a, b) = (connect(&node).await, connect(&node).await);
    a.batch_execute("CREATE TABLE l (id INT PRIMARY KEY, v INT); INSERT INTO l VALUES (1, 0)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; UPDATE l SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    let e = b
        .batch_execute("UPDATE l SET v = 2 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some("55P03"), "{e:?}");
    // lock_timeout sets the bound per session (default 10s), also inside a transaction block.
    let timeout: String = b.query_one("SHOW lock_timeout", &[]).await.unwrap().get(0);
    assert_eq!(timeout, "10s");
    b.batch_execute("BEGIN; SET lock_timeout = '200ms'")
        .await
        .unwrap();
    let e = b
        .batch_execute("UPDATE l SET v = 2 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some("55P03"), "{e:?}");
    b.batch_execute("ROLLBACK").await.unwrap();
    let e = b
        .batch_execute("SET lock_timeout = 'soon'")
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some("22023"), "{e:?}");
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("UPDATE l SET v = 3 WHERE id = 1")
        .await
        .unwrap();
    let v: i32 = a
        .query_one("SELECT v FROM l WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 3);
}

/// Two transactions lock rows in opposite orders: the wait that closes the cycle is refused with
/// 40P01 (not 55P03: the detector, not the lock wait timeout, ends it), the victim rolls back,
/// and the other transaction completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocks_abort_one_victim_with_40p01() {
    let (_dir, node) = start().await;
    let (a, b) = (connect(&node).await, connect(&node).await);
    a.batch_execute(
        "CREATE TABLE d (id INT PRIMARY KEY, v INT); INSERT INTO d VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    a.batch_execute("BEGIN; UPDATE d SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE d SET v = 1 WHERE id = 2")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let a_waits = tokio::spawn(async move {
        let r = a.batch_execute("UPDATE d SET v = 2 WHERE id = 2").await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rb = b.batch_execute("UPDATE d SET v = 2 WHERE id = 1").await;
    let (b_victim, survivor, victim) = match rb {
        Err(e) => {
            assert_eq!(code(&e), Some("40P01"), "{e:?}");
            b.batch_execute("ROLLBACK").await.unwrap();
            let (a, ra) = a_waits.await.unwrap();
            ra.unwrap();
            (true, a, b)
        }
        Ok(()) => {
            let (a, ra) = a_waits.await.unwrap();
            let e = ra.unwrap_err();
            assert_eq!(code(&e), Some("40P01"), "{e:?}");
            a.batch_execute("ROLLBACK").await.unwrap();
            (false, b, a)
        }
    };
    survivor.batch_execute("COMMIT").await.unwrap();
    eprintln!(
        "deadlock resolved in {:?} (victim: {})",
        started.elapsed(),
        if b_victim { "b" } else { "a" }
    );
    let rows = victim
        .query("SELECT v FROM d ORDER BY id", &[])
        .await
        .unwrap();
    let values: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        values == [1, 2] || values == [2, 1],
        "the survivor's two updates, nothing of the victim: {values:?}"
    );
}
