/* The numeric example module in C, for clang --target=wasm32 (no libc needed). */
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(#name)))

/* x limited to [lo, hi]; NaN stays NaN. */
EXPORT(clamp) double clamp(double x, double lo, double hi) {
    if (x < lo) return lo;
    if (x > hi) return hi;
    return x;
}

/* Linear interpolation from a (t = 0) to b (t = 1). */
EXPORT(lerp) double lerp(double a, double b, double t) {
    return a + (b - a) * t;
}

/* Greatest common divisor of |a| and |b| (gcd(0, 0) = 0). */
EXPORT(gcd) int64_t gcd(int64_t a, int64_t b) {
    uint64_t x = a < 0 ? -(uint64_t)a : (uint64_t)a;
    uint64_t y = b < 0 ? -(uint64_t)b : (uint64_t)b;
    while (y != 0) {
        uint64_t r = x % y;
        x = y;
        y = r;
    }
    return (int64_t)x;
}

/* Steps of the Collatz map from n to 1; -1 for n < 1. */
EXPORT(collatz_steps) int32_t collatz_steps(int64_t n) {
    if (n < 1) return -1;
    uint64_t m = (uint64_t)n;
    int32_t steps = 0;
    while (m != 1) {
        m = (m % 2 == 0) ? m / 2 : 3 * m + 1;
        steps++;
    }
    return steps;
}
