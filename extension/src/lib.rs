//! plwasm: `CREATE FUNCTION ... LANGUAGE wasm` for PostgreSQL.
//!
//! One file per concern, after PostgreSQL's own PL/Python:
//! - `handler`: the call handler and its per-row fast path;
//! - `aggregate`: wasm aggregates' support functions and guest states;
//! - `ddl`: the SQL plwasm writes for users: `create_functions` and `create_aggregate`;
//! - `frame`: ABI 1 frame calls (scalar), shared by set-returning functions;
//! - `srf`: set-returning functions (rows into a tuplestore);
//! - `validator`: checks at CREATE FUNCTION;
//! - `cache`: the per-backend engine, compiled modules and function entries;
//! - `code_cache`: compiled modules shared by all backends through files;
//! - `catalog`: reading `pg_proc`;
//! - `marshal`: Datums to ABI 1 frame values and back;
//! - `interrupt`: cancel and timeouts for running wasm;
//! - `store`: reading `plwasm.module_store` (a module as a given role may use it);
//! - `modules`: the module store's SQL API (install, drop, grant, revoke, exports);
//! - `pinned`: running SQL with `search_path` pinned, optionally as another role;
//! - `compile`: decoding and compiling large modules, interruptibly;
//! - `discard`: `DISCARD ALL` drops the session's instances;
//! - `gucs`: configuration parameters;
//! - `error`: plwasm errors to PostgreSQL errors.
//!
//! The pg-free logic (decoding, validation, types, limits, sandbox) is in `plwasm-core`.

// Every unsafe block says why it is sound; every unsafe fn says what its caller must ensure.
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod agg_instances;
mod aggregate;
mod backend;
mod catalog;
mod code_cache;
mod compile;
mod compiled;
mod context;
mod ddl;
mod discard;
mod entries;
mod error;
mod frame;
mod frame_fast;
mod gucs;
mod handler;
mod interrupt;
mod marshal;
mod modules;
mod pinned;
mod srf;
mod state;
mod store;
mod validator;

::pgrx::pg_module_magic!(name, version);

::pgrx::extension_sql_file!("../../sql/plwasm_language.sql", name = "language", bootstrap);
::pgrx::extension_sql_file!("../../sql/plwasm_modules.sql", name = "modules", finalize);

/// Only defines GUCs and the DISCARD hook: with `shared_preload_libraries` this runs in the
/// postmaster, where no wasm engine (and so no trap handler or thread) may be created.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    discard::install();
}
