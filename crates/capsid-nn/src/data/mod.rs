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
//!
//! Layout: [`DataConfig`] here; samples and target labels in `sample`, augmentation in
//! `augment`, patch geometry and extraction in `patch`, the fold split in `split`, patch
//! sampling per step in `sampling`, batches and their background preparation in `batch`.

mod augment;
mod batch;
mod patch;
mod sample;
mod sampling;
mod split;

#[cfg(test)]
mod tests;

pub use augment::Augment;
pub use batch::{make_batch, Batch, BatchStream};
pub use patch::{
    crop_padded, extract_patch, inside_box, normalize_patch, normalize_patch_with, patch_corner,
    PatchSpec,
};
pub use sample::{
    add_negatives, label_counts, make_sample, negative_scale_radii, remap_labels, remap_table,
    smallest_radius, target_labels, TargetParticle, TrainSample,
};
pub use sampling::{training_patches, validation_patches};
pub use split::{fold_assignment, split, Split, SplitBy};

use serde::{Deserialize, Serialize};

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
    /// The scales at which the blob detector looks for hard negatives: the smallest target
    /// radius only, or each target class's radius (the same number of places kept at each, so
    /// look-alikes of the large classes are drawn as often as those of the small ones).
    pub negative_scales: NegativeScales,
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
    /// Share of each class's radius drawn as its training target when targets come from a
    /// particle list (spheres of `target_radius × radius` about each centre). 1 = the whole
    /// particle (the seed's); below 1 the network learns particle centres, as DeepETPicker's
    /// small-sphere targets, and the rest of each particle is background. Label-map inputs are
    /// used as given.
    pub target_radius: f64,
}

/// The particle scales of the blob detector that finds hard negatives ([`crate::negatives`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeScales {
    /// One search at the smallest target radius (low-pass σ = radius / 2).
    #[default]
    Smallest,
    /// One search per distinct target radius, largest first, with an equal share of the kept
    /// places each: a blob detector tuned to a large class finds its same-size look-alikes,
    /// which a search at the tiny class's scale ranks below many small specks.
    Classes,
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
            negative_scales: NegativeScales::Smallest,
            negative_source: crate::mining::NegativeSource::Blobs,
            mine_every: 3,
            mine_region: 128,
            mine_max: 32,
            class_balanced: false,
            target_radius: 1.0,
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
        if !(self.target_radius > 0.0 && self.target_radius <= 1.0) {
            return Err(format!(
                "data.target_radius must be in (0, 1] (a share of each class's radius), got {}",
                self.target_radius
            ));
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
