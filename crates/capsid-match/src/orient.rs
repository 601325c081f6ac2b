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

/// The box of side `m` (at most the tomogram's, per axis) around the voxel nearest `centre_xyz`
/// (`[x, y, z]` voxels) of `tomo` (`[z, y, x]`), moved inside the tomogram near a face: the box,
/// its start and the centre's position in it (both `[z, y, x]`).
fn subvolume(
    tomo: ArrayView3<f32>,
    centre_xyz: [f64; 3],
    m: usize,
) -> (ndarray::Array3<f32>, [usize; 3], [usize; 3]) {
    let (dz, dy, dx) = tomo.dim();
    let dims = [dz, dy, dx];
    let centre = [
        centre_xyz[2].round().clamp(0.0, (dz - 1) as f64) as usize,
        centre_xyz[1].round().clamp(0.0, (dy - 1) as f64) as usize,
        centre_xyz[0].round().clamp(0.0, (dx - 1) as f64) as usize,
    ];
    let (start, local) = window(centre, m, dims);
    let side = |a: usize| m.min(dims[a]);
    let sub = tomo.slice(s![
        start[0]..start[0] + side(0),
        start[1]..start[1] + side(1),
        start[2]..start[2] + side(2)
    ]);
    (sub.to_owned(), start, local)
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
    let m = b + 2 * opts.max_shift_vox;
    let (sub, start, local) = subvolume(tomo, centre_xyz, m);
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

/// The local correlation coefficient of `template` unturned at the voxel nearest `centre_xyz`
/// (`[x, y, z]` voxels) of `tomo` (`[z, y, x]`): for a rotation-invariant template (e.g.
/// [`Template::spherical_average`]) the score of "a blob of this radial profile here".
pub fn score_at(
    tomo: ArrayView3<f32>,
    template: &Template,
    centre_xyz: [f64; 3],
) -> Result<f32, MatchError> {
    let b = template.side();
    let (sub, _, local) = subvolume(tomo, centre_xyz, b);
    let maps = search(
        sub.view(),
        template,
        &[Rotation::identity()],
        &SearchOptions { tile: 4 * b },
        &|_| {},
    )?;
    Ok(maps.scores[[local[0], local[1], local[2]]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateFilter;
    use ndarray::Array3;

    /// Two Gaussian blobs of different sizes on the x axis about the centre of a cube of side
    /// `b`: an asymmetric "complex".
    fn dumbbell(b: usize) -> Array3<f32> {
        let c = (b / 2) as f32;
        Array3::from_shape_fn((b, b, b), |(z, y, x)| {
            let g = |cx: f32, s: f32, a: f32| {
                let d2 = (x as f32 - cx).powi(2) + (y as f32 - c).powi(2) + (z as f32 - c).powi(2);
                a * (-d2 / (2.0 * s * s)).exp()
            };
            g(c - 3.0, 2.0, 1.0) + g(c + 4.0, 1.5, 0.7)
        })
    }

    /// `object` (a cube) added into a zero tomogram of side `n` centred at voxel `at` (all axes).
    fn tomogram_with(object: &Array3<f32>, n: usize, at: usize) -> Array3<f32> {
        let b = object.dim().0;
        let mut t = Array3::<f32>::zeros((n, n, n));
        let o = at - b / 2;
        t.slice_mut(s![o..o + b, o..o + b, o..o + b]).assign(object);
        t
    }

    #[test]
    fn shape_score_is_high_for_the_particle_and_not_for_its_radial_twin() {
        let b = 21;
        let density = dumbbell(b);
        let t = Template::new(&density, None, false, &TemplateFilter::default()).unwrap();
        let sph = t.spherical_average();

        let n = 40;
        let at = 20usize;
        let centre = [at as f64; 3];
        // The particle itself, unturned: the template fits it (≈ 1), its spherical average less.
        let tomo = tomogram_with(&density, n, at);
        let cc = score_at(tomo.view(), &t, centre).unwrap();
        let radial = score_at(tomo.view(), &sph, centre).unwrap();
        assert!(cc > 0.99, "{cc}");
        assert!(
            cc - radial > 0.1,
            "shape score {} (cc {cc}, radial {radial})",
            cc - radial
        );
        // Its twin of the same radial profile and mass but no shape (the spherical average
        // itself, as a density): the template fits it worse than the spherical average does.
        let mut twin = Array3::<f32>::zeros((b, b, b));
        let mut probe = vec![0.0f32; b * b * b];
        sph.prepare(
            &capsid_core::Rotation::identity(),
            &mut probe,
            None,
            &mut sph.scratch(),
        )
        .unwrap();
        // (`prepare` normalises it under the mask; the local correlation does not see that.)
        twin.iter_mut().zip(&probe).for_each(|(o, v)| *o = *v);
        let tomo = tomogram_with(&twin, n, at);
        let cc = score_at(tomo.view(), &t, centre).unwrap();
        let radial = score_at(tomo.view(), &sph, centre).unwrap();
        assert!(radial > 0.99, "{radial}");
        assert!(cc - radial < -0.05, "twin's shape score {}", cc - radial);
    }
}
