//! Training targets from particle lists: label maps and instance maps.
//!
//! * A **label map** (`Volume<u8>`, `[z, y, x]`) holds 0 for background and, inside each particle,
//!   the label of its class (from the [`ClassTable`]).
//! * An **instance map** (`Volume<u32>`) holds, inside each particle, the particle's id: its 1-based
//!   position in the particle list (0 is background), as SHREC's `occupancy_mask.mrc` does. MRC has
//!   no 32-bit integer mode: writers store ids up to 65,535 as mode 6 (uint16) and larger ids as
//!   float32 (exact up to 2²⁴).
//!
//! A particle's footprint is either a **sphere** of its class radius
//! ([`ClassDef::radius_voxels`](capsid_core::ClassDef::radius_voxels), with the tomogram's voxel
//! size along x) or, in shapes mode, its class **template**, thresholded and rotated by the
//! particle's angles ([`ShapeTemplate`]). A voxel belongs to a sphere when the Euclidean distance
//! (in voxels) from the voxel centre to the particle centre is at most the radius; voxel centres
//! sit at integer coordinates.
//!
//! **Overlaps** go to the nearer centre: where footprints overlap, the voxel takes the label and id
//! of the particle whose centre is nearest in raw Euclidean distance (voxels; not normalised by the
//! radius). Exact ties go to the particle that comes first in the list. The result therefore does
//! not depend on threads: slices are filled in parallel, each one visiting particles in list order.
//!
//! Particle numbers in error messages are 1-based, like instance ids.

use capsid_core::classes::ClassTable;
use capsid_core::error::CoreError;
use capsid_core::particle::Particle;
use capsid_core::rotation::Rotation;
use capsid_core::volume::Volume;
use ndarray::{Array2, Array3, ArrayViewMut2, Axis};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// The grid a mask is drawn on: usually the tomogram's header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskGrid {
    /// Shape `[z, y, x]` in voxels.
    pub shape_zyx: [usize; 3],
    /// Voxel size `[x, y, z]` in Å (radii in Å are converted with the x value).
    pub voxel_size_a: [f32; 3],
    /// Origin `[x, y, z]` in Å, copied into the outputs.
    pub origin_a: [f32; 3],
}

impl MaskGrid {
    /// A grid of shape `[z, y, x]` with an isotropic voxel size in Å and a zero origin.
    pub fn new(shape_zyx: [usize; 3], voxel_size_a: f32) -> Self {
        Self {
            shape_zyx,
            voxel_size_a: [voxel_size_a; 3],
            origin_a: [0.0; 3],
        }
    }
}

/// What to do with a particle whose centre lies outside the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutsidePolicy {
    /// Fail, naming the particle and its coordinates.
    #[default]
    Error,
    /// Leave it out; its number is reported in [`Masks::skipped`].
    Skip,
}

/// Options of mask drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskOptions {
    /// Particles outside the grid: error (default) or skip.
    pub outside: OutsidePolicy,
    /// Also build the instance map (costs 4 bytes per voxel).
    pub instances: bool,
}

/// The maps drawn from one particle list.
#[derive(Debug, Clone, PartialEq)]
pub struct Masks {
    /// Class labels, `[z, y, x]`, 0 = background.
    pub labels: Volume<u8>,
    /// Particle ids (1-based list positions), `[z, y, x]`, 0 = background; present when asked for.
    pub instances: Option<Volume<u32>>,
    /// 0-based indices of particles left out because they lie outside the grid
    /// ([`OutsidePolicy::Skip`]).
    pub skipped: Vec<usize>,
}

/// How a template density becomes a binary shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TemplateLevel {
    /// Inside where the density exceeds half its maximum (a 0/1 mask gives its ones).
    HalfMax,
    /// Inside where the density exceeds this value.
    Value(f32),
}

/// A class template for shapes mode: a density map thresholded into a binary shape.
///
/// The template is thresholded first (inside where the density exceeds the level), then sampled
/// nearest-neighbour: a tomogram voxel at offset `d` (voxels, `[x, y, z]`) from a particle centre
/// is inside when the template voxel nearest to `Rᵀ · d · s + centre` is, where `R` is the
/// particle's active rotation (template → tomogram) and `s = tomogram voxel size / template voxel
/// size`. The template centre is voxel `floor(n / 2)` on each axis (RELION's box-centre
/// convention). Outside the template box counts as outside. Nearest-neighbour sampling of the
/// binary shape keeps the shape's volume under rotation even for thin or noisy templates, where
/// interpolating the density and then thresholding would erode it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeTemplate {
    /// Inside voxels, `[z, y, x]`.
    pub mask: Array3<bool>,
    /// Template voxel size in Å (≤ 0: same as the tomogram's).
    pub voxel_size_a: f64,
    /// The threshold that made the mask, in density units.
    pub level: f32,
    /// Template centre `[x, y, z]` in template voxels.
    pub centre_xyz: [f64; 3],
    /// Distance (template voxels) from the centre beyond which no sample can be inside.
    pub extent_vox: f64,
}

impl ShapeTemplate {
    /// Builds a template from a density `[z, y, x]` with voxel size `voxel_size_a` (Å; ≤ 0 when
    /// unknown) and a threshold. `name` is used in error messages (e.g. the template's path).
    pub fn new(
        density: Array3<f32>,
        voxel_size_a: f64,
        level: TemplateLevel,
        name: &str,
    ) -> Result<Self, CoreError> {
        if density.is_empty() {
            return Err(CoreError::Invalid(format!("template {name}: empty map")));
        }
        if density.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::Invalid(format!(
                "template {name}: map holds NaN or infinite values"
            )));
        }
        let level = match level {
            TemplateLevel::HalfMax => {
                0.5 * density.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
            }
            TemplateLevel::Value(v) => v,
        };
        let (nz, ny, nx) = density.dim();
        let centre_xyz = [(nx / 2) as f64, (ny / 2) as f64, (nz / 2) as f64];
        let mask = density.mapv(|v| v > level);
        let mut max_d2 = -1.0f64;
        for ((z, y, x), &inside) in mask.indexed_iter() {
            if inside {
                let d = [
                    x as f64 - centre_xyz[0],
                    y as f64 - centre_xyz[1],
                    z as f64 - centre_xyz[2],
                ];
                max_d2 = max_d2.max(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            }
        }
        if max_d2 < 0.0 {
            return Err(CoreError::Invalid(format!(
                "template {name}: no voxel above the level {level} (the shape would be empty)"
            )));
        }
        // A sample rounds to a voxel at most half a voxel diagonal away.
        let extent_vox = max_d2.sqrt() + 0.5 * 3f64.sqrt();
        Ok(Self {
            mask,
            voxel_size_a,
            level,
            centre_xyz,
            extent_vox,
        })
    }

    /// Whether the template voxel nearest to `[x, y, z]` (template voxels) is inside.
    fn contains(&self, p: [f64; 3]) -> bool {
        let (nz, ny, nx) = self.mask.dim();
        let r = p.map(|v| (v + 0.5).floor());
        if r.iter()
            .zip([nx, ny, nz])
            .any(|(&v, n)| v < 0.0 || v >= n as f64)
        {
            return false;
        }
        self.mask[[r[2] as usize, r[1] as usize, r[0] as usize]]
    }
}

/// One particle ready to draw.
struct Placed<'t> {
    /// 1-based id.
    id: u32,
    label: u8,
    centre_xyz: [f64; 3],
    /// Bounding radius in tomogram voxels.
    reach: f64,
    footprint: Footprint<'t>,
}

enum Footprint<'t> {
    /// Squared radius in voxels².
    Sphere { r2: f64 },
    /// Template with `Rᵀ` and the tomogram → template voxel scale.
    Shape {
        template: &'t ShapeTemplate,
        rt: Rotation,
        scale: f64,
    },
}

impl Placed<'_> {
    /// Whether the voxel at offset `d = voxel - centre` (`[x, y, z]` voxels, squared length `d2`)
    /// lies in the footprint.
    #[inline]
    fn covers(&self, d: [f64; 3], d2: f64) -> bool {
        match &self.footprint {
            Footprint::Sphere { r2 } => d2 <= *r2,
            Footprint::Shape {
                template,
                rt,
                scale,
            } => {
                let q = rt.apply(d);
                let c = template.centre_xyz;
                let p = [
                    q[0] * scale + c[0],
                    q[1] * scale + c[1],
                    q[2] * scale + c[2],
                ];
                template.contains(p)
            }
        }
    }
}

/// The shared "too large" check for the maps built here (u8 labels, f32 distances, u32 ids).
fn check_grid(grid: &MaskGrid, opts: &MaskOptions) -> Result<(), CoreError> {
    let bytes = if opts.instances { 9 } else { 5 };
    capsid_core::volume::check_volume_size("mask", grid.shape_zyx, bytes).map(|_| ())
}

/// Draws spheres of each particle's class radius: label map (and instance map when
/// `opts.instances`). See the module docs for the overlap rule.
///
/// Errors: a class name missing from `classes` (the error names it), a particle outside the grid
/// under [`OutsidePolicy::Error`] (the error gives its number and coordinates).
pub fn sphere_masks(
    grid: &MaskGrid,
    particles: &[Particle],
    classes: &ClassTable,
    opts: &MaskOptions,
) -> Result<Masks, CoreError> {
    check_grid(grid, opts)?;
    let voxel_size_a = grid.voxel_size_a[0] as f64;
    let (placed, skipped) = place(grid, particles, classes, opts, |_, class| {
        let r = class.radius_voxels(voxel_size_a);
        Ok((r, Footprint::Sphere { r2: r * r }))
    })?;
    Ok(draw(grid, &placed, skipped, opts.instances))
}

/// Draws each particle's class template rotated by the particle's angles (DeepFinder's "shapes"
/// mode). `templates` maps class names to templates.
///
/// Errors as [`sphere_masks`], plus: a particle without angles, or of a class with no template.
pub fn shape_masks(
    grid: &MaskGrid,
    particles: &[Particle],
    classes: &ClassTable,
    templates: &BTreeMap<String, ShapeTemplate>,
    opts: &MaskOptions,
) -> Result<Masks, CoreError> {
    check_grid(grid, opts)?;
    let tomo_vs = grid.voxel_size_a[0] as f64;
    let (placed, skipped) = place(grid, particles, classes, opts, |i, class| {
        let p = &particles[i];
        let template = templates.get(&class.name).ok_or_else(|| {
            CoreError::Invalid(format!(
                "class '{}' has no template (shapes mode needs one per class)",
                class.name
            ))
        })?;
        let angles = p.angles.ok_or_else(|| {
            CoreError::Invalid(format!(
                "particle {} (class '{}') has no angles (shapes mode needs an orientation for every particle)",
                i + 1,
                p.class
            ))
        })?;
        let scale = if tomo_vs > 0.0 && template.voxel_size_a > 0.0 {
            tomo_vs / template.voxel_size_a
        } else {
            1.0
        };
        let reach = template.extent_vox / scale;
        Ok((
            reach,
            Footprint::Shape {
                template,
                rt: angles.rotation().transpose(),
                scale,
            },
        ))
    })?;
    Ok(draw(grid, &placed, skipped, opts.instances))
}

/// Label map with spheres (see [`sphere_masks`]).
pub fn label_map(
    grid: &MaskGrid,
    particles: &[Particle],
    classes: &ClassTable,
) -> Result<Volume<u8>, CoreError> {
    Ok(sphere_masks(grid, particles, classes, &MaskOptions::default())?.labels)
}

/// Instance map with spheres: 1-based particle ids (see [`sphere_masks`]).
pub fn instance_map(
    grid: &MaskGrid,
    particles: &[Particle],
    classes: &ClassTable,
) -> Result<Volume<u32>, CoreError> {
    let opts = MaskOptions {
        instances: true,
        ..MaskOptions::default()
    };
    sphere_masks(grid, particles, classes, &opts)?
        .instances
        .ok_or_else(|| CoreError::Invalid("instance map was not built".into()))
}

/// Checks particles and resolves their classes; `footprint(index, class)` gives the bounding
/// radius and footprint of a particle.
fn place<'t, F>(
    grid: &MaskGrid,
    particles: &[Particle],
    classes: &ClassTable,
    opts: &MaskOptions,
    mut footprint: F,
) -> Result<(Vec<Placed<'t>>, Vec<usize>), CoreError>
where
    F: FnMut(usize, &capsid_core::classes::ClassDef) -> Result<(f64, Footprint<'t>), CoreError>,
{
    if particles.len() >= u32::MAX as usize {
        return Err(CoreError::Invalid(format!(
            "too many particles ({})",
            particles.len()
        )));
    }
    let [nz, ny, nx] = grid.shape_zyx;
    let inside = |v: f64, n: usize| v >= -0.5 && v < n as f64 - 0.5;
    let mut placed = Vec::with_capacity(particles.len());
    let mut skipped = Vec::new();
    for (i, p) in particles.iter().enumerate() {
        let class = classes.get(&p.class)?;
        if !(inside(p.x, nx) && inside(p.y, ny) && inside(p.z, nz)) {
            match opts.outside {
                OutsidePolicy::Skip => {
                    skipped.push(i);
                    continue;
                }
                OutsidePolicy::Error => {
                    return Err(CoreError::Invalid(format!(
                    "particle {} (class '{}') at x={}, y={}, z={} voxels lies outside the volume \
                         (x×y×z = {nx}×{ny}×{nz} voxels)",
                    i + 1,
                    p.class,
                    p.x,
                    p.y,
                    p.z
                )))
                }
            }
        }
        let (reach, fp) = footprint(i, class)?;
        placed.push(Placed {
            id: i as u32 + 1,
            label: class.label,
            centre_xyz: [p.x, p.y, p.z],
            reach,
            footprint: fp,
        });
    }
    Ok((placed, skipped))
}

/// Inclusive integer range `[ceil(c - r), floor(c + r)]` clipped to `0..n`; `None` when empty.
/// The range is widened by 1e-9 so that rounding in `r` never drops a voxel on the boundary
/// (callers test membership exactly).
fn span(c: f64, r: f64, n: usize) -> Option<(usize, usize)> {
    let lo = (c - r - 1e-9).ceil().max(0.0);
    let hi = (c + r + 1e-9).floor().min(n as f64 - 1.0);
    (lo <= hi).then_some((lo as usize, hi as usize))
}

/// Fills the maps slice by slice (in parallel); within a slice particles are visited in list order.
fn draw(grid: &MaskGrid, placed: &[Placed], skipped: Vec<usize>, instances: bool) -> Masks {
    let [nz, ny, nx] = grid.shape_zyx;
    // Particles touching each z slice, in list order.
    let mut by_z: Vec<Vec<u32>> = vec![Vec::new(); nz];
    for (k, p) in placed.iter().enumerate() {
        if let Some((z0, z1)) = span(p.centre_xyz[2], p.reach, nz) {
            for list in &mut by_z[z0..=z1] {
                list.push(k as u32);
            }
        }
    }
    let mut labels = Array3::<u8>::zeros((nz, ny, nx));
    let mut ids = if instances {
        Some(Array3::<u32>::zeros((nz, ny, nx)))
    } else {
        None
    };
    // Squared distance of the current owner; only meaningful where the label is not 0.
    let new_buf = || Array2::<f64>::zeros((ny, nx));
    match &mut ids {
        Some(ids) => labels
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(ids.axis_iter_mut(Axis(0)).into_par_iter())
            .enumerate()
            .for_each_init(new_buf, |buf, (z, (lab, inst))| {
                fill_slice(z, &by_z[z], placed, lab, Some(inst), buf)
            }),
        None => labels
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each_init(new_buf, |buf, (z, lab)| {
                fill_slice(z, &by_z[z], placed, lab, None, buf)
            }),
    }
    Masks {
        labels: Volume {
            data: labels,
            voxel_size_a: grid.voxel_size_a,
            origin_a: grid.origin_a,
        },
        instances: ids.map(|data| Volume {
            data,
            voxel_size_a: grid.voxel_size_a,
            origin_a: grid.origin_a,
        }),
        skipped,
    }
}

/// Draws the particles `which` (indices into `placed`, list order) into slice `z`.
fn fill_slice(
    z: usize,
    which: &[u32],
    placed: &[Placed],
    mut labels: ArrayViewMut2<u8>,
    mut ids: Option<ArrayViewMut2<u32>>,
    best_d2: &mut Array2<f64>,
) {
    let (ny, nx) = labels.dim();
    for &k in which {
        let p = &placed[k as usize];
        let [cx, cy, cz] = p.centre_xyz;
        let dz = z as f64 - cz;
        let rr = p.reach * p.reach - dz * dz;
        if rr < 0.0 {
            continue;
        }
        let ry = rr.sqrt();
        let Some((y0, y1)) = span(cy, ry, ny) else {
            continue;
        };
        for y in y0..=y1 {
            let dy = y as f64 - cy;
            let rx2 = rr - dy * dy;
            if rx2 < 0.0 {
                continue;
            }
            let Some((x0, x1)) = span(cx, rx2.sqrt(), nx) else {
                continue;
            };
            for x in x0..=x1 {
                let dx = x as f64 - cx;
                let d2 = dx * dx + dy * dy + dz * dz;
                if !p.covers([dx, dy, dz], d2) {
                    continue;
                }
                let owner = labels[[y, x]];
                if owner == 0 || d2 < best_d2[[y, x]] {
                    labels[[y, x]] = p.label;
                    best_d2[[y, x]] = d2;
                    if let Some(ids) = ids.as_mut() {
                        ids[[y, x]] = p.id;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::rotation::EulerAngles;
    use std::path::Path;

    fn table() -> ClassTable {
        ClassTable::from_toml_str(
            "[[class]]\nname='big'\nlabel=1\nradius_a=40.0\n[[class]]\nname='small'\nlabel=2\nradius_vox=2.0\n",
            Path::new("c.toml"),
        )
        .unwrap()
    }

    /// Reference: every voxel checked against every particle.
    fn brute_force(grid: &MaskGrid, ps: &[Particle], t: &ClassTable) -> (Array3<u8>, Array3<u32>) {
        let [nz, ny, nx] = grid.shape_zyx;
        let mut lab = Array3::<u8>::zeros((nz, ny, nx));
        let mut ids = Array3::<u32>::zeros((nz, ny, nx));
        for ((z, y, x), l) in lab.indexed_iter_mut() {
            let mut best = f64::INFINITY;
            for (i, p) in ps.iter().enumerate() {
                let c = t.get(&p.class).unwrap();
                let r = c.radius_voxels(grid.voxel_size_a[0] as f64);
                let d2 =
                    (x as f64 - p.x).powi(2) + (y as f64 - p.y).powi(2) + (z as f64 - p.z).powi(2);
                if d2 <= r * r && d2 < best {
                    best = d2;
                    *l = c.label;
                    ids[[z, y, x]] = i as u32 + 1;
                }
            }
        }
        (lab, ids)
    }

    #[test]
    fn sphere_centre_and_border_voxels() {
        let grid = MaskGrid::new([20, 20, 20], 10.0); // big: radius 4 voxels
        let ps = vec![Particle::new("big", 10.0, 10.0, 10.0)];
        let m = label_map(&grid, &ps, &table()).unwrap();
        assert_eq!(m.data[[10, 10, 10]], 1);
        assert_eq!(
            m.data[[10, 10, 14]],
            1,
            "distance exactly the radius is inside"
        );
        assert_eq!(m.data[[10, 10, 15]], 0);
        assert_eq!(m.data[[14, 10, 10]], 1);
        assert_eq!(m.data[[10, 13, 13]], 0, "distance 4.24 > 4");
        assert_eq!(m.data[[12, 12, 12]], 1, "distance 3.46");
        // Voxel count of a radius-4 ball on the integer grid is 257.
        assert_eq!(m.data.iter().filter(|&&v| v == 1).count(), 257);
        assert_eq!(m.voxel_size_a, [10.0; 3]);
    }

    #[test]
    fn overlap_goes_to_nearer_centre() {
        let grid = MaskGrid::new([12, 12, 24], 10.0);
        // big (r = 4) at x=8, small (r = 2) at x=11: they overlap on x = 9..=12 along y=z=6.
        let ps = vec![
            Particle::new("big", 8.0, 6.0, 6.0),
            Particle::new("small", 11.0, 6.0, 6.0),
        ];
        let m = instance_map(&grid, &ps, &table()).unwrap();
        let l = label_map(&grid, &ps, &table()).unwrap();
        // x=9: d(big)=1, d(small)=2 → big. x=10: 2 vs 1 → small. x=12: 4 vs 1 → small.
        assert_eq!(m.data[[6, 6, 9]], 1);
        assert_eq!(m.data[[6, 6, 10]], 2);
        assert_eq!(m.data[[6, 6, 12]], 2);
        assert_eq!(l.data[[6, 6, 10]], 2);
        assert_eq!(l.data[[6, 6, 9]], 1);
        // Tie (x = 9.5 midpoint is not a voxel; use two equal spheres at x=4 and x=8: x=6 ties).
        let ps = vec![
            Particle::new("small", 4.0, 6.0, 6.0),
            Particle::new("small", 8.0, 6.0, 6.0),
        ];
        let m = instance_map(&grid, &ps, &table()).unwrap();
        assert_eq!(m.data[[6, 6, 6]], 1, "ties go to the earlier particle");
        let ps_rev: Vec<_> = ps.iter().rev().cloned().collect();
        let m = instance_map(&grid, &ps_rev, &table()).unwrap();
        assert_eq!(
            m.data[[6, 6, 6]],
            1,
            "ties go to the earlier particle (reversed list)"
        );
        assert_eq!(m.data[[6, 6, 4]], 2);
    }

    #[test]
    fn matches_brute_force_and_is_deterministic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let grid = MaskGrid::new([17, 23, 29], 10.0);
        let ps: Vec<Particle> = (0..40)
            .map(|i| {
                let class = if i % 3 == 0 { "big" } else { "small" };
                Particle::new(
                    class,
                    rng.gen_range(-0.5..28.4),
                    rng.gen_range(-0.5..22.4),
                    rng.gen_range(-0.5..16.4),
                )
            })
            .collect();
        let t = table();
        let opts = MaskOptions {
            instances: true,
            ..Default::default()
        };
        let a = sphere_masks(&grid, &ps, &t, &opts).unwrap();
        let (lab, ids) = brute_force(&grid, &ps, &t);
        assert_eq!(a.labels.data, lab);
        assert_eq!(a.instances.as_ref().unwrap().data, ids);
        assert!(lab.iter().any(|&v| v == 1) && lab.iter().any(|&v| v == 2));
        // Same result on a single thread.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| sphere_masks(&grid, &ps, &t, &opts).unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn errors_name_class_and_particle() {
        let grid = MaskGrid::new([10, 10, 10], 10.0);
        let e = label_map(&grid, &[Particle::new("ribo", 1.0, 1.0, 1.0)], &table())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown class 'ribo'"), "{e}");
        let ps = vec![
            Particle::new("small", 1.0, 1.0, 1.0),
            Particle::new("small", 3.0, 12.0, 2.0),
        ];
        let e = label_map(&grid, &ps, &table()).unwrap_err().to_string();
        assert!(
            e.contains("particle 2") && e.contains("y=12") && e.contains("outside"),
            "{e}"
        );
        let nan = vec![Particle::new("small", f64::NAN, 1.0, 1.0)];
        assert!(label_map(&grid, &nan, &table()).is_err());
        let opts = MaskOptions {
            outside: OutsidePolicy::Skip,
            instances: true,
        };
        let m = sphere_masks(&grid, &ps, &table(), &opts).unwrap();
        assert_eq!(m.skipped, vec![1]);
        assert_eq!(m.instances.unwrap().data[[1, 1, 1]], 1);
        // A sphere near the border is clipped, not an error.
        let m = label_map(&grid, &[Particle::new("big", 0.0, 9.0, 0.0)], &table()).unwrap();
        assert_eq!(m.data[[0, 9, 0]], 1);
    }

    /// An L-shaped template in the z = centre plane: arm along +x (3 voxels) and one voxel at +y.
    fn l_template() -> ShapeTemplate {
        let mut d = Array3::<f32>::zeros((7, 7, 7));
        for x in 3..=6 {
            d[[3, 3, x]] = 1.0;
        }
        d[[3, 4, 3]] = 1.0;
        d[[4, 3, 3]] = 1.0; // one voxel at +z
        ShapeTemplate::new(d, 10.0, TemplateLevel::HalfMax, "l").unwrap()
    }

    #[test]
    fn shape_mask_rotated_90_about_z() {
        let grid = MaskGrid::new([16, 16, 16], 10.0);
        let mut templates = BTreeMap::new();
        templates.insert("small".to_string(), l_template());
        let mut p = Particle::new("small", 8.0, 8.0, 8.0);
        p.angles = Some(EulerAngles::zxz(90.0, 0.0, 0.0)); // Rz(90°): +x → +y, +y → -x
        let m = shape_masks(
            &grid,
            &[p.clone()],
            &table(),
            &templates,
            &MaskOptions::default(),
        )
        .unwrap();
        let mut expected = Array3::<u8>::zeros((16, 16, 16));
        for d in 0..=3 {
            expected[[8, 8 + d, 8]] = 2; // arm now along +y
        }
        expected[[8, 8, 7]] = 2; // the +y voxel went to -x
        expected[[9, 8, 8]] = 2; // +z stays
        assert_eq!(m.labels.data, expected);
        // Identity rotation keeps the template as it is.
        p.angles = Some(EulerAngles::zxz(0.0, 0.0, 0.0));
        let m = shape_masks(
            &grid,
            &[p.clone()],
            &table(),
            &templates,
            &MaskOptions::default(),
        )
        .unwrap();
        assert_eq!(m.labels.data[[8, 8, 11]], 2);
        assert_eq!(m.labels.data[[8, 9, 8]], 2);
        assert_eq!(m.labels.data.iter().filter(|&&v| v != 0).count(), 6);
    }

    #[test]
    fn shape_template_voxel_size_scales() {
        // Template at 5 Å per voxel on a 10 Å tomogram: the 3-voxel arm becomes 1.5 voxels.
        let mut t = l_template();
        t.voxel_size_a = 5.0;
        let mut templates = BTreeMap::new();
        templates.insert("small".to_string(), t);
        let mut p = Particle::new("small", 8.0, 8.0, 8.0);
        p.angles = Some(EulerAngles::zxz(0.0, 0.0, 0.0));
        let m = shape_masks(
            &MaskGrid::new([16, 16, 16], 10.0),
            &[p],
            &table(),
            &templates,
            &MaskOptions::default(),
        )
        .unwrap();
        assert_eq!(m.labels.data[[8, 8, 9]], 2);
        assert_eq!(m.labels.data[[8, 8, 10]], 0);
    }

    #[test]
    fn shape_mode_errors() {
        let grid = MaskGrid::new([16, 16, 16], 10.0);
        let mut templates = BTreeMap::new();
        templates.insert("small".to_string(), l_template());
        let p = Particle::new("small", 8.0, 8.0, 8.0);
        let e = shape_masks(&grid, &[p], &table(), &templates, &MaskOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("particle 1") && e.contains("no angles"), "{e}");
        let mut p = Particle::new("big", 8.0, 8.0, 8.0);
        p.angles = Some(EulerAngles::zxz(0.0, 0.0, 0.0));
        let e = shape_masks(&grid, &[p], &table(), &templates, &MaskOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'big' has no template"), "{e}");
        let e = ShapeTemplate::new(
            Array3::zeros((3, 3, 3)),
            1.0,
            TemplateLevel::Value(0.5),
            "t.mrc",
        )
        .unwrap_err();
        assert!(e.to_string().contains("t.mrc"));
    }
}
