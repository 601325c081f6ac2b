//! Reading the tables of a report from JSON, tolerantly: an evaluation summary (per-class
//! precision, recall, F1, …, and precision–recall curves) and stage wall times.
//!
//! The evaluation JSON is read generically (`serde_json::Value`) so the report does not depend on
//! capsid-eval's exact struct (it reads capsid-eval's `EvaluationReport` and similar files).
//! Accepted shapes:
//!
//! * per-class rows (table "picks"): an array of objects under `classes` / `per_class` /
//!   `class_metrics` / `by_class` / `results` (each naming its class in `class`, `name` or
//!   `class_name`), or an object under those keys mapping class name → object, or a top-level
//!   array of such objects;
//! * summary rows in the same table: objects under `pooled`, `macro_avg`, `overall`, `micro`,
//!   `macro`, `all`, `total`; top-level scalars `<key>_<field>` join the row of `<key>`
//!   (`pooled_precision` → row `pooled`, column `precision`);
//! * voxel scores (table "voxels"): an array or map under `voxel` / `voxel_scores`;
//! * precision–recall curves: under a top-level key holding `pr` or `curve`, an array of objects
//!   naming their class (their scalar fields make the table "precision–recall") or a map class →
//!   curve, or a field of a class row; a curve is an array of objects with `recall` and
//!   `precision`, or an object with `recall` and `precision` arrays (also under `points`);
//! * every scalar field of a row (number, string, bool) becomes a column; known columns (counts,
//!   precision, recall, F-scores) first;
//! * other top-level scalars, and scalars of top-level objects one level down (`params.beta`),
//!   are listed as settings.

use crate::curves::Series;
use crate::error::ReportError;
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

const CLASS_LIST_KEYS: [&str; 6] = [
    "classes",
    "per_class",
    "class_metrics",
    "by_class",
    "results",
    "per_class_metrics",
];
const SUMMARY_KEYS: [&str; 9] = [
    "pooled",
    "macro_avg",
    "overall",
    "micro",
    "macro",
    "all",
    "total",
    "micro_average",
    "macro_average",
];
const VOXEL_KEYS: [&str; 2] = ["voxel", "voxel_scores"];
const NAME_KEYS: [&str; 3] = ["class", "name", "class_name"];
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

/// The points `(recall, precision)` of a curve value, if `v` is one (see the module docs).
pub fn pr_points(v: &Value) -> Option<Vec<(f64, f64)>> {
    match v {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|p| Some((p.get("recall")?.as_f64()?, p.get("precision")?.as_f64()?)))
            .collect(),
        Value::Object(o) => {
            if let Some(points) = o.get("points") {
                return pr_points(points);
            }
            let r = o.get("recall")?.as_array()?;
            let p = o.get("precision")?.as_array()?;
            if r.len() != p.len() || r.is_empty() {
                return None;
            }
            r.iter()
                .zip(p)
                .map(|(r, p)| Some((r.as_f64()?, p.as_f64()?)))
                .collect()
        }
        _ => None,
    }
}

type Row = (String, Map<String, Value>);

fn rows_of(v: &Value) -> Vec<Row> {
    let named = |o: &Map<String, Value>| NAME_KEYS.iter().find_map(|k| o.get(*k).and_then(cell));
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| {
                it.as_object()
                    .map(|o| (named(o).unwrap_or_else(|| format!("#{}", i + 1)), o.clone()))
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, it)| it.as_object().map(|o| (k.clone(), o.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// A table of `rows`: one column per scalar field (known columns first), names first.
fn table_of(rows: &[Row]) -> Table {
    let mut keys: Vec<String> = Vec::new();
    for (_, o) in rows {
        for (k, v) in o.iter() {
            if !NAME_KEYS.contains(&k.as_str())
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

/// The series name of a curve: the class, with its AP when the row gives one.
fn curve_name(name: &str, row: &Map<String, Value>) -> String {
    match row
        .get("auprc")
        .or_else(|| row.get("ap"))
        .and_then(Value::as_f64)
    {
        Some(ap) => format!("{name} (AP {ap:.3})"),
        None => name.to_string(),
    }
}

/// Reads an evaluation summary from JSON text; `origin` names the file in errors.
pub fn parse_eval_summary(text: &str, origin: &Path) -> Result<EvalSummary, ReportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ReportError::input(origin, format!("invalid JSON: {e}")))?;
    let mut out = EvalSummary::default();
    let mut class_rows: Vec<Row> = Vec::new();
    match &root {
        Value::Array(_) => class_rows = rows_of(&root),
        Value::Object(m) => {
            let mut used: Vec<String> = Vec::new();
            for k in CLASS_LIST_KEYS {
                if let Some(v) = m.get(k) {
                    class_rows.extend(rows_of(v));
                    used.push(k.to_string());
                }
            }
            for k in SUMMARY_KEYS {
                if let Some(Value::Object(o)) = m.get(k) {
                    let mut row = o.clone();
                    let prefix = format!("{k}_");
                    for (tk, tv) in m {
                        if let (Some(field), Some(_)) = (tk.strip_prefix(&prefix), cell(tv)) {
                            row.insert(field.to_string(), tv.clone());
                            used.push(tk.clone());
                        }
                    }
                    class_rows.push((k.to_string(), row));
                    used.push(k.to_string());
                }
            }
            for k in VOXEL_KEYS {
                if let Some(v) = m.get(k) {
                    let rows = rows_of(v);
                    if !rows.is_empty() {
                        out.tables.push(("voxels".into(), table_of(&rows)));
                    }
                    used.push(k.to_string());
                }
            }
            for (k, v) in m {
                if used.contains(k) {
                    continue;
                }
                if v.is_null() {
                    continue;
                }
                if let Some(c) = cell(v) {
                    out.settings.push((k.clone(), c));
                    continue;
                }
                let is_curve_key = k.contains("pr") || k.contains("curve");
                match v {
                    Value::Array(_) if is_curve_key => {
                        let rows = rows_of(v);
                        for (name, row) in &rows {
                            if let Some(points) = pr_points(&Value::Object(row.clone())) {
                                out.pr_curves.push(Series {
                                    name: curve_name(name, row),
                                    points,
                                });
                            }
                        }
                        if rows
                            .iter()
                            .any(|(_, r)| r.values().any(|x| cell(x).is_some() && !x.is_string()))
                        {
                            out.tables
                                .push(("precision–recall".into(), table_of(&rows)));
                        }
                    }
                    Value::Object(o)
                        if is_curve_key && o.values().any(|c| pr_points(c).is_some()) =>
                    {
                        for (name, c) in o {
                            if let Some(points) = pr_points(c) {
                                out.pr_curves.push(Series {
                                    name: name.clone(),
                                    points,
                                });
                            }
                        }
                    }
                    Value::Object(o) => {
                        for (sk, sv) in o {
                            if let Some(c) = cell(sv) {
                                out.settings.push((format!("{k}.{sk}"), c));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {
            return Err(ReportError::input(
                origin,
                "expected a JSON object or array",
            ))
        }
    }
    for (name, o) in &class_rows {
        for v in o.values() {
            if let Some(points) = pr_points(v) {
                out.pr_curves.push(Series {
                    name: curve_name(name, o),
                    points,
                });
            }
        }
    }
    if !class_rows.is_empty() {
        out.tables
            .insert(0, ("picks".into(), table_of(&class_rows)));
    }
    if out.tables.is_empty() && out.pr_curves.is_empty() {
        return Err(ReportError::input(
            origin,
            format!(
                "no per-class results found (looked for keys {})",
                CLASS_LIST_KEYS.join(", ")
            ),
        ));
    }
    Ok(out)
}

/// One stage of a run and its wall time in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTime {
    pub name: String,
    pub seconds: f64,
    /// Other scalar fields of the stage record (`device`, `model`, …) as `key=value`.
    pub details: String,
}

/// Reads stage wall times: `{"stages": [{"name": "simulate", "seconds": 12.5, ...}, ...]}` or a
/// plain object `{"simulate": 12.5, ...}`.
pub fn parse_timings(text: &str, origin: &Path) -> Result<Vec<StageTime>, ReportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ReportError::input(origin, format!("invalid JSON: {e}")))?;
    let bad = |m: String| ReportError::input(origin, m);
    if let Some(stages) = root.get("stages") {
        let items = stages
            .as_array()
            .ok_or_else(|| bad("'stages' must be an array".into()))?;
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let name = it
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("stage {}: no \"name\"", i + 1)))?;
            let seconds = it
                .get("seconds")
                .and_then(Value::as_f64)
                .ok_or_else(|| bad(format!("stage '{name}': no numeric \"seconds\"")))?;
            let details = it
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| k.as_str() != "name" && k.as_str() != "seconds")
                        .filter_map(|(k, v)| cell(v).map(|c| format!("{k}={c}")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            out.push(StageTime {
                name: name.to_string(),
                seconds,
                details,
            });
        }
        return Ok(out);
    }
    match &root {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                v.as_f64()
                    .map(|s| StageTime {
                        name: k.clone(),
                        seconds: s,
                        details: String::new(),
                    })
                    .ok_or_else(|| bad(format!("stage '{k}': seconds must be a number")))
            })
            .collect(),
        _ => Err(bad(
            "expected {\"stages\": [{\"name\": …, \"seconds\": …}]}".into(),
        )),
    }
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
mod tests {
    use super::*;

    #[test]
    fn eval_summary_array_of_classes() {
        let text = r#"{"beta": 2, "match_radius": "class radius",
          "classes": [
            {"class": "ribosome", "tp": 10, "fp": 2, "fn": 1, "precision": 0.8333333, "recall": 0.909, "f1": 0.87,
             "pr_curve": [{"threshold": 0.9, "precision": 1.0, "recall": 0.2}, {"threshold": 0.5, "precision": 0.8, "recall": 0.9}]},
            {"class": "tric", "tp": 0, "fp": 0, "fn": 3, "precision": null, "recall": 0.0, "f_beta": 0.0}
          ],
          "overall": {"precision": 0.8, "recall": 0.7, "f1": 0.75}}"#;
        let s = parse_eval_summary(text, Path::new("e.json")).unwrap();
        assert_eq!(
            s.tables[0].1.header,
            vec![
                "class",
                "tp",
                "fp",
                "fn",
                "precision",
                "recall",
                "f1",
                "f_beta"
            ]
        );
        assert_eq!(s.tables[0].1.rows.len(), 3);
        assert_eq!(
            s.tables[0].1.rows[0],
            vec!["ribosome", "10", "2", "1", "0.833", "0.909", "0.870", ""]
        );
        assert_eq!(s.tables[0].1.rows[1][4], "");
        assert_eq!(s.tables[0].1.rows[2][0], "overall");
        assert_eq!(s.pr_curves.len(), 1);
        assert_eq!(s.pr_curves[0].name, "ribosome");
        assert_eq!(s.pr_curves[0].points, vec![(0.2, 1.0), (0.9, 0.8)]);
        assert!(s.settings.contains(&("beta".to_string(), "2".to_string())));
        // Whole ratios keep 3 decimals; whole floats elsewhere print as integers.
        let s = parse_eval_summary(
            r#"{"classes":[{"class":"a","recall":1,"tp":3.0}]}"#,
            Path::new("e"),
        )
        .unwrap();
        assert_eq!(s.tables[0].1.rows[0], vec!["a", "3", "1.000"]);
    }

    #[test]
    fn eval_summary_map_and_curve_arrays() {
        let text = r#"{"per_class": {"a": {"f1": 0.5}},
                       "pr_curves": {"a": {"recall": [0.1, 0.5], "precision": [0.9, 0.6]}}}"#;
        let s = parse_eval_summary(text, Path::new("e.json")).unwrap();
        assert_eq!(
            s.tables[0].1.rows,
            vec![vec!["a".to_string(), "0.500".to_string()]]
        );
        assert_eq!(s.pr_curves[0].points, vec![(0.1, 0.9), (0.5, 0.6)]);
        let e = parse_eval_summary("{\"x\": 1}", Path::new("e.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("e.json") && e.contains("no per-class"), "{e}");
        let e = parse_eval_summary("{", Path::new("bad.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.json") && e.contains("invalid JSON"), "{e}");
    }

    #[test]
    fn eval_summary_of_capsid_eval_shape() {
        // The shape of capsid-eval's EvaluationReport (fields abridged).
        let text = r#"{"capsid_version": "0.1.0", "inputs": {"picks": "p.star"},
          "params": {"tolerance_fraction": 1.0, "beta": 4.0, "class_weights": {}, "voxel_size_a": 10.0, "shape_xyz": null},
          "n_picks": 5, "n_truth": 4,
          "classes": [{"class": "ribosome", "label": 1, "n_truth": 4, "n_picks": 5, "tp": 3, "fp": 2, "fn": 1,
                       "precision": 0.6, "recall": 0.75, "f1": 0.6667, "fbeta": 0.74}],
          "pooled": {"tp": 3, "fp": 2, "fn": 1}, "pooled_precision": 0.6, "pooled_recall": 0.75, "pooled_f1": 0.6667,
          "macro_avg": {"n_classes": 1, "precision": 0.6, "recall": 0.75, "f1": 0.6667, "fbeta": 0.74, "fbeta_weighted": 0.74},
          "confusion": {"classes": ["ribosome"], "counts": [[3]]},
          "hitbox": null,
          "voxel": [{"class": "ribosome", "label": 1, "tp": 100, "fp": 10, "fn": 5, "dice": 0.93, "iou": 0.87, "precision": 0.91, "recall": 0.95}],
          "pr_curves": [{"class": "ribosome", "n_positive": 105, "n_voxels": 1000, "auprc": 0.8123, "best_f1": 0.9,
                         "threshold_at_best_f1": 0.4, "dice_at_half": 0.88,
                         "points": [{"threshold": 0.9, "precision": 1.0, "recall": 0.1}, {"threshold": 0.1, "precision": 0.2, "recall": 1.0}]}]}"#;
        let s = parse_eval_summary(text, Path::new("summary.json")).unwrap();
        let titles: Vec<&str> = s.tables.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(titles, vec!["picks", "voxels", "precision–recall"]);
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
        assert_eq!(names, vec!["ribosome", "pooled", "macro_avg"]);
        // pooled_precision joined the pooled row.
        let col = |name: &str| picks.header.iter().position(|h| h == name).unwrap();
        assert_eq!(picks.rows[1][col("precision")], "0.600");
        assert_eq!(picks.rows[1][col("tp")], "3");
        assert_eq!(s.tables[1].1.rows[0][0], "ribosome");
        assert!(s.tables[2].1.header.contains(&"auprc".to_string()));
        assert_eq!(s.pr_curves.len(), 1);
        assert_eq!(s.pr_curves[0].name, "ribosome (AP 0.812)");
        assert_eq!(s.pr_curves[0].points, vec![(0.1, 1.0), (1.0, 0.2)]);
        assert!(s
            .settings
            .contains(&("params.beta".to_string(), "4".to_string())));
        assert!(s
            .settings
            .contains(&("inputs.picks".to_string(), "p.star".to_string())));
        assert!(!s.settings.iter().any(|(k, _)| k == "pooled_precision"));
    }

    #[test]
    fn timings_both_shapes() {
        let t = parse_timings(r#"{"stages":[{"name":"simulate","seconds":12.5},{"name":"train","seconds":4000,"device":"cpu"}]}"#, Path::new("t.json")).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].details, "device=cpu");
        let t = parse_timings(r#"{"pick": 3}"#, Path::new("t.json")).unwrap();
        assert_eq!(t[0].name, "pick");
        let e = parse_timings(r#"{"stages":[{"name":"x"}]}"#, Path::new("t.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.json") && e.contains("seconds"), "{e}");
        assert_eq!(human_duration(42.14), "42.1 s");
        assert_eq!(human_duration(725.0), "12 min 5 s");
        assert_eq!(human_duration(12000.0), "3 h 20 min");
    }
}
