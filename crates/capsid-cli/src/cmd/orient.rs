//! `capsid orient`: an orientation for each existing pick by a local template search.

use super::matching::{class_settings, open_tomogram, TemplateArgs};
use anyhow::{bail, Context};
use capsid_core::{ClassTable, EulerConvention, OutputGuard, Particle};
use capsid_io::particles::{self, ReadOptions, WriteOptions};
use capsid_match::orient::{orient_particle, OrientOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `capsid orient`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
For each pick, the template is matched in a box around it: first over a
uniform sampling of SO(3) at --coarse-step (its asymmetric unit under
--symmetry), then over local samplings around the best rotation, halving the
step each time down to --fine-step. The centre may move by up to --max-shift
voxels; --refine-position writes the moved centre, otherwise the pick keeps
its position. The score is the local correlation coefficient (−1..1) at the
found orientation. Picks of other classes than --class are left out; picks too
close to the border for the template box are written without angles.

Writes OUT (a particle list; RELION STAR by default, angles as rlnAngleRot/
Tilt/Psi) and OUT.orient.toml (settings, capsid's version, counts, timing).

Examples:
  capsid orient picks.star --tomogram tomo.mrc \\
      --template templates/ribosome.mrc --class ribosome --out oriented.star
  capsid orient picks.star --tomogram tomo.mrc --template t.mrc \\
      --tilt-range -60,60 --coarse-step 15 --fine-step 1 --out oriented.star")]
pub struct Args {
    /// Picks to orient (STAR, CSV, SHREC txt, DeepFinder XML, copick JSON).
    pub picks: PathBuf,
    /// The tomogram the picks lie in (MRC or OME-Zarr).
    #[arg(long)]
    pub tomogram: PathBuf,
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Output particle list with angles.
    #[arg(long)]
    pub out: PathBuf,
    /// Class table (for the picks' classes, and the radius and symmetry of --class).
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// Orient the picks of this class (needed when the list holds several).
    #[arg(long)]
    pub class: Option<String>,
    /// Step of the first, global search (degrees).
    #[arg(long, default_value_t = 20.0, value_name = "DEG")]
    pub coarse_step: f64,
    /// Finest step of the local refinement (degrees).
    #[arg(long, default_value_t = 2.0, value_name = "DEG")]
    pub fine_step: f64,
    /// How far the centre may move (voxels).
    #[arg(long, default_value_t = 2, value_name = "VOXELS")]
    pub max_shift: usize,
    /// Write the moved centre instead of the pick's position.
    #[arg(long)]
    pub refine_position: bool,
    /// Keep only picks of this tomogram (RELION rlnTomoName) when the list names several.
    #[arg(long)]
    pub tomo_name: Option<String>,
    /// Read an OME-Zarr tomogram at this voxel size (Å; its multiscale level).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f32>,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

fn record_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".orient.toml");
    PathBuf::from(s)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for (flag, v) in [
        ("--coarse-step", args.coarse_step),
        ("--fine-step", args.fine_step),
    ] {
        if !(v.is_finite() && (0.1..=90.0).contains(&v)) {
            bail!("{flag}: expected 0.1 to 90 degrees, got {v}");
        }
    }
    if args.fine_step > args.coarse_step {
        bail!(
            "--fine-step ({}) must not exceed --coarse-step ({})",
            args.fine_step,
            args.coarse_step
        );
    }
    let record = record_path(&args.out);
    let mut inputs: Vec<&Path> = vec![&args.picks, &args.tomogram];
    inputs.extend(args.template.input_paths());
    inputs.extend(args.classes.as_deref());
    let _guard = OutputGuard::new(&[&args.out, &record], &inputs, args.force)?;

    let (source, header, vs) = open_tomogram(&args.tomogram, args.voxel_size)?;
    let [nx, ny, nz] = {
        let [z, y, x] = header.shape_zyx();
        [x, y, z]
    };
    let table = match &args.classes {
        Some(p) => Some(ClassTable::load(p)?),
        None => None,
    };
    let all = particles::read_particles(
        &args.picks,
        &ReadOptions {
            voxel_size_a: Some(vs as f64),
            tomo_shape_xyz: Some([nx, ny, nz]),
            classes: table.clone(),
            ..ReadOptions::default()
        },
    )?;
    let names: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|p| p.tomogram.as_deref()).collect();
    if args.tomo_name.is_none() && names.len() > 1 {
        bail!(
            "{}: the list holds picks of {} tomograms; choose one with --tomo-name",
            args.picks.display(),
            names.len()
        );
    }
    let classes: std::collections::BTreeSet<&str> = all.iter().map(|p| p.class.as_str()).collect();
    let class = match (&args.class, classes.len()) {
        (Some(c), _) => c.clone(),
        (None, 1) => classes
            .iter()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        (None, _) => bail!(
            "{}: the list holds picks of {} classes ({}); choose one with --class",
            args.picks.display(),
            classes.len(),
            classes.into_iter().collect::<Vec<_>>().join(", ")
        ),
    };
    let picks: Vec<Particle> = all
        .iter()
        .filter(|p| p.class == class)
        .filter(|p| match &args.tomo_name {
            Some(t) => p.tomogram.as_deref() == Some(t.as_str()),
            None => true,
        })
        .cloned()
        .collect();
    if picks.is_empty() {
        bail!("{}: no pick of class '{class}'", args.picks.display());
    }
    let loaded = args.template.load(vs)?;
    let (_, _, symmetry) = class_settings(
        args.classes.as_deref(),
        Some(&class)
            .filter(|_| args.classes.is_some())
            .map(String::as_str),
        &args.template.template,
        None,
        args.template.symmetry,
        vs as f64,
        loaded.density_radius_vox,
    )?;
    let tomo = source.read_volume()?;
    let opts = OrientOptions {
        coarse_step_deg: args.coarse_step,
        fine_step_deg: args.fine_step,
        symmetry,
        max_shift_vox: args.max_shift,
    };
    let bar = crate::util::progress(picks.len() as u64, "orient");
    let start = Instant::now();
    let mut out = Vec::with_capacity(picks.len());
    let (mut oriented, mut skipped, mut rotations) = (0usize, 0usize, 0usize);
    for p in &picks {
        let found = orient_particle(tomo.data.view(), &loaded.template, [p.x, p.y, p.z], &opts)
            .with_context(|| format!("{}", args.tomogram.display()))?;
        let mut q = p.clone();
        match found {
            Some(f) => {
                q.angles = Some(f.rotation.to_euler(EulerConvention::RelionZyz));
                q.score = Some(f.score as f64);
                if args.refine_position {
                    [q.x, q.y, q.z] = f.centre_xyz;
                }
                rotations += f.rotations_scored;
                oriented += 1;
            }
            None => {
                q.angles = None;
                skipped += 1;
            }
        }
        out.push(q);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let wopts = WriteOptions {
        voxel_size_a: Some(vs as f64),
        tomo_shape_xyz: Some([nx, ny, nz]),
        classes: table,
        ..WriteOptions::default()
    };
    particles::write_particles(&args.out, &out, &wopts)?;
    let summary = serde_json::json!({
        "picks": args.picks.display().to_string(),
        "tomogram": args.tomogram.display().to_string(),
        "class": class,
        "symmetry": symmetry.to_string(),
        "coarse_step_deg": args.coarse_step,
        "fine_step_deg": args.fine_step,
        "max_shift_vox": args.max_shift,
        "refine_position": args.refine_position,
        "oriented": oriented,
        "skipped_near_border": skipped,
        "rotations_scored": rotations,
        "seconds": seconds,
        "threads": rayon::current_num_threads(),
        "filter": args.template.describe(&loaded.filter),
    });
    let text = format!(
        "# capsid orient, version {}\n{}",
        capsid_core::VERSION,
        crate::util::record_toml(&summary)?
    );
    capsid_core::write_atomically(&record, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    eprintln!(
        "{}: {oriented} picks of '{class}' oriented ({skipped} too close to the border), \
         {rotations} rotations scored in {seconds:.1} s",
        args.out.display()
    );
    Ok(())
}
