//! Lane-wise vector operations of the routing and the softmax and squash over rows of lanes.

use super::{Lane, LANES, SQUASH_EPS};
use crate::activation::exp_nonpositive;
use pulp::Simd;

/// Element-wise operations on whole lanes (16 voxels) with the vector type of `S`: one AVX-512
/// register, two AVX2 registers, or 16 scalars. Every instruction set runs the same operations
/// in the same order (no fused multiply-add), so results agree bit for bit.
#[derive(Clone, Copy)]
pub(super) struct Ops<S>(pub(super) S);

/// Lane-wise binary operations of [`Ops`] (no closures: every call must inline into the
/// function compiled for the instruction set).
macro_rules! lane_binary {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$doc])*
            #[inline(always)]
            pub(super) fn $name(self, a: &Lane, b: &Lane) -> Lane {
                let mut out = [0.0f32; LANES];
                let (o, _) = S::as_mut_simd_f32s(&mut out);
                let (a, _) = S::as_simd_f32s(a);
                let (b, _) = S::as_simd_f32s(b);
                for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                    *o = self.0.$op(*a, *b);
                }
                out
            }
        )*
    };
}

impl<S: Simd> Ops<S> {
    lane_binary! {
        /// `max(a, b)`.
        max => max_f32s;
        /// `a − b`.
        sub => sub_f32s;
        /// `a · b`.
        mul => mul_f32s;
        /// `a / b`.
        div => div_f32s;
    }

    /// `acc += x · y`.
    #[inline(always)]
    pub(super) fn mul_acc(self, acc: &mut Lane, x: &Lane, y: &Lane) {
        let (a, _) = S::as_mut_simd_f32s(acc);
        let (x, _) = S::as_simd_f32s(x);
        let (y, _) = S::as_simd_f32s(y);
        let s = self.0;
        for ((a, x), y) in a.iter_mut().zip(x).zip(y) {
            *a = s.add_f32s(*a, s.mul_f32s(*x, *y));
        }
    }

    /// `acc += x`.
    #[inline(always)]
    pub(super) fn add_to(self, acc: &mut Lane, x: &Lane) {
        let (a, _) = S::as_mut_simd_f32s(acc);
        let (x, _) = S::as_simd_f32s(x);
        let s = self.0;
        for (a, x) in a.iter_mut().zip(x) {
            *a = s.add_f32s(*a, *x);
        }
    }

    /// `e^(a − m)` for `a ≤ m` (differences below −87 give ≈ 0; see
    /// [`crate::activation::exp_nonpositive`]).
    #[inline(always)]
    pub(super) fn exp_of_difference(self, a: &Lane, m: &Lane) -> Lane {
        let s = self.0;
        let mut out = [0.0f32; LANES];
        let (o, _) = S::as_mut_simd_f32s(&mut out);
        let (a, _) = S::as_simd_f32s(a);
        let (m, _) = S::as_simd_f32s(m);
        for ((o, a), m) in o.iter_mut().zip(a).zip(m) {
            *o = exp_nonpositive(s, s.sub_f32s(*a, *m));
        }
        out
    }

    /// The squash factor `k = n / (1 + n) / √(n + ε)` of squared lengths `n`.
    #[inline(always)]
    pub(super) fn squash_factor(self, n2: &Lane) -> Lane {
        let s = self.0;
        let mut out = [0.0f32; LANES];
        let (o, _) = S::as_mut_simd_f32s(&mut out);
        let (n2, _) = S::as_simd_f32s(n2);
        for (o, n) in o.iter_mut().zip(n2) {
            let ratio = s.div_f32s(*n, s.add_f32s(*n, s.splat_f32s(1.0)));
            *o = s.div_f32s(ratio, s.sqrt_f32s(s.add_f32s(*n, s.splat_f32s(SQUASH_EPS))));
        }
        out
    }

    /// `2 k'(n) · dot` with `k' = (n + 2ε − n²) / (2 (n+ε)^{3/2} (1+n)²)`, the derivative of
    /// [`Ops::squash_factor`].
    #[inline(always)]
    pub(super) fn squash_factor_slope(self, n2: &Lane, dot: &Lane) -> Lane {
        let s = self.0;
        let mut out = [0.0f32; LANES];
        let (o, _) = S::as_mut_simd_f32s(&mut out);
        let (n2, _) = S::as_simd_f32s(n2);
        let (dot, _) = S::as_simd_f32s(dot);
        for ((o, n), dot) in o.iter_mut().zip(n2).zip(dot) {
            let n = *n;
            let ne = s.add_f32s(n, s.splat_f32s(SQUASH_EPS));
            let root = s.sqrt_f32s(ne);
            let one_n = s.add_f32s(n, s.splat_f32s(1.0));
            let num = s.sub_f32s(
                s.add_f32s(n, s.splat_f32s(2.0 * SQUASH_EPS)),
                s.mul_f32s(n, n),
            );
            let den = s.mul_f32s(
                s.mul_f32s(s.mul_f32s(s.splat_f32s(2.0), ne), root),
                s.mul_f32s(one_n, one_n),
            );
            *o = s.mul_f32s(s.mul_f32s(s.splat_f32s(2.0), s.div_f32s(num, den)), *dot);
        }
        out
    }
}

/// Couplings `c[i][·] = softmax(b[i][·])` over the `out_caps` logits of each input capsule.
#[inline(always)]
pub(super) fn softmax_rows<S: Simd>(o: Ops<S>, b: &[Lane], c: &mut [Lane], out_caps: usize) {
    for (bi, ci) in b.chunks_exact(out_caps).zip(c.chunks_exact_mut(out_caps)) {
        let mut m = bi[0];
        for bj in &bi[1..] {
            m = o.max(&m, bj);
        }
        let mut sum = [0.0f32; LANES];
        for (bj, cj) in bi.iter().zip(ci.iter_mut()) {
            *cj = o.exp_of_difference(bj, &m);
            o.add_to(&mut sum, cj);
        }
        for cj in ci.iter_mut() {
            *cj = o.div(cj, &sum);
        }
    }
}

/// `v = squash(s)` for each capsule (rows of `atoms` lanes).
#[inline(always)]
pub(super) fn squash_rows<S: Simd>(o: Ops<S>, s: &[Lane], v: &mut [Lane], atoms: usize) {
    for (sj, vj) in s.chunks_exact(atoms).zip(v.chunks_exact_mut(atoms)) {
        let mut n2 = [0.0f32; LANES];
        for sk in sj {
            o.mul_acc(&mut n2, sk, sk);
        }
        let k = o.squash_factor(&n2);
        for (sk, vk) in sj.iter().zip(vj.iter_mut()) {
            *vk = o.mul(sk, &k);
        }
    }
}

/// Gradient of the squash: `gs = k·gv + 2k'·⟨gv, s⟩·s` per capsule, with `k = n/((1+n)√(n+ε))`,
/// `n = |s|²` and `k' = dk/dn = (n + 2ε − n²) / (2 (n+ε)^{3/2} (1+n)²)`.
#[inline(always)]
pub(super) fn squash_rows_backward<S: Simd>(
    o: Ops<S>,
    s: &[Lane],
    gv: &[Lane],
    gs: &mut [Lane],
    atoms: usize,
) {
    for ((sj, gvj), gsj) in s
        .chunks_exact(atoms)
        .zip(gv.chunks_exact(atoms))
        .zip(gs.chunks_exact_mut(atoms))
    {
        let mut n2 = [0.0f32; LANES];
        let mut dot = [0.0f32; LANES];
        for (sk, gk) in sj.iter().zip(gvj) {
            o.mul_acc(&mut n2, sk, sk);
            o.mul_acc(&mut dot, sk, gk);
        }
        let k = o.squash_factor(&n2);
        let t = o.squash_factor_slope(&n2, &dot);
        for ((sk, gk), out) in sj.iter().zip(gvj).zip(gsj.iter_mut()) {
            *out = o.mul(&k, gk);
            o.mul_acc(out, &t, sk);
        }
    }
}
