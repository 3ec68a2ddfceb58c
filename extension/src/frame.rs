//! ABI 1 frame calls: arguments detoasted and copied into a frame in guest memory, the result
//! copied out into a new Datum, and what the guest logged emitted once wasm has returned.
//! Scalar frame functions call [`call`]; set-returning functions (`srf`) share
//! [`arguments`] and [`with_live_sandbox`]. Runs under pgrx's guard: PostgreSQL errors here
//! (detoasting, palloc, jsonb input) unwind only Rust frames.

use pgrx::pg_sys::{Datum, FunctionCallInfo};
use plwasm_core::abi::Value;
use plwasm_core::error::PlWasmError;
use plwasm_core::sandbox::Sandbox;

use crate::entries::FunctionEntry;
use crate::error::{emit_guest_logs, raise, OrRaise};
use crate::{gucs, marshal};

/// The call's arguments as frame values (detoasted, borrowed from the call's Datums).
///
/// # Safety
/// `fcinfo` must be the valid call info of a call of `entry`'s function.
pub unsafe fn arguments<'a>(entry: &FunctionEntry, fcinfo: FunctionCallInfo) -> Vec<Value<'a>> {
    // SAFETY: fcinfo is valid; nargs matches the function's declared arguments.
    let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    entry
        .signature
        .args
        .iter()
        .zip(args)
        .enumerate()
        // SAFETY: each argument is a Datum of its declared type, valid for this call.
        .map(|(i, (ty, arg))| unsafe { marshal::argument(*ty, arg, i + 1) }.or_raise(&entry.name))
        .collect()
}

/// A scalar ABI 1 call.
///
/// # Safety
/// `fcinfo` must be the valid call info of a call of `entry`'s function.
pub unsafe fn call(entry: &FunctionEntry, fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: the caller's contract.
    let values = unsafe { arguments(entry, fcinfo) };
    let values = values.as_slice();
    let ret = entry.signature.ret;
    let result = with_live_sandbox(entry, |sandbox| {
        sandbox
            // SAFETY: the closure runs after wasm has returned, inside this guarded call.
            .call_frame(&entry.signature, values, gucs::call_limits(), |result| unsafe { marshal::result(ret, result) })
            .and_then(|converted| converted)
    });
    match result {
        Some(datum) => datum,
        None => {
            // SAFETY: fcinfo is valid; a NULL result is reported through isnull.
            unsafe { (*fcinfo).isnull = true };
            Datum::from(0)
        }
    }
}

/// Runs `call` on `entry`'s live instance (made by the guarded path), then emits what the
/// guest logged. On failure the instance is discarded, as it may be half-updated, and the
/// error is raised once wasm and the instance's borrow are gone.
pub fn with_live_sandbox<T>(entry: &FunctionEntry, call: impl FnOnce(&mut Sandbox) -> Result<T, PlWasmError>) -> T {
    let Ok(mut slot) = entry.sandbox.try_borrow_mut() else { raise(&PlWasmError::Reentered, &entry.name) };
    let Some(sandbox) = slot.as_mut() else {
        raise(&PlWasmError::Internal { message: "no instance".into() }, &entry.name)
    };
    let outcome = call(sandbox);
    let logs = sandbox.take_logs();
    if outcome.is_err() {
        *slot = None;
    }
    drop(slot);
    emit_guest_logs(&logs, &entry.name);
    outcome.unwrap_or_else(|err| raise(&err, &entry.name))
}
