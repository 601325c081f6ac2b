//! Rendered planes: tomogram slices with low-pass and contrast (per plane or cached for the
//! volume), and overlay planes.

use super::Viewer;
use crate::render::{encode_png_gray, gaussian_blur, percentiles, to_u8};
use crate::volume::Axis;

/// Parameters of a rendered tomogram plane.
#[derive(Debug, Clone, Copy)]
pub struct SliceParams {
    pub axis: Axis,
    pub index: usize,
    /// Number of planes averaged (1 = the plane itself).
    pub slab: usize,
    /// Gaussian low-pass σ in pixels (0 = none).
    pub sigma: f32,
    /// Contrast percentiles.
    pub lo: f32,
    pub hi: f32,
    /// Percentiles of this plane (true) or of a sample of the volume rendered alike (false).
    pub per_slice: bool,
    pub invert: bool,
}

impl Default for SliceParams {
    fn default() -> Self {
        SliceParams {
            axis: Axis::Z,
            index: 0,
            slab: 1,
            sigma: 0.0,
            lo: 1.0,
            hi: 99.0,
            per_slice: false,
            invert: false,
        }
    }
}

impl Viewer {
    /// The display range of tomogram planes rendered with `p` (percentiles of a sample of XY
    /// planes spread over z, rendered with the same slab and low-pass; cached).
    pub fn global_range(&self, p: &SliceParams) -> (f32, f32) {
        let key = (p.slab, p.sigma.to_bits(), p.lo.to_bits(), p.hi.to_bits());
        if let Some(r) = self
            .contrast_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return *r;
        }
        let v = &self.tomo;
        let planes = v.nz.clamp(1, 7);
        let (w, h) = v.plane_dims(Axis::Z);
        let step = ((w * h * planes) / 400_000).max(1);
        let mut sample = Vec::new();
        for k in 0..planes {
            let z = (2 * k + 1) * v.nz / (2 * planes);
            let (_, _, mut d) = v.plane(Axis::Z, z, p.slab);
            gaussian_blur(w, h, &mut d, p.sigma);
            sample.extend(d.iter().step_by(step));
        }
        let r = percentiles(&mut sample, p.lo, p.hi);
        self.contrast_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r);
        r
    }

    /// An 8-bit rendering of a tomogram plane: (width, height, pixels).
    pub fn render_tomo(&self, p: &SliceParams) -> (usize, usize, Vec<u8>) {
        let (w, h, mut d) = self.tomo.plane(p.axis, p.index, p.slab);
        gaussian_blur(w, h, &mut d, p.sigma);
        let (lo, hi) = if p.per_slice {
            let step = (d.len() / 200_000).max(1);
            let mut s: Vec<f32> = d.iter().step_by(step).copied().collect();
            percentiles(&mut s, p.lo, p.hi)
        } else {
            self.global_range(p)
        };
        (w, h, to_u8(&d, lo, hi, p.invert))
    }

    /// An 8-bit plane of an overlay: labels as they are (clipped to 0..=255), probabilities × 255.
    pub fn render_overlay(
        &self,
        id: &str,
        axis: Axis,
        index: usize,
    ) -> Option<(usize, usize, Vec<u8>)> {
        let v = self.volume(id)?;
        let (w, h, d) = v.plane(axis, index, 1);
        let px = if id == "labels" {
            d.iter()
                .map(|&x| capsid_core::volume::display_label(x))
                .collect()
        } else {
            d.iter()
                .map(|x| (x * 255.0 + 0.5).clamp(0.0, 255.0) as u8)
                .collect()
        };
        Some((w, h, px))
    }

    /// PNG of [`Viewer::render_tomo`].
    pub fn tomo_png(&self, p: &SliceParams) -> Vec<u8> {
        let (w, h, px) = self.render_tomo(p);
        encode_png_gray(w, h, &px)
    }
}
