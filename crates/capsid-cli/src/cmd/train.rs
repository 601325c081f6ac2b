//! `capsid train`: train a 3D-UNet or 3D-UCaps model on tomograms with particle lists or label maps.

use anyhow::{bail, Context};
use capsid_nn::metrics::EpochRecord;
use capsid_nn::train::{
    load_run_config, output_class_table, train, InputSpec, Monitor, RunLayout, TrainConfig,
    TrainObserver, TrainOptions,
};
use capsid_nn::NetConfig;
use std::path::{Path, PathBuf};

/// Arguments of `capsid train`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Inputs: --data DIR takes a SHREC-layout folder as `capsid simulate` writes it (DIR/reconstruction.mrc,
or DIR/tomo_000/reconstruction.mrc, … with class_mask.mrc and/or particle_locations.txt, and
DIR/class_table.toml); --data FILE takes a list, one tomogram per line: `TOMO PARTICLES [LABELS]`
(`-` for no particle list; paths relative to the list). --tomogram/--particles pairs add more. A label map
(class-table labels) is used as the target when present, otherwise spheres of the class radii are
drawn around the particles. The chosen --targets get labels 1..K in the order given; every other
class is background.

The run folder gets config.toml (resolved, with the capsid version), class_table.toml (the targets
with their output labels), net.toml + weights.bpk (the best model, enough for `capsid segment`),
last/ (weights, Adam state, train_state.json for --resume), checkpoints/, metrics.csv and
learning_curve.png (left: training and validation loss; right: validation F1, precision and recall
per class; axes and legends; redrawn after every epoch).

Examples:
  capsid simulate --preset tiny --out sim
  capsid train --model unet --data sim --patch 32 --batch 4 --epochs 5 \\
      --steps 20 --out runs/tiny
  capsid train --config train.toml --tomogram t1.mrc --particles t1.star \\
      --classes classes.toml --targets ribosome --out runs/ribo
  capsid train --model unet --copick proj/copick_config.json \\
      --runs TS_1,TS_2,TS_3 --user-id curation --split-by tomogram \\
      --folds 3 --monitor val-pick-f1 --out runs/czii
  capsid train --resume --out runs/ribo --epochs 200")]
pub struct Args {
    /// Training config (TOML; every field optional). Flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Network: unet (DeepFinder's 3D-UNet) or ucaps (3D-UCaps).
    #[arg(long)]
    pub model: Option<String>,
    /// SHREC-layout folder or list file (repeatable).
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Tomogram (MRC), paired in order with --particles (repeatable; `--tomo` is the old
    /// spelling).
    #[arg(long = "tomogram", alias = "tomo", value_name = "MRC")]
    pub tomo: Vec<PathBuf>,
    /// Particle list for the --tomogram at the same position (repeatable).
    #[arg(long)]
    pub particles: Vec<PathBuf>,
    /// Class label map for the --tomogram at the same position (repeatable; instead of spheres).
    #[arg(long)]
    pub labels: Vec<PathBuf>,
    /// Class table (TOML, or a copick configuration: its pickable particle objects). Defaults
    /// to class_table.toml of the first --data folder, or the --copick project's objects.
    #[arg(long)]
    pub classes: Option<PathBuf>,
    #[command(flatten)]
    pub copick: crate::copick_args::CopickRuns,
    /// With --copick: whose picks are the training targets (copick's `user_id`; the portal's
    /// ground truth is `curation`).
    #[arg(long, default_value = "curation", requires = "copick")]
    pub user_id: String,
    /// With --copick: which session of --user-id.
    #[arg(long, default_value = "0", requires = "copick")]
    pub session_id: String,
    /// Target classes, comma-separated, in output-label order (default: all classes).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Patch side in voxels (multiple of 8; 64 by default, 32 for tiny classes).
    #[arg(long)]
    pub patch: Option<usize>,
    /// Patches per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Epochs (at most).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Steps per epoch.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of all random choices.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of folds (1 = no validation).
    #[arg(long)]
    pub folds: Option<usize>,
    /// Validation fold (0-based).
    #[arg(long)]
    pub val_fold: Option<usize>,
    /// How validation data is held out: particle (folds of particles, the seed's) or tomogram
    /// (whole tomograms; the picking settings are then tuned on held-out data).
    #[arg(long, value_name = "particle|tomogram")]
    pub split_by: Option<String>,
    /// Fraction of background patches per batch.
    #[arg(long)]
    pub background_ratio: Option<f64>,
    /// Random flips (wedge-preserving augmentation).
    #[arg(long)]
    pub augment: bool,
    /// Fraction of patches centred on hard negatives: particle-like blobs outside every labelled
    /// particle (unlabelled look-alikes), so the network learns to reject them.
    #[arg(long, value_name = "F")]
    pub negative_ratio: Option<f64>,
    /// Where the hard negatives come from: blobs (particle-like places found before training,
    /// the default), model (the network's own false positives: every --mine-every epochs it
    /// segments a random region of each training tomogram, and predicted targets away from every
    /// labelled particle become negatives; listed in RUN/mined_negatives.csv) or both. model and
    /// both set --negative-ratio 0.3 unless it is given.
    #[arg(long, value_name = "blobs|model|both")]
    pub negatives: Option<String>,
    /// The scales of the blob detector that finds hard negatives: smallest (the smallest target
    /// radius, the default) or classes (each target class's radius, an equal share of the places
    /// each, so same-size look-alikes of the large classes are among them).
    #[arg(long, value_name = "smallest|classes")]
    pub negative_scales: Option<String>,
    /// Epochs between mining rounds (with --negatives model|both; default 3).
    #[arg(long, value_name = "N")]
    pub mine_every: Option<usize>,
    /// Draw a class uniformly, then one of its particles (rare classes seen as often as common).
    #[arg(long)]
    pub class_balanced: bool,
    /// Share of each class's radius drawn as its target from a particle list (default 1: the
    /// whole particle). Below 1 the network learns particle centres (DeepETPicker's small
    /// spheres), e.g. 0.5; pick by peaks then. Label-map inputs are used as given.
    #[arg(long, value_name = "F")]
    pub target_radius: Option<f64>,
    /// Weight the cross-entropy of each class by its inverse voxel frequency in the training
    /// labels, so a tiny class (a few dozen voxels a particle) counts as much as the large ones.
    #[arg(long)]
    pub class_weights: bool,
    /// Learning-rate schedule: plateau (the seed's: ×0.1 after 5 epochs without improvement) or
    /// cosine (linear warm-up, then a cosine decay to the end of the run or of --max-minutes).
    #[arg(long, value_name = "plateau|cosine")]
    pub lr_schedule: Option<String>,
    /// Wall-clock training budget in minutes (stops after the last epoch that fits).
    #[arg(long, value_name = "MIN")]
    pub max_minutes: Option<f64>,
    /// Skip choosing the picking settings after training (by default the best model segments
    /// a tuning tomogram — the validation fold's with a by-tomogram split, else the last input —
    /// and the per-class minimum cluster sizes with the best strict F1 go to
    /// RUN/pick_settings.toml, which `capsid pick` then uses).
    #[arg(long)]
    pub no_pick_tuning: bool,
    /// Early-stopping patience in epochs (0 = off).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Monitor for plateau/early stopping/best model: val-loss, val-f1 (voxels of the
    /// validation patches) or val-pick-f1 (the kept weights are those whose tuned picks score the
    /// best strict F1 on the tuning tomogram, evaluated every --val-pick-every epochs, and their
    /// picking settings are kept; the schedule then follows val-loss)
    #[arg(long)]
    pub monitor: Option<String>,
    /// Epochs between pick evaluations of --monitor val-pick-f1 (default 5; the last epoch is
    /// always evaluated). Each segments the tuning tomogram once.
    #[arg(long, value_name = "N")]
    pub val_pick_every: Option<usize>,
    /// Save a checkpoint every N steps (0 = at epoch ends only).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Device: flex (CPU, default), wgpu, vulkan, cuda[:N], rocm[:N] (GPU ones need the build feature).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Run folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out (its config.toml; flags still override).
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing run in --out (without it, or --resume, an existing run is kept).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Print a JSON summary on stdout at the end: epochs, steps, why training stopped, the best
    /// epoch's validation record and the chosen picking settings.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::keep_freed_memory();
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use all cores)");
    }
    if let Some(n) = args.threads {
        capsid_nn::set_threads(n)?;
    }
    let device = capsid_nn::parse_device(&args.device)?;
    let mut cfg = if args.resume {
        load_run_config(&args.out).context("--resume needs a run folder written by capsid train")?
    } else if let Some(p) = &args.config {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
        TrainConfig::from_toml(&text, p)?
    } else {
        TrainConfig::default()
    };
    apply_overrides(&mut cfg, &args)?;
    let classes_path = cfg
        .classes
        .clone()
        .context("no class table: give --classes (or --data with a class_table.toml)")?;
    let classes = capsid_io::copick_project::load_class_table(&classes_path)?;
    let out_table = output_class_table(&classes, &cfg.targets)?;
    cfg.net.set_num_classes(out_table.classes.len() + 1);
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("invalid training config: {e}"))?;
    if cfg.inputs.is_empty() {
        bail!("no training data: give --data DIR, --tomogram T.mrc --particles P.star, or --copick CONFIG");
    }
    // The run folder must not hold (or be) an input; an existing run is kept unless --force
    // (replace) or --resume (continue).
    let mut inputs: Vec<&Path> = args.data.iter().map(PathBuf::as_path).collect();
    if !args.resume {
        inputs.push(&classes_path);
        inputs.extend(args.config.as_deref());
    }
    for i in &cfg.inputs {
        inputs.push(&i.tomogram);
        inputs.extend(i.particles.as_deref());
        inputs.extend(i.labels.as_deref());
        inputs.extend(i.copick.as_ref().map(|c| c.config.as_path()));
    }
    let _guard = capsid_core::OutputGuard::with_flag(
        &[&args.out],
        &inputs,
        args.force || args.resume,
        "--force (replace the run) or --resume (continue it)",
    )?;
    let samples = capsid_nn::dataset::load_samples(
        &cfg.inputs,
        &classes,
        &cfg.targets,
        cfg.data.target_radius,
    )?;
    for (s, inp) in samples.iter().zip(&cfg.inputs) {
        if s.particles.is_empty() {
            eprintln!(
                "warning: {}: no particle of the target classes",
                inp.tomogram.display()
            );
        }
    }
    let n_particles: usize = samples.iter().map(|s| s.particles.len()).sum();
    eprintln!(
        "training {} ({} parameters) on {} tomogram(s), {} target particle(s) of {}; patch {}, batch {}, {} × {} steps → {}",
        cfg.net.name(),
        capsid_nn::Net::try_init(&cfg.net, &device, cfg.seed)?.num_params(),
        samples.len(),
        n_particles,
        out_table.classes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        cfg.data.patch,
        cfg.batch,
        cfg.epochs,
        cfg.steps_per_epoch,
        args.out.display()
    );
    let total = cfg.epochs as u64 * cfg.steps_per_epoch as u64;
    let mut bar = Bar {
        pb: crate::util::progress(total, "train"),
        names: out_table.classes.iter().map(|c| c.name.clone()).collect(),
        model: cfg.net.name().to_string(),
    };
    let opts = TrainOptions {
        resume: args.resume,
        stop_after_steps: None,
    };
    let summary = train(
        samples, &out_table, &cfg, &args.out, &device, &opts, &mut bar,
    )?;
    bar.pb.finish_and_clear();
    let settings_path = args.out.join(capsid_pick::PickSettings::FILE);
    let tuned_while_training = summary.pick_settings_saved
        || (cfg.monitor == Monitor::ValPickF1 && args.resume && settings_path.exists());
    if tuned_while_training {
        // The val-pick-f1 monitor kept the best evaluation's settings with its weights.
        if let Ok(settings) = capsid_pick::PickSettings::load(&settings_path) {
            eprintln!("picking settings of the best epoch ({})", settings.tuned_on);
            crate::pick_tuning::print_settings(&settings, &args.out, "chosen while training");
        }
    } else if !args.no_pick_tuning && summary.state.best_epoch > 0 {
        crate::pick_tuning::tune_after_training(&cfg, &classes, &out_table, &args.out, &device)?;
    }
    let s = &summary.state;
    eprintln!(
        "{}: stopped after {} epoch(s), {} steps ({}); best epoch {}; {:.0} s",
        args.out.display(),
        s.epochs_done,
        s.global_step,
        summary.reason,
        s.best_epoch,
        s.elapsed_s
    );
    if args.json {
        let best = summary
            .records
            .iter()
            .find(|r| r.epoch == summary.state.best_epoch)
            .map(|r| {
                serde_json::json!({
                    "epoch": r.epoch, "step": r.step, "train_loss": r.train_loss,
                    "val_loss": r.val_loss, "precision": r.precision, "recall": r.recall,
                    "f1": r.f1,
                })
            });
        let picking =
            capsid_pick::PickSettings::load(&args.out.join(capsid_pick::PickSettings::FILE)).ok();
        let v = serde_json::json!({
            "run": args.out,
            "model": cfg.net.name(),
            "epochs": summary.state.epochs_done,
            "steps": summary.state.global_step,
            "stopped": summary.reason,
            "best_epoch": summary.state.best_epoch,
            "seconds": summary.state.elapsed_s,
            "classes": out_table.classes.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            "best": best,
            "picking": picking,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(())
}

struct Bar {
    pb: crate::util::Progress,
    names: Vec<String>,
    model: String,
}

impl TrainObserver for Bar {
    fn message(&mut self, text: &str) {
        self.pb.suspend(|| eprintln!("{text}"));
    }

    /// `RUN/learning_curve.png`, redrawn from `metrics.csv` after every epoch (a failure to draw
    /// it is a warning: the run goes on).
    fn on_epoch_saved(&mut self, out: &std::path::Path) {
        let csv = out.join(RunLayout::METRICS);
        let png = out.join(RunLayout::CURVE);
        if let Err(e) = capsid_report::curves::write_learning_curve(&csv, &png, &self.model) {
            self.pb
                .suspend(|| eprintln!("warning: {}: {e}", png.display()));
        }
    }
    fn on_step(&mut self, global_step: u64, _total: u64, loss: f64, patches_per_s: f64) {
        self.pb.set_position(global_step);
        self.pb
            .set_message(format!("loss {loss:.4} {patches_per_s:.1} patch/s"));
    }
    fn on_epoch(&mut self, r: &EpochRecord) {
        let f1: Vec<String> = self
            .names
            .iter()
            .zip(&r.f1)
            .map(|(n, f)| format!("{n} {f:.3}"))
            .collect();
        // Printed even when stderr is not a terminal (a log file, a Slurm job), where the
        // progress bar is hidden.
        let line = format!(
            "epoch {:>3}  step {:>6}  lr {:.1e}  train {:.4}  val {:.4}  F1 {}",
            r.epoch,
            r.step,
            r.lr,
            r.train_loss,
            r.val_loss,
            if f1.is_empty() {
                "-".into()
            } else {
                f1.join(", ")
            }
        );
        self.pb.suspend(|| eprintln!("{line}"));
    }
}

/// Flags override the config (and, with --resume, the run's config).
fn apply_overrides(cfg: &mut TrainConfig, a: &Args) -> anyhow::Result<()> {
    if let Some(m) = &a.model {
        if m.to_ascii_lowercase() != cfg.net.name() {
            cfg.net = NetConfig::by_name(m, cfg.net.num_classes())?;
        }
    }
    let mut inputs = Vec::new();
    for d in &a.data {
        let capsid_nn::dataset::Dataset {
            inputs: found,
            class_table: table,
        } = capsid_nn::dataset::discover(d)?;
        if cfg.classes.is_none() && a.classes.is_none() {
            cfg.classes = table;
        }
        inputs.extend(found);
    }
    if a.tomo.len() != a.particles.len() && !a.particles.is_empty() {
        bail!(
            "give one --particles per --tomo ({} --tomo, {} --particles)",
            a.tomo.len(),
            a.particles.len()
        );
    }
    if !a.labels.is_empty() && a.labels.len() != a.tomo.len() {
        bail!(
            "give one --labels per --tomo ({} --tomo, {} --labels)",
            a.tomo.len(),
            a.labels.len()
        );
    }
    if a.particles.is_empty() && a.labels.is_empty() && !a.tomo.is_empty() {
        bail!("each --tomo needs a --particles list or a --labels map");
    }
    for (i, t) in a.tomo.iter().enumerate() {
        inputs.push(InputSpec {
            tomogram: t.clone(),
            particles: a.particles.get(i).cloned(),
            labels: a.labels.get(i).cloned(),
            copick: None,
        });
    }
    if let Some((project, runs)) = a.copick.tomograms()? {
        // Each run's tomogram with the picks of --user-id/--session-id as its particles.
        for (run, tomogram) in runs {
            inputs.push(InputSpec {
                tomogram,
                particles: None,
                labels: None,
                copick: Some(capsid_nn::train::CopickPicks {
                    config: project.config.clone(),
                    run,
                    user_id: a.user_id.clone(),
                    session_id: a.session_id.clone(),
                }),
            });
        }
        if cfg.classes.is_none() && a.classes.is_none() {
            cfg.classes = Some(project.config.clone());
        }
    }
    if !inputs.is_empty() {
        cfg.inputs = inputs;
    }
    if let Some(c) = &a.classes {
        cfg.classes = Some(c.clone());
    }
    if !a.targets.is_empty() {
        cfg.targets = a
            .targets
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    if let Some(v) = a.patch {
        cfg.data.patch = v;
        if cfg.data.max_shift > v / 2 {
            cfg.data.max_shift = v / 4;
        }
    }
    if let Some(v) = a.batch {
        cfg.batch = v;
    }
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = a.steps {
        cfg.steps_per_epoch = v;
    }
    if let Some(v) = a.lr {
        cfg.lr = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(v) = a.folds {
        cfg.data.folds = v;
    }
    if let Some(v) = a.val_fold {
        cfg.data.val_fold = v;
    }
    if let Some(v) = a.background_ratio {
        cfg.data.background_ratio = v;
    }
    if a.augment {
        cfg.data.augment = true;
    }
    if let Some(v) = &a.split_by {
        cfg.data.split_by = match v.as_str() {
            "particle" => capsid_nn::data::SplitBy::Particle,
            "tomogram" => capsid_nn::data::SplitBy::Tomogram,
            other => bail!("--split-by: expected particle or tomogram, got '{other}'"),
        };
    }
    if let Some(v) = a.negative_ratio {
        cfg.data.negative_ratio = v;
    }
    if let Some(p) = crate::util::precision_flag() {
        cfg.precision = p.into();
    }
    if let Some(v) = &a.negatives {
        use capsid_nn::mining::NegativeSource;
        cfg.data.negative_source = match v.as_str() {
            "blobs" => NegativeSource::Blobs,
            "model" => NegativeSource::Model,
            "both" => NegativeSource::Both,
            other => bail!("--negatives: expected blobs, model or both, got '{other}'"),
        };
        if cfg.data.negative_source.uses_model()
            && a.negative_ratio.is_none()
            && cfg.data.negative_ratio <= 0.0
        {
            cfg.data.negative_ratio = 0.3;
        }
    }
    if let Some(v) = &a.negative_scales {
        use capsid_nn::data::NegativeScales;
        cfg.data.negative_scales = match v.as_str() {
            "smallest" => NegativeScales::Smallest,
            "classes" => NegativeScales::Classes,
            other => bail!("--negative-scales: expected smallest or classes, got '{other}'"),
        };
    }
    if let Some(v) = a.mine_every {
        cfg.data.mine_every = v;
    }
    if let Some(v) = a.target_radius {
        cfg.data.target_radius = v;
    }
    if a.class_balanced {
        cfg.data.class_balanced = true;
    }
    if a.class_weights {
        cfg.class_weights = true;
    }
    if let Some(v) = &a.lr_schedule {
        cfg.lr_schedule = match v.as_str() {
            "plateau" => capsid_nn::train::LrSchedule::Plateau,
            "cosine" => capsid_nn::train::LrSchedule::Cosine,
            other => bail!("--lr-schedule: expected plateau or cosine, got '{other}'"),
        };
    }
    if let Some(v) = a.max_minutes {
        cfg.time_budget_min = v;
    }
    if let Some(v) = a.patience {
        cfg.early_stop_patience = v;
    }
    if let Some(m) = &a.monitor {
        cfg.monitor = match m.as_str() {
            "val-loss" | "val_loss" | "loss" => Monitor::ValLoss,
            "val-f1" | "val_f1" | "f1" => Monitor::ValF1,
            "val-pick-f1" | "val_pick_f1" | "pick-f1" => Monitor::ValPickF1,
            other => bail!("--monitor: expected val-loss, val-f1 or val-pick-f1, got '{other}'"),
        };
    }
    if let Some(v) = a.val_pick_every {
        cfg.val_pick_every = v;
    }
    if let Some(v) = a.checkpoint_every {
        cfg.checkpoint_every = v;
    }
    Ok(())
}
