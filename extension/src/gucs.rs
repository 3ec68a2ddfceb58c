//! plwasm's configuration parameters.
//!
//! The limits (and the code cache size) are `PGC_SUSET` (`plwasm.max_stack`: `PGC_SU_BACKEND`): only a superuser can
//! change them, in `postgresql.conf`, with `ALTER SYSTEM`/`ALTER ROLE ... SET`, or with `SET`,
//! so the role calling a wasm function cannot raise its own budget.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use plwasm_core::limits::CallLimits;

/// `plwasm.fuel_limit`: fuel units per call (about one per wasm instruction).
/// Default 1000000000 (roughly 0.5–3 s of guest work: an aggregate's finalize over a few
/// million rows fits, e.g. LTTB over 2,000,000 points uses 2.8·10⁸); range 0–2147483647; 0
/// means no limit. At the limit the call fails with SQLSTATE 54000 and the instance is
/// discarded. Cancel and `statement_timeout` stop a call sooner whatever its budget.
pub static FUEL_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(1_000_000_000);

/// `plwasm.max_memory`: linear memory per instance, in kB (units accepted: `'64MB'`).
/// Default 64MB; range 64kB (one wasm page) to 4GB (the 32-bit address space). A module whose
/// initial memory is larger is refused at CREATE FUNCTION (42P13) or at instantiation (54000);
/// a `memory.grow` past it fails the call with 54000.
pub static MAX_MEMORY_KB: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024);

/// `plwasm.max_session_memory`: linear memory (and tables) of all wasm instances of one
/// session together, in kB. Default 512MB; range 64kB to 2147483647kB. When an instance would
/// grow past it, idle instances of the session are dropped first (least recently used; they
/// are made again at their next call); if that is not enough, the call fails with SQLSTATE
/// 54000. Instances in use by the running statement, and aggregate instances holding states,
/// are never dropped.
pub static MAX_SESSION_MEMORY_KB: GucSetting<i32> = GucSetting::<i32>::new(512 * 1024);

/// `plwasm.max_module_size`: largest module binary, in kB. Default 16MB; range 1kB to 1GB.
/// The source text may be up to 8 times this (hex and WAT are larger than the binary).
/// Larger modules are refused at CREATE FUNCTION with 42P13.
pub static MAX_MODULE_SIZE_KB: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024);

/// `plwasm.max_stack`: native stack wasm may use, in kB. Default 512kB; range 64kB to 16MB;
/// read once, when a backend makes its wasm engine, and further bounded by what the process
/// stack limit leaves after `max_stack_depth`. Deeper recursion fails with 54001.
pub static MAX_STACK_KB: GucSetting<i32> = GucSetting::<i32>::new(512);

/// `plwasm.code_cache_size`: most disk space, in kB, for compiled modules shared by all
/// backends (`$PGDATA/pgsql_tmp_plwasm/`). Default 256MB; range 0 to 2147483647kB; 0 turns
/// the cache off (nothing is read or written). When a new module would take the directory
/// past the limit, the least recently used files are deleted; a module larger than the limit
/// is compiled in each backend as if there were no cache.
pub static CODE_CACHE_SIZE_KB: GucSetting<i32> = GucSetting::<i32>::new(256 * 1024);

const KB: usize = 1024;

pub fn init() {
    GucRegistry::define_int_guc(
        c"plwasm.fuel_limit",
        c"Fuel units (about one per wasm instruction) each wasm function call may use; 0 means no limit.",
        c"A call that uses its whole budget fails with SQLSTATE 54000. Superuser only.",
        &FUEL_LIMIT,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"plwasm.max_memory",
        c"Largest linear memory of one wasm instance.",
        c"Growing past it fails the call with SQLSTATE 54000. Superuser only.",
        &MAX_MEMORY_KB,
        64,
        4 * 1024 * 1024,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"plwasm.max_session_memory",
        c"Largest linear memory of all wasm instances of one session together.",
        c"Idle instances are dropped first; then growing past it fails the call with SQLSTATE 54000. Superuser only.",
        &MAX_SESSION_MEMORY_KB,
        64,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"plwasm.max_module_size",
        c"Largest wasm module binary accepted by CREATE FUNCTION.",
        c"Larger modules are refused with SQLSTATE 42P13. Superuser only.",
        &MAX_MODULE_SIZE_KB,
        1,
        1024 * 1024,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"plwasm.max_stack",
        c"Native stack wasm code may use, fixed when a session first runs wasm.",
        c"Deeper wasm recursion fails with SQLSTATE 54001. Superuser only, at session start.",
        &MAX_STACK_KB,
        64,
        16 * 1024,
        GucContext::SuBackend,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"plwasm.code_cache_size",
        c"Disk space for compiled wasm modules shared by all sessions; 0 turns the cache off.",
        c"The least recently used modules are deleted beyond it. Superuser only.",
        &CODE_CACHE_SIZE_KB,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
}

/// Reads an int GUC on the per-row path. `GucSetting::get` checks the calling thread through
/// a thread-local on every read, which costs more than the rest of the read.
#[inline]
fn read_int(setting: &'static GucSetting<i32>) -> i32 {
    // SAFETY: the setting's storage is a plain int that PostgreSQL's GUC machinery writes only
    // on the backend's main thread, which is the only thread that runs wasm calls.
    unsafe { std::ptr::read(setting.as_ptr()) }
}

/// The limits for the next call, read from the GUCs.
#[inline]
pub fn call_limits() -> CallLimits {
    CallLimits { fuel: read_int(&FUEL_LIMIT) as u64, max_memory: read_int(&MAX_MEMORY_KB) as usize * KB }
}

/// The session budget in bytes.
pub fn max_session_memory() -> usize {
    MAX_SESSION_MEMORY_KB.get() as usize * KB
}

pub fn max_module_size() -> usize {
    MAX_MODULE_SIZE_KB.get() as usize * KB
}

/// The code cache's limit in bytes; 0 when it is off.
pub fn code_cache_size() -> u64 {
    CODE_CACHE_SIZE_KB.get() as u64 * KB as u64
}

pub fn max_stack() -> usize {
    MAX_STACK_KB.get() as usize * KB
}
