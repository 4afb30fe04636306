//! Per-connection state: the connection's one `sql::Session`, shared by the start-up, simple and
//! extended protocol handlers that pgwire creates for the connection.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::error::PgWireResult;
use pgwire::messages::response::TransactionStatus;
use sql::{Session, TxnStatus};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{code, user_error};
use crate::query::{Parser, Queries};
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

    /// The transaction status for ReadyForQuery, taken from the session (Idle before start-up).
    pub(crate) async fn txn_status(&self) -> TransactionStatus {
        match self.session.get() {
            Some(session) => wire_status(session.lock().await.txn_status()),
            None => TransactionStatus::Idle,
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

/// The handlers pgwire uses for one connection. pgwire asks for each handler once per
/// connection, so the handlers built here share that connection's [`Connection`].
pub(crate) struct Handlers {
    startup: Arc<Startup>,
    queries: Arc<Queries>,
}

impl Handlers {
    pub(crate) fn new(conn: Arc<Connection>, shared: Arc<Shared>) -> Handlers {
        let parser = Arc::new(Parser { conn: conn.clone() });
        Handlers {
            startup: Arc::new(Startup {
                conn: conn.clone(),
                shared,
            }),
            queries: Arc::new(Queries { conn, parser }),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
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
