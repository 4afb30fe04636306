//! Connection start-up: protocol negotiation, authentication, the session, and the parameters
//! reported to the client.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER, PidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use sql::Session;

use crate::conn::Connection;
use crate::error::{code, fatal, startup_sqlstate};
use crate::server::{Auth, Shared};

/// The start-up phase of one connection. With [`Auth::Trust`] any user is accepted without a
/// password; the session is opened as soon as the Startup message arrives.
pub(crate) struct Startup {
    pub(crate) conn: Arc<Connection>,
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Password mechanisms (SCRAM-SHA-256) will answer the Startup message with an
        // authentication request and continue on the client's next messages here; trust
        // finishes at once.
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Err(fatal(
                code::PROTOCOL_VIOLATION,
                "unexpected message during start-up",
            ));
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let (pid, secret_key) = self.shared.pids.generate(&*client);
        client.set_pid_and_secret_key(pid, secret_key);
        match self.shared.opts.auth {
            Auth::Trust => {}
        }
        self.open_session(client)?;
        finish_authentication(client, &Parameters).await
    }
}

impl Startup {
    /// Opens the connection's session for the startup packet's user and database (the database
    /// defaults to the user name, as in PostgreSQL). Failure is FATAL.
    fn open_session<C: ClientInfo>(&self, client: &C) -> PgWireResult<()> {
        let meta = client.metadata();
        let Some(user) = meta.get(METADATA_USER) else {
            return Err(fatal(
                code::INVALID_AUTHORIZATION_SPECIFICATION,
                "no PostgreSQL user name specified in startup packet",
            ));
        };
        let database = meta.get(METADATA_DATABASE).unwrap_or(user);
        let session = Session::new(self.shared.engine.clone(), user, database)
            .map_err(|e| fatal(startup_sqlstate(&e), e.to_string()))?;
        tracing::debug!(%user, %database, "session opened");
        self.conn.set_session(session);
        Ok(())
    }
}

/// The server version reported to clients: a PostgreSQL 15 version that drivers parse, then ours.
pub fn server_version() -> String {
    format!("15.0 (TinkerDB {})", env!("CARGO_PKG_VERSION"))
}

/// The ParameterStatus values sent after authentication: the ones PostgreSQL 15 reports, with
/// the settings TinkerDB actually uses (UTF8 only, ISO dates, UTC).
struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let meta = client.metadata();
        let mut params: HashMap<String, String> = [
            ("server_version", server_version().as_str()),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
            ("is_superuser", "on"),
            ("application_name", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(name) = meta.get(METADATA_APPLICATION_NAME) {
            params.insert("application_name".into(), name.clone());
        }
        if let Some(user) = meta.get(METADATA_USER) {
            params.insert("session_authorization".into(), user.clone());
        }
        Some(params)
    }
}

#[cfg(test)]
mod tests {
    use pgwire::api::DefaultClient;

    use super::*;

    #[test]
    fn parameters_report_a_postgres_15_server() {
        let mut client = DefaultClient::<()>::new("127.0.0.1:1".parse().unwrap(), false);
        client.metadata_mut().insert("user".into(), "alice".into());
        client
            .metadata_mut()
            .insert("application_name".into(), "psql".into());
        let params = Parameters.server_parameters(&client).unwrap();
        let version = &params["server_version"];
        assert!(version.starts_with("15.0 (TinkerDB "), "{version}");
        assert_eq!(
            version,
            &format!("15.0 (TinkerDB {})", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(params["server_encoding"], "UTF8");
        assert_eq!(params["client_encoding"], "UTF8");
        assert_eq!(params["DateStyle"], "ISO, MDY");
        assert_eq!(params["integer_datetimes"], "on");
        assert_eq!(params["standard_conforming_strings"], "on");
        assert_eq!(params["TimeZone"], "UTC");
        assert_eq!(params["session_authorization"], "alice");
        assert_eq!(params["application_name"], "psql");
    }
}
