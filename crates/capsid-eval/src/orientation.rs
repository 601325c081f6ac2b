//! Orientation errors of matched picks: how far a pick's orientation is from its true particle's.
//!
//! **Which pairs.** The pairs of the one-to-one matching ([`crate::matching::match_class`]) whose
//! pick *and* true particle both carry Euler angles; pairs with angles on one side only (or none)
//! are left out. The angles may be in either convention ([`capsid_core::EulerConvention`]: ZXZ
//! from SHREC, DeepFinder and the simulator; RELION's ZYZ from STAR files): each is turned into its
//! active rotation ([`capsid_core::EulerAngles::rotation`]) before comparing.
//!
//! **Error.** The geodesic angle on SO(3), in degrees (0 to 180), from the pick's rotation to the
//! nearest orientation of the true particle that the class's point-group symmetry makes
//! indistinguishable ([`capsid_core::symmetry::symmetric_angle_deg`]; `C1` when the class table
//! names none, or as `capsid evaluate --symmetry CLASS=SYM` sets it).
//!
//! **Summary** ([`OrientationScores`]): the number of pairs, the median (the middle value of the
//! sorted errors, or the mean of the two middle values when their number is even) and the 90th
//! percentile by the **nearest-rank** rule ([`nearest_rank`]: the smallest error such that at
//! least 90 % of the errors are ≤ it, i.e. the `⌈0.9·n⌉`-th smallest).

use crate::matching::Pair;
use capsid_core::symmetry::symmetric_angle_deg;
use capsid_core::{Particle, Symmetry};
use serde::{Deserialize, Serialize};

/// The orientation errors of one class's matched pairs (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrientationScores {
    /// Matched pairs with angles on both sides (the pairs the figures below are over).
    pub pairs: u64,
    /// Median angular error in degrees (mean of the two middle values for an even count).
    pub median_deg: f64,
    /// 90th percentile of the angular error in degrees, nearest rank (the `⌈0.9·n⌉`-th smallest).
    pub p90_deg: f64,
    /// The class's symmetry the errors are measured modulo (`C1`, `C7`, `D6`, `T`, `O`, `I`).
    pub symmetry: Symmetry,
}

/// The angular error in degrees of each pair in `pairs` (indices into `picks` and `truth`) whose
/// pick and true particle both have angles, modulo `symmetry`, in the order of `pairs`. Pairs
/// without angles on both sides, or whose angles are not finite, are left out.
pub fn pair_errors_deg(
    picks: &[Particle],
    truth: &[Particle],
    pairs: &[Pair],
    symmetry: Symmetry,
) -> Vec<f64> {
    let with_angles: Vec<_> = pairs
        .iter()
        .filter_map(|p| Some((picks[p.pick].angles?, truth[p.truth].angles?)))
        .collect();
    if with_angles.is_empty() {
        return Vec::new();
    }
    let operators = symmetry.operators();
    with_angles
        .iter()
        .map(|(pick, true_angles)| {
            symmetric_angle_deg(&pick.rotation(), &true_angles.rotation(), &operators)
        })
        .filter(|e| e.is_finite())
        .collect()
}

/// The `p`-th percentile (0 < `p` ≤ 100) of `sorted` (ascending) by the nearest-rank rule: the
/// `⌈p/100 · n⌉`-th smallest value (the smallest value with at least `p` % of the values ≤ it).
/// NaN for an empty slice.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// The median of `sorted` (ascending): the middle value, or the mean of the two middle values for
/// an even count. NaN for an empty slice.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl OrientationScores {
    /// The summary of `errors_deg` (any order) measured modulo `symmetry`; `None` when empty.
    pub fn from_errors(errors_deg: &[f64], symmetry: Symmetry) -> Option<Self> {
        if errors_deg.is_empty() {
            return None;
        }
        let mut sorted = errors_deg.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            pairs: sorted.len() as u64,
            median_deg: median(&sorted),
            p90_deg: nearest_rank(&sorted, 90.0),
            symmetry,
        })
    }

    /// The orientation errors of `pairs` (one class's one-to-one matches; indices into `picks`
    /// and `truth`) modulo `symmetry`; `None` when no pair has angles on both sides.
    pub fn of_pairs(
        picks: &[Particle],
        truth: &[Particle],
        pairs: &[Pair],
        symmetry: Symmetry,
    ) -> Option<Self> {
        Self::from_errors(&pair_errors_deg(picks, truth, pairs, symmetry), symmetry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate_picks, EvalParams};
    use capsid_core::symmetry::axis_angle;
    use capsid_core::{EulerAngles, EulerConvention, Rotation};

    /// A particle of `class` at x (y = z = 10) with `angles`.
    fn at(class: &str, x: f64, angles: Option<EulerAngles>) -> Particle {
        let mut p = Particle::new(class, x, 10.0, 10.0);
        p.angles = angles;
        p
    }

    /// ZXZ angles of `r`.
    fn zxz(r: &Rotation) -> EulerAngles {
        r.to_euler(EulerConvention::Zxz)
    }

    /// ZXZ `[phi, theta, psi]` written by hand as RELION `[rot, tilt, psi]`:
    /// `Rz(φ)·Rx(θ)·Rz(ψ) = Rz(φ−90)·Ry(θ)·Rz(ψ+90)` (as `Rx(θ) = Rz(−90)·Ry(θ)·Rz(90)`), and
    /// RELION's active rotation is `Rz(−psi)·Ry(−tilt)·Rz(−rot)`, with
    /// `Ry(−θ) = Rz(180)·Ry(θ)·Rz(−180)`: `rot = 90 − ψ`, `tilt = θ`, `psi = −90 − φ`.
    fn zxz_as_relion(phi: f64, theta: f64, psi: f64) -> EulerAngles {
        EulerAngles::relion(90.0 - psi, theta, -90.0 - phi)
    }

    fn pair(pick: usize, truth: usize) -> Pair {
        Pair {
            pick,
            truth,
            distance_vox: 0.0,
        }
    }

    #[test]
    fn known_rotations_give_their_angle() {
        let truth_rot = EulerAngles::zxz(30.0, 50.0, -20.0).rotation();
        let truth = vec![at("a", 10.0, Some(zxz(&truth_rot)))];
        for (axis, deg) in [
            ([0.0, 0.0, 1.0], 10.0),
            ([1.0, 0.0, 0.0], 10.0),
            ([1.0, -2.0, 0.5], 25.0),
            ([0.0, 1.0, 0.0], 170.0),
        ] {
            // Turned in the template frame (right) and in the tomogram frame (left).
            for r in [
                truth_rot.mul(&axis_angle(axis, deg)),
                axis_angle(axis, deg).mul(&truth_rot),
            ] {
                let picks = vec![at("a", 10.0, Some(zxz(&r)))];
                let e = pair_errors_deg(&picks, &truth, &[pair(0, 0)], Symmetry::default());
                assert_eq!(e.len(), 1);
                assert!((e[0] - deg).abs() < 1e-6, "{axis:?} {deg}: {e:?}");
            }
        }
    }

    #[test]
    fn symmetry_operators_give_no_error() {
        let truth_rot = EulerAngles::zxz(-40.0, 70.0, 15.0).rotation();
        let truth = vec![at("a", 10.0, Some(zxz(&truth_rot)))];
        let deg = std::f64::consts::PI / 180.0;
        let error = |r: Rotation, sym: Symmetry| {
            let picks = vec![at("a", 10.0, Some(zxz(&r)))];
            pair_errors_deg(&picks, &truth, &[pair(0, 0)], sym)[0]
        };
        let c4 = Symmetry::Cyclic(4);
        // A quarter turn about the C4 axis (z): 90° without symmetry, 0 with it.
        let quarter = truth_rot.mul(&Rotation::rz(90.0 * deg));
        assert!((error(quarter, Symmetry::default()) - 90.0).abs() < 1e-6);
        assert!(error(quarter, c4) < 1e-6);
        // An extra 10° about x after the symmetry operator stays 10°.
        let off = quarter.mul(&Rotation::rx(10.0 * deg));
        assert!((error(off, c4) - 10.0).abs() < 1e-6);
        // A 30° turn about z under C4: the nearest equivalent is 30° away (not 60°).
        assert!((error(truth_rot.mul(&Rotation::rz(30.0 * deg)), c4) - 30.0).abs() < 1e-6);
        // D7: a seventh of a turn about z and the two-fold about x.
        let d7: Symmetry = "D7".parse().unwrap();
        for s in [
            Rotation::rz(360.0 / 7.0 * deg),
            Rotation::rx(180.0 * deg),
            Rotation::rz(3.0 * 360.0 / 7.0 * deg).mul(&Rotation::rx(180.0 * deg)),
        ] {
            let r = truth_rot.mul(&s);
            assert!(error(r, d7) < 1e-6);
            assert!(error(r, Symmetry::default()) > 50.0);
        }
        // Every operator of D7 is error-free.
        for s in d7.operators() {
            assert!(error(truth_rot.mul(&s), d7) < 1e-6);
        }
    }

    #[test]
    fn relion_pick_matches_zxz_truth() {
        for (phi, theta, psi) in [
            (30.0, 50.0, -20.0),
            (0.0, 90.0, 0.0),
            (-135.0, 10.0, 170.0),
            (12.0, 160.0, 75.0),
        ] {
            let truth = vec![at("a", 10.0, Some(EulerAngles::zxz(phi, theta, psi)))];
            let picks = vec![at("a", 10.0, Some(zxz_as_relion(phi, theta, psi)))];
            let e = pair_errors_deg(&picks, &truth, &[pair(0, 0)], Symmetry::default());
            assert!(e[0] < 1e-6, "{phi} {theta} {psi}: {e:?}");
            // 15° more rot in RELION is a 15° turn about the template's z axis.
            let [rot, tilt, psi_r] = zxz_as_relion(phi, theta, psi).angles_deg;
            let picks = vec![at(
                "a",
                10.0,
                Some(EulerAngles::relion(rot + 15.0, tilt, psi_r)),
            )];
            let e = pair_errors_deg(&picks, &truth, &[pair(0, 0)], Symmetry::default());
            assert!((e[0] - 15.0).abs() < 1e-6, "{e:?}");
        }
    }

    #[test]
    fn median_and_p90_of_a_known_set() {
        let c1 = Symmetry::default();
        // Ten errors 1..=10 (shuffled): median (5 + 6)/2, p90 = the 9th smallest.
        let e = [7.0, 1.0, 10.0, 3.0, 5.0, 2.0, 9.0, 4.0, 8.0, 6.0];
        let s = OrientationScores::from_errors(&e, c1).unwrap();
        assert_eq!((s.pairs, s.median_deg, s.p90_deg), (10, 5.5, 9.0));
        // Odd count: the middle value; p90 of 3 values is the largest (⌈2.7⌉ = 3).
        let s = OrientationScores::from_errors(&[15.0, 0.0, 2.0], c1).unwrap();
        assert_eq!((s.pairs, s.median_deg, s.p90_deg), (3, 2.0, 15.0));
        // Eleven values: ⌈9.9⌉ = 10th smallest.
        let e: Vec<f64> = (0..11).map(f64::from).collect();
        let s = OrientationScores::from_errors(&e, c1).unwrap();
        assert_eq!((s.median_deg, s.p90_deg), (5.0, 9.0));
        let one = OrientationScores::from_errors(&[4.0], c1).unwrap();
        assert_eq!((one.median_deg, one.p90_deg), (4.0, 4.0));
        assert!(OrientationScores::from_errors(&[], c1).is_none());
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
        assert!(median(&[]).is_nan() && nearest_rank(&[], 90.0).is_nan());
    }

    #[test]
    fn pairs_without_angles_on_both_sides_are_ignored() {
        let a = Some(EulerAngles::zxz(10.0, 20.0, 30.0));
        let b = Some(EulerAngles::zxz(10.0, 20.0, 50.0)); // 20° about the template's z
        let truth = vec![at("a", 10.0, a), at("a", 30.0, None), at("a", 50.0, a)];
        let picks = vec![at("a", 10.0, b), at("a", 30.0, b), at("a", 50.0, None)];
        let pairs = [pair(0, 0), pair(1, 1), pair(2, 2)];
        let e = pair_errors_deg(&picks, &truth, &pairs, Symmetry::default());
        assert_eq!(e.len(), 1);
        assert!((e[0] - 20.0).abs() < 1e-9);
        assert!(
            OrientationScores::of_pairs(&picks, &truth, &pairs[1..], Symmetry::default()).is_none()
        );
    }

    #[test]
    fn the_report_has_orientation_per_class_from_the_class_symmetry() {
        let mut table = crate::test_table(&[("a", 4.0), ("ring", 4.0), ("plain", 4.0)]);
        table.classes[1].symmetry = Some(Symmetry::Cyclic(4));
        let t = EulerAngles::zxz(30.0, 50.0, -20.0);
        let r = t.rotation();
        let deg = std::f64::consts::PI / 180.0;
        let truth = vec![
            at("a", 10.0, Some(t)),
            at("a", 30.0, Some(t)),
            at("a", 50.0, Some(t)),
            at("ring", 70.0, Some(t)),
            at("ring", 90.0, Some(t)),
            at("plain", 110.0, None),
        ];
        let [rot, tilt, psi] = zxz_as_relion(30.0, 50.0, -20.0).angles_deg;
        let picks = vec![
            // a: the same rotation in RELION's convention, one 15° off, one unmatched (far).
            at("a", 10.5, Some(EulerAngles::relion(rot, tilt, psi))),
            at("a", 30.0, Some(EulerAngles::relion(rot + 15.0, tilt, psi))),
            at("a", 50.0, Some(t)),
            at("a", 200.0, Some(t)),
            // ring: one quarter turn about its C4 axis (no error), one 10° about x.
            at("ring", 70.0, Some(zxz(&r.mul(&Rotation::rz(90.0 * deg))))),
            at("ring", 90.0, Some(zxz(&r.mul(&Rotation::rx(10.0 * deg))))),
            // plain: matched, but its truth has no angles.
            at("plain", 110.0, Some(t)),
        ];
        let report = evaluate_picks(&picks, &truth, &table, &EvalParams::default()).unwrap();
        let a = report.classes[0].orientation.as_ref().unwrap();
        assert_eq!((a.pairs, a.symmetry), (3, Symmetry::Cyclic(1)));
        assert!(
            a.median_deg < 1e-6 && (a.p90_deg - 15.0).abs() < 1e-6,
            "{a:?}"
        );
        let ring = report.classes[1].orientation.as_ref().unwrap();
        assert_eq!((ring.pairs, ring.symmetry), (2, Symmetry::Cyclic(4)));
        assert!((ring.median_deg - 5.0).abs() < 1e-6 && (ring.p90_deg - 10.0).abs() < 1e-6);
        assert!(report.classes[2].orientation.is_none());
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["classes"][1]["orientation"]["symmetry"], "C4");
        assert_eq!(json["classes"][1]["orientation"]["pairs"], 2);
        assert!(json["classes"][2].get("orientation").is_none());
        let back = crate::EvaluationReport::from_json(&report.to_json().unwrap()).unwrap();
        assert_eq!(back, report);
        let text = report.to_table();
        let section = &text[text.find("\nOrientation error").expect(&text)..];
        let rows: Vec<Vec<&str>> = section
            .lines()
            .skip(3)
            .take_while(|l| !l.is_empty())
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                ["a", "3", "0.00", "15.00", "C1"],
                ["ring", "2", "5.00", "10.00", "C4"]
            ],
            "{text}"
        );
        // Without angles anywhere: no orientation, no section.
        let bare = |l: &[Particle]| -> Vec<Particle> {
            l.iter()
                .map(|p| Particle {
                    angles: None,
                    ..p.clone()
                })
                .collect()
        };
        let plain =
            evaluate_picks(&bare(&picks), &bare(&truth), &table, &EvalParams::default()).unwrap();
        assert!(plain.classes.iter().all(|c| c.orientation.is_none()));
        assert!(!plain.to_table().contains("Orientation"));
        assert!(!plain.to_json().unwrap().contains("orientation"));
    }
}
