//! capsid-io (to be written).
