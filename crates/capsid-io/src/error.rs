//! The error type of capsid-io: every variant names the file it concerns.

use std::path::PathBuf;

/// Errors raised while reading or writing capsid's file formats.
///
/// Displayed as one line, `file: problem`, so the CLI can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The operating system refused a read or write (missing file, permissions, full disk, ...).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not what the format requires (truncated, bad header, bad value, ...).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

impl IoError {
    /// An [`IoError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`IoError::Format`] for `path` with a message saying what is wrong.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        IoError::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The file the error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            IoError::Io { path, .. } | IoError::Format { path, .. } => path,
        }
    }
}
