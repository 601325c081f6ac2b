//! Patch sampling: the patches of each training step (particle-centred with a random shift,
//! hard negatives, background; a ChaCha8 stream keyed by `(seed, step)`) and the fixed
//! validation patches. Centres are `[x, y, z]`, corners `[z, y, x]`, in voxels.

use super::{patch_corner, Augment, DataConfig, PatchSpec, Split, TrainSample};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
