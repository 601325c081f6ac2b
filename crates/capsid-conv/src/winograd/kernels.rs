//! The per-block kernel of the Winograd forward pass (input transform, 64 GEMMs, output
//! transform), compiled for AVX-512, AVX2 and generic code and picked at run time.

use super::transforms::{input_transform_row, output_transform_row};
use super::Job;
use crate::common::gemm_f32;
use gemm::Parallelism;

thread_local! {
    pub(super) static SCRATCH: std::cell::RefCell<Scratch> =
        std::cell::RefCell::new(Scratch::default());
}

/// Per-thread buffers of one block: `v` (64 · cig · tiles), `m` (64 · cog · tiles) and the row
/// buffers of the transforms.
#[derive(Default)]
pub(super) struct Scratch {
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
pub(super) enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Generic,
}

impl Kernel {
    pub(super) fn detect() -> Self {
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

    /// The kernel's name for reports.
    pub(super) fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
            Kernel::Generic => "generic",
        }
    }

    /// # Safety
    /// `job.yp` must point to the `[batch, c_out, out_dhw]` output; no other task may write the
    /// rows of `block` in group `g`.
    pub(super) unsafe fn run(self, job: &Job, g: usize, block: usize, s: &mut Scratch) {
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

/// The 64 products `M_ξ = V_ξ · U_ξ` of one block in f32.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemms_f32(
    job: &Job,
    g: usize,
    tiles: usize,
    tb: usize,
    vs: usize,
    ms: usize,
    v: &[f32],
    m: &mut [f32],
) {
    let (cig, cog) = (job.d.cig(), job.d.cog());
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
                job.u[(g * 64 + xi) * cog * cig..].as_ptr(),
                (cig, 1),
                Parallelism::None,
            );
        }
    }
}

/// One block: input transform into `V`, 64 GEMMs into `M`, output transform into `y`.
///
/// # Safety
/// As [`Kernel::run`].
#[inline(always)]
unsafe fn block_body(job: &Job, g: usize, block: usize, s: &mut Scratch) {
    let Job {
        d,
        plan,
        x,
        bias,
        yp,
        ..
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

    #[cfg(target_arch = "x86_64")]
    if let Some(packed) = job.u_bf16 {
        for xi in 0..64 {
            let p = crate::bf16::Product {
                m: tiles,
                n: cog,
                k: cig,
                dst_cs: tb,
                dst_rs: 1,
                accumulate: false,
                lhs_cs: tb,
                lhs_rs: 1,
                rhs_cs: cig,
                rhs_rs: 1,
            };
            // SAFETY: as for the f32 products below; `packed` holds U_ξ of group g.
            unsafe {
                packed[g * 64 + xi].product(p, m[xi * ms..].as_mut_ptr(), v[xi * vs..].as_ptr())
            };
        }
    } else {
        gemms_f32(job, g, tiles, tb, vs, ms, v, m);
    }
    #[cfg(not(target_arch = "x86_64"))]
    gemms_f32(job, g, tiles, tb, vs, ms, v, m);

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
