//! Small measures used by the simulator's checks and tests.

/// Pearson correlation of two equally long sequences (f64 accumulation, fixed order). Returns 0
/// when either has zero variance.
pub fn pearson<A, B>(a: A, b: B) -> f64
where
    A: IntoIterator<Item = f32>,
    B: IntoIterator<Item = f32>,
{
    let (mut n, mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (x, y) in a.into_iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        n += 1.0;
        sa += x;
        sb += y;
        saa += x * x;
        sbb += y * y;
        sab += x * y;
    }
    if n == 0.0 {
        return 0.0;
    }
    let cov = sab / n - sa * sb / (n * n);
    let va = saa / n - sa * sa / (n * n);
    let vb = sbb / n - sb * sb / (n * n);
    if va <= 0.0 || vb <= 0.0 {
        return 0.0;
    }
    cov / (va * vb).sqrt()
}

/// Mean and variance (population) of values, accumulated in f64 in iteration order.
pub fn mean_var<I: IntoIterator<Item = f32>>(values: I) -> (f64, f64) {
    let (mut n, mut s, mut s2) = (0.0f64, 0.0f64, 0.0f64);
    for v in values {
        let v = v as f64;
        n += 1.0;
        s += v;
        s2 += v * v;
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let m = s / n;
    (m, (s2 / n - m * m).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_scaled_copy_is_one_and_of_negation_minus_one() {
        let a = [1.0f32, 3.0, 2.0, 5.0];
        assert!((pearson(a, a.map(|v| 2.0 * v + 1.0)) - 1.0).abs() < 1e-12);
        assert!((pearson(a, a.map(|v| -v)) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(a, [1.0f32; 4]), 0.0);
    }

    #[test]
    fn mean_var_of_values() {
        let (m, v) = mean_var([1.0f32, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12 && (v - 1.25).abs() < 1e-12);
    }
}
