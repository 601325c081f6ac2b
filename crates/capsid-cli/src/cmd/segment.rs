//! `capsid segment`: sliding-window segmentation of tomograms with a trained model.

use anyhow::{bail, Context};
use capsid_core::ClassTable;
use capsid_io::mrc::{self, LabelMode, MrcMode, MrcWriter, WriteOptions};
use capsid_nn::model::load_model_folder;
use capsid_nn::segment::{
    argmax_labels_fg, segment_streaming, window_count, Blend, NetPredictor, SegmentConfig,
};
use capsid_nn::train::{load_run_config, RunLayout};
use ndarray::Axis;
use std::path::{Path, PathBuf};

/// Arguments of `capsid segment`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
MODEL is a run folder written by `capsid train` (net.toml + weights.bpk, config.toml and
class_table.toml); its patch size and class names are used unless flags say otherwise. Each
tomogram is processed slab by slab along z (one row of windows at a time) and every output is written
slab by slab as it is finished, so memory stays near one patch-thick slab of class probabilities,
whatever the depth. Windows are z-score normalised each, as in
training.

Outputs per tomogram (the name is the file stem; SHREC's reconstruction.mrc takes its folder's name):
  DIR/<tomo>_labels.mrc          uint8 label map (mode 0, IMOD unsigned flag), 0 = background, classes
                                 1..K as in MODEL/class_table.toml; header (origin, voxel size) copied
  DIR/<tomo>_prob_<class>.mrc    with --probs f16|f32: probability of each target class (written
                                 as f16 without --probs when the model's pick_settings.toml picks
                                 a class by peaks of its probability map, for `capsid pick`)

Examples:
  capsid segment runs/tiny sim/reconstruction.mrc --out seg
  capsid segment runs/ribo t1.mrc t2.mrc --out seg --blend gaussian --tta \\
      --probs f16")]
pub struct Args {
    /// Trained model (run folder of `capsid train`).
    pub model: PathBuf,
    /// Tomograms (MRC).
    #[arg(required = true)]
    pub tomograms: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Window side in voxels (default: the training patch).
    #[arg(long)]
    pub patch: Option<usize>,
    /// Overlap of neighbouring windows in voxels (default 25, at most half the patch).
    #[arg(long)]
    pub overlap: Option<usize>,
    /// Blending of overlapping windows: uniform (averaging, as the paper) or gaussian (nnU-Net).
    #[arg(long, value_enum, default_value_t = BlendArg::Uniform)]
    pub blend: BlendArg,
    /// Test-time augmentation: average over the 8 mirror images (8× slower).
    #[arg(long)]
    pub tta: bool,
    /// Windows per forward pass. 1 keeps memory lowest (on 2 CPU cores a 256×256×128 tomogram at
    /// patch 64 peaked at 470 MB with 1 against 1,348 MB with 4, and was not slower).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Also write per-class probability maps, as float16 or float32.
    #[arg(long, value_enum)]
    pub probs: Option<ProbsArg>,
    /// Device: flex (CPU, default), wgpu, vulkan, cuda[:N], rocm[:N].
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace existing outputs.
    #[arg(long)]
    pub force: bool,
    /// Skip tomograms whose outputs are complete (for many-tomogram and cluster runs: rerun the
    /// same command after an interruption and only the missing tomograms are segmented).
    #[arg(long, conflicts_with = "force")]
    pub skip_complete: bool,
}

/// `--blend`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlendArg {
    Uniform,
    Gaussian,
}

/// `--probs`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbsArg {
    F16,
    F32,
}

/// Whether the model's tuned picking settings (`MODEL/pick_settings.toml`) pick some class by
/// peaks of its probability map, which `capsid pick` then needs beside the label map.
fn model_picks_by_peaks(model: &Path) -> anyhow::Result<bool> {
    let path = model.join(capsid_pick::PickSettings::FILE);
    if !path.is_file() {
        return Ok(false);
    }
    let settings = capsid_pick::PickSettings::load(&path)?;
    let needs = settings.peak_classes().next().is_some();
    Ok(needs)
}

pub fn run(mut args: Args) -> anyhow::Result<()> {
    crate::purge_freed_memory_at_once();
    if args.probs.is_none() && model_picks_by_peaks(&args.model)? {
        eprintln!(
            "the model picks some classes by peaks of their probability maps: writing them (f16)"
        );
        args.probs = Some(ProbsArg::F16);
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use all cores)");
    }
    if let Some(n) = args.threads {
        capsid_nn::set_threads(n)?;
    }
    let device = capsid_nn::parse_device(&args.device)?;
    let (net_cfg, net) = load_model_folder(&args.model, &device)?;
    let num_classes = net_cfg.num_classes();
    let train_patch = if args.model.join(RunLayout::CONFIG).is_file() {
        Some(load_run_config(&args.model)?.data.patch)
    } else {
        None
    };
    let class_names = class_names(&args.model, num_classes)?;
    let patch = args.patch.or(train_patch).unwrap_or(64);
    net_cfg.check_patch([patch; 3]).context("--patch")?;
    let overlap = args.overlap.unwrap_or(25.min(patch / 2));
    if overlap * 2 > patch {
        bail!("--overlap {overlap} is more than half the patch ({patch} voxels); windows would be computed more than twice");
    }
    let cfg = SegmentConfig {
        patch,
        overlap,
        blend: match args.blend {
            BlendArg::Uniform => Blend::Uniform,
            BlendArg::Gaussian => Blend::Gaussian,
        },
        tta: args.tta,
        batch: args.batch,
    };
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("invalid segmentation settings: {e}"))?;
    let names = output_names(&args.tomograms);
    // The outputs of each tomogram; with --skip-complete, tomograms whose outputs all exist are
    // left out.
    let mut jobs: Vec<(&PathBuf, &String, Vec<PathBuf>)> = Vec::new();
    for (tomo, name) in args.tomograms.iter().zip(&names) {
        capsid_core::guard::check_file_name_part("tomogram name", name)
            .with_context(|| format!("{}", tomo.display()))?;
        let files = output_files(&args.out, name, &class_names, args.probs.is_some());
        if args.skip_complete && files.iter().all(|f| capsid_core::guard::is_complete(f)) {
            eprintln!("{}: complete; skipped", files[0].display());
            continue;
        }
        jobs.push((tomo, name, files));
    }
    let created = capsid_core::guard::create_output_dir(&args.out)?;
    let result = (|| {
        let outputs: Vec<&Path> = jobs
            .iter()
            .flat_map(|(_, _, f)| f.iter().map(PathBuf::as_path))
            .collect();
        let mut inputs: Vec<&Path> = vec![&args.model];
        inputs.extend(args.tomograms.iter().map(PathBuf::as_path));
        let _guard = capsid_core::OutputGuard::new(&outputs, &inputs, args.force)?;
        let mut predictor = NetPredictor {
            net,
            device,
            num_classes,
        };
        for (tomo, name, _) in &jobs {
            segment_one(tomo, name, &args, &cfg, &class_names, &mut predictor)?;
        }
        if !jobs.is_empty() {
            write_settings(&args, &cfg)?;
        }
        anyhow::Ok(())
    })();
    if result.is_err() {
        // A failure leaves no empty output folder behind.
        capsid_core::guard::remove_created_dirs(&created);
    }
    result
}

/// Records the settings of the run as `<out>/segment.toml` (model folder as an absolute path,
/// window settings, capsid version): `capsid pick` finds the model's tuned picking settings
/// through it.
fn write_settings(args: &Args, cfg: &SegmentConfig) -> anyhow::Result<()> {
    let model = std::fs::canonicalize(&args.model).unwrap_or_else(|_| args.model.clone());
    let mut t = toml::Table::new();
    t.insert("capsid_version".into(), capsid_core::VERSION.into());
    t.insert("model".into(), model.display().to_string().into());
    t.insert("patch".into(), (cfg.patch as i64).into());
    t.insert("overlap".into(), (cfg.overlap as i64).into());
    t.insert(
        "blend".into(),
        format!("{:?}", cfg.blend).to_lowercase().into(),
    );
    t.insert("tta".into(), cfg.tta.into());
    t.insert(
        "tomograms".into(),
        toml::Value::Array(
            args.tomograms
                .iter()
                .map(|p| p.display().to_string().into())
                .collect(),
        ),
    );
    let text = toml::to_string_pretty(&t).context("segment settings as TOML")?;
    capsid_core::write_atomically(&args.out.join(capsid_core::outputs::SEGMENT_RECORD), |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })?;
    Ok(())
}

/// The files `segment` writes for tomogram `name`: the label map first, then the probability maps.
fn output_files(out: &Path, name: &str, class_names: &[String], probs: bool) -> Vec<PathBuf> {
    let mut files = vec![out.join(capsid_core::outputs::label_map_file(name))];
    if probs {
        files.extend(
            class_names
                .iter()
                .map(|c| out.join(capsid_core::outputs::prob_map_file(name, c))),
        );
    }
    files
}

/// Class names 1..K from the run's class table (or `class1`, … without one).
fn class_names(model: &Path, num_classes: usize) -> anyhow::Result<Vec<String>> {
    let p = model.join(RunLayout::CLASS_TABLE);
    if !p.is_file() {
        return Ok((1..num_classes).map(|k| format!("class{k}")).collect());
    }
    let table = ClassTable::load(&p)?;
    let mut names = vec![String::new(); num_classes.saturating_sub(1)];
    for c in &table.classes {
        let k = c.label as usize;
        if k == 0 || k >= num_classes {
            bail!(
                "{}: class '{}' has label {} but the network has {} classes",
                p.display(),
                c.name,
                k,
                num_classes
            );
        }
        names[k - 1] = c.name.clone();
    }
    if let Some(k) = names.iter().position(String::is_empty) {
        bail!("{}: no class with label {}", p.display(), k + 1);
    }
    Ok(names)
}

/// Output name per tomogram: the file stem (SHREC's `reconstruction` takes its folder's name);
/// names used twice get their folder's name in front.
fn output_names(tomos: &[PathBuf]) -> Vec<String> {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tomogram".into())
    };
    let parent = |p: &Path| {
        p.parent()
            .and_then(|d| d.file_name())
            .map(|s| s.to_string_lossy().into_owned())
    };
    let base: Vec<String> = tomos
        .iter()
        .map(|p| {
            let s = stem(p).trim_end_matches(".mrc").to_string();
            match (s.as_str(), parent(p)) {
                ("reconstruction", Some(d)) => d,
                _ => s,
            }
        })
        .collect();
    base.iter()
        .zip(tomos)
        .map(|(b, p)| {
            if base.iter().filter(|x| *x == b).count() > 1 {
                format!("{}_{b}", parent(p).unwrap_or_default())
            } else {
                b.clone()
            }
        })
        .collect()
}

fn segment_one(
    tomo: &Path,
    name: &str,
    args: &Args,
    cfg: &SegmentConfig,
    class_names: &[String],
    predictor: &mut NetPredictor,
) -> anyhow::Result<()> {
    let header = mrc::read_header(tomo)?;
    let shape = header.shape_zyx();
    let like = WriteOptions {
        like: Some(header.clone()),
        extra_labels: vec![format!("capsid segment: {}", args.model.display())
            .chars()
            .take(80)
            .collect()],
        ..WriteOptions::default()
    };
    let mut prob_writers: Vec<MrcWriter> = Vec::new();
    if let Some(kind) = args.probs {
        let mode = match kind {
            ProbsArg::F16 => MrcMode::Float16,
            ProbsArg::F32 => MrcMode::Float32,
        };
        for c in class_names {
            let p = args.out.join(capsid_core::outputs::prob_map_file(name, c));
            prob_writers.push(MrcWriter::create_with(
                &p,
                shape,
                mode,
                header.voxel_size_a,
                header.origin_a,
                &like,
            )?);
        }
    }
    let out = args.out.join(capsid_core::outputs::label_map_file(name));
    let mut label_writer = MrcWriter::create_labels_with(
        &out,
        shape,
        LabelMode::Uint8Mode0,
        header.voxel_size_a,
        header.origin_a,
        &like,
    )?;
    let mut counts = vec![0u64; class_names.len() + 1];
    let pb = crate::util::progress(window_count(shape, cfg) as u64, name);
    segment_streaming::<anyhow::Error>(
        shape,
        cfg,
        predictor,
        &mut |z0, nz, y0, ny| Ok(mrc::read_block(tomo, z0, nz, y0, ny)?.data),
        &mut |_z0, fg| {
            let labels = argmax_labels_fg(&fg);
            for &l in labels.iter() {
                counts[l as usize] += 1;
            }
            label_writer.write_label_slab(&labels)?;
            for (k, w) in prob_writers.iter_mut().enumerate() {
                w.write_slab(&fg.index_axis(Axis(0), k))?;
            }
            Ok(())
        },
        &mut |n| pb.inc(n),
    )
    .with_context(|| format!("{}", tomo.display()))?;
    pb.finish_and_clear();
    for w in prob_writers {
        w.finish()?;
    }
    label_writer.finish()?;
    let counts: Vec<String> = class_names
        .iter()
        .enumerate()
        .map(|(k, c)| format!("{c} {}", counts[k + 1]))
        .collect();
    eprintln!(
        "{}: {} windows; voxels per class: {}",
        out.display(),
        window_count(shape, cfg),
        counts.join(", ")
    );
    Ok(())
}
