//! The backend's wasm engine: made lazily on a backend's first use of wasm (never in the
//! postmaster, so wasmtime's trap handlers are installed per backend process), with the
//! stack limit, interrupt check and session memory budget every instance gets. Also who is
//! calling ([`Caller`]), which every layer above keys by.

use std::cell::Cell;

use pgrx::pg_sys::{self, Oid};
use plwasm_core::engine::{effective_wasm_stack, new_engine, EngineSettings};
use plwasm_core::error::PlWasmError;
use plwasm_core::limits::SessionBudget;
use plwasm_core::sandbox::InstanceHost;
use plwasm_core::wasmtime::Engine;

use crate::{gucs, interrupt};

/// Who is calling: the current user and the outer (session or SET ROLE) user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    pub user: Oid,
    pub outer: Oid,
}

impl Caller {
    /// The caller of the running statement. Reads two globals; cannot raise.
    #[inline]
    pub fn now() -> Caller {
        // SAFETY: both only read globals (and assert in debug builds); neither reports.
        unsafe { Caller { user: unguarded::GetUserId(), outer: unguarded::GetOuterUserId() } }
    }
}

/// PostgreSQL's unguarded readers of the user ids, for the per-row path.
mod unguarded {
    use pgrx::pg_sys::Oid;
    extern "C" {
        /// The current user id (miscinit.c); only asserts, never reports.
        pub fn GetUserId() -> Oid;
        /// The outer user id (miscinit.c); only asserts, never reports.
        pub fn GetOuterUserId() -> Oid;
    }
}

/// The engine and what every instance gets from the backend. Lives as long as the backend.
pub struct BackendEngine {
    pub engine: Engine,
    pub host: InstanceHost,
}

impl BackendEngine {
    /// Before any instantiation: the ticker runs (a start function can be cancelled like a
    /// call) and the session budget has the current `plwasm.max_session_memory`.
    pub fn prepare_instantiation(&self) -> Result<(), PlWasmError> {
        self.host.budget.set_cap(gucs::max_session_memory());
        interrupt::ensure_ticking(&self.engine)
    }
}

thread_local! {
    static ENGINE: Cell<Option<&'static BackendEngine>> = const { Cell::new(None) };
    /// What frees session memory when an instance would pass the budget: set by the layer
    /// that owns the instances (`entries`), which this one cannot name.
    static EVICTOR: Cell<fn(usize)> = const { Cell::new(|_| {}) };
}

/// Installs the function that drops idle instances to make room for `bytes` more.
pub fn set_evictor(evict: fn(usize)) {
    EVICTOR.with(|e| e.set(evict));
}

fn evict(bytes: usize) {
    EVICTOR.with(|e| e.get())(bytes)
}

/// The engine, if this backend has made it.
pub fn made_engine() -> Option<&'static BackendEngine> {
    ENGINE.with(|cell| cell.get())
}

/// The backend's engine, made on first use.
pub fn engine() -> &'static BackendEngine {
    ENGINE.with(|cell| match cell.get() {
        Some(engine) => engine,
        None => {
            let engine = make_engine();
            cell.set(Some(engine));
            engine
        }
    })
}

fn make_engine() -> &'static BackendEngine {
    // SAFETY: getrlimit fills a plain struct; max_stack_depth is a GUC int read on the main
    // thread.
    let (rlimit, max_stack_depth_kb) = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        let rlimit = if libc::getrlimit(libc::RLIMIT_STACK, &mut limit) == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            Some(limit.rlim_cur as usize)
        } else {
            None
        };
        (rlimit, pg_sys::max_stack_depth as usize)
    };
    let stack_limit = effective_wasm_stack(gucs::max_stack(), rlimit, max_stack_depth_kb * 1024);
    let engine = match new_engine(&EngineSettings { max_wasm_stack: stack_limit }) {
        Ok(engine) => engine,
        Err(err) => crate::error::raise(&err, "(engine)"),
    };
    let budget = SessionBudget::new(gucs::max_session_memory(), evict);
    let host = InstanceHost { stack_limit, interrupt: interrupt::interrupt_requested, budget };
    // The engine lives as long as the backend process; leaking it gives call sites a
    // 'static reference without a lookup.
    Box::leak(Box::new(BackendEngine { engine, host }))
}
