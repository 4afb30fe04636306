//! jsonb on the wire: oid 3802 in row descriptions, the text format, and the binary format
//! (version byte 1, then the text) for results and Bind parameters.

mod common;

use std::error::Error;

use bytes::{BufMut, BytesMut};
use common::*;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// A jsonb value in its binary wire format, as the client sends and receives it.
#[derive(Debug, PartialEq)]
struct Jsonb(String);

impl ToSql for Jsonb {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Jsonb {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Jsonb, Box<dyn Error + Sync + Send>> {
        match raw.split_first() {
            Some((1, text)) => Ok(Jsonb(std::str::from_utf8(text)?.to_string())),
            _ => Err("jsonb without version byte 1".into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }
}

/// A json value in its binary wire format: the text alone.
#[derive(Debug)]
struct JsonText(&'static str);

impl ToSql for JsonText {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

#[tokio::test]
async fn declared_json_parameters_are_read_as_jsonb() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let stmt = client
        .prepare_typed("SELECT $1 -> 'a'", &[Type::JSON])
        .await
        .unwrap();
    let rows = client
        .query(&stmt, &[&JsonText(r#"{"a": [1e1]}"#)])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, Jsonb>(0), Jsonb("[10]".into()));
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn jsonb_binds_and_reads_in_binary() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE d (id INT PRIMARY KEY, j JSONB)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO d VALUES ($1, $2)")
        .await
        .unwrap();
    assert_eq!(insert.params(), &[Type::INT4, Type::JSONB]);
    let doc = Jsonb(r#"{"b": [1, 2.50], "a": "x", "a": null}"#.into());
    client.execute(&insert, &[&1i32, &doc]).await.unwrap();

    let rows = client
        .query(
            "SELECT j, j -> 'b', j ->> 'a' FROM d WHERE id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].columns()[0].type_(), &Type::JSONB);
    assert_eq!(rows[0].columns()[2].type_(), &Type::TEXT);
    let j: Jsonb = rows[0].get(0);
    assert_eq!(j, Jsonb(r#"{"a": null, "b": [1, 2.50]}"#.into()));
    assert_eq!(rows[0].get::<_, Jsonb>(1), Jsonb("[1, 2.50]".into()));
    assert_eq!(rows[0].get::<_, Option<String>>(2), None);

    // A jsonb parameter in an expression, and invalid JSON in a binary parameter.
    let rows = client
        .query(
            "SELECT id FROM d WHERE j @> $1",
            &[&Jsonb(r#"{"b": [2.5]}"#.into())],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let err = client
        .query("SELECT $1::jsonb", &[&Jsonb("{".into())])
        .await
        .expect_err("invalid json");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "22P02");
    assert_eq!(db.message(), "invalid input syntax for type json");
    assert_eq!(db.detail(), Some("The input string ended unexpectedly."));
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn jsonb_binds_and_reads_as_text() {
    let server = TestServer::start().await;
    let mut raw = raw(&server).await;
    raw.query("CREATE TABLE d (id INT PRIMARY KEY, j JSONB)")
        .await;
    let reply = raw
        .extended_with(
            "INSERT INTO d VALUES (1, $1)",
            &[Some(r#"{"k": 1e2, "k": [true]}"#)],
        )
        .await;
    assert!(reply.errors.is_empty(), "{reply:?}");
    let reply = raw
        .extended_with("SELECT j FROM d WHERE j ? $1", &[Some("k")])
        .await;
    assert_eq!(reply.values, [Some(r#"{"k": [true]}"#.to_string())]);
    let reply = raw
        .extended_with("SELECT $1::jsonb -> 'k'", &[Some(r#"{"k": 1e2}"#)])
        .await;
    assert_eq!(reply.values, [Some("100".to_string())]);
    let reply = raw.extended_with("SELECT $1::jsonb", &[Some("[1,")]).await;
    assert_eq!(reply.errors, ["22P02"]);

    // The row description carries oid 3802.
    let client = server.client().await;
    let stmt = client.prepare("SELECT j FROM d").await.unwrap();
    assert_eq!(stmt.columns()[0].type_(), &Type::JSONB);
    assert_eq!(Type::JSONB.oid(), 3802);
    let rows = client.simple_query("SELECT j FROM d").await.unwrap();
    let text = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(text.as_deref(), Some(r#"{"k": [true]}"#));
    drop(client);
    server.stop().await.unwrap();
}
