//! The one place where SQL errors become PostgreSQL errors: every `sql::Error` category maps to a
//! SQLSTATE here, and every error pgserver itself raises (bad parameters, protocol misuse) is
//! built by the helpers below, so a client always sees a code and a message it can act on.

use pgwire::error::{ErrorInfo, PgWireError};

/// Severity of a statement-level error: the connection survives it.
const SEVERITY_ERROR: &str = "ERROR";
/// Severity of a connection-level error: the server closes the connection after sending it.
const SEVERITY_FATAL: &str = "FATAL";

/// SQLSTATE codes pgserver raises itself (the SQL layer's codes come from [`sqlstate`]).
pub(crate) mod code {
    /// A message arrived out of order, or its counts do not match the statement.
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// A binary parameter does not have the length or layout of its type.
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    /// A text parameter does not parse as its type.
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    /// A number does not fit its type.
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    /// Text that is not valid UTF-8.
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    /// A type or feature that is not implemented.
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// The startup packet named no user.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    /// The startup packet named a database that does not exist.
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    /// A broken invariant inside pgserver.
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// The SQLSTATE of a SQL-layer error. This match is the single mapping from error categories to
/// codes; keep it exhaustive so a new category cannot reach a client without a code.
pub fn sqlstate(err: &sql::Error) -> &'static str {
    use sql::Error;
    match err {
        Error::Syntax(_) => "42601",
        Error::UndefinedTable(_) => "42P01",
        Error::UndefinedColumn(_) => "42703",
        Error::AmbiguousColumn(_) => "42702",
        Error::CardinalityViolation(_) => "21000",
        Error::InvalidColumnReference(_) => "42P10",
        Error::DuplicateTable(_) => "42P07",
        Error::UniqueViolation(_) => "23505",
        Error::NotNullViolation(_) => "23502",
        Error::DivisionByZero => "22012",
        Error::OutOfRange(_) => "22003",
        Error::InvalidInput(_) => "22P02",
        Error::StringTooLong(_) => "22001",
        Error::UndefinedObject(_) => "42704",
        Error::InvalidDatetime(_) => "22007",
        Error::DatetimeOverflow(_) => "22008",
        Error::DatatypeMismatch(_) => "42804",
        Error::InFailedTransaction => "25P02",
        Error::ActiveTransaction(_) => "25001",
        Error::NoActiveTransaction(_) => "25P01",
        Error::InvalidSavepoint(_) => "3B001",
        Error::LockNotAvailable(_) => "55P03",
        Error::Deadlock(_) => "40P01",
        Error::BelowGcThreshold(_) => "55000",
        Error::Serialization(_) => "40001",
        Error::CompletionUnknown(_) => "40003",
        Error::Unavailable(_) => "40001",
        Error::NotSupported(_) => "0A000",
        Error::InvalidParameter(_) => "22023",
        Error::DuplicatePreparedStatement(_) => "42P05",
        Error::UndefinedPreparedStatement(_) => "26000",
        Error::DiskFull(_) => "53100",
        Error::OutOfMemory(_) => "53200",
        Error::IoError(_) => "58030",
        Error::UndefinedFunction(_) => "42883",
        Error::InvalidArgumentForPower(_) => "2201F",
        Error::InvalidArgumentForLog(_) => "2201E",
        Error::InvalidSubstringLength(_) => "22011",
        Error::InvalidRegularExpression(_) => "2201B",
        Error::InvalidEscapeSequence(_) => "22025",
        Error::Grouping(_) => "42803",
        Error::Windowing(_) => "42P20",
        Error::InvalidArgumentForNtile(_) => "22014",
        Error::InvalidPrecedingOrFollowingSize(_) => "22013",
        Error::InvalidEscapeCharacter(_) => "2200C",
        Error::NullValueNotAllowed(_) => "22004",
        Error::CheckViolation(_) => "23514",
        Error::PrerequisiteState(_) => "55000",
        Error::SequenceLimit(_) => "2200H",
        Error::GeneratedAlways(_) => "428C9",
        Error::DependentObjects(_) => "2BP01",
        Error::DuplicateObject(_) => "42710",
        Error::Internal(_) => "XX000",
        Error::InvalidJson { message, .. } if message.starts_with("unsupported Unicode") => "22P05",
        Error::InvalidJson { .. } => "22P02",
        Error::QueryCanceled(_) => "57014",
        Error::BadCopyFileFormat(_) => "22P04",
        Error::WithContext(e, _) => sqlstate(e),
    }
}

/// The SQLSTATE of an error from `sql::Session::new`. The only client input a session checks at
/// start-up is the database name, so an invalid parameter there means "database does not exist"
/// (3D000) rather than the generic 22023.
pub fn startup_sqlstate(err: &sql::Error) -> &'static str {
    match err {
        sql::Error::InvalidParameter(_) => code::INVALID_CATALOG_NAME,
        other => sqlstate(other),
    }
}

/// The ErrorResponse fields of a statement-level SQL error.
pub(crate) fn error_info(err: &sql::Error) -> ErrorInfo {
    let mut info = ErrorInfo::new(SEVERITY_ERROR.into(), sqlstate(err).into(), err.to_string());
    info.detail = err.detail().map(str::to_string);
    info.where_context = err.context().map(str::to_string);
    info
}

/// A statement-level SQL error as a pgwire error (ends an extended-protocol exchange until Sync).
pub(crate) fn from_sql(err: &sql::Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(err)))
}

/// A statement-level error raised by pgserver itself.
pub(crate) fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        SEVERITY_ERROR.into(),
        code.into(),
        message.into(),
    )))
}

/// A FATAL error: pgwire sends it and closes the connection.
pub(crate) fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        SEVERITY_FATAL.into(),
        code.into(),
        message.into(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every category has the code DESIGN.md and PostgreSQL give it.
    #[test]
    fn sql_errors_map_to_sqlstates() {
        use sql::Error;
        let m = || "m".to_string();
        let cases = [
            (Error::Syntax(m()), "42601"),
            (Error::UndefinedTable(m()), "42P01"),
            (Error::UndefinedColumn(m()), "42703"),
            (Error::AmbiguousColumn(m()), "42702"),
            (Error::CardinalityViolation(m()), "21000"),
            (Error::InvalidColumnReference(m()), "42P10"),
            (Error::DuplicateTable(m()), "42P07"),
            (Error::UniqueViolation(m()), "23505"),
            (Error::NotNullViolation(m()), "23502"),
            (Error::DivisionByZero, "22012"),
            (Error::OutOfRange(m()), "22003"),
            (Error::InvalidInput(m()), "22P02"),
            (Error::StringTooLong(m()), "22001"),
            (Error::UndefinedObject(m()), "42704"),
            (Error::InvalidDatetime(m()), "22007"),
            (Error::DatetimeOverflow(m()), "22008"),
            (Error::DatatypeMismatch(m()), "42804"),
            (Error::InFailedTransaction, "25P02"),
            (Error::ActiveTransaction(m()), "25001"),
            (Error::NoActiveTransaction(m()), "25P01"),
            (Error::InvalidSavepoint(m()), "3B001"),
            (Error::LockNotAvailable(m()), "55P03"),
            (Error::Deadlock(m()), "40P01"),
            (Error::BelowGcThreshold(m()), "55000"),
            (Error::Serialization(m()), "40001"),
            (Error::CompletionUnknown(m()), "40003"),
            (Error::Unavailable(m()), "40001"),
            (Error::NotSupported(m()), "0A000"),
            (Error::InvalidParameter(m()), "22023"),
            (Error::DiskFull(m()), "53100"),
            (Error::OutOfMemory(m()), "53200"),
            (Error::IoError(m()), "58030"),
            (Error::UndefinedFunction(m()), "42883"),
            (Error::InvalidArgumentForPower(m()), "2201F"),
            (Error::InvalidArgumentForLog(m()), "2201E"),
            (Error::InvalidSubstringLength(m()), "22011"),
            (Error::InvalidRegularExpression(m()), "2201B"),
            (Error::InvalidEscapeSequence(m()), "22025"),
            (Error::Grouping(m()), "42803"),
            (Error::Windowing(m()), "42P20"),
            (Error::InvalidArgumentForNtile(m()), "22014"),
            (Error::InvalidPrecedingOrFollowingSize(m()), "22013"),
            (Error::InvalidEscapeCharacter(m()), "2200C"),
            (Error::NullValueNotAllowed(m()), "22004"),
            (Error::CheckViolation(m()), "23514"),
            (Error::PrerequisiteState(m()), "55000"),
            (Error::SequenceLimit(m()), "2200H"),
            (Error::GeneratedAlways(m()), "428C9"),
            (Error::DependentObjects(m()), "2BP01"),
            (Error::DuplicateObject(m()), "42710"),
            (Error::Internal(m()), "XX000"),
        ];
        for (err, want) in cases {
            assert_eq!(sqlstate(&err), want, "{err:?}");
        }
    }

    #[test]
    fn startup_invalid_parameter_is_unknown_database() {
        let err = sql::Error::InvalidParameter("database \"x\" does not exist".into());
        assert_eq!(startup_sqlstate(&err), "3D000");
        assert_eq!(
            startup_sqlstate(&sql::Error::Internal("io".into())),
            "XX000"
        );
    }

    #[test]
    fn error_info_carries_code_and_message() {
        let info = error_info(&sql::Error::DivisionByZero);
        assert_eq!(info.severity, "ERROR");
        assert_eq!(info.code, "22012");
        assert_eq!(info.message, "division by zero");
        let PgWireError::UserError(info) = fatal("3D000", "no such database") else {
            panic!("fatal must build a user error");
        };
        assert!(PgWireError::UserError(info).is_fatal());
    }
}
