//! The one place plwasm errors become PostgreSQL errors.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use plwasm_core::error::{PlWasmError, SqlState, Subject};
use plwasm_core::host::{LogLevel, LogQueue, MAX_LOG_MESSAGES};

/// PostgreSQL's code for `state`: the five characters encoded as `MAKE_SQLSTATE` does, so
/// there is no table to keep in step with `SqlState`.
fn error_code(state: SqlState) -> PgSqlErrorCode {
    match state {
        SqlState::Guest(code) => guest_error_code(code),
        other => {
            let code: [u8; 5] = other.code().as_bytes().try_into().unwrap_or(*b"XX000");
            PgSqlErrorCode::from(make_sqlstate(code))
        }
    }
}

/// `MAKE_SQLSTATE` (utils/elog.h): six bits per character, first character lowest.
fn make_sqlstate(code: [u8; 5]) -> i32 {
    code.iter().enumerate().map(|(i, ch)| ((*ch as i32 - '0' as i32) & 0x3F) << (6 * i)).sum()
}

/// A guest's SQLSTATE as pgrx's code: the exact code if PostgreSQL defines it, else the
/// generic code of its class (`22xyz` → `22000`), else 38000.
fn guest_error_code(code: [u8; 5]) -> PgSqlErrorCode {
    let known = |c: [u8; 5]| {
        let mapped = PgSqlErrorCode::from(make_sqlstate(c));
        (mapped != PgSqlErrorCode::ERRCODE_INTERNAL_ERROR).then_some(mapped)
    };
    known(code)
        .or_else(|| known([code[0], code[1], b'0', b'0', b'0']))
        .unwrap_or(PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION)
}

/// Emits what the guest queued with `plwasm.log`, after the call has returned (so PostgreSQL's
/// error machinery never runs with wasm frames on the stack).
pub fn emit_guest_logs(logs: &LogQueue, function: &str) {
    if logs.is_empty() {
        return;
    }
    for (level, message) in &logs.messages {
        let (level, code) = match level {
            LogLevel::Log => (PgLogLevel::LOG, PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION),
            LogLevel::Info => (PgLogLevel::INFO, PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION),
            LogLevel::Notice => (PgLogLevel::NOTICE, PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION),
            LogLevel::Warning => (PgLogLevel::WARNING, PgSqlErrorCode::ERRCODE_WARNING),
        };
        ErrorReport::new(code, message.clone(), "plwasm").report(level);
    }
    if logs.dropped > 0 {
        let message = format!(
            "wasm function \"{function}\" logged {} more messages in one call; plwasm keeps {MAX_LOG_MESSAGES}",
            logs.dropped
        );
        ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "plwasm").report(PgLogLevel::WARNING);
    }
}

/// Raises `err` as an ERROR on behalf of SQL function `function`. Never returns: the
/// report unwinds Rust frames and becomes a PostgreSQL error at the `#[pg_guard]` boundary.
/// Must not be called while wasm frames are on the stack.
#[cold]
pub fn raise(err: &PlWasmError, function: &str) -> ! {
    raise_about(err, Subject::Function(function))
}

/// Raises an internal error (XX000) that concerns no particular function or module.
#[cold]
pub fn raise_internal(message: impl Into<String>) -> ! {
    raise(&PlWasmError::Internal { message: message.into() }, "")
}

/// Raises `err` as an ERROR about the stored module `module`.
#[cold]
pub fn raise_for_module(err: &PlWasmError, module: &str) -> ! {
    raise_about(err, Subject::Module(module))
}

/// Raises `err` as an ERROR about `subject` (a function or a stored module). An interrupted
/// call or compile first lets PostgreSQL raise its own cancel, timeout or terminate error.
#[cold]
pub fn raise_about(err: &PlWasmError, subject: Subject<'_>) -> ! {
    if *err == PlWasmError::Interrupted {
        crate::interrupt::let_postgres_interrupt();
    }
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
