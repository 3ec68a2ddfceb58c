// The numeric example module in AssemblyScript. Built with --runtime stub and without the
// default `env.abort` import (plwasm modules may not import anything).

/** x limited to [lo, hi]; NaN stays NaN. */
export function clamp(x: f64, lo: f64, hi: f64): f64 {
  if (x < lo) return lo;
  if (x > hi) return hi;
  return x;
}

/** Linear interpolation from a (t = 0) to b (t = 1). */
export function lerp(a: f64, b: f64, t: f64): f64 {
  return a + (b - a) * t;
}

/** Greatest common divisor of |a| and |b| (gcd(0, 0) = 0). */
export function gcd(a: i64, b: i64): i64 {
  let x: u64 = a < 0 ? <u64>(-a) : <u64>a;
  let y: u64 = b < 0 ? <u64>(-b) : <u64>b;
  while (y != 0) {
    const r = x % y;
    x = y;
    y = r;
  }
  return <i64>x;
}

/** Steps of the Collatz map from n to 1; -1 for n < 1. */
export function collatz_steps(n: i64): i32 {
  if (n < 1) return -1;
  let m: u64 = <u64>n;
  let steps: i32 = 0;
  while (m != 1) {
    m = m % 2 == 0 ? m / 2 : 3 * m + 1;
    steps++;
  }
  return steps;
}
