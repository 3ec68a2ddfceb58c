//! Decoding and compiling modules so that cancel, `statement_timeout` and
//! `pg_terminate_backend()` stop them within a tick, like a long call.
//!
//! Neither the WebAssembly text parser nor Cranelift can look at PostgreSQL's interrupt
//! flags, so a body or module of [`HELPER_FROM`] bytes or more is decoded or compiled on a
//! helper thread (all signals blocked, no PostgreSQL calls) while the backend waits in steps
//! of [`POLL`] and checks its flags. On an interrupt the backend stops waiting and raises
//! PostgreSQL's own error; the abandoned helper finishes on its own and its result is
//! dropped. At most one helper runs per backend, so repeated cancels cannot pile up threads.
//! Smaller inputs take well under a tick and stay on the main thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use plwasm_core::body::Body;
use plwasm_core::error::PlWasmError;
use plwasm_core::limits::owned_copy;
use plwasm_core::wasmtime::{Engine, Module};

use crate::interrupt::{interrupt_requested, spawn_with_signals_blocked};

/// Modules at least this large compile on the helper (about 30 ms of compile work here).
const HELPER_FROM: usize = 64 * 1024;
/// How often the waiting backend looks at its interrupt flags.
const POLL: Duration = Duration::from_millis(10);
/// Cranelift recurses; give the helper a generous stack.
const HELPER_STACK: usize = 16 * 1024 * 1024;

/// Helpers still running (0 or 1), including abandoned ones.
static HELPERS: AtomicUsize = AtomicUsize::new(0);

/// Compiles `wasm`, stoppable by interrupts; `Err(Interrupted)` when PostgreSQL wants the
/// backend to stop.
pub fn compile(engine: &Engine, wasm: &[u8]) -> Result<Module, PlWasmError> {
    plwasm_core::validate::check_compile_bounds(wasm)?;
    if wasm.len() < HELPER_FROM {
        return plwasm_core::validate::compile(engine, wasm);
    }
    let copy = owned_copy(wasm, "a copy of the module to compile")?;
    let engine = engine.clone();
    on_helper(move || plwasm_core::validate::compile(&engine, &copy))
}

/// Decodes a function body (WebAssembly text, hex or base64) into a module binary,
/// stoppable by interrupts.
pub fn parse_body(source: &str, max_module_size: usize) -> Result<Body, PlWasmError> {
    if source.len() < HELPER_FROM {
        return plwasm_core::body::parse_body(source, max_module_size);
    }
    let copy = owned_copy(source.as_bytes(), "a copy of the function body to decode")?;
    on_helper(move || {
        let text = std::str::from_utf8(&copy).map_err(|_| PlWasmError::UnrecognizedBody)?;
        plwasm_core::body::parse_body(text, max_module_size)
    })
}

/// Runs `work` on the helper thread while the backend waits, interruptibly.
fn on_helper<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PlWasmError> + Send + 'static,
) -> Result<T, PlWasmError> {
    while HELPERS.load(Ordering::Acquire) > 0 {
        wait_a_tick()?;
    }
    let (sender, receiver) = mpsc::sync_channel(1);
    HELPERS.fetch_add(1, Ordering::AcqRel);
    let spawned = spawn_with_signals_blocked("plwasm-compile", HELPER_STACK, move || {
        let done = work();
        // The backend may have stopped waiting; then the result is simply dropped.
        let _ = sender.send(done);
        HELPERS.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(err) = spawned {
        HELPERS.fetch_sub(1, Ordering::AcqRel);
        return Err(err);
    }
    loop {
        match receiver.recv_timeout(POLL) {
            Ok(done) => return done,
            Err(mpsc::RecvTimeoutError::Timeout) if interrupt_requested() => return Err(PlWasmError::Interrupted),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PlWasmError::Internal { message: "the compile thread ended without a result".into() })
            }
        }
    }
}

fn wait_a_tick() -> Result<(), PlWasmError> {
    std::thread::sleep(POLL);
    if interrupt_requested() {
        return Err(PlWasmError::Interrupted);
    }
    Ok(())
}
