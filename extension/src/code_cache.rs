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
//! - A loaded file is mapped, not copied (see [`load`]): delete files freely, but never
//!   truncate or rewrite one in place while the server runs (a backend that maps it would
//!   then fault on the missing pages, as it would on a relation file cut short).

use std::cell::Cell;
use std::path::Path;

use pgrx::pg_sys;
use pgrx::prelude::*;
use plwasm_core::body::content_hash;
use plwasm_core::code_cache::{self, Decoded, Lookup};
use plwasm_core::wasmtime::{Engine, Module};

use plwasm_core::error::PlWasmError;

use crate::error::raise;
use crate::gucs;

/// Relative to the data directory, which is every backend's working directory.
const DIRECTORY: &str = "pgsql_tmp_plwasm";

/// Compiled modules this backend may load by mapping their cache file. wasmtime keeps the
/// file open as long as the module lives, so each mapping costs a file descriptor that
/// PostgreSQL must know about ([`reserve_descriptor`]); past this many, modules are copied.
const MAX_MAPPED: u32 = 32;

thread_local! {
    /// Descriptors reserved for mapped modules (kept for the backend's life: wasmtime gives
    /// no sign when the last user of a module is gone).
    static MAPPED: Cell<u32> = const { Cell::new(0) };
}

/// [`code_cache::engine_tag`] of this backend's engine (there is one per backend).
fn engine_tag(engine: &Engine) -> u64 {
    thread_local! { static TAG: Cell<Option<u64>> = const { Cell::new(None) }; }
    TAG.with(|tag| match tag.get() {
        Some(known) => known,
        None => {
            let computed = code_cache::engine_tag(engine);
            tag.set(Some(computed));
            computed
        }
    })
}

/// Reserves one file descriptor with PostgreSQL (`AcquireExternalFD`, which closes some of
/// its own cached files to make room), if this backend has mapped fewer than [`MAX_MAPPED`]
/// modules and PostgreSQL's share for other descriptors is not used up.
fn reserve_descriptor() -> bool {
    if MAPPED.with(Cell::get) >= MAX_MAPPED {
        return false;
    }
    // SAFETY: AcquireExternalFD only adjusts fd.c's counters (and may close LRU virtual
    // file descriptors, which it reports at LOG level at most).
    let reserved = unsafe { pg_sys::AcquireExternalFD() };
    if reserved {
        MAPPED.with(|mapped| mapped.set(mapped.get() + 1));
    }
    reserved
}

/// The module whose wasm hashes to `hash`, if a backend compiled it with an engine like
/// `engine` and the cache still holds it.
///
/// The file is mapped, not copied, while this backend has descriptors to spare for it: the
/// pages come from the page cache, only those the module touches are read, and every backend
/// shares them. A file is never written where it is (only created and renamed), so a mapped
/// file does not change under the module; one that was deleted stays mapped.
pub fn load(engine: &Engine, hash: &[u8; 32]) -> Option<Module> {
    if gucs::code_cache_size() == 0 {
        return None;
    }
    let name = code_cache::file_name(hash, engine_tag(engine));
    let file = match code_cache::open(Path::new(DIRECTORY), &name) {
        Ok(Lookup::Found(file)) => file,
        Ok(Lookup::Missing) => return None,
        Ok(Lookup::Damaged) => {
            pgrx::log!("plwasm: deleted a damaged code cache file of module {}", hex_of(hash));
            return None;
        }
        Err(err) => return unreadable(hash, &err),
    };
    let loaded = if reserve_descriptor() {
        // SAFETY: the file holds exactly what Module::serialize wrote, followed by a seal
        // that matched (wasmtime reads the code by the offsets in its header and ignores the
        // 4 bytes after it); the directory is writable only by the server's OS user, whose
        // code never changes a file in place; the name carries the hash of both the wasm and
        // the engine settings; wasmtime refuses code from another version or configuration.
        unsafe { Module::deserialize_open_file(engine, file.into_file()) }
    } else {
        match file.into_code() {
            // SAFETY: as above, for the same bytes read into memory.
            Ok(code) => unsafe { Module::deserialize(engine, &code) },
            Err(err) => return unreadable(hash, &err),
        }
    };
    match loaded {
        Ok(module) => {
            if debug1_wanted() {
                pgrx::debug1!("plwasm: loaded compiled module {} from the code cache", hex_of(hash));
            }
            Some(module)
        }
        Err(err) => {
            pgrx::log!("plwasm: cannot load compiled module {} from the code cache: {err}", hex_of(hash));
            let _ = std::fs::remove_file(Path::new(DIRECTORY).join(&name));
            None
        }
    }
}

/// Logs that the cache file of module `hash` could not be read; nothing is loaded.
fn unreadable(hash: &[u8; 32], err: &std::io::Error) -> Option<Module> {
    pgrx::log!("plwasm: cannot read the code cache file of module {}: {err}", hex_of(hash));
    None
}

/// Whether a DEBUG1 message would go anywhere (the server log or the client), so one that
/// would not is not even formatted.
fn debug1_wanted() -> bool {
    // SAFETY: message_level_is_interesting only compares the level with two GUC values.
    unsafe { pg_sys::message_level_is_interesting(pg_sys::DEBUG1 as i32) }
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
    let name = code_cache::file_name(hash, engine_tag(engine));
    match code_cache::write(Path::new(DIRECTORY), &name, module, max_bytes) {
        Ok(true) if debug1_wanted() => {
            pgrx::debug1!("plwasm: stored compiled module {} in the code cache", hex_of(hash))
        }
        Ok(true) => {}
        Ok(false) => {
            pgrx::debug1!("plwasm: compiled module {} is larger than plwasm.code_cache_size", hex_of(hash))
        }
        Err(err) => pgrx::log!("plwasm: cannot write the code cache file of module {}: {err}", hex_of(hash)),
    }
}

/// What the inline module text with `text_key` decoded to, if a backend recorded it
/// ([`store_decoded`]) and the cache still holds the record.
pub fn load_decoded(text_key: &[u8; 32]) -> Option<Decoded> {
    if gucs::code_cache_size() == 0 {
        return None;
    }
    let found = read_record(text_key)?;
    if debug1_wanted() {
        pgrx::debug1!("plwasm: the code cache records that this module text decodes to module {}", hex_of(&found.hash));
    }
    Some(found)
}

/// The cache's record of the module text with `text_key`, if it holds a sound one.
fn read_record(text_key: &[u8; 32]) -> Option<Decoded> {
    match code_cache::read_decoded(Path::new(DIRECTORY), &code_cache::decoded_name(text_key)) {
        Ok(found) => found,
        Err(err) => {
            pgrx::log!("plwasm: cannot read the code cache record of module text {}: {err}", hex_of(text_key));
            None
        }
    }
}

/// Records what the inline module text with `text_key` decoded to, so later sessions find
/// its compiled module without decoding it: only while the cache holds that module's code
/// (a record of a module the cache cannot give is of no use, and writing it could push
/// other files out), and unless the cache already holds the same record.
pub fn store_decoded(engine: &Engine, text_key: &[u8; 32], decoded: &Decoded) {
    let max_bytes = gucs::code_cache_size();
    if max_bytes == 0
        || !Path::new(DIRECTORY).join(code_cache::file_name(&decoded.hash, engine_tag(engine))).exists()
        || read_record(text_key).as_ref() == Some(decoded)
    {
        return;
    }
    let name = code_cache::decoded_name(text_key);
    if let Err(err) = code_cache::write_decoded(Path::new(DIRECTORY), &name, decoded, max_bytes) {
        pgrx::log!("plwasm: cannot write the code cache record of module text {}: {err}", hex_of(text_key));
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
