//! The SQL layer: from SQL text to reads and writes of key spans in a transaction.
//!
//! `pgserver` hands each statement to a [`Session`]. The session parses it ([`parser`], a thin
//! wrapper over sqlparser with our own dialect), loads the descriptors of the tables it names
//! from the [`catalog`] in the statement's transaction, binds names and types and builds a
//! [`plan::Plan`] ([`planner`]), rewrites it with a few small rules ([`optimizer`]), substitutes
//! the parameters, and runs it with pull-based operators over batches of rows (`exec`). The
//! plan is kept with the statement and reused by its next executions while the node's schema
//! generation stays what the transaction sees (`cache`); a session also remembers the
//! statements of the SQL texts it parsed last, and keeps its prepared statements (SQL
//! `PREPARE`/`EXECUTE`/`DEALLOCATE`/`DISCARD` and the extended protocol's Parse share them,
//! `prepared`).
//!
//! The planner binds names over every FROM item (tables, views, aliases, joins, subqueries in
//! FROM; a view is the text of its query in the catalog, expanded in place like a subquery)
//! and over the queries enclosing a subquery (correlated references), and reads each table
//! with a full scan under its query's filters. The optimizer then pushes filter conjuncts
//! through joins to the table they read and lowers each table access to key spans of its
//! primary index (`txn::keys::sql_index_prefix(table_id, 1)`): equality on the whole primary
//! key is a point get, equality on a key prefix and/or a range on the next key column is a span
//! scan, anything else is a scan of the whole table with a filter just above it. A public
//! secondary index whose columns such conjuncts constrain further than the primary key's is
//! scanned instead, its entries leading to the rows by primary key, or alone (index-only)
//! when the index holds every column the query reads above the scan. Scans read
//! `exec::ops::SCAN_BATCH` (1024) rows in their first request, twice as many in each next one
//! up to `exec::ops::MAX_SCAN_BATCH` (8192), and resume after the last key returned.
//! Joins with equalities between a left and a right column are hash joins, others nested
//! loops; both read their right input whole. An INNER or LEFT equi-join whose keys give the
//! whole primary key of a right-hand table is a lookup join instead: each batch of left rows
//! reads the rows it matches by primary key (one request per range), until the left input
//! has returned `exec::lookup_join::LOOKUP_ROWS` rows; it then hashes the table as a hash
//! join would. Index scans read the rows of each batch of entries the same way. Subqueries in expressions run as plans of their
//! own: once per operator when they refer to no enclosing column, else once per row.
//!
//! `EXPLAIN` prints a plan with the same tree printer the golden tests use; `EXPLAIN ANALYZE`
//! runs the query with every operator instrumented (`exec::analyze`) and adds each operator's
//! rows and time (inputs included) and the statement's KV requests and rows read.
//!
//! Invariants:
//!
//! - The byte order of encoded key columns is the SQL order of their values, NULL last
//!   ([`encoding`], with a property test). Row values are tagged by column id.
//! - A row and its entries in every index of its table (write-only or public) are written in
//!   the same transaction; reads use only public indexes.
//! - A statement outside a transaction block runs in an implicit transaction that commits at its
//!   end and rolls back on error (retried internally on 40001, never on 40003). In a block, an
//!   error rolls the transaction back at once and every later statement fails with 25P02 until
//!   COMMIT or ROLLBACK; COMMIT of a failed block reports ROLLBACK.
//! - The catalog is read in the statement's own transaction, so DDL is transactional and a
//!   statement sees the schema of its snapshot. A plan is reused across transactions only when
//!   both see the same schema generation, which every commit of a schema change on the node
//!   bumps (`cache`); AS OF SYSTEM TIME always plans from the catalog at its timestamp. A
//!   prepared statement planned again must return the column types it was described with
//!   (else 0A000, before it runs).
//! - UPDATE and DELETE read every row they change before writing any, so a statement never
//!   reads its own writes.
//! - Every error a client can cause is an [`Error`] category (pgserver maps them to SQLSTATE
//!   codes); nothing a client sends can panic the layer.
//!
//! Caveats (not done yet):
//!
//! - Views are not updatable (INSERT, UPDATE and DELETE name tables only), OR REPLACE does not
//!   check that the new query keeps the old columns, DROP TABLE of a view is 42P01 (PostgreSQL:
//!   42809), a view that reads itself fails when read (PostgreSQL refuses to create it), and
//!   DROP VIEW or DROP TABLE does not check for views that read the relation (PostgreSQL:
//!   2BP01 without CASCADE); such a view fails with 42P01 when read.
//! - Queries: inner, cross, LEFT, RIGHT and FULL joins with ON, USING or NATURAL (FULL with
//!   USING or NATURAL is 0A000; a RIGHT or FULL join keeps its whole right input in
//!   memory, like every join); LATERAL subqueries and functions in FROM
//!   (INNER, CROSS, comma or LEFT joins; USING or NATURAL with one is 0A000) run as a nested
//!   loop, re-planned per left row so that an outer reference bounds a key span (correlated
//!   subqueries too; EXPLAIN shows the plan before that, with `outer1.#i` references);
//!   subqueries in
//!   FROM and in expressions (scalar, IN, EXISTS; WHERE, HAVING and the select list only, not
//!   in ON, GROUP BY or aggregate arguments), DISTINCT, DISTINCT ON (ORDER BY must start with
//!   its expressions, as in PostgreSQL) and DISTINCT aggregates, UNION /
//!   INTERSECT / EXCEPT [ALL] (ORDER BY on them by result column only), WITH and WITH
//!   RECURSIVE (each reference to a WITH query runs it again, where PostgreSQL materializes a
//!   query read twice; a recursive one stops with an error past
//!   `exec::setops::MAX_RECURSIVE_ROWS` rows, where PostgreSQL runs on). Window functions
//!   (row_number, rank, dense_rank, ntile, lag, lead, first_value, last_value and the
//!   aggregates, with FILTER but not DISTINCT or ORDER BY inside the call, as in PostgreSQL)
//!   take PARTITION BY, ORDER BY and frames: ROWS and GROUPS with any bounds (constant
//!   offsets), RANGE with CURRENT ROW or UNBOUNDED bounds, also through the WINDOW clause
//!   (`OVER w`, `OVER (w ORDER BY x)`); RANGE with an offset and a non-literal offset are
//!   0A000, EXCLUDE does not parse (42601), an aggregate over frames that do not start at the
//!   partition's first row is computed afresh for each row (no inverse transition), and the
//!   Window node reads its whole input into memory before it emits a row.
//!   GROUP BY takes select-list positions and output names as PostgreSQL resolves them (input
//!   column names win); LIMIT/OFFSET and OFFSET n ROWS / FETCH FIRST n ROWS ONLY | WITH TIES
//!   (a FETCH count must be a literal: sqlparser takes no parenthesized expression). Inner
//!   joins are ordered greedily (from the first FROM item, the
//!   next input is the first one a condition links to those already joined), without
//!   cardinality estimates. A USING column appears in `*` at
//!   the left input's position (PostgreSQL lists USING columns first). Scalar functions: abs,
//!   lower, upper, length, COALESCE, NULLIF, GREATEST, LEAST, LIKE/ILIKE, the regular
//!   expression operators (the `regex` crate's syntax, close to but not exactly PostgreSQL's
//!   ARE), the common string functions (substr, position, replace, concat, trim forms,
//!   split_part, pads, left/right...) and math functions (round, trunc, ceil, floor, sign,
//!   sqrt, power, exp, ln, log, mod, pi, random), gen_random_uuid and pg_typeof,
//!   pg_backend_pid, pg_cancel_backend and pg_sleep (which returns an empty text, not void;
//!   a cancel or `statement_timeout` stops it and any scan or series, `exec::interrupt`)
//!   (`planner::functions`); sqrt, exp, ln, log and power compute in double precision even
//!   for numeric arguments; date/time, formatting and pattern functions below;
//!   aggregates: count, sum,
//!   avg, min, max, bool_and / every, bool_or, string_agg (text, bytea), stddev / stddev_samp,
//!   stddev_pop, variance / var_samp and var_pop, with PostgreSQL's result types (sum of
//!   integer is bigint, of bigint numeric; avg, variance and stddev of an exact type are
//!   numeric, of a float double precision; sum and avg of intervals are intervals), each with
//!   DISTINCT, ORDER BY inside the call and FILTER (WHERE ...); an ORDER BY inside a call keeps
//!   the group's rows in memory. Variances of numerics are exact up to the numeric limits
//!   below (22003 past them), standard deviations take the square root in about 28
//!   significant digits, and both show at most 28 digits after the point (PostgreSQL can
//!   show more for tiny values); jsonb_agg and jsonb_object_agg (json_agg and json_object_agg
//!   are the same, as jsonb; with DISTINCT they keep NULLs but, unlike PostgreSQL, do not sort
//!   their input). array_agg keeps NULLs, and with DISTINCT returns its values in order (as
//!   PostgreSQL's sorted DISTINCT input does). No ordered-set aggregates.
//! - Date/time, formatting and pattern functions: date_trunc, extract (numeric) and
//!   date_part (double precision) with PostgreSQL's unit names and fields (`exec::datetime`;
//!   an extract of julian whose quotient needs more than 28 digits has fewer decimals than
//!   PostgreSQL's), age, make_date, make_timestamp and make_interval (named arguments too);
//!   an untyped literal where they expect a date/time is read as timestamptz (PostgreSQL:
//!   ambiguous, 42725), and date_trunc takes no time zone argument. to_char of timestamps,
//!   dates, times and intervals (`exec::to_char`: the common template patterns in English,
//!   no `SP` suffix) and of numbers (`exec::to_char_number`: `9 0 . D , G S MI PL SG FM`;
//!   `RN`, `EEEE`, `V`, `TH`, `L` and `B` are 0A000); to_date and to_timestamp(text,
//!   pattern) read the date, time, meridiem and era fields in PostgreSQL's non-FX mode
//!   (`exec::to_timestamp`; FX, ISO week, day-of-year, Julian and time zone fields are
//!   0A000), and to_timestamp(seconds); no to_number. SIMILAR TO is translated to an
//!   anchored regular expression as PostgreSQL's `similar_to_escape` does, then matched with
//!   the `regex` crate (no `SUBSTRING(... SIMILAR ...)`); format takes `%s`, `%I`, `%L`,
//!   `%%`, positions and widths (`exec::format`; `%I` quotes a fixed list of keywords).
//! - Set-returning functions: `generate_series` of integers, numerics and timestamps
//!   (interval step) in FROM (`planner::series`) and `unnest(array [, ...]) [WITH
//!   ORDINALITY]` in FROM, both also in the select list (`planner::srf`), where several run
//!   in lockstep as in PostgreSQL 10+ (a ProjectSet; each call's values for one row are held
//!   in memory). A set-returning call nested in another call's arguments, or in WHERE,
//!   GROUP BY, HAVING or ORDER BY, is 0A000 (GROUP BY of a select-list SRF's output name
//!   too); no other table functions, no ROWS FROM, no WITH ORDINALITY on generate_series,
//!   no column alias of a one-column function's table alias (`f(x) AS l` then `l` names
//!   `value`, as `l.value`; PostgreSQL also accepts `l`).
//! - The jsonb table functions (jsonb_each, jsonb_each_text, jsonb_object_keys,
//!   jsonb_array_elements, jsonb_array_elements_text) are FROM items only (`planner::jsonb`;
//!   in the select list they are 0A000; no WITH ORDINALITY).
//! - Arrays (`types::array`): one dimension with lower bound 1 only (multidimensional
//!   literals and `[2:3]={...}` bounds are 0A000; array_ndims is 1, array_lower 1);
//!   elements lose their type modifier (a `VARCHAR(3)[]` element is varchar, a `CHAR(n)[]`
//!   element unpadded text); no arrays of arrays and no jsonb or json arrays (`jsonb[]`,
//!   `array_agg` of jsonb: 0A000). Array columns cannot be primary-key,
//!   UNIQUE or index columns (0A000; PostgreSQL indexes them). Input errors report
//!   PostgreSQL's message without its DETAIL line. An empty `ARRAY[]` without a cast is
//!   42804 (PostgreSQL: 42P18). ANY/ALL with a subquery takes only `= ANY` and `<> ALL`
//!   (as IN and NOT IN). No array_replace, array_positions, array_fill, array_dims, trim_array or
//!   subscripted assignment (`UPDATE ... SET a[1] = ...`).
//! - Correlated subqueries run once per enclosing row with the filters of their own query;
//!   they are not decorrelated into joins, and a correlated equality does not select a key
//!   span.
//! - Secondary indexes: plain columns only (no expressions, partial indexes, NULLS NOT
//!   DISTINCT, other NULL placements than the direction's default, or methods other than
//!   btree). UNIQUE entries, like primary keys, are must-not-exist writes checked where they
//!   apply (`txn::Transaction::insert`; an implicit statement reads nothing first and gets
//!   23505 from its commit, a statement in a block also reads the key); an UPDATE checks its new entries after removing all of its old ones, so a
//!   statement that permutes unique values succeeds (PostgreSQL checks row by row). An index
//!   built outside a transaction block is backfilled online (write-only, batches, public), but
//!   a writer that planned with the descriptor from before the write-only step and commits
//!   after the backfill read its rows can leave a row without an entry: there are no
//!   descriptor leases to wait out yet. A UNIQUE constraint's index can be dropped with DROP
//!   INDEX (PostgreSQL: 2BP01); a missing index is 42P01 (PostgreSQL: 42704). Only equality
//!   and range conjuncts choose an index (not IN lists, OR or ORDER BY); no lookup joins.
//! - EXPLAIN ANALYZE runs queries only (writes are 0A000, PostgreSQL runs them), counts KV
//!   reads per statement rather than per operator, and leaves out the per-operator figures of
//!   a recursive query; other EXPLAIN options (FORMAT, VERBOSE...) are 0A000.
//! - CREATE TABLE AS and TRUNCATE ([RESTART IDENTITY]) run in the statement's transaction,
//!   so both are transactional; TRUNCATE deletes the rows key by key, like DROP TABLE.
//! - DEFAULT expressions are kept as SQL text in the column descriptor and bound again by
//!   every statement that writes the table (`planner::defaults`); `DEFAULT` in an INSERT ...
//!   SELECT list is 42703 (PostgreSQL: 42601). CHECK constraints are kept the same way
//!   (`planner::checks`) and bound again by each INSERT and UPDATE. No FOREIGN KEY
//!   constraints, no ALTER TABLE, no UPDATE ... FROM or DELETE ... USING. INSERT ... ON
//!   CONFLICT (`exec::upsert`) works out all its proposed rows in memory (not reserved from
//!   the pool) and locks their arbiter keys before writing any; ON CONSTRAINT takes the
//!   primary key's `<table>_pkey` or any unique index's name (PostgreSQL: constraints only,
//!   not a CREATE UNIQUE INDEX), and a conflict target's WHERE is checked and ignored (no
//!   partial indexes, so every unique index on the columns is inferred).
//!   RETURNING (`planner::returning`) holds the written rows in memory until the statement
//!   has written them all, reserved from the memory pool like a query's result.
//! - Sequences (`exec::sequence`): values are taken in their own transactions, at least
//!   `exec::sequence::BLOCK` (32) per round trip whatever the CACHE, so sessions interleave
//!   in blocks (gaps, never duplicates); after the node's schema generation changes a session
//!   checks its block against the descriptor and counter once before using it again, but a
//!   block taken before a sequence was changed through another node lives on until then. The sequence functions take the sequence's name as text (no regclass) and read
//!   the committed descriptor, so a sequence created in the open block is not found; they are
//!   evaluated in projections, filters, VALUES of INSERT and defaults (elsewhere, as in a
//!   plain `VALUES` query, 0A000). No ALTER SEQUENCE (sqlparser has no grammar for it), no
//!   OWNED BY, no `SELECT ... FROM sequence`, no OVERRIDING SYSTEM VALUE; DROP SEQUENCE of an
//!   owned sequence is 2BP01 (no CASCADE).
//! - CREATE TABLE ... AS takes no column name list (sqlparser does not parse one), and DROP
//!   TABLE's CASCADE and RESTRICT change nothing (no dependencies are tracked). Storage
//!   parameters (`WITH (fillfactor = ...)`) are accepted and ignored.
//! - Savepoints: ROLLBACK TO SAVEPOINT undoes the writes and releases the row locks taken since
//!   the savepoint, but the reads made since stay in the read set, so under SERIALIZABLE a row
//!   read only by the rolled-back part can still fail the COMMIT with 40001 (PostgreSQL forgets
//!   them). After 40001, 40003 or an internal error a block cannot be recovered by ROLLBACK TO
//!   (which then reports 40001): the transaction is rolled back at once. A failed block with
//!   savepoints keeps its locks until it ends, as in PostgreSQL; one without releases them at
//!   once.
//! - `SELECT ... FOR UPDATE` locks the primary keys of the rows it returns, single-table queries
//!   only (aggregates: 0A000). FOR SHARE takes the same exclusive lock; FOR NO KEY UPDATE and
//!   FOR KEY SHARE do not parse yet (42601); NOWAIT, SKIP LOCKED and `OF` are 0A000 (PostgreSQL supports them). Locks
//!   are taken at the statement's end (after all its rows are read), not row by row.
//! - `SELECT ... AS OF SYSTEM TIME '<value>'` (CockroachDB syntax; not in PostgreSQL) reads a
//!   snapshot in a read-only transaction of its own: a negative interval from the statement's
//!   start (`'-10s'`), a TSO timestamp, or an RFC 3339 time; a future one is 22023. The clause
//!   is cut from the statement's tokens before parsing (`as_of`), so it may stand anywhere in
//!   the SELECT; other statements with it are 0A000, and so is a SELECT with it inside an
//!   explicit block (CockroachDB allows it when the whole transaction uses it).
//! - `ALTER TABLE t SPLIT AT VALUES (...)` (CockroachDB syntax) splits the table's ranges at
//!   primary-key prefixes, outside transaction blocks only (25001), and returns the new range
//!   ids; it is recognised before the PostgreSQL grammar (`split_at`), as one statement per Query.
//! - A multi-statement simple-protocol Query runs as one implicit transaction, as in PostgreSQL;
//!   one without transaction control statements is retried as a whole on 40001 (its results
//!   are only sent once it has committed). A failed implicit commit is reported as an error after
//!   the batch's last result.
//! - Types: boolean, smallint, integer, bigint, real, double precision, numeric(p, s), text,
//!   varchar(n), char(n), bytea, date, time, timestamp, timestamptz, interval, uuid and jsonb
//!   only, and one-dimensional arrays of them but jsonb (no time with time zone; no
//!   gen_random_uuid). X'..' literals are not bytea (PostgreSQL: bit strings) and are not
//!   supported.
//! - jsonb (`types::jsonb`) follows PostgreSQL's input normalisation, output, errors and btree
//!   order, but: `json` is jsonb (PostgreSQL's json keeps the input text, duplicate keys and
//!   key order), and the json_* functions that exist (json_typeof, json_array_length,
//!   json_build_object, json_build_array, to_json, json_strip_nulls, json_agg,
//!   json_object_agg) are their jsonb forms (PostgreSQL's print json's own text, such as
//!   `{"a" : 1}`); jsonb numbers have numeric's limits here (28 digits after the point, below
//!   about 7.9e28, else 22003; PostgreSQL: any JSON number) and strings compare by bytes
//!   (collation "C"); a jsonb column cannot be in a primary key or index (0A000; PostgreSQL
//!   has btree and GIN); paths and key lists (`#>`, `#>>`, `#-`, `?|`, `?&`, jsonb_set) are
//!   `text[]` values or text array literals (`'{a,0}'`); no subscripts (`j['a']`), jsonpath,
//!   `@?`/`@@`, jsonb_insert, jsonb_set_lax or other json functions; an operator type error
//!   names a literal's type (`text`) where PostgreSQL says `unknown`.
//! - Dates and times read and print the ISO style only (no month names, `epoch`,
//!   `infinity` or BC input) with the time zone fixed at UTC: SET TIME ZONE is accepted and
//!   changes no input or output. A precision on time or timestamp is accepted and ignored
//!   (PostgreSQL rounds to it). Date arithmetic is date ± integer, date - date, date + time
//!   and time - time; intervals add to and subtract from intervals, dates, times and
//!   timestamps, scale by numbers, and are the difference of two timestamps; they read only
//!   the `postgres` input style (no ISO 8601 `P1D`, no `INTERVAL '1' DAY` fields). An
//!   interval key column reads back as days and time (`1 mon` as `30 days`).
//! - A numeric holds at most 28 digits after the point and values below about 7.9e28
//!   (`types::numeric`; PostgreSQL: 16383 and 131072 digits), no NaN or infinity (0A000),
//!   and a numeric key column without a modifier keeps the value but not the display scale
//!   (`1.50` reads back as `1.5`). A number literal beyond that range is double precision.
//! - A CHAR(n) compared with a string ignores trailing spaces through `rtrim`, so such a
//!   comparison on a key column does not choose a key span. Two CHAR types of different
//!   lengths have VARCHAR as their common type in CASE and COALESCE (PostgreSQL: bpchar).
//! - Isolation: SERIALIZABLE by default; REPEATABLE READ runs as snapshot isolation, and so do
//!   READ COMMITTED and READ UNCOMMITTED (stronger than they promise; SHOW reports the level
//!   that runs). The in-memory test store runs every level as snapshot isolation.
//! - A table without a primary key gets a hidden `rowid` key column (int8) from a cluster-wide
//!   counter reserved in blocks of 1000 per node (ids are unique, not ordered by time).
//! - ORDER BY, aggregation, DISTINCT, window functions, set operations, the right input of
//!   joins and query results are held in memory, reserved from one pool per node
//!   (`--max-sql-memory`, a quarter of the machine's by default, `exec::memory`): a query
//!   that needs more fails with 53200 (nothing spills to disk). Not reserved: the rows an
//!   UPDATE, DELETE or FOR UPDATE reads before writing, subquery results, the values of
//!   set-returning calls. An ORDER BY under a constant LIMIT (without WITH TIES) keeps only
//!   LIMIT + OFFSET rows plus a bounded slack (a top-N sort; EXPLAIN still prints Order and
//!   Limit). DROP TABLE deletes the rows in the dropping transaction (no range clear).
//! - No pg_catalog / information_schema tables and no `SHOW ALL`.
//! - Cached plans are checked against a schema generation of this node only: correct while
//!   there is one node, but a schema change made through another node needs the descriptor
//!   leases of DESIGN.md, which do not exist yet. A reused plan reads no descriptor, so a
//!   transaction's read set no longer holds them.

mod api;
pub mod as_of;
mod cache;
pub mod catalog;
pub mod encoding;
pub(crate) mod exec;
pub mod optimizer;
pub mod parser;
pub mod plan;
pub mod planner;
mod prepared;
mod session;
mod show_cluster;
mod split_at;
pub(crate) mod store;
pub mod types;

pub use api::*;
pub use exec::cursor::Cursor;
pub use exec::memory::machine_memory;
pub use session::copy::{CopyIn, CopyOut};
pub use session::{SERVER_VERSION, Session};

/// The one database a node serves.
pub const DATABASE: &str = "tinkerdb";

impl From<txn::Error> for Error {
    fn from(e: txn::Error) -> Error {
        match e {
            txn::Error::Serialization(_) => Error::Serialization(e.to_string()),
            txn::Error::Ambiguous(_) => Error::CompletionUnknown(e.to_string()),
            txn::Error::ReadOnly => Error::NotSupported(e.to_string()),
            txn::Error::LockTimeout(_) => Error::LockNotAvailable(e.to_string()),
            txn::Error::Deadlock(_) => Error::Deadlock(e.to_string()),
            txn::Error::BelowGcThreshold(m) => Error::BelowGcThreshold(m),
            txn::Error::InvalidArgument(m) => Error::InvalidParameter(m),
            txn::Error::DiskFull(m) => Error::DiskFull(m),
            txn::Error::Storage(m) => Error::IoError(m),
            txn::Error::Internal(m) => Error::Internal(m),
            txn::Error::Unavailable(_) => Error::Unavailable(e.to_string()),
            txn::Error::Duplicate { .. } => {
                Error::UniqueViolation("duplicate key value violates unique constraint".into())
            }
        }
    }
}
