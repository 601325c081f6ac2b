//! capsid-report (to be written).
