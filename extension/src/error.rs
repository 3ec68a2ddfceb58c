//! The one place plwasm errors become PostgreSQL errors.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use plwasm_core::error::{PlWasmError, SqlState, Subject};

fn error_code(state: SqlState) -> PgSqlErrorCode {
    match state {
        SqlState::InvalidFunctionDefinition => PgSqlErrorCode::ERRCODE_INVALID_FUNCTION_DEFINITION,
        SqlState::ProgramLimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        SqlState::StatementTooComplex => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
        SqlState::ExternalRoutineException => PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        SqlState::DivisionByZero => PgSqlErrorCode::ERRCODE_DIVISION_BY_ZERO,
        SqlState::NumericValueOutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        SqlState::DatetimeFieldOverflow => PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
        SqlState::QueryCanceled => PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
        SqlState::FeatureNotSupported => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        SqlState::UndefinedObject => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        SqlState::InvalidName => PgSqlErrorCode::ERRCODE_INVALID_NAME,
        SqlState::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        SqlState::DependentObjectsStillExist => PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
        SqlState::InternalError => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
    }
}

/// Raises `err` as an ERROR on behalf of SQL function `function`. Never returns: the
/// report unwinds Rust frames and becomes a PostgreSQL error at the `#[pg_guard]` boundary.
/// Must not be called while wasm frames are on the stack.
#[cold]
pub fn raise(err: &PlWasmError, function: &str) -> ! {
    raise_about(err, Subject::Function(function))
}

/// Raises `err` as an ERROR about the stored module `module`.
#[cold]
pub fn raise_for_module(err: &PlWasmError, module: &str) -> ! {
    raise_about(err, Subject::Module(module))
}

/// Raises `err` as an ERROR about `subject` (a function or a stored module).
#[cold]
pub fn raise_about(err: &PlWasmError, subject: Subject<'_>) -> ! {
    let report = err.report(subject);
    let mut ereport = ErrorReport::new(error_code(report.sqlstate), report.message, "plwasm");
    if let Some(detail) = report.detail {
        ereport = ereport.set_detail(detail);
    }
    if let Some(hint) = report.hint {
        ereport = ereport.set_hint(hint);
    }
    ereport.report(PgLogLevel::ERROR);
    unreachable!("ERROR reports do not return")
}

/// `Result` helper: the value, or the error raised for `function` (or for `module`).
pub trait OrRaise<T> {
    fn or_raise(self, function: &str) -> T;
    fn or_raise_module(self, module: &str) -> T;
}

impl<T> OrRaise<T> for Result<T, PlWasmError> {
    #[inline]
    fn or_raise(self, function: &str) -> T {
        match self {
            Ok(value) => value,
            Err(err) => raise(&err, function),
        }
    }

    #[inline]
    fn or_raise_module(self, module: &str) -> T {
        match self {
            Ok(value) => value,
            Err(err) => raise_for_module(&err, module),
        }
    }
}
