//! Per-backend state: the wasm engine, compiled modules, and one entry per (function, user).
//!
//! - Modules are keyed by the SHA-256 of their binary, so functions with the same module
//!   compile once per backend.
//! - Function entries are keyed by (function oid, current user, outer user), like PostgreSQL's
//!   funccache plus the outer user: a guest's globals and memory never carry over from one
//!   role to another, also not through a SECURITY DEFINER function, whose current user is its
//!   owner for every caller (the outer user is the caller's session or SET ROLE role).
//! - A function whose body names a stored module runs only while its owner may use the
//!   module (owns it, is a superuser, or was granted it); checked whenever the entry is built.
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
use plwasm_core::aggregate::SupportRole;
use plwasm_core::engine::{effective_wasm_stack, new_engine, EngineSettings};
use plwasm_core::error::PlWasmError;
use plwasm_core::limits::SessionBudget;
use plwasm_core::sandbox::{InstanceHost, Sandbox};
use plwasm_core::types::{SqlSignature, SqlType};
use plwasm_core::wasmtime::{Engine, Module};

use plwasm_core::body::Body;

use crate::catalog::ProcInfo;
use crate::{code_cache, gucs, interrupt, store};

/// Compiled modules no function entry uses that a backend keeps (e.g. compiled by the
/// validator of a function not yet called).
const SPARE_MODULES: usize = 16;

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

/// A wasm function as loaded in this backend for one caller.
pub struct FunctionEntry {
    pub name: String,
    pub caller: Caller,
    pub signature: SqlSignature,
    /// The plwasm ABI of the module: 0 takes the per-row fast path, 1 passes frames.
    pub abi: u32,
    /// For an aggregate support function: the aggregate's export prefix and this function's role.
    pub aggregate: Option<(String, SupportRole)>,
    pub(crate) module: Module,
    pub(crate) module_hash: [u8; 32],
    export: String,
    xmin: pg_sys::TransactionId,
    tid: pg_sys::ItemPointerData,
    proc_hash: u32,
    /// Built from a module in `plwasm.module_store` (dropped when the store changes).
    stored: bool,
    /// The live instance; `None` before the first call, after a trap and after eviction.
    pub sandbox: RefCell<Option<Sandbox>>,
    /// When the instance was last made or called on the guarded path (see [`evict_idle`]).
    pub last_used: Cell<u64>,
    valid: Cell<bool>,
}

impl FunctionEntry {
    /// Still the right entry for a call made now by `caller`?
    #[inline]
    pub fn is_current(&self, caller: Caller) -> bool {
        self.valid.get() && self.caller == caller
    }

    /// Marks the instance as just used, for eviction.
    pub fn touch(&self) {
        self.last_used.set(next_use());
    }

    /// A new instance of the module, made (start function included) under the epoch ticker
    /// and charged to the session's memory budget.
    pub fn instantiate(&self, backend: &BackendEngine) -> Result<Sandbox, PlWasmError> {
        backend.prepare_instantiation()?;
        self.touch();
        Sandbox::instantiate(&backend.engine, &self.module, &self.export, self.abi, gucs::call_limits(), &backend.host)
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

/// A use counter for least-recently-used eviction (the backend is single-threaded).
fn next_use() -> u64 {
    thread_local! { static CLOCK: Cell<u64> = const { Cell::new(0) }; }
    CLOCK.with(|clock| {
        clock.set(clock.get() + 1);
        clock.get()
    })
}

/// Drops idle instances, least recently instantiated or called first, until `bytes` more fit
/// in the session budget. An instance in use (borrowed by a running call) is skipped, and so
/// are aggregate instances, which hold live states. Called by the memory limiter of a growing
/// instance; touches no PostgreSQL state.
fn evict_idle(bytes: usize) {
    let mut idle: Vec<Rc<FunctionEntry>> = BACKEND.with(|b| match b.try_borrow() {
        Ok(guard) => guard.as_ref().map(|b| b.functions.values().cloned().collect()).unwrap_or_default(),
        Err(_) => Vec::new(),
    });
    idle.sort_by_key(|entry| entry.last_used.get());
    let Some(budget) =
        BACKEND.with(|b| b.try_borrow().ok().and_then(|b| b.as_ref().map(|b| b.engine.host.budget.clone())))
    else {
        return;
    };
    for entry in idle {
        if budget.used().saturating_add(bytes) <= budget.cap() {
            break;
        }
        if let Ok(mut slot) = entry.sandbox.try_borrow_mut() {
            slot.take();
        }
    }
}

/// Drops every instance of this session (DISCARD ALL): entries are rebuilt, and modules
/// instantiated afresh, at their next call.
pub fn discard_instances() {
    let entries: Vec<Rc<FunctionEntry>> = BACKEND.with(|b| match b.try_borrow_mut() {
        Ok(mut guard) => guard.as_mut().map(|b| b.functions.drain().map(|(_, e)| e).collect()).unwrap_or_default(),
        Err(_) => Vec::new(),
    });
    for entry in entries {
        entry.valid.set(false);
        if let Ok(mut slot) = entry.sandbox.try_borrow_mut() {
            slot.take();
        }
    }
}

struct Backend {
    engine: &'static BackendEngine,
    modules: HashMap<[u8; 32], Module>,
    functions: HashMap<(Oid, Caller), Rc<FunctionEntry>>,
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
    // SAFETY: registers plain callbacks once per backend (the cache was empty until now);
    // PostgreSQL calls the first with the PROCOID hash of changed rows (0 for "everything"),
    // the second with the oid of a relation whose relcache entry was invalidated.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(on_proc_invalidation),
            pg_sys::Datum::from(0),
        );
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0));
    }
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
    let budget = SessionBudget::new(gucs::max_session_memory(), evict_idle);
    let host = InstanceHost { stack_limit, interrupt: interrupt::interrupt_requested, budget };
    // The engine lives as long as the backend process; leaking it gives call sites a
    // 'static reference without a lookup.
    Box::leak(Box::new(BackendEngine { engine, host }))
}

/// The entry for `proc` and `caller`: cached if its row is unchanged, else built.
pub fn function_entry(proc: &ProcInfo, caller: Caller) -> Result<Rc<FunctionEntry>, PlWasmError> {
    // Makes the backend's engine and cache on the first call.
    engine();
    if PENDING_FULL_INVALIDATION.swap(false, Ordering::Relaxed) {
        invalidate(0);
    }
    let key = (proc.oid, caller);
    let cached = BACKEND.with(|b| {
        let b = b.borrow();
        let b = b.as_ref()?;
        b.functions.get(&key).filter(|e| e.valid.get() && proc.same_version(e.xmin, &e.tid)).cloned()
    });
    if let Some(entry) = cached {
        return Ok(entry);
    }

    let signature = proc.checked_signature()?;
    let Some((prepared, stored)) = prepare(proc, &signature, Lookup::Call)? else {
        return Err(PlWasmError::Internal { message: "module lookup skipped at call time".into() });
    };
    let aggregate = aggregate_role(&signature, &prepared.export);
    let entry = Rc::new(FunctionEntry {
        name: proc.name.clone(),
        caller,
        signature,
        abi: prepared.abi,
        aggregate,
        module: prepared.module,
        module_hash: prepared.hash,
        export: prepared.export,
        xmin: proc.xmin,
        tid: proc.tid,
        proc_hash: proc.hash,
        stored,
        sandbox: RefCell::new(None),
        last_used: Cell::new(0),
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

/// The aggregate role of a function taking or returning `internal` (the validator has checked
/// that its export names one).
fn aggregate_role(signature: &SqlSignature, export: &str) -> Option<(String, SupportRole)> {
    let uses_internal = signature.ret == SqlType::Internal || signature.args.contains(&SqlType::Internal);
    let (prefix, role) = SupportRole::of_export(export).filter(|_| uses_internal)?;
    Some((prefix.to_string(), role))
}

/// Why a body is being prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Building an entry for a call.
    Call,
    /// CREATE FUNCTION: the initial memory is checked too. With `check_function_bodies` off a
    /// stored module that does not exist yet is not an error (a restore creates functions
    /// before it loads the module store); USAGE is then checked at the first call.
    Validate { check_bodies: bool },
}

/// The compiled module for `hash` if this backend has it or the code cache holds it.
fn cached_module(hash: &[u8; 32]) -> Option<Module> {
    if let Some(module) = BACKEND.with(|b| b.borrow().as_ref().and_then(|b| b.modules.get(hash).cloned())) {
        return Some(module);
    }
    let module = code_cache::load(&engine().engine, hash)?;
    remember_module(*hash, &module);
    Some(module)
}

/// Keeps `module` for this backend's later calls; modules no function entry uses are kept
/// only up to [`SPARE_MODULES`], so compiling many modules keeps a bounded number alive.
fn remember_module(hash: [u8; 32], module: &Module) {
    BACKEND.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.modules.entry(hash).or_insert_with(|| module.clone());
            prune_modules(b, Some(&hash));
        }
    });
}

/// Decodes or fetches, compiles (or reuses the compiled module) and checks `proc`'s body.
/// Used by the validator too, so CREATE FUNCTION warms the cache for the first call.
/// Returns the prepared function and whether it came from the module store; `None` when a
/// validation was skipped (see [`Lookup::Validate`]).
pub fn prepare(
    proc: &ProcInfo,
    signature: &SqlSignature,
    lookup: Lookup,
) -> Result<Option<(plwasm_core::PreparedFunction, bool)>, PlWasmError> {
    let initial_memory_cap = match lookup {
        Lookup::Validate { .. } => Some(gucs::call_limits().max_memory),
        Lookup::Call => None,
    };
    let (prepared, stored) = match crate::compile::parse_body(&proc.source, gucs::max_module_size())? {
        Body::Inline(body) => {
            let module = compiled(&body.wasm, body.hash)?;
            let prepared = plwasm_core::prepare_function(
                module,
                body.hash,
                body.export,
                &proc.name,
                signature,
                initial_memory_cap,
            )?;
            (prepared, false)
        }
        Body::Stored { module, export } => {
            // USAGE is the owner's: the function runs the module on its owner's authority,
            // whoever calls it, at CREATE and whenever a session loads it.
            let Some(found) = store::fetch(&module, false, proc.owner)? else {
                if lookup == (Lookup::Validate { check_bodies: false }) {
                    return Ok(None);
                }
                return Err(PlWasmError::ModuleNotFound { module });
            };
            if !found.usable {
                return Err(PlWasmError::ModulePermissionDenied { module });
            }
            // Fetch the bytes only when no backend has compiled that content yet.
            let (hash, compiled_module) = match cached_module(&found.hash) {
                Some(compiled_module) => (found.hash, compiled_module),
                None => {
                    let with_bytes =
                        store::fetch(&module, true, proc.owner)?.ok_or(PlWasmError::ModuleNotFound { module })?;
                    (with_bytes.hash, compiled(&with_bytes.wasm.unwrap_or_default(), with_bytes.hash)?)
                }
            };
            let prepared = plwasm_core::prepare_function(
                compiled_module,
                hash,
                export,
                &proc.name,
                signature,
                initial_memory_cap,
            )?;
            (prepared, true)
        }
    };
    Ok(Some((prepared, stored)))
}

/// Compiles a module about to be stored (keeping it for later calls) and checks it; returns
/// its ABI.
pub fn check_stored_module(wasm: &[u8], hash: [u8; 32]) -> Result<u32, PlWasmError> {
    let module = compiled(wasm, hash)?;
    plwasm_core::validate::check_stored_module(&module)
}

/// The exported functions of `wasm` with their signatures, or `None` if it is larger than
/// `plwasm.max_module_size` or not a module plwasm accepts. Reads the binary without
/// compiling it, so it keeps nothing in this backend or in the code cache.
pub fn describe_exports(wasm: &[u8]) -> Option<Vec<String>> {
    plwasm_core::body::check_stored_binary(wasm, gucs::max_module_size()).ok()?;
    plwasm_core::introspect::export_signatures(wasm).ok()
}

/// The compiled module for `hash`: this backend's, the code cache's, or compiled from `wasm`
/// now (and offered to the code cache).
fn compiled(wasm: &[u8], hash: [u8; 32]) -> Result<Module, PlWasmError> {
    if let Some(module) = cached_module(&hash) {
        return Ok(module);
    }
    let engine = &engine().engine;
    let module = crate::compile::compile(engine, wasm)?;
    remember_module(hash, &module);
    code_cache::store(engine, wasm, &module);
    Ok(module)
}

/// Marks entries whose `pg_proc` row hashes to `hash` (all, for 0) stale and forgets them.
fn invalidate(hash: u32) {
    invalidate_where(|entry| hash == 0 || entry.proc_hash == hash);
}

/// Marks entries for which `stale` holds as stale and forgets them.
fn invalidate_where(stale: impl Fn(&FunctionEntry) -> bool) {
    BACKEND.with(|b| match b.try_borrow_mut() {
        Ok(mut guard) => {
            if let Some(b) = guard.as_mut() {
                b.functions.retain(|_, entry| {
                    let stale = stale(entry);
                    if stale {
                        entry.valid.set(false);
                    }
                    !stale
                });
                prune_modules(b, None);
            }
        }
        Err(_) => PENDING_FULL_INVALIDATION.store(true, Ordering::Relaxed),
    });
}

/// Drops compiled modules no entry uses, beyond a few spares (never `keep`, just added).
fn prune_modules(b: &mut Backend, keep: Option<&[u8; 32]>) {
    let unused: Vec<[u8; 32]> = b
        .modules
        .keys()
        .filter(|hash| Some(*hash) != keep && !b.functions.values().any(|e| &e.module_hash == *hash))
        .copied()
        .collect();
    let spares = SPARE_MODULES.saturating_sub(usize::from(keep.is_some()));
    for hash in unused.iter().skip(spares) {
        b.modules.remove(hash);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if store::is_module_store(relid) {
        invalidate_where(|entry| entry.stored);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_proc_invalidation(_arg: pg_sys::Datum, _cache_id: i32, hash: u32) {
    invalidate(hash);
}

/// `plwasm.session_memory()`: bytes of linear memory (and tables) the wasm instances of this
/// session hold now; at most `plwasm.max_session_memory`.
#[pgrx::pg_extern(volatile, parallel_safe)]
fn session_memory() -> i64 {
    BACKEND.with(|b| b.borrow().as_ref().map(|b| b.engine.host.budget.used() as i64).unwrap_or(0))
}
