//! [`EvaluationReport`]: everything `capsid evaluate` measures, as one serde struct written to
//! `eval/summary.json` and shown as a text table ([`EvaluationReport::to_table`]).
//!
//! Averages: the **macro** average is the unweighted mean over the classes of the table that have
//! at least one true particle or one pick (classes with neither are left out, so a class absent
//! from a data set does not count as a zero). The **weighted F-beta** is
//! `Σ w_c·Fβ_c / Σ w_c` over the same classes, with weights from [`EvalParams::class_weights`]
//! (default 1 each; CZII weighs its classes, e.g. 1 for easy and 2 for hard ones).

use crate::czii::CziiReport;
use crate::hitbox::HitboxReport;
use crate::matching::{confusion_matrix, match_class, ConfusionMatrix, EvalParams, MatchRule};
use crate::orientation::OrientationScores;
use crate::voxel::{PrCurve, VoxelScores};
use crate::{Counts, EvalError};
use capsid_core::{ClassTable, Particle, Radius};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Distance-matching scores of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: String,
    pub label: u8,
    /// Class radius and match tolerance, in voxels.
    pub radius_vox: f64,
    pub tolerance_vox: f64,
    /// Weight in the weighted F-beta.
    pub weight: f64,
    pub n_truth: u64,
    pub n_picks: u64,
    /// Picks of this class outside the volume (included in `fp`).
    pub picks_outside: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fbeta: f64,
    /// Mean distance in voxels of the matched pairs (0 without matches).
    pub mean_distance_vox: f64,
    /// Orientation errors of the matched pairs whose pick and true particle both have angles,
    /// modulo the class's symmetry ([`crate::orientation`]); absent when no pair has both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<OrientationScores>,
}

/// One tomogram's one-to-one figures (its picks against its true particles), when picks or
/// truth name several tomograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TomogramScores {
    pub tomogram: String,
    pub n_picks: u64,
    pub n_truth: u64,
    /// Counts pooled over classes.
    pub pooled: Counts,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// F1 of each class, in class-table order.
    pub class_f1: Vec<f64>,
}

/// Averages over classes (see the module doc for which classes count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MacroScores {
    pub n_classes: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fbeta: f64,
    pub fbeta_weighted: f64,
}

/// The evaluation of one set of picks (and optionally maps) against ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    /// capsid version that wrote the report.
    pub capsid_version: String,
    /// Input files by role (`picks`, `truth`, `occupancy`, …), filled in by the caller.
    pub inputs: BTreeMap<String, String>,
    pub params: EvalParams,
    pub n_picks: u64,
    pub n_truth: u64,
    /// True particles of classes not in the class table (left out of every score).
    pub truth_ignored: u64,
    /// Picks outside the volume (all classes).
    pub picks_outside: u64,
    /// Per-class scores of the one-to-one matching ([`crate::matching`]), in class-table order,
    /// whatever the rule (the CZII rule's figures are in [`EvaluationReport::czii`]).
    pub classes: Vec<ClassScores>,
    /// Counts pooled over classes (micro average) and their scores.
    pub pooled: Counts,
    pub pooled_precision: f64,
    pub pooled_recall: f64,
    pub pooled_f1: f64,
    pub macro_avg: MacroScores,
    /// Classification confusion matrix from class-blind distance matching.
    pub confusion: ConfusionMatrix,
    /// SHREC hitbox evaluation, when an occupancy map was given.
    pub hitbox: Option<HitboxReport>,
    /// False picks by where they lie and decoys picked as targets (with `--decoys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoys: Option<crate::DecoyReport>,
    /// The CZII challenge's scores, when `params.rule` is [`MatchRule::Czii`] (absent in older
    /// summaries and with the one-to-one rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub czii: Option<CziiReport>,
    /// Per-tomogram figures, when picks or truth name more than one tomogram (picks without a
    /// name are left out of them; the per-class scores above hold every pick).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tomograms: Vec<TomogramScores>,
    /// Voxel-level scores, when predicted and true label maps were given.
    pub voxel: Vec<VoxelScores>,
    /// PR curves, one per probability map given.
    pub pr_curves: Vec<PrCurve>,
}

/// Picks and truth checked against the class table, shared by both rules: class radii in
/// voxels, the class index of each pick, and the true particles of classes in the table with
/// their class indices.
pub(crate) struct Prepared {
    pub radii: Vec<f64>,
    pub pick_class: Vec<usize>,
    pub truth: Vec<Particle>,
    pub truth_class: Vec<usize>,
    /// True particles of classes not in the table (left out).
    pub truth_ignored: u64,
}

impl Prepared {
    /// Checks `params` (ranges, weighted classes in the table), converts the class radii to
    /// voxels (a radius in Å needs `params.voxel_size_a`) and sorts picks and truth by class.
    /// Picks of a class not in `classes` are an error; true particles of such classes are left
    /// out and counted.
    pub fn new(
        picks: &[Particle],
        truth: &[Particle],
        classes: &ClassTable,
        params: &EvalParams,
    ) -> Result<Self, EvalError> {
        params.validate()?;
        let names = classes.names();
        for w in params.class_weights.keys() {
            classes.get(w)?;
        }
        let mut radii = Vec::new();
        for c in &classes.classes {
            let r = match c.radius() {
                Radius::Angstrom(a)
                    if params.voxel_size_a.is_nan() || params.voxel_size_a <= 0.0 =>
                {
                    return Err(EvalError::Invalid(format!(
                        "class '{}' has its radius in Å ({a}); the voxel size is needed (give a map or --voxel-size)",
                        c.name
                    )))
                }
                r => r.to_voxels(params.voxel_size_a),
            };
            radii.push(r);
        }
        let class_idx = |c: &str| names.iter().position(|x| x == c);
        let mut pick_class = Vec::with_capacity(picks.len());
        for p in picks {
            match class_idx(&p.class) {
                Some(i) => pick_class.push(i),
                None => {
                    return Err(classes.get(&p.class).err().map_or_else(
                        || EvalError::Invalid(format!("unknown class '{}'", p.class)),
                        EvalError::from,
                    ))
                }
            }
        }
        let kept_truth: Vec<(Particle, usize)> = truth
            .iter()
            .filter_map(|t| class_idx(&t.class).map(|i| (t.clone(), i)))
            .collect();
        let truth_ignored = (truth.len() - kept_truth.len()) as u64;
        let (truth, truth_class) = kept_truth.into_iter().unzip();
        Ok(Self {
            radii,
            pick_class,
            truth,
            truth_class,
            truth_ignored,
        })
    }
}

/// Matches `picks` to `truth` per class and class-blind (see [`crate::matching`]) and fills a
/// report (without hitbox, voxel scores or PR curves, which the caller adds); with
/// [`MatchRule::Czii`] also the CZII section ([`crate::czii`]). Picks of a class not in
/// `classes` are an error; true particles of such classes are counted in `truth_ignored`.
pub fn evaluate_picks(
    picks: &[Particle],
    truth: &[Particle],
    classes: &ClassTable,
    params: &EvalParams,
) -> Result<EvaluationReport, EvalError> {
    let prep = Prepared::new(picks, truth, classes, params)?;
    let names = classes.names();
    let Prepared {
        radii,
        pick_class,
        truth: truth_kept,
        truth_class,
        truth_ignored,
    } = &prep;
    let tolerance: Vec<f64> = radii
        .iter()
        .map(|r| r * params.tolerance_fraction)
        .collect();

    let mut scores = Vec::new();
    let mut pooled = Counts::default();
    let mut picks_outside = 0;
    for (i, c) in classes.classes.iter().enumerate() {
        let m = match_class(picks, truth_kept, &c.name, tolerance[i], params.shape_xyz);
        let counts = m.counts();
        pooled = pooled.add(&counts);
        picks_outside += m.outside.len() as u64;
        let mean_distance_vox = if m.pairs.is_empty() {
            0.0
        } else {
            m.pairs.iter().map(|p| p.distance_vox).sum::<f64>() / m.pairs.len() as f64
        };
        scores.push(ClassScores {
            class: c.name.clone(),
            label: c.label,
            radius_vox: radii[i],
            tolerance_vox: tolerance[i],
            weight: params.class_weights.get(&c.name).copied().unwrap_or(1.0),
            n_truth: truth_class.iter().filter(|&&t| t == i).count() as u64,
            n_picks: pick_class.iter().filter(|&&p| p == i).count() as u64,
            picks_outside: m.outside.len() as u64,
            counts,
            precision: counts.precision(),
            recall: counts.recall(),
            f1: counts.f1(),
            fbeta: counts.fbeta(params.beta),
            mean_distance_vox,
            orientation: OrientationScores::of_pairs(
                picks,
                truth_kept,
                &m.pairs,
                c.symmetry.unwrap_or_default(),
            ),
        });
    }
    let macro_avg = macro_scores(&scores);
    let confusion = confusion_matrix(
        picks,
        pick_class,
        truth_kept,
        truth_class,
        &names,
        &tolerance,
        params.shape_xyz,
    );
    Ok(EvaluationReport {
        capsid_version: capsid_core::VERSION.to_string(),
        inputs: BTreeMap::new(),
        params: params.clone(),
        n_picks: picks.len() as u64,
        n_truth: truth.len() as u64,
        truth_ignored: *truth_ignored,
        picks_outside,
        classes: scores,
        pooled,
        pooled_precision: pooled.precision(),
        pooled_recall: pooled.recall(),
        pooled_f1: pooled.f1(),
        macro_avg,
        confusion,
        hitbox: None,
        decoys: None,
        czii: (params.rule == MatchRule::Czii)
            .then(|| crate::czii::score_prepared(picks, &prep, classes, params)),
        tomograms: per_tomogram(picks, truth, classes, params)?,
        voxel: Vec::new(),
        pr_curves: Vec::new(),
    })
}

/// The figures of each tomogram named by `picks` or `truth` (sorted by name), when there are
/// two or more; empty otherwise.
fn per_tomogram(
    picks: &[Particle],
    truth: &[Particle],
    classes: &ClassTable,
    params: &EvalParams,
) -> Result<Vec<TomogramScores>, EvalError> {
    let names: std::collections::BTreeSet<&str> = picks
        .iter()
        .chain(truth)
        .filter_map(|p| p.tomogram.as_deref())
        .collect();
    if names.len() < 2 {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let of = |list: &[Particle]| -> Vec<Particle> {
            list.iter()
                .filter(|p| p.tomogram.as_deref() == Some(name))
                .cloned()
                .collect()
        };
        // One tomogram: the nested evaluation has no breakdown of its own.
        let r = evaluate_picks(&of(picks), &of(truth), classes, params)?;
        out.push(TomogramScores {
            tomogram: name.to_string(),
            n_picks: r.n_picks,
            n_truth: r.n_truth,
            pooled: r.pooled,
            precision: r.pooled_precision,
            recall: r.pooled_recall,
            f1: r.pooled_f1,
            class_f1: r.classes.iter().map(|c| c.f1).collect(),
        });
    }
    Ok(out)
}

/// Macro averages and weighted F-beta over classes with any truth or pick.
pub fn macro_scores(scores: &[ClassScores]) -> MacroScores {
    let used: Vec<&ClassScores> = scores
        .iter()
        .filter(|s| s.n_truth + s.n_picks > 0)
        .collect();
    let n = used.len();
    let mean = |f: &dyn Fn(&ClassScores) -> f64| {
        if n == 0 {
            0.0
        } else {
            used.iter().map(|s| f(s)).sum::<f64>() / n as f64
        }
    };
    let wsum: f64 = used.iter().map(|s| s.weight).sum();
    MacroScores {
        n_classes: n,
        precision: mean(&|s| s.precision),
        recall: mean(&|s| s.recall),
        f1: mean(&|s| s.f1),
        fbeta: mean(&|s| s.fbeta),
        fbeta_weighted: if wsum > 0.0 {
            used.iter().map(|s| s.weight * s.fbeta).sum::<f64>() / wsum
        } else {
            0.0
        },
    }
}

/// Width of the name column of a per-class table: the longest name, at least 7.
pub(crate) fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(5).max(7)
}

/// One line of a per-class table: the name left-aligned in `w` columns, then each cell
/// right-aligned in 6.
pub(crate) fn row(w: usize, cells: &[&str]) -> String {
    let mut s = format!("{:<w$}", cells[0]);
    for c in &cells[1..] {
        s += &format!(" {c:>6}");
    }
    s.push('\n');
    s
}

/// The header line of a per-class table: class, TP, FP, FN, P, R, then `more`.
pub(crate) fn header(w: usize, more: &[&str]) -> String {
    let mut cells = vec!["class", "TP", "FP", "FN", "P", "R"];
    cells.extend_from_slice(more);
    row(w, &cells)
}

/// A ratio with 3 decimals, as the tables show it.
pub(crate) fn f3(v: f64) -> String {
    format!("{v:.3}")
}

impl EvaluationReport {
    /// The per-tomogram section of [`Self::to_table`]: picks, true particles, pooled TP FP FN
    /// P R F1 and each class's F1, one line per tomogram.
    fn tomogram_table(&self) -> String {
        let w = name_width(self.tomograms.iter().map(|t| t.tomogram.as_str())).max(8);
        let mut s = format!(
            "\nPer tomogram (one-to-one, classes pooled; F1 per class after)\n{:<w$} {:>6} {:>6}",
            "tomogram", "picks", "true"
        );
        for c in ["TP", "FP", "FN", "P", "R", "F1"] {
            s += &format!(" {c:>6}");
        }
        for c in &self.classes {
            s += &format!(" {:>8}", c.class);
        }
        s.push('\n');
        for t in &self.tomograms {
            s += &format!(
                "{:<w$} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6.3} {:>6.3} {:>6.3}",
                t.tomogram,
                t.n_picks,
                t.n_truth,
                t.pooled.tp,
                t.pooled.fp,
                t.pooled.fn_,
                t.precision,
                t.recall,
                t.f1
            );
            for f in &t.class_f1 {
                s += &format!(" {f:>8.3}");
            }
            s.push('\n');
        }
        s
    }

    /// The orientation section of [`Self::to_table`]: for each class with matched pairs that have
    /// angles on both sides, their number, the median and 90th-percentile (nearest-rank) angular
    /// error in degrees and the symmetry they are measured modulo.
    fn orientation_table(&self) -> String {
        let w = name_width(self.classes.iter().map(|c| c.class.as_str()));
        let mut s = String::from(
            "\nOrientation error of matched picks (degrees; one-to-one pairs with angles on both \
             sides, modulo the class symmetry; p90 by nearest rank)\n",
        );
        s += &row(w, &["class", "pairs", "median", "p90", "sym"]);
        for c in &self.classes {
            if let Some(o) = &c.orientation {
                s += &row(
                    w,
                    &[
                        &c.class,
                        &o.pairs.to_string(),
                        &format!("{:.2}", o.median_deg),
                        &format!("{:.2}", o.p90_deg),
                        &o.symmetry.to_string(),
                    ],
                );
            }
        }
        s
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String, EvalError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses a report written by [`EvaluationReport::to_json`].
    pub fn from_json(text: &str) -> Result<Self, EvalError> {
        Ok(serde_json::from_str(text)?)
    }

    /// A readable summary: with the CZII rule its section first ([`CziiReport::to_table`]); the
    /// one-to-one matching's per-class table (TP FP FN P R F1 Fβ), averages, confusion matrix;
    /// the orientation errors when some matched pair has angles on both sides; the decoy,
    /// hitbox, voxel and PR sections when present. Each section names its rule.
    pub fn to_table(&self) -> String {
        let w = name_width(self.classes.iter().map(|c| c.class.as_str()));
        let beta = self.params.beta;
        let mut s = self
            .czii
            .as_ref()
            .map(CziiReport::to_table)
            .unwrap_or_default();
        s += &format!(
            "{} one-to-one (one pick ↔ at most one particle, tolerance {} × radius; {} picks, {} \
             true particles{}{})\n",
            if self.czii.is_some() {
                "For comparison, rule"
            } else {
                "Rule"
            },
            self.params.tolerance_fraction,
            self.n_picks,
            self.n_truth,
            if self.truth_ignored > 0 {
                format!(
                    ", {} of classes outside the table ignored",
                    self.truth_ignored
                )
            } else {
                String::new()
            },
            if self.picks_outside > 0 {
                format!(", {} picks outside the volume", self.picks_outside)
            } else {
                String::new()
            },
        );
        s += &header(w, &["F1", &format!("F{beta}")]);
        for c in &self.classes {
            let n = [c.counts.tp, c.counts.fp, c.counts.fn_].map(|v| v.to_string());
            let f = [c.precision, c.recall, c.f1, c.fbeta].map(f3);
            s += &row(
                w,
                &[&c.class, &n[0], &n[1], &n[2], &f[0], &f[1], &f[2], &f[3]],
            );
        }
        let m = &self.macro_avg;
        s += &format!(
            "{:<w$} {:>6} {:>6} {:>6} {:>6.3} {:>6.3} {:>6.3} {:>6.3}\n",
            "macro", "", "", "", m.precision, m.recall, m.f1, m.fbeta
        );
        s += &format!(
            "{:<w$} {:>6} {:>6} {:>6} {:>6.3} {:>6.3} {:>6.3}\n",
            "pooled",
            self.pooled.tp,
            self.pooled.fp,
            self.pooled.fn_,
            self.pooled_precision,
            self.pooled_recall,
            self.pooled_f1
        );
        s += &format!(
            "weighted F{beta}: {:.3}\n\nConfusion (rows true, columns picked)\n{}",
            m.fbeta_weighted,
            self.confusion.to_table()
        );
        if self.classes.iter().any(|c| c.orientation.is_some()) {
            s += &self.orientation_table();
        }
        if !self.tomograms.is_empty() {
            s += &self.tomogram_table();
        }
        if let Some(d) = &self.decoys {
            s += &d.to_table();
        }
        if let Some(h) = &self.hitbox {
            s += &format!(
                "\nSHREC hitbox: {} hits, {} duplicates, {} misses ({} outside), {} never hit; P {:.3} R {:.3} F1 {:.3}\n",
                h.hits, h.duplicates, h.misses, h.outside, h.never_hit, h.localisation_precision, h.localisation_recall, h.localisation_f1
            );
            s += &format!(
                "{:<w$} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}\n",
                "class", "TP", "FP", "FN", "P", "R", "F1"
            );
            for c in &h.classes {
                s += &format!(
                    "{:<w$} {:>6} {:>6} {:>6} {:>6.3} {:>6.3} {:>6.3}\n",
                    c.class, c.counts.tp, c.counts.fp, c.counts.fn_, c.precision, c.recall, c.f1
                );
            }
        }
        if !self.voxel.is_empty() {
            s += &format!(
                "\nVoxels\n{:<w$} {:>8} {:>8} {:>8} {:>8}\n",
                "class", "Dice", "IoU", "P", "R"
            );
            for v in &self.voxel {
                s += &format!(
                    "{:<w$} {:>8.3} {:>8.3} {:>8.3} {:>8.3}\n",
                    v.class, v.dice, v.iou, v.precision, v.recall
                );
            }
        }
        if !self.pr_curves.is_empty() {
            s += &format!(
                "\nProbability maps\n{:<w$} {:>8} {:>8} {:>8} {:>10}\n",
                "class", "AUPRC", "Dice@.5", "best F1", "at thresh"
            );
            for c in &self.pr_curves {
                s += &format!(
                    "{:<w$} {:>8.3} {:>8.3} {:>8.3} {:>10.3}\n",
                    c.class, c.auprc, c.dice_at_half, c.best_f1, c.threshold_at_best_f1
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ClassTable {
        crate::test_table(&[("a", 4.0), ("b", 2.0), ("unused", 3.0)])
    }

    #[test]
    fn several_tomograms_get_a_line_each() {
        let at = |class: &str, x: f64, tomo: &str| {
            let mut p = Particle::new(class, x, 10.0, 10.0);
            p.tomogram = Some(tomo.into());
            p
        };
        // T1: one a found, one missed. T2: the a pick lies where T1's missed particle is (another
        // tomogram: no match), b found.
        let truth = vec![
            at("a", 10.0, "T1"),
            at("a", 30.0, "T1"),
            at("b", 50.0, "T2"),
        ];
        let picks = vec![
            at("a", 10.5, "T1"),
            at("a", 30.0, "T2"),
            at("b", 50.5, "T2"),
        ];
        let r = evaluate_picks(&picks, &truth, &table(), &EvalParams::default()).unwrap();
        assert_eq!(r.pooled.tp, 2);
        let t: Vec<(&str, u64, u64, u64)> = r
            .tomograms
            .iter()
            .map(|t| (t.tomogram.as_str(), t.pooled.tp, t.pooled.fp, t.pooled.fn_))
            .collect();
        assert_eq!(t, vec![("T1", 1, 0, 1), ("T2", 1, 1, 0)]);
        assert_eq!(r.tomograms[0].class_f1[0], 2.0 / 3.0);
        assert_eq!(r.tomograms[1].class_f1[1], 1.0);
        let text = r.to_table();
        assert!(
            text.contains("Per tomogram") && text.contains("T2"),
            "{text}"
        );
        // One tomogram (or none named): no breakdown.
        let r = evaluate_picks(&picks[..1], &truth[..2], &table(), &EvalParams::default()).unwrap();
        assert!(r.tomograms.is_empty());
        assert!(!r.to_table().contains("Per tomogram"));
    }

    #[test]
    fn report_counts_scores_and_averages() {
        let truth = vec![
            Particle::new("a", 10.0, 10.0, 10.0),
            Particle::new("a", 30.0, 10.0, 10.0),
            Particle::new("b", 50.0, 10.0, 10.0),
            Particle::new("other", 70.0, 10.0, 10.0),
        ];
        let picks = vec![
            Particle::new("a", 11.0, 10.0, 10.0),  // TP a (d 1)
            Particle::new("a", 12.0, 10.0, 10.0),  // duplicate → FP a
            Particle::new("b", 31.0, 10.0, 10.0),  // wrong class on particle a#2 → FP b, FN a
            Particle::new("b", 51.5, 10.0, 10.0),  // TP b (d 1.5 ≤ 2)
            Particle::new("a", 150.0, 10.0, 10.0), // outside → FP a
        ];
        let params = EvalParams {
            shape_xyz: Some([100, 20, 20]),
            class_weights: [("b".to_string(), 3.0)].into(),
            ..Default::default()
        };
        let r = evaluate_picks(&picks, &truth, &table(), &params).unwrap();
        assert_eq!(r.truth_ignored, 1);
        assert_eq!(r.picks_outside, 1);
        assert_eq!(
            r.classes[0].counts,
            Counts {
                tp: 1,
                fp: 2,
                fn_: 1
            }
        );
        assert_eq!(r.classes[0].picks_outside, 1);
        assert_eq!(
            r.classes[1].counts,
            Counts {
                tp: 1,
                fp: 1,
                fn_: 0
            }
        );
        assert_eq!(r.classes[2].counts, Counts::default());
        // Fβ (β 4): a = 17/(17 + 16 + 2) = 17/35; b = 17/(17 + 0 + 1) = 17/18.
        assert!((r.classes[0].fbeta - 17.0 / 35.0).abs() < 1e-12);
        assert!((r.classes[1].fbeta - 17.0 / 18.0).abs() < 1e-12);
        // Macro over a and b only ("unused" has neither truth nor picks); weighted with b = 3.
        assert_eq!(r.macro_avg.n_classes, 2);
        assert!((r.macro_avg.fbeta - (17.0 / 35.0 + 17.0 / 18.0) / 2.0).abs() < 1e-12);
        assert!(
            (r.macro_avg.fbeta_weighted - (17.0 / 35.0 + 3.0 * 17.0 / 18.0) / 4.0).abs() < 1e-12
        );
        assert_eq!(
            r.pooled,
            Counts {
                tp: 2,
                fp: 3,
                fn_: 1
            }
        );
        // Confusion: a→a 1, a(#2)→b 1, b→b 1; background row: duplicate a + outside a.
        assert_eq!(r.confusion.counts[0], vec![1, 1, 0, 0]);
        assert_eq!(r.confusion.counts[1], vec![0, 1, 0, 0]);
        assert_eq!(r.confusion.counts[3], vec![2, 0, 0, 0]);
        let back = EvaluationReport::from_json(&r.to_json().unwrap()).unwrap();
        assert_eq!(back, r);
        let table = r.to_table();
        assert!(
            table.contains("F4") && table.contains("macro") && table.contains("background"),
            "{table}"
        );
    }

    #[test]
    fn summaries_without_a_rule_read_as_one_to_one() {
        let truth = vec![Particle::new("a", 10.0, 10.0, 10.0)];
        let picks = vec![Particle::new("a", 11.0, 10.0, 10.0)];
        let r = evaluate_picks(&picks, &truth, &table(), &EvalParams::czii()).unwrap();
        assert_eq!(r.czii.as_ref().unwrap().score, 1.0);
        // An older summary: no params.rule, no czii section.
        let mut v = serde_json::to_value(&r).unwrap();
        v["params"].as_object_mut().unwrap().remove("rule");
        v.as_object_mut().unwrap().remove("czii");
        let old = EvaluationReport::from_json(&v.to_string()).unwrap();
        assert_eq!(old.params.rule, MatchRule::OneToOne);
        assert!(old.czii.is_none());
        assert_eq!(old.classes, r.classes);
        let back = EvaluationReport::from_json(&r.to_json().unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn tolerance_fraction_changes_matches() {
        let truth = vec![Particle::new("a", 10.0, 10.0, 10.0)];
        let picks = vec![Particle::new("a", 13.0, 10.0, 10.0)]; // d 3: within r 4, not within 0.5 r
        let r = evaluate_picks(&picks, &truth, &table(), &EvalParams::default()).unwrap();
        assert_eq!(r.classes[0].counts.tp, 1);
        let czii = EvalParams {
            tolerance_fraction: 0.5,
            ..Default::default()
        };
        let r = evaluate_picks(&picks, &truth, &table(), &czii).unwrap();
        assert_eq!(
            r.classes[0].counts,
            Counts {
                tp: 0,
                fp: 1,
                fn_: 1
            }
        );
    }

    #[test]
    fn bad_inputs_are_refused() {
        let t = table();
        let e = evaluate_picks(
            &[Particle::new("zz", 0.0, 0.0, 0.0)],
            &[],
            &t,
            &EvalParams::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown class 'zz'"), "{e}");
        let mut ta = t.clone();
        ta.classes[0].radius_vox = None;
        ta.classes[0].radius_a = Some(100.0);
        let e = evaluate_picks(&[], &[], &ta, &EvalParams::default()).unwrap_err();
        assert!(e.to_string().contains("voxel size"), "{e}");
        let ok = evaluate_picks(
            &[],
            &[],
            &ta,
            &EvalParams {
                voxel_size_a: 10.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ok.classes[0].radius_vox, 10.0);
        assert!(evaluate_picks(
            &[],
            &[],
            &t,
            &EvalParams {
                tolerance_fraction: 0.0,
                ..Default::default()
            }
        )
        .is_err());
        let w = EvalParams {
            class_weights: [("nope".to_string(), 1.0)].into(),
            ..Default::default()
        };
        assert!(evaluate_picks(&[], &[], &t, &w).is_err());
    }
}
