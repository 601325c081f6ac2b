//! The error type of capsid-sim.

use std::path::PathBuf;

/// Errors raised by the simulator. File errors carry the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The simulation configuration is inconsistent (message says which field and why).
    #[error("invalid simulation config: {0}")]
    Config(String),
    /// A configuration file could not be parsed.
    #[error("{path}: invalid simulation config: {message}")]
    ConfigFile { path: PathBuf, message: String },
    /// An atomic model (PDB/mmCIF) could not be read or holds no atoms.
    #[error("{path}: cannot use atomic model: {message}")]
    Model { path: PathBuf, message: String },
    /// A density map could not be read or is unusable.
    #[error("{path}: cannot use density map: {message}")]
    Map { path: PathBuf, message: String },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error from capsid-core (class table, atomic writes).
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
    /// An error from capsid-io (MRC and particle files); names the file.
    #[error(transparent)]
    File(#[from] capsid_io::error::IoError),
}
