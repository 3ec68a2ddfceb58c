//! Wasm aggregates: the support functions' call paths. Their state is a `plwasm.state`
//! (see `state`), held in one guest instance per aggregate (see `agg_instances`).
//!
//! - Rows are queued on the host and handed to the guest in batches; the per-row path
//!   ([`fast_accumulate`]) calls nothing in PostgreSQL and nothing in wasm.
//! - Every support function checks that a state belongs to its own aggregate before using it:
//!   an in-memory state must be one of this backend's state objects of the same instance, a
//!   flat one must carry the same module hash and aggregate name. Anything else is refused,
//!   never handed to the guest as its own.

use std::rc::{Rc, Weak};

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use plwasm_core::abi::Value;
use plwasm_core::aggregate::{row_plan, slot_bits, Step, SupportRole};
use plwasm_core::error::PlWasmError;
use plwasm_core::limits::owned_copy;
use plwasm_core::types::{Fixed, SqlType};

use crate::agg_instances::{instance_for, with_instance, SharedInstance};
use crate::entries::FunctionEntry;
use crate::error::{raise, OrRaise};
use crate::state::{in_memory_rw, new_state, state_arg, ExpandedState, StateArg};
use crate::{gucs, marshal};

/// `AggCheckCallContext`: the aggregate's memory context, or an error outside aggregates.
unsafe fn aggregate_context(fcinfo: FunctionCallInfo, function: &str) -> pg_sys::MemoryContext {
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is the valid call info of this call.
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) } == 0 {
        raise(&PlWasmError::NotInAggregate, function);
    }
    context
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
    if state.isnull || values.len() != path.plan.len() {
        return None;
    }
    // SAFETY: a non-null plwasm.state; it is only trusted once it is a read-write pointer to
    // one of our state objects whose instance this call site has already checked. (Whoever
    // holds a read-write pointer may update the object in place, so this needs no check that
    // an aggregate is calling: only aggregates hold read-write plwasm.state pointers, and the
    // guarded path, which every first row takes, checks with AggCheckCallContext.)
    let state_object = unsafe { in_memory_rw(state.value) }?;
    if Rc::as_ptr(&state_object.instance) != path.instance.as_ptr() {
        return None;
    }
    let shared: &SharedInstance = &state_object.instance;
    if shared.is_lost() {
        return None;
    }
    let mut inner = shared.try_inner()?;
    let queued = inner.try_queue_fixed(path.step, state_object.handle, &path.plan, |i| {
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

/// A state argument resolved to a handle on the entry's aggregate instance.
struct Resolved {
    instance: Rc<SharedInstance>,
    handle: u32,
    /// The argument's own state object, when it was one; `None` when the handle was made for
    /// this call (from a flat state, or for a NULL one) and is the caller's to keep or release.
    object: Option<*mut ExpandedState>,
}

/// Resolves state argument `datum` (not NULL) of `entry`'s function: one of this instance's
/// state objects as it is, a flat state of the same module and aggregate deserialized into a
/// new handle. Anything else is refused.
///
/// # Safety
/// `datum` must be a non-null `plwasm.state` argument of the current call.
unsafe fn resolve(entry: &FunctionEntry, datum: Datum) -> Resolved {
    // SAFETY: the caller's contract.
    unsafe { resolve_into(entry, datum, None) }
}

/// [`resolve`], deserializing a flat state into `target` (an instance of the same aggregate)
/// rather than the one new states go to.
///
/// # Safety
/// As [`resolve`].
unsafe fn resolve_into(entry: &FunctionEntry, datum: Datum, target: Option<&Rc<SharedInstance>>) -> Resolved {
    let name = entry.name.as_str();
    // SAFETY: the caller's contract.
    match unsafe { state_arg(datum, name) } {
        StateArg::InMemory(object) => {
            if !object.instance.serves(entry) {
                raise(&PlWasmError::ForeignState, name);
            }
            if object.instance.is_lost() {
                raise(&PlWasmError::StateLost, name);
            }
            Resolved { instance: Rc::clone(&object.instance), handle: object.handle, object: Some(object) }
        }
        StateArg::Flat(flat) => {
            let prefix = entry.aggregate().map(|(prefix, _)| prefix).unwrap_or_default();
            if flat.module_hash != entry.module_hash() || flat.prefix != prefix {
                raise(
                    &PlWasmError::StateOfAnotherAggregate {
                        module: hex::encode(flat.module_hash),
                        aggregate: flat.prefix.to_string(),
                    },
                    name,
                );
            }
            let instance = match target {
                Some(target) => Rc::clone(target),
                None => instance_for(entry).or_raise(name),
            };
            let handle = with_instance(&instance, name, |inner| inner.deserialize(flat.payload, gucs::call_limits()));
            Resolved { instance, handle, object: None }
        }
    }
}

impl Resolved {
    /// A new empty state of `instance`, made for this call.
    fn fresh(instance: Rc<SharedInstance>, function: &str) -> Resolved {
        let handle = with_instance(&instance, function, |inner| inner.new_state(gucs::call_limits()));
        Resolved { instance, handle, object: None }
    }

    /// State argument `arg` of `entry`'s function resolved ([`resolve`]), or for NULL a new
    /// empty state of the aggregate's instance.
    ///
    /// # Safety
    /// `arg` must be a `plwasm.state` argument of the current call.
    unsafe fn of_argument(entry: &FunctionEntry, arg: &pg_sys::NullableDatum) -> Resolved {
        if arg.isnull {
            Resolved::fresh(instance_for(entry).or_raise(&entry.name), &entry.name)
        } else {
            // SAFETY: the caller's contract; the argument is not NULL.
            unsafe { resolve(entry, arg.value) }
        }
    }

    /// The state as a transition value: its own object, or a new one in `context` that takes
    /// over the handle made for this call.
    ///
    /// # Safety
    /// `context` must be the aggregate's memory context.
    unsafe fn into_transition_value(self, context: pg_sys::MemoryContext) -> (Datum, *const ExpandedState) {
        match self.object {
            // SAFETY: a live state object of this call's arguments.
            Some(object) => unsafe { (Datum::from((*object).header_rw_pointer()), object) },
            None => {
                // SAFETY: the caller's contract; new_state returns a live, initialised object.
                let object = unsafe { new_state(self.instance, self.handle, context) };
                // SAFETY: as above.
                (Datum::from(unsafe { (*object).header_rw_pointer() }), object)
            }
        }
    }

    /// Gives back a handle made for this call.
    fn release_if_temporary(&self) {
        if self.object.is_none() {
            self.instance.release(self.handle);
        }
    }
}

/// A copy of state `from` in `instance` (through the guest's serialize and deserialize), as
/// a handle made for this call.
fn copy_into(from: &Resolved, instance: &Rc<SharedInstance>, function: &str) -> Resolved {
    let limits = gucs::call_limits();
    let bytes = with_instance(&from.instance, function, |inner| {
        // The guest says how large its state is: copied out fallibly.
        inner.serialize(from.handle, limits, |bytes| owned_copy(bytes, "a state moved between instances"))?
    });
    let handle = with_instance(instance, function, |inner| inner.deserialize(&bytes, limits));
    Resolved { instance: Rc::clone(instance), handle, object: None }
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
    // SAFETY (for each resolve below): the argument is a non-null plwasm.state passed by the
    // aggregate machinery, as aggregate_context just confirmed.
    match role {
        SupportRole::Accumulate | SupportRole::Retract => {
            let step = if role == SupportRole::Accumulate { Step::Accumulate } else { Step::Retract };
            // SAFETY: see above.
            let state = unsafe { Resolved::of_argument(entry, &args[0]) };
            // SAFETY: context is the aggregate's.
            let (datum, object) = unsafe { state.into_transition_value(context) };
            // SAFETY: a live state object: the argument's, or the one just made.
            let object = unsafe { &*object };
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
            let handle = object.handle;
            with_instance(&object.instance, name, |inner| {
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
                inner.queue_row(step, handle, words.len(), |i| Ok(words[i]))
            });
            if row_path.as_ref().is_none_or(|path| path.instance.as_ptr() != Rc::as_ptr(&object.instance)) {
                *row_path = RowPath::new(entry, &object.instance);
            }
            datum
        }
        SupportRole::Finalize => {
            let ret = entry.signature.ret;
            // SAFETY: the closure runs after wasm returned; it copies the result out.
            let finish = |value: Value<'_>| unsafe { marshal::result(ret, value) };
            // No rows (NULL): the guest says what an empty aggregate is. SAFETY: see above.
            let state = unsafe { Resolved::of_argument(entry, &args[0]) };
            let result =
                with_instance(&state.instance, name, |inner| inner.finalize(state.handle, ret, limits, finish));
            state.release_if_temporary();
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
            // A flat second state is deserialized straight into the first's instance: no
            // copy between instances, and no second instance holding a large state.
            let (into, from) = if first.isnull {
                // SAFETY: see above.
                let from = unsafe { resolve(entry, second.value) };
                // A new state in the aggregate's context: PostgreSQL must not get the second
                // state back (it may free it).
                (Resolved::fresh(Rc::clone(&from.instance), name), from)
            } else {
                // SAFETY: see above.
                let into = unsafe { resolve(entry, first.value) };
                // SAFETY: see above.
                let from = unsafe { resolve_into(entry, second.value, Some(&into.instance)) };
                (into, from)
            };
            // States of one aggregate sit in different instances once one grew large
            // (agg_instances): the guest merges only within one, so `from` is copied over.
            let from = if Rc::ptr_eq(&into.instance, &from.instance) {
                from
            } else {
                let copied = copy_into(&from, &into.instance, name);
                from.release_if_temporary();
                copied
            };
            with_instance(&into.instance, name, |inner| {
                inner.merge(into.handle, from.handle, limits)?;
                // A state made for this merge is freed now, not at the next batch: a large
                // one (LTTB's points) would otherwise still take its room when the next
                // partial state arrives.
                if from.object.is_none() {
                    inner.release(from.handle);
                    inner.flush(limits)?;
                }
                Ok(())
            });
            // SAFETY: context is the aggregate's.
            unsafe { into.into_transition_value(context) }.0
        }
    }
}
