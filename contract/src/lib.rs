//! The contract between plwasm and the WebAssembly modules it runs: everything both sides
//! must agree on, written once. The host (`plwasm-core`), the guest SDK (`plwasm-guest`) and
//! the SDK's macros (`plwasm-guest-macros`) all build on this crate, so a change here is a
//! change to the ABI (docs/abi.md) and shows up on both sides at once.
//!
//! Read bottom-up:
//! - [`types`]: the SQL type table — names, aliases, catalog OIDs, how each value crosses,
//!   and its Rust spelling in the SDK;
//! - [`names`]: export, import and custom-section names;
//! - [`slot`]: the 16-byte frame slot of ABI 1;
//! - [`batch`]: the row layout of an aggregate's `accumulate`/`retract` batches;
//! - [`signature_line`]: the declared-signature line a module carries (writer and parser).
//!
//! No dependencies and `no_std`, so it builds for `wasm32-unknown-unknown` guests as it is.

#![no_std]
#![forbid(unsafe_code)]

pub mod batch;
pub mod names;
pub mod signature_line;
pub mod slot;
pub mod types;
