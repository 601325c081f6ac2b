//! `capsid evaluate`: picks (and maps) against ground truth → eval/summary.json + a table.

use crate::grammar::parse_shape_xyz;
use anyhow::{bail, Context};
use capsid_core::{ClassTable, Particle};
use capsid_eval::{evaluate_picks, hitbox, pr_curve, voxel_scores, EvalParams};
use capsid_io::mrc::read_label_map;
use capsid_io::particles::{read_particles, ReadOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `capsid evaluate`.
#[derive(clap::Args)]
#[command(after_help = "\
Scores (see capsid-eval's docs for the exact rules):
  * distance matching per class, one pick ↔ at most one particle, greedy by ascending distance;
    tolerance = --tolerance × class radius (1.0; CZII uses 0.5); picks outside the volume are FP;
    P/R/F1/F-beta (β = --beta, CZII 4) per class, macro and pooled; weighted F-beta with --weight;
    a confusion matrix (rows true, columns picked, plus background row and missed column);
  * --occupancy: the SHREC hitbox rule (voxel value k = k-th particle of --truth, 1-based, file
    order, as SHREC's occupancy_mask.mrc and particle_locations.txt);
  * --labels with --truth-labels: voxel Dice/IoU/precision/recall per class;
  * --prob CLASS=PATH (repeat) with --truth-labels: PR curve and AUPRC per class.
Writes <out>/summary.json, <out>/summary.txt and <out>/config.toml, and prints the table.
Truth particles of classes not in the class table are ignored (and counted).

Examples:
  capsid evaluate --picks tomo_picks.star --truth particle_locations.txt \\
      --classes classes.toml --occupancy occupancy_mask.mrc --out eval
  capsid evaluate --picks picks.star --truth truth.star --classes classes.toml \\
      --tolerance 0.5 --weight ribosome=1 --weight beta_amylase=0 \\
      --shape-xyz 630,630,184 --out eval_czii
  capsid evaluate --picks picks.star --truth truth.star --classes classes.toml \\
      --labels tomo_labels.mrc --truth-labels class_mask.mrc \\
      --prob ribosome=tomo_prob_ribosome.mrc --out eval")]
pub struct Args {
    /// Picks (particle list: .star, .csv, .txt, .xml, .json).
    #[arg(long, value_name = "FILE")]
    pub picks: PathBuf,
    /// Ground-truth particles (e.g. SHREC particle_locations.txt, or a STAR file).
    #[arg(long, value_name = "FILE")]
    pub truth: PathBuf,
    /// Class table (TOML).
    #[arg(long, value_name = "TOML")]
    pub classes: PathBuf,
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
    /// Match tolerance as a fraction of the class radius (CZII: 0.5).
    #[arg(long, default_value_t = 1.0)]
    pub tolerance: f64,
    /// β of the F-beta score.
    #[arg(long, default_value_t = 4.0)]
    pub beta: f64,
    /// Class weight for the weighted F-beta, CLASS=W (repeat; default 1).
    #[arg(long = "weight", value_name = "CLASS=W")]
    pub weight: Vec<String>,
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

/// Reads truth without a class table (so classes outside the table are kept and later ignored),
/// naming numeric classes through the table.
fn read_truth(
    path: &Path,
    classes: &ClassTable,
    voxel_size_a: Option<f64>,
) -> anyhow::Result<Vec<Particle>> {
    let opts = ReadOptions {
        voxel_size_a,
        class_numbers_as_names: true,
        allow_empty: true,
        ..Default::default()
    };
    let mut truth = read_particles(path, &opts)?;
    for t in &mut truth {
        if classes.get(&t.class).is_err() {
            if let Some(c) = t.class.parse::<u8>().ok().and_then(|n| classes.by_label(n)) {
                t.class = c.name.clone();
            }
        }
    }
    Ok(truth)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let classes = ClassTable::load(&args.classes)?;
    let probs = crate::util::parse_prob_args(&args.prob, &classes)?;
    let mut class_weights = BTreeMap::new();
    for w in &args.weight {
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
    if args.labels.is_some() != args.truth_labels.is_some() && probs.is_empty() {
        bail!("voxel scores need both --labels and --truth-labels");
    }
    if !probs.is_empty() && args.truth_labels.is_none() {
        bail!("PR curves (--prob) need --truth-labels");
    }
    // Geometry from the first map given, unless set on the command line.
    let maps: Vec<&Path> = [
        args.occupancy.as_deref(),
        args.labels.as_deref(),
        args.truth_labels.as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(probs.iter().map(|(_, p)| p.as_path()))
    .collect();
    let header = maps
        .first()
        .map(|p| capsid_io::mrc::read_header(p))
        .transpose()?;
    // Outputs never overwrite inputs; maps used together share one grid.
    let mut inputs: Vec<&Path> = vec![&args.picks, &args.truth, &args.classes];
    inputs.extend(args.decoys.as_deref());
    inputs.extend(args.decoy_classes.as_deref());
    inputs.extend(maps.iter().copied());
    let _guard = capsid_core::OutputGuard::new(&[&args.out], &inputs, args.force)?;
    if let Some(h0) = &header {
        for p in maps.iter().skip(1) {
            let h = capsid_io::mrc::read_header(p)?;
            capsid_core::guard::check_same_grid(
                maps[0],
                h0.shape_zyx(),
                h0.voxel_size_a,
                p,
                h.shape_zyx(),
                h.voxel_size_a,
            )?;
        }
    }
    let voxel_size_a = args.voxel_size.or_else(|| {
        header
            .as_ref()
            .map(|h| h.voxel_size_a[0] as f64)
            .filter(|v| *v > 0.0)
    });
    let shape_xyz = args.shape.or_else(|| {
        header.as_ref().map(|h| {
            let [z, y, x] = h.shape_zyx();
            [x, y, z]
        })
    });
    let picks = read_particles(
        &args.picks,
        &ReadOptions {
            classes: Some(classes.clone()),
            voxel_size_a,
            allow_empty: true,
            ..Default::default()
        },
    )?;
    let truth = read_truth(&args.truth, &classes, voxel_size_a)?;
    let params = EvalParams {
        tolerance_fraction: args.tolerance,
        beta: args.beta,
        class_weights,
        voxel_size_a: voxel_size_a.unwrap_or(0.0),
        shape_xyz,
    };
    let mut report = evaluate_picks(&picks, &truth, &classes, &params)?;
    report
        .inputs
        .insert("picks".into(), args.picks.display().to_string());
    report
        .inputs
        .insert("truth".into(), args.truth.display().to_string());
    report
        .inputs
        .insert("classes".into(), args.classes.display().to_string());
    if let Some(decoys_path) = &args.decoys {
        let table_path = match &args.decoy_classes {
            Some(p) => p.clone(),
            None => find_decoy_table(decoys_path).with_context(|| {
                format!(
                    "{}: no decoy_table.toml beside it or one folder up; give --decoy-classes",
                    decoys_path.display()
                )
            })?,
        };
        let decoy_classes = ClassTable::load(&table_path)?;
        let decoys = read_particles(
            decoys_path,
            &ReadOptions {
                classes: Some(decoy_classes.clone()),
                voxel_size_a,
                allow_empty: true,
                ..Default::default()
            },
        )?;
        report.decoys = Some(
            capsid_eval::decoy_report(&picks, &truth, &classes, &decoys, &decoy_classes, &params)
                .with_context(|| decoys_path.display().to_string())?,
        );
        report
            .inputs
            .insert("decoys".into(), decoys_path.display().to_string());
        report
            .inputs
            .insert("decoy_classes".into(), table_path.display().to_string());
    }
    if let Some(occ_path) = &args.occupancy {
        let occ = capsid_io::mrc::read_volume(occ_path)?;
        capsid_core::guard::check_integer_map(
            occ_path,
            "an occupancy map",
            occ.data.iter(),
            16_777_216.0,
        )?;
        report.hitbox = Some(
            hitbox(&picks, &truth, &occ, &classes)
                .with_context(|| occ_path.display().to_string())?,
        );
        report
            .inputs
            .insert("occupancy".into(), occ_path.display().to_string());
    }
    if let Some(tl_path) = &args.truth_labels {
        let truth_labels = read_label_map(tl_path)?;
        capsid_core::guard::check_labels_known(
            tl_path,
            truth_labels.data.iter().copied(),
            &classes,
        )?;
        report
            .inputs
            .insert("truth_labels".into(), tl_path.display().to_string());
        if let Some(l_path) = &args.labels {
            let labels = read_label_map(l_path)?;
            capsid_core::guard::check_labels_known(l_path, labels.data.iter().copied(), &classes)?;
            report.voxel = voxel_scores(&labels, &truth_labels, &classes)
                .with_context(|| format!("{} vs {}", l_path.display(), tl_path.display()))?;
            report
                .inputs
                .insert("labels".into(), l_path.display().to_string());
        }
        let bar = crate::util::progress(probs.len() as u64, "PR curves");
        for (class, path) in &probs {
            let prob = capsid_io::mrc::read_volume(path)?;
            let label = classes.get(class)?.label;
            report.pr_curves.push(
                pr_curve(&prob, &truth_labels, label, class, args.pr_bins)
                    .with_context(|| format!("{} vs {}", path.display(), tl_path.display()))?,
            );
            report
                .inputs
                .insert(format!("prob_{class}"), path.display().to_string());
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the folder", args.out.display()))?;
    let json = report.to_json()?;
    let table = report.to_table();
    capsid_core::write_atomically(&args.out.join("summary.json"), |w| {
        std::io::Write::write_all(w, json.as_bytes())
    })?;
    capsid_core::write_atomically(&args.out.join("summary.txt"), |w| {
        std::io::Write::write_all(w, table.as_bytes())
    })?;
    let config = toml::to_string_pretty(&ConfigRecord {
        capsid_version: capsid_core::VERSION,
        inputs: &report.inputs,
        params: &params,
        pr_bins: args.pr_bins,
    })
    .context("evaluation settings as TOML")?;
    capsid_core::write_atomically(&args.out.join("config.toml"), |w| {
        std::io::Write::write_all(w, config.as_bytes())
    })?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    print!("{table}");
    println!("→ {}", args.out.join("summary.json").display());
    Ok(())
}

/// `decoy_table.toml` in the folder of `decoys` or its parent (the simulator's layout).
fn find_decoy_table(decoys: &Path) -> Option<PathBuf> {
    let dir = decoys.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("decoy_table.toml"))
        .find(|p| p.is_file())
}

#[derive(serde::Serialize)]
struct ConfigRecord<'a> {
    capsid_version: &'a str,
    pr_bins: usize,
    inputs: &'a BTreeMap<String, String>,
    params: &'a EvalParams,
}
