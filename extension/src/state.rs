//! `plwasm.state`: the type of every wasm aggregate's transition state.
//!
//! - **In memory** a state is a PostgreSQL *expanded object* ([`ExpandedState`]) holding the
//!   handle of a state that lives in the guest. Support functions get and return its
//!   read-write pointer, so PostgreSQL keeps it without copying (as it does for its own
//!   expanded arrays) and the per-row path updates it in place. The object has a memory
//!   context of its own, a child of the aggregate's; resetting or deleting it hands the handle
//!   back to the guest.
//! - **Flat** (when PostgreSQL stores, copies or sends a state: parallel workers, other nodes)
//!   it is the header of `plwasm_core::aggregate::flat` followed by the guest's serialized
//!   state. PostgreSQL asks for it through the object's `get_flat_size`/`flatten_into`,
//!   which call the guest's `serialize`. A flat state handed to a support function is
//!   checked against the function's module and aggregate, then deserialized into the guest.
//! - **Text and binary I/O**: `\x` followed by the flat form in hex, and the flat form's bytes.
//!   Input checks the header only; the guest part is untrusted input to the guest's
//!   `deserialize`, never read by the host.

use std::ffi::{c_void, CStr};
use std::mem::ManuallyDrop;
use std::rc::Rc;

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use plwasm_core::aggregate::flat::{self, FlatState};
use plwasm_core::error::PlWasmError;
use plwasm_core::limits::owned_copy;

use crate::agg_instances::{with_instance, SharedInstance};
use crate::error::{raise, raise_internal, OrRaise};
use crate::{gucs, marshal};

/// "plwasmST": marks memory as an [`ExpandedState`].
const STATE_MAGIC: u64 = u64::from_be_bytes(*b"plwasmST");
/// The largest flat state: what one varlena can hold.
const MAX_FLAT_BYTES: usize = 0x3FFF_FFFF;

/// A state in memory. The header must come first: PostgreSQL reaches the object through it.
#[repr(C)]
pub struct ExpandedState {
    header: pg_sys::ExpandedObjectHeader,
    magic: u64,
    pub handle: u32,
    pub instance: ManuallyDrop<Rc<SharedInstance>>,
    /// The guest's bytes `get_flat_size` fetched, for the `flatten_into` PostgreSQL calls next.
    serialized: ManuallyDrop<Option<Vec<u8>>>,
    callback: pg_sys::MemoryContextCallback,
}

impl ExpandedState {
    /// The object's read-write pointer, as a Datum points at it.
    pub fn header_rw_pointer(&self) -> *const std::ffi::c_char {
        self.header.eoh_rw_ptr.as_ptr()
    }
}

static STATE_METHODS: pg_sys::ExpandedObjectMethods =
    pg_sys::ExpandedObjectMethods { get_flat_size: Some(flat_size), flatten_into: Some(flatten_into) };

/// A new state object for `handle` of `instance`, in a new child context of `parent` (its
/// read-write pointer is [`ExpandedState::header_rw_pointer`]). Resetting or deleting the
/// context releases the handle.
///
/// # Safety
/// `parent` must be a valid memory context (the aggregate's, for a transition value).
pub unsafe fn new_state(
    instance: Rc<SharedInstance>,
    handle: u32,
    parent: pg_sys::MemoryContext,
) -> *mut ExpandedState {
    // SAFETY: the object is allocated in its own context and initialised before anything
    // reads it: the header by EOH_init_header, every other field written once. The callback
    // record inside it lives exactly as long as the context whose reset or deletion runs it,
    // which drops the Rc and the cached bytes exactly once.
    unsafe {
        let context = pg_sys::AllocSetContextCreateExtended(
            parent,
            c"plwasm aggregate state".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let state = pg_sys::MemoryContextAlloc(context, std::mem::size_of::<ExpandedState>()) as *mut ExpandedState;
        pg_sys::EOH_init_header(&raw mut (*state).header, &STATE_METHODS, context);
        (&raw mut (*state).magic).write(STATE_MAGIC);
        (&raw mut (*state).handle).write(handle);
        (&raw mut (*state).instance).write(ManuallyDrop::new(instance));
        (&raw mut (*state).serialized).write(ManuallyDrop::new(None));
        (&raw mut (*state).callback).write(pg_sys::MemoryContextCallback {
            func: Some(release_state),
            arg: state.cast(),
            next: std::ptr::null_mut(),
        });
        pg_sys::MemoryContextRegisterResetCallback(context, &raw mut (*state).callback);
        state
    }
}

unsafe extern "C-unwind" fn release_state(arg: *mut c_void) {
    // SAFETY: arg is the ExpandedState this callback was registered with; its context is being
    // reset or deleted, so nothing uses the object after this. Only Rust values are touched:
    // no PostgreSQL call, no wasm call, nothing that can raise.
    unsafe {
        let state = &mut *(arg as *mut ExpandedState);
        state.magic = 0;
        state.instance.release(state.handle);
        ManuallyDrop::drop(&mut state.instance);
        ManuallyDrop::drop(&mut state.serialized);
    }
}

/// A state argument as a support function receives it.
pub enum StateArg<'a> {
    /// A state object of this backend.
    InMemory(&'a mut ExpandedState),
    /// A flat state (from a parallel worker, a copy, text input), header checked for form.
    Flat(FlatState<'a>),
}

/// Reads state argument `datum` of SQL function `function`.
///
/// # Safety
/// `datum` must be a non-null `plwasm.state` Datum valid for the current call.
pub unsafe fn state_arg<'a>(datum: Datum, function: &str) -> StateArg<'a> {
    // SAFETY: the caller's contract; an expanded pointer is trusted as ours only if its
    // methods are ours and its magic is set.
    unsafe {
        let bytes = datum.cast_mut_ptr::<u8>();
        if is_expanded(bytes) {
            let header = pg_sys::DatumGetEOHP(datum);
            if !is_state_object(header) {
                raise(&PlWasmError::ForeignState, function);
            }
            return StateArg::InMemory(&mut *(header as *mut ExpandedState));
        }
        let flat = marshal::varlena_bytes(datum);
        StateArg::Flat(flat::parse(flat, false).or_raise(function))
    }
}

/// `VARATT_IS_EXTERNAL_EXPANDED`: a one-byte external header (0x01) with an expanded tag.
///
/// # Safety
/// `bytes` must point at a varlena.
#[inline(always)]
unsafe fn is_expanded(bytes: *const u8) -> bool {
    // SAFETY: every varlena has at least one header byte, and an external one two.
    unsafe {
        *bytes == 0x01
            && matches!(
                *bytes.add(1) as u32,
                pg_sys::vartag_external::VARTAG_EXPANDED_RO | pg_sys::vartag_external::VARTAG_EXPANDED_RW
            )
    }
}

/// The state object behind a read-write expanded pointer, for the per-row path: `None` for
/// anything else. Calls nothing in PostgreSQL.
///
/// # Safety
/// `datum` must be a non-null `plwasm.state` Datum valid for the current call.
#[inline(always)]
pub unsafe fn in_memory_rw<'a>(datum: Datum) -> Option<&'a ExpandedState> {
    // SAFETY: the caller's contract. A read-write expanded pointer is 0x01, the tag, then the
    // (unaligned) address of the object's header.
    unsafe {
        let bytes = datum.cast_mut_ptr::<u8>();
        if *bytes != 0x01 || *bytes.add(1) as u32 != pg_sys::vartag_external::VARTAG_EXPANDED_RW {
            return None;
        }
        let header = bytes.add(2).cast::<*mut pg_sys::ExpandedObjectHeader>().read_unaligned();
        is_state_object(header).then(|| &*(header as *const ExpandedState))
    }
}

/// Whether the expanded object at `header` is one of our state objects: our methods, and the
/// magic a released one no longer has.
///
/// # Safety
/// `header` must point at a live expanded object.
#[inline(always)]
unsafe fn is_state_object(header: *const pg_sys::ExpandedObjectHeader) -> bool {
    // SAFETY: the caller's contract; the magic is read only once the methods say the object
    // is an ExpandedState.
    unsafe {
        (*header).eoh_methods == &raw const STATE_METHODS && (*(header as *const ExpandedState)).magic == STATE_MAGIC
    }
}

/// The name errors about a state's own flattening use: its serialize export.
fn serialize_export(instance: &SharedInstance) -> String {
    format!("{}.serialize", instance.key.prefix)
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn flat_size(header: *mut pg_sys::ExpandedObjectHeader) -> pg_sys::Size {
    // SAFETY: PostgreSQL calls this with the header of one of our objects (STATE_METHODS).
    let state = unsafe { &mut *(header as *mut ExpandedState) };
    let instance = Rc::clone(&state.instance);
    let function = serialize_export(&instance);
    let handle = state.handle;
    if !instance.try_inner().is_some_and(|inner| inner.can_serialize()) {
        raise(&PlWasmError::StateNotSerializable, &instance.key.prefix);
    }
    let bytes = with_instance(&instance, &function, |inner| {
        inner.serialize(handle, gucs::call_limits(), |bytes| owned_copy(bytes, "a flattened aggregate state"))?
    });
    let size = pgrx::pg_sys::VARHDRSZ + flat::header_len(&instance.key.prefix) + bytes.len();
    if size > MAX_FLAT_BYTES {
        raise(&PlWasmError::ResultTooLarge { bytes: size as u64, limit: MAX_FLAT_BYTES as u64 }, &function);
    }
    *state.serialized = Some(bytes);
    size
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn flatten_into(
    header: *mut pg_sys::ExpandedObjectHeader,
    result: *mut c_void,
    allocated_size: pg_sys::Size,
) {
    // SAFETY: PostgreSQL calls this with the header of one of our objects, right after
    // get_flat_size, and a buffer of the size that returned.
    let state = unsafe { &mut *(header as *mut ExpandedState) };
    let Some(bytes) = state.serialized.take() else { raise_internal("a state flattened without its size") };
    let prefix = &state.instance.key.prefix;
    let header_len = flat::header_len(prefix);
    if allocated_size != pg_sys::VARHDRSZ + header_len + bytes.len() {
        raise_internal("a state flattened into a buffer of another size");
    }
    // SAFETY: result has allocated_size bytes (PostgreSQL's contract), written in full here:
    // the varlena header, then the flat form.
    let out = unsafe {
        pgrx::varlena::set_varsize_4b(result.cast(), allocated_size as i32);
        std::slice::from_raw_parts_mut(result as *mut u8, allocated_size)
    };
    flat::write_header(&mut out[4..4 + header_len], &state.instance.key.module_hash, prefix)
        .unwrap_or_else(|err| raise(&err, prefix));
    out[4 + header_len..].copy_from_slice(&bytes);
}

// ---- the type's I/O functions (sql/plwasm_language.sql) ----

/// A new flat state varlena holding `bytes` (checked for form).
fn flat_value(bytes: &[u8], text: bool) -> Datum {
    flat::parse(bytes, text).unwrap_or_else(|err| raise(&err, "plwasm.state"));
    // SAFETY: inside a call of an I/O function; the bytes are copied.
    unsafe { marshal::new_varlena(bytes) }
}

/// The flat bytes of state argument 0 (an in-memory state is flattened by detoasting).
///
/// # Safety
/// `fcinfo` must be a call with a non-null `plwasm.state` argument 0.
unsafe fn flat_argument<'a>(fcinfo: FunctionCallInfo) -> &'a [u8] {
    // SAFETY: the caller's contract; detoasting an expanded object flattens it.
    unsafe { marshal::varlena_bytes((*fcinfo).args.as_slice(1)[0].value) }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn state_in(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: a STRICT function of one cstring argument.
    let text = unsafe { CStr::from_ptr((*fcinfo).args.as_slice(1)[0].value.cast_mut_ptr()) };
    let bad = |why: &str| -> ! { raise(&PlWasmError::MalformedState { why: why.into(), text: true }, "plwasm.state") };
    let Some(hex_digits) = text.to_bytes().strip_prefix(b"\\x") else {
        bad("A plwasm.state is written \\x and hex digits.")
    };
    let mut bytes = Vec::new();
    if bytes.try_reserve_exact(hex_digits.len() / 2).is_err() {
        raise(&PlWasmError::OutOfMemory { bytes: hex_digits.len() as u64 / 2, what: "a plwasm.state" }, "plwasm.state");
    }
    bytes.resize(hex_digits.len() / 2, 0);
    if hex::decode_to_slice(hex_digits, &mut bytes).is_err() {
        bad("The digits after \\x are not an even number of hex digits.");
    }
    flat_value(&bytes, true)
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn state_out(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: a STRICT function of one plwasm.state argument.
    let bytes = unsafe { flat_argument(fcinfo) };
    let mut text = String::with_capacity(2 + 2 * bytes.len());
    text.push_str("\\x");
    text.push_str(&hex::encode(bytes));
    // SAFETY: pstrdup-like copy into the current context; the text has no NUL.
    unsafe {
        let out = pg_sys::palloc(text.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(text.as_ptr(), out, text.len());
        *out.add(text.len()) = 0;
        Datum::from(out)
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn state_recv(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: a STRICT function whose argument 0 is the StringInfo of the value's bytes.
    let bytes = unsafe {
        let buf = (*fcinfo).args.as_slice(1)[0].value.cast_mut_ptr::<pg_sys::StringInfoData>();
        let start = (*buf).cursor as usize;
        let end = (*buf).len as usize;
        (*buf).cursor = (*buf).len;
        std::slice::from_raw_parts((*buf).data.add(start) as *const u8, end.saturating_sub(start))
    };
    flat_value(bytes, false)
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn state_send(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: a STRICT function of one plwasm.state argument.
    let bytes = unsafe { flat_argument(fcinfo) };
    // SAFETY: inside a call; copies the bytes into a new bytea in the current context.
    unsafe { marshal::new_varlena(bytes) }
}

/// Version-1 C entry points for the I/O functions: PostgreSQL calls them by these names.
macro_rules! v1_functions {
    ($($name:ident => $finfo:ident, $body:ident;)*) => {$(
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[no_mangle]
        #[doc(hidden)]
        pub unsafe extern "C-unwind" fn $name(fcinfo: FunctionCallInfo) -> Datum {
            // SAFETY: PostgreSQL calls the function with a valid fcinfo of its declared arguments.
            unsafe { $body(fcinfo) }
        }
    )*};
}

v1_functions! {
    plwasm_state_in => pg_finfo_plwasm_state_in, state_in;
    plwasm_state_out => pg_finfo_plwasm_state_out, state_out;
    plwasm_state_recv => pg_finfo_plwasm_state_recv, state_recv;
    plwasm_state_send => pg_finfo_plwasm_state_send, state_send;
}
