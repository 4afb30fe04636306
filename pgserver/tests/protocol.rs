//! The rest of the extended protocol and the SQL statements around prepared statements
//! (PREPARE/EXECUTE/DEALLOCATE/DISCARD, Close, Flush, incremental portals, result shapes that
//! change under a prepared statement), and robustness: nothing a client sends ends more than
//! its own connection.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::SimpleQueryMessage;

/// The SQLSTATE of a failed tokio-postgres call.
fn code(err: &tokio_postgres::Error) -> String {
    err.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// The first value of the first row of a simple query.
async fn value(client: &tokio_postgres::Client, sql: &str) -> String {
    let messages = client.simple_query(sql).await.unwrap();
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// The CommandComplete tags of a simple query.
async fn tags(client: &tokio_postgres::Client, sql: &str) -> Vec<u64> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn prepare_execute_and_deallocate_statements() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("PREPARE add_one (INT) AS SELECT $1 + 1")
        .await
        .unwrap();
    assert_eq!(value(&client, "EXECUTE add_one(41)").await, "42");
    assert_eq!(value(&client, "EXECUTE add_one('1')").await, "2");
    let err = client
        .batch_execute("PREPARE add_one AS SELECT 2")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42P05", "{err}");

    client.batch_execute("DEALLOCATE add_one").await.unwrap();
    let err = client
        .batch_execute("EXECUTE add_one(1)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "26000", "{err}");
    let err = client
        .batch_execute("DEALLOCATE PREPARE add_one")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "26000", "{err}");

    // PREPARE of a DML statement runs it only on EXECUTE.
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT);
             PREPARE ins (INT, TEXT) AS INSERT INTO t VALUES ($1, $2)",
        )
        .await
        .unwrap();
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "0");
    client
        .batch_execute("EXECUTE ins(1, 'one'); EXECUTE ins(2, 'two')")
        .await
        .unwrap();
    assert_eq!(value(&client, "SELECT v FROM t WHERE id = 2").await, "two");
    // Through the extended protocol too, with the statement's own result.
    let rows = client.query("EXECUTE add_one_again", &[]).await;
    assert_eq!(code(&rows.unwrap_err()), "26000");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn deallocate_all_forgets_protocol_level_statements() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let stmt = client.prepare("SELECT 1::INT8").await.unwrap();
    assert_eq!(
        client.query_one(&stmt, &[]).await.unwrap().get::<_, i64>(0),
        1
    );
    client.batch_execute("DEALLOCATE ALL").await.unwrap();
    let err = client.query_one(&stmt, &[]).await.unwrap_err();
    assert_eq!(code(&err), "26000", "{err}");
    // Its name is free again: preparing anew works.
    let again = client.prepare("SELECT 2::INT8").await.unwrap();
    assert_eq!(
        client
            .query_one(&again, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn discard_resets_what_it_names() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("SET application_name = 'app'; PREPARE one AS SELECT 1")
        .await
        .unwrap();
    for sql in ["DISCARD PLANS", "DISCARD SEQUENCES", "DISCARD TEMP"] {
        client.batch_execute(sql).await.unwrap();
    }
    assert_eq!(
        value(&client, "EXECUTE one").await,
        "1",
        "PLANS keeps statements"
    );
    client.batch_execute("BEGIN").await.unwrap();
    let err = client.batch_execute("DISCARD ALL").await.unwrap_err();
    assert_eq!(code(&err), "25001", "{err}");
    client.batch_execute("ROLLBACK").await.unwrap();
    client.batch_execute("DISCARD ALL").await.unwrap();
    let err = client.batch_execute("EXECUTE one").await.unwrap_err();
    assert_eq!(code(&err), "26000", "{err}");
    assert_eq!(value(&client, "SHOW application_name").await, "");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn command_tags_of_prepared_statement_commands() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    let reply = raw
        .query("PREPARE p AS SELECT 1; DEALLOCATE p; PREPARE q AS SELECT 2; DEALLOCATE ALL; DISCARD ALL")
        .await;
    assert_eq!(
        reply.tags,
        [
            "PREPARE",
            "DEALLOCATE",
            "PREPARE",
            "DEALLOCATE ALL",
            "DISCARD ALL"
        ],
        "{reply:?}"
    );
    let client = server.client().await;
    assert_eq!(tags(&client, "DISCARD PLANS").await.len(), 1);
    server.stop().await.unwrap();
}

/// Parse of a named statement.
fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut body = cstring(name);
    body.extend(cstring(sql));
    body.extend(0i16.to_be_bytes());
    body
}

/// Bind of a parameterless statement to a portal, text results.
fn bind(portal: &str, statement: &str) -> Vec<u8> {
    let mut body = cstring(portal);
    body.extend(cstring(statement));
    body.extend(0i16.to_be_bytes());
    body.extend(0i16.to_be_bytes());
    body.extend(0i16.to_be_bytes());
    body
}

fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut body = cstring(portal);
    body.extend(max_rows.to_be_bytes());
    body
}

fn target(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend(cstring(name));
    body
}

/// Reads `n` messages and returns their type bytes.
async fn kinds(raw: &mut Raw, n: usize) -> String {
    let mut kinds = String::new();
    for _ in 0..n {
        let (kind, _) = raw.recv().await.expect("a message");
        kinds.push(kind as char);
    }
    kinds
}

#[tokio::test]
async fn flush_sends_replies_and_close_forgets_statements() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.send(b'P', &parse("s1", "SELECT 1")).await;
    raw.send(b'H', &[]).await;
    assert_eq!(
        kinds(&mut raw, 1).await,
        "1",
        "ParseComplete after Flush, before Sync"
    );
    raw.send(b'C', &target(b'S', "s1")).await;
    raw.send(b'C', &target(b'P', "no such portal")).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(reply.kinds, "33Z", "{reply:?}");
    raw.send(b'B', &bind("", "s1")).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(reply.errors, ["26000"], "{reply:?}");
    // The name can be prepared again; a second Parse of a live name is 42P05.
    raw.send(b'P', &parse("s1", "SELECT 2")).await;
    raw.send(b'P', &parse("s1", "SELECT 3")).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(
        (reply.kinds.as_str(), reply.errors.as_slice()),
        ("1EZ", &["42P05".to_string()][..])
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn execute_with_max_rows_suspends_and_continues() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE t (id INT PRIMARY KEY)").await;
    raw.query("INSERT INTO t VALUES (1), (2), (3), (4), (5)")
        .await;
    raw.query("BEGIN").await;
    raw.send(b'P', &parse("q", "SELECT id FROM t ORDER BY id"))
        .await;
    raw.send(b'B', &bind("cur", "q")).await;
    raw.send(b'E', &execute("cur", 2)).await;
    raw.send(b'H', &[]).await;
    assert_eq!(kinds(&mut raw, 5).await, "12DDs", "rows 1 and 2, suspended");
    raw.send(b'E', &execute("cur", 2)).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(reply.kinds, "DDsZ", "{reply:?}");
    assert_eq!(reply.values, [Some("3".into()), Some("4".into())]);
    assert_eq!(reply.status, 'T');
    // The named portal survives Sync inside the block and continues where it stopped.
    raw.send(b'E', &execute("cur", 0)).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(reply.kinds, "DCZ", "{reply:?}");
    assert_eq!(reply.values, [Some("5".into())]);
    assert_eq!(reply.tags, ["SELECT 1"]);
    // COMMIT ends the transaction and its portals.
    raw.query("COMMIT").await;
    raw.send(b'E', &execute("cur", 0)).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(reply.errors, ["34000"], "{reply:?}");
    server.stop().await.unwrap();
}

/// Reads one Execute's answer up to PortalSuspended or CommandComplete: the number of rows, the
/// first column of the first one, and the final message's type.
async fn fetched(raw: &mut Raw) -> (usize, Option<String>, char) {
    let (mut rows, mut first) = (0, None);
    loop {
        let (kind, body) = raw.recv().await.expect("a message");
        match kind {
            b'D' => {
                if rows == 0 {
                    let len = i32::from_be_bytes(body[2..6].try_into().unwrap()) as usize;
                    first = Some(String::from_utf8(body[6..6 + len].to_vec()).unwrap());
                }
                rows += 1;
            }
            b's' | b'C' | b'E' => return (rows, first, kind as char),
            _ => {}
        }
    }
}

/// A portal with a row limit reads its rows as they are fetched: a result larger than the
/// query memory limit, which fails with 53200 when run whole, streams through 1,000 rows per
/// Execute outside a block, from the snapshot the portal opened on (a row another session
/// commits meanwhile is not seen), and Sync ends its implicit transaction.
#[tokio::test]
async fn a_portal_with_a_row_limit_streams_a_result_larger_than_the_memory_limit() {
    let engine = sql::Engine::memory();
    let server = TestServer::start_on(pgserver::Options::default(), engine.clone()).await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE big (id INT PRIMARY KEY, pad TEXT)")
        .await;
    let reply = raw
        .query("INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        .await;
    assert!(reply.errors.is_empty(), "{reply:?}");
    engine.set_memory_limit(1 << 20);
    raw.send(b'P', &parse("q", "SELECT id, pad FROM big")).await;
    raw.send(b'B', &bind("", "q")).await;
    raw.send(b'E', &execute("", 0)).await;
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(
        reply.errors,
        ["53200"],
        "the whole result is buffered: {reply:?}"
    );

    raw.send(b'B', &bind("", "q")).await;
    raw.send(b'E', &execute("", 1000)).await;
    raw.send(b'H', &[]).await;
    assert_eq!(kinds(&mut raw, 1).await, "2");
    assert_eq!(fetched(&mut raw).await, (1000, Some("1".into()), 's'));
    let other = server.client().await;
    other
        .batch_execute("INSERT INTO big VALUES (30000, 'late')")
        .await
        .unwrap();
    let mut total = 1000;
    loop {
        raw.send(b'E', &execute("", 1000)).await;
        raw.send(b'H', &[]).await;
        let (rows, first, end) = fetched(&mut raw).await;
        if rows > 0 {
            assert_eq!(first, Some((total + 1).to_string()));
        }
        total += rows;
        if end != 's' {
            assert_eq!(end, 'C');
            break;
        }
    }
    assert_eq!(
        total, 20000,
        "every row once, and not the one committed after the portal opened"
    );
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!(
        (reply.kinds.as_str(), reply.status),
        ("Z", 'I'),
        "{reply:?}"
    );
    assert_eq!(
        engine.memory_usage().1,
        0,
        "the portal's reservations are returned"
    );
    let reply = raw.query("SELECT count(*) FROM big").await;
    assert_eq!(reply.values, [Some("20001".into())]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_changed_result_type_fails_the_prepared_statement() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');
             CREATE TABLE u (id INT PRIMARY KEY)",
        )
        .await
        .unwrap();
    let star = client.prepare("SELECT * FROM t").await.unwrap();
    let ids = client.prepare("SELECT id FROM u").await.unwrap();
    assert_eq!(client.query(&star, &[]).await.unwrap().len(), 1);
    client
        .batch_execute(
            "DROP TABLE t; CREATE TABLE t (id INT PRIMARY KEY, v INT, w TEXT);
             INSERT INTO t VALUES (1, 2, 'b')",
        )
        .await
        .unwrap();
    let err = client.query(&star, &[]).await.unwrap_err();
    assert_eq!(code(&err), "0A000", "{err:?}");
    let message = err.as_db_error().map(|e| e.message().to_string());
    assert_eq!(
        message.as_deref(),
        Some("cached plan must not change result type")
    );
    // A statement whose result did not change keeps working across the schema change.
    assert!(client.query(&ids, &[]).await.unwrap().is_empty());
    // Prepared again, the new shape is described and runs.
    let star = client.prepare("SELECT * FROM t").await.unwrap();
    assert_eq!(star.columns().len(), 3);
    assert_eq!(client.query(&star, &[]).await.unwrap().len(), 1);
    server.stop().await.unwrap();
}

/// A whole message: type byte, length, body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend(((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Sends raw bytes after start-up and expects a FATAL 08P01, then the end of the connection.
async fn expect_protocol_violation(server: &TestServer, bytes: &[u8], close_write: bool) {
    let mut raw = raw(server).await;
    raw.stream.write_all(bytes).await.unwrap();
    if close_write {
        raw.stream.shutdown().await.unwrap();
    }
    let reply = tokio::time::timeout(Duration::from_secs(10), raw.reply())
        .await
        .expect("the server answers");
    assert_eq!(reply.errors, ["08P01"], "{bytes:?}: {reply:?}");
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), raw.stream.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection");
    assert!(end.is_err() || rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn broken_messages_close_only_their_connection() {
    let server = TestServer::start().await;
    let bystander = server.client().await;
    bystander.batch_execute("BEGIN").await.unwrap();

    // Garbage: not a message type.
    expect_protocol_violation(&server, b"\x00\x01garbage bytes", false).await;
    // A backend message type.
    expect_protocol_violation(&server, b"Z\x00\x00\x00\x05I", false).await;
    // A length below the minimum.
    expect_protocol_violation(&server, b"Q\x00\x00\x00\x02", false).await;
    // Oversized: a Query of 2 GB, and a Sync claiming more than small messages may hold.
    expect_protocol_violation(&server, b"Q\x7f\xff\xff\xff", false).await;
    expect_protocol_violation(&server, b"S\x00\x01\x00\x00", false).await;
    // Truncated: the connection ends inside a message.
    expect_protocol_violation(&server, b"Q\x00\x00\x00\x40SELECT", true).await;
    // A body that lies about its contents: a Bind with a 100-byte parameter of 2 bytes.
    let mut bind = b"\0\0\x00\x00\x00\x01\x00\x00\x00\x64ab".to_vec();
    bind.extend(0i16.to_be_bytes());
    expect_protocol_violation(&server, &message(b'B', &bind), false).await;
    // A Parse whose parameter count exceeds its body.
    let parse = message(b'P', b"\0SELECT\0\x00\x09");
    expect_protocol_violation(&server, &parse, false).await;
    // A Query that is not UTF-8.
    expect_protocol_violation(&server, b"Q\x00\x00\x00\x07\xff\xfe\0", false).await;

    // A broken start-up packet.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"\x00\x00\x00\x03").await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
    assert_eq!(reply.first(), Some(&b'E'), "{reply:?}");

    // The server still serves the connection that was open all along, and new ones.
    assert_eq!(value(&bystander, "SELECT 7").await, "7");
    bystander.batch_execute("COMMIT").await.unwrap();
    let fresh = server.client().await;
    assert_eq!(value(&fresh, "SELECT 8").await, "8");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn ssl_requests_are_refused_and_start_up_continues() {
    let server = TestServer::start().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut ssl = 8u32.to_be_bytes().to_vec();
    ssl.extend(80_877_103u32.to_be_bytes());
    stream.write_all(&ssl).await.unwrap();
    assert_eq!(stream.read_u8().await.unwrap(), b'N');
    drop(stream);
    // tokio-postgres asks for SSL first when told to prefer it.
    let url = format!("{}?sslmode=prefer", server.url());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(value(&client, "SELECT 1").await, "1");
    server.stop().await.unwrap();
}

/// A write with RETURNING completes with the write's tag, in both protocols, as in PostgreSQL.
#[tokio::test]
async fn returning_is_tagged_with_its_write() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE r (id INT PRIMARY KEY, v INT)")
        .await;
    let reply = raw
        .query(
            "INSERT INTO r VALUES (1, 10), (2, 20) RETURNING id; \
             UPDATE r SET v = v + 1 RETURNING v; DELETE FROM r WHERE id = 1 RETURNING *",
        )
        .await;
    assert_eq!(
        reply.tags,
        ["INSERT 0 2", "UPDATE 2", "DELETE 1"],
        "{reply:?}"
    );
    let reply = raw
        .extended("INSERT INTO r VALUES (3, 30) RETURNING v")
        .await;
    assert_eq!(reply.tags, ["INSERT 0 1"], "{reply:?}");
    assert_eq!(reply.values, [Some("30".into())], "{reply:?}");
    let reply = raw.extended("UPDATE r SET v = 0 RETURNING id").await;
    assert_eq!(reply.tags, ["UPDATE 2"], "{reply:?}");
    let reply = raw.extended("SELECT id FROM r").await;
    assert_eq!(reply.tags, ["SELECT 2"], "{reply:?}");
    server.stop().await.unwrap();
}
