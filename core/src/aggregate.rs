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
//! A batch is `count` rows of `8 + 8*k` bytes each (k = the aggregate's SQL arguments):
//! `{ u32 handle, u32 null_mask, u64 value[k] }`, bit `i` of `null_mask` set when argument
//! `i` is NULL, fixed-width values as in an ABI 1 slot. A text or bytea value is
//! `offset | len << 32`: `len` bytes at `address + 8*(1+k)*count + offset`, i.e. in the
//! payload area that follows the rows. Rows for different states may share a batch; each
//! state sees its rows in the order PostgreSQL gave them.
//!
//! On the SQL side each export is a `LANGUAGE wasm` support function whose body names it
//! (`AS 'module:P.accumulate'`) and whose signature uses `internal` for the state; see
//! [`SupportRole::check_signature`].

use wasmtime::{Engine, Module, TypedFunc};

use crate::abi::Value;
use crate::error::{PlWasmError, Result};
use crate::host::LogQueue;
use crate::limits::CallLimits;
use crate::sandbox::{InstanceHost, Sandbox};
use crate::types::{Passing, SqlSignature, SqlType};

/// The most SQL arguments an aggregate may take (one bit each in a row's null mask).
pub const MAX_AGGREGATE_ARGS: usize = 32;
/// Rows handed to the guest per `accumulate` call.
pub const BATCH_ROWS: usize = 1024;
/// States freed by PostgreSQL are handed back to the guest in groups of this many.
pub const FREE_BATCH: usize = 256;
/// Text and bytea bytes queued before a batch goes to the guest.
const PAYLOAD_BATCH: usize = 1 << 20;

/// Which part of an aggregate a support function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupportRole {
    Accumulate,
    Retract,
    Finalize,
    Merge,
    Serialize,
    Deserialize,
}

impl SupportRole {
    pub const ALL: [SupportRole; 6] = [
        SupportRole::Accumulate,
        SupportRole::Retract,
        SupportRole::Finalize,
        SupportRole::Merge,
        SupportRole::Serialize,
        SupportRole::Deserialize,
    ];

    /// For the two roles that queue rows, which way the rows go.
    pub fn step(self) -> Option<Step> {
        match self {
            SupportRole::Accumulate => Some(Step::Accumulate),
            SupportRole::Retract => Some(Step::Retract),
            _ => None,
        }
    }

    /// The export suffix: `accumulate` in `stats.accumulate`.
    pub fn suffix(self) -> &'static str {
        match self {
            SupportRole::Accumulate => "accumulate",
            SupportRole::Retract => "retract",
            SupportRole::Finalize => "finalize",
            SupportRole::Merge => "merge",
            SupportRole::Serialize => "serialize",
            SupportRole::Deserialize => "deserialize",
        }
    }

    /// The aggregate prefix and role an export name stands for, e.g. `("stats", Accumulate)`
    /// for `stats.accumulate`.
    pub fn of_export(export: &str) -> Option<(&str, SupportRole)> {
        let (prefix, suffix) = export.rsplit_once('.')?;
        let role = SupportRole::ALL.into_iter().find(|r| r.suffix() == suffix)?;
        (!prefix.is_empty()).then_some((prefix, role))
    }

    /// The SQL signature PostgreSQL's `CREATE AGGREGATE` needs of this support function.
    pub fn expected_sql(self, args: &str, result: &str) -> String {
        match self {
            SupportRole::Accumulate | SupportRole::Retract => format!("(internal{args}) RETURNS internal"),
            SupportRole::Finalize => format!("(internal) RETURNS {result}"),
            SupportRole::Merge => "(internal, internal) RETURNS internal".into(),
            SupportRole::Serialize => "(internal) RETURNS bytea STRICT".into(),
            SupportRole::Deserialize => "(bytea, internal) RETURNS internal STRICT".into(),
        }
    }

    /// Checks a support function's SQL signature for this role.
    pub fn check_signature(self, signature: &SqlSignature) -> Result<()> {
        let bad = |what: String| Err(PlWasmError::AggregateSupport { what });
        let args = &signature.args;
        let internal_first = args.first() == Some(&SqlType::Internal);
        let rest = args.get(1..).unwrap_or_default();
        let described = || {
            let args: Vec<&str> = args.iter().map(|t| t.sql_name()).collect();
            format!(
                "({}) RETURNS {}{}",
                args.join(", "),
                signature.ret.sql_name(),
                if signature.strict { " STRICT" } else { "" }
            )
        };
        let needs = |expected: String| {
            bad(format!("The {} support function must be {expected}; this one is {}.", self.suffix(), described()))
        };
        match self {
            SupportRole::Accumulate | SupportRole::Retract => {
                if !internal_first || signature.ret != SqlType::Internal || signature.strict || rest.is_empty() {
                    return needs("(internal, argument types...) RETURNS internal, not STRICT".into());
                }
                if rest.len() > MAX_AGGREGATE_ARGS {
                    return bad(format!("A wasm aggregate takes at most {MAX_AGGREGATE_ARGS} arguments."));
                }
                if let Some(ty) = rest.iter().find(|t| !is_row_type(**t)) {
                    return bad(format!(
                        "Aggregate arguments must be fixed-width (boolean, integers, real, double precision, date, timestamp, timestamptz), text or bytea; {} is not.",
                        ty.sql_name()
                    ));
                }
            }
            SupportRole::Finalize => {
                let passable = !matches!(signature.ret.passing(), Passing::Nothing);
                if args.as_slice() != [SqlType::Internal] || !passable || signature.strict {
                    return needs("(internal) RETURNS a type wasm functions can return, not STRICT".into());
                }
            }
            SupportRole::Merge => {
                if args.as_slice() != [SqlType::Internal, SqlType::Internal]
                    || signature.ret != SqlType::Internal
                    || signature.strict
                {
                    return needs("(internal, internal) RETURNS internal, not STRICT".into());
                }
            }
            SupportRole::Serialize => {
                if args.as_slice() != [SqlType::Internal] || signature.ret != SqlType::Bytea || !signature.strict {
                    return needs("(internal) RETURNS bytea STRICT".into());
                }
            }
            SupportRole::Deserialize => {
                if args.as_slice() != [SqlType::Bytea, SqlType::Internal]
                    || signature.ret != SqlType::Internal
                    || !signature.strict
                {
                    return needs("(bytea, internal) RETURNS internal STRICT".into());
                }
            }
        }
        Ok(())
    }
}

/// Whether an aggregate can take an argument of this type (see the batch layout above).
pub fn is_row_type(ty: SqlType) -> bool {
    matches!(ty.passing(), Passing::Fixed(_)) || matches!(ty, SqlType::Text | SqlType::Varchar | SqlType::Bytea)
}

/// The wasm exports of aggregate `prefix`, their types, and whether each must exist.
fn export_types(prefix: &str) -> [(String, &'static str, bool); 8] {
    [
        (format!("{prefix}.new"), "() -> i32", true),
        (format!("{prefix}.accumulate"), "(i32, i32) -> ()", true),
        (format!("{prefix}.finalize"), "(i32) -> ()", true),
        (format!("{prefix}.free"), "(i32) -> ()", true),
        (format!("{prefix}.retract"), "(i32, i32) -> ()", false),
        (format!("{prefix}.merge"), "(i32, i32) -> ()", false),
        (format!("{prefix}.serialize"), "(i32) -> ()", false),
        (format!("{prefix}.deserialize"), "(i32) -> ()", false),
    ]
}

/// Checks that an ABI 1 module has the exports aggregate `prefix` needs, with their types,
/// including the one `role` calls.
pub fn check_exports(module: &Module, prefix: &str, role: SupportRole) -> Result<()> {
    let wanted = format!("{prefix}.{}", role.suffix());
    for (name, ty, required) in export_types(prefix) {
        let actual = crate::introspect::function_export_type(module, &name);
        match actual {
            Some(actual) if actual == ty => {}
            Some(actual) => {
                return Err(PlWasmError::AggregateSupport {
                    what: format!("Export \"{name}\" must have wasm type {ty}, not {actual}."),
                })
            }
            None if required || name == wanted => {
                return Err(PlWasmError::AggregateSupport {
                    what: format!("The module has no function export \"{name}\" of type {ty}."),
                })
            }
            None => {}
        }
    }
    Ok(())
}

/// Whether to add or remove a batch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Accumulate = 0,
    Retract = 1,
}

impl Step {
    /// The support role whose export takes this step's batches.
    pub fn role(self) -> SupportRole {
        match self {
            Step::Accumulate => SupportRole::Accumulate,
            Step::Retract => SupportRole::Retract,
        }
    }
}

struct AggregateExports {
    new: TypedFunc<(), i32>,
    accumulate: TypedFunc<(i32, i32), ()>,
    free: TypedFunc<i32, ()>,
    finalize: TypedFunc<i32, ()>,
    retract: Option<TypedFunc<(i32, i32), ()>>,
    merge: Option<TypedFunc<(i32, i32), ()>>,
    serialize: Option<TypedFunc<i32, ()>>,
    deserialize: Option<TypedFunc<i32, ()>>,
}

/// One instance of a module serving every live state of one aggregate in a backend, with
/// the rows PostgreSQL has handed over but the guest has not seen yet.
pub struct AggregateInstance {
    /// Rows that can still be queued for each step before the guest must be called: one
    /// counter per step, so the per-row path makes one comparison. Zero for both when the
    /// payload or the states to free reached their batch size.
    room: [usize; 2],
    pending_words: usize,
    pending_rows: usize,
    pending_step: Step,
    /// Rows not yet passed to the guest, as 64-bit words (a header, then the values), and what
    /// to do with them. Sized for a full batch of the widest rows, so queuing never grows it.
    pending: Vec<u64>,
    /// Text and bytea values of the pending rows.
    payload: Vec<u8>,
    /// Handles PostgreSQL no longer references, to hand to `P.free`.
    to_free: Vec<u32>,
    sandbox: Sandbox,
    exports: AggregateExports,
    /// The aggregate's export prefix, to name the step a batch failed in.
    prefix: String,
}

impl AggregateInstance {
    /// Instantiates `module` for aggregate `prefix`, whose exports [`check_exports`] checked
    /// when the support function's entry was built.
    pub fn instantiate(
        engine: &Engine,
        module: &Module,
        prefix: &str,
        limits: CallLimits,
        host: &InstanceHost,
    ) -> Result<AggregateInstance> {
        let finalize_name = format!("{prefix}.finalize");
        let mut sandbox = Sandbox::instantiate(engine, module, &finalize_name, 1, limits, host)?;
        let exports = AggregateExports {
            new: sandbox.typed_export(&format!("{prefix}.new"))?.ok_or_else(|| missing(prefix, "new"))?,
            accumulate: sandbox
                .typed_export(&format!("{prefix}.accumulate"))?
                .ok_or_else(|| missing(prefix, "accumulate"))?,
            free: sandbox.typed_export(&format!("{prefix}.free"))?.ok_or_else(|| missing(prefix, "free"))?,
            finalize: sandbox.typed_export(&finalize_name)?.ok_or_else(|| missing(prefix, "finalize"))?,
            retract: sandbox.typed_export(&format!("{prefix}.retract"))?,
            merge: sandbox.typed_export(&format!("{prefix}.merge"))?,
            serialize: sandbox.typed_export(&format!("{prefix}.serialize"))?,
            deserialize: sandbox.typed_export(&format!("{prefix}.deserialize"))?,
        };
        Ok(AggregateInstance {
            sandbox,
            exports,
            prefix: prefix.to_string(),
            pending: vec![0; BATCH_ROWS * (1 + MAX_AGGREGATE_ARGS)],
            pending_words: 0,
            pending_rows: 0,
            payload: Vec::new(),
            pending_step: Step::Accumulate,
            room: [BATCH_ROWS; 2],
            to_free: Vec::new(),
        })
    }

    /// A new empty state.
    pub fn new_state(&mut self, limits: CallLimits) -> Result<u32> {
        self.flush(limits)?;
        let handle = self.sandbox.call_typed(&self.exports.new, (), limits)?;
        if handle == 0 {
            return Err(PlWasmError::AbiViolation { what: "The aggregate's new export returned handle 0".into() });
        }
        Ok(handle as u32)
    }

    /// Whether a row for `step` can be queued without first calling the guest.
    #[inline(always)]
    pub fn has_room(&self, step: Step) -> bool {
        self.room[step as usize] > 0
    }

    /// Queues the bytes of a text or bytea value for the next row; returns its value word.
    /// The caller checked [`Self::has_room`] before the row.
    pub fn queue_bytes(&mut self, bytes: &[u8]) -> Result<u64> {
        let offset = self.payload.len();
        if bytes.len() as u64 > u32::MAX as u64 || (offset + bytes.len()) as u64 > u32::MAX as u64 {
            return Err(PlWasmError::ArgumentsTooLarge {
                bytes: (offset + bytes.len()) as u64,
                limit: u32::MAX as u64,
            });
        }
        // The value's size is the caller's (up to 1GB of text): grow the buffer fallibly.
        let padded = bytes.len().next_multiple_of(8);
        self.payload
            .try_reserve(padded)
            .map_err(|_| PlWasmError::OutOfMemory { bytes: padded as u64, what: "an aggregate's queued row" })?;
        self.payload.extend_from_slice(bytes);
        // Keep the next value 8-aligned.
        self.payload.resize(offset + padded, 0);
        if self.payload.len() >= PAYLOAD_BATCH {
            self.room = [0; 2];
        }
        Ok(offset as u64 | (bytes.len() as u64) << 32)
    }

    /// Queues a row of at most [`MAX_AGGREGATE_ARGS`] values: `value(i)` is argument `i`'s
    /// slot bits ([`slot_bits`]), `None` for NULL. On an error nothing is queued. The caller
    /// checked [`Self::has_room`].
    #[inline(always)]
    pub fn queue_row(
        &mut self,
        step: Step,
        handle: u32,
        count: usize,
        mut value: impl FnMut(usize) -> Result<Option<u64>>,
    ) -> Result<()> {
        let start = self.pending_words;
        let words = &mut self.pending[start..start + 1 + count.min(MAX_AGGREGATE_ARGS)];
        let mut null_mask = 0u32;
        for (i, word) in words[1..].iter_mut().enumerate() {
            *word = match value(i)? {
                Some(bits) => bits,
                None => {
                    null_mask |= 1 << i;
                    0
                }
            };
        }
        words[0] = handle as u64 | (null_mask as u64) << 32;
        let width = words.len();
        self.commit_row(step, width);
        Ok(())
    }

    /// The per-row path for rows of fixed-width values: queues a row whose argument `i` is
    /// `arg(i)` = (Datum bits, is NULL), converted by `plan[i]`. Returns false, with nothing
    /// queued, when the batch is full or a value needs the checked path (an out-of-range
    /// timestamp); the caller then flushes or converts through [`Self::queue_row`].
    #[inline(always)]
    pub fn try_queue_fixed(
        &mut self,
        step: Step,
        handle: u32,
        plan: &[SlotConversion],
        arg: impl Fn(usize) -> (u64, bool),
    ) -> bool {
        if self.room[step as usize] == 0 {
            return false;
        }
        let start = self.pending_words;
        let Some(words) = self.pending.get_mut(start..start + 1 + plan.len()) else { return false };
        let mut null_mask = 0u32;
        for (i, (word, conversion)) in words[1..].iter_mut().zip(plan).enumerate() {
            let (bits, is_null) = arg(i);
            *word = if is_null {
                null_mask |= 1 << i;
                0
            } else {
                match conversion.apply(bits) {
                    Some(bits) => bits,
                    None => return false,
                }
            };
        }
        words[0] = handle as u64 | (null_mask as u64) << 32;
        self.commit_row(step, 1 + plan.len());
        true
    }

    /// Counts a row of `width` words just written for `step`.
    #[inline(always)]
    fn commit_row(&mut self, step: Step, width: usize) {
        self.pending_words += width;
        self.pending_step = step;
        self.pending_rows += 1;
        // A batch holds rows of one step: the other step must flush first.
        self.room[step as usize] = self.room[step as usize].saturating_sub(1);
        self.room[1 - step as usize] = 0;
    }

    /// Hands queued rows to the guest, then the states PostgreSQL has released.
    pub fn flush(&mut self, limits: CallLimits) -> Result<()> {
        // The queue is empty afterwards whatever the guest does (a failed call loses the
        // instance anyway), so the room is whole again.
        let rows = std::mem::take(&mut self.pending_rows);
        let words = std::mem::take(&mut self.pending_words);
        self.room = [BATCH_ROWS; 2];
        let outcome = match (rows, self.pending_step) {
            (0, _) => Ok(()),
            (_, Step::Accumulate) => self.sandbox.call_with_words(
                &self.exports.accumulate,
                &self.pending[..words],
                &self.payload,
                rows as i32,
                limits,
            ),
            (_, Step::Retract) => match &self.exports.retract {
                Some(retract) => {
                    self.sandbox.call_with_words(retract, &self.pending[..words], &self.payload, rows as i32, limits)
                }
                None => Err(unsupported("retract")),
            },
        };
        self.payload.clear();
        let step = self.pending_step.role().suffix();
        outcome.map_err(|err| in_batch(err, format!("{}.{step}", self.prefix)))?;
        for handle in std::mem::take(&mut self.to_free) {
            self.sandbox.call_typed(&self.exports.free, handle as i32, limits)?;
        }
        Ok(())
    }

    /// Forgets `handle`: the guest frees it at the next flush (never from inside
    /// PostgreSQL's memory-context cleanup).
    pub fn release(&mut self, handle: u32) {
        self.to_free.push(handle);
        if self.to_free.len() >= FREE_BATCH {
            self.room = [0; 2];
        }
    }

    /// The aggregate's value for `handle`, of type `ret`, handed to `finish` while it is still
    /// in guest memory.
    pub fn finalize<R>(
        &mut self,
        handle: u32,
        ret: SqlType,
        limits: CallLimits,
        finish: impl FnOnce(Value<'_>) -> R,
    ) -> Result<R> {
        self.flush(limits)?;
        let signature = SqlSignature { args: vec![SqlType::Int4], ret, strict: false, set_of: None };
        self.sandbox.call_frame_with(&self.exports.finalize, &signature, &[Value::Fixed(handle as u64)], limits, finish)
    }

    /// Merges state `from` into state `into`; `from` is left as it was.
    pub fn merge(&mut self, into: u32, from: u32, limits: CallLimits) -> Result<()> {
        self.flush(limits)?;
        let merge = self.exports.merge.as_ref().ok_or_else(|| unsupported("merge"))?;
        self.sandbox.call_typed(merge, (into as i32, from as i32), limits)
    }

    /// The state's bytes, handed to `finish` while still in guest memory.
    pub fn serialize<R>(&mut self, handle: u32, limits: CallLimits, finish: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.flush(limits)?;
        let func = self.exports.serialize.as_ref().ok_or_else(|| unsupported("serialize"))?;
        let signature = SqlSignature { args: vec![SqlType::Int4], ret: SqlType::Bytea, strict: false, set_of: None };
        let value =
            self.sandbox.call_frame_with(func, &signature, &[Value::Fixed(handle as u64)], limits, |v| match v {
                Value::Bytes(bytes) => Ok(finish(bytes)),
                _ => Err(PlWasmError::AbiViolation { what: "The serialize export returned NULL".into() }),
            })?;
        value
    }

    /// A new state from bytes `serialize` made.
    pub fn deserialize(&mut self, bytes: &[u8], limits: CallLimits) -> Result<u32> {
        self.flush(limits)?;
        let func = self.exports.deserialize.as_ref().ok_or_else(|| unsupported("deserialize"))?;
        let signature = SqlSignature { args: vec![SqlType::Bytea], ret: SqlType::Int4, strict: false, set_of: None };
        let handle =
            self.sandbox.call_frame_with(func, &signature, &[Value::Bytes(bytes)], limits, |v| match v {
                Value::Fixed(bits) => Ok(bits as u32),
                _ => Err(PlWasmError::AbiViolation { what: "The deserialize export returned no handle".into() }),
            })??;
        if handle == 0 {
            return Err(PlWasmError::AbiViolation { what: "The deserialize export returned handle 0".into() });
        }
        Ok(handle)
    }

    /// The messages the guest queued with `plwasm.log` since the last take.
    pub fn take_logs(&mut self) -> LogQueue {
        self.sandbox.take_logs()
    }
}

/// Bytes per queued row for `args` SQL arguments.
pub fn row_size(args: usize) -> usize {
    8 + 8 * args
}

/// How a fixed-width argument's Datum bits become its slot bits in a queued row: what
/// `abi::fixed_to_slot(datum_to_wasm(..))` gives, in one step. Chosen once per signature
/// ([`row_plan`]) so the per-row path does not look at SQL types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotConversion {
    /// float8, int8: the Datum bits are the slot bits.
    Same,
    SignExtend32,
    SignExtend16,
    Bool,
    /// float4: the low 32 bits.
    Low32,
    Date,
    Timestamp,
}

impl SlotConversion {
    /// The conversion for a fixed-width type; `None` for text, varchar, bytea and internal.
    pub fn of(ty: SqlType) -> Option<SlotConversion> {
        Some(match ty {
            SqlType::Float8 | SqlType::Int8 => SlotConversion::Same,
            SqlType::Int4 => SlotConversion::SignExtend32,
            SqlType::Int2 => SlotConversion::SignExtend16,
            SqlType::Bool => SlotConversion::Bool,
            SqlType::Float4 => SlotConversion::Low32,
            SqlType::Date => SlotConversion::Date,
            SqlType::Timestamp | SqlType::TimestampTz => SlotConversion::Timestamp,
            SqlType::Void
            | SqlType::Text
            | SqlType::Varchar
            | SqlType::Bytea
            | SqlType::Jsonb
            | SqlType::Int4Array
            | SqlType::Int8Array
            | SqlType::Float4Array
            | SqlType::Float8Array
            | SqlType::Internal => return None,
        })
    }

    /// The slot bits; `None` for a timestamp outside the range the guest can represent.
    #[inline(always)]
    pub fn apply(self, datum_bits: u64) -> Option<u64> {
        Some(match self {
            SlotConversion::Same => datum_bits,
            SlotConversion::SignExtend32 => datum_bits as u32 as i32 as i64 as u64,
            SlotConversion::SignExtend16 => datum_bits as u16 as i16 as i64 as u64,
            SlotConversion::Bool => (datum_bits & 0xff != 0) as u64,
            SlotConversion::Low32 => datum_bits as u32 as u64,
            SlotConversion::Date => crate::types::pg_date_to_unix(datum_bits as u32 as i32) as i64 as u64,
            SlotConversion::Timestamp => crate::types::pg_timestamp_to_unix(datum_bits as i64)? as u64,
        })
    }
}

/// The conversions of an aggregate's row arguments, when all are fixed-width (and there are
/// at most [`MAX_AGGREGATE_ARGS`]): the rows [`AggregateInstance::try_queue_fixed`] takes.
pub fn row_plan(args: &[SqlType]) -> Option<Vec<SlotConversion>> {
    if args.len() > MAX_AGGREGATE_ARGS {
        return None;
    }
    args.iter().map(|ty| SlotConversion::of(*ty)).collect()
}

/// The slot bits of a fixed-width argument's Datum bits, with the error the checked path
/// reports.
pub fn slot_bits(ty: SqlType, datum_bits: u64) -> Result<u64> {
    let Some(conversion) = SlotConversion::of(ty) else {
        return Err(PlWasmError::Internal { message: format!("{} is not fixed-width", ty.sql_name()) });
    };
    conversion.apply(datum_bits).ok_or(PlWasmError::ArgumentOutOfRange {
        type_name: if ty == SqlType::Timestamp { "timestamp" } else { "timestamptz" },
    })
}

fn missing(prefix: &str, what: &str) -> PlWasmError {
    PlWasmError::AggregateSupport { what: format!("The module has no export \"{prefix}.{what}\".") }
}

fn unsupported(what: &str) -> PlWasmError {
    PlWasmError::AggregateSupport { what: format!("The module's aggregate has no {what} export.") }
}

/// An error of a batch hand-over, which whatever support function needed the rows triggered,
/// named after the step that failed. An interrupt stays what it is.
fn in_batch(err: PlWasmError, export: String) -> PlWasmError {
    match err {
        PlWasmError::Interrupted => err,
        err => PlWasmError::InBatch { export, error: Box::new(err) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi;

    #[test]
    fn export_names_carry_the_role() {
        assert_eq!(SupportRole::of_export("stats.accumulate"), Some(("stats", SupportRole::Accumulate)));
        assert_eq!(SupportRole::of_export("a.b.merge"), Some(("a.b", SupportRole::Merge)));
        assert_eq!(SupportRole::of_export(".merge"), None);
        assert_eq!(SupportRole::of_export("stats.new"), None);
        assert_eq!(SupportRole::of_export("stats"), None);
    }

    fn sig(args: &[SqlType], ret: SqlType, strict: bool) -> SqlSignature {
        SqlSignature { args: args.to_vec(), ret, strict, set_of: None }
    }

    #[test]
    fn row_values_match_frame_slots() {
        let samples: [u64; 7] = [0, 1, 0x7f, (-2i64) as u64, 0x8000_0001, 1.5f64.to_bits(), 2.5f32.to_bits() as u64];
        for ty in SqlType::ALL.into_iter().filter(|t| matches!(t.passing(), Passing::Fixed(_))) {
            let Passing::Fixed(wasm) = ty.passing() else { unreachable!() };
            for bits in samples {
                let frame = ty.datum_to_wasm(bits).map(|raw| abi::fixed_to_slot(wasm, raw));
                assert_eq!(slot_bits(ty, bits).ok(), frame.ok(), "{ty:?} {bits:#x}");
            }
        }
    }

    #[test]
    fn support_signatures_are_checked_per_role() {
        use SqlType::*;
        let ok = |role: SupportRole, s: SqlSignature| role.check_signature(&s).is_ok();
        assert!(ok(SupportRole::Accumulate, sig(&[Internal, Float8, TimestampTz], Internal, false)));
        assert!(!ok(SupportRole::Accumulate, sig(&[Internal, Float8], Internal, true)), "strict");
        assert!(ok(SupportRole::Accumulate, sig(&[Internal, Bytea, Text], Internal, false)));
        assert!(!ok(SupportRole::Accumulate, sig(&[Internal, Float8Array], Internal, false)), "arrays");
        assert!(!ok(SupportRole::Accumulate, sig(&[Internal], Internal, false)), "no arguments");
        assert!(ok(SupportRole::Finalize, sig(&[Internal], Float8Array, false)));
        assert!(!ok(SupportRole::Finalize, sig(&[Internal], Internal, false)));
        assert!(ok(SupportRole::Merge, sig(&[Internal, Internal], Internal, false)));
        assert!(ok(SupportRole::Serialize, sig(&[Internal], Bytea, true)));
        assert!(!ok(SupportRole::Serialize, sig(&[Internal], Bytea, false)));
        assert!(ok(SupportRole::Deserialize, sig(&[Bytea, Internal], Internal, true)));
        assert!(!ok(SupportRole::Deserialize, sig(&[Internal, Bytea], Internal, true)));
        let too_many = [Internal].into_iter().chain([Int4; 33]).collect::<Vec<_>>();
        assert!(!ok(SupportRole::Accumulate, sig(&too_many, Internal, false)));
    }
}
