//! The extended query protocol: Parse, Bind, Describe, Execute, Close, Sync and Flush.
//!
//! Prepared statements live in the session (`sql::Session::prepare`), where SQL `PREPARE` and
//! `DEALLOCATE` see them too; portals live here, one map per connection. The first Execute of
//! a query's portal with a row limit opens a cursor (`sql::Session::open_cursor`): each call
//! reads and sends at most `max_rows` rows (PortalSuspended when some remain), so a client
//! fetches a large result incrementally while the server holds about one batch of it. Outside
//! a block the cursor's implicit transaction lasts until Sync, which commits it. Other
//! statements (and an Execute without a limit) run whole on their first Execute, which keeps
//! the rows and sends them as asked. Portals are dropped when the transaction they belong to ends: at Sync outside
//! a transaction block, when COMMIT or ROLLBACK ends one, and by `DISCARD ALL`. After an error,
//! messages are skipped until Sync, as in PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use pgwire::api::Type;
use pgwire::api::results::{FieldFormat, FieldInfo, Tag};
use pgwire::error::PgWireResult;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{FieldDescription, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    BindComplete, CloseComplete, ParseComplete, PortalSuspended,
};
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse};
use sql::{DataType, ExecResult, Prepared, TxnStatus, Value};
use tracing::Instrument;

use crate::client::Client;
use crate::conn::Connection;
use crate::error::{code, from_sql, user_error};
use crate::frame::{Bind, Execute, Parse, Target};
use crate::query::{command_tag, fields};
use crate::types::{ParamType, decode_param, encode_row, pg_type};

/// The rows a cursor portal reads per fetch when Execute asks for all that remain.
const CURSOR_CHUNK: usize = 1024;

/// SQLSTATE 34000: the portal named does not exist.
const INVALID_CURSOR_NAME: &str = "34000";

/// A bound portal.
struct Portal {
    prepared: Arc<Prepared>,
    params: Vec<Value>,
    /// The format of each result column.
    formats: Vec<FieldFormat>,
    run: Run,
}

/// How far a portal has run.
enum Run {
    /// Not executed yet.
    Ready,
    /// Executed; these rows are still to be sent, then CommandComplete with `tag` (see
    /// [`sql::Statement::rows_tag`]).
    Rows {
        rows: std::vec::IntoIter<Vec<Value>>,
        types: Vec<DataType>,
        tag: &'static str,
    },
    /// A query opened for a row limit: its rows are read as they are fetched.
    Cursor {
        cursor: Box<sql::Cursor>,
        types: Vec<DataType>,
    },
    /// Executed and every row sent.
    Done,
}

/// A connection's portals. The unnamed portal, which most clients use for every execution,
/// sits in a field of its own rather than in the map.
#[derive(Default)]
struct Portals {
    unnamed: Option<Portal>,
    named: HashMap<String, Portal>,
}

impl Portals {
    fn get(&self, name: &str) -> Option<&Portal> {
        match name {
            "" => self.unnamed.as_ref(),
            name => self.named.get(name),
        }
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Portal> {
        match name {
            "" => self.unnamed.as_mut(),
            name => self.named.get_mut(name),
        }
    }

    fn insert(&mut self, name: String, portal: Portal) {
        match name.as_str() {
            "" => self.unnamed = Some(portal),
            _ => {
                self.named.insert(name, portal);
            }
        }
    }

    fn remove(&mut self, name: &str) -> Option<Portal> {
        match name {
            "" => self.unnamed.take(),
            name => self.named.remove(name),
        }
    }

    fn clear(&mut self) {
        self.unnamed = None;
        self.named.clear();
    }
}

/// The extended-protocol state of one connection.
pub(crate) struct Extended {
    conn: Arc<Connection>,
    portals: Portals,
    /// The last RowDescription sent, encoded, with the statement and formats it describes:
    /// clients that describe the portal of every execution (libpq's `PQexecPrepared`) get it
    /// again without it being built again.
    described: Option<(Arc<Prepared>, Vec<FieldFormat>, BytesMut)>,
}

impl Extended {
    pub(crate) fn new(conn: Arc<Connection>) -> Extended {
        Extended {
            conn,
            portals: Portals::default(),
            described: None,
        }
    }

    /// Drops the unnamed portal (a simple Query does, as in PostgreSQL).
    pub(crate) fn drop_unnamed_portal(&mut self) {
        self.portals.remove("");
    }

    /// Drops every portal (their transaction ended).
    pub(crate) fn drop_portals(&mut self) {
        self.portals.clear();
    }

    pub(crate) async fn parse(&mut self, client: &mut Client, msg: Parse) -> PgWireResult<()> {
        let declared = declared_layouts(&msg.type_oids)?;
        let declared_types: Vec<Option<DataType>> = declared
            .iter()
            .map(|l| l.map(ParamType::data_type))
            .collect();
        let mut session = self.conn.session().await?;
        session
            .prepare(&msg.name, &msg.sql, &declared_types, msg.type_oids)
            .await
            .map_err(|e| from_sql(&e))?;
        client.push(PgWireBackendMessage::ParseComplete(ParseComplete::new()))?;
        Ok(())
    }

    pub(crate) async fn bind(&mut self, client: &mut Client, msg: Bind) -> PgWireResult<()> {
        let prepared = self
            .conn
            .session()
            .await?
            .prepared(&msg.statement)
            .map_err(|e| from_sql(&e))?;
        let layouts = param_layouts(&prepared);
        let params = bind_params(&msg, &msg.statement, &layouts)?;
        let ncols = prepared.description.columns.len();
        let formats = formats(&msg.result_formats, ncols).ok_or_else(|| {
            user_error(
                code::PROTOCOL_VIOLATION,
                format!(
                    "bind message has {} result formats but query has {ncols} columns",
                    msg.result_formats.len()
                ),
            )
        })?;
        let portal = Portal {
            prepared,
            params,
            formats,
            run: Run::Ready,
        };
        self.portals.insert(msg.portal, portal);
        client.push(PgWireBackendMessage::BindComplete(BindComplete::new()))?;
        Ok(())
    }

    pub(crate) async fn describe(&mut self, client: &mut Client, msg: Target) -> PgWireResult<()> {
        if msg.kind == b'S' {
            let prepared = self
                .conn
                .session()
                .await?
                .prepared(&msg.name)
                .map_err(|e| from_sql(&e))?;
            let oids = param_layouts(&prepared)
                .iter()
                .enumerate()
                .map(|(i, layout)| match prepared.declared_oids.get(i) {
                    Some(&oid) if oid != 0 => oid,
                    // The inferred type (a CHAR(n) is described as bpchar, sent as text).
                    _ => match prepared.description.params.get(i) {
                        Some(dt) => pg_type(*dt).oid(),
                        None => pg_type(layout.data_type()).oid(),
                    },
                })
                .collect();
            client.push(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(oids),
            ))?;
            let text = vec![FieldFormat::Text; prepared.description.columns.len()];
            return self.row_description(client, &prepared, &text);
        }
        let portal = self.portal(&msg.name)?;
        let (prepared, formats) = (portal.prepared.clone(), portal.formats.clone());
        self.row_description(client, &prepared, &formats)
    }

    /// RowDescription of a statement's result in `formats`, or NoData.
    fn row_description(
        &mut self,
        client: &mut Client,
        prepared: &Arc<Prepared>,
        formats: &[FieldFormat],
    ) -> PgWireResult<()> {
        let columns = &prepared.description.columns;
        if columns.is_empty() {
            client.push(PgWireBackendMessage::NoData(NoData::new()))?;
            return Ok(());
        }
        if let Some((p, f, encoded)) = &self.described
            && Arc::ptr_eq(p, prepared)
            && f == formats
        {
            client.push_encoded(encoded);
            return Ok(());
        }
        let fields: Vec<FieldInfo> = fields(columns, formats);
        let fields = fields.iter().map(FieldDescription::from).collect();
        let message = PgWireBackendMessage::RowDescription(RowDescription::new(fields));
        let mut encoded = BytesMut::new();
        message.encode(&mut encoded)?;
        client.push_encoded(&encoded);
        self.described = Some((prepared.clone(), formats.to_vec(), encoded));
        Ok(())
    }

    pub(crate) async fn execute(&mut self, client: &mut Client, msg: Execute) -> PgWireResult<()> {
        let portal = self.portal(&msg.portal)?;
        if matches!(portal.run, Run::Ready) {
            let Some(stmt) = portal.prepared.statement.clone() else {
                portal.run = Run::Done;
                client.push(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))?;
                return Ok(());
            };
            let params = std::mem::take(&mut portal.params);
            if stmt.is_copy_from() || stmt.is_copy_to() {
                portal.run = Run::Done;
                let conn = self.conn.clone();
                let result = crate::copy::run(&conn, client, &stmt).await?;
                if let ExecResult::Command { tag, rows } = result {
                    let complete = CommandComplete::from(command_tag(&tag, rows));
                    client.push(PgWireBackendMessage::CommandComplete(complete))?;
                }
                return Ok(());
            }
            let mut session = self.conn.session().await?;
            if msg.max_rows > 0 {
                let span = tracing::debug_span!("cursor", portal = %msg.portal);
                let opened = session.open_cursor(&stmt, &params).instrument(span).await;
                if let Some(cursor) = opened.map_err(|e| from_sql(&e))? {
                    drop(session);
                    let types = cursor.columns().iter().map(|c| c.data_type).collect();
                    let portal = self.portal(&msg.portal)?;
                    portal.run = Run::Cursor {
                        cursor: Box::new(cursor),
                        types,
                    };
                    return self.send_rows(client, &msg.portal, msg.max_rows).await;
                }
            }
            let before = session.txn_status();
            let span = tracing::debug_span!("statement", portal = %msg.portal);
            let result = session.execute(&stmt, &params).instrument(span).await;
            let ended = before != TxnStatus::Idle && session.txn_status() == TxnStatus::Idle;
            drop(session);
            let portal = self.portal(&msg.portal)?;
            let result = result.map_err(|e| from_sql(&e));
            let discard_all = match result? {
                ExecResult::Rows { columns, rows } => {
                    let types = columns.iter().map(|c| c.data_type).collect();
                    portal.run = Run::Rows {
                        rows: rows.into_iter(),
                        types,
                        tag: stmt.rows_tag(),
                    };
                    false
                }
                ExecResult::Command { tag, rows } => {
                    portal.run = Run::Done;
                    let complete = CommandComplete::from(command_tag(&tag, rows));
                    client.push(PgWireBackendMessage::CommandComplete(complete))?;
                    tag == "DISCARD ALL"
                }
                ExecResult::Empty => {
                    portal.run = Run::Done;
                    client.push(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))?;
                    false
                }
            };
            if ended || discard_all {
                // The transaction the other portals belong to is over.
                let this = self.portals.remove(&msg.portal);
                self.portals.clear();
                if let Some(this) = this
                    && !discard_all
                {
                    self.portals.insert(msg.portal.clone(), this);
                }
            }
            if !matches!(self.portals.get(&msg.portal), Some(p) if matches!(p.run, Run::Rows { .. }))
            {
                return Ok(());
            }
        }
        self.send_rows(client, &msg.portal, msg.max_rows).await
    }

    /// Sends up to `max_rows` (0: all) of a portal's remaining rows, then PortalSuspended if
    /// some remain or CommandComplete if not.
    async fn send_rows(
        &mut self,
        client: &mut Client,
        name: &str,
        max_rows: usize,
    ) -> PgWireResult<()> {
        let conn = self.conn.clone();
        let portal = self.portal(name)?;
        let Run::Cursor { cursor, types } = &mut portal.run else {
            return send_rows(client, portal, max_rows).await;
        };
        let mut sent = 0;
        loop {
            let want = match max_rows {
                0 => CURSOR_CHUNK,
                n => n - sent,
            };
            let rows = {
                let mut session = conn.session().await?;
                session
                    .fetch(cursor, want)
                    .await
                    .map_err(|e| from_sql(&e))?
            };
            for row in &rows {
                let row = encode_row(row, types, &portal.formats)?;
                client.push(PgWireBackendMessage::DataRow(row))?;
                client.maybe_flush().await?;
            }
            sent += rows.len();
            if cursor.is_done() {
                portal.run = Run::Done;
                let complete = CommandComplete::from(Tag::new("SELECT").with_rows(sent));
                client.push(PgWireBackendMessage::CommandComplete(complete))?;
                return Ok(());
            }
            if max_rows != 0 && sent >= max_rows {
                client.push(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))?;
                return Ok(());
            }
        }
    }

    pub(crate) async fn close(&mut self, client: &mut Client, msg: Target) -> PgWireResult<()> {
        if msg.kind == b'S' {
            self.conn.session().await?.deallocate(&msg.name);
        } else {
            self.portals.remove(&msg.name);
        }
        client.push(PgWireBackendMessage::CloseComplete(CloseComplete::new()))?;
        Ok(())
    }

    /// Sync: ends the implicit transaction's portals; the caller sends ReadyForQuery.
    pub(crate) fn sync(&mut self, status: TxnStatus) {
        if status == TxnStatus::Idle {
            self.portals.clear();
        } else {
            self.portals.remove("");
        }
    }

    fn portal(&mut self, name: &str) -> PgWireResult<&mut Portal> {
        self.portals.get_mut(name).ok_or_else(|| {
            user_error(
                INVALID_CURSOR_NAME,
                format!("portal \"{name}\" does not exist"),
            )
        })
    }
}

/// Sends up to `max_rows` (0: all) of a portal's remaining rows, then PortalSuspended if some
/// remain or CommandComplete if not.
async fn send_rows(client: &mut Client, portal: &mut Portal, max_rows: usize) -> PgWireResult<()> {
    let Run::Rows { rows, types, tag } = &mut portal.run else {
        // Run to completion before: nothing more, as in PostgreSQL.
        let complete = CommandComplete::from(Tag::new("SELECT").with_rows(0));
        client.push(PgWireBackendMessage::CommandComplete(complete))?;
        return Ok(());
    };
    let mut sent = 0;
    while max_rows == 0 || sent < max_rows {
        let Some(row) = rows.next() else { break };
        let row = encode_row(&row, types, &portal.formats)?;
        client.push(PgWireBackendMessage::DataRow(row))?;
        client.maybe_flush().await?;
        sent += 1;
    }
    if rows.len() > 0 {
        client.push(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))?;
    } else {
        let complete = CommandComplete::from(command_tag(tag, Some(sent as u64)));
        portal.run = Run::Done;
        client.push(PgWireBackendMessage::CommandComplete(complete))?;
    }
    Ok(())
}

/// The wire layouts of the parameter types a client declared in Parse (None: unspecified).
pub(crate) fn declared_layouts(oids: &[u32]) -> PgWireResult<Vec<Option<ParamType>>> {
    oids.iter()
        .map(|&oid| {
            if oid == 0 || oid == Type::UNKNOWN.oid() {
                return Ok(None);
            }
            let ty = Type::from_oid(oid);
            ty.as_ref()
                .and_then(ParamType::from_pg)
                .map(Some)
                .ok_or_else(|| {
                    let name =
                        ty.map_or_else(|| format!("with OID {oid}"), |t| t.name().to_owned());
                    user_error(
                        code::FEATURE_NOT_SUPPORTED,
                        format!("parameter type {name} is not supported"),
                    )
                })
        })
        .collect()
}

/// How each parameter of a prepared statement is laid out on the wire: the declared type where
/// the client gave one, else the inferred one.
fn param_layouts(prepared: &Prepared) -> Vec<ParamType> {
    let declared = declared_layouts(&prepared.declared_oids).unwrap_or_default();
    let inferred = &prepared.description.params;
    (0..declared.len().max(inferred.len()))
        .map(|i| {
            declared.get(i).copied().flatten().unwrap_or_else(|| {
                inferred
                    .get(i)
                    .map_or(ParamType::Text, |dt| ParamType::from_data_type(*dt))
            })
        })
        .collect()
}

/// Decodes Bind's parameters in the statement's layouts.
fn bind_params(msg: &Bind, statement: &str, layouts: &[ParamType]) -> PgWireResult<Vec<Value>> {
    let want = layouts.len();
    if msg.params.len() != want {
        return Err(user_error(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement \"{statement}\" requires {want}",
                msg.params.len()
            ),
        ));
    }
    let formats = formats(&msg.param_formats, want).ok_or_else(|| {
        user_error(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message has {} parameter formats but {want} parameters",
                msg.param_formats.len()
            ),
        )
    })?;
    msg.params
        .iter()
        .zip(layouts)
        .zip(formats)
        .enumerate()
        .map(|(i, ((bytes, layout), format))| {
            decode_param(i, *layout, format == FieldFormat::Binary, bytes.as_deref())
        })
        .collect()
}

/// The format of each of `n` fields under a Bind format list of 0, 1 or `n` codes.
pub(crate) fn formats(codes: &[i16], n: usize) -> Option<Vec<FieldFormat>> {
    match codes {
        [] => Some(vec![FieldFormat::Text; n]),
        [one] => Some(vec![FieldFormat::from(*one); n]),
        codes if codes.len() == n => Some(codes.iter().map(|c| FieldFormat::from(*c)).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_bind() {
        assert_eq!(formats(&[1], 2), Some(vec![FieldFormat::Binary; 2]));
        assert_eq!(formats(&[], 1), Some(vec![FieldFormat::Text]));
        assert_eq!(
            formats(&[0, 1], 2),
            Some(vec![FieldFormat::Text, FieldFormat::Binary])
        );
        assert_eq!(formats(&[0, 1], 3), None);
    }

    #[test]
    fn declared_oids_map_to_layouts() {
        let layouts = declared_layouts(&[0, 705, 21, 1043]).unwrap();
        assert_eq!(
            layouts,
            [None, None, Some(ParamType::Int2), Some(ParamType::Varchar)]
        );
        assert_eq!(
            declared_layouts(&[1700]).unwrap(),
            [Some(ParamType::Numeric)]
        );
        assert_eq!(
            declared_layouts(&[3802, 114]).unwrap(),
            [Some(ParamType::Jsonb), Some(ParamType::Json)]
        );
        assert!(declared_layouts(&[142]).is_err(), "xml");
        assert!(declared_layouts(&[999_999]).is_err(), "unknown oid");
    }
}
