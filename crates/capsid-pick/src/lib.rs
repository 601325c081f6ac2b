//! capsid-pick (to be written).
