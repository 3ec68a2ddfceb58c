//! The guest instances that hold wasm aggregates' states.
//!
//! The live states of one aggregate (module content, export prefix, caller) in a backend sit
//! in one instance, so merging two states is one guest call, until that instance has used
//! an eighth of `plwasm.max_memory`: then new states go to a fresh instance, so that groups with
//! large states (LTTB's points) each get up to the whole cap instead of sharing one. An
//! instance lives as long as some state references it and is dropped with the last one. A
//! call that fails marks the instance lost (a trap may leave the guest half-updated): its
//! states are gone, and new states get a fresh instance.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use plwasm_core::aggregate::AggregateInstance;
use plwasm_core::error::PlWasmError;

use crate::backend::{self, Caller};
use crate::entries::FunctionEntry;
use crate::error::{emit_guest_logs, raise, OrRaise};
use crate::{gucs, interrupt};

/// Which aggregate an instance serves.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AggregateKey {
    pub module_hash: [u8; 32],
    pub prefix: String,
    pub caller: Caller,
}

impl AggregateKey {
    /// The aggregate `entry`'s support function belongs to.
    pub fn of(entry: &FunctionEntry) -> Option<AggregateKey> {
        let (prefix, _) = entry.aggregate()?;
        Some(AggregateKey { module_hash: entry.module_hash(), prefix: prefix.to_string(), caller: entry.caller })
    }
}

/// One aggregate's guest instance in this backend.
pub struct SharedInstance {
    pub key: AggregateKey,
    inner: RefCell<AggregateInstance>,
    /// Set once a call into the instance failed: its states are gone.
    lost: Cell<bool>,
}

impl SharedInstance {
    /// Whether this instance holds the states of `entry`'s aggregate.
    pub fn serves(&self, entry: &FunctionEntry) -> bool {
        AggregateKey::of(entry).is_some_and(|key| key == self.key)
    }

    pub fn is_lost(&self) -> bool {
        self.lost.get()
    }

    /// Whether new states may go here: the instance has used less than an eighth of the
    /// memory cap. States that are small stay together however many groups there are (until
    /// they fill 8MB of a 64MB cap); a state that has grown large (a group's LTTB points)
    /// keeps its instance for itself, with room for its flat copy. Past
    /// [`MAX_AGGREGATE_INSTANCES`] live instances in the backend every new state joins the
    /// current one: each instance also costs host memory the session budget does not count.
    fn takes_new_states(&self) -> bool {
        LIVE_INSTANCES.with(|live| live.get() >= MAX_AGGREGATE_INSTANCES)
            || self.inner.try_borrow().map_or(true, |inner| inner.memory_size() < gucs::call_limits().max_memory / 8)
    }

    /// The instance, for the per-row path (which calls no wasm); `None` while it is in use.
    pub fn try_inner(&self) -> Option<std::cell::RefMut<'_, AggregateInstance>> {
        self.inner.try_borrow_mut().ok()
    }

    /// Forgets `handle` (the guest frees it at the next call). Touches no PostgreSQL state
    /// and calls no wasm, so memory-context callbacks may use it.
    pub fn release(&self, handle: u32) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.release(handle);
        }
    }
}

/// Most aggregate instances a backend makes room for by giving new states instances of
/// their own (see [`SharedInstance::takes_new_states`]).
const MAX_AGGREGATE_INSTANCES: usize = 256;

thread_local! {
    static INSTANCES: RefCell<HashMap<AggregateKey, Weak<SharedInstance>>> = RefCell::new(HashMap::new());
    /// Aggregate instances alive in this backend.
    static LIVE_INSTANCES: Cell<usize> = const { Cell::new(0) };
}

impl Drop for SharedInstance {
    fn drop(&mut self) {
        LIVE_INSTANCES.with(|live| live.set(live.get().saturating_sub(1)));
    }
}

/// The live instance for `entry`'s aggregate, or a new one.
pub fn instance_for(entry: &FunctionEntry) -> Result<Rc<SharedInstance>, PlWasmError> {
    let key =
        AggregateKey::of(entry).ok_or_else(|| PlWasmError::Internal { message: "not an aggregate function".into() })?;
    let live = INSTANCES.with(|map| map.borrow().get(&key).and_then(Weak::upgrade));
    if let Some(instance) = live.filter(|i| !i.lost.get() && i.takes_new_states()) {
        return Ok(instance);
    }
    let backend = backend::engine();
    backend.prepare_instantiation()?;
    let inner = AggregateInstance::instantiate(
        &backend.engine,
        entry.module(),
        &key.prefix,
        gucs::call_limits(),
        &backend.host,
    )?;
    let instance = Rc::new(SharedInstance { key: key.clone(), inner: RefCell::new(inner), lost: Cell::new(false) });
    LIVE_INSTANCES.with(|live| live.set(live.get() + 1));
    INSTANCES.with(|map| {
        let mut map = map.borrow_mut();
        map.retain(|_, weak| weak.strong_count() > 0);
        map.insert(key, Rc::downgrade(&instance));
    });
    Ok(instance)
}

/// Runs `f` on the instance, on behalf of SQL function (or export) `function`; a failure
/// marks the instance lost and is raised. Guest messages are emitted after the call.
pub fn with_instance<R>(
    instance: &SharedInstance,
    function: &str,
    f: impl FnOnce(&mut AggregateInstance) -> Result<R, PlWasmError>,
) -> R {
    if instance.lost.get() {
        raise(&PlWasmError::StateLost, function);
    }
    interrupt::ensure_ticking(&backend::engine().engine).or_raise(function);
    let (outcome, logs) = {
        let Ok(mut inner) = instance.inner.try_borrow_mut() else { raise(&PlWasmError::Reentered, function) };
        let outcome = f(&mut inner);
        (outcome, inner.take_logs())
    };
    emit_guest_logs(&logs, function);
    match outcome {
        Ok(value) => value,
        Err(err) => {
            instance.lost.set(true);
            INSTANCES.with(|map| {
                if let Ok(mut map) = map.try_borrow_mut() {
                    // Only if it is the one new states go to: an older one may have failed.
                    if map.get(&instance.key).is_some_and(|current| std::ptr::eq(current.as_ptr(), instance)) {
                        map.remove(&instance.key);
                    }
                }
            });
            raise(&err, function)
        }
    }
}
