//! `capsid convert`: convert a particle list between STAR, CSV, SHREC txt, DeepFinder XML and copick
//! JSON.

use crate::grammar::parse_shape_xyz;
use anyhow::{bail, Context};
use capsid_core::{ClassTable, Particle};
use capsid_io::particles::{read_particles, write_particles, Format, ReadOptions, WriteOptions};
use std::path::{Path, PathBuf};

/// Arguments of `capsid convert`.
#[derive(clap::Args)]
#[command(after_help = "\
Formats (from the extension, or --from/--to): .star RELION, .csv, .txt SHREC particle_locations,
.xml DeepFinder object list, .json copick picks (one class per file).

STAR files are written for RELION 3.1 and 4 (data_optics + data_particles) when the voxel size is
known (--voxel-size or --like), else as one data_particles block (RELION 3.0).

Examples:
  capsid convert particle_locations.txt picks.star --classes classes.toml \\
      --tomo-name TS_01
  capsid convert picks.star picks.csv
  capsid convert run_data.star picks.csv --voxel-size 10 \\
      --tomo-shape 630,630,200 --default-class ribosome
  capsid convert objl.xml 'copick/{class}.json' --classes classes.toml \\
      --voxel-size 10
  capsid convert picks.star \\
      'proj/ExperimentRuns/{tomo}/Picks/capsid_1_{class}.json' \\
      --voxel-size 10 --user-id capsid --session-id 1
  capsid convert picks.csv picks_r5.star --star-style relion5 \\
      --voxel-size 10 --tomo-shape 630,630,200
  capsid convert picks.csv picks_rln31.star --like tomo.mrc \\
      --voltage 300 --cs 2.7")]
pub struct Args {
    /// Particle list to read.
    pub input: PathBuf,
    /// Particle list to write. `{class}` in the name writes one file per class (needed for
    /// copick), `{tomo}` one per tomogram.
    pub output: PathBuf,
    /// Format of the input (star, csv, shrec, deepfinder, copick); default: from the extension.
    #[arg(long = "from", value_name = "FMT")]
    pub from: Option<Format>,
    /// Format of the output; default: from the extension.
    #[arg(long = "to", value_name = "FMT")]
    pub to: Option<Format>,
    /// Voxel size of the tomogram in Å (copick and RELION 5 store Å).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f64>,
    /// Tomogram shape X,Y,Z in voxels (RELION 5 centred coordinates; particles must lie inside).
    #[arg(long, visible_alias = "shape-xyz", value_name = "X,Y,Z", value_parser = parse_shape_xyz)]
    pub tomo_shape: Option<[usize; 3]>,
    /// Take the voxel size and shape from this tomogram's MRC header (unless given above).
    #[arg(long, value_name = "MRC")]
    pub like: Option<PathBuf>,
    /// Class table (TOML): names numeric classes and checks class names.
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// Class given to particles whose file names none (a STAR file without class column;
    /// `--class` is the old spelling).
    #[arg(long = "default-class", alias = "class", value_name = "NAME")]
    pub class: Option<String>,
    /// Tomogram name of particles whose file names none (SHREC, DeepFinder without tomo_idx).
    #[arg(long, value_name = "NAME")]
    pub tomo_name: Option<String>,
    /// copick output: the picks' user_id [default: capsid].
    #[arg(long, value_name = "ID")]
    pub user_id: Option<String>,
    /// copick output: the picks' session_id [default: 0, copick's mark of a tool's picks].
    #[arg(long, value_name = "ID")]
    pub session_id: Option<String>,
    /// Without a class table, keep numeric classes (rlnClassNumber, class_label) as names.
    #[arg(long)]
    pub keep_class_numbers: bool,
    /// STAR output: RELION 5 (the same as --star-style relion5).
    #[arg(long, hide = true)]
    pub relion5: bool,
    #[command(flatten)]
    pub star: crate::grammar::StarArgs,
    /// Accept an input without particles.
    #[arg(long)]
    pub allow_empty: bool,
    /// Replace existing output files (the previous file is kept as NAME.bak).
    #[arg(long)]
    pub force: bool,
}

/// Voxel size and shape from the flags, completed from `--like`'s MRC header.
pub fn tomogram_geometry(
    voxel_size: Option<f64>,
    shape: Option<[usize; 3]>,
    like: Option<&Path>,
) -> anyhow::Result<(Option<f64>, Option<[usize; 3]>)> {
    let Some(mrc) = like else {
        return Ok((voxel_size, shape));
    };
    let h = capsid_io::mrc::read_header(mrc)?;
    let [z, y, x] = h.shape_zyx();
    let v = f64::from(h.voxel_size_a[0]);
    let header_voxel = (v > 0.0).then_some(v);
    if voxel_size.is_none() && header_voxel.is_none() {
        bail!(
            "{}: the header has no voxel size: give --voxel-size",
            mrc.display()
        );
    }
    Ok((voxel_size.or(header_voxel), shape.or(Some([x, y, z]))))
}

/// Loads the class table of `--classes`.
pub fn load_classes(path: Option<&Path>) -> anyhow::Result<Option<ClassTable>> {
    path.map(|p| ClassTable::load(p).map_err(anyhow::Error::from))
        .transpose()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (voxel_size_a, tomo_shape_xyz) =
        tomogram_geometry(args.voxel_size, args.tomo_shape, args.like.as_deref())?;
    let classes = load_classes(args.classes.as_deref())?;
    let mut inputs: Vec<&Path> = vec![&args.input];
    inputs.extend(args.like.as_deref());
    inputs.extend(args.classes.as_deref());
    let ropts = ReadOptions {
        format: args.from,
        voxel_size_a,
        tomo_shape_xyz,
        classes: classes.clone(),
        default_class: args.class.clone(),
        default_tomogram: args.tomo_name.clone(),
        class_numbers_as_names: args.keep_class_numbers,
        allow_empty: args.allow_empty,
    };
    let particles = read_particles(&args.input, &ropts)?;
    let wopts = WriteOptions {
        format: args.to,
        voxel_size_a,
        tomo_shape_xyz,
        classes,
        star: if args.relion5 {
            capsid_io::particles::StarStyle::Relion5
        } else {
            args.star.star_style
        },
        optics: args.star.optics(),
        copick_user_id: args.user_id.clone(),
        copick_session_id: args.session_id.clone(),
    };
    let out_format = Format::resolve(&args.output, args.to)?;
    let n_classes = particles
        .iter()
        .map(|p| p.class.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if out_format == Format::CopickJson
        && n_classes > 1
        && !args.output.to_string_lossy().contains("{class}")
    {
        bail!(
            "{}: a copick file holds one class and these particles have {n_classes}: put {{class}} in the output name, e.g. picks/{{class}}.json",
            args.output.display()
        );
    }
    let targets = output_paths(&args.output, &particles)?;
    let target_refs: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
    let _guard = capsid_core::OutputGuard::new(&target_refs, &inputs, args.force)?;
    if args.force {
        for t in &targets {
            capsid_core::guard::keep_backup(t)?;
        }
    }
    let written = write_split(&args.output, &particles, &wopts)?;
    for (path, n) in &written {
        eprintln!("wrote {n} particles to {}", path.display());
    }
    Ok(())
}

/// Whether the output name holds a placeholder (`{class}`, `{tomo}`): one file per value.
fn is_template(output: &Path) -> bool {
    let name = output.to_string_lossy();
    name.contains("{class}") || name.contains("{tomo}")
}

/// The file of particle `p` for the output name `output`: `{class}` replaced by its class,
/// `{tomo}` by its tomogram (checked: they become part of a path; a particle without a
/// tomogram is an error when the name holds `{tomo}`).
fn target_of(output: &Path, p: &Particle) -> anyhow::Result<PathBuf> {
    let mut name = output.to_string_lossy().into_owned();
    if name.contains("{class}") {
        capsid_core::guard::check_file_name_part("class name", &p.class)
            .with_context(|| format!("{}", output.display()))?;
        name = name.replace("{class}", &p.class);
    }
    if name.contains("{tomo}") {
        let Some(t) = p.tomogram.as_deref() else {
            bail!(
                "{}: a particle has no tomogram name for {{tomo}} (give --tomo-name)",
                output.display()
            );
        };
        capsid_core::guard::check_file_name_part("tomogram name", t)
            .with_context(|| format!("{}", output.display()))?;
        name = name.replace("{tomo}", t);
    }
    Ok(PathBuf::from(name))
}

/// Writes `particles` to `output`, or one file per class and/or tomogram when the name holds
/// `{class}` / `{tomo}` (copick: `proj/ExperimentRuns/{tomo}/Picks/capsid_1_{class}.json`).
/// Returns each file written with its particle count.
pub fn write_split(
    output: &Path,
    particles: &[Particle],
    opts: &WriteOptions,
) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    if !is_template(output) {
        write_particles(output, particles, opts)?;
        return Ok(vec![(output.to_path_buf(), particles.len())]);
    }
    let mut out = Vec::new();
    for path in output_paths(output, particles)? {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        }
        let mut subset = Vec::new();
        for p in particles {
            if target_of(output, p)? == path {
                subset.push(p.clone());
            }
        }
        write_particles(&path, &subset, opts)?;
        out.push((path, subset.len()));
    }
    Ok(out)
}

/// The files [`write_split`] will write: `output`, or one per class and/or tomogram when it
/// holds `{class}` / `{tomo}`, in the particles' order.
pub fn output_paths(output: &Path, particles: &[Particle]) -> anyhow::Result<Vec<PathBuf>> {
    if !is_template(output) {
        return Ok(vec![output.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in particles {
        let path = target_of(output, p)?;
        if !out.contains(&path) {
            out.push(path);
        }
    }
    Ok(out)
}
