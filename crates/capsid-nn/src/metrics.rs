//! Voxel-wise training metrics and the per-epoch `metrics.csv` (its figure, `learning_curve.png`,
//! is drawn by capsid-report's `curves::write_learning_curve`, with axes and legends).
//!
//! * [`VoxelCounts`]: true/false positives and false negatives per class from predicted and true
//!   label maps; precision, recall and F1 per class.
//! * [`EpochRecord`]: one row of `metrics.csv` (epoch, step, learning rate, losses, per-class
//!   precision/recall/F1 on the validation patches), defined with the file's columns in
//!   capsid-core's `run_metrics` (capsid-report reads the same file through it).
//! * [`write_metrics_csv`] / [`read_metrics_csv`].

use crate::NnError;
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

pub use capsid_core::run_metrics::{EpochRecord, RunMetrics};

/// Writes all rows to `path` (atomically, replacing the file) in capsid-core's
/// [`RunMetrics`] format.
pub fn write_metrics_csv(
    path: &Path,
    classes: &[String],
    rows: &[EpochRecord],
) -> Result<(), NnError> {
    RunMetrics {
        classes: classes.to_vec(),
        rows: rows.to_vec(),
    }
    .write(path)?;
    Ok(())
}

/// Reads a `metrics.csv` of a run with `num_classes` foreground classes.
pub fn read_metrics_csv(path: &Path, num_classes: usize) -> Result<Vec<EpochRecord>, NnError> {
    let m = RunMetrics::read(path)?;
    if m.classes.len() != num_classes {
        return Err(NnError::Model {
            path: path.to_path_buf(),
            reason: format!(
                "holds {} class(es), the run has {num_classes}",
                m.classes.len()
            ),
        });
    }
    Ok(m.rows)
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
