//! The native baselines for bench/aggregates.py: the same LTTB code as the timeseries wasm
//! module (`udf-examples/downsample`), compiled into PostgreSQL.
//!
//! - `lttb_native_agg(ts, value, n)`: an aggregate with the wasm `lttb`'s data flow: each row
//!   is pushed into a `downsample::PointLog` (the wasm aggregate's collection), and the final
//!   function runs `downsample::lttb_points` and encodes the series the same way. The fair
//!   comparison: only wasm against native differs.
//! - `lttb_native(xs, values, n)`: LTTB over arrays (from `array_agg(... ORDER BY ts)`), the
//!   pipeline a plain native function needs.

use downsample::PointLog;
use pgrx::prelude::*;
use pgrx::{Internal, PgMemoryContexts};

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

/// The aggregate's state: the points and the requested size.
#[derive(Default)]
struct NativeLttb {
    points: PointLog,
    n: i32,
}

/// PostgreSQL microseconds (2000 epoch) to Unix microseconds, as the wasm module sees them.
const UNIX_TO_PG_US: i64 = 946_684_800_000_000;

/// Transition function of `lttb_native_agg`: one row into the state, which lives in the
/// aggregate's memory context.
#[pg_extern(parallel_safe)]
fn lttb_native_acc(
    state: Internal,
    ts: Option<TimestampWithTimeZone>,
    value: Option<f64>,
    n: i32,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is this call's; AggCheckCallContext only reads it.
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) } == 0 {
        pgrx::error!("lttb_native_acc called outside an aggregate");
    }
    // SAFETY: the state is a NativeLttb this function made (or NULL), allocated in the
    // aggregate's context, which outlives every transition call.
    let lttb = unsafe { PgMemoryContexts::For(context).switch_to(|_| state.get_or_insert_default::<NativeLttb>()) };
    if let (Some(ts), Some(value)) = (ts, value) {
        let pg_us: pg_sys::TimestampTz = ts.into();
        lttb.points.push((pg_us + UNIX_TO_PG_US, value));
    }
    lttb.n = n;
    state
}

/// Final function of `lttb_native_agg`: the kept points as a series (16 bytes each, as the
/// wasm module encodes them).
#[pg_extern(parallel_safe)]
fn lttb_native_final(state: Internal) -> Option<Vec<u8>> {
    let mut state = state;
    // SAFETY: the state is a NativeLttb made by lttb_native_acc.
    let lttb = unsafe { state.get_mut::<NativeLttb>() }?;
    if lttb.points.is_empty() {
        return Some(Vec::new());
    }
    if lttb.n < 3 {
        pgrx::error!("lttb needs n >= 3 (the first, the last and one bucket), not {}", lttb.n);
    }
    let mut out = Vec::with_capacity(lttb.n as usize * 16);
    for (ts, value) in downsample::lttb_points(&mut lttb.points, lttb.n as usize) {
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    Some(out)
}

pgrx::extension_sql!(
    r#"
CREATE AGGREGATE lttb_native_agg(timestamptz, float8, int4) (
    SFUNC = lttb_native_acc, STYPE = internal, FINALFUNC = lttb_native_final
);
"#,
    name = "lttb_native_agg",
    requires = [lttb_native_acc, lttb_native_final]
);
