//! `capsid simulate`: SHREC-style simulated tomograms with exact ground truth (capsid-sim).

use crate::util::progress;
use anyhow::{bail, Context};
use capsid_sim::{ClassSpec, Event, SimConfig};
use std::path::PathBuf;

/// Arguments of `capsid simulate`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  capsid simulate --preset tiny --seed 3 --out sim_tiny
  capsid simulate --preset shrec-like --seed 1 --preview --out shrec
  capsid simulate --preset hard --out hard --copick hard_copick
  capsid simulate --preset demo --class-from-model 4v5d.cif:ribosome70s \\
      --count ribosome70s=8 --out sim

Presets: tiny (96×96×48 at 20 Å, 3 classes, seconds), demo (3 tomograms of 128×128×64 at 10 Å),
shrec-like (512×512×200 at 10 Å, 208 particles of each of 6 classes), default (256×256×128).
Outputs (in DIR for one tomogram, else DIR/tomo_000/, ...): reconstruction.mrc, grandmodel.mrc,
class_mask.mrc, occupancy_mask.mrc, particle_locations.txt (class x y z phi theta psi, ZXZ degrees),
particles.star; in DIR: class_table.toml, templates/, simulate_config.toml, simulate_summary.toml.")]
pub struct Args {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Print a JSON summary on stdout (per tomogram: folder, particles placed and requested per
    /// class) instead of the one-line text.
    #[arg(long)]
    pub json: bool,
    /// Start from a preset: tiny, demo, shrec-like, default.
    #[arg(long)]
    pub preset: Option<String>,
    /// Config file (TOML, any subset of fields; `preset = "..."` inside picks its base).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Random seed (same seed → same files, bit for bit).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of tomograms.
    #[arg(long)]
    pub tomograms: Option<usize>,
    /// Tomogram shape X,Y,Z in voxels (the order of every other command).
    #[arg(long, value_name = "X,Y,Z", value_parser = crate::grammar::parse_shape_xyz)]
    pub shape_xyz: Option<[usize; 3]>,
    /// The old spelling, which took Z,Y,X: refused with a message (an old script must not run
    /// transposed).
    #[arg(long, hide = true, value_name = "Z,Y,X")]
    pub shape: Option<String>,
    /// Voxel size in Å.
    #[arg(long)]
    pub voxel_size: Option<f64>,
    /// Slab thickness in voxels.
    #[arg(long)]
    pub slab: Option<usize>,
    /// Target SNR of the projections (var(signal)/var(noise)).
    #[arg(long)]
    pub snr: Option<f64>,
    /// No noise.
    #[arg(long)]
    pub no_noise: bool,
    /// Defocus in µm (positive = underfocus).
    #[arg(long)]
    pub defocus: Option<f64>,
    /// Tilt range MIN,MAX,STEP in degrees.
    #[arg(long, value_parser = parse_tilts)]
    pub tilts: Option<[f64; 3]>,
    /// Add a class from an atomic model: PATH[:name] (PDB or mmCIF).
    #[arg(long, value_name = "PATH[:NAME]")]
    pub class_from_model: Vec<String>,
    /// Add a class from a density map: PATH[:name] (MRC).
    #[arg(long, value_name = "PATH[:NAME]")]
    pub class_from_map: Vec<String>,
    /// Particles per tomogram of a class: NAME=N (repeatable; default 10 for added classes).
    #[arg(long, value_name = "NAME=N")]
    pub count: Vec<String>,
    /// Vesicles per tomogram.
    #[arg(long)]
    pub vesicles: Option<usize>,
    /// Gold beads per tomogram.
    #[arg(long)]
    pub gold: Option<usize>,
    /// Also write the noisy tilt series (tiltseries.mrc + .tlt).
    #[arg(long)]
    pub tilt_series: bool,
    /// Write PNGs of the central XY and XZ slices of each reconstruction.
    #[arg(long)]
    pub preview: bool,
    /// Also write the simulation as a copick project in this folder (copick_config.json; per
    /// tomogram a run with its reconstruction as OME-Zarr, `VoxelSpacing<size>/wbp.zarr`, and the
    /// true particles of each class as picks of user `curation`, session `0`, in Å), as the CZII
    /// challenge's data come.
    #[arg(long, value_name = "DIR")]
    pub copick: Option<PathBuf>,
    /// Replace an existing output folder's simulation.
    #[arg(long)]
    pub force: bool,
}

/// `--copick DIR`: the simulation in `out` (SHREC layout: one folder per tomogram) written as a
/// copick project at `dir`: configuration, OME-Zarr tomograms, ground-truth picks.
fn write_copick(
    out: &std::path::Path,
    summaries: &[capsid_sim::TomogramSummary],
    dir: &std::path::Path,
    force: bool,
) -> anyhow::Result<()> {
    use capsid_io::copick_project::{self as cp, PickableObject};
    use capsid_io::particles::{
        read_particles, write_particles, Format, ReadOptions, WriteOptions,
    };
    use capsid_io::zarr::{write_ome_zarr, MapKind, OmeZarrOptions};
    let table = capsid_core::ClassTable::load(&out.join("class_table.toml"))?;
    let mut voxel = None;
    for s in summaries {
        let tomo = s.dir.join("reconstruction.mrc");
        let source = capsid_io::VolumeSource::open(&tomo)?;
        let vs = source.header().voxel_size_a[0] as f64;
        voxel.get_or_insert(vs);
        let zarr = cp::tomogram_path(dir, &s.name, vs, "wbp");
        std::fs::create_dir_all(zarr.parent().unwrap_or(dir))?;
        let opts = OmeZarrOptions {
            name: s.name.clone(),
            overwrite: force,
            ..OmeZarrOptions::default()
        };
        write_ome_zarr(&source, &tomo, &zarr, &MapKind::Values, &opts)?;
        let ropts = ReadOptions {
            classes: Some(table.clone()),
            ..Default::default()
        };
        let truth = read_particles(&s.dir.join("particle_locations.txt"), &ropts)?;
        for c in &table.classes {
            let mut mine: Vec<capsid_core::Particle> = truth
                .iter()
                .filter(|p| p.class == c.name)
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            for p in &mut mine {
                p.tomogram = Some(s.name.clone());
            }
            let path = cp::picks_path(dir, &s.name, "curation", "0", &c.name);
            std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
            let wopts = WriteOptions {
                format: Some(Format::CopickJson),
                voxel_size_a: Some(vs),
                copick_user_id: Some("curation".into()),
                copick_session_id: Some("0".into()),
                ..Default::default()
            };
            write_particles(&path, &mine, &wopts)?;
        }
    }
    let vs = voxel.unwrap_or(10.0);
    let objects: Vec<PickableObject> = table
        .classes
        .iter()
        .enumerate()
        .map(|(k, c)| PickableObject {
            name: c.name.clone(),
            label: c.label,
            radius_a: match c.radius() {
                capsid_core::Radius::Angstrom(a) => a,
                capsid_core::Radius::Voxels(v) => v * vs,
            },
            color: cp::object_color(k),
        })
        .collect();
    let config = cp::write_config(
        dir,
        "capsid simulation",
        &format!("capsid simulate, {} tomogram(s)", summaries.len()),
        &objects,
        dir,
    )?;
    eprintln!("copick project: {}", config.display());
    Ok(())
}

fn parse_tilts(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("'{s}': {e}"))?;
    <[f64; 3]>::try_from(v).map_err(|_| format!("'{s}': give MIN,MAX,STEP in degrees"))
}

/// `PATH[:name]` → (path, name); the name defaults to the file stem.
fn split_source(s: &str) -> anyhow::Result<(PathBuf, String)> {
    let (path, name) = match s.rsplit_once(':') {
        Some((p, n)) if !n.is_empty() && !n.contains('/') && !n.contains('\\') => {
            (PathBuf::from(p), n.to_string())
        }
        _ => {
            let p = PathBuf::from(s);
            let stem = p
                .file_stem()
                .and_then(|x| x.to_str())
                .unwrap_or("class")
                .split('.')
                .next()
                .unwrap_or("class")
                .to_string();
            (p, stem)
        }
    };
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    Ok((path, name))
}

/// The config of the run: preset (or the file's), then the file, then the flags.
pub fn resolve_config(args: &Args) -> anyhow::Result<SimConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let cfg = SimConfig::load(path)?;
            if let Some(p) = &args.preset {
                if &cfg.preset != p {
                    bail!(
                        "--preset {p} and the config file's preset '{}' disagree; give one",
                        cfg.preset
                    );
                }
            }
            cfg
        }
        None => SimConfig::preset(args.preset.as_deref().unwrap_or("default"))?,
    };
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = args.tomograms {
        cfg.tomograms = v;
    }
    if let Some(old) = &args.shape {
        bail!(
            "--shape {old}: simulate's --shape took Z,Y,X; it is now --shape-xyz X,Y,Z, the order of every other command (here --shape-xyz {})",
            old.split(',').rev().collect::<Vec<_>>().join(",")
        );
    }
    if let Some(v) = args.shape_xyz.map(crate::grammar::zyx) {
        cfg.shape_zyx = v;
        cfg.slab_thickness_vox = cfg.slab_thickness_vox.min(v[0]);
    }
    if let Some(v) = args.voxel_size {
        cfg.voxel_size_a = v;
    }
    if let Some(v) = args.slab {
        cfg.slab_thickness_vox = v;
    }
    if let Some(v) = args.snr {
        cfg.noise.snr = v;
        cfg.noise.enabled = true;
    }
    if args.no_noise {
        cfg.noise.enabled = false;
    }
    if let Some(v) = args.defocus {
        cfg.ctf.defocus_um = v;
    }
    if let Some([a, b, c]) = args.tilts {
        cfg.tilt.min_deg = a;
        cfg.tilt.max_deg = b;
        cfg.tilt.step_deg = c;
    }
    if let Some(v) = args.vesicles {
        cfg.vesicles.count = v;
    }
    if let Some(v) = args.gold {
        cfg.gold.count = v;
    }
    if args.tilt_series {
        cfg.outputs.tilt_series = true;
    }
    if args.preview {
        cfg.outputs.preview = true;
    }
    for (list, is_model) in [
        (&args.class_from_model, true),
        (&args.class_from_map, false),
    ] {
        for s in list {
            let (path, name) = split_source(s)?;
            let mut spec = ClassSpec {
                builtin: None,
                ..ClassSpec::builtin(&name, 10)
            };
            if is_model {
                spec.model = Some(path)
            } else {
                spec.map = Some(path)
            }
            cfg.classes.push(spec);
        }
    }
    for c in &args.count {
        let (name, n) = c
            .split_once('=')
            .with_context(|| format!("--count '{c}': give NAME=N"))?;
        let n: usize = n
            .trim()
            .parse()
            .with_context(|| format!("--count '{c}': N must be a whole number"))?;
        let Some(spec) = cfg.classes.iter_mut().find(|s| s.name == name.trim()) else {
            let names: Vec<&str> = cfg.classes.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "--count '{c}': no class '{name}' (classes: {})",
                names.join(", ")
            );
        };
        spec.count = Some(n);
        spec.concentration_um = None;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = resolve_config(&args)?;
    // The folder must not hold an input (a config, model or map); an existing simulation is kept
    // unless --force; the volumes must fit in memory.
    let mut inputs: Vec<PathBuf> = args.config.iter().cloned().collect();
    for src in args.class_from_model.iter().chain(&args.class_from_map) {
        inputs.push(split_source(src)?.0);
    }
    let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    let mut outputs: Vec<&std::path::Path> = vec![&args.out];
    outputs.extend(args.copick.as_deref());
    let _guard = capsid_core::OutputGuard::new(&outputs, &inputs, args.force)?;
    capsid_core::volume::check_volume_size("simulation shape", cfg.shape_zyx, 16)?;
    let bar = progress(cfg.tomograms as u64 * capsid_sim::Stage::COUNT, "simulate");
    let mut notes = Vec::new();
    let names: Vec<String> = cfg.classes.iter().map(|c| c.name.clone()).collect();
    let summaries = capsid_sim::run(&cfg, &args.out, &mut |e| match e {
        Event::Stage {
            index,
            total,
            stage,
        } => {
            bar.set_message(format!("{}/{total} {}", index + 1, stage.name()));
            // Five stages after placing, plus Done: Stage::COUNT steps per tomogram.
            if stage != capsid_sim::Stage::Place {
                bar.inc(1);
            }
        }
        Event::Done {
            index,
            placed,
            requested,
        } => {
            bar.inc(1);
            for (i, (p, r)) in placed.iter().zip(&requested).enumerate() {
                if p < r {
                    notes.push(format!(
                        "tomogram {index}: placed {p} of {r} '{}' (no room left)",
                        names[i]
                    ));
                }
            }
        }
    })?;
    bar.finish_and_clear();
    if let Some(dir) = &args.copick {
        write_copick(&args.out, &summaries, dir, args.force)?;
    }
    for n in notes {
        eprintln!("note: {n}");
    }
    let total: usize = summaries
        .iter()
        .map(|s| s.placed.iter().sum::<usize>())
        .sum();
    if args.json {
        let per_class = |counts: &[usize]| -> serde_json::Map<String, serde_json::Value> {
            names
                .iter()
                .zip(counts)
                .map(|(n, c)| (n.clone(), (*c).into()))
                .collect()
        };
        let tomograms: Vec<serde_json::Value> = summaries
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "dir": s.dir,
                    "placed": per_class(&s.placed),
                    "requested": per_class(&s.requested),
                })
            })
            .collect();
        let v = serde_json::json!({"out": args.out, "particles": total, "tomograms": tomograms});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "simulated {} tomogram(s), {total} particles, in {}",
        summaries.len(),
        args.out.display()
    );
    Ok(())
}
