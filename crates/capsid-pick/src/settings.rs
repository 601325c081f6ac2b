//! [`PickSettings`]: the picking settings a trained model recommends, chosen on labelled data by
//! `capsid train` and saved in the run folder as [`PickSettings::FILE`]; `capsid pick` uses them
//! by default for label maps segmented with that model (flags given on the command line win).

use crate::PickError;
use capsid_core::{ClassTable, Particle};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The tuned picking settings of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPickSettings {
    /// Class name (as in the run's class table).
    pub name: String,
    /// Keep mean-shift clusters of at least this fraction of the class's sphere volume.
    pub min_fraction: f64,
    /// Strict F1, precision and recall on the tuning data at that setting (informative).
    #[serde(default)]
    pub tuning_f1: f64,
    #[serde(default)]
    pub tuning_precision: f64,
    #[serde(default)]
    pub tuning_recall: f64,
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
        }
        Ok(s)
    }

    /// The settings as TOML text.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
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
                    min_fraction: 0.5,
                    tuning_f1: 0.9,
                    tuning_precision: 1.0,
                    tuning_recall: 0.8,
                },
                ClassPickSettings {
                    name: "small".into(),
                    min_fraction: 0.0,
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
        std::fs::write(&path, "capsid_version = \"x\"\ntuned_on = \"t\"\n[[class]]\nname = \"a\"\nmin_fraction = -1\n").unwrap();
        let e = PickSettings::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("pick_settings.toml") && e.contains("min_fraction"),
            "{e}"
        );
    }
}
