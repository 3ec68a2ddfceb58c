//! Compiled modules shared by all backends through files in `$PGDATA/pgsql_tmp_plwasm/`
//! (format, naming and pruning: `plwasm_core::code_cache`). A new session or a parallel
//! worker that meets a module some backend already compiled loads its machine code instead
//! of compiling it again.
//!
//! - Nothing here fails a query: a file that cannot be read, written or loaded only costs a
//!   compilation (and a LOG line when something is wrong with the directory).
//! - The directory name starts with `pgsql_tmp`, so `pg_basebackup` and `pg_rewind` skip it
//!   like PostgreSQL's own temporary files; it may be deleted at any time.
//! - The files are executable code. They are trusted as much as the rest of the data
//!   directory, which only the server's OS user can write.

use std::path::Path;

use pgrx::prelude::*;
use plwasm_core::body::content_hash;
use plwasm_core::code_cache::{self, Lookup};
use plwasm_core::wasmtime::{Engine, Module};

use plwasm_core::error::PlWasmError;

use crate::error::raise;
use crate::gucs;

/// Relative to the data directory, which is every backend's working directory.
const DIRECTORY: &str = "pgsql_tmp_plwasm";

/// The module whose wasm hashes to `hash`, if a backend compiled it with an engine like
/// `engine` and the cache still holds it.
pub fn load(engine: &Engine, hash: &[u8; 32]) -> Option<Module> {
    if gucs::code_cache_size() == 0 {
        return None;
    }
    let name = code_cache::file_name(hash, engine);
    match code_cache::read(Path::new(DIRECTORY), &name) {
        Ok(Lookup::Found(code)) => {
            // SAFETY: `code` is exactly what Module::serialize wrote for this file: its seal
            // (a SHA-256 of the code) matched, the directory is writable only by the server's
            // OS user, and the name carries the hash of both the wasm and the engine settings.
            // wasmtime itself refuses code from another version or configuration.
            match unsafe { Module::deserialize(engine, &code) } {
                Ok(module) => {
                    pgrx::debug1!("plwasm: loaded compiled module {} from the code cache", hex_of(hash));
                    Some(module)
                }
                Err(err) => {
                    pgrx::log!("plwasm: cannot load compiled module {} from the code cache: {err}", hex_of(hash));
                    let _ = std::fs::remove_file(Path::new(DIRECTORY).join(&name));
                    None
                }
            }
        }
        Ok(Lookup::Missing) => None,
        Ok(Lookup::Damaged) => {
            pgrx::log!("plwasm: deleted a damaged code cache file of module {}", hex_of(hash));
            None
        }
        Err(err) => {
            pgrx::log!("plwasm: cannot read the code cache file of module {}: {err}", hex_of(hash));
            None
        }
    }
}

/// Offers `module`, which this backend just compiled from `wasm`, to the other backends.
/// The file is named after the hash of `wasm` itself, not after a hash stored beside it, so
/// a file's name always matches its code.
pub fn store(engine: &Engine, wasm: &[u8], module: &Module) {
    let max_bytes = gucs::code_cache_size();
    if max_bytes == 0 {
        return;
    }
    let hash = &content_hash(wasm);
    let name = code_cache::file_name(hash, engine);
    match code_cache::write(Path::new(DIRECTORY), &name, module, max_bytes) {
        Ok(true) => pgrx::debug1!("plwasm: stored compiled module {} in the code cache", hex_of(hash)),
        Ok(false) => {
            pgrx::debug1!("plwasm: compiled module {} is larger than plwasm.code_cache_size", hex_of(hash))
        }
        Err(err) => pgrx::log!("plwasm: cannot write the code cache file of module {}: {err}", hex_of(hash)),
    }
}

/// `plwasm.clear_code_cache()`: deletes every file of the code cache and returns how many.
/// Sessions keep the modules they have loaded; others compile them again. Superuser only.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_code_cache() -> i64 {
    // SAFETY: superuser() only reads the current user's catalog row.
    if !unsafe { pgrx::pg_sys::superuser() } {
        raise(&PlWasmError::SuperuserRequired { to: "clear the plwasm code cache".into() }, "clear_code_cache");
    }
    match code_cache::clear(Path::new(DIRECTORY)) {
        Ok(deleted) => deleted as i64,
        Err(err) => raise(
            &PlWasmError::CodeCacheIo { message: format!("cannot clear the plwasm code cache in {DIRECTORY}: {err}") },
            "clear_code_cache",
        ),
    }
}

/// A module hash as `plwasm.modules` shows it.
fn hex_of(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}
