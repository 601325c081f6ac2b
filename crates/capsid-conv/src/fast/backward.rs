//! Backward passes: data (flipped forward pass for stride 1, else GEMM + col2im) and weight
//! (implicit GEMM over the padded grid for stride 1, else im2col), both deterministic.

use super::forward::forward;
use super::{implicit_ok, inner_parallelism, rows_per_tile, with_scratch, PaddedGrid};
use crate::common::{gemm_conv, Dims, SharedMut};
use crate::im2col::{col2im, im2col};
use rayon::prelude::*;

/// Input channels per group below which stride-1 backward-data uses GEMM + col2im rather than the
/// flipped forward pass (whose per-tap products would have only c_in_group columns).
const FLIPPED_MIN_CIG: usize = 16;

/// Weights of the stride-1 adjoint: `[c_in, c_out / groups, k]` with the kernel flipped, so that
/// backward-data is a forward convolution of `dy`.
fn flipped_transposed_weights(d: &Dims, w: &[f32]) -> Vec<f32> {
    let (cig, cog) = (d.cig(), d.cog());
    let kvol: usize = d.kernel.iter().product();
    let mut out = vec![0.0f32; w.len()];
    for g in 0..d.groups {
        for o in 0..cog {
            for c in 0..cig {
                let src = &w[((g * cog + o) * cig + c) * kvol..][..kvol];
                let dst = &mut out[((g * cig + c) * cog + o) * kvol..][..kvol];
                for (i, v) in src.iter().enumerate() {
                    dst[kvol - 1 - i] = *v;
                }
            }
        }
    }
    out
}

/// dL/dx of the convolution `d` given dL/dy, `[batch, c_in, in_dhw]`.
pub(crate) fn backward_data(d: &Dims, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let adjoint_padding: [Option<usize>; 3] =
        std::array::from_fn(|a| (d.dilation[a] * (d.kernel[a] - 1)).checked_sub(d.padding[a]));
    if d.stride == [1; 3]
        && d.cig() >= FLIPPED_MIN_CIG
        && adjoint_padding.iter().all(Option::is_some)
    {
        // dx[i] = Σ_k dy[i + p − k·dil]·w[k] = Σ_k' dy[i − p' + k'·dil]·w[K−1−k'].
        let adj = Dims {
            batch: d.batch,
            c_in: d.c_out,
            c_out: d.c_in,
            groups: d.groups,
            in_dhw: d.out_dhw,
            out_dhw: d.in_dhw,
            kernel: d.kernel,
            stride: [1; 3],
            padding: adjoint_padding.map(|p| p.unwrap_or(0)),
            dilation: d.dilation,
        };
        return forward(&adj, dy, &flipped_transposed_weights(d, w), None);
    }
    backward_data_col2im(d, dy, w)
}

/// Backward-data by `Wᵀ·dY_tile` and col2im. Tasks own (batch item, group) slices of dx, or single
/// tiles when distinct output rows never touch the same input row (kernel span ≤ stride along z
/// and y, as in 2×2×2 stride-2 transposed convolutions).
fn backward_data_col2im(d: &Dims, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (in_len, out_len) = (d.in_len(), d.out_len());
    let (cig, cog, k) = (d.cig(), d.cog(), d.k_cols());
    let ow = d.out_dhw[2];
    let mut dx = vec![0.0f32; d.batch * d.c_in * in_len];
    let outer = d.batch * d.groups;
    let disjoint_rows = (0..2).all(|a| d.dilation[a] * (d.kernel[a] - 1) < d.stride[a]);
    let per = rows_per_tile(
        d,
        if disjoint_rows { outer } else { 1 << 20 },
        rayon::current_num_threads(),
    );
    let tiles = d.rows().div_ceil(per);
    let tiles_per_task = if disjoint_rows { 1 } else { tiles };
    let tasks = outer * tiles.div_ceil(tiles_per_task);
    let par = inner_parallelism(tasks);
    let dxp = SharedMut(dx.as_mut_ptr());
    (0..tasks).into_par_iter().for_each(|task| {
        let per_ng = tiles.div_ceil(tiles_per_task);
        let (ng, first) = (task / per_ng, (task % per_ng) * tiles_per_task);
        let (n, g) = (ng / d.groups, ng % d.groups);
        let wg = &w[g * cog * k..(g + 1) * cog * k];
        // SAFETY: this task alone writes the input rows reached from its tiles: either the whole
        // (n, g) slice, or (disjoint_rows) the rows of its single tile, touched by no other tile.
        let dxg = unsafe {
            std::slice::from_raw_parts_mut(
                dxp.get().add((n * d.c_in + g * cig) * in_len),
                cig * in_len,
            )
        };
        with_scratch(k * per * ow, |cols| {
            for tile in first..(first + tiles_per_task).min(tiles) {
                let r0 = tile * per;
                let r1 = (r0 + per).min(d.rows());
                let t = (r1 - r0) * ow;
                let dyp = dy[(n * d.c_out + g * cog) * out_len + r0 * ow..].as_ptr();
                // SAFETY: `cols` is this task's k × per·ow scratch (t ≤ per·ow columns); `wg`
                // the group's weights; `dyp` the tile's cog rows of dy (stride out_len).
                unsafe {
                    gemm_conv(
                        k,
                        t,
                        cog,
                        cols.as_mut_ptr(),
                        (1, t),
                        false,
                        wg.as_ptr(),
                        (k, 1),
                        dyp,
                        (1, out_len),
                        par,
                    );
                }
                col2im(d, &cols[..k * t], r0, r1, dxg);
            }
        });
    });
    dx
}

/// dL/dw of the convolution `d`, `[c_out, c_in / groups, kernel]`: Σ over (batch item, tile) of
/// `dY_tile·colsᵀ`, accumulated per chunk of consecutive work items; the chunk count depends only
/// on the problem size and the chunks are summed in order, so the result does not depend on the
/// number of threads.
pub(crate) fn backward_weight(d: &Dims, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if implicit_ok(d) {
        return backward_weight_implicit(d, x, dy);
    }
    backward_weight_im2col(d, x, dy)
}

/// Work items are summed in at most this many chunks (fixed, so results do not depend on threads).
const MAX_CHUNKS: usize = 16;

/// Stride-1 backward-weight without im2col. `x` goes to a channels-last padded grid, so for each
/// (kz, ky) the matrix `[(kx, c) × positions]` is a column-major view (`(q + kx)·cig + c`, dilation
/// 1 along x; one kx at a time otherwise) and `dW_(kz,ky)[(kx, c) × cog] += X_view · dYᵀ` needs no
/// packing; `dy` is laid on the padded grid with zeros at the garbage positions.
fn backward_weight_implicit(d: &Dims, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let grid = PaddedGrid::new(d);
    let (cig, cog) = (d.cig(), d.cog());
    let [id, ih, iw] = d.in_dhw;
    let [od, oh, ow] = d.out_dhw;
    let [kd, kh, kw] = d.kernel;
    let [pz, py, px] = d.padding;
    let (hp, wp, dp) = (grid.hp, grid.wp, grid.dp);
    let (q_len, cs) = (grid.q_len, grid.channel_stride);
    let (in_len, out_len) = (d.in_len(), d.out_len());
    // Channels-last padded input per (n, g): [channel_stride positions][cig].
    let mut xcl = vec![0.0f32; d.batch * d.groups * cs * cig];
    xcl.par_chunks_mut(cs * cig)
        .enumerate()
        .for_each(|(ng, dst)| {
            let (n, g) = (ng / d.groups, ng % d.groups);
            for z in 0..id.min(dp.saturating_sub(pz)) {
                for y in 0..ih.min(hp.saturating_sub(py)) {
                    let o = ((z + pz) * hp + y + py) * wp + px;
                    let cols = iw.min(wp.saturating_sub(px));
                    for c in 0..cig {
                        let src =
                            &x[(n * d.c_in + g * cig + c) * in_len + (z * ih + y) * iw..][..cols];
                        for (i, v) in src.iter().enumerate() {
                            dst[(o + i) * cig + c] = *v;
                        }
                    }
                }
            }
        });
    // dy on the padded grid: [batch · c_out][q_len], zeros where oy ≥ out_h or ox ≥ out_w.
    let mut dyp = vec![0.0f32; d.batch * d.c_out * q_len];
    dyp.par_chunks_mut(q_len).enumerate().for_each(|(nc, dst)| {
        let src = &dy[nc * out_len..(nc + 1) * out_len];
        for z in 0..od {
            for y in 0..oh {
                let o = (z * hp + y) * wp;
                dst[o..o + ow].copy_from_slice(&src[(z * oh + y) * ow..][..ow]);
            }
        }
    });
    // Taps along x folded into one product when the x dilation is 1.
    let xt = if d.dilation[2] == 1 { kw } else { 1 };
    let m = xt * cig;
    let t = 512usize;
    let tiles = q_len.div_ceil(t);
    let items = d.groups * d.batch * tiles;
    let chunks = items.min(MAX_CHUNKS);
    let par = inner_parallelism(chunks);
    let kvol = kd * kh * kw;
    let wlen = d.c_out * cig * kvol;
    // Partial layout: [kz][ky][kx / xt][g][o][(kx % xt)·cig + c].
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut part = vec![0.0f32; wlen];
            for item in chunk * items / chunks..(chunk + 1) * items / chunks {
                let (g, rest) = (item / (d.batch * tiles), item % (d.batch * tiles));
                let (n, tile) = (rest / tiles, rest % tiles);
                let q0 = tile * t;
                let tl = (q0 + t).min(q_len) - q0;
                let xg = xcl[(n * d.groups + g) * cs * cig..].as_ptr();
                let rhs = dyp[(n * d.c_out + g * cog) * q_len + q0..].as_ptr();
                for block in 0..kvol / xt {
                    let tap = block * xt;
                    let off = grid.tap_offset(d, tap);
                    let dst = part[(block * d.groups + g) * cog * m..].as_mut_ptr();
                    // SAFETY: channel-last padded input of (n, g): positions q0 + off .. + tl of
                    // cig floats each stay inside its padded block (`PaddedGrid`, as in the
                    // forward pass); `dst` is this chunk's own partial; `rhs` the tile's dy.
                    let lhs = unsafe { xg.add((q0 + off) * cig) };
                    // SAFETY: as above: lhs, rhs and dst address (m × tl), (tl × cog) and
                    // (m × cog) elements inside their buffers; dst is this chunk's alone.
                    unsafe {
                        gemm_conv(
                            m,
                            cog,
                            tl,
                            dst,
                            (m, 1),
                            true,
                            lhs,
                            (cig, 1),
                            rhs,
                            (q_len, 1),
                            par,
                        )
                    };
                }
            }
            part
        })
        .collect();
    let mut dw = vec![0.0f32; wlen];
    dw.par_chunks_mut(cig * kvol)
        .enumerate()
        .for_each(|(o, out)| {
            let (g, ol) = (o / cog, o % cog);
            for p in &partials {
                for block in 0..kvol / xt {
                    let src = &p[((block * d.groups + g) * cog + ol) * m..][..m];
                    for j in 0..xt {
                        for c in 0..cig {
                            out[c * kvol + block * xt + j] += src[j * cig + c];
                        }
                    }
                }
            }
        });
    dw
}

/// Backward-weight by im2col per tile of output rows.
fn backward_weight_im2col(d: &Dims, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (in_len, out_len) = (d.in_len(), d.out_len());
    let (cig, cog, k) = (d.cig(), d.cog(), d.k_cols());
    let ow = d.out_dhw[2];
    let wlen = d.c_out * k;
    let per = rows_per_tile(d, d.batch * d.groups, 2);
    let tiles = d.rows().div_ceil(per);
    let items = d.groups * d.batch * tiles;
    let chunks = items.min(MAX_CHUNKS);
    let par = inner_parallelism(chunks);
    let pointwise = d.pointwise();
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut part = vec![0.0f32; wlen];
            let (a, b) = (chunk * items / chunks, (chunk + 1) * items / chunks);
            with_scratch(if pointwise { 0 } else { k * per * ow }, |cols| {
                for item in a..b {
                    let (g, rest) = (item / (d.batch * tiles), item % (d.batch * tiles));
                    let (n, tile) = (rest / tiles, rest % tiles);
                    let r0 = tile * per;
                    let r1 = (r0 + per).min(d.rows());
                    let t = (r1 - r0) * ow;
                    let xg =
                        &x[(n * d.c_in + g * cig) * in_len..(n * d.c_in + (g + 1) * cig) * in_len];
                    let dyp = dy[(n * d.c_out + g * cog) * out_len + r0 * ow..].as_ptr();
                    let dst = part[g * cog * k..].as_mut_ptr();
                    let (rhs, rhs_cs) = if pointwise {
                        (xg[r0 * ow..].as_ptr(), in_len)
                    } else {
                        im2col(d, xg, r0, r1, cols);
                        (cols.as_ptr(), t)
                    };
                    // part_g[cog × K] += dY_tile[cog × t] · colsᵀ[t × K].
                    // SAFETY: `dst` is this chunk's own partial (group g's cog × k block); `dyp`
                    // the tile's dy rows; `rhs` the tile's k × t columns (or input rows).
                    unsafe {
                        gemm_conv(
                            cog,
                            k,
                            t,
                            dst,
                            (1, k),
                            true,
                            dyp,
                            (1, out_len),
                            rhs,
                            (rhs_cs, 1),
                            par,
                        )
                    };
                }
            });
            part
        })
        .collect();
    let mut dw = vec![0.0f32; wlen];
    dw.par_chunks_mut(4096).enumerate().for_each(|(i, out)| {
        for p in &partials {
            for (o, v) in out.iter_mut().zip(&p[i * 4096..]) {
                *o += v;
            }
        }
    });
    dw
}
