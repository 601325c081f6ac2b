//! `capsid orient`: an orientation for each existing pick by a local template search.

use super::matching::{class_settings, open_tomogram, TemplateArgs};
use anyhow::{bail, Context};
use capsid_core::{ClassTable, EulerConvention, OutputGuard, Particle};
use capsid_io::particles::{self, ReadOptions, WriteOptions};
use capsid_match::orient::{orient_particle, score_at, OrientOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `capsid orient` writes as each pick's score.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickScore {
    /// The local correlation coefficient at the found orientation (−1..1).
    Correlation,
    /// The correlation minus that of the template's spherical average at the same place: the
    /// part of the fit that comes from the shape, not from size and radial profile.
    Shape,
}

impl PickScore {
    fn name(self) -> &'static str {
        match self {
            PickScore::Correlation => "correlation",
            PickScore::Shape => "shape",
        }
    }
}

/// Arguments of `capsid orient`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
For each pick, the template is matched in a box around it: first over a
uniform sampling of SO(3) at --coarse-step (its asymmetric unit under
--symmetry), then over local samplings around the best rotation, halving the
step each time down to --fine-step. The centre may move by up to --max-shift
voxels; --refine-position writes the moved centre, otherwise the pick keeps
its position. The score is the local correlation coefficient (−1..1) at the
found orientation, or with --score shape that correlation minus the one of the
template's spherical average (its radial profile) at the same place. Picks of
other classes than --class are left out (copied
with --keep-other-classes; in a STAR file those without angles get RELION's
default 0, 0, 0, and the count is printed and recorded); picks too close to the border for the
template box are written without angles or score (and never rejected).

Verification against look-alikes: picks scoring below --min-score are rejected.
A look-alike of the same size, mass and radial profile fits the template almost
as well as the particle (correlations differ by a few hundredths, and shift
from tomogram to tomogram), but it fits the spherical average as well as the
template, so use --score shape: near 0 for a look-alike, clearly positive for
the particle. The threshold is chosen on labelled data with --tune-with TRUTH:
orient the picks of a tomogram whose particles are known (a training tomogram,
picked the same way), and the minimum score with the best strict F1 (tolerance
--tolerance × radius) is printed, recorded in OUT.orient.toml and applied; give
it as --min-score on the other tomograms.

Writes OUT (a particle list; RELION STAR by default, angles as rlnAngleRot/
Tilt/Psi) and OUT.orient.toml (settings, capsid's version, counts, timing).

Examples:
  capsid orient picks.star --tomogram tomo.mrc \\
      --template templates/ribosome.mrc --class ribosome --out oriented.star
  capsid orient picks.star --tomogram tomo.mrc --template t.mrc \\
      --tilt-range -60,60 --coarse-step 15 --fine-step 1 --out oriented.star
  capsid orient train_picks.star --tomogram tomo_002.mrc --template t.mrc \\
      --classes classes.toml --class ribosome --score shape \\
      --tune-with truth_002.star --keep-other-classes --out verified_002.star
  capsid orient picks_003.star --tomogram tomo_003.mrc --template t.mrc \\
      --classes classes.toml --class ribosome --score shape \\
      --min-score 0.05 --keep-other-classes --out verified_003.star")]
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
    /// The score written and verified: `correlation`, or `shape` (correlation minus that of the
    /// template's spherical average: near 0 for a same-size look-alike of another shape).
    #[arg(long, value_enum, default_value = "correlation")]
    pub score: PickScore,
    /// Reject the picks of the class scoring below this (see --score).
    #[arg(long, value_name = "SCORE", conflicts_with = "tune_with")]
    pub min_score: Option<f64>,
    /// Choose --min-score for the best strict F1 against these true particles of the tomogram
    /// (any particle list), then apply it.
    #[arg(long, value_name = "TRUTH")]
    pub tune_with: Option<PathBuf>,
    /// Match tolerance of --tune-with, as a fraction of the class radius.
    #[arg(long, default_value_t = 0.5, value_name = "F")]
    pub tolerance: f64,
    /// Copy the picks of other classes to OUT unchanged (to verify one class after another).
    #[arg(long)]
    pub keep_other_classes: bool,
    /// Read an OME-Zarr tomogram at this voxel size (Å; its multiscale level).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f32>,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

/// TP, FP, FN and the scores derived from them, for the run record.
fn counts_json(c: &capsid_eval::Counts) -> serde_json::Value {
    serde_json::json!({"tp": c.tp, "fp": c.fp, "fn": c.fn_, "precision": c.precision(),
        "recall": c.recall(), "f1": c.f1()})
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
    if let Some(m) = args.min_score {
        if !m.is_finite() {
            bail!("--min-score: expected a finite score, got {m}");
        }
    }
    if !(args.tolerance.is_finite() && args.tolerance > 0.0) {
        bail!(
            "--tolerance: expected a positive fraction of the radius, got {}",
            args.tolerance
        );
    }
    let record = record_path(&args.out);
    let mut inputs: Vec<&Path> = vec![&args.picks, &args.tomogram];
    inputs.extend(args.tune_with.as_deref());
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
    let read_opts = ReadOptions {
        voxel_size_a: Some(vs as f64),
        tomo_shape_xyz: Some([nx, ny, nz]),
        classes: table.clone(),
        ..ReadOptions::default()
    };
    let all = particles::read_particles(&args.picks, &read_opts)?;
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
    let in_tomogram = |p: &&Particle| match &args.tomo_name {
        Some(t) => p.tomogram.as_deref() == Some(t.as_str()),
        None => true,
    };
    let picks: Vec<Particle> = all
        .iter()
        .filter(|p| p.class == class)
        .filter(in_tomogram)
        .cloned()
        .collect();
    let others: Vec<Particle> = if args.keep_other_classes {
        all.iter()
            .filter(|p| p.class != class)
            .filter(in_tomogram)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if picks.is_empty() {
        bail!("{}: no pick of class '{class}'", args.picks.display());
    }
    let star = particles::Format::resolve(&args.out, None)? == particles::Format::Star;
    if star && others.iter().any(|q| q.score.is_none()) {
        bail!(
            "{}: picks of other classes have no score, and a STAR score column needs one in \
             every row: write OUT as .csv, or leave out --keep-other-classes",
            args.picks.display()
        );
    }
    let loaded = args.template.load(vs)?;
    let truth = match &args.tune_with {
        Some(p) => {
            let t = particles::read_particles(p, &read_opts)?;
            let t: Vec<Particle> = t
                .into_iter()
                .filter(|q| q.class == class)
                .filter(|q| q.tomogram.is_none() || in_tomogram(&q))
                .collect();
            if t.is_empty() {
                bail!(
                    "{}: no particle of class '{class}' to tune with",
                    p.display()
                );
            }
            Some(t)
        }
        None => None,
    };
    let (_, radius_vox, symmetry) = class_settings(
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
    let spherical = (args.score == PickScore::Shape).then(|| loaded.template.spherical_average());
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
                q.score = Some(match &spherical {
                    None => f.score as f64,
                    Some(sph) => {
                        let radial = score_at(tomo.data.view(), sph, f.centre_xyz)
                            .with_context(|| format!("{}", args.tomogram.display()))?;
                        f.score as f64 - radial as f64
                    }
                });
                if args.refine_position {
                    [q.x, q.y, q.z] = f.centre_xyz;
                }
                rotations += f.rotations_scored;
                oriented += 1;
            }
            None => {
                q.angles = None;
                q.score = None;
                skipped += 1;
            }
        }
        out.push(q);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let tolerance_vox = args.tolerance * radius_vox;
    let tuned = match &truth {
        Some(t) => Some(
            capsid_eval::threshold::best_min_score(&out, t, &class, tolerance_vox)
                .with_context(|| format!("{}: no pick could be scored", args.picks.display()))?,
        ),
        None => None,
    };
    let min_score = tuned.map(|t| t.min_score).or(args.min_score);
    let before = out.len();
    if let Some(m) = min_score {
        out.retain(|p| p.score.is_none_or(|s| s >= m));
    }
    let rejected = before - out.len();
    let kept = out.len();
    // A STAR column holds a value for every row: when the class's picks carry angles, the other
    // classes' picks without angles get RELION's default (0, 0, 0), and this is said.
    let mut others_zeroed = 0usize;
    let mut others = others;
    if star && out.iter().any(|p| p.angles.is_some()) {
        for q in others.iter_mut().filter(|q| q.angles.is_none()) {
            q.angles = Some(capsid_core::EulerAngles::relion(0.0, 0.0, 0.0));
            others_zeroed += 1;
        }
    }
    let n_others = others.len();
    out.extend(others);
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
        "score": args.score.name(),
        "oriented": oriented,
        "skipped_near_border": skipped,
        "min_score": min_score.filter(|m| m.is_finite()),
        "rejected": rejected,
        "kept": kept,
        "other_classes_kept": n_others,
        "other_classes_given_zero_angles": others_zeroed,
        "tuned": tuned.map(|t| serde_json::json!({
            "truth": args.tune_with.as_ref().map(|p| p.display().to_string()),
            "tolerance": args.tolerance,
            "tolerance_vox": tolerance_vox,
            "all_picks": counts_json(&t.counts_all),
            "kept_picks": counts_json(&t.counts),
        })),
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
    if let Some(t) = tuned {
        let show = |c: &capsid_eval::Counts| {
            format!(
                "P {:.3} R {:.3} F1 {:.3}",
                c.precision(),
                c.recall(),
                c.f1()
            )
        };
        println!(
            "{class}: chosen --min-score {} on {}: {} (all picks: {})",
            if t.min_score.is_finite() {
                format!("{:.4}", t.min_score)
            } else {
                "none (keeping every pick scores best)".into()
            },
            args.tune_with
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            show(&t.counts),
            show(&t.counts_all)
        );
    }
    if others_zeroed > 0 {
        eprintln!(
            "{others_zeroed} picks of other classes have no orientation: written with angles \
             0, 0, 0 (RELION's default), as a STAR column needs a value in every row"
        );
    }
    if min_score.is_some() {
        eprintln!("{class}: {kept} picks kept, {rejected} rejected below the minimum score");
    }
    Ok(())
}
