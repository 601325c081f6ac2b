//! Tomogram preprocessing: binning, Gaussian low-pass, normalisation — as pure functions on whole
//! arrays and as a slab-streaming driver that never holds a big tomogram whole in memory.
//!
//! All arrays are `[z, y, x]`. Steps run in this order: **bin → low-pass → normalise**.
//!
//! * **Binning** by an integer factor `f`. Each axis is first cut to `m·f` voxels,
//!   `m = floor(n / f)` (the last `n mod f` voxels are dropped), so the new voxel size is exactly
//!   `f ×` the old one.
//!   * [`BinMethod::Mean`]: block mean of `f × f × f` voxels. Output voxel `i` is centred at old
//!     position `i·f + (f − 1)/2`, so the origin moves by `(f − 1)/2` old voxels. Streams in slabs of
//!     `f` slices.
//!   * [`BinMethod::Fourier`]: Fourier cropping — keep the lowest `m` frequencies of the `m·f`-point
//!     DFT along each axis (an ideal low-pass plus sampling). Output voxel `i` is the band-limited
//!     interpolant at old position `i·f`, so the origin does not move. For even `m` the output
//!     Nyquist coefficient is the sum of the two input coefficients at `±m/2` (a sinusoid at that
//!     frequency is then sampled exactly). The DFT is separable, so the driver crops x and y slice by
//!     slice while streaming, keeps the x-y-cropped stack (`1/f²` of the input, float32) in memory,
//!     and then crops along z: **Fourier binning holds `nz × ny/f × nx/f` floats in memory**, e.g.
//!     52 MB for a 512×512×200 tomogram binned by 2.
//! * **Low-pass** ([`lowpass_sigma_vox`]): a Gaussian whose Fourier transform is
//!   `H(k) = exp(−k² / (2σ_k²))` with `H = 0.5` at `k = 1 / cutoff_a` (k in 1/Å), i.e.
//!   `σ_k = 1 / (cutoff_a · √(2 ln 2))`; in real space the kernel's standard deviation is
//!   `σ = 1 / (2π σ_k) = cutoff_a · √(2 ln 2) / (2π) ≈ 0.187 · cutoff_a` Å. It is applied as a
//!   separable real-space convolution (x, then y, then z), truncated at `⌈4σ⌉` voxels and normalised
//!   to sum 1, with mirror boundaries (`d c b a | a b c d`). The streamed version reads slabs with a
//!   halo of `⌈4σ⌉` slices and gives the same numbers as the whole-volume one.
//! * **Normalisation**: [`Normalize::ZScore`] subtracts the mean and divides by the (population)
//!   standard deviation over the whole volume (two passes when streaming; a constant volume becomes
//!   0). [`Normalize::Clip`] clips to the `low`/`high` percentiles and rescales that range to
//!   `[0, 1]`; percentiles come from a 65,536-bin histogram between the volume's min and max (three
//!   passes when streaming), exact to within one bin width. Statistics are accumulated slice by
//!   slice in a fixed order, so the result does not depend on the slab size.
//!
//! When streaming, passes over the binned / low-passed data recompute those steps from the input
//! (CPU time instead of memory).

use crate::error::CoreError;
use crate::volume::Volume;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut1, Axis};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How to bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinMethod {
    /// Fourier cropping (needs `1/f²` of the volume in memory).
    #[default]
    Fourier,
    /// Block mean (streams).
    Mean,
}

/// How to normalise.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Normalize {
    /// Leave values as they are.
    #[default]
    None,
    /// Mean 0, standard deviation 1.
    Zscore,
    /// Clip to the `low_pct`/`high_pct` percentiles and rescale to `[0, 1]`.
    Clip { low_pct: f64, high_pct: f64 },
}

/// Preprocessing settings; every field has a default (no-op except the slab size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepConfig {
    /// Integer binning factor (1 = none).
    pub bin: usize,
    pub bin_method: BinMethod,
    /// Low-pass cut-off in Å (where the filter's amplitude is 0.5); `None` = no low-pass.
    pub lowpass_a: Option<f64>,
    pub normalize: Normalize,
    /// Slices per slab of the output grid when streaming.
    pub slab: usize,
}

impl Default for PrepConfig {
    fn default() -> Self {
        Self {
            bin: 1,
            bin_method: BinMethod::default(),
            lowpass_a: None,
            normalize: Normalize::None,
            slab: 32,
        }
    }
}

impl PrepConfig {
    /// Checks the settings; the message says what is wrong.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::Invalid(m));
        if self.bin == 0 {
            return bad("bin factor must be at least 1".into());
        }
        if self.slab == 0 {
            return bad("slab size must be at least 1 slice".into());
        }
        if let Some(c) = self.lowpass_a {
            if !(c > 0.0 && c.is_finite()) {
                return bad(format!(
                    "low-pass cut-off must be a positive number of Å, got {c}"
                ));
            }
        }
        if let Normalize::Clip { low_pct, high_pct } = self.normalize {
            if !((0.0..100.0).contains(&low_pct) && low_pct < high_pct && high_pct <= 100.0) {
                return bad(format!("clip percentiles must satisfy 0 <= low < high <= 100, got {low_pct},{high_pct}"));
            }
        }
        Ok(())
    }
}

/// The output grid of a preprocessing run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrepPlan {
    pub config: PrepConfig,
    /// Input shape `[z, y, x]`.
    pub in_shape_zyx: [usize; 3],
    /// Output shape `[z, y, x]`.
    pub shape_zyx: [usize; 3],
    /// Output voxel size `[x, y, z]` in Å.
    pub voxel_size_a: [f32; 3],
    /// Output origin `[x, y, z]` in Å (centre of voxel 0).
    pub origin_a: [f32; 3],
    /// Low-pass σ in output voxels, if any.
    pub sigma_vox: Option<f64>,
}

impl PrepPlan {
    /// Passes over the output grid the streaming driver makes (1, 2 for z-score, 3 for clip).
    pub fn passes(&self) -> usize {
        match self.config.normalize {
            Normalize::None => 1,
            Normalize::Zscore => 2,
            Normalize::Clip { .. } => 3,
        }
    }

    /// Work units reported to the progress callback: input slices gathered for Fourier binning
    /// plus output slices of every pass.
    pub fn steps(&self) -> u64 {
        let gather = if self.config.bin > 1 && self.config.bin_method == BinMethod::Fourier {
            self.in_shape_zyx[0]
        } else {
            0
        };
        (gather + self.passes() * self.shape_zyx[0]) as u64
    }
}

/// Works out the output grid of `config` applied to a volume of shape `shape_zyx`, voxel size
/// `voxel_size_a` and origin `origin_a` (both `[x, y, z]`, Å).
pub fn plan(
    shape_zyx: [usize; 3],
    voxel_size_a: [f32; 3],
    origin_a: [f32; 3],
    config: &PrepConfig,
) -> Result<PrepPlan, CoreError> {
    config.validate()?;
    let f = config.bin;
    let out = shape_zyx.map(|n| n / f);
    if out.contains(&0) {
        return Err(CoreError::Invalid(format!(
            "volume of {}×{}×{} voxels (x×y×z) is smaller than the bin factor {f}",
            shape_zyx[2], shape_zyx[1], shape_zyx[0]
        )));
    }
    let shift = match config.bin_method {
        BinMethod::Mean => (f as f32 - 1.0) / 2.0,
        BinMethod::Fourier => 0.0,
    };
    let vs = voxel_size_a.map(|v| v * f as f32);
    let origin = [0, 1, 2].map(|a| origin_a[a] + shift * voxel_size_a[a]);
    let sigma_vox = match config.lowpass_a {
        None => None,
        Some(c) => {
            if vs[0].is_nan() || vs[0] <= 0.0 {
                return Err(CoreError::Invalid(
                    "the voxel size is unknown (0), so a low-pass cut-off in Å cannot be applied"
                        .into(),
                ));
            }
            Some(lowpass_sigma_vox(c, vs[0] as f64))
        }
    };
    Ok(PrepPlan {
        config: *config,
        in_shape_zyx: shape_zyx,
        shape_zyx: out,
        voxel_size_a: vs,
        origin_a: origin,
        sigma_vox,
    })
}

// ---------------------------------------------------------------------------------------------
// Binning

/// Block mean of `factor³` voxels; each axis is first cut to a multiple of `factor`.
pub fn bin_mean(data: ArrayView3<f32>, factor: usize) -> Array3<f32> {
    let (nz, ny, nx) = data.dim();
    let f = factor.max(1);
    let (mz, my, mx) = (nz / f, ny / f, nx / f);
    let mut out = Array3::<f32>::zeros((mz, my, mx));
    let norm = 1.0 / (f * f * f) as f64;
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut plane)| {
            for y in 0..my {
                for x in 0..mx {
                    let mut sum = 0.0f64;
                    for dz in 0..f {
                        for dy in 0..f {
                            for dx in 0..f {
                                sum += data[[z * f + dz, y * f + dy, x * f + dx]] as f64;
                            }
                        }
                    }
                    plane[[y, x]] = (sum * norm) as f32;
                }
            }
        });
    out
}

/// Fourier cropping of one axis from `n = m·factor` to `m` points.
struct FourierCrop {
    n: usize,
    m: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
}

impl FourierCrop {
    fn new(len: usize, factor: usize) -> Self {
        let m = len / factor;
        let n = m * factor;
        let mut planner = FftPlanner::new();
        Self {
            n,
            m,
            fwd: planner.plan_fft_forward(n),
            inv: planner.plan_fft_inverse(m),
        }
    }

    /// Crops the first `n` values of `input` into `out` (length `m`).
    fn crop(
        &self,
        input: impl Iterator<Item = f32>,
        mut out: ArrayViewMut1<f32>,
        big: &mut Vec<Complex<f64>>,
        small: &mut Vec<Complex<f64>>,
    ) {
        let (n, m) = (self.n, self.m);
        big.clear();
        big.extend(input.take(n).map(|v| Complex::new(v as f64, 0.0)));
        self.fwd.process(big);
        small.clear();
        small.resize(m, Complex::new(0.0, 0.0));
        let half = m / 2;
        if m % 2 == 1 {
            small[..=half].copy_from_slice(&big[..=half]);
            for k in 1..=half {
                small[m - k] = big[n - k];
            }
        } else {
            small[..half].copy_from_slice(&big[..half]);
            for k in 1..half {
                small[m - k] = big[n - k];
            }
            small[half] = if n == m {
                big[half]
            } else {
                big[half] + big[n - half]
            };
        }
        self.inv.process(small);
        let scale = 1.0 / n as f64;
        for (o, c) in out.iter_mut().zip(small.iter()) {
            *o = (c.re * scale) as f32;
        }
    }
}

/// Fourier-crops one slice `[y, x]` along x then y: `(ny, nx) → (ny/f, nx/f)`.
fn fourier_crop_xy(slice: ArrayView2<f32>, cx: &FourierCrop, cy: &FourierCrop) -> Array2<f32> {
    let (ny, _) = slice.dim();
    let (mut big, mut small) = (Vec::new(), Vec::new());
    let mut rows = Array2::<f32>::zeros((ny, cx.m));
    for (row_in, row_out) in slice.outer_iter().zip(rows.outer_iter_mut()) {
        cx.crop(row_in.iter().copied(), row_out, &mut big, &mut small);
    }
    let mut out = Array2::<f32>::zeros((cy.m, cx.m));
    for (col_in, col_out) in rows.axis_iter(Axis(1)).zip(out.axis_iter_mut(Axis(1))) {
        cy.crop(col_in.iter().copied(), col_out, &mut big, &mut small);
    }
    out
}

/// Fourier-crops a stack `[z, y', x']` along z: `nz → nz/f`.
fn fourier_crop_z(stack: &Array3<f32>, cz: &FourierCrop) -> Array3<f32> {
    let (_, my, mx) = stack.dim();
    let mut out = Array3::<f32>::zeros((cz.m, my, mx));
    // Columns are independent; parallel over y rows of the output, each writing its own lane set.
    let cols: Vec<Array2<f32>> = (0..my)
        .into_par_iter()
        .map(|y| {
            let (mut big, mut small) = (Vec::new(), Vec::new());
            let mut plane = Array2::<f32>::zeros((cz.m, mx));
            for x in 0..mx {
                let col = stack.slice(s![.., y, x]);
                cz.crop(
                    col.iter().copied(),
                    plane.column_mut(x),
                    &mut big,
                    &mut small,
                );
            }
            plane
        })
        .collect();
    for (y, plane) in cols.into_iter().enumerate() {
        out.slice_mut(s![.., y, ..]).assign(&plane);
    }
    out
}

/// Fourier binning (cropping) of a whole array by `factor` along every axis.
pub fn bin_fourier(data: ArrayView3<f32>, factor: usize) -> Array3<f32> {
    let (nz, ny, nx) = data.dim();
    let f = factor.max(1);
    let (cx, cy, cz) = (
        FourierCrop::new(nx, f),
        FourierCrop::new(ny, f),
        FourierCrop::new(nz, f),
    );
    let slices: Vec<Array2<f32>> = (0..cz.n)
        .into_par_iter()
        .map(|z| fourier_crop_xy(data.index_axis(Axis(0), z), &cx, &cy))
        .collect();
    let mut stack = Array3::<f32>::zeros((cz.n, cy.m, cx.m));
    for (z, sl) in slices.into_iter().enumerate() {
        stack.index_axis_mut(Axis(0), z).assign(&sl);
    }
    fourier_crop_z(&stack, &cz)
}

// ---------------------------------------------------------------------------------------------
// Low-pass

/// The real-space σ in voxels of the Gaussian low-pass with amplitude 0.5 at `1 / cutoff_a`
/// (module docs): `σ = cutoff_a · √(2 ln 2) / (2π) / voxel_size_a`.
pub fn lowpass_sigma_vox(cutoff_a: f64, voxel_size_a: f64) -> f64 {
    cutoff_a * (2.0 * std::f64::consts::LN_2).sqrt() / (2.0 * std::f64::consts::PI) / voxel_size_a
}

/// The Gaussian kernel of standard deviation `sigma_vox`, truncated at `⌈4σ⌉`, summing to 1.
/// Length `2h + 1`.
pub fn gaussian_kernel(sigma_vox: f64) -> Vec<f32> {
    if sigma_vox.is_nan() || sigma_vox <= 0.0 {
        return vec![1.0];
    }
    let h = (4.0 * sigma_vox).ceil() as i64;
    let w: Vec<f64> = (-h..=h)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma_vox * sigma_vox)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| (v / sum) as f32).collect()
}

/// Mirror index: `… 1 0 | 0 1 … n−1 | n−1 n−2 …` (period `2n`).
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Convolves a 1D lane with `kernel` (mirror boundaries), writing into `out`.
fn convolve_lane(input: &[f32], kernel: &[f32], out: &mut [f32]) {
    let n = input.len();
    let h = (kernel.len() / 2) as i64;
    for (i, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (k, w) in kernel.iter().enumerate() {
            acc += w * input[reflect(i as i64 + k as i64 - h, n)];
        }
        *o = acc;
    }
}

/// Gaussian low-pass of one slice `[y, x]` with σ in pixels (the kernel of [`gaussian_kernel`],
/// mirrored edges); non-finite pixels count as 0. σ ≤ 0 returns the slice unchanged.
pub fn gaussian_blur_2d(slice: ArrayView2<f32>, sigma_px: f64) -> Array2<f32> {
    let clean = slice.mapv(|v| if v.is_finite() { v } else { 0.0 });
    blur_xy(clean.view(), &gaussian_kernel(sigma_px))
}

/// Blurs one slice `[y, x]` along x then y.
fn blur_xy(slice: ArrayView2<f32>, kernel: &[f32]) -> Array2<f32> {
    let (ny, nx) = slice.dim();
    let mut rows = Array2::<f32>::zeros((ny, nx));
    let mut lane = vec![0f32; nx.max(ny)];
    let mut tmp = vec![0f32; nx.max(ny)];
    for (row_in, mut row_out) in slice.outer_iter().zip(rows.outer_iter_mut()) {
        for (t, v) in lane.iter_mut().zip(row_in.iter()) {
            *t = *v;
        }
        convolve_lane(&lane[..nx], kernel, &mut tmp[..nx]);
        row_out
            .iter_mut()
            .zip(&tmp[..nx])
            .for_each(|(o, v)| *o = *v);
    }
    let mut out = Array2::<f32>::zeros((ny, nx));
    for x in 0..nx {
        for y in 0..ny {
            lane[y] = rows[[y, x]];
        }
        convolve_lane(&lane[..ny], kernel, &mut tmp[..ny]);
        for y in 0..ny {
            out[[y, x]] = tmp[y];
        }
    }
    out
}

/// Blurs along z: output slice `z` (global index `z_out_start + z`) from the x-y-blurred slices
/// `stack` whose first slice has global index `stack_start`, in a volume of `nz` slices.
fn blur_z(
    stack: &Array3<f32>,
    stack_start: usize,
    nz: usize,
    z_out_start: usize,
    z_len: usize,
    kernel: &[f32],
) -> Array3<f32> {
    let (_, ny, nx) = stack.dim();
    let h = (kernel.len() / 2) as i64;
    let mut out = Array3::<f32>::zeros((z_len, ny, nx));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(j, mut plane)| {
            let z = (z_out_start + j) as i64;
            for (k, &w) in kernel.iter().enumerate() {
                let src = reflect(z + k as i64 - h, nz) - stack_start;
                let sl = stack.index_axis(Axis(0), src);
                plane.zip_mut_with(&sl, |o, &v| *o += w * v);
            }
        });
    out
}

/// The input slices (`start, len`) needed to low-pass output slices `z0 .. z0 + len` of a volume
/// of `nz` slices with a kernel of half-width `h`.
fn halo_range(z0: usize, len: usize, nz: usize, h: usize) -> (usize, usize) {
    let (mut lo, mut hi) = (usize::MAX, 0);
    for z in z0..z0 + len {
        for k in -(h as i64)..=(h as i64) {
            let r = reflect(z as i64 + k, nz);
            lo = lo.min(r);
            hi = hi.max(r);
        }
    }
    (lo, hi + 1 - lo)
}

/// Gaussian low-pass of a whole array with real-space σ `sigma_vox` (voxels); see module docs.
pub fn gaussian_lowpass(data: ArrayView3<f32>, sigma_vox: f64) -> Array3<f32> {
    let kernel = gaussian_kernel(sigma_vox);
    let nz = data.dim().0;
    let stack = stack_of(
        data.axis_iter(Axis(0))
            .into_par_iter()
            .map(|sl| blur_xy(sl, &kernel))
            .collect(),
        data.dim(),
    );
    blur_z(&stack, 0, nz, 0, nz, &kernel)
}

fn stack_of(slices: Vec<Array2<f32>>, dim: (usize, usize, usize)) -> Array3<f32> {
    let mut stack = Array3::<f32>::zeros((slices.len(), dim.1, dim.2));
    for (z, sl) in slices.into_iter().enumerate() {
        stack.index_axis_mut(Axis(0), z).assign(&sl);
    }
    stack
}

// ---------------------------------------------------------------------------------------------
// Normalisation

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
    fn add_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError> {
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
fn apply_zscore(data: &mut Array3<f32>, st: &RunningStats) {
    let (mean, std) = (st.mean, st.std());
    let inv = if std > 0.0 { 1.0 / std } else { 0.0 };
    data.mapv_inplace(|v| ((v as f64 - mean) * inv) as f32);
}

/// Clip to `[lo, hi]` and rescale to `[0, 1]` (all 0 when `hi <= lo`).
fn apply_clip(data: &mut Array3<f32>, lo: f32, hi: f32) {
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

// ---------------------------------------------------------------------------------------------
// Streaming

/// Something that yields slabs `[z_len, y, x]` of a volume, in any order.
pub trait SlabSource {
    /// Shape `[z, y, x]`.
    fn shape_zyx(&self) -> [usize; 3];
    /// Slices `z_start .. z_start + z_len`.
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError>;
}

/// Something that takes slabs in z order.
pub trait SlabSink {
    fn write_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError>;
}

/// A volume in memory as a slab source.
pub struct ArraySource<'a>(pub ArrayView3<'a, f32>);

impl SlabSource for ArraySource<'_> {
    fn shape_zyx(&self) -> [usize; 3] {
        let (z, y, x) = self.0.dim();
        [z, y, x]
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        let nz = self.0.dim().0;
        if z_start + z_len > nz {
            return Err(CoreError::Invalid(format!(
                "slab {z_start}+{z_len} beyond {nz} slices"
            )));
        }
        Ok(self
            .0
            .slice(s![z_start..z_start + z_len, .., ..])
            .to_owned())
    }
}

/// Collects slabs into one array (for tests and for whole-volume use).
#[derive(Default)]
pub struct CollectSink(pub Vec<Array3<f32>>);

impl SlabSink for CollectSink {
    fn write_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError> {
        self.0.push(slab.clone());
        Ok(())
    }
}

impl CollectSink {
    /// The slabs stacked along z.
    pub fn into_array(self) -> Result<Array3<f32>, CoreError> {
        let views: Vec<_> = self.0.iter().map(|a| a.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map_err(|e| CoreError::Invalid(format!("stacking slabs: {e}")))
    }
}

struct MeanBinSource<'a> {
    inner: Box<dyn SlabSource + 'a>,
    f: usize,
}

impl SlabSource for MeanBinSource<'_> {
    fn shape_zyx(&self) -> [usize; 3] {
        self.inner.shape_zyx().map(|n| n / self.f)
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        let slab = self.inner.read_slab(z_start * self.f, z_len * self.f)?;
        Ok(bin_mean(slab.view(), self.f))
    }
}

struct MemorySource(Array3<f32>);

impl SlabSource for MemorySource {
    fn shape_zyx(&self) -> [usize; 3] {
        let (z, y, x) = self.0.dim();
        [z, y, x]
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        ArraySource(self.0.view()).read_slab(z_start, z_len)
    }
}

/// Fourier binning: crops x-y slab by slab, keeps the cropped stack, crops z at the end.
fn fourier_bin_stream(
    inner: &mut dyn SlabSource,
    f: usize,
    slab: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Array3<f32>, CoreError> {
    let [nz, ny, nx] = inner.shape_zyx();
    let (cx, cy, cz) = (
        FourierCrop::new(nx, f),
        FourierCrop::new(ny, f),
        FourierCrop::new(nz, f),
    );
    let mut stack = Array3::<f32>::zeros((cz.n, cy.m, cx.m));
    let step = (slab * f).max(1);
    let mut z0 = 0;
    while z0 < cz.n {
        let len = step.min(cz.n - z0);
        let data = inner.read_slab(z0, len)?;
        let slices: Vec<Array2<f32>> = data
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|sl| fourier_crop_xy(sl, &cx, &cy))
            .collect();
        for (j, sl) in slices.into_iter().enumerate() {
            stack.index_axis_mut(Axis(0), z0 + j).assign(&sl);
        }
        progress(len as u64);
        z0 += len;
    }
    progress((nz - cz.n) as u64);
    Ok(fourier_crop_z(&stack, &cz))
}

struct LowpassSource<'a> {
    inner: Box<dyn SlabSource + 'a>,
    kernel: Vec<f32>,
}

impl SlabSource for LowpassSource<'_> {
    fn shape_zyx(&self) -> [usize; 3] {
        self.inner.shape_zyx()
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        let [nz, ny, nx] = self.inner.shape_zyx();
        let (start, len) = halo_range(z_start, z_len, nz, self.kernel.len() / 2);
        let data = self.inner.read_slab(start, len)?;
        let k = &self.kernel;
        let stack = stack_of(
            data.axis_iter(Axis(0))
                .into_par_iter()
                .map(|sl| blur_xy(sl, k))
                .collect(),
            (len, ny, nx),
        );
        Ok(blur_z(&stack, start, nz, z_start, z_len, k))
    }
}

/// A normalisation applied to each output slab.
type SlabTransform = Box<dyn Fn(&mut Array3<f32>)>;

/// Runs `plan` on `source`, writing the output slab by slab (z order) to `sink`. `progress` is
/// called with the number of work units done ([`PrepPlan::steps`] in total).
pub fn prep_stream<'a>(
    source: Box<dyn SlabSource + 'a>,
    plan: &PrepPlan,
    sink: &mut dyn SlabSink,
    progress: &mut dyn FnMut(u64),
) -> Result<(), CoreError> {
    let cfg = &plan.config;
    if source.shape_zyx() != plan.in_shape_zyx {
        return Err(CoreError::Invalid(
            "prep plan does not match the input shape".into(),
        ));
    }
    let mut src: Box<dyn SlabSource + 'a> = source;
    if cfg.bin > 1 {
        src = match cfg.bin_method {
            BinMethod::Mean => Box::new(MeanBinSource {
                inner: src,
                f: cfg.bin,
            }),
            BinMethod::Fourier => Box::new(MemorySource(fourier_bin_stream(
                src.as_mut(),
                cfg.bin,
                cfg.slab,
                progress,
            )?)),
        };
    }
    if let Some(sigma) = plan.sigma_vox {
        src = Box::new(LowpassSource {
            inner: src,
            kernel: gaussian_kernel(sigma),
        });
    }
    let nz = plan.shape_zyx[0];
    let slabs: Vec<(usize, usize)> = (0..nz)
        .step_by(cfg.slab)
        .map(|z| (z, cfg.slab.min(nz - z)))
        .collect();
    let mut transform: SlabTransform = Box::new(|_| {});
    match cfg.normalize {
        Normalize::None => {}
        Normalize::Zscore => {
            let mut st = RunningStats::default();
            for &(z, len) in &slabs {
                st.add_slab(&src.read_slab(z, len)?)?;
                progress(len as u64);
            }
            transform = Box::new(move |d| apply_zscore(d, &st));
        }
        Normalize::Clip { low_pct, high_pct } => {
            let mut st = RunningStats::default();
            for &(z, len) in &slabs {
                st.add_slab(&src.read_slab(z, len)?)?;
                progress(len as u64);
            }
            let mut h = Histogram::new(st.min, st.max);
            for &(z, len) in &slabs {
                h.add(src.read_slab(z, len)?.view());
                progress(len as u64);
            }
            let (lo, hi) = (h.percentile(low_pct), h.percentile(high_pct));
            transform = Box::new(move |d| apply_clip(d, lo, hi));
        }
    }
    for &(z, len) in &slabs {
        let mut d = src.read_slab(z, len)?;
        transform(&mut d);
        sink.write_slab(&d)?;
        progress(len as u64);
    }
    Ok(())
}

/// Preprocesses a whole volume in memory (the streaming driver on an in-memory source).
pub fn prep_volume(vol: &Volume<f32>, config: &PrepConfig) -> Result<Volume<f32>, CoreError> {
    let p = plan(vol.shape_zyx(), vol.voxel_size_a, vol.origin_a, config)?;
    let mut sink = CollectSink::default();
    prep_stream(
        Box::new(ArraySource(vol.data.view())),
        &p,
        &mut sink,
        &mut |_| {},
    )?;
    Ok(Volume {
        data: sink.into_array()?,
        voxel_size_a: p.voxel_size_a,
        origin_a: p.origin_a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(shape: (usize, usize, usize), seed: u64) -> Array3<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Array3::from_shape_simple_fn(shape, || rng.gen_range(-1.0f32..1.0))
    }

    fn max_abs_diff(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn binning_a_constant_stays_constant() {
        let a = Array3::<f32>::from_elem((9, 10, 13), 3.5);
        for f in [2, 3] {
            let m = bin_mean(a.view(), f);
            assert_eq!(m.dim(), (9 / f, 10 / f, 13 / f));
            assert!(m.iter().all(|&v| (v - 3.5).abs() < 1e-6));
            let fo = bin_fourier(a.view(), f);
            assert_eq!(fo.dim(), m.dim());
            assert!(fo.iter().all(|&v| (v - 3.5).abs() < 1e-5), "{fo:?}");
        }
    }

    #[test]
    fn mean_binning_of_known_array() {
        // values = x + 10 y + 100 z on 4×4×4; 2×2×2 block means = (2x'+0.5) + 10(2y'+0.5) + 100(2z'+0.5).
        let a = Array3::from_shape_fn((4, 4, 5), |(z, y, x)| (x + 10 * y + 100 * z) as f32);
        let m = bin_mean(a.view(), 2);
        assert_eq!(m.dim(), (2, 2, 2));
        for ((z, y, x), &v) in m.indexed_iter() {
            let want = (2 * x) as f32
                + 0.5
                + 10.0 * ((2 * y) as f32 + 0.5)
                + 100.0 * ((2 * z) as f32 + 0.5);
            assert!((v - want).abs() < 1e-4, "{z} {y} {x}: {v} vs {want}");
        }
    }

    #[test]
    fn fourier_binning_keeps_a_smooth_sinusoid() {
        // A periodic sinusoid of 2 cycles along x and 1 along z on 32×16×48: after binning by 2 it
        // must equal the same function sampled at old positions 2i.
        let (nz, ny, nx) = (32usize, 16usize, 48usize);
        let g = |z: f64, y: f64, x: f64| {
            (2.0 * std::f64::consts::PI * 2.0 * x / nx as f64).sin()
                * (2.0 * std::f64::consts::PI * z / nz as f64).cos()
                + 0.3 * (2.0 * std::f64::consts::PI * 3.0 * y / ny as f64).cos()
        };
        let a = Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
            g(z as f64, y as f64, x as f64) as f32
        });
        let b = bin_fourier(a.view(), 2);
        let want = Array3::from_shape_fn((nz / 2, ny / 2, nx / 2), |(z, y, x)| {
            g(2.0 * z as f64, 2.0 * y as f64, 2.0 * x as f64) as f32
        });
        assert!(
            max_abs_diff(&b, &want) < 1e-5,
            "{}",
            max_abs_diff(&b, &want)
        );
        // Mean binning of the same signal is off by a measurable amount (it is not a resampling at
        // 2i), which shows the test can tell them apart.
        assert!(max_abs_diff(&bin_mean(a.view(), 2), &want) > 1e-2);
        // A frequency above the new Nyquist is removed.
        let hf = Array3::from_shape_fn((4, 4, 32), |(_, _, x)| {
            (2.0 * std::f32::consts::PI * 12.0 * x as f32 / 32.0).cos()
        });
        assert!(bin_fourier(hf.view(), 2).iter().all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn lowpass_removes_high_and_keeps_low_frequencies() {
        // cut-off 40 Å at 10 Å/voxel: σ ≈ 0.75 voxel. Period 2 voxels (20 Å) is gone; period 64
        // voxels (640 Å) stays (Gaussian gain exp(-2π²σ²/64²) ≈ 0.997).
        let sigma = lowpass_sigma_vox(40.0, 10.0);
        assert!(
            (sigma - 40.0 * (2.0 * 2f64.ln()).sqrt() / (2.0 * std::f64::consts::PI) / 10.0).abs()
                < 1e-12
        );
        let hi = Array3::from_shape_fn(
            (6, 8, 16),
            |(_, _, x)| if x % 2 == 0 { 1.0f32 } else { -1.0 },
        );
        let out = gaussian_lowpass(hi.view(), sigma);
        // Continuous gain at 0.5 / voxel is exp(-2π²σ²/4) ≈ 0.062; sampling folds the mirror
        // frequency onto it, so the discrete gain is about twice that.
        // (Interior only: the mirror boundary breaks the alternation at the x edges.)
        let peak = out
            .slice(s![.., .., 4..12])
            .iter()
            .fold(0f32, |a, b| a.max(b.abs()));
        assert!(peak < 0.15, "high frequency kept at {peak}");
        let lo = Array3::from_shape_fn((6, 8, 64), |(_, _, x)| {
            (2.0 * std::f32::consts::PI * x as f32 / 64.0).cos()
        });
        let out = gaussian_lowpass(lo.view(), sigma);
        // Away from the mirror edges the low frequency keeps ≥ 99 % of its amplitude.
        for x in 8..56 {
            assert!((out[[3, 4, x]] - lo[[3, 4, x]]).abs() < 0.01, "x={x}");
        }
        // Amplitude 0.5 at the cut-off frequency (1/40 Å⁻¹ = 0.25 voxel⁻¹, period 4 voxels).
        let c = Array3::from_shape_fn((1, 1, 64), |(_, _, x)| {
            (2.0 * std::f32::consts::PI * x as f32 / 4.0).cos()
        });
        let out = gaussian_lowpass(c.view(), sigma);
        assert!((out[[0, 0, 32]] - 0.5).abs() < 0.02, "{}", out[[0, 0, 32]]);
    }

    #[test]
    fn zscore_and_clip() {
        let a = random((7, 9, 11), 1).mapv(|v| 5.0 + 3.0 * v);
        let z = zscore(a.view()).unwrap();
        let st = crate::volume::stats(z.iter().map(|&v| v as f64));
        assert!(
            st.mean.abs() < 1e-6 && (st.rms - 1.0).abs() < 1e-5,
            "{st:?}"
        );
        let c = percentile_clip(a.view(), 1.0, 99.0).unwrap();
        let mut sorted: Vec<f32> = a.iter().copied().collect();
        sorted.sort_by(|x, y| x.total_cmp(y));
        let n = sorted.len() as f64;
        let frac_zero = c.iter().filter(|&&v| v == 0.0).count() as f64 / n;
        let frac_one = c.iter().filter(|&&v| v == 1.0).count() as f64 / n;
        assert!(
            (frac_zero - 0.01).abs() < 2.0 / n + 1e-9 && (frac_one - 0.01).abs() < 2.0 / n + 1e-9,
            "{frac_zero} {frac_one}"
        );
        assert!(c.iter().all(|&v| (0.0..=1.0).contains(&v)));
        let h = {
            let mut h = Histogram::new(sorted[0], *sorted.last().unwrap());
            h.add(a.view());
            h
        };
        let exact = sorted[(0.5 * n) as usize];
        assert!(
            (h.percentile(50.0) - exact).abs() < 1e-3,
            "{} vs {exact}",
            h.percentile(50.0)
        );
        let mut bad = a.clone();
        bad[[1, 1, 1]] = f32::NAN;
        assert!(zscore(bad.view()).is_err());
    }

    #[test]
    fn streamed_equals_whole_volume() {
        let a = random((23, 12, 14), 2);
        let vol = Volume {
            data: a.clone(),
            voxel_size_a: [5.0; 3],
            origin_a: [1.0, 2.0, 3.0],
        };
        for (method, bin) in [
            (BinMethod::Mean, 2),
            (BinMethod::Fourier, 2),
            (BinMethod::Mean, 1),
            (BinMethod::Fourier, 3),
        ] {
            for normalize in [
                Normalize::None,
                Normalize::Zscore,
                Normalize::Clip {
                    low_pct: 0.5,
                    high_pct: 99.5,
                },
            ] {
                let base = PrepConfig {
                    bin,
                    bin_method: method,
                    lowpass_a: Some(30.0),
                    normalize,
                    slab: 1,
                };
                // Whole-array reference built from the pure functions.
                let binned = match (bin, method) {
                    (1, _) => a.clone(),
                    (_, BinMethod::Mean) => bin_mean(a.view(), bin),
                    (_, BinMethod::Fourier) => bin_fourier(a.view(), bin),
                };
                let low =
                    gaussian_lowpass(binned.view(), lowpass_sigma_vox(30.0, 5.0 * bin as f64));
                let want = match normalize {
                    Normalize::None => low,
                    Normalize::Zscore => zscore(low.view()).unwrap(),
                    Normalize::Clip { low_pct, high_pct } => {
                        percentile_clip(low.view(), low_pct, high_pct).unwrap()
                    }
                };
                for slab in [1, 3, 7, 100] {
                    let got = prep_volume(&vol, &PrepConfig { slab, ..base }).unwrap();
                    assert_eq!(
                        got.data, want,
                        "{method:?} bin {bin} {normalize:?} slab {slab}"
                    );
                    assert_eq!(got.voxel_size_a, [5.0 * bin as f32; 3]);
                }
            }
        }
    }

    #[test]
    fn plan_updates_grid_and_rejects_bad_settings() {
        let cfg = PrepConfig {
            bin: 2,
            bin_method: BinMethod::Mean,
            ..Default::default()
        };
        let p = plan([10, 20, 31], [4.0; 3], [100.0, 0.0, -8.0], &cfg).unwrap();
        assert_eq!(p.shape_zyx, [5, 10, 15]);
        assert_eq!(p.voxel_size_a, [8.0; 3]);
        assert_eq!(p.origin_a, [102.0, 2.0, -6.0]);
        let p = plan(
            [10, 20, 31],
            [4.0; 3],
            [100.0, 0.0, -8.0],
            &PrepConfig {
                bin: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.origin_a, [100.0, 0.0, -8.0]);
        assert!(plan([1, 20, 31], [4.0; 3], [0.0; 3], &cfg)
            .unwrap_err()
            .to_string()
            .contains("smaller than the bin"));
        let no_vs = PrepConfig {
            lowpass_a: Some(40.0),
            ..Default::default()
        };
        assert!(plan([4, 4, 4], [0.0; 3], [0.0; 3], &no_vs)
            .unwrap_err()
            .to_string()
            .contains("voxel size"));
        for bad in [
            PrepConfig {
                bin: 0,
                ..Default::default()
            },
            PrepConfig {
                slab: 0,
                ..Default::default()
            },
            PrepConfig {
                lowpass_a: Some(-1.0),
                ..Default::default()
            },
            PrepConfig {
                normalize: Normalize::Clip {
                    low_pct: 99.0,
                    high_pct: 1.0,
                },
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
