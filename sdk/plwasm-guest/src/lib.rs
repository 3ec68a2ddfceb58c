//! Write plwasm SQL functions as plain Rust, built for `wasm32-unknown-unknown`.
//!
//! ```ignore
//! use plwasm_guest::{export, Error};
//!
//! #[export]
//! fn slugify(s: &str) -> String { /* ... */ }
//!
//! #[export]
//! fn dot(a: &[f64], b: &[f64]) -> Result<f64, Error> {
//!     if a.len() != b.len() {
//!         return Err(Error::invalid_parameter("vectors differ in length"));
//!     }
//!     Ok(a.iter().zip(b).map(|(x, y)| x * y).sum())
//! }
//! ```
//!
//! Then, in SQL: `SELECT plwasm.install_module('vec', ...)` and
//! `SELECT plwasm.create_functions('vec')`, which creates every exported function with the
//! SQL signature the attribute recorded.
//!
//! This crate implements plwasm's ABI 1 (`docs/abi.md`): it exports `plwasm_abi_v1`,
//! `plwasm_alloc` and the frame wrappers; user code needs no `unsafe`. Types:
//!
//! | Rust | SQL |
//! |---|---|
//! | `bool`, `i16`, `i32`, `i64`, `f32`, `f64` | boolean, smallint, integer, bigint, real, double precision |
//! | `&str`, `String` | text |
//! | `&[u8]`, `Vec<u8>` | bytea |
//! | `&[i32]`, `&[i64]`, `&[f32]`, `&[f64]` (or `Vec`) | integer[], bigint[], real[], double precision[] |
//! | `Jsonb<&str>`, `Jsonb<String>` | jsonb, as JSON text |
//! | [`Date`], [`Timestamp`], [`TimestampTz`] | date (days since 1970), timestamp/timestamptz (µs since 1970) |
//! | `Option<T>` | T, NULL as `None` |
//! | `Result<T, Error>` (results) | T, or an ERROR |
//! | `()` (results) | void |

pub use plwasm_guest_macros::{aggregate, export, State};

// The macros name `::plwasm_guest`; this lets them work inside the crate too (its tests).
extern crate self as plwasm_guest;

use plwasm_contract::names::{self, log_level};

use std::any::Any;
use std::cell::RefCell;

/// A `date`: days since 1970-01-01 (`i32::MIN`/`i32::MAX` are -infinity/infinity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

/// A `timestamp`: microseconds since 1970-01-01 00:00:00 (`i64::MIN`/`MAX` are ±infinity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A `timestamptz`: microseconds since 1970-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimestampTz(pub i64);

/// A `jsonb` value as JSON text: `Jsonb<&str>` as an argument, `Jsonb<String>` as a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsonb<T>(pub T);

/// An SQL error the function raises: a SQLSTATE and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    sqlstate: [u8; 5],
    message: String,
}

impl Error {
    /// An error with SQLSTATE `sqlstate` (five digits or upper-case letters; classes the server
    /// reserves, such as XX or 57, become 38000).
    pub fn new(sqlstate: &str, message: impl Into<String>) -> Error {
        let mut code = *b"38000";
        if sqlstate.len() == 5 {
            code.copy_from_slice(sqlstate.as_bytes());
        }
        Error { sqlstate: code, message: message.into() }
    }

    /// 22023 invalid_parameter_value.
    pub fn invalid_parameter(message: impl Into<String>) -> Error {
        Error::new("22023", message)
    }

    /// 22P02 invalid_text_representation: input that does not parse.
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::new("22P02", message)
    }

    /// P0001 raise_exception, as PL/pgSQL's plain RAISE EXCEPTION.
    pub fn raise_exception(message: impl Into<String>) -> Error {
        Error::new("P0001", message)
    }

    /// Ends the call with this error.
    pub fn raise(self) -> ! {
        host::raise(&self.sqlstate, &self.message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, String::from_utf8_lossy(&self.sqlstate))
    }
}

impl std::error::Error for Error {}

/// An aggregate state that can be made flat: what PostgreSQL stores, sends to parallel workers
/// and other nodes. `#[derive(State)]` writes it field by field for structs whose fields
/// implement [`Field`]; an aggregate may instead write its own `serialize`/`deserialize`.
/// The bytes `from_bytes` gets are untrusted: refuse what does not decode.
#[diagnostic::on_unimplemented(
    message = "the aggregate state `{Self}` has no flat form",
    note = "add #[derive(plwasm_guest::State)] to it, or write serialize(&self) -> Vec<u8> and deserialize(&[u8]) -> Self in the #[aggregate] block"
)]
pub trait State: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, Error>;
}

/// A value `#[derive(State)]` can write: numbers and `bool` little-endian, `Vec`, `String`,
/// `Option`, arrays, tuples and `BTreeMap` with a length or tag first.
pub trait Field: Sized {
    fn put(&self, out: &mut Vec<u8>);
    /// Reads one value from the front of `input`, advancing it.
    fn take(input: &mut &[u8]) -> Result<Self, Error>;
}

fn truncated() -> Error {
    Error::new("22P03", "the aggregate state is cut short")
}

fn take_bytes<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if input.len() < n {
        return Err(truncated());
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

macro_rules! numeric_fields {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn take(input: &mut &[u8]) -> Result<Self, Error> {
                let bytes = take_bytes(input, std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(bytes.try_into().map_err(|_| truncated())?))
            }
        }
    )*};
}

numeric_fields!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl Field for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8)
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        match u8::take(input)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::new("22P03", "the aggregate state holds a bad boolean")),
        }
    }
}

/// A length, checked against the bytes left (every element takes at least one byte) before
/// anything is allocated for it.
fn take_len(input: &mut &[u8]) -> Result<usize, Error> {
    let len = u64::take(input)?;
    if len > input.len() as u64 {
        return Err(truncated());
    }
    Ok(len as usize)
}

impl<T: Field> Field for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        self.iter().for_each(|item| item.put(out));
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        let len = take_len(input)?;
        (0..len).map(|_| T::take(input)).collect()
    }
}

impl Field for String {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        let len = take_len(input)?;
        String::from_utf8(take_bytes(input, len)?.to_vec())
            .map_err(|_| Error::new("22P03", "the aggregate state holds text that is not UTF-8"))
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.put(out);
            }
        }
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        Ok(if bool::take(input)? { Some(T::take(input)?) } else { None })
    }
}

impl<T: Field + Copy + Default, const N: usize> Field for [T; N] {
    fn put(&self, out: &mut Vec<u8>) {
        self.iter().for_each(|item| item.put(out));
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        let mut array = [T::default(); N];
        for item in &mut array {
            *item = T::take(input)?;
        }
        Ok(array)
    }
}

impl<A: Field, B: Field> Field for (A, B) {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        Ok((A::take(input)?, B::take(input)?))
    }
}

impl<K: Field + Ord, V: Field> Field for std::collections::BTreeMap<K, V> {
    fn put(&self, out: &mut Vec<u8>) {
        (self.len() as u64).put(out);
        for (key, value) in self {
            key.put(out);
            value.put(out);
        }
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        let len = take_len(input)?;
        (0..len).map(|_| <(K, V)>::take(input)).collect()
    }
}

impl Field for Date {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out)
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        i32::take(input).map(Date)
    }
}

impl Field for Timestamp {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out)
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        i64::take(input).map(Timestamp)
    }
}

impl Field for TimestampTz {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out)
    }
    fn take(input: &mut &[u8]) -> Result<Self, Error> {
        i64::take(input).map(TimestampTz)
    }
}

/// Sends a NOTICE to the client once the call returns.
pub fn notice(message: &str) {
    host::log(log_level::NOTICE, message)
}

/// Sends a WARNING to the client once the call returns.
pub fn warning(message: &str) {
    host::log(log_level::WARNING, message)
}

/// Sends an INFO message to the client once the call returns.
pub fn info(message: &str) {
    host::log(log_level::INFO, message)
}

/// Writes a LOG line to the server log once the call returns.
pub fn log(message: &str) {
    host::log(log_level::LOG, message)
}

/// The host functions, and stand-ins for builds that are not wasm (so `cargo test` of a guest
/// crate runs its plain Rust logic natively).
mod host {
    // Attribute values must be literals; check them against the contract.
    const _: () = assert!(super::names::same(super::names::IMPORT_MODULE, "plwasm"));
    const _: () = assert!(super::names::same(super::names::RAISE_IMPORT, "raise"));
    const _: () = assert!(super::names::same(super::names::LOG_IMPORT, "log"));

    #[cfg(target_arch = "wasm32")]
    mod imports {
        #[link(wasm_import_module = "plwasm")]
        extern "C" {
            pub fn raise(sqlstate: *const u8, message: *const u8, message_len: usize);
            pub fn log(level: i32, message: *const u8, message_len: usize);
        }
    }

    #[cfg(target_arch = "wasm32")]
    pub fn raise(sqlstate: &[u8; 5], message: &str) -> ! {
        // SAFETY: both pointers and the length describe live memory of this module; the host
        // reads them and ends the call, so control never comes back.
        unsafe { imports::raise(sqlstate.as_ptr(), message.as_ptr(), message.len()) };
        unreachable!("plwasm.raise returned")
    }

    #[cfg(target_arch = "wasm32")]
    pub fn log(level: i32, message: &str) {
        // SAFETY: the host copies `message_len` bytes at `message` before returning.
        unsafe { imports::log(level, message.as_ptr(), message.len()) }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn raise(sqlstate: &[u8; 5], message: &str) -> ! {
        panic!("{}: {message}", String::from_utf8_lossy(sqlstate))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn log(level: i32, message: &str) {
        eprintln!("plwasm log level {level}: {message}")
    }
}

const _: () = assert!(names::same(names::ABI1_EXPORT, "plwasm_abi_v1"));
const _: () = assert!(names::same(names::ALLOC_EXPORT, "plwasm_alloc"));

/// The ABI 1 declaration: a module that exports this name targets ABI 1.
#[no_mangle]
pub extern "C" fn plwasm_abi_v1() {}

/// The allocator the host uses for argument buffers: 8-aligned, 0 on failure.
#[no_mangle]
pub extern "C" fn plwasm_alloc(size: i32) -> i32 {
    let align = plwasm_contract::slot::ALIGN;
    let Ok(layout) = std::alloc::Layout::from_size_align((size as u32 as usize).max(1), align) else { return 0 };
    // SAFETY: the layout has a non-zero size. The block is handed to the host for good.
    unsafe { std::alloc::alloc(layout) as usize as i32 }
}

const _: () = assert!(names::same(names::FREE_EXPORT, "plwasm_free"));

/// Takes back a buffer `plwasm_alloc` gave the host.
#[no_mangle]
pub extern "C" fn plwasm_free(address: i32, size: i32) {
    let align = plwasm_contract::slot::ALIGN;
    let Ok(layout) = std::alloc::Layout::from_size_align((size as u32 as usize).max(1), align) else { return };
    if address != 0 {
        // SAFETY: the host hands back each block it got from plwasm_alloc once, with its size.
        unsafe { std::alloc::dealloc(address as u32 as usize as *mut u8, layout) }
    }
}

thread_local! {
    /// The last result's storage, kept until the next call so the host can copy it out.
    static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A `RETURNS SETOF t` result: one row per element.
pub struct SetOf<T>(pub Vec<T>);

/// A `RETURNS TABLE (...)` result: one row per tuple. Name the columns with
/// `#[export(columns = "a, b")]`.
pub struct Table<R>(pub Vec<R>);

/// Plumbing for `#[export]`; not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    use plwasm_contract::batch;
    pub use plwasm_contract::slot::Slot;
    use plwasm_contract::slot::FLAG_NULL as NULL;

    /// The end of a derived `State::from_bytes`: nothing may be left over.
    pub fn finish_state(rest: &[u8]) -> Result<(), Error> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Error::new("22P03", format!("the aggregate state has {} bytes too many", rest.len())))
        }
    }

    /// A NULL for a non-`Option` argument: the result is NULL.
    pub struct Missing;

    impl Missing {
        pub fn into_result(self, result: &mut Slot) {
            result.flags = NULL;
        }
    }

    /// Runs one exported call on the frame at `frame` with `nargs` arguments.
    pub fn call(frame: u32, nargs: usize, body: impl FnOnce(&[Slot], &mut Slot)) {
        install_panic_hook();
        HELD.with(|held| held.borrow_mut().clear());
        // SAFETY: the host wrote nargs + 1 slots at `frame`, 8-aligned, inside this module's
        // memory, and nothing else refers to them during the call.
        let slots = unsafe { std::slice::from_raw_parts_mut(frame as usize as *mut Slot, nargs + 1) };
        let (args, result) = slots.split_at_mut(nargs);
        body(args, &mut result[0]);
    }

    fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let message = info.payload_as_str().unwrap_or("panic");
                let location = info.location().map(|l| format!(" (panic at {}:{})", l.file(), l.line()));
                Error::new("38000", format!("{message}{}", location.unwrap_or_default())).raise();
            }))
        });
    }

    /// Reads an argument from its slot.
    pub trait FromSlot<'a>: Sized {
        fn from_slot(slot: &'a Slot) -> Result<Self, Missing>;
    }

    /// Writes a result into the result slot.
    pub trait IntoSlot {
        fn into_slot(self, slot: &mut Slot);
    }

    fn present(slot: &Slot) -> Result<&Slot, Missing> {
        if slot.is_null() {
            Err(Missing)
        } else {
            Ok(slot)
        }
    }

    /// The `len` items of type `T` the slot points at.
    fn items<T>(slot: &Slot) -> &[T] {
        if slot.len == 0 {
            return &[];
        }
        // SAFETY: the host placed `len` items of T at `value`, aligned to 8, inside this
        // module's memory, valid and unaliased for the whole call.
        unsafe { std::slice::from_raw_parts(slot.value as usize as *const T, slot.len as usize) }
    }

    macro_rules! fixed {
        ($($t:ty => |$v:ident| $read:expr, |$w:ident| $write:expr;)*) => {$(
            impl<'a> FromSlot<'a> for $t {
                fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
                    let $v = present(slot)?.value;
                    Ok($read)
                }
            }
            impl IntoSlot for $t {
                fn into_slot(self, slot: &mut Slot) {
                    let $w = self;
                    slot.value = $write;
                }
            }
        )*};
    }

    fixed! {
        bool => |v| v != 0, |x| x as u64;
        i16 => |v| v as i16, |x| x as i64 as u64;
        i32 => |v| v as i32, |x| x as i64 as u64;
        i64 => |v| v as i64, |x| x as u64;
        f32 => |v| f32::from_bits(v as u32), |x| x.to_bits() as u64;
        f64 => |v| f64::from_bits(v), |x| x.to_bits();
        Date => |v| Date(v as i32), |x| x.0 as i64 as u64;
        Timestamp => |v| Timestamp(v as i64), |x| x.0 as u64;
        TimestampTz => |v| TimestampTz(v as i64), |x| x.0 as u64;
    }

    impl<'a> FromSlot<'a> for &'a str {
        fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
            let bytes = items::<u8>(present(slot)?);
            // The host passes text as checked UTF-8; a lossy fallback keeps this free of UB.
            Ok(std::str::from_utf8(bytes).unwrap_or("\u{FFFD}"))
        }
    }

    impl<'a> FromSlot<'a> for String {
        fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
            <&str>::from_slot(slot).map(str::to_owned)
        }
    }

    impl<'a> FromSlot<'a> for Jsonb<&'a str> {
        fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
            <&str>::from_slot(slot).map(Jsonb)
        }
    }

    impl<'a> FromSlot<'a> for Jsonb<String> {
        fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
            String::from_slot(slot).map(Jsonb)
        }
    }

    macro_rules! slices {
        ($($t:ty),*) => {$(
            impl<'a> FromSlot<'a> for &'a [$t] {
                fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
                    Ok(items::<$t>(present(slot)?))
                }
            }
            impl<'a> FromSlot<'a> for Vec<$t> {
                fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
                    Ok(items::<$t>(present(slot)?).to_vec())
                }
            }
            impl IntoSlot for Vec<$t> {
                fn into_slot(self, slot: &mut Slot) {
                    hold(self, slot, |v| (v.as_ptr() as usize, v.len()));
                }
            }
            impl IntoSlot for &'static [$t] {
                fn into_slot(self, slot: &mut Slot) {
                    set(slot, self.as_ptr() as usize, self.len());
                }
            }
        )*};
    }

    slices!(u8, i32, i64, f32, f64);

    fn set(slot: &mut Slot, address: usize, len: usize) {
        slot.flags = 0;
        slot.len = len as u32;
        slot.value = address as u64;
    }

    /// Keeps `value` alive until the next call and points the slot at its contents.
    fn hold<T: Any>(value: T, slot: &mut Slot, view: impl FnOnce(&T) -> (usize, usize)) {
        let boxed = Box::new(value);
        let (address, len) = view(&boxed);
        set(slot, address, len);
        HELD.with(|held| held.borrow_mut().push(boxed));
    }

    /// Writes rows of `columns` slots each and points the result slot at them.
    fn rows<T>(items: Vec<T>, columns: usize, result: &mut Slot, mut write: impl FnMut(T, &mut [Slot])) {
        let count = items.len();
        let mut slots: Vec<Slot> = vec![Slot::default(); count * columns];
        for (item, row) in items.into_iter().zip(slots.chunks_exact_mut(columns.max(1))) {
            write(item, row);
        }
        hold(slots, result, |s| (s.as_ptr() as usize, count));
    }

    impl<T: IntoSlot> IntoSlot for SetOf<T> {
        fn into_slot(self, slot: &mut Slot) {
            rows(self.0, 1, slot, |item, row| item.into_slot(&mut row[0]));
        }
    }

    /// A tuple that fills one row of a `Table`.
    pub trait IntoRow {
        const COLUMNS: usize;
        fn into_row(self, row: &mut [Slot]);
    }

    macro_rules! tuples {
        ($($n:literal: $($t:ident $i:tt),*;)*) => {$(
            impl<$($t: IntoSlot),*> IntoRow for ($($t,)*) {
                const COLUMNS: usize = $n;
                fn into_row(self, row: &mut [Slot]) {
                    $(self.$i.into_slot(&mut row[$i]);)*
                }
            }
        )*};
    }

    tuples! {
        1: A 0;
        2: A 0, B 1;
        3: A 0, B 1, C 2;
        4: A 0, B 1, C 2, D 3;
        5: A 0, B 1, C 2, D 3, E 4;
        6: A 0, B 1, C 2, D 3, E 4, F 5;
    }

    impl<R: IntoRow> IntoSlot for Table<R> {
        fn into_slot(self, slot: &mut Slot) {
            rows(self.0, R::COLUMNS, slot, |item, row| item.into_row(row));
        }
    }

    // ---- aggregates (see docs/abi.md, "Aggregates") ----

    /// A new boxed state; its address is the handle.
    pub fn agg_new<T: Default>() -> i32 {
        install_panic_hook();
        Box::into_raw(Box::new(T::default())) as usize as i32
    }

    /// The state behind a handle.
    ///
    /// # Safety
    /// `handle` must come from `agg_new` or `agg_adopt` for the same `T` and not be freed.
    pub unsafe fn agg_state<'a, T>(handle: u64) -> &'a mut T {
        // SAFETY: the host passes back only handles this module made for this aggregate.
        unsafe { &mut *(handle as u32 as usize as *mut T) }
    }

    /// Boxes a state made by `deserialize` and returns its handle.
    pub fn agg_adopt<T>(state: T) -> u64 {
        Box::into_raw(Box::new(state)) as usize as u64
    }

    /// What `deserialize` may return: the state, or an error to raise.
    pub trait IntoState<T> {
        fn into_state(self) -> T;
    }

    impl<T> IntoState<T> for T {
        fn into_state(self) -> T {
            self
        }
    }

    impl<T> IntoState<T> for Result<T, Error> {
        fn into_state(self) -> T {
            self.unwrap_or_else(|err| err.raise())
        }
    }

    /// Frees a state.
    pub fn agg_free<T>(handle: i32) {
        // SAFETY: the host frees each handle it got from new/deserialize once.
        drop(unsafe { Box::from_raw(handle as u32 as usize as *mut T) });
    }

    /// Calls `row(state, args)` for each of the `count` rows at `address`, each with `nargs`
    /// values. `bytes[i]` says whether argument `i` is text or bytea (a payload reference).
    ///
    /// Consecutive rows of one state (what a sorted group or a single-group aggregate hands
    /// over) update a copy of the state on the stack, written back when the run ends, so the
    /// compiler can keep its fields in registers instead of storing them after every row.
    /// `row` is called from one place only, so that the compiler inlines it however large
    /// it is (a call per row costs more than many small aggregates' own work).
    #[inline(always)]
    pub fn agg_rows<T>(address: i32, count: i32, nargs: usize, bytes: &[bool], mut row: impl FnMut(&mut T, &[Slot])) {
        install_panic_hook();
        let count = count as u32 as usize;
        let words_per_row = batch::words_per_row(nargs);
        // SAFETY: the host wrote `count` rows of `words_per_row` u64 words at `address`,
        // 8-aligned, inside this module's memory, followed by the payload area.
        let words = unsafe { std::slice::from_raw_parts(address as u32 as usize as *const u64, count * words_per_row) };
        let payload = address as u32 as usize + batch::payload_start(nargs, count);
        let mut slot_array = [Slot::default(); batch::MAX_ARGS];
        let slots = &mut slot_array[..nargs.min(batch::MAX_ARGS)];
        // The state of the current run of rows, copied out of `*current` (when `current` is
        // not null).
        // SAFETY (for the reads and writes below): every header's handle is a live state this
        // module made for this aggregate. The copy is the only one used until it is written
        // back over the original, without dropping either: one owner at a time. A guest
        // failure in between (a trap, a raise) ends the call and the host discards the
        // instance, so the stale original is never used.
        let mut current: *mut T = std::ptr::null_mut();
        let mut state = std::mem::MaybeUninit::<T>::uninit();
        for chunk in words.chunks_exact(words_per_row) {
            let at = row_slots(chunk, payload, bytes, slots) as usize as *mut T;
            if at != current || current.is_null() {
                if !current.is_null() {
                    // SAFETY: see above; `state` holds the run's copy of `*current`.
                    unsafe { std::ptr::write(current, state.assume_init_read()) };
                }
                // SAFETY: see above.
                state.write(unsafe { std::ptr::read(at) });
                current = at;
            }
            // SAFETY: `state` was written when this run began.
            row(unsafe { state.assume_init_mut() }, slots);
        }
        if !current.is_null() {
            // SAFETY: see above.
            unsafe { std::ptr::write(current, state.assume_init_read()) };
        }
    }

    /// Fills `slots` from one batch row (`chunk`: header and value words) whose text and
    /// bytea values lie in the payload area at address `payload`; returns the row's handle.
    #[inline(always)]
    pub(crate) fn row_slots(chunk: &[u64], payload: usize, bytes: &[bool], slots: &mut [Slot]) -> u32 {
        let (handle, nulls) = batch::split_header(chunk[0]);
        for (i, slot) in slots.iter_mut().enumerate() {
            let word = chunk[1 + i];
            slot.flags = (nulls >> i) & NULL;
            if bytes[i] {
                let (offset, len) = batch::split_payload_ref(word);
                slot.len = len;
                slot.value = (payload + offset as usize) as u64;
            } else {
                slot.len = 0;
                slot.value = word;
            }
        }
        handle
    }

    impl IntoSlot for String {
        fn into_slot(self, slot: &mut Slot) {
            hold(self, slot, |s| (s.as_ptr() as usize, s.len()));
        }
    }

    impl IntoSlot for &'static str {
        fn into_slot(self, slot: &mut Slot) {
            set(slot, self.as_ptr() as usize, self.len());
        }
    }

    impl IntoSlot for Jsonb<String> {
        fn into_slot(self, slot: &mut Slot) {
            self.0.into_slot(slot)
        }
    }

    impl IntoSlot for () {
        fn into_slot(self, _slot: &mut Slot) {}
    }

    impl<T: IntoSlot> IntoSlot for Option<T> {
        fn into_slot(self, slot: &mut Slot) {
            match self {
                Some(value) => value.into_slot(slot),
                None => slot.flags = NULL,
            }
        }
    }

    impl<T: IntoSlot> IntoSlot for Result<T, Error> {
        fn into_slot(self, slot: &mut Slot) {
            match self {
                Ok(value) => value.into_slot(slot),
                Err(err) => err.raise(),
            }
        }
    }

    impl<'a, T: FromSlot<'a>> FromSlot<'a> for Option<T> {
        fn from_slot(slot: &'a Slot) -> Result<Self, Missing> {
            if slot.is_null() {
                Ok(None)
            } else {
                T::from_slot(slot).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests;
