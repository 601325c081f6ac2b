//! Training a network on patches: Adam, reduce-on-plateau, early stopping, checkpoints, resume.
//!
//! * [`TrainConfig`] (serde, every field defaulted, [`TrainConfig::validate`]) holds the network
//!   config ([`NetConfig`]), the data settings ([`crate::data::DataConfig`]), the chosen target classes, the
//!   inputs (paths, for the record and for `--resume`) and the optimisation settings (paper
//!   defaults: Adam lr 1e-4, weight decay 1e-6, batch 24, LR ×0.1 after 5 epochs without
//!   improvement).
//! * [`train`] runs the loop and writes a **run folder** (see [`RunLayout`]):
//!   `config.toml` (resolved config + capsid version), `class_table.toml` (the target classes with
//!   their output labels 1..K), `net.toml` + `weights.bpk` (the best model: a model folder that
//!   [`crate::model::load_model_folder`] reads), `last/` (latest weights, Adam state and
//!   `train_state.json`, for `--resume`), `checkpoints/step_<N>.bpk` and `metrics.csv` (the
//!   CLI adds `learning_curve.png` through [`TrainObserver::on_epoch_saved`]).
//!
//! The loss of a step is Dice + cross-entropy (optionally class-weighted), plus for 3D-UCaps
//! `recon_weight` × the reconstruction loss and `margin_weight` × the capsule margin loss. The
//! validation loss is Dice + cross-entropy alone (same weights), on the fixed validation patches
//! with the network in evaluation mode.

use crate::data::{
    label_counts, make_batch, split, validation_patches, Batch, BatchStream, TrainSample,
};
use crate::loss::{
    class_weights_inverse_frequency, dice_ce_loss, downsample_labels, margin_loss, recon_loss,
};
use crate::metrics::{read_metrics_csv, write_metrics_csv, EpochRecord, VoxelCounts};
use crate::mining;
use crate::model::{save_model_folder, Net, NetConfig, NetOutput};
use crate::NnError;
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use capsid_core::ClassTable;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

mod config;
mod state;

pub use config::*;
pub use state::*;

fn io_err(path: &Path, e: impl std::fmt::Display) -> NnError {
    NnError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), NnError> {
    capsid_core::write_atomically(path, |w| w.write_all(text.as_bytes()))
        .map_err(|e| io_err(path, e))
}

/// The loss of one training step (see the module docs).
fn step_loss(
    cfg: &NetConfig,
    out: NetOutput,
    x: Tensor<5>,
    y: Tensor<4, Int>,
    weights: Option<&[f32]>,
) -> Tensor<1> {
    let mut loss = dice_ce_loss(out.logits, y.clone(), weights);
    if let NetConfig::Ucaps(u) = cfg {
        if let Some(recon) = out.recon {
            if u.recon_weight > 0.0 {
                loss = loss + recon_loss(recon, x, Some(y.clone())).mul_scalar(u.recon_weight);
            }
        }
        if let (Some(lengths), Some(f)) = (out.capsule_lengths, cfg.capsule_downsampling()) {
            if u.margin_weight > 0.0 {
                let yd = downsample_labels(y, cfg.num_classes(), f);
                loss = loss + margin_loss(lengths, yd, 0.2, 0.5).mul_scalar(u.margin_weight);
            }
        }
    }
    loss
}

fn batch_tensors(b: &Batch, device: &Device) -> (Tensor<5>, Tensor<4, Int>) {
    let p = b.patch;
    let x = Tensor::<5>::from_data(TensorData::new(b.x.clone(), [b.size, 1, p, p, p]), device);
    let y: Vec<i64> = b.y.iter().map(|&v| v as i64).collect();
    let y = Tensor::<4, Int>::from_data(TensorData::new(y, [b.size, p, p, p]), device);
    (x, y)
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN) as f64
}

/// Validation loss and voxel counts of `net` (evaluation mode) on the fixed patches.
fn validate(
    net: &Net,
    samples: &[TrainSample],
    specs: &[crate::data::PatchSpec],
    cfg: &TrainConfig,
    weights: Option<&[f32]>,
    device: &Device,
) -> (f64, VoxelCounts) {
    let c = cfg.net.num_classes();
    let mut counts = VoxelCounts::new(c);
    if specs.is_empty() {
        return (f64::NAN, counts);
    }
    let eval = net.valid();
    let vb = if cfg.val_batch == 0 {
        cfg.batch
    } else {
        cfg.val_batch
    };
    let (mut loss_sum, mut n) = (0.0f64, 0usize);
    for (i, chunk) in specs.chunks(vb.max(1)).enumerate() {
        let b = make_batch(samples, chunk, cfg.data.patch, i as u64);
        let (x, y) = batch_tensors(&b, device);
        let logits = eval.forward(x).logits;
        let pred = logits.clone().argmax(1);
        loss_sum += scalar(dice_ce_loss(logits, y, weights)) * chunk.len() as f64;
        n += chunk.len();
        let pred: Vec<u8> = pred
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.clamp(0, 255) as u8)
            .collect();
        counts.add(&pred, &b.y);
    }
    (loss_sum / n.max(1) as f64, counts)
}

/// Sets the convolutions' product precision for this process and says which one runs.
fn apply_precision(p: Precision, observer: &mut dyn TrainObserver) {
    capsid_conv::set_settings(capsid_conv::ConvSettings {
        precision: p.to_conv(),
        ..capsid_conv::settings()
    });
    match (p, p.to_conv().in_use()) {
        (Precision::Bf16, capsid_conv::Precision::Bf16) => observer.message(
            "convolution products in bf16 (AVX512-BF16, f32 sums; f32 weights and optimiser)",
        ),
        (Precision::Bf16, _) => observer.message(
            "precision bf16 asked for, but this CPU has no AVX512-BF16: products stay f32",
        ),
        _ => {}
    }
}

/// Trains on `samples` (target labels already remapped, see [`crate::data::make_sample`]) and
/// writes the run folder `out`. `classes` is the output class table ([`output_class_table`]);
/// its length + 1 must equal the network's class count. `device` is a plain device; training
/// uses its autodiff decorator.
pub fn train(
    mut samples: Vec<TrainSample>,
    classes: &ClassTable,
    cfg: &TrainConfig,
    out: &Path,
    device: &Device,
    opts: &TrainOptions,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary, NnError> {
    cfg.validate().map_err(NnError::Config)?;
    apply_precision(cfg.precision, observer);
    let num_classes = cfg.net.num_classes();
    if classes.classes.len() + 1 != num_classes {
        return Err(NnError::Config(format!(
            "the network has {num_classes} classes but there are {} target classes (+ background)",
            classes.classes.len()
        )));
    }
    if samples.is_empty() {
        return Err(NnError::Data("no training tomograms".into()));
    }
    for s in &samples {
        let sh = s.tomogram.shape_zyx();
        if sh.contains(&0) {
            return Err(NnError::Data(format!("{}: empty tomogram", s.name)));
        }
        if let Some(&bad) = s.labels.iter().find(|&&l| l as usize >= num_classes) {
            return Err(NnError::Data(format!(
                "{}: label {bad} is not below {num_classes}",
                s.name
            )));
        }
    }
    let class_names: Vec<String> = classes.classes.iter().map(|c| c.name.clone()).collect();
    let last_dir = out.join(RunLayout::LAST);
    let ckpt_dir = out.join(RunLayout::CHECKPOINTS);
    for d in [out, &last_dir, &ckpt_dir] {
        std::fs::create_dir_all(d).map_err(|source| NnError::Io {
            path: d.to_path_buf(),
            source,
        })?;
    }
    let ad = device.clone().autodiff();
    let adam = AdamConfig::new().with_epsilon(1e-8).with_weight_decay(
        (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)),
    );

    // Fresh start or resume.
    let (mut net, mut optim, mut state, mut records): (
        Net,
        ModuleOptimizer,
        TrainState,
        Vec<EpochRecord>,
    ) = if opts.resume {
        let state_path = last_dir.join(RunLayout::STATE);
        let text = std::fs::read_to_string(&state_path).map_err(|source| NnError::Io {
            path: state_path.clone(),
            source,
        })?;
        let state: TrainState = serde_json::from_str(&text).map_err(|e| NnError::Model {
            path: state_path.clone(),
            reason: e.to_string(),
        })?;
        let net = Net::load(&cfg.net, &last_dir.join(crate::model::WEIGHTS_FILE), &ad)?;
        let opt_path = last_dir.join(RunLayout::OPTIMIZER);
        let optim = adam.init().load(&opt_path).map_err(|e| NnError::Model {
            path: opt_path.clone(),
            reason: format!("optimizer state: {e:?}"),
        })?;
        let metrics_path = out.join(RunLayout::METRICS);
        let mut records = if metrics_path.exists() {
            read_metrics_csv(&metrics_path, class_names.len())?
        } else {
            vec![]
        };
        records.retain(|r| r.epoch <= state.epochs_done);
        let mut state = state;
        // A run that ended by reaching its epochs continues when more epochs are asked for.
        let early_stopped =
            cfg.early_stop_patience > 0 && state.stale_epochs >= cfg.early_stop_patience;
        if state.finished && state.epochs_done < cfg.epochs && !early_stopped {
            state.finished = false;
        }
        (net, optim, state, records)
    } else {
        let net = Net::try_init(&cfg.net, &ad, cfg.seed)?;
        let state = TrainState {
            global_step: 0,
            epochs_done: 0,
            steps_in_epoch: 0,
            epoch_loss_sum: 0.0,
            lr: cfg.lr,
            best: f64::INFINITY,
            best_pick_f1: NO_PICK_F1,
            best_epoch: 0,
            stale_epochs: 0,
            plateau_epochs: 0,
            elapsed_s: 0.0,
            finished: false,
        };
        (net, adam.init(), state, vec![])
    };
    write_text(&out.join(RunLayout::CONFIG), &cfg.to_toml())?;
    write_text(&out.join(RunLayout::CLASS_TABLE), &classes.to_toml_string())?;

    let weights: Option<Vec<f32>> = cfg
        .class_weights
        .then(|| class_weights_inverse_frequency(&label_counts(&samples, num_classes)));
    let voxel_a = samples[0].tomogram.voxel_size_a[0] as f64;
    let radii: Vec<f64> = classes
        .classes
        .iter()
        .map(|c| c.radius().to_voxels(voxel_a))
        .collect();
    if cfg.data.negative_ratio > 0.0 && cfg.data.negative_source.uses_blobs() {
        crate::data::add_negatives(
            &mut samples,
            &radii,
            cfg.data.negatives_per_particle,
            cfg.data.negative_scales,
        );
        let found: usize = samples.iter().map(|s| s.negatives.len()).sum();
        observer.message(&format!(
            "hard negatives: {found} particle-like places outside the labelled particles in {} tomogram(s)",
            samples.len()
        ));
    }
    let mined_path = out.join(mining::MINED_FILE);
    if opts.resume {
        if cfg.data.negative_source.uses_model() {
            // The negatives mined before the interruption.
            for (si, c) in mining::read_mined_csv(&mined_path, &samples) {
                samples[si].negatives.push(c);
            }
        }
    } else if mined_path.exists() {
        // A replaced run's list would be mistaken for this one's.
        std::fs::remove_file(&mined_path).map_err(|e| io_err(&mined_path, e))?;
    }
    let mut samples = Arc::new(samples);
    let sp = Arc::new(split(&samples, &cfg.data, cfg.seed));
    if sp.train_particles.is_empty() && sp.train_samples.is_empty() {
        return Err(NnError::Data("the split left nothing to train on".into()));
    }
    let val_specs = validation_patches(&samples, &sp, &cfg.data, cfg.seed);
    let pick_target = if cfg.monitor == Monitor::ValPickF1 {
        let target = pick_target(&samples, &sp, &cfg.data, classes);
        match &target {
            Some(t) => observer.message(&format!(
                "val-pick-f1: every {} epoch(s) the model segments and picks {}, scored on {} particle(s)",
                cfg.val_pick_every,
                t.what,
                t.truth.truth.len()
            )),
            None => observer.message(
                "val-pick-f1: no particle to pick on the tuning tomogram; the kept model is chosen by the validation loss (the training loss without validation data)",
            ),
        }
        target
    } else {
        None
    };
    let pick_metrics_path = out.join(PICK_METRICS);
    let mut pick_rows: Vec<String> = if opts.resume && pick_metrics_path.exists() {
        // The evaluations before the interruption (epochs not redone).
        std::fs::read_to_string(&pick_metrics_path)
            .map_err(|e| io_err(&pick_metrics_path, e))?
            .lines()
            .skip(1)
            .filter(|l| {
                l.split(',')
                    .next()
                    .and_then(|e| e.parse::<usize>().ok())
                    .is_some_and(|e| e <= state.epochs_done)
            })
            .map(String::from)
            .collect()
    } else {
        vec![]
    };
    if !opts.resume {
        // A replaced run's files would be mistaken for this one's.
        for stale in [
            pick_metrics_path.clone(),
            out.join(capsid_pick::PickSettings::FILE),
        ] {
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|e| io_err(&stale, e))?;
            }
        }
    }
    let mut pick_settings_saved = false;
    let total_steps = cfg.epochs as u64 * cfg.steps_per_epoch as u64;
    let first = state.global_step;
    let start_stream = |samples: &Arc<Vec<TrainSample>>, first: u64| {
        BatchStream::start(
            samples.clone(),
            sp.clone(),
            cfg.data.clone(),
            cfg.batch,
            cfg.seed,
            first,
            total_steps.max(first),
            2,
        )
    };
    let mut stream = Some(start_stream(&samples, first));
    let save_last =
        |net: &Net, optim: &ModuleOptimizer, state: &TrainState| -> Result<(), NnError> {
            net.save(&last_dir.join(crate::model::WEIGHTS_FILE))?;
            let cfg_text = cfg.net.to_toml();
            write_text(&last_dir.join(crate::model::CONFIG_FILE), &cfg_text)?;
            let opt_path = last_dir.join(RunLayout::OPTIMIZER);
            let bytes = optim
                .into_bytes()
                .map_err(|e| io_err(&opt_path, format!("{e:?}")))?;
            capsid_core::write_atomically(&opt_path, |w| w.write_all(&bytes))
                .map_err(|e| io_err(&opt_path, e))?;
            let json = serde_json::to_string_pretty(state).unwrap_or_default();
            write_text(&last_dir.join(RunLayout::STATE), &json)
        };

    let started = Instant::now();
    let elapsed0 = state.elapsed_s;
    let mut steps_this_call = 0u64;
    let mut reason = "epochs".to_string();
    if state.finished {
        reason = "already finished".into();
    }
    while !state.finished && state.epochs_done < cfg.epochs {
        // Steps of the current epoch.
        while state.steps_in_epoch < cfg.steps_per_epoch as u64 {
            if opts.stop_after_steps.is_some_and(|n| steps_this_call >= n) {
                state.elapsed_s = elapsed0 + started.elapsed().as_secs_f64();
                save_last(&net, &optim, &state)?;
                return Ok(TrainSummary {
                    state,
                    records,
                    reason: "interrupted".into(),
                    pick_settings_saved,
                });
            }
            if cfg.lr_schedule == LrSchedule::Cosine {
                let by_steps = state.global_step.saturating_sub(cfg.warmup_steps) as f64
                    / total_steps.saturating_sub(cfg.warmup_steps).max(1) as f64;
                let by_time = if cfg.time_budget_min > 0.0 {
                    (elapsed0 + started.elapsed().as_secs_f64()) / (cfg.time_budget_min * 60.0)
                } else {
                    0.0
                };
                state.lr = cosine_lr(
                    cfg.lr,
                    cfg.min_lr,
                    state.global_step,
                    cfg.warmup_steps,
                    by_steps.max(by_time),
                );
            }
            let t0 = Instant::now();
            let batch = stream
                .as_mut()
                .and_then(|s| s.next_batch())
                .ok_or_else(|| NnError::Data("the batch producer stopped early".into()))?;
            debug_assert_eq!(batch.step, state.global_step);
            let (x, y) = batch_tensors(&batch, &ad);
            let out_t = net.forward(x.clone());
            let loss = step_loss(&cfg.net, out_t, x, y, weights.as_deref());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let loss_v = scalar(loss.detach());
            net = optim.step(state.lr, net, grads);
            if !loss_v.is_finite() {
                return Err(NnError::Data(format!(
                    "the training loss became {loss_v} at step {} (lower the learning rate?)",
                    state.global_step + 1
                )));
            }
            state.global_step += 1;
            state.steps_in_epoch += 1;
            state.epoch_loss_sum += loss_v;
            steps_this_call += 1;
            let rate = batch.size as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            observer.on_step(state.global_step, total_steps, loss_v, rate);
            if cfg.checkpoint_every > 0 && state.global_step % cfg.checkpoint_every == 0 {
                net.save(&ckpt_dir.join(format!("step_{:07}.bpk", state.global_step)))?;
                state.elapsed_s = elapsed0 + started.elapsed().as_secs_f64();
                save_last(&net, &optim, &state)?;
            }
        }
        // End of epoch: validation, bookkeeping, files.
        let epoch = state.epochs_done + 1;
        let train_loss = state.epoch_loss_sum / state.steps_in_epoch.max(1) as f64;
        let (val_loss, counts) =
            validate(&net, &samples, &val_specs, cfg, weights.as_deref(), device);
        let rec = EpochRecord {
            epoch,
            step: state.global_step,
            lr: state.lr,
            train_loss,
            val_loss,
            precision: (1..num_classes).map(|k| counts.precision(k)).collect(),
            recall: (1..num_classes).map(|k| counts.recall(k)).collect(),
            f1: (1..num_classes).map(|k| counts.f1(k)).collect(),
            elapsed_s: elapsed0 + started.elapsed().as_secs_f64(),
        };
        // Whether the time budget ends the run after this epoch (at the mean epoch time so far).
        let elapsed_now = elapsed0 + started.elapsed().as_secs_f64();
        let over_budget = cfg.time_budget_min > 0.0
            && elapsed_now + elapsed_now / epoch.max(1) as f64 > cfg.time_budget_min * 60.0;
        let last_epoch = epoch >= cfg.epochs || over_budget;
        let pick_eval = match &pick_target {
            Some(target) if epoch % cfg.val_pick_every == 0 || last_epoch => {
                let t_pick = Instant::now();
                let sample = &samples[target.sample];
                let probs = crate::pick_tuning::segment_for_tuning(
                    net.valid(),
                    &cfg.net,
                    &sample.tomogram,
                    cfg.data.patch,
                    device,
                )?;
                let (settings, tunings) = crate::pick_tuning::tune_pick_settings(
                    &probs,
                    &sample.tomogram,
                    &target.truth,
                    classes,
                    &target.what,
                )?;
                let mean = crate::pick_tuning::mean_tuned_f1(&settings);
                observer.message(&format!(
                    "epoch {epoch}: pick F1 on {} {mean:.3} ({}; {:.0} s)",
                    sample.name,
                    tunings
                        .iter()
                        .map(|t| format!("{} {:.3}", t.settings.name, t.settings.tuning_f1))
                        .collect::<Vec<_>>()
                        .join(", "),
                    t_pick.elapsed().as_secs_f64()
                ));
                pick_rows.push(pick_row(epoch, state.global_step, mean, &settings));
                write_text(&out.join(PICK_METRICS), &pick_csv(&class_names, &pick_rows))?;
                Some((mean, settings))
            }
            _ => None,
        };
        // The schedule (plateau, early stopping) follows the validation loss, or the voxel F1 of
        // the validation patches for `val-f1`; the pick monitor's evaluations are too sparse to
        // drive it, so with `val-pick-f1` they only choose the weights that are kept.
        let schedule_value = match cfg.monitor {
            Monitor::ValF1 if !val_specs.is_empty() => -counts.mean_f1(),
            _ if val_loss.is_finite() => val_loss,
            _ => train_loss,
        };
        let schedule_improved = schedule_value < state.best;
        if schedule_improved {
            state.best = schedule_value;
            state.stale_epochs = 0;
            state.plateau_epochs = 0;
        } else {
            state.stale_epochs += 1;
            state.plateau_epochs += 1;
            if cfg.lr_schedule == LrSchedule::Plateau
                && cfg.plateau_patience > 0
                && state.plateau_epochs >= cfg.plateau_patience
            {
                state.lr = (state.lr * cfg.plateau_factor).max(cfg.min_lr);
                state.plateau_epochs = 0;
            }
        }
        let keep = if pick_target.is_some() {
            // Strictly better picks only: a tie keeps the earlier weights.
            pick_eval
                .as_ref()
                .is_some_and(|(mean, _)| *mean > state.best_pick_f1)
        } else {
            schedule_improved
        };
        if keep {
            state.best_epoch = epoch;
            save_model_folder(out, &cfg.net, &net)?;
            if let Some((mean, settings)) = &pick_eval {
                state.best_pick_f1 = *mean;
                let text = settings.to_toml_string();
                write_text(&out.join(capsid_pick::PickSettings::FILE), &text)?;
                pick_settings_saved = true;
            }
        }
        state.epochs_done = epoch;
        state.steps_in_epoch = 0;
        state.epoch_loss_sum = 0.0;
        observer.on_epoch(&rec);
        records.push(rec);
        if cfg.early_stop_patience > 0 && state.stale_epochs >= cfg.early_stop_patience {
            state.finished = true;
            reason = "early stopping".into();
        }
        if state.epochs_done >= cfg.epochs {
            state.finished = true;
        }
        if cfg.data.negative_source.uses_model()
            && !state.finished
            && epoch % cfg.data.mine_every == 0
        {
            // The model's own false positives become hard negatives (see crate::mining); the
            // batch producer restarts from the next step with them.
            let t_mine = Instant::now();
            drop(stream.take());
            let (found, added) = mining::mine_negatives(
                &net,
                &mut samples,
                &sp.train_samples,
                &radii,
                cfg,
                epoch,
                &mined_path,
                device,
            )?;
            stream = Some(start_stream(&samples, state.global_step));
            observer.message(&format!(
                "epoch {epoch}: the model's false positives: {found} outside the labelled particles, {added} new hard negatives ({:.0} s)",
                t_mine.elapsed().as_secs_f64()
            ));
        }
        state.elapsed_s = elapsed0 + started.elapsed().as_secs_f64();
        if over_budget && !state.finished {
            state.finished = true;
            reason = "time budget".into();
        }
        write_metrics_csv(&out.join(RunLayout::METRICS), &class_names, &records)?;
        save_last(&net, &optim, &state)?;
        observer.on_epoch_saved(out);
    }
    drop(stream);
    Ok(TrainSummary {
        state,
        records,
        reason,
        pick_settings_saved,
    })
}

/// Per-evaluation scores of the `val-pick-f1` monitor, in the run folder.
pub const PICK_METRICS: &str = "val_picks.csv";

/// What the `val-pick-f1` monitor segments and scores.
struct PickTarget {
    /// Index into the samples.
    sample: usize,
    truth: crate::pick_tuning::TuningTruth,
    /// The tomogram and how it relates to training, for messages and the settings' record.
    what: String,
}

/// The tuning tomogram of the `val-pick-f1` monitor: with a by-tomogram split the first
/// held-out tomogram (every particle to be found); otherwise the last input, scored on its
/// validation particles (training particles ignored) or, without validation particles, on all
/// of them (optimistic). `None` when there is nothing to find.
fn pick_target(
    samples: &[TrainSample],
    sp: &crate::data::Split,
    data: &crate::data::DataConfig,
    classes: &ClassTable,
) -> Option<PickTarget> {
    use crate::pick_tuning::TuningTruth;
    let held_out = data.split_by == crate::data::SplitBy::Tomogram && data.folds > 1;
    let (sample, truth, how) = if held_out {
        let s = *sp.val_samples.first()?;
        (
            s,
            TuningTruth::all_of(&samples[s], classes),
            "the validation tomogram",
        )
    } else {
        let s = samples.len().checked_sub(1)?;
        let val: std::collections::HashSet<usize> = sp
            .val_particles
            .iter()
            .filter(|(si, _)| *si == s)
            .map(|&(_, i)| i)
            .collect();
        if val.is_empty() {
            (
                s,
                TuningTruth::all_of(&samples[s], classes),
                "a training tomogram, all its particles: optimistic",
            )
        } else {
            (
                s,
                TuningTruth::validation_of(&samples[s], classes, |i| val.contains(&i)),
                "a training tomogram, its validation particles",
            )
        }
    };
    if truth.truth.is_empty() {
        return None;
    }
    Some(PickTarget {
        sample,
        truth,
        what: format!("{} ({how})", samples[sample].name),
    })
}

/// One line of [`PICK_METRICS`].
fn pick_row(epoch: usize, step: u64, mean: f64, settings: &capsid_pick::PickSettings) -> String {
    let mut cells = vec![epoch.to_string(), step.to_string(), format!("{mean:.6}")];
    for c in &settings.classes {
        cells.push(format!("{:.6}", c.tuning_f1));
        cells.push(
            match c.method {
                capsid_pick::TunedMethod::Meanshift => "meanshift",
                capsid_pick::TunedMethod::Peaks => "peaks",
            }
            .to_string(),
        );
    }
    cells.join(",")
}

/// [`PICK_METRICS`]' text: a header, then `rows`.
fn pick_csv(classes: &[String], rows: &[String]) -> String {
    let mut header = vec!["epoch".to_string(), "step".into(), "mean_pick_f1".into()];
    for c in classes {
        header.push(format!("pick_f1_{c}"));
        header.push(format!("picker_{c}"));
    }
    let mut text = header.join(",");
    text.push('\n');
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_warms_up_then_decays_to_the_floor() {
        let lr = |step, p| cosine_lr(1e-3, 1e-6, step, 10, p);
        assert!((lr(0, 0.0) - 1e-4).abs() < 1e-12);
        assert!((lr(9, 0.0) - 1e-3).abs() < 1e-12);
        assert!((lr(10, 0.0) - 1e-3).abs() < 1e-12);
        assert!((lr(500, 0.5) - (1e-6 + (1e-3 - 1e-6) * 0.5)).abs() < 1e-12);
        assert!((lr(900, 1.0) - 1e-6).abs() < 1e-15);
        assert!((lr(900, 3.0) - 1e-6).abs() < 1e-15);
        assert!(lr(300, 0.3) > lr(400, 0.4));
    }

    #[test]
    fn config_round_trips_through_toml_and_validates() {
        let mut cfg = TrainConfig {
            targets: vec!["ribosome".into()],
            net: NetConfig::by_name("unet", 2).unwrap(),
            ..TrainConfig::default()
        };
        cfg.data.patch = 32;
        cfg.validate().unwrap();
        let text = cfg.to_toml();
        assert!(text.starts_with("capsid_version"));
        let back = TrainConfig::from_toml(&text, Path::new("c.toml")).unwrap();
        assert_eq!(back, cfg);
        let partial =
            TrainConfig::from_toml("batch = 3\n[data]\npatch = 16\n", Path::new("c.toml")).unwrap();
        assert_eq!(partial.batch, 3);
        assert_eq!(partial.data.patch, 16);
        assert_eq!(partial.lr, 1e-4);
        let err = TrainConfig::from_toml("bacth = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml") && err.contains("bacth"), "{err}");
        cfg.data.patch = 20;
        assert!(cfg.validate().is_err());
    }
}
