//! A minimum score for one class's picks, chosen on labelled data: the threshold that gives the
//! best strict F1 against the true particles of a tomogram whose truth is known (a training
//! tomogram). Used to turn a per-pick score (e.g. the template-matching correlation of
//! `capsid orient`) into a keep/reject rule for the same picker on other tomograms.

use crate::matching::match_class;
use crate::metrics::Counts;
use capsid_core::Particle;

/// The chosen minimum score of one class and what it gives on the labelled tomogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreThreshold {
    /// Picks scoring below this are rejected; `f64::NEG_INFINITY` keeps every pick.
    pub min_score: f64,
    /// Counts with the threshold applied.
    pub counts: Counts,
    /// Counts of all the picks (no threshold).
    pub counts_all: Counts,
}

/// Counts of the picks of `class` kept by `min_score` (picks without a score are always kept),
/// matched one-to-one to the true particles of `class` within `tolerance_vox` voxels.
pub fn counts_at(
    picks: &[Particle],
    truth: &[Particle],
    class: &str,
    tolerance_vox: f64,
    min_score: f64,
) -> Counts {
    let kept: Vec<Particle> = picks
        .iter()
        .filter(|p| p.class == class && p.score.is_none_or(|s| s >= min_score))
        .cloned()
        .collect();
    match_class(&kept, truth, class, tolerance_vox, None).counts()
}

/// The minimum score for the picks of `class` that maximises F1 against `truth` (tolerance
/// `tolerance_vox` voxels, one-to-one matching). Candidates are "keep all" and every distinct
/// finite pick score; the chosen threshold lies halfway between the lowest score kept and the
/// highest score rejected (a margin either side for other tomograms). Ties in F1 go to the lower
/// threshold (more picks kept). Returns `None` when no pick of `class` carries a finite score.
pub fn best_min_score(
    picks: &[Particle],
    truth: &[Particle],
    class: &str,
    tolerance_vox: f64,
) -> Option<ScoreThreshold> {
    let mut scores: Vec<f64> = picks
        .iter()
        .filter(|p| p.class == class)
        .filter_map(|p| p.score)
        .filter(|s| s.is_finite())
        .collect();
    if scores.is_empty() {
        return None;
    }
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let counts_all = counts_at(picks, truth, class, tolerance_vox, f64::NEG_INFINITY);
    let mut best = (counts_all.f1(), f64::NEG_INFINITY, counts_all);
    for (i, &s) in scores.iter().enumerate().skip(1) {
        let c = counts_at(picks, truth, class, tolerance_vox, s);
        if c.f1() > best.0 {
            best = (c.f1(), 0.5 * (scores[i - 1] + s), c);
        }
    }
    Some(ScoreThreshold {
        min_score: best.1,
        counts: best.2,
        counts_all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(x: f64, score: Option<f64>) -> Particle {
        Particle {
            score,
            ..Particle::new("ribosome", x, 10.0, 10.0)
        }
    }

    #[test]
    fn separating_score_rejects_the_look_alikes() {
        // Three true particles at x = 10, 30, 50; picks on them score 0.3–0.5, picks on
        // look-alikes at x = 70, 90 score 0.1 and 0.2.
        let truth: Vec<Particle> = [10.0, 30.0, 50.0]
            .iter()
            .map(|&x| Particle::new("ribosome", x, 10.0, 10.0))
            .collect();
        let picks = vec![
            pick(10.5, Some(0.3)),
            pick(30.0, Some(0.5)),
            pick(49.5, Some(0.4)),
            pick(70.0, Some(0.1)),
            pick(90.0, Some(0.2)),
        ];
        let t = best_min_score(&picks, &truth, "ribosome", 2.0).unwrap();
        assert!((t.min_score - 0.25).abs() < 1e-12, "{t:?}");
        assert_eq!((t.counts.tp, t.counts.fp, t.counts.fn_), (3, 0, 0));
        assert_eq!((t.counts_all.tp, t.counts_all.fp), (3, 2));
    }

    #[test]
    fn overlapping_scores_take_the_best_f1_and_unscored_picks_stay() {
        // A look-alike (x = 70) outscores one true particle (x = 10): no threshold separates
        // them, so the best F1 is a compromise.
        let truth: Vec<Particle> = [10.0, 30.0, 50.0]
            .iter()
            .map(|&x| Particle::new("ribosome", x, 10.0, 10.0))
            .collect();
        let picks = vec![
            pick(10.0, Some(0.2)),
            pick(30.0, Some(0.5)),
            pick(50.0, None), // near a border: never rejected
            pick(70.0, Some(0.4)),
            pick(90.0, Some(0.1)),
            Particle::new("proteasome", 90.0, 10.0, 10.0),
        ];
        let t = best_min_score(&picks, &truth, "ribosome", 2.0).unwrap();
        // Candidates: all (tp 3, fp 2: F1 0.75); ≥0.2 (3, 1: 0.857); ≥0.4 (2, 1: 0.667);
        // ≥0.5 (2, 0: 0.8).
        assert!((t.min_score - 0.15).abs() < 1e-12, "{t:?}");
        assert_eq!((t.counts.tp, t.counts.fp, t.counts.fn_), (3, 1, 0));
        assert!(best_min_score(&picks, &truth, "proteasome", 2.0).is_none());
    }

    #[test]
    fn a_duplicate_is_cut_and_a_clean_list_keeps_every_pick() {
        let truth = vec![Particle::new("ribosome", 10.0, 10.0, 10.0)];
        let picks = vec![pick(10.0, Some(0.1)), pick(11.0, Some(0.9))];
        // Two picks on one particle: keeping both counts a duplicate (FP 1); ≥ 0.9 keeps the
        // one within tolerance that scores higher.
        let t = best_min_score(&picks, &truth, "ribosome", 2.0).unwrap();
        assert_eq!(t.counts.tp, 1);
        assert_eq!(t.counts.fp, 0);
        assert!((t.min_score - 0.5).abs() < 1e-12);
        let all_true = vec![pick(10.0, Some(0.1))];
        let t = best_min_score(&all_true, &truth, "ribosome", 2.0).unwrap();
        assert_eq!(t.min_score, f64::NEG_INFINITY);
        assert_eq!(t.counts, t.counts_all);
    }
}
