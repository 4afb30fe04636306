//! One client's socket with its read and write buffers.
//!
//! Reads cut whole messages out of the read buffer ([`crate::frame`]). Writes encode pgwire's
//! backend messages into the write buffer, which goes out only when the connection asks for a
//! flush (at Sync, Flush, an error, the end of a simple Query) or when it passes
//! [`WRITE_HIGH_WATER`], so a pipelined Bind/Execute/Sync is answered with one write system
//! call, as PostgreSQL does. [`Client`] is also the `ClientInfo` + `Sink` that pgwire's start-up
//! helpers and response helpers are given.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures::Sink;
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState, SessionExtensions};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, ProtocolVersion};
use pgwire::tokio::tokio_rustls::rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use crate::frame::{self, Frame, FrameError};

/// Buffered replies are written out once they pass this many bytes, even before a flush.
pub(crate) const WRITE_HIGH_WATER: usize = 64 * 1024;
/// How much room a read asks for at least.
const READ_CHUNK: usize = 8 * 1024;

/// What reading the next message gave.
pub(crate) enum Incoming {
    Message(Frame),
    /// The client closed the connection between messages.
    Closed,
    /// The bytes cannot be read as messages (garbage, a bad length, a truncated message).
    Broken(FrameError),
    /// The socket failed.
    Failed(io::Error),
}

/// A client connection: the socket, its buffers and pgwire's per-client state.
pub(crate) struct Client {
    socket: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    info: DefaultClient<()>,
}

impl Client {
    pub(crate) fn new(socket: TcpStream, peer: SocketAddr) -> Client {
        let mut info = DefaultClient::new(peer, false);
        info.state = PgWireConnectionState::AwaitingStartup;
        Client {
            socket,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            info,
        }
    }

    /// Reads the next whole message. `startup`: packets have no type byte yet.
    pub(crate) async fn next(&mut self, startup: bool) -> Incoming {
        loop {
            match frame::next_frame(&mut self.rbuf, startup) {
                Ok(Some(frame)) => return Incoming::Message(frame),
                Ok(None) => {}
                Err(e) => return Incoming::Broken(e),
            }
            self.rbuf.reserve(READ_CHUNK);
            match self.socket.read_buf(&mut self.rbuf).await {
                Ok(0) if self.rbuf.is_empty() => return Incoming::Closed,
                Ok(0) => {
                    return Incoming::Broken(FrameError(
                        "unexpected end of a message: the connection closed inside it".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Incoming::Failed(e),
            }
        }
    }

    /// Appends one message to the write buffer (written out at the next flush).
    pub(crate) fn push(&mut self, message: PgWireBackendMessage) -> io::Result<()> {
        message
            .encode(&mut self.wbuf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    /// Appends messages encoded before.
    pub(crate) fn push_encoded(&mut self, encoded: &[u8]) {
        self.wbuf.extend_from_slice(encoded);
    }

    /// Writes out the buffered replies.
    pub(crate) async fn flush_out(&mut self) -> io::Result<()> {
        futures::future::poll_fn(|cx| self.poll_write_out(cx)).await
    }

    /// Writes out the buffered replies if they passed the high-water mark.
    pub(crate) async fn maybe_flush(&mut self) -> io::Result<()> {
        if self.wbuf.len() >= WRITE_HIGH_WATER {
            self.flush_out().await?;
        }
        Ok(())
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wbuf.is_empty() {
            let n = ready!(Pin::new(&mut self.socket).poll_write(cx, &self.wbuf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wbuf.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// The connection's ReadyForQuery status as pgwire tracks it.
    pub(crate) fn info(&self) -> &DefaultClient<()> {
        &self.info
    }
}

impl Sink<PgWireBackendMessage> for Client {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.wbuf.len() >= WRITE_HIGH_WATER {
            ready!(this.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: PgWireBackendMessage) -> io::Result<()> {
        self.get_mut().push(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_out(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.socket).poll_shutdown(cx)
    }
}

impl ClientInfo for Client {
    fn socket_addr(&self) -> SocketAddr {
        self.info.socket_addr()
    }

    fn is_secure(&self) -> bool {
        self.info.is_secure()
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.info.protocol_version()
    }

    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.info.set_protocol_version(version)
    }

    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.info.pid_and_secret_key()
    }

    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.info.set_pid_and_secret_key(pid, secret_key)
    }

    fn state(&self) -> PgWireConnectionState {
        self.info.state()
    }

    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.info.set_state(new_state)
    }

    fn transaction_status(&self) -> TransactionStatus {
        self.info.transaction_status()
    }

    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.info.set_transaction_status(new_status)
    }

    fn metadata(&self) -> &HashMap<String, String> {
        self.info.metadata()
    }

    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.info.metadata_mut()
    }

    fn session_extensions(&self) -> &SessionExtensions {
        self.info.session_extensions()
    }

    fn sni_server_name(&self) -> Option<&str> {
        self.info.sni_server_name()
    }

    fn client_certificates<'a>(&self) -> Option<&[CertificateDer<'a>]> {
        self.info.client_certificates()
    }
}
