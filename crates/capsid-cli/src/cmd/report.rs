//! `capsid report`: figures and one self-contained HTML page for a run folder.

use std::path::PathBuf;

/// Arguments of `capsid report`.
#[derive(clap::Args)]
#[command(after_help = "\
Reads what the pipeline left in RUN_DIR and writes RUN_DIR/report/index.html (one page, figures
embedded) and the figures as PNG files beside it. Sections whose inputs are absent are replaced by
a note. Layout read (every part optional):
  timings.json                         stage wall times {\"stages\":[{\"name\":…,\"seconds\":…}]}
  sim/[<tomo>/]reconstruction.mrc      tomogram, with class_mask.mrc (ground-truth labels),
                                       particle_locations.txt and class_table.toml
  train/<model>/metrics.csv            learning curves
  segment/[<model>/]<tomo>_labels.mrc  predicted label map
  pick/[<model>/]<tomo>_picks.star     picks (.star, .csv, .txt, .xml, .json)
  eval/[<model>/]summary.json          per-class precision/recall/F1 and PR curves
  *.toml                               configuration, shown verbatim

Examples:
  capsid report demo
  capsid report demo --class proteasome --out demo/report-proteasome")]
pub struct Args {
    /// Run folder written by `capsid demo` or by the pipeline's stages.
    pub run_dir: PathBuf,
    /// Output folder [default: RUN_DIR/report].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show only this class (a class-table name) in the slice figures [default: all classes].
    #[arg(long)]
    pub class: Option<String>,
    /// Tomogram to show when the data folder holds several (its folder name) [default: the first].
    #[arg(long)]
    pub tomogram: Option<String>,
    /// Magnification of slice images, 1–8 [default: 1–4, so a slice is about 500 px wide].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub scale: Option<u32>,
    /// Replace an existing report folder.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("report"));
    if !args.run_dir.is_dir() {
        anyhow::bail!("{}: no such run folder", args.run_dir.display());
    }
    let _guard = capsid_core::OutputGuard::new(&[&out], &[&args.run_dir], args.force)?;
    let opts = capsid_report::ReportOptions {
        out_dir: args.out,
        class: args.class,
        tomogram: args.tomogram,
        scale: args.scale,
    };
    let summary = capsid_report::build_report(&args.run_dir, &opts)?;
    for n in &summary.notes {
        eprintln!("note: {n}");
    }
    eprintln!("{} figures", summary.figures.len());
    println!("{}", summary.html.display());
    Ok(())
}
