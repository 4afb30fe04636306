//! Query cancellation (CancelRequest, pg_cancel_backend) and statement_timeout.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_postgres::NoTls;

/// A statement that runs for far longer than any test waits.
const LONG: &str = "SELECT count(*) FROM generate_series(1, 100000000)";

fn code(err: &tokio_postgres::Error) -> String {
    err.code().map(|c| c.code().to_string()).unwrap_or_default()
}

fn message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default()
}

/// Runs `sql` on `client` in the background; cancels it with `cancel` after a moment.
async fn cancelled(
    client: std::sync::Arc<tokio_postgres::Client>,
    sql: &'static str,
    cancel: impl std::future::Future<Output = ()>,
) -> (tokio_postgres::Error, Duration) {
    let started = Instant::now();
    let running = tokio::spawn(async move { client.simple_query(sql).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.await;
    let result = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the cancelled statement ends in time")
        .unwrap();
    (
        result.expect_err("the statement was cancelled"),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_the_running_statement() {
    let server = TestServer::start().await;
    let client = std::sync::Arc::new(server.client().await);
    let token = client.cancel_token();
    let (err, _) = cancelled(client.clone(), LONG, async {
        token.cancel_query(NoTls).await.unwrap();
    })
    .await;
    assert_eq!(code(&err), "57014");
    assert_eq!(message(&err), "canceling statement due to user request");
    // The connection, and the server, go on.
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let other = server.client().await;
    other.simple_query("SELECT 2").await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_sleep_is_cancellable_and_the_block_fails() {
    let server = TestServer::start().await;
    let client = std::sync::Arc::new(server.client().await);
    client.simple_query("BEGIN").await.unwrap();
    let token = client.cancel_token();
    let (err, elapsed) = cancelled(client.clone(), "SELECT pg_sleep(60)", async {
        token.cancel_query(NoTls).await.unwrap();
    })
    .await;
    assert_eq!(code(&err), "57014");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), "25P02");
    client.simple_query("ROLLBACK").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cancel_backend_cancels_another_session() {
    let server = TestServer::start().await;
    let client = std::sync::Arc::new(server.client().await);
    let row = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap();
    let pid: i32 = row.get(0);
    assert!(pid > 0);
    let other = server.client().await;
    let (err, _) = cancelled(client.clone(), "SELECT pg_sleep(60)", async {
        let row = other
            .query_one(&format!("SELECT pg_cancel_backend({pid})"), &[])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0));
    })
    .await;
    assert_eq!(code(&err), "57014");
    let row = other
        .query_one("SELECT pg_cancel_backend(0)", &[])
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0), "no session has pid 0");
    server.stop().await.unwrap();
}

/// Sends a CancelRequest for `pid` with `secret`.
async fn cancel_request(server: &TestServer, pid: i32, secret: i32) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut packet = 16i32.to_be_bytes().to_vec();
    packet.extend_from_slice(&80_877_102i32.to_be_bytes());
    packet.extend_from_slice(&pid.to_be_bytes());
    packet.extend_from_slice(&secret.to_be_bytes());
    stream.write_all(&packet).await.unwrap();
    // The server closes the connection without an answer.
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest).await;
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_with_the_wrong_key_is_ignored() {
    let server = TestServer::start().await;
    let client = std::sync::Arc::new(server.client().await);
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let sleeping = {
        let client = client.clone();
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(0.8)").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The right pid with a wrong key (the real key is random; a guess of 0 and of 1 are
    // both wrong with overwhelming probability, and at most one can be right).
    cancel_request(&server, pid, 0).await;
    cancel_request(&server, pid, 1).await;
    let done = sleeping.await.unwrap();
    assert!(done.is_ok() || code(&done.unwrap_err()) == "57014");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_cancels_long_statements() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .simple_query("SET statement_timeout = '100ms'")
        .await
        .unwrap();
    let started = Instant::now();
    let err = client.simple_query(LONG).await.unwrap_err();
    assert_eq!(code(&err), "57014");
    assert_eq!(
        message(&err),
        "canceling statement due to statement timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = client.query("SELECT pg_sleep(10)", &[]).await.unwrap_err();
    assert_eq!(code(&err), "57014");
    // Short statements still run.
    client.simple_query("SELECT pg_sleep(0.01)").await.unwrap();
    let rows = client.simple_query("SHOW statement_timeout").await.unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &rows[1] else {
        panic!("{rows:?}")
    };
    assert_eq!(row.get(0), Some("100ms"));
    client
        .simple_query("SET statement_timeout = 0")
        .await
        .unwrap();
    client.simple_query("SELECT pg_sleep(0.2)").await.unwrap();
    let err = client
        .simple_query("SET statement_timeout = 'soon'")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "22023");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_in_the_startup_options() {
    let server = TestServer::start().await;
    let url = format!(
        "postgresql://root@{}/tinkerdb?options=-c%20statement_timeout%3D100ms",
        server.addr
    );
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let err = client
        .simple_query("SELECT pg_sleep(10)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "57014");
    assert_eq!(
        message(&err),
        "canceling statement due to statement timeout"
    );
    server.stop().await.unwrap();
}
