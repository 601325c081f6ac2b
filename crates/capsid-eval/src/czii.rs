//! The CZII challenge's scoring rule (Kaggle "CZII – CryoET Object Identification", 2024–25), as
//! its published metric computes it (the competition's metric notebook `czi-cryoet-84969`,
//! derived from copick's `compare-picks` solution):
//!
//! * **Found particles.** Per tomogram and class, a true particle is found (TP) when at least one
//!   pick of its class in its tomogram lies within `tolerance_fraction` × the class radius (0.5
//!   in the challenge), the distance inclusive (the metric's KD-tree ball query takes pairs "at
//!   most r" apart). The rule is set-based, not one-to-one: several picks near one particle find
//!   it once, and one pick near two particles finds both.
//! * **FP = picks − TP**, FN = particles − TP. FP is negative when picks found more particles
//!   than there are picks (one pick within the tolerance of two particles of its class, and no
//!   other false pick); the published code keeps it negative and so does this module, and
//!   precision then exceeds 1. It takes two particles of one class closer than one radius apart.
//! * **Summed before F-beta.** TP, FP and FN are summed over the tomograms per class; then
//!   precision = TP / (TP + FP), recall = TP / (TP + FN) (each 0 when its denominator is 0) and
//!   F-beta = (1 + β²)·P·R / (β²·P + R) (0 when P + R = 0), β = 4 in the challenge. This is not
//!   the mean of per-tomogram F-betas: a tomogram with many particles weighs more.
//! * **Score.** Only classes the truth holds are scored (the metric loops over the solution's
//!   particle types: a class with picks and no true particle is reported, not scored). The
//!   score is the weighted mean `Σ w·Fβ / Σ w` over them with [`EvalParams::class_weights`]
//!   (1 unless given; the challenge weighs apo-ferritin, β-amylase, β-galactosidase, ribosome,
//!   thyroglobulin and virus-like particle 1, 0, 2, 1, 2, 1), and 0 when the weights sum to 0.
//! * **Tomograms (runs).** A pick and a particle are compared only when their tomogram names
//!   (`rlnTomoName`, a CSV `tomogram` column, a copick run) agree or either has none, as in
//!   [`crate::matching`]: a list without names (SHREC's `particle_locations.txt`) is one run.
//!   Picks that no true particle shares a tomogram with are left out of every count, as the
//!   metric keeps only the submission's runs that are in the solution, and are counted in
//!   [`CziiReport::picks_left_out`].
//! * **No volume check**: the metric has none, so a pick outside the volume is a pick like any
//!   other (non-finite coordinates are never within the tolerance).
//!
//! Positions are x, y, z in voxels and radii in voxels (a class radius in Å is divided by the
//! voxel size), which scales every distance and tolerance alike, so the figures equal the
//! metric's in Å.

use crate::matching::{pairs_within, same_tomogram, EvalParams};
use crate::metrics::ratio;
use crate::report::{f3, header, name_width, row, Prepared};
use crate::EvalError;
use capsid_core::{ClassTable, Particle};
use serde::{Deserialize, Serialize};

/// Counts of the CZII rule: FP = picks − TP may be negative (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CziiCounts {
    pub tp: u64,
    pub fp: i64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl CziiCounts {
    /// TP / (TP + FP) = TP / picks; 0 without picks (above 1 when FP < 0).
    pub fn precision(&self) -> f64 {
        ratio(self.tp as f64, self.tp as f64 + self.fp as f64)
    }

    /// TP / (TP + FN); 0 without true particles.
    pub fn recall(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fn_) as f64)
    }

    /// (1 + β²)·P·R / (β²·P + R), 0 when P + R = 0 (the metric's formula, from P and R).
    pub fn fbeta(&self, beta: f64) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        let b2 = beta * beta;
        if p + r > 0.0 {
            (1.0 + b2) * p * r / (b2 * p + r)
        } else {
            0.0
        }
    }

    /// Element-wise sum (the sum over tomograms).
    pub fn add(&self, o: &CziiCounts) -> CziiCounts {
        CziiCounts {
            tp: self.tp + o.tp,
            fp: self.fp + o.fp,
            fn_: self.fn_ + o.fn_,
        }
    }
}

/// The CZII figures of one class, counts summed over tomograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CziiClass {
    pub class: String,
    /// Class radius and tolerance (radius × tolerance fraction), in voxels.
    pub radius_vox: f64,
    pub tolerance_vox: f64,
    /// Weight in the score.
    pub weight: f64,
    /// True when the truth holds the class: only such classes enter the score.
    pub scored: bool,
    pub n_truth: u64,
    /// Picks of the class that count (those left out are not included).
    pub n_picks: u64,
    #[serde(flatten)]
    pub counts: CziiCounts,
    pub precision: f64,
    pub recall: f64,
    pub fbeta: f64,
}

/// The CZII rule's evaluation: per-class figures and the weighted score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CziiReport {
    /// Tolerance as a fraction of the class radius (the challenge: 0.5).
    pub tolerance_fraction: f64,
    /// β of the F-beta (the challenge: 4).
    pub beta: f64,
    /// The tomograms of the true particles, sorted (`null`: particles without a name).
    pub runs: Vec<Option<String>>,
    /// Picks that no true particle shares a tomogram with, left out of every count.
    pub picks_left_out: u64,
    /// Per class, in class-table order.
    pub classes: Vec<CziiClass>,
    /// Weighted mean of the F-beta of the scored classes: the challenge's score.
    pub score: f64,
}

/// The CZII rule (see the module doc) on `picks` against `truth`: tolerance, β and class weights
/// from `params` ([`EvalParams::czii`] holds the challenge's tolerance and β); `params.rule` and
/// `params.shape_xyz` are not used. Picks of a class not in `classes` are an error; true
/// particles of such classes are left out.
pub fn czii_score(
    picks: &[Particle],
    truth: &[Particle],
    classes: &ClassTable,
    params: &EvalParams,
) -> Result<CziiReport, EvalError> {
    let prep = Prepared::new(picks, truth, classes, params)?;
    Ok(score_prepared(picks, &prep, classes, params))
}

/// [`czii_score`] on picks and truth already checked against the table.
pub(crate) fn score_prepared(
    picks: &[Particle],
    prep: &Prepared,
    classes: &ClassTable,
    params: &EvalParams,
) -> CziiReport {
    let truth = &prep.truth;
    let mut runs: Vec<Option<String>> = truth.iter().map(|t| t.tomogram.clone()).collect();
    runs.sort();
    runs.dedup();
    let counts_in = |p: &Particle| {
        runs.iter().any(|r| match (r, &p.tomogram) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
    };
    let counted: Vec<bool> = picks.iter().map(counts_in).collect();
    let picks_left_out = counted.iter().filter(|c| !**c).count() as u64;
    let mut out = Vec::new();
    for (i, c) in classes.classes.iter().enumerate() {
        let mine: Vec<usize> = (0..picks.len())
            .filter(|&p| prep.pick_class[p] == i && counted[p])
            .collect();
        let refs: Vec<usize> = (0..truth.len())
            .filter(|&t| prep.truth_class[t] == i)
            .collect();
        let tolerance_vox = prep.radii[i] * params.tolerance_fraction;
        let pick_pos: Vec<[f64; 3]> = mine.iter().map(|&p| picks[p].position_xyz()).collect();
        let ref_pos: Vec<[f64; 3]> = refs.iter().map(|&t| truth[t].position_xyz()).collect();
        let mut found = vec![false; refs.len()];
        for pair in pairs_within(&pick_pos, &ref_pos, &|_| tolerance_vox, &|p, t| {
            same_tomogram(&picks[mine[p]], &truth[refs[t]])
        }) {
            found[pair.truth] = true;
        }
        let tp = found.iter().filter(|f| **f).count() as u64;
        let counts = CziiCounts {
            tp,
            fp: mine.len() as i64 - tp as i64,
            fn_: refs.len() as u64 - tp,
        };
        out.push(CziiClass {
            class: c.name.clone(),
            radius_vox: prep.radii[i],
            tolerance_vox,
            weight: params.class_weights.get(&c.name).copied().unwrap_or(1.0),
            scored: !refs.is_empty(),
            n_truth: refs.len() as u64,
            n_picks: mine.len() as u64,
            counts,
            precision: counts.precision(),
            recall: counts.recall(),
            fbeta: counts.fbeta(params.beta),
        });
    }
    let scored = || out.iter().filter(|c| c.scored);
    let wsum: f64 = scored().map(|c| c.weight).sum();
    let score = ratio(scored().map(|c| c.weight * c.fbeta).sum(), wsum);
    CziiReport {
        tolerance_fraction: params.tolerance_fraction,
        beta: params.beta,
        runs,
        picks_left_out,
        classes: out,
        score,
    }
}

impl CziiReport {
    /// The CZII section of the text summary: the rule in one line, a per-class table
    /// (TP FP FN P R Fβ weight; unscored classes marked) and the score.
    pub fn to_table(&self) -> String {
        let w = name_width(self.classes.iter().map(|c| c.class.as_str()));
        let beta = self.beta;
        let mut s = format!(
            "Rule czii (CZII challenge): a particle is found when any pick of its class in its\n\
             tomogram lies within {} × radius; FP = picks − TP; counts summed over {} \
             tomogram(s) before F{beta}\n",
            self.tolerance_fraction,
            self.runs.len()
        );
        if self.picks_left_out > 0 {
            s += &format!(
                "{} pick(s) left out: their tomogram holds no true particle\n",
                self.picks_left_out
            );
        }
        s += &header(w, &[&format!("F{beta}"), "weight"]);
        for c in &self.classes {
            let n = [
                c.counts.tp.to_string(),
                c.counts.fp.to_string(),
                c.counts.fn_.to_string(),
            ];
            let f = [c.precision, c.recall, c.fbeta].map(f3);
            let weight = c.weight.to_string();
            let line = row(
                w,
                &[&c.class, &n[0], &n[1], &n[2], &f[0], &f[1], &f[2], &weight],
            );
            s += line.trim_end();
            s += if c.scored {
                "\n"
            } else {
                "  (not in the truth: not scored)\n"
            };
        }
        s += &format!(
            "CZII score (weighted mean F{beta} of the classes in the truth): {:.3}\n\n",
            self.score
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classes a (radius 4 voxels: tolerance 2), b (radius 4), c (radius 6: tolerance 3).
    fn table() -> ClassTable {
        crate::test_table(&[("a", 4.0), ("b", 4.0), ("c", 6.0)])
    }

    fn p(class: &str, x: f64) -> Particle {
        Particle::new(class, x, 10.0, 10.0)
    }

    fn in_tomo(mut q: Particle, tomo: &str) -> Particle {
        q.tomogram = Some(tomo.into());
        q
    }

    fn counts(tp: u64, fp: i64, fn_: u64) -> CziiCounts {
        CziiCounts { tp, fp, fn_ }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn several_picks_near_one_particle_find_it_once() {
        let truth = [p("a", 10.0)];
        let picks = [
            p("a", 11.0),
            Particle::new("a", 10.0, 11.0, 10.0),
            Particle::new("a", 10.0, 10.0, 8.5),
        ];
        let r = czii_score(&picks, &truth, &table(), &EvalParams::czii()).unwrap();
        let a = &r.classes[0];
        assert_eq!(a.counts, counts(1, 2, 0));
        // P 1/3, R 1: F4 = 17·(1/3) / (16/3 + 1) = 17/19.
        close(a.precision, 1.0 / 3.0);
        close(a.recall, 1.0);
        close(a.fbeta, 17.0 / 19.0);
        // Only a is in the truth: the score is a's F4, whatever the others.
        assert_eq!(
            r.classes.iter().map(|c| c.scored).collect::<Vec<_>>(),
            [true, false, false]
        );
        close(r.score, 17.0 / 19.0);
    }

    #[test]
    fn one_pick_near_two_particles_finds_both_and_fp_goes_negative() {
        // Particles 3 voxels apart; the pick 1.5 from each (tolerance 2).
        let truth = [p("a", 10.0), p("a", 13.0)];
        let picks = [p("a", 11.5)];
        let r = czii_score(&picks, &truth, &table(), &EvalParams::czii()).unwrap();
        let a = &r.classes[0];
        assert_eq!(a.counts, counts(2, -1, 0));
        // As the published metric: P = 2 / (2 − 1) = 2, R = 1, F4 = 17·2 / (16·2 + 1) = 34/33.
        close(a.precision, 2.0);
        close(a.fbeta, 34.0 / 33.0);
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["fp"], -1);
        assert_eq!(json["fn"], 0);
    }

    #[test]
    fn the_tolerance_is_inclusive() {
        // Tolerance 0.5 × 4 = 2 voxels: 2.0 away is found, 2.001 away is not.
        let truth = [p("a", 10.0)];
        let r = czii_score(&[p("a", 12.0)], &truth, &table(), &EvalParams::czii()).unwrap();
        assert_eq!(r.classes[0].counts, counts(1, 0, 0));
        assert_eq!(r.classes[0].tolerance_vox, 2.0);
        let r = czii_score(&[p("a", 12.001)], &truth, &table(), &EvalParams::czii()).unwrap();
        assert_eq!(r.classes[0].counts, counts(0, 1, 1));
        assert_eq!(r.score, 0.0);
        // At tolerance 1 × radius the second is found.
        let wide = EvalParams {
            tolerance_fraction: 1.0,
            ..EvalParams::czii()
        };
        let r = czii_score(&[p("a", 12.001)], &truth, &table(), &wide).unwrap();
        assert_eq!(r.classes[0].counts, counts(1, 0, 0));
    }

    #[test]
    fn a_pick_of_the_wrong_class_finds_nothing() {
        let truth = [p("a", 50.0), p("b", 10.0)];
        let picks = [p("a", 10.0), p("c", 30.0)];
        let r = czii_score(&picks, &truth, &table(), &EvalParams::czii()).unwrap();
        // a: its pick lies on the b particle: FP; the a particle is missed.
        assert_eq!(r.classes[0].counts, counts(0, 1, 1));
        // b: found by no pick of its own class.
        assert_eq!(r.classes[1].counts, counts(0, 0, 1));
        // c: a pick but no true particle: counted, not scored.
        assert_eq!(r.classes[2].counts, counts(0, 1, 0));
        assert!(!r.classes[2].scored);
        assert_eq!(r.score, 0.0);
    }

    #[test]
    fn counts_are_summed_over_tomograms_before_fbeta() {
        // T1: one particle, one pick on it.  T2: three particles, one found; three false picks,
        // one of them where T1's particle lies (another tomogram: no match).  T3: no truth.
        let truth = vec![
            in_tomo(p("a", 10.0), "T1"),
            in_tomo(p("a", 30.0), "T2"),
            in_tomo(p("a", 50.0), "T2"),
            in_tomo(p("a", 70.0), "T2"),
        ];
        let picks = vec![
            in_tomo(p("a", 10.5), "T1"),
            in_tomo(p("a", 30.5), "T2"),
            in_tomo(p("a", 10.0), "T2"),
            in_tomo(p("a", 90.0), "T2"),
            in_tomo(p("a", 110.0), "T2"),
            in_tomo(p("a", 10.0), "T3"),
        ];
        let params = EvalParams::czii();
        let r = czii_score(&picks, &truth, &table(), &params).unwrap();
        assert_eq!(r.runs, [Some("T1".to_string()), Some("T2".to_string())]);
        assert_eq!(r.picks_left_out, 1);
        // Summed: T1 (1, 0, 0) + T2 (1, 3, 2) = (2, 3, 2): F4 = 17·2 / (17·2 + 16·2 + 3) = 34/69.
        assert_eq!(r.classes[0].counts, counts(2, 3, 2));
        assert_eq!(r.classes[0].n_picks, 5);
        close(r.classes[0].fbeta, 34.0 / 69.0);
        close(r.score, 34.0 / 69.0);
        // Per tomogram: T1 F4 = 1, T2 F4 = 17 / (17 + 32 + 3) = 17/52; their mean is 69/104.
        let per_run: Vec<f64> = ["T1", "T2"]
            .iter()
            .map(|t| {
                let of = |v: &[Particle]| -> Vec<Particle> {
                    v.iter()
                        .filter(|q| q.tomogram.as_deref() == Some(*t))
                        .cloned()
                        .collect()
                };
                czii_score(&of(&picks), &of(&truth), &table(), &params)
                    .unwrap()
                    .score
            })
            .collect();
        close(per_run[0], 1.0);
        close(per_run[1], 17.0 / 52.0);
        let mean = (per_run[0] + per_run[1]) / 2.0;
        close(mean, 69.0 / 104.0);
        assert!((mean - r.score).abs() > 0.1);
        // The per-tomogram counts add up to the summed ones.
        assert_eq!(counts(1, 0, 0).add(&counts(1, 3, 2)), r.classes[0].counts);
    }

    #[test]
    fn lists_without_tomogram_names_are_one_run() {
        // SHREC-like truth without names against picks named after their tomogram.
        let truth = [p("a", 10.0)];
        let picks = [
            in_tomo(p("a", 10.0), "tomo"),
            in_tomo(p("a", 40.0), "other"),
        ];
        let r = czii_score(&picks, &truth, &table(), &EvalParams::czii()).unwrap();
        assert_eq!(r.runs, [None]);
        assert_eq!(r.picks_left_out, 0);
        assert_eq!(r.classes[0].counts, counts(1, 1, 0));
        // Picks without names against named truth: compared with every tomogram.
        let truth = [in_tomo(p("a", 10.0), "T1"), in_tomo(p("a", 40.0), "T2")];
        let r = czii_score(&[p("a", 40.0)], &truth, &table(), &EvalParams::czii()).unwrap();
        assert_eq!(r.classes[0].counts, counts(1, 0, 1));
        // No truth at all: every pick left out, nothing scored.
        let r = czii_score(&[p("a", 40.0)], &[], &table(), &EvalParams::czii()).unwrap();
        assert_eq!((r.picks_left_out, r.score), (1, 0.0));
    }

    #[test]
    fn the_score_is_the_weighted_mean_and_a_zero_weight_drops_a_class() {
        // a: F4 1 (one particle, one pick).  b: F4 0 (missed).  c: (1, 2, 0), F4 17/19.
        let truth = [p("a", 10.0), p("b", 30.0), p("c", 50.0)];
        let picks = [p("a", 10.0), p("c", 50.0), p("c", 51.0), p("c", 80.0)];
        let weights = |wb: f64| EvalParams {
            class_weights: [
                ("a".to_string(), 1.0),
                ("b".to_string(), wb),
                ("c".to_string(), 2.0),
            ]
            .into(),
            ..EvalParams::czii()
        };
        let r = czii_score(&picks, &truth, &table(), &weights(0.0)).unwrap();
        assert_eq!(r.classes[2].counts, counts(1, 2, 0));
        let f = r.classes.iter().map(|c| c.fbeta).collect::<Vec<_>>();
        close(f[0], 1.0);
        close(f[1], 0.0);
        close(f[2], 17.0 / 19.0);
        // (1·1 + 0·0 + 2·17/19) / (1 + 0 + 2) = 53/57.
        close(r.score, 53.0 / 57.0);
        assert_eq!(r.classes[1].weight, 0.0);
        // With b weighing 1 its zero counts: (1 + 0 + 34/19) / 4 = 53/76.
        let r1 = czii_score(&picks, &truth, &table(), &weights(1.0)).unwrap();
        close(r1.score, 53.0 / 76.0);
        // All weights 0: score 0 (the metric would divide by zero).
        let zero = EvalParams {
            class_weights: ["a", "b", "c"].map(|c| (c.to_string(), 0.0)).into(),
            ..EvalParams::czii()
        };
        assert_eq!(
            czii_score(&picks, &truth, &table(), &zero).unwrap().score,
            0.0
        );
        let table = r.to_table();
        assert!(
            table.contains("Rule czii") && table.contains("CZII score") && table.contains("0.930"),
            "{table}"
        );
    }

    #[test]
    fn bad_inputs_are_refused() {
        let e = czii_score(&[p("zz", 0.0)], &[], &table(), &EvalParams::czii()).unwrap_err();
        assert!(e.to_string().contains("unknown class 'zz'"), "{e}");
        let bad = EvalParams {
            beta: 0.0,
            ..EvalParams::czii()
        };
        assert!(czii_score(&[], &[], &table(), &bad).is_err());
    }
}
