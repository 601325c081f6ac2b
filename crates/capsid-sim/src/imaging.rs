//! Imaging as real data are made: tilt-series projection about the y axis, CTF, noise to a target
//! SNR, and reconstruction by weighted back-projection (WBP).
//!
//! Geometry: the beam runs along z, the tilt axis is y (IMOD's convention for a reconstruction
//! `[z, y, x]`). At tilt α (degrees, positive = counter-clockwise seen from +y) a voxel at centred
//! coordinates `(x, z)` lands on detector column `x' = x·cos α + z·sin α` (centred too); each y row
//! of the volume is an independent 2D problem, which the code runs in parallel over y. Because only
//! the tilts in the range are measured, the missing wedge and its streaks appear in the
//! reconstruction as in real data (in the x–z plane: look at XZ slices).
//!
//! Determinism: every parallel task writes its own rows and sums in a fixed order; noise uses one
//! random stream per tilt, derived from the seed.

use crate::metrics::mean_var;
use ndarray::{s, Array2, Array3, ArrayView2, Axis, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

/// The tilt angles in degrees from `min_deg` to `max_deg` (inclusive, within 1e-6) in steps of
/// `step_deg`.
pub fn tilt_angles(min_deg: f64, max_deg: f64, step_deg: f64) -> Vec<f64> {
    let n = ((max_deg - min_deg) / step_deg + 1e-6).floor() as usize + 1;
    (0..n).map(|i| min_deg + step_deg * i as f64).collect()
}

/// Projects `volume` (`[z, y, x]`) at each tilt in `angles_deg`: returns the tilt series
/// `[tilt, y, x']` with as many detector columns as the volume has x voxels. Each value is the line
/// integral (in voxel lengths) of `transfer(v)` along the beam, computed by splatting every voxel
/// onto the two nearest detector columns (linear weights), which conserves mass at every tilt.
pub fn project<F>(volume: &Array3<f32>, angles_deg: &[f64], transfer: F) -> Array3<f32>
where
    F: Fn(f32) -> f32 + Sync,
{
    let (nz, ny, nx) = volume.dim();
    let mut out = Array3::<f32>::zeros((angles_deg.len(), ny, nx));
    let cx = (nx as f64 - 1.0) / 2.0;
    let cz = (nz as f64 - 1.0) / 2.0;
    out.axis_iter_mut(Axis(1))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut rows)| {
            // rows: [tilt, x'] for this y.
            let slice = volume.slice(s![.., y, ..]); // [z, x]
            let mut acc = vec![0.0f64; nx];
            let mut vals = vec![0.0f32; nx];
            for (t, &a) in angles_deg.iter().enumerate() {
                let (sn, cs) = a.to_radians().sin_cos();
                acc.iter_mut().for_each(|v| *v = 0.0);
                for z in 0..nz {
                    let zc = z as f64 - cz;
                    for (x, v) in vals.iter_mut().enumerate() {
                        *v = transfer(slice[[z, x]]);
                    }
                    let base = zc * sn + cx - cx * cs;
                    for (x, &v) in vals.iter().enumerate() {
                        if v == 0.0 {
                            continue;
                        }
                        let xp = base + x as f64 * cs;
                        let i = xp.floor();
                        let f = xp - i;
                        let i = i as i64;
                        if i >= 0 && (i as usize) < nx {
                            acc[i as usize] += v as f64 * (1.0 - f);
                        }
                        if i + 1 >= 0 && ((i + 1) as usize) < nx {
                            acc[(i + 1) as usize] += v as f64 * f;
                        }
                    }
                }
                for (o, &v) in rows.row_mut(t).iter_mut().zip(acc.iter()) {
                    *o = v as f32;
                }
            }
        });
    out
}

pub use capsid_core::optics::electron_wavelength_a;

/// Contrast transfer function parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CtfConfig {
    /// Apply a CTF at all (false: projections are left as pure line integrals).
    pub enabled: bool,
    /// Defocus in µm, positive = underfocus (SHREC'19: about 2 µm).
    pub defocus_um: f64,
    /// Acceleration voltage in kV.
    pub voltage_kv: f64,
    /// Spherical aberration in mm.
    pub cs_mm: f64,
    /// Amplitude contrast fraction (0..1).
    pub amplitude_contrast: f64,
    /// Phase flipping as a CTF correction before reconstruction (the transfer becomes −|CTF|, so
    /// density stays dark). SHREC'19 did not correct, hence off by default.
    pub phase_flip: bool,
    /// B-factor envelope `exp(−B k² / 4)` in Å² (0 = none).
    pub bfactor_a2: f64,
}

impl Default for CtfConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            defocus_um: 2.0,
            voltage_kv: 300.0,
            cs_mm: 2.7,
            amplitude_contrast: 0.07,
            phase_flip: false,
            bfactor_a2: 0.0,
        }
    }
}

impl CtfConfig {
    /// The CTF at spatial frequency `k` (1/Å): `−(√(1−A²)·sin χ + A·cos χ)·exp(−B k²/4)` with
    /// `χ = π λ Δf k² − (π/2) Cs λ³ k⁴`. Negative at low frequency: protein appears dark, as in
    /// real tomograms.
    pub fn value(&self, k: f64) -> f64 {
        let modulation = capsid_core::optics::ctf_modulation(
            k,
            self.defocus_um,
            self.voltage_kv,
            self.cs_mm,
            self.amplitude_contrast,
        );
        let k2 = k * k;
        let ctf = -modulation * (-self.bfactor_a2 * k2 / 4.0).exp();
        if self.phase_flip {
            -ctf.abs()
        } else {
            ctf
        }
    }
}

/// In-place 2D FFT of `data` (`[rows, cols]`, row-major) forward or inverse (unnormalised).
fn fft2(
    data: &mut [Complex<f32>],
    rows: usize,
    cols: usize,
    inverse: bool,
    planner: &mut FftPlanner<f32>,
) {
    let (row_fft, col_fft) = if inverse {
        (
            planner.plan_fft_inverse(cols),
            planner.plan_fft_inverse(rows),
        )
    } else {
        (
            planner.plan_fft_forward(cols),
            planner.plan_fft_forward(rows),
        )
    };
    row_fft.process(data);
    let mut col = vec![Complex::new(0.0f32, 0.0); rows];
    for c in 0..cols {
        for r in 0..rows {
            col[r] = data[r * cols + c];
        }
        col_fft.process(&mut col);
        for r in 0..rows {
            data[r * cols + c] = col[r];
        }
    }
}

/// Signed spatial frequency index → cycles per sample for an FFT of length `n`.
fn freq(i: usize, n: usize) -> f64 {
    let i = i as f64;
    let n = n as f64;
    if i <= n / 2.0 {
        i / n
    } else {
        (i - n) / n
    }
}

/// Applies the CTF to each projection of `series` (`[tilt, y, x]`) in 2D Fourier space, with pixel
/// size `pixel_a` (Å). Constant defocus over each image (no defocus gradient across tilted images).
pub fn apply_ctf(series: &mut Array3<f32>, ctf: &CtfConfig, pixel_a: f64) {
    let (_, ny, nx) = series.dim();
    let filter = Array2::from_shape_fn((ny, nx), |(y, x)| {
        let (ky, kx) = (freq(y, ny) / pixel_a, freq(x, nx) / pixel_a);
        ctf.value((kx * kx + ky * ky).sqrt()) as f32
    });
    let norm = 1.0 / (nx * ny) as f32;
    series
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .for_each(|mut img| {
            let mut planner = FftPlanner::<f32>::new();
            let mut buf: Vec<Complex<f32>> = img.iter().map(|&v| Complex::new(v, 0.0)).collect();
            fft2(&mut buf, ny, nx, false, &mut planner);
            for (b, &f) in buf.iter_mut().zip(filter.iter()) {
                *b *= f * norm;
            }
            fft2(&mut buf, ny, nx, true, &mut planner);
            for (o, b) in img.iter_mut().zip(buf.iter()) {
                *o = b.re;
            }
        });
}

/// The signal power of a tilt series: the mean over tilts of each projection's variance (so the
/// tilt-dependent mean of a thick slab does not count as signal).
pub fn signal_variance(series: &Array3<f32>) -> f64 {
    let n = series.dim().0.max(1) as f64;
    series
        .axis_iter(Axis(0))
        .map(|img| mean_var(img.iter().copied()).1)
        .sum::<f64>()
        / n
}

/// Adds Gaussian noise of standard deviation `sigma` to every pixel; tilt `t` draws from its own
/// ChaCha8 stream `t` of `seed`, so the result does not depend on thread scheduling.
pub fn add_noise(series: &mut Array3<f32>, sigma: f64, seed: u64) {
    series
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(t, mut img)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(t as u64 + 1);
            for v in img.iter_mut() {
                let g: f64 = StandardNormal.sample(&mut rng);
                *v += (g * sigma) as f32;
            }
        });
}

/// Weighted back-projection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WbpConfig {
    /// Radial (R-weighting) filter cutoff in cycles/pixel (0.5 = Nyquist, no cutoff); beyond it
    /// the filter falls off as a Gaussian of width `radial_falloff` (IMOD's `-RADIAL` pair).
    pub radial_cutoff: f64,
    /// Width of the Gaussian fall-off in cycles/pixel.
    pub radial_falloff: f64,
}

impl Default for WbpConfig {
    fn default() -> Self {
        Self {
            radial_cutoff: 0.35,
            radial_falloff: 0.035,
        }
    }
}

/// The R-weighting (ramp) filter for FFT length `len`: the Fourier transform of the discrete
/// Ram-Lak kernel (h[0] = 1/4, h[odd n] = −1/(π n)², which keeps a correct DC term), times the
/// Gaussian fall-off beyond the cutoff.
pub fn ramp_filter(len: usize, cfg: &WbpConfig) -> Vec<f32> {
    let mut h = vec![Complex::new(0.0f64, 0.0); len];
    h[0].re = 0.25;
    for (i, v) in h.iter_mut().enumerate().skip(1) {
        let n = if i <= len / 2 { i } else { len - i };
        if n % 2 == 1 {
            v.re = -1.0 / (std::f64::consts::PI * n as f64).powi(2);
        }
    }
    let mut planner = FftPlanner::<f64>::new();
    planner.plan_fft_forward(len).process(&mut h);
    (0..len)
        .map(|i| {
            let f = freq(i, len).abs();
            let window = if f > cfg.radial_cutoff {
                (-(f - cfg.radial_cutoff).powi(2) / (2.0 * cfg.radial_falloff.max(1e-9).powi(2)))
                    .exp()
            } else {
                1.0
            };
            (h[i].re * window) as f32
        })
        .collect()
}

/// Reconstructs a volume `[nz, y, x]` from a tilt series `[tilt, y, x]` by weighted
/// back-projection: each detector row is R-weighted (FFT of length ≥ 2·nx, padded with its edge
/// values), then smeared back along its rays with linear interpolation and weight Δα (radians).
pub fn reconstruct_wbp(
    series: &Array3<f32>,
    angles_deg: &[f64],
    nz: usize,
    cfg: &WbpConfig,
) -> Array3<f32> {
    let (nt, ny, nx) = series.dim();
    assert_eq!(nt, angles_deg.len(), "one angle per projection");
    let len = (2 * nx).next_power_of_two();
    let filter = ramp_filter(len, cfg);
    let weights: Vec<f64> = tilt_weights_rad(angles_deg);
    let mut out = Array3::<f32>::zeros((nz, ny, nx));
    let cx = (nx as f64 - 1.0) / 2.0;
    let cz = (nz as f64 - 1.0) / 2.0;
    let pad = (len - nx) / 2;
    out.axis_iter_mut(Axis(1))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut slice)| {
            let mut planner = FftPlanner::<f32>::new();
            let fwd = planner.plan_fft_forward(len);
            let inv = planner.plan_fft_inverse(len);
            let rows: ArrayView2<f32> = series.slice(s![.., y, ..]);
            let mut filtered = vec![vec![0.0f32; nx]; nt];
            let mut buf = vec![Complex::new(0.0f32, 0.0); len];
            for (t, filtered_t) in filtered.iter_mut().enumerate() {
                let row = rows.row(t);
                let (first, last) = (row[0], row[nx - 1]);
                for (i, b) in buf.iter_mut().enumerate() {
                    let v = if i < pad {
                        first
                    } else if i < pad + nx {
                        row[i - pad]
                    } else {
                        last
                    };
                    *b = Complex::new(v, 0.0);
                }
                fwd.process(&mut buf);
                for (b, &f) in buf.iter_mut().zip(filter.iter()) {
                    *b *= f / len as f32;
                }
                inv.process(&mut buf);
                for (o, b) in filtered_t.iter_mut().zip(buf[pad..pad + nx].iter()) {
                    *o = b.re;
                }
            }
            // slice: [z, x] for this y.
            let mut acc = vec![0.0f64; nx];
            for z in 0..nz {
                let zc = z as f64 - cz;
                acc.iter_mut().for_each(|v| *v = 0.0);
                for (t, &a) in angles_deg.iter().enumerate() {
                    let (sn, cs) = a.to_radians().sin_cos();
                    let w = weights[t];
                    let q = &filtered[t];
                    let base = zc * sn + cx - cx * cs;
                    for (x, av) in acc.iter_mut().enumerate() {
                        let xp = base + x as f64 * cs;
                        let i = xp.floor();
                        let f = xp - i;
                        let i = i as i64;
                        let mut v = 0.0f64;
                        if i >= 0 && (i as usize) < nx {
                            v += q[i as usize] as f64 * (1.0 - f);
                        }
                        if i + 1 >= 0 && ((i + 1) as usize) < nx {
                            v += q[(i + 1) as usize] as f64 * f;
                        }
                        *av += w * v;
                    }
                }
                for (o, &v) in slice.row_mut(z).iter_mut().zip(acc.iter()) {
                    *o = v as f32;
                }
            }
        });
    out
}

/// Angular weight of each tilt in radians: half the gap to each neighbour (the end tilts get their
/// one inner half-gap twice), so uneven tilt schemes are weighted fairly.
pub fn tilt_weights_rad(angles_deg: &[f64]) -> Vec<f64> {
    let n = angles_deg.len();
    if n == 1 {
        return vec![std::f64::consts::PI];
    }
    (0..n)
        .map(|i| {
            let left = if i > 0 {
                angles_deg[i] - angles_deg[i - 1]
            } else {
                angles_deg[1] - angles_deg[0]
            };
            let right = if i + 1 < n {
                angles_deg[i + 1] - angles_deg[i]
            } else {
                angles_deg[n - 1] - angles_deg[n - 2]
            };
            (0.5 * (left.abs() + right.abs())).to_radians()
        })
        .collect()
}

/// Replaces NaN/∞ (which cannot happen with finite input, but a file must never hold them) by 0.
pub fn sanitize(a: &mut Array3<f32>) {
    Zip::from(a).for_each(|v| {
        if !v.is_finite() {
            *v = 0.0;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tilts_are_41_from_minus_60() {
        let t = tilt_angles(-60.0, 60.0, 3.0);
        assert_eq!(t.len(), 41);
        assert_eq!(t[0], -60.0);
        assert!((t[40] - 60.0).abs() < 1e-9);
    }

    #[test]
    fn projection_conserves_mass_and_moves_with_tilt() {
        // One voxel off-centre: at tilt α it lands at x' = x cos α + z sin α (centred).
        let mut v = Array3::<f32>::zeros((21, 3, 41));
        v[[15, 1, 20]] = 1.0; // x = 0, z = +5 (centred)
        let p = project(&v, &[30.0], |x| x);
        let row = p.slice(s![0, 1, ..]);
        let mass: f32 = row.iter().sum();
        assert!((mass - 1.0).abs() < 1e-6);
        let centroid: f64 = row
            .iter()
            .enumerate()
            .map(|(i, &w)| i as f64 * w as f64)
            .sum();
        assert!((centroid - 20.0 - 5.0 * 0.5).abs() < 1e-5, "{centroid}");
    }

    #[test]
    fn ctf_is_negative_at_low_frequency_and_oscillates() {
        let c = CtfConfig::default();
        assert!((c.value(0.0) + 0.07).abs() < 1e-12);
        assert!(c.value(0.02) < -0.3);
        // The first zero of 2 µm at 300 kV lies near 1/(20 Å).
        let sign_changes = (1..200)
            .filter(|&i| c.value(i as f64 * 0.0005) * c.value((i + 1) as f64 * 0.0005) < 0.0)
            .count();
        assert!(sign_changes >= 1);
        assert!((electron_wavelength_a(300.0) - 0.019_687).abs() < 1e-5);
    }

    #[test]
    fn noise_reaches_the_requested_sigma_and_is_reproducible() {
        let mut a = Array3::<f32>::zeros((3, 64, 64));
        add_noise(&mut a, 2.0, 9);
        let (m, v) = mean_var(a.iter().copied());
        assert!(m.abs() < 0.05 && (v.sqrt() - 2.0).abs() < 0.05, "{m} {v}");
        let mut b = Array3::<f32>::zeros((3, 64, 64));
        add_noise(&mut b, 2.0, 9);
        assert_eq!(a, b);
        let mut c = Array3::<f32>::zeros((3, 64, 64));
        add_noise(&mut c, 2.0, 10);
        assert_ne!(a, c);
    }

    #[test]
    fn ramp_filter_is_small_at_dc_and_rises() {
        let f = ramp_filter(
            64,
            &WbpConfig {
                radial_cutoff: 0.5,
                radial_falloff: 0.01,
            },
        );
        assert!(f[0] > 0.0 && f[0] < 0.05, "{}", f[0]);
        assert!(f[8] > f[4] && f[16] > f[8]);
        assert!((f[16] - 0.25).abs() < 0.02, "{}", f[16]);
    }
}
