//! The error type of capsid-core.

use std::path::PathBuf;

/// Errors raised by capsid-core. File errors carry the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A class table (TOML) is malformed or inconsistent.
    #[error("{path}: invalid class table: {message}")]
    ClassTable { path: PathBuf, message: String },
    /// A class name that is not in the class table.
    #[error("unknown class '{name}' (known: {known})")]
    UnknownClass { name: String, known: String },
    /// Any other invalid argument, with a message saying what is wrong.
    #[error("{0}")]
    Invalid(String),
}
