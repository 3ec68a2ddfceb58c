//! Per-row cost of an aggregate's host-side row queue outside PostgreSQL: rows of a trivial
//! sum queued by the per-row path (`try_queue_fixed`) and handed to the guest in batches.
//! `cargo run --release -p plwasm-core --example row_queue_cost`
//!
//! Prints ns per row in total, in the batch hand-over (copy into guest memory + the guest's
//! loop) and in queuing, best of three runs of 20 million rows.

use std::time::Instant;

use plwasm_core::aggregate::{AggregateInstance, Step, BATCH_ROWS};
use plwasm_core::engine::{new_engine, EngineSettings};
use plwasm_core::limits::CallLimits;
use plwasm_core::sandbox::InstanceHost;
use plwasm_core::types::Fixed;
use plwasm_core::wasmtime::Module;

const WSUM: &str = include_str!("../../bench/wsum.wat");

fn main() {
    let engine = new_engine(&EngineSettings::default()).unwrap();
    let module = Module::new(&engine, WSUM).unwrap();
    let limits = CallLimits { fuel: u64::MAX / 4, max_memory: 64 << 20 };
    let mut instance =
        AggregateInstance::instantiate(&engine, &module, "wsum", limits, &InstanceHost::standalone(512 * 1024))
            .unwrap();
    let handle = instance.new_state(limits).unwrap();
    let plan = [Fixed::Float64];
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
