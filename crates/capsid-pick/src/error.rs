//! The error type of capsid-pick.

/// Errors raised by the pickers (bad parameters; the maps themselves cannot be wrong).
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// A parameter out of range, with a message saying which and why.
    #[error("{0}")]
    Invalid(String),
    /// A class asked for is not in the class table.
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
}
