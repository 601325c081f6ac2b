//! `capsid features`: a trained encoder's features at each particle's centre, as CSV.

use super::matching::open_tomogram;
use anyhow::{bail, Context};
use capsid_core::{ClassTable, OutputGuard, Particle};
use capsid_io::particles::{self, ReadOptions};
use capsid_nn::features::centre_features;
use capsid_nn::model::load_model_folder;
use capsid_nn::train::{load_run_config, RunLayout};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `capsid features`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
For each particle, a cube centred on it is cut out of the tomogram, z-scored
like a training patch and passed through the model's encoder. The features of
the encoder cell holding the centre are written (with --cells 3, those of the
3×3×3 cells around it): the UNet's bottleneck (64 channels, cells of 4 voxels)
or 3D-UCaps' class capsules (64 atoms per class capsule, background first;
cells of 2^levels voxels). The cube is an odd number of cells wide and at least
as wide as the training patch, so the centre lies in the middle cell.

Writes OUT as CSV: tomogram, class, x, y, z (voxels), r11 … r33 (the active
rotation matrix of the particle's Euler angles, row by row, as `capsid
evaluate` uses it; empty when the list has no angles), then f0 … fN, value
((channel·cells + z)·cells + y)·cells + x. A line of settings (model, patch,
cell size, channels) starts the file as a # comment.

Used by bench/pose/capsule_pose.py: do capsule poses predict orientation?

Examples:
  capsid features runs/ucaps --tomogram tomo_003/reconstruction.mrc \\
      --particles tomo_003/particle_locations.txt --out ucaps_003.csv
  capsid features runs/unet --tomogram tomo.mrc --particles picks.star \\
      --class ribosome --cells 3 --out unet_ribosomes.csv")]
pub struct Args {
    /// Model folder (a `capsid train` run, or net.toml + weights).
    pub model: PathBuf,
    /// The tomogram the particles lie in (MRC or OME-Zarr).
    #[arg(long)]
    pub tomogram: PathBuf,
    /// Particle list (STAR, CSV, SHREC txt, DeepFinder XML, copick JSON).
    #[arg(long)]
    pub particles: PathBuf,
    /// Output CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// Class table, to read lists that give classes by label.
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// Keep only particles of this class (repeatable; default: all).
    #[arg(long)]
    pub class: Vec<String>,
    /// Side of the block of encoder cells written around each centre (odd).
    #[arg(long, default_value_t = 1)]
    pub cells: usize,
    /// Read an OME-Zarr tomogram at this voxel size (Å; its multiscale level).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f32>,
    /// Compute device (flex = CPU; see `capsid segment --help`).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.cells == 0 || args.cells.is_multiple_of(2) {
        bail!(
            "--cells: expected an odd number (1, 3, …), got {}",
            args.cells
        );
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use all cores)");
    }
    let mut inputs = vec![
        args.model.as_path(),
        args.tomogram.as_path(),
        args.particles.as_path(),
    ];
    inputs.extend(args.classes.as_deref());
    let _guard = OutputGuard::new(&[&args.out], &inputs, args.force)?;
    if let Some(n) = args.threads {
        capsid_nn::set_threads(n)?;
    }
    let device = capsid_nn::parse_device(&args.device)?;
    let (net_cfg, net) = load_model_folder(&args.model, &device)?;
    let min_patch = if args.model.join(RunLayout::CONFIG).is_file() {
        load_run_config(&args.model)?.data.patch
    } else {
        32
    };
    let (source, header, vs) = open_tomogram(&args.tomogram, args.voxel_size)?;
    let [z, y, x] = header.shape_zyx();
    let table = match &args.classes {
        Some(p) => Some(ClassTable::load(p)?),
        None => None,
    };
    let read_opts = ReadOptions {
        voxel_size_a: Some(vs as f64),
        tomo_shape_xyz: Some([x, y, z]),
        classes: table,
        ..ReadOptions::default()
    };
    let all = particles::read_particles(&args.particles, &read_opts)?;
    let chosen: Vec<&Particle> = all
        .iter()
        .filter(|p| args.class.is_empty() || args.class.contains(&p.class))
        .collect();
    if chosen.is_empty() {
        bail!(
            "{}: no particle{}",
            args.particles.display(),
            if args.class.is_empty() {
                String::new()
            } else {
                format!(" of class {}", args.class.join(", "))
            }
        );
    }
    let tomo = source.read_volume()?;
    let tomo_name = args
        .tomogram
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let centres: Vec<[f64; 3]> = chosen.iter().map(|p| [p.x, p.y, p.z]).collect();
    let bar = crate::util::progress(centres.len() as u64, "features");
    let mut rows = Vec::with_capacity(centres.len());
    let mut settings = None;
    for chunk in centres.chunks(16) {
        let f = centre_features(
            &net,
            &net_cfg,
            tomo.data.view(),
            chunk,
            args.cells,
            min_patch,
            &device,
        )?;
        bar.inc(chunk.len() as u64);
        rows.extend(f.rows.iter().cloned());
        settings = Some(f);
    }
    bar.finish_and_clear();
    let f = settings.context("no particle")?;
    let width = rows.first().map_or(0, Vec::len);
    capsid_core::write_atomically(&args.out, |w| {
        writeln!(
            w,
            "# capsid {} features: model {} ({}), patch {}, cell {} voxels, cells {}, channels {}",
            env!("CARGO_PKG_VERSION"),
            args.model.display(),
            net_cfg.name(),
            f.patch,
            f.downsampling,
            f.cells,
            f.channels
        )?;
        let mut head = String::from("tomogram,class,x,y,z");
        for i in 1..=3 {
            for j in 1..=3 {
                head.push_str(&format!(",r{i}{j}"));
            }
        }
        for k in 0..width {
            head.push_str(&format!(",f{k}"));
        }
        writeln!(w, "{head}")?;
        for (p, row) in chosen.iter().zip(&rows) {
            let name = p.tomogram.as_deref().unwrap_or(&tomo_name);
            write!(w, "{},{},{},{},{}", name, p.class, p.x, p.y, p.z)?;
            match p.angles {
                Some(a) => {
                    for r in a.rotation().m {
                        for v in r {
                            write!(w, ",{v}")?;
                        }
                    }
                }
                None => write!(w, "{}", ",".repeat(9))?,
            }
            for v in row {
                write!(w, ",{v}")?;
            }
            writeln!(w)?;
        }
        Ok(())
    })?;
    println!(
        "{} particle(s) → {} ({} features each: {} channels × {}³ cells of {} voxels; patch {})",
        rows.len(),
        args.out.display(),
        width,
        f.channels,
        f.cells,
        f.downsampling,
        f.patch
    );
    Ok(())
}
