//! The host-side row queue of an aggregate instance against a real guest: the per-row path
//! (fixed-width rows) and the checked path queue the same rows, and a batch ends where it must.

use plwasm_core::abi::Value;
use plwasm_core::aggregate::{row_plan, AggregateInstance, Step, BATCH_ROWS, FREE_BATCH};
use plwasm_core::engine::{new_engine, EngineSettings};
use plwasm_core::limits::CallLimits;
use plwasm_core::sandbox::InstanceHost;
use plwasm_core::types::Fixed;
use plwasm_core::types::SqlType;
use plwasm_core::wasmtime::{Engine, Module};

const LIMITS: CallLimits = CallLimits { fuel: 100_000_000, max_memory: 16 << 20 };

/// A float8 sum; rows with a NULL are skipped. Handles are addresses of 8-byte sums.
const WSUM: &str = include_str!("../../bench/wsum.wat");

fn instance() -> AggregateInstance {
    let engine: Engine = new_engine(&EngineSettings::default()).unwrap();
    let module = Module::new(&engine, WSUM).unwrap();
    AggregateInstance::instantiate(&engine, &module, "wsum", LIMITS, &InstanceHost::standalone(512 * 1024)).unwrap()
}

fn sum_of(instance: &mut AggregateInstance, handle: u32) -> f64 {
    let bits = instance
        .finalize(handle, SqlType::Float8, LIMITS, |value| match value {
            Value::Fixed(bits) => bits,
            _ => panic!("not a float8"),
        })
        .unwrap();
    f64::from_bits(bits)
}

/// Row `i`: value i/4, NULL every seventh row.
fn row(i: usize) -> (u64, bool) {
    ((i as f64 / 4.0).to_bits(), i.is_multiple_of(7))
}

#[test]
fn per_row_and_checked_paths_queue_the_same_rows() {
    let mut instance = instance();
    let (fast, checked) = (instance.new_state(LIMITS).unwrap(), instance.new_state(LIMITS).unwrap());
    let plan = row_plan(&[SqlType::Float8]).unwrap();
    let rows = 3 * BATCH_ROWS + 17;
    let mut flushes = 0;
    for i in 0..rows {
        // Rows of both states share batches, as in a GROUP BY.
        if !instance.try_queue_fixed(Step::Accumulate, fast, &plan, |_| row(i)) {
            instance.flush(LIMITS).unwrap();
            flushes += 1;
            assert!(instance.try_queue_fixed(Step::Accumulate, fast, &plan, |_| row(i)));
        }
        if !instance.has_room(Step::Accumulate) {
            instance.flush(LIMITS).unwrap();
            flushes += 1;
        }
        let (bits, null) = row(i);
        instance.queue_row(Step::Accumulate, checked, 1, |_| Ok((!null).then_some(bits))).unwrap();
    }
    let expected: f64 = (0..rows).filter(|i| i % 7 != 0).map(|i| i as f64 / 4.0).sum();
    assert_eq!(sum_of(&mut instance, fast), expected);
    assert_eq!(sum_of(&mut instance, checked), expected);
    // Two rows per source row, BATCH_ROWS rows per batch.
    assert_eq!(flushes, 2 * rows / BATCH_ROWS);
}

#[test]
fn a_batch_ends_when_full_when_the_step_changes_and_when_many_states_are_released() {
    let mut instance = instance();
    let handle = instance.new_state(LIMITS).unwrap();
    let plan = [Fixed::Float64];
    for _ in 0..BATCH_ROWS {
        assert!(instance.has_room(Step::Accumulate));
        assert!(instance.try_queue_fixed(Step::Accumulate, handle, &plan, |_| (1f64.to_bits(), false)));
        // A batch holds rows of one step.
        assert!(!instance.has_room(Step::Retract));
    }
    assert!(!instance.has_room(Step::Accumulate));
    assert!(!instance.try_queue_fixed(Step::Accumulate, handle, &plan, |_| (1f64.to_bits(), false)));
    instance.flush(LIMITS).unwrap();
    assert!(instance.has_room(Step::Accumulate) && instance.has_room(Step::Retract));
    assert_eq!(sum_of(&mut instance, handle), BATCH_ROWS as f64);

    let released: Vec<u32> = (0..FREE_BATCH).map(|_| instance.new_state(LIMITS).unwrap()).collect();
    for (n, state) in released.into_iter().enumerate() {
        assert!(instance.has_room(Step::Accumulate), "after {n} released states");
        instance.release(state);
    }
    assert!(!instance.has_room(Step::Accumulate) && !instance.has_room(Step::Retract));
    instance.flush(LIMITS).unwrap();
    assert!(instance.has_room(Step::Accumulate));
}

#[test]
fn plans_cover_fixed_width_rows_only() {
    use Fixed::*;
    assert_eq!(
        row_plan(&[SqlType::Float8, SqlType::Int4, SqlType::Int2, SqlType::Bool, SqlType::TimestampTz, SqlType::Date]),
        Some(vec![Float64, Int32, Int16, Bool, Timestamp, Date])
    );
    assert_eq!(row_plan(&[SqlType::Float8, SqlType::Text]), None);
    assert_eq!(row_plan(&[SqlType::Bytea]), None);
    assert_eq!(row_plan(&[SqlType::Int8; 33]), None, "more arguments than null-mask bits");
}

#[test]
fn a_value_the_per_row_path_cannot_convert_queues_nothing() {
    let mut instance = instance();
    let handle = instance.new_state(LIMITS).unwrap();
    let plan = [Fixed::Timestamp];
    // A timestamp whose shift to the Unix epoch overflows: the checked path reports it.
    let overflowing = (i64::MAX - 1) as u64;
    assert!(!instance.try_queue_fixed(Step::Accumulate, handle, &plan, |_| (overflowing, false)));
    // Nothing was queued: a whole batch still fits.
    for _ in 0..BATCH_ROWS {
        assert!(instance.try_queue_fixed(Step::Accumulate, handle, &plan, |_| (0, false)));
    }
    assert!(!instance.has_room(Step::Accumulate));
}
