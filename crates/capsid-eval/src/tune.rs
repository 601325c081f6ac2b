//! Choosing a class's picking threshold on labelled data (a validation tomogram): the smallest
//! cluster size, as a fraction of the class's sphere volume ([`tune_min_fraction`]), or the
//! smallest peak score ([`tune_min_score`]), that gives the best strict F1.
//!
//! A label map from a network holds, besides the particles, specks and fragments where it is
//! unsure; mean shift turns each into a cluster whose size (voxels) is its score. The right
//! minimum size differs per class and per model, so it is chosen on data with known particles and
//! saved with the model (see `capsid train`'s `pick_settings.toml`).

use crate::matching::match_class;
use capsid_core::Particle;
use serde::{Deserialize, Serialize};

/// Minimum-size fractions tried by [`tune_min_fraction`].
pub const MIN_FRACTIONS: [f64; 14] = [
    0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0,
];

/// The outcome of tuning one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunedThreshold {
    pub class: String,
    /// The smallest kept: a fraction of the class's sphere volume ([`tune_min_fraction`]) or a
    /// score ([`tune_min_score`]).
    pub threshold: f64,
    /// Scores on the tuning data at that threshold.
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The fraction of [`MIN_FRACTIONS`] that gives `class` the best F1 against `truth` when picks
/// whose score (cluster size in voxels) is below `fraction × sphere_vox` are dropped. Matching is
/// one-to-one within `tolerance_vox` (see [`crate::matching`]). Ties go to the larger fraction
/// (fewer picks for the same F1). When no fraction matches a single particle (F1 0 everywhere:
/// the class was not learned, or the tuning data hold none), the fraction is `fallback` (what
/// `capsid pick` does without settings), not the largest one: a threshold is then not informed
/// by the data, and hiding every pick of the class would look like a tuned result. `picks` and
/// `truth` may hold other classes (ignored); picks without a score count as size 0.
pub fn tune_min_fraction(
    picks: &[Particle],
    truth: &[Particle],
    class: &str,
    sphere_vox: f64,
    tolerance_vox: f64,
    fallback: f64,
) -> TunedThreshold {
    best_threshold(
        picks,
        truth,
        class,
        tolerance_vox,
        &MIN_FRACTIONS,
        sphere_vox,
        fallback,
    )
}

/// Most thresholds [`tune_min_score`] tries (quantiles of the scores beyond that).
pub const MAX_SCORE_THRESHOLDS: usize = 256;

/// The minimum score (e.g. a peak's smoothed probability) that gives `class` the best F1 against
/// `truth` when picks scoring below it are dropped; the thresholds tried are the picks' own
/// scores (at most [`MAX_SCORE_THRESHOLDS`] of them, evenly spaced in rank). Matching, ties and
/// the fallback (here: 0, keep everything) are as for [`tune_min_fraction`].
pub fn tune_min_score(
    picks: &[Particle],
    truth: &[Particle],
    class: &str,
    tolerance_vox: f64,
) -> TunedThreshold {
    let mut scores: Vec<f64> = picks
        .iter()
        .filter(|p| p.class == class)
        .map(|p| p.score.unwrap_or(0.0))
        .filter(|s| s.is_finite())
        .collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let n = scores.len();
    let thresholds: Vec<f64> = if n <= MAX_SCORE_THRESHOLDS {
        scores
    } else {
        (0..MAX_SCORE_THRESHOLDS)
            .map(|i| scores[i * (n - 1) / (MAX_SCORE_THRESHOLDS - 1)])
            .collect()
    };
    best_threshold(picks, truth, class, tolerance_vox, &thresholds, 1.0, 0.0)
}

/// The threshold of `thresholds` (ascending) with the best F1 when picks of `class` whose score
/// is below `threshold × scale` are dropped; ties go to the larger threshold; `fallback` when
/// none finds a particle.
fn best_threshold(
    picks: &[Particle],
    truth: &[Particle],
    class: &str,
    tolerance_vox: f64,
    thresholds: &[f64],
    scale: f64,
    fallback: f64,
) -> TunedThreshold {
    let mut best: Option<TunedThreshold> = None;
    let mut at_fallback: Option<TunedThreshold> = None;
    for &t in thresholds.iter().chain([&fallback]) {
        let kept: Vec<Particle> = picks
            .iter()
            .filter(|p| p.class == class && p.score.unwrap_or(0.0) >= t * scale)
            .cloned()
            .collect();
        let c = match_class(&kept, truth, class, tolerance_vox, None).counts();
        let cand = TunedThreshold {
            class: class.to_string(),
            threshold: t,
            tp: c.tp,
            fp: c.fp,
            fn_: c.fn_,
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
        };
        if t == fallback {
            at_fallback = Some(cand.clone());
        }
        if best.as_ref().is_none_or(|b| cand.f1 >= b.f1) {
            best = Some(cand);
        }
    }
    match best {
        Some(b) if b.tp > 0 => return b,
        _ => {}
    }
    at_fallback.unwrap_or(TunedThreshold {
        class: class.to_string(),
        threshold: fallback,
        tp: 0,
        fp: 0,
        fn_: 0,
        precision: 0.0,
        recall: 0.0,
        f1: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(x: f64, size: f64) -> Particle {
        let mut p = Particle::new("a", x, 0.0, 0.0);
        p.score = Some(size);
        p
    }

    #[test]
    fn drops_the_specks_and_keeps_the_particles() {
        let truth: Vec<Particle> = (0..5)
            .map(|i| Particle::new("a", 20.0 * i as f64, 0.0, 0.0))
            .collect();
        // Five real clusters of 300 voxels, five specks of 20 voxels between them.
        let mut picks: Vec<Particle> = (0..5).map(|i| pick(20.0 * i as f64, 300.0)).collect();
        picks.extend((0..5).map(|i| pick(20.0 * i as f64 + 10.0, 20.0)));
        let t = tune_min_fraction(&picks, &truth, "a", 1000.0, 2.0, 0.0);
        assert_eq!((t.tp, t.fp, t.fn_), (5, 0, 0), "{t:?}");
        // Largest fraction that still keeps the 300-voxel clusters.
        assert!((t.threshold - 0.3).abs() < 1e-12, "{t:?}");
        // A threshold above every cluster loses everything: not chosen.
        assert!(t.f1 > 0.99);
    }

    #[test]
    fn a_class_never_found_keeps_the_fallback_not_the_largest_fraction() {
        let truth = vec![Particle::new("a", 0.0, 0.0, 0.0)];
        // Only specks far from the particle: every fraction scores F1 0.
        let picks: Vec<Particle> = (1..4).map(|i| pick(50.0 * i as f64, 400.0)).collect();
        let t = tune_min_fraction(&picks, &truth, "a", 1000.0, 2.0, 0.1);
        assert_eq!(t.threshold, 0.1, "{t:?}");
        assert_eq!((t.tp, t.fp, t.fn_), (0, 3, 1), "{t:?}");
        // With no picks at all, the same.
        let t = tune_min_fraction(&[], &truth, "a", 1000.0, 2.0, 0.0);
        assert_eq!(t.threshold, 0.0);
    }

    #[test]
    fn the_score_threshold_separates_particles_from_background_peaks() {
        let truth: Vec<Particle> = (0..4)
            .map(|i| Particle::new("a", 20.0 * i as f64, 0.0, 0.0))
            .collect();
        // Three particles at 0.6–0.8 (one missed), background peaks at 0.1–0.5 and one at 0.7.
        let mut picks = vec![pick(0.0, 0.8), pick(20.0, 0.6), pick(40.0, 0.65)];
        picks.extend((1..6).map(|i| pick(200.0 + 10.0 * i as f64, 0.1 * i as f64)));
        picks.push(pick(300.0, 0.7));
        let t = tune_min_score(&picks, &truth, "a", 2.0);
        assert_eq!(t.threshold, 0.6, "{t:?}");
        assert_eq!((t.tp, t.fp, t.fn_), (3, 1, 1), "{t:?}");
        // Other classes' picks are ignored; no picks at all: keep everything (0).
        let t = tune_min_score(&[], &truth, "a", 2.0);
        assert_eq!((t.threshold, t.tp), (0.0, 0));
    }

    #[test]
    fn many_scores_are_tried_by_rank() {
        let truth = vec![Particle::new("a", 0.0, 0.0, 0.0)];
        let mut picks: Vec<Particle> = (0..1000)
            .map(|i| pick(100.0 + i as f64, i as f64 / 2000.0))
            .collect();
        picks.push(pick(0.0, 0.9));
        let t = tune_min_score(&picks, &truth, "a", 2.0);
        // Only the top-ranked pick kept: the particle, alone.
        assert_eq!((t.threshold, t.tp, t.fp), (0.9, 1, 0), "{t:?}");
    }
}
