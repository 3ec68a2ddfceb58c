//! Downsampling algorithms in plain Rust, with no dependencies: compiled into the timeseries
//! wasm module and into the native benchmark extension (bench/native-lttb), so both run the
//! same code, from collecting the points to choosing them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Largest-Triangle-Three-Buckets, exactly as published (Sveinn Steinarsson, "Downsampling
/// Time Series for Visual Representation", 2013, algorithm 1.2 and the reference code): the
/// first and last points are kept; the others are split into `threshold - 2` buckets of equal
/// size by position; from each bucket the point forming the largest triangle with the point
/// chosen in the previous bucket and the average of the next bucket is kept.
///
/// The input is `len` points; `xy(i)` reads point `i`'s coordinates. Returns the positions of
/// the points kept, ascending.
pub fn lttb(len: usize, threshold: usize, xy: impl Fn(usize) -> (f64, f64)) -> Vec<usize> {
    lttb_in_order(len, threshold, || 0..len, xy)
}

/// Buckets up to this many points are kept while the next one is averaged, so the points
/// are walked once; larger buckets (a few kept points out of many) are walked twice instead
/// of buffered.
const MAX_BUFFERED_BUCKET: usize = 1 << 16;

/// [`lttb`] over `len` points that each call of `points` yields in order. One walk, keeping
/// the current bucket while the next is averaged; for buckets over [`MAX_BUFFERED_BUCKET`]
/// points, two cursors a bucket apart instead, so memory stays small either way. Returns the
/// points kept.
pub fn lttb_in_order<P: Copy, I: Iterator<Item = P>>(
    len: usize,
    threshold: usize,
    points: impl Fn() -> I,
    xy: impl Fn(P) -> (f64, f64),
) -> Vec<P> {
    lttb_walking(len, threshold, points, xy, Walks::OnceIfBucketsFit)
}

/// How [`lttb_walking`] may read the points.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walks {
    /// Once, keeping the current bucket, when buckets fit [`MAX_BUFFERED_BUCKET`]: for points
    /// that cost something to produce (merged runs).
    OnceIfBucketsFit,
    /// With two cursors: for points read where they lie, which cost less to read twice than
    /// to copy into a bucket.
    Twice,
}

fn lttb_walking<P: Copy, I: Iterator<Item = P>>(
    len: usize,
    threshold: usize,
    points: impl Fn() -> I,
    xy: impl Fn(P) -> (f64, f64),
    walks: Walks,
) -> Vec<P> {
    if threshold >= len || threshold < 3 {
        return points().take(len).collect();
    }
    let every = (len - 2) as f64 / (threshold - 2) as f64;
    if walks == Walks::OnceIfBucketsFit && (every.ceil() as usize) < MAX_BUFFERED_BUCKET {
        lttb_one_walk(len, threshold, points(), xy)
    } else {
        lttb_two_cursors(len, threshold, points, xy)
    }
}

/// The average of the `count` points `bucket` yields, each also handed to `seen`.
#[inline(always)]
fn bucket_average<P: Copy>(
    bucket: impl Iterator<Item = P>,
    count: usize,
    xy: &impl Fn(P) -> (f64, f64),
    mut seen: impl FnMut(P),
) -> (f64, f64) {
    let (mut avg_x, mut avg_y) = (0.0, 0.0);
    for point in bucket.take(count) {
        let (x, y) = xy(point);
        avg_x += x;
        avg_y += y;
        seen(point);
    }
    (avg_x / count as f64, avg_y / count as f64)
}

/// The point of `bucket` forming the largest triangle with `a` and `avg` (the first of
/// equals), or `a` for an empty bucket.
#[inline(always)]
fn largest_triangle<P: Copy>(
    bucket: impl Iterator<Item = P>,
    a: P,
    avg: (f64, f64),
    xy: &impl Fn(P) -> (f64, f64),
) -> P {
    let ((ax, ay), (avg_x, avg_y)) = (xy(a), avg);
    let mut max_area = -1.0;
    let mut chosen = None;
    for point in bucket {
        let (x, y) = xy(point);
        let area = ((ax - avg_x) * (y - ay) - (ax - x) * (avg_y - ay)).abs() * 0.5;
        if chosen.is_none() || area > max_area {
            max_area = area;
            chosen = Some(point);
        }
    }
    chosen.unwrap_or(a)
}

/// [`lttb_in_order`] with two cursors a bucket apart: nothing buffered.
fn lttb_two_cursors<P: Copy, I: Iterator<Item = P>>(
    len: usize,
    threshold: usize,
    points: impl Fn() -> I,
    xy: impl Fn(P) -> (f64, f64),
) -> Vec<P> {
    let every = (len - 2) as f64 / (threshold - 2) as f64;
    let bound = |i: usize| (i as f64 * every).floor() as usize + 1;
    let (mut scan, mut ahead) = (points(), points());
    let Some(first) = scan.next() else { return Vec::new() };
    let mut sampled = Vec::with_capacity(threshold);
    sampled.push(first);
    let mut a = first;
    let mut last = first;
    // `ahead` starts at the first averaged bucket, `scan` at point 1.
    ahead.by_ref().take(bound(1)).for_each(drop);
    for i in 0..threshold - 2 {
        // Bucket i + 1 (the last one ends at the last point): its average.
        let (avg_start, avg_end) = (bound(i + 1), bound(i + 2).min(len));
        let avg = bucket_average(ahead.by_ref(), avg_end - avg_start, &xy, |point| last = point);
        // Bucket i: the point with the largest triangle.
        a = largest_triangle(scan.by_ref().take(bound(i + 1) - bound(i)), a, avg, &xy);
        sampled.push(a);
    }
    sampled.push(last);
    sampled
}

/// [`lttb_in_order`] in one walk: bucket i is kept while bucket i + 1 is read and averaged.
fn lttb_one_walk<P: Copy>(
    len: usize,
    threshold: usize,
    mut walk: impl Iterator<Item = P>,
    xy: impl Fn(P) -> (f64, f64),
) -> Vec<P> {
    let every = (len - 2) as f64 / (threshold - 2) as f64;
    let bound = |i: usize| (i as f64 * every).floor() as usize + 1;
    let Some(first) = walk.next() else { return Vec::new() };
    let mut sampled = Vec::with_capacity(threshold);
    sampled.push(first);
    let (mut a, mut last) = (first, first);
    let width = every.ceil() as usize + 1;
    let mut current: Vec<P> = Vec::with_capacity(width);
    let mut next: Vec<P> = Vec::with_capacity(width);
    current.extend(walk.by_ref().take(bound(1) - 1));
    for i in 0..threshold - 2 {
        let (avg_start, avg_end) = (bound(i + 1), bound(i + 2).min(len));
        next.clear();
        let avg = bucket_average(walk.by_ref(), avg_end - avg_start, &xy, |point| {
            next.push(point);
            last = point;
        });
        a = largest_triangle(current.iter().copied(), a, avg, &xy);
        sampled.push(a);
        std::mem::swap(&mut current, &mut next);
    }
    sampled.push(last);
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

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.blocks.iter().flatten().copied()
    }

    /// Whether the points, in arrival order, are in time order: what points that arrived in
    /// order leave, once the blocks are sorted.
    fn in_one_run(&self) -> bool {
        self.blocks.windows(2).all(|pair| follows(&pair[0], &pair[1]))
    }
}

/// Whether block `b` may come after block `a` in time order (an empty block goes anywhere;
/// [`PointLog::push`] never leaves one).
fn follows(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    match (a.last(), b.first()) {
        (Some(a), Some(b)) => point_order(a, b).is_le(),
        _ => true,
    }
}

/// By time, then by value: points that share a timestamp sort the same whatever order they
/// arrived in.
fn point_order(a: &(i64, f64), b: &(i64, f64)) -> Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
}

impl PointLog {
    /// Sorts each block in place (the log holds the same points), so [`PointLog::in_order`]
    /// can merge them. Blocks already in order are left alone.
    pub fn sort_blocks(&mut self) {
        for block in &mut self.blocks {
            if !block.is_sorted_by(|a, b| point_order(a, b).is_le()) {
                block.sort_unstable_by(point_order);
            }
        }
    }

    /// The points in time order, once every block is sorted ([`PointLog::sort_blocks`]).
    /// Blocks that follow each other form a run (all of them, for points that arrived in
    /// time order); the runs are merged, so a merge of a few sorted partial states costs a
    /// comparison or two per point.
    pub fn in_order(&self) -> InOrder<'_> {
        let mut runs = Vec::new();
        let mut start = 0;
        for block in 1..=self.blocks.len() {
            if block == self.blocks.len() || !follows(&self.blocks[block - 1], &self.blocks[block]) {
                runs.push((start, block));
                start = block;
            }
        }
        if runs.len() <= 1 {
            return InOrder(Walk::Consecutive(self.blocks.iter().flatten()));
        }
        let heads = runs
            .into_iter()
            .filter(|&(start, _)| !self.blocks[start].is_empty())
            .map(|(start, end)| Head { point: self.blocks[start][0], block: start, at: 0, end })
            .collect();
        InOrder(Walk::Merged { log: self, heads })
    }
}

/// The next point of one run of blocks in a merge (the heap's top is the smallest).
struct Head {
    point: (i64, f64),
    block: usize,
    at: usize,
    /// The block after the run's last.
    end: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        point_order(&other.point, &self.point).then(other.block.cmp(&self.block))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// [`PointLog::in_order`]'s iterator.
pub struct InOrder<'a>(Walk<'a>);

enum Walk<'a> {
    Consecutive(std::iter::Flatten<std::slice::Iter<'a, Vec<(i64, f64)>>>),
    Merged { log: &'a PointLog, heads: BinaryHeap<Head> },
}

impl Iterator for InOrder<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        match &mut self.0 {
            Walk::Consecutive(points) => points.next().copied(),
            Walk::Merged { log, heads } => {
                let mut head = heads.peek_mut()?;
                let point = head.point;
                if head.at + 1 < log.blocks[head.block].len() {
                    head.at += 1;
                } else if head.block + 1 < head.end && !log.blocks[head.block + 1].is_empty() {
                    (head.block, head.at) = (head.block + 1, 0);
                } else {
                    std::collections::binary_heap::PeekMut::pop(head);
                    return Some(point);
                }
                head.point = log.blocks[head.block][head.at];
                Some(point)
            }
        }
    }
}

/// The points [`lttb`] keeps of `points` taken in time order, x being the timestamp. Sorts
/// the log's blocks in place when they are not in order (no copy of the points: a group
/// takes the memory of its points, in any arrival order).
///
/// Points in time order (one run) are read where they lie with two cursors, so none is
/// copied into a bucket buffer on the way; merged runs are walked once.
pub fn lttb_points(points: &mut PointLog, threshold: usize) -> Vec<(i64, f64)> {
    points.sort_blocks();
    let points = &*points;
    let xy = |p: (i64, f64)| (p.0 as f64, p.1);
    if points.in_one_run() {
        return lttb_walking(points.len(), threshold, || points.iter(), xy, Walks::Twice);
    }
    lttb_walking(points.len(), threshold, || points.in_order(), xy, Walks::OnceIfBucketsFit)
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
    fn one_walk_and_two_cursors_agree() {
        let data: Vec<(f64, f64)> = (0..50_000).map(|i| (i as f64, ((i * 7919) % 1013) as f64)).collect();
        for threshold in [3, 4, 10, 1000] {
            let one = lttb_one_walk(data.len(), threshold, 0..data.len(), |i| data[i]);
            let two = lttb_two_cursors(data.len(), threshold, || 0..data.len(), |i| data[i]);
            assert_eq!(one, two, "threshold {threshold}");
            assert_eq!(one.len(), threshold);
        }
    }

    #[test]
    #[ignore]
    fn timing_of_merged_partial_states() {
        // Three workers' partial states of 2M points, chunks of 1000 points dealt in turn.
        let mut log = PointLog::default();
        for worker in 0..3i64 {
            for i in 0..2_000_000i64 {
                if (i / 1000) % 3 == worker {
                    log.push((i, (i % 17) as f64));
                }
            }
        }
        let start = std::time::Instant::now();
        let kept = lttb_points(&mut log, 1000);
        eprintln!("{} points kept in {:?}", kept.len(), start.elapsed());
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
        assert_eq!(in_order.iter().nth(70_000), Some((70_000, ((70_000 * 7) % 13) as f64)));
        let kept = lttb_points(&mut in_order, 500);
        assert_eq!(kept.len(), 500);
        assert_eq!(kept, lttb_points(&mut shuffled, 500));
        assert!(shuffled.in_order().map(|p| p.0).eq(0..200_000));
        // Two sorted runs, as a merge of two partial states leaves them.
        let mut runs = PointLog::default();
        for i in (0..200_000i64).filter(|i| i % 2 == 0).chain((0..200_000).filter(|i| i % 2 == 1)) {
            runs.push((i, ((i * 7) % 13) as f64));
        }
        runs.sort_blocks();
        assert!(runs.in_order().map(|p| p.0).eq(0..200_000));
        assert_eq!(lttb_points(&mut runs, 500), kept);
        // The same points as the index form over the sorted points.
        let sorted: Vec<(i64, f64)> = in_order.iter().collect();
        let by_index: Vec<(i64, f64)> =
            lttb(sorted.len(), 500, |i| (sorted[i].0 as f64, sorted[i].1)).into_iter().map(|i| sorted[i]).collect();
        assert_eq!(kept, by_index);
    }
}
