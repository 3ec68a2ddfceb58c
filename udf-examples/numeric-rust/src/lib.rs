//! The numeric example module in Rust: plain `extern "C"` exports, no dependencies.
//! Build: cargo build --release --target wasm32-unknown-unknown

/// `x` limited to `[lo, hi]`; NaN stays NaN.
#[no_mangle]
pub extern "C" fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// Linear interpolation from `a` (t = 0) to `b` (t = 1).
#[no_mangle]
pub extern "C" fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

/// Greatest common divisor of |a| and |b| (gcd(0, 0) = 0).
#[no_mangle]
pub extern "C" fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i64
}

/// Steps of the Collatz map from `n` to 1; -1 for n < 1.
#[no_mangle]
pub extern "C" fn collatz_steps(n: i64) -> i32 {
    if n < 1 {
        return -1;
    }
    let (mut n, mut steps) = (n as u64, 0i32);
    while n != 1 {
        n = if n % 2 == 0 { n / 2 } else { n.wrapping_mul(3).wrapping_add(1) };
        steps += 1;
    }
    steps
}
