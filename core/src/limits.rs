//! Per-call limits and the resource limiter every store carries.

use wasmtime::ResourceLimiter;

use crate::error::PlWasmError;

/// The largest table a guest may have, in elements (a pointer or two each). Tables hold
/// function references; real modules need a few thousand at most.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Limits read from the GUCs before each call; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Fuel units per call; 0 means no limit.
    pub fuel: u64,
    /// Bytes of linear memory an instance may have.
    pub max_memory: usize,
}

impl CallLimits {
    /// The fuel to put in the store: "no limit" is the largest budget wasmtime takes.
    pub fn store_fuel(&self) -> u64 {
        if self.fuel == 0 {
            u64::MAX
        } else {
            self.fuel
        }
    }
}

/// Refuses growth past the caps with a typed error, so a `memory.grow` past the cap is an
/// error that names the cap (not a silent -1) and instantiation with a too-large initial
/// memory fails the same way.
#[derive(Debug, Clone)]
pub struct GuestLimiter {
    pub max_memory: usize,
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            return Err(wasmtime::Error::new(PlWasmError::MemoryLimit {
                requested: desired as u64,
                limit: self.max_memory as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(PlWasmError::TableLimit {
                requested: desired as u64,
                limit: MAX_TABLE_ELEMENTS as u64,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        // Wasm modules rarely need more than one table; a few leave room for toolchains that
        // emit an extra one.
        4
    }
}
