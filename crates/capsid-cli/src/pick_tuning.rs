//! Choosing a trained model's picking settings on labelled data (after `capsid train`): segment a
//! tuning tomogram with the best weights and, for each class, try both pickers with the threshold
//! that gives the best strict F1 (tolerance 0.5 × radius): mean shift of the label map with a
//! minimum cluster size (fraction of the class's sphere volume), and peaks of the class's
//! probability map smoothed at half its radius with a minimum score. Mean shift, the seed's
//! picker, is kept unless peaks beat it by at least [`PEAKS_MARGIN_F1`]. Saved as the run's
//! `pick_settings.toml`, which `capsid pick` uses by default for maps of that model.

use anyhow::Context;
use capsid_core::{ClassTable, Particle, Volume};
use capsid_nn::data::TrainSample;
use capsid_nn::segment::{argmax_labels, segment_volume, Blend, NetPredictor, SegmentConfig};
use capsid_pick::{
    ClassPickSettings, MeanShiftParams, PickSettings, TunedMethod, PEAK_SIGMA_FRACTION,
};
use std::path::Path;

/// Strict tolerance, as a fraction of the class radius, used for tuning.
const TUNING_TOLERANCE: f64 = 0.5;

/// How much higher the tuning F1 of peaks must be for a class to be picked by peaks instead of
/// mean shift. One tuning tomogram is a small sample (one particle of 30 moves F1 by about 0.03):
/// on the demo data, peaks won the tuning by 0.001–0.047 and lost on the held-out tomogram by
/// 0.06–0.09 in every class, while on the independent generator the tiny class gained 0.18 in
/// tuning and 0.19–0.30 held out.
pub const PEAKS_MARGIN_F1: f64 = 0.05;

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
        ..SegmentConfig::default()
    };
    let mut predictor = NetPredictor {
        net,
        device: device.clone(),
        num_classes: net_cfg.num_classes(),
    };
    let probs = segment_volume(&sample.tomogram.data.view(), &cfg, &mut predictor)
        .with_context(|| format!("segmenting {} for pick tuning", sample.name))?;
    let labels = sample.tomogram.with_data(argmax_labels(&probs.view()));
    let mut settings = tune_on_label_map(&labels, sample, out_table, what)?;
    tune_peaks(&mut settings, &probs, &sample.tomogram, sample, out_table)?;
    settings.tuned_on = format!(
        "{what}: per class, mean shift of the label map (minimum cluster size) or peaks of the \
         probability map (minimum score), peaks only where their F1 is higher by at least \
         {PEAKS_MARGIN_F1}; strict F1 (tolerance {TUNING_TOLERANCE} × radius)"
    );
    let path = run.join(PickSettings::FILE);
    let text = settings.to_toml_string();
    capsid_core::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(settings)
}

/// The target particles of `sample` as named picks (class names of `out_table`).
fn truth_of(sample: &TrainSample, out_table: &ClassTable) -> Vec<Particle> {
    sample
        .particles
        .iter()
        .filter_map(|p| {
            let def = out_table.by_label(p.label)?;
            let [x, y, z] = p.center_xyz;
            Some(Particle::new(def.name.clone(), x, y, z))
        })
        .collect()
}

/// For each class of `settings` (tuned for mean shift), tunes peaks of its probability map
/// (`probs[label]`, `[C, z, y, x]` with the background at 0) and switches the class to peaks
/// when their strict F1 is higher by at least [`PEAKS_MARGIN_F1`].
pub fn tune_peaks(
    settings: &mut PickSettings,
    probs: &ndarray::Array4<f32>,
    grid: &Volume<f32>,
    sample: &TrainSample,
    out_table: &ClassTable,
) -> anyhow::Result<()> {
    let truth = truth_of(sample, out_table);
    let voxel = grid.voxel_size() as f64;
    for c in &out_table.classes {
        let r = c.radius_voxels(voxel);
        let map = grid.with_data(
            probs
                .index_axis(ndarray::Axis(0), c.label as usize)
                .to_owned(),
        );
        // Candidates down to 0.05: below it a peak is not a particle the network saw.
        let picks = capsid_pick::peaks(&map, &c.name, r, PEAK_SIGMA_FRACTION, 0.05)?;
        let t = capsid_eval::tune_min_score(&picks, &truth, &c.name, TUNING_TOLERANCE * r);
        let Some(s) = settings.classes.iter_mut().find(|s| s.name == c.name) else {
            continue;
        };
        eprintln!(
            "  {}: mean shift F1 {:.3} (min cluster {:.2} × sphere), peaks F1 {:.3} (min score {:.3})",
            c.name, s.tuning_f1, s.min_fraction, t.f1, t.threshold
        );
        s.min_score = t.threshold;
        s.sigma_fraction = PEAK_SIGMA_FRACTION;
        if t.tp > 0 && t.f1 >= s.tuning_f1 + PEAKS_MARGIN_F1 {
            s.method = TunedMethod::Peaks;
            s.tuning_f1 = t.f1;
            s.tuning_precision = t.precision;
            s.tuning_recall = t.recall;
        }
    }
    Ok(())
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
    let truth = truth_of(sample, out_table);
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
                method: TunedMethod::Meanshift,
                min_fraction: t.threshold,
                min_score: 0.0,
                sigma_fraction: PEAK_SIGMA_FRACTION,
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

/// Chooses and saves the run's picking settings (see `--no-pick-tuning`).
pub fn tune_after_training(
    cfg: &capsid_nn::train::TrainConfig,
    classes: &ClassTable,
    out_table: &ClassTable,
    run: &Path,
    device: &capsid_nn::burn::tensor::Device,
) -> anyhow::Result<()> {
    let (index, held_out) = cfg.tuning_input();
    let one = [cfg.inputs[index].clone()];
    let Some(sample) =
        capsid_nn::dataset::load_samples(&one, classes, &cfg.targets, cfg.data.target_radius)?
            .into_iter()
            .next()
    else {
        return Ok(());
    };
    if sample.particles.is_empty() {
        return Ok(());
    }
    let what = format!(
        "{} ({})",
        cfg.inputs[index].tomogram.display(),
        if held_out {
            "the validation tomogram"
        } else {
            "a training tomogram: optimistic; --split-by tomogram tunes on held-out data"
        }
    );
    let t0 = std::time::Instant::now();
    eprintln!("choosing picking settings on {what}");
    let settings =
        crate::pick_tuning::tune_and_save(run, &sample, out_table, cfg.data.patch, device, &what)?;
    for c in &settings.classes {
        let how = match c.method {
            capsid_pick::TunedMethod::Meanshift => {
                format!(
                    "mean shift, min cluster {:.2} × sphere volume",
                    c.min_fraction
                )
            }
            capsid_pick::TunedMethod::Peaks => {
                format!("peaks of the probability map, min score {:.3}", c.min_score)
            }
        };
        eprintln!(
            "  {} → {how} (F1 {:.3}, P {:.3}, R {:.3})",
            c.name, c.tuning_f1, c.tuning_precision, c.tuning_recall
        );
    }
    eprintln!(
        "→ {} ({:.0} s)",
        run.join(capsid_pick::PickSettings::FILE).display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
