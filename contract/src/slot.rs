//! The ABI 1 frame slot: one argument or the result of a call (docs/abi.md).
//!
//! ```text
//! frame + 16*i      argument i   { u32 flags, u32 len, u64 value }   (i = 0 .. nargs)
//! frame + 16*n      result       { u32 flags, u32 len, u64 value }   (zeroed by the host)
//! frame + 16*(n+1)  ...          argument payloads, each 8-aligned
//! ```
//!
//! All fields are little-endian (wasm memory always is).

/// One frame slot as the guest sees it in its memory.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    pub flags: u32,
    /// Bytes (text, bytea, jsonb) or elements (arrays) at `value`; rows for a set result.
    pub len: u32,
    /// A fixed-width value's bits, or the guest address of the payload.
    pub value: u64,
}

/// Bytes per slot.
pub const SIZE: usize = 16;
/// Offsets of the fields within a slot.
pub const FLAGS_AT: usize = 0;
pub const LEN_AT: usize = 4;
pub const VALUE_AT: usize = 8;
/// Payloads (and frames) are aligned to this many bytes.
pub const ALIGN: usize = 8;

/// `flags` bit: the value is NULL.
pub const FLAG_NULL: u32 = 1;

// The struct is the layout: a guest reads slots through it.
const _: () = assert!(core::mem::size_of::<Slot>() == SIZE);
const _: () = assert!(core::mem::offset_of!(Slot, flags) == FLAGS_AT);
const _: () = assert!(core::mem::offset_of!(Slot, len) == LEN_AT);
const _: () = assert!(core::mem::offset_of!(Slot, value) == VALUE_AT);

impl Slot {
    pub const NULL: Slot = Slot { flags: FLAG_NULL, len: 0, value: 0 };

    pub const fn is_null(&self) -> bool {
        self.flags & FLAG_NULL != 0
    }

    /// The slot's 16 bytes as they sit in memory.
    #[inline]
    pub fn to_bytes(self) -> [u8; SIZE] {
        let mut bytes = [0u8; SIZE];
        bytes[FLAGS_AT..LEN_AT].copy_from_slice(&self.flags.to_le_bytes());
        bytes[LEN_AT..VALUE_AT].copy_from_slice(&self.len.to_le_bytes());
        bytes[VALUE_AT..SIZE].copy_from_slice(&self.value.to_le_bytes());
        bytes
    }

    /// A slot read from its 16 bytes.
    #[inline]
    pub fn from_bytes(bytes: [u8; SIZE]) -> Slot {
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mut value = [0u8; 8];
        value.copy_from_slice(&bytes[VALUE_AT..SIZE]);
        Slot { flags: word(FLAGS_AT), len: word(LEN_AT), value: u64::from_le_bytes(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_through_bytes() {
        let slot = Slot { flags: FLAG_NULL, len: 7, value: 0x0102_0304_0506_0708 };
        assert_eq!(Slot::from_bytes(slot.to_bytes()), slot);
        assert_eq!(slot.to_bytes()[VALUE_AT], 0x08);
        assert!(Slot::NULL.is_null());
    }
}
