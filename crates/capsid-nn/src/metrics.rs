//! Voxel-wise training metrics and the per-epoch `metrics.csv` (its figure, `learning_curve.png`,
//! is drawn by capsid-report's `curves::write_learning_curve`, with axes and legends).
//!
//! * [`VoxelCounts`]: true/false positives and false negatives per class from predicted and true
//!   label maps; precision, recall and F1 per class.
//! * [`EpochRecord`]: one row of `metrics.csv` (epoch, step, learning rate, losses, per-class
//!   precision/recall/F1 on the validation patches).
//! * [`write_metrics_csv`] / [`read_metrics_csv`].

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
    fn csv_round_trip() {
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
    }
}
