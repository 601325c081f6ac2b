//! The sample: a slab of solvent in a volume, crowded with particles placed without overlap
//! (judged on their actual masks, not bounding spheres), plus optional vesicles and gold beads.
//!
//! Placement: classes are placed largest first; each particle draws one uniform random rotation
//! (recorded as ZXZ Euler angles, rounded to 1/1000 degree, and the rounded angles are what is
//! used, so files and volume agree exactly), then tries up to `max_attempts` random integer
//! positions where its whole mask lies inside the volume and the slab and touches no voxel taken
//! by another particle, vesicle or bead. Particles that find no place are reported, not faked.

mod distractor;

pub use distractor::{GoldConfig, VesicleConfig};

use crate::density::sigma_for_resolution_a;
use crate::library::ClassModel;
use capsid_core::{EulerAngles, EulerConvention, Rotation};
use distractor::{cube_mask, place_distractor, radial_cube};
use ndarray::Array3;
use rand::Rng;

/// Occupancy value of voxels taken by vesicles and gold beads (not particles: written as 0).
pub const DISTRACTOR: u32 = u32::MAX;

/// One particle placed in the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedParticle {
    /// Particle id 1..P (the value of its voxels in the occupancy mask).
    pub id: u32,
    /// Index of its class in the class list (label = index + 1).
    pub class_index: usize,
    /// Centre `[x, y, z]` in voxels (integers: the template centre sits on a voxel centre).
    pub center_xyz: [usize; 3],
    /// ZXZ Euler angles in degrees as recorded in the files.
    pub angles: EulerAngles,
    /// Number of voxels in its mask.
    pub mask_voxels: usize,
}

impl PlacedParticle {
    /// The active rotation (template → tomogram) of the recorded angles.
    pub fn rotation(&self) -> Rotation {
        self.angles.rotation()
    }
}

/// The noise-free sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Density `[z, y, x]` in protein units (the "grand model"), without the solvent.
    pub density: Array3<f32>,
    /// `[z, y, x]`: 0 free, 1..P particle id, [`DISTRACTOR`] for vesicles and beads.
    pub occupancy: Array3<u32>,
    /// Particles in id order.
    pub particles: Vec<PlacedParticle>,
    /// Number of particles asked for, per class.
    pub requested: Vec<usize>,
    /// z range `[lo, hi)` of the solvent slab in voxels.
    pub slab_z: (usize, usize),
}

/// What [`place_sample`] needs besides the classes.
#[derive(Debug, Clone)]
pub struct PlacementParams {
    /// Volume shape `[z, y, x]`.
    pub shape_zyx: [usize; 3],
    /// Voxel size in Å.
    pub voxel_size_a: f64,
    /// Slab thickness in voxels (centred in z).
    pub slab_thickness_vox: usize,
    /// Particles per class (same order as the classes).
    pub counts: Vec<usize>,
    /// Position tries per particle.
    pub max_attempts: usize,
    /// Resolution (Å) that blurs bead and membrane edges.
    pub resolution_a: f64,
    pub vesicles: VesicleConfig,
    pub gold: GoldConfig,
}

/// A template turned into place: its values on a cube of side `n` and the offsets of its mask
/// voxels from the centre.
struct Turned {
    values: Array3<f32>,
    mask: Vec<[i64; 3]>, // [dz, dy, dx]
    lo: [i64; 3],        // min offset per axis (z, y, x)
    hi: [i64; 3],        // max offset
}

fn turn(model: &ClassModel, rot: &Rotation) -> Turned {
    let values = model.rotated(rot);
    let h = model.half() as i64;
    let mut mask = Vec::new();
    let (mut lo, mut hi) = ([i64::MAX; 3], [i64::MIN; 3]);
    for ((z, y, x), &v) in values.indexed_iter() {
        if v >= model.mask_threshold {
            let d = [z as i64 - h, y as i64 - h, x as i64 - h];
            for a in 0..3 {
                lo[a] = lo[a].min(d[a]);
                hi[a] = hi[a].max(d[a]);
            }
            mask.push(d);
        }
    }
    // Check the centre and outer voxels first: conflicts are found sooner.
    mask.sort_by_key(|d| std::cmp::Reverse(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]));
    Turned {
        values,
        mask,
        lo,
        hi,
    }
}

/// A random centre `[z, y, x]` whose offsets `lo..=hi` stay inside `[min, max]` per axis, or None.
fn random_centre<R: Rng>(
    rng: &mut R,
    lo: [i64; 3],
    hi: [i64; 3],
    min: [i64; 3],
    max: [i64; 3],
) -> Option<[i64; 3]> {
    let mut c = [0i64; 3];
    for a in 0..3 {
        let (from, to) = (min[a] - lo[a], max[a] - hi[a]);
        if from > to {
            return None;
        }
        c[a] = rng.gen_range(from..=to);
    }
    Some(c)
}

fn fits(occ: &Array3<u32>, mask: &[[i64; 3]], c: [i64; 3]) -> bool {
    mask.iter().all(|d| {
        occ[[
            (c[0] + d[0]) as usize,
            (c[1] + d[1]) as usize,
            (c[2] + d[2]) as usize,
        ]] == 0
    })
}

/// Adds `values` (a cube centred on `c`, `[z, y, x]`) into `density`, clipped to the volume.
fn add_cube(density: &mut Array3<f32>, values: &Array3<f32>, c: [i64; 3]) {
    let (nz, ny, nx) = density.dim();
    let h = (values.dim().0 as i64 - 1) / 2;
    for ((z, y, x), &v) in values.indexed_iter() {
        if v == 0.0 {
            continue;
        }
        let (zz, yy, xx) = (
            c[0] + z as i64 - h,
            c[1] + y as i64 - h,
            c[2] + x as i64 - h,
        );
        if zz >= 0
            && yy >= 0
            && xx >= 0
            && (zz as usize) < nz
            && (yy as usize) < ny
            && (xx as usize) < nx
        {
            density[[zz as usize, yy as usize, xx as usize]] += v;
        }
    }
}

/// Places vesicles, beads and particles; returns the sample. Deterministic for a given `rng`.
pub fn place_sample<R: Rng>(classes: &[ClassModel], p: &PlacementParams, rng: &mut R) -> Sample {
    let [nz, ny, nx] = p.shape_zyx;
    let mut density = Array3::<f32>::zeros((nz, ny, nx));
    let mut occ = Array3::<u32>::zeros((nz, ny, nx));
    let t = p.slab_thickness_vox.min(nz);
    let slab_z = ((nz - t) / 2, (nz - t) / 2 + t);
    let min = [slab_z.0 as i64, 0, 0];
    let max = [slab_z.1 as i64 - 1, ny as i64 - 1, nx as i64 - 1];
    let sigma_v = sigma_for_resolution_a(p.resolution_a) / p.voxel_size_a;
    let erfc_step = |r: f64, edge: f64| {
        0.5 * libm::erfc((r - edge) / (sigma_v.max(0.3) * std::f64::consts::SQRT_2))
    };

    // Vesicles: two Gaussian leaflets 35 Å apart (σ 6 Å, widened by the resolution).
    for _ in 0..p.vesicles.count {
        let r_a = rng.gen_range(
            p.vesicles.radius_min_a..=p.vesicles.radius_max_a.max(p.vesicles.radius_min_a),
        );
        let r = r_a / p.voxel_size_a;
        let leaflet = 17.5 / p.voxel_size_a;
        let sig = ((6.0f64 / p.voxel_size_a).powi(2) + sigma_v.powi(2)).sqrt();
        let cube = radial_cube(r + leaflet + 4.0 * sig, |d| {
            let g = |m: f64| (-(d - m).powi(2) / (2.0 * sig * sig)).exp();
            // Peak density 1 per leaflet at 10 Å voxels is about a lipid head-group layer.
            0.8 * (g(r - leaflet) + g(r + leaflet))
        });
        let turned = cube_mask(&cube, 0.25);
        place_distractor(
            &mut density,
            &mut occ,
            &turned,
            rng,
            p.max_attempts,
            min,
            max,
        );
    }
    // Gold beads: solid spheres with an edge blurred by the resolution.
    for _ in 0..p.gold.count {
        let r = p.gold.radius_a / p.voxel_size_a;
        let cube = radial_cube(r + 4.0 * sigma_v.max(0.3), |d| {
            p.gold.density * erfc_step(d, r)
        });
        let turned = cube_mask(&cube, (0.3 * p.gold.density) as f32);
        place_distractor(
            &mut density,
            &mut occ,
            &turned,
            rng,
            p.max_attempts,
            min,
            max,
        );
    }

    // Particles, largest class first (by mask volume), in class order within ties.
    let mut order: Vec<usize> = (0..classes.len()).collect();
    let sizes: Vec<usize> = classes.iter().map(|c| c.mask_voxels()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut particles = Vec::new();
    for &ci in &order {
        let model = &classes[ci];
        for _ in 0..p.counts.get(ci).copied().unwrap_or(0) {
            let drawn = Rotation::random_uniform(rng).to_euler(EulerConvention::Zxz);
            let angles = EulerAngles::zxz(
                round3(drawn.angles_deg[0]),
                round3(drawn.angles_deg[1]),
                round3(drawn.angles_deg[2]),
            );
            let turned = turn(model, &angles.rotation());
            if turned.mask.is_empty() {
                continue;
            }
            for _ in 0..p.max_attempts {
                let Some(c) = random_centre(rng, turned.lo, turned.hi, min, max) else {
                    break;
                };
                if fits(&occ, &turned.mask, c) {
                    let id = particles.len() as u32 + 1;
                    for d in &turned.mask {
                        occ[[
                            (c[0] + d[0]) as usize,
                            (c[1] + d[1]) as usize,
                            (c[2] + d[2]) as usize,
                        ]] = id;
                    }
                    add_cube(&mut density, &turned.values, c);
                    particles.push(PlacedParticle {
                        id,
                        class_index: ci,
                        center_xyz: [c[2] as usize, c[1] as usize, c[0] as usize],
                        angles,
                        mask_voxels: turned.mask.len(),
                    });
                    break;
                }
            }
        }
    }
    Sample {
        density,
        occupancy: occ,
        particles,
        requested: p.counts.clone(),
        slab_z,
    }
}

fn round3(v: f64) -> f64 {
    let r = (v * 1000.0).round() / 1000.0;
    if r == 0.0 {
        0.0 // no "-0.000" in files
    } else {
        r
    }
}

impl Sample {
    /// Class label map `[z, y, x]`: 0 background, class index + 1 inside each particle's mask.
    pub fn class_mask(&self) -> Array3<u8> {
        let class_of: Vec<u8> = std::iter::once(0)
            .chain(
                self.particles
                    .iter()
                    .map(|p| (p.class_index + 1).min(255) as u8),
            )
            .collect();
        self.occupancy.mapv(|id| {
            if id == DISTRACTOR {
                0
            } else {
                class_of[id as usize]
            }
        })
    }

    /// Class label map `[z, y, x]` with `labels[class index]` inside each particle's mask (0
    /// for decoys), 0 elsewhere.
    pub fn class_mask_with(&self, labels: &[u8]) -> Array3<u8> {
        let class_of: Vec<u8> = std::iter::once(0)
            .chain(
                self.particles
                    .iter()
                    .map(|p| labels.get(p.class_index).copied().unwrap_or(0)),
            )
            .collect();
        self.occupancy.mapv(|id| {
            if id == DISTRACTOR {
                0
            } else {
                class_of[id as usize]
            }
        })
    }

    /// Occupancy of the labelled particles only `[z, y, x]`: the particles whose
    /// `labels[class index]` is not 0 are numbered 1.. in placement order (the order of the
    /// particle lists); decoys, vesicles and gold are 0.
    pub fn labelled_particle_ids(&self, labels: &[u8]) -> Array3<u32> {
        let mut next = 0u32;
        let new_id: Vec<u32> = std::iter::once(0)
            .chain(self.particles.iter().map(|p| {
                if labels.get(p.class_index).copied().unwrap_or(0) == 0 {
                    0
                } else {
                    next += 1;
                    next
                }
            }))
            .collect();
        self.occupancy.mapv(|id| {
            if id == DISTRACTOR {
                0
            } else {
                new_id[id as usize]
            }
        })
    }

    /// Occupancy (particle id per voxel, 0 elsewhere) `[z, y, x]`.
    pub fn particle_ids(&self) -> Array3<u32> {
        self.occupancy
            .mapv(|id| if id == DISTRACTOR { 0 } else { id })
    }

    /// Number of particles placed per class (class order).
    pub fn placed_per_class(&self, n_classes: usize) -> Vec<usize> {
        let mut v = vec![0; n_classes];
        for p in &self.particles {
            v[p.class_index] += 1;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::builtin_class;
    use rand::SeedableRng;

    fn params(counts: Vec<usize>) -> PlacementParams {
        PlacementParams {
            shape_zyx: [32, 64, 64],
            voxel_size_a: 20.0,
            slab_thickness_vox: 28,
            counts,
            max_attempts: 500,
            resolution_a: 40.0,
            vesicles: VesicleConfig::default(),
            gold: GoldConfig::default(),
        }
    }

    #[test]
    fn particles_do_not_overlap_and_stay_in_slab() {
        let classes = vec![
            builtin_class("ribosome", "ribosome", 20.0, 40.0, 0.3).unwrap(),
            builtin_class("globule", "globule", 20.0, 40.0, 0.3).unwrap(),
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let s = place_sample(&classes, &params(vec![12, 30]), &mut rng);
        assert_eq!(s.placed_per_class(2), vec![12, 30]);
        // Each particle's voxels in the occupancy map are exactly its mask (no voxel shared).
        for p in &s.particles {
            let n = s.occupancy.iter().filter(|&&v| v == p.id).count();
            assert_eq!(n, p.mask_voxels, "particle {}", p.id);
            assert_eq!(
                s.occupancy[[p.center_xyz[2], p.center_xyz[1], p.center_xyz[0]]],
                p.id
            );
        }
        for ((z, _, _), &v) in s.occupancy.indexed_iter() {
            if v != 0 {
                assert!(z >= s.slab_z.0 && z < s.slab_z.1);
            }
        }
        // Same seed, same sample.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let again = place_sample(&classes, &params(vec![12, 30]), &mut rng);
        assert_eq!(again.particles, s.particles);
        assert_eq!(again.density, s.density);
    }

    #[test]
    fn crowding_beyond_bounding_spheres_is_possible() {
        // Filaments are long and thin: more fit by mask than by bounding sphere.
        let f = builtin_class("filament", "filament", 20.0, 40.0, 0.3).unwrap();
        let r_vox = f.radius_a() / 20.0;
        let sphere = 4.0 / 3.0 * std::f64::consts::PI * r_vox.powi(3);
        let slab = (28 * 64 * 64) as f64;
        let by_spheres = (0.74 * slab / sphere).floor() as usize; // densest sphere packing
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut p = params(vec![by_spheres + 10]);
        p.max_attempts = 3000;
        let s = place_sample(std::slice::from_ref(&f), &p, &mut rng);
        assert!(
            s.particles.len() > by_spheres,
            "{} placed, sphere packing bound {by_spheres}",
            s.particles.len()
        );
    }

    #[test]
    fn vesicles_and_beads_are_placed_but_not_labelled() {
        let classes = vec![builtin_class("rubisco", "rubisco", 20.0, 40.0, 0.3).unwrap()];
        let mut p = params(vec![5]);
        p.vesicles = VesicleConfig {
            count: 1,
            radius_min_a: 150.0,
            radius_max_a: 200.0,
        };
        p.gold = GoldConfig {
            count: 2,
            radius_a: 50.0,
            density: 8.0,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let s = place_sample(&classes, &p, &mut rng);
        assert!(s.occupancy.iter().any(|&v| v == DISTRACTOR));
        assert!(
            s.density.iter().cloned().fold(0.0f32, f32::max) > 4.0,
            "gold is dense"
        );
        assert!(s.class_mask().iter().all(|&c| c <= 1));
        assert!(s
            .particle_ids()
            .iter()
            .all(|&v| v <= s.particles.len() as u32));
    }
}
