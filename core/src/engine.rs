//! How plwasm configures wasmtime. One [`wasmtime::Engine`] per backend, made on first use.
//!
//! Choices, and why:
//! - fuel metering on: every call gets a budget (`plwasm.fuel_limit`), so a guest cannot
//!   spin without limit even when no one cancels it;
//! - epoch interruption on: the extension advances the epoch from a ticker thread while wasm
//!   runs, and the deadline callback checks PostgreSQL's interrupt flags, so cancel and
//!   `statement_timeout` stop a guest within a tick;
//! - exactly the proposals in [`wasm_features`], nothing else: no GC, exceptions, function
//!   references, threads, shared memory, multiple memories, memory64, relaxed SIMD or
//!   components (wasmtime is built without its GC runtime at all); one capped 32-bit linear
//!   memory per instance;
//! - no NaN canonicalisation inside the guest: it puts a compare and a blend on the critical
//!   path of every float instruction; the floats the guest hands to PostgreSQL are made
//!   canonical at the boundary instead ([`crate::floats`]), so SQL sees the same bits on every
//!   machine;
//! - no parallel compilation and no on-disk cache: wasmtime must not start threads of its own
//!   inside a backend, nor write files;
//! - a linear memory never moves: each reserves the whole 4 GiB a 32-bit memory can address
//!   (address space, not memory; the guard pages after it keep bounds checks out of the
//!   code), so its base address is fixed for the instance's life. The guest's code can keep
//!   it in a register across loops, and the host can keep it between calls ([`crate::sandbox::MemoryView`]);
//! - no copy-on-write memory images: they hold a memfd per module, file descriptors that
//!   PostgreSQL's fd accounting does not know about.

use wasmtime::{Config, Engine, OperatorCost, OptLevel, WasmFeatures};

use crate::error::{PlWasmError, Result};

/// Engine-wide settings, fixed for the life of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Bytes of native stack wasm may use below the point where it was entered.
    pub max_wasm_stack: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { max_wasm_stack: 512 * 1024 }
    }
}

/// The WebAssembly proposals plwasm accepts (the README lists them). What compilers emit
/// for plain code (Rust, C, Zig, AssemblyScript): the MVP plus mutable globals, sign
/// extension, saturating conversions, multi-value, bulk memory, reference types (funcref
/// tables only: without GC types there is no externref), fixed-width SIMD, extended constant
/// expressions and tail calls.
pub fn wasm_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::SIMD
        | WasmFeatures::FLOATS
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::TAIL_CALL
}

/// Address space reserved for each linear memory: all a 32-bit memory can address, so none
/// ever moves (see the module's notes).
pub const MEMORY_RESERVATION: u64 = 1 << 32;

/// Fuel per operator: wasmtime's defaults (one unit per plain instruction, one per byte that
/// `memory.copy`, `memory.fill` and `memory.init` move), plus a charge per 64 kB page of
/// `memory.grow`, which is otherwise free. So fuel bounds bulk work too, not only the count
/// of instructions.
pub fn operator_cost() -> OperatorCost {
    let mut cost = OperatorCost::new();
    cost.variable.memory_grow_per_page = 64;
    cost
}

/// The wasmtime configuration plwasm runs with.
pub fn engine_config(settings: &EngineSettings) -> Config {
    let mut config = Config::new();
    config
        .wasm_features(WasmFeatures::all(), false)
        .wasm_features(wasm_features(), true)
        .relaxed_simd_deterministic(true)
        .cranelift_nan_canonicalization(false)
        .consume_fuel(true)
        .operator_cost(operator_cost())
        .epoch_interruption(true)
        .max_wasm_stack(settings.max_wasm_stack)
        .memory_init_cow(false)
        .memory_reservation(MEMORY_RESERVATION)
        .memory_may_move(false)
        .cranelift_opt_level(OptLevel::Speed);
    config
}

/// Builds the engine. Called lazily in a backend, never in the postmaster: creating it
/// installs wasmtime's trap handlers, which must sit on top of PostgreSQL's own.
pub fn new_engine(settings: &EngineSettings) -> Result<Engine> {
    Engine::new(&engine_config(settings))
        .map_err(|err| PlWasmError::Internal { message: format!("cannot create wasm engine: {err}") })
}

/// How much wasm stack a backend can afford.
///
/// Wasm runs on the backend's own stack, below the frame that entered it, and PostgreSQL
/// lets its own frames go `max_stack_depth` deep before entering. What remains of the
/// process stack limit, minus a margin for host code and signal handling, bounds the
/// wasm stack; a larger `plwasm.max_stack` would turn deep recursion into a segfault
/// instead of an error.
pub fn effective_wasm_stack(requested: usize, rlimit_stack: Option<usize>, max_stack_depth: usize) -> usize {
    const HOST_MARGIN: usize = 256 * 1024;
    const MIN_STACK: usize = 64 * 1024;
    match rlimit_stack {
        None => requested,
        Some(limit) => {
            let available = limit.saturating_sub(max_stack_depth).saturating_sub(HOST_MARGIN);
            requested.min(available).max(MIN_STACK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_builds_with_plwasm_settings() {
        new_engine(&EngineSettings::default()).unwrap();
    }

    #[test]
    fn wasm_stack_is_clamped_to_what_the_process_stack_leaves() {
        let mb = 1024 * 1024;
        // 8MB process stack, 2MB for PostgreSQL: a 512kB request fits.
        assert_eq!(effective_wasm_stack(512 * 1024, Some(8 * mb), 2 * mb), 512 * 1024);
        // A 16MB request is cut to 8 - 2 - 0.25 MB.
        assert_eq!(effective_wasm_stack(16 * mb, Some(8 * mb), 2 * mb), 6 * mb - 256 * 1024);
        // No process limit: as requested.
        assert_eq!(effective_wasm_stack(16 * mb, None, 2 * mb), 16 * mb);
        // Never below the floor.
        assert_eq!(effective_wasm_stack(512 * 1024, Some(2 * mb), 2 * mb), 64 * 1024);
    }
}
