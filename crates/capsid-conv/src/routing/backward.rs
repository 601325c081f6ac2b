//! The gradient of the routing: per tile, the forward iterations recomputed and run backwards.

use super::forward::forward_tile;
use super::ops::{squash_rows_backward, Ops};
use super::{store_lane, tile_span, Routing, Work, LANES};
use crate::common::Output;
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

/// Gradients `(d votes, d bias)` of `Σ output · grad_out` for
/// [`routing_forward`](super::routing_forward)'s output.
///
/// # Panics
/// When a slice length does not match `r`, or `r.iters == 0`.
pub fn routing_backward(
    r: &Routing,
    votes: &[f32],
    bias: &[f32],
    grad_out: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    r.check(votes, bias);
    assert_eq!(grad_out.len(), r.out_len(), "output gradient length");
    let mut grad_votes = Output::new(r.votes_len());
    let gp = grad_votes.ptr();
    let arch = Arch::new();
    let tiles = r.batch * r.tiles_per_map();
    let ob = r.bias_len();
    let mut bias_parts = vec![0.0f32; tiles * ob];
    bias_parts.par_chunks_mut(ob).enumerate().for_each_init(
        || Work::new(r),
        |w, (tile, bias_part)| {
            let (b, p0, n) = tile_span(r, tile);
            w.gather_votes(r, votes, b, p0, n);
            w.gather_grad(r, grad_out, b, p0, n);
            arch.dispatch(BackwardTile {
                r,
                bias,
                w: &mut *w,
            });
            for (g, lane) in bias_part.iter_mut().zip(&w.gbias) {
                *g = lane.iter().sum();
            }
            for (row, lane) in w.gu.iter().enumerate() {
                let base = (b * r.in_caps * r.out_caps * r.atoms + row) * r.positions + p0;
                // SAFETY: tiles write disjoint voxels of each vote row, inside the buffer.
                unsafe {
                    store_lane(lane, gp.get().add(base), n);
                }
            }
        },
    );
    let mut grad_bias = vec![0.0f32; ob];
    for part in bias_parts.chunks(ob) {
        for (g, p) in grad_bias.iter_mut().zip(part) {
            *g += p;
        }
    }
    // SAFETY: the tiles cover every voxel of every vote row.
    (unsafe { grad_votes.finish() }, grad_bias)
}

/// One tile's gradient under the widest instruction set pulp finds at run time.
struct BackwardTile<'a> {
    r: &'a Routing,
    bias: &'a [f32],
    w: &'a mut Work,
}

impl WithSimd for BackwardTile<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        backward_tile(Ops(simd), self.r, self.bias, self.w)
    }
}

/// Gradient of one tile: with the output gradient in `w.gv`, leaves the votes' gradient in
/// `w.gu` and the bias gradient per lane in `w.gbias` (lanes past the tile's voxels are zero,
/// since their output gradient is).
#[inline(always)]
fn backward_tile<S: Simd>(o: Ops<S>, r: &Routing, bias: &[f32], w: &mut Work) {
    forward_tile(o, r, bias, w);
    let (ci, co, a) = (r.in_caps, r.out_caps, r.atoms);
    let (nc, nv) = (ci * co, co * a);
    // `w.b` now holds the gradient with respect to the logits after the current iteration.
    w.b.fill([0.0; LANES]);
    w.gu.fill([0.0; LANES]);
    w.gbias.fill([0.0; LANES]);
    for t in (0..r.iters).rev() {
        let c = &w.c[t * nc..(t + 1) * nc];
        let s = &w.s[t * nv..(t + 1) * nv];
        let v = &w.v[t * nv..(t + 1) * nv];
        if t + 1 < r.iters {
            // b_{t+1} = b_t + ⟨u, v_t⟩: gradients reach v_t (gv was the later iteration's,
            // which does not depend on v_t directly) and u.
            w.gv.fill([0.0; LANES]);
            for i in 0..ci {
                for j in 0..co {
                    let g = &w.b[i * co + j];
                    let row = (i * co + j) * a;
                    for k in 0..a {
                        o.mul_acc(&mut w.gv[j * a + k], g, &w.u[row + k]);
                        o.mul_acc(&mut w.gu[row + k], g, &v[j * a + k]);
                    }
                }
            }
        }
        squash_rows_backward(o, s, &w.gv, &mut w.gs, a);
        for (acc, g) in w.gbias.iter_mut().zip(&w.gs) {
            o.add_to(acc, g);
        }
        for i in 0..ci {
            for j in 0..co {
                let cij = &c[i * co + j];
                let row = (i * co + j) * a;
                let mut gc = [0.0f32; LANES];
                for k in 0..a {
                    o.mul_acc(&mut w.gu[row + k], cij, &w.gs[j * a + k]);
                    o.mul_acc(&mut gc, &w.gs[j * a + k], &w.u[row + k]);
                }
                w.gc[i * co + j] = gc;
            }
        }
        if t > 0 {
            // Softmax over j: d b[i][j] += c[i][j] (gc[i][j] − Σ_j' c[i][j'] gc[i][j']).
            for i in 0..ci {
                let mut dot = [0.0f32; LANES];
                for j in 0..co {
                    o.mul_acc(&mut dot, &c[i * co + j], &w.gc[i * co + j]);
                }
                for j in 0..co {
                    let d = o.sub(&w.gc[i * co + j], &dot);
                    o.mul_acc(&mut w.b[i * co + j], &c[i * co + j], &d);
                }
            }
        }
    }
}
