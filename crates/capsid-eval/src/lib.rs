//! capsid-eval (to be written).
