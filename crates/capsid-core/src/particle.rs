//! [`Particle`]: one picked or simulated particle.

use crate::rotation::EulerAngles;
use serde::{Deserialize, Serialize};

/// One particle of a class in a tomogram.
///
/// `x, y, z` are in voxels of the tomogram it belongs to (the centre of voxel 0 is 0). Files that
/// store Å (RELION 5 `…Angst`, copick) are converted at the edges, in capsid-io.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Particle {
    /// Class name, as in the class table.
    pub class: String,
    /// Position in voxels.
    pub x: f64,
    pub y: f64,
    pub z: f64,
    /// Orientation, with its convention named.
    pub angles: Option<EulerAngles>,
    /// Detection score (higher is more confident), e.g. RELION's `rlnAutopickFigureOfMerit`.
    pub score: Option<f64>,
    /// Name of the tomogram the particle lies in (RELION's `rlnTomoName`).
    pub tomogram: Option<String>,
}

impl Particle {
    /// A particle of `class` at `(x, y, z)` voxels, with no angles, score or tomogram.
    pub fn new(class: impl Into<String>, x: f64, y: f64, z: f64) -> Self {
        Self {
            class: class.into(),
            x,
            y,
            z,
            angles: None,
            score: None,
            tomogram: None,
        }
    }

    /// Position `[x, y, z]` in voxels.
    pub fn position_xyz(&self) -> [f64; 3] {
        [self.x, self.y, self.z]
    }

    /// Euclidean distance in voxels to another position `[x, y, z]`.
    pub fn distance_to(&self, p: [f64; 3]) -> f64 {
        let d = [self.x - p[0], self.y - p[1], self.z - p[2]];
        (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
    }
}
