//! The PostgreSQL wire protocol server of TinkerDB.
//!
//! Clients (psql, drivers, ORMs, pgbench) connect here. The server speaks protocol 3 and turns
//! each connection into one `sql::Session`: the start-up message opens the session for its user
//! and database (the database defaults to the user name, as in PostgreSQL), Query messages run
//! the simple protocol, and Parse/Bind/Describe/Execute/Close/Sync/Flush run the extended
//! protocol. Everything SQL — parsing, planning, transactions, the failed-block rules,
//! prepared statements — lives in `sql`; this crate only moves messages, values and errors
//! across the wire.
//!
//! The connection loop is this crate's own (`conn`): it cuts whole messages out of the socket
//! (`frame`), answers them from one buffer that is written out at Sync, Flush, an error or the
//! end of a Query (`client`), and runs the extended protocol's portals (`extended`). pgwire
//! provides the message types and their encodings, and the start-up and authentication
//! exchange.
//!
//! Entry point: [`serve`] (or [`Server::new`] + [`Server::serve`]) on a bound
//! `tokio::net::TcpListener`, with a shutdown future.
//!
//! # Invariants
//!
//! - One session per connection, used by one message at a time.
//! - ReadyForQuery always carries the session's transaction status (`I`, `T`, `E`), read after
//!   the message's work is done.
//! - Replies wait in the connection's buffer until Sync, Flush, an error or the end of a simple
//!   Query (or until the buffer passes 64 KiB), as in PostgreSQL: a pipelined
//!   Bind/Execute/Sync is answered with one write.
//! - A simple Query string runs its statements in order with one response each and stops at the
//!   first error, like PostgreSQL; a syntax error anywhere in the string runs nothing.
//! - After an error in an extended-protocol message, messages are skipped until Sync.
//! - Protocol-level prepared statements and SQL `PREPARE` share the session's namespace, so
//!   `DEALLOCATE ALL` and `DISCARD ALL` forget both. Portals belong to the transaction they were
//!   bound in: they end at Sync outside a block, at COMMIT/ROLLBACK, and with `DISCARD ALL`.
//! - Every error a client sees has a SQLSTATE: SQL errors are mapped in one place
//!   ([`sqlstate`]); errors raised here use PostgreSQL's codes for the same conditions. A
//!   statement-level error never closes the connection.
//! - Nothing a client sends can end more than its own connection, nor panic: bytes that do not
//!   form a message (an unknown type, a length out of PostgreSQL's limits, a body that does not
//!   hold what it declares, a connection closed inside a message) get a FATAL 08P01 and the
//!   connection closes. Start-up failures are FATAL too.
//! - Values travel in the format the client asked for, per column: text as PostgreSQL's output
//!   functions print it, binary as its `send` functions encode it.
//! - pgwire types stay inside this crate; the public API is in terms of `sql` and tokio.
//!
//! # Caveats
//!
//! - Authentication is trust only (insecure mode): any user, no password. SCRAM-SHA-256 and TLS
//!   are not implemented yet ([`Auth`] is where they go); SSL and GSSAPI requests are refused
//!   with 'N' and start-up continues in plaintext.
//! - Query cancellation: a CancelRequest with the session's (pid, key) from BackendKeyData,
//!   `pg_cancel_backend` and `statement_timeout` stop a statement where the executor checks
//!   (between batches of scanned or generated rows, and in `pg_sleep`); a statement waiting
//!   for a lock or a KV reply stops only after that wait (bounded by `lock_timeout`).
//! - Start-up parameters and `options=-c name=value` become session settings (the client's
//!   encoding aside: text is UTF-8 only); an invalid value is FATAL.
//! - Results are streamed from the executor only for a query's portal executed with a row
//!   limit (`max_rows`): it reads its rows as they are fetched, in an implicit transaction that
//!   lasts until Sync outside a block (statements executed after it before the Sync join it,
//!   as in PostgreSQL). Every other Execute, and a simple Query, runs its statement to
//!   completion with the rows buffered in memory (bounded by `--max-sql-memory`, 53200).
//! - Each other Execute outside a block runs in its own implicit transaction (PostgreSQL runs
//!   the Executes before a Sync in one).
//! - A prepared statement is described once, at Parse. An execution that has to plan it again
//!   after a schema change fails with 0A000 "cached plan must not change result type" when
//!   the result types changed, as in PostgreSQL (a change of names alone is not detected).
//! - Only BOOL, INT2, INT4, INT8, FLOAT4, FLOAT8, NUMERIC, TEXT, VARCHAR, BPCHAR, NAME, BYTEA,
//!   DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, UUID, JSONB and JSON parameters are
//!   accepted (a declared BPCHAR or NAME is text, a declared JSON is JSONB), and
//!   one-dimensional arrays of them but name, jsonb and json (`array`: ndim 1, or 0 when
//!   empty, lower bound 1; a binary array parameter's element oid is not checked, its
//!   elements are read in the inferred type's layout); results use those types (but name
//!   and json: a json column is jsonb), in text and binary formats.
//! - Results of SELECT, SHOW and EXPLAIN are all tagged `SELECT n` (PostgreSQL tags SHOW
//!   `SHOW`); the rows of a write with RETURNING get the write's tag, as in PostgreSQL.
//! - COPY FROM STDIN and COPY TO STDOUT run in text and CSV formats only (`copy`; BINARY,
//!   files and programs are 0A000), only as the sole statement of a Query or as a portal;
//!   COPY TO buffers its rows before sending them. Outside a block, COPY FROM commits every
//!   batch of rows on its own (an error keeps the batches committed before it, where
//!   PostgreSQL keeps none). After a COPY that failed in the extended protocol,
//!   tokio-postgres has been seen to report an unexpected message on that connection.
//! - NOTICE messages, LISTEN/NOTIFY and the function-call protocol are not supported
//!   (FunctionCall is answered with 0A000; COPY messages outside COPY are ignored).
//! - Shutdown closes idle connections without a FATAL 57P01 message.

mod array;
mod client;
mod conn;
mod copy;
mod error;
mod extended;
mod frame;
mod query;
mod server;
mod startup;
mod types;

pub use error::{sqlstate, startup_sqlstate};
pub use server::{Auth, MAX_SHUTDOWN_GRACE, Options, Server, serve};
pub use startup::server_version;
pub use types::encode_data_rows;
