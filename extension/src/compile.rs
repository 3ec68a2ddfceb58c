//! Compiling modules so that cancel, `statement_timeout` and `pg_terminate_backend()` stop a
//! long compile within a tick, like a long call.
//!
//! Cranelift cannot look at PostgreSQL's interrupt flags, so a module of [`HELPER_FROM`]
//! bytes or more compiles on a helper thread (all signals blocked, no PostgreSQL calls)
//! while the backend waits in steps of [`POLL`] and checks its flags. On an interrupt the
//! backend stops waiting and raises PostgreSQL's own error; the abandoned helper finishes on
//! its own and its result is dropped. At most one helper runs per backend, so repeated
//! cancels cannot pile up compile threads. Smaller modules compile in well under a tick and
//! stay on the main thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use plwasm_core::error::PlWasmError;
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
    while HELPERS.load(Ordering::Acquire) > 0 {
        wait_a_tick()?;
    }
    let mut copy = Vec::new();
    copy.try_reserve_exact(wasm.len())
        .map_err(|_| PlWasmError::OutOfMemory { bytes: wasm.len() as u64, what: "a copy of the module to compile" })?;
    copy.extend_from_slice(wasm);
    let engine = engine.clone();
    let (sender, receiver) = mpsc::sync_channel(1);
    HELPERS.fetch_add(1, Ordering::AcqRel);
    let spawned = spawn_with_signals_blocked("plwasm-compile", HELPER_STACK, move || {
        let compiled = plwasm_core::validate::compile(&engine, &copy);
        // The backend may have stopped waiting; then the result is simply dropped.
        let _ = sender.send(compiled);
        HELPERS.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(err) = spawned {
        HELPERS.fetch_sub(1, Ordering::AcqRel);
        return Err(err);
    }
    loop {
        match receiver.recv_timeout(POLL) {
            Ok(compiled) => return compiled,
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
