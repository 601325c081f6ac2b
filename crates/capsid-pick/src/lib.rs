//! capsid-pick: from segmentation maps to particle lists.
//!
//! Every picker is a pure function on in-memory volumes ([`capsid_core::Volume`], `[z, y, x]`) and
//! returns [`capsid_core::Particle`]s with positions in voxels of the input map, the class name
//! from the [`capsid_core::ClassTable`] and a score:
//!
//! * [`mean_shift()`] (module [`meanshift`]): DeepFinder's clustering — mean shift with a flat
//!   kernel of radius = bandwidth (as scikit-learn's `MeanShift`), bin seeding, merging of modes
//!   closer than the bandwidth, every voxel assigned to its nearest mode. Per class (bandwidth = the
//!   class radius) or jointly over all foreground (DeepFinder: one bandwidth, cluster label by
//!   majority vote). Optional ×2 binning as DeepFinder. Score = cluster size in voxels of the input.
//! * [`connected_components()`] / [`connected_components_prob()`] (module [`components`]):
//!   DeePiCt's rule — connected voxels of one class (6- or 26-connectivity), min/max size filter,
//!   centroid. Score = size in voxels (label maps) or mean probability (probability maps).
//! * [`nms()`] (module [`nms`]): non-maximum suppression on a probability map: local maxima above a
//!   threshold, strongest first, suppressing others within the class radius. Score = probability.
//!
//! Neighbour queries use the map itself (a dense grid with one voxel per cell) or a uniform hash
//! grid ([`grid::PointGrid`]); work is spread over rayon threads with outputs in a fixed order,
//! so results do not depend on the number of threads.

pub mod components;
pub mod error;
pub mod grid;
pub mod meanshift;
pub mod nms;

pub use components::{
    connected_components, connected_components_prob, ComponentParams, Connectivity,
};
pub use nms::nms;

pub use error::PickError;
pub use meanshift::{bin_label_map, mean_shift, MeanShiftParams};

use capsid_core::{ClassTable, Volume};

/// Radius in voxels of each class of `classes` for a map with `map`'s voxel size, as
/// `(label, name, radius_vox)` in table order.
pub(crate) fn class_radii<T>(map: &Volume<T>, classes: &ClassTable) -> Vec<(u8, String, f64)> {
    let vs = map.voxel_size() as f64;
    classes
        .classes
        .iter()
        .map(|c| (c.label, c.name.clone(), c.radius_voxels(vs)))
        .collect()
}

/// Checks that a size filter is consistent.
pub(crate) fn check_sizes(min_size: usize, max_size: Option<usize>) -> Result<(), PickError> {
    match max_size {
        Some(m) if m < min_size => Err(PickError::Invalid(format!(
            "max cluster size {m} is below min cluster size {min_size}"
        ))),
        _ => Ok(()),
    }
}
