//! Choosing a model's picking settings on labelled data, and scoring a model by its picks.
//!
//! A tuning tomogram is segmented with the model; for each class both pickers are tried with the
//! threshold that gives the best strict F1 (tolerance [`TUNING_TOLERANCE`] × radius, one-to-one
//! matching): mean shift of the label map with a minimum cluster size (a fraction of the
//! class's sphere volume), and peaks of the class's probability map smoothed at
//! [`PEAK_SIGMA_FRACTION`] of its radius with a minimum score. Mean shift, the seed's picker, is
//! kept unless peaks beat it by at least [`PEAKS_MARGIN_F1`].
//!
//! Used after training (`capsid train` saves the result as the run's `pick_settings.toml`) and
//! during training by the `val-pick-f1` monitor, which keeps the weights whose tuned picks score
//! best on the validation data (see [`crate::train::Monitor::ValPickF1`]). All coordinates are
//! x, y, z in voxels of the tuning tomogram; volumes are `[z, y, x]`.

use crate::data::TrainSample;
use crate::model::{Net, NetConfig};
use crate::segment::{argmax_labels, segment_volume, Blend, NetPredictor, SegmentConfig};
use crate::NnError;
use capsid_core::{ClassTable, Particle, Volume};
use capsid_pick::{
    ClassPickSettings, MeanShiftParams, PickSettings, TunedMethod, PEAK_SIGMA_FRACTION,
};

/// Strict tolerance, as a fraction of the class radius, used for tuning.
pub const TUNING_TOLERANCE: f64 = 0.5;

/// How much higher the tuning F1 of peaks must be for a class to be picked by peaks instead of
/// mean shift. One tuning tomogram is a small sample (one particle of 30 moves F1 by about 0.03):
/// on the demo data, peaks won the tuning by 0.001–0.047 and lost on the held-out tomogram by
/// 0.06–0.09 in every class, while on the independent generator the tiny class gained 0.18 in
/// tuning and 0.19–0.30 held out.
pub const PEAKS_MARGIN_F1: f64 = 0.05;

/// What to score picks against on the tuning tomogram.
#[derive(Debug, Clone, Default)]
pub struct TuningTruth {
    /// The particles to find (class names of the output class table).
    pub truth: Vec<Particle>,
    /// Particles that are neither to be found nor false picks: the training particles of a
    /// tomogram that also holds validation particles. A pick of a class within the strict
    /// tolerance of such a particle of its class is left out before scoring.
    pub ignored: Vec<Particle>,
}

impl TuningTruth {
    /// Every target particle of `sample` is to be found.
    pub fn all_of(sample: &TrainSample, out_table: &ClassTable) -> Self {
        Self {
            truth: named_particles(sample, out_table, |_| true),
            ignored: vec![],
        }
    }

    /// The particles of `sample` whose index `is_validation` accepts are to be found; the others
    /// (training particles) are ignored.
    pub fn validation_of(
        sample: &TrainSample,
        out_table: &ClassTable,
        is_validation: impl Fn(usize) -> bool,
    ) -> Self {
        Self {
            truth: named_particles(sample, out_table, &is_validation),
            ignored: named_particles(sample, out_table, |i| !is_validation(i)),
        }
    }
}

/// The target particles of `sample` whose index `keep` accepts, as picks named by the classes of
/// `out_table` (labels 1..K).
fn named_particles(
    sample: &TrainSample,
    out_table: &ClassTable,
    keep: impl Fn(usize) -> bool,
) -> Vec<Particle> {
    sample
        .particles
        .iter()
        .enumerate()
        .filter(|&(i, _)| keep(i))
        .filter_map(|(_, p)| {
            let def = out_table.by_label(p.label)?;
            let [x, y, z] = p.center_xyz;
            Some(Particle::new(def.name.clone(), x, y, z))
        })
        .collect()
}

/// `picks` without those of a class lying within `tolerance_of(class)` voxels of an ignored
/// particle of that class.
fn without_ignored(
    picks: Vec<Particle>,
    ignored: &[Particle],
    tolerance_of: impl Fn(&str) -> f64,
) -> Vec<Particle> {
    if ignored.is_empty() {
        return picks;
    }
    picks
        .into_iter()
        .filter(|p| {
            let tol = tolerance_of(&p.class);
            !ignored
                .iter()
                .any(|q| q.class == p.class && distance(p, q) <= tol)
        })
        .collect()
}

fn distance(a: &Particle, b: &Particle) -> f64 {
    let d = [a.x - b.x, a.y - b.y, a.z - b.z];
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// Segments `tomogram` (`[z, y, x]`) with `net` (inference mode) for tuning: windows of 64 voxels
/// where the network takes them (it is fully convolutional; a larger window than the training
/// patch computes each voxel fewer times), else `train_patch`; overlap 16, no test-time
/// augmentation. Returns the class probabilities `[C, z, y, x]`.
pub fn segment_for_tuning(
    net: Net,
    net_cfg: &NetConfig,
    tomogram: &Volume<f32>,
    train_patch: usize,
    device: &burn::tensor::Device,
) -> Result<ndarray::Array4<f32>, NnError> {
    let patch = if net_cfg.check_patch([64; 3]).is_ok() {
        train_patch.max(64)
    } else {
        train_patch
    };
    let cfg = SegmentConfig {
        patch,
        overlap: 16.min(patch / 2),
        blend: Blend::Uniform,
        tta: false,
        batch: 1,
        ..SegmentConfig::default()
    };
    let mut predictor = NetPredictor {
        net,
        device: device.clone(),
        num_classes: net_cfg.num_classes(),
    };
    segment_volume(&tomogram.data.view(), &cfg, &mut predictor)
}

/// One class's tuning: the chosen settings and both pickers' best F1.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassTuning {
    pub settings: ClassPickSettings,
    pub meanshift_f1: f64,
    pub peaks_f1: f64,
}

/// The picking settings with the best strict F1 per class, from a segmentation `probs`
/// (`[C, z, y, x]`, background at 0, classes 1..K of `out_table`) of the tomogram `grid` (its
/// voxel size and shape; its data are not read), scored against `truth`. `what` names the
/// tuning data in the settings' record.
pub fn tune_pick_settings(
    probs: &ndarray::Array4<f32>,
    grid: &Volume<f32>,
    truth: &TuningTruth,
    out_table: &ClassTable,
    what: &str,
) -> Result<(PickSettings, Vec<ClassTuning>), NnError> {
    let pick_err = |e: capsid_pick::PickError| NnError::Data(format!("pick tuning: {e}"));
    let voxel = grid.voxel_size() as f64;
    let radius_of = |name: &str| {
        out_table
            .classes
            .iter()
            .find(|c| c.name == name)
            .map_or(0.0, |c| c.radius_voxels(voxel))
    };
    let tolerance_of = |name: &str| TUNING_TOLERANCE * radius_of(name);
    let labels = grid.with_data(argmax_labels(&probs.view()));
    let clusters = without_ignored(
        capsid_pick::mean_shift(&labels, out_table, &MeanShiftParams::default())
            .map_err(pick_err)?,
        &truth.ignored,
        tolerance_of,
    );
    let mut tunings = Vec::with_capacity(out_table.classes.len());
    for c in &out_table.classes {
        let r = c.radius_voxels(voxel);
        let ms = capsid_eval::tune_min_fraction(
            &clusters,
            &truth.truth,
            &c.name,
            capsid_pick::sphere_volume_vox(r),
            TUNING_TOLERANCE * r,
            // `capsid pick`'s own default when a class cannot be tuned.
            0.0,
        );
        let map = grid.with_data(
            probs
                .index_axis(ndarray::Axis(0), c.label as usize)
                .to_owned(),
        );
        // Candidates down to 0.05: below it a peak is not a particle the network saw.
        let peaks = without_ignored(
            capsid_pick::peaks(&map, &c.name, r, PEAK_SIGMA_FRACTION, 0.05).map_err(pick_err)?,
            &truth.ignored,
            tolerance_of,
        );
        let pk = capsid_eval::tune_min_score(&peaks, &truth.truth, &c.name, TUNING_TOLERANCE * r);
        let use_peaks = pk.tp > 0 && pk.f1 >= ms.f1 + PEAKS_MARGIN_F1;
        let chosen = if use_peaks { &pk } else { &ms };
        tunings.push(ClassTuning {
            settings: ClassPickSettings {
                name: c.name.clone(),
                method: if use_peaks {
                    TunedMethod::Peaks
                } else {
                    TunedMethod::Meanshift
                },
                min_fraction: ms.threshold,
                min_score: pk.threshold,
                sigma_fraction: PEAK_SIGMA_FRACTION,
                tuning_f1: chosen.f1,
                tuning_precision: chosen.precision,
                tuning_recall: chosen.recall,
            },
            meanshift_f1: ms.f1,
            peaks_f1: pk.f1,
        });
    }
    let settings = PickSettings {
        capsid_version: capsid_core::VERSION.to_string(),
        tuned_on: format!(
            "{what}: per class, mean shift of the label map (minimum cluster size) or peaks of the \
             probability map (minimum score), peaks only where their F1 is higher by at least \
             {PEAKS_MARGIN_F1}; strict F1 (tolerance {TUNING_TOLERANCE} × radius)"
        ),
        classes: tunings.iter().map(|t| t.settings.clone()).collect(),
    };
    Ok((settings, tunings))
}

/// The mean over classes of the tuned strict F1: the `val-pick-f1` monitor's score.
pub fn mean_tuned_f1(settings: &PickSettings) -> f64 {
    let n = settings.classes.len().max(1) as f64;
    settings.classes.iter().map(|c| c.tuning_f1).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::ClassDef;

    fn table() -> ClassTable {
        ClassTable {
            classes: [("big", 1, 4.0), ("small", 2, 2.0)]
                .into_iter()
                .map(|(name, label, r)| ClassDef {
                    name: name.into(),
                    label,
                    radius_a: None,
                    radius_vox: Some(r),
                    template: None,
                    symmetry: None,
                })
                .collect(),
        }
    }

    /// A segmentation with a perfect sphere of class 1 at each `big` centre.
    fn probs_with_spheres(shape: [usize; 3], centres: &[[f64; 3]], r: f64) -> ndarray::Array4<f32> {
        let [nz, ny, nx] = shape;
        let mut p = ndarray::Array4::<f32>::zeros((3, nz, ny, nx));
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let inside = centres.iter().any(|c| {
                        let d = [x as f64 - c[0], y as f64 - c[1], z as f64 - c[2]];
                        d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= r * r
                    });
                    p[[if inside { 1 } else { 0 }, z, y, x]] = 1.0;
                }
            }
        }
        p
    }

    #[test]
    fn ignored_particles_are_neither_found_nor_false() {
        // Four "big" particles (radius 4 voxels) are segmented perfectly; two are
        // validation particles, two training ones.
        let centres = [
            [8.0, 8.0, 8.0],
            [24.0, 8.0, 8.0],
            [8.0, 24.0, 8.0],
            [24.0, 24.0, 8.0],
        ];
        let probs = probs_with_spheres([16, 32, 32], &centres, 4.0);
        let grid = Volume::new(ndarray::Array3::<f32>::zeros((16, 32, 32)), 10.0);
        let table = table();
        let named = |cs: &[[f64; 3]]| -> Vec<Particle> {
            cs.iter()
                .map(|c| Particle::new("big", c[0], c[1], c[2]))
                .collect()
        };
        // Without the training particles ignored, they count as false picks: P = 0.5.
        let plain = TuningTruth {
            truth: named(&centres[..2]),
            ignored: vec![],
        };
        let (s, t) = tune_pick_settings(&probs, &grid, &plain, &table, "test").unwrap();
        let big = &t[0];
        assert!((big.meanshift_f1 - 2.0 / 3.0).abs() < 1e-9, "{big:?}");
        assert_eq!(s.classes[0].name, "big");
        // Ignored: both validation particles found, nothing false.
        let split = TuningTruth {
            truth: named(&centres[..2]),
            ignored: named(&centres[2..]),
        };
        let (s, t) = tune_pick_settings(&probs, &grid, &split, &table, "test").unwrap();
        assert!((t[0].meanshift_f1 - 1.0).abs() < 1e-9, "{:?}", t[0]);
        assert_eq!(s.classes[0].method, TunedMethod::Meanshift);
        // The class with nothing to find scores 0, so the mean is 0.5.
        assert!((mean_tuned_f1(&s) - 0.5).abs() < 1e-9);
    }
}
