//! The results section: per evaluation (`eval/summary.json`) the short table of per-class
//! precision, recall and F1 with the macro average as the headline, the confusion matrix and the
//! look-alikes, then every column and setting collapsed.

use super::note;
use crate::html::{self, Section};
use crate::{layout, summary, ReportError};

pub(crate) fn results_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    if inputs.evaluations.is_empty() {
        body.push_str(&note(
            notes,
            "No evaluation summary (eval/summary.json): no results table.".into(),
        ));
    }
    for (name, path) in &inputs.evaluations {
        let r = summary::read_evaluation(path)?;
        let s = summary::eval_summary(&r);
        body.push_str(&format!("<h3>{}</h3>\n", html::escape(name)));
        // The short table first (per class P/R/F1 and the headline score), the confusion matrix
        // and look-alikes; every column below, collapsed.
        body.push_str(&headline(&r));
        let mut details = String::new();
        for (title, table) in &s.tables {
            if s.tables.len() > 1 {
                details.push_str(&format!("<h4>{}</h4>\n", html::escape(title)));
            }
            details.push_str(&html::table(table));
        }
        if !s.settings.is_empty() {
            let rows: Vec<Vec<String>> = s
                .settings
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect();
            details.push_str("<h4>Settings</h4>\n");
            details.push_str(&html::table(&summary::Table {
                header: vec!["setting".into(), "value".into()],
                rows,
            }));
        }
        body.push_str(&format!(
            "<details><summary>Every column and setting</summary>\n{details}</details>\n"
        ));
        if r.classes.is_empty() {
            body.push_str(&note(
                notes,
                format!("{}: no per-class rows.", path.display()),
            ));
        }
    }
    Ok(Section {
        id: "results".into(),
        title: "Results".into(),
        body,
    })
}

/// The short results of a capsid evaluation: per class picks / true, precision, recall, F1 at the
/// evaluation's tolerance, the macro average as the headline, then the confusion matrix (true
/// class × picked class, from class-blind matching) and the look-alikes picked as targets.
fn headline(r: &capsid_eval::EvaluationReport) -> String {
    let f3 = |v: f64| format!("{v:.3}");
    let mut rows: Vec<Vec<String>> = r
        .classes
        .iter()
        .map(|c| {
            vec![
                c.class.clone(),
                format!("{} / {}", c.n_picks, c.n_truth),
                f3(c.precision),
                f3(c.recall),
                f3(c.f1),
            ]
        })
        .collect();
    rows.push(vec![
        "macro average".into(),
        format!("{} / {}", r.n_picks, r.n_truth),
        f3(r.macro_avg.precision),
        f3(r.macro_avg.recall),
        f3(r.macro_avg.f1),
    ]);
    let mut s = format!(
        "<p><b>Macro F1 {:.3}</b> over {} class(es), matches within {} × the class radius.</p>\n",
        r.macro_avg.f1, r.macro_avg.n_classes, r.params.tolerance_fraction
    );
    s.push_str(&html::table(&summary::Table {
        header: ["class", "picks / true", "precision", "recall", "F1"]
            .map(String::from)
            .to_vec(),
        rows,
    }));
    if let Some(c) = &r.czii {
        s.push_str(&czii_table(c));
    }
    let cm = &r.confusion;
    if !cm.counts.is_empty() {
        let mut header = vec!["true \\ picked".to_string()];
        header.extend(cm.picked_classes.iter().cloned());
        let rows = cm
            .true_classes
            .iter()
            .zip(&cm.counts)
            .map(|(name, row)| {
                let mut cells = vec![name.clone()];
                cells.extend(row.iter().map(|n| n.to_string()));
                cells
            })
            .collect();
        s.push_str("<h4>Confusion matrix</h4>\n<p class=\"meta\">Rows: the true class of each particle (background: picks on no particle); columns: the class it was picked as (missed: no pick).</p>\n");
        s.push_str(&html::table(&summary::Table { header, rows }));
    }
    if let Some(d) = &r.decoys {
        let rows = d
            .decoys
            .iter()
            .map(|p| {
                vec![
                    p.decoy_class.clone(),
                    format!("{} / {}", p.picked, p.n),
                    format!("{:.1}", 100.0 * p.share_picked),
                ]
            })
            .collect();
        s.push_str(&format!(
            "<h4>Look-alikes picked as targets: {} of {} ({:.1} %)</h4>\n",
            d.decoys_picked,
            d.n_decoys,
            100.0 * d.share_decoys_picked
        ));
        s.push_str(&html::table(&summary::Table {
            header: ["look-alike class", "picked / present", "%"]
                .map(String::from)
                .to_vec(),
            rows,
        }));
    }
    s
}

/// The CZII challenge's score of an evaluation run with `--rule czii`: the weighted score first,
/// then per class TP / FP / FN (summed over the tomograms), precision, recall, F-beta and weight.
fn czii_table(c: &capsid_eval::CziiReport) -> String {
    let f3 = |v: f64| format!("{v:.3}");
    let rows = c
        .classes
        .iter()
        .map(|k| {
            vec![
                k.class.clone(),
                format!("{} / {} / {}", k.counts.tp, k.counts.fp, k.counts.fn_),
                f3(k.precision),
                f3(k.recall),
                f3(k.fbeta),
                if k.scored {
                    format!("{}", k.weight)
                } else {
                    "not scored (no true particle)".into()
                },
            ]
        })
        .collect();
    let mut s = format!(
        "<h4>CZII score {:.3}</h4>\n<p class=\"meta\">The challenge's rule: a particle is found when any pick of its class in its tomogram lies within {} × its radius; FP = picks − TP; counts summed over {} tomogram(s), then F-beta with β = {}, weighted over the classes.</p>\n",
        c.score,
        c.tolerance_fraction,
        c.runs.len(),
        c.beta
    );
    s.push_str(&html::table(&summary::Table {
        header: [
            "class",
            "TP / FP / FN",
            "precision",
            "recall",
            "F-beta",
            "weight",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// capsid evaluate's summary gives the short table, the headline and the confusion matrix.
    #[test]
    fn headline_of_a_capsid_evaluation() {
        use capsid_core::Particle;
        let truth = vec![
            Particle::new("ribosome", 10.0, 10.0, 10.0),
            Particle::new("proteasome", 30.0, 30.0, 30.0),
        ];
        // The ribosome found; the proteasome picked as a ribosome; one pick on nothing.
        let picks = vec![
            Particle::new("ribosome", 10.5, 10.0, 10.0),
            Particle::new("ribosome", 30.0, 30.5, 30.0),
            Particle::new("proteasome", 50.0, 50.0, 50.0),
        ];
        let r = summary::tests::evaluate_two_classes(&picks, &truth);
        // Through JSON, as the report reads it.
        let back: capsid_eval::EvaluationReport =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        let h = headline(&back);
        assert!(h.contains("Macro F1 0.333"), "{h}");
        assert!(
            h.contains("<td>ribosome</td><td>2 / 1</td><td class=\"num\">0.500</td>"),
            "{h}"
        );
        assert!(h.contains("Confusion matrix"), "{h}");
        // Row proteasome: picked once as ribosome (column 1), none as proteasome, none missed.
        assert!(
            h.contains("<td>proteasome</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">0</td>"),
            "{h}"
        );
    }

    use capsid_eval::{CziiClass, CziiCounts, CziiReport};

    #[test]
    fn czii_table_shows_the_score_and_signed_counts() {
        let class = |name: &str, tp, fp, fn_, fbeta, scored| CziiClass {
            class: name.into(),
            radius_vox: 4.0,
            tolerance_vox: 2.0,
            weight: 2.0,
            scored,
            n_truth: tp + fn_,
            n_picks: (tp as i64 + fp) as u64,
            counts: CziiCounts { tp, fp, fn_ },
            precision: 1.0,
            recall: 0.5,
            fbeta,
        };
        let r = CziiReport {
            tolerance_fraction: 0.5,
            beta: 4.0,
            runs: vec![Some("T1".into()), Some("T2".into())],
            picks_left_out: 0,
            classes: vec![
                class("big", 2, -1, 1, 0.654, true),
                class("none", 0, 3, 0, 0.0, false),
            ],
            score: 0.445,
        };
        let html = czii_table(&r);
        assert!(html.contains("CZII score 0.445"), "{html}");
        assert!(html.contains("2 / -1 / 1"), "{html}");
        assert!(html.contains("over 2 tomogram(s)"), "{html}");
        assert!(html.contains("not scored"), "{html}");
    }
}
