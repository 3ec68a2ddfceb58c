//! What one host-to-wasm call costs, with and without plwasm's metering (fuel + epoch
//! interruption), outside PostgreSQL. `cargo run --release -p plwasm-core --example call_overhead`
//!
//! Prints a markdown table: ns per call of `add_one` (i64 -> i64) and per iteration of a
//! 1000-step loop, for each engine configuration, best of several runs.

use std::hint::black_box;
use std::time::Instant;

use plwasm_core::wasmtime::{Config, Engine, Instance, Module, Store};

const CALLS: u64 = 10_000_000;
const LOOP: &str = r#"(module
  (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add)
  (func (export "count_down") (param $n i64) (result i64)
    (block $done (loop $again
      local.get $n i64.eqz br_if $done
      local.get $n i64.const 1 i64.sub local.set $n
      br $again))
    local.get $n))"#;

fn engine(fuel: bool, epoch: bool) -> Engine {
    let mut config = Config::new();
    config.consume_fuel(fuel).epoch_interruption(epoch);
    Engine::new(&config).expect("engine")
}

fn best_of<F: FnMut() -> f64>(runs: usize, mut f: F) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn measure(fuel: bool, epoch: bool, refuel_each_call: bool) -> (f64, f64) {
    let engine = engine(fuel, epoch);
    let module = Module::new(&engine, LOOP).expect("module");
    let mut store = Store::new(&engine, ());
    if fuel {
        store.set_fuel(u64::MAX / 2).unwrap();
    }
    if epoch {
        store.set_epoch_deadline(u64::MAX / 2);
    }
    let instance = Instance::new(&mut store, &module, &[]).expect("instance");
    let add_one = instance.get_typed_func::<i64, i64>(&mut store, "add_one").unwrap();
    let count_down = instance.get_typed_func::<i64, i64>(&mut store, "count_down").unwrap();

    let per_call = best_of(5, || {
        let start = Instant::now();
        let mut acc = 0i64;
        for i in 0..CALLS as i64 {
            if fuel && refuel_each_call {
                store.set_fuel(100_000_000).unwrap();
            }
            acc = acc.wrapping_add(add_one.call(&mut store, black_box(i)).unwrap());
        }
        black_box(acc);
        start.elapsed().as_nanos() as f64 / CALLS as f64
    });
    let per_iteration = best_of(5, || {
        let start = Instant::now();
        for _ in 0..1000 {
            black_box(count_down.call(&mut store, black_box(1000)).unwrap());
        }
        start.elapsed().as_nanos() as f64 / 1_000_000.0
    });
    (per_call, per_iteration)
}

fn main() {
    println!("| engine | ns per `add_one` call | ns per loop iteration |");
    println!("|---|---:|---:|");
    for (label, fuel, epoch, refuel) in [
        ("no metering", false, false, false),
        ("epoch interruption only", false, true, false),
        ("fuel only", true, false, false),
        ("fuel + epoch (plwasm)", true, true, false),
        ("fuel + epoch, fuel refilled before every call (plwasm's call path)", true, true, true),
    ] {
        let (call, iteration) = measure(fuel, epoch, refuel);
        println!("| {label} | {call:.1} | {iteration:.2} |");
    }
}
