//! ABI 1: every value crosses through a *frame* in the guest's linear memory.
//!
//! For each call the host writes, at an 8-aligned address `frame` inside a buffer it got from
//! the guest's `plwasm_alloc`:
//!
//! ```text
//! frame + 16*i   argument i   { u32 flags, u32 len, u64 value }   (i = 0 .. nargs)
//! frame + 16*n   result       { u32 flags, u32 len, u64 value }   (zeroed by the host)
//! frame + 16*(n+1) ...        argument payloads, each 8-aligned
//! ```
//!
//! then calls the function's export `(frame: i32) -> ()`. `flags` bit 0 means NULL. Fixed-width
//! values sit in `value` with ABI 0's conversions (i32 values sign-extended). Text, bytea and
//! jsonb are `len` bytes at guest address `value`; arrays are `len` little-endian elements at
//! `value`. The guest fills the result slot the same way; the bytes it points at must stay put
//! until the call returns (the host copies them out before anything else runs in the guest).
//!
//! Everything read back is checked here: a pointer or length outside the guest's memory, a
//! length PostgreSQL cannot store, or text that is not UTF-8 is an error, never a read outside
//! the guest's memory.

use wasmtime::ValRaw;

use crate::error::{PlWasmError, Result};
use crate::types::{DatumConversion, Passing, SqlSignature, SqlType, WasmType};

pub use plwasm_contract::names::{ALLOC_EXPORT, FREE_EXPORT, IMPORT_MODULE, MEMORY_EXPORT};
pub use plwasm_contract::slot::{Slot, FLAG_NULL, SIZE as SLOT_SIZE};
/// The largest value PostgreSQL stores in one field: 1 GB less the varlena header.
pub const MAX_VALUE_BYTES: u64 = 0x3FFF_FFFF - 4;
/// The smallest argument buffer plwasm asks for; it doubles when a call needs more.
pub const MIN_ARG_BUFFER: usize = 4096;
/// Argument buffers up to this size are kept for the next call; larger ones go back to a
/// guest that exports `plwasm_free` once the call is over.
pub const MAX_KEPT_ARG_BUFFER: usize = 1 << 20;

/// A value crossing the boundary: an argument as the extension hands it over (after
/// detoasting), or a result borrowed from guest memory until the caller has copied it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    /// A fixed-width value's Datum bits (0 for a void result).
    Fixed(u64),
    /// Text (UTF-8; checked, without NUL, when it is a result), bytea or jsonb text.
    Bytes(&'a [u8]),
    /// `count` array elements as contiguous little-endian bytes, no NULLs.
    Array {
        bytes: &'a [u8],
        count: usize,
    },
}

/// How much room a frame needs: the slots, then each payload 8-aligned, in argument order.
/// Payload offsets are not stored (nothing is allocated per call): [`payload_offsets`] walks
/// them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    /// Bytes the frame and payloads need.
    pub total: usize,
}

fn align8(n: usize) -> usize {
    n.checked_next_multiple_of(8).unwrap_or(usize::MAX)
}

/// The payload offset of each argument relative to the frame (0 for those with none).
fn payload_offsets<'v>(args: &'v [Value<'_>]) -> impl Iterator<Item = usize> + 'v {
    let mut end = SLOT_SIZE * (args.len() + 1);
    args.iter().map(move |arg| match arg {
        Value::Bytes(bytes) | Value::Array { bytes, .. } => {
            let at = end;
            // Saturating: a sum past usize is refused as too large by the caller.
            end = align8(end.saturating_add(bytes.len()));
            at
        }
        Value::Null | Value::Fixed(_) => 0,
    })
}

/// Lays out the frame for `args`: slots first, then each payload 8-aligned.
pub fn layout(args: &[Value<'_>]) -> FrameLayout {
    let mut total = SLOT_SIZE * (args.len() + 1);
    for arg in args {
        if let Value::Bytes(bytes) | Value::Array { bytes, .. } = arg {
            total = align8(total.saturating_add(bytes.len()));
        }
    }
    FrameLayout { total }
}

/// A fixed-width value as it sits in a slot's 64 bits (i32 values sign-extended).
#[inline]
pub fn fixed_to_slot(ty: WasmType, raw: ValRaw) -> u64 {
    match ty {
        WasmType::I32 => raw.get_i32() as i64 as u64,
        WasmType::I64 => raw.get_i64() as u64,
        WasmType::F32 => raw.get_f32() as u64,
        WasmType::F64 => raw.get_f64(),
    }
}

fn slot_to_fixed(ty: WasmType, value: u64) -> ValRaw {
    match ty {
        WasmType::I32 => ValRaw::i32(value as u32 as i32),
        WasmType::I64 => ValRaw::i64(value as i64),
        WasmType::F32 => ValRaw::f32(value as u32),
        WasmType::F64 => ValRaw::f64(value),
    }
}

#[inline]
fn write_slot(memory: &mut [u8], at: usize, flags: u32, len: u32, value: u64) {
    memory[at..at + SLOT_SIZE].copy_from_slice(&Slot { flags, len, value }.to_bytes());
}

/// The slot at `at`, or `None` when it is not inside `memory`.
#[inline]
fn read_slot(memory: &[u8], at: usize) -> Option<Slot> {
    let raw = memory.get(at..at.checked_add(SLOT_SIZE)?)?;
    Some(Slot::from_bytes(raw.try_into().ok()?))
}

/// Writes the frame for `args` at `frame` (the buffer has room for `layout.total` bytes):
/// one copy of each payload.
#[inline]
pub fn write_frame(
    memory: &mut [u8],
    frame: usize,
    signature: &SqlSignature,
    args: &[Value<'_>],
    layout: &FrameLayout,
) -> Result<()> {
    if frame.checked_add(layout.total).is_none_or(|end| end > memory.len()) {
        return Err(PlWasmError::Internal { message: "argument buffer outside guest memory".into() });
    }
    for (i, ((arg, ty), offset)) in args.iter().zip(&signature.args).zip(payload_offsets(args)).enumerate() {
        let slot = frame + SLOT_SIZE * i;
        match (*arg, ty.passing()) {
            (Value::Null, _) => write_slot(memory, slot, FLAG_NULL, 0, 0),
            (Value::Fixed(bits), Passing::Fixed(wasm)) => {
                write_slot(memory, slot, 0, 0, fixed_to_slot(wasm, ty.datum_to_wasm(bits)?))
            }
            (Value::Bytes(bytes), Passing::Bytes { .. }) => {
                let at = frame + offset;
                memory[at..at + bytes.len()].copy_from_slice(bytes);
                write_slot(memory, slot, 0, bytes.len() as u32, at as u64);
            }
            (Value::Array { bytes, count }, Passing::Array(_)) => {
                let at = frame + offset;
                memory[at..at + bytes.len()].copy_from_slice(bytes);
                write_slot(memory, slot, 0, count as u32, at as u64);
            }
            (other, passing) => {
                return Err(PlWasmError::Internal {
                    message: format!("argument {} given as {other:?} for {passing:?}", i + 1),
                })
            }
        }
    }
    write_slot(memory, frame + SLOT_SIZE * args.len(), 0, 0, 0);
    Ok(())
}

/// Reads and checks the result slot at `slot` for a result of type `ret`.
#[inline]
pub fn read_result(memory: &[u8], slot: usize, ret: SqlType) -> Result<Value<'_>> {
    let Some(Slot { flags, len, value }) = read_slot(memory, slot) else {
        return Err(PlWasmError::Internal { message: "result slot outside guest memory".into() });
    };
    let len = len as u64;
    if ret == SqlType::Void {
        return Ok(Value::Fixed(0));
    }
    if flags & FLAG_NULL != 0 {
        return Ok(Value::Null);
    }
    match ret.passing() {
        Passing::Nothing => Ok(Value::Fixed(0)),
        Passing::Fixed(wasm) => Ok(Value::Fixed(ret.wasm_to_datum(slot_to_fixed(wasm, value))?)),
        Passing::Bytes { utf8 } => {
            let bytes = guest_range(memory, value, len, 1, ret)?;
            if utf8 {
                check_text(bytes)?;
            }
            Ok(Value::Bytes(bytes))
        }
        Passing::Array(element) => {
            let bytes = guest_range(memory, value, len, element.byte_size() as u64, ret)?;
            Ok(Value::Array { bytes, count: len as usize })
        }
    }
}

/// The rows a set-returning call left in guest memory: `count` rows of one slot per column,
/// starting at `address`, checked to lie inside the memory. Rows are read one at a time
/// ([`RowSet::row`]), so the host never holds more than one row's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSet {
    pub count: usize,
    address: usize,
    row_bytes: usize,
}

/// Reads the result slot of a set-returning call (see [`RowSet`]); a NULL result is no rows.
pub fn row_set(memory: &[u8], slot: usize, columns: &[SqlType]) -> Result<RowSet> {
    let Some(Slot { flags, len: count, value: address }) = read_slot(memory, slot) else {
        return Err(PlWasmError::Internal { message: "result slot outside guest memory".into() });
    };
    let count = count as u64;
    let row_bytes = (SLOT_SIZE * columns.len()) as u64;
    if flags & FLAG_NULL != 0 || count == 0 {
        return Ok(RowSet { count: 0, address: 0, row_bytes: row_bytes as usize });
    }
    let end = count.checked_mul(row_bytes).and_then(|bytes| address.checked_add(bytes));
    if end.is_none_or(|end| end > memory.len() as u64) {
        return Err(PlWasmError::AbiViolation {
            what: format!(
                "The result set is {count} rows of {row_bytes} bytes at address {address}, past the end of the module's {}-byte memory",
                memory.len()
            ),
        });
    }
    Ok(RowSet { count: count as usize, address: address as usize, row_bytes: row_bytes as usize })
}

impl RowSet {
    /// The bytes of variable-length values all rows declare in their slots, read without
    /// touching the values, so a set can be refused before any of it is converted.
    pub fn declared_bytes(&self, memory: &[u8], columns: &[SqlType]) -> u64 {
        let mut total: u64 = 0;
        for row in 0..self.count {
            for (col, ty) in columns.iter().enumerate() {
                let slot = self.address + row * self.row_bytes + SLOT_SIZE * col;
                // In bounds: row_set checked the rows.
                let Slot { flags, len, .. } = read_slot(memory, slot).unwrap_or(Slot::NULL);
                let len = len as u64;
                let element = match ty.passing() {
                    _ if flags & FLAG_NULL != 0 => 0,
                    Passing::Bytes { .. } => 1,
                    Passing::Array(element) => element.byte_size() as u64,
                    Passing::Nothing | Passing::Fixed(_) => 0,
                };
                total = total.saturating_add(len * element);
            }
        }
        total
    }

    /// Row `index` (below `count`), each value checked like a single result.
    pub fn row<'m>(&self, memory: &'m [u8], index: usize, columns: &[SqlType]) -> Result<Vec<Value<'m>>> {
        let start = self.address + index * self.row_bytes;
        columns.iter().enumerate().map(|(col, ty)| read_result(memory, start + SLOT_SIZE * col, *ty)).collect()
    }
}

/// `count` items of `size` bytes at guest address `addr`, checked against the value cap and
/// the memory's bounds.
fn guest_range(memory: &[u8], addr: u64, count: u64, size: u64, ret: SqlType) -> Result<&[u8]> {
    let bytes = count * size; // count < 2^32 and size <= 8: no overflow
    if bytes > MAX_VALUE_BYTES {
        return Err(PlWasmError::ResultTooLarge { bytes, limit: MAX_VALUE_BYTES });
    }
    let in_bounds = addr.checked_add(bytes).filter(|end| *end <= memory.len() as u64);
    match in_bounds {
        Some(end) => Ok(&memory[addr as usize..end as usize]),
        None => Err(PlWasmError::AbiViolation {
            what: format!(
                "The {} result is {bytes} bytes at address {addr}, past the end of the module's {}-byte memory",
                ret.sql_name(),
                memory.len()
            ),
        }),
    }
}

/// PostgreSQL text is valid in the server encoding and has no NUL bytes.
pub fn check_text(bytes: &[u8]) -> Result<()> {
    if let Err(err) = std::str::from_utf8(bytes) {
        return Err(PlWasmError::InvalidText {
            what: format!("Byte {} of {} is not valid UTF-8", err.valid_up_to(), bytes.len()),
        });
    }
    // `contains` on bytes is memchr; find the position only for the message.
    if bytes.contains(&0) {
        let at = bytes.iter().position(|b| *b == 0).unwrap_or(0);
        return Err(PlWasmError::InvalidText { what: format!("Byte {at} of {} is a NUL byte", bytes.len()) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(args: &[SqlType], ret: SqlType) -> SqlSignature {
        SqlSignature { args: args.to_vec(), ret, strict: false, set_of: None }
    }

    #[test]
    fn frames_put_slots_first_and_payloads_8_aligned() {
        let args = [Value::Bytes(b"abc"), Value::Null, Value::Array { bytes: &[0u8; 16], count: 2 }];
        let l = layout(&args);
        assert_eq!(payload_offsets(&args).collect::<Vec<_>>(), vec![64, 0, 72]);
        assert_eq!(l.total, 88);

        let mut memory = vec![0xAAu8; 256];
        let s = sig(&[SqlType::Text, SqlType::Int4, SqlType::Float8Array], SqlType::Text);
        write_frame(&mut memory, 8, &s, &args, &l).unwrap();
        // Argument 0: len 3 at frame + 64.
        assert_eq!(&memory[8..24], &[0, 0, 0, 0, 3, 0, 0, 0, 72, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&memory[72..75], b"abc");
        // Argument 1 is NULL; the result slot is zeroed.
        assert_eq!(&memory[24..28], &[1, 0, 0, 0]);
        assert_eq!(&memory[56..72], &[0; 16]);
    }

    #[test]
    fn fixed_values_use_abi0_conversions() {
        let mut memory = vec![0u8; 64];
        let s = sig(&[SqlType::Int4], SqlType::Int2);
        let args = [Value::Fixed((-2i64) as u64)];
        write_frame(&mut memory, 0, &s, &args, &layout(&args)).unwrap();
        assert_eq!(u64::from_le_bytes(memory[8..16].try_into().unwrap()), (-2i64) as u64);
        memory[24..32].copy_from_slice(&40_000u64.to_le_bytes());
        assert!(matches!(read_result(&memory, 16, SqlType::Int2), Err(PlWasmError::ResultOutOfRange { .. })));
    }

    fn result_memory(flags: u32, len: u32, value: u64) -> Vec<u8> {
        let mut memory = vec![0u8; 64];
        write_slot(&mut memory, 0, flags, len, value);
        memory[32..37].copy_from_slice(b"hello");
        memory
    }

    #[test]
    fn results_are_bounds_checked() {
        let m = result_memory(0, 5, 32);
        assert_eq!(read_result(&m, 0, SqlType::Text).unwrap(), Value::Bytes(b"hello"));
        assert_eq!(read_result(&result_memory(FLAG_NULL, 9, 9999), 0, SqlType::Text).unwrap(), Value::Null);
        // One byte past the end, a huge address, an address that wraps.
        for (len, addr) in [(33u32, 32u64), (1, 1 << 40), (8, u64::MAX - 3)] {
            let err = read_result(&result_memory(0, len, addr), 0, SqlType::Bytea).unwrap_err();
            assert!(matches!(err, PlWasmError::AbiViolation { .. }), "{err:?}");
        }
        let err = read_result(&result_memory(0, u32::MAX, 0), 0, SqlType::Text).unwrap_err();
        assert!(matches!(err, PlWasmError::ResultTooLarge { .. }));
        // 4 float8 elements need 32 bytes: 32 + 32 = 64 fits exactly, 5 do not.
        assert!(read_result(&result_memory(0, 4, 32), 0, SqlType::Float8Array).is_ok());
        assert!(read_result(&result_memory(0, 5, 32), 0, SqlType::Float8Array).is_err());
    }

    #[test]
    fn result_sets_are_rows_of_slots() {
        let mut memory = vec![0u8; 256];
        // Two rows of (bigint, text) at 64; the text "hello" at 200.
        write_slot(&mut memory, 0, 0, 2, 64);
        write_slot(&mut memory, 64, 0, 0, 7);
        write_slot(&mut memory, 80, 0, 5, 200);
        write_slot(&mut memory, 96, 0, 0, 8);
        write_slot(&mut memory, 112, FLAG_NULL, 0, 0);
        memory[200..205].copy_from_slice(b"hello");
        let columns = [SqlType::Int8, SqlType::Text];
        let set = row_set(&memory, 0, &columns).unwrap();
        let rows: Vec<_> = (0..set.count).map(|i| set.row(&memory, i, &columns).unwrap()).collect();
        assert_eq!(rows, vec![vec![Value::Fixed(7), Value::Bytes(b"hello")], vec![Value::Fixed(8), Value::Null]]);
        assert_eq!(set.declared_bytes(&memory, &columns), 5);
        // A NULL result is no rows; rows past the end of memory are refused.
        write_slot(&mut memory, 0, FLAG_NULL, 2, 64);
        assert_eq!(row_set(&memory, 0, &[SqlType::Int8]).unwrap().count, 0);
        write_slot(&mut memory, 0, 0, 13, 64);
        assert!(matches!(row_set(&memory, 0, &[SqlType::Int8]), Err(PlWasmError::AbiViolation { .. })));
        write_slot(&mut memory, 0, 0, u32::MAX, u64::MAX - 8);
        assert!(matches!(row_set(&memory, 0, &[SqlType::Int8]), Err(PlWasmError::AbiViolation { .. })));
    }

    #[test]
    fn text_must_be_utf8_without_nul() {
        assert!(check_text("zürich".as_bytes()).is_ok());
        assert!(matches!(check_text(b"a\xffb"), Err(PlWasmError::InvalidText { .. })));
        assert!(matches!(check_text(b"a\0b"), Err(PlWasmError::InvalidText { .. })));
        let mut m = result_memory(0, 2, 32);
        m[33] = 0xC3; // a lead byte with no continuation
        assert!(matches!(read_result(&m, 0, SqlType::Text), Err(PlWasmError::InvalidText { .. })));
        // bytea takes any bytes.
        assert!(read_result(&m, 0, SqlType::Bytea).is_ok());
    }
}
