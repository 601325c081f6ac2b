//! `capsid evaluate`: picks (and maps) against ground truth → eval/summary.json + a table.

use crate::grammar::parse_shape_xyz;
use anyhow::{bail, Context};
use capsid_core::ClassTable;
use capsid_eval::stage::{EvaluateRequest, SUMMARY_JSON};
use capsid_eval::MatchRule;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Arguments of `capsid evaluate`.
#[derive(clap::Args)]
#[command(after_help = "\
Rules (--rule; see capsid-eval's docs for the exact rules):
  * one-to-one (default): distance matching per class, one pick ↔ at most one particle,
    greedy by ascending distance; tolerance = --tolerance × class radius (default 1.0); picks
    outside the volume are FP; P/R/F1/F-beta (β = --beta) per class, macro and pooled;
    weighted F-beta with --weight; a confusion matrix (rows true, columns picked, plus
    background row and missed column);
  * czii: the CZII challenge's metric, printed first (the one-to-one table follows at the
    same tolerance, for comparison): a true particle is found (TP) when ANY pick of its class
    lies within --tolerance × radius (default 0.5) in the same tomogram; FP = picks − TP (can
    be negative, as in the published metric), FN = particles − TP; counts summed over all
    tomograms per class, then F-beta (β = --beta, 4); score = weighted mean F-beta over the
    classes in the truth (--weight CLASS=W, default 1; the challenge weighs apo-ferritin 1,
    beta-amylase 0, beta-galactosidase 2, ribosome 1, thyroglobulin 2, virus-like-particle 1).
    Tomograms: picks and particles carry their tomogram's name (STAR rlnTomoName, a CSV
    'tomogram' column, a copick run), so one call scores picks spread over several
    tomograms; a pick meets only particles of its tomogram (a list without names is one
    tomogram), and picks of tomograms without true particles are left out (and counted).
Other scores:
  * --occupancy: the SHREC hitbox rule (voxel value k = k-th particle of --truth, 1-based, file
    order, as SHREC's occupancy_mask.mrc and particle_locations.txt);
  * --labels with --truth-labels: voxel Dice/IoU/precision/recall per class;
  * --prob CLASS=PATH (repeat) with --truth-labels: PR curve and AUPRC per class.
Orientation: when matched picks and their true particles both carry angles
(SHREC/simulator ZXZ, RELION ZYZ in STAR files, any mix), the one-to-one
pairs' angular error modulo the class symmetry (classes.toml 'symmetry = \"D7\"',
default C1; --symmetry CLASS=SYM overrides it, repeat) goes into the table and
into summary.json as classes[i].orientation (pairs, median_deg, p90_deg by
nearest rank, symmetry); pairs without angles on both sides are left out.
Writes <out>/summary.json (params.rule names the rule; with czii, the 'czii' section),
<out>/summary.txt and <out>/config.toml, and prints the table.
Truth particles of classes not in the class table are ignored (and counted).

Examples:
  capsid evaluate --picks tomo_picks.star --truth particle_locations.txt \\
      --classes classes.toml --occupancy occupancy_mask.mrc --out eval
  capsid evaluate --copick proj/copick_config.json --picks-user capsid \\
      --truth-user curation --rule czii --out eval_czii
  capsid evaluate --picks picks.star --truth truth.star --classes classes.toml \\
      --rule czii --weight beta-amylase=0 --weight beta-galactosidase=2 \\
      --weight thyroglobulin=2 --out eval_czii
  capsid evaluate --picks picks.star --truth truth.star --classes classes.toml \\
      --tolerance 0.5 --weight ribosome=1 --weight beta_amylase=0 \\
      --shape-xyz 630,630,184 --out eval_strict
  capsid evaluate --picks picks.star --truth truth.star --classes classes.toml \\
      --labels tomo_labels.mrc --truth-labels class_mask.mrc \\
      --prob ribosome=tomo_prob_ribosome.mrc --out eval
  capsid evaluate --picks matched.star --truth particle_locations.txt \\
      --classes classes.toml --symmetry apoferritin=O --symmetry ribosome=C1 \\
      --out eval_angles")]
pub struct Args {
    /// Picks (particle list: .star, .csv, .txt, .xml, .json).
    #[arg(long, value_name = "FILE", required_unless_present = "picks_user")]
    pub picks: Option<PathBuf>,
    /// Ground-truth particles (e.g. SHREC particle_locations.txt, or a STAR file).
    #[arg(long, value_name = "FILE", required_unless_present = "truth_user")]
    pub truth: Option<PathBuf>,
    /// Class table (TOML, or a copick configuration: its pickable particle objects); default
    /// with --copick: the project's objects.
    #[arg(long, value_name = "TOML", required_unless_present = "copick")]
    pub classes: Option<PathBuf>,
    /// A copick project (its configuration JSON) holding the picks (--picks-user) and/or the
    /// truth (--truth-user) of every run (or of --runs); Å converted with --voxel-size (default:
    /// the runs' voxel spacing).
    #[arg(long, value_name = "CONFIG")]
    pub copick: Option<PathBuf>,
    /// copick runs to score, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "copick")]
    pub runs: Vec<String>,
    /// With --copick: the truth is this user's picks (e.g. `curation`), instead of --truth.
    #[arg(
        long,
        value_name = "USER",
        requires = "copick",
        conflicts_with = "truth"
    )]
    pub truth_user: Option<String>,
    /// With --truth-user: its session.
    #[arg(long, value_name = "SESSION", default_value = "0")]
    pub truth_session: String,
    /// With --copick: the picks are this user's (e.g. `capsid`), instead of --picks.
    #[arg(
        long,
        value_name = "USER",
        requires = "copick",
        conflicts_with = "picks"
    )]
    pub picks_user: Option<String>,
    /// With --picks-user: its session.
    #[arg(long, value_name = "SESSION", default_value = "0")]
    pub picks_session: String,
    /// Occupancy (instance) map for the SHREC hitbox rule.
    #[arg(long, value_name = "MRC")]
    pub occupancy: Option<PathBuf>,
    /// Predicted label map, for voxel scores (with --truth-labels).
    #[arg(long, value_name = "MRC")]
    pub labels: Option<PathBuf>,
    /// True label map (e.g. SHREC class_mask.mrc), for voxel scores and PR curves.
    #[arg(long, value_name = "MRC")]
    pub truth_labels: Option<PathBuf>,
    /// Probability map of one class, CLASS=PATH (repeat), for PR curves (with --truth-labels).
    #[arg(long = "prob", value_name = "CLASS=PATH")]
    pub prob: Vec<String>,
    /// Unlabelled look-alikes (decoys) for the identification scores: false picks by where they
    /// lie and the share of decoys picked as targets (e.g. `capsid simulate --preset hard`'s
    /// decoys.star).
    #[arg(long, value_name = "FILE")]
    pub decoys: Option<PathBuf>,
    /// Class table of the decoys (radii); default: decoy_table.toml beside --decoys or one
    /// folder up.
    #[arg(long, value_name = "TOML", requires = "decoys")]
    pub decoy_classes: Option<PathBuf>,
    /// Scoring rule: one-to-one matching, or the CZII challenge's metric (see below).
    #[arg(long, value_enum, default_value_t = RuleArg::OneToOne)]
    pub rule: RuleArg,
    /// Match tolerance as a fraction of the class radius [default: 1.0; 0.5 with --rule czii].
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// β of the F-beta score (the CZII challenge: 4).
    #[arg(long, default_value_t = 4.0)]
    pub beta: f64,
    /// Class weight for the weighted F-beta and the CZII score, CLASS=W (repeat; default 1).
    #[arg(long = "weight", value_name = "CLASS=W")]
    pub weight: Vec<String>,
    /// Point-group symmetry of a class for the orientation errors, CLASS=SYM (Cn, Dn, T, O, I;
    /// repeat), instead of the class table's `symmetry` (default C1).
    #[arg(long = "symmetry", value_name = "CLASS=SYM")]
    pub symmetry: Vec<String>,
    /// Voxel size in Å (default: from the first map given).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f64>,
    /// Volume shape X,Y,Z in voxels for the outside-the-volume check (default: from the first map).
    #[arg(long, visible_alias = "shape-xyz", value_name = "X,Y,Z", value_parser = parse_shape_xyz)]
    pub shape: Option<[usize; 3]>,
    /// Number of histogram bins for PR curves.
    #[arg(long, default_value_t = 1000)]
    pub pr_bins: usize,
    /// Output folder.
    #[arg(long, default_value = "eval")]
    pub out: PathBuf,
    /// Replace an existing evaluation in --out.
    #[arg(long)]
    pub force: bool,
    /// Print the evaluation as JSON (the content of summary.json) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `--rule`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleArg {
    OneToOne,
    Czii,
}

impl From<RuleArg> for MatchRule {
    fn from(r: RuleArg) -> Self {
        match r {
            RuleArg::OneToOne => MatchRule::OneToOne,
            RuleArg::Czii => MatchRule::Czii,
        }
    }
}

/// Parses `--weight CLASS=W` pairs, checking the classes against the table.
fn parse_weights(items: &[String], classes: &ClassTable) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut class_weights = BTreeMap::new();
    for w in items {
        let Some((c, v)) = w.split_once('=') else {
            bail!("--weight '{w}': expected CLASS=W")
        };
        classes
            .get(c.trim())
            .with_context(|| format!("--weight '{w}'"))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--weight '{w}': '{v}' is not a number"))?;
        class_weights.insert(c.trim().to_string(), v);
    }
    Ok(class_weights)
}

/// Applies `--symmetry CLASS=SYM` pairs to the class table (a class named twice is refused).
fn apply_symmetries(items: &[String], classes: &mut ClassTable) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for it in items {
        let Some((c, v)) = it.split_once('=') else {
            bail!("--symmetry '{it}': expected CLASS=SYM (e.g. ribosome=C1, apoferritin=O)")
        };
        let c = c.trim();
        classes
            .get(c)
            .with_context(|| format!("--symmetry '{it}'"))?;
        if !seen.insert(c.to_string()) {
            bail!("--symmetry: class '{c}' given twice");
        }
        let sym: capsid_core::Symmetry = v
            .parse()
            .map_err(|e| anyhow::anyhow!("--symmetry '{it}': {e}"))?;
        for def in classes.classes.iter_mut().filter(|d| d.name == c) {
            def.symmetry = Some(sym);
        }
    }
    Ok(())
}

/// Particles of `user`/`session` in the chosen runs of a copick project, in voxels of
/// `voxel_size_a`, with a description for the record.
fn copick_particles(
    project: &capsid_io::copick_project::Project,
    runs: &[String],
    user: &str,
    session: &str,
    classes: &ClassTable,
    voxel_size_a: f64,
) -> anyhow::Result<(String, Vec<capsid_core::Particle>)> {
    let mut all = Vec::new();
    for run in runs {
        all.extend(project.read_picks(run, user, session, classes, voxel_size_a)?);
    }
    Ok((
        format!(
            "copick user {user}, session {session}, runs {}",
            runs.join(", ")
        ),
        all,
    ))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let project = args
        .copick
        .as_deref()
        .map(capsid_io::copick_project::Project::open)
        .transpose()?;
    let classes_file = match (&args.classes, &project) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => p.config.clone(),
        (None, None) => bail!("give --classes (or --copick CONFIG)"),
    };
    let mut classes = capsid_io::copick_project::load_class_table(&classes_file)?;
    apply_symmetries(&args.symmetry, &mut classes)?;
    let (mut picks_given, mut truth_given) = (None, None);
    let mut voxel_size = args.voxel_size;
    if let Some(project) = &project {
        if args.picks_user.is_none() && args.truth_user.is_none() {
            bail!("--copick: say what to read from the project: --picks-user and/or --truth-user");
        }
        let runs = project.select_runs(&args.runs)?;
        let vs = match voxel_size {
            Some(v) => v,
            None => {
                let mut all: Vec<f64> = runs
                    .iter()
                    .flat_map(|r| project.voxel_spacings(r))
                    .collect();
                all.sort_by(f64::total_cmp);
                all.dedup();
                match all.as_slice() {
                    [one] => *one,
                    [] => bail!("{}: the runs have no VoxelSpacing folder; give --voxel-size (Å) to convert the picks' Å to voxels", project.config.display()),
                    many => bail!(
                        "{}: the runs have several voxel spacings ({}); choose one with --voxel-size",
                        project.config.display(),
                        many.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
        };
        voxel_size = Some(vs);
        if let Some(user) = &args.picks_user {
            picks_given = Some(copick_particles(
                project,
                &runs,
                user,
                &args.picks_session,
                &classes,
                vs,
            )?);
        }
        if let Some(user) = &args.truth_user {
            truth_given = Some(copick_particles(
                project,
                &runs,
                user,
                &args.truth_session,
                &classes,
                vs,
            )?);
        }
    }
    let from_project = || {
        project
            .as_ref()
            .map(|p| p.config.clone())
            .unwrap_or_default()
    };
    let probs = crate::util::parse_prob_args(&args.prob, &classes)?;
    let class_weights = parse_weights(&args.weight, &classes)?;
    let n_probs = probs.len() as u64;
    let request = EvaluateRequest {
        picks: args.picks.clone().unwrap_or_else(from_project),
        truth: args.truth.clone().unwrap_or_else(from_project),
        picks_given,
        truth_given,
        classes,
        classes_file,
        decoys: args.decoys,
        decoy_classes: args.decoy_classes,
        occupancy: args.occupancy,
        labels: args.labels,
        truth_labels: args.truth_labels,
        probs,
        rule: args.rule.into(),
        class_weights,
        tolerance_fraction: args.tolerance.unwrap_or(match args.rule {
            RuleArg::OneToOne => 1.0,
            RuleArg::Czii => 0.5,
        }),
        beta: args.beta,
        voxel_size_a: voxel_size,
        shape_xyz: args.shape,
        pr_bins: args.pr_bins,
    };
    // Outputs never overwrite inputs.
    let inputs = request.validate()?;
    let _guard = capsid_core::OutputGuard::new(&[&args.out], &inputs, args.force)?;
    // The bar shows from the start of the PR curves (the stage's first call) on.
    let mut bar = None;
    let report = request.run(&mut |n| {
        bar.get_or_insert_with(|| crate::util::progress(n_probs, "PR curves"))
            .inc(n)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    request.write(&report, &args.out)?;
    if args.json {
        println!("{}", report.to_json()?);
        return Ok(());
    }
    print!("{}", report.to_table());
    println!("→ {}", args.out.join(SUMMARY_JSON).display());
    Ok(())
}
