//! The Gaussian low-pass: σ from a cut-off in Å ([`lowpass_sigma_vox`]), the truncated kernel
//! ([`gaussian_kernel`]), separable real-space convolution with mirror boundaries of one `[y, x]`
//! slice ([`gaussian_blur_2d`]) or a whole `[z, y, x]` array ([`gaussian_lowpass`]), and the
//! x-y / z passes and halo the streaming driver uses (see the [module docs](super)).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

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
pub(super) fn blur_xy(slice: ArrayView2<f32>, kernel: &[f32]) -> Array2<f32> {
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
pub(super) fn blur_z(
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
pub(super) fn halo_range(z0: usize, len: usize, nz: usize, h: usize) -> (usize, usize) {
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

pub(super) fn stack_of(slices: Vec<Array2<f32>>, dim: (usize, usize, usize)) -> Array3<f32> {
    let mut stack = Array3::<f32>::zeros((slices.len(), dim.1, dim.2));
    for (z, sl) in slices.into_iter().enumerate() {
        stack.index_axis_mut(Axis(0), z).assign(&sl);
    }
    stack
}
