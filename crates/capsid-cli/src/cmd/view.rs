//! `capsid view`: a tomogram, its label/probability maps and picks in any browser; edit picks.

use anyhow::{bail, Context};
use capsid_view::{ViewConfig, ViewServer, Viewer};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `capsid view`.
#[derive(clap::Args)]
#[command(after_help = "\
Serves one page on 127.0.0.1 (never on other interfaces); the URL it prints carries a random
token, and every request without it is refused (403). Only the files named here are served;
picks are saved only to --save (default: the first --picks file, else <tomo>_picks.star beside
the tomogram) with the extension of the format chosen on the page (STAR, CSV, or copick JSON as
<stem>_<class>.json). Saving over a file that was opened keeps its first version as <file>.bak.

Examples:
  capsid view tomo.mrc
  capsid view tomo.mrc --labels seg/tomo_labels.mrc \\
      --prob ribosome=seg/tomo_prob_ribosome.mrc --picks picks.star \\
      --truth particle_locations.txt --classes classes.toml

On a cluster node (no display needed): start it there, then tunnel the port from your laptop
  node$    capsid view tomo.mrc --picks picks.star --classes classes.toml \\
             --port 8000
  laptop$  ssh -L 8000:127.0.0.1:8000 node
and open the printed URL (http://127.0.0.1:8000/?token=…) in the laptop's browser.

Keys on the page: ↑/↓ slice, z/y/x plane, wheel zoom, drag pan, click add, drag a pick to move,
Delete/right click delete, 1–9 class, Ctrl+Z/Ctrl+Shift+Z undo/redo, Ctrl+S save STAR,
c auto-centre (density extremum within the class radius; polarity dark or bright), i invert.")]
pub struct Args {
    /// The tomogram (MRC/CCP4; plain files are memory-mapped, .gz ones read into memory).
    pub tomo: PathBuf,
    /// Label map of the same shape (label k = the class with label k).
    #[arg(long, value_name = "MRC")]
    pub labels: Option<PathBuf>,
    /// Probability map of one class, CLASS=PATH (repeat).
    #[arg(long = "prob", value_name = "CLASS=PATH")]
    pub prob: Vec<String>,
    /// Particle list to show and edit (repeat; merged): .star, .csv, .txt, .xml, .json.
    #[arg(long, value_name = "FILE")]
    pub picks: Vec<PathBuf>,
    /// Ground truth: picks are coloured TP/FP and missed particles drawn (FN).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Class table (TOML): names, labels, radii. Without it classes come from the files, with
    /// radius --radius.
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// Where the page saves picks (its extension is replaced by the chosen format's).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Match tolerance for TP/FP/FN as a fraction of the class radius (as `capsid evaluate
    /// --tolerance` with one-to-one matching; 0.5 is the strict tolerance).
    #[arg(long, default_value_t = 0.5)]
    pub tolerance: f64,
    /// Radius in voxels of classes when no class table is given.
    #[arg(long, default_value_t = 10.0)]
    pub radius: f64,
    /// Voxel size in Å (default: the tomogram header's).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f64>,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Stop after this many seconds (scripts and tests); default: run until Ctrl+C.
    #[arg(long, value_name = "SECONDS")]
    pub exit_after: Option<f64>,
}

/// Parses `CLASS=PATH`.
fn parse_prob(s: &str) -> anyhow::Result<(String, PathBuf)> {
    match s.split_once('=') {
        Some((c, p)) if !c.is_empty() && !p.is_empty() => Ok((c.to_string(), PathBuf::from(p))),
        _ => bail!("--prob wants CLASS=PATH, got '{s}'"),
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let probs = a
        .prob
        .iter()
        .map(|s| parse_prob(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(a.radius > 0.0 && a.radius.is_finite()) {
        bail!("--radius must be positive, got {}", a.radius);
    }
    let config = ViewConfig {
        tomo: a.tomo.clone(),
        labels: a.labels,
        probs,
        picks: a.picks,
        truth: a.truth,
        classes: a.classes,
        save: a.save,
        tolerance: a.tolerance,
        voxel_size_a: a.voxel_size,
        default_radius_vox: a.radius,
    };
    let viewer = Viewer::open(config)?;
    let [nx, ny, nz] = viewer.tomo.shape_xyz();
    eprintln!(
        "capsid view: {} ({nx} x {ny} x {nz}{}), {} picks, {} classes; saves to {}",
        a.tomo.display(),
        if viewer.tomo.is_mapped() {
            ", memory-mapped"
        } else {
            ", in memory"
        },
        viewer.picks().len(),
        viewer.classes.classes.len(),
        viewer
            .save_path(capsid_io::particles::Format::Star)
            .display()
    );
    let server = ViewServer::start(viewer, a.port).with_context(|| {
        "is another `capsid view` using the port? try --port 0 for any free one"
    })?;
    eprintln!(
        "ready in {:.2} s; open this URL (Ctrl+C stops):",
        t0.elapsed().as_secs_f64()
    );
    println!("{}", server.url());
    eprintln!(
        "from another machine: ssh -L {p}:127.0.0.1:{p} THIS_HOST, then open the URL there",
        p = server.port()
    );
    match a.exit_after {
        Some(s) => std::thread::sleep(Duration::from_secs_f64(s.max(0.0))),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
    eprintln!(
        "capsid view: stopping after {} requests, {:.1} MB sent",
        server.requests(),
        server.bytes_sent() as f64 / 1e6
    );
    server.shutdown();
    Ok(())
}
