//! capsid-nn (to be written).
