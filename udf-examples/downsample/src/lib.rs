//! Downsampling algorithms in plain Rust, with no dependencies: compiled into the timeseries
//! wasm module and into the native benchmark extension (bench/native-lttb), so both run the
//! same code, from collecting the points to choosing them.

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

/// Points `(timestamp, value)` in arrival order, in blocks of [`PointLog::BLOCK`] (1 MB):
/// growing never copies what is already stored, so N points take 16·N bytes and nothing more
/// (a doubling `Vec` needs up to 3x while it grows). What an LTTB aggregate collects.
#[derive(Default)]
pub struct PointLog {
    blocks: Vec<Vec<(i64, f64)>>,
    len: usize,
}

impl PointLog {
    const BLOCK: usize = 1 << 16;

    #[inline(always)]
    pub fn push(&mut self, point: (i64, f64)) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < Self::BLOCK => block.push(point),
            _ => {
                let mut block = Vec::with_capacity(Self::BLOCK);
                block.push(point);
                self.blocks.push(block);
            }
        }
        self.len += 1;
    }

    #[inline(always)]
    pub fn get(&self, i: usize) -> (i64, f64) {
        self.blocks[i / Self::BLOCK][i % Self::BLOCK]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.blocks.iter().flatten().copied()
    }
}

/// By time, then by value: points that share a timestamp sort the same whatever order they
/// arrived in.
fn point_order(a: &(i64, f64), b: &(i64, f64)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
}

/// The points [`lttb`] keeps of `points` taken in time order, x being the timestamp. Points
/// that arrived in time order (a scan of a table filled in time order, or `ORDER BY ts` in
/// the aggregate call) are used where they are; others are copied and the copy sorted, which
/// takes twice the memory.
pub fn lttb_points(points: &PointLog, threshold: usize) -> Vec<(i64, f64)> {
    let mut previous: Option<(i64, f64)> = None;
    let sorted = points.iter().all(|p| {
        let in_order = previous.is_none_or(|q| point_order(&q, &p).is_le());
        previous = Some(p);
        in_order
    });
    let xy = |p: (i64, f64)| (p.0 as f64, p.1);
    if sorted {
        lttb(points.len(), threshold, |i| xy(points.get(i))).into_iter().map(|i| points.get(i)).collect()
    } else {
        let mut copy: Vec<(i64, f64)> = points.iter().collect();
        copy.sort_unstable_by(point_order);
        lttb(copy.len(), threshold, |i| xy(copy[i])).into_iter().map(|i| copy[i]).collect()
    }
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

    #[test]
    fn arrival_order_does_not_matter() {
        let (mut in_order, mut shuffled) = (PointLog::default(), PointLog::default());
        for i in 0..200_000i64 {
            in_order.push((i, ((i * 7) % 13) as f64));
            let j = (i * 7919) % 200_000;
            shuffled.push((j, ((j * 7) % 13) as f64));
        }
        assert_eq!(in_order.len(), 200_000);
        assert_eq!(in_order.get(70_000), (70_000, ((70_000 * 7) % 13) as f64));
        let kept = lttb_points(&in_order, 500);
        assert_eq!(kept.len(), 500);
        assert_eq!(kept, lttb_points(&shuffled, 500));
    }
}
