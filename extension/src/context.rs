//! The `CONTEXT: wasm function "f"` line of every error raised while a wasm function's call
//! is handled (ours and PostgreSQL's: a cancel, a bad jsonb result), as PL/pgSQL and
//! PL/Python add theirs: an `ErrorContextCallback` pushed for the call.
//!
//! The record lives in the call site's `fn_mcxt`, not on the stack: plwasm's own errors
//! unwind Rust frames first and are reported at the `#[pg_guard]` boundary, where
//! PostgreSQL then runs the callback. So it is pushed on entry, popped on a normal return,
//! and left for PostgreSQL's error recovery (which restores `error_context_stack`) on an
//! error.

use std::ffi::{c_char, c_int, c_void, CString};

use pgrx::pg_sys;

extern "C" {
    // elog.h's errcontext() is a macro over these two; pgrx binds neither (one is variadic).
    fn set_errcontext_domain(domain: *const c_char) -> c_int;
    fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
}

/// One function's context record.
#[repr(C)]
pub struct CallContext {
    callback: pg_sys::ErrorContextCallback,
}

impl CallContext {
    /// A record for function `name`, allocated (with a copy of the name) in `mcxt`.
    ///
    /// # Safety
    /// `mcxt` must be a valid memory context that outlives every push of the record.
    pub unsafe fn new(mcxt: pg_sys::MemoryContext, name: &str) -> *mut CallContext {
        let name = CString::new(name.replace('\0', "")).unwrap_or_default();
        // SAFETY: both allocations are in mcxt (the caller's contract); the name is copied.
        unsafe {
            let copy = pg_sys::MemoryContextStrdup(mcxt, name.as_ptr());
            let record = pg_sys::MemoryContextAlloc(mcxt, std::mem::size_of::<CallContext>()) as *mut CallContext;
            (*record).callback = pg_sys::ErrorContextCallback {
                previous: std::ptr::null_mut(),
                callback: Some(add_context_line),
                arg: copy.cast(),
            };
            record
        }
    }

    /// Pushes `record` onto PostgreSQL's error context stack, unless it is already on top.
    /// Returns whether it was pushed (and so must be popped).
    ///
    /// # Safety
    /// `record` comes from [`CallContext::new`] and is still allocated.
    pub unsafe fn push(record: *mut CallContext) -> bool {
        // SAFETY: a backend-global list of records that are alive while on the stack.
        unsafe {
            let callback = &raw mut (*record).callback;
            if pg_sys::error_context_stack == callback {
                return false;
            }
            (*callback).previous = pg_sys::error_context_stack;
            pg_sys::error_context_stack = callback;
            true
        }
    }

    /// Pops `record`, pushed by [`CallContext::push`], on a normal return.
    ///
    /// # Safety
    /// `record` is on top of the error context stack.
    pub unsafe fn pop(record: *mut CallContext) {
        // SAFETY: the caller's contract.
        unsafe { pg_sys::error_context_stack = (*record).callback.previous };
    }
}

unsafe extern "C-unwind" fn add_context_line(arg: *mut c_void) {
    // SAFETY: arg is the NUL-terminated name CallContext::new copied; PostgreSQL calls this
    // while it builds an error report, where errcontext is allowed.
    unsafe {
        set_errcontext_domain(c"plwasm".as_ptr());
        errcontext_msg(c"wasm function \"%s\"".as_ptr(), arg as *const c_char);
    }
}
