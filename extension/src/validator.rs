//! The validator: runs at CREATE [OR REPLACE] FUNCTION ... LANGUAGE wasm.
//!
//! It compiles and checks the module even when `check_function_bodies` is off: an inline
//! module depends on nothing else in the database, so a restore loses nothing by checking,
//! and a bad module is refused where it is created rather than at its first call.

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};

use crate::error::OrRaise;
use crate::{catalog, entries};

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_plwasm_validator() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `plwasm.plwasm_validator(oid) RETURNS void`
#[pgrx::pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn plwasm_validator(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: PostgreSQL calls the validator with one non-null oid argument (it is STRICT)
    // and a valid flinfo.
    let (validator_oid, fn_oid) = unsafe {
        let arg = (*fcinfo).args.as_slice(1)[0].value;
        ((*(*fcinfo).flinfo).fn_oid, pg_sys::Oid::from(arg.value() as u32))
    };
    // SAFETY: the standard access check every validator makes before looking at the function.
    if !unsafe { pg_sys::CheckFunctionValidatorAccess(validator_oid, fn_oid) } {
        return Datum::from(0);
    }
    validate(fn_oid);
    Datum::from(0)
}

fn validate(fn_oid: pg_sys::Oid) {
    let proc = catalog::read_proc(fn_oid);
    let signature = proc.checked_signature().or_raise(&proc.name);
    // SAFETY: reads a GUC bool on the main thread.
    let check_bodies = unsafe { pg_sys::check_function_bodies };
    entries::prepare(&proc, &signature, entries::Lookup::Validate { check_bodies }).or_raise(&proc.name);
}
