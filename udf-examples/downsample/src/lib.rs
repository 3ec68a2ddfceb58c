//! Downsampling algorithms in plain Rust, with no dependencies: compiled into the timeseries
//! wasm module and into the native benchmark extension (bench/native-lttb), so both run the
//! same code.

/// Largest-Triangle-Three-Buckets, exactly as published (Sveinn Steinarsson, "Downsampling
/// Time Series for Visual Representation", 2013, algorithm 1.2 and the reference code): the
/// first and last points are kept; the others are split into `threshold - 2` buckets of equal
/// size by position; from each bucket the point forming the largest triangle with the point
/// chosen in the previous bucket and the average of the next bucket is kept.
///
/// The input is `len` points; `xy(i)` reads point `i`'s coordinates, so callers keep their
/// points however they store them (no converted copy of the input). Returns the positions
/// of the points kept, ascending.
pub fn lttb(len: usize, threshold: usize, xy: impl Fn(usize) -> (f64, f64)) -> Vec<usize> {
    if threshold >= len || threshold < 3 {
        return (0..len).collect();
    }
    let mut sampled = Vec::with_capacity(threshold);
    let every = (len - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    sampled.push(0);
    for i in 0..threshold - 2 {
        let avg_start = ((i + 1) as f64 * every).floor() as usize + 1;
        let avg_end = (((i + 2) as f64 * every).floor() as usize + 1).min(len);
        let avg_len = (avg_end - avg_start) as f64;
        let (mut avg_x, mut avg_y) = (0.0, 0.0);
        for point in avg_start..avg_end {
            let (x, y) = xy(point);
            avg_x += x;
            avg_y += y;
        }
        avg_x /= avg_len;
        avg_y /= avg_len;

        let range_start = (i as f64 * every).floor() as usize + 1;
        let range_end = ((i + 1) as f64 * every).floor() as usize + 1;
        let (ax, ay) = xy(a);
        let mut max_area = -1.0;
        let mut next_a = range_start;
        for j in range_start..range_end {
            let (x, y) = xy(j);
            let area = ((ax - avg_x) * (y - ay) - (ax - x) * (avg_y - ay)).abs() * 0.5;
            if area > max_area {
                max_area = area;
                next_a = j;
            }
        }
        sampled.push(next_a);
        a = next_a;
    }
    sampled.push(len - 1);
    sampled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lttb_keeps_ends_and_one_point_per_bucket() {
        let data: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, ((i * 7) % 13) as f64)).collect();
        let chosen = lttb(data.len(), 10, |i| data[i]);
        assert_eq!(chosen.len(), 10);
        assert_eq!((chosen[0], chosen[9]), (0, 99));
        assert!(chosen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(lttb(data.len(), 200, |i| data[i]).len(), 100);
    }
}
