//! The call handler: what PostgreSQL runs for every call of a `LANGUAGE wasm` function.
//!
//! The first call at a call site (one `FmgrInfo`) reads the catalog and finds or builds the
//! function's cache entry, then parks a [`CallSite`] in `fn_extra`. Every later call at that
//! site takes the fast path: no catalog lookup, no allocation, no hash lookup, and a raw
//! (unchecked, signature-validated) wasm call.

use std::rc::Rc;

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use plwasm_core::error::PlWasmError;
use plwasm_core::host::LogQueue;
use plwasm_core::types::DatumConversion;
use plwasm_core::wasmtime::ValRaw;

use crate::backend::{self, Caller};
use crate::context::CallContext;
use crate::entries::{self, FunctionEntry, FunctionKind};
use crate::error::{emit_guest_logs, raise, OrRaise};
use crate::{aggregate, catalog, frame, frame_fast, gucs, interrupt, srf};

/// What a call site keeps between calls, in `flinfo->fn_extra`.
struct CallSite {
    /// The error context line of this function's calls (in `fn_mcxt`).
    context: *mut CallContext,
    entry: Rc<FunctionEntry>,
    engine: &'static backend::BackendEngine,
    /// Arguments in, result out: sized once for the signature.
    raw: Vec<ValRaw>,
    /// Transition functions of aggregates: the per-row path, once a row went the checked way.
    row_path: Option<aggregate::RowPath>,
    /// Scalar ABI 1 functions whose calls can take `frame_fast`'s per-row path.
    fast_frame: bool,
}

impl CallSite {
    fn takes_fast_frames(entry: &FunctionEntry) -> bool {
        matches!(entry.kind, FunctionKind::Frame) && frame_fast::eligible(&entry.signature)
    }
}

/// PostgreSQL's unguarded entry point for the per-row path. It cannot raise an error, so it
/// needs no pgrx `sigsetjmp` guard (which would cost more than the rest of the path).
mod unguarded {
    extern "C" {
        /// Compares the stack pointer with max_stack_depth (postgres.c); never reports.
        pub fn stack_is_too_deep() -> bool;
    }
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_plwasm_call_handler() -> &'static pg_sys::Pg_finfo_record {
    static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `plwasm.plwasm_call_handler() RETURNS language_handler`
///
/// Three paths. An aggregate's transition call whose site has a [`aggregate::RowPath`] only
/// queues the row (no wasm call, nothing that can raise or panic). Otherwise the fast path runs
/// when the call site is ready (entry current, instance live, ticker running, stack fine): it
/// calls nothing in PostgreSQL that can raise, catches any panic itself, and so skips pgrx's
/// per-call guard. Everything else, and every error, goes through [`guarded_call`] /
/// [`guarded_raise`], which are `#[pg_guard]`ed.
#[no_mangle]
pub unsafe extern "C-unwind" fn plwasm_call_handler(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: PostgreSQL calls a language handler with a valid fcinfo for this call.
    if let Some(datum) = unsafe { aggregate_row(fcinfo) } {
        return datum;
    }
    // SAFETY: as above.
    unsafe { call(fcinfo) }
}

/// The per-row path of an aggregate's transition: first, and outside the frame the other
/// paths need. Panic-free: it only compares, indexes within checked bounds and writes into
/// a preallocated queue.
#[inline(always)]
unsafe fn aggregate_row(fcinfo: FunctionCallInfo) -> Option<Datum> {
    // SAFETY: fcinfo is valid; fn_extra is null or a CallSite installed by install_call_site,
    // which lives as long as fn_mcxt.
    let site = unsafe { ((*(*fcinfo).flinfo).fn_extra as *const CallSite).as_ref() }?;
    // No user or staleness check per row: a row joins a state whose instance this call site
    // has already checked (and the instance is the state's, whatever the entry).
    let path = site.row_path.as_ref()?;
    // SAFETY: fcinfo is valid for this call of the function the path was made for.
    unsafe { aggregate::fast_accumulate(path, fcinfo) }
}

#[inline(never)]
unsafe fn call(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: PostgreSQL calls a language handler with a valid fcinfo for this call.
    let fast = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { fast_call(fcinfo) }));
    match fast {
        Ok(FastCall::Done(datum)) => datum,
        // SAFETY: emitting from a guarded function; nothing of this call is left to drop.
        Ok(FastCall::DoneLogged(datum, logs, site)) => unsafe { guarded_emit(logs, site, datum) },
        // SAFETY: as above; nothing has been executed for this call yet.
        Ok(FastCall::NotReady) => unsafe { guarded_call(fcinfo) },
        // SAFETY: raising from a guarded function; this frame holds nothing to drop, so the
        // longjmp PostgreSQL's error handling makes over it skips no destructor.
        Ok(FastCall::Failed(err, site, logs)) => unsafe { guarded_raise(err, site, logs) },
        // SAFETY: as guarded_raise: nothing of this call is left to drop in this frame.
        Err(panic) => unsafe { guarded_resume_panic(panic) },
    }
}

enum FastCall {
    Done(Datum),
    /// Done, and the guest logged messages to emit before returning the result.
    DoneLogged(Datum, Box<LogQueue>, *mut CallSite),
    /// Not attempted: the guarded path must set things up first.
    NotReady,
    /// Attempted and failed: emit what the guest logged, then raise this, for the function
    /// of this call site.
    /// (Boxed, so the common outcomes stay a few words.)
    Failed(Box<PlWasmError>, *mut CallSite, LogQueue),
}

/// The per-row path. Calls only `GetUserId`, `GetOuterUserId` and `stack_is_too_deep` in
/// PostgreSQL (none can raise) and never panics by design.
#[inline]
unsafe fn fast_call(fcinfo: FunctionCallInfo) -> FastCall {
    // SAFETY: fcinfo is valid; fn_extra is null or a CallSite installed by install_call_site.
    let site = unsafe { (*(*fcinfo).flinfo).fn_extra as *mut CallSite };
    if site.is_null() {
        return FastCall::NotReady;
    }
    // SAFETY: the CallSite lives as long as fn_mcxt, which outlives this call.
    let site_ref = unsafe { &mut *site };
    let numeric = matches!(site_ref.entry.kind, FunctionKind::Numeric);
    // SAFETY: stack_is_too_deep only compares addresses.
    let ready = (numeric || site_ref.fast_frame)
        && site_ref.entry.is_current(Caller::now())
        && interrupt::is_ticking()
        && !unsafe { unguarded::stack_is_too_deep() }
        && matches!(site_ref.entry.sandbox.try_borrow(), Ok(slot) if slot.is_some());
    if !ready {
        return FastCall::NotReady;
    }
    // SAFETY: fcinfo is valid; nargs matches the function's declared arguments.
    let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    if numeric {
        return match invoke(site_ref, args) {
            Ok(bits) => FastCall::Done(Datum::from(bits as usize)),
            Err(err) => FastCall::Failed(Box::new(err), site, LogQueue::default()),
        };
    }
    // SAFETY: the arguments are this call's, of the entry's signature.
    match unsafe { frame_fast::call(&site_ref.entry, args) } {
        frame_fast::Outcome::NotTaken => FastCall::NotReady,
        // SAFETY: fcinfo is valid for this call.
        frame_fast::Outcome::Done(converted) => FastCall::Done(unsafe { result_datum(fcinfo, converted) }),
        frame_fast::Outcome::DoneLogged(converted, logs) => {
            // SAFETY: as above.
            FastCall::DoneLogged(unsafe { result_datum(fcinfo, converted) }, logs, site)
        }
        frame_fast::Outcome::Failed(err, logs) => FastCall::Failed(err, site, logs),
    }
}

/// The Datum of a per-row result; a NULL is reported through `isnull`.
///
/// # Safety
/// `fcinfo` is the valid call info of the current call.
#[inline]
unsafe fn result_datum(fcinfo: FunctionCallInfo, converted: frame_fast::Converted) -> Datum {
    match converted {
        frame_fast::Converted::Datum(datum) => datum,
        frame_fast::Converted::Null => {
            // SAFETY: the caller's contract.
            unsafe { (*fcinfo).isnull = true };
            Datum::from(0)
        }
    }
}

/// Everything the fast path does not: first call at a site, a stale entry, a new user, a
/// discarded instance, a stopped ticker, a deep stack.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn guarded_call(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: see plwasm_call_handler; fn_extra is ours: null or a CallSite we installed.
    let (flinfo, site) = unsafe {
        let flinfo = (*fcinfo).flinfo;
        (flinfo, (*flinfo).fn_extra as *mut CallSite)
    };
    let user = Caller::now();
    let (site, pushed): (&mut CallSite, bool) = if site.is_null() {
        // SAFETY: flinfo is valid for this call and its fn_mcxt outlives the call site.
        unsafe { install_call_site(flinfo, user) }
    } else {
        // SAFETY: a CallSite installed by install_call_site, freed only with fn_mcxt; its
        // context record lives as long.
        let (site, pushed) = unsafe { (&mut *site, CallContext::push((*site).context)) };
        if !site.entry.is_current(user) {
            // SAFETY: flinfo is valid for this call.
            site.entry = load_entry(unsafe { (*flinfo).fn_oid }, user);
            site.raw = raw_buffer(&site.entry);
            site.row_path = None;
            site.fast_frame = CallSite::takes_fast_frames(&site.entry);
        }
        (site, pushed)
    };
    let context = site.context;
    // SAFETY: fcinfo is valid for this call of the site's function.
    let datum = unsafe { dispatch(site, fcinfo) };
    if pushed {
        // SAFETY: pushed above and, on this normal return, still on top.
        unsafe { CallContext::pop(context) };
    }
    datum
}

/// Calls the site's function by its kind. Raises on any error.
///
/// # Safety
/// `fcinfo` must be the valid call info of a call of the site's function.
unsafe fn dispatch(site: &mut CallSite, fcinfo: FunctionCallInfo) -> Datum {
    let entry = site.entry.clone();
    // SAFETY: raises PostgreSQL's own "stack depth limit exceeded" (54001) when too deep.
    unsafe { pg_sys::check_stack_depth() };
    if let FunctionKind::AggregateSupport { .. } = entry.kind {
        // Aggregates keep one instance per aggregate, not per support function.
        // SAFETY: fcinfo is valid for this call of entry's function.
        return unsafe { aggregate::call(&entry, fcinfo, &mut site.row_path) };
    }
    {
        let Ok(mut slot) = entry.sandbox.try_borrow_mut() else { raise(&PlWasmError::Reentered, &entry.name) };
        if slot.is_none() {
            *slot = Some(entry.instantiate(site.engine).or_raise(&entry.name));
        }
        entry.touch();
    }
    interrupt::ensure_ticking(&site.engine.engine).or_raise(&entry.name);
    match &entry.kind {
        FunctionKind::Numeric => {
            // SAFETY: fcinfo is valid; nargs matches the function's declared arguments.
            let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
            match invoke(site, args) {
                Ok(bits) => Datum::from(bits as usize),
                Err(err) => raise(&err, &entry.name),
            }
        }
        // SAFETY: fcinfo is valid for this call of entry's function, whose instance exists.
        FunctionKind::Frame => unsafe { frame::call(&entry, fcinfo) },
        // SAFETY: as above.
        FunctionKind::SetReturning => unsafe { srf::call(&entry, fcinfo) },
        FunctionKind::AggregateSupport { .. } => unreachable!("dispatched above"),
    }
}

/// Raises an error from the fast path, inside pgrx's guard (which turns the report into a
/// PostgreSQL ERROR), after what the guest logged.
unsafe fn guarded_raise(err: Box<PlWasmError>, site: *mut CallSite, logs: LogQueue) -> Datum {
    // SAFETY: the CallSite the fast path just used lives as long as fn_mcxt; the guard's
    // closure owns everything it drops before PostgreSQL's longjmp.
    unsafe {
        pg_sys::panic::pgrx_extern_c_guard(move || {
            let site = &*site;
            CallContext::push(site.context);
            let name = site.entry.name.clone();
            emit_guest_logs(&logs, &name);
            raise(&err, &name)
        })
    }
}

/// Emits what the guest logged during a fast-path call, inside pgrx's guard and with the
/// call's error context (as the guarded path does), then returns the call's result.
unsafe fn guarded_emit(logs: Box<LogQueue>, site: *mut CallSite, datum: Datum) -> Datum {
    // SAFETY: as guarded_raise; on a normal return the context pushed here is popped.
    unsafe {
        pg_sys::panic::pgrx_extern_c_guard(move || {
            let site = &*site;
            let pushed = CallContext::push(site.context);
            emit_guest_logs(&logs, &site.entry.name);
            if pushed {
                CallContext::pop(site.context);
            }
            datum
        })
    }
}

/// A panic caught on the fast path becomes an ERROR, not an abort.
unsafe fn guarded_resume_panic(panic: Box<dyn std::any::Any + Send>) -> Datum {
    // SAFETY: as guarded_raise; resuming inside the guard makes pgrx report it.
    unsafe { pg_sys::panic::pgrx_extern_c_guard(move || std::panic::resume_unwind(panic)) }
}

/// Converts arguments, calls the export, converts the result. Calls nothing in PostgreSQL;
/// the caller has made sure the instance exists. A trapped instance is discarded: it may be
/// half-updated, so the next call gets a fresh one.
#[inline]
fn invoke(site: &mut CallSite, args: &[pg_sys::NullableDatum]) -> Result<u64, PlWasmError> {
    let entry = &*site.entry;
    let mut slot = entry.sandbox.try_borrow_mut().map_err(|_| PlWasmError::Reentered)?;
    let sandbox = slot.as_mut().ok_or_else(|| PlWasmError::Internal { message: "no instance".into() })?;
    sandbox.arm(gucs::call_limits())?;
    for ((raw, ty), arg) in site.raw.iter_mut().zip(&entry.signature.args).zip(args) {
        *raw = ty.datum_to_wasm(arg.value.value() as u64)?;
    }
    let (store, func) = sandbox.parts();
    // SAFETY: the validator checked that the export's wasm signature is exactly the one the
    // SQL signature maps to (numeric types only, no references); `raw` holds one value of the
    // right type per parameter and has room for the result; the store owns `func`.
    let outcome = unsafe { func.call_unchecked(store, &mut site.raw[..] as *mut [ValRaw]) };
    match outcome {
        Ok(()) => entry.signature.ret.wasm_to_datum(site.raw[0]),
        Err(err) => {
            let err = sandbox.classify_call_error(err);
            *slot = None;
            Err(err)
        }
    }
}

fn raw_buffer(entry: &FunctionEntry) -> Vec<ValRaw> {
    let len = entry.signature.args.len().max(1);
    vec![ValRaw::i64(0); len]
}

#[cold]
fn load_entry(fn_oid: pg_sys::Oid, user: Caller) -> Rc<FunctionEntry> {
    let proc = catalog::read_proc(fn_oid);
    entries::function_entry(&proc, user).or_raise(&proc.name)
}

/// Builds the call site for `flinfo` and frees it with `fn_mcxt`. Its error context is
/// pushed first, so a failure to load the function carries it too; returns whether it was.
#[cold]
unsafe fn install_call_site(flinfo: *mut pg_sys::FmgrInfo, user: Caller) -> (&'static mut CallSite, bool) {
    // SAFETY: flinfo is valid for the call (caller's contract).
    let (fn_oid, mcxt) = unsafe { ((*flinfo).fn_oid, (*flinfo).fn_mcxt) };
    let proc = catalog::read_proc(fn_oid);
    // SAFETY: fn_mcxt outlives the call site, and so every push of the record.
    let (context, pushed) = unsafe {
        let context = CallContext::new(mcxt, &proc.name);
        (context, CallContext::push(context))
    };
    let entry = entries::function_entry(&proc, user).or_raise(&proc.name);
    let engine = backend::engine();
    let raw = raw_buffer(&entry);
    let fast_frame = CallSite::takes_fast_frames(&entry);
    let site = Box::into_raw(Box::new(CallSite { context, entry, engine, raw, row_path: None, fast_frame }));
    // SAFETY: the callback record is allocated in fn_mcxt, so it lives exactly as long as
    // the context whose reset or deletion runs it; it frees the Box we just leaked, once.
    unsafe {
        let callback = pg_sys::MemoryContextAlloc(mcxt, std::mem::size_of::<pg_sys::MemoryContextCallback>())
            as *mut pg_sys::MemoryContextCallback;
        (*callback).func = Some(free_call_site);
        (*callback).arg = site.cast();
        pg_sys::MemoryContextRegisterResetCallback(mcxt, callback);
        (*flinfo).fn_extra = site.cast();
        (&mut *site, pushed)
    }
}

unsafe extern "C-unwind" fn free_call_site(arg: *mut std::ffi::c_void) {
    // SAFETY: arg is the CallSite Box leaked in install_call_site; the context callback runs
    // once. Dropping it only drops Rust values (an Rc and a Vec): nothing can raise.
    drop(unsafe { Box::from_raw(arg as *mut CallSite) });
}
