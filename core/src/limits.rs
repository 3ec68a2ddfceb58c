//! Per-call limits, the memory budget all instances of a backend share, the resource
//! limiter every store carries, and copies whose size someone else chose.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime::ResourceLimiter;

use crate::error::PlWasmError;

/// `bytes` copied, with a checked allocation: a size a guest or a user chose fails with
/// [`PlWasmError::OutOfMemory`] instead of aborting the process.
pub fn owned_copy(bytes: &[u8], what: &'static str) -> Result<Vec<u8>, PlWasmError> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(bytes.len()).map_err(|_| PlWasmError::OutOfMemory { bytes: bytes.len() as u64, what })?;
    copy.extend_from_slice(bytes);
    Ok(copy)
}

/// Bytes a table element is charged against the session budget (a funcref and its
/// bookkeeping).
const TABLE_ELEMENT_BYTES: usize = 16;

/// Linear memory (and tables) of every instance in one backend, with a cap. Each store
/// charges its growth here and gives it back when it is dropped.
#[derive(Clone)]
pub struct SessionBudget {
    inner: Arc<BudgetState>,
}

struct BudgetState {
    used: AtomicUsize,
    cap: AtomicUsize,
    /// Asked to free at least this many bytes by dropping idle instances before a growth is
    /// refused; must not touch the instance that is growing (which is in use).
    evict: fn(usize),
}

impl SessionBudget {
    pub fn new(cap: usize, evict: fn(usize)) -> SessionBudget {
        SessionBudget { inner: Arc::new(BudgetState { used: AtomicUsize::new(0), cap: AtomicUsize::new(cap), evict }) }
    }

    /// A budget nothing else shares, for tests and tools.
    #[cfg(any(test, feature = "testing"))]
    pub fn unlimited() -> SessionBudget {
        SessionBudget::new(usize::MAX, |_| {})
    }

    pub fn set_cap(&self, cap: usize) {
        self.inner.cap.store(cap, Ordering::Relaxed);
    }

    pub fn cap(&self) -> usize {
        self.inner.cap.load(Ordering::Relaxed)
    }

    /// Bytes charged by live instances.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    fn fits(&self, bytes: usize) -> bool {
        self.used().checked_add(bytes).is_some_and(|total| total <= self.cap())
    }

    /// Charges `bytes`, first evicting idle instances if they do not fit; `Err` with the total
    /// that would have been needed if they still do not.
    fn charge(&self, bytes: usize) -> Result<(), u64> {
        if !self.fits(bytes) {
            (self.inner.evict)(bytes);
            if !self.fits(bytes) {
                return Err(self.used().saturating_add(bytes) as u64);
            }
        }
        self.inner.used.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, bytes: usize) {
        self.inner.used.fetch_sub(bytes.min(self.used()), Ordering::Relaxed);
    }
}

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
/// memory fails the same way. Every growth is also charged to the backend's budget, and given
/// back when the store (and with it this limiter) is dropped.
pub struct GuestLimiter {
    pub max_memory: usize,
    budget: SessionBudget,
    charged: usize,
}

impl GuestLimiter {
    pub fn new(max_memory: usize, budget: SessionBudget) -> GuestLimiter {
        GuestLimiter { max_memory, budget, charged: 0 }
    }

    fn charge(&mut self, bytes: usize) -> wasmtime::Result<()> {
        self.budget.charge(bytes).map_err(|requested| {
            wasmtime::Error::new(PlWasmError::SessionMemoryLimit { requested, limit: self.budget.cap() as u64 })
        })?;
        self.charged += bytes;
        Ok(())
    }
}

impl Drop for GuestLimiter {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            return Err(wasmtime::Error::new(PlWasmError::MemoryLimit {
                requested: desired as u64,
                limit: self.max_memory as u64,
            }));
        }
        self.charge(desired.saturating_sub(current))?;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(PlWasmError::TableLimit {
                requested: desired as u64,
                limit: MAX_TABLE_ELEMENTS as u64,
            }));
        }
        self.charge(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_charged_and_given_back_on_drop() {
        let budget = SessionBudget::new(1000, |_| {});
        let mut a = GuestLimiter::new(usize::MAX, budget.clone());
        assert!(a.memory_growing(0, 600, None).unwrap());
        let mut b = GuestLimiter::new(usize::MAX, budget.clone());
        let err = b.memory_growing(0, 600, None).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<PlWasmError>(),
            Some(PlWasmError::SessionMemoryLimit { requested: 1200, limit: 1000 })
        ));
        assert!(b.memory_growing(0, 400, None).unwrap());
        assert_eq!(budget.used(), 1000);
        drop(a);
        assert_eq!(budget.used(), 400);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn eviction_is_tried_before_a_growth_is_refused() {
        use std::sync::Mutex;
        static IDLE: Mutex<Option<GuestLimiter>> = Mutex::new(None);
        fn evict(_bytes: usize) {
            IDLE.lock().unwrap().take();
        }
        let budget = SessionBudget::new(1000, evict);
        let mut idle = GuestLimiter::new(usize::MAX, budget.clone());
        idle.memory_growing(0, 900, None).unwrap();
        *IDLE.lock().unwrap() = Some(idle);
        let mut busy = GuestLimiter::new(usize::MAX, budget.clone());
        assert!(busy.memory_growing(0, 500, None).unwrap());
        assert_eq!(budget.used(), 500);
    }
}
