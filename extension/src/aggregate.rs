//! Wasm aggregates: the support functions' call paths, and the guest states PostgreSQL holds
//! as `internal` values.
//!
//! - All live states of one aggregate (module content, export prefix, user) in a backend sit
//!   in one guest instance, so merging two states is one guest call. The instance lives as
//!   long as some state references it and is dropped with the last one.
//! - PostgreSQL holds a [`StateCell`] per state, allocated in the aggregate's memory context.
//!   A reset callback on that context hands the handle back to the guest (at its next call,
//!   never from inside the cleanup) and drops the cell's reference to the instance.
//! - Rows are queued on the host and handed to the guest in batches; the per-row path
//!   ([`fast_accumulate`]) calls nothing in PostgreSQL and nothing in wasm.
//! - Every support function checks that a state is a `StateCell` of its own aggregate before
//!   using it, so an `internal` value from elsewhere is refused, not dereferenced as ours.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::rc::{Rc, Weak};

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use plwasm_core::abi::Value;
use plwasm_core::aggregate::{row_plan, slot_bits, AggregateInstance, Step, SupportRole};
use plwasm_core::error::PlWasmError;
use plwasm_core::types::{Fixed, SqlType};

use crate::backend::{self, Caller};
use crate::entries::FunctionEntry;
use crate::error::{emit_guest_logs, raise, OrRaise};
use crate::{gucs, interrupt, marshal};

/// "plwasmST": marks memory as a [`StateCell`].
const STATE_MAGIC: u64 = u64::from_be_bytes(*b"plwasmST");

/// Which aggregate an instance serves.
#[derive(Clone, PartialEq, Eq, Hash)]
struct AggregateKey {
    module_hash: [u8; 32],
    prefix: String,
    caller: Caller,
}

/// One aggregate's guest instance in this backend.
pub struct SharedInstance {
    key: AggregateKey,
    inner: RefCell<AggregateInstance>,
    /// Set once a call into the instance failed: its states are gone.
    lost: Cell<bool>,
}

impl SharedInstance {
    /// Whether this instance holds the states of `entry`'s aggregate.
    fn serves(&self, entry: &FunctionEntry) -> bool {
        let key = &self.key;
        entry.aggregate().is_some_and(|(prefix, _)| {
            key.module_hash == entry.module_hash() && key.caller == entry.caller && key.prefix == prefix
        })
    }
}

thread_local! {
    static INSTANCES: RefCell<HashMap<AggregateKey, Weak<SharedInstance>>> = RefCell::new(HashMap::new());
}

/// What PostgreSQL's `internal` state Datum points at.
#[repr(C)]
struct StateCell {
    magic: u64,
    handle: u32,
    instance: ManuallyDrop<Rc<SharedInstance>>,
    callback: pg_sys::MemoryContextCallback,
}

fn key_of(entry: &FunctionEntry) -> Option<AggregateKey> {
    let (prefix, _) = entry.aggregate()?;
    Some(AggregateKey { module_hash: entry.module_hash(), prefix: prefix.to_string(), caller: entry.caller })
}

/// The live instance for `entry`'s aggregate, or a new one.
fn instance_for(entry: &FunctionEntry) -> Result<Rc<SharedInstance>, PlWasmError> {
    let key = key_of(entry).ok_or_else(|| PlWasmError::Internal { message: "not an aggregate function".into() })?;
    let live = INSTANCES.with(|map| map.borrow().get(&key).and_then(Weak::upgrade));
    if let Some(instance) = live.filter(|i| !i.lost.get()) {
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
    INSTANCES.with(|map| {
        let mut map = map.borrow_mut();
        map.retain(|_, weak| weak.strong_count() > 0);
        map.insert(key, Rc::downgrade(&instance));
    });
    Ok(instance)
}

/// Runs `f` on the instance; a failure marks it lost (a trap may leave the guest
/// half-updated) so that new states get a fresh instance. Guest messages are emitted after.
fn with_instance<R>(
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
                    map.remove(&instance.key);
                }
            });
            raise(&err, function)
        }
    }
}

/// A new state in `context`, freed (in the guest too) when `context` is reset or deleted.
fn new_state(instance: Rc<SharedInstance>, context: pg_sys::MemoryContext, function: &str) -> *mut StateCell {
    let handle = with_instance(&instance, function, |inner| inner.new_state(gucs::call_limits()));
    adopt_state(instance, handle, context)
}

fn adopt_state(instance: Rc<SharedInstance>, handle: u32, context: pg_sys::MemoryContext) -> *mut StateCell {
    // SAFETY: the cell is allocated in `context` and initialised before anything reads it; the
    // callback record inside it lives exactly as long as the context whose reset runs it,
    // which drops the cell's Rc exactly once.
    unsafe {
        let cell = pg_sys::MemoryContextAlloc(context, std::mem::size_of::<StateCell>()) as *mut StateCell;
        cell.write(StateCell {
            magic: STATE_MAGIC,
            handle,
            instance: ManuallyDrop::new(instance),
            callback: pg_sys::MemoryContextCallback {
                func: Some(release_state),
                arg: cell.cast(),
                next: std::ptr::null_mut(),
            },
        });
        pg_sys::MemoryContextRegisterResetCallback(context, &mut (*cell).callback);
        cell
    }
}

unsafe extern "C-unwind" fn release_state(arg: *mut std::ffi::c_void) {
    // SAFETY: arg is the StateCell this callback was registered with; its context is being
    // reset, so nothing uses the cell after this. Only Rust values are touched: no
    // PostgreSQL call, no wasm call, nothing that can raise.
    unsafe {
        let cell = &mut *(arg as *mut StateCell);
        cell.magic = 0;
        if let Ok(mut inner) = cell.instance.inner.try_borrow_mut() {
            inner.release(cell.handle);
        }
        ManuallyDrop::drop(&mut cell.instance);
    }
}

/// The state cell in `datum`, checked to belong to `entry`'s aggregate.
///
/// # Safety
/// `datum` must be an `internal` argument PostgreSQL's aggregate machinery passed.
unsafe fn checked_state<'a>(entry: &FunctionEntry, datum: Datum) -> &'a StateCell {
    let cell = datum.cast_mut_ptr::<StateCell>();
    // SAFETY: internal states of aggregates only pair plwasm's support functions (see
    // plwasm.create_aggregate); the magic check refuses anything else that reaches here.
    let cell = unsafe { &*cell };
    let ours = cell.magic == STATE_MAGIC && cell.instance.serves(entry);
    if !ours {
        raise(&PlWasmError::ForeignState, &entry.name);
    }
    cell
}

/// `AggCheckCallContext`: the aggregate's memory context, or an error outside aggregates.
unsafe fn aggregate_context(fcinfo: FunctionCallInfo, function: &str) -> pg_sys::MemoryContext {
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is the valid call info of this call.
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) } == 0 {
        raise(&PlWasmError::NotInAggregate, function);
    }
    context
}

/// Whether the call comes from a (window) aggregate node, without calling PostgreSQL.
#[inline]
unsafe fn called_by_aggregate(fcinfo: FunctionCallInfo) -> bool {
    // SAFETY: fcinfo is valid; context is null or a Node.
    unsafe {
        let context = (*fcinfo).context;
        !context.is_null()
            && matches!((*context).type_, pg_sys::NodeTag::T_AggState | pg_sys::NodeTag::T_WindowAggState)
    }
}

/// What a transition (or inverse transition) call site needs for its per-row path. The
/// guarded path sets it once it has queued a row for a state it checked.
pub struct RowPath {
    /// The instance whose states the call site has checked. A `Weak`, so that the allocation
    /// (and with it the address compared per row) is not reused while the site remembers it.
    instance: Weak<SharedInstance>,
    step: Step,
    /// The row arguments' conversions; the per-row path takes only fixed-width rows.
    plan: Vec<Fixed>,
}

impl RowPath {
    /// The per-row path for `entry` with states of `instance`, when its rows are fixed-width.
    fn new(entry: &FunctionEntry, instance: &Rc<SharedInstance>) -> Option<RowPath> {
        let step = entry.aggregate()?.1.step()?;
        let plan = row_plan(&entry.signature.args[1..])?;
        Some(RowPath { instance: Rc::downgrade(instance), step, plan })
    }
}

/// The per-row path of a transition (or inverse transition) call: queues the row and returns
/// the state. `None` when the guarded path must run (first row, a full batch, a state of
/// another instance, a value to refuse).
///
/// # Safety
/// `fcinfo` must be the valid call info of a call of the function `path` was made for.
#[inline(always)]
pub unsafe fn fast_accumulate(path: &RowPath, fcinfo: FunctionCallInfo) -> Option<Datum> {
    // SAFETY: fcinfo is valid; nargs matches the declared arguments (the state, then the
    // plan's row arguments).
    let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    let (state, values) = args.split_first()?;
    if state.isnull
        || values.len() != path.plan.len()
        // SAFETY: fcinfo is valid for this call (the caller's contract).
        || !unsafe { called_by_aggregate(fcinfo) }
    {
        return None;
    }
    // SAFETY: a non-null internal state in an aggregate call; it is only trusted once its
    // magic is ours and its instance is the one this call site has already checked.
    let cell = unsafe { &*state.value.cast_mut_ptr::<StateCell>() };
    if cell.magic != STATE_MAGIC || Rc::as_ptr(&cell.instance) != path.instance.as_ptr() {
        return None;
    }
    let shared: &SharedInstance = &cell.instance;
    if shared.lost.get() {
        return None;
    }
    let mut inner = shared.inner.try_borrow_mut().ok()?;
    let queued = inner.try_queue_fixed(path.step, cell.handle, &path.plan, |i| {
        let value = &values[i];
        (value.value.value() as u64, value.isnull)
    });
    queued.then_some(state.value)
}

/// A row value converted for the guest.
enum RowValue<'a> {
    Word(u64),
    Bytes(&'a [u8]),
}

/// Every call of a support function that the per-row path did not take. Runs under pgrx's
/// guard.
///
/// # Safety
/// `fcinfo` must be the valid call info of a call of `entry`'s function.
pub unsafe fn call(entry: &FunctionEntry, fcinfo: FunctionCallInfo, row_path: &mut Option<RowPath>) -> Datum {
    let Some((_, role)) = entry.aggregate() else {
        raise(&PlWasmError::Internal { message: "not an aggregate function".into() }, &entry.name)
    };
    let name = entry.name.as_str();
    // SAFETY: fcinfo is valid for this call.
    let context = unsafe { aggregate_context(fcinfo, name) };
    // SAFETY: fcinfo is valid; nargs matches the declared arguments.
    let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    let limits = gucs::call_limits();
    // SAFETY (for each checked_state below): the argument is an internal state passed by the
    // aggregate machinery, as aggregate_context just confirmed.
    match role {
        SupportRole::Accumulate | SupportRole::Retract => {
            let step = if role == SupportRole::Accumulate { Step::Accumulate } else { Step::Retract };
            let cell = if args[0].isnull {
                new_state(instance_for(entry).or_raise(name), context, name)
            } else {
                // SAFETY: a non-null internal state passed by the aggregate machinery
                // (aggregate_context confirmed the call comes from one); checked_state checks it.
                (unsafe { checked_state(entry, args[0].value) } as *const StateCell).cast_mut()
            };
            // SAFETY: cell is a live StateCell (made above or checked).
            let cell = unsafe { &*cell };
            let (types, values) = (&entry.signature.args[1..], &args[1..]);
            // Convert (and detoast) every value before the guest runs, so a bad value is refused
            // as such, not taken for a guest failure.
            let converted: Vec<Option<RowValue>> = (0..values.len())
                .map(|i| {
                    if values[i].isnull {
                        return None;
                    }
                    Some(match types[i] {
                        SqlType::Text | SqlType::Varchar | SqlType::Bytea => {
                            // SAFETY: argument i+2 is a non-null Datum of its declared type.
                            match unsafe { marshal::argument(types[i], &values[i], i + 2) } {
                                Ok(Value::Bytes(bytes)) => RowValue::Bytes(bytes),
                                Ok(_) => raise(&PlWasmError::Internal { message: "expected bytes".into() }, name),
                                Err(err) => raise(&err, name),
                            }
                        }
                        ty => RowValue::Word(slot_bits(ty, values[i].value.value() as u64).or_raise(name)),
                    })
                })
                .collect();
            with_instance(&cell.instance, name, |inner| {
                if !inner.has_room(step) {
                    inner.flush(limits)?;
                }
                let mut words = Vec::with_capacity(converted.len());
                for value in &converted {
                    words.push(match value {
                        None => None,
                        Some(RowValue::Word(word)) => Some(*word),
                        Some(RowValue::Bytes(bytes)) => Some(inner.queue_bytes(bytes)?),
                    });
                }
                inner.queue_row(step, cell.handle, words.len(), |i| Ok(words[i]))
            });
            if row_path.as_ref().is_none_or(|path| path.instance.as_ptr() != Rc::as_ptr(&cell.instance)) {
                *row_path = RowPath::new(entry, &cell.instance);
            }
            Datum::from(cell as *const StateCell)
        }
        SupportRole::Finalize => {
            let ret = entry.signature.ret;
            // SAFETY: the closure runs after wasm returned; it copies the result out.
            let finish = |value: Value<'_>| unsafe { marshal::result(ret, value) };
            let result = if args[0].isnull {
                // No rows: the guest says what an empty aggregate is.
                let instance = instance_for(entry).or_raise(name);
                with_instance(&instance, name, |inner| {
                    let handle = inner.new_state(limits)?;
                    let result = inner.finalize(handle, ret, limits, finish);
                    inner.release(handle);
                    result
                })
            } else {
                // SAFETY: as for the transition: a non-null state from the aggregate machinery.
                let cell = unsafe { checked_state(entry, args[0].value) };
                with_instance(&cell.instance, name, |inner| inner.finalize(cell.handle, ret, limits, finish))
            };
            match result.or_raise(name) {
                Some(datum) => datum,
                None => {
                    // SAFETY: fcinfo is valid; a NULL result is reported through isnull.
                    unsafe { (*fcinfo).isnull = true };
                    Datum::from(0)
                }
            }
        }
        SupportRole::Merge => {
            let (first, second) = (&args[0], &args[1]);
            if second.isnull {
                // SAFETY: fcinfo is valid.
                unsafe { (*fcinfo).isnull = first.isnull };
                return first.value;
            }
            // SAFETY: a non-null state from the aggregate machinery, checked by checked_state.
            let from = unsafe { checked_state(entry, second.value) };
            let into = if first.isnull {
                // A new state in the aggregate's context: PostgreSQL must not get the second
                // state back.
                let cell = new_state(Rc::clone(&from.instance), context, name);
                // SAFETY: new_state returned a live, initialised StateCell in `context`.
                unsafe { &*cell }
            } else {
                // SAFETY: a non-null state from the aggregate machinery, checked by checked_state.
                unsafe { checked_state(entry, first.value) }
            };
            if !Rc::ptr_eq(&into.instance, &from.instance) {
                raise(&PlWasmError::StateLost, name);
            }
            with_instance(&into.instance, name, |inner| inner.merge(into.handle, from.handle, limits));
            Datum::from(into as *const StateCell)
        }
        SupportRole::Serialize => {
            // SAFETY: a state from the aggregate machinery (serialize is STRICT), checked.
            let cell = unsafe { checked_state(entry, args[0].value) };
            let bytes = with_instance(&cell.instance, name, |inner| {
                // SAFETY: the closure runs after wasm returned; it copies the bytes out.
                inner.serialize(cell.handle, limits, |bytes| unsafe {
                    marshal::result(SqlType::Bytea, Value::Bytes(bytes))
                })
            });
            match bytes.or_raise(name) {
                Some(datum) => datum,
                None => raise(&PlWasmError::Internal { message: "no serialized state".into() }, name),
            }
        }
        SupportRole::Deserialize => {
            // SAFETY: argument 1 is a bytea Datum (the function is STRICT, so not NULL).
            let bytes = unsafe { marshal::argument(SqlType::Bytea, &args[0], 1) }.or_raise(name);
            let Value::Bytes(bytes) = bytes else { raise(&PlWasmError::Internal { message: "no bytes".into() }, name) };
            let instance = instance_for(entry).or_raise(name);
            let handle = with_instance(&instance, name, |inner| inner.deserialize(bytes, limits));
            // SAFETY: reads the current memory context, where deserialized states belong.
            let current = unsafe { pg_sys::CurrentMemoryContext };
            Datum::from(adopt_state(instance, handle, current))
        }
    }
}
