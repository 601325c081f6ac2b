//! capsid-core: the domain types every stage of capsid shares.
//!
//! * [`Volume`]: a 3D array in memory order `[z, y, x]` (x fastest, as MRC stores it) with its voxel
//!   size in Å and origin in Å.
//! * [`Particle`]: one particle of a class at `x, y, z` in voxels of its tomogram, with optional
//!   Euler angles ([`EulerAngles`], convention named) and score.
//! * [`ClassTable`]: the particle classes of a project (name, label, radius, optional template map),
//!   read from and written to TOML and shared by all stages.
//! * [`rotation`]: 3×3 rotation matrices and Euler-angle conventions (ZXZ as SHREC/DeepFinder,
//!   ZYZ as RELION).
//!
//! No deep-learning dependency lives here. Preprocessing (binning, low-pass, normalisation) and
//! mask drawing, which work on these types, live in capsid-prep.

pub mod classes;
pub mod error;
pub mod fsutil;
pub mod guard;
pub mod optics;
pub mod outputs;
pub mod particle;
pub mod rotation;
pub mod run_metrics;
pub mod symmetry;
pub mod volume;

pub use classes::{ClassDef, ClassTable, Radius};
pub use error::CoreError;
pub use fsutil::write_atomically;
pub use guard::OutputGuard;
pub use particle::Particle;
pub use rotation::{EulerAngles, EulerConvention, Rotation};
pub use symmetry::Symmetry;
pub use volume::Volume;

/// The crate's version, recorded in every output folder next to the config that produced it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
