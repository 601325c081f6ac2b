//! `capsid train`: train a 3D-UNet or 3D-UCaps model on tomograms with particle lists or label maps.

use anyhow::{bail, Context};
use capsid_core::{ClassTable, Particle};
use capsid_io::mrc;
use capsid_io::particles::{self, ReadOptions};
use capsid_nn::data::{make_sample, TrainSample};
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
    /// Class table (TOML). Defaults to class_table.toml of the first --data folder.
    #[arg(long)]
    pub classes: Option<PathBuf>,
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
    /// Epochs between mining rounds (with --negatives model|both; default 3).
    #[arg(long, value_name = "N")]
    pub mine_every: Option<usize>,
    /// Draw a class uniformly, then one of its particles (rare classes seen as often as common).
    #[arg(long)]
    pub class_balanced: bool,
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
    /// Monitor for plateau/early stopping/best model: val-loss or val-f1.
    #[arg(long)]
    pub monitor: Option<String>,
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
    let classes = ClassTable::load(&classes_path)?;
    let out_table = output_class_table(&classes, &cfg.targets)?;
    cfg.net.set_num_classes(out_table.classes.len() + 1);
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("invalid training config: {e}"))?;
    if cfg.inputs.is_empty() {
        bail!("no training data: give --data DIR, or --tomo T.mrc --particles P.star");
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
    }
    let _guard = capsid_core::OutputGuard::with_flag(
        &[&args.out],
        &inputs,
        args.force || args.resume,
        "--force (replace the run) or --resume (continue it)",
    )?;
    let samples = load_samples(&cfg, &classes)?;
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
    if !args.no_pick_tuning && summary.state.best_epoch > 0 {
        tune_picking(&cfg, &classes, &out_table, &args.out, &device)?;
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
    Ok(())
}

/// Chooses and saves the run's picking settings (see `--no-pick-tuning`).
fn tune_picking(
    cfg: &TrainConfig,
    classes: &ClassTable,
    out_table: &ClassTable,
    run: &Path,
    device: &capsid_nn::burn::tensor::Device,
) -> anyhow::Result<()> {
    let n = cfg.inputs.len();
    let index = if cfg.data.split_by == capsid_nn::data::SplitBy::Tomogram && cfg.data.folds > 1 {
        let fold = capsid_nn::data::fold_assignment(n, cfg.data.folds, cfg.seed);
        (0..n)
            .find(|&i| fold[i] == cfg.data.val_fold)
            .unwrap_or(n - 1)
    } else {
        n - 1
    };
    let held_out = cfg.data.split_by == capsid_nn::data::SplitBy::Tomogram && cfg.data.folds > 1;
    let mut one = cfg.clone();
    one.inputs = vec![cfg.inputs[index].clone()];
    let Some(sample) = load_samples(&one, classes)?.into_iter().next() else {
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
        let (found, table) = inputs_from_data(d)?;
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
        });
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
    if let Some(v) = a.mine_every {
        cfg.data.mine_every = v;
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
            other => bail!("--monitor: expected val-loss or val-f1, got '{other}'"),
        };
    }
    if let Some(v) = a.checkpoint_every {
        cfg.checkpoint_every = v;
    }
    Ok(())
}

/// One SHREC-layout tomogram folder as an input, if it holds reconstruction.mrc.
fn shrec_input(dir: &Path) -> Option<InputSpec> {
    let tomo = dir.join("reconstruction.mrc");
    if !tomo.is_file() {
        return None;
    }
    let labels = Some(dir.join("class_mask.mrc")).filter(|p| p.is_file());
    let particles = Some(dir.join("particle_locations.txt")).filter(|p| p.is_file());
    Some(InputSpec {
        tomogram: tomo,
        particles,
        labels,
    })
}

/// The inputs of a `--data` folder (SHREC layout) or list file, and the class table found next
/// to them.
pub fn inputs_from_data(path: &Path) -> anyhow::Result<(Vec<InputSpec>, Option<PathBuf>)> {
    if path.is_dir() {
        let table = [
            path.join("class_table.toml"),
            path.join("..").join("class_table.toml"),
        ]
        .into_iter()
        .find(|p| p.is_file());
        if let Some(one) = shrec_input(path) {
            return Ok((vec![one], table));
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("{}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let found: Vec<InputSpec> = dirs.iter().filter_map(|d| shrec_input(d)).collect();
        if found.is_empty() {
            bail!("{}: no reconstruction.mrc in the folder or its subfolders (expected the SHREC layout)", path.display());
        }
        return Ok((found, table));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |s: &str| -> Option<PathBuf> {
        if s == "-" {
            None
        } else {
            let p = PathBuf::from(s);
            Some(if p.is_relative() { base.join(p) } else { p })
        }
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 2 || f.len() > 3 {
            bail!(
                "{}: line {}: expected `TOMO PARTICLES [LABELS]`, found {} fields",
                path.display(),
                i + 1,
                f.len()
            );
        }
        let tomogram = rel(f[0]).with_context(|| {
            format!(
                "{}: line {}: the tomogram cannot be '-'",
                path.display(),
                i + 1
            )
        })?;
        let particles = rel(f[1]);
        let labels = f.get(2).and_then(|s| rel(s));
        if particles.is_none() && labels.is_none() {
            bail!(
                "{}: line {}: give a particle list or a label map",
                path.display(),
                i + 1
            );
        }
        out.push(InputSpec {
            tomogram,
            particles,
            labels,
        });
    }
    if out.is_empty() {
        bail!("{}: the list names no tomogram", path.display());
    }
    Ok((out, None))
}

/// Reads the tomograms, particle lists and label maps of the config.
fn load_samples(cfg: &TrainConfig, classes: &ClassTable) -> anyhow::Result<Vec<TrainSample>> {
    let mut samples = Vec::new();
    for inp in &cfg.inputs {
        let tomo = mrc::read_volume(&inp.tomogram)?;
        let [nz, ny, nx] = tomo.shape_zyx();
        let particles: Vec<Particle> = match &inp.particles {
            Some(p) => {
                let vs = tomo.voxel_size() as f64;
                let opts = ReadOptions {
                    voxel_size_a: (vs > 0.0).then_some(vs),
                    tomo_shape_xyz: Some([nx, ny, nz]),
                    classes: Some(classes.clone()),
                    ..ReadOptions::default()
                };
                particles::read_particles(p, &opts)?
            }
            None => vec![],
        };
        let label_map = match &inp.labels {
            Some(l) => {
                let v = mrc::read_label_map(l)?;
                capsid_core::guard::check_same_grid(
                    &inp.tomogram,
                    tomo.shape_zyx(),
                    tomo.voxel_size_a,
                    l,
                    v.shape_zyx(),
                    v.voxel_size_a,
                )?;
                capsid_core::guard::check_labels_known(l, v.data.iter().copied(), classes)?;
                Some(v.data)
            }
            None => None,
        };
        let name = sample_name(&inp.tomogram);
        let s = make_sample(&name, tomo, &particles, label_map, classes, &cfg.targets)
            .with_context(|| format!("{}", inp.tomogram.display()))?;
        if s.particles.is_empty() {
            eprintln!(
                "warning: {}: no particle of the target classes",
                inp.tomogram.display()
            );
        }
        samples.push(s);
    }
    Ok(samples)
}

/// A readable name: the file stem, or the folder name for SHREC's `reconstruction.mrc`.
fn sample_name(p: &Path) -> String {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == "reconstruction" {
        if let Some(parent) = p.parent().and_then(|d| d.file_name()) {
            return parent.to_string_lossy().into_owned();
        }
    }
    stem
}
