//! The template side of matching: turning a template, filtering it as the tomogram was filtered
//! by its acquisition (missing wedge, CTF, an optional low-pass), and normalising it under the
//! mask so that correlations are local correlation coefficients (−1..1).
//!
//! Volumes are `[z, y, x]`; a template is a cube of side `b` whose centre is voxel `b / 2`
//! (integer division: RELION's convention, and the simulator's `(b − 1) / 2` for odd sides).
//! Spatial frequencies are in cycles per voxel.

use crate::fft3::{Fft3, Scratch};
use crate::MatchError;
use capsid_core::volume::trilinear;
use capsid_core::Rotation;
use ndarray::Array3;
use rustfft::num_complex::Complex32;

/// The missing wedge of a single-axis tilt series: the beam runs along z, the tilt axis is y (as
/// capsid's simulator and IMOD reconstructions), and tilts from `min_deg` to `max_deg` were
/// recorded. A Fourier component `(kx, ky, kz)` was measured when the angle of `(kx, kz)` from
/// the kx axis, folded into (−90°, 90°], lies in that range (components with `kx = kz = 0` always).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wedge {
    pub min_deg: f64,
    pub max_deg: f64,
}

impl Wedge {
    /// Whether frequency `(kz, ky, kx)` was measured.
    pub fn passes(&self, k: [f64; 3]) -> bool {
        let (kz, kx) = (k[0], k[2]);
        if kz == 0.0 && kx == 0.0 {
            return true;
        }
        let mut a = kz.atan2(kx).to_degrees();
        if a > 90.0 {
            a -= 180.0;
        } else if a <= -90.0 {
            a += 180.0;
        }
        a >= self.min_deg - 1e-9 && a <= self.max_deg + 1e-9
    }
}

/// A contrast transfer function to give the template, as the tomogram's images had it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ctf {
    /// Defocus in µm, positive = underfocus.
    pub defocus_um: f64,
    /// Acceleration voltage in kV.
    pub voltage_kv: f64,
    /// Spherical aberration in mm.
    pub cs_mm: f64,
    /// Amplitude contrast (fraction).
    pub amplitude_contrast: f64,
    /// The tilt series was phase-flipped before reconstruction: the template gets |CTF|.
    pub phase_flipped: bool,
}

impl Ctf {
    /// The template's weight at spatial frequency `k` (1/Å): the CTF's modulation
    /// `√(1−A²)·sin χ + A·cos χ` ([`capsid_core::optics::ctf_modulation`]), the sign chosen
    /// positive at low frequency so that protein keeps the contrast `--contrast` gives it, or
    /// its magnitude when phase-flipped.
    pub fn weight(&self, k: f64) -> f64 {
        let w = capsid_core::optics::ctf_modulation(
            k,
            self.defocus_um,
            self.voltage_kv,
            self.cs_mm,
            self.amplitude_contrast,
        );
        if self.phase_flipped {
            w.abs()
        } else {
            w
        }
    }
}

/// Everything the template is filtered with, in the tomogram's frame (after turning).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TemplateFilter {
    pub wedge: Option<Wedge>,
    pub ctf: Option<Ctf>,
    /// Low-pass: a raised-cosine edge from 0.9× to 1.1× this resolution (Å).
    pub lowpass_a: Option<f64>,
    /// Voxel size in Å (for the CTF and the low-pass).
    pub voxel_size_a: f64,
}

impl TemplateFilter {
    /// Whether the filter changes anything.
    pub fn is_identity(&self) -> bool {
        self.wedge.is_none() && self.ctf.is_none() && self.lowpass_a.is_none()
    }

    /// The filter's value at frequency `k = (kz, ky, kx)` in cycles per voxel.
    pub fn value(&self, k: [f64; 3]) -> f32 {
        let mut v = 1.0f64;
        if let Some(w) = &self.wedge {
            if !w.passes(k) {
                return 0.0;
            }
        }
        let kr = (k[0] * k[0] + k[1] * k[1] + k[2] * k[2]).sqrt() / self.voxel_size_a;
        if let Some(ctf) = &self.ctf {
            v *= ctf.weight(kr);
        }
        if let Some(res) = self.lowpass_a {
            let (lo, hi) = (0.9 / res, 1.1 / res);
            if kr >= hi {
                return 0.0;
            }
            if kr > lo {
                v *= 0.5 * (1.0 + (std::f64::consts::PI * (kr - lo) / (hi - lo)).cos());
            }
        }
        v as f32
    }
}

/// Signed frequency (cycles per sample) of bin `i` of an FFT of length `n`.
pub fn freq(i: usize, n: usize) -> f64 {
    if 2 * i <= n {
        i as f64 / n as f64
    } else {
        (i as f64 - n as f64) / n as f64
    }
}

/// Writes into `out` (`b³`) the cube `data` (`b³`) turned by `rot` about its centre `b / 2`:
/// voxel `p` takes the value at `Rᵀ (p − c) + c`, sampled trilinearly, 0 outside the cube. This
/// is how a particle of orientation `rot` looks (the simulator places particles so).
pub fn rotate_cube(data: &[f32], b: usize, rot: &Rotation, out: &mut [f32]) {
    assert_eq!(data.len(), b * b * b);
    assert_eq!(out.len(), b * b * b);
    let c = (b / 2) as f64;
    let rt = rot.transpose().m;
    for z in 0..b {
        let pz = z as f64 - c;
        for y in 0..b {
            let py = y as f64 - c;
            // q = Rᵀ p = base + x' · column 0 of Rᵀ.
            let bx = rt[0][1] * py + rt[0][2] * pz + c;
            let by = rt[1][1] * py + rt[1][2] * pz + c;
            let bz = rt[2][1] * py + rt[2][2] * pz + c;
            let row = &mut out[(z * b + y) * b..(z * b + y + 1) * b];
            for (x, v) in row.iter_mut().enumerate() {
                let px = x as f64 - c;
                *v = trilinear(
                    data,
                    [b, b, b],
                    bx + rt[0][0] * px,
                    by + rt[1][0] * px,
                    bz + rt[2][0] * px,
                );
            }
        }
    }
}

/// A sphere mask for a cube of side `b`: 1 within `radius` voxels of the centre `b / 2`, 0
/// beyond.
pub fn sphere_mask(b: usize, radius: f64) -> Array3<f32> {
    let c = (b / 2) as f64;
    Array3::from_shape_fn((b, b, b), |(z, y, x)| {
        let d2 = (x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2);
        if d2 <= radius * radius {
            1.0
        } else {
            0.0
        }
    })
}

/// Whether `mask` (a cube) is a function of the distance to its centre that does not increase
/// outwards, within 0.05: then it is the same under every rotation, and the local statistics of
/// the tomogram under it are computed once instead of once per rotation. A voxel farther out
/// (by more than 0.75 voxel) may not exceed a nearer one by more than 0.05.
pub fn is_radial(mask: &Array3<f32>) -> bool {
    let b = mask.dim().0;
    let c = (b / 2) as f64;
    let mut v: Vec<(f64, f32)> = mask
        .indexed_iter()
        .map(|((z, y, x), &m)| {
            let d =
                ((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2)).sqrt();
            (d, m)
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // suffix[i] = max of mask over voxels i.. (farther or as far).
    let mut suffix = vec![f32::NEG_INFINITY; v.len() + 1];
    for i in (0..v.len()).rev() {
        suffix[i] = suffix[i + 1].max(v[i].1);
    }
    let mut j = 0;
    for &(d, m) in &v {
        while j < v.len() && v[j].0 <= d + 0.75 {
            j += 1;
        }
        if suffix[j] > m + 0.05 {
            return false;
        }
    }
    true
}

/// A template ready for matching: density (with its contrast), mask, and the filter's values on
/// the template box's half spectrum.
pub struct Template {
    side: usize,
    density: Vec<f32>,
    mask: Vec<f32>,
    mask_radial: bool,
    /// Filter on the box's half spectrum `[b][b][b/2+1]`; `None` = identity.
    filter: Option<Vec<f32>>,
    fft: Fft3,
}

/// Per-thread working memory of [`Template::prepare`].
pub struct TemplateScratch {
    turned: Vec<f32>,
    mask_turned: Vec<f32>,
    spec: Vec<Complex32>,
    fft: Scratch,
}

impl Template {
    /// A template from `density` (a cube, `[z, y, x]`) and `mask` (the same cube, values 0..1;
    /// `None` = a sphere of radius `b / 2 − 1`). `invert` flips the density's sign (protein
    /// positive in the map, dark in the tomogram). Errors on a non-cube, a mask of another
    /// shape, non-finite values, or a template flat under its mask.
    pub fn new(
        density: &Array3<f32>,
        mask: Option<&Array3<f32>>,
        invert: bool,
        filter: &TemplateFilter,
    ) -> Result<Self, MatchError> {
        let (bz, by, bx) = density.dim();
        if bz != by || by != bx || bx < 4 {
            return Err(MatchError::Invalid(format!(
                "the template must be a cube of side ≥ 4 voxels, got {bx} × {by} × {bz}"
            )));
        }
        let b = bx;
        if density.iter().any(|v| !v.is_finite()) {
            return Err(MatchError::Invalid(
                "the template holds non-finite values".into(),
            ));
        }
        let mask = match mask {
            Some(m) => {
                if m.dim() != density.dim() {
                    let (z, y, x) = m.dim();
                    return Err(MatchError::Invalid(format!(
                        "the mask ({x} × {y} × {z}) differs in shape from the template ({b}³)"
                    )));
                }
                if m.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    return Err(MatchError::Invalid(
                        "the mask holds negative or non-finite values".into(),
                    ));
                }
                m.clone()
            }
            None => sphere_mask(b, (b / 2) as f64 - 1.0),
        };
        if mask.sum() < 1.0 {
            return Err(MatchError::Invalid("the mask is empty".into()));
        }
        let sign = if invert { -1.0 } else { 1.0 };
        let fft = Fft3::new([b, b, b]);
        let filter = (!filter.is_identity()).then(|| {
            let [nz, ny, nxh] = fft.spectrum_shape();
            let mut f = Vec::with_capacity(nz * ny * nxh);
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nxh {
                        f.push(filter.value([freq(z, b), freq(y, b), x as f64 / b as f64]));
                    }
                }
            }
            f
        });
        let t = Template {
            side: b,
            density: density
                .as_standard_layout()
                .iter()
                .map(|v| v * sign)
                .collect(),
            mask_radial: is_radial(&mask),
            mask: mask.as_standard_layout().iter().copied().collect(),
            filter,
            fft,
        };
        // A flat template would divide by zero: check once, unturned.
        let mut ws = t.scratch();
        let mut out = vec![0.0; b * b * b];
        t.prepare(&Rotation::identity(), &mut out, None, &mut ws)?;
        Ok(t)
    }
    /// The same template averaged over every rotation about its centre (voxel `b / 2`): its
    /// radial profile, with the same mask and filter. A look-alike with the particle's radial
    /// profile but another shape fits it as well as the particle does, so the particle's score
    /// minus this one's measures how much of the fit comes from the shape, not the size.
    pub fn spherical_average(&self) -> Template {
        let b = self.side;
        let c = (b / 2) as f64;
        let shell = |z: usize, y: usize, x: usize| {
            let d =
                ((z as f64 - c).powi(2) + (y as f64 - c).powi(2) + (x as f64 - c).powi(2)).sqrt();
            d.round() as usize
        };
        let n_shells = b; // the corner lies at √3·b/2 < b
        let (mut sum, mut count) = (vec![0.0f64; n_shells], vec![0usize; n_shells]);
        for z in 0..b {
            for y in 0..b {
                for x in 0..b {
                    let r = shell(z, y, x);
                    sum[r] += self.density[(z * b + y) * b + x] as f64;
                    count[r] += 1;
                }
            }
        }
        let mut density = vec![0.0f32; b * b * b];
        for z in 0..b {
            for y in 0..b {
                for x in 0..b {
                    let r = shell(z, y, x);
                    density[(z * b + y) * b + x] = (sum[r] / count[r] as f64) as f32;
                }
            }
        }
        Template {
            side: b,
            density,
            mask: self.mask.clone(),
            mask_radial: self.mask_radial,
            filter: self.filter.clone(),
            fft: Fft3::new([b, b, b]),
        }
    }

    /// Side `b` of the template cube.
    pub fn side(&self) -> usize {
        self.side
    }

    /// Whether the mask is radial (see [`is_radial`]).
    pub fn mask_is_radial(&self) -> bool {
        self.mask_radial
    }

    /// The mask, unturned (`b³`).
    pub fn mask(&self) -> &[f32] {
        &self.mask
    }

    /// Working memory for one thread.
    pub fn scratch(&self) -> TemplateScratch {
        let b = self.side;
        TemplateScratch {
            turned: vec![0.0; b * b * b],
            mask_turned: vec![0.0; b * b * b],
            spec: vec![Complex32::default(); self.fft.spectrum_len()],
            fft: self.fft.scratch(),
        }
    }

    /// Writes into `out` (`b³`) the template turned by `rot`, filtered, multiplied by the mask
    /// (turned too unless radial; written into `mask_out` when given) and normalised under it:
    /// zero mean and `Σ mask · t² = Σ mask`. Returns `Σ mask` (the number of voxels under it).
    pub fn prepare(
        &self,
        rot: &Rotation,
        out: &mut [f32],
        mask_out: Option<&mut [f32]>,
        ws: &mut TemplateScratch,
    ) -> Result<f64, MatchError> {
        let b = self.side;
        let n = b * b * b;
        rotate_cube(&self.density, b, rot, &mut ws.turned);
        if let Some(f) = &self.filter {
            self.fft
                .forward(&mut ws.turned, &mut ws.spec, [b, b, b], &mut ws.fft);
            let scale = 1.0 / n as f32;
            for (s, &w) in ws.spec.iter_mut().zip(f) {
                *s *= w * scale;
            }
            self.fft
                .inverse(&mut ws.spec, &mut ws.turned, [b, b], &mut ws.fft);
        }
        let mask: &[f32] = match mask_out {
            Some(m) => {
                if self.mask_radial {
                    m.copy_from_slice(&self.mask);
                } else {
                    rotate_cube(&self.mask, b, rot, m);
                }
                m
            }
            None if self.mask_radial => &self.mask,
            None => {
                rotate_cube(&self.mask, b, rot, &mut ws.mask_turned);
                &ws.mask_turned
            }
        };
        let (mut sm, mut smt, mut smt2) = (0.0f64, 0.0f64, 0.0f64);
        for (&m, &t) in mask.iter().zip(&ws.turned) {
            let (m, t) = (m as f64, t as f64);
            sm += m;
            smt += m * t;
            smt2 += m * t * t;
        }
        let mean = smt / sm;
        let var = smt2 / sm - mean * mean;
        // NaN (a NaN template) counts as flat too.
        if var.is_nan() || var <= 1e-12 * (smt2 / sm).max(1e-30) {
            return Err(MatchError::Invalid(
                "the template is flat under its mask (no contrast to match)".into(),
            ));
        }
        let inv = 1.0 / var.sqrt();
        for ((o, &m), &t) in out.iter_mut().zip(mask).zip(&ws.turned) {
            *o = (m as f64 * (t as f64 - mean) * inv) as f32;
        }
        Ok(sm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_turn_moves_voxels_where_the_convention_says() {
        // Rz(90°) sends +x to +y: a voxel at x = c + 2 moves to y = c + 2.
        let b = 9;
        let c = 4;
        let mut d = vec![0.0f32; b * b * b];
        d[(c * b + c) * b + c + 2] = 1.0;
        let mut out = vec![0.0f32; b * b * b];
        rotate_cube(&d, b, &Rotation::rz(std::f64::consts::FRAC_PI_2), &mut out);
        assert!((out[(c * b + c + 2) * b + c] - 1.0).abs() < 1e-5);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn spheres_are_radial_and_cubes_are_not() {
        assert!(is_radial(&sphere_mask(16, 6.5)));
        let cube = Array3::from_shape_fn((16, 16, 16), |(z, y, x)| {
            if (3..13).contains(&z) && (3..13).contains(&y) && (3..13).contains(&x) {
                1.0
            } else {
                0.0
            }
        });
        assert!(!is_radial(&cube));
    }

    #[test]
    fn wedge_keeps_the_measured_tilts() {
        let w = Wedge {
            min_deg: -60.0,
            max_deg: 60.0,
        };
        assert!(w.passes([0.0, 0.3, 0.2])); // kz = 0: untilted
        assert!(w.passes([0.0, 0.3, 0.0])); // along the tilt axis
        assert!(!w.passes([0.3, 0.0, 0.0])); // along the beam: in the wedge
        assert!(w.passes([0.1, 0.0, 0.2])); // 26.6°
        assert!(w.passes([-0.1, 0.0, -0.2])); // the same line through the origin
        let asym = Wedge {
            min_deg: -40.0,
            max_deg: 60.0,
        };
        assert!(asym.passes([0.2, 0.0, 0.2])); // +45°
        assert!(!asym.passes([-0.2, 0.0, 0.2])); // −45°
    }

    #[test]
    fn prepared_template_is_normalised_under_the_mask() {
        let b = 12;
        let d = Array3::from_shape_fn((b, b, b), |(z, y, x)| (x + 2 * y + 3 * z) as f32 * 0.1);
        let filter = TemplateFilter {
            wedge: Some(Wedge {
                min_deg: -60.0,
                max_deg: 60.0,
            }),
            voxel_size_a: 10.0,
            ..TemplateFilter::default()
        };
        let t = Template::new(&d, None, true, &filter).unwrap();
        let mut ws = t.scratch();
        let mut out = vec![0.0; b * b * b];
        let n = t
            .prepare(&Rotation::rx(0.4), &mut out, None, &mut ws)
            .unwrap();
        let s: f64 = out.iter().map(|&v| v as f64).sum();
        let s2: f64 = out.iter().map(|&v| (v as f64).powi(2)).sum();
        assert!(s.abs() < 1e-3, "{s}");
        assert!((s2 - n).abs() < 1e-2 * n, "{s2} vs {n}");
        let flat = Array3::from_elem((b, b, b), 1.0f32);
        assert!(Template::new(&flat, None, false, &TemplateFilter::default()).is_err());
    }
}
