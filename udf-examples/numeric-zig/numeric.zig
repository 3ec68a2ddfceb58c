//! The numeric example module in Zig, for wasm32-freestanding.

/// x limited to [lo, hi]; NaN stays NaN.
export fn clamp(x: f64, lo: f64, hi: f64) f64 {
    if (x < lo) return lo;
    if (x > hi) return hi;
    return x;
}

/// Linear interpolation from a (t = 0) to b (t = 1).
export fn lerp(a: f64, b: f64, t: f64) f64 {
    return a + (b - a) * t;
}

/// Greatest common divisor of |a| and |b| (gcd(0, 0) = 0).
export fn gcd(a: i64, b: i64) i64 {
    var x: u64 = @abs(a);
    var y: u64 = @abs(b);
    while (y != 0) {
        const r = x % y;
        x = y;
        y = r;
    }
    return @bitCast(x);
}

/// Steps of the Collatz map from n to 1; -1 for n < 1.
export fn collatz_steps(n: i64) i32 {
    if (n < 1) return -1;
    var m: u64 = @intCast(n);
    var steps: i32 = 0;
    while (m != 1) {
        m = if (m % 2 == 0) m / 2 else 3 *% m +% 1;
        steps += 1;
    }
    return steps;
}
