//! Detection counts and the scores derived from them.

use serde::{Deserialize, Serialize};

/// True positives, false positives and false negatives of one class (or pooled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn's `zero_division=0`).
pub fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

impl Counts {
    /// TP / (TP + FP); 0 without picks.
    pub fn precision(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fp) as f64)
    }

    /// TP / (TP + FN); 0 without true particles.
    pub fn recall(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fn_) as f64)
    }

    /// 2·TP / (2·TP + FP + FN); 0 when all counts are 0.
    pub fn f1(&self) -> f64 {
        self.fbeta(1.0)
    }

    /// F-beta = (1 + β²)·TP / ((1 + β²)·TP + β²·FN + FP), the same as
    /// (1 + β²)·P·R / (β²·P + R); recall weighs β times as much as precision (CZII: β = 4).
    pub fn fbeta(&self, beta: f64) -> f64 {
        let b2 = beta * beta;
        let tp = self.tp as f64;
        ratio(
            (1.0 + b2) * tp,
            (1.0 + b2) * tp + b2 * self.fn_ as f64 + self.fp as f64,
        )
    }

    /// Element-wise sum.
    pub fn add(&self, o: &Counts) -> Counts {
        Counts {
            tp: self.tp + o.tp,
            fp: self.fp + o.fp,
            fn_: self.fn_ + o.fn_,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        let c = Counts {
            tp: 6,
            fp: 4,
            fn_: 2,
        };
        assert!((c.precision() - 0.6).abs() < 1e-12);
        assert!((c.recall() - 0.75).abs() < 1e-12);
        assert!((c.f1() - 12.0 / 18.0).abs() < 1e-12);
        // β = 4: 17·6 / (17·6 + 16·2 + 4) = 102 / 138.
        assert!((c.fbeta(4.0) - 102.0 / 138.0).abs() < 1e-12);
        // Same as the P/R form.
        let (p, r) = (0.6, 0.75);
        assert!((c.fbeta(4.0) - 17.0 * p * r / (16.0 * p + r)).abs() < 1e-12);
        let zero = Counts::default();
        assert_eq!(
            (zero.precision(), zero.recall(), zero.f1(), zero.fbeta(4.0)),
            (0.0, 0.0, 0.0, 0.0)
        );
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"tp":6,"fp":4,"fn":2}"#);
    }
}
