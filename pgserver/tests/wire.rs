//! pgserver end to end: a server over an in-memory SQL engine, driven by tokio-postgres and by a
//! raw protocol client that sees every message (ReadyForQuery status bytes, command tags, the
//! order of responses in a batch).

mod common;

use std::time::Duration;

use common::*;
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[tokio::test]
async fn startup_reports_a_postgres_15_server() {
    let server = TestServer::start().await;
    let (client, conn) = tokio_postgres::connect(&server.url(), NoTls).await.unwrap();
    let version = conn.parameter("server_version").unwrap().to_string();
    assert_eq!(
        version,
        format!("15.0 (TinkerDB {})", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(conn.parameter("server_encoding"), Some("UTF8"));
    assert_eq!(conn.parameter("client_encoding"), Some("UTF8"));
    assert_eq!(conn.parameter("DateStyle"), Some("ISO, MDY"));
    assert_eq!(conn.parameter("integer_datetimes"), Some("on"));
    assert_eq!(conn.parameter("standard_conforming_strings"), Some("on"));
    assert_eq!(conn.parameter("TimeZone"), Some("UTC"));
    tokio::spawn(conn);
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert!(matches!(&rows[1], SimpleQueryMessage::Row(r) if r.get(0) == Some("1")));
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_database_is_fatal_3d000() {
    let server = TestServer::start().await;
    let url = format!("postgresql://root@{}/nope", server.addr);
    let err = tokio_postgres::connect(&url, NoTls)
        .await
        .err()
        .expect("connect fails");
    assert_eq!(err.code().map(|c| c.code()), Some("3D000"), "{err}");
    // Without a database the user name is the database, as in PostgreSQL.
    let (_, reply) = Raw::connect(server.addr, &[("user", "alice")]).await;
    assert_eq!(reply.errors, ["3D000"]);
    let (_, reply) = Raw::connect(server.addr, &[("user", "tinkerdb")]).await;
    assert_eq!((reply.errors.len(), reply.status), (0, 'I'), "{reply:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn simple_batches_stop_at_the_first_error() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    let reply = raw.query("SELECT 1; SELECT boom; SELECT 2").await;
    assert_eq!(reply.kinds, "TDCEZ", "{reply:?}");
    assert_eq!(reply.tags, ["SELECT 1"]);
    assert_eq!(reply.errors, ["42703"]);
    assert_eq!(reply.status, 'I');

    // A syntax error anywhere runs nothing.
    let reply = raw
        .query("CREATE TABLE t (id INT PRIMARY KEY); SELEC 1")
        .await;
    assert_eq!(
        (reply.kinds.as_str(), reply.errors[0].as_str()),
        ("EZ", "42601")
    );
    assert_eq!(raw.query("SELECT * FROM t").await.errors, ["42P01"]);

    let reply = raw.query(" ; ").await;
    assert_eq!(reply.kinds, "IZ", "empty query: {reply:?}");
    let reply = raw.query("-- only a comment").await;
    assert_eq!(reply.kinds, "IZ", "comment only: {reply:?}");

    let reply = raw
        .query(
            "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, NULL)",
        )
        .await;
    assert_eq!(reply.tags, ["CREATE TABLE", "INSERT 0 2"]);
    let reply = raw
        .query("UPDATE t SET v = 'b'; DELETE FROM t WHERE id = 1; SELECT v FROM t")
        .await;
    assert_eq!(reply.tags, ["UPDATE 2", "DELETE 1", "SELECT 1"]);
    assert_eq!(reply.values, [Some("b".to_string())]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn ready_for_query_follows_the_session_transaction() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE t (id INT PRIMARY KEY)").await;

    let status = |r: Reply| (r.tags, r.errors, r.status);
    assert_eq!(
        status(raw.query("BEGIN").await),
        (vec!["BEGIN".into()], vec![], 'T')
    );
    assert_eq!(status(raw.query("INSERT INTO t VALUES (1)").await).2, 'T');
    assert_eq!(
        status(raw.query("SELECT * FROM nope").await),
        (vec![], vec!["42P01".into()], 'E')
    );
    assert_eq!(
        status(raw.query("SELECT 1").await),
        (vec![], vec!["25P02".into()], 'E')
    );
    // COMMIT of a failed block rolls back, and says so.
    assert_eq!(
        status(raw.query("COMMIT").await),
        (vec!["ROLLBACK".into()], vec![], 'I')
    );
    assert_eq!(raw.query("SELECT id FROM t").await.values, []);

    assert_eq!(
        raw.query("BEGIN; INSERT INTO t VALUES (2)").await.status,
        'T'
    );
    assert_eq!(raw.query("INSERT INTO t VALUES (2)").await.status, 'E');
    assert_eq!(
        status(raw.query("ROLLBACK").await),
        (vec!["ROLLBACK".into()], vec![], 'I')
    );

    // A batch that opens a block and fails inside it ends failed.
    assert_eq!(raw.query("BEGIN; SELECT boom").await.status, 'E');
    assert_eq!(
        raw.query("ROLLBACK; BEGIN; INSERT INTO t VALUES (3); COMMIT")
            .await
            .status,
        'I'
    );
    assert_eq!(
        raw.query("SELECT id FROM t").await.values,
        [Some("3".to_string())]
    );

    // The extended protocol reports the same states at Sync.
    assert_eq!(raw.extended("BEGIN").await.status, 'T');
    let reply = raw.extended("SELECT * FROM nope").await;
    assert_eq!((reply.errors, reply.status), (vec!["42P01".into()], 'E'));
    assert_eq!(raw.extended("SELECT 1").await.status, 'E');
    let reply = raw.extended("ROLLBACK").await;
    assert_eq!((reply.tags, reply.status), (vec!["ROLLBACK".into()], 'I'));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn extended_protocol_binds_and_returns_every_type() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE v (id INT PRIMARY KEY, b BIGINT, d DOUBLE PRECISION, f BOOLEAN, t TEXT)",
        )
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO v VALUES ($1, $2, $3, $4, $5)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        [Type::INT4, Type::INT8, Type::FLOAT8, Type::BOOL, Type::TEXT]
    );
    let n = client
        .execute(&insert, &[&1i32, &(1i64 << 40), &1.5f64, &true, &"one"])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let none: Option<&str> = None;
    client
        .execute(&insert, &[&2i32, &-2i64, &f64::NEG_INFINITY, &false, &none])
        .await
        .unwrap();

    let select = client
        .prepare("SELECT id, b, d, f, t FROM v WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(select.params(), [Type::INT4]);
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [Type::INT4, Type::INT8, Type::FLOAT8, Type::BOOL, Type::TEXT]
    );
    let names: Vec<&str> = select.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "b", "d", "f", "t"]);

    let row = client.query_one(&select, &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, i64>(1), 1 << 40);
    assert_eq!(row.get::<_, f64>(2), 1.5);
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, &str>(4), "one");
    let row = client.query_one(&select, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, f64>(2), f64::NEG_INFINITY);
    assert_eq!(row.get::<_, Option<&str>>(4), None);

    // Declared parameter types: INT2 and VARCHAR are decoded in their own layouts.
    let typed = client
        .prepare_typed(
            "SELECT id FROM v WHERE id = $1 AND t = $2",
            &[Type::INT2, Type::VARCHAR],
        )
        .await
        .unwrap();
    assert_eq!(typed.params(), [Type::INT2, Type::VARCHAR]);
    let rows = client.query(&typed, &[&1i16, &"one"]).await.unwrap();
    assert_eq!(rows.len(), 1);

    // Text-format results through the simple protocol render the same values.
    let msgs = client
        .simple_query("SELECT b, d, f FROM v WHERE id = 2")
        .await
        .unwrap();
    let SimpleQueryMessage::Row(row) = &msgs[1] else {
        panic!("{msgs:?}")
    };
    assert_eq!(
        (row.get(0), row.get(1), row.get(2)),
        (Some("-2"), Some("-Infinity"), Some("f"))
    );
    server.stop().await.unwrap();
}

/// A result column's raw binary bytes, to check send formats tokio-postgres cannot decode
/// without optional features.
struct RawBytes(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawBytes {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<RawBytes, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[tokio::test]
async fn extended_protocol_sends_parameterised_and_temporal_types() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE w (id SMALLINT PRIMARY KEY, r REAL, v VARCHAR(5), c CHAR(3), \
             b BYTEA, n NUMERIC(6,2), d DATE, ts TIMESTAMP, tz TIMESTAMPTZ)",
        )
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO w (id, r, v, c, b) VALUES ($1, $2, $3, $4, $5)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        [
            Type::INT2,
            Type::FLOAT4,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::BYTEA
        ]
    );
    let bytes: &[u8] = &[0, 1, 255];
    client
        .execute(&insert, &[&7i16, &1.5f32, &"abc", &"x", &bytes])
        .await
        .unwrap();
    let err = client
        .execute(&insert, &[&8i16, &1.5f32, &"abcdef", &"x", &bytes])
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22001"));
    client
        .batch_execute(
            "UPDATE w SET n = 1.5, d = '2000-01-02', ts = '2000-01-01 00:00:01', \
             tz = '2000-01-01 01:00:00+01'",
        )
        .await
        .unwrap();

    let select = client
        .prepare("SELECT id, r, v, c, b, n, d, ts, tz FROM w")
        .await
        .unwrap();
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::INT2,
            Type::FLOAT4,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::BYTEA,
            Type::NUMERIC,
            Type::DATE,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ
        ]
    );
    let row = client.query_one(&select, &[]).await.unwrap();
    assert_eq!(row.get::<_, i16>(0), 7);
    assert_eq!(row.get::<_, f32>(1), 1.5);
    assert_eq!(row.get::<_, &str>(2), "abc");
    assert_eq!(row.get::<_, &str>(3), "x  ");
    assert_eq!(row.get::<_, Vec<u8>>(4), [0, 1, 255]);
    // numeric_send of 1.50: one base-10000 digit pair 1, 5000; weight 0; scale 2.
    let n = row.get::<_, RawBytes>(5).0;
    assert_eq!(n, [0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88]);
    assert_eq!(row.get::<_, RawBytes>(6).0, 1i32.to_be_bytes());
    assert_eq!(row.get::<_, RawBytes>(7).0, 1_000_000i64.to_be_bytes());
    assert_eq!(row.get::<_, RawBytes>(8).0, 0i64.to_be_bytes());

    let msgs = client
        .simple_query("SELECT n, d, ts, tz, b FROM w")
        .await
        .unwrap();
    let SimpleQueryMessage::Row(row) = &msgs[1] else {
        panic!("{msgs:?}")
    };
    let text: Vec<Option<&str>> = (0..5).map(|i| row.get(i)).collect();
    assert_eq!(
        text,
        [
            Some("1.50"),
            Some("2000-01-02"),
            Some("2000-01-01 00:00:01"),
            Some("2000-01-01 00:00:00+00"),
            Some("\\x0001ff")
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn extended_protocol_errors_keep_the_connection() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let code = |e: tokio_postgres::Error| e.code().map(|c| c.code().to_string());

    let err = client.prepare("SELECT * FROM nope").await.unwrap_err();
    assert_eq!(code(err).as_deref(), Some("42P01"));
    let err = client.prepare("SELECT 1; SELECT 2").await.unwrap_err();
    assert_eq!(code(err).as_deref(), Some("42601"));
    let err = client
        .prepare_typed("SELECT $1", &[Type::XML])
        .await
        .unwrap_err();
    assert_eq!(code(err).as_deref(), Some("0A000"));

    let insert = client.prepare("INSERT INTO t VALUES ($1)").await.unwrap();
    client.execute(&insert, &[&1i32]).await.unwrap();
    let err = client.execute(&insert, &[&1i32]).await.unwrap_err();
    assert_eq!(code(err).as_deref(), Some("23505"));
    let err = client.query("SELECT 1 / 0", &[]).await.unwrap_err();
    assert_eq!(code(err).as_deref(), Some("22012"));

    // A text parameter that does not parse as the column type.
    let by_text = client
        .prepare_typed("SELECT id FROM t WHERE id = $1", &[Type::TEXT])
        .await;
    if let Ok(stmt) = by_text {
        let _ = client.query(&stmt, &[&"x"]).await;
    }

    let rows = client.query("SELECT id FROM t", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn text_parameters_parse_as_their_inferred_type() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE t (id INT PRIMARY KEY, f BOOLEAN); INSERT INTO t VALUES (7, true)")
        .await;
    let sql = "SELECT id FROM t WHERE id = $1";
    let reply = raw.extended_with(sql, &[Some(" 7 ")]).await;
    assert_eq!(
        (reply.values, reply.status),
        (vec![Some("7".to_string())], 'I')
    );
    assert_eq!(raw.extended_with(sql, &[Some("x")]).await.errors, ["22P02"]);
    assert_eq!(
        raw.extended_with(sql, &[Some("99999999999")]).await.errors,
        ["22003"]
    );
    assert_eq!(raw.extended_with(sql, &[None]).await.values, []);
    let reply = raw
        .extended_with("SELECT id FROM t WHERE f = $1", &[Some("yes")])
        .await;
    assert_eq!(reply.values, [Some("7".to_string())]);
    // Wrong parameter count.
    assert_eq!(raw.extended_with(sql, &[]).await.errors, ["08P01"]);
    // The connection is still usable.
    assert_eq!(
        raw.query("SELECT id FROM t").await.values,
        [Some("7".to_string())]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn describe_statement_and_portal() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE t (id BIGINT PRIMARY KEY, ok BOOLEAN); INSERT INTO t VALUES (1, true)")
        .await;
    let mut parse = cstring("s1");
    parse.extend(cstring("SELECT id, ok FROM t WHERE id = $1"));
    parse.extend(0i16.to_be_bytes());
    raw.send(b'P', &parse).await;
    let mut describe = vec![b'S'];
    describe.extend(cstring("s1"));
    raw.send(b'D', &describe).await;
    let mut bind = cstring("p1");
    bind.extend(cstring("s1"));
    bind.extend([0, 0, 0, 1, 0, 0, 0, 1, b'1', 0, 0]);
    raw.send(b'B', &bind).await;
    let mut describe = vec![b'P'];
    describe.extend(cstring("p1"));
    raw.send(b'D', &describe).await;
    let mut execute = cstring("p1");
    execute.extend(0i32.to_be_bytes());
    raw.send(b'E', &execute).await;
    raw.send(b'S', &[]).await;

    // ParseComplete, ParameterDescription, RowDescription, BindComplete, RowDescription, DataRow,
    // CommandComplete, ReadyForQuery.
    let mut kinds = String::new();
    let mut param_oids = Vec::new();
    let mut column_oids = Vec::new();
    while let Some((kind, body)) = raw.recv().await {
        kinds.push(kind as char);
        match kind {
            b't' => param_oids = parameter_oids(&body),
            b'T' => column_oids.push(row_description_oids(&body)),
            b'Z' => break,
            _ => {}
        }
    }
    assert_eq!(kinds, "1tT2TDCZ");
    assert_eq!(param_oids, [20]);
    assert_eq!(column_oids, [vec![20, 16], vec![20, 16]]);
    server.stop().await.unwrap();
}

/// Replies to Parse, Bind and Execute wait for Flush or Sync, as in PostgreSQL (so a pipelined
/// request is answered with one write).
#[tokio::test]
async fn extended_replies_wait_for_flush_or_sync() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    let mut parse = cstring("");
    parse.extend(cstring("SELECT 1"));
    parse.extend(0i16.to_be_bytes());
    raw.send(b'P', &parse).await;
    let mut bind = cstring("");
    bind.extend(cstring(""));
    bind.extend([0, 0, 0, 0, 0, 0]);
    raw.send(b'B', &bind).await;
    let mut execute = cstring("");
    execute.extend(0i32.to_be_bytes());
    raw.send(b'E', &execute).await;
    let early = tokio::time::timeout(Duration::from_millis(300), raw.recv()).await;
    assert!(early.is_err(), "replied before Flush: {early:?}");

    raw.send(b'H', &[]).await;
    let mut kinds = String::new();
    for _ in 0..4 {
        let (kind, _) = raw.recv().await.expect("reply");
        kinds.push(kind as char);
    }
    assert_eq!(kinds, "12DC");
    raw.send(b'S', &[]).await;
    let reply = raw.reply().await;
    assert_eq!((reply.kinds.as_str(), reply.status), ("Z", 'I'));
    server.stop().await.unwrap();
}

/// The type OIDs of a ParameterDescription (a count, then one OID each).
fn parameter_oids(body: &[u8]) -> Vec<u32> {
    body[2..]
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

/// The type OIDs of a RowDescription.
fn row_description_oids(body: &[u8]) -> Vec<u32> {
    let count = i16::from_be_bytes([body[0], body[1]]) as usize;
    let mut rest = &body[2..];
    let mut oids = Vec::new();
    for _ in 0..count {
        let name_end = rest.iter().position(|b| *b == 0).unwrap();
        let field = &rest[name_end + 1..];
        // table oid (4), attnum (2), type oid (4), typlen (2), typmod (4), format (2).
        oids.push(u32::from_be_bytes(field[6..10].try_into().unwrap()));
        rest = &field[18..];
    }
    oids
}

#[tokio::test]
async fn portals_return_rows_in_max_rows_chunks() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3), (4), (5)",
        )
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT id FROM t ORDER BY id").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 2).await.unwrap();
        assert!(rows.len() <= 2);
        if rows.is_empty() {
            break;
        }
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    tx.commit().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once() {
    let opts = pgserver::Options {
        shutdown_grace: Duration::from_secs(30),
        ..Default::default()
    };
    let server = TestServer::start_with(opts).await;
    let client = server.client().await;
    client.simple_query("BEGIN").await.unwrap();
    let started = std::time::Instant::now();
    server.stop().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connections must not wait for grace"
    );
    assert!(client.simple_query("SELECT 1").await.is_err());
}
