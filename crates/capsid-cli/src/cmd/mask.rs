//! `capsid mask`: label and instance maps (training targets) from a particle list.

use anyhow::{bail, Context};
use capsid_core::OutputGuard;
use capsid_core::{ClassTable, Particle};
use capsid_io::mrc::{self, LabelMode, MrcMode, WriteOptions};
use capsid_io::particles::{self, Format, ReadOptions};
use capsid_prep::mask::{
    shape_masks, sphere_masks, MaskGrid, MaskOptions, OutsidePolicy, ShapeTemplate, TemplateLevel,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `capsid mask`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each particle becomes a sphere of its class radius (or, with --shapes, its
class template rotated by the particle's angles) filled with the class label
(0 = background; labels from the class table). Where particles overlap, a
voxel goes to the nearer centre (ties: the earlier particle in the list).
The instance map holds particle ids (1-based position in the list), as
uint16 (mode 6) up to 65,535 particles and float32 beyond. Outputs copy the
tomogram's voxel size and origin.

Examples:
  capsid mask --tomogram tomo.mrc --particles picks.star \\
      --classes classes.toml --out labels.mrc
  capsid mask --shape 512,512,200 --voxel-size 10 \\
      --particles particle_locations.txt --classes classes.toml \\
      --out class_mask.mrc --instances occupancy_mask.mrc
  capsid mask --tomogram tomo.mrc --particles gt.csv \\
      --classes classes.toml --shapes --out labels.mrc")]
pub struct Args {
    /// Tomogram (MRC or OME-Zarr) whose header gives the shape, voxel size and origin (its data
    /// are not read).
    #[arg(long, conflicts_with_all = ["shape", "voxel_size"], required_unless_present = "shape")]
    pub tomogram: Option<PathBuf>,
    /// Volume shape X,Y,Z in voxels (instead of --tomogram).
    #[arg(long, visible_alias = "shape-xyz", value_name = "X,Y,Z", value_parser = crate::grammar::parse_shape_xyz, requires = "voxel_size")]
    pub shape: Option<[usize; 3]>,
    /// Voxel size in Å (with --shape).
    #[arg(long)]
    pub voxel_size: Option<f64>,
    /// Particle list (STAR, CSV, SHREC txt, DeepFinder XML, copick JSON; by extension).
    #[arg(long)]
    pub particles: PathBuf,
    /// Class table (TOML) with names, labels and radii (and templates for --shapes).
    #[arg(long)]
    pub classes: PathBuf,
    /// Output label map (MRC).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the instance map (particle ids) here.
    #[arg(long)]
    pub instances: Option<PathBuf>,
    /// Draw each class's template rotated by the particle's angles instead of spheres.
    #[arg(long)]
    pub shapes: bool,
    /// Template threshold for --shapes: `half-max` or a density value.
    #[arg(long, default_value = "half-max", value_parser = parse_level)]
    pub template_level: LevelArg,
    /// Label map storage: u8 (mode 0 with IMOD's unsigned flag, half the size) or u16 (mode 6).
    #[arg(long, value_enum, default_value_t = LabelModeArg::U8)]
    pub label_mode: LabelModeArg,
    /// Keep only particles of this tomogram (RELION rlnTomoName); needed when the list names several.
    #[arg(long)]
    pub tomo_name: Option<String>,
    /// Skip particles outside the volume with a warning instead of failing.
    #[arg(long)]
    pub skip_outside: bool,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

/// `--label-mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelModeArg {
    U8,
    U16,
}

/// `--template-level`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelArg(pub TemplateLevel);

fn parse_level(s: &str) -> Result<LevelArg, String> {
    if s.eq_ignore_ascii_case("half-max") {
        return Ok(LevelArg(TemplateLevel::HalfMax));
    }
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(LevelArg(TemplateLevel::Value(v))),
        _ => Err(format!("expected `half-max` or a number, got '{s}'")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut outputs: Vec<&Path> = vec![&args.out];
    outputs.extend(args.instances.as_deref());
    let mut inputs: Vec<&Path> = vec![&args.particles, &args.classes];
    inputs.extend(args.tomogram.as_deref());
    let _guard = OutputGuard::new(&outputs, &inputs, args.force)?;
    let grid = grid_of(&args)?;
    let classes = ClassTable::load(&args.classes)?;
    let templates: Vec<&Path> = classes
        .classes
        .iter()
        .filter_map(|c| c.template.as_deref())
        .collect();
    capsid_core::guard::refuse_overwriting_inputs(&outputs, &templates)?;
    let particles = read_particle_list(&args, &grid, &classes)?;
    let opts = MaskOptions {
        outside: if args.skip_outside {
            OutsidePolicy::Skip
        } else {
            OutsidePolicy::Error
        },
        instances: args.instances.is_some(),
    };
    let masks = if args.shapes {
        let templates = load_templates(&classes, &particles, args.template_level.0)?;
        shape_masks(&grid, &particles, &classes, &templates, &opts)
    } else {
        sphere_masks(&grid, &particles, &classes, &opts)
    }
    .with_context(|| format!("{}", args.particles.display()))?;
    for &i in &masks.skipped {
        let p = &particles[i];
        eprintln!(
            "warning: {}: particle {} (class '{}') at x={}, y={}, z={} lies outside the volume; skipped",
            args.particles.display(),
            i + 1,
            p.class,
            p.x,
            p.y,
            p.z
        );
    }
    let note = format!(
        "capsid mask: {} from {}",
        if args.shapes { "shapes" } else { "spheres" },
        args.particles
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let wopts = WriteOptions {
        extra_labels: vec![truncate(&note, 80)],
        ..WriteOptions::default()
    };
    let mode = match args.label_mode {
        LabelModeArg::U8 => LabelMode::Uint8Mode0,
        LabelModeArg::U16 => LabelMode::Uint16Mode6,
    };
    if let Some(path) = &args.instances {
        let inst = masks
            .instances
            .as_ref()
            .context("instance map was not built")?;
        let max_id = inst.data.iter().copied().max().unwrap_or(0);
        if max_id >= 1 << 24 {
            bail!(
                "{}: {} particles exceed what a float32 instance map stores exactly (2^24)",
                path.display(),
                max_id
            );
        }
        let mode = if max_id <= u16::MAX as u32 {
            MrcMode::Uint16
        } else {
            MrcMode::Float32
        };
        let as_f32 = inst.with_data(inst.data.mapv(|v| v as f32));
        mrc::write_volume_with(path, &as_f32, mode, &wopts)?;
    }
    mrc::write_labels_with(&args.out, &masks.labels, mode, &wopts)?;
    let labelled = masks.labels.data.iter().filter(|&&v| v != 0).count();
    eprintln!(
        "{}: {} particles drawn ({} skipped), {} of {} voxels labelled",
        args.out.display(),
        particles.len() - masks.skipped.len(),
        masks.skipped.len(),
        labelled,
        masks.labels.data.len()
    );
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The grid from the tomogram header or from --shape/--voxel-size.
fn grid_of(args: &Args) -> anyhow::Result<MaskGrid> {
    if let Some(t) = &args.tomogram {
        let h = capsid_io::mrc::read_header(t)?;
        // Radii are in Å: a voxel size of 0 would label every voxel.
        capsid_core::guard::check_voxel_size(&t.display().to_string(), h.voxel_size_a)?;
        check_mask_size(&t.display().to_string(), h.shape_zyx(), args)?;
        return Ok(MaskGrid {
            shape_zyx: h.shape_zyx(),
            voxel_size_a: h.voxel_size_a,
            origin_a: h.origin_a,
        });
    }
    let (Some([x, y, z]), Some(vs)) = (args.shape, args.voxel_size) else {
        bail!("give --tomogram, or --shape X,Y,Z with --voxel-size");
    };
    if !(vs > 0.0 && vs.is_finite()) {
        bail!("--voxel-size must be a positive number of Å, got {vs}");
    }
    check_mask_size("--shape", [z, y, x], args)?;
    Ok(MaskGrid::new([z, y, x], vs as f32))
}

/// The shared "too large" check for the maps `mask` builds: a u8 label map, a nearest-centre
/// distance (f32) and, with --instances, u32 ids and their f32 copy.
fn check_mask_size(what: &str, shape_zyx: [usize; 3], args: &Args) -> anyhow::Result<()> {
    let bytes = if args.instances.is_some() { 13 } else { 5 };
    capsid_core::volume::check_volume_size(what, shape_zyx, bytes)?;
    Ok(())
}

/// Reads the particle list (classes resolved with the table); checks coordinates against the grid
/// unless --skip-outside; keeps one tomogram's particles.
fn read_particle_list(
    args: &Args,
    grid: &MaskGrid,
    classes: &ClassTable,
) -> anyhow::Result<Vec<Particle>> {
    let path = &args.particles;
    let [nz, ny, nx] = grid.shape_zyx;
    let vs = grid.voxel_size_a[0] as f64;
    let opts = ReadOptions {
        voxel_size_a: (vs > 0.0).then_some(vs),
        tomo_shape_xyz: Some([nx, ny, nz]),
        classes: Some(classes.clone()),
        ..ReadOptions::default()
    };
    let format = Format::resolve(path, None)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let located = particles::parse_particles(&text, path, format, &opts)?;
    // Outside particles are handled by the mask (error with its number, or skip + warning).
    let check = ReadOptions {
        tomo_shape_xyz: None,
        ..opts
    };
    let all = particles::check_particles(path, located, &check)?;
    let names: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|p| p.tomogram.as_deref()).collect();
    match &args.tomo_name {
        Some(name) => {
            let kept: Vec<Particle> = all
                .iter()
                .filter(|p| p.tomogram.as_deref() == Some(name))
                .cloned()
                .collect();
            if kept.is_empty() {
                bail!(
                    "{}: no particle of tomogram '{name}' (tomograms in the list: {})",
                    path.display(),
                    names.into_iter().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(kept)
        }
        None if names.len() > 1 => bail!(
            "{}: the list holds particles of {} tomograms ({}); choose one with --tomo-name",
            path.display(),
            names.len(),
            names.into_iter().collect::<Vec<_>>().join(", ")
        ),
        None => Ok(all),
    }
}

/// Loads the templates of the classes the particles use.
fn load_templates(
    classes: &ClassTable,
    particles: &[Particle],
    level: TemplateLevel,
) -> anyhow::Result<BTreeMap<String, ShapeTemplate>> {
    let used: std::collections::BTreeSet<&str> =
        particles.iter().map(|p| p.class.as_str()).collect();
    let mut out = BTreeMap::new();
    for name in used {
        let class = classes.get(name)?;
        let Some(path) = &class.template else {
            bail!(
                "class '{name}' has no template in the class table (--shapes needs one per class)"
            );
        };
        let vol = mrc::read_volume(path)?;
        let t = ShapeTemplate::new(
            vol.data,
            vol.voxel_size_a[0] as f64,
            level,
            &path.display().to_string(),
        )?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}
