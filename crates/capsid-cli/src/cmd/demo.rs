//! `capsid demo`: the whole pipeline on built-in simulated data, one stage after another.
//!
//! simulate → train → segment → pick → evaluate → report. Each stage runs as `capsid <stage> …`
//! (this same binary), exactly as a user would type it; the commands are printed and saved in
//! `OUT/commands.sh`, stage wall times in `OUT/timings.json`.

use anyhow::{bail, Context};
use capsid_core::outputs::{StageTiming, Timings, TIMINGS};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `capsid demo`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  capsid demo --out demo\n  capsid demo --out demo --models unet,ucaps --seed 7\n\n\
The data are simulated (preset `demo`: three tomograms); the first ones train, the last one is held out \
for segmentation, picking and evaluation (a one-tomogram preset such as `tiny` gets a second tomogram \
simulated with seed + 1 for that)."
)]
pub struct Args {
    /// Output folder (created; stages write sub-folders sim/, train/, segment/, pick/, eval/, report/).
    #[arg(long, default_value = "demo")]
    pub out: PathBuf,
    /// Networks to train and compare: unet, ucaps or both (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "unet")]
    pub models: Vec<String>,
    /// Simulation preset.
    #[arg(long, default_value = "demo")]
    pub preset: String,
    /// Random seed for every stage.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Training epochs.
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Training steps per epoch.
    #[arg(long, default_value_t = 25)]
    pub steps: usize,
    /// Patch side in voxels for training and segmentation.
    #[arg(long, default_value_t = 32)]
    pub patch: usize,
    /// Batch size.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Adam learning rate. The paper's 1e-4 needs hours; the short demo run uses 1e-3.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// CPU threads (default: all cores, as every command).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace an existing demo folder (every stage runs with --force).
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary on stdout at the end (stage times, the report's path and each model's
    /// evaluation summary) instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `capsid ARGS…` and records its wall time under `name`.
/// `demo --force`: every stage replaces its outputs too.
static FORCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stage(timings: &mut Timings, name: &str, args: &[String]) -> anyhow::Result<()> {
    let mut args = args.to_vec();
    if FORCE.load(std::sync::atomic::Ordering::Relaxed) {
        args.push("--force".into());
    }
    let exe = std::env::current_exe().context("cannot find the capsid executable")?;
    let shown = format!("capsid {}", args.join(" "));
    eprintln!("\n== {name}: {shown}");
    let t0 = Instant::now();
    let status = Command::new(&exe)
        .args(args)
        .status()
        .with_context(|| format!("{name}: cannot start {shown}"))?;
    let seconds = t0.elapsed().as_secs_f64();
    if !status.success() {
        bail!("stage {name} failed ({status}): {shown}");
    }
    eprintln!("== {name} done in {seconds:.1} s");
    timings.stages.push(StageTiming {
        name: name.to_string(),
        seconds,
        command: Some(shown),
        device: None,
    });
    Ok(())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The tomogram folders a simulation wrote (`tomo_*` sub-folders, or the folder itself).
fn tomogram_dirs(sim: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if sim.join("reconstruction.mrc").exists() {
        return Ok(vec![sim.to_path_buf()]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(sim)
        .with_context(|| format!("{}: cannot list", sim.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("reconstruction.mrc").exists())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("{}: the simulation wrote no tomogram", sim.display());
    }
    Ok(dirs)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for m in &args.models {
        if m != "unet" && m != "ucaps" {
            bail!("--models: unknown network '{m}' (use unet, ucaps)");
        }
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use all cores)");
    }
    let threads: Vec<String> = args
        .threads
        .map(|n| vec!["--threads".to_string(), n.to_string()])
        .unwrap_or_default();
    let out = &args.out;
    let _guard = capsid_core::OutputGuard::new(&[out], &[], args.force)?;
    FORCE.store(args.force, std::sync::atomic::Ordering::Relaxed);
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let t_all = Instant::now();
    let mut timings = Timings { stages: Vec::new() };
    let seed = args.seed.to_string();

    let sim = out.join("sim");
    stage(
        &mut timings,
        "simulate",
        &[
            "simulate".into(),
            "--preset".into(),
            args.preset.clone(),
            "--seed".into(),
            seed.clone(),
            "--out".into(),
            s(&sim),
            "--preview".into(),
        ],
    )?;
    let tomos = tomogram_dirs(&sim)?;
    let (train_dirs, test_dir) = if tomos.len() > 1 {
        (
            tomos[..tomos.len() - 1].to_vec(),
            tomos[tomos.len() - 1].clone(),
        )
    } else {
        // A one-tomogram preset: evaluate on a second tomogram simulated with another seed, so
        // the scores measure particles the network has not seen.
        let held_out = out.join("sim_test");
        stage(
            &mut timings,
            "simulate held-out",
            &[
                "simulate".into(),
                "--preset".into(),
                args.preset.clone(),
                "--seed".into(),
                (args.seed + 1).to_string(),
                "--out".into(),
                s(&held_out),
            ],
        )?;
        (tomos.clone(), tomogram_dirs(&held_out)?[0].clone())
    };
    let classes = sim.join("class_table.toml");
    let classes = if classes.exists() {
        classes
    } else {
        test_dir.join("class_table.toml")
    };
    let test_name = test_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "tomo".into());

    for model in &args.models {
        let run_dir = out.join("train").join(model);
        let mut train_args: Vec<String> = vec!["train".into(), "--model".into(), model.clone()];
        for d in &train_dirs {
            train_args.extend(["--data".into(), s(d)]);
        }
        train_args.extend([
            "--classes".into(),
            s(&classes),
            "--patch".into(),
            args.patch.to_string(),
            "--batch".into(),
            args.batch.to_string(),
            "--epochs".into(),
            args.epochs.to_string(),
            "--steps".into(),
            args.steps.to_string(),
            "--lr".into(),
            args.lr.to_string(),
            "--seed".into(),
            seed.clone(),
            // Every class as often as the others, and the tiny class's few voxels weighted up:
            // without them the globules are not learned in the demo's minutes. (Hard negatives,
            // --negative-ratio 0.3, made the look-alikes picked rise from 15 to 27 of 28 here.)
            "--class-balanced".into(),
            "--class-weights".into(),
            "--out".into(),
            s(&run_dir),
        ]);
        train_args.extend(threads.iter().cloned());
        stage(&mut timings, &format!("train {model}"), &train_args)?;

        let seg = out.join("segment").join(model);
        stage(
            &mut timings,
            &format!("segment {model}"),
            &[
                "segment".to_string(),
                s(&run_dir),
                s(&test_dir.join("reconstruction.mrc")),
                "--out".into(),
                s(&seg),
                "--patch".into(),
                args.patch.to_string(),
                "--probs".into(),
                "f16".into(),
            ]
            .into_iter()
            .chain(threads.iter().cloned())
            .collect::<Vec<String>>(),
        )?;

        let pick_dir = out.join("pick").join(model);
        std::fs::create_dir_all(&pick_dir)
            .with_context(|| format!("{}: cannot create", pick_dir.display()))?;
        let picks = pick_dir.join(format!("{test_name}_picks.star"));
        stage(
            &mut timings,
            &format!("pick {model}"),
            &[
                "pick".into(),
                s(&seg.join(capsid_core::outputs::label_map_file(&test_name))),
                "--classes".into(),
                s(&classes),
                // No --method: each class as the model's tuned settings say (mean shift of the
                // label map or peaks of the probability map written above).
                "--tomo-name".into(),
                test_name.clone(),
                "--out".into(),
                s(&picks),
            ],
        )?;

        let eval = out.join("eval").join(model);
        // Voxel scores and PR curves from the label and probability maps against the true
        // class mask, next to the particle scores.
        let mut voxel_args: Vec<String> = vec![
            "--labels".into(),
            s(&seg.join(capsid_core::outputs::label_map_file(&test_name))),
            "--truth-labels".into(),
            s(&test_dir.join("class_mask.mrc")),
        ];
        // Look-alikes of the targets (decoys of the preset): count the ones picked as targets.
        let decoys = test_dir.join("decoys.star");
        if decoys.is_file() {
            voxel_args.extend([
                "--decoys".into(),
                s(&decoys),
                "--decoy-classes".into(),
                s(&sim.join("decoy_table.toml")),
            ]);
        }
        for class in capsid_core::ClassTable::load(&classes)?.names() {
            voxel_args.push("--prob".into());
            voxel_args.push(format!(
                "{class}={}",
                s(&seg.join(capsid_core::outputs::prob_map_file(&test_name, &class)))
            ));
        }
        stage(
            &mut timings,
            &format!("evaluate {model}"),
            &[
                "evaluate".into(),
                "--picks".into(),
                s(&picks),
                "--truth".into(),
                s(&test_dir.join("particle_locations.txt")),
                "--occupancy".into(),
                s(&test_dir.join("occupancy_mask.mrc")),
                "--classes".into(),
                s(&classes),
                "--tolerance".into(),
                "0.5".into(),
                "--out".into(),
                s(&eval),
            ]
            .into_iter()
            .chain(voxel_args)
            .collect::<Vec<String>>(),
        )?;
    }

    let timings_path = out.join(TIMINGS);
    timings.write(&timings_path)?;
    stage(&mut timings, "report", &["report".into(), s(out)])?;
    timings.write(&timings_path)?;
    let script: String = timings
        .stages
        .iter()
        .filter_map(|st| st.command.as_ref().map(|c| format!("{c}\n")))
        .collect();
    capsid_core::write_atomically(&out.join("commands.sh"), |w| {
        std::io::Write::write_all(w, script.as_bytes())
    })?;

    eprintln!(
        "\n== demo finished in {:.1} s; report: {}",
        t_all.elapsed().as_secs_f64(),
        s(&out.join("report/index.html"))
    );
    if args.json {
        let mut evaluations = serde_json::Map::new();
        for model in &args.models {
            let path = out.join("eval").join(model).join("summary.json");
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
            evaluations.insert(model.clone(), v);
        }
        let v = serde_json::json!({
            "seconds": t_all.elapsed().as_secs_f64(),
            "report": out.join("report/index.html"),
            "tested_on": test_name,
            "timings": timings,
            "evaluations": evaluations,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for model in &args.models {
        let table = out.join("eval").join(model).join("summary.txt");
        if let Ok(text) = std::fs::read_to_string(&table) {
            println!("\n{model} on {test_name} (CZII tolerance: 0.5 × class radius)\n{text}");
        }
    }
    Ok(())
}
