//! Binning of `[z, y, x]` arrays by an integer factor: block mean ([`bin_mean`]) and Fourier
//! cropping ([`bin_fourier`], with the per-axis crop the streaming driver reuses slab by slab).
//! Each axis is first cut to a multiple of the factor (see the [module docs](super)).

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut1, Axis};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

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
pub(super) struct FourierCrop {
    pub(super) n: usize,
    pub(super) m: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
}

impl FourierCrop {
    pub(super) fn new(len: usize, factor: usize) -> Self {
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
pub(super) fn fourier_crop_xy(
    slice: ArrayView2<f32>,
    cx: &FourierCrop,
    cy: &FourierCrop,
) -> Array2<f32> {
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
pub(super) fn fourier_crop_z(stack: &Array3<f32>, cz: &FourierCrop) -> Array3<f32> {
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
