//! [`SimConfig`]: every setting of a simulation, with defaults, presets and validation.
//!
//! A TOML file may give any subset of the fields (the rest keep their defaults); the CLI's flags
//! override the file; the resolved config is written next to the outputs.

mod class_spec;
mod file;
mod preset;
mod validate;

pub use class_spec::ClassSpec;
pub use preset::PRESETS;

use crate::imaging::{CtfConfig, WbpConfig};
use crate::sample::{GoldConfig, VesicleConfig};
use serde::{Deserialize, Serialize};

/// Avogadro's number, for concentrations.
const AVOGADRO: f64 = 6.022_140_76e23;

/// Which files to write besides the SHREC set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Write the noisy tilt series (`tiltseries.mrc` + `tiltseries.tlt`).
    pub tilt_series: bool,
    /// Write PNGs of the central XY and XZ slices of the reconstruction.
    pub preview: bool,
}

/// Tilt scheme in degrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TiltConfig {
    pub min_deg: f64,
    pub max_deg: f64,
    pub step_deg: f64,
}

impl Default for TiltConfig {
    fn default() -> Self {
        Self {
            min_deg: -60.0,
            max_deg: 60.0,
            step_deg: 3.0,
        }
    }
}

/// Noise added to the projections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseConfig {
    /// Add noise at all.
    pub enabled: bool,
    /// Target SNR = var(signal) / var(noise), where var(signal) is the mean over tilts of the
    /// variance of each noise-free projection after the CTF (SHREC'19: 0.02).
    pub snr: f64,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            snr: 0.02,
        }
    }
}

/// Every setting of a simulation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Name of the preset this config started from (informative).
    pub preset: String,
    /// Tomogram shape `[z, y, x]` in voxels.
    pub shape_zyx: [usize; 3],
    /// Voxel size in Å.
    pub voxel_size_a: f64,
    /// Thickness of the solvent slab (centred in z) that holds the particles, in voxels.
    pub slab_thickness_vox: usize,
    /// Solvent (vitreous ice) density in protein units: particles displace it, and the slab itself
    /// is projected as laterally infinite (path length thickness / cos α).
    pub solvent_density: f64,
    /// Number of tomograms (1: files directly in the output folder; more: `tomo_000/`, ...).
    pub tomograms: usize,
    /// Seed of every random process.
    pub seed: u64,
    /// Resolution (Å) at which atomic and pseudo-atomic models become density; 0 = 2 × voxel size.
    pub resolution_a: f64,
    /// Fraction of a template's maximum density above which a voxel is in its mask.
    pub mask_fraction: f64,
    /// Position tries per particle before it is given up (and reported).
    pub max_attempts: usize,
    /// The particle classes, labelled 1..N in this order.
    #[serde(rename = "class")]
    pub classes: Vec<ClassSpec>,
    pub vesicles: VesicleConfig,
    pub gold: GoldConfig,
    pub tilt: TiltConfig,
    pub ctf: CtfConfig,
    pub noise: NoiseConfig,
    pub reconstruction: WbpConfig,
    pub outputs: OutputConfig,
}

impl SimConfig {
    /// The resolution actually used (Å): `resolution_a`, or twice the voxel size when 0.
    pub fn effective_resolution_a(&self) -> f64 {
        if self.resolution_a > 0.0 {
            self.resolution_a
        } else {
            2.0 * self.voxel_size_a
        }
    }

    /// Volume of the slab in litres.
    pub fn slab_volume_l(&self) -> f64 {
        let [_, ny, nx] = self.shape_zyx;
        let a3 = (nx * ny * self.slab_thickness_vox.min(self.shape_zyx[0])) as f64
            * self.voxel_size_a.powi(3);
        a3 * 1e-27
    }

    /// Particles per tomogram of each class: the count, or the concentration times the slab volume.
    pub fn counts(&self) -> Vec<usize> {
        let vol = self.slab_volume_l();
        self.classes
            .iter()
            .map(|c| match (c.count, c.concentration_um) {
                (Some(n), _) => n,
                (None, Some(um)) => (um * 1e-6 * AVOGADRO * vol).round() as usize,
                (None, None) => 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concentration_becomes_a_count() {
        let mut cfg = SimConfig::preset("shrec-like").unwrap();
        cfg.classes = vec![ClassSpec {
            count: None,
            concentration_um: Some(1.0),
            ..ClassSpec::builtin("globule", 0)
        }];
        // 512 × 512 × 200 nm³ = 5.24e-17 L; 1 µM → 31.6 particles.
        assert_eq!(cfg.counts(), vec![32]);
    }
}
