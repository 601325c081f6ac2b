//! Training samples and their targets: [`TrainSample`] (a tomogram `[z, y, x]`, its target
//! label map — 0 background, 1..=K the chosen classes in the order given — and its target
//! particles with centres `[x, y, z]` in voxels), [`make_sample`], the class-label remapping,
//! hard negatives per sample and voxel counts per label.

use super::NegativeScales;
use crate::NnError;
use capsid_core::{ClassTable, Particle, Volume};
use capsid_prep::mask::{sphere_masks, MaskGrid, MaskOptions, OutsidePolicy};
use ndarray::Array3;
use rayon::prelude::*;

/// One target particle: its target label (1..=K) and centre `[x, y, z]` in voxels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetParticle {
    pub label: u8,
    pub center_xyz: [f64; 3],
}

/// One training tomogram with its target label map.
#[derive(Debug, Clone)]
pub struct TrainSample {
    /// A name for messages (usually the tomogram's file stem or folder).
    pub name: String,
    /// The tomogram, `[z, y, x]`.
    pub tomogram: Volume<f32>,
    /// Target labels `[z, y, x]`: 0 background, 1..=K the target classes. Same shape as the
    /// tomogram.
    pub labels: Array3<u8>,
    /// Target particles (other classes are left out).
    pub particles: Vec<TargetParticle>,
    /// Hard-negative centres `[x, y, z]` in voxels (see [`crate::negatives`]); empty until
    /// [`add_negatives`] fills them.
    pub negatives: Vec<[f64; 3]>,
}

/// The class-table labels of the chosen targets, in the order given. An empty `targets` list
/// means every class of the table, in table order. Fails on an unknown name or a repeat.
pub fn target_labels(classes: &ClassTable, targets: &[String]) -> Result<Vec<u8>, NnError> {
    if targets.is_empty() {
        return Ok(classes.classes.iter().map(|c| c.label).collect());
    }
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let c = classes.get(t).map_err(|e| NnError::Data(e.to_string()))?;
        if out.contains(&c.label) {
            return Err(NnError::Data(format!("target class '{t}' is given twice")));
        }
        out.push(c.label);
    }
    Ok(out)
}

/// A lookup table from class-table labels (0..=255) to target labels: the `i`-th entry of
/// `target_class_labels` maps to `i + 1`, every other label to 0.
pub fn remap_table(target_class_labels: &[u8]) -> [u8; 256] {
    let mut lut = [0u8; 256];
    for (i, &l) in target_class_labels.iter().enumerate() {
        if l != 0 {
            lut[l as usize] = (i + 1) as u8;
        }
    }
    lut
}

/// Applies [`remap_table`] to a class label map.
pub fn remap_labels(labels: &Array3<u8>, lut: &[u8; 256]) -> Array3<u8> {
    labels.mapv(|l| lut[l as usize])
}

/// Builds a [`TrainSample`] from a tomogram and either a class label map (class-table labels, e.g.
/// the simulator's `class_mask.mrc`) or, when `label_map` is `None`, spheres drawn around the
/// particles (capsid-prep's mask rules; particles outside the tomogram are skipped).
///
/// `targets` are the chosen class names (empty = all classes). Particles of classes not in the
/// table are an error; particles of non-target classes become background. `target_radius`
/// (in (0, 1]) scales every class's sphere (see `DataConfig::target_radius`); it does not apply
/// to a given label map.
pub fn make_sample(
    name: &str,
    tomogram: Volume<f32>,
    particles: &[Particle],
    label_map: Option<Array3<u8>>,
    classes: &ClassTable,
    targets: &[String],
    target_radius: f64,
) -> Result<TrainSample, NnError> {
    let target = target_labels(classes, targets)?;
    let lut = remap_table(&target);
    let shape = tomogram.shape_zyx();
    let class_labels = match label_map {
        Some(map) => {
            let s = map.shape();
            if [s[0], s[1], s[2]] != shape {
                return Err(NnError::Data(format!(
                    "{name}: label map shape {:?} (z, y, x) differs from the tomogram's {:?}",
                    s, shape
                )));
            }
            map
        }
        None => {
            let grid = MaskGrid {
                shape_zyx: shape,
                voxel_size_a: tomogram.voxel_size_a,
                origin_a: tomogram.origin_a,
            };
            let opts = MaskOptions {
                outside: OutsidePolicy::Skip,
                instances: false,
            };
            sphere_masks(
                &grid,
                particles,
                &scaled_radii(classes, target_radius),
                &opts,
            )
            .map_err(|e| NnError::Data(format!("{name}: {e}")))?
            .labels
            .data
        }
    };
    let labels = remap_labels(&class_labels, &lut);
    let mut targets_out = Vec::new();
    for p in particles {
        let c = classes
            .get(&p.class)
            .map_err(|e| NnError::Data(format!("{name}: {e}")))?;
        let label = lut[c.label as usize];
        if label != 0 && tomogram.contains_xyz(p.x, p.y, p.z) {
            targets_out.push(TargetParticle {
                label,
                center_xyz: [p.x, p.y, p.z],
            });
        }
    }
    Ok(TrainSample {
        name: name.to_string(),
        tomogram,
        labels,
        particles: targets_out,
        negatives: Vec::new(),
    })
}

/// The smallest positive radius of `radii_vox` (voxels), or 3 voxels when there is none.
pub fn smallest_radius(radii_vox: &[f64]) -> f64 {
    let r = radii_vox
        .iter()
        .cloned()
        .filter(|r| *r > 0.0)
        .fold(f64::INFINITY, f64::min);
    if r.is_finite() {
        r
    } else {
        3.0
    }
}

/// `classes` with every radius (Å and voxels) times `scale`.
fn scaled_radii(classes: &ClassTable, scale: f64) -> ClassTable {
    let mut out = classes.clone();
    for c in &mut out.classes {
        c.radius_a = c.radius_a.map(|r| r * scale);
        c.radius_vox = c.radius_vox.map(|r| r * scale);
    }
    out
}

/// Finds the hard negatives of every sample (see [`crate::negatives::find_negatives`]):
/// `radii_vox` are the target classes' radii in voxels (label order). At each scale radius `r`
/// (the smallest radius, or every distinct radius with [`NegativeScales::Classes`]) the low-pass
/// σ is `r / 2` and the suppression cube `r`; the clearance from labelled voxels is the smallest
/// radius. `per_particle` negatives per labelled particle are kept (at least 16 per tomogram),
/// shared equally between the scales, largest scale first; a place within the smallest radius of
/// one kept at a larger scale is not kept twice. A blob within its class radius of a target particle's
/// centre is part of that particle (its target may be smaller than the particle,
/// `DataConfig::target_radius`) and is dropped.
pub fn add_negatives(
    samples: &mut [TrainSample],
    radii_vox: &[f64],
    per_particle: f64,
    scales: NegativeScales,
) {
    let r_min = smallest_radius(radii_vox);
    let scale_radii = negative_scale_radii(radii_vox, scales);
    samples.par_iter_mut().for_each(|s| {
        let total = ((s.particles.len() as f64 * per_particle).round() as usize).max(16);
        let per_scale = total.div_ceil(scale_radii.len());
        let mut kept: Vec<[f64; 3]> = Vec::new();
        for &r in &scale_radii {
            let search = crate::negatives::NegativeSearch {
                sigma_vox: (r / 2.0).max(1.0),
                nms_half: r.round().max(1.0) as usize,
                clearance_vox: r_min.round().max(1.0) as usize,
                max_count: per_scale,
            };
            let found = crate::negatives::find_negatives(&s.tomogram.data, &s.labels, &search);
            let earlier = kept.len();
            for c in outside_particles(found, &s.particles, radii_vox) {
                let near_kept = kept[..earlier]
                    .iter()
                    .any(|k| (0..3).map(|i| (k[i] - c[i]).powi(2)).sum::<f64>() < r_min * r_min);
                if !near_kept {
                    kept.push(c);
                }
            }
        }
        s.negatives = kept;
    });
}

/// The radii (voxels) at which [`add_negatives`] searches, largest first: the smallest target
/// radius, or every distinct positive radius (rounded to 0.5 voxel) with
/// [`NegativeScales::Classes`].
pub fn negative_scale_radii(radii_vox: &[f64], scales: NegativeScales) -> Vec<f64> {
    match scales {
        NegativeScales::Smallest => vec![smallest_radius(radii_vox)],
        NegativeScales::Classes => {
            let mut r: Vec<f64> = radii_vox
                .iter()
                .filter(|r| **r > 0.0 && r.is_finite())
                .map(|r| (r * 2.0).round() / 2.0)
                .collect();
            r.sort_by(|a, b| b.total_cmp(a));
            r.dedup();
            if r.is_empty() {
                vec![smallest_radius(radii_vox)]
            } else {
                r
            }
        }
    }
}

/// The centres `[x, y, z]` (voxels) of `points` that lie farther than their class radius
/// (`radii_vox[label − 1]`) from every particle's centre.
fn outside_particles(
    points: Vec<[f64; 3]>,
    particles: &[TargetParticle],
    radii_vox: &[f64],
) -> Vec<[f64; 3]> {
    points
        .into_iter()
        .filter(|q| {
            particles.iter().all(|p| {
                let r = radii_vox.get(p.label as usize - 1).copied().unwrap_or(0.0);
                let d2: f64 = (0..3).map(|i| (q[i] - p.center_xyz[i]).powi(2)).sum();
                d2 > r * r
            })
        })
        .collect()
}

/// Voxel counts per target label 0..=K over all samples (for class weights).
pub fn label_counts(samples: &[TrainSample], num_classes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; num_classes];
    for s in samples {
        for &l in s.labels.iter() {
            if (l as usize) < num_classes {
                counts[l as usize] += 1;
            }
        }
    }
    counts
}
