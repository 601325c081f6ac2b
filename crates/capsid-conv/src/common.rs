//! Pieces shared by the convolution kernels ([`crate::fast`], [`crate::im2col`],
//! [`crate::winograd`]) and the capsule routing ([`crate::routing`]): the resolved sizes of a
//! convolution, the write-once output buffer and its shared pointer, and the f32 GEMM call. A leaf:
//! it uses no other module of this crate, only the geometry type of the crate root.

use crate::Conv3dGeometry;
use gemm::Parallelism;

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
    pub fn rows(&self) -> usize {
        self.out_dhw[0] * self.out_dhw[1]
    }
    /// True when the column matrix of a tile is the input itself: 1×1×1 kernel, stride 1, no
    /// padding, input and output of the same size.
    pub fn pointwise(&self) -> bool {
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

/// The matrix product of the convolutions: [`gemm_f32`], or with bf16 products switched on
/// ([`crate::ConvSettings::precision`]) the bf16 kernel of [`crate::bf16`]. Same arguments and
/// contract as [`gemm_f32`].
///
/// # Safety
/// As [`gemm_f32`].
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn gemm_conv(
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
    #[cfg(target_arch = "x86_64")]
    if crate::bf16_products() {
        let p = crate::bf16::Product {
            m,
            n,
            k,
            dst_cs,
            dst_rs,
            accumulate,
            lhs_cs,
            lhs_rs,
            rhs_cs,
            rhs_rs,
        };
        // SAFETY: the caller's contract is gemm_bf16's; `bf16_products` is true only where the
        // CPU has AVX512-BF16 (`Precision::in_use`).
        unsafe { crate::bf16::gemm_bf16(p, dst, lhs, rhs, !matches!(par, Parallelism::None)) };
        return;
    }
    // SAFETY: forwarded contract.
    unsafe {
        gemm_f32(
            m,
            n,
            k,
            dst,
            (dst_cs, dst_rs),
            accumulate,
            lhs,
            (lhs_cs, lhs_rs),
            rhs,
            (rhs_cs, rhs_rs),
            par,
        )
    }
}
