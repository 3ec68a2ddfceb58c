//! Names the host and a guest module meet by: exports, imports, the custom section.

/// Prefix of the export by which a module declares its ABI: `plwasm_abi_v1` means ABI 1.
pub const ABI_EXPORT_PREFIX: &str = "plwasm_abi_v";
/// The export an ABI 1 module declares itself with (any kind of export).
pub const ABI1_EXPORT: &str = "plwasm_abi_v1";
/// The guest's allocator: `(size: i32) -> i32`, 8-aligned, 0 on failure.
pub const ALLOC_EXPORT: &str = "plwasm_alloc";
/// Optional: `(address: i32, size: i32) -> ()` takes back an argument buffer `plwasm_alloc`
/// gave. A module that exports it gets large buffers back after each call instead of keeping
/// them for the next.
pub const FREE_EXPORT: &str = "plwasm_free";
/// The guest's linear memory.
pub const MEMORY_EXPORT: &str = "memory";

/// The import module holding plwasm's host functions.
pub const IMPORT_MODULE: &str = "plwasm";
/// `raise(sqlstate: i32, message: i32, message_len: i32)`: ends the call with an ERROR.
pub const RAISE_IMPORT: &str = "raise";
/// `log(level: i32, message: i32, message_len: i32)`: queues a message for the client.
pub const LOG_IMPORT: &str = "log";
/// Every host function, with its wasm type.
pub const IMPORTS: [(&str, &str); 2] = [(RAISE_IMPORT, "(i32, i32, i32) -> ()"), (LOG_IMPORT, "(i32, i32, i32) -> ()")];

/// `log` levels, as the guest passes them.
pub mod log_level {
    pub const LOG: i32 = 1;
    pub const INFO: i32 = 2;
    pub const NOTICE: i32 = 3;
    pub const WARNING: i32 = 4;
}

/// The custom section holding declared signatures, one line per function (format in the
/// `signature_line` module).
pub const SIGNATURE_SECTION: &str = "plwasm.signatures";

/// An aggregate's exports are `prefix` + [`AGGREGATE_SEPARATOR`] + one of these suffixes.
pub const AGGREGATE_SEPARATOR: char = '.';

/// The exports of a wasm aggregate: suffix, wasm type, and whether every aggregate has it.
pub const AGGREGATE_EXPORTS: [(&str, &str, bool); 8] = [
    (agg::NEW, "() -> i32", true),
    (agg::ACCUMULATE, "(i32, i32) -> ()", true),
    (agg::FINALIZE, "(i32) -> ()", true),
    (agg::FREE, "(i32) -> ()", true),
    (agg::RETRACT, "(i32, i32) -> ()", false),
    (agg::MERGE, "(i32, i32) -> ()", false),
    (agg::SERIALIZE, "(i32) -> ()", false),
    (agg::DESERIALIZE, "(i32) -> ()", false),
];

/// Aggregate export suffixes (docs/abi.md, "Aggregates").
pub mod agg {
    pub const NEW: &str = "new";
    pub const ACCUMULATE: &str = "accumulate";
    pub const FINALIZE: &str = "finalize";
    pub const FREE: &str = "free";
    pub const RETRACT: &str = "retract";
    pub const MERGE: &str = "merge";
    pub const SERIALIZE: &str = "serialize";
    pub const DESERIALIZE: &str = "deserialize";
}

/// Compares two strings in a `const` context, so a literal that Rust syntax forces a crate
/// to restate (`#[link(wasm_import_module = "...")]`, `#[no_mangle]` names) can be checked
/// against the contract at compile time.
pub const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_consistent() {
        assert!(ABI1_EXPORT.starts_with(ABI_EXPORT_PREFIX));
        assert!(same(ALLOC_EXPORT, "plwasm_alloc"));
        assert!(!same(ALLOC_EXPORT, "plwasm_allo"));
        assert!(!same("ab", "ac"));
    }
}
