//! capsid-match: template matching, the classical way to find particles and their orientations
//! in a tomogram, and the baseline against which capsid's networks are measured.
//!
//! * [`so3`]: the rotations searched — a uniform sampling of SO(3) at an angular step, cut to a
//!   point group's asymmetric unit, and local samplings for refinement.
//! * [`template`]: turning, filtering (missing wedge, CTF, low-pass) and normalising the template
//!   under its mask.
//! * [`search`]: the FFT search of local correlation coefficients over a tiled tomogram.
//! * [`peaks`]: particles from the score map (false-alarm threshold, non-maximum suppression)
//!   with their orientations.
//! * [`orient`]: an orientation for a particle already picked, by a coarse-to-fine local search.
//! * [`fft3`]: real 3D FFTs with the pruning the search needs.
//!
//! Volumes are `[z, y, x]` (x fastest); positions are voxels; rotations are active
//! (template → tomogram, [`capsid_core::Rotation`]); written angles use RELION's ZYZ convention.
//! No deep-learning dependency.

pub mod fft3;
pub mod orient;
pub mod peaks;
pub mod search;
pub mod so3;
pub mod template;

pub use search::{search, MatchMaps, SearchOptions};
pub use template::{Ctf, Template, TemplateFilter, Wedge};

/// Errors of template matching.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// Inputs that cannot be matched (shapes, values, options), with the reason.
    #[error("{0}")]
    Invalid(String),
}
