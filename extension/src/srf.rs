//! Set-returning functions (`RETURNS SETOF t`, `RETURNS TABLE (...)`).
//!
//! The guest returns all its rows from one call (see `abi::row_set`). They are converted one
//! at a time, in a memory context reset after each row, and copied into a tuplestore
//! (PostgreSQL's materialize mode), which spills to disk past `work_mem`. So the host holds
//! one row at a time whatever the guest returns; rows that all point at one large value are
//! copied once each, and their values together may be at most [`MAX_SET_BYTES`] (checked from
//! the row slots before any row is converted). Interrupts are checked between rows.

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use plwasm_core::abi;
use plwasm_core::error::PlWasmError;

use crate::entries::FunctionEntry;
use crate::error::raise;
use crate::frame::with_live_sandbox;
use crate::{catalog, gucs, marshal};

/// The most bytes of variable-length values one set-returning call may return in all its rows
/// together: as much as one value may hold.
const MAX_SET_BYTES: u64 = abi::MAX_VALUE_BYTES;

/// Calls `entry`'s function and hands PostgreSQL its rows.
///
/// # Safety
/// `fcinfo` must be the valid call info of a call of `entry`'s function, whose instance exists.
pub unsafe fn call(entry: &FunctionEntry, fcinfo: FunctionCallInfo) -> Datum {
    let name = entry.name.as_str();
    let columns = entry.signature.set_of.as_deref().unwrap_or_default();
    // SAFETY: the caller's contract.
    let args = unsafe { crate::frame::arguments(entry, fcinfo) };
    let args = args.as_slice();
    // SAFETY: fcinfo is valid; resultinfo is null or a node PostgreSQL set up for this call.
    let rsinfo = unsafe {
        let info = (*fcinfo).resultinfo;
        let is_rsinfo = !info.is_null() && (*info).type_ == pg_sys::NodeTag::T_ReturnSetInfo;
        let info = info as *mut pg_sys::ReturnSetInfo;
        if !is_rsinfo || (*info).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32 == 0 {
            raise(&PlWasmError::SetNotAllowed, name);
        }
        info
    };
    // SAFETY: rsinfo is valid; the store and its descriptor must outlive this call, so both
    // live in the per-query context.
    let (store, desc) = unsafe {
        let per_query = (*(*rsinfo).econtext).ecxt_per_query_memory;
        let old = pg_sys::MemoryContextSwitchTo(per_query);
        let desc = if (*rsinfo).expectedDesc.is_null() {
            let desc = pg_sys::CreateTemplateTupleDesc(columns.len() as i32);
            for (i, ty) in columns.iter().enumerate() {
                pg_sys::TupleDescInitEntry(desc, (i + 1) as i16, std::ptr::null(), catalog::type_oid(*ty), -1, 0);
            }
            desc
        } else {
            pg_sys::CreateTupleDescCopy((*rsinfo).expectedDesc)
        };
        let random = (*rsinfo).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32 != 0;
        let store = pg_sys::tuplestore_begin_heap(random, false, pg_sys::work_mem);
        pg_sys::MemoryContextSwitchTo(old);
        (store, desc)
    };
    // SAFETY: desc was just built with natts columns.
    if unsafe { (*desc).natts } as usize != columns.len() {
        raise(
            &PlWasmError::Internal { message: "the query expects other columns than the function declares".into() },
            name,
        );
    }

    let mut values = vec![Datum::from(0); columns.len()];
    let mut nulls = vec![false; columns.len()];
    // SAFETY: a child of the current (per-call) context, deleted with it on error too.
    let row_context = unsafe {
        pg_sys::AllocSetContextCreateExtended(
            pg_sys::CurrentMemoryContext,
            c"plwasm set-returning row".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    };
    with_live_sandbox(entry, |sandbox| {
        sandbox.call_frame_raw(&entry.signature, args, gucs::call_limits(), |memory, result_slot| {
            let set = abi::row_set(memory, result_slot, columns)?;
            let declared = set.declared_bytes(memory, columns);
            if declared > MAX_SET_BYTES {
                return Err(PlWasmError::ResultTooLarge { bytes: declared, limit: MAX_SET_BYTES });
            }
            for index in 0..set.count {
                let row = set.row(memory, index, columns)?;
                // SAFETY: the row's Datums are made in row_context (wasm has returned; each value
                // is copied into a new Datum) and copied by tuplestore_putvalues into the store's
                // own context before the reset.
                unsafe {
                    let outer = pg_sys::MemoryContextSwitchTo(row_context);
                    let converted = row.into_iter().zip(columns).enumerate().try_for_each(|(i, (value, ty))| {
                        let datum = marshal::result(*ty, value)?;
                        nulls[i] = datum.is_none();
                        values[i] = datum.unwrap_or(Datum::from(0));
                        Ok::<(), PlWasmError>(())
                    });
                    pg_sys::MemoryContextSwitchTo(outer);
                    converted?;
                    pg_sys::tuplestore_putvalues(store, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
                    pg_sys::MemoryContextReset(row_context);
                }
                pgrx::check_for_interrupts!();
            }
            Ok(())
        })?
    });
    // SAFETY: rsinfo is valid; PostgreSQL reads the rows from the store after this returns.
    unsafe {
        (*rsinfo).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
        (*rsinfo).setResult = store;
        (*rsinfo).setDesc = desc;
        (*fcinfo).isnull = true;
    }
    Datum::from(0)
}
