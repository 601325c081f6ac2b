//! `capsid pick`: label or probability maps → particle lists (RELION STAR, CSV, …).

use anyhow::{bail, Context};
use capsid_core::{ClassTable, Particle};
use capsid_io::particles::{write_particles, WriteOptions};
use capsid_pick::{
    connected_components, connected_components_prob, mean_shift, nms, peaks, ClassPickSettings,
    ComponentParams, Connectivity, MeanShiftParams,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Picking method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
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
      --prob globule=tomo_prob_globule.mrc --out globules.star")]
pub struct Args {
    /// Label map (MRC) for meanshift / components.
    pub labels: Option<PathBuf>,
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
    /// Tomogram name written as rlnTomoName (default: the tomogram the map was segmented from:
    /// the map's file name without extension and without segment's `_labels` / `_prob_CLASS`).
    #[arg(long)]
    pub tomo_name: Option<String>,
}

/// The settings of a pick run, saved next to the output.
#[derive(Serialize)]
struct PickRecord<'a> {
    capsid_version: &'a str,
    method: Method,
    /// Classes picked by peaks of their probability maps as the model's settings say (these
    /// override `method` for them).
    tuned_peaks: Vec<TunedPeaks>,
    labels: Option<String>,
    prob: &'a [String],
    classes: String,
    tomogram: &'a str,
    threshold: f32,
    min_fraction: f64,
    settings: Option<String>,
    n_picks: usize,
    meanshift: Option<&'a MeanShiftParams>,
    components: Option<&'a ComponentParams>,
}

/// A class picked by peaks because the model's settings say so.
#[derive(Serialize)]
struct TunedPeaks {
    class: String,
    prob: String,
    min_score: f64,
    sigma_fraction: f64,
}

/// The probability map of `class` that `capsid segment` writes beside `labels`
/// (`<dir>/<tomo>_prob_<class>.mrc`).
fn sibling_prob_map(labels: &Path, tomo: &str, class: &str) -> PathBuf {
    labels
        .parent()
        .unwrap_or(Path::new(""))
        .join(capsid_core::outputs::prob_map_file(tomo, class))
}

/// Picks `class` by its tuned peaks settings from the probability map at `path`, checked to lie on
/// the grid of the label map `labels` (capsid-core's `check_same_grid`).
fn pick_tuned_peaks(
    path: &Path,
    def: &capsid_core::ClassDef,
    s: &ClassPickSettings,
    labels: &Path,
) -> anyhow::Result<Vec<Particle>> {
    let map = capsid_io::mrc::read_volume(path)?;
    let grid = capsid_io::mrc::read_header(labels)?;
    capsid_core::guard::check_same_grid(
        labels,
        grid.shape_zyx(),
        grid.voxel_size_a,
        path,
        map.shape_zyx(),
        map.voxel_size_a,
    )?;
    let r = def.radius_voxels(map.voxel_size() as f64);
    peaks(&map, &def.name, r, s.sigma_fraction, s.min_score as f32)
        .with_context(|| path.display().to_string())
}

/// The tuned picking settings of the model that segmented `labels`: `segment.toml` beside the
/// map names the model folder, whose `pick_settings.toml` is returned when it exists.
fn model_pick_settings(labels: &Path) -> Option<PathBuf> {
    let record = labels.parent()?.join(capsid_core::outputs::SEGMENT_RECORD);
    let text = std::fs::read_to_string(record).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    let model = value.get("model")?.as_str()?;
    let p = Path::new(model).join(capsid_pick::PickSettings::FILE);
    p.is_file().then_some(p)
}

fn stem(p: &Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("tomogram");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.').map_or(name, |(s, _)| s).to_string()
}

/// Without `--method`, the classes that the model's settings `s` pick by peaks, each with its
/// probability map: given with `--prob`, or beside the label map as `capsid segment` writes it.
fn tuned_peak_maps(
    s: &capsid_pick::PickSettings,
    probs: &[(String, PathBuf)],
    labels: &Path,
    map_tomo: &str,
) -> anyhow::Result<Vec<(ClassPickSettings, PathBuf)>> {
    let mut tuned = Vec::new();
    for c in s.peak_classes() {
        let path = probs
            .iter()
            .find(|(k, _)| *k == c.name)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| sibling_prob_map(labels, map_tomo, &c.name));
        if !path.is_file() {
            bail!(
                "{}: the model's picking settings pick class '{}' by peaks of its probability \
                 map, which is missing (segment with --probs, give --prob {}=PATH, or pick with \
                 --method meanshift)",
                path.display(),
                c.name,
                c.name
            );
        }
        tuned.push((c.clone(), path));
    }
    Ok(tuned)
}

/// Picks a label map with mean shift or connected components; `filter` applies the size
/// settings. Returns the picks, the voxel size (Å) and the shape (x, y, z).
fn pick_label_map(
    path: &Path,
    method: Method,
    classes: &ClassTable,
    mparams: &MeanShiftParams,
    cparams: &ComponentParams,
    filter: impl Fn(Vec<Particle>, f64) -> Vec<Particle>,
) -> anyhow::Result<(Vec<Particle>, f64, [usize; 3])> {
    let map = capsid_io::mrc::read_label_map(path)?;
    capsid_core::guard::check_labels_known(path, map.data.iter().copied(), classes)?;
    let voxel_size = map.voxel_size() as f64;
    let needs_radius = method == Method::Meanshift && mparams.bandwidth_vox.is_none();
    if needs_radius && (voxel_size.is_nan() || voxel_size <= 0.0) {
        if let Some(c) = classes.classes.iter().find(|c| c.radius_a.is_some()) {
            bail!(
                "{}: voxel size 0 in the header, but class '{}' has its radius in Å (use radius_vox or --bandwidth)",
                path.display(),
                c.name
            );
        }
    }
    let found = match method {
        Method::Meanshift => mean_shift(&map, classes, mparams),
        _ => connected_components(&map, classes, cparams),
    };
    let picks = found.with_context(|| path.display().to_string())?;
    Ok((filter(picks, voxel_size), voxel_size, map.shape_xyz()))
}

/// Picks probability maps (one per class, on one grid) with NMS, peaks or connected components.
/// Returns the picks, the voxel size (Å) and the shape (x, y, z).
fn pick_prob_maps(
    probs: &[(String, PathBuf)],
    method: Method,
    classes: &ClassTable,
    args: &Args,
    cparams: &ComponentParams,
) -> anyhow::Result<(Vec<Particle>, f64, Option<[usize; 3]>)> {
    let mut picks = Vec::new();
    let mut voxel_size = 0.0f64;
    let mut shape_xyz = None;
    let bar = crate::util::progress(probs.len() as u64, "pick");
    let mut first_map: Option<(PathBuf, [usize; 3], [f32; 3])> = None;
    for (class, path) in probs {
        let map = capsid_io::mrc::read_volume(path)?;
        if let Some((p0, s0, v0)) = &first_map {
            capsid_core::guard::check_same_grid(
                p0,
                *s0,
                *v0,
                path,
                map.shape_zyx(),
                map.voxel_size_a,
            )?;
        }
        first_map.get_or_insert((path.clone(), map.shape_zyx(), map.voxel_size_a));
        shape_xyz = Some(map.shape_xyz());
        voxel_size = map.voxel_size() as f64;
        let def = classes.get(class)?;
        let found = match method {
            Method::Nms | Method::Peaks => {
                let r = def.radius_voxels(voxel_size);
                if def.radius_a.is_some() && (voxel_size.is_nan() || voxel_size <= 0.0) {
                    bail!(
                        "{}: voxel size 0 in the header, but class '{class}' has its radius in Å",
                        path.display()
                    );
                }
                if method == Method::Peaks {
                    peaks(&map, class, r, args.sigma_fraction, args.threshold)
                } else {
                    nms(&map, class, r, args.threshold)
                }
            }
            _ => connected_components_prob(&map, def, args.threshold, cparams),
        };
        picks.extend(found.with_context(|| path.display().to_string())?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((picks, voxel_size, shape_xyz))
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
    let method = args.method.unwrap_or(Method::Meanshift);
    let conn = match args.connectivity {
        6 => Connectivity::Six,
        26 => Connectivity::TwentySix,
        n => bail!("--connectivity must be 6 or 26, got {n}"),
    };
    let cparams = ComponentParams {
        connectivity: conn,
        min_size: args.min_size,
        max_size: args.max_size,
    };
    let min_fraction = args.min_fraction.unwrap_or(0.0);
    if !(min_fraction >= 0.0 && min_fraction.is_finite()) {
        bail!("--min-fraction must be ≥ 0, got {min_fraction}");
    }
    // The model's tuned settings: given, or found through the label map's segment.toml.
    let settings_path = match (&args.settings, args.min_fraction, args.no_settings) {
        (Some(p), _, _) => Some(p.clone()),
        (None, None, false) if method == Method::Meanshift => {
            args.labels.as_deref().and_then(model_pick_settings)
        }
        _ => None,
    };
    let settings = settings_path
        .as_deref()
        .map(capsid_pick::PickSettings::load)
        .transpose()?;
    if let Some(p) = &settings_path {
        eprintln!("picking settings: {}", p.display());
    }
    let mparams = MeanShiftParams {
        joint: args.joint,
        bandwidth_vox: args.bandwidth,
        bin: args.bin,
        min_size: args.min_size,
        max_size: args.max_size,
        ..Default::default()
    };
    mparams.validate()?;
    let first_input = args
        .labels
        .clone()
        .or_else(|| probs.first().map(|(_, p)| p.clone()));
    let Some(first_input) = first_input else {
        bail!("no input: give a label map, or probability maps with --prob CLASS=PATH");
    };
    let map_tomo = capsid_core::outputs::tomogram_of_map(
        &stem(&first_input),
        classes.classes.iter().map(|c| c.name.as_str()),
    );
    let tomo = args.tomo_name.clone().unwrap_or_else(|| map_tomo.clone());
    let uses_labels =
        matches!(method, Method::Meanshift) || (method == Method::Components && probs.is_empty());
    if uses_labels && args.labels.is_none() {
        bail!("--method {method:?} needs a label map (positional argument)");
    }
    if matches!(method, Method::Nms | Method::Peaks) && probs.is_empty() {
        bail!("--method {method:?} needs probability maps: --prob CLASS=PATH");
    }
    let tuned = match (args.method, &settings, args.labels.as_deref()) {
        (None, Some(s), Some(labels)) => tuned_peak_maps(s, &probs, labels, &map_tomo)?,
        _ => Vec::new(),
    };
    if uses_labels {
        if let Some((c, _)) = probs
            .iter()
            .find(|(c, _)| !tuned.iter().any(|t| t.0.name == *c))
        {
            bail!(
                "--prob {c}=…: with a label map, --prob only gives the probability maps of classes \
                 the model's settings pick by peaks; give either a label map or --prob maps for \
                 --method {method:?}"
            );
        }
    }
    // Outputs never overwrite inputs; an existing pick list is replaced only with --force.
    let record_out = PathBuf::from(format!("{}.pick.toml", args.out.display()));
    let mut inputs: Vec<&Path> = vec![&args.classes];
    inputs.extend(args.labels.as_deref());
    inputs.extend(probs.iter().map(|(_, p)| p.as_path()));
    inputs.extend(tuned.iter().map(|(_, p)| p.as_path()));
    let _guard = capsid_core::OutputGuard::new(&[&args.out, &record_out], &inputs, args.force)?;
    if args.force {
        capsid_core::guard::keep_backup(&args.out)?;
    }
    let (mut picks, voxel_size, shape_xyz) = if uses_labels {
        let path = args.labels.as_deref().unwrap_or(Path::new(""));
        let filter = |picks: Vec<Particle>, voxel_size: f64| match &settings {
            Some(s) => s.filter(picks, &classes, voxel_size),
            None if min_fraction > 0.0 => {
                capsid_pick::filter_by_class_volume(picks, &classes, voxel_size, min_fraction)
            }
            None => picks,
        };
        let (mut picks, voxel_size, shape) =
            pick_label_map(path, method, &classes, &mparams, &cparams, filter)?;
        for (s, prob) in &tuned {
            picks.retain(|p| p.class != s.name);
            let def = classes.get(&s.name)?;
            picks.extend(pick_tuned_peaks(prob, def, s, path)?);
        }
        (picks, voxel_size, Some(shape))
    } else {
        pick_prob_maps(&probs, method, &classes, &args, &cparams)?
    };
    for p in &mut picks {
        p.tomogram = Some(tomo.clone());
    }
    let wopts = WriteOptions {
        classes: Some(classes.clone()),
        voxel_size_a: (voxel_size > 0.0).then_some(voxel_size),
        tomo_shape_xyz: shape_xyz,
        ..Default::default()
    };
    write_particles(&args.out, &picks, &wopts)?;
    let record = PickRecord {
        capsid_version: capsid_core::VERSION,
        method,
        tuned_peaks: tuned
            .iter()
            .map(|(s, p)| TunedPeaks {
                class: s.name.clone(),
                prob: p.display().to_string(),
                min_score: s.min_score,
                sigma_fraction: s.sigma_fraction,
            })
            .collect(),
        labels: args.labels.as_ref().map(|p| p.display().to_string()),
        prob: &args.prob,
        classes: args.classes.display().to_string(),
        tomogram: &tomo,
        threshold: args.threshold,
        min_fraction,
        settings: settings_path.as_ref().map(|p| p.display().to_string()),
        meanshift: (method == Method::Meanshift).then_some(&mparams),
        components: (method == Method::Components).then_some(&cparams),
        n_picks: picks.len(),
    };
    let record_path = PathBuf::from(format!("{}.pick.toml", args.out.display()));
    let text = toml::to_string_pretty(&record).context("pick settings as TOML")?;
    capsid_core::write_atomically(&record_path, |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })?;
    print_summary(&picks, &classes, &args.out, args.json);
    Ok(())
}
