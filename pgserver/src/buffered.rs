//! Replies buffered until Sync or Flush, as PostgreSQL sends them.
//!
//! pgwire's handlers answer Parse, Bind, Describe and Execute with `send` (write, then flush),
//! so a pipelined Bind/Execute/Sync cost one write system call per reply message. PostgreSQL
//! buffers its replies until Sync or Flush asks for them (or its output buffer fills up). Those
//! handlers run here over [`Buffered`], which passes everything through to the connection
//! except flushing, which it skips. The connection still writes out on its own whenever its
//! buffer passes its backpressure boundary (in `poll_ready`), so a large result is not held
//! back; Sync and Flush flush the connection itself, and so does pgwire's error path.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, SessionExtensions};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::ProtocolVersion;
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::SecretKey;
use pgwire::tokio::tokio_rustls::rustls::pki_types::CertificateDer;

/// A client connection whose flushes are left to Sync and Flush.
pub(crate) struct Buffered<'a, C>(pub(crate) &'a mut C);

impl<C> Sink<PgWireBackendMessage> for Buffered<'_, C>
where
    C: Sink<PgWireBackendMessage> + Unpin,
{
    type Error = C::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.0).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), C::Error> {
        Pin::new(&mut *self.0).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.0).poll_close(cx)
    }
}

impl<C: ClientPortalStore> ClientPortalStore for Buffered<'_, C> {
    type PortalStore = C::PortalStore;

    fn portal_store(&self) -> &C::PortalStore {
        self.0.portal_store()
    }
}

impl<C: ClientInfo> ClientInfo for Buffered<'_, C> {
    fn socket_addr(&self) -> std::net::SocketAddr {
        self.0.socket_addr()
    }

    fn is_secure(&self) -> bool {
        self.0.is_secure()
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.0.protocol_version()
    }

    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.0.set_protocol_version(version)
    }

    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.0.pid_and_secret_key()
    }

    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.0.set_pid_and_secret_key(pid, secret_key)
    }

    fn state(&self) -> PgWireConnectionState {
        self.0.state()
    }

    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.0.set_state(new_state)
    }

    fn transaction_status(&self) -> TransactionStatus {
        self.0.transaction_status()
    }

    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.0.set_transaction_status(new_status)
    }

    fn metadata(&self) -> &HashMap<String, String> {
        self.0.metadata()
    }

    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.0.metadata_mut()
    }

    fn session_extensions(&self) -> &SessionExtensions {
        self.0.session_extensions()
    }

    fn sni_server_name(&self) -> Option<&str> {
        self.0.sni_server_name()
    }

    fn client_certificates<'a>(&self) -> Option<&[CertificateDer<'a>]> {
        self.0.client_certificates()
    }
}

#[cfg(test)]
mod tests {
    use futures::SinkExt;
    use pgwire::messages::extendedquery::BindComplete;

    use super::*;

    /// A sink that counts the flushes it is asked for.
    struct Counting {
        sent: usize,
        flushes: usize,
    }

    impl Sink<PgWireBackendMessage> for Counting {
        type Error = std::convert::Infallible;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(
            mut self: Pin<&mut Self>,
            _: PgWireBackendMessage,
        ) -> Result<(), Self::Error> {
            self.sent += 1;
            Ok(())
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn sends_pass_through_without_flushing() {
        let mut inner = Counting {
            sent: 0,
            flushes: 0,
        };
        let mut buffered = Buffered(&mut inner);
        for _ in 0..3 {
            let msg = PgWireBackendMessage::BindComplete(BindComplete::new());
            buffered.send(msg).await.unwrap();
        }
        buffered.flush().await.unwrap();
        assert_eq!((inner.sent, inner.flushes), (3, 0));
        inner.flush().await.unwrap();
        assert_eq!(inner.flushes, 1);
    }
}
