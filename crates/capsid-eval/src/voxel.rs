//! Voxel-level scores: label map vs true label map, and precision–recall curves from
//! probability maps.
//!
//! PR curves use a histogram of the probabilities (`n_bins` equal bins over [0, 1]; values are
//! clamped to [0, 1], NaN counts as 0), so one pass over the volume suffices (O(N), parallel over
//! z planes with integer counts: the result does not depend on the thread count). Thresholds are
//! the bin edges `k / n_bins`: a voxel is predicted positive at threshold `t` when its bin's lower
//! edge is ≥ `t`, i.e. `p ≥ t` up to the bin width. Average precision is scikit-learn's step-wise
//! sum `AP = Σₙ (Rₙ − Rₙ₋₁) Pₙ` over decreasing thresholds; voxels in the same bin act as tied
//! scores.

use crate::metrics::ratio;
use crate::{Counts, EvalError};
use capsid_core::{ClassTable, Volume};
use ndarray::Axis;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Voxel-level scores of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoxelScores {
    pub class: String,
    pub label: u8,
    #[serde(flatten)]
    pub counts: Counts,
    pub dice: f64,
    pub iou: f64,
    pub precision: f64,
    pub recall: f64,
}

fn same_shape<A, B>(a: &Volume<A>, b: &Volume<B>, what: &str) -> Result<(), EvalError> {
    if a.shape_zyx() != b.shape_zyx() {
        let (sa, sb) = (a.shape_xyz(), b.shape_xyz());
        return Err(EvalError::Invalid(format!(
            "{what}: shapes differ (x,y,z) {}×{}×{} vs {}×{}×{}",
            sa[0], sa[1], sa[2], sb[0], sb[1], sb[2]
        )));
    }
    Ok(())
}

/// Per-class Dice, IoU, precision and recall of label map `pred` against `truth` (same shape,
/// `[z, y, x]`), for every class of `classes`, in table order.
pub fn voxel_scores(
    pred: &Volume<u8>,
    truth: &Volume<u8>,
    classes: &ClassTable,
) -> Result<Vec<VoxelScores>, EvalError> {
    same_shape(pred, truth, "predicted vs true label map")?;
    // Joint histogram of (true, predicted) labels.
    let joint: Vec<u64> = pred
        .data
        .axis_iter(Axis(0))
        .into_par_iter()
        .zip(truth.data.axis_iter(Axis(0)).into_par_iter())
        .map(|(p, t)| {
            let mut h = vec![0u64; 256 * 256];
            for (a, b) in p.iter().zip(t.iter()) {
                h[*b as usize * 256 + *a as usize] += 1;
            }
            h
        })
        .reduce(
            || vec![0u64; 256 * 256],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    Ok(classes
        .classes
        .iter()
        .map(|c| {
            let l = c.label as usize;
            let tp = joint[l * 256 + l];
            let pred_n: u64 = (0..256).map(|t| joint[t * 256 + l]).sum();
            let true_n: u64 = (0..256).map(|p| joint[l * 256 + p]).sum();
            let counts = Counts {
                tp,
                fp: pred_n - tp,
                fn_: true_n - tp,
            };
            VoxelScores {
                class: c.name.clone(),
                label: c.label,
                counts,
                dice: counts.f1(),
                iou: ratio(tp as f64, (tp + counts.fp + counts.fn_) as f64),
                precision: counts.precision(),
                recall: counts.recall(),
            }
        })
        .collect())
}

/// One point of a precision–recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
}

/// A precision–recall curve of one class's probability map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    pub class: String,
    /// Voxels of the class in the true label map.
    pub n_positive: u64,
    pub n_voxels: u64,
    /// Average precision (step-wise area under the PR curve, scikit-learn's definition).
    pub auprc: f64,
    /// Best F1 (voxel Dice) over the thresholds and the threshold reaching it.
    pub best_f1: f64,
    pub threshold_at_best_f1: f64,
    /// Voxel Dice at threshold 0.5.
    pub dice_at_half: f64,
    /// Points by decreasing threshold (one per non-empty bin).
    pub points: Vec<PrPoint>,
}

/// PR curve of probability map `prob` for the voxels of `truth` equal to `label` (same shape).
pub fn pr_curve(
    prob: &Volume<f32>,
    truth: &Volume<u8>,
    label: u8,
    class: &str,
    n_bins: usize,
) -> Result<PrCurve, EvalError> {
    same_shape(
        prob,
        truth,
        &format!("probability map of class '{class}' vs true label map"),
    )?;
    if n_bins < 2 {
        return Err(EvalError::Invalid(format!(
            "PR curve needs at least 2 bins, got {n_bins}"
        )));
    }
    let nb = n_bins;
    let bin = |p: f32| -> usize {
        if p.is_nan() {
            0
        } else {
            ((p.clamp(0.0, 1.0) as f64 * nb as f64) as usize).min(nb - 1)
        }
    };
    let (pos, neg) = prob
        .data
        .axis_iter(Axis(0))
        .into_par_iter()
        .zip(truth.data.axis_iter(Axis(0)).into_par_iter())
        .map(|(p, t)| {
            let (mut pos, mut neg) = (vec![0u64; nb], vec![0u64; nb]);
            for (a, b) in p.iter().zip(t.iter()) {
                if *b == label {
                    pos[bin(*a)] += 1;
                } else {
                    neg[bin(*a)] += 1;
                }
            }
            (pos, neg)
        })
        .reduce(
            || (vec![0u64; nb], vec![0u64; nb]),
            |(mut a, mut b), (c, d)| {
                a.iter_mut().zip(c).for_each(|(x, y)| *x += y);
                b.iter_mut().zip(d).for_each(|(x, y)| *x += y);
                (a, b)
            },
        );
    let n_positive: u64 = pos.iter().sum();
    let n_voxels = n_positive + neg.iter().sum::<u64>();
    let (mut tp, mut fp) = (0u64, 0u64);
    let (mut ap, mut last_recall) = (0.0f64, 0.0f64);
    let (mut best_f1, mut best_t) = (0.0f64, 1.0f64);
    let mut dice_at_half = 0.0;
    let mut points = Vec::new();
    for k in (0..nb).rev() {
        tp += pos[k];
        fp += neg[k];
        let threshold = k as f64 / nb as f64;
        let c = Counts {
            tp,
            fp,
            fn_: n_positive - tp,
        };
        // The last threshold ≥ 0.5 visited gives the Dice at 0.5 (exact when 0.5 is an edge).
        if threshold >= 0.5 {
            dice_at_half = c.f1();
        }
        if pos[k] + neg[k] == 0 {
            continue;
        }
        let (p, r) = (c.precision(), c.recall());
        ap += (r - last_recall) * p;
        last_recall = r;
        if c.f1() > best_f1 {
            best_f1 = c.f1();
            best_t = threshold;
        }
        points.push(PrPoint {
            threshold,
            precision: p,
            recall: r,
        });
    }
    Ok(PrCurve {
        class: class.to_string(),
        n_positive,
        n_voxels,
        auprc: ap,
        best_f1,
        threshold_at_best_f1: best_t,
        dice_at_half,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::ClassDef;
    use ndarray::Array3;
    use rand::{Rng, SeedableRng};

    #[test]
    fn voxel_scores_count_overlaps_per_class() {
        let mut t = Array3::<u8>::zeros((1, 2, 5));
        let mut p = Array3::<u8>::zeros((1, 2, 5));
        // class 1: true at x 0..4 of row 0, predicted at x 1..5 → TP 3, FP 1, FN 1.
        for x in 0..4 {
            t[[0, 0, x]] = 1;
        }
        for x in 1..5 {
            p[[0, 0, x]] = 1;
        }
        // class 2: true at (1,0),(1,1); predicted at (1,1) only.
        t[[0, 1, 0]] = 2;
        t[[0, 1, 1]] = 2;
        p[[0, 1, 1]] = 2;
        let c = |n: &str, l| ClassDef {
            name: n.into(),
            label: l,
            radius_a: None,
            radius_vox: Some(1.0),
            template: None,
            symmetry: None,
        };
        let classes = ClassTable {
            classes: vec![c("a", 1), c("b", 2)],
        };
        let s = voxel_scores(&Volume::new(p, 1.0), &Volume::new(t.clone(), 1.0), &classes).unwrap();
        assert_eq!(
            s[0].counts,
            Counts {
                tp: 3,
                fp: 1,
                fn_: 1
            }
        );
        assert!((s[0].dice - 0.75).abs() < 1e-12 && (s[0].iou - 0.6).abs() < 1e-12);
        assert_eq!(
            s[1].counts,
            Counts {
                tp: 1,
                fp: 0,
                fn_: 1
            }
        );
        assert!((s[1].dice - 2.0 / 3.0).abs() < 1e-12);
        let wrong = Volume::new(Array3::<u8>::zeros((1, 2, 4)), 1.0);
        assert!(voxel_scores(&wrong, &Volume::new(t, 1.0), &classes)
            .unwrap_err()
            .to_string()
            .contains("shapes differ"));
    }

    fn truth_and_scores(n: usize, seed: u64) -> (Volume<u8>, Vec<bool>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let is_pos: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.2)).collect();
        let t = Array3::from_shape_vec((1, 1, n), is_pos.iter().map(|&b| u8::from(b)).collect())
            .unwrap();
        (Volume::new(t, 1.0), is_pos)
    }

    #[test]
    fn perfect_predictor_has_auprc_one() {
        let (t, is_pos) = truth_and_scores(20_000, 1);
        let p = Array3::from_shape_vec(
            (1, 1, is_pos.len()),
            is_pos.iter().map(|&b| if b { 0.9 } else { 0.1 }).collect(),
        )
        .unwrap();
        let c = pr_curve(&Volume::new(p, 1.0), &t, 1, "a", 1000).unwrap();
        assert!((c.auprc - 1.0).abs() < 1e-12, "{}", c.auprc);
        assert!((c.best_f1 - 1.0).abs() < 1e-12 && (c.dice_at_half - 1.0).abs() < 1e-12);
        assert_eq!(c.points.len(), 2);
    }

    #[test]
    fn random_predictor_has_auprc_near_prevalence() {
        let (t, is_pos) = truth_and_scores(200_000, 2);
        let prevalence = is_pos.iter().filter(|&&b| b).count() as f64 / is_pos.len() as f64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let p = Array3::from_shape_fn((1, 1, is_pos.len()), |_| rng.gen::<f32>());
        let c = pr_curve(&Volume::new(p, 1.0), &t, 1, "a", 1000).unwrap();
        assert!(
            (c.auprc - prevalence).abs() < 0.01,
            "AP {} vs prevalence {prevalence}",
            c.auprc
        );
        // A fully inverted predictor: no recall until the last threshold, where P = prevalence, so
        // AP = prevalence exactly (as scikit-learn), and its PR curve starts at precision 0.
        let inv = Array3::from_shape_vec(
            (1, 1, is_pos.len()),
            is_pos.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect(),
        )
        .unwrap();
        let ci = pr_curve(&Volume::new(inv, 1.0), &t, 1, "a", 1000).unwrap();
        assert!((ci.auprc - prevalence).abs() < 1e-12, "{}", ci.auprc);
        assert_eq!((ci.points[0].precision, ci.points[0].recall), (0.0, 0.0));
    }

    #[test]
    fn auprc_matches_a_hand_computed_step_sum() {
        // Scores (truth): 0.95 (1), 0.85 (0), 0.75 (1), 0.15 (0), 0.05 (1).
        // Steps: R 1/3 P 1; R 1/3 P 1/2 (no recall gain); R 2/3 P 2/3; R 2/3; R 1 P 3/5.
        // AP = 1/3·1 + 1/3·2/3 + 1/3·3/5.
        let t = Array3::from_shape_vec((1, 1, 5), vec![1u8, 0, 1, 0, 1]).unwrap();
        let p = Array3::from_shape_vec((1, 1, 5), vec![0.95f32, 0.85, 0.75, 0.15, 0.05]).unwrap();
        let c = pr_curve(&Volume::new(p, 1.0), &Volume::new(t, 1.0), 1, "a", 10).unwrap();
        let expect = (1.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0;
        assert!((c.auprc - expect).abs() < 1e-12, "{} vs {expect}", c.auprc);
        // Dice at 0.5: TP 2, FP 1, FN 1 → 2/3.
        assert!((c.dice_at_half - 2.0 / 3.0).abs() < 1e-12);
    }
}
