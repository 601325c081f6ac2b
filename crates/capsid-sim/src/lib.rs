//! capsid-sim (to be written).
