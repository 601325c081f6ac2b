//! Winograd F(2×2×2, 3×3×3) for stride-1, undilated 3×3×3 convolutions (Lavin & Gray 2016, in 3D).
//!
//! Each 2×2×2 block of output voxels (a *tile*) is computed from the 4×4×4 input block under it:
//! `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` applied along z, y and x. Summed over input channels, the
//! element-wise products become 64 independent matrix products (one per transform coordinate ξ):
//! `M_ξ[tiles × c_out] = V_ξ[tiles × c_in] · U_ξ[c_in × c_out]`, 8 multiply-adds per output voxel and
//! channel pair instead of the direct method's 27 (3.375× fewer).
//!
//! Work is split into blocks of tile rows (a tile row: batch item, tile z, tile y, every tile x)
//! small enough that a block's transformed input `V` and products `M` stay in the core's L2 cache:
//! per block, the input transform writes `V`, 64 GEMMs (the `gemm` crate) write `M`, the output
//! transform writes the block's output rows. Blocks own disjoint output rows and run in parallel.
//! The transforms work on whole rows of x (even and odd columns split), so they vectorise; they are
//! compiled for AVX-512 and AVX2 as well and picked at run time.
//!
//! Transforms (F(2,3)): `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`,
//! `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`, `Aᵀ = [1 1 1 0; 0 1 −1 −1]`.

use crate::fast::{gemm_f32, Dims, Output, SharedMut};
use gemm::Parallelism;
use rayon::prelude::*;

/// Input channels per group from which Winograd beats the direct implicit GEMM.
const MIN_CIG: usize = 16;
/// Output channels per group from which Winograd beats the direct implicit GEMM.
const MIN_COG: usize = 16;
/// Output width below which a tile row (⌈width / 2⌉ tiles) is too short for the per-row transform
/// overhead to pay off, unless the input is at least `DEEP_CIG` channels deep (measured on UNet and
/// UCaps layers: 16→128 at 8³ was slower, 384→128 and 48→64 at 8³ faster).
const MIN_OUT_X: usize = 16;
const DEEP_CIG: usize = 48;
/// Blocks per problem to aim for (enough tasks for a many-core pool).
const MIN_BLOCKS: usize = 32;
/// Target size in bytes of one block's transformed input `V` (64 · c_in_group · tiles floats).
const BLOCK_V_BYTES: usize = 768 * 1024;

/// Whether the Winograd path applies to `d`: 3×3×3 kernel, stride 1, dilation 1, enough channels,
/// and not switched off ([`crate::ConvSettings::winograd`], for benchmarking the direct path).
pub(crate) fn applies(d: &Dims) -> bool {
    d.kernel == [3; 3]
        && d.stride == [1; 3]
        && d.dilation == [1; 3]
        && d.cig() >= MIN_CIG
        && d.cog() >= MIN_COG
        && d.out_dhw.iter().all(|&n| n > 0)
        && (d.out_dhw[2] >= MIN_OUT_X || d.cig() >= DEEP_CIG)
        && enabled()
}

fn enabled() -> bool {
    crate::settings().winograd
}

/// Transformed weights `U[group][ξ][o][c]` (ξ = (a·4 + b)·4 + e over z, y, x) from weights
/// `[c_out, c_in / groups, 3, 3, 3]`.
fn transform_weights(d: &Dims, w: &[f32]) -> Vec<f32> {
    const G: [[f32; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let (cig, cog) = (d.cig(), d.cog());
    let mut u = vec![0.0f32; d.groups * 64 * cog * cig];
    for g in 0..d.groups {
        for o in 0..cog {
            for c in 0..cig {
                let k = &w[((g * cog + o) * cig + c) * 27..][..27];
                // z, then y, then x: t1[a][ky][kx], t2[a][b][kx], u[a][b][e].
                let mut t1 = [[[0.0f32; 3]; 3]; 4];
                for (a, row) in G.iter().enumerate() {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            t1[a][ky][kx] =
                                (0..3).map(|kz| row[kz] * k[(kz * 3 + ky) * 3 + kx]).sum();
                        }
                    }
                }
                let mut t2 = [[[0.0f32; 3]; 4]; 4];
                for (t2a, t1a) in t2.iter_mut().zip(t1.iter()) {
                    for (t2ab, row) in t2a.iter_mut().zip(G.iter()) {
                        for (kx, v) in t2ab.iter_mut().enumerate() {
                            *v = (0..3).map(|ky| row[ky] * t1a[ky][kx]).sum();
                        }
                    }
                }
                for (a, t2a) in t2.iter().enumerate() {
                    for (b, t2ab) in t2a.iter().enumerate() {
                        for (e, row) in G.iter().enumerate() {
                            let v: f32 = (0..3).map(|kx| row[kx] * t2ab[kx]).sum();
                            let xi = (a * 4 + b) * 4 + e;
                            u[((g * 64 + xi) * cog + o) * cig + c] = v;
                        }
                    }
                }
            }
        }
    }
    u
}

/// Tile counts and block sizes of one problem.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Tiles along z, y, x: ⌈out / 2⌉.
    tz: usize,
    ty: usize,
    tx: usize,
    /// Tile rows per block and tiles per block (capacity; the last block may be shorter).
    rows_per_block: usize,
    tiles_per_block: usize,
    /// Blocks per group (over all batch items).
    blocks: usize,
}

impl Plan {
    fn new(d: &Dims) -> Self {
        let [tz, ty, tx] = d.out_dhw.map(|n| n.div_ceil(2));
        let rows = d.batch * tz * ty;
        let target_tiles = (BLOCK_V_BYTES / (4 * 64 * d.cig())).max(16);
        let mut rows_per_block = (target_tiles / tx).clamp(1, rows);
        // At least MIN_BLOCKS blocks where the problem allows, for the thread pool. Fixed, not
        // derived from the thread count, so that results do not depend on it.
        while rows_per_block > 1 && d.groups * rows.div_ceil(rows_per_block) < MIN_BLOCKS {
            rows_per_block = rows_per_block.div_ceil(2);
        }
        Self {
            tz,
            ty,
            tx,
            rows_per_block,
            tiles_per_block: rows_per_block * tx,
            blocks: rows.div_ceil(rows_per_block),
        }
    }
}

/// Forward convolution `y = W * x (+ bias)` by Winograd F(2,3); requires [`applies`].
pub(crate) fn forward(d: &Dims, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    debug_assert!(d.kernel == [3; 3] && d.stride == [1; 3] && d.dilation == [1; 3]);
    let plan = Plan::new(d);
    let u = transform_weights(d, w);
    let mut y = Output::new(d.batch * d.c_out * d.out_len());
    let job = Job {
        d,
        plan,
        x,
        u: &u,
        bias,
        yp: y.ptr(),
    };
    let kernel = Kernel::detect();
    (0..d.groups * plan.blocks)
        .into_par_iter()
        .for_each(|task| {
            let (g, block) = (task / plan.blocks, task % plan.blocks);
            // Taken out of the thread's slot for the task (a nested rayon task on this thread then
            // starts with an empty one) and put back after.
            let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
            // SAFETY: each task writes the output rows of its own tile rows of group g only.
            unsafe { kernel.run(&job, g, block, &mut scratch) };
            SCRATCH.with(|s| *s.borrow_mut() = scratch);
        });
    // SAFETY: the blocks cover every tile row of every group; a tile row writes all output
    // voxels under it (clipped to the output) for each of the group's channels.
    unsafe { y.finish() }
}

/// What every block of one convolution shares: sizes, plan, input, transformed weights, bias and
/// the output pointer.
#[derive(Clone, Copy)]
struct Job<'a> {
    d: &'a Dims,
    plan: Plan,
    x: &'a [f32],
    u: &'a [f32],
    bias: Option<&'a [f32]>,
    yp: SharedMut,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Per-thread buffers of one block: `v` (64 · cig · tiles), `m` (64 · cog · tiles) and the row
/// buffers of the transforms.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    rows: Vec<f32>,
}

fn ensure(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// The instruction set the transforms are compiled for, picked once per call.
#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Generic,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // Every feature `block_avx512` enables must be present: a CPU with AVX-512F but
            // without VL (or without FMA/AVX2) would otherwise run instructions it lacks.
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2;
            }
        }
        Kernel::Generic
    }

    /// # Safety
    /// `job.yp` must point to the `[batch, c_out, out_dhw]` output; no other task may write the
    /// rows of `block` in group `g`.
    unsafe fn run(self, job: &Job, g: usize, block: usize, s: &mut Scratch) {
        // SAFETY: the caller's contract is the block functions'; a kernel other than Generic
        // exists only after `Kernel::detect` found every CPU feature it enables.
        unsafe {
            match self {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => block_avx512(job, g, block, s),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => block_avx2(job, g, block, s),
                Kernel::Generic => block_generic(job, g, block, s),
            }
        }
    }
}

/// # Safety
/// As [`Kernel::run`], and the CPU has AVX-512F, AVX-512VL, AVX2 and FMA ([`Kernel::detect`]
/// checks all four).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn block_avx512(job: &Job, g: usize, block: usize, s: &mut Scratch) {
    // SAFETY: forwarded contract (see above).
    unsafe { block_body(job, g, block, s) }
}

/// # Safety
/// As [`Kernel::run`], and the CPU has AVX2 and FMA ([`Kernel::detect`] checks both).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2(job: &Job, g: usize, block: usize, s: &mut Scratch) {
    // SAFETY: forwarded contract (see above).
    unsafe { block_body(job, g, block, s) }
}

/// # Safety
/// As [`Kernel::run`].
unsafe fn block_generic(job: &Job, g: usize, block: usize, s: &mut Scratch) {
    // SAFETY: forwarded contract (see above).
    unsafe { block_body(job, g, block, s) }
}

/// One block: input transform into `V`, 64 GEMMs into `M`, output transform into `y`.
#[inline(always)]
unsafe fn block_body(job: &Job, g: usize, block: usize, s: &mut Scratch) {
    let Job {
        d,
        plan,
        x,
        u,
        bias,
        yp,
    } = *job;
    let (cig, cog) = (d.cig(), d.cog());
    let tx = plan.tx;
    let tb = plan.tiles_per_block;
    let all_rows = d.batch * plan.tz * plan.ty;
    let r0 = block * plan.rows_per_block;
    let r1 = (r0 + plan.rows_per_block).min(all_rows);
    let tiles = (r1 - r0) * tx;
    // Half-row length: tx + 1 even and odd input columns cover tile x positions 0..tx.
    let half = tx + 1;
    // ξ strides padded by a cache line so that the 64 rows a transform touches at once do not all
    // fall in one L1 set (a plain c·tb stride is often a multiple of 4 KiB).
    let vs = cig * tb + 16;
    let ms = cog * tb + 16;
    ensure(&mut s.v, 64 * vs);
    ensure(&mut s.m, 64 * ms);
    // Row buffers: two sets of 16 padded rows, then a zero row of input width.
    ensure(&mut s.rows, (2 * 16 * 2 * half + 2 * half).max(50 * tx));
    s.rows[64 * half..66 * half].fill(0.0);
    let v = &mut s.v[..64 * vs];
    let m = &mut s.m[..64 * ms];

    // Channel-major so that each channel's input rows are read in address order.
    for c in 0..cig {
        for r in r0..r1 {
            let t0 = (r - r0) * tx;
            let (n, tzy) = (r / (plan.tz * plan.ty), r % (plan.tz * plan.ty));
            let (iz, iy) = (tzy / plan.ty, tzy % plan.ty);
            let xc = &x[(n * d.c_in + g * cig + c) * d.in_len()..][..d.in_len()];
            input_transform_row(d, xc, iz, iy, tx, half, &mut s.rows, v, c * tb + t0, vs);
        }
    }

    for xi in 0..64 {
        // SAFETY: `m`, `v` and `u` are slices of this block's scratch and the transformed
        // weights, sized for 64 matrices of (tiles × cog), (tiles × cig) and (cog × cig) at
        // these strides; `m` is this task's own scratch.
        unsafe {
            gemm_f32(
                tiles,
                cog,
                cig,
                m[xi * ms..].as_mut_ptr(),
                (tb, 1),
                false,
                v[xi * vs..].as_ptr(),
                (tb, 1),
                u[(g * 64 + xi) * cog * cig..].as_ptr(),
                (cig, 1),
                Parallelism::None,
            );
        }
    }

    for r in r0..r1 {
        let t0 = (r - r0) * tx;
        let (n, tzy) = (r / (plan.tz * plan.ty), r % (plan.tz * plan.ty));
        let (iz, iy) = (tzy / plan.ty, tzy % plan.ty);
        for o in 0..cog {
            let ch = n * d.c_out + g * cog + o;
            let b = bias.map_or(0.0, |b| b[g * cog + o]);
            // SAFETY: channel `ch` rows of tile row (iz, iy) belong to this block alone (the
            // caller's contract) and lie inside the output `yp` points to.
            unsafe {
                output_transform_row(d, m, o * tb + t0, ms, tx, &mut s.rows, yp, ch, iz, iy, b)
            };
        }
    }
}

/// Four disjoint rows `buf[first + i·stride..][..len]`, i = 0..4 (`stride ≥ len`).
#[inline(always)]
fn rows4_mut(buf: &mut [f32], first: usize, stride: usize, len: usize) -> [&mut [f32]; 4] {
    let (_, rest) = buf.split_at_mut(first);
    let (r0, rest) = rest.split_at_mut(stride);
    let (r1, rest) = rest.split_at_mut(stride);
    let (r2, r3) = rest.split_at_mut(stride);
    [
        &mut r0[..len],
        &mut r1[..len],
        &mut r2[..len],
        &mut r3[..len],
    ]
}

/// Four rows `buf[first + i·stride..][..len]`, i = 0..4.
#[inline(always)]
fn rows4(buf: &[f32], first: usize, stride: usize, len: usize) -> [&[f32]; 4] {
    [
        &buf[first..][..len],
        &buf[first + stride..][..len],
        &buf[first + 2 * stride..][..len],
        &buf[first + 3 * stride..][..len],
    ]
}

/// Applies `f` to lanes of four input rows, writing `N` output rows, `L` values at a time (fixed-size
/// arrays, so the compiler emits vector code without alias checks), then the remainder one by one.
#[inline(always)]
fn lanes<const N: usize, F>(d: [&[f32]; 4], o: [&mut [f32]; N], f: F)
where
    F: Fn([f32; 4]) -> [f32; N],
{
    #[inline(always)]
    fn chunk<const L: usize, const N: usize, F: Fn([f32; 4]) -> [f32; N]>(
        d: &[&[f32]; 4],
        o: &mut [&mut [f32]; N],
        i: usize,
        f: &F,
    ) {
        let a: [[f32; L]; 4] = std::array::from_fn(|r| d[r][i..i + L].try_into().unwrap());
        let mut out = [[0.0f32; L]; N];
        for j in 0..L {
            let v = f([a[0][j], a[1][j], a[2][j], a[3][j]]);
            for r in 0..N {
                out[r][j] = v[r];
            }
        }
        for r in 0..N {
            o[r][i..i + L].copy_from_slice(&out[r]);
        }
    }
    let n = o[0].len();
    let mut o = o;
    let mut i = 0;
    while i + 16 <= n {
        chunk::<16, N, F>(&d, &mut o, i, &f);
        i += 16;
    }
    while i + 8 <= n {
        chunk::<8, N, F>(&d, &mut o, i, &f);
        i += 8;
    }
    while i < n {
        chunk::<1, N, F>(&d, &mut o, i, &f);
        i += 1;
    }
}

/// Splits `row` into its even (`row[2k]`) and odd (`row[2k + 1]`) values, `row.len() = 2·even.len()`.
#[inline(always)]
fn deinterleave(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = even.len();
    let odd = &mut odd[..n];
    let mut k = 0;
    while k + 16 <= n {
        let a: &[f32; 32] = row[2 * k..2 * k + 32].try_into().unwrap();
        let e: [f32; 16] = std::array::from_fn(|j| a[2 * j]);
        let o: [f32; 16] = std::array::from_fn(|j| a[2 * j + 1]);
        even[k..k + 16].copy_from_slice(&e);
        odd[k..k + 16].copy_from_slice(&o);
        k += 16;
    }
    while k < n {
        even[k] = row[2 * k];
        odd[k] = row[2 * k + 1];
        k += 1;
    }
}

/// `Bᵀ` along one axis, element-wise over rows: `o = (d0 − d2, d1 + d2, d2 − d1, d1 − d3)`.
#[inline(always)]
fn bt_rows(d: [&[f32]; 4], o: [&mut [f32]; 4]) {
    lanes(d, o, |[d0, d1, d2, d3]| {
        [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
    });
}

/// `Aᵀ` along one axis, element-wise over rows: `(lo, hi) = (m0 + m1 + m2, m1 − m2 − m3)`.
#[inline(always)]
fn at_rows(m: [&[f32]; 4], lo: &mut [f32], hi: &mut [f32]) {
    lanes(m, [lo, hi], |[m0, m1, m2, m3]| [m0 + m1 + m2, m1 - m2 - m3]);
}

/// Input transform of one tile row (tile z `iz`, tile y `iy`, all `tx` tiles along x) of one
/// channel `xc` (`[in_d, in_h, in_w]`): writes `V[ξ][at + i]` (ξ stride `xi_stride`) for tile i.
/// `rows` is scratch of `2·16·2·half` floats followed by `2·half` zeros.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn input_transform_row(
    d: &Dims,
    xc: &[f32],
    iz: usize,
    iy: usize,
    tx: usize,
    half: usize,
    rows: &mut [f32],
    v: &mut [f32],
    at: usize,
    xi_stride: usize,
) {
    let [id, ih, iw] = d.in_dhw;
    let [pz, py, px] = d.padding;
    let len = 2 * half;
    let (src, rest) = rows.split_at_mut(16 * len);
    let (tmp, rest) = rest.split_at_mut(16 * len);
    // Padded column j holds input column j − px; columns outside [j0, j1) are zero.
    let j0 = px.min(len);
    let j1 = (px + iw).min(len);
    let cols = j1 - j0;
    let zeros = &rest[..cols];
    let line = |dz: usize, dy: usize| -> &[f32] {
        let z = (2 * iz + dz) as isize - pz as isize;
        let yy = (2 * iy + dy) as isize - py as isize;
        if z < 0 || z >= id as isize || yy < 0 || yy >= ih as isize {
            zeros
        } else {
            &xc[(z as usize * ih + yy as usize) * iw..][..cols]
        }
    };
    // Bᵀ along z, straight from the input rows under the tile row: tmp[a·4 + dy] from rows dz.
    for dy in 0..4 {
        let [t0, t1, t2, t3] = rows4_mut(tmp, dy * len, 4 * len, len);
        for t in [&mut *t0, &mut *t1, &mut *t2, &mut *t3] {
            t[..j0].fill(0.0);
            t[j1..].fill(0.0);
        }
        bt_rows(
            [line(0, dy), line(1, dy), line(2, dy), line(3, dy)],
            [
                &mut t0[j0..j1],
                &mut t1[j0..j1],
                &mut t2[j0..j1],
                &mut t3[j0..j1],
            ],
        );
    }
    // Bᵀ along y: src[a·4 + b] from tmp[a·4 + dy].
    for a in 0..4 {
        bt_rows(
            rows4(tmp, a * 4 * len, len, len),
            rows4_mut(src, a * 4 * len, len, len),
        );
    }
    // Split even and odd columns: tmp[ab] = even columns (half), then odd columns (half).
    for ab in 0..16 {
        let row = &src[ab * len..][..len];
        let (even, odd) = tmp[ab * len..][..len].split_at_mut(half);
        deinterleave(row, even, odd);
    }
    // Bᵀ along x per tile i: padded columns 2i..2i+3 = even[i], odd[i], even[i+1], odd[i+1].
    for ab in 0..16 {
        let (even, odd) = tmp[ab * len..][..len].split_at(half);
        bt_rows(
            [&even[..tx], &odd[..tx], &even[1..tx + 1], &odd[1..tx + 1]],
            rows4_mut(v, at + ab * 4 * xi_stride, xi_stride, tx),
        );
    }
}

/// Output transform of one tile row for one output channel: reads `M[ξ][at + i]` (ξ stride
/// `xi_stride`) for tile i, writes output rows `2·iz + {0,1}`, `2·iy + {0,1}` of channel `ch`
/// (index into `[batch·c_out]`) plus `bias`, clipped to the output size.
///
/// # Safety
/// `yp` must point to the `[batch, c_out, out_dhw]` output and no other thread may write these rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform_row(
    d: &Dims,
    m: &[f32],
    at: usize,
    xi_stride: usize,
    tx: usize,
    rows: &mut [f32],
    yp: SharedMut,
    ch: usize,
    iz: usize,
    iy: usize,
    bias: f32,
) {
    let [od, oh, ow] = d.out_dhw;
    let (s1, rest) = rows.split_at_mut(32 * tx);
    let (s2, rest) = rest.split_at_mut(16 * tx);
    let (ev, rest) = rest.split_at_mut(tx);
    let od_row = &mut rest[..tx];
    // Aᵀ along z: s1[(oz·4 + b)·4 + e] from M[(a·4 + b)·4 + e].
    {
        let (lo, hi) = s1.split_at_mut(16 * tx);
        for be in 0..16 {
            at_rows(
                rows4(m, at + be * xi_stride, 16 * xi_stride, tx),
                &mut lo[be * tx..][..tx],
                &mut hi[be * tx..][..tx],
            );
        }
    }
    // Aᵀ along y: s2[(oz·2 + oy)·4 + e] from s1[(oz·4 + b)·4 + e].
    for oz in 0..2 {
        let (lo, hi) = s2[oz * 8 * tx..][..8 * tx].split_at_mut(4 * tx);
        for e in 0..4 {
            at_rows(
                rows4(s1, (oz * 16 + e) * tx, 4 * tx, tx),
                &mut lo[e * tx..][..tx],
                &mut hi[e * tx..][..tx],
            );
        }
    }
    // Aᵀ along x, interleaved into the output row.
    let out_len = d.out_len();
    for oz in 0..2 {
        let z = 2 * iz + oz;
        if z >= od {
            break;
        }
        for oy in 0..2 {
            let yy = 2 * iy + oy;
            if yy >= oh {
                break;
            }
            at_rows(rows4(s2, (oz * 2 + oy) * 4 * tx, tx, tx), ev, od_row);
            // SAFETY: row (z, yy) of channel `ch` is inside the output (z < od, yy < oh) and only
            // this block writes it (the caller's contract).
            let dst = unsafe {
                std::slice::from_raw_parts_mut(yp.get().add(ch * out_len + (z * oh + yy) * ow), ow)
            };
            let pairs = ow / 2;
            for ((pair, e), o) in dst
                .chunks_exact_mut(2)
                .zip(&ev[..pairs])
                .zip(&od_row[..pairs])
            {
                pair[0] = e + bias;
                pair[1] = o + bias;
            }
            if ow % 2 == 1 {
                dst[ow - 1] = ev[pairs] + bias;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{naive, Conv3dGeometry};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn geometry(
        batch: usize,
        c: [usize; 2],
        in_dhw: [usize; 3],
        padding: [usize; 3],
        groups: usize,
    ) -> Conv3dGeometry {
        Conv3dGeometry {
            batch,
            c_in: c[0],
            c_out: c[1],
            in_dhw,
            kernel: [3; 3],
            stride: [1; 3],
            padding,
            dilation: [1; 3],
            groups,
        }
    }

    /// max |a − b| relative to 1 + max |b|.
    fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = 1.0 + b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()))
            / scale
    }

    #[test]
    fn forward_matches_naive_on_odd_sizes_paddings_groups_and_batches() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let cases = [
            geometry(1, [1, 1], [3, 3, 3], [0; 3], 1),
            geometry(2, [3, 5], [7, 5, 9], [1; 3], 1),
            geometry(1, [4, 6], [6, 9, 8], [0; 3], 2),
            geometry(3, [5, 4], [5, 4, 6], [2; 3], 1),
            geometry(1, [6, 7], [9, 7, 11], [2, 0, 1], 1),
            geometry(2, [16, 16], [4, 17, 33], [1; 3], 1),
            geometry(1, [40, 24], [10, 11, 12], [1; 3], 4),
        ];
        for g in cases {
            let d = Dims::from_conv(&g);
            let x: Vec<f32> = (0..g.input_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let w: Vec<f32> = (0..g.weight_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let b: Vec<f32> = (0..g.c_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let want = naive::conv3d_forward(&g, &x, &w, Some(&b));
            let got = forward(&d, &x, &w, Some(&b));
            let diff = rel_diff(&got, &want);
            assert!(diff < 1e-5, "winograd vs naive: {diff} for {g:?}");
            let diff = rel_diff(
                &forward(&d, &x, &w, None),
                &naive::conv3d_forward(&g, &x, &w, None),
            );
            assert!(
                diff < 1e-5,
                "winograd vs naive without bias: {diff} for {g:?}"
            );
        }
    }

    #[test]
    fn public_passes_take_the_winograd_path_where_it_applies() {
        // Forward and the stride-1 data gradient (a flipped forward convolution) of a layer deep
        // and wide enough for the Winograd path, odd sizes, padding 1 and 2.
        let mut rng = ChaCha8Rng::seed_from_u64(32);
        for g in [
            geometry(2, [16, 24], [5, 7, 17], [1; 3], 1),
            geometry(1, [48, 16], [6, 9, 8], [2; 3], 1),
        ] {
            let d = Dims::from_conv(&g);
            assert!(applies(&d), "{g:?} should use Winograd");
            let x: Vec<f32> = (0..g.input_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let w: Vec<f32> = (0..g.weight_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let dy: Vec<f32> = (0..g.output_len())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let diff = rel_diff(
                &crate::conv3d_forward(&g, &x, &w, None),
                &naive::conv3d_forward(&g, &x, &w, None),
            );
            assert!(diff < 1e-5, "forward: {diff} for {g:?}");
            let diff = rel_diff(
                &crate::conv3d_backward_data(&g, &dy, &w),
                &naive::conv3d_backward_data(&g, &dy, &w),
            );
            assert!(diff < 1e-5, "backward data: {diff} for {g:?}");
        }
        let strided = Conv3dGeometry {
            stride: [2; 3],
            ..geometry(1, [16, 16], [8, 8, 32], [1; 3], 1)
        };
        assert!(!applies(&Dims::from_conv(&strided)));
        let dilated = Conv3dGeometry {
            dilation: [2; 3],
            ..geometry(1, [16, 16], [8, 8, 32], [2; 3], 1)
        };
        assert!(!applies(&Dims::from_conv(&dilated)));
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let g = geometry(2, [16, 16], [6, 7, 18], [1; 3], 1);
        let mut rng = ChaCha8Rng::seed_from_u64(33);
        let x: Vec<f32> = (0..g.input_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let w: Vec<f32> = (0..g.weight_len())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| forward(&Dims::from_conv(&g), &x, &w, None))
        };
        assert!(
            run(1) == run(3),
            "Winograd results differ between 1 and 3 threads"
        );
    }

    #[test]
    fn transformed_weights_reproduce_the_kernel_on_a_delta_input() {
        // A single input voxel of value 1 in the middle of a 5³ input, no padding: the 3³ output
        // is the kernel flipped (correlation), so every tap must come back exactly.
        let g = geometry(1, [1, 1], [5; 3], [0; 3], 1);
        let w: Vec<f32> = (0..27).map(|i| i as f32 - 13.0).collect();
        let mut x = vec![0.0f32; 125];
        x[62] = 1.0;
        let y = forward(&Dims::from_conv(&g), &x, &w, None);
        for (i, v) in y.iter().enumerate() {
            assert!(
                (v - w[26 - i]).abs() < 1e-5,
                "tap {i}: {v} vs {}",
                w[26 - i]
            );
        }
    }
}
