//! Function entries: one per (function, caller), built from the catalog, the module store and
//! the compiled modules, and forgotten when any of them changes.
//!
//! - Entries are keyed by (function oid, current user, outer user), like PostgreSQL's
//!   funccache plus the outer user: a guest's globals and memory never carry over from one
//!   role to another, also not through a SECURITY DEFINER function, whose current user is its
//!   owner for every caller (the outer user is the caller's session or SET ROLE role).
//! - An entry decides once how its function is called ([`FunctionKind`]).
//! - A function whose body names a stored module runs only while its owner may use the
//!   module (owns it, is a superuser, or was granted it); checked whenever the entry is built.
//! - An entry is stale once its `pg_proc` row changes. A syscache callback on PROCOID marks it
//!   invalid (so `CREATE OR REPLACE` in another session is seen at this session's next
//!   statement); the slow path also compares the row's xmin and ctid. A relcache callback on
//!   the module store drops every entry built from a stored module.
//! - Call sites hold an `Rc` to their entry, so an entry replaced while a query still uses it
//!   stays alive until that query's call sites are gone.
//!
//! Nothing here is borrowed while wasm runs, and no PostgreSQL function is called while the
//! table is borrowed, so an invalidation callback can never find it busy except inside the
//! short, PostgreSQL-free sections below; it then marks everything stale instead.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::pg_sys::{self, Oid};
use plwasm_core::aggregate::SupportRole;
use plwasm_core::body::Body;
use plwasm_core::code_cache::Decoded;
use plwasm_core::error::PlWasmError;
use plwasm_core::sandbox::Sandbox;
use plwasm_core::types::{SqlSignature, SqlType};
use plwasm_core::wasmtime::Module;

use crate::backend::{engine, set_evictor, BackendEngine, Caller};
use crate::catalog::ProcInfo;
use crate::compiled::{self, ModulePin};
use crate::{code_cache, gucs, store};

/// How a wasm function is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionKind {
    /// ABI 0: plain wasm values, one raw call; the handler's fast path.
    Numeric,
    /// ABI 1, one value per call through a frame.
    Frame,
    /// ABI 1, `RETURNS SETOF` / `RETURNS TABLE`: rows of the signature's `set_of` columns.
    SetReturning,
    /// A support function of a wasm aggregate (takes or returns `plwasm.state`): the aggregate's
    /// export prefix and this function's role.
    AggregateSupport { prefix: String, role: SupportRole },
}

impl FunctionKind {
    /// The kind of a function with `signature` whose module targets `abi` and which calls
    /// `export` (the validator has checked that they fit together).
    fn of(signature: &SqlSignature, abi: u32, export: &str) -> FunctionKind {
        let uses_state = signature.ret == SqlType::State || signature.args.contains(&SqlType::State);
        if let Some((prefix, role)) = SupportRole::of_export(export).filter(|_| uses_state) {
            return FunctionKind::AggregateSupport { prefix: prefix.to_string(), role };
        }
        match (&signature.set_of, abi) {
            (Some(_), _) => FunctionKind::SetReturning,
            (None, 0) => FunctionKind::Numeric,
            (None, _) => FunctionKind::Frame,
        }
    }

    /// The plwasm ABI of the module.
    pub fn abi(&self) -> u32 {
        match self {
            FunctionKind::Numeric => 0,
            _ => 1,
        }
    }
}

/// A wasm function as loaded in this backend for one caller.
pub struct FunctionEntry {
    pub name: String,
    pub caller: Caller,
    pub signature: SqlSignature,
    /// How it is called, decided once here; the handler dispatches on it.
    pub kind: FunctionKind,
    module: Module,
    /// Keeps the compiled module in this backend's table while the entry lives.
    pin: ModulePin,
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
    /// For an aggregate support function: the aggregate's export prefix and this role.
    pub fn aggregate(&self) -> Option<(&str, SupportRole)> {
        match &self.kind {
            FunctionKind::AggregateSupport { prefix, role } => Some((prefix, *role)),
            _ => None,
        }
    }

    /// The SHA-256 of the module's binary.
    pub fn module_hash(&self) -> [u8; 32] {
        self.pin.hash()
    }

    /// The compiled module (aggregates instantiate it themselves).
    pub fn module(&self) -> &Module {
        &self.module
    }

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
        let abi = self.kind.abi();
        Sandbox::instantiate(&backend.engine, &self.module, &self.export, abi, gucs::call_limits(), &backend.host)
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
    let mut idle: Vec<Rc<FunctionEntry>> = FUNCTIONS.with(|f| match f.try_borrow() {
        Ok(functions) => functions.values().cloned().collect(),
        Err(_) => Vec::new(),
    });
    idle.sort_by_key(|entry| entry.last_used.get());
    let budget = &engine().host.budget;
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
    let entries: Vec<Rc<FunctionEntry>> = FUNCTIONS.with(|f| match f.try_borrow_mut() {
        Ok(mut functions) => functions.drain().map(|(_, e)| e).collect(),
        Err(_) => Vec::new(),
    });
    for entry in entries {
        entry.valid.set(false);
        if let Ok(mut slot) = entry.sandbox.try_borrow_mut() {
            slot.take();
        }
    }
}

thread_local! {
    static FUNCTIONS: RefCell<HashMap<(Oid, Caller), Rc<FunctionEntry>>> = RefCell::new(HashMap::new());
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Set by an invalidation that arrived while the table was borrowed.
static PENDING_FULL_INVALIDATION: AtomicBool = AtomicBool::new(false);

/// On the first entry of a backend: the invalidation callbacks, and eviction of idle
/// instances when the session budget is reached.
fn register_callbacks() {
    if REGISTERED.with(|r| r.replace(true)) {
        return;
    }
    set_evictor(evict_idle);
    // SAFETY: registers plain callbacks once per backend (there were no entries until now);
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
}

/// The entry for `proc` and `caller`: cached if its row is unchanged, else built.
pub fn function_entry(proc: &ProcInfo, caller: Caller) -> Result<Rc<FunctionEntry>, PlWasmError> {
    register_callbacks();
    if PENDING_FULL_INVALIDATION.swap(false, Ordering::Relaxed) {
        invalidate(0);
    }
    let key = (proc.oid, caller);
    let cached = FUNCTIONS
        .with(|f| f.borrow().get(&key).filter(|e| e.valid.get() && proc.same_version(e.xmin, &e.tid)).cloned());
    if let Some(entry) = cached {
        return Ok(entry);
    }

    let signature = proc.checked_signature()?;
    let Some((prepared, stored)) = prepare(proc, &signature, Lookup::Call)? else {
        return Err(PlWasmError::Internal { message: "module lookup skipped at call time".into() });
    };
    let kind = FunctionKind::of(&signature, prepared.abi, &prepared.export);
    let entry = Rc::new(FunctionEntry {
        name: proc.name.clone(),
        caller,
        signature,
        kind,
        pin: ModulePin::new(prepared.hash, &prepared.module),
        module: prepared.module,
        export: prepared.export,
        xmin: proc.xmin,
        tid: proc.tid,
        proc_hash: proc.hash,
        stored,
        sandbox: RefCell::new(None),
        last_used: Cell::new(0),
        valid: Cell::new(true),
    });
    let replaced = FUNCTIONS.with(|f| f.borrow_mut().insert(key, entry.clone()));
    if let Some(old) = replaced {
        old.valid.set(false);
    }
    Ok(entry)
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
    if lookup == Lookup::Call {
        if let Some(prepared) = prepare_recorded_inline(proc, signature)? {
            return Ok(Some((prepared, false)));
        }
    }
    let (prepared, stored) = match crate::compile::parse_body(&proc.source, gucs::max_module_size())? {
        Body::Inline(body) => {
            let module = compiled::compiled(&body.wasm, body.hash)?;
            let decoded = Decoded { hash: body.hash, size: body.wasm.len() as u64 };
            code_cache::store_decoded(&engine().engine, &body.text_key, &decoded);
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
            let Some(found) = store::lookup(&module, proc.owner)? else {
                if lookup == (Lookup::Validate { check_bodies: false }) {
                    return Ok(None);
                }
                return Err(PlWasmError::ModuleNotFound { module });
            };
            if !found.usable {
                return Err(PlWasmError::ModulePermissionDenied { module });
            }
            // Fetch the bytes only when no backend has compiled that content yet.
            let (hash, compiled_module) = match compiled::cached_module(&found.hash) {
                Some(compiled_module) => (found.hash, compiled_module),
                None => {
                    let with_bytes =
                        store::fetch(&module, true, proc.owner)?.ok_or(PlWasmError::ModuleNotFound { module })?;
                    (with_bytes.hash, compiled::compiled(&with_bytes.wasm.unwrap_or_default(), with_bytes.hash)?)
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

/// An inline body's function prepared from what the code cache recorded its module text
/// decoded to and the compiled module of that binary, without decoding the body (a new
/// session's first call of a WAT function would spend most of its time parsing the text).
/// `None` when either is missing, or the binary is over `plwasm.max_module_size`: the caller
/// then decodes the body and reports whatever is wrong with it.
fn prepare_recorded_inline(
    proc: &ProcInfo,
    signature: &SqlSignature,
) -> Result<Option<plwasm_core::PreparedFunction>, PlWasmError> {
    let max_module_size = gucs::max_module_size();
    let Some((export, text_key)) = plwasm_core::body::inline_text_key(&proc.source, max_module_size) else {
        return Ok(None);
    };
    let Some(decoded) = code_cache::load_decoded(&text_key).filter(|d| d.size <= max_module_size as u64) else {
        return Ok(None);
    };
    let Some(module) = compiled::cached_module(&decoded.hash) else { return Ok(None) };
    plwasm_core::prepare_function(module, decoded.hash, export, &proc.name, signature, None).map(Some)
}

/// Marks entries whose `pg_proc` row hashes to `hash` (all, for 0) stale and forgets them.
fn invalidate(hash: u32) {
    invalidate_where(|entry| hash == 0 || entry.proc_hash == hash);
}

/// Marks entries for which `stale` holds as stale and forgets them.
fn invalidate_where(stale: impl Fn(&FunctionEntry) -> bool) {
    // Entries dropped here unpin their modules after the table's borrow ends.
    let dropped: Vec<Rc<FunctionEntry>> = FUNCTIONS.with(|f| match f.try_borrow_mut() {
        Ok(mut functions) => functions.extract_if(|_, entry| stale(entry)).map(|(_, entry)| entry).collect(),
        Err(_) => {
            PENDING_FULL_INVALIDATION.store(true, Ordering::Relaxed);
            Vec::new()
        }
    });
    for entry in dropped {
        entry.valid.set(false);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if store::is_module_store(relid) {
        store::forget_lookups();
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
    crate::backend::made_engine().map(|b| b.host.budget.used() as i64).unwrap_or(0)
}
