//! The command-line options that choose tomograms of a copick project (`segment`, `train`).

use capsid_io::copick_project::Project;
use std::path::PathBuf;

/// `--copick CONFIG [--runs a,b] [--tomo-type wbp] [--voxel-spacing Å]`.
#[derive(clap::Args, Debug, Clone)]
pub struct CopickRuns {
    /// A copick project (its configuration JSON): the tomogram of every run (or of --runs), of
    /// type --tomo-type at --voxel-spacing; outputs are named by run.
    #[arg(long, value_name = "CONFIG")]
    pub copick: Option<PathBuf>,
    /// copick runs, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "copick")]
    pub runs: Vec<String>,
    /// copick tomogram type (`wbp`, `denoised`, …).
    #[arg(long, default_value = "wbp", requires = "copick")]
    pub tomo_type: String,
    /// copick voxel spacing folder, Å (default: each run's only one).
    #[arg(long, value_name = "Å", requires = "copick")]
    pub voxel_spacing: Option<f64>,
}

/// A project with its chosen runs, each with its tomogram.
pub type ChosenRuns = (Project, Vec<(String, PathBuf)>);

impl CopickRuns {
    /// The project and its chosen runs with their tomograms (none without --copick).
    pub fn tomograms(&self) -> anyhow::Result<Option<ChosenRuns>> {
        let Some(config) = &self.copick else {
            return Ok(None);
        };
        let project = Project::open(config)?;
        let mut out = Vec::new();
        for run in project.select_runs(&self.runs)? {
            let tomo = project.tomogram(&run, self.voxel_spacing, &self.tomo_type)?;
            out.push((run, tomo));
        }
        Ok(Some((project, out)))
    }
}
