//! The listener: accepts connections, runs each on its own task, and stops gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use sql::Engine;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, Id, JoinSet};
use tracing::Instrument;

use crate::conn::Connection;

/// The longest shutdown grace period [`Options::validate`] accepts.
pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(600);

/// How often shutdown re-checks connections for idleness during the grace period.
const SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// How clients authenticate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// Any user, no password (insecure mode). Password authentication (SCRAM-SHA-256 for users
    /// that have a password) will be another variant, handled in the start-up handler.
    #[default]
    Trust,
}

/// Tunables of the PostgreSQL server.
#[derive(Clone, Debug)]
pub struct Options {
    /// How clients authenticate.
    pub auth: Auth,
    /// On shutdown, how long a connection that is running a statement may take to finish it
    /// before it is cut. Idle connections are closed at once.
    pub shutdown_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth: Auth::Trust,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// Checks that the options make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.shutdown_grace > MAX_SHUTDOWN_GRACE {
            return Err(format!(
                "shutdown grace {:?} exceeds the maximum of {MAX_SHUTDOWN_GRACE:?}",
                self.shutdown_grace
            ));
        }
        Ok(())
    }
}

/// What every connection of a server shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) opts: Options,
}

/// A PostgreSQL wire protocol server over one SQL engine.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// Creates a server; fails if the options are invalid.
    pub fn new(engine: Arc<Engine>, opts: Options) -> io::Result<Server> {
        opts.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Server {
            shared: Arc::new(Shared { engine, opts }),
        })
    }

    /// Accepts connections on `listener` until `shutdown` completes, then stops accepting,
    /// closes idle connections, gives busy ones `shutdown_grace` to finish their statement,
    /// and cuts the rest. Returns once every connection task has ended; errors only if
    /// accepting fails in a way that is not specific to one client.
    pub async fn serve<F: Future>(self, listener: TcpListener, shutdown: F) -> io::Result<()> {
        let mut conns = Conns::default();
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                Some(done) = conns.tasks.join_next_with_id() => conns.reap(done),
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => conns.spawn(socket, peer, &self.shared),
                    Err(e) if is_per_connection(&e) => tracing::debug!(error = %e, "accept failed"),
                    Err(e) => break Err(e),
                },
            }
        };
        drop(listener);
        conns.close(self.shared.opts.shutdown_grace).await;
        result
    }
}

/// Serves PostgreSQL clients on `listener` with sessions of `engine` until `shutdown`
/// completes. See [`Server::serve`].
pub async fn serve<F: Future>(
    listener: TcpListener,
    engine: Arc<Engine>,
    opts: Options,
    shutdown: F,
) -> io::Result<()> {
    Server::new(engine, opts)?.serve(listener, shutdown).await
}

/// Accept errors that concern one client only; the listener keeps going after them.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The live connection tasks.
#[derive(Default)]
struct Conns {
    tasks: JoinSet<()>,
    live: HashMap<Id, (Arc<Connection>, AbortHandle)>,
}

impl Conns {
    fn spawn(
        &mut self,
        socket: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        shared: &Arc<Shared>,
    ) {
        let conn = Arc::new(Connection::default());
        let span = tracing::debug_span!("connection", %peer);
        let task = crate::conn::serve(socket, peer, conn.clone(), shared.clone());
        let handle = self.tasks.spawn(
            async move {
                tracing::debug!("connected");
                if let Err(e) = task.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                tracing::debug!("disconnected");
            }
            .instrument(span),
        );
        self.live.insert(handle.id(), (conn, handle));
    }

    fn reap(&mut self, done: Result<(Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(error = %e, "connection task panicked");
                }
                e.id()
            }
        };
        self.live.remove(&id);
    }

    /// Closes idle connections at once and busy ones when they become idle or `grace` ends.
    async fn close(&mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            for (conn, handle) in self.live.values() {
                if !conn.is_busy() {
                    handle.abort();
                }
            }
            if self.live.is_empty() {
                return;
            }
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.reap(done),
                _ = tokio::time::sleep(SHUTDOWN_POLL) => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !self.live.is_empty() {
            tracing::warn!(
                connections = self.live.len(),
                "cutting busy connections at shutdown"
            );
        }
        self.tasks.shutdown().await;
        self.live.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_validate() {
        assert!(Options::default().validate().is_ok());
        let opts = Options {
            shutdown_grace: Duration::from_secs(3600),
            ..Options::default()
        };
        assert!(opts.validate().is_err());
    }
}
