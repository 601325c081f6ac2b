//! The error type of capsid-report.

use std::path::PathBuf;

/// Errors raised while building a report. File errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input file exists but its content cannot be used (bad CSV, JSON, volume, ...).
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// Drawing or encoding a figure failed.
    #[error("figure {name}: {message}")]
    Figure { name: String, message: String },
    /// An invalid option or argument.
    #[error("{0}")]
    Invalid(String),
}

impl ReportError {
    /// An [`ReportError::Input`] for `path`.
    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ReportError::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A [`ReportError::Figure`] for the figure called `name`.
    pub fn figure(name: impl Into<String>, message: impl ToString) -> Self {
        ReportError::Figure {
            name: name.into(),
            message: message.to_string(),
        }
    }
}

impl From<capsid_core::CoreError> for ReportError {
    fn from(e: capsid_core::CoreError) -> Self {
        match e {
            capsid_core::CoreError::Io { path, source } => ReportError::Io { path, source },
            capsid_core::CoreError::ClassTable { path, message } => {
                ReportError::Input { path, message }
            }
            other => ReportError::Invalid(other.to_string()),
        }
    }
}
