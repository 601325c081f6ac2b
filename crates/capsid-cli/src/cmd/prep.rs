//! `capsid prep`: bin, low-pass and normalise a tomogram, streamed by z slabs.

use crate::util;
use anyhow::{bail, Context};
use capsid_core::CoreError;
use capsid_io::mrc::{MrcMode, MrcWriter, WriteOptions};
use capsid_prep::prep::{self, BinMethod, Normalize, PrepConfig, SlabSink, SlabSource};
use ndarray::Array3;
use std::path::{Path, PathBuf};

/// Arguments of `capsid prep`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Steps run in the order bin -> low-pass -> normalise, slab by slab, so a big
tomogram is never whole in memory, except with Fourier binning, which keeps
the x-y-binned stack (1/N^2 of the input, float32). Binning drops the last
(size mod N) voxels of each axis and multiplies the voxel size by N; the
origin stays at voxel 0's centre (Fourier) or moves to the first block's
centre (mean). The low-pass is a Gaussian with amplitude 0.5 at 1/cut-off
(real-space sigma = 0.187 x cut-off). `--normalize clip` clips to the --clip
percentiles and rescales that range to [0, 1].

Settings can come from a TOML file (--config; fields bin, bin_method,
lowpass_a, normalize, slab); flags override it.

Examples:
  capsid prep tomo.mrc tomo_bin2.mrc --bin 2
  capsid prep tomo.mrc tomo_prep.mrc --bin 2 --bin-method mean \\
      --lowpass-a 40 --normalize zscore
  capsid prep tomo.mrc tomo_clip.mrc --normalize clip --clip 0.5,99.5")]
pub struct Args {
    /// Input tomogram (MRC or OME-Zarr); never modified.
    pub input: PathBuf,
    /// Output tomogram (MRC), written atomically.
    pub output: PathBuf,
    /// Settings file (TOML, every field optional).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Integer binning factor [default: 1, none].
    #[arg(long)]
    pub bin: Option<usize>,
    /// Binning method [default: fourier].
    #[arg(long, value_enum)]
    pub bin_method: Option<BinMethodArg>,
    /// Gaussian low-pass cut-off in Å (amplitude 0.5 at 1/cut-off).
    #[arg(long)]
    pub lowpass_a: Option<f64>,
    /// Normalisation [default: none].
    #[arg(long, value_enum)]
    pub normalize: Option<NormalizeArg>,
    /// Percentiles LOW,HIGH for --normalize clip [default: 0.5,99.5].
    #[arg(long, value_parser = parse_clip)]
    pub clip: Option<(f64, f64)>,
    /// Slices per slab (of the output grid) when streaming [default: 32].
    #[arg(long)]
    pub slab: Option<usize>,
    /// Output storage mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Float32)]
    pub mode: ModeArg,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinMethodArg {
    Fourier,
    Mean,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalizeArg {
    None,
    Zscore,
    Clip,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Float32,
    Float16,
}

fn parse_clip(s: &str) -> Result<(f64, f64), String> {
    let v: Vec<&str> = s.split(',').map(str::trim).collect();
    match v.as_slice() {
        [a, b] => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            _ => Err(format!("expected two numbers LOW,HIGH, got '{s}'")),
        },
        _ => Err(format!("expected two numbers LOW,HIGH, got '{s}'")),
    }
}

/// The settings: file (if any), then flags.
fn resolve_config(args: &Args) -> anyhow::Result<PrepConfig> {
    let mut cfg = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            toml::from_str::<PrepConfig>(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", p.display(), e.message()))?
        }
        None => PrepConfig::default(),
    };
    if let Some(b) = args.bin {
        cfg.bin = b;
    }
    if let Some(m) = args.bin_method {
        cfg.bin_method = match m {
            BinMethodArg::Fourier => BinMethod::Fourier,
            BinMethodArg::Mean => BinMethod::Mean,
        };
    }
    if args.lowpass_a.is_some() {
        cfg.lowpass_a = args.lowpass_a;
    }
    if let Some(s) = args.slab {
        cfg.slab = s;
    }
    let (lo, hi) = args.clip.unwrap_or(match cfg.normalize {
        Normalize::Clip { low_pct, high_pct } => (low_pct, high_pct),
        _ => (0.5, 99.5),
    });
    match args.normalize {
        Some(NormalizeArg::None) => cfg.normalize = Normalize::None,
        Some(NormalizeArg::Zscore) => cfg.normalize = Normalize::Zscore,
        Some(NormalizeArg::Clip) => {
            cfg.normalize = Normalize::Clip {
                low_pct: lo,
                high_pct: hi,
            }
        }
        None => {
            if let Normalize::Clip { .. } = cfg.normalize {
                cfg.normalize = Normalize::Clip {
                    low_pct: lo,
                    high_pct: hi,
                };
            } else if args.clip.is_some() {
                bail!("--clip needs --normalize clip");
            }
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Slabs of an MRC file read through memory mapping.
/// Slabs of the input tomogram (MRC or OME-Zarr).
struct TomogramSource {
    source: capsid_io::VolumeSource,
    shape_zyx: [usize; 3],
}

impl SlabSource for TomogramSource {
    fn shape_zyx(&self) -> [usize; 3] {
        self.shape_zyx
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        self.source
            .read_block(z_start, z_len, 0, self.shape_zyx[1])
            .map(|v| v.data)
            .map_err(|e| CoreError::Invalid(e.to_string()))
    }
}

/// Slabs into an [`MrcWriter`].
struct MrcSink(Option<MrcWriter>);

impl SlabSink for MrcSink {
    fn write_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError> {
        match &mut self.0 {
            Some(w) => w
                .write_slab(slab)
                .map_err(|e| CoreError::Invalid(e.to_string())),
            None => Err(CoreError::Invalid("output already finished".into())),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = resolve_config(&args)?;
    let mut inputs: Vec<&Path> = vec![&args.input];
    inputs.extend(args.config.as_deref());
    let _guard = capsid_core::OutputGuard::new(&[&args.output], &inputs, args.force)?;
    let input = capsid_io::VolumeSource::open(&args.input)?;
    let header = input.header();
    if cfg.lowpass_a.is_some() {
        // A cut-off in Å needs the voxel size.
        capsid_core::guard::check_voxel_size(
            &args.input.display().to_string(),
            header.voxel_size_a,
        )?;
    }
    let plan = prep::plan(
        header.shape_zyx(),
        header.voxel_size_a,
        header.origin_a,
        &cfg,
    )
    .with_context(|| format!("{}", args.input.display()))?;
    let mode = match args.mode {
        ModeArg::Float32 => MrcMode::Float32,
        ModeArg::Float16 => MrcMode::Float16,
    };
    let note = describe(&cfg);
    let wopts = WriteOptions {
        extra_labels: vec![note.chars().take(80).collect()],
        ..WriteOptions::default()
    };
    let writer = MrcWriter::create_with(
        &args.output,
        plan.shape_zyx,
        mode,
        plan.voxel_size_a,
        plan.origin_a,
        &wopts,
    )?;
    let mut sink = MrcSink(Some(writer));
    let source = TomogramSource {
        source: input,
        shape_zyx: header.shape_zyx(),
    };
    let bar = util::progress(plan.steps(), "prep");
    prep::prep_stream(Box::new(source), &plan, &mut sink, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    sink.0.take().context("output writer missing")?.finish()?;
    let [z, y, x] = plan.shape_zyx;
    eprintln!(
        "{}: {x}×{y}×{z} voxels (x×y×z) of {} Å ({note})",
        args.output.display(),
        plan.voxel_size_a[0]
    );
    Ok(())
}

/// One line recording the settings (written as an MRC label of the output).
fn describe(cfg: &PrepConfig) -> String {
    let mut parts = vec![format!("capsid prep {}", capsid_core::VERSION)];
    if cfg.bin > 1 {
        parts.push(format!(
            "bin {} {}",
            cfg.bin,
            if cfg.bin_method == BinMethod::Fourier {
                "fourier"
            } else {
                "mean"
            }
        ));
    }
    if let Some(c) = cfg.lowpass_a {
        parts.push(format!("lowpass {c} A"));
    }
    match cfg.normalize {
        Normalize::None => {}
        Normalize::Zscore => parts.push("zscore".into()),
        Normalize::Clip { low_pct, high_pct } => parts.push(format!("clip {low_pct},{high_pct}")),
    }
    parts.join("; ")
}
