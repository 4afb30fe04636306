//! The COPY sub-protocol: CopyInResponse then the client's CopyData up to CopyDone or
//! CopyFail for COPY FROM STDIN; CopyOutResponse, CopyData and CopyDone for COPY TO STDOUT.
//! The rows themselves are read and written by `sql` (`Session::copy_from`, `copy_to`).

use bytes::Bytes;
use pgwire::error::PgWireResult;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyInResponse, CopyOutResponse};
use sql::{ExecResult, Statement};

use crate::client::{Client, Incoming};
use crate::conn::Connection;
use crate::error::{code, fatal, from_sql};

/// Runs a COPY statement with the client; returns its completion (`COPY n`).
pub(crate) async fn run(
    conn: &Connection,
    client: &mut Client,
    stmt: &Statement,
) -> PgWireResult<ExecResult> {
    if stmt.is_copy_to() {
        return copy_out(conn, client, stmt).await;
    }
    let mut copy = {
        let mut session = conn.session().await?;
        session.copy_from(stmt).await.map_err(|e| from_sql(&e))?
    };
    let columns = i16::try_from(copy.columns()).unwrap_or(i16::MAX);
    client.push(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(
        0,
        columns,
        vec![0; columns as usize],
    )))?;
    client.flush_out().await?;
    loop {
        let frame = match client.next(false).await {
            Incoming::Message(frame) => frame,
            Incoming::Closed | Incoming::Broken(_) => {
                let e = fatal(
                    code::PROTOCOL_VIOLATION,
                    "unexpected EOF on client connection with an open transaction",
                );
                let mut session = conn.session().await?;
                session.copy_fail(copy, "the connection ended").await;
                return Err(e);
            }
            Incoming::Failed(e) => return Err(e.into()),
        };
        let mut session = conn.session().await?;
        match frame.kind {
            b'd' => session
                .copy_data(&mut copy, &frame.body)
                .await
                .map_err(|e| from_sql(&e))?,
            b'c' => return session.copy_done(copy).await.map_err(|e| from_sql(&e)),
            b'f' => {
                let message = cstr(&frame.body);
                return Err(from_sql(&session.copy_fail(copy, &message).await));
            }
            // Flush and Sync are ignored during COPY, as in PostgreSQL (drivers send them
            // without knowing the statement was a COPY).
            b'H' | b'S' => {}
            other => {
                session.copy_fail(copy, "unexpected message").await;
                return Err(fatal(
                    code::PROTOCOL_VIOLATION,
                    format!("unexpected message type 0x{other:02X} during COPY from stdin"),
                ));
            }
        }
    }
}

async fn copy_out(
    conn: &Connection,
    client: &mut Client,
    stmt: &Statement,
) -> PgWireResult<ExecResult> {
    let out = {
        let mut session = conn.session().await?;
        session.copy_to(stmt).await.map_err(|e| from_sql(&e))?
    };
    let columns = i16::try_from(out.columns).unwrap_or(i16::MAX);
    client.push(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
        0,
        columns,
        vec![0; columns as usize],
    )))?;
    let mut rows = 0u64;
    let header = out.header;
    for line in out.lines {
        rows += 1;
        client.push(PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(
            line,
        ))))?;
        client.maybe_flush().await?;
    }
    client.push(PgWireBackendMessage::CopyDone(CopyDone::new()))?;
    Ok(ExecResult::Command {
        tag: "COPY".into(),
        rows: Some(rows - u64::from(header)),
    })
}

/// The text of a NUL-terminated string (CopyFail's message).
fn cstr(body: &[u8]) -> String {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}
