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
use pgwire::api::{ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use sql::Session;

use crate::conn::Connection;
use crate::error::{code, fatal, sqlstate, startup_sqlstate};
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
        match self.shared.opts.auth {
            Auth::Trust => {}
        }
        let (pid, secret) = self.open_session(client)?;
        client.set_pid_and_secret_key(pid, SecretKey::I32(secret));
        finish_authentication(client, &Parameters).await
    }
}

impl Startup {
    /// Opens the connection's session for the startup packet's user and database (the database
    /// defaults to the user name, as in PostgreSQL). Failure is FATAL. Returns the session's
    /// process id and cancel key.
    fn open_session<C: ClientInfo>(&self, client: &C) -> PgWireResult<(i32, i32)> {
        let meta = client.metadata();
        let Some(user) = meta.get(METADATA_USER) else {
            return Err(fatal(
                code::INVALID_AUTHORIZATION_SPECIFICATION,
                "no PostgreSQL user name specified in startup packet",
            ));
        };
        let database = meta.get(METADATA_DATABASE).unwrap_or(user);
        let mut session = Session::new(self.shared.engine.clone(), user, database)
            .map_err(|e| fatal(startup_sqlstate(&e), e.to_string()))?;
        for (name, value) in startup_settings(meta) {
            session
                .set_parameter(&name, &value)
                .map_err(|e| fatal(sqlstate(&e), e.to_string()))?;
        }
        tracing::debug!(%user, %database, "session opened");
        let key = session.backend_key();
        self.conn.set_session(session);
        Ok(key)
    }
}

/// The session settings a startup packet carries: its parameters other than the connection's
/// own (user, database, replication, options) and client_encoding, then the `-c name=value` and `--name=value`
/// switches of its `options` parameter, as PostgreSQL applies them.
fn startup_settings(meta: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = meta
        .iter()
        .filter(|(k, _)| {
            // Text travels as UTF-8 only: the client's encoding is not a setting here.
            !matches!(
                k.as_str(),
                "user" | "database" | "replication" | "options" | "client_encoding"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.sort();
    let options = meta.get("options").map(String::as_str).unwrap_or("");
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next(),
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
            out.push((name.replace('-', "_"), value.to_string()));
        }
    }
    out
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
    fn startup_options_become_settings() {
        let meta: HashMap<String, String> = [
            ("user", "alice"),
            ("database", "tinkerdb"),
            ("application_name", "app"),
            (
                "options",
                "-c statement_timeout=100ms --lock-timeout=2s -cDateStyle=ISO",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let settings = startup_settings(&meta);
        let want: Vec<(String, String)> = [
            ("application_name", "app"),
            ("statement_timeout", "100ms"),
            ("lock_timeout", "2s"),
            ("DateStyle", "ISO"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(settings, want);
    }

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
