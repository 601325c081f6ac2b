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

mod kernels;
mod transforms;

use crate::common::{Dims, Output, SharedMut};
use kernels::{Kernel, SCRATCH};
use rayon::prelude::*;
use transforms::transform_weights;

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

/// The name of the kernel [`forward`] runs on this CPU: "avx512", "avx2" or "generic".
pub(crate) fn kernel_name() -> &'static str {
    Kernel::detect().name()
}

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
    let u_bf16 = pack_weights_bf16(d, &u);
    let mut y = Output::new(d.batch * d.c_out * d.out_len());
    let job = Job {
        d,
        plan,
        x,
        u: &u,
        #[cfg(target_arch = "x86_64")]
        u_bf16: u_bf16.as_deref(),
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

/// The transformed weights packed for the bf16 products, one per (group, ξ), when the
/// convolutions' products run in bf16 ([`crate::ConvSettings::precision`]); packed once per
/// convolution instead of once per block.
#[cfg(target_arch = "x86_64")]
fn pack_weights_bf16(d: &Dims, u: &[f32]) -> Option<Vec<crate::bf16::PackedRhs>> {
    if !crate::bf16_products() {
        return None;
    }
    let (cig, cog) = (d.cig(), d.cog());
    Some(
        (0..d.groups * 64)
            .map(|gx| {
                // SAFETY: U_ξ of group g is the cig × cog matrix at (g·64 + ξ)·cog·cig with
                // strides (cig, 1), inside `u`; `bf16_products` holds only with AVX512-BF16.
                unsafe {
                    crate::bf16::PackedRhs::new(cig, cog, u[gx * cog * cig..].as_ptr(), cig, 1)
                }
            })
            .collect(),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn pack_weights_bf16(_d: &Dims, _u: &[f32]) -> Option<Vec<()>> {
    None
}

/// What every block of one convolution shares: sizes, plan, input, transformed weights (and
/// their bf16 packing when the products run in bf16), bias and the output pointer.
#[derive(Clone, Copy)]
struct Job<'a> {
    d: &'a Dims,
    plan: Plan,
    x: &'a [f32],
    u: &'a [f32],
    #[cfg(target_arch = "x86_64")]
    u_bf16: Option<&'a [crate::bf16::PackedRhs]>,
    bias: Option<&'a [f32]>,
    yp: SharedMut,
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
