//! Hard-negative mining from the model's own false positives, between epochs.
//!
//! The blob detector of [`crate::negatives`] proposes look-alikes without a model: every dense
//! blob of about the right size. Most of them are things the network already rejects, and the
//! decoys that matter — an unlabelled complex of the target's size and mass but another shape —
//! are a few among many. Mining asks the network itself: every `mine_every` epochs it segments a
//! random region of each training tomogram, and the predicted target blobs that lie outside every
//! labelled particle (its false positives on data it trains on) join that tomogram's hard
//! negatives, which training then centres a share of its patches on
//! ([`crate::data::DataConfig::negative_ratio`]). This is the "mining between epochs" of
//! detection training (online hard-example mining), applied to whole particles.
//!
//! Units: voxels; volumes `[z, y, x]`; centres `[x, y, z]`. The pure pieces
//! ([`mining_region`], [`false_positive_centres`], [`merge_negatives`]) need no model.

use crate::data::TrainSample;
use crate::segment::{argmax_labels, segment_volume, PatchPredictor, SegmentConfig};
use crate::NnError;
use capsid_pick::components::{label_components, Connectivity};
use ndarray::{s, Array3, ArrayView3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;

/// Where hard negatives come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeSource {
    /// Particle-like blobs found without a model ([`crate::negatives`]), once before training.
    #[default]
    Blobs,
    /// The model's own false positives, mined every `mine_every` epochs (this module).
    Model,
    /// Both: the blobs from the start, the model's false positives added as training goes.
    Both,
}

impl NegativeSource {
    /// Whether the blob detector runs before training.
    pub fn uses_blobs(self) -> bool {
        matches!(self, Self::Blobs | Self::Both)
    }

    /// Whether the model's false positives are mined between epochs.
    pub fn uses_model(self) -> bool {
        matches!(self, Self::Model | Self::Both)
    }
}

/// One mined false positive.
#[derive(Debug, Clone, PartialEq)]
pub struct MinedNegative {
    /// Centre `[x, y, z]` in voxels of the tomogram.
    pub center_xyz: [f64; 3],
    /// The target label (1..=K) the model gave it.
    pub label: u8,
    /// Its size in voxels.
    pub voxels: usize,
}

/// The region mined in round `round` of sample `sample`: corner and size `[z, y, x]`, a cube of
/// side `side` (or the whole axis where the tomogram is thinner) at a position drawn from
/// `(seed, round, sample)` alone.
pub fn mining_region(
    shape_zyx: [usize; 3],
    side: usize,
    seed: u64,
    round: u64,
    sample: usize,
) -> ([usize; 3], [usize; 3]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d69_6e65);
    rng.set_stream(round.wrapping_mul(1 << 20).wrapping_add(sample as u64));
    let mut corner = [0usize; 3];
    let mut size = [0usize; 3];
    for a in 0..3 {
        size[a] = side.max(1).min(shape_zyx[a]);
        corner[a] = rng.gen_range(0..=shape_zyx[a] - size[a]);
    }
    (corner, size)
}

/// The model's false positives in one mined region: connected components (26-connectivity) of
/// the predicted target labels `pred` (`[z, y, x]`, 0 = background, 1..=K targets; the region at
/// `corner_zyx` of the tomogram) with at least `min_voxels[label − 1]` voxels and no labelled
/// voxel of `truth` (the whole tomogram's target labels) within `clearance_vox[label − 1]` of
/// their centroid (a cube of that half side). At most `max_count`: the largest of each label,
/// then the second largest of each, and so on (ties of rank by size).
pub fn false_positive_centres(
    pred: ArrayView3<u8>,
    corner_zyx: [usize; 3],
    truth: &Array3<u8>,
    min_voxels: &[usize],
    clearance_vox: &[usize],
    max_count: usize,
) -> Vec<MinedNegative> {
    let comps = label_components(pred, |v: u8| v, |_| 0.0, Connectivity::TwentySix);
    let (tz, ty, tx) = truth.dim();
    let mut found: Vec<MinedNegative> = comps
        .iter()
        .filter_map(|c| {
            let k = c.key as usize;
            if k == 0 || k > min_voxels.len() || c.size < min_voxels[k - 1].max(1) {
                return None;
            }
            let [cx, cy, cz] = c.centroid_xyz();
            let center = [
                cx + corner_zyx[2] as f64,
                cy + corner_zyx[1] as f64,
                cz + corner_zyx[0] as f64,
            ];
            let h = clearance_vox.get(k - 1).copied().unwrap_or(0) as isize;
            let at = |v: f64, n: usize| (v.round() as isize).clamp(0, n as isize - 1);
            let (x, y, z) = (at(center[0], tx), at(center[1], ty), at(center[2], tz));
            let lo = |v: isize| (v - h).max(0) as usize;
            let hi = |v: isize, n: usize| ((v + h) as usize).min(n - 1);
            let near = truth
                .slice(s![lo(z)..=hi(z, tz), lo(y)..=hi(y, ty), lo(x)..=hi(x, tx)])
                .iter()
                .any(|&l| l != 0);
            (!near).then_some(MinedNegative {
                center_xyz: center,
                label: c.key,
                voxels: c.size,
            })
        })
        .collect();
    // Largest first within each label, the labels taking turns (every class's false positives
    // get a share of `max_count`, whatever their number).
    found.sort_by(|a, b| {
        b.voxels
            .cmp(&a.voxels)
            .then(a.center_xyz[2].total_cmp(&b.center_xyz[2]))
    });
    let mut rank = [0usize; 256];
    let mut keyed: Vec<(usize, usize, MinedNegative)> = found
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let r = rank[m.label as usize];
            rank[m.label as usize] += 1;
            (r, i, m)
        })
        .collect();
    keyed.sort_by_key(|(r, i, _)| (*r, *i));
    keyed.truncate(max_count);
    keyed.into_iter().map(|(_, _, m)| m).collect()
}

/// Appends the centres of `new` that lie farther than `min_dist` voxels from every centre already
/// in `negatives` (and from each other); returns how many were added.
pub fn merge_negatives(
    negatives: &mut Vec<[f64; 3]>,
    new: &[MinedNegative],
    min_dist: f64,
) -> usize {
    let d2 = min_dist * min_dist;
    let mut added = 0;
    for m in new {
        let c = m.center_xyz;
        let close = negatives
            .iter()
            .any(|n| (n[0] - c[0]).powi(2) + (n[1] - c[1]).powi(2) + (n[2] - c[2]).powi(2) < d2);
        if !close {
            negatives.push(c);
            added += 1;
        }
    }
    added
}

/// Settings of one mining round, derived from the data config and the target radii.
#[derive(Debug, Clone, PartialEq)]
pub struct MiningRound {
    /// Side of the mined cube, voxels.
    pub region: usize,
    /// New negatives kept per tomogram and round.
    pub max_per_tomogram: usize,
    /// Smallest false positive per target label (index label − 1), voxels.
    pub min_voxels: Vec<usize>,
    /// Clearance from labelled voxels per target label, voxels.
    pub clearance_vox: Vec<usize>,
    /// Window of the sliding-window prediction.
    pub segment: SegmentConfig,
}

impl MiningRound {
    /// A component must hold a fifth of its class's target sphere (`target_radius` × the class
    /// radius; smaller ones are speckle) and lie a radius away from labelled voxels; windows are
    /// the training patch with a quarter overlap.
    pub fn new(
        region: usize,
        max_per_tomogram: usize,
        radii_vox: &[f64],
        target_radius: f64,
        patch: usize,
    ) -> Self {
        let sphere = |r: f64| 4.0 / 3.0 * std::f64::consts::PI * r.powi(3);
        Self {
            region,
            max_per_tomogram,
            min_voxels: radii_vox
                .iter()
                .map(|&r| (0.2 * sphere(r * target_radius)).round().max(2.0) as usize)
                .collect(),
            clearance_vox: radii_vox
                .iter()
                .map(|&r| r.round().max(1.0) as usize)
                .collect(),
            segment: SegmentConfig {
                patch,
                overlap: patch / 4,
                ..SegmentConfig::default()
            },
        }
    }
}

/// Mines the model's false positives in a random region of each sample of `which` (see
/// [`mining_region`]); returns `(sample index, negative)` pairs, largest first per sample.
pub fn mine_round(
    predictor: &mut dyn PatchPredictor,
    samples: &[TrainSample],
    which: &[usize],
    settings: &MiningRound,
    seed: u64,
    round: u64,
) -> Result<Vec<(usize, MinedNegative)>, NnError> {
    let mut out = Vec::new();
    for &si in which {
        let sample = &samples[si];
        let (corner, size) = mining_region(
            sample.tomogram.shape_zyx(),
            settings.region,
            seed,
            round,
            si,
        );
        let view = sample.tomogram.data.slice(s![
            corner[0]..corner[0] + size[0],
            corner[1]..corner[1] + size[1],
            corner[2]..corner[2] + size[2]
        ]);
        let probs = segment_volume(&view, &settings.segment, predictor)?;
        let pred = argmax_labels(&probs.view());
        let found = false_positive_centres(
            pred.view(),
            corner,
            &sample.labels,
            &settings.min_voxels,
            &settings.clearance_vox,
            settings.max_per_tomogram,
        );
        out.extend(found.into_iter().map(|m| (si, m)));
    }
    Ok(out)
}

/// File of the run folder that lists every mined negative (`mined_negatives.csv`).
pub const MINED_FILE: &str = "mined_negatives.csv";

/// Appends mined negatives to `path` (written whole to a temporary file, then renamed): one row per
/// negative, `sample,tomogram,x,y,z,epoch,label,voxels` (x, y, z in voxels of that tomogram).
pub fn append_mined_csv(
    path: &Path,
    samples: &[TrainSample],
    epoch: usize,
    mined: &[(usize, MinedNegative)],
) -> Result<(), NnError> {
    let io_err = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "sample,tomogram,x,y,z,epoch,label,voxels\n".to_string()
        }
        Err(e) => return Err(io_err(e)),
    };
    capsid_core::write_atomically(path, |w| {
        w.write_all(old.as_bytes())?;
        for (si, m) in mined {
            let [x, y, z] = m.center_xyz;
            writeln!(
                w,
                "{si},{},{x:.1},{y:.1},{z:.1},{epoch},{},{}",
                samples[*si].name, m.label, m.voxels
            )?;
        }
        Ok(())
    })
    .map_err(|e| io_err(std::io::Error::other(e.to_string())))
}

/// The negatives of an earlier `mined_negatives.csv` as `(sample index, centre [x, y, z])`, for a
/// resumed run; rows whose sample index or name does not match `samples` are skipped.
pub fn read_mined_csv(path: &Path, samples: &[TrainSample]) -> Vec<(usize, [f64; 3])> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() < 5 {
                return None;
            }
            let si: usize = f[0].parse().ok()?;
            if samples.get(si)?.name != f[1] {
                return None;
            }
            let c = [f[2].parse().ok()?, f[3].parse().ok()?, f[4].parse().ok()?];
            Some((si, c))
        })
        .collect()
}

/// One mining round during training: segments a random region of each training sample
/// with `net`, adds the false positives away from known negatives to the samples' hard negatives,
/// appends them to `mined_path` and returns (false positives found, negatives added).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mine_negatives(
    net: &crate::model::Net,
    samples: &mut std::sync::Arc<Vec<TrainSample>>,
    train_samples: &[usize],
    radii_vox: &[f64],
    cfg: &crate::train::TrainConfig,
    epoch: usize,
    mined_path: &Path,
    device: &burn::tensor::Device,
) -> Result<(usize, usize), NnError> {
    let settings = MiningRound::new(
        cfg.data.mine_region,
        cfg.data.mine_max,
        radii_vox,
        cfg.data.target_radius,
        cfg.data.patch * 2,
    );
    let mut predictor = crate::segment::NetPredictor {
        net: burn::module::Module::valid(net),
        device: device.clone(),
        num_classes: cfg.net.num_classes(),
    };
    let mined = mine_round(
        &mut predictor,
        samples,
        train_samples,
        &settings,
        cfg.seed,
        epoch as u64,
    )?;
    let r_min = crate::data::smallest_radius(radii_vox);
    let all = std::sync::Arc::make_mut(samples);
    let mut added = 0;
    for &si in train_samples {
        let of_sample: Vec<MinedNegative> = mined
            .iter()
            .filter(|(s, _)| *s == si)
            .map(|(_, m)| m.clone())
            .collect();
        added += merge_negatives(&mut all[si].negatives, &of_sample, r_min);
    }
    append_mined_csv(mined_path, samples, epoch, &mined)?;
    Ok((mined.len(), added))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_stay_inside_and_follow_the_seed() {
        let shape = [40, 100, 70];
        for round in 0..20 {
            let (c, n) = mining_region(shape, 64, 3, round, 1);
            assert_eq!(n, [40, 64, 64]);
            for a in 0..3 {
                assert!(c[a] + n[a] <= shape[a]);
            }
            assert_eq!(mining_region(shape, 64, 3, round, 1), (c, n));
        }
        let corners: std::collections::HashSet<_> = (0..20)
            .map(|r| mining_region(shape, 64, 3, r, 1).0)
            .collect();
        assert!(corners.len() > 5, "regions do not move: {corners:?}");
    }

    /// Draws a cube of label `l` with half side `h` centred at `c` (x, y, z).
    fn cube(map: &mut Array3<u8>, c: [usize; 3], h: usize, l: u8) {
        map.slice_mut(s![
            c[2] - h..=c[2] + h,
            c[1] - h..=c[1] + h,
            c[0] - h..=c[0] + h
        ])
        .fill(l);
    }

    #[test]
    fn false_positives_are_predicted_blobs_away_from_labels() {
        let mut truth = Array3::<u8>::zeros((30, 30, 30));
        cube(&mut truth, [8, 8, 8], 2, 1);
        let mut pred = Array3::<u8>::zeros((20, 20, 20));
        // On the labelled particle (region corner 0): not a false positive.
        cube(&mut pred, [8, 8, 8], 2, 1);
        // Far from labels, big enough: a false positive of label 2 (125 voxels).
        cube(&mut pred, [15, 15, 4], 2, 2);
        // Far from labels but a speckle: dropped.
        pred[[15, 3, 15]] = 1;
        // Far, label 1, 27 voxels.
        cube(&mut pred, [15, 4, 15], 1, 1);
        let found = false_positive_centres(pred.view(), [0, 0, 0], &truth, &[5, 5], &[2, 2], 10);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].label, 2);
        assert_eq!(found[0].voxels, 125);
        assert_eq!(found[0].center_xyz, [15.0, 15.0, 4.0]);
        assert_eq!(found[1].center_xyz, [15.0, 4.0, 15.0]);
        // Labels take turns: with room for two, each label's largest.
        let mut more = pred.clone();
        cube(&mut more, [4, 15, 15], 2, 2);
        let two = false_positive_centres(more.view(), [0, 0, 0], &truth, &[5, 5], &[2, 2], 2);
        assert_eq!(
            two.iter().map(|m| (m.label, m.voxels)).collect::<Vec<_>>(),
            vec![(2, 125), (1, 27)]
        );
        // The region's corner (z, y, x) shifts centres into tomogram coordinates.
        let shifted = false_positive_centres(pred.view(), [1, 2, 3], &truth, &[5, 5], &[2, 2], 1);
        assert_eq!(shifted.len(), 1);
        assert_eq!(shifted[0].center_xyz, [18.0, 17.0, 5.0]);
        // A labelled voxel within the clearance rules a blob out.
        cube(&mut truth, [15, 15, 7], 0, 1);
        let found = false_positive_centres(pred.view(), [0, 0, 0], &truth, &[5, 5], &[3, 3], 10);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].center_xyz, [15.0, 4.0, 15.0]);
    }

    #[test]
    fn merging_skips_centres_close_to_known_ones() {
        let mut negs = vec![[10.0, 10.0, 10.0]];
        let m = |c: [f64; 3]| MinedNegative {
            center_xyz: c,
            label: 1,
            voxels: 9,
        };
        let new = [
            m([11.0, 10.0, 10.0]),
            m([20.0, 10.0, 10.0]),
            m([21.0, 10.0, 10.0]),
        ];
        assert_eq!(merge_negatives(&mut negs, &new, 3.0), 1);
        assert_eq!(negs, vec![[10.0, 10.0, 10.0], [20.0, 10.0, 10.0]]);
    }
}
