//! An orientation for a particle already picked (by `capsid pick`, by hand): the template is
//! matched in a small subvolume around the pick, first over a coarse uniform sampling of SO(3),
//! then over finer and finer local samplings around the best rotation (each level's step is half
//! the previous one, searched within one previous step), down to a fine step. The position may
//! move by up to `max_shift_vox` voxels to the best-scoring place.

use crate::search::{search, SearchOptions};
use crate::so3::{local_rotations, search_rotations};
use crate::template::Template;
use crate::MatchError;
use capsid_core::{Rotation, Symmetry};
use ndarray::{s, ArrayView3};

/// How `orient` searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrientOptions {
    /// Step of the first, global search (degrees).
    pub coarse_step_deg: f64,
    /// The refinement stops once the step is at or below this (degrees).
    pub fine_step_deg: f64,
    /// Point group of the template: the global search covers its asymmetric unit only.
    pub symmetry: Symmetry,
    /// How far the particle centre may move (voxels).
    pub max_shift_vox: usize,
}

impl Default for OrientOptions {
    fn default() -> Self {
        Self {
            coarse_step_deg: 20.0,
            fine_step_deg: 2.0,
            symmetry: Symmetry::default(),
            max_shift_vox: 2,
        }
    }
}

/// The orientation found for one particle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Oriented {
    /// Active rotation (template → tomogram).
    pub rotation: Rotation,
    /// Local correlation coefficient at the found orientation and position.
    pub score: f32,
    /// Refined centre `[x, y, z]` in voxels of the tomogram.
    pub centre_xyz: [f64; 3],
    /// Rotations scored in all.
    pub rotations_scored: usize,
}

/// The subvolume around `centre` (voxel indices `[z, y, x]`): its start and the centre's
/// position in it. The box (side `m` per axis, at most the tomogram's) is moved inside the
/// tomogram when the centre is near a face.
fn window(centre: [usize; 3], m: usize, dims: [usize; 3]) -> ([usize; 3], [usize; 3]) {
    let mut start = [0; 3];
    let mut local = [0; 3];
    for a in 0..3 {
        let side = m.min(dims[a]);
        let s = centre[a].saturating_sub(side / 2).min(dims[a] - side);
        start[a] = s;
        local[a] = centre[a] - s;
    }
    (start, local)
}

/// Best score and its rotation index at positions within `max_shift` voxels of `local`
/// (`[z, y, x]` in the subvolume). The subvolume holds every such position's template box unless
/// the tomogram ends first, where the search extends it by its mean as it does at any face.
fn best_near(
    maps: &crate::MatchMaps,
    local: [usize; 3],
    max_shift: usize,
) -> Option<(f32, u32, [usize; 3])> {
    let dims = maps.scores.dim();
    let dims = [dims.0, dims.1, dims.2];
    let r = max_shift as i64;
    let mut best: Option<(f32, u32, [usize; 3])> = None;
    for dz in -r..=r {
        for dy in -r..=r {
            for dx in -r..=r {
                if dz * dz + dy * dy + dx * dx > r * r {
                    continue;
                }
                let p = [
                    local[0] as i64 + dz,
                    local[1] as i64 + dy,
                    local[2] as i64 + dx,
                ];
                if p.iter().zip(dims).any(|(&v, n)| v < 0 || v >= n as i64) {
                    continue;
                }
                let q = [p[0] as usize, p[1] as usize, p[2] as usize];
                let s = maps.scores[q];
                if best.is_none_or(|(bs, _, _)| s > bs) {
                    best = Some((s, maps.best[q], q));
                }
            }
        }
    }
    best
}

/// Finds the orientation of the particle at `centre_xyz` (voxels `[x, y, z]`) in `tomo`
/// (`[z, y, x]`). `Ok(None)` only for an empty search (no position).
pub fn orient_particle(
    tomo: ArrayView3<f32>,
    template: &Template,
    centre_xyz: [f64; 3],
    opts: &OrientOptions,
) -> Result<Option<Oriented>, MatchError> {
    let b = template.side();
    let (dz, dy, dx) = tomo.dim();
    let dims = [dz, dy, dx];
    let centre = [
        centre_xyz[2].round().clamp(0.0, (dz - 1) as f64) as usize,
        centre_xyz[1].round().clamp(0.0, (dy - 1) as f64) as usize,
        centre_xyz[0].round().clamp(0.0, (dx - 1) as f64) as usize,
    ];
    let m = b + 2 * opts.max_shift_vox;
    let (start, local) = window(centre, m, dims);
    let side = |a: usize| m.min(dims[a]);
    let sub = tomo.slice(s![
        start[0]..start[0] + side(0),
        start[1]..start[1] + side(1),
        start[2]..start[2] + side(2)
    ]);
    let sub = sub.as_standard_layout();
    let search_opts = SearchOptions { tile: 4 * m };
    let mut rotations = search_rotations(opts.coarse_step_deg, opts.symmetry);
    let mut step = opts.coarse_step_deg;
    let mut scored = 0;
    let mut found: Option<(f32, Rotation, [usize; 3])> = None;
    loop {
        let maps = search(sub.view(), template, &rotations, &search_opts, &|_| {})?;
        scored += rotations.len();
        let Some((score, idx, pos)) = best_near(&maps, local, opts.max_shift_vox) else {
            return Ok(None);
        };
        let rot = rotations[idx as usize];
        if found.is_none_or(|(s, _, _)| score >= s) {
            found = Some((score, rot, pos));
        }
        if step <= opts.fine_step_deg + 1e-9 {
            break;
        }
        let centre_rot = found.map(|f| f.1).unwrap_or(rot);
        let next = (step / 2.0).max(opts.fine_step_deg);
        rotations = local_rotations(&centre_rot, step, next);
        step = next;
    }
    Ok(found.map(|(score, rotation, pos)| Oriented {
        rotation,
        score,
        centre_xyz: [
            (start[2] + pos[2]) as f64,
            (start[1] + pos[1]) as f64,
            (start[0] + pos[0]) as f64,
        ],
        rotations_scored: scored,
    }))
}
