//! The presets: named starting configs ([`PRESETS`]), [`SimConfig::default`] among them.

use super::{ClassSpec, NoiseConfig, OutputConfig, SimConfig, TiltConfig};
use crate::error::SimError;
use crate::imaging::{CtfConfig, WbpConfig};
use crate::library::BUILTIN_CLASSES;
use crate::sample::{GoldConfig, VesicleConfig};

/// Names of the presets.
pub const PRESETS: [&str; 5] = ["default", "tiny", "demo", "shrec-like", "hard"];

impl Default for SimConfig {
    /// 256×256×128 voxels at 10 Å with all six built-in classes at SHREC-like number density.
    fn default() -> Self {
        Self {
            preset: "default".into(),
            shape_zyx: [128, 256, 256],
            voxel_size_a: 10.0,
            slab_thickness_vox: 128,
            solvent_density: 0.7,
            tomograms: 1,
            seed: 0,
            resolution_a: 0.0,
            mask_fraction: 0.3,
            max_attempts: 1000,
            classes: BUILTIN_CLASSES
                .iter()
                .map(|n| ClassSpec::builtin(n, 33))
                .collect(),
            vesicles: VesicleConfig::default(),
            gold: GoldConfig::default(),
            tilt: TiltConfig::default(),
            ctf: CtfConfig::default(),
            noise: NoiseConfig::default(),
            reconstruction: WbpConfig::default(),
            outputs: OutputConfig::default(),
        }
    }
}

impl SimConfig {
    /// A preset by name:
    /// * `default`: see [`SimConfig::default`].
    /// * `tiny`: one 96×96×48 tomogram at 20 Å (slab 40): 24 ribosomes (large, easy),
    ///   15 rubisco (medium), 25 globules (tiny), SNR 0.1 (five times SHREC's, so that a network
    ///   trained for minutes on CPU finds the ribosomes). Under a second; for tests and the demo.
    /// * `demo`: three 128×128×64 tomograms at 10 Å (slab 56, SNR 0.1 as `tiny`): 20 proteasomes
    ///   (medium, ≈ 9 voxels radius), 30 rubisco (≈ 6 voxels), 60 globules (tiny, ≈ 3 voxels)
    ///   each, plus unlabelled look-alikes: 20 scrambled proteasomes (same mass, radius and
    ///   radial profile, another shape) and 8 TRiC (a chaperonin of the proteasome's size). Sized
    ///   so that the demo's CPU training (minutes) identifies every class.
    /// * `shrec-like`: one 512×512×200 tomogram at 10 Å, 208 particles of each of the six
    ///   built-in classes (SHREC'19's count per class), 2 gold beads.
    /// * `hard`: identification, not only detection. Four 128×256×256 tomograms at 10 Å,
    ///   SNR 0.02 (SHREC's): three targets — `ribosome` (large, ≈ 12 voxels radius, 30 per
    ///   tomogram), `proteasome` (medium, ≈ 8 voxels, 60), `globule` (tiny, ≈ 3 voxels, 120) —
    ///   each with as many unlabelled decoys of the same mass, bounding radius and radial density
    ///   profile but another shape (`*_decoy`: the original's shells turned independently), plus
    ///   unlabelled TRiC (a natural look-alike of the proteasome's size) and rubisco for
    ///   crowding. Train on `tomo_000`–`tomo_002`, test on `tomo_003`.
    pub fn preset(name: &str) -> Result<SimConfig, SimError> {
        let base = SimConfig::default();
        let cfg = match name {
            "default" => base,
            "tiny" => SimConfig {
                preset: "tiny".into(),
                shape_zyx: [48, 96, 96],
                voxel_size_a: 20.0,
                slab_thickness_vox: 40,
                classes: vec![
                    ClassSpec::builtin("ribosome", 24),
                    ClassSpec::builtin("rubisco", 15),
                    ClassSpec::builtin("globule", 25),
                ],
                noise: NoiseConfig {
                    enabled: true,
                    snr: 0.1,
                },
                ..base
            },
            "demo" => SimConfig {
                preset: "demo".into(),
                shape_zyx: [64, 128, 128],
                voxel_size_a: 10.0,
                slab_thickness_vox: 56,
                tomograms: 3,
                classes: vec![
                    ClassSpec::builtin("proteasome", 20),
                    ClassSpec::builtin("rubisco", 30),
                    ClassSpec::builtin("globule", 60),
                    ClassSpec::scrambled_decoy("proteasome_decoy", "proteasome", 20),
                    ClassSpec {
                        decoy: true,
                        ..ClassSpec::builtin("tric", 8)
                    },
                ],
                noise: NoiseConfig {
                    enabled: true,
                    snr: 0.1,
                },
                ..base
            },
            "shrec-like" => SimConfig {
                preset: "shrec-like".into(),
                shape_zyx: [200, 512, 512],
                slab_thickness_vox: 200,
                classes: BUILTIN_CLASSES
                    .iter()
                    .map(|n| ClassSpec::builtin(n, 208))
                    .collect(),
                gold: GoldConfig {
                    count: 2,
                    ..GoldConfig::default()
                },
                ..base
            },
            "hard" => SimConfig {
                preset: "hard".into(),
                shape_zyx: [128, 256, 256],
                slab_thickness_vox: 112,
                tomograms: 4,
                classes: vec![
                    ClassSpec::builtin("ribosome", 30),
                    ClassSpec::builtin("proteasome", 60),
                    ClassSpec::builtin("globule", 120),
                    ClassSpec::scrambled_decoy("ribosome_decoy", "ribosome", 30),
                    ClassSpec::scrambled_decoy("proteasome_decoy", "proteasome", 60),
                    ClassSpec::scrambled_decoy("globule_decoy", "globule", 120),
                    ClassSpec {
                        decoy: true,
                        ..ClassSpec::builtin("tric", 20)
                    },
                    ClassSpec {
                        decoy: true,
                        ..ClassSpec::builtin("rubisco", 40)
                    },
                ],
                ..base
            },
            other => {
                return Err(SimError::Config(format!(
                    "unknown preset '{other}' (known: {})",
                    PRESETS.join(", ")
                )))
            }
        };
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;

    #[test]
    fn presets_validate_and_round_trip() {
        for name in PRESETS {
            let cfg = SimConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            let back =
                SimConfig::from_toml_str(&cfg.to_toml_string(), Path::new("x.toml")).unwrap();
            assert_eq!(back, cfg, "{name}");
        }
        assert!(SimConfig::preset("huge")
            .unwrap_err()
            .to_string()
            .contains("unknown preset 'huge'"));
    }
}
