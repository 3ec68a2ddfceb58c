//! plwasm's core: everything about running SQL functions as WebAssembly that does not need
//! a PostgreSQL server. The extension crate (`extension/`) adds the catalog, the per-backend
//! cache, GUCs, interrupts and error reporting on top; this crate has no `unsafe`.
//!
//! - [`body`]: a function body (WAT, hex, base64, `@export`) into a wasm binary;
//! - [`types`]: SQL types, their wasm types and value conversions;
//! - [`floats`]: NaNs made canonical where the guest hands floats to PostgreSQL;
//! - [`abi`]: ABI 1 frames: how variable-length values and NULLs cross, checked;
//! - [`aggregate`]: aggregates whose state lives in the guest, fed rows in batches;
//! - [`declared`]: SQL signatures a module declares for `plwasm.create_functions`;
//! - [`host`]: the host functions ABI 1 modules may import (`raise`, `log`);
//! - [`introspect`]: a module's exports, read without compiling it;
//! - [`validate`]: what CREATE FUNCTION checks;
//! - [`engine`]: the wasmtime configuration;
//! - [`code_cache`]: compiled modules on disk, shared by a server's backends;
//! - [`limits`]: fuel and memory caps;
//! - [`sandbox`]: an instance with its limits, and how traps become errors;
//! - [`error`]: the one error type and its SQLSTATEs.

#![forbid(unsafe_code)]

pub mod abi;
pub mod aggregate;
pub mod body;
pub mod code_cache;
pub mod declared;
pub mod engine;
pub mod error;
pub mod floats;
pub mod host;
pub mod introspect;
pub mod limits;
pub mod sandbox;
pub mod types;
pub mod validate;

pub use wasmtime;

use body::DecodedBody;
use error::Result;
use types::SqlSignature;
use wasmtime::{Engine, Module};

/// A function body checked against its SQL signature and compiled.
pub struct PreparedFunction {
    pub module: Module,
    pub export: String,
    pub hash: [u8; 32],
    /// The plwasm ABI the module targets.
    pub abi: u32,
}

/// Checks compiled `module` (whose wasm hashes to `hash`) for the SQL function `sql_name`,
/// calling `export` (default: the function's name).
///
/// `initial_memory_cap` refuses modules whose initial memory exceeds it (CREATE FUNCTION);
/// `None` leaves that to instantiation, where a cap lowered since CREATE is a limit error
/// (54000), not a bad definition.
pub fn prepare_function(
    module: Module,
    hash: [u8; 32],
    export: Option<String>,
    sql_name: &str,
    signature: &SqlSignature,
    initial_memory_cap: Option<usize>,
) -> Result<PreparedFunction> {
    let export = export.unwrap_or_else(|| sql_name.to_string());
    let abi = validate::check_module(&module, &export, sql_name, signature, initial_memory_cap)?;
    Ok(PreparedFunction { module, export, hash, abi })
}

/// [`prepare_function`] for an inline body (WAT, hex or base64, with `@export`), compiled.
pub fn prepare_inline_function(
    engine: &Engine,
    source: &str,
    sql_name: &str,
    signature: &SqlSignature,
    max_module_size: usize,
    initial_memory_cap: Option<usize>,
) -> Result<PreparedFunction> {
    let DecodedBody { wasm, hash, export, .. } = body::decode_body(source, max_module_size)?;
    let module = validate::compile(engine, &wasm)?;
    prepare_function(module, hash, export, sql_name, signature, initial_memory_cap)
}
