//! PostgreSQL Datums to ABI 1 argument values and back.
//!
//! Arguments are detoasted and then borrowed: the core copies them into guest memory once.
//! Results are copied once, from guest memory into a new palloc'd value. Text is UTF-8 in the
//! guest; in a database with another encoding it is converted both ways.

use std::ffi::CStr;

use pgrx::pg_sys::{self, Datum, NullableDatum};
use plwasm_core::abi::Value;
use plwasm_core::error::PlWasmError;
use plwasm_core::floats;
use plwasm_core::types::{Passing, Repr, SqlType, WasmType};

/// Header of a one-dimensional array without a NULL bitmap: the struct, one dimension and one
/// lower bound, MAXALIGNed (`ARR_OVERHEAD_NONULLS(1)`).
pub(crate) const ARRAY_HEADER_1D: usize = 24;
/// `MaxArraySize`: the most elements PostgreSQL allows in one array.
const MAX_ARRAY_ELEMENTS: usize = 0x3FFF_FFFF / std::mem::size_of::<Datum>();

pub(crate) fn database_is_utf8() -> bool {
    thread_local! {
        // A backend serves one database for its whole life, so its encoding never changes.
        static UTF8: bool = {
            // SAFETY: reads the database encoding, set at connection start; cannot fail.
            unsafe { pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32 }
        };
    }
    UTF8.with(|utf8| *utf8)
}

/// Borrows argument `position` (1-based) of type `ty` for the guest.
///
/// # Safety
/// `arg` must be a valid Datum of type `ty` (or NULL) for the current call; the returned slice
/// points into it or into memory palloc'd in the current memory context.
pub unsafe fn argument<'a>(ty: SqlType, arg: &NullableDatum, position: usize) -> Result<Value<'a>, PlWasmError> {
    if arg.isnull {
        return Ok(Value::Null);
    }
    let datum = arg.value;
    // SAFETY: the caller guarantees `datum` is a value of type `ty`.
    unsafe {
        Ok(match (ty, ty.passing()) {
            (SqlType::Jsonb, _) => {
                let jsonb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
                let size = pgrx::varlena::varsize_any(jsonb.cast()) as i32;
                let cstr = pg_sys::JsonbToCString(std::ptr::null_mut(), &mut (*jsonb).root, size);
                Value::Bytes(text_to_utf8(CStr::from_ptr(cstr).to_bytes()))
            }
            (_, Passing::Bytes { utf8: true }) => Value::Bytes(text_to_utf8(varlena_bytes(datum))),
            (_, Passing::Bytes { utf8: false }) => Value::Bytes(varlena_bytes(datum)),
            (_, Passing::Array(element)) => array_elements(datum, element.byte_size(), position)?,
            // By-value types: the Datum holds the value itself.
            (_, Passing::Fixed(_) | Passing::Nothing) => Value::Fixed(datum.value() as u64),
        })
    }
}

/// The bytes of a text-like varlena, detoasted (short headers are read in place).
///
/// # Safety
/// `datum` must point to a varlena valid for the current call.
pub(crate) unsafe fn varlena_bytes<'a>(datum: Datum) -> &'a [u8] {
    // SAFETY: caller's contract; the detoasted copy (if any) lives in the current context.
    unsafe {
        let value = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        let len = pgrx::varlena::varsize_any_exhdr(value);
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(value) as *const u8, len)
    }
}

/// Server-encoded text as UTF-8 (converted, into a new palloc'd string, only if needed).
///
/// # Safety
/// Must run inside a call, where palloc and encoding conversion may raise errors.
unsafe fn text_to_utf8(bytes: &[u8]) -> &[u8] {
    // SAFETY: caller's contract.
    unsafe { convert_encoding(bytes, pg_sys::pg_server_to_any) }
}

/// UTF-8 (already checked) in the server encoding.
///
/// # Safety
/// Must run inside a call; conversion may raise an error for unmappable characters.
unsafe fn utf8_to_server(bytes: &[u8]) -> &[u8] {
    // SAFETY: caller's contract.
    unsafe { convert_encoding(bytes, pg_sys::pg_any_to_server) }
}

type Conversion = unsafe fn(*const std::ffi::c_char, i32, i32) -> *mut std::ffi::c_char;

/// Runs `conversion` (from or to UTF-8) unless the database is UTF8 already.
///
/// # Safety
/// Must run inside a call; `conversion` is pg_server_to_any or pg_any_to_server.
unsafe fn convert_encoding(bytes: &[u8], conversion: Conversion) -> &[u8] {
    if database_is_utf8() || bytes.is_empty() {
        return bytes;
    }
    // SAFETY: both conversions read `len` bytes and return either their input or a new
    // NUL-terminated palloc'd string, which lives in the current memory context.
    unsafe {
        let converted = conversion(bytes.as_ptr().cast(), bytes.len() as i32, pg_sys::pg_enc::PG_UTF8 as i32);
        if converted as *const u8 == bytes.as_ptr() {
            bytes
        } else {
            CStr::from_ptr(converted).to_bytes()
        }
    }
}

/// The elements of a one-dimensional array without NULLs, as raw little-endian bytes.
///
/// # Safety
/// `datum` must be an array Datum whose elements are `element_size`-byte by-value numbers.
unsafe fn array_elements<'a>(datum: Datum, element_size: usize, position: usize) -> Result<Value<'a>, PlWasmError> {
    // SAFETY: caller's contract; the header fields and the data area are inside the detoasted
    // array, whose data starts at `dataoffset` (or right after the header when there is no
    // NULL bitmap), per utils/array.h.
    unsafe {
        let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let dims = (*array).ndim as usize;
        if dims == 0 {
            return Ok(Value::Array { bytes: &[], count: 0 });
        }
        if dims > 1 {
            return Err(PlWasmError::ArrayNotOneDimensional { position, dims });
        }
        if pg_sys::array_contains_nulls(array) {
            return Err(PlWasmError::ArrayHasNulls { position });
        }
        let count = *(array as *const u8).add(std::mem::size_of::<pg_sys::ArrayType>()).cast::<i32>() as usize;
        let offset = match (*array).dataoffset {
            0 => ARRAY_HEADER_1D,
            explicit => explicit as usize,
        };
        let data = (array as *const u8).add(offset);
        Ok(Value::Array { bytes: std::slice::from_raw_parts(data, count * element_size), count })
    }
}

/// Builds the result Datum (copying it out of guest memory); `None` for NULL.
///
/// # Safety
/// Must run inside a call (palloc, encoding conversion and jsonb_in may raise errors).
pub unsafe fn result(ty: SqlType, value: Value<'_>) -> Result<Option<Datum>, PlWasmError> {
    // SAFETY: caller's contract; every pointer handed to PostgreSQL below points into
    // `value`, which core checked lies inside guest memory, with its length.
    unsafe {
        Ok(Some(match value {
            Value::Null => return Ok(None),
            Value::Fixed(bits) => Datum::from(bits as usize),
            Value::Bytes(bytes) => match ty {
                SqlType::Bytea => new_varlena(bytes),
                SqlType::Jsonb => {
                    // jsonb_in takes a NUL-terminated string.
                    let text = utf8_to_server(bytes);
                    let cstr = pg_sys::pnstrdup(text.as_ptr().cast(), text.len());
                    pgrx::fcinfo::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(Datum::from(cstr))])
                        .ok_or_else(|| PlWasmError::Internal { message: "jsonb_in returned NULL".into() })?
                }
                _ => new_varlena(utf8_to_server(bytes)),
            },
            Value::Array { bytes, count } => {
                let elements = array_result(ty, bytes, count)?;
                let block = pg_sys::palloc0(array_size(bytes, count)) as *mut u8;
                fill_array(block, elements, bytes, count)
            }
        }))
    }
}

/// An array result's element type (its oid, its wasm type), checked: the array type's, and
/// at most `MaxArraySize` elements.
pub(crate) fn array_result(ty: SqlType, bytes: &[u8], count: usize) -> Result<(pg_sys::Oid, WasmType), PlWasmError> {
    let (Passing::Array(element), Repr::Array { element_oid, .. }) = (ty.passing(), ty.info().repr) else {
        return Err(PlWasmError::Internal { message: format!("{} is not an array type", ty.sql_name()) });
    };
    if count > MAX_ARRAY_ELEMENTS {
        return Err(PlWasmError::ResultTooLarge {
            bytes: bytes.len() as u64,
            limit: (MAX_ARRAY_ELEMENTS * element.byte_size()) as u64,
        });
    }
    Ok((pg_sys::Oid::from(element_oid), element))
}

/// Bytes of the array [`fill_array`] lays out for `count` elements in `bytes`.
pub(crate) fn array_size(bytes: &[u8], count: usize) -> usize {
    if count == 0 {
        std::mem::size_of::<pg_sys::ArrayType>()
    } else {
        ARRAY_HEADER_1D + bytes.len()
    }
}

/// Lays out at `block` a one-dimensional array (lower bound 1) of `count` elements copied
/// from `bytes`, NaNs canonical; for no elements, the empty array (no dimensions), as
/// `construct_empty_array` makes it.
///
/// # Safety
/// `block` must be zeroed, [`array_size`] bytes, in a memory context that outlives the
/// result; `bytes` holds `count` elements of the element type.
pub(crate) unsafe fn fill_array(
    block: *mut u8,
    (element_oid, element): (pg_sys::Oid, WasmType),
    bytes: &[u8],
    count: usize,
) -> Datum {
    // SAFETY: the caller's contract; the header is laid out as utils/array.h describes for
    // no dimensions, or one dimension without a NULL bitmap, followed by the data.
    unsafe {
        let array = block as *mut pg_sys::ArrayType;
        pgrx::varlena::set_varsize_4b(array.cast(), array_size(bytes, count) as i32);
        (*array).elemtype = element_oid;
        if count > 0 {
            (*array).ndim = 1;
            let dims = block.add(std::mem::size_of::<pg_sys::ArrayType>()).cast::<i32>();
            *dims = count as i32; // dimension
            *dims.add(1) = 1; // lower bound
            let data = std::slice::from_raw_parts_mut(block.add(ARRAY_HEADER_1D), bytes.len());
            data.copy_from_slice(bytes);
            floats::canonicalize_elements(element, data);
        }
        Datum::from(array)
    }
}

/// A new varlena (text, bytea or any other 4-byte-header type) holding a copy of `bytes`.
///
/// # Safety
/// Must run inside a call (palloc may raise).
pub(crate) unsafe fn new_varlena(bytes: &[u8]) -> Datum {
    // SAFETY: cstring_to_text_with_len pallocs a varlena of len + header and copies len bytes.
    unsafe { Datum::from(pg_sys::cstring_to_text_with_len(bytes.as_ptr().cast(), bytes.len() as i32)) }
}
