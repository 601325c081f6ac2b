//! The class table: which particle classes a project knows, their labels and sizes.
//!
//! Stored as TOML, shared by every stage:
//!
//! ```toml
//! [[class]]
//! name = "ribosome"
//! label = 1
//! radius_a = 130.0          # or radius_vox = 13.0
//! template = "ribosome.mrc" # optional density map (MRC)
//! ```
//!
//! Label 0 is background; classes carry labels 1..=255, each used once.

use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A particle radius, in Å or in voxels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Radius {
    Angstrom(f64),
    Voxels(f64),
}

impl Radius {
    /// The radius in voxels of a tomogram with voxel size `voxel_size_a` (Å).
    pub fn to_voxels(self, voxel_size_a: f64) -> f64 {
        match self {
            Radius::Voxels(v) => v,
            Radius::Angstrom(a) if voxel_size_a > 0.0 => a / voxel_size_a,
            Radius::Angstrom(a) => a,
        }
    }
}

/// One class of particle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassDef {
    /// snake_case name used in particle files.
    pub name: String,
    /// Label in label maps (1..=255).
    pub label: u8,
    /// Radius in Å (give this or `radius_vox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_a: Option<f64>,
    /// Radius in voxels (give this or `radius_a`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_vox: Option<f64>,
    /// Optional template density map (MRC), relative to the class table's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PathBuf>,
    /// Point-group symmetry of the particle (`C1`, `C7`, `D6`, `T`, `O`, `I`; see
    /// [`crate::symmetry`]); absent = `C1`. Used by template matching to shrink the search and by
    /// `capsid evaluate` to measure angular errors modulo the symmetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetry: Option<crate::Symmetry>,
}

impl ClassDef {
    /// The radius as given (Å preferred when both are present).
    pub fn radius(&self) -> Radius {
        match (self.radius_a, self.radius_vox) {
            (Some(a), _) => Radius::Angstrom(a),
            (None, Some(v)) => Radius::Voxels(v),
            (None, None) => Radius::Voxels(0.0),
        }
    }

    /// Radius in voxels for a tomogram of voxel size `voxel_size_a` (Å).
    pub fn radius_voxels(&self, voxel_size_a: f64) -> f64 {
        self.radius().to_voxels(voxel_size_a)
    }
}

/// All classes of a project, in label order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassTable {
    #[serde(rename = "class", default)]
    pub classes: Vec<ClassDef>,
}

impl ClassTable {
    /// Parses TOML text; `origin` names the file in error messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, CoreError> {
        let table: ClassTable = toml::from_str(text).map_err(|e| CoreError::ClassTable {
            path: origin.to_path_buf(),
            message: e.message().to_string(),
        })?;
        table.validate().map_err(|message| CoreError::ClassTable {
            path: origin.to_path_buf(),
            message,
        })?;
        Ok(table)
    }

    /// Reads and validates a class table file. Relative template paths are resolved against the
    /// file's folder.
    pub fn load(path: &Path) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut table = Self::from_toml_str(&text, path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for c in &mut table.classes {
            if let Some(t) = &c.template {
                if t.is_relative() {
                    c.template = Some(dir.join(t));
                }
            }
        }
        Ok(table)
    }

    /// The table as TOML text.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks names (non-empty, no whitespace, no path separators or `..`, unique), labels (1..=255, unique) and radii
    /// (exactly one of `radius_a`/`radius_vox`, positive). Returns a message on failure.
    pub fn validate(&self) -> Result<(), String> {
        if self.classes.is_empty() {
            return Err("no [[class]] entries".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut labels = std::collections::HashSet::new();
        for c in &self.classes {
            if c.name.is_empty() || c.name.chars().any(char::is_whitespace) {
                return Err(format!(
                    "class name '{}' must be non-empty without spaces",
                    c.name
                ));
            }
            // Class names become file names (`<tomo>_prob_<class>.mrc`, `{class}` outputs).
            crate::guard::check_file_name_part("class name", &c.name).map_err(|e| e.to_string())?;
            if !names.insert(c.name.as_str()) {
                return Err(format!("class name '{}' appears twice", c.name));
            }
            if c.label == 0 {
                return Err(format!(
                    "class '{}': label 0 is reserved for background",
                    c.name
                ));
            }
            if !labels.insert(c.label) {
                return Err(format!("label {} is used twice", c.label));
            }
            match (c.radius_a, c.radius_vox) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "class '{}': give radius_a or radius_vox, not both",
                        c.name
                    ))
                }
                (None, None) => {
                    return Err(format!(
                        "class '{}': radius_a or radius_vox is missing",
                        c.name
                    ))
                }
                (Some(r), None) | (None, Some(r)) if !(r > 0.0 && r.is_finite()) => {
                    return Err(format!(
                        "class '{}': radius must be positive, got {r}",
                        c.name
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The class called `name`.
    pub fn get(&self, name: &str) -> Result<&ClassDef, CoreError> {
        self.classes
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| CoreError::UnknownClass {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The class with label `label`, if any.
    pub fn by_label(&self, label: u8) -> Option<&ClassDef> {
        self.classes.iter().find(|c| c.label == label)
    }

    /// Class names in table order.
    pub fn names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// The largest label in the table (the number of output classes minus background when labels
    /// are 1..=N).
    pub fn max_label(&self) -> u8 {
        self.classes.iter().map(|c| c.label).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[class]]
name = "ribosome"
label = 1
radius_a = 120.0

[[class]]
name = "tiny"
label = 2
radius_vox = 3
"#;

    #[test]
    fn parses_and_converts_radii() {
        let t = ClassTable::from_toml_str(GOOD, Path::new("c.toml")).unwrap();
        assert_eq!(t.classes.len(), 2);
        assert!((t.get("ribosome").unwrap().radius_voxels(10.0) - 12.0).abs() < 1e-12);
        assert!((t.get("tiny").unwrap().radius_voxels(10.0) - 3.0).abs() < 1e-12);
        assert_eq!(t.by_label(2).unwrap().name, "tiny");
        let again = ClassTable::from_toml_str(&t.to_toml_string(), Path::new("x")).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn rejects_bad_tables() {
        for (text, needle) in [
            ("", "no [[class]]"),
            ("[[class]]\nname='a'\nlabel=0\nradius_a=1.0", "reserved"),
            ("[[class]]\nname='a'\nlabel=1\n", "missing"),
            ("[[class]]\nname='a'\nlabel=1\nradius_a=1.0\n[[class]]\nname='a'\nlabel=2\nradius_a=1.0", "twice"),
            ("[[class]]\nname='a'\nlabel=1\nradius_a=-1.0", "positive"),
            ("[[class]]\nname='a'\nlabel=1\nradius_a=1.0\ncolour='red'", "unknown field"),
        ] {
            let e = ClassTable::from_toml_str(text, Path::new("t.toml")).unwrap_err().to_string();
            assert!(e.contains("t.toml") && e.contains(needle), "{e}");
        }
        let t = ClassTable::from_toml_str(GOOD, Path::new("c.toml")).unwrap();
        assert!(t
            .get("nope")
            .unwrap_err()
            .to_string()
            .contains("unknown class 'nope'"));
    }
}
