//! The routed output capsules: every routing iteration of a tile of 16 voxels.

use super::ops::{softmax_rows, squash_rows, Ops};
use super::{store_lane, tile_span, Routing, Work, LANES};
use crate::common::Output;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

/// Routed output capsules `[batch, out_caps, atoms, positions]` of `votes` and `bias`.
///
/// # Panics
/// When a slice length does not match `r`, or `r.iters == 0`.
pub fn routing_forward(r: &Routing, votes: &[f32], bias: &[f32]) -> Vec<f32> {
    r.check(votes, bias);
    let mut out = Output::new(r.out_len());
    let op = out.ptr();
    let arch = Arch::new();
    let tiles = r.batch * r.tiles_per_map();
    (0..tiles).into_par_iter().for_each_init(
        || Work::new(r),
        |w, tile| {
            let (b, p0, n) = tile_span(r, tile);
            w.gather_votes(r, votes, b, p0, n);
            arch.dispatch(ForwardTile {
                r,
                bias,
                w: &mut *w,
            });
            let v = w.last_v(r);
            for (j, lane) in v.iter().enumerate() {
                let base = (b * r.out_caps * r.atoms + j) * r.positions + p0;
                // SAFETY: tiles write disjoint voxels `p0..p0 + n` of each output row,
                // all inside the `out_len` buffer.
                unsafe {
                    store_lane(lane, op.get().add(base), n);
                }
            }
        },
    );
    // SAFETY: the tiles cover every voxel of every (batch, capsule, atom) row.
    unsafe { out.finish() }
}

/// One tile's forward iterations under the widest instruction set pulp finds at run time.
struct ForwardTile<'a> {
    r: &'a Routing,
    bias: &'a [f32],
    w: &'a mut Work,
}

impl WithSimd for ForwardTile<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        forward_tile(Ops(simd), self.r, self.bias, self.w)
    }
}

/// All routing iterations of one tile (votes in `w.u`): fills `w.c`, `w.s`, `w.v` for every
/// iteration; `w.b` ends as the last logits.
#[inline(always)]
pub(super) fn forward_tile<S: Simd>(o: Ops<S>, r: &Routing, bias: &[f32], w: &mut Work) {
    let (ci, co, a) = (r.in_caps, r.out_caps, r.atoms);
    let (nc, nv) = (ci * co, co * a);
    w.b.fill([0.0; LANES]);
    for t in 0..r.iters {
        let c = &mut w.c[t * nc..(t + 1) * nc];
        if t == 0 {
            c.fill([1.0 / co as f32; LANES]);
        } else {
            softmax_rows(o, &w.b, c, co);
        }
        let s = &mut w.s[t * nv..(t + 1) * nv];
        for (sj, &bj) in s.iter_mut().zip(bias) {
            *sj = [bj; LANES];
        }
        for i in 0..ci {
            for j in 0..co {
                let cij = &c[i * co + j];
                let u = &w.u[(i * co + j) * a..(i * co + j + 1) * a];
                for (sk, uk) in s[j * a..(j + 1) * a].iter_mut().zip(u) {
                    o.mul_acc(sk, cij, uk);
                }
            }
        }
        let v = &mut w.v[t * nv..(t + 1) * nv];
        squash_rows(o, s, v, a);
        if t + 1 < r.iters {
            for i in 0..ci {
                for j in 0..co {
                    let u = &w.u[(i * co + j) * a..(i * co + j + 1) * a];
                    let bij = &mut w.b[i * co + j];
                    for (uk, vk) in u.iter().zip(&v[j * a..(j + 1) * a]) {
                        o.mul_acc(bij, uk, vk);
                    }
                }
            }
        }
    }
}
