//! Voxel-wise training metrics, the per-epoch `metrics.csv` and the learning-curve PNG.
//!
//! * [`VoxelCounts`]: true/false positives and false negatives per class from predicted and true
//!   label maps; precision, recall and F1 per class.
//! * [`EpochRecord`]: one row of `metrics.csv` (epoch, step, learning rate, losses, per-class
//!   precision/recall/F1 on the validation patches).
//! * [`write_metrics_csv`] / [`read_metrics_csv`] and [`learning_curve_png`] (text-free: train
//!   loss in blue, validation loss in red on the left panel; validation mean F1 in green on the
//!   right panel, 0..1; light grey grid lines at each tenth).

use crate::NnError;
use std::io::Write;
use std::path::Path;

/// Voxel counts per class 0..C (index 0 = background, kept for completeness).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoxelCounts {
    pub tp: Vec<u64>,
    pub fp: Vec<u64>,
    pub fn_: Vec<u64>,
}

impl VoxelCounts {
    /// Zero counts for `num_classes` classes (background included).
    pub fn new(num_classes: usize) -> Self {
        Self {
            tp: vec![0; num_classes],
            fp: vec![0; num_classes],
            fn_: vec![0; num_classes],
        }
    }

    /// Adds the voxels of one predicted and one true label map (same length; labels ≥ C are
    /// ignored).
    pub fn add(&mut self, predicted: &[u8], truth: &[u8]) {
        let c = self.tp.len();
        for (&p, &t) in predicted.iter().zip(truth) {
            let (p, t) = (p as usize, t as usize);
            if p == t {
                if p < c {
                    self.tp[p] += 1;
                }
            } else {
                if p < c {
                    self.fp[p] += 1;
                }
                if t < c {
                    self.fn_[t] += 1;
                }
            }
        }
    }

    /// Precision of class `c` (0 when nothing was predicted as `c`).
    pub fn precision(&self, c: usize) -> f64 {
        ratio(self.tp[c], self.tp[c] + self.fp[c])
    }

    /// Recall of class `c` (0 when class `c` is absent).
    pub fn recall(&self, c: usize) -> f64 {
        ratio(self.tp[c], self.tp[c] + self.fn_[c])
    }

    /// F1 of class `c`: 2·TP / (2·TP + FP + FN), 0 when all three are 0.
    pub fn f1(&self, c: usize) -> f64 {
        ratio(2 * self.tp[c], 2 * self.tp[c] + self.fp[c] + self.fn_[c])
    }

    /// Mean F1 over the foreground classes 1..C.
    pub fn mean_f1(&self) -> f64 {
        let c = self.tp.len();
        if c <= 1 {
            return 0.0;
        }
        (1..c).map(|k| self.f1(k)).sum::<f64>() / (c - 1) as f64
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One epoch's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, 1-based.
    pub epoch: usize,
    /// Global step count at the end of the epoch.
    pub step: u64,
    /// Learning rate used in the epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Mean validation loss (NaN when there is no validation set).
    pub val_loss: f64,
    /// Validation precision, recall and F1 of the foreground classes 1..C, in class order.
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    /// Seconds since training began (summed over resumed runs).
    pub elapsed_s: f64,
}

impl EpochRecord {
    /// Mean F1 over the foreground classes (0 when there are none).
    pub fn mean_f1(&self) -> f64 {
        if self.f1.is_empty() {
            0.0
        } else {
            self.f1.iter().sum::<f64>() / self.f1.len() as f64
        }
    }
}

/// The CSV header for foreground class names `classes`.
pub fn csv_header(classes: &[String]) -> String {
    let mut cols = vec![
        "epoch",
        "step",
        "lr",
        "train_loss",
        "val_loss",
        "val_mean_f1",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for c in classes {
        cols.push(format!("precision_{c}"));
        cols.push(format!("recall_{c}"));
        cols.push(format!("f1_{c}"));
    }
    cols.push("elapsed_s".into());
    cols.join(",")
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v:.6}")
    }
}

/// Writes all rows to `path` (atomically, replacing the file).
pub fn write_metrics_csv(
    path: &Path,
    classes: &[String],
    rows: &[EpochRecord],
) -> Result<(), NnError> {
    let mut text = csv_header(classes);
    text.push('\n');
    for r in rows {
        let mut cols = vec![
            r.epoch.to_string(),
            r.step.to_string(),
            format!("{:e}", r.lr),
            fmt(r.train_loss),
            fmt(r.val_loss),
            fmt(r.mean_f1()),
        ];
        for k in 0..classes.len() {
            cols.push(fmt(r.precision.get(k).copied().unwrap_or(f64::NAN)));
            cols.push(fmt(r.recall.get(k).copied().unwrap_or(f64::NAN)));
            cols.push(fmt(r.f1.get(k).copied().unwrap_or(f64::NAN)));
        }
        cols.push(format!("{:.1}", r.elapsed_s));
        text.push_str(&cols.join(","));
        text.push('\n');
    }
    capsid_core::write_atomically(path, |w| w.write_all(text.as_bytes())).map_err(|e| NnError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Reads a `metrics.csv` written by [`write_metrics_csv`] with `num_classes` foreground classes.
pub fn read_metrics_csv(path: &Path, num_classes: usize) -> Result<Vec<EpochRecord>, NnError> {
    let text = std::fs::read_to_string(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, why: &str| NnError::Model {
        path: path.to_path_buf(),
        reason: format!("line {line}: {why}"),
    };
    let num = |s: &str| -> Option<f64> {
        if s.is_empty() {
            Some(f64::NAN)
        } else {
            s.parse().ok()
        }
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 + 3 * num_classes {
            return Err(bad(
                i + 1,
                &format!(
                    "expected {} columns, found {}",
                    7 + 3 * num_classes,
                    f.len()
                ),
            ));
        }
        let get = |k: usize| {
            num(f[k]).ok_or_else(|| bad(i + 1, &format!("column {} is not a number", k + 1)))
        };
        let mut r = EpochRecord {
            epoch: f[0]
                .parse()
                .map_err(|_| bad(i + 1, "epoch is not an integer"))?,
            step: f[1]
                .parse()
                .map_err(|_| bad(i + 1, "step is not an integer"))?,
            lr: get(2)?,
            train_loss: get(3)?,
            val_loss: get(4)?,
            precision: vec![],
            recall: vec![],
            f1: vec![],
            elapsed_s: get(6 + 3 * num_classes)?,
        };
        for k in 0..num_classes {
            r.precision.push(get(6 + 3 * k)?);
            r.recall.push(get(7 + 3 * k)?);
            r.f1.push(get(8 + 3 * k)?);
        }
        rows.push(r);
    }
    Ok(rows)
}

/// Draws the learning curves into an RGB image of `width × height` pixels: left panel losses
/// (train blue, validation red; y from 0 to the largest loss), right panel validation mean F1
/// (green; y from 0 to 1). x is the epoch. No text, so no font is needed.
pub fn learning_curve_image(rows: &[EpochRecord], width: u32, height: u32) -> image::RgbImage {
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let half = width / 2;
    let panels = [(0u32, half), (half, width)];
    let max_loss = rows
        .iter()
        .flat_map(|r| [r.train_loss, r.val_loss])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let n = rows.len().max(2) as f64 - 1.0;
    for (pi, &(x0, x1)) in panels.iter().enumerate() {
        let m = 12u32;
        let (left, right, top, bottom) =
            (x0 + m, x1.saturating_sub(m), m, height.saturating_sub(m));
        if right <= left + 2 || bottom <= top + 2 {
            continue;
        }
        // Grid and axes.
        for k in 0..=10u32 {
            let y = bottom - (bottom - top) * k / 10;
            draw_line(
                &mut img,
                left as f64,
                y as f64,
                right as f64,
                y as f64,
                [225, 225, 225],
            );
        }
        draw_line(
            &mut img,
            left as f64,
            top as f64,
            left as f64,
            bottom as f64,
            [0, 0, 0],
        );
        draw_line(
            &mut img,
            left as f64,
            bottom as f64,
            right as f64,
            bottom as f64,
            [0, 0, 0],
        );
        let px = |i: usize| left as f64 + (right - left) as f64 * i as f64 / n;
        let py =
            |v: f64, max: f64| bottom as f64 - (bottom - top) as f64 * (v / max).clamp(0.0, 1.0);
        let series: Vec<(Vec<f64>, f64, [u8; 3])> = if pi == 0 {
            vec![
                (
                    rows.iter().map(|r| r.train_loss).collect(),
                    max_loss,
                    [31, 119, 180],
                ),
                (
                    rows.iter().map(|r| r.val_loss).collect(),
                    max_loss,
                    [214, 39, 40],
                ),
            ]
        } else {
            vec![(
                rows.iter().map(|r| r.mean_f1()).collect(),
                1.0,
                [44, 160, 44],
            )]
        };
        for (vals, max, color) in series {
            for i in 0..vals.len() {
                if !vals[i].is_finite() {
                    continue;
                }
                let (xa, ya) = (px(i), py(vals[i], max));
                draw_dot(&mut img, xa, ya, color);
                if i + 1 < vals.len() && vals[i + 1].is_finite() {
                    draw_line(&mut img, xa, ya, px(i + 1), py(vals[i + 1], max), color);
                }
            }
        }
    }
    img
}

/// Writes [`learning_curve_image`] (800 × 300) as PNG, atomically.
pub fn learning_curve_png(path: &Path, rows: &[EpochRecord]) -> Result<(), NnError> {
    let img = learning_curve_image(rows, 800, 300);
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| NnError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    capsid_core::write_atomically(path, |w| w.write_all(&bytes)).map_err(|e| NnError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn put(img: &mut image::RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, image::Rgb(c));
    }
}

fn draw_line(img: &mut image::RgbImage, x0: f64, y0: f64, x1: f64, y1: f64, c: [u8; 3]) {
    let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        put(
            img,
            (x0 + (x1 - x0) * t).round() as i64,
            (y0 + (y1 - y0) * t).round() as i64,
            c,
        );
    }
}

fn draw_dot(img: &mut image::RgbImage, x: f64, y: f64, c: [u8; 3]) {
    for dy in -2..=2 {
        for dx in -2..=2 {
            put(img, x.round() as i64 + dx, y.round() as i64 + dy, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_precision_recall_f1() {
        let mut c = VoxelCounts::new(3);
        c.add(&[0, 1, 1, 2, 0, 1], &[0, 1, 0, 2, 1, 2]);
        // class 1: tp 1, fp 2 (voxels 2, 5), fn 1 (voxel 4)
        assert_eq!((c.tp[1], c.fp[1], c.fn_[1]), (1, 2, 1));
        assert!((c.precision(1) - 1.0 / 3.0).abs() < 1e-12);
        assert!((c.recall(1) - 0.5).abs() < 1e-12);
        assert!((c.f1(1) - 2.0 / 5.0).abs() < 1e-12);
        // class 2: tp 1, fn 1
        assert!((c.f1(2) - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.mean_f1() - (0.4 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn csv_round_trip_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<EpochRecord> = (1..=3)
            .map(|e| EpochRecord {
                epoch: e,
                step: e as u64 * 10,
                lr: 1e-4,
                train_loss: 1.0 / e as f64,
                val_loss: if e == 2 { f64::NAN } else { 1.5 / e as f64 },
                precision: vec![0.5],
                recall: vec![0.25],
                f1: vec![0.1 * e as f64],
                elapsed_s: e as f64,
            })
            .collect();
        let p = dir.path().join("metrics.csv");
        write_metrics_csv(&p, &["ribosome".into()], &rows).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("epoch,step,lr,train_loss,val_loss,val_mean_f1,precision_ribosome")
        );
        let back = read_metrics_csv(&p, 1).unwrap();
        assert_eq!(back.len(), 3);
        assert!(back[1].val_loss.is_nan());
        assert!((back[2].f1[0] - 0.3).abs() < 1e-6);
        let png = dir.path().join("curve.png");
        learning_curve_png(&png, &rows).unwrap();
        let img = image::open(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (800, 300));
        // Some blue pixels of the training curve are drawn.
        assert!(img.pixels().any(|p| p.0 == [31, 119, 180]));
    }
}
