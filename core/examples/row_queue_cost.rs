//! Per-row cost of an aggregate's host-side row queue outside PostgreSQL: rows of a trivial
//! sum queued by the per-row path (`try_queue_fixed`) and handed to the guest in batches.
//! `cargo run --release -p plwasm-core --example row_queue_cost`
//!
//! Prints ns per row in total, in the batch hand-over (copy into guest memory + the guest's
//! loop) and in queuing, best of three runs of 20 million rows.

use std::time::Instant;

use plwasm_core::aggregate::{AggregateInstance, SlotConversion, Step, BATCH_ROWS};
use plwasm_core::engine::{new_engine, EngineSettings};
use plwasm_core::limits::CallLimits;
use plwasm_core::wasmtime::Module;

const WSUM: &str = r#"(module
  (memory (export "memory") 1)
  (global (export "plwasm_abi_v1") i32 (i32.const 1))
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "plwasm_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (block (loop (br_if 1 (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (drop (memory.grow (i32.const 1))) (br 0)))
    (local.get $p))
  (func (export "wsum.new") (result i32) (call $alloc (i32.const 8)))
  (func (export "wsum.free") (param i32))
  (func (export "wsum.accumulate") (param $p i32) (param $n i32) (local $h i32)
    (block (loop (br_if 1 (i32.eqz (local.get $n)))
      (if (i32.eqz (i32.load offset=4 (local.get $p))) (then
        (local.set $h (i32.load (local.get $p)))
        (f64.store (local.get $h) (f64.add (f64.load (local.get $h)) (f64.load offset=8 (local.get $p))))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br 0))))
  (func (export "wsum.finalize") (param $f i32)
    (f64.store offset=24 (local.get $f) (f64.load (i32.load offset=8 (local.get $f))))))"#;

fn main() {
    let engine = new_engine(&EngineSettings::default()).unwrap();
    let module = Module::new(&engine, WSUM).unwrap();
    let limits = CallLimits { fuel: u64::MAX / 4, max_memory: 64 << 20 };
    let mut instance = AggregateInstance::instantiate(&engine, &module, "wsum", limits, 512 * 1024, || false).unwrap();
    let handle = instance.new_state(limits).unwrap();
    let plan = [SlotConversion::Same];
    let rows = 20_000_000u64;
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for _ in 0..3 {
        let start = Instant::now();
        let mut flush_ns = 0u128;
        for i in 0..rows {
            let bits = ((i % 1000) as f64 * 0.5).to_bits();
            if !instance.try_queue_fixed(Step::Accumulate, handle, &plan, |_| (bits, false)) {
                let flush = Instant::now();
                instance.flush(limits).unwrap();
                flush_ns += flush.elapsed().as_nanos();
                assert!(instance.try_queue_fixed(Step::Accumulate, handle, &plan, |_| (bits, false)));
            }
        }
        let total = start.elapsed().as_nanos();
        let per_row = |ns: u128| ns as f64 / rows as f64;
        if per_row(total) < best.0 {
            best = (per_row(total), per_row(flush_ns), per_row(total - flush_ns));
        }
    }
    println!("| ns/row total | hand-over (copy + guest loop) | queuing |");
    println!("|---:|---:|---:|");
    println!("| {:.2} | {:.2} | {:.2} |", best.0, best.1, best.2);
    println!();
    println!("{rows} rows of one float8 argument, {BATCH_ROWS} rows per batch.");
}
