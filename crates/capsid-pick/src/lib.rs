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
//! * [`peaks()`] (module [`peaks`]): the same on the probability map smoothed over a
//!   particle-sized Gaussian (σ = half the class radius by default), so that a particle outranks
//!   a one-voxel speck. Score = smoothed probability.
//!
//! * [`stage`]: the stage on files ([`stage::PickRequest`] → [`stage::PickPlan`] → picks
//!   written with their record), for `capsid pick`.
//! * [`settings`]: [`PickSettings`], per-class minimum cluster sizes chosen on labelled data by
//!   `capsid train` and saved with the model.
//!
//! Neighbour queries use the map itself (a dense grid with one voxel per cell) or a uniform hash
//! grid ([`grid::PointGrid`]); work is spread over rayon threads with outputs in a fixed order,
//! so results do not depend on the number of threads.
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod components;
pub mod error;
pub mod grid;
pub mod meanshift;
pub mod nms;
pub mod peaks;
pub mod settings;
pub mod stage;

pub use components::{
    connected_components, connected_components_prob, ComponentParams, Connectivity,
};
pub use nms::nms;
pub use peaks::{peaks, PEAK_SIGMA_FRACTION};

pub use error::PickError;
pub use meanshift::{bin_label_map, mean_shift, MeanShiftParams};
pub use settings::{ClassPickSettings, PickSettings, TunedMethod};

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

/// Volume in voxels of a sphere of `radius_vox` voxels: `4/3·π·r³`.
pub fn sphere_volume_vox(radius_vox: f64) -> f64 {
    4.0 / 3.0 * std::f64::consts::PI * radius_vox.powi(3)
}

/// Keeps the picks whose cluster size (their `score`, in voxels of the picked map) is at least
/// `fraction` × the volume of their class's sphere (radius from `classes` at `voxel_size_a` Å
/// per voxel). A per-class size filter: a fraction of 0.1 drops the specks of a few voxels that
/// noise leaves in a label map without dropping small classes whole. Picks without a score, or of
/// a class not in the table, are kept.
pub fn filter_by_class_volume(
    picks: Vec<capsid_core::Particle>,
    classes: &ClassTable,
    voxel_size_a: f64,
    fraction: f64,
) -> Vec<capsid_core::Particle> {
    filter_by_class_fraction(picks, classes, voxel_size_a, |_| fraction)
}

/// [`filter_by_class_volume`] with a fraction per class: `fraction(class name)`.
pub fn filter_by_class_fraction(
    picks: Vec<capsid_core::Particle>,
    classes: &ClassTable,
    voxel_size_a: f64,
    fraction: impl Fn(&str) -> f64,
) -> Vec<capsid_core::Particle> {
    picks
        .into_iter()
        .filter(|p| {
            let (Some(size), Some(def)) =
                (p.score, classes.classes.iter().find(|c| c.name == p.class))
            else {
                return true;
            };
            size >= fraction(&p.class) * sphere_volume_vox(def.radius_voxels(voxel_size_a))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::Particle;

    #[test]
    fn class_volume_filter_is_per_class() {
        let table = ClassTable::from_toml_str(
            "[[class]]\nname = \"big\"\nlabel = 1\nradius_vox = 10.0\n\
             [[class]]\nname = \"small\"\nlabel = 2\nradius_vox = 2.0\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap();
        let pick = |class: &str, size: f64| {
            let mut p = Particle::new(class, 1.0, 2.0, 3.0);
            p.score = Some(size);
            p
        };
        // big: 0.1 × 4188.8 = 418.9 voxels; small: 0.1 × 33.5 = 3.35 voxels.
        let kept = filter_by_class_volume(
            vec![
                pick("big", 400.0),
                pick("big", 420.0),
                pick("small", 3.0),
                pick("small", 4.0),
                Particle::new("small", 0.0, 0.0, 0.0),
            ],
            &table,
            10.0,
            0.1,
        );
        let sizes: Vec<(String, Option<f64>)> =
            kept.iter().map(|p| (p.class.clone(), p.score)).collect();
        assert_eq!(
            sizes,
            vec![
                ("big".to_string(), Some(420.0)),
                ("small".to_string(), Some(4.0)),
                ("small".to_string(), None)
            ]
        );
    }
}
