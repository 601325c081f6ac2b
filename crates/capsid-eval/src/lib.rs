//! capsid-eval: how good are the picks and the segmentations?
//!
//! * [`matching`]: one-to-one distance matching of picks to ground-truth particles per class
//!   (greedy by ascending distance, tolerance = a fraction of the class radius; 1.0 by default,
//!   0.5 as the CZII rule), picks outside the volume counted as false positives, and the
//!   classification [`ConfusionMatrix`] from class-blind matching.
//! * [`czii`]: the CZII challenge's rule ([`MatchRule::Czii`]): a particle is found when any pick
//!   of its class in its tomogram lies within 0.5 × radius (set-based), FP = picks − TP, counts
//!   summed over tomograms before F-beta (β = 4), weighted mean over classes ([`czii_score`]).
//! * [`decoys`]: identification: false picks by where they lie (decoy, other class, own class,
//!   background) and the share of look-alike decoys picked as targets.
//! * [`hitbox`]: the SHREC rule: each pick is looked up in the occupancy (instance) map.
//! * [`orientation`]: angular errors of the matched picks whose pick and true particle both carry
//!   Euler angles (any convention), modulo the class's point-group symmetry (class table
//!   `symmetry`, default C1): per class the number of pairs, median and 90th percentile
//!   (nearest rank), in `summary.json` as `classes[i].orientation`.
//! * [`threshold`]: a minimum pick score per class chosen for the best strict F1 on a tomogram
//!   whose truth is known (e.g. the template-matching score of `capsid orient --tune-with`).
//! * [`metrics`]: [`Counts`] → precision, recall, F1 and F-beta (CZII: β = 4).
//! * [`voxel`]: voxel-level Dice/precision/recall of a label map against the true label map, and
//!   precision–recall curves with average precision (AUPRC) from probability maps (histogram of
//!   1000 bins: O(N) in the number of voxels).
//! * [`report`]: [`EvaluationReport`], the serde struct written as `eval/summary.json`, and its
//!   text table.
//! * [`stage`]: the evaluation stage on files ([`EvaluateRequest`]): reads picks, truth, decoys
//!   and maps with capsid-io, checks their grids, evaluates, and writes the evaluation folder
//!   (`summary.json`, `summary.txt`, `config.toml`); what `capsid evaluate` runs.
//!
//! Main entry point on files: [`EvaluateRequest`]. In memory: [`evaluate_picks`], then optionally
//! [`hitbox::hitbox`], [`voxel::voxel_scores`] and [`voxel::pr_curve`] whose results go into the
//! report's fields.
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod czii;
pub mod decoys;
pub mod error;
pub mod hitbox;
pub mod matching;
pub mod metrics;
pub mod orientation;
pub mod report;
pub mod stage;
pub mod threshold;
pub mod tune;
pub mod voxel;

pub use czii::{czii_score, CziiClass, CziiCounts, CziiReport};
pub use decoys::{decoy_report, DecoyReport};
pub use error::EvalError;
pub use hitbox::{hitbox, HitboxReport};
pub use matching::{ConfusionMatrix, EvalParams, MatchRule};
pub use metrics::Counts;
pub use orientation::OrientationScores;
pub use report::{evaluate_picks, ClassScores, EvaluationReport, MacroScores, TomogramScores};
pub use stage::EvaluateRequest;
pub use tune::{tune_min_fraction, tune_min_score, TunedThreshold};
pub use voxel::{pr_curve, voxel_scores, PrCurve, PrPoint, VoxelScores};

/// A class table for tests: classes named and with radii in voxels as given, labels 1, 2, … in
/// order.
#[cfg(test)]
pub(crate) fn test_table(entries: &[(&str, f64)]) -> capsid_core::ClassTable {
    capsid_core::ClassTable {
        classes: entries
            .iter()
            .enumerate()
            .map(|(i, (n, r))| capsid_core::ClassDef {
                name: n.to_string(),
                label: (i + 1) as u8,
                radius_a: None,
                radius_vox: Some(*r),
                template: None,
                symmetry: None,
            })
            .collect(),
    }
}
