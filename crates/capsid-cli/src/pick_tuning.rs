//! Choosing a trained model's picking settings on labelled data (after `capsid train`): segment a
//! tuning tomogram with the best weights, mean-shift the label map, and keep for each class the
//! minimum cluster size (fraction of the class's sphere volume) that gives the best strict F1
//! (tolerance 0.5 × radius). Saved as the run's `pick_settings.toml`, which `capsid pick` uses
//! by default for label maps of that model.

use anyhow::Context;
use capsid_core::{ClassTable, Particle, Volume};
use capsid_nn::data::TrainSample;
use capsid_nn::segment::{argmax_labels, segment_volume, Blend, NetPredictor, SegmentConfig};
use capsid_pick::{ClassPickSettings, MeanShiftParams, PickSettings};
use std::path::Path;

/// Strict tolerance, as a fraction of the class radius, used for tuning.
const TUNING_TOLERANCE: f64 = 0.5;

/// Tunes on `sample` (target labels 1..K of `out_table`) with the model in `run`, writes
/// `run/pick_settings.toml` and returns the settings.
pub fn tune_and_save(
    run: &Path,
    sample: &TrainSample,
    out_table: &ClassTable,
    train_patch: usize,
    device: &capsid_nn::burn::tensor::Device,
    what: &str,
) -> anyhow::Result<PickSettings> {
    let (net_cfg, net) = capsid_nn::model::load_model_folder(run, device)?;
    // The networks are fully convolutional: a larger window than the training patch computes
    // each voxel fewer times.
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
    };
    let mut predictor = NetPredictor {
        net,
        device: device.clone(),
        num_classes: net_cfg.num_classes(),
    };
    let probs = segment_volume(&sample.tomogram.data.view(), &cfg, &mut predictor)
        .with_context(|| format!("segmenting {} for pick tuning", sample.name))?;
    let labels = sample.tomogram.with_data(argmax_labels(&probs.view()));
    let settings = tune_on_label_map(&labels, sample, out_table, what)?;
    let path = run.join(PickSettings::FILE);
    let text = settings.to_toml_string();
    capsid_core::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(settings)
}

/// The per-class settings that maximise strict F1 of mean-shift picks from `labels` against the
/// target particles of `sample`.
pub fn tune_on_label_map(
    labels: &Volume<u8>,
    sample: &TrainSample,
    out_table: &ClassTable,
    what: &str,
) -> anyhow::Result<PickSettings> {
    let picks = capsid_pick::mean_shift(labels, out_table, &MeanShiftParams::default())?;
    let voxel = labels.voxel_size() as f64;
    let truth: Vec<Particle> = sample
        .particles
        .iter()
        .filter_map(|p| {
            let def = out_table.by_label(p.label)?;
            let [x, y, z] = p.center_xyz;
            Some(Particle::new(def.name.clone(), x, y, z))
        })
        .collect();
    let classes = out_table
        .classes
        .iter()
        .map(|c| {
            let r = c.radius_voxels(voxel);
            let t = capsid_eval::tune_min_fraction(
                &picks,
                &truth,
                &c.name,
                capsid_pick::sphere_volume_vox(r),
                TUNING_TOLERANCE * r,
                // `capsid pick`'s own default when a class cannot be tuned.
                0.0,
            );
            if t.tp == 0 {
                eprintln!(
                    "warning: class '{}': no picking threshold found a single particle on the tuning \
                     tomogram (the network has not learned this class); its picks keep the default \
                     (min_fraction 0) and are untuned",
                    c.name
                );
            }
            ClassPickSettings {
                name: c.name.clone(),
                min_fraction: t.min_fraction,
                tuning_f1: t.f1,
                tuning_precision: t.precision,
                tuning_recall: t.recall,
            }
        })
        .collect();
    Ok(PickSettings {
        capsid_version: capsid_core::VERSION.to_string(),
        tuned_on: format!(
            "{what}: mean shift of the label map, strict F1 (tolerance {TUNING_TOLERANCE} × radius)"
        ),
        classes,
    })
}
