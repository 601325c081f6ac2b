//! [`SimConfig`]: every setting of a simulation, with defaults, presets and validation.
//!
//! A TOML file may give any subset of the fields (the rest keep their defaults); the CLI's flags
//! override the file; the resolved config is written next to the outputs.

use crate::error::SimError;
use crate::imaging::{CtfConfig, WbpConfig};
use crate::library::BUILTIN_CLASSES;
use crate::sample::{GoldConfig, VesicleConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Avogadro's number, for concentrations.
const AVOGADRO: f64 = 6.022_140_76e23;

/// One particle class to simulate: where its density comes from and how many to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// snake_case name used in the class table and particle files.
    pub name: String,
    /// A built-in class (see [`BUILTIN_CLASSES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// An atomic model (PDB or mmCIF, optionally .gz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// A density map (MRC/CCP4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<PathBuf>,
    /// Voxel size (Å) of the map when its header says 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_voxel_size_a: Option<f64>,
    /// A decoy made from another class of this config (named here): the same pseudo-atoms
    /// (or atoms) with each spherical shell about the centre turned by its own random rotation,
    /// so mass, bounding radius and radial density profile stay those of the original while the
    /// shape changes (see [`crate::library::scrambled_blobs`]). Needs a `builtin` or `model`
    /// original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrambled_from: Option<String>,
    /// Shell thickness (Å) of `scrambled_from`; default 8 Å (the pseudo-atom spacing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell_a: Option<f64>,
    /// An unlabelled class: placed in the tomograms but left out of the class table, label map,
    /// occupancy mask and particle lists (its positions go to `decoy_locations.txt` and
    /// `decoys.star` so that evaluation can count decoys picked as targets).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoy: bool,
    /// Particles per tomogram (give this or `concentration_um`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Concentration in µM in the slab (converted to a count per tomogram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concentration_um: Option<f64>,
}

impl ClassSpec {
    /// A built-in class with a count.
    pub fn builtin(name: &str, count: usize) -> Self {
        Self {
            name: name.into(),
            builtin: Some(name.into()),
            model: None,
            map: None,
            map_voxel_size_a: None,
            scrambled_from: None,
            shell_a: None,
            decoy: false,
            count: Some(count),
            concentration_um: None,
        }
    }

    /// An unlabelled decoy of class `original` (shell-scrambled, see
    /// [`ClassSpec::scrambled_from`]) with a count.
    pub fn scrambled_decoy(name: &str, original: &str, count: usize) -> Self {
        Self {
            name: name.into(),
            builtin: None,
            scrambled_from: Some(original.into()),
            decoy: true,
            ..Self::builtin(original, count)
        }
    }
}

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

    /// Reads a TOML config. Fields it omits keep the values of the preset it names
    /// (`preset = "tiny"`), or of [`SimConfig::default`] when it names none.
    pub fn load(path: &Path) -> Result<SimConfig, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML text (see [`SimConfig::load`]); `origin` names the source in errors. Relative
    /// model and map paths are resolved against the file's folder.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<SimConfig, SimError> {
        let err = |message: String| SimError::ConfigFile {
            path: origin.to_path_buf(),
            message,
        };
        let value: toml::Table = toml::from_str(text).map_err(|e| err(e.message().to_string()))?;
        let preset = match value.get("preset") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(err("preset must be a string".into())),
            None => "default".into(),
        };
        let base = SimConfig::preset(&preset).map_err(|e| err(e.to_string()))?;
        let mut merged = toml::Value::try_from(&base).map_err(|e| err(e.to_string()))?;
        if let toml::Value::Table(t) = &mut merged {
            merge_tables(t, value);
        }
        let mut cfg: SimConfig = merged
            .try_into()
            .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
        let dir = origin.parent().unwrap_or(Path::new(""));
        for c in &mut cfg.classes {
            for p in [&mut c.model, &mut c.map].into_iter().flatten() {
                if p.is_relative() && !dir.as_os_str().is_empty() {
                    *p = dir.join(&*p);
                }
            }
        }
        cfg.validate().map_err(|e| match e {
            SimError::Config(m) => err(m),
            other => other,
        })?;
        Ok(cfg)
    }

    /// The config as TOML text.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

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

    /// Checks every field; the error says which one and why.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        let [nz, ny, nx] = self.shape_zyx;
        if nz < 4 || ny < 8 || nx < 8 {
            return bad(format!(
                "shape_zyx {:?} is too small (at least 4 × 8 × 8)",
                self.shape_zyx
            ));
        }
        if nz * ny * nx > 1 << 31 {
            return bad(format!(
                "shape_zyx {:?} has more than 2^31 voxels",
                self.shape_zyx
            ));
        }
        if !(self.voxel_size_a > 0.0 && self.voxel_size_a.is_finite()) {
            return bad(format!(
                "voxel_size_a must be positive, got {}",
                self.voxel_size_a
            ));
        }
        if self.slab_thickness_vox == 0 || self.slab_thickness_vox > nz {
            return bad(format!(
                "slab_thickness_vox must be 1..={nz} (the tomogram's z size), got {}",
                self.slab_thickness_vox
            ));
        }
        if !(0.0..=1.0).contains(&self.solvent_density) {
            return bad(format!(
                "solvent_density must be in 0..1 (protein = 1), got {}",
                self.solvent_density
            ));
        }
        if self.tomograms == 0 || self.tomograms > 10_000 {
            return bad(format!(
                "tomograms must be 1..=10000, got {}",
                self.tomograms
            ));
        }
        if !(self.resolution_a >= 0.0 && self.resolution_a.is_finite()) {
            return bad(format!(
                "resolution_a must be ≥ 0, got {}",
                self.resolution_a
            ));
        }
        if !(self.mask_fraction > 0.0 && self.mask_fraction < 1.0) {
            return bad(format!(
                "mask_fraction must be in (0, 1), got {}",
                self.mask_fraction
            ));
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1".into());
        }
        if self.classes.is_empty() {
            return bad("no [[class]] given".into());
        }
        if self.classes.len() > 255 {
            return bad("at most 255 classes".into());
        }
        if self.classes.iter().all(|c| c.decoy) {
            return bad("every class is a decoy: at least one labelled class is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.classes {
            if c.name.is_empty() || c.name.chars().any(|ch| ch.is_whitespace() || ch == ',') {
                return bad(format!(
                    "class name '{}' must be non-empty without spaces or commas",
                    c.name
                ));
            }
            if !names.insert(c.name.as_str()) {
                return bad(format!("class name '{}' appears twice", c.name));
            }
            let sources = [
                c.builtin.is_some(),
                c.model.is_some(),
                c.map.is_some(),
                c.scrambled_from.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if sources != 1 {
                return bad(format!(
                    "class '{}': give exactly one of builtin, model, map, scrambled_from",
                    c.name
                ));
            }
            if let Some(o) = &c.scrambled_from {
                match self.classes.iter().find(|d| &d.name == o) {
                    Some(d) if d.builtin.is_some() || d.model.is_some() => {}
                    Some(_) => {
                        return bad(format!(
                            "class '{}': scrambled_from '{o}' must name a builtin or model class",
                            c.name
                        ))
                    }
                    None => {
                        return bad(format!(
                            "class '{}': scrambled_from names no class '{o}' of this config",
                            c.name
                        ))
                    }
                }
            }
            if let Some(t) = c.shell_a {
                if !(t > 0.0 && t.is_finite()) {
                    return bad(format!(
                        "class '{}': shell_a must be positive, got {t}",
                        c.name
                    ));
                }
            }
            if let Some(b) = &c.builtin {
                if !BUILTIN_CLASSES.contains(&b.as_str()) {
                    return bad(format!(
                        "class '{}': unknown built-in '{b}' (known: {})",
                        c.name,
                        BUILTIN_CLASSES.join(", ")
                    ));
                }
            }
            match (c.count, c.concentration_um) {
                (Some(_), Some(_)) => {
                    return bad(format!(
                        "class '{}': give count or concentration_um, not both",
                        c.name
                    ))
                }
                (None, None) => {
                    return bad(format!(
                        "class '{}': count or concentration_um is missing",
                        c.name
                    ))
                }
                (None, Some(u)) if !(u >= 0.0 && u.is_finite()) => {
                    return bad(format!(
                        "class '{}': concentration_um must be ≥ 0, got {u}",
                        c.name
                    ))
                }
                _ => {}
            }
            if let Some(v) = c.map_voxel_size_a {
                if !(v > 0.0 && v.is_finite()) {
                    return bad(format!(
                        "class '{}': map_voxel_size_a must be positive, got {v}",
                        c.name
                    ));
                }
            }
        }
        let t = &self.tilt;
        if !(t.step_deg > 0.0 && t.min_deg <= t.max_deg && t.min_deg > -90.0 && t.max_deg < 90.0) {
            return bad(format!(
                "tilt range {}..{} step {} must lie within (-90, 90) with min ≤ max and step > 0",
                t.min_deg, t.max_deg, t.step_deg
            ));
        }
        if (t.max_deg - t.min_deg) / t.step_deg > 1000.0 {
            return bad("more than 1000 tilts".into());
        }
        let c = &self.ctf;
        if c.enabled
            && !(c.defocus_um.is_finite()
                && c.voltage_kv > 0.0
                && c.cs_mm >= 0.0
                && (0.0..1.0).contains(&c.amplitude_contrast)
                && c.bfactor_a2 >= 0.0)
        {
            return bad(
                "ctf: voltage_kv > 0, cs_mm ≥ 0, amplitude_contrast in [0, 1), bfactor_a2 ≥ 0"
                    .into(),
            );
        }
        if self.noise.enabled && !(self.noise.snr > 0.0 && self.noise.snr.is_finite()) {
            return bad(format!(
                "noise.snr must be positive, got {}",
                self.noise.snr
            ));
        }
        let r = &self.reconstruction;
        if !(r.radial_cutoff > 0.0 && r.radial_cutoff <= 0.5 && r.radial_falloff >= 0.0) {
            return bad(
                "reconstruction.radial_cutoff must be in (0, 0.5], radial_falloff ≥ 0".into(),
            );
        }
        let v = &self.vesicles;
        if v.count > 0 && !(v.radius_min_a > 0.0 && v.radius_min_a <= v.radius_max_a) {
            return bad("vesicles: 0 < radius_min_a ≤ radius_max_a".into());
        }
        let g = &self.gold;
        if g.count > 0 && !(g.radius_a > 0.0 && g.density > 0.0) {
            return bad("gold: radius_a and density must be positive".into());
        }
        Ok(())
    }
}

/// Overwrites `base` with `over`, recursing into tables (arrays such as `class` are replaced).
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn file_overrides_its_preset() {
        let cfg = SimConfig::from_toml_str(
            "preset = 'tiny'\nseed = 9\n[noise]\nsnr = 0.1\n",
            Path::new("a.toml"),
        )
        .unwrap();
        assert_eq!(cfg.shape_zyx, [48, 96, 96]);
        assert_eq!(cfg.seed, 9);
        assert_eq!(cfg.noise.snr, 0.1);
        assert!(cfg.noise.enabled);
    }

    #[test]
    fn bad_configs_name_file_and_field() {
        for (text, needle) in [
            ("slab_thickness_vox = 0", "slab_thickness_vox"),
            ("colour = 1", "unknown field"),
            (
                "[[class]]\nname = 'a'\nbuiltin = 'ribosome'\nmodel = 'x.pdb'\ncount = 1",
                "exactly one",
            ),
            (
                "[[class]]\nname = 'a'\nbuiltin = 'ribosome'",
                "count or concentration_um",
            ),
            ("[tilt]\nmin_deg = -95.0", "tilt range"),
            ("[noise]\nsnr = 0.0", "snr"),
        ] {
            let e = SimConfig::from_toml_str(text, Path::new("bad.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("bad.toml") && e.contains(needle), "{text}: {e}");
        }
    }

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
