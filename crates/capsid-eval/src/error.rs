//! The error type of capsid-eval.

use std::path::PathBuf;

/// Errors raised while evaluating (inconsistent inputs or parameters, unreadable files).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A parameter or input that cannot be evaluated, with a message saying why.
    #[error("{0}")]
    Invalid(String),
    /// A class that is not in the class table, maps on different grids, a file that could not be
    /// written, ...
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
    /// A volume or particle list that could not be read.
    #[error(transparent)]
    File(#[from] capsid_io::IoError),
    /// The report could not be turned into or read from JSON.
    #[error("summary JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An error with the file or files it concerns in front (`<path>: …`, `<a> vs <b>: …`).
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<EvalError>,
    },
    /// The output folder could not be created.
    #[error("{}: cannot create the folder", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The evaluation settings could not be written as TOML.
    #[error("evaluation settings as TOML")]
    Settings(#[source] toml::ser::Error),
}
