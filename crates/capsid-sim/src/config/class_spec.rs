//! [`ClassSpec`]: one particle class of a config, where its density comes from and how many.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One particle class to simulate: where its density comes from and how many to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// snake_case name used in the class table and particle files.
    pub name: String,
    /// A built-in class (see [`BUILTIN_CLASSES`](crate::library::BUILTIN_CLASSES)).
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
