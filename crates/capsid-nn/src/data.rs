//! Training data: tomograms with target label maps, patch sampling, augmentation, k-fold split and
//! batches prepared on a background thread.
//!
//! * A [`TrainSample`] is one tomogram (`[z, y, x]`), its **target** label map (0 = background,
//!   1..=K = the chosen target classes in the order given; every other class counts as background)
//!   and the centres of its target particles.
//! * [`DataConfig`] holds the sampling settings (patch size, random shift, background ratio,
//!   augmentation, folds).
//! * [`PatchSpec`] names one patch (sample, corner, augmentation); [`extract_patch`] cuts it out and
//!   z-score normalises it on its own (per-patch normalisation, as DeepFinder does).
//! * [`Split`] assigns target particles (or whole tomograms) to folds; [`BatchStream`] yields the
//!   training batches of each step, prepared in parallel with the compute.
//!
//! Everything random is derived from one `seed`: the patches of step `s` come from a ChaCha8 stream
//! keyed by `(seed, s)`, so they do not depend on threads, prefetching or on resuming.

use crate::NnError;
use capsid_core::mask::{sphere_masks, MaskGrid, MaskOptions, OutsidePolicy};
use capsid_core::{ClassTable, Particle, Volume};
use ndarray::{s, Array3, ArrayView3, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// How validation data is held out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Target particles are dealt into folds (the seed's 6-fold cross-validation).
    #[default]
    Particle,
    /// Whole tomograms are dealt into folds.
    Tomogram,
}

/// Patch sampling, augmentation and validation split settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Patch side in voxels (cubic patches; a multiple of 8 for the models). Default 64.
    pub patch: usize,
    /// Largest random shift of a particle-centred patch, voxels per axis (uniform in ±max_shift).
    pub max_shift: usize,
    /// Fraction of the patches in a batch that are background patches placed anywhere at random
    /// (0 = only particle-centred patches, as the seed).
    pub background_ratio: f64,
    /// Random wedge-preserving augmentation: flips along x, y and z (their pairs are the 180°
    /// turns about the axes, including the tilt axis y). Off by default, as the seed.
    pub augment: bool,
    /// Also random 90° turns about z. These move the tilt axis, so the missing wedge of the patch
    /// no longer matches the tomogram's; off by default.
    pub rot90_z: bool,
    /// Number of folds (≥ 2 keeps one for validation; 1 = no validation). Default 6 (≈ 17 %).
    pub folds: usize,
    /// The fold used for validation, 0-based.
    pub val_fold: usize,
    /// Split by particle (default) or by tomogram.
    pub split_by: SplitBy,
    /// At most this many validation patches (chosen deterministically); 0 = all.
    pub max_val_patches: usize,
    /// Fraction of the patches in a batch centred on a hard negative: a particle-like blob of
    /// the training tomograms outside every labelled particle (see [`crate::negatives`]), so that
    /// unlabelled look-alikes are seen as background. 0 = off (the seed's sampling).
    pub negative_ratio: f64,
    /// Hard negatives kept per labelled particle of a tomogram (strongest first).
    pub negatives_per_particle: f64,
    /// Where hard negatives come from: particle-like blobs found before training, the model's
    /// own false positives mined between epochs (see [`crate::mining`]), or both.
    pub negative_source: crate::mining::NegativeSource,
    /// Mine the model's false positives every this many epochs (with `negative_source` model or
    /// both). Default 3.
    pub mine_every: usize,
    /// Side (voxels) of the random cube of each training tomogram that a mining round segments.
    /// Default 128.
    pub mine_region: usize,
    /// New hard negatives kept per tomogram and mining round (largest false positives first).
    /// Default 32.
    pub mine_max: usize,
    /// Draw a target class uniformly, then a particle of it (instead of a particle uniformly),
    /// so a class with few particles is seen as often as one with many.
    pub class_balanced: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            patch: 64,
            max_shift: 13,
            background_ratio: 0.0,
            augment: false,
            rot90_z: false,
            folds: 6,
            val_fold: 0,
            split_by: SplitBy::Particle,
            max_val_patches: 256,
            negative_ratio: 0.0,
            negatives_per_particle: 2.0,
            negative_source: crate::mining::NegativeSource::Blobs,
            mine_every: 3,
            mine_region: 128,
            mine_max: 32,
            class_balanced: false,
        }
    }
}

impl DataConfig {
    /// Checks ranges; returns a message naming the field on failure.
    pub fn validate(&self) -> Result<(), String> {
        if self.patch == 0 || !self.patch.is_multiple_of(8) {
            return Err(format!(
                "data.patch must be a positive multiple of 8, got {}",
                self.patch
            ));
        }
        if self.max_shift > self.patch / 2 && self.max_shift > 0 {
            return Err(format!(
                "data.max_shift ({}) must be at most half the patch ({}) so the particle stays inside",
                self.max_shift,
                self.patch / 2
            ));
        }
        if !(0.0..1.0).contains(&self.negative_ratio)
            || self.negative_ratio + self.background_ratio >= 1.0
        {
            return Err(format!(
                "data.negative_ratio must be in [0, 1) with background_ratio + negative_ratio < 1, got {} (+ {})",
                self.negative_ratio, self.background_ratio
            ));
        }
        if !(self.negatives_per_particle >= 0.0 && self.negatives_per_particle.is_finite()) {
            return Err(format!(
                "data.negatives_per_particle must be ≥ 0, got {}",
                self.negatives_per_particle
            ));
        }
        if self.negative_source.uses_model() {
            if self.mine_every == 0 || self.mine_region < 8 || self.mine_max == 0 {
                return Err(format!(
                    "data.mine_every, data.mine_max must be ≥ 1 and data.mine_region ≥ 8 when mining the model's false positives, got {}, {}, {}",
                    self.mine_every, self.mine_max, self.mine_region
                ));
            }
            if self.negative_ratio <= 0.0 {
                return Err(
                    "data.negative_source = model/both needs data.negative_ratio > 0 (the share of patches centred on hard negatives)"
                        .into(),
                );
            }
        }
        if !(0.0..1.0).contains(&self.background_ratio) {
            return Err(format!(
                "data.background_ratio must be in [0, 1), got {}",
                self.background_ratio
            ));
        }
        if self.folds == 0 {
            return Err("data.folds must be at least 1".into());
        }
        if self.folds > 1 && self.val_fold >= self.folds {
            return Err(format!(
                "data.val_fold ({}) must be below data.folds ({})",
                self.val_fold, self.folds
            ));
        }
        Ok(())
    }
}

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
/// particles (capsid-core's mask rules; particles outside the tomogram are skipped).
///
/// `targets` are the chosen class names (empty = all classes). Particles of classes not in the
/// table are an error; particles of non-target classes become background.
pub fn make_sample(
    name: &str,
    tomogram: Volume<f32>,
    particles: &[Particle],
    label_map: Option<Array3<u8>>,
    classes: &ClassTable,
    targets: &[String],
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
            sphere_masks(&grid, particles, classes, &opts)
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

/// Finds the hard negatives of every sample (see [`crate::negatives::find_negatives`]):
/// `radii_vox` are the target classes' radii in voxels (label order). The low-pass σ is half the
/// smallest radius, the suppression cube and the clearance from labelled voxels the smallest
/// radius; `per_particle` negatives per labelled particle are kept (at least 16 per tomogram).
pub fn add_negatives(samples: &mut [TrainSample], radii_vox: &[f64], per_particle: f64) {
    let r_min = smallest_radius(radii_vox);
    samples.par_iter_mut().for_each(|s| {
        let search = crate::negatives::NegativeSearch {
            sigma_vox: (r_min / 2.0).max(1.0),
            nms_half: r_min.round().max(1.0) as usize,
            clearance_vox: r_min.round().max(1.0) as usize,
            max_count: ((s.particles.len() as f64 * per_particle).round() as usize).max(16),
        };
        s.negatives = crate::negatives::find_negatives(&s.tomogram.data, &s.labels, &search);
    });
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

/// A random wedge-preserving (unless `rot90_z`) transform of a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    pub flip_z: bool,
    pub flip_y: bool,
    pub flip_x: bool,
    /// Number of 90° turns about z (counter-clockwise seen from +z), 0..4.
    pub rot90_z: u8,
}

impl Augment {
    /// The identity transform.
    pub const NONE: Augment = Augment {
        flip_z: false,
        flip_y: false,
        flip_x: false,
        rot90_z: 0,
    };

    /// Draws a transform: flips each with probability ½ when `flips`, a uniform number of 90°
    /// turns about z when `rot90`.
    pub fn random(rng: &mut impl Rng, flips: bool, rot90: bool) -> Self {
        let mut a = Augment::NONE;
        if flips {
            a.flip_z = rng.gen();
            a.flip_y = rng.gen();
            a.flip_x = rng.gen();
        }
        if rot90 {
            a.rot90_z = rng.gen_range(0..4);
        }
        a
    }

    /// Applies the transform to a `[z, y, x]` array (turns need `y` and `x` of equal size; they
    /// are skipped otherwise). The same transform on a patch and its labels keeps them aligned.
    pub fn apply<T: Clone>(&self, a: Array3<T>) -> Array3<T> {
        let mut v = a;
        if self.flip_z {
            v.invert_axis(Axis(0));
        }
        if self.flip_y {
            v.invert_axis(Axis(1));
        }
        if self.flip_x {
            v.invert_axis(Axis(2));
        }
        if v.shape()[1] == v.shape()[2] {
            for _ in 0..self.rot90_z % 4 {
                // (y, x) -> (x, n-1-y): transpose then mirror.
                v = v.permuted_axes([0, 2, 1]);
                v.invert_axis(Axis(2));
            }
        }
        v.as_standard_layout().into_owned()
    }
}

/// One patch: which sample, its corner `[z, y, x]` in voxels (may lie partly outside the
/// tomogram; the outside is padded) and its augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchSpec {
    pub sample: usize,
    pub corner_zyx: [isize; 3],
    pub augment: Augment,
}

/// The corner of a `patch`-sided patch centred on `center` (voxels, one axis), shifted by
/// `shift`, and moved inside `[0, len - patch]` when the axis is long enough.
pub fn patch_corner(center: f64, shift: isize, patch: usize, len: usize) -> isize {
    let c = center.round() as isize + shift - (patch / 2) as isize;
    if len >= patch {
        c.clamp(0, (len - patch) as isize)
    } else {
        0
    }
}

/// Copies the `size`³ window at `corner_zyx` out of `vol`; voxels outside `vol` are `fill`.
pub fn crop_padded<T: Copy>(
    vol: &ArrayView3<T>,
    corner_zyx: [isize; 3],
    size: [usize; 3],
    fill: T,
) -> Array3<T> {
    let mut out = Array3::from_elem((size[0], size[1], size[2]), fill);
    let shape = vol.shape();
    let mut src = [(0usize, 0usize); 3];
    let mut dst = [(0usize, 0usize); 3];
    for ax in 0..3 {
        let lo = corner_zyx[ax].max(0);
        let hi = (corner_zyx[ax] + size[ax] as isize).min(shape[ax] as isize);
        if hi <= lo {
            return out;
        }
        src[ax] = (lo as usize, hi as usize);
        dst[ax] = (
            (lo - corner_zyx[ax]) as usize,
            (hi - corner_zyx[ax]) as usize,
        );
    }
    out.slice_mut(s![
        dst[0].0..dst[0].1,
        dst[1].0..dst[1].1,
        dst[2].0..dst[2].1
    ])
    .assign(&vol.slice(s![
        src[0].0..src[0].1,
        src[1].0..src[1].1,
        src[2].0..src[2].1
    ]));
    out
}

/// Z-score normalises the voxels of `patch` that lie inside the tomogram (`inside` is the
/// in-bounds box `[lo, hi)` per axis of the patch); padded voxels become 0 (the mean). A constant
/// patch becomes all zeros. Mean and deviation are summed in f64 in a fixed order.
pub fn normalize_patch(patch: &mut Array3<f32>, inside: [(usize, usize); 3]) {
    let view = patch.slice(s![
        inside[0].0..inside[0].1,
        inside[1].0..inside[1].1,
        inside[2].0..inside[2].1
    ]);
    let n = view.len();
    if n == 0 {
        patch.fill(0.0);
        return;
    }
    let mut sum = 0.0f64;
    let mut sum2 = 0.0f64;
    for &v in view.iter() {
        sum += v as f64;
        sum2 += (v as f64) * (v as f64);
    }
    let mean = sum / n as f64;
    let sd = (sum2 / n as f64 - mean * mean).max(0.0).sqrt();
    let scale = if sd > 1e-12 { 1.0 / sd } else { 0.0 };
    let mut out = Array3::<f32>::zeros(patch.raw_dim());
    out.slice_mut(s![
        inside[0].0..inside[0].1,
        inside[1].0..inside[1].1,
        inside[2].0..inside[2].1
    ])
    .assign(&view.mapv(|v| ((v as f64 - mean) * scale) as f32));
    *patch = out;
}

/// The in-bounds box of a window of `size` at `corner` in a volume of `shape`, in patch
/// coordinates.
pub fn inside_box(
    corner_zyx: [isize; 3],
    size: [usize; 3],
    shape: &[usize],
) -> [(usize, usize); 3] {
    let mut b = [(0usize, 0usize); 3];
    for ax in 0..3 {
        let lo = corner_zyx[ax].max(0);
        let hi = (corner_zyx[ax] + size[ax] as isize)
            .min(shape[ax] as isize)
            .max(lo);
        b[ax] = (
            (lo - corner_zyx[ax]) as usize,
            (hi - corner_zyx[ax]) as usize,
        );
    }
    b
}

/// Cuts out a normalised, augmented patch and its labels.
pub fn extract_patch(
    sample: &TrainSample,
    spec: &PatchSpec,
    patch: usize,
) -> (Array3<f32>, Array3<u8>) {
    let size = [patch; 3];
    let tomo = sample.tomogram.data.view();
    let mut x = crop_padded(&tomo, spec.corner_zyx, size, 0.0f32);
    normalize_patch(&mut x, inside_box(spec.corner_zyx, size, tomo.shape()));
    let y = crop_padded(&sample.labels.view(), spec.corner_zyx, size, 0u8);
    (spec.augment.apply(x), spec.augment.apply(y))
}

/// Which target particles and tomograms are used for training and which for validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Training particles as `(sample, particle index)`.
    pub train_particles: Vec<(usize, usize)>,
    /// Validation particles as `(sample, particle index)`.
    pub val_particles: Vec<(usize, usize)>,
    /// Samples that training background patches come from.
    pub train_samples: Vec<usize>,
    /// Samples that validation background patches come from.
    pub val_samples: Vec<usize>,
}

/// Deals `n` items into `folds` folds after a seeded shuffle: returns each item's fold. Fold
/// sizes differ by at most one.
pub fn fold_assignment(n: usize, folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b66_6f6c_6473);
    order.shuffle(&mut rng);
    let mut fold = vec![0usize; n];
    for (rank, &item) in order.iter().enumerate() {
        fold[item] = rank % folds;
    }
    fold
}

/// Splits samples' target particles (or whole samples) into training and validation sets by
/// fold. With `folds == 1`, everything trains and nothing validates.
pub fn split(samples: &[TrainSample], cfg: &DataConfig, seed: u64) -> Split {
    let all: Vec<(usize, usize)> = samples
        .iter()
        .enumerate()
        .flat_map(|(s, t)| (0..t.particles.len()).map(move |i| (s, i)))
        .collect();
    let all_samples: Vec<usize> = (0..samples.len()).collect();
    if cfg.folds <= 1 {
        return Split {
            train_particles: all,
            val_particles: vec![],
            train_samples: all_samples,
            val_samples: vec![],
        };
    }
    match cfg.split_by {
        SplitBy::Particle => {
            let fold = fold_assignment(all.len(), cfg.folds, seed);
            let (mut tr, mut va) = (vec![], vec![]);
            for (k, p) in all.into_iter().enumerate() {
                if fold[k] == cfg.val_fold {
                    va.push(p)
                } else {
                    tr.push(p)
                }
            }
            Split {
                train_particles: tr,
                val_particles: va,
                train_samples: all_samples.clone(),
                val_samples: all_samples,
            }
        }
        SplitBy::Tomogram => {
            let fold = fold_assignment(samples.len(), cfg.folds, seed);
            let val_samples: Vec<usize> = all_samples
                .iter()
                .copied()
                .filter(|&s| fold[s] == cfg.val_fold)
                .collect();
            let train_samples: Vec<usize> = all_samples
                .iter()
                .copied()
                .filter(|&s| fold[s] != cfg.val_fold)
                .collect();
            let (tr, va) = all.into_iter().partition(|(s, _)| fold[*s] != cfg.val_fold);
            Split {
                train_particles: tr,
                val_particles: va,
                train_samples,
                val_samples,
            }
        }
    }
}

/// A patch of sample `s` centred on `center_xyz` (voxels) with a uniform random shift of up to
/// `max_shift` voxels per axis.
fn centred_patch(
    samples: &[TrainSample],
    s: usize,
    center_xyz: [f64; 3],
    cfg: &DataConfig,
    rng: &mut ChaCha8Rng,
    augment: bool,
) -> PatchSpec {
    let shape = samples[s].tomogram.shape_zyx();
    let m = cfg.max_shift as isize;
    let mut corner = [0isize; 3];
    // Axis order z, y, x; centres are x, y, z.
    for (ax, (c, len)) in [
        (center_xyz[2], shape[0]),
        (center_xyz[1], shape[1]),
        (center_xyz[0], shape[2]),
    ]
    .into_iter()
    .enumerate()
    {
        let shift = if m > 0 { rng.gen_range(-m..=m) } else { 0 };
        corner[ax] = patch_corner(c, shift, cfg.patch, len);
    }
    let aug = if augment {
        Augment::random(rng, true, cfg.rot90_z)
    } else {
        Augment::NONE
    };
    PatchSpec {
        sample: s,
        corner_zyx: corner,
        augment: aug,
    }
}

/// A patch centred on particle `(s, i)` (see [`centred_patch`]).
fn particle_patch(
    samples: &[TrainSample],
    (s, i): (usize, usize),
    cfg: &DataConfig,
    rng: &mut ChaCha8Rng,
    augment: bool,
) -> PatchSpec {
    centred_patch(
        samples,
        s,
        samples[s].particles[i].center_xyz,
        cfg,
        rng,
        augment,
    )
}

/// A patch centred on hard negative `i` of sample `s` (see [`centred_patch`]).
fn negative_patch(
    samples: &[TrainSample],
    (s, i): (usize, usize),
    cfg: &DataConfig,
    rng: &mut ChaCha8Rng,
    augment: bool,
) -> PatchSpec {
    centred_patch(samples, s, samples[s].negatives[i], cfg, rng, augment)
}

/// The hard negatives of the given samples as `(sample, index)`.
fn negatives_of(samples: &[TrainSample], of: &[usize]) -> Vec<(usize, usize)> {
    of.iter()
        .flat_map(|&s| (0..samples[s].negatives.len()).map(move |i| (s, i)))
        .collect()
}

/// A training particle: uniform over particles, or (class-balanced) a uniform class first.
fn draw_particle(
    samples: &[TrainSample],
    split: &Split,
    cfg: &DataConfig,
    rng: &mut ChaCha8Rng,
) -> (usize, usize) {
    let all = &split.train_particles;
    if cfg.class_balanced {
        let label_of = |&(s, i): &(usize, usize)| samples[s].particles[i].label;
        let mut labels: Vec<u8> = all.iter().map(label_of).collect();
        labels.sort_unstable();
        labels.dedup();
        let want = labels[rng.gen_range(0..labels.len())];
        let of_class: Vec<&(usize, usize)> = all.iter().filter(|p| label_of(p) == want).collect();
        *of_class[rng.gen_range(0..of_class.len())]
    } else {
        all[rng.gen_range(0..all.len())]
    }
}

/// A patch placed uniformly at random inside sample `s`.
fn background_patch(
    samples: &[TrainSample],
    s: usize,
    cfg: &DataConfig,
    rng: &mut ChaCha8Rng,
    augment: bool,
) -> PatchSpec {
    let shape = samples[s].tomogram.shape_zyx();
    let mut corner = [0isize; 3];
    for ax in 0..3 {
        corner[ax] = if shape[ax] > cfg.patch {
            rng.gen_range(0..=(shape[ax] - cfg.patch)) as isize
        } else {
            0
        };
    }
    let aug = if augment {
        Augment::random(rng, true, cfg.rot90_z)
    } else {
        Augment::NONE
    };
    PatchSpec {
        sample: s,
        corner_zyx: corner,
        augment: aug,
    }
}

/// The patches of training step `step` (global step number, 0-based): `batch` patches, each a
/// background patch with probability `background_ratio` (or when no training particle exists),
/// otherwise centred on a uniformly chosen training particle with a random shift. Depends only
/// on `(seed, step)`.
pub fn training_patches(
    samples: &[TrainSample],
    split: &Split,
    cfg: &DataConfig,
    batch: usize,
    seed: u64,
    step: u64,
) -> Vec<PatchSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step.wrapping_add(1));
    let negatives = if cfg.negative_ratio > 0.0 {
        negatives_of(samples, &split.train_samples)
    } else {
        Vec::new()
    };
    (0..batch)
        .map(|_| {
            // With hard negatives, one uniform draw decides the kind: below background_ratio a
            // background patch, below background_ratio + negative_ratio a negative. Without,
            // the draws are the seed's sampling as before (same seed → same patches).
            let (bg, neg) = if negatives.is_empty() {
                let bg = split.train_particles.is_empty()
                    || rng.gen_bool(cfg.background_ratio.clamp(0.0, 1.0));
                (bg, false)
            } else {
                let u: f64 = rng.gen();
                let bg = split.train_particles.is_empty() || u < cfg.background_ratio;
                (bg, !bg && u < cfg.background_ratio + cfg.negative_ratio)
            };
            if bg && !split.train_samples.is_empty() {
                let s = split.train_samples[rng.gen_range(0..split.train_samples.len())];
                background_patch(samples, s, cfg, &mut rng, cfg.augment)
            } else if neg {
                let n = negatives[rng.gen_range(0..negatives.len())];
                negative_patch(samples, n, cfg, &mut rng, cfg.augment)
            } else if !split.train_particles.is_empty() {
                let p = draw_particle(samples, split, cfg, &mut rng);
                particle_patch(samples, p, cfg, &mut rng, cfg.augment)
            } else {
                background_patch(samples, 0, cfg, &mut rng, cfg.augment)
            }
        })
        .collect()
}

/// The fixed validation patches: one per validation particle (with the same random shift rule,
/// drawn once from the seed, no augmentation), plus background patches at `background_ratio`,
/// then at most `max_val_patches` of them (a seeded choice).
pub fn validation_patches(
    samples: &[TrainSample],
    split: &Split,
    cfg: &DataConfig,
    seed: u64,
) -> Vec<PatchSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX);
    let mut out: Vec<PatchSpec> = split
        .val_particles
        .iter()
        .map(|&p| particle_patch(samples, p, cfg, &mut rng, false))
        .collect();
    if !split.val_samples.is_empty() {
        let r = cfg.background_ratio.clamp(0.0, 0.95);
        let n_bg = if out.is_empty() {
            0
        } else {
            ((out.len() as f64) * r / (1.0 - r)).round() as usize
        };
        for _ in 0..n_bg {
            let s = split.val_samples[rng.gen_range(0..split.val_samples.len())];
            out.push(background_patch(samples, s, cfg, &mut rng, false));
        }
    }
    if cfg.negative_ratio > 0.0 && !out.is_empty() {
        // Hard negatives of the validation tomograms, at the training share.
        let negatives = negatives_of(samples, &split.val_samples);
        if !negatives.is_empty() {
            let r = cfg.negative_ratio.clamp(0.0, 0.95);
            let n_neg = ((out.len() as f64) * r / (1.0 - r)).round() as usize;
            for _ in 0..n_neg {
                let n = negatives[rng.gen_range(0..negatives.len())];
                out.push(negative_patch(samples, n, cfg, &mut rng, false));
            }
        }
    }
    if cfg.max_val_patches > 0 && out.len() > cfg.max_val_patches {
        out.shuffle(&mut rng);
        out.truncate(cfg.max_val_patches);
    }
    out
}

/// A batch of patches in the layout the models take.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Global step this batch belongs to (training) or the batch index (validation).
    pub step: u64,
    /// Number of patches.
    pub size: usize,
    /// Patch side in voxels.
    pub patch: usize,
    /// Normalised intensities, `[B, 1, P, P, P]` flattened (x fastest).
    pub x: Vec<f32>,
    /// Target labels, `[B, P, P, P]` flattened.
    pub y: Vec<u8>,
}

/// Extracts `specs` in parallel (rayon; results kept in spec order) into one batch.
pub fn make_batch(samples: &[TrainSample], specs: &[PatchSpec], patch: usize, step: u64) -> Batch {
    let parts: Vec<(Array3<f32>, Array3<u8>)> = specs
        .par_iter()
        .map(|spec| extract_patch(&samples[spec.sample], spec, patch))
        .collect();
    let n = patch * patch * patch;
    let mut x = Vec::with_capacity(n * specs.len());
    let mut y = Vec::with_capacity(n * specs.len());
    for (px, py) in parts {
        x.extend(px.iter());
        y.extend(py.iter());
    }
    Batch {
        step,
        size: specs.len(),
        patch,
        x,
        y,
    }
}

/// Training batches for steps `first..end`, prepared on a background thread (at most `ahead`
/// batches waiting) while the caller computes.
pub struct BatchStream {
    rx: Receiver<Batch>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BatchStream {
    /// Starts preparing batches of `batch` patches for global steps `first..end`.
    #[allow(clippy::too_many_arguments)] // the sampling inputs, the step range and the queue depth
    pub fn start(
        samples: Arc<Vec<TrainSample>>,
        split: Arc<Split>,
        cfg: DataConfig,
        batch: usize,
        seed: u64,
        first: u64,
        end: u64,
        ahead: usize,
    ) -> Self {
        let (tx, rx) = sync_channel(ahead.max(1));
        let handle = std::thread::spawn(move || {
            for step in first..end {
                let specs = training_patches(&samples, &split, &cfg, batch, seed, step);
                let b = make_batch(&samples, &specs, cfg.patch, step);
                if tx.send(b).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            handle: Some(handle),
        }
    }

    /// The next batch, or `None` when all steps are done.
    pub fn next_batch(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Unblock the producer: drain until it sees the closed channel.
        while self.rx.try_recv().is_ok() {}
        let (_, dummy) = sync_channel::<Batch>(1);
        let rx = std::mem::replace(&mut self.rx, dummy);
        drop(rx);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn sample(shape: [usize; 3], centers: &[[f64; 3]]) -> TrainSample {
        let data = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
            (z * 10000 + y * 100 + x) as f32
        });
        let mut labels = Array3::<u8>::zeros((shape[0], shape[1], shape[2]));
        for c in centers {
            labels[[c[2] as usize, c[1] as usize, c[0] as usize]] = 1;
        }
        TrainSample {
            name: "t".into(),
            tomogram: Volume::new(data, 10.0),
            labels,
            particles: centers
                .iter()
                .map(|&c| TargetParticle {
                    label: 1,
                    center_xyz: c,
                })
                .collect(),
            negatives: Vec::new(),
        }
    }

    #[test]
    fn remap_keeps_targets_in_order() {
        let lut = remap_table(&[3, 1]);
        let a = Array3::from_shape_vec((1, 1, 4), vec![0u8, 1, 2, 3]).unwrap();
        assert_eq!(
            remap_labels(&a, &lut).into_raw_vec_and_offset().0,
            vec![0, 2, 0, 1]
        );
    }

    #[test]
    fn augment_rot90_four_times_is_identity_and_flips_pair_up() {
        let a = Array3::from_shape_fn((3, 4, 4), |(z, y, x)| (z * 16 + y * 4 + x) as i32);
        let r = Augment {
            rot90_z: 1,
            ..Augment::NONE
        };
        let mut b = a.clone();
        for _ in 0..4 {
            b = r.apply(b);
        }
        assert_eq!(a, b);
        let once = r.apply(a.clone());
        assert_ne!(once, a);
        // One turn moves (y, x) to (x, n-1-y).
        assert_eq!(once[[1, 2, 3 - 1]], a[[1, 1, 2]]);
        let f = Augment {
            flip_x: true,
            flip_z: true,
            ..Augment::NONE
        };
        assert_eq!(f.apply(f.apply(a.clone())), a);
        assert_eq!(f.apply(a.clone())[[0, 1, 0]], a[[2, 1, 3]]);
    }

    #[test]
    fn crop_pads_outside() {
        let v = Array3::from_shape_fn((4, 4, 4), |(z, y, x)| (z * 16 + y * 4 + x) as f32);
        let c = crop_padded(&v.view(), [-1, 2, 0], [2, 3, 2], -1.0);
        assert_eq!(c[[0, 0, 0]], -1.0);
        assert_eq!(c[[1, 0, 1]], v[[0, 2, 1]]);
        assert_eq!(c[[1, 2, 0]], -1.0);
    }

    #[test]
    fn normalised_patch_has_zero_mean_unit_sd() {
        let s = sample([20, 20, 20], &[[10.0, 10.0, 10.0]]);
        let spec = PatchSpec {
            sample: 0,
            corner_zyx: [2, 2, 2],
            augment: Augment::NONE,
        };
        let (x, _) = extract_patch(&s, &spec, 8);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-4, "{mean}");
        assert!((var - 1.0).abs() < 1e-3, "{var}");
    }

    #[test]
    fn folds_are_balanced_and_seeded() {
        let f = fold_assignment(20, 6, 1);
        for k in 0..6 {
            let n = f.iter().filter(|&&x| x == k).count();
            assert!(n == 3 || n == 4);
        }
        assert_eq!(f, fold_assignment(20, 6, 1));
        assert_ne!(f, fold_assignment(20, 6, 2));
    }
}
