//! sqllogictest for TinkerDB: one engine, any PostgreSQL endpoint.
//!
//! The project's `.slt` files (under `tests/slt/`) are run two ways through the same engine,
//! [`Postgres`], which speaks to a server over tokio-postgres's simple query protocol:
//!
//! - in-process, by `cargo test -p slt`: every file gets a fresh node in a temporary directory
//!   with an ephemeral SQL port (`tests/slt.rs`);
//! - against any endpoint, by the `slt` binary: `cargo run -p slt -- --url
//!   postgresql://user@host:port/db FILES_OR_DIRS...` — a started TinkerDB node, or real
//!   PostgreSQL 15, which is how every expected output is checked (use a database created with
//!   `LC_COLLATE=C`, e.g. a cluster initialised with `initdb --locale=C`).
//!
//! Output conventions: SQL NULL is rendered `NULL` and the empty string `(empty)`; column types
//! are not checked (every column reports [`DefaultColumnType::Any`]); errors carry their SQLSTATE,
//! so `statement error (42P01)` and `query error (22012)` records work.
//!
//! The engine names itself `tinkerdb` when the server's `server_version` mentions TinkerDB and
//! `postgresql` otherwise, so a record can be limited to one with `onlyif tinkerdb` or
//! `skipif postgresql` (for output only TinkerDB has, such as EXPLAIN plans).
//!
//! Writing files: one behaviour per file, `rowsort` wherever the order is not specified, and
//! drop every table at the end (the binary runs all files against one database). Output that
//! legitimately varies between runs against one node (catalog ids in EXPLAIN) is matched with
//! sqllogictest's `<slt:ignore>` marker.
//!
//! [`conformance`] runs the SQLite corpus in `../shared/conformance/` with the harness settings
//! its README lists (`slt --conformance`), counting passed records per file instead of stopping
//! at the first failure.
//!
//! # Caveats
//!
//! - Only the simple query protocol is exercised by the `.slt` files; the extended protocol is
//!   covered by pgserver's and the node's own tests.
//! - Every file must clean up after itself when run against a shared PostgreSQL database (the
//!   in-process runs start from an empty node anyway).

pub mod conformance;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// Engine name of a TinkerDB server (for `onlyif`/`skipif`).
pub const TINKERDB: &str = "tinkerdb";
/// Engine name of any other PostgreSQL server (for `onlyif`/`skipif`).
pub const POSTGRESQL: &str = "postgresql";

/// A sqllogictest database: one connection to a PostgreSQL endpoint.
pub struct Postgres {
    /// None once shut down.
    client: Option<tokio_postgres::Client>,
    connection: Option<tokio::task::JoinHandle<()>>,
    engine: &'static str,
}

/// How long shutdown waits for the server to acknowledge the end of the connection.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Postgres {
    /// Connects to `url` (e.g. `postgresql://root@127.0.0.1:5433/tinkerdb`), without TLS.
    pub async fn connect(url: &str) -> Result<Postgres, Error> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let version = connection.parameter("server_version").unwrap_or_default();
        let engine = if version.contains("TinkerDB") {
            TINKERDB
        } else {
            POSTGRESQL
        };
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("slt: connection error: {e}");
            }
        });
        Ok(Postgres {
            client: Some(client),
            connection: Some(connection),
            engine,
        })
    }
}

#[async_trait]
impl AsyncDB for Postgres {
    type Error = Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Error> {
        let client = self.client.as_ref().ok_or(Error::Closed)?;
        Ok(output(client.simple_query(sql).await?))
    }

    async fn shutdown(&mut self) {
        // Dropping the client makes the connection send Terminate and end; wait for that so the
        // server is not stopped under a live connection.
        self.client = None;
        if let Some(mut connection) = self.connection.take()
            && tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut connection)
                .await
                .is_err()
        {
            connection.abort();
        }
    }

    fn engine_name(&self) -> &str {
        self.engine
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }

    fn error_sql_state(err: &Error) -> Option<String> {
        match err {
            Error::Client(e) => e.code().map(|c| c.code().to_string()),
            Error::Closed => None,
        }
    }
}

/// The sqllogictest output of one simple query: the rows of its last row-returning statement
/// if it had one, else the row count of its last command.
fn output(messages: Vec<SimpleQueryMessage>) -> DBOutput<DefaultColumnType> {
    let mut columns = None;
    let mut rows = Vec::new();
    let mut count = 0;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(desc) => {
                columns = Some(desc.len());
                rows.clear();
            }
            SimpleQueryMessage::Row(row) => {
                rows.push((0..row.len()).map(|i| render(row.get(i))).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => count = n,
            _ => {}
        }
    }
    match columns {
        Some(n) => DBOutput::Rows {
            types: vec![DefaultColumnType::Any; n],
            rows,
        },
        None => DBOutput::StatementComplete(count),
    }
}

/// A text value as sqllogictest files spell it.
fn render(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_string(),
        Some("") => "(empty)".to_string(),
        Some(s) => s.to_string(),
    }
}

/// A client error. Displays the server's message for database errors, so `statement error
/// <regex>` records match PostgreSQL's message text.
#[derive(Debug)]
pub enum Error {
    /// An error from the server or the connection.
    Client(tokio_postgres::Error),
    /// The engine was used after shutdown.
    Closed,
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error::Client(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Client(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
                None => write!(f, "{e}"),
            },
            Error::Closed => f.write_str("connection already shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Client(e) => Some(e),
            Error::Closed => None,
        }
    }
}

/// Runs one `.slt` file against `url`, on a connection of its own.
pub async fn run_file(url: &str, path: &Path) -> Result<(), sqllogictest::TestError> {
    let url = url.to_string();
    let mut runner = Runner::new(move || {
        let url = url.clone();
        async move { Postgres::connect(&url).await }
    });
    let result = runner.run_file_async(path).await;
    runner.shutdown_async().await;
    result
}

/// The `.slt` files under `dir`, recursively, sorted by path.
pub fn slt_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "slt") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_slt_spells_them() {
        assert_eq!(render(None), "NULL");
        assert_eq!(render(Some("")), "(empty)");
        assert_eq!(render(Some("a b")), "a b");
    }

    #[test]
    fn commands_report_their_row_count() {
        let out = output(vec![SimpleQueryMessage::CommandComplete(3)]);
        assert!(matches!(out, DBOutput::StatementComplete(3)));
    }

    #[test]
    fn slt_files_are_found_recursively() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
        let files = slt_files(&dir).unwrap();
        assert!(!files.is_empty());
        assert!(files.iter().all(|f| f.extension().unwrap() == "slt"));
    }
}
