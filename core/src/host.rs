//! The host functions an ABI 1 module may import: all of them, and nothing else.
//!
//! - `plwasm.raise(sqlstate: i32, message: i32, message_len: i32)` ends the call with an
//!   ERROR carrying the guest's message and SQLSTATE (five bytes at `sqlstate`).
//! - `plwasm.log(level: i32, message: i32, message_len: i32)` queues a message at LOG (1),
//!   INFO (2), NOTICE (3) or WARNING (4). The extension emits queued messages after the call
//!   returns, so no PostgreSQL error can ever unwind through wasm frames.
//!
//! Both read the guest's memory only inside its bounds; a bad pointer is an ABI error.

use wasmtime::{Caller, Extern, Linker};

use plwasm_contract::names::{log_level, IMPORT_MODULE, LOG_IMPORT, MEMORY_EXPORT, RAISE_IMPORT};

use crate::error::{guest_sqlstate, PlWasmError, SqlState};
use crate::limits::GuestLimiter;

/// The data every plwasm store carries: its limiter, and what the host imports collect.
pub struct HostState {
    pub(crate) limiter: GuestLimiter,
    /// Messages `plwasm.log` queued during the current call.
    pub(crate) logs: LogQueue,
}

impl HostState {
    pub fn new(limiter: GuestLimiter) -> HostState {
        HostState { limiter, logs: LogQueue::default() }
    }
}

/// The imports plwasm provides, with their wasm types, for validation and documentation.
pub use plwasm_contract::names::IMPORTS;

/// Messages a single call may queue; later ones are counted, not kept.
pub const MAX_LOG_MESSAGES: usize = 100;
/// Bytes of one message (raise or log) that are kept; the rest is cut.
pub const MAX_MESSAGE_BYTES: usize = 8192;

/// PostgreSQL message levels a guest may log at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Log,
    Info,
    Notice,
    Warning,
}

impl LogLevel {
    fn from_guest(level: i32) -> Option<LogLevel> {
        match level {
            log_level::LOG => Some(LogLevel::Log),
            log_level::INFO => Some(LogLevel::Info),
            log_level::NOTICE => Some(LogLevel::Notice),
            log_level::WARNING => Some(LogLevel::Warning),
            _ => None,
        }
    }
}

/// Messages queued by one call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogQueue {
    pub messages: Vec<(LogLevel, String)>,
    /// Messages past [`MAX_LOG_MESSAGES`], dropped.
    pub dropped: usize,
}

impl LogQueue {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.dropped == 0
    }

    fn push(&mut self, level: LogLevel, message: String) {
        if self.messages.len() < MAX_LOG_MESSAGES {
            self.messages.push((level, message));
        } else {
            self.dropped += 1;
        }
    }
}

/// Registers `plwasm.raise` and `plwasm.log`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(IMPORT_MODULE, RAISE_IMPORT, raise)?;
    linker.func_wrap(IMPORT_MODULE, LOG_IMPORT, log)?;
    Ok(())
}

fn raise(mut caller: Caller<'_, HostState>, sqlstate: i32, message: i32, message_len: i32) -> wasmtime::Result<()> {
    let memory = guest_memory(&mut caller)?;
    let data = memory.data(&caller);
    let code = guest_slice(data, sqlstate, 5, "plwasm.raise SQLSTATE")?;
    let text = guest_message(data, message, message_len, "plwasm.raise message")?;
    let (sqlstate, refused) = match guest_sqlstate(code) {
        Ok(state) => (state, None),
        Err(why) => (SqlState::ExternalRoutineException, Some(format!("{} ({why})", String::from_utf8_lossy(code)))),
    };
    Err(wasmtime::Error::new(PlWasmError::GuestRaised { sqlstate, message: text, refused }))
}

fn log(mut caller: Caller<'_, HostState>, level: i32, message: i32, message_len: i32) -> wasmtime::Result<()> {
    let Some(level) = LogLevel::from_guest(level) else {
        return Err(abi_error(format!("plwasm.log was called with level {level}; levels are 1 to 4")));
    };
    let memory = guest_memory(&mut caller)?;
    let text = guest_message(memory.data(&caller), message, message_len, "plwasm.log message")?;
    charge_fuel(&mut caller, text.len())?;
    caller.data_mut().logs.push(level, text);
    Ok(())
}

/// Host calls cost fuel by the bytes they copy (one unit per byte, as wasmtime charges
/// `memory.copy`), so a guest cannot spin in host code for free.
fn charge_fuel(caller: &mut Caller<'_, HostState>, bytes: usize) -> wasmtime::Result<()> {
    let left = caller.get_fuel()?;
    if left < bytes as u64 {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(wasmtime::Trap::OutOfFuel));
    }
    caller.set_fuel(left - bytes as u64)
}

fn abi_error(what: String) -> wasmtime::Error {
    wasmtime::Error::new(PlWasmError::AbiViolation { what })
}

fn guest_memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export(MEMORY_EXPORT) {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(abi_error("The module has no exported memory".into())),
    }
}

fn guest_slice<'a>(data: &'a [u8], ptr: i32, len: i32, what: &str) -> wasmtime::Result<&'a [u8]> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    match start.checked_add(len).filter(|end| *end <= data.len()) {
        Some(end) => Ok(&data[start..end]),
        None => Err(abi_error(format!(
            "The {what} is {len} bytes at address {start}, past the end of the module's {}-byte memory",
            data.len()
        ))),
    }
}

/// The message, cut to [`MAX_MESSAGE_BYTES`] on a character boundary; invalid UTF-8 shows as
/// U+FFFD. Only the bytes kept (and a few for the last character) are ever copied.
fn guest_message(data: &[u8], ptr: i32, len: i32, what: &str) -> wasmtime::Result<String> {
    let bytes = guest_slice(data, ptr, len, what)?;
    let bytes = &bytes[..bytes.len().min(MAX_MESSAGE_BYTES + 4)];
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Ok(text.replace('\0', "\u{FFFD}"))
}
