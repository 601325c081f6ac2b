//! `capsid pick`: label or probability maps → particle lists (RELION STAR, CSV, …).

use anyhow::bail;
use capsid_core::{ClassTable, Particle};
use capsid_pick::stage::{PickRequest, SettingsSource};
use capsid_pick::{ComponentParams, Connectivity, MeanShiftParams};
use std::path::{Path, PathBuf};

/// Picking method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Mean shift on a label map (DeepFinder; bandwidth = class radius, bin seeding).
    Meanshift,
    /// Connected components of a label map, or of probability maps above --threshold (DeePiCt).
    Components,
    /// Non-maximum suppression on probability maps (radius = class radius).
    Nms,
    /// Peaks of probability maps smoothed by a Gaussian (σ = --sigma-fraction × class radius),
    /// non-maximum suppression at the class radius, smoothed probability ≥ --threshold.
    Peaks,
}

/// Arguments of `capsid pick`.
#[derive(clap::Args)]
#[command(after_help = "\
Inputs: a label map (MRC; voxel value = class label of the class table, 0 = background) for
meanshift and components, or probability maps, one per class, given as --prob CLASS=PATH (repeat)
for nms, peaks and components. Without --method, each class is picked as the model's tuned
settings say (see --settings): mean shift of the label map, or peaks of the class's probability
map, found beside the label map as <tomo>_prob_<class>.mrc (capsid segment writes it when the
model needs it) or given with --prob. Positions are written in voxels of the map
(rlnCoordinateX/Y/Z), with rlnTomoName, class name and number, and rlnAutopickFigureOfMerit =
the score: cluster size in voxels (meanshift; components on a label map), probability (nms),
smoothed probability (peaks) or mean probability (components on probability maps). The output format follows the extension (.star, .csv, .txt,
.xml, .json). The resolved settings are written next to the output as <out>.pick.toml.

Several label maps (arguments, --list): each is picked as one map would be (its own tomogram
name, its model's settings, its probability maps beside it) and all picks go into one list
(they must share their voxel size), with a table of picks per tomogram and class; a map that
fails stops the command before anything is written.

Examples:
  capsid pick tomo_labels.mrc --classes classes.toml --out tomo_picks.star
  capsid pick tomo_labels.mrc --classes classes.toml --bin 2 --min-size 50 \\
      --out picks.csv
  capsid pick tomo_labels.mrc --classes classes.toml --method components \\
      --connectivity 6 --out picks.star
  capsid pick --classes classes.toml --method nms \\
      --prob ribosome=tomo_prob_ribosome.mrc \\
      --prob proteasome=tomo_prob_proteasome.mrc --threshold 0.5 \\
      --out picks.star
  capsid pick --classes classes.toml --method peaks --threshold 0.8 \\
      --prob globule=tomo_prob_globule.mrc --out globules.star
  capsid pick seg/*_labels.mrc --classes classes.toml --out all_picks.star
  capsid pick seg/*_labels.mrc --classes classes.toml --out all_picks.star \\
      --copick proj/copick_config.json --user-id capsid --session-id 0")]
pub struct Args {
    /// Label map (MRC) for meanshift / components; several (or --list) pick several tomograms
    /// into one list, each pick named by its tomogram (rlnTomoName).
    pub labels: Vec<PathBuf>,
    /// A list file of label maps, one per line (first field), relative to the list's folder;
    /// `#` comments. Added to the maps given as arguments.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Class table (TOML): names, labels, radii.
    #[arg(long, value_name = "TOML")]
    pub classes: PathBuf,
    /// Picking method [default: each class by the model's tuned settings; meanshift without
    /// settings].
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// Probability map of one class, CLASS=PATH (repeat for several classes).
    #[arg(long = "prob", value_name = "CLASS=PATH")]
    pub prob: Vec<String>,
    /// Output particle list (.star, .csv, …).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace an existing output file (the previous one is kept as NAME.bak).
    #[arg(long)]
    pub force: bool,
    /// Do nothing when the output exists (a finished list: rerunning a many-tomogram script
    /// after an interruption redoes only what is missing).
    #[arg(long, conflicts_with = "force")]
    pub skip_complete: bool,
    /// Print the summary as JSON (`{"picks": N, "by_class": {...}, "out": PATH}`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Drop clusters/components smaller than this many voxels.
    #[arg(long, default_value_t = 0)]
    pub min_size: usize,
    /// Drop clusters/components (of a label map) smaller than this fraction of their class's
    /// sphere volume (4/3·π·r³, r = class radius): a per-class size filter. 0 keeps all.
    #[arg(long, value_name = "FRACTION")]
    pub min_fraction: Option<f64>,
    /// Drop clusters/components larger than this many voxels.
    #[arg(long)]
    pub max_size: Option<usize>,
    /// Probability threshold (nms, components on probability maps; peaks: of the smoothed map).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Peaks: Gaussian σ of the smoothing, as a fraction of the class radius.
    #[arg(long, value_name = "FRACTION", default_value_t = capsid_pick::PEAK_SIGMA_FRACTION)]
    pub sigma_fraction: f64,
    /// Mean shift: bin the label map by this factor first (DeepFinder uses 2).
    #[arg(long, default_value_t = 1)]
    pub bin: usize,
    /// Mean shift: bandwidth in voxels (default: each class's radius; joint: their mean).
    #[arg(long, value_name = "VOXELS")]
    pub bandwidth: Option<f64>,
    /// Mean shift: cluster all classes together and label clusters by majority vote (DeepFinder).
    #[arg(long)]
    pub joint: bool,
    /// Components: 6 or 26 connectivity.
    #[arg(long, default_value_t = 26)]
    pub connectivity: u8,
    /// Picking settings (per-class minimum cluster sizes) to use, e.g. a run's
    /// pick_settings.toml. By default a label map written by `capsid segment` uses those of the
    /// model that segmented it (found through segment.toml beside the map); --min-fraction
    /// overrides them.
    #[arg(long, value_name = "TOML", conflicts_with = "min_fraction")]
    pub settings: Option<PathBuf>,
    /// Ignore the model's tuned picking settings.
    #[arg(long, conflicts_with = "settings")]
    pub no_settings: bool,
    /// Tomogram name written as rlnTomoName (as NAME.tomostar with --star-style warp; default:
    /// the tomogram the map was segmented from: the map's file name without extension and
    /// without segment's `_labels` / `_prob_CLASS`).
    #[arg(long)]
    pub tomo_name: Option<String>,
    /// Also write the picks into this copick project's overlay (its configuration JSON): one
    /// file per run (the tomogram's name, as `segment --copick` names its outputs) and class,
    /// in Å, as picks of --user-id / --session-id.
    #[arg(long, value_name = "CONFIG")]
    pub copick: Option<PathBuf>,
    /// With --copick: the picks' copick user.
    #[arg(long, default_value = "capsid", requires = "copick")]
    pub user_id: String,
    /// With --copick: the picks' copick session.
    #[arg(long, default_value = "0", requires = "copick")]
    pub session_id: String,
    #[command(flatten)]
    pub star: crate::grammar::StarArgs,
}

/// With --copick: checks before picking that the picks of `tomograms` (run names) can go into
/// the project.
fn check_copick(args: &Args, tomograms: &[&str]) -> anyhow::Result<()> {
    if let Some(config) = &args.copick {
        capsid_io::copick_project::Project::open(config)?.check_picks_writable(
            tomograms,
            &args.user_id,
            &args.session_id,
            args.force,
        )?;
    }
    Ok(())
}

/// With --copick: writes `picks` into the project (see [`Args::copick`]); the voxel size is
/// that of the label map `map`.
fn write_into_copick(args: &Args, picks: &[Particle], map: &Path) -> anyhow::Result<()> {
    let Some(config) = &args.copick else {
        return Ok(());
    };
    let project = capsid_io::copick_project::Project::open(config)?;
    let voxel = f64::from(capsid_io::mrc::read_header(map)?.voxel_size_a[0]);
    if voxel <= 0.0 {
        bail!(
            "{}: the header has no voxel size; copick picks are in Å",
            map.display()
        );
    }
    let written = project.write_picks(picks, &args.user_id, &args.session_id, voxel, args.force)?;
    eprintln!(
        "copick: {} file(s) of user {}, session {} in {}",
        written.len(),
        args.user_id,
        args.session_id,
        project.roots[0].display()
    );
    Ok(())
}

/// Several label maps into one list: each planned and picked as alone, then written together,
/// with a table of picks per tomogram and class.
fn pick_many(
    args: &Args,
    request: PickRequest,
    maps: &[PathBuf],
    classes: &ClassTable,
) -> anyhow::Result<()> {
    let mut plans = Vec::with_capacity(maps.len());
    for m in maps {
        let mut r = request.clone();
        r.labels = Some(m.clone());
        plans.push(r.plan()?);
    }
    let names: Vec<&str> = plans.iter().map(|p| p.tomogram()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            bail!(
                "{}: tomogram name '{n}' is that of an earlier map too; picks of both could not be told apart",
                maps[i].display()
            );
        }
    }
    check_copick(args, &names)?;
    let record = capsid_pick::stage::record_file(&args.out);
    let inputs: Vec<&Path> = plans.iter().flat_map(|p| p.inputs()).collect();
    let _guard = capsid_core::OutputGuard::new(&[&args.out, &record], &inputs, args.force)?;
    if args.force {
        capsid_core::guard::keep_backup(&args.out)?;
    }
    let bar = crate::util::progress(maps.len() as u64, "pick");
    let mut picked = Vec::with_capacity(plans.len());
    for p in &plans {
        picked.push(p.run(&mut |_| {})?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    capsid_pick::stage::PickPlan::write_many(&plans, &picked, &args.out)?;
    let all: Vec<Particle> = picked
        .iter()
        .flat_map(|p| p.picks.iter().cloned())
        .collect();
    write_into_copick(args, &all, &maps[0])?;
    let names_classes = classes.names();
    let mut header = vec!["tomogram".to_string()];
    header.extend(names_classes.iter().cloned());
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(&picked)
        .map(|(n, p)| {
            let mut r = vec![n.to_string()];
            r.extend(
                names_classes
                    .iter()
                    .map(|c| p.picks.iter().filter(|q| &q.class == c).count().to_string()),
            );
            r
        })
        .collect();
    let table = crate::util::text_table(&header, &rows, &[true]);
    eprint!("{table}");
    print_summary(&all, classes, &args.out, args.json);
    Ok(())
}

/// Prints the number of picks per class (as JSON with `--json`).
fn print_summary(picks: &[Particle], classes: &ClassTable, out: &Path, json: bool) {
    let mut per_class: Vec<(String, usize)> = classes.names().into_iter().map(|n| (n, 0)).collect();
    for p in picks {
        if let Some(e) = per_class.iter_mut().find(|(n, _)| *n == p.class) {
            e.1 += 1;
        }
    }
    if json {
        let by_class: serde_json::Map<String, serde_json::Value> = per_class
            .iter()
            .map(|(n, c)| (n.clone(), serde_json::Value::from(*c)))
            .collect();
        println!(
            "{}",
            serde_json::json!({"picks": picks.len(), "by_class": by_class, "out": out})
        );
        return;
    }
    let summary: Vec<String> = per_class.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!(
        "{} picks ({}) → {}",
        picks.len(),
        summary.join(", "),
        out.display()
    );
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let classes = ClassTable::load(&args.classes)?;
    let probs = crate::util::parse_prob_args(&args.prob, &classes)?;
    let connectivity = match args.connectivity {
        6 => Connectivity::Six,
        26 => Connectivity::TwentySix,
        n => bail!("--connectivity must be 6 or 26, got {n}"),
    };
    let mut maps = args.labels.clone();
    if let Some(list) = &args.list {
        maps.extend(capsid_core::fsutil::read_path_list(list)?);
    }
    if args.skip_complete && capsid_core::guard::is_complete(&args.out) {
        eprintln!("{}: complete; skipped", args.out.display());
        return Ok(());
    }
    if maps.len() > 1 && (!args.prob.is_empty() || args.tomo_name.is_some()) {
        bail!("--prob and --tomo-name name one tomogram's maps: give one label map with them");
    }
    let request = PickRequest {
        labels: maps.first().cloned(),
        probs,
        classes: classes.clone(),
        classes_file: args.classes.clone(),
        method: args.method.map(|m| match m {
            Method::Meanshift => capsid_pick::stage::Method::Meanshift,
            Method::Components => capsid_pick::stage::Method::Components,
            Method::Nms => capsid_pick::stage::Method::Nms,
            Method::Peaks => capsid_pick::stage::Method::Peaks,
        }),
        min_fraction: args.min_fraction,
        threshold: args.threshold,
        sigma_fraction: args.sigma_fraction,
        meanshift: MeanShiftParams {
            joint: args.joint,
            bandwidth_vox: args.bandwidth,
            bin: args.bin,
            min_size: args.min_size,
            max_size: args.max_size,
            ..Default::default()
        },
        components: ComponentParams {
            connectivity,
            min_size: args.min_size,
            max_size: args.max_size,
        },
        settings: match (&args.settings, args.no_settings) {
            (Some(p), _) => SettingsSource::File(p.clone()),
            (None, true) => SettingsSource::Off,
            (None, false) => SettingsSource::Model,
        },
        tomo_name: args.tomo_name.clone(),
        star: args.star.star_style,
        optics: args.star.optics(),
    };
    if maps.len() > 1 {
        return pick_many(&args, request, &maps, &classes);
    }
    let plan = request.plan()?;
    if let Some(p) = plan.settings_path() {
        eprintln!("picking settings: {}", p.display());
    }
    check_copick(&args, &[plan.tomogram()])?;
    // Outputs never overwrite inputs; an existing pick list is replaced only with --force.
    let record = capsid_pick::stage::record_file(&args.out);
    let _guard = capsid_core::OutputGuard::new(&[&args.out, &record], &plan.inputs(), args.force)?;
    if args.force {
        capsid_core::guard::keep_backup(&args.out)?;
    }
    let bar = crate::util::progress(args.prob.len() as u64, "pick");
    let picked = plan.run(&mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    plan.write(&picked, &args.out)?;
    if let Some(map) = maps.first() {
        write_into_copick(&args, &picked.picks, map)?;
    }
    print_summary(&picked.picks, &classes, &args.out, args.json);
    Ok(())
}
