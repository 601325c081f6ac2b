//! GEMM-based kernels behind the public functions.
//!
//! Every pass works on tiles of output rows (see [`crate::im2col`]): per (batch item, group, tile)
//! the forward pass multiplies the group's weights `[c_out_g × K]` by the tile's column matrix
//! `[K × t]` straight into the NCDHW output; backward-data multiplies `Wᵀ·dY_tile` and scatters with
//! col2im (or, for stride 1, runs the forward pass with flipped weights); backward-weight
//! accumulates `dY_tile·colsᵀ` per fixed chunk of tiles and sums the chunks in order.

use crate::im2col::{col2im, im2col};
use crate::Conv3dGeometry;
use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;

/// A convolution with every size resolved. `out_dhw` is explicit (not derived) so the transposed
/// convolution can use its exact output size as the adjoint convolution's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub in_dhw: [usize; 3],
    pub out_dhw: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub padding: [usize; 3],
    pub dilation: [usize; 3],
}

impl Dims {
    pub fn from_conv(g: &Conv3dGeometry) -> Self {
        Self {
            batch: g.batch,
            c_in: g.c_in,
            c_out: g.c_out,
            groups: g.groups,
            in_dhw: g.in_dhw,
            out_dhw: g.out_dhw(),
            kernel: g.kernel,
            stride: g.stride,
            padding: g.padding,
            dilation: g.dilation,
        }
    }
    /// Input channels per group.
    pub fn cig(&self) -> usize {
        self.c_in / self.groups
    }
    /// Output channels per group.
    pub fn cog(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the column matrix: c_in_group · kernel volume.
    pub fn k_cols(&self) -> usize {
        self.cig() * self.kernel.iter().product::<usize>()
    }
    /// Voxels per input channel.
    pub fn in_len(&self) -> usize {
        self.in_dhw.iter().product()
    }
    /// Voxels per output channel.
    pub fn out_len(&self) -> usize {
        self.out_dhw.iter().product()
    }
    /// Output rows (z, y pairs).
    fn rows(&self) -> usize {
        self.out_dhw[0] * self.out_dhw[1]
    }
    /// True when the column matrix of a tile is the input itself: 1×1×1 kernel, stride 1, no
    /// padding, input and output of the same size.
    fn pointwise(&self) -> bool {
        self.kernel == [1; 3]
            && self.stride == [1; 3]
            && self.padding == [0; 3]
            && self.in_dhw == self.out_dhw
    }
}

/// Raw output pointer shared by tasks that write disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub(crate) *mut f32);
// SAFETY: a `SharedMut` is made from a buffer that outlives the parallel loop using it, and
// every task writes a region of it that no other task reads or writes (stated at each use).
unsafe impl Send for SharedMut {}
// SAFETY: as for `Send`: shared only between tasks writing disjoint regions.
unsafe impl Sync for SharedMut {}
impl SharedMut {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// An output buffer of `len` floats that a pass writes entirely through [`Output::ptr`] before
/// [`Output::finish`]: skips zero-filling buffers that are overwritten anyway (the fill and its
/// first-touch page faults were ≈ 5 % of a UNet training step).
pub(crate) struct Output {
    v: Vec<f32>,
    len: usize,
}

impl Output {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            v: Vec::with_capacity(len),
            len,
        }
    }
    pub(crate) fn ptr(&mut self) -> SharedMut {
        SharedMut(self.v.as_mut_ptr())
    }
    /// # Safety
    /// Every one of the `len` values must have been written through [`Output::ptr`].
    pub(crate) unsafe fn finish(mut self) -> Vec<f32> {
        // SAFETY: the capacity is `len` (`with_capacity`) and the caller wrote every value.
        unsafe { self.v.set_len(self.len) };
        self.v
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a per-thread scratch buffer of at least `len` floats (contents unspecified). The
/// buffer is taken out of the thread-local slot for the call, so a re-entrant call (rayon running
/// another task on this thread while `f` waits) allocates its own instead of panicking.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    SCRATCH.with(|s| {
        let mut slot = s.borrow_mut();
        if slot.len() < buf.len() {
            *slot = buf;
        }
    });
    r
}

/// Output rows per tile so that a tile's column matrix is about `TILE_BYTES` and there are enough
/// tasks (`outer` × tiles) to keep `threads` busy.
fn rows_per_tile(d: &Dims, outer: usize, threads: usize) -> usize {
    const TILE_BYTES: usize = 512 * 1024;
    const MIN_POSITIONS: usize = 128;
    let ow = d.out_dhw[2];
    let rows = d.rows();
    let k = d.k_cols().max(1);
    let positions = (TILE_BYTES / (4 * k)).max(MIN_POSITIONS);
    let mut per = (positions / ow).clamp(1, rows);
    // More, smaller tiles while there are fewer than 4 tasks per thread and tiles stay ≥ MIN_POSITIONS.
    while outer * rows.div_ceil(per) < 4 * threads && per > 1 && (per / 2) * ow >= MIN_POSITIONS {
        per /= 2;
    }
    per
}

/// Calls `gemm::gemm` for f32: `dst[m×n] (+)= lhs[m×k]·rhs[k×n]` with element strides
/// (column stride, row stride) for each matrix; `accumulate` keeps dst's old values.
///
/// # Safety
/// Every element the shapes and strides address must lie inside a live allocation: `lhs` and
/// `rhs` readable, `dst` writable (and initialised when `accumulate`). `dst` must not overlap
/// `lhs` or `rhs`, and no other thread may touch `dst`'s elements during the call.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    (dst_cs, dst_rs): (usize, usize),
    accumulate: bool,
    lhs: *const f32,
    (lhs_cs, lhs_rs): (usize, usize),
    rhs: *const f32,
    (rhs_cs, rhs_rs): (usize, usize),
    par: Parallelism,
) {
    // SAFETY: the caller's contract (above) is gemm::gemm's: every addressed element inside a
    // live allocation, dst writable and not aliased.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Parallelism to give each GEMM when `tasks` tasks run on the pool: none if the tasks alone keep
/// every thread busy, else all threads.
fn inner_parallelism(tasks: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if threads <= 1 || tasks >= 2 * threads {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    }
}

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

/// Input channels per group from which the stride-1 implicit GEMM beats im2col (each tap's GEMM
/// has depth c_in_group).
const IMPLICIT_MIN_CIG: usize = 16;

/// Input channels per group below which stride-1 backward-data uses GEMM + col2im rather than the
/// flipped forward pass (whose per-tap products would have only c_in_group columns).
const FLIPPED_MIN_CIG: usize = 16;

/// Whether [`forward_implicit`] applies: stride 1, not pointwise, deep enough per-tap products.
fn implicit_ok(d: &Dims) -> bool {
    d.stride == [1; 3] && !d.pointwise() && d.cig() >= IMPLICIT_MIN_CIG
}

/// The zero-padded grid of a stride-1 convolution: every input channel is copied into a
/// `[Dp, Hp, Wp]` box (plus `slack` trailing zeros) where `Dp = out_d + dilation·(kernel − 1)` etc.,
/// so that output voxel `q = (oz·Hp + oy)·Wp + ox` of the padded grid reads tap `(kz, ky, kx)` at
/// `q + (kz·dz·Hp + ky·dy)·Wp + kx·dx`. Positions with `oy ≥ out_h` or `ox ≥ out_w` are garbage and
/// never stored.
#[derive(Clone, Copy, Debug)]
struct PaddedGrid {
    hp: usize,
    wp: usize,
    dp: usize,
    /// Floats per channel: `Dp·Hp·Wp + slack`.
    channel_stride: usize,
    /// Padded-grid output positions: `out_d·Hp·Wp`.
    q_len: usize,
}

impl PaddedGrid {
    fn new(d: &Dims) -> Self {
        let ext = |a: usize| d.out_dhw[a] + d.dilation[a] * (d.kernel[a] - 1);
        let (dp, hp, wp) = (ext(0), ext(1), ext(2));
        let slack = d.dilation[1] * (d.kernel[1] - 1) * wp + d.dilation[2] * (d.kernel[2] - 1);
        Self {
            hp,
            wp,
            dp,
            channel_stride: dp * hp * wp + slack,
            q_len: d.out_dhw[0] * hp * wp,
        }
    }

    /// Offset of tap `(kz, ky, kx)` (flat index in the kernel) from the output position.
    fn tap_offset(&self, d: &Dims, tap: usize) -> usize {
        let [_, kh, kw] = d.kernel;
        let (kz, ky, kx) = (tap / (kh * kw), (tap / kw) % kh, tap % kw);
        (kz * d.dilation[0] * self.hp + ky * d.dilation[1]) * self.wp + kx * d.dilation[2]
    }

    /// Copies `x` `[channels, in_dhw]` into the grid, `[channels, channel_stride]`, input voxel
    /// `(z, y, x)` at padded `(z + pz, y + py, x + px)` (clipped to the box).
    fn pad(&self, d: &Dims, x: &[f32], channels: usize) -> Vec<f32> {
        let [id, ih, iw] = d.in_dhw;
        let [pz, py, px] = d.padding;
        let cs = self.channel_stride;
        let mut xp = vec![0.0f32; channels * cs];
        let (hp, wp) = (self.hp, self.wp);
        let cols = iw.min(wp.saturating_sub(px));
        xp.par_chunks_mut(cs).enumerate().for_each(|(c, dst)| {
            let src = &x[c * id * ih * iw..(c + 1) * id * ih * iw];
            for z in 0..id.min(self.dp.saturating_sub(pz)) {
                for y in 0..ih.min(hp.saturating_sub(py)) {
                    let o = ((z + pz) * hp + y + py) * wp + px;
                    let i = (z * ih + y) * iw;
                    dst[o..o + cols].copy_from_slice(&src[i..i + cols]);
                }
            }
        });
        xp
    }
}

/// Positions per tile of the implicit GEMM (a multiple of gemm's 16-float vectors).
fn implicit_tile(q_len: usize, outer: usize, threads: usize) -> usize {
    let mut t: usize = crate::settings().implicit_tile;
    while t > 64 && outer * q_len.div_ceil(t) < 4 * threads {
        t /= 2;
    }
    t
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
                    gemm_f32(
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
            gemm_f32(
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
                    gemm_f32(
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
                        gemm_f32(
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
                        gemm_f32(
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

/// Per-channel sums of an NCDHW tensor `[batch, channels, …]` (f64 accumulation, fixed order).
pub(crate) fn channel_sums(t: &[f32], batch: usize, channels: usize) -> Vec<f32> {
    let len = t.len() / (batch * channels).max(1);
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let mut s = 0.0f64;
            for n in 0..batch {
                let start = (n * channels + c) * len;
                s += t[start..start + len].iter().map(|&v| v as f64).sum::<f64>();
            }
            s as f32
        })
        .collect()
}

/// Adds `bias[c]` to every voxel of channel `c` of an NCDHW tensor `[batch, bias.len(), …]`.
pub(crate) fn add_channel_bias(t: &mut [f32], batch: usize, bias: &[f32]) {
    let len = t.len() / (batch * bias.len()).max(1);
    if len == 0 {
        return;
    }
    t.par_chunks_mut(len).enumerate().for_each(|(i, ch)| {
        let b = bias[i % bias.len()];
        ch.iter_mut().for_each(|v| *v += b);
    });
}
