//! The particle library: built-in classes made of pseudo-atoms, and classes from atomic models
//! (PDB/mmCIF) or density maps (MRC), all turned into [`ClassModel`] templates at the simulation's
//! voxel size.
//!
//! Built-in classes (sizes are the longest extent of the rendered envelope):
//!
//! | name | shape | size |
//! |---|---|---|
//! | `ribosome` | asymmetric two-lobe particle: a large and a small subunit, two stalks | ≈ 25 nm |
//! | `proteasome` | barrel of four stacked 7-fold rings | ≈ 15 × 11 nm |
//! | `tric` | double 8-fold ring of elongated subunits (close to `proteasome` on purpose) | ≈ 15 × 15 nm |
//! | `rubisco` | cube of 8 large subunits capped by 8 small ones (L8S8) | ≈ 11 nm |
//! | `filament` | fragment of a two-start helical filament, 9 subunits | ≈ 26 × 7 nm |
//! | `globule` | small asymmetric globule (3GL1-like) | ≈ 5 nm |

mod builtin;
mod decoy;
mod map;
mod model;

pub use builtin::{builtin_blobs, builtin_class, BUILTIN_CLASSES};
pub use decoy::scrambled_blobs;
pub use map::{map_class, resample_to_cube};
pub use model::{atom_weight_a3, model_blobs, model_class, pdb_atom_records};

use crate::density::{box_side_for, render_blobs, trilinear, Blob};
use crate::error::SimError;
use capsid_core::Rotation;
use ndarray::Array3;

/// One particle class ready to place: a density template and the threshold that defines its mask.
#[derive(Debug, Clone)]
pub struct ClassModel {
    /// snake_case class name (as in the class table and particle files).
    pub name: String,
    /// Where it came from: `builtin:ribosome`, `model:path`, `map:path`.
    pub source: String,
    /// Template density `[z, y, x]`, a cube of odd side; the particle centre is voxel `(n-1)/2`.
    /// Units: protein fill (1.0 = voxel full of protein); maps are scaled to a maximum of 1.
    pub density: Array3<f32>,
    /// Voxel size of the template in Å (= the tomogram's).
    pub voxel_size_a: f64,
    /// Density at or above which a voxel belongs to the particle's mask.
    pub mask_threshold: f32,
    /// An unlabelled class (see [`crate::ClassSpec::decoy`]).
    pub decoy: bool,
}

impl ClassModel {
    /// Wraps a template; `mask_fraction` of its maximum becomes the mask threshold.
    pub fn new(
        name: &str,
        source: String,
        density: Array3<f32>,
        voxel_size_a: f64,
        mask_fraction: f64,
    ) -> Self {
        let max = density.iter().cloned().fold(0.0f32, f32::max);
        Self {
            name: name.into(),
            source,
            density,
            voxel_size_a,
            mask_threshold: max * mask_fraction as f32,
            decoy: false,
        }
    }

    /// The same class marked unlabelled (`decoy = true`) or labelled.
    pub fn with_decoy(mut self, decoy: bool) -> Self {
        self.decoy = decoy;
        self
    }

    /// Side of the template cube in voxels.
    pub fn side(&self) -> usize {
        self.density.dim().0
    }

    /// Half the side: the template centre index.
    pub fn half(&self) -> usize {
        (self.side() - 1) / 2
    }

    /// Number of voxels in the (unrotated) mask.
    pub fn mask_voxels(&self) -> usize {
        self.density
            .iter()
            .filter(|&&v| v >= self.mask_threshold)
            .count()
    }

    /// Radius in Å of the sphere about the centre that holds the whole mask (the largest distance
    /// of a mask voxel centre from the template centre, plus half a voxel).
    pub fn radius_a(&self) -> f64 {
        let c = self.half() as f64;
        let mut r2 = 0.0f64;
        for ((z, y, x), &v) in self.density.indexed_iter() {
            if v >= self.mask_threshold {
                let d = (x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2);
                r2 = r2.max(d);
            }
        }
        (r2.sqrt() + 0.5) * self.voxel_size_a
    }

    /// The template turned by `rot` (template → tomogram), sampled trilinearly on the same grid:
    /// voxel `p` takes the template value at `Rᵀ (p - c) + c`.
    pub fn rotated(&self, rot: &Rotation) -> Array3<f32> {
        let n = self.side();
        let c = self.half() as f64;
        let rt = rot.transpose();
        Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let q = rt.apply([x as f64 - c, y as f64 - c, z as f64 - c]);
            trilinear(&self.density, q[0] + c, q[1] + c, q[2] + c)
        })
    }
}

/// The pseudo-atoms (built-in) or atoms (model) of a class spec, centred; `None` for a map or
/// scrambled class.
pub fn spec_blobs(spec: &crate::ClassSpec) -> Option<Result<Vec<Blob>, SimError>> {
    if let Some(b) = &spec.builtin {
        Some(builtin_blobs(b).ok_or_else(|| {
            SimError::Config(format!(
                "unknown built-in class '{b}' (known: {})",
                BUILTIN_CLASSES.join(", ")
            ))
        }))
    } else {
        spec.model.as_ref().map(|p| model_blobs(p))
    }
}

/// A class rendered from blobs at `voxel_size_a` and `resolution_a`.
pub fn blob_class(
    class_name: &str,
    source: String,
    blobs: &[Blob],
    voxel_size_a: f64,
    resolution_a: f64,
    mask_fraction: f64,
) -> ClassModel {
    let n = box_side_for(blobs, voxel_size_a, resolution_a);
    let density = render_blobs(blobs, n, voxel_size_a, resolution_a);
    ClassModel::new(class_name, source, density, voxel_size_a, mask_fraction)
}
