//! Time-series downsampling and statistics, computed where the data lives.
//!
//! - `lttb(ts, value, n)`: Largest-Triangle-Three-Buckets (Steinarsson 2013), as published.
//! - `m4(ts, value, width, t_start, t_end)`: first, last, min and max point per pixel column
//!   (Jugel et al. 2014); mergeable, so it runs as a parallel partial aggregate.
//! - `points(series)`: a series (what `lttb` and `m4` return) as rows `(ts, value)`.
//! - `stats_agg(value)`: count, mean, variance, min, max (Youngs-Cramer sums, as PostgreSQL's
//!   `avg` and `stddev`; merged with Chan et al.),
//!   read with `stats_count`, `stats_mean`, `stats_variance`, `stats_stddev`, `stats_min`,
//!   `stats_max`, and merged with the `stats_rollup` aggregate.
//! - `percentile_agg(value)`: a DDSketch with 1% relative accuracy, read with
//!   `approx_percentile(sketch, q)` and `sketch_count`, merged with `percentile_rollup`.
//! - `running_mean(value)`: a mean that also runs as a moving aggregate in window frames.
//!
//! A series is a `bytea` of 16-byte points: microseconds since 1970-01-01 UTC (i64, little
//! endian), then the value (f64, little endian), in time order.

use plwasm_guest::{aggregate, export, Error, Table, TimestampTz};

// ---------------------------------------------------------------- float helpers

/// `a.min(b)` (NaN ignored, as `f64::min`) as a compare and a select. On wasm32 `f64::min`
/// becomes a call of `fmin` that the guest compiler cannot inline (it is a libcall chosen at
/// code generation), and a call per row is a large share of a small aggregate's work.
#[inline(always)]
fn smaller(a: f64, b: f64) -> f64 {
    if b.is_nan() || a < b {
        a
    } else {
        b
    }
}

/// `a.max(b)` (NaN ignored, as `f64::max`), inlined: see [`smaller`].
#[inline(always)]
fn larger(a: f64, b: f64) -> f64 {
    if a.is_nan() || a < b {
        b
    } else {
        a
    }
}

// ---------------------------------------------------------------- series encoding

fn encode_series(points: &[(i64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * 16);
    for (ts, value) in points {
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

fn decode_series(bytes: &[u8]) -> Result<Vec<(i64, f64)>, Error> {
    if bytes.len() % 16 != 0 {
        return Err(Error::invalid_parameter(format!(
            "a series is a multiple of 16 bytes (timestamp, value); this one has {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(16)
        .map(|p| {
            let ts = i64::from_le_bytes(p[0..8].try_into().unwrap_or_default());
            let value = f64::from_le_bytes(p[8..16].try_into().unwrap_or_default());
            (ts, value)
        })
        .collect())
}

/// The points of a series as rows `(ts, value)`.
#[export(columns = "ts, value")]
fn points(series: &[u8]) -> Result<Table<(TimestampTz, f64)>, Error> {
    Ok(Table(decode_series(series)?.into_iter().map(|(ts, v)| (TimestampTz(ts), v)).collect()))
}

/// The number of points in a series.
#[export]
fn series_length(series: &[u8]) -> i32 {
    (series.len() / 16) as i32
}

/// A little reader for serialized states.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u64(&mut self) -> Result<u64, Error> {
        let (head, rest) = self.0.split_at_checked(8).ok_or_else(|| Error::invalid_parameter("truncated state"))?;
        self.0 = rest;
        Ok(u64::from_le_bytes(head.try_into().unwrap_or_default()))
    }
    fn i64(&mut self) -> Result<i64, Error> {
        self.u64().map(|v| v as i64)
    }
    fn f64(&mut self) -> Result<f64, Error> {
        self.u64().map(f64::from_bits)
    }
}

// ---------------------------------------------------------------- LTTB

pub use downsample::{lttb, lttb_points, PointLog};

/// State of `lttb`: the points seen, and the requested size.
#[derive(Default)]
pub struct Lttb {
    points: PointLog,
    n: i32,
}

#[aggregate(name = "lttb")]
impl Lttb {
    fn accumulate(&mut self, ts: TimestampTz, value: f64, n: i32) {
        self.points.push((ts.0, value));
        self.n = n;
    }

    /// See [`lttb_points`]: no copy of the points, whatever order they arrived in (sorting
    /// the state's blocks in place leaves the same points, so a later call gives the same
    /// answer).
    fn finalize(&mut self) -> Result<Vec<u8>, Error> {
        if self.points.is_empty() {
            return Ok(Vec::new());
        }
        if self.n < 3 {
            return Err(Error::invalid_parameter(format!(
                "lttb needs n >= 3 (the first, the last and one bucket), not {}",
                self.n
            )));
        }
        Ok(encode_series(&lttb_points(&mut self.points, self.n as usize)))
    }

    fn merge(&mut self, other: &Self) {
        for point in other.points.iter() {
            self.points.push(point);
        }
        self.n = self.n.max(other.n);
    }

    fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 16 * self.points.len());
        out.extend_from_slice(&(self.n as i64).to_le_bytes());
        for (ts, value) in self.points.iter() {
            out.extend_from_slice(&ts.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }

    fn deserialize(bytes: &[u8]) -> Result<Self, Error> {
        let n = Reader(bytes).i64()? as i32;
        let series = &bytes[8..];
        if series.len() % 16 != 0 {
            return Err(Error::invalid_parameter("an lttb state is a size and 16-byte points"));
        }
        // Straight into the log: no intermediate copy of the points.
        let mut state = Lttb { n, points: PointLog::default() };
        for p in series.chunks_exact(16) {
            let ts = i64::from_le_bytes(p[0..8].try_into().unwrap_or_default());
            state.points.push((ts, f64::from_le_bytes(p[8..16].try_into().unwrap_or_default())));
        }
        Ok(state)
    }
}

// ---------------------------------------------------------------- M4

#[derive(Clone, Copy)]
struct Column {
    first: (i64, f64),
    last: (i64, f64),
    min: (i64, f64),
    max: (i64, f64),
}

impl Column {
    fn new(point: (i64, f64)) -> Column {
        Column { first: point, last: point, min: point, max: point }
    }

    /// Adds a point; ties keep the earlier point (first, min, max) or the later (last), so the
    /// result does not depend on the order rows arrive in.
    fn add(&mut self, p: (i64, f64)) {
        if p.0 < self.first.0 {
            self.first = p;
        }
        if p.0 > self.last.0 {
            self.last = p;
        }
        if p.1 < self.min.1 || (p.1 == self.min.1 && p.0 < self.min.0) {
            self.min = p;
        }
        if p.1 > self.max.1 || (p.1 == self.max.1 && p.0 < self.max.0) {
            self.max = p;
        }
    }

    fn merge(&mut self, other: &Column) {
        for p in [other.first, other.last, other.min, other.max] {
            self.add(p);
        }
    }
}

/// State of `m4`: the time range, the number of pixel columns, and each column's points.
#[derive(Default)]
pub struct M4 {
    width: i32,
    t_start: i64,
    t_end: i64,
    columns: Vec<Option<Column>>,
    /// The column the last point fell in, with the timestamps `[from, to)` it covers: points
    /// that arrive in time order fall in it again and again, found with two comparisons
    /// instead of a multiplication and a division. Empty at first (not part of the state's
    /// value: never serialized).
    last_column: ColumnSpan,
}

#[derive(Default, Clone, Copy)]
struct ColumnSpan {
    from: i64,
    to: i64,
    column: usize,
}

/// The widest M4 chart, in columns.
const MAX_M4_WIDTH: i32 = 1_000_000;

impl M4 {
    fn configure(&mut self, width: i32, t_start: i64, t_end: i64) -> Result<(), Error> {
        if self.columns.is_empty() {
            if width < 1 || t_end <= t_start {
                return Err(Error::invalid_parameter("m4 needs width >= 1 and t_end after t_start"));
            }
            // A chart column per pixel: a width past any screen is a mistake (or a forged
            // state), refused before allocating for it.
            if width > MAX_M4_WIDTH {
                return Err(Error::invalid_parameter(format!("m4's width is at most {MAX_M4_WIDTH} columns")));
            }
            *self =
                M4 { width, t_start, t_end, columns: vec![None; width as usize], last_column: ColumnSpan::default() };
        } else if (width, t_start, t_end) != (self.width, self.t_start, self.t_end) {
            return Err(Error::invalid_parameter(
                "m4's width, t_start and t_end must be the same for every row of a group",
            ));
        }
        Ok(())
    }

    /// The column of `ts` (within [t_start, t_end]). In 64 bits when the product fits (any
    /// range up to centuries at chart widths): 128-bit division is a long software routine in
    /// wasm, once per row.
    #[inline(always)]
    fn column_of(&self, ts: i64) -> usize {
        let (since, span) = (ts - self.t_start, self.t_end - self.t_start);
        let offset = match since.checked_mul(self.width as i64) {
            Some(scaled) => (scaled / span) as usize,
            None => (since as i128 * self.width as i128 / span as i128) as usize,
        };
        offset.min(self.width as usize - 1)
    }

    /// [`M4::column_of`] for `ts` within [t_start, t_end], through the span of the column
    /// the point before fell in.
    #[inline(always)]
    fn column_of_next(&mut self, ts: i64) -> usize {
        let last = self.last_column;
        if last.from <= ts && ts < last.to {
            return last.column;
        }
        let column = self.column_of(ts);
        self.last_column = ColumnSpan { from: self.column_start(column), to: self.column_start(column + 1), column };
        column
    }

    /// The first timestamp [`M4::column_of`] puts in `column` (past t_end for the column
    /// after the last): t_start + ceil(column * span / width), since floor(since * width /
    /// span) >= column exactly when since >= that.
    #[cold]
    fn column_start(&self, column: usize) -> i64 {
        if column >= self.width as usize {
            return self.t_end + 1;
        }
        let (span, width) = ((self.t_end - self.t_start) as i128, self.width as i128);
        self.t_start + ((column as i128 * span + width - 1) / width) as i64
    }
}

#[aggregate(name = "m4")]
impl M4 {
    fn accumulate(&mut self, ts: TimestampTz, value: f64, width: i32, t_start: TimestampTz, t_end: TimestampTz) {
        if let Err(err) = self.configure(width, t_start.0, t_end.0) {
            err.raise();
        }
        if ts.0 < self.t_start || ts.0 > self.t_end {
            return;
        }
        let column = self.column_of_next(ts.0);
        match &mut self.columns[column] {
            Some(c) => c.add((ts.0, value)),
            empty => *empty = Some(Column::new((ts.0, value))),
        }
    }

    fn finalize(&self) -> Vec<u8> {
        let mut chosen = Vec::with_capacity(self.columns.len() * 4);
        for column in self.columns.iter().flatten() {
            let mut four = [column.first, column.min, column.max, column.last];
            four.sort_by_key(|p| p.0);
            for (i, p) in four.iter().enumerate() {
                if i == 0 || p.0 != four[i - 1].0 {
                    chosen.push(*p);
                }
            }
        }
        encode_series(&chosen)
    }

    fn merge(&mut self, other: &Self) {
        if other.columns.is_empty() {
            return;
        }
        if let Err(err) = self.configure(other.width, other.t_start, other.t_end) {
            err.raise();
        }
        for (mine, theirs) in self.columns.iter_mut().zip(&other.columns) {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(t),
                (None, Some(t)) => *mine = Some(*t),
                _ => {}
            }
        }
    }

    fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [self.width as i64, self.t_start, self.t_end] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for (i, column) in self.columns.iter().enumerate() {
            if let Some(c) = column {
                out.extend_from_slice(&(i as i64).to_le_bytes());
                out.extend(encode_series(&[c.first, c.last, c.min, c.max]));
            }
        }
        out
    }

    fn deserialize(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        let (width, t_start, t_end) = (r.i64()? as i32, r.i64()?, r.i64()?);
        let mut state = M4::default();
        if width > 0 {
            state.configure(width, t_start, t_end)?;
        }
        while !r.0.is_empty() {
            let i = r.i64()? as usize;
            let mut p = [(0, 0.0); 4];
            for point in &mut p {
                *point = (r.i64()?, r.f64()?);
            }
            let slot = state.columns.get_mut(i).ok_or_else(|| Error::invalid_parameter("bad m4 state"))?;
            *slot = Some(Column { first: p[0], last: p[1], min: p[2], max: p[3] });
        }
        Ok(state)
    }
}

// ---------------------------------------------------------------- statistics

/// Count, sum and sum of squared deviations, min and max, updated as PostgreSQL's own
/// `float8_accum` does (Youngs and Cramer): no division on the chain from one row to the next,
/// and the same sums, so a serial `stats_mean` is exactly `avg`. The flat form (40 bytes)
/// carries the mean, not the sum.
#[derive(Default, Clone, Copy)]
pub struct Stats {
    n: u64,
    sum: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Stats {
    #[inline(always)]
    fn add(&mut self, x: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = smaller(self.min, x);
            self.max = larger(self.max, x);
        }
        let old_n = self.n as f64;
        self.n += 1;
        self.sum += x;
        if old_n > 0.0 {
            let n = self.n as f64;
            let deviation = x * n - self.sum;
            self.m2 += deviation * deviation / (n * old_n);
        }
    }

    fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// Chan, Golub and LeVeque's pairwise update, on sums (PostgreSQL's `float8_combine`).
    fn combine(&mut self, other: &Stats) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (n1, n2) = (self.n as f64, other.n as f64);
        let delta = self.sum / n1 - other.sum / n2;
        self.m2 += other.m2 + n1 * n2 * delta * delta / (n1 + n2);
        self.sum += other.sum;
        self.min = smaller(self.min, other.min);
        self.max = larger(self.max, other.max);
        self.n += other.n;
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&self.n.to_le_bytes());
        let mean = if self.n > 0 { self.mean() } else { 0.0 };
        for v in [mean, self.m2, self.min, self.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Stats, Error> {
        if bytes.len() != 40 {
            return Err(Error::invalid_parameter(format!("a stats summary has 40 bytes, not {}", bytes.len())));
        }
        let mut r = Reader(bytes);
        let (n, mean) = (r.u64()?, r.f64()?);
        Ok(Stats { n, sum: mean * n as f64, m2: r.f64()?, min: r.f64()?, max: r.f64()? })
    }
}

#[aggregate(name = "stats_agg")]
impl Stats {
    fn accumulate(&mut self, value: f64) {
        self.add(value);
    }
    fn finalize(&self) -> Vec<u8> {
        self.encode()
    }
    fn merge(&mut self, other: &Self) {
        self.combine(other);
    }
    fn serialize(&self) -> Vec<u8> {
        self.encode()
    }
    fn deserialize(bytes: &[u8]) -> Result<Self, Error> {
        Stats::decode(bytes)
    }
}

/// `stats_rollup(summary)`: merges summaries made by `stats_agg`.
#[derive(Default)]
pub struct StatsRollup(Stats);

#[aggregate(name = "stats_rollup")]
impl StatsRollup {
    fn accumulate(&mut self, summary: &[u8]) {
        match Stats::decode(summary) {
            Ok(other) => self.0.combine(&other),
            Err(err) => err.raise(),
        }
    }
    fn finalize(&self) -> Vec<u8> {
        self.0.encode()
    }
    fn merge(&mut self, other: &Self) {
        self.0.combine(&other.0);
    }
    fn serialize(&self) -> Vec<u8> {
        self.0.encode()
    }
    fn deserialize(bytes: &[u8]) -> Result<Self, Error> {
        Stats::decode(bytes).map(StatsRollup)
    }
}

#[export]
fn stats_count(summary: &[u8]) -> Result<i64, Error> {
    Ok(Stats::decode(summary)?.n as i64)
}

#[export]
fn stats_mean(summary: &[u8]) -> Result<Option<f64>, Error> {
    let s = Stats::decode(summary)?;
    Ok((s.n > 0).then(|| s.mean()))
}

/// Sample variance, like `var_samp` (NULL below two values).
#[export]
fn stats_variance(summary: &[u8]) -> Result<Option<f64>, Error> {
    let s = Stats::decode(summary)?;
    Ok((s.n > 1).then(|| s.m2 / (s.n - 1) as f64))
}

/// Sample standard deviation, like `stddev_samp`.
#[export]
fn stats_stddev(summary: &[u8]) -> Result<Option<f64>, Error> {
    Ok(stats_variance(summary)?.map(f64::sqrt))
}

#[export]
fn stats_min(summary: &[u8]) -> Result<Option<f64>, Error> {
    let s = Stats::decode(summary)?;
    Ok((s.n > 0).then_some(s.min))
}

#[export]
fn stats_max(summary: &[u8]) -> Result<Option<f64>, Error> {
    let s = Stats::decode(summary)?;
    Ok((s.n > 0).then_some(s.max))
}

// ---------------------------------------------------------------- running mean (window frames)

/// A mean that can also drop values, so window frames slide instead of restarting. Its flat
/// form (for copies and parallel plans) is derived.
#[derive(Default, plwasm_guest::State)]
pub struct RunningMean {
    n: i64,
    sum: f64,
}

#[aggregate(name = "running_mean")]
impl RunningMean {
    fn accumulate(&mut self, value: f64) {
        self.n += 1;
        self.sum += value;
    }
    fn retract(&mut self, value: f64) {
        self.n -= 1;
        self.sum -= value;
    }
    fn finalize(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

// ---------------------------------------------------------------- percentiles (DDSketch)

/// Relative accuracy of the sketch: a quantile is within 1% of the true value.
const ALPHA: f64 = 0.01;

/// DDSketch (Masson, Rim and Lee, VLDB 2019) with unbounded logarithmic bins: values in
/// (γ^(i-1), γ^i] count in bin i, γ = (1+α)/(1-α); negative values mirror that; zeros
/// count apart.
#[derive(Default, Clone)]
pub struct Sketch {
    positive: Bins,
    negative: Bins,
    zeros: u64,
    count: u64,
    min: f64,
    max: f64,
}

/// The counts of a contiguous range of bins, one word each: a row costs an index, not a
/// search. Values from 1e-300 to 1e300 span about 69,000 bins, so a store stays under 600 kB
/// however the values spread.
#[derive(Default, Clone)]
struct Bins {
    first: i32,
    counts: Vec<u64>,
}

impl Bins {
    #[inline(always)]
    fn add(&mut self, bin: i32, count: u64) {
        if self.counts.is_empty() {
            self.first = bin;
            self.counts.push(0);
        }
        if bin < self.first {
            let missing = (self.first - bin) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, missing));
            self.first = bin;
        }
        let at = (bin - self.first) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += count;
    }

    /// The bins that hold values, in ascending order.
    fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (self.first + i as i32, *c))
    }

    fn len(&self) -> usize {
        self.iter().count()
    }
}

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

#[inline(always)]
fn bin(x: f64) -> i32 {
    (x.ln() / gamma().ln()).ceil() as i32
}

/// [`bin`] of a positive `x` without a logarithm: a table lookup, exactly `bin`'s answer.
///
/// Each binade of doubles (one exponent) is cut by the top [`SUB_BITS`] bits of the mantissa
/// into sub-ranges narrower (at most 0.4% wide) than a bin (2%), so at most one bin starts
/// inside each. A binade's table, made the first time a value falls in it, holds each
/// sub-range's bin and the first value of the next bin when it starts inside; `bin` is
/// monotonic (a logarithm, a division by a positive constant and `ceil` all are), so that
/// value is found by bisection over the doubles of the sub-range. A table is 4 kB, made with
/// about 2,000 logarithms; only binades values fall in get one.
#[inline(always)]
fn bin_of_positive(x: f64) -> i32 {
    let binade = (x.to_bits() >> 52) as usize;
    BINADES.with(|binades| {
        if let Some(Binade::Table(table)) = binades.borrow().get(binade) {
            return table_bin(table, x);
        }
        binade_bin(binades, binade, x)
    })
}

/// The bin of `x` by its binade's table.
#[inline(always)]
fn table_bin(table: &[SubRange; 1 << SUB_BITS], x: f64) -> i32 {
    let range = table[((x.to_bits() >> (52 - SUB_BITS)) & SUB_MASK) as usize];
    range.bin + (x >= range.next_bin_from) as i32
}

const SUB_BITS: u32 = 8;
const SUB_MASK: u64 = (1 << SUB_BITS) - 1;

/// One sub-range of a binade: the bin of its first value, and the first value of the next
/// bin if that starts inside the sub-range (else infinity).
#[derive(Clone, Copy)]
struct SubRange {
    bin: i32,
    next_bin_from: f64,
}

enum Binade {
    NotSeen,
    Table(Box<[SubRange; 1 << SUB_BITS]>),
    /// Infinity and NaN's exponent, or a binade whose bins do not fit the table's shape.
    Computed,
}

thread_local! {
    static BINADES: std::cell::RefCell<Vec<Binade>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`bin_of_positive`] when `x`'s binade has no table yet (made now) or has none.
#[cold]
fn binade_bin(binades: &std::cell::RefCell<Vec<Binade>>, binade: usize, x: f64) -> i32 {
    let mut binades = binades.borrow_mut();
    if binades.len() <= binade {
        binades.resize_with(binade + 1, || Binade::NotSeen);
    }
    if let Binade::NotSeen = binades[binade] {
        binades[binade] = binade_table(binade as u64).map_or(Binade::Computed, Binade::Table);
    }
    match &binades[binade] {
        Binade::Table(table) => table_bin(table, x),
        _ => bin(x),
    }
}

/// The table of binade `binade` (an exponent below infinity's), `None` where a sub-range
/// holds more than one bin start.
fn binade_table(binade: u64) -> Option<Box<[SubRange; 1 << SUB_BITS]>> {
    if binade >= 0x7ff {
        return None;
    }
    let mut table = Box::new([SubRange { bin: 0, next_bin_from: f64::INFINITY }; 1 << SUB_BITS]);
    for (sub, range) in table.iter_mut().enumerate() {
        let first = (binade << 52) | ((sub as u64) << (52 - SUB_BITS));
        let last = first + (1 << (52 - SUB_BITS)) - 1;
        let (first_bin, last_bin) = (bin(f64::from_bits(first)), bin(f64::from_bits(last)));
        range.bin = first_bin;
        if last_bin == first_bin {
            continue;
        }
        if last_bin != first_bin + 1 {
            return None;
        }
        // bin(lo) == first_bin < bin(hi): the next bin starts in (lo, hi].
        let (mut lo, mut hi) = (first, last);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if bin(f64::from_bits(mid)) > first_bin {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        range.next_bin_from = f64::from_bits(hi);
    }
    Some(table)
}

fn bin_value(i: i32) -> f64 {
    2.0 * gamma().powi(i) / (gamma() + 1.0)
}

/// Values closer to zero than this count as zero (their logarithm leaves i32 bins).
const MIN_INDEXABLE: f64 = 1e-300;
/// No value has a bin further from 0 (f64::MAX is bin 35,489; 1e-300 is bin -34,538).
const MAX_BIN: i64 = 36_000;

impl Sketch {
    #[inline(always)]
    fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = smaller(self.min, x);
            self.max = larger(self.max, x);
        }
        self.count += 1;
        if x > MIN_INDEXABLE {
            self.positive.add(bin_of_positive(x), 1);
        } else if x < -MIN_INDEXABLE {
            self.negative.add(bin_of_positive(-x), 1);
        } else {
            self.zeros += 1;
        }
    }

    fn combine(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        for (i, c) in other.positive.iter() {
            self.positive.add(i, c);
        }
        for (i, c) in other.negative.iter() {
            self.negative.add(i, c);
        }
        self.zeros += other.zeros;
        self.count += other.count;
        self.min = smaller(self.min, other.min);
        self.max = larger(self.max, other.max);
    }

    /// The value at rank ⌊q·(count−1)⌋ (0-based, ascending), within ALPHA relative error.
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        let estimate = 'found: {
            for (i, c) in self.negative.iter().rev() {
                seen += c;
                if seen > rank {
                    break 'found -bin_value(i);
                }
            }
            seen += self.zeros;
            if seen > rank {
                break 'found 0.0;
            }
            for (i, c) in self.positive.iter() {
                seen += c;
                if seen > rank {
                    break 'found bin_value(i);
                }
            }
            self.max
        };
        Some(estimate.clamp(self.min, self.max))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [self.count, self.zeros, self.min.to_bits(), self.max.to_bits()] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for bins in [&self.positive, &self.negative] {
            out.extend_from_slice(&(bins.len() as u64).to_le_bytes());
            for (i, c) in bins.iter() {
                out.extend_from_slice(&(i as i64).to_le_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Sketch, Error> {
        let mut r = Reader(bytes);
        let mut sketch = Sketch { count: r.u64()?, zeros: r.u64()?, min: r.f64()?, max: r.f64()?, ..Sketch::default() };
        for negative in [false, true] {
            for _ in 0..r.u64()? {
                let (i, c) = (r.i64()?, r.u64()?);
                // Checked before the dense store allocates for it: a forged bin far out would
                // ask for gigabytes.
                if i.abs() > MAX_BIN {
                    return Err(Error::invalid_parameter(format!("bin {i} of a percentile sketch is out of range")));
                }
                let bins = if negative { &mut sketch.negative } else { &mut sketch.positive };
                bins.add(i as i32, c);
            }
        }
        if !r.0.is_empty() {
            return Err(Error::invalid_parameter("trailing bytes after a percentile sketch"));
        }
        Ok(sketch)
    }
}

#[aggregate(name = "percentile_agg")]
impl Sketch {
    fn accumulate(&mut self, value: f64) {
        self.add(value);
    }
    fn finalize(&self) -> Vec<u8> {
        self.encode()
    }
    fn merge(&mut self, other: &Self) {
        self.combine(other);
    }
    fn serialize(&self) -> Vec<u8> {
        self.encode()
    }
    fn deserialize(bytes: &[u8]) -> Result<Self, Error> {
        Sketch::decode(bytes)
    }
}

/// `percentile_rollup(sketch)`: merges sketches made by `percentile_agg`.
#[derive(Default)]
pub struct SketchRollup(Sketch);

#[aggregate(name = "percentile_rollup")]
impl SketchRollup {
    fn accumulate(&mut self, sketch: &[u8]) {
        match Sketch::decode(sketch) {
            Ok(other) => self.0.combine(&other),
            Err(err) => err.raise(),
        }
    }
    fn finalize(&self) -> Vec<u8> {
        self.0.encode()
    }
    fn merge(&mut self, other: &Self) {
        self.0.combine(&other.0);
    }
    fn serialize(&self) -> Vec<u8> {
        self.0.encode()
    }
    fn deserialize(bytes: &[u8]) -> Result<Self, Error> {
        Sketch::decode(bytes).map(SketchRollup)
    }
}

/// The approximate `q`-quantile (0 ≤ q ≤ 1) of a sketch: the value at rank ⌊q·(n−1)⌋ of the
/// sorted input, within 1% relative error.
#[export]
fn approx_percentile(sketch: &[u8], q: f64) -> Result<Option<f64>, Error> {
    if !(0.0..=1.0).contains(&q) {
        return Err(Error::invalid_parameter(format!("percentile {q} is not between 0 and 1")));
    }
    Ok(Sketch::decode(sketch)?.quantile(q))
}

#[export]
fn sketch_count(sketch: &[u8]) -> Result<i64, Error> {
    Ok(Sketch::decode(sketch)?.count as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift64 generator: the same numbers on every run.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// `smaller` and `larger` answer as `f64::min` and `f64::max`, NaNs included (zeros of
    /// opposite sign compare equal: `f64::min` leaves their order open).
    #[test]
    fn smaller_and_larger_are_min_and_max() {
        let values = [f64::NAN, f64::NEG_INFINITY, -1.5, -0.0, 0.0, f64::MIN_POSITIVE, 2.0, f64::INFINITY];
        let same = |x: f64, y: f64| (x.is_nan() && y.is_nan()) || x == y;
        for a in values {
            for b in values {
                assert!(same(smaller(a, b), a.min(b)), "smaller({a}, {b})");
                assert!(same(larger(a, b), a.max(b)), "larger({a}, {b})");
            }
        }
    }

    #[test]
    fn sketch_quantiles_are_within_alpha() {
        let mut s = Sketch::default();
        let values: Vec<f64> = (1..=10_000).map(|i| (i as f64).powf(1.5) - 300.0).collect();
        for v in &values {
            s.add(*v);
        }
        for q in [0.0, 0.01, 0.5, 0.9, 0.99, 1.0] {
            let exact = values[(q * (values.len() - 1) as f64).floor() as usize];
            let approx = s.quantile(q).unwrap();
            assert!((approx - exact).abs() <= ALPHA * exact.abs() + 1e-9, "q={q}: {approx} vs {exact}");
        }
        let round = Sketch::decode(&s.encode()).unwrap();
        assert_eq!(round.quantile(0.5), s.quantile(0.5));
        assert!(bin(f64::MAX) as i64 <= MAX_BIN && -(bin(MIN_INDEXABLE) as i64) <= MAX_BIN);
        let mut forged = Sketch::default().encode();
        forged[32..40].copy_from_slice(&1u64.to_le_bytes());
        forged.splice(40..40, (1i64 << 31).to_le_bytes().into_iter().chain(1u64.to_le_bytes()));
        assert!(Sketch::decode(&forged).is_err());
    }

    #[test]
    fn bins_from_the_tables_are_the_logarithms() {
        let mut next = xorshift(0x8c3f_2e1d_0b9a_7765u64);
        // Any positive double past MIN_INDEXABLE, uniformly by bits (every binade).
        for _ in 0..200_000 {
            let x = f64::from_bits(next() % 0x7ff0_0000_0000_0000);
            if x > MIN_INDEXABLE {
                assert_eq!(bin_of_positive(x), bin(x), "{x:e}");
            }
        }
        // Around every bin start of the values plwasm's tests and demos use, to the ulp.
        for i in -2000..2000 {
            let start = gamma().powi(i);
            for ulps in -3i64..=3 {
                let x = f64::from_bits((start.to_bits() as i64 + ulps) as u64);
                assert_eq!(bin_of_positive(x), bin(x), "{x:e}");
            }
        }
        for x in [f64::MAX, f64::INFINITY, f64::MIN_POSITIVE * 1e10, 1.0, 20.0] {
            assert_eq!(bin_of_positive(x), bin(x), "{x:e}");
        }
    }

    #[test]
    fn m4_columns_are_the_exact_quotient() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..20_000 {
            let width = (next() % 4000 + 1) as i32;
            let t_start = (next() % (1 << 50)) as i64 - (1 << 49);
            let span = (next() % (1 << 40)) as i64 + 1;
            let mut m4 = M4::default();
            m4.configure(width, t_start, t_start + span).unwrap();
            for ts in [t_start, t_start + span, t_start + (next() % span as u64) as i64, t_start + span / 2] {
                let exact = ((ts - t_start) as i128 * width as i128 / span as i128) as usize;
                assert_eq!(m4.column_of(ts), exact.min(width as usize - 1), "{ts} in {t_start}+{span} by {width}");
            }
        }
    }

    #[test]
    fn m4_columns_through_the_last_span_are_the_same() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        for round in 0..2_000 {
            // Spans narrower and wider than the width (empty columns), near the edges of i64.
            let width = (next() % 3000 + 1) as i32;
            let span = match round % 3 {
                0 => (next() % 5000) as i64 + 1,
                1 => (next() % (1 << 40)) as i64 + 1,
                _ => (next() % (1 << 62)) as i64 + 1,
            };
            let t_start = if round % 7 == 0 { i64::MIN / 2 } else { (next() % (1 << 50)) as i64 - (1 << 49) };
            let mut m4 = M4::default();
            m4.configure(width, t_start, t_start + span).unwrap();
            let mut ts = t_start;
            for step in 0..300 {
                // In time order with small and large steps, then anywhere, both ends included.
                ts = match step % 50 {
                    49 => t_start + (next() % (span as u64 + 1)) as i64,
                    48 => t_start + span,
                    47 => t_start,
                    _ => (ts + (next() % (span as u64 / 64 + 2)) as i64).min(t_start + span),
                };
                assert_eq!(m4.column_of_next(ts), m4.column_of(ts), "{ts} in {t_start}+{span} by {width}");
            }
        }
    }

    #[test]
    fn stats_merge_like_one_pass() {
        let (mut a, mut b, mut all) = (Stats::default(), Stats::default(), Stats::default());
        for i in 0..1000 {
            let x = (i as f64 * 0.37).sin() * 100.0;
            if i % 3 == 0 {
                a.add(x)
            } else {
                b.add(x)
            }
            all.add(x);
        }
        a.combine(&b);
        assert_eq!(a.n, all.n);
        assert!((a.mean() - all.mean()).abs() < 1e-9 && (a.m2 - all.m2).abs() < 1e-6);
    }
}
