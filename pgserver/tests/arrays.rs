//! Arrays over the extended protocol: `int4[]` and `text[]` parameters and results in the
//! binary format (tokio-postgres sends and reads arrays in binary), `= ANY($1)` with an
//! array parameter, and the text format of the simple protocol.

mod common;

use common::*;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

#[tokio::test]
async fn arrays_bind_and_return_in_binary() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE a (id INT PRIMARY KEY, ns INT[], ts TEXT[])")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO a VALUES ($1, $2, $3)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        [Type::INT4, Type::INT4_ARRAY, Type::TEXT_ARRAY]
    );
    let ns: Vec<Option<i32>> = vec![Some(1), None, Some(-3)];
    let ts = vec!["a", "b c", ""];
    client.execute(&insert, &[&1i32, &ns, &ts]).await.unwrap();
    let empty: Vec<i32> = vec![];
    let no_text: Option<Vec<String>> = None;
    client
        .execute(&insert, &[&2i32, &empty, &no_text])
        .await
        .unwrap();

    let select = client
        .prepare("SELECT ns, ts, ns[3], cardinality(ns) FROM a WHERE id = $1")
        .await
        .unwrap();
    let types: Vec<Type> = select.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [Type::INT4_ARRAY, Type::TEXT_ARRAY, Type::INT4, Type::INT4]
    );
    let row = client.query_one(&select, &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, Vec<Option<i32>>>(0), ns);
    assert_eq!(row.get::<_, Vec<String>>(1), ["a", "b c", ""]);
    assert_eq!(row.get::<_, i32>(2), -3);
    assert_eq!(row.get::<_, i32>(3), 3);
    let row = client.query_one(&select, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, Vec<i32>>(0), empty);
    assert_eq!(row.get::<_, Option<Vec<String>>>(1), None);

    // `= ANY($1)` takes the array type of the other operand.
    let any = client
        .prepare("SELECT id FROM a WHERE id = ANY($1) ORDER BY id")
        .await
        .unwrap();
    assert_eq!(any.params(), [Type::INT4_ARRAY]);
    let ids: Vec<i32> = client
        .query(&any, &[&vec![2i32, 5]])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [2]);
    let tags = client
        .prepare("SELECT id FROM a WHERE $1 = ANY(ts)")
        .await
        .unwrap();
    assert_eq!(tags.params(), [Type::TEXT]);
    let rows = client.query(&tags, &[&"b c"]).await.unwrap();
    assert_eq!(rows.len(), 1);

    // The simple protocol returns PostgreSQL's text output.
    let rows = client
        .simple_query("SELECT ns, ts FROM a WHERE id = 1")
        .await
        .unwrap();
    let SimpleQueryMessage::Row(r) = &rows[1] else {
        panic!("no row: {rows:?}");
    };
    assert_eq!(r.get(0), Some("{1,NULL,-3}"));
    assert_eq!(r.get(1), Some(r#"{a,"b c",""}"#));
    drop(client);
    server.stop().await.unwrap();
}

/// A parameter sent as these bytes, whatever its type.
#[derive(Debug)]
struct WireBytes(Vec<u8>);

impl ToSql for WireBytes {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The binary header of a one-dimensional int4[] of `len` elements.
fn header(ndim: i32, len: i32) -> Vec<u8> {
    let mut b = Vec::new();
    for word in [ndim, 0, 23, len, 1] {
        b.extend_from_slice(&word.to_be_bytes());
    }
    b
}

#[tokio::test]
async fn malformed_array_parameters_are_errors() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let stmt = client.prepare("SELECT $1::int4[]").await.unwrap();
    let code = |e: tokio_postgres::Error| e.code().map(|c| c.code().to_string());
    let mut one = header(1, 1);
    one.extend_from_slice(&4i32.to_be_bytes());
    one.extend_from_slice(&7i32.to_be_bytes());
    let row = client
        .query_one(&stmt, &[&WireBytes(one.clone())])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<i32>>(0), [7]);
    // Missing element bytes, a two-byte int4 element, trailing bytes.
    let mut short_elem = header(1, 1);
    short_elem.extend_from_slice(&2i32.to_be_bytes());
    short_elem.extend_from_slice(&[0, 7]);
    let mut trailing = one.clone();
    trailing.push(0);
    for bad in [header(1, 2), short_elem, trailing] {
        let err = client.query(&stmt, &[&WireBytes(bad)]).await.unwrap_err();
        assert_eq!(code(err).as_deref(), Some("22P03"));
    }
    let err = client
        .query(&stmt, &[&WireBytes(header(2, 1))])
        .await
        .unwrap_err();
    assert_eq!(code(err).as_deref(), Some("0A000"));
    let err = client
        .query_one("SELECT '{1,x}'::int[]", &[])
        .await
        .unwrap_err();
    assert_eq!(code(err).as_deref(), Some("22P02"));
    // The connection survives every one of them.
    assert_eq!(
        client
            .query_one(&stmt, &[&vec![1i32]])
            .await
            .unwrap()
            .get::<_, Vec<i32>>(0),
        [1]
    );
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn text_array_parameters_parse_as_array_input() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE t (id INT PRIMARY KEY, tags TEXT[])")
        .await;
    raw.query("INSERT INTO t VALUES (1, '{a,b}'), (2, '{c}'), (3, NULL)")
        .await;
    let any = "SELECT id FROM t WHERE id = ANY($1) ORDER BY id";
    let reply = raw.extended_with(any, &[Some("{3, 1,NULL}")]).await;
    assert_eq!(reply.values, [Some("1".to_string()), Some("3".to_string())]);
    assert_eq!(
        raw.extended_with(any, &[Some("{1,x}")]).await.errors,
        ["22P02"]
    );
    assert_eq!(
        raw.extended_with(any, &[Some("1,2")]).await.errors,
        ["22P02"]
    );
    let overlap = "SELECT id FROM t WHERE tags && $1 ORDER BY id";
    let reply = raw.extended_with(overlap, &[Some(r#"{"c",z}"#)]).await;
    assert_eq!(reply.values, [Some("2".to_string())]);
    let reply = raw.extended_with("SELECT $1::int[]", &[Some("{}")]).await;
    assert_eq!(reply.values, [Some("{}".to_string())]);
    server.stop().await.unwrap();
}
