//! GEMM-based kernels behind the public functions.
//!
//! Every pass works on tiles of output rows (see [`crate::im2col`]): per (batch item, group, tile)
//! the forward pass multiplies the group's weights `[c_out_g × K]` by the tile's column matrix
//! `[K × t]` straight into the NCDHW output; backward-data multiplies `Wᵀ·dY_tile` and scatters with
//! col2im (or, for stride 1, runs the forward pass with flipped weights); backward-weight
//! accumulates `dY_tile·colsᵀ` per fixed chunk of tiles and sums the chunks in order.

mod backward;
mod forward;

pub(crate) use backward::{backward_data, backward_weight};
pub(crate) use forward::forward;

use crate::common::Dims;
use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;

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

/// Input channels per group from which the stride-1 implicit GEMM beats im2col (each tap's GEMM
/// has depth c_in_group).
const IMPLICIT_MIN_CIG: usize = 16;

/// Whether `forward_implicit` (in `forward.rs`) applies: stride 1, not pointwise, deep enough
/// per-tap products.
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
