//! The instance that serves every live state of one aggregate in a backend, and the rows
//! PostgreSQL has handed over that the guest has not seen yet (batched, in the contract's
//! row layout: `plwasm_contract::batch`).

use plwasm_contract::batch::{self, MAX_ARGS as MAX_AGGREGATE_ARGS};
use plwasm_contract::names::agg;
use wasmtime::{Engine, Module, TypedFunc};

use super::roles::{export_name, Step};
use crate::abi::Value;
use crate::error::{PlWasmError, Result};
use crate::host::LogQueue;
use crate::limits::CallLimits;
use crate::sandbox::{InstanceHost, Sandbox};
use crate::types::{fixed_slot_bits, Fixed, SqlSignature, SqlType};

/// Rows handed to the guest per `accumulate` call.
pub const BATCH_ROWS: usize = 1024;
/// States freed by PostgreSQL are handed back to the guest in groups of this many.
pub const FREE_BATCH: usize = 256;
/// Text and bytea bytes queued before a batch goes to the guest.
const PAYLOAD_BATCH: usize = 1 << 20;

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
        let finalize_name = export_name(prefix, agg::FINALIZE);
        let mut sandbox = Sandbox::instantiate(engine, module, &finalize_name, 1, limits, host)?;
        let exports = AggregateExports {
            new: sandbox.typed_export(&export_name(prefix, agg::NEW))?.ok_or_else(|| missing(prefix, agg::NEW))?,
            accumulate: sandbox
                .typed_export(&export_name(prefix, agg::ACCUMULATE))?
                .ok_or_else(|| missing(prefix, agg::ACCUMULATE))?,
            free: sandbox.typed_export(&export_name(prefix, agg::FREE))?.ok_or_else(|| missing(prefix, agg::FREE))?,
            finalize: sandbox.typed_export(&finalize_name)?.ok_or_else(|| missing(prefix, agg::FINALIZE))?,
            retract: sandbox.typed_export(&export_name(prefix, agg::RETRACT))?,
            merge: sandbox.typed_export(&export_name(prefix, agg::MERGE))?,
            serialize: sandbox.typed_export(&export_name(prefix, agg::SERIALIZE))?,
            deserialize: sandbox.typed_export(&export_name(prefix, agg::DESERIALIZE))?,
        };
        Ok(AggregateInstance {
            sandbox,
            exports,
            prefix: prefix.to_string(),
            pending: vec![0; BATCH_ROWS * batch::words_per_row(MAX_AGGREGATE_ARGS)],
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
        Ok(batch::payload_ref(offset as u32, bytes.len() as u32))
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
        let words = &mut self.pending[start..start + batch::words_per_row(count.min(MAX_AGGREGATE_ARGS))];
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
        words[0] = batch::header(handle, null_mask);
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
        plan: &[Fixed],
        arg: impl Fn(usize) -> (u64, bool),
    ) -> bool {
        if self.room[step as usize] == 0 {
            return false;
        }
        let start = self.pending_words;
        let Some(words) = self.pending.get_mut(start..start + batch::words_per_row(plan.len())) else { return false };
        let mut null_mask = 0u32;
        for (i, (word, conversion)) in words[1..].iter_mut().zip(plan).enumerate() {
            let (bits, is_null) = arg(i);
            *word = if is_null {
                null_mask |= 1 << i;
                0
            } else {
                match fixed_slot_bits(*conversion, bits) {
                    Some(bits) => bits,
                    None => return false,
                }
            };
        }
        words[0] = batch::header(handle, null_mask);
        self.commit_row(step, batch::words_per_row(plan.len()));
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
        outcome.map_err(|err| in_batch(err, export_name(&self.prefix, step)))?;
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

    /// Whether the guest can turn states into bytes and back (`P.serialize`, `P.deserialize`).
    pub fn can_serialize(&self) -> bool {
        self.exports.serialize.is_some() && self.exports.deserialize.is_some()
    }

    /// The state's bytes, handed to `finish` while still in guest memory
    /// ([`PlWasmError::StateNotSerializable`] unless [`Self::can_serialize`]).
    pub fn serialize<R>(&mut self, handle: u32, limits: CallLimits, finish: impl FnOnce(&[u8]) -> R) -> Result<R> {
        if !self.can_serialize() {
            return Err(PlWasmError::StateNotSerializable);
        }
        self.flush(limits)?;
        let func = self.exports.serialize.as_ref().ok_or(PlWasmError::StateNotSerializable)?;
        let signature = SqlSignature { args: vec![SqlType::Int4], ret: SqlType::Bytea, strict: false, set_of: None };
        let value =
            self.sandbox.call_frame_with(func, &signature, &[Value::Fixed(handle as u64)], limits, |v| match v {
                Value::Bytes(bytes) => Ok(finish(bytes)),
                _ => Err(PlWasmError::AbiViolation { what: "The serialize export returned NULL".into() }),
            })?;
        value
    }

    /// A new state from bytes `serialize` made (untrusted: they may come from anywhere);
    /// [`PlWasmError::StateNotSerializable`] unless [`Self::can_serialize`].
    pub fn deserialize(&mut self, bytes: &[u8], limits: CallLimits) -> Result<u32> {
        if !self.can_serialize() {
            return Err(PlWasmError::StateNotSerializable);
        }
        self.flush(limits)?;
        let func = self.exports.deserialize.as_ref().ok_or(PlWasmError::StateNotSerializable)?;
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

    /// Bytes of linear memory the instance has.
    pub fn memory_size(&self) -> usize {
        self.sandbox.memory_size()
    }

    /// The messages the guest queued with `plwasm.log` since the last take.
    pub fn take_logs(&mut self) -> LogQueue {
        self.sandbox.take_logs()
    }

    /// Fuel consumed by the last guest call (for tests and benchmarks).
    #[cfg(any(test, feature = "testing"))]
    pub fn fuel_used(&self) -> u64 {
        self.sandbox.fuel_used()
    }
}

/// The conversions of an aggregate's row arguments, when all are fixed-width (and there are
/// at most [`MAX_AGGREGATE_ARGS`]): the rows [`AggregateInstance::try_queue_fixed`] takes.
pub fn row_plan(args: &[SqlType]) -> Option<Vec<Fixed>> {
    if args.len() > MAX_AGGREGATE_ARGS {
        return None;
    }
    args.iter().map(|ty| ty.fixed()).collect()
}

/// The slot bits of a fixed-width argument's Datum bits, with the error the checked path
/// reports.
pub fn slot_bits(ty: SqlType, datum_bits: u64) -> Result<u64> {
    let Some(fixed) = ty.fixed() else {
        return Err(PlWasmError::Internal { message: format!("{} is not fixed-width", ty.sql_name()) });
    };
    fixed_slot_bits(fixed, datum_bits).ok_or(PlWasmError::ArgumentOutOfRange { type_name: ty.short_name() })
}

fn missing(prefix: &str, what: &str) -> PlWasmError {
    PlWasmError::AggregateSupport { what: format!("The module has no export \"{}\".", export_name(prefix, what)) }
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
    use crate::types::{DatumConversion, Passing};

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
}
