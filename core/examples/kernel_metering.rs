//! What fuel and epoch metering cost on the time-series library's float kernels, outside
//! PostgreSQL: `cargo run --release -p plwasm-core --example kernel_metering [timeseries.wasm]`
//! (the module `udf-examples/build.sh` builds).
//!
//! For each engine configuration (plwasm's, with fuel and epoch checks compiled in or left
//! out) each aggregate gets one group of 2,000,000 points in time order, queued and handed
//! over in batches as the extension does, then finalized. Prints a markdown table of ms per
//! group (best of 3) and the fuel the group's batches and its finalize used.

use std::time::Instant;

use plwasm_core::aggregate::{AggregateInstance, Step};
use plwasm_core::engine::{engine_config, EngineSettings};
use plwasm_core::limits::CallLimits;
use plwasm_core::sandbox::InstanceHost;
use plwasm_core::types::SqlType;
use plwasm_core::wasmtime::{Engine, Module};

const POINTS: usize = 2_000_000;
/// 2026-01-01 00:00:00 UTC in microseconds since 1970.
const START_US: i64 = 1_767_225_600_000_000;
const END_US: i64 = START_US + POINTS as i64 * 1_000_000;

struct Kernel {
    name: &'static str,
    /// A row's slot words for point `i` (microsecond timestamp, value).
    row: fn(i64, f64) -> Vec<u64>,
}

fn kernels() -> Vec<Kernel> {
    vec![
        Kernel { name: "lttb", row: |ts, v| vec![ts as u64, v.to_bits(), 1000] },
        Kernel { name: "m4", row: |ts, v| vec![ts as u64, v.to_bits(), 1000, START_US as u64, END_US as u64] },
        Kernel { name: "stats_agg", row: |_, v| vec![v.to_bits()] },
        Kernel { name: "percentile_agg", row: |_, v| vec![v.to_bits()] },
    ]
}

fn value(i: usize) -> f64 {
    let noise = ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 400.0;
    20.0 + 6.0 * (std::f64::consts::TAU * i as f64 / 86_400.0).sin() + noise
}

/// One group through `kernel`: (ms, fuel used by the batches, fuel used by finalize).
fn run_group(engine: &Engine, module: &Module, kernel: &Kernel, limits: CallLimits) -> (f64, u64, u64) {
    let host = InstanceHost::standalone(512 * 1024);
    let mut instance = AggregateInstance::instantiate(engine, module, kernel.name, limits, &host).expect("instance");
    let handle = instance.new_state(limits).expect("state");
    let rows: Vec<Vec<u64>> = (0..POINTS).map(|i| (kernel.row)(START_US + i as i64 * 1_000_000, value(i))).collect();
    let start = Instant::now();
    let mut batch_fuel = 0;
    for row in &rows {
        if !instance.has_room(Step::Accumulate) {
            instance.flush(limits).expect("batch");
            batch_fuel += instance.fuel_used();
        }
        instance.queue_row(Step::Accumulate, handle, row.len(), |i| Ok(Some(row[i]))).expect("row");
    }
    instance.flush(limits).expect("batch");
    batch_fuel += instance.fuel_used();
    let length = instance.finalize(handle, SqlType::Bytea, limits, |v| format!("{v:?}").len()).expect("finalize");
    std::hint::black_box(length);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    (ms, batch_fuel, instance.fuel_used())
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "udf-examples/build/timeseries.wasm".into());
    let wasm = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    // No fuel cap (0), the default memory cap.
    let limits = CallLimits { fuel: 0, max_memory: 64 << 20 };
    let configurations = [
        ("no metering", false, false),
        ("epoch interruption only", false, true),
        ("fuel only", true, false),
        ("fuel + epoch (plwasm)", true, true),
    ];
    let kernels = kernels();
    let mut table: Vec<Vec<f64>> = Vec::new();
    let mut fuel: Vec<(u64, u64)> = Vec::new();
    for (_, fuel_on, epoch_on) in configurations {
        let mut config = engine_config(&EngineSettings::default());
        config.consume_fuel(fuel_on).epoch_interruption(epoch_on);
        let engine = Engine::new(&config).expect("engine");
        let module = Module::new(&engine, &wasm).expect("module");
        let mut row = Vec::new();
        for kernel in &kernels {
            let runs: Vec<(f64, u64, u64)> = (0..3).map(|_| run_group(&engine, &module, kernel, limits)).collect();
            row.push(runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min));
            if fuel_on && epoch_on {
                fuel.push((runs[0].1, runs[0].2));
            }
        }
        table.push(row);
    }
    let names: Vec<String> = kernels.iter().map(|k| format!("`{}` ms", k.name)).collect();
    println!("| engine | {} |", names.join(" | "));
    println!("|---|{}", "---:|".repeat(kernels.len()));
    for ((label, _, _), row) in configurations.iter().zip(&table) {
        let cells: Vec<String> =
            row.iter().zip(&table[0]).map(|(ms, bare)| format!("{ms:.0} ({:.2}x)", ms / bare)).collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    println!();
    println!("One group of {POINTS} points in time order (ms: batches and finalize, best of 3; ratio to no metering).");
    println!();
    println!("| aggregate | fuel of all batches | fuel of finalize |");
    println!("|---|---:|---:|");
    for (kernel, (batches, finalize)) in kernels.iter().zip(fuel) {
        println!("| `{}` | {batches} | {finalize} |", kernel.name);
    }
}
