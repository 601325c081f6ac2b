//! A training run's `metrics.csv`: one row per epoch, written by capsid-nn's trainer, read back
//! by a resumed run and drawn by capsid-report. The one definition of its columns:
//!
//! `epoch, step, lr, train_loss, val_loss, val_mean_f1`, then `precision_<class>,
//! recall_<class>, f1_<class>` for each foreground class in class-table order, then `elapsed_s`.
//! Empty cells are NaN (no validation set); precision, recall and F1 are voxel-wise on the
//! validation patches.

use crate::CoreError;
use std::path::Path;

/// The file's name in a run folder.
pub const FILE: &str = "metrics.csv";

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

/// The contents of a `metrics.csv`: the foreground class names (from the header) and the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    pub classes: Vec<String>,
    pub rows: Vec<EpochRecord>,
}

/// The column names for foreground class names `classes`, in file order.
pub fn metrics_columns(classes: &[String]) -> Vec<String> {
    let mut cols: Vec<String> = [
        "epoch",
        "step",
        "lr",
        "train_loss",
        "val_loss",
        "val_mean_f1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for c in classes {
        cols.push(format!("precision_{c}"));
        cols.push(format!("recall_{c}"));
        cols.push(format!("f1_{c}"));
    }
    cols.push("elapsed_s".into());
    cols
}

impl RunMetrics {
    /// The values of each row in the order of [`metrics_columns`] (NaN where there is none).
    pub fn values(&self) -> Vec<Vec<f64>> {
        let k = self.classes.len();
        self.rows
            .iter()
            .map(|r| {
                let mut v = vec![
                    r.epoch as f64,
                    r.step as f64,
                    r.lr,
                    r.train_loss,
                    r.val_loss,
                    r.mean_f1(),
                ];
                for i in 0..k {
                    v.push(r.precision.get(i).copied().unwrap_or(f64::NAN));
                    v.push(r.recall.get(i).copied().unwrap_or(f64::NAN));
                    v.push(r.f1.get(i).copied().unwrap_or(f64::NAN));
                }
                v.push(r.elapsed_s);
                v
            })
            .collect()
    }

    /// The file's text.
    pub fn to_csv(&self) -> String {
        let fmt = |v: f64| {
            if v.is_nan() {
                String::new()
            } else {
                format!("{v:.6}")
            }
        };
        let mut text = metrics_columns(&self.classes).join(",");
        text.push('\n');
        for (r, v) in self.rows.iter().zip(self.values()) {
            let mut cells = vec![
                r.epoch.to_string(),
                r.step.to_string(),
                format!("{:e}", r.lr),
            ];
            let n = v.len();
            cells.extend(v[3..n - 1].iter().map(|&x| fmt(x)));
            cells.push(format!("{:.1}", r.elapsed_s));
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        text
    }

    /// Writes the file (atomically, replacing it).
    pub fn write(&self, path: &Path) -> Result<(), CoreError> {
        let text = self.to_csv();
        crate::write_atomically(path, |w| std::io::Write::write_all(w, text.as_bytes()))
    }

    /// Parses the text of a `metrics.csv`; `origin` names the file in errors. The header must be
    /// [`metrics_columns`] of some class names.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, CoreError> {
        let bad = |line: usize, why: String| {
            CoreError::Invalid(format!("{}: line {line}: {why}", origin.display()))
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(CoreError::Invalid(format!(
                "{}: empty (no header line)",
                origin.display()
            )));
        };
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let n = cols.len();
        let classes: Vec<String> = if n >= 7 && (n - 7).is_multiple_of(3) {
            cols[6..n - 1]
                .chunks(3)
                .filter_map(|c| c[0].strip_prefix("precision_").map(String::from))
                .collect()
        } else {
            Vec::new()
        };
        if metrics_columns(&classes) != cols {
            return Err(bad(
                1,
                "not a capsid metrics.csv header (epoch, step, lr, train_loss, val_loss, \
                 val_mean_f1, precision_/recall_/f1_ of each class, elapsed_s)"
                    .into(),
            ));
        }
        let k = classes.len();
        let mut rows = Vec::new();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != n {
                return Err(bad(i + 1, format!("{} cells, the header has {n}", f.len())));
            }
            let num = |j: usize| -> Result<f64, CoreError> {
                if f[j].is_empty() {
                    return Ok(f64::NAN);
                }
                f[j].parse()
                    .map_err(|_| bad(i + 1, format!("{} is not a number: '{}'", cols[j], f[j])))
            };
            let int = |j: usize| -> Result<u64, CoreError> {
                f[j].parse()
                    .map_err(|_| bad(i + 1, format!("{} is not an integer: '{}'", cols[j], f[j])))
            };
            let mut r = EpochRecord {
                epoch: int(0)? as usize,
                step: int(1)?,
                lr: num(2)?,
                train_loss: num(3)?,
                val_loss: num(4)?,
                precision: Vec::with_capacity(k),
                recall: Vec::with_capacity(k),
                f1: Vec::with_capacity(k),
                elapsed_s: num(n - 1)?,
            };
            for c in 0..k {
                r.precision.push(num(6 + 3 * c)?);
                r.recall.push(num(7 + 3 * c)?);
                r.f1.push(num(8 + 3 * c)?);
            }
            rows.push(r);
        }
        Ok(Self { classes, rows })
    }

    /// Reads a `metrics.csv`; errors name the file.
    pub fn read(path: &Path) -> Result<Self, CoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunMetrics {
        RunMetrics {
            classes: vec!["ribosome".into(), "tiny_one".into()],
            rows: vec![
                EpochRecord {
                    epoch: 1,
                    step: 60,
                    lr: 1e-3,
                    train_loss: 1.5,
                    val_loss: f64::NAN,
                    precision: vec![0.5, 0.25],
                    recall: vec![0.75, 0.0],
                    f1: vec![0.6, 0.0],
                    elapsed_s: 12.5,
                },
                EpochRecord {
                    epoch: 2,
                    step: 120,
                    lr: 5e-4,
                    train_loss: 1.25,
                    val_loss: 1.125,
                    precision: vec![0.5, 0.5],
                    recall: vec![0.5, 0.5],
                    f1: vec![0.5, 0.5],
                    elapsed_s: 25.0,
                },
            ],
        }
    }

    #[test]
    fn round_trips_with_the_class_names_from_the_header() {
        let m = sample();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        m.write(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(
            "epoch,step,lr,train_loss,val_loss,val_mean_f1,precision_ribosome,recall_ribosome,\
             f1_ribosome,precision_tiny_one,"
        ));
        let back = RunMetrics::read(&p).unwrap();
        assert_eq!(back.classes, m.classes);
        assert_eq!(back.rows.len(), 2);
        assert!(back.rows[0].val_loss.is_nan());
        assert_eq!(back.rows[1], m.rows[1]);
        assert_eq!(back.values()[0][5], 0.3);
    }

    #[test]
    fn foreign_or_damaged_files_are_errors_naming_the_file() {
        let o = Path::new("run/metrics.csv");
        let e = RunMetrics::parse("epoch,loss\n1,2\n", o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("run/metrics.csv") && e.contains("header"), "{e}");
        let e = RunMetrics::parse("", o).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let mut text = sample().to_csv();
        text.push_str("3,180,1e-3,1.0\n");
        let e = RunMetrics::parse(&text, o).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("cells"), "{e}");
        let text = sample().to_csv().replace("1.250000", "x");
        let e = RunMetrics::parse(&text, o).unwrap_err().to_string();
        assert!(e.contains("train_loss is not a number"), "{e}");
        // No class at all is a valid (if unusual) file.
        let none = RunMetrics {
            classes: vec![],
            rows: vec![],
        };
        assert_eq!(RunMetrics::parse(&none.to_csv(), o).unwrap(), none);
    }
}
