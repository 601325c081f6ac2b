//! Distractors: vesicles and gold beads, placed before the particles and taking their voxels.

use super::{add_cube, Turned, DISTRACTOR};
use ndarray::Array3;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Vesicles (spherical lipid bilayers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VesicleConfig {
    /// Number of vesicles per tomogram.
    pub count: usize,
    /// Smallest and largest radius in Å (mid-plane of the bilayer).
    pub radius_min_a: f64,
    pub radius_max_a: f64,
}

impl Default for VesicleConfig {
    fn default() -> Self {
        Self {
            count: 0,
            radius_min_a: 200.0,
            radius_max_a: 400.0,
        }
    }
}

/// Gold fiducial beads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoldConfig {
    /// Number of beads per tomogram.
    pub count: usize,
    /// Bead radius in Å.
    pub radius_a: f64,
    /// Bead density in protein units (gold scatters far more strongly than protein).
    pub density: f64,
}

impl Default for GoldConfig {
    fn default() -> Self {
        Self {
            count: 0,
            radius_a: 50.0,
            density: 8.0,
        }
    }
}

/// A spherically symmetric object (vesicle or bead) as a cube of values from `profile(r_vox)`.
pub(super) fn radial_cube(radius_vox: f64, profile: impl Fn(f64) -> f64) -> Array3<f32> {
    let h = radius_vox.ceil() as usize;
    let n = 2 * h + 1;
    let c = h as f64;
    Array3::from_shape_fn((n, n, n), |(z, y, x)| {
        let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2)).sqrt();
        profile(r) as f32
    })
}

pub(super) fn cube_mask(values: &Array3<f32>, threshold: f32) -> Turned {
    let h = (values.dim().0 as i64 - 1) / 2;
    let mut mask = Vec::new();
    let (mut lo, mut hi) = ([i64::MAX; 3], [i64::MIN; 3]);
    for ((z, y, x), &v) in values.indexed_iter() {
        if v >= threshold {
            let d = [z as i64 - h, y as i64 - h, x as i64 - h];
            for a in 0..3 {
                lo[a] = lo[a].min(d[a]);
                hi[a] = hi[a].max(d[a]);
            }
            mask.push(d);
        }
    }
    Turned {
        values: values.clone(),
        mask,
        lo,
        hi,
    }
}

pub(super) fn place_distractor<R: Rng>(
    density: &mut Array3<f32>,
    occ: &mut Array3<u32>,
    turned: &Turned,
    rng: &mut R,
    attempts: usize,
    min: [i64; 3],
    max: [i64; 3],
) {
    if turned.mask.is_empty() {
        return;
    }
    // Vesicles and beads may be cut by the x/y edges (as in real fields of view) but not by the
    // slab: only their centre must lie in the volume in x and y.
    let (nz, ny, nx) = occ.dim();
    for _ in 0..attempts {
        let zr = (min[0] - turned.lo[0], max[0] - turned.hi[0]);
        if zr.0 > zr.1 {
            return;
        }
        let c = [
            rng.gen_range(zr.0..=zr.1),
            rng.gen_range(0..ny as i64),
            rng.gen_range(0..nx as i64),
        ];
        let inside = |d: &[i64; 3]| {
            let (z, y, x) = (c[0] + d[0], c[1] + d[1], c[2] + d[2]);
            z >= 0
                && y >= 0
                && x >= 0
                && (z as usize) < nz
                && (y as usize) < ny
                && (x as usize) < nx
        };
        let free = turned.mask.iter().filter(|d| inside(d)).all(|d| {
            occ[[
                (c[0] + d[0]) as usize,
                (c[1] + d[1]) as usize,
                (c[2] + d[2]) as usize,
            ]] == 0
        });
        if free {
            for d in turned.mask.iter().filter(|d| inside(d)) {
                occ[[
                    (c[0] + d[0]) as usize,
                    (c[1] + d[1]) as usize,
                    (c[2] + d[2]) as usize,
                ]] = DISTRACTOR;
            }
            add_cube(density, &turned.values, c);
            return;
        }
    }
}
