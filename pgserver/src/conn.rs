//! One client connection: its `sql::Session` and the loop that reads its messages and answers
//! them (start-up, then the simple and extended query protocols).

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pgwire::api::PgWireConnectionState;
use pgwire::api::auth::StartupHandler;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::{GssEncResponse, ReadyForQuery, SslResponse, TransactionStatus};
use pgwire::messages::{DecodeContext, PgWireBackendMessage, PgWireFrontendMessage};
use sql::{Session, TxnStatus};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};

use crate::client::{Client, Incoming};
use crate::error::{code, from_sql, user_error};
use crate::extended::Extended;
use crate::frame::{self, Bind, Execute, Frame, FrameError, Parse, Target};
use crate::query::simple_query;
use crate::server::Shared;
use crate::startup::Startup;

/// The state of one client connection.
#[derive(Default)]
pub(crate) struct Connection {
    /// Set once, when start-up succeeds; a connection never runs a statement before that.
    session: OnceLock<Mutex<Session>>,
    /// True while a statement holds the session, so shutdown can tell idle connections (closed
    /// at once) from busy ones (given a grace period).
    busy: AtomicBool,
}

impl Connection {
    pub(crate) fn set_session(&self, session: Session) {
        if self.session.set(Mutex::new(session)).is_err() {
            // A second Startup message on the same connection is refused by pgwire's state
            // machine before it reaches us.
            tracing::warn!("session already open; keeping the first");
        }
    }

    /// Locks the session for one message's work.
    pub(crate) async fn session(&self) -> PgWireResult<SessionGuard<'_>> {
        let Some(session) = self.session.get() else {
            return Err(user_error(
                code::PROTOCOL_VIOLATION,
                "no session: start-up did not finish",
            ));
        };
        let guard = session.lock().await;
        self.busy.store(true, Ordering::Release);
        Ok(SessionGuard {
            guard,
            busy: &self.busy,
        })
    }

    /// The session's transaction status (Idle before start-up).
    pub(crate) async fn txn_status(&self) -> TxnStatus {
        match self.session.get() {
            Some(session) => session.lock().await.txn_status(),
            None => TxnStatus::Idle,
        }
    }

    /// Whether a statement is running on this connection right now.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }
}

/// The ReadyForQuery byte of a session state.
pub(crate) fn wire_status(status: TxnStatus) -> TransactionStatus {
    match status {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

/// A locked session; marks the connection busy while it lives.
pub(crate) struct SessionGuard<'a> {
    guard: MutexGuard<'a, Session>,
    busy: &'a AtomicBool,
}

impl Deref for SessionGuard<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.guard
    }
}

impl DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.guard
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.busy.store(false, Ordering::Release);
    }
}

/// How long a client has to finish start-up before the connection is dropped.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why handling a message stopped.
enum Failure {
    /// The message cannot be read: FATAL 08P01, then the connection closes.
    Broken(FrameError),
    /// An error for the client (FATAL ones close the connection).
    Error(PgWireError),
}

impl From<FrameError> for Failure {
    fn from(e: FrameError) -> Failure {
        Failure::Broken(e)
    }
}

impl From<PgWireError> for Failure {
    fn from(e: PgWireError) -> Failure {
        Failure::Error(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Error(PgWireError::IoError(e))
    }
}

/// Serves one client connection from start-up to its end. Nothing a client sends ends more
/// than its own connection: unreadable bytes get a FATAL 08P01 and the connection closes.
pub(crate) async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    conn: Arc<Connection>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut client = Client::new(socket, peer);
    let startup = Startup {
        conn: conn.clone(),
        shared,
    };
    match tokio::time::timeout(STARTUP_TIMEOUT, start(&mut client, &startup)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) | Err(_) => return Ok(()),
        Ok(Err(e)) => return Err(e),
    }
    let mut ext = Extended::new(conn.clone());
    // After an error in an extended-protocol message, everything up to Sync is skipped.
    let mut skipping = false;
    loop {
        let frame = match client.next(false).await {
            Incoming::Message(frame) => frame,
            Incoming::Closed => return Ok(()),
            Incoming::Failed(e) => return Err(e),
            Incoming::Broken(e) => return broken(&mut client, e).await,
        };
        let kind = frame.kind;
        if kind == b'X' {
            return Ok(());
        }
        if skipping && kind != b'S' {
            continue;
        }
        match handle(&mut client, &conn, &mut ext, frame).await {
            Ok(()) => skipping = false,
            Err(Failure::Broken(e)) => return broken(&mut client, e).await,
            Err(Failure::Error(e)) => {
                let fatal = e.is_fatal();
                let simple = matches!(kind, b'Q' | b'F');
                client.push(PgWireBackendMessage::ErrorResponse(
                    ErrorInfo::from(e).into(),
                ))?;
                if simple {
                    let status = wire_status(conn.txn_status().await);
                    client.push(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                        status,
                    )))?;
                } else {
                    skipping = true;
                }
                client.flush_out().await?;
                if fatal {
                    return Ok(());
                }
            }
        }
    }
}

/// Runs one message.
async fn handle(
    client: &mut Client,
    conn: &Connection,
    ext: &mut Extended,
    frame: Frame,
) -> Result<(), Failure> {
    let body = frame.body;
    match frame.kind {
        b'Q' => {
            let sql = frame::query_text(&body)?;
            ext.drop_unnamed_portal();
            simple_query(conn, client, sql).await?;
            if conn.txn_status().await == TxnStatus::Idle {
                ext.drop_portals();
            }
            client.flush_out().await?;
        }
        b'P' => ext.parse(client, Parse::decode(&body)?).await?,
        b'B' => ext.bind(client, Bind::decode(body.freeze())?).await?,
        b'D' => ext.describe(client, Target::decode(b'D', &body)?).await?,
        b'E' => ext.execute(client, Execute::decode(&body)?).await?,
        b'C' => ext.close(client, Target::decode(b'C', &body)?).await?,
        b'S' => {
            // The implicit transaction of a cursor portal ends here.
            let synced = conn.session().await?.sync().await;
            if let Err(e) = synced {
                client.push(PgWireBackendMessage::ErrorResponse(
                    ErrorInfo::from(from_sql(&e)).into(),
                ))?;
            }
            let status = conn.txn_status().await;
            ext.sync(status);
            client.push(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                wire_status(status),
            )))?;
            client.flush_out().await?;
        }
        b'H' => client.flush_out().await?,
        // COPY messages outside COPY are ignored, as in PostgreSQL.
        b'd' | b'c' | b'f' => {}
        b'F' => {
            return Err(user_error(
                code::FEATURE_NOT_SUPPORTED,
                "the function call protocol is not supported",
            )
            .into());
        }
        other => {
            return Err(FrameError(format!(
                "unexpected message type \"{}\" after start-up",
                other as char
            ))
            .into());
        }
    }
    Ok(())
}

/// Start-up: SSL and GSSAPI requests are refused ('N'), then the Startup packet opens the
/// session. Returns whether the connection is ready for queries.
async fn start(client: &mut Client, startup: &Startup) -> std::io::Result<bool> {
    let mut ctx = DecodeContext::default();
    ctx.awaiting_frontend_ssl = false;
    let mut frame = loop {
        let mut frame = match client.next(true).await {
            Incoming::Message(frame) => frame,
            Incoming::Closed => return Ok(false),
            Incoming::Failed(e) => return Err(e),
            Incoming::Broken(e) => return broken(client, e).await.map(|()| false),
        };
        let code = u32::from_be_bytes([frame.body[4], frame.body[5], frame.body[6], frame.body[7]]);
        match code {
            frame::SSL_REQUEST_CODE => {
                client.push(PgWireBackendMessage::SslResponse(SslResponse::Refuse))?
            }
            frame::GSSENC_REQUEST_CODE => {
                client.push(PgWireBackendMessage::GssEncResponse(GssEncResponse::Refuse))?
            }
            // A CancelRequest is answered by closing its connection, whether it matched or not.
            frame::CANCEL_REQUEST_CODE => {
                if let Some((pid, secret)) = frame::cancel_request(&frame.body) {
                    let matched = startup.shared.engine.cancel_request(pid, secret);
                    tracing::debug!(pid, matched, "cancel request");
                }
                return Ok(false);
            }
            _ => break std::mem::take(&mut frame.body),
        }
        client.flush_out().await?;
    };
    let message = match PgWireFrontendMessage::decode(&mut frame, &ctx) {
        Ok(Some(message @ PgWireFrontendMessage::Startup(_))) => message,
        _ => {
            let e = FrameError("invalid startup packet layout".into());
            return broken(client, e).await.map(|()| false);
        }
    };
    if let Err(e) = startup.on_startup(client, message).await {
        // Start-up failures are FATAL.
        let mut info = ErrorInfo::from(e);
        info.severity = "FATAL".into();
        client.push(PgWireBackendMessage::ErrorResponse(info.into()))?;
        client.flush_out().await?;
        return Ok(false);
    }
    client.flush_out().await?;
    Ok(matches!(
        client.info().state,
        PgWireConnectionState::ReadyForQuery
    ))
}

/// Reports an unreadable message (FATAL 08P01) and ends the connection.
async fn broken(client: &mut Client, e: FrameError) -> std::io::Result<()> {
    tracing::debug!(error = %e.0, "protocol violation; closing the connection");
    let info = ErrorInfo::new("FATAL".into(), code::PROTOCOL_VIOLATION.into(), e.0);
    client.push(PgWireBackendMessage::ErrorResponse(info.into()))?;
    // The client may be gone already; its connection ends either way.
    let _ = client.flush_out().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_states_map_to_ready_for_query_bytes() {
        assert_eq!(wire_status(TxnStatus::Idle) as u8, b'I');
        assert_eq!(wire_status(TxnStatus::InBlock) as u8, b'T');
        assert_eq!(wire_status(TxnStatus::Failed) as u8, b'E');
    }
}
