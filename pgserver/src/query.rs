//! The simple and extended query protocols over one connection's `sql::Session`.
//!
//! Simple protocol: the Query string is parsed whole (a syntax error anywhere runs nothing, as in
//! PostgreSQL), then statements run in order, one response each, stopping at the first error.
//! Extended protocol: Parse parses exactly one statement and describes it at once (the SQL layer
//! needs the session to resolve names and infer parameter types, and pgwire's describe hooks are
//! synchronous), Bind decodes parameters per the described types, Execute runs the statement.
//! In both, ReadyForQuery carries the session's own transaction status, never pgwire's guess.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_execution_response, send_query_response,
    send_ready_for_query,
};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, Parse, ParseComplete, Sync as PgSync,
};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery};
use pgwire::messages::simplequery::Query;
use sql::{Column, DataType, Description, ExecResult, Statement, TxnStatus, Value};
use tracing::Instrument;

use crate::buffered::Buffered;
use crate::conn::Connection;
use crate::error::{code, error_info, from_sql, user_error};
use crate::types::{ParamType, decode_param, encode_row, pg_type};

/// A statement prepared by Parse: the SQL layer's statement, its description, and the wire
/// layout of each parameter (the client's declared type where it gave one).
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    stmt: Statement,
    desc: Description,
    params: Vec<ParamType>,
}

/// Parses and describes statements for the extended protocol.
pub(crate) struct Parser {
    pub(crate) conn: Arc<Connection>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let declared = declared_layouts(types)?;
        let mut session = self.conn.session().await?;
        let stmt = match <[Statement; 1]>::try_from(session.parse(sql).map_err(|e| from_sql(&e))?) {
            Ok([stmt]) => stmt,
            Err(stmts) if stmts.is_empty() => return Ok(None),
            Err(_) => {
                return Err(user_error(
                    code::SYNTAX_ERROR,
                    "cannot insert multiple commands into a prepared statement",
                ));
            }
        };
        let declared_types: Vec<Option<DataType>> = declared
            .iter()
            .map(|l| l.map(ParamType::data_type))
            .collect();
        let desc = session
            .describe(&stmt, &declared_types)
            .await
            .map_err(|e| from_sql(&e))?;
        let params = (0..declared.len().max(desc.params.len()))
            .map(|i| {
                declared.get(i).copied().flatten().unwrap_or_else(|| {
                    desc.params
                        .get(i)
                        .map_or(ParamType::Text, |dt| ParamType::from_data_type(*dt))
                })
            })
            .collect();
        Ok(Some(Prepared { stmt, desc, params }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.desc.params.iter().map(|dt| pg_type(*dt)).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(fields(&stmt.desc.columns, format))
    }
}

/// The wire layouts of the parameter types a client declared in Parse (None: unspecified).
fn declared_layouts(types: &[Option<Type>]) -> PgWireResult<Vec<Option<ParamType>>> {
    types
        .iter()
        .map(|ty| match ty {
            None => Ok(None),
            Some(ty) if *ty == Type::UNKNOWN => Ok(None),
            Some(ty) => ParamType::from_pg(ty).map(Some).ok_or_else(|| {
                user_error(
                    code::FEATURE_NOT_SUPPORTED,
                    format!("parameter type {} is not supported", ty.name()),
                )
            }),
        })
        .collect()
}

/// The simple and extended query handlers of one connection.
pub(crate) struct Queries {
    pub(crate) conn: Arc<Connection>,
    pub(crate) parser: Arc<Parser>,
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    /// Like pgwire's default, but ReadyForQuery reports the session's transaction status.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let responses = if is_empty_query(&query.query) {
            vec![Response::EmptyQuery]
        } else {
            SimpleQueryHandler::do_query(self, client, &query.query).await?
        };
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
                | Response::TransactionEnd(tag) => send_execution_response(client, tag).await?,
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
        let status = self.conn.txn_status().await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut session = self.conn.session().await?;
        let stmts = match session.parse(query) {
            Ok(stmts) => stmts,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(&e)))]),
        };
        if stmts.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        // The statements of one Query run as one implicit transaction (all or nothing), and
        // the rest of the string is abandoned at the first error, as in PostgreSQL.
        let before = session.txn_status();
        let span = tracing::debug_span!("batch", statements = stmts.len());
        let results = session.execute_batch(&stmts).instrument(span).await;
        let after = session.txn_status();
        let mut responses = Vec::with_capacity(results.len());
        for result in results {
            // The simple protocol sends every completion alike, so the kind of transition does
            // not matter here; the batch's overall one is reported.
            match result
                .map_err(|e| from_sql(&e))
                .and_then(|r| into_response(r, before, after, None))
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
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// Like pgwire's default, but ParseComplete waits for Sync or Flush (see `buffered`).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match StoredStatement::parse(client, &message, self.parser.clone()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => {
                let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
                client.portal_store().put_empty_statement(name)
            }
        }
        let reply = PgWireBackendMessage::ParseComplete(ParseComplete::new());
        client.feed(reply).await?;
        Ok(())
    }

    /// Like pgwire's default, but BindComplete waits for Sync or Flush (see `buffered`).
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement) {
            Some(Entry::Value(stmt)) => {
                let portal = Portal::try_new(&message, stmt)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            // An empty statement binds an empty portal, as in PostgreSQL.
            Some(Entry::Empty) if message.parameters.is_empty() => {
                let portal = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
                client.portal_store().put_empty_portal(portal);
            }
            Some(Entry::Empty) => {
                let statement = if statement == DEFAULT_NAME {
                    ""
                } else {
                    statement
                };
                return Err(user_error(
                    code::PROTOCOL_VIOLATION,
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{statement}\" requires 0",
                        message.parameters.len()
                    ),
                ));
            }
            None => return Err(PgWireError::StatementNotFound(statement.to_owned())),
        }
        let reply = PgWireBackendMessage::BindComplete(BindComplete::new());
        client.feed(reply).await?;
        Ok(())
    }

    /// pgwire's default, with replies waiting for Sync or Flush (see `buffered`).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self._on_describe(&mut Buffered(client), message).await
    }

    /// pgwire's default, with replies waiting for Sync or Flush (see `buffered`).
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self._on_execute(&mut Buffered(client), message).await
    }

    /// Like pgwire's default, but ReadyForQuery reports the session's transaction status.
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = self.conn.txn_status().await;
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }

    /// Runs a bound portal. All rows are produced at once; pgwire then sends at most `max_rows`
    /// per Execute and keeps the rest in the portal (PortalSuspended).
    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let prepared = &portal.statement.statement;
        let params = bind_params(portal)?;
        let mut session = self.conn.session().await?;
        let before = session.txn_status();
        let span = tracing::debug_span!("statement", sql = %prepared.stmt.sql());
        let result = session
            .execute(&prepared.stmt, &params)
            .instrument(span)
            .await;
        let after = session.txn_status();
        into_response(
            result.map_err(|e| from_sql(&e))?,
            before,
            after,
            Some(&portal.result_column_format),
        )
    }
}

/// Whether a Query string holds no statement at all (PostgreSQL answers EmptyQueryResponse).
fn is_empty_query(query: &str) -> bool {
    query.chars().all(|c| c == ';' || c.is_whitespace())
}

/// Decodes a portal's parameters in the layouts the statement was prepared with.
fn bind_params(portal: &Portal<Prepared>) -> PgWireResult<Vec<Value>> {
    let prepared = &portal.statement.statement;
    let want = prepared.params.len();
    if portal.parameters.len() != want {
        let name = portal.statement.id.as_str();
        let name = if name == DEFAULT_NAME { "" } else { name };
        return Err(user_error(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement \"{name}\" requires {want}",
                portal.parameters.len()
            ),
        ));
    }
    let formats = field_formats(Some(&portal.parameter_format), want).map_err(|n| {
        user_error(
            code::PROTOCOL_VIOLATION,
            format!("bind message has {n} parameter formats but {want} parameters"),
        )
    })?;
    let layouts = prepared.params.iter();
    (portal
        .parameters
        .iter()
        .zip(layouts)
        .zip(formats)
        .enumerate())
    .map(|(i, ((bytes, layout), format))| {
        decode_param(i, *layout, format == FieldFormat::Binary, bytes.as_deref())
    })
    .collect()
}

/// The format of each of `n` fields under a Bind format list; Err(count) if the list has
/// neither 0, 1 nor `n` entries.
fn field_formats(format: Option<&Format>, n: usize) -> Result<Vec<FieldFormat>, usize> {
    match format {
        None | Some(Format::UnifiedText) => Ok(vec![FieldFormat::Text; n]),
        Some(Format::UnifiedBinary) => Ok(vec![FieldFormat::Binary; n]),
        Some(Format::Individual(codes)) if codes.len() == n => {
            Ok(codes.iter().map(|c| FieldFormat::from(*c)).collect())
        }
        Some(Format::Individual(codes)) => Err(codes.len()),
    }
}

/// RowDescription fields of result columns; unknown formats fall back to text.
fn fields(columns: &[Column], format: Option<&Format>) -> Vec<FieldInfo> {
    let formats = field_formats(format, columns.len())
        .unwrap_or_else(|_| vec![FieldFormat::Text; columns.len()]);
    columns
        .iter()
        .zip(formats)
        .map(|(c, f)| FieldInfo::new(c.name.clone(), None, None, pg_type(c.data_type), f))
        .collect()
}

/// Turns one statement's result into its protocol response. `before`/`after` are the session's
/// transaction states around the statement; `format` is the portal's result format (None: text).
fn into_response(
    result: ExecResult,
    before: TxnStatus,
    after: TxnStatus,
    format: Option<&Format>,
) -> PgWireResult<Response> {
    match result {
        ExecResult::Empty => Ok(Response::EmptyQuery),
        ExecResult::Command { tag, rows } => Ok(completion(command_tag(&tag, rows), before, after)),
        ExecResult::Rows { columns, rows } => {
            let formats = field_formats(format, columns.len()).map_err(|n| {
                user_error(
                    code::PROTOCOL_VIOLATION,
                    format!(
                        "bind message has {n} result formats but query has {} columns",
                        columns.len()
                    ),
                )
            })?;
            let types: Vec<DataType> = columns.iter().map(|c| c.data_type).collect();
            let rows = rows
                .iter()
                .map(|row| encode_row(row, &types, &formats))
                .collect::<PgWireResult<Vec<_>>>()?;
            let schema = Arc::new(fields(&columns, format));
            Ok(Response::Query(QueryResponse::new(
                schema,
                stream::iter(rows.into_iter().map(Ok)),
            )))
        }
    }
}

/// The CommandComplete tag of a command: INSERT carries PostgreSQL's legacy OID field
/// ("INSERT 0 n"); other commands carry their row count when they have one ("UPDATE n").
fn command_tag(tag: &str, rows: Option<u64>) -> Tag {
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
    fn result_formats_follow_bind() {
        let bin = Format::UnifiedBinary;
        assert_eq!(
            field_formats(Some(&bin), 2),
            Ok(vec![FieldFormat::Binary; 2])
        );
        assert_eq!(field_formats(None, 1), Ok(vec![FieldFormat::Text]));
        let mixed = Format::Individual(vec![0, 1]);
        assert_eq!(
            field_formats(Some(&mixed), 2),
            Ok(vec![FieldFormat::Text, FieldFormat::Binary])
        );
        assert_eq!(field_formats(Some(&mixed), 3), Err(2));
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
        let fields = fields(&columns, Some(&Format::UnifiedBinary));
        assert_eq!(fields[0].name(), "id");
        assert_eq!(fields[0].datatype().oid(), 20);
        assert_eq!(fields[1].datatype().oid(), 16);
        assert_eq!(fields[1].format(), FieldFormat::Binary);
    }

    #[test]
    fn declared_types_map_to_layouts() {
        let declared = [
            None,
            Some(Type::UNKNOWN),
            Some(Type::INT2),
            Some(Type::VARCHAR),
        ];
        let layouts = declared_layouts(&declared).unwrap();
        assert_eq!(
            layouts,
            [None, None, Some(ParamType::Int2), Some(ParamType::Text)]
        );
        assert!(declared_layouts(&[Some(Type::NUMERIC)]).is_err());
    }

    #[test]
    fn empty_queries_are_detected() {
        assert!(is_empty_query(" ; ;\n"));
        assert!(!is_empty_query("select 1"));
    }
}
