//! Forward convolution: Winograd where it applies, else the stride-1 implicit GEMM over the
//! padded grid, else im2col per tile of output rows.

use super::{
    implicit_ok, implicit_tile, inner_parallelism, rows_per_tile, with_scratch, PaddedGrid,
};
use crate::common::{gemm_conv, Dims, Output};
use crate::im2col::im2col;
use rayon::prelude::*;

/// Forward convolution `y = W * x (+ bias)`, `[batch, c_out, out_dhw]`.
pub(crate) fn forward(d: &Dims, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    if crate::winograd::applies(d) {
        return crate::winograd::forward(d, x, w, bias);
    }
    if implicit_ok(d) {
        return forward_implicit(d, x, w, bias);
    }
    forward_im2col(d, x, w, bias)
}

/// Stride-1 forward without im2col: per (batch item, group, tile of padded-grid positions), one
/// GEMM per kernel tap, `stage[t × cog] += X_shift[t × cig] · W_tapᵀ[cig × cog]`, where `X_shift`
/// is a strided view into the padded input (no copy); the valid positions of `stage` then go to
/// the NCDHW output.
fn forward_implicit(d: &Dims, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let grid = PaddedGrid::new(d);
    let (cig, cog) = (d.cig(), d.cog());
    let kvol: usize = d.kernel.iter().product();
    let [_, oh, ow] = d.out_dhw;
    let (hp, wp, cs) = (grid.hp, grid.wp, grid.channel_stride);
    let out_len = d.out_len();
    let xp = grid.pad(d, x, d.batch * d.c_in);
    // Weights as [tap][group][o][c]: each tap's matrix `(c, o)` has unit stride along c.
    let mut wr = vec![0.0f32; w.len()];
    for o in 0..d.c_out {
        for c in 0..cig {
            for tap in 0..kvol {
                let (g, ol) = (o / cog, o % cog);
                wr[((tap * d.groups + g) * cog + ol) * cig + c] = w[(o * cig + c) * kvol + tap];
            }
        }
    }
    let mut y = Output::new(d.batch * d.c_out * out_len);
    let outer = d.batch * d.groups;
    let t = implicit_tile(grid.q_len, outer, rayon::current_num_threads());
    let tiles = grid.q_len.div_ceil(t);
    let par = inner_parallelism(outer * tiles);
    let yp = y.ptr();
    (0..outer * tiles).into_par_iter().for_each(|task| {
        let (ng, tile) = (task / tiles, task % tiles);
        let (n, g) = (ng / d.groups, ng % d.groups);
        let q0 = tile * t;
        let q1 = (q0 + t).min(grid.q_len);
        let tl = q1 - q0;
        let xg = xp[(n * d.c_in + g * cig) * cs..].as_ptr();
        with_scratch(t * cog, |stage| {
            for tap in 0..kvol {
                // SAFETY: `xg` starts this (n, g)'s channels in the padded input; a position
                // q < q_len shifted by a tap's offset stays inside its channel's padded block
                // (`PaddedGrid`: the box has room for every tap, plus `slack` for the last rows).
                let lhs = unsafe { xg.add(q0 + grid.tap_offset(d, tap)) };
                let rhs = wr[(tap * d.groups + g) * cog * cig..].as_ptr();
                // SAFETY: `stage` is this task's scratch of t × cog floats (tl ≤ t rows); `lhs`
                // as above over cig channels of stride cs; `rhs` is the tap's cog × cig block.
                unsafe {
                    gemm_conv(
                        tl,
                        cog,
                        cig,
                        stage.as_mut_ptr(),
                        (t, 1),
                        tap > 0,
                        lhs,
                        (cs, 1),
                        rhs,
                        (cig, 1),
                        par,
                    )
                };
            }
            // Valid positions: padded-grid rows r = q / wp with (r % hp) < oh, columns < ow.
            let mut q = q0;
            while q < q1 {
                let r = q / wp;
                let row_end = ((r + 1) * wp).min(q1);
                let (oz, oy) = (r / hp, r % hp);
                let x0 = q - r * wp;
                let x1 = (row_end - r * wp).min(ow);
                if oy < oh && x0 < x1 {
                    let dst0 = (oz * oh + oy) * ow;
                    for o in 0..cog {
                        let b = bias.map_or(0.0, |b| b[g * cog + o]);
                        let src = &stage[o * t + (q - q0)..o * t + (q - q0) + (x1 - x0)];
                        // SAFETY: each output voxel belongs to exactly one (n, g, tile) task.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(
                                yp.get()
                                    .add((n * d.c_out + g * cog + o) * out_len + dst0 + x0),
                                x1 - x0,
                            )
                        };
                        for (v, s) in dst.iter_mut().zip(src) {
                            *v = s + b;
                        }
                    }
                }
                q = row_end;
            }
        });
    });
    // SAFETY: the tiles cover every (batch item, group, valid padded-grid position), so every
    // output voxel of every channel was written.
    unsafe { y.finish() }
}

/// Forward convolution by im2col per tile of output rows.
fn forward_im2col(d: &Dims, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (in_len, out_len) = (d.in_len(), d.out_len());
    let (cig, cog, k) = (d.cig(), d.cog(), d.k_cols());
    let ow = d.out_dhw[2];
    let mut y = Output::new(d.batch * d.c_out * out_len);
    let outer = d.batch * d.groups;
    let per = rows_per_tile(d, outer, rayon::current_num_threads());
    let tiles = d.rows().div_ceil(per);
    let par = inner_parallelism(outer * tiles);
    let pointwise = d.pointwise();
    let yp = y.ptr();
    (0..outer * tiles).into_par_iter().for_each(|task| {
        let (ng, tile) = (task / tiles, task % tiles);
        let (n, g) = (ng / d.groups, ng % d.groups);
        let r0 = tile * per;
        let r1 = (r0 + per).min(d.rows());
        let t = (r1 - r0) * ow;
        let xg = &x[(n * d.c_in + g * cig) * in_len..(n * d.c_in + (g + 1) * cig) * in_len];
        let wg = &w[g * cog * k..(g + 1) * cog * k];
        // SAFETY: task (n, g, tile) alone writes rows [r0, r1) of channels g·cog.. of item n.
        let dst = unsafe { yp.get().add((n * d.c_out + g * cog) * out_len + r0 * ow) };
        if let Some(b) = bias {
            for c in 0..cog {
                // SAFETY: rows [r0, r1) of channel c: t floats inside the output, this task's.
                let row = unsafe { std::slice::from_raw_parts_mut(dst.add(c * out_len), t) };
                row.fill(b[g * cog + c]);
            }
        }
        // SAFETY: `dst` addresses this task's rows of cog channels (stride out_len); `wg` is the
        // group's cog × k weights; `rhs` a k × t column matrix (the tile's im2col, or for a
        // pointwise layer the input rows themselves, row stride in_len).
        let run = |rhs: *const f32, rhs_rs: usize| unsafe {
            gemm_conv(
                cog,
                t,
                k,
                dst,
                (1, out_len),
                bias.is_some(),
                wg.as_ptr(),
                (1, k),
                rhs,
                (1, rhs_rs),
                par,
            );
        };
        if pointwise {
            run(xg[r0 * ow..].as_ptr(), in_len);
        } else {
            with_scratch(k * t, |cols| {
                im2col(d, xg, r0, r1, cols);
                run(cols.as_ptr(), t);
            });
        }
    });
    // SAFETY: the tiles cover every output row of every (batch item, group); the GEMM writes all
    // channels of its rows (after the bias fill when there is a bias).
    unsafe { y.finish() }
}
