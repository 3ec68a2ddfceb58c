//! Compiled modules of this backend, keyed by the SHA-256 of their binary, so functions with
//! the same module compile once per backend (and once per server through the code cache).
//! A function entry holds a [`ModulePin`] on its module; modules no entry pins are kept only
//! up to [`SPARE_MODULES`].

use std::cell::RefCell;
use std::collections::HashMap;

use plwasm_core::error::PlWasmError;
use plwasm_core::wasmtime::Module;

use crate::backend::engine;
use crate::{code_cache, gucs};

/// Compiled modules no function entry uses that a backend keeps (e.g. compiled by the
/// validator of a function not yet called).
const SPARE_MODULES: usize = 16;

struct Compiled {
    module: Module,
    /// Live [`ModulePin`]s.
    pins: usize,
}

thread_local! {
    static MODULES: RefCell<HashMap<[u8; 32], Compiled>> = RefCell::new(HashMap::new());
}

/// Keeps a module in this backend's table while a function entry uses it.
pub struct ModulePin {
    hash: [u8; 32],
}

impl ModulePin {
    /// Pins `module` (adding it to the table if it was pruned meanwhile).
    pub fn new(hash: [u8; 32], module: &Module) -> ModulePin {
        MODULES.with(|m| {
            let mut modules = m.borrow_mut();
            modules.entry(hash).or_insert_with(|| Compiled { module: module.clone(), pins: 0 }).pins += 1;
        });
        ModulePin { hash }
    }
}

impl ModulePin {
    /// The SHA-256 of the pinned module's binary.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
}

impl Drop for ModulePin {
    fn drop(&mut self) {
        // An entry may be dropped inside an invalidation callback (never block on the table)
        // or while the backend's thread-locals are torn down at exit (the table may be gone:
        // `try_with`, as a panic there would abort the process).
        let _ = MODULES.try_with(|m| {
            if let Ok(mut modules) = m.try_borrow_mut() {
                if let Some(compiled) = modules.get_mut(&self.hash) {
                    compiled.pins = compiled.pins.saturating_sub(1);
                }
                prune(&mut modules, None);
            }
        });
    }
}

/// The compiled module for `hash` if this backend has it or the code cache holds it.
pub fn cached_module(hash: &[u8; 32]) -> Option<Module> {
    if let Some(module) = MODULES.with(|m| m.borrow().get(hash).map(|c| c.module.clone())) {
        return Some(module);
    }
    let module = code_cache::load(&engine().engine, hash)?;
    remember_module(*hash, &module);
    Some(module)
}

/// Keeps `module` for this backend's later calls, within the spares bound.
fn remember_module(hash: [u8; 32], module: &Module) {
    MODULES.with(|m| {
        let mut modules = m.borrow_mut();
        modules.entry(hash).or_insert_with(|| Compiled { module: module.clone(), pins: 0 });
        prune(&mut modules, Some(&hash));
    });
}

/// The compiled module for `hash`: this backend's, the code cache's, or compiled from `wasm`
/// now (and offered to the code cache).
pub fn compiled(wasm: &[u8], hash: [u8; 32]) -> Result<Module, PlWasmError> {
    if let Some(module) = cached_module(&hash) {
        return Ok(module);
    }
    let engine = &engine().engine;
    let module = crate::compile::compile(engine, wasm)?;
    remember_module(hash, &module);
    code_cache::store(engine, wasm, &module);
    Ok(module)
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

/// Drops modules no entry pins beyond a few spares (never `keep`, just added).
fn prune(modules: &mut HashMap<[u8; 32], Compiled>, keep: Option<&[u8; 32]>) {
    let unused: Vec<[u8; 32]> =
        modules.iter().filter(|(hash, c)| Some(*hash) != keep && c.pins == 0).map(|(hash, _)| *hash).collect();
    let spares = SPARE_MODULES.saturating_sub(usize::from(keep.is_some()));
    for hash in unused.iter().skip(spares) {
        modules.remove(hash);
    }
}
