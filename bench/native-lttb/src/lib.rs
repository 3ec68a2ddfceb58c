//! The native baseline for bench/aggregates.py: the same LTTB code as the timeseries wasm
//! module (`udf-examples/downsample`), compiled into PostgreSQL as a plain Rust function.
//! It takes the points as arrays (from `array_agg(... ORDER BY ts)`), x as epoch seconds.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

/// `lttb_native(xs, values, n)`: the 1-based positions of the points LTTB keeps.
#[pg_extern(immutable, parallel_safe)]
fn lttb_native(xs: Vec<f64>, values: Vec<f64>, n: i32) -> Vec<i32> {
    if xs.len() != values.len() {
        pgrx::error!("lttb_native: {} x values but {} values", xs.len(), values.len());
    }
    // Microseconds, as the wasm module sees timestamps.
    let points: Vec<(f64, f64)> = xs.iter().zip(&values).map(|(x, v)| ((x * 1e6).round(), *v)).collect();
    downsample::lttb(points.len(), n.max(0) as usize, |i| points[i]).into_iter().map(|i| i as i32 + 1).collect()
}
