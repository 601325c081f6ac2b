//! Distance matching of picks to ground-truth particles.
//!
//! **Rule (one-to-one, greedy by ascending distance).** All (pick, particle) pairs closer than the
//! tolerance (inclusive) are candidates; they are accepted in order of increasing distance, ties
//! broken by pick index then particle index (file order), each pick and each particle used at most
//! once. Greedy matching can differ from an optimal (Hungarian) assignment only when tolerance
//! balls overlap, i.e. for particles closer than twice the tolerance; at the default tolerance
//! (the class radius) non-overlapping particles never compete.
//!
//! **Tolerance** = `tolerance_fraction` × class radius (1.0 by default; 0.5 is the CZII rule).
//! In the class-blind matching used for the confusion matrix the tolerance is that of the true
//! particle's class.
//!
//! **Tomograms.** A pick and a particle are compared only when their tomogram names agree or
//! either has none (SHREC's `particle_locations.txt` names no tomogram).
//!
//! **Outside.** Picks outside the volume (`shape_xyz`, valid coordinates `-0.5 ..< n - 0.5` per
//! axis, as [`capsid_core::Volume::contains_xyz`]) or with non-finite coordinates are false
//! positives and never matched; they are also reported separately.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::EvalError;
use capsid_core::Particle;

/// Which rule turns picks and truth into counts: capsid's one-to-one matching (the default) or
/// the CZII challenge's set-based rule ([`crate::czii`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchRule {
    /// One pick ↔ at most one particle, greedy by ascending distance (this module).
    #[default]
    OneToOne,
    /// The CZII challenge's rule: a particle is found when any pick of its class in its
    /// tomogram lies within the tolerance; FP = picks − TP; counts summed over tomograms before
    /// F-beta; weighted mean of the per-class F-beta ([`crate::czii`]).
    Czii,
}

impl MatchRule {
    /// The rule's name as the command line and `summary.json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            MatchRule::OneToOne => "one-to-one",
            MatchRule::Czii => "czii",
        }
    }
}

impl std::fmt::Display for MatchRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of the pick evaluation. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalParams {
    /// The headline rule: with [`MatchRule::Czii`] the report also holds the CZII section
    /// ([`crate::EvaluationReport::czii`]). Default one-to-one (older summaries have no field).
    pub rule: MatchRule,
    /// Match tolerance as a fraction of the class radius. Default 1.0 (CZII: 0.5).
    pub tolerance_fraction: f64,
    /// β of the F-beta score. Default 4 (CZII).
    pub beta: f64,
    /// Weight of each class in the weighted F-beta (CZII weights its classes); classes not named
    /// weigh 1. Default: all 1.
    pub class_weights: BTreeMap<String, f64>,
    /// Voxel size in Å, needed when a class radius is given in Å (`radius_a`). 0 = unknown.
    pub voxel_size_a: f64,
    /// Volume size `[x, y, z]` in voxels for the outside check; `None` = no check.
    pub shape_xyz: Option<[usize; 3]>,
}

impl Default for EvalParams {
    fn default() -> Self {
        Self {
            rule: MatchRule::OneToOne,
            tolerance_fraction: 1.0,
            beta: 4.0,
            class_weights: BTreeMap::new(),
            voxel_size_a: 0.0,
            shape_xyz: None,
        }
    }
}

impl EvalParams {
    /// The CZII challenge's settings: rule [`MatchRule::Czii`], tolerance 0.5 × radius, β = 4,
    /// every class weighing 1 (the challenge weighs apo-ferritin, β-amylase, β-galactosidase,
    /// ribosome, thyroglobulin, virus-like particle 1, 0, 2, 1, 2, 1: set `class_weights`).
    pub fn czii() -> Self {
        Self {
            rule: MatchRule::Czii,
            tolerance_fraction: 0.5,
            beta: 4.0,
            ..Default::default()
        }
    }

    /// Checks ranges: positive finite tolerance and β, non-negative finite weights.
    pub fn validate(&self) -> Result<(), EvalError> {
        if !(self.tolerance_fraction > 0.0 && self.tolerance_fraction.is_finite()) {
            return Err(EvalError::Invalid(format!(
                "tolerance must be positive, got {}",
                self.tolerance_fraction
            )));
        }
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return Err(EvalError::Invalid(format!(
                "beta must be positive, got {}",
                self.beta
            )));
        }
        for (c, w) in &self.class_weights {
            if !(*w >= 0.0 && w.is_finite()) {
                return Err(EvalError::Invalid(format!(
                    "weight of class '{c}' must be ≥ 0, got {w}"
                )));
            }
        }
        Ok(())
    }
}

/// One accepted match: indices into the pick and truth lists, and their distance in voxels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub pick: usize,
    pub truth: usize,
    pub distance_vox: f64,
}

/// Every (pick, particle) pair within tolerance (inclusive) whose pick and particle are
/// `compatible`, in pick order: the candidates of [`greedy_match`] and the hits of the CZII rule.
/// `tolerance(t)` is the tolerance in voxels of truth particle `t`. Positions are `[x, y, z]` in
/// voxels; non-finite positions are never within tolerance.
pub fn pairs_within(
    picks: &[[f64; 3]],
    truth: &[[f64; 3]],
    tolerance: &dyn Fn(usize) -> f64,
    compatible: &dyn Fn(usize, usize) -> bool,
) -> Vec<Pair> {
    let max_tol = (0..truth.len()).map(tolerance).fold(0.0f64, f64::max);
    let mut by_x: Vec<usize> = (0..truth.len())
        .filter(|&t| truth[t].iter().all(|v| v.is_finite()))
        .collect();
    by_x.sort_by(|&a, &b| truth[a][0].total_cmp(&truth[b][0]).then(a.cmp(&b)));
    let mut candidates = Vec::new();
    for (p, pos) in picks.iter().enumerate() {
        if !pos.iter().all(|v| v.is_finite()) {
            continue;
        }
        let start = by_x.partition_point(|&t| truth[t][0] < pos[0] - max_tol);
        for &t in &by_x[start..] {
            if truth[t][0] > pos[0] + max_tol {
                break;
            }
            let d = distance(pos, &truth[t]);
            if d <= tolerance(t) && compatible(p, t) {
                candidates.push(Pair {
                    pick: p,
                    truth: t,
                    distance_vox: d,
                });
            }
        }
    }
    candidates
}

/// One-to-one greedy matching (see the module doc). `tolerance(t)` is the tolerance in voxels of
/// truth particle `t`; `compatible(p, t)` says whether pick `p` may match particle `t`.
/// Positions are `[x, y, z]` in voxels. Returns the pairs in acceptance order.
pub fn greedy_match(
    picks: &[[f64; 3]],
    truth: &[[f64; 3]],
    tolerance: &dyn Fn(usize) -> f64,
    compatible: &dyn Fn(usize, usize) -> bool,
) -> Vec<Pair> {
    let mut candidates = pairs_within(picks, truth, tolerance, compatible);
    candidates.sort_by(|a, b| {
        a.distance_vox
            .total_cmp(&b.distance_vox)
            .then(a.pick.cmp(&b.pick))
            .then(a.truth.cmp(&b.truth))
    });
    let (mut pick_used, mut truth_used) = (vec![false; picks.len()], vec![false; truth.len()]);
    let mut out = Vec::new();
    for c in candidates {
        if !pick_used[c.pick] && !truth_used[c.truth] {
            pick_used[c.pick] = true;
            truth_used[c.truth] = true;
            out.push(c);
        }
    }
    out
}

/// Euclidean distance in voxels.
pub fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// True when `p` lies inside a volume of `shape_xyz` voxels (always true without a shape);
/// non-finite coordinates are outside.
pub fn inside(p: &Particle, shape_xyz: Option<[usize; 3]>) -> bool {
    let pos = p.position_xyz();
    if !pos.iter().all(|v| v.is_finite()) {
        return false;
    }
    match shape_xyz {
        None => true,
        Some(s) => (0..3).all(|a| pos[a] >= -0.5 && pos[a] < s[a] as f64 - 0.5),
    }
}

/// Tomogram rule: compare unless both names are given and differ.
pub fn same_tomogram(a: &Particle, b: &Particle) -> bool {
    match (&a.tomogram, &b.tomogram) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// The matching of one class: indices refer to the full pick and truth lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMatch {
    pub pairs: Vec<Pair>,
    /// Picks of the class that matched nothing (includes `outside`): the false positives.
    pub false_picks: Vec<usize>,
    /// Picks of the class outside the volume.
    pub outside: Vec<usize>,
    /// Particles of the class that no pick matched: the false negatives.
    pub missed: Vec<usize>,
}

impl ClassMatch {
    /// TP (pairs), FP (false picks, those outside included) and FN (missed particles).
    pub fn counts(&self) -> crate::Counts {
        crate::Counts {
            tp: self.pairs.len() as u64,
            fp: self.false_picks.len() as u64,
            fn_: self.missed.len() as u64,
        }
    }
}

/// Matches the picks of `class` to the true particles of `class` with `tolerance_vox`.
pub fn match_class(
    picks: &[Particle],
    truth: &[Particle],
    class: &str,
    tolerance_vox: f64,
    shape_xyz: Option<[usize; 3]>,
) -> ClassMatch {
    let mine: Vec<usize> = (0..picks.len())
        .filter(|&i| picks[i].class == class)
        .collect();
    let (ins, outside): (Vec<usize>, Vec<usize>) =
        mine.iter().partition(|&&i| inside(&picks[i], shape_xyz));
    let ref_idx: Vec<usize> = (0..truth.len())
        .filter(|&i| truth[i].class == class)
        .collect();
    let pick_pos: Vec<[f64; 3]> = ins.iter().map(|&i| picks[i].position_xyz()).collect();
    let ref_pos: Vec<[f64; 3]> = ref_idx.iter().map(|&i| truth[i].position_xyz()).collect();
    let pairs: Vec<Pair> = greedy_match(&pick_pos, &ref_pos, &|_| tolerance_vox, &|p, t| {
        same_tomogram(&picks[ins[p]], &truth[ref_idx[t]])
    })
    .into_iter()
    .map(|p| Pair {
        pick: ins[p.pick],
        truth: ref_idx[p.truth],
        distance_vox: p.distance_vox,
    })
    .collect();
    let matched_picks: std::collections::HashSet<usize> = pairs.iter().map(|p| p.pick).collect();
    let matched_truth: std::collections::HashSet<usize> = pairs.iter().map(|p| p.truth).collect();
    ClassMatch {
        false_picks: mine
            .iter()
            .copied()
            .filter(|i| !matched_picks.contains(i))
            .collect(),
        outside,
        missed: ref_idx
            .iter()
            .copied()
            .filter(|i| !matched_truth.contains(i))
            .collect(),
        pairs,
    }
}

/// A classification confusion matrix: `counts[row][col]`, rows = true class (table order) plus a
/// last row `"background"` (picks that match no particle, or lie outside), columns = picked class
/// plus a last column `"missed"` (particles that no pick matched).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub true_classes: Vec<String>,
    pub picked_classes: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// An all-zero matrix for `classes` (plus background row and missed column).
    pub fn zeros(classes: &[String]) -> Self {
        let mut rows = classes.to_vec();
        rows.push("background".into());
        let mut cols = classes.to_vec();
        cols.push("missed".into());
        let n = classes.len() + 1;
        Self {
            true_classes: rows,
            picked_classes: cols,
            counts: vec![vec![0; n]; n],
        }
    }

    /// Per-class counts read off the matrix: TP = diagonal, FP = rest of the class's column
    /// (including the background row), FN = rest of the class's row (including missed).
    pub fn class_counts(&self, c: usize) -> crate::Counts {
        let n = self.counts.len();
        let tp = self.counts[c][c];
        let fp = (0..n).filter(|&r| r != c).map(|r| self.counts[r][c]).sum();
        let fn_ = (0..n).filter(|&k| k != c).map(|k| self.counts[c][k]).sum();
        crate::Counts { tp, fp, fn_ }
    }

    /// The matrix as aligned text.
    pub fn to_table(&self) -> String {
        let w = self
            .true_classes
            .iter()
            .chain(&self.picked_classes)
            .map(|s| s.len())
            .max()
            .unwrap_or(4)
            .max(6)
            + 1;
        let mut s = format!("{:>w$}", "true\\pick");
        for c in &self.picked_classes {
            s += &format!(" {c:>w$}");
        }
        s.push('\n');
        for (r, row) in self.true_classes.iter().zip(&self.counts) {
            s += &format!("{r:>w$}");
            for v in row {
                s += &format!(" {v:>w$}");
            }
            s.push('\n');
        }
        s
    }
}

/// Class-blind matching for the confusion matrix. `pick_class[i]` / `truth_class[j]` are class
/// indices into `classes`; `tolerance[c]` is the tolerance in voxels of class `c`.
pub fn confusion_matrix(
    picks: &[Particle],
    pick_class: &[usize],
    truth: &[Particle],
    truth_class: &[usize],
    classes: &[String],
    tolerance: &[f64],
    shape_xyz: Option<[usize; 3]>,
) -> ConfusionMatrix {
    let mut m = ConfusionMatrix::zeros(classes);
    let n = classes.len();
    let ins: Vec<usize> = (0..picks.len())
        .filter(|&i| inside(&picks[i], shape_xyz))
        .collect();
    let pick_pos: Vec<[f64; 3]> = ins.iter().map(|&i| picks[i].position_xyz()).collect();
    let ref_pos: Vec<[f64; 3]> = truth.iter().map(Particle::position_xyz).collect();
    let pairs = greedy_match(
        &pick_pos,
        &ref_pos,
        &|t| tolerance[truth_class[t]],
        &|p, t| same_tomogram(&picks[ins[p]], &truth[t]),
    );
    let (mut pick_used, mut truth_used) = (vec![false; picks.len()], vec![false; truth.len()]);
    for p in &pairs {
        let pi = ins[p.pick];
        pick_used[pi] = true;
        truth_used[p.truth] = true;
        m.counts[truth_class[p.truth]][pick_class[pi]] += 1;
    }
    for (i, used) in pick_used.iter().enumerate() {
        if !used {
            m.counts[n][pick_class[i]] += 1;
        }
    }
    for (j, used) in truth_used.iter().enumerate() {
        if !used {
            m.counts[truth_class[j]][n] += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(class: &str, x: f64, y: f64, z: f64) -> Particle {
        Particle::new(class, x, y, z)
    }

    #[test]
    fn tie_gives_one_tp_and_one_fp_deterministically() {
        // Two picks at distance 2 on either side of one particle: the first pick (file order) wins.
        let truth = [p("a", 10.0, 10.0, 10.0)];
        let picks = [p("a", 8.0, 10.0, 10.0), p("a", 12.0, 10.0, 10.0)];
        let m = match_class(&picks, &truth, "a", 3.0, None);
        assert_eq!(m.pairs.len(), 1);
        assert_eq!((m.pairs[0].pick, m.pairs[0].truth), (0, 0));
        assert_eq!(m.false_picks, [1]);
        assert!(m.missed.is_empty());
        // Swapping the file order swaps the winner.
        let swapped = [picks[1].clone(), picks[0].clone()];
        let m2 = match_class(&swapped, &truth, "a", 3.0, None);
        assert_eq!(m2.pairs[0].pick, 0);
        assert_eq!(swapped[m2.pairs[0].pick].x, 12.0);
    }

    #[test]
    fn duplicate_picks_on_one_particle_give_one_tp_one_fp() {
        let truth = [p("a", 10.0, 10.0, 10.0), p("a", 30.0, 10.0, 10.0)];
        let picks = [p("a", 11.0, 10.0, 10.0), p("a", 10.5, 10.0, 10.0)];
        let m = match_class(&picks, &truth, "a", 3.0, None);
        // The closer pick (index 1) is matched; the other is a false positive; particle 1 is missed.
        assert_eq!(m.pairs.len(), 1);
        assert_eq!((m.pairs[0].pick, m.pairs[0].truth), (1, 0));
        assert_eq!(m.false_picks, [0]);
        assert_eq!(m.missed, [1]);
    }

    #[test]
    fn greedy_prefers_closest_pairs_first() {
        // Pick 0 is close to both particles, pick 1 only to particle 1 at a larger distance.
        // Greedy: (0,0) d=1 accepted first, then (1,1) d=2.5.
        let picks = [[10.0, 0.0, 0.0], [13.5, 0.0, 0.0]];
        let truth = [[11.0, 0.0, 0.0], [16.0, 0.0, 0.0]];
        let pairs = greedy_match(&picks, &truth, &|_| 3.0, &|_, _| true);
        assert_eq!(
            pairs.iter().map(|p| (p.pick, p.truth)).collect::<Vec<_>>(),
            [(0, 0), (1, 1)]
        );
        // At the tolerance boundary (inclusive) and just past it.
        assert_eq!(
            greedy_match(&[[3.0, 0.0, 0.0]], &[[0.0; 3]], &|_| 3.0, &|_, _| true).len(),
            1
        );
        assert!(
            greedy_match(&[[3.0001, 0.0, 0.0]], &[[0.0; 3]], &|_| 3.0, &|_, _| true).is_empty()
        );
    }

    #[test]
    fn wrong_class_is_fp_for_pick_class_fn_for_true_class_and_a_confusion_cell() {
        let truth = [p("b", 10.0, 10.0, 10.0)];
        let picks = [p("a", 10.0, 10.0, 10.0)];
        let ma = match_class(&picks, &truth, "a", 3.0, None);
        assert_eq!(
            (ma.pairs.len(), ma.false_picks.len(), ma.missed.len()),
            (0, 1, 0)
        );
        let mb = match_class(&picks, &truth, "b", 3.0, None);
        assert_eq!(
            (mb.pairs.len(), mb.false_picks.len(), mb.missed.len()),
            (0, 0, 1)
        );
        let names = vec!["a".to_string(), "b".to_string()];
        let cm = confusion_matrix(&picks, &[0], &truth, &[1], &names, &[3.0, 3.0], None);
        assert_eq!(cm.counts, vec![vec![0, 0, 0], vec![1, 0, 0], vec![0, 0, 0]]);
        assert_eq!(cm.true_classes, ["a", "b", "background"]);
        assert_eq!(cm.picked_classes, ["a", "b", "missed"]);
        assert_eq!(
            cm.class_counts(0),
            crate::Counts {
                tp: 0,
                fp: 1,
                fn_: 0
            }
        );
        assert_eq!(
            cm.class_counts(1),
            crate::Counts {
                tp: 0,
                fp: 0,
                fn_: 1
            }
        );
    }

    #[test]
    fn picks_outside_the_volume_are_false_positives_and_reported() {
        let truth = [p("a", 0.0, 5.0, 5.0)];
        // -0.6 is outside (valid: -0.5 ..< n-0.5) although within tolerance of the particle; z 9.4 is
        // inside a 10-voxel axis (9.5 would not be).
        let picks = [
            p("a", -0.6, 5.0, 5.0),
            p("a", 5.0, 5.0, 9.4),
            p("a", f64::NAN, 1.0, 1.0),
        ];
        let m = match_class(&picks, &truth, "a", 3.0, Some([10, 10, 10]));
        assert!(m.pairs.is_empty());
        assert_eq!(m.outside, [0, 2]);
        assert_eq!(m.false_picks, [0, 1, 2]);
        assert_eq!(m.missed, [0]);
        // Without a shape, the first pick matches (NaN never does).
        let m = match_class(&picks, &truth, "a", 3.0, None);
        assert_eq!(m.pairs.len(), 1);
        assert_eq!(m.outside, [2]);
    }

    #[test]
    fn different_tomograms_never_match() {
        let mut t = p("a", 1.0, 1.0, 1.0);
        t.tomogram = Some("TS_1".into());
        let mut q = p("a", 1.0, 1.0, 1.0);
        q.tomogram = Some("TS_2".into());
        assert!(match_class(&[q.clone()], &[t.clone()], "a", 3.0, None)
            .pairs
            .is_empty());
        q.tomogram = None;
        assert_eq!(match_class(&[q], &[t], "a", 3.0, None).pairs.len(), 1);
    }
}
