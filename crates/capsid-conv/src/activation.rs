//! Element-wise activations with their gradients, vectorised with pulp (run-time dispatch).

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// `tanh(x)` element-wise, as `sign(x)·(1 − e)/(1 + e)` with `e = e^{−2|x|}` (absolute error
/// ≤ 2e-7; the exponential as in [`exp_nonpositive`]).
pub fn tanh_forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    let arch = Arch::new();
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| arch.dispatch(Tanh { x, y }));
    y
}

/// Gradient of [`tanh_forward`] from its output `y`: `dy · (1 − y²)`.
pub fn tanh_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(y.len(), dy.len(), "tanh gradient length");
    let mut dx = vec![0.0f32; y.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (y, dy))| {
            for ((o, y), g) in dx.iter_mut().zip(y).zip(dy) {
                *o = g * (1.0 - y * y);
            }
        });
    dx
}

struct Tanh<'a> {
    x: &'a [f32],
    y: &'a mut [f32],
}

impl WithSimd for Tanh<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (xv, xt) = S::as_simd_f32s(self.x);
        let (yv, yt) = S::as_mut_simd_f32s(self.y);
        for (y, x) in yv.iter_mut().zip(xv) {
            *y = tanh_vector(s, *x);
        }
        for (y, x) in yt.iter_mut().zip(xt) {
            *y = tanh_scalar(*x);
        }
    }
}

/// `e^x` for `x ≤ 0` (`x` below −87 gives ≈ 0): Cody–Waite reduction `x = n·ln 2 + r`,
/// `|r| ≤ ln 2 / 2`, degree-6 Taylor polynomial of `e^r` (relative error ≈ 1.2e-7), times `2^n`
/// built in the exponent bits.
#[inline(always)]
pub(crate) fn exp_nonpositive<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding it rounds to an integer, held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const COEF: [f32; 7] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
    ];
    let x = s.max_f32s(x, s.splat_f32s(-87.0));
    let t = s.add_f32s(s.mul_f32s(x, s.splat_f32s(LOG2E)), s.splat_f32s(ROUND));
    let n = s.sub_f32s(t, s.splat_f32s(ROUND));
    let r = s.sub_f32s(
        s.sub_f32s(x, s.mul_f32s(n, s.splat_f32s(LN2_HI))),
        s.mul_f32s(n, s.splat_f32s(LN2_LO)),
    );
    let mut p = s.splat_f32s(COEF[6]);
    for c in COEF[..6].iter().rev() {
        p = s.add_f32s(s.mul_f32s(p, r), s.splat_f32s(*c));
    }
    // 2^n: (n + 127) in the exponent field; n is the low bits of t minus those of ROUND.
    let k = s.sub_u32s(s.transmute_u32s_f32s(t), s.splat_u32s(ROUND.to_bits()));
    let bits = s.mul_u32s(s.add_u32s(k, s.splat_u32s(127)), s.splat_u32s(1 << 23));
    s.mul_f32s(p, s.transmute_f32s_u32s(bits))
}

#[inline(always)]
fn tanh_vector<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let sign = s.and_f32s(x, s.splat_f32s(-0.0));
    let a = s.abs_f32s(x);
    let e = exp_nonpositive(s, s.mul_f32s(a, s.splat_f32s(-2.0)));
    let one = s.splat_f32s(1.0);
    let t = s.div_f32s(s.sub_f32s(one, e), s.add_f32s(one, e));
    s.or_f32s(t, sign)
}

/// The same formula for the few values after the last whole vector.
fn tanh_scalar(x: f32) -> f32 {
    let e = (-2.0 * x.abs()).exp();
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_matches_std_and_its_gradient_is_one_minus_square() {
        let x: Vec<f32> = (-4000..4001)
            .map(|i| i as f32 * 0.005)
            .chain([-100.0, 100.0, 0.0, -0.0, 1e-7, -3e-5])
            .collect();
        let y = tanh_forward(&x);
        for (a, b) in x.iter().zip(&y) {
            let want = (*a as f64).tanh();
            assert!(
                (*b as f64 - want).abs() <= 2e-7,
                "tanh({a}) = {b}, want {want}"
            );
            assert_eq!(
                b.is_sign_negative(),
                a.is_sign_negative(),
                "sign of tanh({a})"
            );
        }
        let dy: Vec<f32> = (0..x.len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let dx = tanh_backward(&y, &dy);
        for i in 0..x.len() {
            let want = dy[i] as f64 / (x[i] as f64).cosh().powi(2);
            assert!(
                (dx[i] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "[{i}]"
            );
        }
    }
}
