//! Aggregates whose state lives in the guest, behind a handle.
//!
//! A wasm aggregate `P` is a group of exports of one ABI 1 module:
//!
//! | export            | wasm type            | does                                                   |
//! |-------------------|----------------------|--------------------------------------------------------|
//! | `P.new`           | `() -> i32`          | makes an empty state, returns its handle (not 0)       |
//! | `P.accumulate`    | `(i32, i32) -> ()`   | adds a batch of rows: `(address, count)`               |
//! | `P.finalize`      | `(i32) -> ()`        | frame call: argument 0 the handle, result the value    |
//! | `P.free`          | `(i32) -> ()`        | forgets a state                                        |
//! | `P.retract`       | `(i32, i32) -> ()`   | optional: removes a batch of rows (window frames)      |
//! | `P.merge`         | `(i32, i32) -> ()`   | optional: merges the second state into the first       |
//! | `P.serialize`     | `(i32) -> ()`        | optional: frame call, handle in, `bytea` out           |
//! | `P.deserialize`   | `(i32) -> ()`        | optional: frame call, `bytea` in, new handle out       |
//!
//! A batch's row layout is part of the guest contract: `plwasm_contract::batch`.
//!
//! On the SQL side each export is a `LANGUAGE wasm` support function whose body names it
//! (`AS 'module:P.accumulate'`) and whose signature uses `internal` for the state; see
//! [`SupportRole::check_signature`].
//!
//! - [`roles`]: which export a support function stands for, and the signatures each needs;
//! - [`queue`]: the instance serving an aggregate's states, and its queue of rows;
//! - [`flat`]: a state's flat form (`plwasm.state` on disk and on the wire).

pub mod flat;
mod queue;
mod roles;

pub use plwasm_contract::batch::{is_row_type, MAX_ARGS as MAX_AGGREGATE_ARGS};
pub use queue::{row_plan, slot_bits, AggregateInstance, BATCH_ROWS, FREE_BATCH};
pub use roles::{check_exports, Step, SupportRole};
