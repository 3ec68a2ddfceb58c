//! The rows an aggregate's `accumulate` and `retract` exports take (docs/abi.md,
//! "Aggregates").
//!
//! A batch is `count` rows of [`words_per_row`]`(k)` little-endian u64 words (k = the
//! aggregate's SQL arguments): a [`header`] (the state's handle, and a NULL bit per
//! argument), then one word per argument. A fixed-width value is its slot bits (as in an ABI 1
//! slot); a text or bytea value is a [`payload_ref`]: `len` bytes at `offset` in the payload
//! area, which starts right after the rows ([`payload_start`]). Rows for different states
//! may share a batch; each state sees its rows in the order PostgreSQL gave them.

use crate::types::{Repr, SqlType};

/// The most SQL arguments an aggregate may take (one bit each in a row's NULL mask).
pub const MAX_ARGS: usize = 32;

/// Words per row for `args` arguments.
pub const fn words_per_row(args: usize) -> usize {
    1 + args
}

/// Bytes from a batch's address to its payload area.
pub const fn payload_start(args: usize, rows: usize) -> usize {
    8 * words_per_row(args) * rows
}

/// A row's first word: the handle in the low half, bit `i` of the high half set when
/// argument `i` is NULL.
pub const fn header(handle: u32, null_mask: u32) -> u64 {
    handle as u64 | (null_mask as u64) << 32
}

/// The handle and NULL mask of a row's first word.
pub const fn split_header(word: u64) -> (u32, u32) {
    (word as u32, (word >> 32) as u32)
}

/// The value word of a text or bytea argument: `len` bytes at `offset` in the payload area.
pub const fn payload_ref(offset: u32, len: u32) -> u64 {
    offset as u64 | (len as u64) << 32
}

/// The offset and length of a [`payload_ref`].
pub const fn split_payload_ref(word: u64) -> (u32, u32) {
    (word as u32, (word >> 32) as u32)
}

/// Whether an aggregate argument of this type travels in the payload area.
pub const fn in_payload(ty: SqlType) -> bool {
    matches!(ty, SqlType::Text | SqlType::Varchar | SqlType::Bytea)
}

/// Whether an aggregate can take an argument of this type: fixed-width, text or bytea.
pub const fn is_row_type(ty: SqlType) -> bool {
    matches!(ty.info().repr, Repr::Fixed(_)) || in_payload(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_back() {
        assert_eq!(split_header(header(7, 0b101)), (7, 0b101));
        assert_eq!(split_payload_ref(payload_ref(24, 3)), (24, 3));
        assert_eq!(payload_start(2, 10), 240);
        assert!(is_row_type(SqlType::Float8) && is_row_type(SqlType::Bytea));
        assert!(!is_row_type(SqlType::Jsonb) && !is_row_type(SqlType::Float8Array));
    }
}
