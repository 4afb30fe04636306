//! COPY FROM STDIN and COPY TO STDOUT through the COPY sub-protocol.

mod common;

use bytes::Bytes;
use common::TestServer;
use futures::{SinkExt, StreamExt};

fn code(err: &tokio_postgres::Error) -> String {
    err.code().map(|c| c.code().to_string()).unwrap_or_default()
}

async fn copy_in(client: &tokio_postgres::Client, sql: &str, data: &str) -> Result<u64, String> {
    let sink = client
        .copy_in::<_, Bytes>(sql)
        .await
        .map_err(|e| code(&e))?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data.to_string()))
        .await
        .map_err(|e| code(&e))?;
    sink.as_mut().finish().await.map_err(|e| code(&e))
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> String {
    let stream = client.copy_out(sql).await.unwrap();
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn copy_text_and_csv_in_and_out() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, n INT DEFAULT 7, s SERIAL)")
        .await
        .unwrap();
    let n = copy_in(
        &client,
        "COPY t (id, name) FROM STDIN",
        "1\tone\n2\t\\N\n3\ttab\\there\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let n = copy_in(
        &client,
        "COPY t (id, name, n) FROM STDIN WITH (FORMAT csv, HEADER)",
        "id,name,n\n4,\"a,\"\"b\"\"\",\n5,\"\",1\n6,\"two\nlines\",2",
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let text = copy_out(
        &client,
        "COPY (SELECT id, name, n FROM t ORDER BY id) TO STDOUT",
    )
    .await;
    assert_eq!(
        text,
        "1\tone\t7\n2\t\\N\t7\n3\ttab\\there\t7\n4\ta,\"b\"\t\\N\n5\t\t1\n6\ttwo\\nlines\t2\n"
    );
    let csv = copy_out(&client, "COPY t (id, name) TO STDOUT WITH CSV HEADER").await;
    assert_eq!(
        csv,
        "id,name\n1,one\n2,\n3,tab\there\n4,\"a,\"\"b\"\"\"\n5,\"\"\n6,\"two\nlines\"\n"
    );
    // Omitted columns took their defaults, the serial column its sequence.
    let row = client
        .query_one("SELECT count(DISTINCT s)::int4, min(s)::int4 FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 6);
    assert_eq!(row.get::<_, i32>(1), 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn copy_errors_name_the_line_and_use_postgres_codes() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
        .await
        .unwrap();
    let err = client
        .simple_query("COPY t FROM '/etc/passwd'")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000", "{err:?}");
    let sink = client
        .copy_in::<_, Bytes>("COPY t FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\ta\n2\tb\nx\tc\n"))
        .await
        .unwrap();
    let err = sink.as_mut().finish().await.unwrap_err();
    assert_eq!(code(&err), "22P02");
    let db = err.as_db_error().unwrap();
    assert_eq!(db.where_(), Some("COPY t, line 3, column id: \"x\""));
    assert_eq!(
        copy_in(&client, "COPY t FROM STDIN", "1\ta\textra\n").await,
        Err("22P04".into())
    );
    assert_eq!(
        copy_in(&client, "COPY t FROM STDIN", "1\n").await,
        Err("22P04".into())
    );
    assert_eq!(
        copy_in(&client, "COPY t (nope) FROM STDIN", "1\n").await,
        Err("42703".into())
    );
    // A failed COPY inside a block fails the block.
    let client = server.client().await;
    client.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        copy_in(&client, "COPY t FROM STDIN", "9\tz\nbad\n").await,
        Err("22P04".into())
    );
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    // The connection still serves statements; a COPY inside a block commits with it.
    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY t FROM STDIN", "10\tten\n")
        .await
        .unwrap();
    client.batch_execute("ROLLBACK").await.unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM t WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn copy_fail_from_the_client_is_57014() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut raw = common::Raw::connect(server.addr, &[("user", "root"), ("database", "tinkerdb")])
        .await
        .0;
    raw.send(b'Q', b"COPY t FROM STDIN\0").await;
    let (kind, _) = raw.recv().await.unwrap();
    assert_eq!(kind, b'G', "CopyInResponse");
    raw.send(b'd', b"1\n").await;
    raw.send(b'f', b"client gave up\0").await;
    let reply = raw.reply().await;
    assert_eq!(reply.errors, vec!["57014".to_string()]);
    assert_eq!(reply.status, 'I');
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_copy_streams_under_a_small_memory_limit() {
    let engine = sql::Engine::memory();
    engine.set_memory_limit(8 << 20);
    let server = TestServer::start_on(pgserver::Options::default(), engine).await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE big (id INT PRIMARY KEY, pad TEXT)")
        .await
        .unwrap();
    let sink = client
        .copy_in::<_, Bytes>("COPY big FROM STDIN WITH (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    const ROWS: usize = 200_000;
    for chunk in 0..ROWS / 10_000 {
        let mut data = String::new();
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            data.push_str(&format!("{i},row number {i} with some padding text\n"));
        }
        sink.send(Bytes::from(data)).await.unwrap();
    }
    assert_eq!(sink.as_mut().finish().await.unwrap(), ROWS as u64);
    let count: i64 = client
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, ROWS as i64);
    server.stop().await.unwrap();
}
