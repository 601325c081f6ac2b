//! The tables of a report: an evaluation of `capsid evaluate` (its `summary.json`, capsid-eval's
//! typed [`EvaluationReport`]: per-class precision, recall, F1, …, voxel scores and
//! precision–recall curves) and stage wall times.
//!
//! Every scalar field of a class row becomes a column (known columns first), so a field added to
//! capsid-eval's report shows up without a change here; the structure itself is the typed one,
//! and a file that is not a capsid evaluation is an error naming it.

use crate::curves::Series;
use crate::error::ReportError;
use capsid_eval::EvaluationReport;
use serde_json::{Map, Value};
use std::path::Path;

/// A table of text cells with a header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// What an evaluation summary file holds for the report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvalSummary {
    /// Titled tables (`picks`, `voxels`, `precision–recall`); the first column of each is the
    /// class (or summary) name.
    pub tables: Vec<(String, Table)>,
    /// Precision–recall curves, one per class that has one (points are `(recall, precision)`).
    pub pr_curves: Vec<Series>,
    /// Top-level settings (`beta`, `params.tolerance_fraction`, …) as `(key, value)`.
    pub settings: Vec<(String, String)>,
}

/// Columns left out of tables (the class name already says it).
const HIDDEN_COLUMNS: [&str; 1] = ["label"];
/// Columns shown first, in this order, when present.
const PREFERRED_COLUMNS: [&str; 20] = [
    "n_truth",
    "n_true",
    "n_picks",
    "n_pred",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "f_beta",
    "fbeta",
    "fbeta_weighted",
    "f2",
    "dice",
    "iou",
    "auprc",
    "ap",
    "best_f1",
    "threshold_at_best_f1",
];

/// Formats a scalar JSON value for a table cell: integers (and whole floats) without decimals,
/// other numbers with 3 decimals.
pub fn cell(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            (None, Some(f)) => format!("{f:.3}"),
            _ => n.to_string(),
        }),
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// True for columns holding a ratio in 0–1 (precision, recall, F-scores, AP), shown with 3
/// decimals even when a value is whole.
pub fn is_ratio_column(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "precision",
        "recall",
        "f1",
        "f_beta",
        "fbeta",
        "f2",
        "ap",
        "auprc",
        "accuracy",
        "iou",
        "dice",
    ]
    .iter()
    .any(|r| k == *r || k.ends_with(&format!("_{r}")) || k.starts_with(&format!("{r}_")))
}

/// A table cell for field `key`: ratios with 3 decimals, other values as [`cell`].
pub fn cell_for(key: &str, v: &Value) -> Option<String> {
    match v.as_f64() {
        Some(f) if is_ratio_column(key) => Some(format!("{f:.3}")),
        _ => cell(v),
    }
}

type Row = (String, Map<String, Value>);

/// A table of `rows`: one column per scalar field (known columns first), names first.
fn table_of(rows: &[Row]) -> Table {
    let mut keys: Vec<String> = Vec::new();
    for (_, o) in rows {
        for (k, v) in o.iter() {
            if k != "class"
                && !HIDDEN_COLUMNS.contains(&k.as_str())
                && cell(v).is_some()
                && !keys.contains(k)
            {
                keys.push(k.clone());
            }
        }
    }
    let rank = |k: &String| {
        PREFERRED_COLUMNS
            .iter()
            .position(|p| p == k)
            .unwrap_or(PREFERRED_COLUMNS.len())
    };
    keys.sort_by_key(|k| rank(k));
    let mut header: Vec<String> = vec!["class".to_string()];
    header.extend(keys);
    let rows = rows
        .iter()
        .map(|(name, o)| {
            let mut r = vec![name.clone()];
            r.extend(
                header[1..]
                    .iter()
                    .map(|k| o.get(k).and_then(|v| cell_for(k, v)).unwrap_or_default()),
            );
            r
        })
        .collect();
    Table { header, rows }
}

/// A row named `name` from the scalar fields of `value` (a serialised record).
fn row_of(name: &str, value: Value) -> Row {
    let fields = match value {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    (name.to_string(), fields)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Reads `capsid evaluate`'s `summary.json`; a file that is not one is an error naming it.
pub fn read_evaluation(path: &Path) -> Result<EvaluationReport, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        ReportError::input(
            path,
            format!("not the summary.json of capsid evaluate: {e}"),
        )
    })
}

/// The tables (`picks` with the pooled and macro rows, `voxels`, `precision–recall`), the
/// precision–recall curves (named with their AP) and the settings (top-level scalars, `params.*`,
/// `inputs.*`) of an evaluation.
pub fn eval_summary(r: &EvaluationReport) -> EvalSummary {
    let mut out = EvalSummary::default();
    let mut picks: Vec<Row> = r
        .classes
        .iter()
        .map(|c| row_of(&c.class, to_value(c)))
        .collect();
    let mut pooled = row_of("pooled", to_value(&r.pooled));
    for (k, v) in [
        ("precision", r.pooled_precision),
        ("recall", r.pooled_recall),
        ("f1", r.pooled_f1),
    ] {
        pooled.1.insert(k.into(), to_value(&v));
    }
    picks.push(pooled);
    picks.push(row_of("macro_avg", to_value(&r.macro_avg)));
    out.tables.push(("picks".into(), table_of(&picks)));
    if !r.voxel.is_empty() {
        let rows: Vec<Row> = r
            .voxel
            .iter()
            .map(|v| row_of(&v.class, to_value(v)))
            .collect();
        out.tables.push(("voxels".into(), table_of(&rows)));
    }
    if !r.pr_curves.is_empty() {
        let rows: Vec<Row> = r
            .pr_curves
            .iter()
            .map(|c| row_of(&c.class, to_value(c)))
            .collect();
        out.tables
            .push(("precision–recall".into(), table_of(&rows)));
    }
    out.pr_curves = r
        .pr_curves
        .iter()
        .filter(|c| !c.points.is_empty())
        .map(|c| Series {
            name: format!("{} (AP {:.3})", c.class, c.auprc),
            points: c.points.iter().map(|p| (p.recall, p.precision)).collect(),
        })
        .collect();
    for (k, v) in [
        ("capsid_version", to_value(&r.capsid_version)),
        ("n_picks", to_value(&r.n_picks)),
        ("n_truth", to_value(&r.n_truth)),
        ("truth_ignored", to_value(&r.truth_ignored)),
        ("picks_outside", to_value(&r.picks_outside)),
    ] {
        if let Some(c) = cell(&v) {
            out.settings.push((k.into(), c));
        }
    }
    if let Value::Object(o) = to_value(&r.params) {
        for (k, v) in o {
            if let Some(c) = cell(&v).filter(|_| !v.is_null()) {
                out.settings.push((format!("params.{k}"), c));
            }
        }
    }
    for (k, v) in &r.inputs {
        out.settings.push((format!("inputs.{k}"), v.clone()));
    }
    out
}

/// A duration for people: `42.1 s`, `12 min 5 s`, `3 h 20 min`.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use capsid_core::{ClassDef, ClassTable, Particle};

    /// `capsid evaluate`'s report of `picks` against `truth` for classes "ribosome" and
    /// "proteasome" (radius 4 voxels) at the strict tolerance.
    pub(crate) fn evaluate_two_classes(picks: &[Particle], truth: &[Particle]) -> EvaluationReport {
        let class = |name: &str, label| ClassDef {
            name: name.into(),
            label,
            radius_a: None,
            radius_vox: Some(4.0),
            template: None,
            symmetry: None,
        };
        let table = ClassTable {
            classes: vec![class("ribosome", 1), class("proteasome", 2)],
        };
        let params = capsid_eval::EvalParams {
            tolerance_fraction: 0.5,
            ..Default::default()
        };
        capsid_eval::evaluate_picks(picks, truth, &table, &params).unwrap()
    }

    /// A real evaluation of two classes, with one precision–recall curve added.
    fn evaluation() -> EvaluationReport {
        let truth = vec![
            Particle::new("ribosome", 10.0, 10.0, 10.0),
            Particle::new("ribosome", 30.0, 10.0, 10.0),
            Particle::new("proteasome", 30.0, 30.0, 30.0),
        ];
        let picks = vec![
            Particle::new("ribosome", 10.5, 10.0, 10.0),
            Particle::new("ribosome", 50.0, 50.0, 50.0),
            Particle::new("proteasome", 30.0, 30.5, 30.0),
        ];
        let mut r = evaluate_two_classes(&picks, &truth);
        r.inputs.insert("picks".into(), "p.star".into());
        r.pr_curves.push(capsid_eval::PrCurve {
            class: "ribosome".into(),
            n_positive: 105,
            n_voxels: 1000,
            auprc: 0.8123,
            best_f1: 0.9,
            threshold_at_best_f1: 0.4,
            dice_at_half: 0.88,
            points: vec![
                capsid_eval::PrPoint {
                    threshold: 0.9,
                    precision: 1.0,
                    recall: 0.1,
                },
                capsid_eval::PrPoint {
                    threshold: 0.1,
                    precision: 0.2,
                    recall: 1.0,
                },
            ],
        });
        r
    }

    #[test]
    fn tables_curves_and_settings_of_an_evaluation() {
        let s = eval_summary(&evaluation());
        let titles: Vec<&str> = s.tables.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(titles, vec!["picks", "precision–recall"]);
        let picks = &s.tables[0].1;
        assert_eq!(
            &picks.header[..9],
            &[
                "class",
                "n_truth",
                "n_picks",
                "tp",
                "fp",
                "fn",
                "precision",
                "recall",
                "f1"
            ]
        );
        let names: Vec<&str> = picks.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, vec!["ribosome", "proteasome", "pooled", "macro_avg"]);
        let col = |name: &str| picks.header.iter().position(|h| h == name).unwrap();
        // Ribosome: 1 of 2 found, 1 false pick; pooled: 2 TP of 3 picks.
        assert_eq!(picks.rows[0][col("precision")], "0.500");
        assert_eq!(picks.rows[2][col("tp")], "2");
        assert_eq!(picks.rows[2][col("precision")], "0.667");
        assert!(s.tables[1].1.header.contains(&"auprc".to_string()));
        assert_eq!(s.pr_curves.len(), 1);
        assert_eq!(s.pr_curves[0].name, "ribosome (AP 0.812)");
        assert_eq!(s.pr_curves[0].points, vec![(0.1, 1.0), (1.0, 0.2)]);
        assert!(s
            .settings
            .contains(&("params.tolerance_fraction".to_string(), "0.500".to_string())));
        assert!(s
            .settings
            .contains(&("inputs.picks".to_string(), "p.star".to_string())));
    }

    #[test]
    fn a_file_that_is_not_a_capsid_evaluation_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        std::fs::write(&p, serde_json::to_string(&evaluation()).unwrap()).unwrap();
        assert_eq!(read_evaluation(&p).unwrap().classes.len(), 2);
        std::fs::write(&p, r#"{"classes": [{"class": "a", "f1": 0.5}]}"#).unwrap();
        let e = read_evaluation(&p).unwrap_err().to_string();
        assert!(
            e.contains("summary.json") && e.contains("capsid evaluate"),
            "{e}"
        );
        std::fs::write(&p, "{").unwrap();
        assert!(read_evaluation(&p).is_err());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(42.14), "42.1 s");
        assert_eq!(human_duration(725.0), "12 min 5 s");
        assert_eq!(human_duration(12000.0), "3 h 20 min");
    }
}
