//! Line charts: learning curves from a training run's `metrics.csv` and precision–recall curves.

use crate::error::ReportError;
use crate::figure::{ensure_font, FONT};
use image::RgbImage;
use plotters::prelude::*;
use std::path::Path;

/// A numeric table to draw: column names and rows of values (`NaN` where there is none), made
/// from a training run's `metrics.csv` ([`MetricsTable::from_run`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl MetricsTable {
    /// The columns of a run's metrics (capsid-core's `run_metrics`, the file's one definition).
    pub fn from_run(m: &capsid_core::run_metrics::RunMetrics) -> Self {
        Self {
            columns: capsid_core::run_metrics::metrics_columns(&m.classes),
            rows: m.values(),
        }
    }

    /// The values of column `name`, if present.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i]).collect())
    }

    /// The x values of the curves: the `epoch` column if present (else `step`), else 1, 2, 3, …
    pub fn x_values(&self) -> (String, Vec<f64>) {
        for name in ["epoch", "step", "iteration"] {
            if let Some(v) = self.column(name) {
                return (name.to_string(), v);
            }
        }
        (
            "row".to_string(),
            (1..=self.rows.len()).map(|i| i as f64).collect(),
        )
    }

    /// Columns plotted as curves, split into (losses, other metrics). The x column and
    /// bookkeeping columns (time, seconds, learning rate) are left out, as are columns with no
    /// finite value.
    pub fn curve_columns(&self) -> (Vec<String>, Vec<String>) {
        let skip = |c: &str| {
            let l = c.to_ascii_lowercase();
            matches!(
                l.as_str(),
                "epoch" | "step" | "iteration" | "lr" | "learning_rate"
            ) || l.contains("time")
                || l.contains("second")
                || l.contains("elapsed")
                || l.ends_with("_s")
        };
        let (mut losses, mut others) = (Vec::new(), Vec::new());
        for (i, c) in self.columns.iter().enumerate() {
            if skip(c) || !self.rows.iter().any(|r| r[i].is_finite()) {
                continue;
            }
            if c.to_ascii_lowercase().contains("loss") {
                losses.push(c.clone());
            } else {
                others.push(c.clone());
            }
        }
        (losses, others)
    }
}

/// One named line: points `(x, y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A qualitative palette (Tableau 10), distinguishable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Axis range covering the finite values, padded by 5 % (or ±0.5 around a single value).
fn range_of(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return None;
    }
    if hi - lo < 1e-12 {
        return Some((lo - 0.5, hi + 0.5));
    }
    let pad = 0.05 * (hi - lo);
    Some((lo - pad, hi + pad))
}

/// An axis tick label: integers without decimals, other values with up to 3 decimals, trailing
/// zeros dropped.
pub fn tick_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        return format!("{:.0}", v.round());
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Chart settings.
pub struct ChartSpec<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Fixed axis ranges; `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Draw a dot at every point (useful for short curves).
    pub dots: bool,
    /// Where the legend goes (a corner the curves are unlikely to cross).
    pub legend: SeriesLabelPosition,
}

/// Draws line charts side by side (one per `(spec, series)`), each `chart_w × chart_h` pixels.
/// Non-finite points are left out; a chart with no finite point shows "no data".
pub fn line_charts(
    charts: &[(ChartSpec, Vec<Series>)],
    chart_w: u32,
    chart_h: u32,
) -> Result<RgbImage, ReportError> {
    ensure_font();
    let n = charts.len().max(1) as u32;
    let (w, h) = (chart_w * n, chart_h);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let areas = root.split_evenly((1, n as usize));
        for ((spec, series), area) in charts.iter().zip(areas.iter()) {
            draw_chart(area, spec, series).map_err(|e| ReportError::figure(spec.title, e))?;
        }
        root.present()
            .map_err(|e| ReportError::figure("chart", e))?;
    }
    RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| ReportError::figure("chart", "canvas size mismatch"))
}

fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    spec: &ChartSpec,
    series: &[Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let pts = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let xr = spec.x_range.or_else(|| range_of(pts().map(|p| p.0)));
    let yr = spec.y_range.or_else(|| range_of(pts().map(|p| p.1)));
    let (Some(xr), Some(yr)) = (xr, yr) else {
        area.draw_text(
            &format!("{}: no data", spec.title),
            &TextStyle::from((FONT, 16).into_font()).color(&BLACK),
            (20, 20),
        )?;
        return Ok(());
    };
    let mut chart = ChartBuilder::on(area)
        .caption(spec.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(58)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        if spec.dots {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(spec.legend.clone())
            .draw()?;
    }
    Ok(())
}

/// Renders a training run's `metrics.csv` as its `learning_curve.png` (the figure of
/// [`learning_curve_figure`]: axes with units, legends; written to a temporary file, then
/// renamed). Returns false, writing nothing, when the table has no curve column yet.
pub fn write_learning_curve(
    metrics_csv: &Path,
    png: &Path,
    model: &str,
) -> Result<bool, ReportError> {
    let table = MetricsTable::from_run(&capsid_core::run_metrics::RunMetrics::read(metrics_csv)?);
    let Some(img) = learning_curve_figure(model, &table)? else {
        return Ok(false);
    };
    let bytes = crate::figure::png_bytes(&img)?;
    capsid_core::write_atomically(png, |w| std::io::Write::write_all(w, &bytes))?;
    Ok(true)
}

/// The learning-curve figure of one training run: losses on the left, other metrics (F1, …) on
/// the right, against epoch. `None` when the table has no curve column.
pub fn learning_curve_figure(
    model: &str,
    table: &MetricsTable,
) -> Result<Option<RgbImage>, ReportError> {
    let (x_name, xs) = table.x_values();
    let (losses, others) = table.curve_columns();
    if losses.is_empty() && others.is_empty() {
        return Ok(None);
    }
    let series_of = |cols: &[String]| -> Vec<Series> {
        cols.iter()
            .filter_map(|c| {
                table.column(c).map(|ys| Series {
                    name: c.clone(),
                    points: xs.iter().copied().zip(ys).collect(),
                })
            })
            .collect()
    };
    let dots = table.rows.len() <= 30;
    let loss_title = format!("{model}: loss");
    let metric_title = format!("{model}: validation metrics");
    let mut charts = Vec::new();
    if !losses.is_empty() {
        charts.push((
            ChartSpec {
                title: &loss_title,
                x_label: &x_name,
                y_label: "loss",
                x_range: None,
                y_range: None,
                dots,
                legend: SeriesLabelPosition::UpperRight,
            },
            series_of(&losses),
        ));
    }
    if !others.is_empty() {
        // Scores in [0, 1] get a fixed axis so runs compare at a glance.
        let all_unit = others
            .iter()
            .filter_map(|c| table.column(c))
            .flatten()
            .filter(|v| v.is_finite())
            .all(|v| (0.0..=1.0).contains(&v));
        charts.push((
            ChartSpec {
                title: &metric_title,
                x_label: &x_name,
                y_label: "value",
                x_range: None,
                y_range: if all_unit { Some((0.0, 1.02)) } else { None },
                dots,
                legend: SeriesLabelPosition::LowerRight,
            },
            series_of(&others),
        ));
    }
    line_charts(&charts, 560, 380).map(Some)
}

/// Precision–recall curves (recall on x, precision on y, both 0–1), one line per series.
pub fn pr_curve_figure(title: &str, series: &[Series]) -> Result<RgbImage, ReportError> {
    let spec = ChartSpec {
        title,
        x_label: "recall",
        y_label: "precision",
        x_range: Some((0.0, 1.02)),
        y_range: Some((0.0, 1.02)),
        dots: series.iter().all(|s| s.points.len() <= 30),
        legend: SeriesLabelPosition::LowerLeft,
    };
    line_charts(&[(spec, series.to_vec())], 560, 460)
}

#[cfg(test)]
mod tests {
    use super::*;

    use capsid_core::run_metrics::{EpochRecord, RunMetrics};

    /// Three epochs of a run with one class, "ribosome"; no F1 in the last epoch.
    fn run() -> MetricsTable {
        let rows = [(0.9, 1.0, 0.1), (0.5, 0.7, 0.4), (0.3, 0.6, f64::NAN)]
            .iter()
            .enumerate()
            .map(|(i, &(t, v, f))| EpochRecord {
                epoch: i + 1,
                step: 60 * (i as u64 + 1),
                lr: 1e-3,
                train_loss: t,
                val_loss: v,
                precision: vec![f64::NAN],
                recall: vec![f64::NAN],
                f1: vec![f],
                elapsed_s: 45.0 * (i as f64 + 1.0),
            })
            .collect();
        MetricsTable::from_run(&RunMetrics {
            classes: vec!["ribosome".into()],
            rows,
        })
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(0.125), "0.125");
        assert_eq!(tick_label(0.30000000004), "0.3");
    }

    #[test]
    fn run_metrics_give_the_curve_columns() {
        let t = run();
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.x_values(), ("epoch".to_string(), vec![1.0, 2.0, 3.0]));
        let (l, o) = t.curve_columns();
        assert_eq!(l, vec!["train_loss", "val_loss"]);
        // Columns without a finite value are left out; the elapsed time is bookkeeping, not a
        // score (it used to be drawn on the score axis, flattening F1, precision and recall).
        assert_eq!(o, vec!["val_mean_f1", "f1_ribosome"]);
        assert!(t.column("f1_ribosome").unwrap()[2].is_nan());
    }

    #[test]
    fn a_foreign_csv_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("metrics.csv");
        std::fs::write(&csv, "epoch,loss\n1,2\n").unwrap();
        let e = write_learning_curve(&csv, &dir.path().join("c.png"), "unet")
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.csv") && e.contains("header"), "{e}");
        assert!(!dir.path().join("c.png").exists());
    }

    #[test]
    fn learning_curve_draws_coloured_lines() {
        let t = run();
        let img = learning_curve_figure("unet", &t).unwrap().unwrap();
        assert_eq!((img.width(), img.height()), (1120, 380));
        // The first series colour appears in both charts (train_loss left, val_f1 right).
        let c = PALETTE[0];
        let is_c = |p: &image::Rgb<u8>| p.0 == [c.0, c.1, c.2];
        let left = img
            .enumerate_pixels()
            .filter(|(x, _, p)| *x < 560 && is_c(p))
            .count();
        let right = img
            .enumerate_pixels()
            .filter(|(x, _, p)| *x >= 560 && is_c(p))
            .count();
        assert!(left > 50 && right > 50, "{left} {right}");
        let none = MetricsTable::from_run(&RunMetrics {
            classes: vec![],
            rows: vec![],
        });
        assert!(learning_curve_figure("m", &none).unwrap().is_none());
    }

    #[test]
    fn pr_curve_and_empty_chart() {
        let s = Series {
            name: "ribosome".into(),
            points: vec![(0.0, 1.0), (0.5, 0.9), (1.0, 0.3)],
        };
        let img = pr_curve_figure("PR", &[s]).unwrap();
        assert_eq!(img.width(), 560);
        let c = PALETTE[0];
        assert!(img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count() > 100);
        let empty = pr_curve_figure(
            "PR",
            &[Series {
                name: "x".into(),
                points: vec![(f64::NAN, 1.0)],
            }],
        )
        .unwrap();
        assert_eq!(empty.height(), 460);
    }
}
