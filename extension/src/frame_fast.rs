//! The per-row path of scalar ABI 1 calls, beside ABI 0's in `handler`: no pgrx guard, no
//! Rust allocation, nothing in PostgreSQL that can raise. It takes a row when every argument
//! is NULL, a by-value Datum, or a varlena stored plainly (not compressed, not out of line; a
//! one-dimensional array without a NULL bitmap), and text only in a UTF8 database (no
//! conversion). Everything else, before the guest runs, goes the guarded way (`frame`).
//! Results are copied into memory allocated with `MCXT_ALLOC_NO_OOM`, so running out of
//! memory is an error returned, not raised. The checks the guarded path makes on what the
//! guest returns (core's `read_result`: bounds, UTF-8, NaNs) are the same.

use pgrx::pg_sys::{self, Datum, NullableDatum};
use plwasm_core::abi::{self, Value};
use plwasm_core::error::PlWasmError;
use plwasm_core::host::LogQueue;
use plwasm_core::sandbox::{MemoryView, Sandbox};
use plwasm_core::types::{Passing, SqlSignature, SqlType};

use crate::{gucs, marshal};

/// Most arguments a call may have to take this path (its values sit in a stack array).
pub const MAX_ARGS: usize = 8;

/// Whether calls of `signature` can take this path at all: scalar, at most [`MAX_ARGS`]
/// arguments, no jsonb (its text form needs PostgreSQL), text only in a UTF8 database.
pub fn eligible(signature: &SqlSignature) -> bool {
    let types = || signature.args.iter().chain(std::iter::once(&signature.ret));
    signature.set_of.is_none()
        && signature.args.len() <= MAX_ARGS
        && types().all(|ty| *ty != SqlType::Jsonb)
        && (marshal::database_is_utf8() || types().all(|ty| !matches!(ty.passing(), Passing::Bytes { utf8: true })))
}

/// What a result became: a Datum, or NULL.
pub enum Converted {
    Datum(Datum),
    Null,
}

/// Argument `arg` of type `ty` as a frame value, read in place; `None` when it needs the
/// guarded path (a compressed or out-of-line varlena, a packed or NULL-bitmapped array).
///
/// # Safety
/// `arg` must be a valid Datum of type `ty` (or NULL) for the current call.
#[inline]
pub unsafe fn plain_argument<'a>(ty: SqlType, arg: &NullableDatum) -> Option<Value<'a>> {
    if arg.isnull {
        return Some(Value::Null);
    }
    let datum = arg.value;
    match ty.passing() {
        Passing::Fixed(_) | Passing::Nothing => Some(Value::Fixed(datum.value() as u64)),
        Passing::Bytes { .. } => {
            let varlena = datum.cast_mut_ptr::<pg_sys::varlena>() as *const pg_sys::varlena;
            // SAFETY: a varlena of the call; the header macros only read its first bytes,
            // and a plain varlena's data follows its header for the length it states.
            unsafe {
                if pgrx::varlena::varatt_is_1b_e(varlena) || pgrx::varlena::varatt_is_4b_c(varlena) {
                    return None;
                }
                let len = pgrx::varlena::varsize_any_exhdr(varlena);
                Some(Value::Bytes(std::slice::from_raw_parts(pgrx::varlena::vardata_any(varlena).cast(), len)))
            }
        }
        Passing::Array(element) => {
            let varlena = datum.cast_mut_ptr::<pg_sys::varlena>() as *const pg_sys::varlena;
            // SAFETY: an array Datum of the call. Only a 4-byte-header, uncompressed array is
            // read in place (a packed one is not aligned); its header fields and data are
            // inside it, per utils/array.h.
            unsafe {
                if !pgrx::varlena::varatt_is_4b_u(varlena) {
                    return None;
                }
                let array = varlena as *const pg_sys::ArrayType;
                match (*array).ndim {
                    0 => Some(Value::Array { bytes: &[], count: 0 }),
                    1 if (*array).dataoffset == 0 => {
                        let count = *(array as *const u8).add(std::mem::size_of::<pg_sys::ArrayType>()).cast::<i32>();
                        // The stated count must fit the array's own size (else the checked path
                        // decides what to make of it).
                        let count = usize::try_from(count).ok()?;
                        let bytes = count.checked_mul(element.byte_size())?;
                        if marshal::ARRAY_HEADER_1D.checked_add(bytes)? > pgrx::varlena::varsize_4b(varlena) {
                            return None;
                        }
                        let data = (array as *const u8).add(marshal::ARRAY_HEADER_1D);
                        Some(Value::Array { bytes: std::slice::from_raw_parts(data, bytes), count })
                    }
                    // More dimensions or NULLs: the guarded path reports them.
                    _ => None,
                }
            }
        }
    }
}

/// The result as a Datum in the current memory context. Calls nothing that can raise.
///
/// # Safety
/// Must run during a call, after wasm has returned; `value` is `read_result`'s (checked).
pub unsafe fn result(ty: SqlType, value: Value<'_>) -> Result<Converted, PlWasmError> {
    Ok(match value {
        Value::Null => Converted::Null,
        Value::Fixed(bits) => Converted::Datum(Datum::from(bits as usize)),
        Value::Bytes(bytes) => {
            let total = pg_sys::VARHDRSZ + bytes.len();
            // SAFETY: a block of `total` bytes; a 4-byte varlena header, then the bytes.
            unsafe {
                let varlena = allocate(total, false)?;
                pgrx::varlena::set_varsize_4b(varlena.cast(), total as i32);
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), varlena.add(pg_sys::VARHDRSZ), bytes.len());
                Converted::Datum(Datum::from(varlena))
            }
        }
        Value::Array { bytes, count } => {
            let elements = marshal::array_result(ty, bytes, count)?;
            // SAFETY: a zeroed block of the size fill_array lays out, in the call's context.
            unsafe {
                let block = allocate(marshal::array_size(bytes, count), true)?;
                Converted::Datum(marshal::fill_array(block, elements, bytes, count))
            }
        }
    })
}

/// `size` bytes in the current memory context, or an error instead of PostgreSQL's.
///
/// # Safety
/// Must run during a call (the current memory context is the call's).
unsafe fn allocate(size: usize, zeroed: bool) -> Result<*mut u8, PlWasmError> {
    // MaxAllocSize: past it palloc raises even with MCXT_ALLOC_NO_OOM.
    const MAX_ALLOC: usize = 0x3FFF_FFFF;
    if size > MAX_ALLOC {
        return Err(PlWasmError::ResultTooLarge { bytes: size as u64, limit: MAX_ALLOC as u64 });
    }
    let flags = pg_sys::MCXT_ALLOC_NO_OOM | if zeroed { pg_sys::MCXT_ALLOC_ZERO } else { 0 };
    // SAFETY: a valid size with MCXT_ALLOC_NO_OOM: returns NULL instead of raising, so it
    // needs no pgrx guard (which pgrx's own binding would set up on every call).
    let block = unsafe { unguarded::MemoryContextAllocExtended(pg_sys::CurrentMemoryContext, size, flags as i32) };
    if block.is_null() {
        return Err(PlWasmError::OutOfMemory { bytes: size as u64, what: "a wasm function's result" });
    }
    Ok(block.cast())
}

/// PostgreSQL's allocator, declared here without pgrx's error guard: called only with
/// `MCXT_ALLOC_NO_OOM` and a valid size, it cannot raise.
mod unguarded {
    use pgrx::pg_sys::{MemoryContext, Size};

    extern "C" {
        pub fn MemoryContextAllocExtended(context: MemoryContext, size: Size, flags: i32) -> *mut std::ffi::c_void;
    }
}

/// A frame call's outcome on this path.
pub enum Outcome {
    /// Not taken: the guarded path runs the call (nothing has run yet).
    NotTaken,
    Done(Converted),
    /// Done, and the guest logged messages (boxed: the common outcome stays small).
    DoneLogged(Converted, Box<LogQueue>),
    Failed(Box<PlWasmError>, LogQueue),
}

/// Runs a scalar ABI 1 call of `entry`'s live instance for `args`, if every argument can be
/// read in place. A failed call discards the instance (it may be half-updated).
///
/// # Safety
/// `args` are the call's arguments, of the types of `entry`'s signature.
#[inline]
pub unsafe fn call(entry: &crate::entries::FunctionEntry, args: &[NullableDatum]) -> Outcome {
    let signature = &entry.signature;
    if args.len() > MAX_ARGS || args.len() != signature.args.len() {
        return Outcome::NotTaken;
    }
    let mut values = [Value::Null; MAX_ARGS];
    for ((value, ty), arg) in values.iter_mut().zip(&signature.args).zip(args) {
        // SAFETY: the caller's contract.
        match unsafe { plain_argument(*ty, arg) } {
            Some(plain) => *value = plain,
            None => return Outcome::NotTaken,
        }
    }
    let Ok(mut slot) = entry.sandbox.try_borrow_mut() else { return Outcome::NotTaken };
    let Some(sandbox) = slot.as_mut() else { return Outcome::NotTaken };
    let values = &values[..args.len()];
    // SAFETY: the closure runs after wasm has returned; result() calls nothing that raises.
    let outcome = unsafe { frame_call(sandbox, signature, values) };
    match outcome {
        Ok(converted) if !sandbox.has_logs() => Outcome::Done(converted),
        Ok(converted) => Outcome::DoneLogged(converted, Box::new(sandbox.take_logs())),
        Err(err) => {
            let logs = sandbox.take_logs();
            *slot = None;
            Outcome::Failed(Box::new(err), logs)
        }
    }
}

/// The frame call of the guarded path (`Sandbox::call_frame`), step for step, but with the
/// guest memory as the sandbox last saw it instead of two store lookups per call (a chain of
/// dependent loads that was the largest single cost of a text echo). A view's base never
/// changes (the engine never moves a memory) and its length only grows, so writing the frame
/// needs a fresh look only when the buffer lies past the view, and reading the result only
/// when the result slot or its bytes do.
///
/// # Safety
/// Must run during a call; `values` are of `signature`'s argument types.
#[inline]
unsafe fn frame_call(
    sandbox: &mut Sandbox,
    signature: &SqlSignature,
    values: &[Value<'_>],
) -> Result<Converted, PlWasmError> {
    let layout = abi::layout(values);
    let frame = sandbox.begin_frame_call(layout.total, gucs::call_limits())?;
    let mut view = sandbox.memory_view()?;
    if frame.checked_add(layout.total).is_none_or(|end| end > view.len) {
        view = sandbox.refresh_memory_view()?;
    }
    // SAFETY: no wasm runs and nothing else refers to the guest memory while this slice lives;
    // the memory has at least `view.len` bytes at `view.base` (see MemoryView).
    abi::write_frame(unsafe { guest_memory(view) }, frame, signature, values, &layout)?;
    sandbox.call_frame_entry(frame)?;
    let slot = frame + abi::SLOT_SIZE * values.len();
    let ret = signature.ret;
    // SAFETY: as above, after the call; result() copies what it keeps out of guest memory.
    let read = |view| unsafe { abi::read_result(guest_memory(view), slot, ret).and_then(|value| result(ret, value)) };
    let converted = match read(view) {
        Ok(converted) => converted,
        // The guest may have grown its memory and put the result there: look again.
        Err(_) => read(sandbox.refresh_memory_view()?)?,
    };
    sandbox.give_back_large_buffer()?;
    Ok(converted)
}

/// The guest memory a view describes.
///
/// # Safety
/// `view` is a current view of a live instance's memory (base fixed, at least `len` bytes),
/// no wasm runs, and no other reference to that memory is used while the slice lives.
#[inline]
unsafe fn guest_memory<'m>(view: MemoryView) -> &'m mut [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(view.base as *mut u8, view.len) }
}
