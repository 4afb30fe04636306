//! The simple query protocol over one connection's `sql::Session`, and the response helpers
//! both protocols share.
//!
//! The Query string is parsed whole (a syntax error anywhere runs nothing, as in PostgreSQL),
//! then statements run in order as one implicit transaction, one response each, stopping at the
//! first error. ReadyForQuery carries the session's own transaction status.

use std::sync::Arc;

use futures::{SinkExt, stream};
use pgwire::api::query::send_query_response;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery};
use sql::{Column, DataType, ExecResult, TxnStatus};
use tracing::Instrument;

use crate::client::Client;
use crate::conn::{Connection, wire_status};
use crate::error::{error_info, from_sql};
use crate::types::{encode_row, pg_type};

/// Runs one Query message and answers it, ReadyForQuery included. Returns the tags of the
/// commands that completed (the connection drops its portals after `DISCARD ALL`).
pub(crate) async fn simple_query(
    conn: &Connection,
    client: &mut Client,
    sql: &str,
) -> PgWireResult<Vec<String>> {
    let responses = if is_empty_query(sql) {
        vec![Response::EmptyQuery]
    } else {
        run(conn, client, sql).await?
    };
    let mut tags = Vec::new();
    for response in responses {
        match response {
            Response::EmptyQuery => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?
            }
            Response::Query(rows) => send_query_response(client, rows, true).await?,
            Response::Execution(tag)
            | Response::TransactionStart(tag)
            | Response::TransactionEnd(tag) => {
                let complete = pgwire::messages::response::CommandComplete::from(tag);
                tags.push(complete.tag.clone());
                client
                    .feed(PgWireBackendMessage::CommandComplete(complete))
                    .await?
            }
            Response::Error(e) => {
                client
                    .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await?
            }
            Response::CopyIn(_) | Response::CopyOut(_) | Response::CopyBoth(_) => {
                unreachable!("pgserver never starts COPY")
            }
        }
    }
    let status = wire_status(conn.txn_status().await);
    client
        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            status,
        )))
        .await?;
    Ok(tags)
}

/// Parses and runs the statements of a Query string.
async fn run(conn: &Connection, client: &mut Client, query: &str) -> PgWireResult<Vec<Response>> {
    let mut session = conn.session().await?;
    let stmts = match session.parse(query) {
        Ok(stmts) => stmts,
        Err(e) => return Ok(vec![Response::Error(Box::new(error_info(&e)))]),
    };
    if stmts.is_empty() {
        return Ok(vec![Response::EmptyQuery]);
    }
    if let [stmt] = stmts.as_slice()
        && (stmt.is_copy_from() || stmt.is_copy_to())
    {
        drop(session);
        let result = match crate::copy::run(conn, client, stmt).await {
            Ok(result) => result,
            Err(e) => return Ok(vec![Response::Error(Box::new(ErrorInfo::from(e)))]),
        };
        let status = conn.txn_status().await;
        return Ok(vec![into_response(
            result,
            stmt.rows_tag(),
            status,
            status,
        )?]);
    }
    // The statements of one Query run as one implicit transaction (all or nothing), and
    // the rest of the string is abandoned at the first error, as in PostgreSQL.
    let before = session.txn_status();
    let span = tracing::debug_span!("batch", statements = stmts.len());
    let results = session.execute_batch(&stmts).instrument(span).await;
    let after = session.txn_status();
    let mut responses = Vec::with_capacity(results.len());
    for (result, stmt) in results.into_iter().zip(&stmts) {
        // The simple protocol sends every completion alike, so the kind of transition does
        // not matter here; the batch's overall one is reported.
        match result
            .map_err(|e| from_sql(&e))
            .and_then(|r| into_response(r, stmt.rows_tag(), before, after))
        {
            Ok(response) => responses.push(response),
            Err(e) => {
                responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
                break;
            }
        }
    }
    Ok(responses)
}

/// Whether a Query string holds no statement at all (PostgreSQL answers EmptyQueryResponse).
fn is_empty_query(query: &str) -> bool {
    query.chars().all(|c| c == ';' || c.is_whitespace())
}

/// RowDescription fields of result columns in `formats` (text where none is given).
pub(crate) fn fields(columns: &[Column], formats: &[FieldFormat]) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = formats.get(i).copied().unwrap_or(FieldFormat::Text);
            FieldInfo::new(c.name.clone(), None, None, pg_type(c.data_type), f)
        })
        .collect()
}

/// Turns one statement's result into its simple-protocol response (text format): rows are
/// tagged `rows_tag` (see [`sql::Statement::rows_tag`]). `before` and `after` are the
/// session's transaction states around the statement.
fn into_response(
    result: ExecResult,
    rows_tag: &str,
    before: TxnStatus,
    after: TxnStatus,
) -> PgWireResult<Response> {
    match result {
        ExecResult::Empty => Ok(Response::EmptyQuery),
        ExecResult::Command { tag, rows } => Ok(completion(command_tag(&tag, rows), before, after)),
        ExecResult::Rows { columns, rows } => {
            let formats = vec![FieldFormat::Text; columns.len()];
            let types: Vec<DataType> = columns.iter().map(|c| c.data_type).collect();
            let rows = rows
                .iter()
                .map(|row| encode_row(row, &types, &formats))
                .collect::<PgWireResult<Vec<_>>>()?;
            let schema = Arc::new(fields(&columns, &formats));
            let mut response = QueryResponse::new(schema, stream::iter(rows.into_iter().map(Ok)));
            // pgwire appends the row count; INSERT's legacy OID field comes before it.
            response.set_command_tag(if rows_tag == "INSERT" {
                "INSERT 0"
            } else {
                rows_tag
            });
            Ok(Response::Query(response))
        }
    }
}

/// The CommandComplete tag of a command: INSERT carries PostgreSQL's legacy OID field
/// ("INSERT 0 n"); other commands carry their row count when they have one ("UPDATE n").
pub(crate) fn command_tag(tag: &str, rows: Option<u64>) -> Tag {
    let count = rows.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    match (tag, count) {
        ("INSERT", n) => Tag::new(tag).with_oid(0).with_rows(n.unwrap_or(0)),
        (_, Some(n)) => Tag::new(tag).with_rows(n),
        (_, None) => Tag::new(tag),
    }
}

/// A completed command as the pgwire response whose transaction transition matches the
/// session's. pgwire's own status tracking is overridden (ReadyForQuery is built from the
/// session), so this only keeps pgwire's bookkeeping, such as dropping the unnamed portal when
/// a transaction ends, consistent.
fn completion(tag: Tag, before: TxnStatus, after: TxnStatus) -> Response {
    match (before, after) {
        (TxnStatus::Idle, TxnStatus::InBlock) => Response::TransactionStart(tag),
        (TxnStatus::InBlock | TxnStatus::Failed, TxnStatus::Idle) => Response::TransactionEnd(tag),
        _ => Response::Execution(tag),
    }
}

#[cfg(test)]
mod tests {
    use pgwire::messages::response::CommandComplete;

    use super::*;

    fn tag_text(tag: &str, rows: Option<u64>) -> String {
        CommandComplete::from(command_tag(tag, rows)).tag
    }

    #[test]
    fn command_tags_match_postgres() {
        assert_eq!(tag_text("INSERT", Some(3)), "INSERT 0 3");
        assert_eq!(tag_text("UPDATE", Some(2)), "UPDATE 2");
        assert_eq!(tag_text("DELETE", Some(0)), "DELETE 0");
        assert_eq!(tag_text("CREATE TABLE", None), "CREATE TABLE");
        assert_eq!(tag_text("BEGIN", None), "BEGIN");
    }

    #[test]
    fn completions_follow_transaction_transitions() {
        let kind = |before, after| match completion(Tag::new("X"), before, after) {
            Response::TransactionStart(_) => "start",
            Response::TransactionEnd(_) => "end",
            Response::Execution(_) => "exec",
            _ => unreachable!(),
        };
        assert_eq!(kind(TxnStatus::Idle, TxnStatus::InBlock), "start");
        assert_eq!(kind(TxnStatus::InBlock, TxnStatus::Idle), "end");
        assert_eq!(kind(TxnStatus::Failed, TxnStatus::Idle), "end");
        assert_eq!(kind(TxnStatus::InBlock, TxnStatus::InBlock), "exec");
        assert_eq!(kind(TxnStatus::Idle, TxnStatus::Idle), "exec");
    }

    #[test]
    fn row_descriptions_carry_type_oids() {
        let columns = vec![
            Column {
                name: "id".into(),
                data_type: DataType::Int8,
            },
            Column {
                name: "ok".into(),
                data_type: DataType::Bool,
            },
        ];
        let fields = fields(&columns, &[FieldFormat::Binary; 2]);
        assert_eq!(fields[0].name(), "id");
        assert_eq!(fields[0].datatype().oid(), 20);
        assert_eq!(fields[1].datatype().oid(), 16);
        assert_eq!(fields[1].format(), FieldFormat::Binary);
    }

    #[test]
    fn empty_queries_are_detected() {
        assert!(is_empty_query(" ; ;\n"));
        assert!(!is_empty_query("select 1"));
    }
}
