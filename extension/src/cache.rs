//! Per-backend state: the wasm engine, compiled modules, and one entry per (function, user).
//!
//! - Modules are keyed by the SHA-256 of their binary, so functions with the same module
//!   compile once per backend.
//! - Function entries are keyed by (function oid, current user id), like PostgreSQL's
//!   funccache: a guest's globals and memory never carry over from one role to another.
//! - An entry is stale once its `pg_proc` row changes. A syscache callback on PROCOID marks it
//!   invalid (so `CREATE OR REPLACE` in another session is seen at this session's next
//!   statement); the slow path also compares the row's xmin and ctid.
//! - Call sites hold an `Rc` to their entry, so an entry replaced while a query still uses it
//!   stays alive until that query's call sites are gone.
//!
//! Nothing here is borrowed while wasm runs, and no PostgreSQL function is called while the
//! cache is borrowed, so an invalidation callback can never find the cache busy except inside
//! the short, PostgreSQL-free sections below; it then marks everything stale instead.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::pg_sys::{self, Oid};
use plwasm_core::engine::{effective_wasm_stack, new_engine, EngineSettings};
use plwasm_core::error::PlWasmError;
use plwasm_core::sandbox::Sandbox;
use plwasm_core::types::SqlSignature;
use plwasm_core::wasmtime::{Engine, Module};

use crate::catalog::ProcInfo;
use crate::{gucs, interrupt};

/// Compiled modules no function entry uses that a backend keeps (e.g. compiled by the
/// validator of a function not yet called).
const SPARE_MODULES: usize = 16;

/// A wasm function as loaded in this backend for one user.
pub struct FunctionEntry {
    pub name: String,
    pub user: Oid,
    pub signature: SqlSignature,
    module: Module,
    module_hash: [u8; 32],
    export: String,
    xmin: pg_sys::TransactionId,
    tid: pg_sys::ItemPointerData,
    proc_hash: u32,
    /// The live instance; `None` before the first call and after a trap.
    pub sandbox: RefCell<Option<Sandbox>>,
    valid: Cell<bool>,
}

impl FunctionEntry {
    /// Still the right entry for a call made now by `user`?
    #[inline]
    pub fn is_current(&self, user: Oid) -> bool {
        self.valid.get() && self.user == user
    }

    /// Instantiates the module if there is no live instance.
    pub fn instantiate(&self, backend: &BackendEngine) -> Result<Sandbox, PlWasmError> {
        Sandbox::instantiate(
            &backend.engine,
            &self.module,
            &self.export,
            gucs::call_limits(),
            backend.stack_limit,
            interrupt::interrupt_requested,
        )
    }
}

/// The engine and the wasm stack it was made with. Lives as long as the backend.
pub struct BackendEngine {
    pub engine: Engine,
    pub stack_limit: usize,
}

struct Backend {
    engine: &'static BackendEngine,
    modules: HashMap<[u8; 32], Module>,
    functions: HashMap<(Oid, Oid), Rc<FunctionEntry>>,
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
}

/// Set by an invalidation that arrived while the cache was borrowed.
static PENDING_FULL_INVALIDATION: AtomicBool = AtomicBool::new(false);

/// The backend's engine, made (with the invalidation callback registered) on first use.
pub fn engine() -> &'static BackendEngine {
    if let Some(engine) = BACKEND.with(|b| b.borrow().as_ref().map(|b| b.engine)) {
        return engine;
    }
    let engine = make_engine();
    BACKEND.with(|b| {
        *b.borrow_mut() = Some(Backend { engine, modules: HashMap::new(), functions: HashMap::new() });
    });
    // SAFETY: registers a plain callback once per backend (the cache was empty until now);
    // PostgreSQL calls it with the PROCOID hash of changed rows, or 0 for "everything".
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(on_proc_invalidation),
            pg_sys::Datum::from(0),
        )
    };
    engine
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
    // The engine lives as long as the backend process; leaking it gives call sites a
    // 'static reference without a lookup.
    Box::leak(Box::new(BackendEngine { engine, stack_limit }))
}

/// The entry for `proc` and the current user: cached if its row is unchanged, else built.
pub fn function_entry(proc: &ProcInfo, user: Oid) -> Result<Rc<FunctionEntry>, PlWasmError> {
    let backend_engine = engine();
    if PENDING_FULL_INVALIDATION.swap(false, Ordering::Relaxed) {
        invalidate(0);
    }
    let key = (proc.oid, user);
    let cached = BACKEND.with(|b| {
        let b = b.borrow();
        let b = b.as_ref()?;
        b.functions.get(&key).filter(|e| e.valid.get() && proc.same_version(e.xmin, &e.tid)).cloned()
    });
    if let Some(entry) = cached {
        return Ok(entry);
    }

    let signature = proc.checked_signature()?;
    let prepared = prepare(backend_engine, proc, &signature, None)?;
    let entry = Rc::new(FunctionEntry {
        name: proc.name.clone(),
        user,
        signature,
        module: prepared.module,
        module_hash: prepared.hash,
        export: prepared.export,
        xmin: proc.xmin,
        tid: proc.tid,
        proc_hash: proc.hash,
        sandbox: RefCell::new(None),
        valid: Cell::new(true),
    });
    BACKEND.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            if let Some(old) = b.functions.insert(key, entry.clone()) {
                old.valid.set(false);
            }
        }
    });
    Ok(entry)
}

/// Decodes, compiles (or reuses the compiled module) and checks `proc`'s body. Used by the
/// validator too, so CREATE FUNCTION warms the cache for the first call.
pub fn prepare(
    backend_engine: &BackendEngine,
    proc: &ProcInfo,
    signature: &SqlSignature,
    initial_memory_cap: Option<usize>,
) -> Result<plwasm_core::PreparedFunction, PlWasmError> {
    let cached_module =
        |hash: &[u8; 32]| BACKEND.with(|b| b.borrow().as_ref().and_then(|b| b.modules.get(hash).cloned()));
    let prepared = plwasm_core::prepare_function(
        &backend_engine.engine,
        &proc.source,
        &proc.name,
        signature,
        gucs::max_module_size(),
        initial_memory_cap,
        cached_module,
    )?;
    BACKEND.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.modules.entry(prepared.hash).or_insert_with(|| prepared.module.clone());
        }
    });
    Ok(prepared)
}

/// Marks entries whose `pg_proc` row hashes to `hash` (all, for 0) stale and forgets them.
fn invalidate(hash: u32) {
    BACKEND.with(|b| match b.try_borrow_mut() {
        Ok(mut guard) => {
            if let Some(b) = guard.as_mut() {
                b.functions.retain(|_, entry| {
                    let stale = hash == 0 || entry.proc_hash == hash;
                    if stale {
                        entry.valid.set(false);
                    }
                    !stale
                });
                prune_modules(b);
            }
        }
        Err(_) => PENDING_FULL_INVALIDATION.store(true, Ordering::Relaxed),
    });
}

/// Drops compiled modules no entry uses, beyond a few spares.
fn prune_modules(b: &mut Backend) {
    let unused: Vec<[u8; 32]> =
        b.modules.keys().filter(|hash| !b.functions.values().any(|e| &e.module_hash == *hash)).copied().collect();
    for hash in unused.iter().skip(SPARE_MODULES) {
        b.modules.remove(hash);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_proc_invalidation(_arg: pg_sys::Datum, _cache_id: i32, hash: u32) {
    invalidate(hash);
}
