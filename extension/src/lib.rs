//! plwasm: `CREATE FUNCTION ... LANGUAGE wasm` for PostgreSQL.
//!
//! One file per concern, after PostgreSQL's own PL/Python:
//! - `handler`: the call handler and its per-row fast path;
//! - `aggregate`: wasm aggregates' support functions and guest states;
//! - `define`: `plwasm.create_aggregate`, the checked way to make a wasm aggregate;
//! - `srf`: set-returning functions (rows into a tuplestore);
//! - `validator`: checks at CREATE FUNCTION;
//! - `cache`: the per-backend engine, compiled modules and function entries;
//! - `code_cache`: compiled modules shared by all backends through files;
//! - `catalog`: reading `pg_proc`;
//! - `marshal`: Datums to ABI 1 frame values and back;
//! - `interrupt`: cancel and timeouts for running wasm;
//! - `modules`: modules stored in `plwasm.module_store`, shared by many functions;
//! - `gucs`: configuration parameters;
//! - `error`: plwasm errors to PostgreSQL errors.
//!
//! The pg-free logic (decoding, validation, types, limits, sandbox) is in `plwasm-core`.

mod aggregate;
mod cache;
mod catalog;
mod code_cache;
mod compile;
mod define;
mod discard;
mod error;
mod gucs;
mod handler;
mod interrupt;
mod marshal;
mod modules;
mod pinned;
mod srf;
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
