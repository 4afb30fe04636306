//! The PostgreSQL wire protocol server of TinkerDB.
//!
//! Clients (psql, drivers, ORMs, pgbench) connect here. The server speaks protocol 3 through
//! the `pgwire` crate and turns each connection into one `sql::Session`: the start-up message
//! opens the session for its user and database (the database defaults to the user name, as in
//! PostgreSQL), Query messages run the simple protocol, and Parse/Bind/Describe/Execute/Sync
//! run the extended protocol. Everything SQL — parsing, planning, transactions, the failed-block
//! rules — lives in `sql`; this crate only moves messages, values and errors across the wire.
//!
//! Entry point: [`serve`] (or [`Server::new`] + [`Server::serve`]) on a bound
//! `tokio::net::TcpListener`, with a shutdown future.
//!
//! # Invariants
//!
//! - One session per connection, shared by the simple and extended handlers of that connection
//!   and used by one message at a time.
//! - ReadyForQuery always carries the session's transaction status (`I`, `T`, `E`), read after
//!   the message's work is done; pgwire's own inference is never trusted.
//! - Replies to Parse, Bind, Describe and Execute wait in the connection's buffer until Sync,
//!   Flush or an error (or until the buffer fills), as in PostgreSQL: a pipelined
//!   Bind/Execute/Sync is answered with one write.
//! - A simple Query string runs its statements in order with one response each and stops at the
//!   first error, like PostgreSQL; a syntax error anywhere in the string runs nothing.
//! - Every error a client sees has a SQLSTATE: SQL errors are mapped in one place
//!   ([`sqlstate`]); errors raised here use PostgreSQL's codes for the same conditions. A
//!   statement-level error never closes the connection; only start-up failures are FATAL.
//! - Values travel in the format the client asked for, per column: text as PostgreSQL's output
//!   functions print it, binary as its `send` functions encode it.
//! - pgwire types stay inside this crate; the public API is in terms of `sql` and tokio.
//!
//! # Caveats
//!
//! - Authentication is trust only (insecure mode): any user, no password. SCRAM-SHA-256 and TLS
//!   are not implemented yet ([`Auth`] is where they go).
//! - Query cancellation (CancelRequest) is accepted by pgwire but does nothing.
//! - Execute's `max_rows` is honoured by pgwire's portal suspension, but the statement itself
//!   runs to completion and its rows are buffered in memory first; results are not streamed.
//! - Parse describes the statement at once (parameter and result types are fixed at Parse);
//!   a prepared statement is not re-described if the schema changes later. Its executions are
//!   planned again and return rows of the new schema under the old description (PostgreSQL
//!   fails them with 0A000 "cached plan must not change result type").
//! - Only BOOL, INT2, INT4, INT8, FLOAT4, FLOAT8, TEXT, VARCHAR, BPCHAR and NAME parameters are
//!   accepted; INT2 widens to int4 and FLOAT4 to float8. Results use bool, int4, int8, float8
//!   and text only.
//! - Results of SELECT, SHOW and EXPLAIN are all tagged `SELECT n`.
//! - COPY, NOTICE messages, LISTEN/NOTIFY and the function-call protocol are not supported.
//! - Shutdown closes idle connections without a FATAL 57P01 message.

mod buffered;
mod conn;
mod error;
mod query;
mod server;
mod startup;
mod types;

pub use error::{sqlstate, startup_sqlstate};
pub use server::{Auth, MAX_SHUTDOWN_GRACE, Options, Server, serve};
pub use startup::server_version;
pub use types::encode_data_rows;
