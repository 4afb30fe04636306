//! The public surface of the SQL layer used by `pgserver` (and by `slt`'s in-process engine).
//!
//! This file fixes the seam; the implementation lives in the other modules.

use std::sync::Arc;

/// A SQL data type that a column, parameter or result can have, with its type modifier
/// (length, precision) where PostgreSQL has one. Values of every integer width are
/// [`Value::Int`], of every string type [`Value::Text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DataType {
    /// BOOLEAN (oid 16).
    Bool,
    /// SMALLINT / INT2 (oid 21).
    Int2,
    /// INT / INTEGER / INT4 (oid 23).
    Int4,
    /// BIGINT / INT8 (oid 20).
    Int8,
    /// REAL / FLOAT4 (oid 700).
    Float4,
    /// DOUBLE PRECISION / FLOAT8 (oid 701).
    Float8,
    /// NUMERIC / DECIMAL (oid 1700): exact, with `(precision, scale)` when declared.
    Numeric(Option<(u16, u16)>),
    /// TEXT (oid 25).
    Text,
    /// VARCHAR(n) / CHARACTER VARYING(n) (oid 1043); None is VARCHAR without a length.
    Varchar(Option<u32>),
    /// CHAR(n) / CHARACTER(n) (oid 1042, `bpchar`): values are padded with spaces to n
    /// characters, and trailing spaces do not count in comparisons.
    Char(u32),
    /// BYTEA (oid 17).
    Bytea,
    /// DATE (oid 1082).
    Date,
    /// TIME [WITHOUT TIME ZONE] (oid 1083); a precision is accepted and ignored.
    Time,
    /// TIMESTAMP [WITHOUT TIME ZONE] (oid 1114); a precision is accepted and ignored.
    Timestamp,
    /// TIMESTAMP WITH TIME ZONE / TIMESTAMPTZ (oid 1184).
    Timestamptz,
    /// UUID (oid 2950).
    Uuid,
    /// INTERVAL (oid 1186), without fields; a precision is accepted and ignored.
    Interval,
    /// JSONB (oid 3802); JSON is read as JSONB too.
    Jsonb,
    /// A one-dimensional array of an element type (`INT[]`, oid 1007 ...). The element type
    /// is a small `Copy` enum without type modifiers, so `DataType` stays `Copy`
    /// (`types::array`).
    Array(crate::types::array::ElemType),
}

/// A SQL value. Integers of every width are held as i64 and strings of every type as text;
/// the column's `DataType` says the width or length.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// A REAL.
    Float4(f32),
    /// A DOUBLE PRECISION.
    Float(f64),
    /// A NUMERIC (see `types::numeric` for its limits).
    Numeric(rust_decimal::Decimal),
    Text(String),
    /// A BYTEA.
    Bytes(Vec<u8>),
    /// A DATE: days since 2000-01-01.
    Date(i32),
    /// A TIME: microseconds since midnight.
    Time(i64),
    /// A TIMESTAMP: microseconds since 2000-01-01 00:00:00.
    Timestamp(i64),
    /// A TIMESTAMPTZ: microseconds since 2000-01-01 00:00:00 UTC.
    Timestamptz(i64),
    /// A UUID.
    Uuid([u8; 16]),
    /// An INTERVAL.
    Interval(crate::types::interval::Interval),
    /// A JSONB value.
    Jsonb(Box<crate::types::jsonb::Json>),
    /// A one-dimensional array (lower bound 1): its elements, each NULL or a value of the
    /// element type the expression's `DataType` names.
    Array(Vec<Value>),
}

/// A result column: its name and type.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
}

/// What one executed statement produced.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecResult {
    /// Rows of a query (SELECT, EXPLAIN, SHOW).
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
    },
    /// A completed command: `tag` is the CommandComplete word(s) ("INSERT", "UPDATE", "CREATE TABLE",
    /// "BEGIN", "COMMIT", "ROLLBACK", "SET", ...), `rows` the affected row count where PostgreSQL
    /// reports one (INSERT is reported by pgserver as "INSERT 0 n").
    Command { tag: String, rows: Option<u64> },
    /// An empty statement (only whitespace or `;`).
    Empty,
}

/// The transaction state of a session, as reported in ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// No explicit transaction block ('I').
    Idle,
    /// Inside BEGIN ... COMMIT ('T').
    InBlock,
    /// Inside a block that failed: every statement but ROLLBACK/COMMIT fails with 25P02 ('E').
    Failed,
}

/// A SQL error category; `pgserver` maps each to a SQLSTATE in one place.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// 42601: the text does not parse.
    Syntax(String),
    /// 42P01: relation does not exist.
    UndefinedTable(String),
    /// 42703: column does not exist.
    UndefinedColumn(String),
    /// 42702: an unqualified column name matches columns of several FROM items.
    AmbiguousColumn(String),
    /// 42P10: an invalid column reference (ORDER BY of SELECT DISTINCT not in the list).
    InvalidColumnReference(String),
    /// 21000: a scalar subquery returned more than one row.
    CardinalityViolation(String),
    /// 42P07: relation already exists.
    DuplicateTable(String),
    /// 23505: duplicate key value violates unique constraint (the primary key).
    UniqueViolation(String),
    /// 23502: null value in a NOT NULL / primary-key column.
    NotNullViolation(String),
    /// 22012: division by zero.
    DivisionByZero,
    /// 22003: numeric value out of range.
    OutOfRange(String),
    /// 22P02: invalid input syntax for a type.
    InvalidInput(String),
    /// 22001: a string is too long for its type's length.
    StringTooLong(String),
    /// 42704: a named object (a type) does not exist.
    UndefinedObject(String),
    /// 22007: invalid input syntax for a date or time.
    InvalidDatetime(String),
    /// 22008: a date or time field, or the value, is out of range.
    DatetimeOverflow(String),
    /// 42804 / 42883: type mismatch or no operator for the given types.
    DatatypeMismatch(String),
    /// 55P03: a lock could not be acquired within the lock wait timeout.
    LockNotAvailable(String),
    /// 40P01: this transaction was chosen as a deadlock victim; the client should retry it.
    Deadlock(String),
    /// 55000: a read below the garbage collection threshold (AS OF SYSTEM TIME too far back).
    BelowGcThreshold(String),
    /// 25001: the command cannot run once the transaction has started working.
    ActiveTransaction(String),
    /// 25P01: a command that needs a transaction block ran outside one (SAVEPOINT).
    NoActiveTransaction(String),
    /// 3B001: the savepoint named does not exist.
    InvalidSavepoint(String),
    /// 25P02: current transaction is aborted, commands ignored until end of transaction block.
    InFailedTransaction,
    /// 40001: serialization failure; the client should retry the transaction.
    Serialization(String),
    /// 40003: the outcome of a commit is unknown.
    CompletionUnknown(String),
    /// 40001 as well: a range could not be reached, so the transaction did not commit. Unlike
    /// a conflict, not retried inside the node (each attempt would wait out the same outage).
    Unavailable(String),
    /// 0A000: feature not supported (yet).
    NotSupported(String),
    /// 08P01 / 42P02 etc.: anything the client did wrong that has no better category.
    InvalidParameter(String),
    /// 42P05: a prepared statement of that name already exists.
    DuplicatePreparedStatement(String),
    /// 26000: the prepared statement named does not exist.
    UndefinedPreparedStatement(String),
    /// 53100: the node's disk is full.
    DiskFull(String),
    /// 53200: the query needs more memory than the node's budget for query state has left.
    OutOfMemory(String),
    /// 58030: storage I/O failed.
    IoError(String),
    /// 42883: no function of that name takes arguments of those types.
    UndefinedFunction(String),
    /// 2201F: an invalid argument for a power function (sqrt of a negative number).
    InvalidArgumentForPower(String),
    /// 2201E: an invalid argument for a logarithm.
    InvalidArgumentForLog(String),
    /// 22011: a negative substring length.
    InvalidSubstringLength(String),
    /// 2201B: a regular expression that does not compile.
    InvalidRegularExpression(String),
    /// 22025: a bad escape character or sequence in a LIKE pattern.
    InvalidEscapeSequence(String),
    /// 42803: a grouping error (an ungrouped column, an aggregate where none is allowed).
    Grouping(String),
    /// 42P20: a window function where none is allowed (WHERE, GROUP BY, nested calls).
    Windowing(String),
    /// 22014: ntile's bucket count is not positive.
    InvalidArgumentForNtile(String),
    /// 22013: a negative window frame offset.
    InvalidPrecedingOrFollowingSize(String),
    /// 2200C: an invalid use of an escape character (a SIMILAR TO pattern with more than two
    /// escape-double-quote separators).
    InvalidEscapeCharacter(String),
    /// 22004: a NULL where a value is required (format's `%I`).
    NullValueNotAllowed(String),
    /// 23514: a row fails a CHECK constraint.
    CheckViolation(String),
    /// 55000: an object is not in the state the command needs (currval before nextval).
    PrerequisiteState(String),
    /// 2200H: a sequence reached its minimum or maximum value.
    SequenceLimit(String),
    /// 428C9: a value given for a GENERATED ALWAYS identity column.
    GeneratedAlways(String),
    /// 2BP01: other objects depend on the object to drop.
    DependentObjects(String),
    /// 42710: an object (a constraint) of that name already exists.
    DuplicateObject(String),
    /// XX000: an internal error (replication, malformed state).
    Internal(String),
    /// 22P02: JSON text that does not parse, with PostgreSQL's message and detail.
    InvalidJson { message: String, detail: String },
    /// 57014: the statement was cancelled (a cancel request, `statement_timeout`).
    QueryCanceled(String),
    /// 22P04: COPY data that does not have the table's shape (too many or too few fields).
    BadCopyFileFormat(String),
    /// An error with the CONTEXT line that says where it happened (the line of a COPY).
    WithContext(Box<Error>, String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Syntax(m)
            | Error::UndefinedTable(m)
            | Error::UndefinedColumn(m)
            | Error::AmbiguousColumn(m)
            | Error::CardinalityViolation(m)
            | Error::InvalidColumnReference(m)
            | Error::DuplicateTable(m)
            | Error::UniqueViolation(m)
            | Error::NotNullViolation(m)
            | Error::OutOfRange(m)
            | Error::InvalidInput(m)
            | Error::StringTooLong(m)
            | Error::UndefinedObject(m)
            | Error::InvalidDatetime(m)
            | Error::DatetimeOverflow(m)
            | Error::DatatypeMismatch(m)
            | Error::Serialization(m)
            | Error::CompletionUnknown(m)
            | Error::Unavailable(m)
            | Error::NotSupported(m)
            | Error::InvalidParameter(m)
            | Error::DuplicatePreparedStatement(m)
            | Error::UndefinedPreparedStatement(m)
            | Error::ActiveTransaction(m)
            | Error::NoActiveTransaction(m)
            | Error::InvalidSavepoint(m)
            | Error::LockNotAvailable(m)
            | Error::Deadlock(m)
            | Error::BelowGcThreshold(m)
            | Error::DiskFull(m)
            | Error::OutOfMemory(m)
            | Error::IoError(m)
            | Error::UndefinedFunction(m)
            | Error::InvalidArgumentForPower(m)
            | Error::InvalidArgumentForLog(m)
            | Error::InvalidSubstringLength(m)
            | Error::InvalidRegularExpression(m)
            | Error::InvalidEscapeSequence(m)
            | Error::Grouping(m)
            | Error::Windowing(m)
            | Error::InvalidArgumentForNtile(m)
            | Error::InvalidPrecedingOrFollowingSize(m)
            | Error::InvalidEscapeCharacter(m)
            | Error::NullValueNotAllowed(m)
            | Error::CheckViolation(m)
            | Error::PrerequisiteState(m)
            | Error::SequenceLimit(m)
            | Error::GeneratedAlways(m)
            | Error::DependentObjects(m)
            | Error::DuplicateObject(m)
            | Error::Internal(m)
            | Error::QueryCanceled(m)
            | Error::BadCopyFileFormat(m) => f.write_str(m),
            Error::WithContext(e, _) => e.fmt(f),
            Error::InvalidJson { message, .. } => f.write_str(message),
            Error::DivisionByZero => f.write_str("division by zero"),
            Error::InFailedTransaction => f.write_str(
                "current transaction is aborted, commands ignored until end of transaction block",
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The error's CONTEXT line, where it has one.
    pub fn context(&self) -> Option<&str> {
        match self {
            Error::WithContext(_, context) => Some(context),
            _ => None,
        }
    }

    /// The error's DETAIL line, where it has one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::InvalidJson { detail, .. } => Some(detail),
            Error::WithContext(e, _) => e.detail(),
            _ => None,
        }
    }
}

/// Result type of the SQL layer.
pub type Result<T> = std::result::Result<T, Error>;

/// One parsed statement, ready to be described or executed. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Statement {
    /// The parsed statement (sqlparser AST).
    pub(crate) ast: Arc<sqlparser::ast::Statement>,
    /// Its `AS OF SYSTEM TIME` clause.
    pub(crate) as_of: Option<crate::as_of::AsOf>,
    /// For `ALTER TABLE ... SPLIT AT <query>`: the table (`ast` is then the query).
    pub(crate) split_at: Option<crate::split_at::SplitAt>,
    /// Its last plan, shared by its clones (see `cache`).
    pub(crate) plan: crate::cache::PlanSlot,
    /// For a prepared statement: the result column types it was described with, which a new
    /// plan must keep (see `prepared`).
    pub(crate) shape: Option<Arc<[DataType]>>,
    /// Whether it must run in a transaction (it reads or writes tables), worked out once.
    pub(crate) needs_txn: bool,
}

impl Statement {
    pub(crate) fn new(
        ast: sqlparser::ast::Statement,
        as_of: Option<crate::as_of::AsOf>,
        split_at: Option<crate::split_at::SplitAt>,
    ) -> Statement {
        let needs_txn = crate::Session::needs_txn(&ast);
        Statement {
            ast: Arc::new(ast),
            as_of,
            split_at,
            plan: Default::default(),
            shape: None,
            needs_txn,
        }
    }
}

impl Statement {
    /// The statement as normalised SQL text (for logs).
    pub fn sql(&self) -> String {
        self.ast.to_string()
    }

    /// The CommandComplete word of the rows the statement returns: `INSERT`, `UPDATE` or
    /// `DELETE` for a write with RETURNING (PostgreSQL tags its rows with the write), `SELECT`
    /// for everything else.
    pub fn rows_tag(&self) -> &'static str {
        use sqlparser::ast::Statement as S;
        match self.ast.as_ref() {
            S::Insert(_) => "INSERT",
            S::Update(_) => "UPDATE",
            S::Delete(_) => "DELETE",
            _ => "SELECT",
        }
    }
}

/// What the extended protocol needs to know about a statement before it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// Types of `$1..$n`, inferred from context (e.g. `id = $1` takes the column's type); TEXT when
    /// nothing constrains a parameter, or the type the client declared in Parse.
    pub params: Vec<DataType>,
    /// Result columns; empty for statements that return no rows.
    pub columns: Vec<Column>,
}

/// A prepared statement of a session, made by SQL `PREPARE` or by the extended protocol's
/// Parse (one namespace, as in PostgreSQL). Executions run `statement` through
/// [`Session::execute`](crate::Session::execute); one that has to plan it again after a schema change fails with 0A000
/// if its result columns no longer have the described types.
#[derive(Debug)]
pub struct Prepared {
    /// The statement; None for an empty query.
    pub statement: Option<Statement>,
    /// Its parameter and result types, as described when it was prepared.
    pub description: Description,
    /// The parameter type OIDs the client declared (0 where it left one to inference).
    pub declared_oids: Vec<u32>,
}

/// The shared SQL engine of a node: the transactional store, the row-id allocator and the
/// schema generation that cached plans are checked against (so a node has exactly one).
pub struct Engine {
    pub(crate) store: Arc<dyn crate::store::Store>,
    pub(crate) rowids: crate::exec::RowIds,
    pub(crate) schema: crate::cache::Schema,
    pub(crate) memory: Arc<crate::exec::memory::Pool>,
    /// The live sessions, for cancel requests.
    pub(crate) backends: Arc<crate::exec::interrupt::Backends>,
}

impl Engine {
    /// Creates the engine over a node's transactional store.
    pub fn new(db: txn::Db) -> Arc<Engine> {
        Self::with_store(Arc::new(db))
    }

    /// Creates an engine over an in-memory store with snapshot isolation: nothing is durable and
    /// nothing is shared with other processes. For tests of this crate and the layers above.
    pub fn memory() -> Arc<Engine> {
        Self::with_store(Arc::new(crate::store::Memory::default()))
    }

    fn with_store(store: Arc<dyn crate::store::Store>) -> Arc<Engine> {
        let rowids = crate::exec::RowIds::new(store.clone());
        Arc::new(Engine {
            store,
            rowids,
            schema: Default::default(),
            memory: crate::exec::memory::Pool::with_default_limit(),
            backends: Default::default(),
        })
    }

    /// A CancelRequest for the session with process id `pid`: cancels its running statement
    /// if `secret` is that session's key; otherwise (or with no statement running) nothing
    /// happens, as in PostgreSQL.
    pub fn cancel_request(&self, pid: i32, secret: i32) -> bool {
        self.backends.cancel_request(pid, secret)
    }

    /// Limits the memory the node's queries may hold in sorts, hash tables, aggregation
    /// groups and buffered results (by default a quarter of the machine's memory); a query
    /// that needs more fails with 53200.
    pub fn set_memory_limit(&self, bytes: usize) {
        self.memory.set_limit(bytes);
    }

    /// The memory limit for query state, in bytes, and what is reserved now.
    pub fn memory_usage(&self) -> (usize, usize) {
        (self.memory.limit(), self.memory.used())
    }
}
