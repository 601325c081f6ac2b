//! [`PickSettings`]: the picking settings a trained model recommends, chosen on labelled data by
//! `capsid train` and saved in the run folder as [`PickSettings::FILE`]; `capsid pick` uses them
//! by default for label maps segmented with that model (flags given on the command line win).
//!
//! Each class is picked by the method that scored best on the tuning data: mean shift of the
//! label map with a minimum cluster size, or [`crate::peaks()`] of its probability map with a
//! minimum score. Files written before the method was recorded mean mean shift.

use crate::PickError;
use capsid_core::{ClassTable, Particle};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a class is picked by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunedMethod {
    /// Mean shift of the label map, clusters of at least `min_fraction` × the sphere volume.
    #[default]
    Meanshift,
    /// [`crate::peaks()`] of the class's probability map, peaks scoring at least `min_score`.
    Peaks,
}

/// The tuned picking settings of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPickSettings {
    /// Class name (as in the run's class table).
    pub name: String,
    /// The method that scored best on the tuning data.
    #[serde(default)]
    pub method: TunedMethod,
    /// Mean shift: keep clusters of at least this fraction of the class's sphere volume.
    pub min_fraction: f64,
    /// Peaks: keep peaks whose smoothed probability is at least this (0 to 1).
    #[serde(default)]
    pub min_score: f64,
    /// Peaks: Gaussian σ as a fraction of the class radius.
    #[serde(default = "default_sigma_fraction")]
    pub sigma_fraction: f64,
    /// Strict F1, precision and recall on the tuning data at that setting (informative).
    #[serde(default)]
    pub tuning_f1: f64,
    #[serde(default)]
    pub tuning_precision: f64,
    #[serde(default)]
    pub tuning_recall: f64,
}

fn default_sigma_fraction() -> f64 {
    crate::PEAK_SIGMA_FRACTION
}

/// The picking settings recommended for a model's label maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickSettings {
    /// capsid version that chose them.
    pub capsid_version: String,
    /// What they were chosen on (tomograms, truth, tolerance).
    pub tuned_on: String,
    /// Per class, in class-table order.
    #[serde(rename = "class")]
    pub classes: Vec<ClassPickSettings>,
}

impl PickSettings {
    /// File name in a run folder.
    pub const FILE: &'static str = "pick_settings.toml";

    /// Reads a settings file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, PickError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PickError::Invalid(format!("{}: {e}", path.display())))?;
        let s: PickSettings = toml::from_str(&text)
            .map_err(|e| PickError::Invalid(format!("{}: {}", path.display(), e.message())))?;
        for c in &s.classes {
            if !(c.min_fraction >= 0.0 && c.min_fraction.is_finite()) {
                return Err(PickError::Invalid(format!(
                    "{}: class '{}': min_fraction must be ≥ 0, got {}",
                    path.display(),
                    c.name,
                    c.min_fraction
                )));
            }
            if !(c.min_score.is_finite() && c.sigma_fraction >= 0.0 && c.sigma_fraction.is_finite())
            {
                return Err(PickError::Invalid(format!(
                    "{}: class '{}': min_score must be finite and sigma_fraction ≥ 0, got {} and {}",
                    path.display(),
                    c.name,
                    c.min_score,
                    c.sigma_fraction
                )));
            }
        }
        Ok(s)
    }

    /// The settings as TOML text.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The settings of `class`, if named.
    pub fn class(&self, class: &str) -> Option<&ClassPickSettings> {
        self.classes.iter().find(|c| c.name == class)
    }

    /// The classes picked by [`TunedMethod::Peaks`] (of their probability maps).
    pub fn peak_classes(&self) -> impl Iterator<Item = &ClassPickSettings> {
        self.classes
            .iter()
            .filter(|c| c.method == TunedMethod::Peaks)
    }

    /// The minimum-size fraction of `class` (0 when the settings do not name it).
    pub fn min_fraction(&self, class: &str) -> f64 {
        self.classes
            .iter()
            .find(|c| c.name == class)
            .map_or(0.0, |c| c.min_fraction)
    }

    /// Keeps the picks whose cluster size (score, voxels) is at least their class's
    /// `min_fraction` × its sphere volume (see [`crate::filter_by_class_volume`]).
    pub fn filter(
        &self,
        picks: Vec<Particle>,
        classes: &ClassTable,
        voxel_size_a: f64,
    ) -> Vec<Particle> {
        crate::filter_by_class_fraction(picks, classes, voxel_size_a, |c| self.min_fraction(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_filters_per_class() {
        let s = PickSettings {
            capsid_version: "x".into(),
            tuned_on: "t".into(),
            classes: vec![
                ClassPickSettings {
                    name: "big".into(),
                    method: TunedMethod::Meanshift,
                    min_fraction: 0.5,
                    min_score: 0.0,
                    sigma_fraction: 0.5,
                    tuning_f1: 0.9,
                    tuning_precision: 1.0,
                    tuning_recall: 0.8,
                },
                ClassPickSettings {
                    name: "small".into(),
                    method: TunedMethod::Peaks,
                    min_fraction: 0.0,
                    min_score: 0.7,
                    sigma_fraction: 0.5,
                    tuning_f1: 0.0,
                    tuning_precision: 0.0,
                    tuning_recall: 0.0,
                },
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PickSettings::FILE);
        std::fs::write(&path, s.to_toml_string()).unwrap();
        assert_eq!(PickSettings::load(&path).unwrap(), s);
        let peak: Vec<&str> = s.peak_classes().map(|c| c.name.as_str()).collect();
        assert_eq!(peak, ["small"]);
        let table = ClassTable::from_toml_str(
            "[[class]]\nname = \"big\"\nlabel = 1\nradius_vox = 10.0\n\
             [[class]]\nname = \"small\"\nlabel = 2\nradius_vox = 2.0\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let pick = |class: &str, size: f64| {
            let mut p = Particle::new(class, 1.0, 2.0, 3.0);
            p.score = Some(size);
            p
        };
        // big: 0.5 × 4188.8 = 2094 voxels.
        let kept = s.filter(
            vec![pick("big", 2000.0), pick("big", 2100.0), pick("small", 1.0)],
            &table,
            1.0,
        );
        assert_eq!(kept.len(), 2);
        // A file from before methods were recorded means mean shift, σ at its default.
        std::fs::write(&path, "capsid_version = \"x\"\ntuned_on = \"t\"\n[[class]]\nname = \"a\"\nmin_fraction = 0.2\n").unwrap();
        let old = PickSettings::load(&path).unwrap();
        assert_eq!(old.classes[0].method, TunedMethod::Meanshift);
        assert_eq!(old.classes[0].sigma_fraction, crate::PEAK_SIGMA_FRACTION);
        std::fs::write(&path, "capsid_version = \"x\"\ntuned_on = \"t\"\n[[class]]\nname = \"a\"\nmin_fraction = -1\n").unwrap();
        let e = PickSettings::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("pick_settings.toml") && e.contains("min_fraction"),
            "{e}"
        );
    }
}
