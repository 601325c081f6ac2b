//! Choosing a trained model's picking settings after `capsid train` (see
//! [`capsid_nn::pick_tuning`]): the best weights segment a tuning tomogram, both pickers are
//! tuned per class at the strict tolerance, and the result is saved as the run's
//! `pick_settings.toml`, which `capsid pick` uses by default for maps of that model.

use capsid_core::ClassTable;
use capsid_nn::pick_tuning::{segment_for_tuning, tune_pick_settings, TuningTruth};
use capsid_pick::PickSettings;
use std::path::Path;

/// Tunes on `sample` (target labels 1..K of `out_table`) with the model in `run`, writes
/// `run/pick_settings.toml` and returns the settings.
fn tune_and_save(
    run: &Path,
    sample: &capsid_nn::data::TrainSample,
    out_table: &ClassTable,
    train_patch: usize,
    device: &capsid_nn::burn::tensor::Device,
    what: &str,
) -> anyhow::Result<PickSettings> {
    let (net_cfg, net) = capsid_nn::model::load_model_folder(run, device)?;
    let probs = segment_for_tuning(net, &net_cfg, &sample.tomogram, train_patch, device)
        .map_err(|e| anyhow::anyhow!("segmenting {} for pick tuning: {e}", sample.name))?;
    let truth = TuningTruth::all_of(sample, out_table);
    let (settings, tunings) =
        tune_pick_settings(&probs, &sample.tomogram, &truth, out_table, what)?;
    for t in &tunings {
        let s = &t.settings;
        eprintln!(
            "  {}: mean shift F1 {:.3} (min cluster {:.2} × sphere), peaks F1 {:.3} (min score {:.3})",
            s.name, t.meanshift_f1, s.min_fraction, t.peaks_f1, s.min_score
        );
        if t.meanshift_f1 <= 0.0 && t.peaks_f1 <= 0.0 {
            eprintln!(
                "warning: class '{}': no picking threshold found a single particle on the tuning \
                 tomogram (the network has not learned this class); its picks keep the default \
                 (min_fraction 0) and are untuned",
                s.name
            );
        }
    }
    let path = run.join(PickSettings::FILE);
    let text = settings.to_toml_string();
    capsid_core::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(settings)
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
    let settings = tune_and_save(run, &sample, out_table, cfg.data.patch, device, &what)?;
    print_settings(
        &settings,
        run,
        &format!("{:.0} s", t0.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// Prints the chosen picker of each class and where the settings went (`note` in brackets).
pub fn print_settings(settings: &PickSettings, run: &Path, note: &str) {
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
        "→ {} ({note})",
        run.join(capsid_pick::PickSettings::FILE).display()
    );
}
