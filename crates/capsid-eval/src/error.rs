//! The error type of capsid-eval.

/// Errors raised while evaluating (inconsistent inputs or parameters).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A parameter or input that cannot be evaluated, with a message saying why.
    #[error("{0}")]
    Invalid(String),
    /// A class that is not in the class table.
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
    /// The report could not be turned into or read from JSON.
    #[error("summary JSON: {0}")]
    Json(#[from] serde_json::Error),
}
