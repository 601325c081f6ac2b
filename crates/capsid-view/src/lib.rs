//! capsid-view: `capsid view`, a tomogram viewer and pick editor in any browser.
//!
//! A small HTTP server ([`ViewServer`], on `tiny_http`) bound to 127.0.0.1 serves one page (plain
//! JS + Canvas, shipped inside the binary) and a few JSON/PNG endpoints. Every request must carry
//! the random token printed in the URL (`?token=…`), else 403. Nothing in a request names a file:
//! volumes are addressed as `tomo`, `labels` or `prob:CLASS` (the files given on the command
//! line), picks are saved only to the save path fixed at start ([`ViewConfig::save`]) with the
//! extension of the chosen format.
//!
//! * [`volume`]: memory-mapped MRC planes (XY, XZ, YZ) with slab averaging; only the voxels of
//!   the asked plane are read.
//! * [`render`]: Gaussian low-pass, percentile contrast, 8-bit PNG.
//! * [`Viewer`]: the session state: volumes, class table, picks (edited by the page), truth and
//!   TP/FP/FN matching ([`capsid_eval::matching::match_class`], the same as `capsid evaluate`).
//!
//! Endpoints (all `?token=T&…`): `/` the page (HTML, CSS and JS in one), `/api/info`,
//! `/api/slice?vol=&axis=z|y|x&index=&slab=&sigma=&lo=&hi=&contrast=global|slice&fmt=png|raw`,
//! `/api/picks` (GET; POST a `{"picks":[…]}` list), `/api/save?format=star|csv|copick` (POST),
//! `/api/centre?x=&y=&z=&r=&polarity=dark|bright`.

pub mod render;
mod server;
pub mod state;
pub mod volume;

pub use server::ViewServer;
pub use state::{ViewConfig, Viewer};
pub use volume::{Axis, MappedVolume};

use std::path::{Path, PathBuf};

/// The crate's one error type; every file error names its file.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] capsid_io::IoError),
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
    #[error("{0}")]
    Invalid(String),
}

impl ViewError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ViewError {
        ViewError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
