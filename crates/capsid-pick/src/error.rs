//! The error type of capsid-pick.

/// Errors raised by the pickers (bad parameters) and the stage on files (unreadable inputs).
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// A parameter out of range, with a message saying which and why.
    #[error("{0}")]
    Invalid(String),
    /// A class asked for is not in the class table.
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
    /// A map or particle list that cannot be read or written (the message names the file).
    #[error(transparent)]
    File(#[from] capsid_io::IoError),
}
