//! Normalisation of `[z, y, x]` arrays: running statistics merged slice by slice
//! ([`RunningStats`]), the 65,536-bin histogram for percentiles ([`Histogram`]), and the
//! whole-array z-score ([`zscore`]) and percentile clip ([`percentile_clip`]).

use capsid_core::error::CoreError;
use ndarray::{Array3, ArrayView2, ArrayView3};

/// Count, mean, sum of squared deviations, min and max, merged slice by slice in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningStats {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f32,
    pub max: f32,
}

impl Default for RunningStats {
    fn default() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl RunningStats {
    /// Statistics of one slice (sequential sums in memory order).
    pub fn of_slice(slice: ArrayView2<f32>) -> Self {
        let n = slice.len() as u64;
        if n == 0 {
            return Self::default();
        }
        let mut sum = 0.0f64;
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in slice.iter() {
            sum += v as f64;
            min = min.min(v);
            max = max.max(v);
        }
        let mean = sum / n as f64;
        let m2 = slice.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        Self {
            n,
            mean,
            m2,
            min,
            max,
        }
    }

    /// Chan et al.'s merge of two sets of statistics.
    pub fn merge(&self, o: &Self) -> Self {
        if self.n == 0 {
            return *o;
        }
        if o.n == 0 {
            return *self;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        let mean = self.mean + d * o.n as f64 / n as f64;
        let m2 = self.m2 + o.m2 + d * d * self.n as f64 * o.n as f64 / n as f64;
        Self {
            n,
            mean,
            m2,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2 / self.n as f64).sqrt()
        }
    }

    /// Adds the slices of a slab `[z, y, x]` in order; errors on NaN or infinite values.
    pub(super) fn add_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError> {
        for sl in slab.outer_iter() {
            let st = Self::of_slice(sl);
            if !(st.mean.is_finite() && st.m2.is_finite()) {
                return Err(CoreError::Invalid(
                    "the volume holds NaN or infinite values; cannot normalise".into(),
                ));
            }
            *self = self.merge(&st);
        }
        Ok(())
    }
}

const HIST_BINS: usize = 65_536;

/// A histogram of values between `min` and `max` for percentiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub min: f32,
    pub max: f32,
    pub counts: Vec<u64>,
}

impl Histogram {
    /// An empty histogram of 65,536 bins over `[min, max]`.
    pub fn new(min: f32, max: f32) -> Self {
        Self {
            min,
            max,
            counts: vec![0; HIST_BINS],
        }
    }

    /// Counts the values of `data`.
    pub fn add(&mut self, data: ArrayView3<f32>) {
        let (lo, width) = (
            self.min as f64,
            (self.max as f64 - self.min as f64) / HIST_BINS as f64,
        );
        for &v in data.iter() {
            let b = if width > 0.0 {
                ((v as f64 - lo) / width) as usize
            } else {
                0
            };
            self.counts[b.min(HIST_BINS - 1)] += 1;
        }
    }

    /// The value below which `pct` % of the values lie, interpolated within its bin.
    pub fn percentile(&self, pct: f64) -> f32 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 || self.max <= self.min {
            return self.min;
        }
        let width = (self.max as f64 - self.min as f64) / HIST_BINS as f64;
        let target = pct.clamp(0.0, 100.0) / 100.0 * total as f64;
        let mut before = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            if c > 0 && (before + c) as f64 >= target {
                let frac = ((target - before as f64) / c as f64).clamp(0.0, 1.0);
                return (self.min as f64 + (b as f64 + frac) * width) as f32;
            }
            before += c;
        }
        self.max
    }
}

/// Z-score with the given statistics (a zero standard deviation gives zeros).
pub(super) fn apply_zscore(data: &mut Array3<f32>, st: &RunningStats) {
    let (mean, std) = (st.mean, st.std());
    let inv = if std > 0.0 { 1.0 / std } else { 0.0 };
    data.mapv_inplace(|v| ((v as f64 - mean) * inv) as f32);
}

/// Clip to `[lo, hi]` and rescale to `[0, 1]` (all 0 when `hi <= lo`).
pub(super) fn apply_clip(data: &mut Array3<f32>, lo: f32, hi: f32) {
    let span = hi as f64 - lo as f64;
    data.mapv_inplace(|v| {
        if span > 0.0 {
            ((v.clamp(lo, hi) as f64 - lo as f64) / span) as f32
        } else {
            0.0
        }
    });
}

/// Whole-array z-score (mean 0, population std 1). Errors on NaN/infinite values.
pub fn zscore(data: ArrayView3<f32>) -> Result<Array3<f32>, CoreError> {
    let mut st = RunningStats::default();
    let mut out = data.to_owned();
    st.add_slab(&out)?;
    apply_zscore(&mut out, &st);
    Ok(out)
}

/// Whole-array percentile clip to `[low_pct, high_pct]` rescaled to `[0, 1]`.
pub fn percentile_clip(
    data: ArrayView3<f32>,
    low_pct: f64,
    high_pct: f64,
) -> Result<Array3<f32>, CoreError> {
    let mut st = RunningStats::default();
    let mut out = data.to_owned();
    st.add_slab(&out)?;
    let mut h = Histogram::new(st.min, st.max);
    h.add(out.view());
    apply_clip(&mut out, h.percentile(low_pct), h.percentile(high_pct));
    Ok(out)
}
