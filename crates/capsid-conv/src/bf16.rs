//! Mixed-precision matrix products for the convolutions: both factors rounded to bfloat16 (round
//! to nearest, ties to even), products and sums in f32 (AVX512-BF16's `vdpbf16ps`, which multiplies
//! pairs of bf16 values exactly and adds them to f32 accumulators). Weights, activations and
//! gradients stay f32 everywhere else; only the factors of a product are rounded, as PyTorch's
//! bf16 autocast does for its convolutions.
//!
//! The product `dst[m×n] (+)= lhs[m×k]·rhs[k×n]` takes the same element strides as
//! the crate's f32 product. It is blocked like a BLAS: panels of `rhs` (k × [`NR`] columns)
//! and of `lhs` ([`MR`] rows × k) are packed as bf16 pairs along k, and a micro-kernel keeps an
//! `MR × NR` block of `dst` in 24 AVX-512 registers. A product whose `dst` has contiguous rows
//! (column stride 1) is computed transposed, so `dst` is always written by columns.
//!
//! [`gemm_bf16_reference`] is the scalar definition every kernel is tested against; it runs on
//! any CPU.

/// Rows of `dst` per micro-kernel (three vectors of 16 f32).
pub(crate) const MR: usize = 48;
/// Vectors of 16 f32 per micro-kernel column.
const MV: usize = MR / 16;
/// Columns of `dst` per micro-kernel.
pub(crate) const NR: usize = 8;
/// Depth (k) per packed block; even.
const KC: usize = 256;
/// Rows per packed block of `lhs` (a multiple of `MR`).
const MC: usize = 5 * MR;
/// Columns per packed block of `rhs` (a multiple of `NR`).
const NC: usize = 16 * NR;

/// The bf16 bits of `x` rounded to nearest, ties to even (a NaN stays a quiet NaN).
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x0040;
    }
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// `x` rounded to the nearest bfloat16 (ties to even), as an f32.
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits((bf16_bits(x) as u32) << 16)
}

/// Whether this CPU runs the bf16 kernel (AVX-512F and AVX512-BF16).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One product's sizes and element strides: element (i, j) of a matrix lies at `i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub dst_cs: usize,
    pub dst_rs: usize,
    pub accumulate: bool,
    pub lhs_cs: usize,
    pub lhs_rs: usize,
    pub rhs_cs: usize,
    pub rhs_rs: usize,
}

impl Product {
    /// The same product transposed (`dstᵀ = rhsᵀ·lhsᵀ`), with the matrices' roles swapped.
    fn transposed(self) -> Self {
        Self {
            m: self.n,
            n: self.m,
            k: self.k,
            dst_cs: self.dst_rs,
            dst_rs: self.dst_cs,
            accumulate: self.accumulate,
            lhs_cs: self.rhs_rs,
            lhs_rs: self.rhs_cs,
            rhs_cs: self.lhs_rs,
            rhs_rs: self.lhs_cs,
        }
    }
}

/// Scalar reference: `dst (+)= round_bf16(lhs)·round_bf16(rhs)` with f32 sums in k order.
///
/// # Safety
/// Every element the sizes and strides address must lie inside a live allocation (`dst`
/// writable, initialised when `p.accumulate`); `dst` must not overlap `lhs` or `rhs`.
pub unsafe fn gemm_bf16_reference(p: Product, dst: *mut f32, lhs: *const f32, rhs: *const f32) {
    for i in 0..p.m {
        for j in 0..p.n {
            // SAFETY: the caller's contract: every (i, j) / (i, l) / (l, j) element is in bounds.
            unsafe {
                let d = dst.add(i * p.dst_rs + j * p.dst_cs);
                let mut s = if p.accumulate { *d } else { 0.0 };
                for l in 0..p.k {
                    let a = round_bf16(*lhs.add(i * p.lhs_rs + l * p.lhs_cs));
                    let b = round_bf16(*rhs.add(l * p.rhs_rs + j * p.rhs_cs));
                    s += a * b;
                }
                *d = s;
            }
        }
    }
}

/// `dst (+)= lhs·rhs` with bf16 factors and f32 sums, by the AVX512-BF16 kernel; `parallel`
/// splits the rows of `dst` over rayon's pool.
///
/// # Safety
/// As [`gemm_bf16_reference`], and the CPU has AVX-512F and AVX512-BF16 ([`available`]). No
/// other thread may touch `dst`'s elements during the call.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn gemm_bf16(
    p: Product,
    dst: *mut f32,
    lhs: *const f32,
    rhs: *const f32,
    parallel: bool,
) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    // Columns of dst are written as vectors: make them contiguous where one layout allows it.
    let (p, lhs, rhs) = if p.dst_rs != 1 && p.dst_cs == 1 {
        (p.transposed(), rhs, lhs)
    } else {
        (p, lhs, rhs)
    };
    if p.k == 0 {
        if !p.accumulate {
            for i in 0..p.m {
                for j in 0..p.n {
                    // SAFETY: (i, j) lies inside dst (the caller's contract).
                    unsafe { *dst.add(i * p.dst_rs + j * p.dst_cs) = 0.0 };
                }
            }
        }
        return;
    }
    // SAFETY: forwarded contract; `available()` was checked by the caller.
    unsafe { x86::blocked(p, dst, lhs, x86::Rhs::Matrix(rhs), parallel) }
}

/// A right factor (k × n) packed once for many products that share it (e.g. the transformed
/// weights of a Winograd convolution, used by every block of tiles).
#[cfg(target_arch = "x86_64")]
pub(crate) struct PackedRhs {
    k: usize,
    n: usize,
    words: Vec<u32>,
}

#[cfg(target_arch = "x86_64")]
impl PackedRhs {
    /// Packs the k × n matrix at `rhs` with element strides (`cs`, `rs`).
    ///
    /// # Safety
    /// Every element lies inside `rhs`; the CPU has AVX-512F and AVX512-BF16 ([`available`]).
    pub(crate) unsafe fn new(k: usize, n: usize, rhs: *const f32, cs: usize, rs: usize) -> Self {
        let p = Product {
            m: 0,
            n,
            k,
            dst_cs: 0,
            dst_rs: 1,
            accumulate: false,
            lhs_cs: 0,
            lhs_rs: 0,
            rhs_cs: cs,
            rhs_rs: rs,
        };
        // SAFETY: the caller's contract.
        let words = unsafe { x86::pack_all(&p, rhs) };
        Self { k, n, words }
    }

    /// `dst (+)= lhs · self` for an `m`-row `lhs`; `dst`'s rows must be contiguous
    /// (`p.dst_rs == 1`) and `p.k`, `p.n` those of the packed matrix (its strides are ignored).
    ///
    /// # Safety
    /// As [`gemm_bf16`] for `dst` and `lhs`.
    pub(crate) unsafe fn product(&self, p: Product, dst: *mut f32, lhs: *const f32) {
        assert!(
            p.k == self.k && p.n == self.n && p.dst_rs == 1,
            "packed rhs mismatch"
        );
        if p.m == 0 || p.n == 0 || p.k == 0 {
            // SAFETY: an empty product (k = 0 included) is the plain kernel's case.
            unsafe { gemm_bf16(p, dst, lhs, std::ptr::null(), false) };
            return;
        }
        // SAFETY: forwarded contract; a PackedRhs exists only where `available()` holds.
        unsafe { x86::blocked(p, dst, lhs, x86::Rhs::Packed(&self.words), false) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{bf16_bits, Product, KC, MC, MR, MV, NC, NR};
    use rayon::prelude::*;
    use std::arch::x86_64::*;

    thread_local! {
        /// Packed `lhs` block of this thread ([`MC`] × [`KC`] bf16 pairs).
        static PACK_A: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
        /// Packed `rhs` block of this thread ([`KC`] × [`NC`] bf16 pairs).
        static PACK_B: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// The right factor of a product: a matrix (packed per call) or packed once before
    /// ([`super::PackedRhs`]; the blocks in the order [`blocked`] visits them).
    #[derive(Clone, Copy)]
    pub(super) enum Rhs<'a> {
        Matrix(*const f32),
        Packed(&'a [u32]),
    }

    /// Packs every block of `rhs` in the order [`blocked`] visits them.
    ///
    /// # Safety
    /// Every element of the k × n matrix at the product's rhs strides lies inside `rhs`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn pack_all(p: &Product, rhs: *const f32) -> Vec<u32> {
        let mut words = Vec::new();
        for j0 in (0..p.n).step_by(NC) {
            let nc = NC.min(p.n - j0);
            for k0 in (0..p.k).step_by(KC) {
                let kc = KC.min(p.k - k0);
                let len = nc.div_ceil(NR) * kc.div_ceil(2) * NR;
                let start = words.len();
                words.resize(start + len, 0);
                // SAFETY: the block lies inside rhs (the caller's contract).
                unsafe { pack_rhs(p, rhs, k0, kc, j0, nc, &mut words[start..]) };
            }
        }
        words
    }

    /// Pointers shared by the tasks of one product (each task writes its own rows of `dst`).
    #[derive(Clone, Copy)]
    struct Ptrs {
        dst: *mut f32,
        lhs: *const f32,
    }
    // SAFETY: the tasks of one product read `lhs`/`rhs` and write disjoint row blocks of `dst`.
    unsafe impl Send for Ptrs {}
    // SAFETY: as above.
    unsafe impl Sync for Ptrs {}

    /// # Safety
    /// As [`super::gemm_bf16`], with `p.k > 0`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn blocked(
        p: Product,
        dst: *mut f32,
        lhs: *const f32,
        rhs: Rhs,
        parallel: bool,
    ) {
        let ptrs = Ptrs { dst, lhs };
        let mut pack_b = PACK_B.with(|b| std::mem::take(&mut *b.borrow_mut()));
        let row_blocks = p.m.div_ceil(MC);
        let mut offset = 0;
        for j0 in (0..p.n).step_by(NC) {
            let nc = NC.min(p.n - j0);
            for k0 in (0..p.k).step_by(KC) {
                let kc = KC.min(p.k - k0);
                let kcp = kc.div_ceil(2);
                let slivers = nc.div_ceil(NR);
                let len = slivers * kcp * NR;
                let pack_b: &[u32] = match rhs {
                    Rhs::Matrix(rhs) => {
                        grow(&mut pack_b, len);
                        let pack_b = &mut pack_b[..len];
                        // SAFETY: the block [k0, k0 + kc) × [j0, j0 + nc) lies inside rhs.
                        unsafe { pack_rhs(&p, rhs, k0, kc, j0, nc, pack_b) };
                        pack_b
                    }
                    Rhs::Packed(words) => &words[offset..offset + len],
                };
                offset += len;
                let first = k0 == 0 && !p.accumulate;
                let block = |ib: usize| {
                    // SAFETY: forwarded contract; each row block is written by one task.
                    unsafe { row_block(&p, ptrs, ib, j0, nc, k0, kc, pack_b, first) }
                };
                if parallel && row_blocks > 1 {
                    (0..row_blocks).into_par_iter().for_each(block);
                } else {
                    (0..row_blocks).for_each(block);
                }
            }
        }
        PACK_B.with(|b| *b.borrow_mut() = pack_b);
    }

    /// Row block `ib` ([`MC`] rows of dst) against the packed columns `pack_b`: packs its rows
    /// of `lhs`, then runs the micro-kernel over every (row sliver, column sliver).
    ///
    /// # Safety
    /// As [`blocked`]; no other task writes rows [ib·MC, ib·MC + MC) of dst meanwhile.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn row_block(
        p: &Product,
        ptrs: Ptrs,
        ib: usize,
        j0: usize,
        nc: usize,
        k0: usize,
        kc: usize,
        pack_b: &[u32],
        first: bool,
    ) {
        let Ptrs { dst, lhs, .. } = ptrs;
        let kcp = kc.div_ceil(2);
        let i0 = ib * MC;
        let mc = MC.min(p.m - i0);
        let mut pack_a = PACK_A.with(|a| std::mem::take(&mut *a.borrow_mut()));
        let len = mc.div_ceil(MR) * kcp * MR;
        grow(&mut pack_a, len);
        // SAFETY: the block [i0, i0 + mc) × [k0, k0 + kc) lies inside lhs; this task alone
        // writes rows [i0, i0 + mc) of dst.
        unsafe {
            pack_lhs(p, lhs, i0, mc, k0, kc, &mut pack_a[..len]);
            for (s, a) in pack_a[..len].chunks_exact(kcp * MR).enumerate() {
                let rows = MR.min(mc - s * MR);
                for (t, b) in pack_b.chunks_exact(kcp * NR).enumerate() {
                    let cols = NR.min(nc - t * NR);
                    let d = dst.add((i0 + s * MR) * p.dst_rs + (j0 + t * NR) * p.dst_cs);
                    micro(kcp, a.as_ptr(), b.as_ptr(), d, p, rows, cols, first);
                }
            }
        }
        PACK_A.with(|a| *a.borrow_mut() = pack_a);
    }

    /// Makes `buf` at least `len` long (new words zero; old ones are overwritten by the packing).
    fn grow(buf: &mut Vec<u32>, len: usize) {
        if buf.len() < len {
            buf.resize(len, 0);
        }
    }

    /// Rounds 16 f32 lanes to bf16 (nearest, ties to even) and keeps the bits in the high half
    /// of each 32-bit lane (NaN handling aside: a NaN may round to an infinity's neighbour; the
    /// training loop stops on non-finite losses anyway).
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    fn round_lanes(v: __m512i) -> __m512i {
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(v), _mm512_set1_epi32(1));
        let r = _mm512_add_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(0x7FFF)), lsb);
        _mm512_and_si512(r, _mm512_set1_epi32(0xFFFF_0000u32 as i32))
    }

    /// Packs rows [i0, i0 + mc) × depth [k0, k0 + kc) of `lhs` as slivers of [`MR`] rows: for
    /// each pair of depths, MR 32-bit words (bf16 of depth 2q in the low half, 2q + 1 in the high
    /// half); rows and depths past the matrix are zero.
    ///
    /// # Safety
    /// The block lies inside `lhs`; `out` holds ⌈mc / MR⌉ · ⌈kc / 2⌉ · MR words (all written).
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn pack_lhs(
        p: &Product,
        lhs: *const f32,
        i0: usize,
        mc: usize,
        k0: usize,
        kc: usize,
        out: &mut [u32],
    ) {
        let kcp = kc.div_ceil(2);
        for s in 0..mc.div_ceil(MR) {
            let r0 = i0 + s * MR;
            let rows = MR.min(i0 + mc - r0);
            let sliver = &mut out[s * kcp * MR..(s + 1) * kcp * MR];
            if p.lhs_rs == 1 && rows == MR {
                // Rows contiguous: MV vectors of 16 rows per depth, rounded in f32 lanes.
                for q in 0..kcp {
                    let ka = k0 + 2 * q;
                    for h in 0..MV {
                        // SAFETY: rows r0 + 16h .. + 16 of depth ka (and ka + 1) are in lhs.
                        unsafe {
                            let a = lhs.add((r0 + 16 * h) + ka * p.lhs_cs);
                            let lo = round_lanes(_mm512_loadu_si512(a.cast()));
                            let hi = if 2 * q + 1 < kc {
                                round_lanes(_mm512_loadu_si512(a.add(p.lhs_cs).cast()))
                            } else {
                                _mm512_setzero_si512()
                            };
                            let pair = _mm512_or_si512(hi, _mm512_srli_epi32::<16>(lo));
                            _mm512_storeu_si512(
                                sliver.as_mut_ptr().add(q * MR + 16 * h).cast(),
                                pair,
                            );
                        }
                    }
                }
            } else {
                for q in 0..kcp {
                    sliver[q * MR + rows..(q + 1) * MR].fill(0);
                }
                for r in 0..rows {
                    for q in 0..kcp {
                        let ka = k0 + 2 * q;
                        // SAFETY: element (r0 + r, ka) and, when 2q + 1 < kc, (r0 + r, ka + 1).
                        let (lo, hi) = unsafe {
                            let a = lhs.add((r0 + r) * p.lhs_rs + ka * p.lhs_cs);
                            let hi = if 2 * q + 1 < kc {
                                bf16_bits(*a.add(p.lhs_cs))
                            } else {
                                0
                            };
                            (bf16_bits(*a), hi)
                        };
                        sliver[q * MR + r] = (lo as u32) | ((hi as u32) << 16);
                    }
                }
            }
        }
    }

    /// Packs depths [k0, k0 + kc) × columns [j0, j0 + nc) of `rhs` as slivers of [`NR`]
    /// columns: for each pair of depths, NR words (bf16 pairs as in [`pack_lhs`]).
    ///
    /// # Safety
    /// The block lies inside `rhs`; `out` holds ⌈nc / NR⌉ · ⌈kc / 2⌉ · NR words (all written).
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn pack_rhs(
        p: &Product,
        rhs: *const f32,
        k0: usize,
        kc: usize,
        j0: usize,
        nc: usize,
        out: &mut [u32],
    ) {
        let kcp = kc.div_ceil(2);
        for t in 0..nc.div_ceil(NR) {
            let c0 = j0 + t * NR;
            let cols = NR.min(j0 + nc - c0);
            let sliver = &mut out[t * kcp * NR..(t + 1) * kcp * NR];
            for q in 0..kcp {
                sliver[q * NR + cols..(q + 1) * NR].fill(0);
            }
            for c in 0..cols {
                let col = c0 + c;
                let mut q = 0;
                if p.rhs_rs == 1 {
                    // Depths contiguous: 16 pairs at a time, rounded in f32 lanes.
                    let idx = _mm512_setr_epi32(
                        0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                    );
                    while 2 * q + 32 <= kc {
                        // SAFETY: depths k0 + 2q .. + 32 of column col are in rhs.
                        unsafe {
                            let b = rhs.add(k0 + 2 * q + col * p.rhs_cs);
                            let v0 = round_lanes(_mm512_loadu_si512(b.cast()));
                            let v1 = round_lanes(_mm512_loadu_si512(b.add(16).cast()));
                            // Lane 2i holds depth 2q + 2i (low half of the pair), lane 2i + 1
                            // its partner (high half).
                            let lo_even = _mm512_permutex2var_epi32(v0, idx, v1);
                            let hi_odd = _mm512_permutex2var_epi32(
                                v0,
                                _mm512_add_epi32(idx, _mm512_set1_epi32(1)),
                                v1,
                            );
                            let pair = _mm512_or_si512(hi_odd, _mm512_srli_epi32::<16>(lo_even));
                            let mut words = [0u32; 16];
                            _mm512_storeu_si512(words.as_mut_ptr().cast(), pair);
                            for (i, w) in words.iter().enumerate() {
                                sliver[(q + i) * NR + c] = *w;
                            }
                        }
                        q += 16;
                    }
                }
                while q < kcp {
                    let ka = k0 + 2 * q;
                    // SAFETY: element (ka, col) and, when 2q + 1 < kc, (ka + 1, col).
                    let (lo, hi) = unsafe {
                        let b = rhs.add(ka * p.rhs_rs + col * p.rhs_cs);
                        let hi = if 2 * q + 1 < kc {
                            bf16_bits(*b.add(p.rhs_rs))
                        } else {
                            0
                        };
                        (bf16_bits(*b), hi)
                    };
                    sliver[q * NR + c] = (lo as u32) | ((hi as u32) << 16);
                    q += 1;
                }
            }
        }
    }

    /// One `MR × NR` block: `kcp` pairs of depths from the packed slivers `a` and `b`, then
    /// `rows × cols` of the block stored into (`first`) or added to `d`.
    ///
    /// # Safety
    /// `a` holds kcp · MR words, `b` kcp · NR; rows × cols elements of `d` at the product's dst
    /// strides are writable and this task's alone.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn micro(
        kcp: usize,
        a: *const u32,
        b: *const u32,
        d: *mut f32,
        p: &Product,
        rows: usize,
        cols: usize,
        first: bool,
    ) {
        let mut acc = [_mm512_setzero_ps(); MV * NR];
        for q in 0..kcp {
            // SAFETY: q < kcp: words q·MR .. + MR of a and q·NR .. + NR of b.
            unsafe {
                let av: [__m512bh; MV] = std::array::from_fn(|h| {
                    std::mem::transmute(_mm512_loadu_si512(a.add(q * MR + 16 * h).cast()))
                });
                for j in 0..NR {
                    let bj: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*b.add(q * NR + j) as i32));
                    for h in 0..MV {
                        acc[MV * j + h] = _mm512_dpbf16_ps(acc[MV * j + h], av[h], bj);
                    }
                }
            }
        }
        if p.dst_rs == 1 {
            for (j, pair) in acc.chunks_exact(MV).take(cols).enumerate() {
                for (h, v) in pair.iter().enumerate() {
                    let valid = rows.saturating_sub(16 * h).min(16);
                    if valid == 0 {
                        continue;
                    }
                    let mask: __mmask16 = if valid == 16 {
                        0xFFFF
                    } else {
                        (1u16 << valid) - 1
                    };
                    // SAFETY: `valid` rows of column j from row 16h are inside dst.
                    unsafe {
                        let ptr = d.add(j * p.dst_cs + 16 * h);
                        let out = if first {
                            *v
                        } else {
                            _mm512_add_ps(_mm512_maskz_loadu_ps(mask, ptr), *v)
                        };
                        _mm512_mask_storeu_ps(ptr, mask, out);
                    }
                }
            }
        } else {
            let mut tmp = [0.0f32; MR * NR];
            for (i, v) in acc.iter().enumerate() {
                // SAFETY: tmp holds MV·NR vectors of 16.
                unsafe { _mm512_storeu_ps(tmp.as_mut_ptr().add(16 * i), *v) };
            }
            for j in 0..cols {
                for r in 0..rows {
                    // SAFETY: (r, j) of this block is inside dst.
                    unsafe {
                        let ptr = d.add(r * p.dst_rs + j * p.dst_cs);
                        let v = tmp[j * MR + r];
                        *ptr = if first { v } else { *ptr + v };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2⁻⁸ lies halfway between bf16 1 and 1 + 2⁻⁷: ties go to the even (1).
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even).
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_bf16(1.0 + 1.1 / 256.0), 1.0 + 1.0 / 128.0);
        assert_eq!(round_bf16(-2.5), -2.5);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
        // Every bf16 value is its own rounding.
        for bits in [0x3F80u16, 0x0001, 0x7F7F, 0xC2F6] {
            let x = f32::from_bits((bits as u32) << 16);
            assert_eq!(bf16_bits(x), bits);
        }
    }

    /// A product with random data in the layout given by `dst_rows_contiguous` etc.; returns
    /// (kernel result, reference result, max |reference|).
    #[cfg(target_arch = "x86_64")]
    fn run_case(
        rng: &mut ChaCha8Rng,
        (m, n, k): (usize, usize, usize),
        layout: [bool; 3],
        accumulate: bool,
        parallel: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        // layout[i]: the matrix is stored column-major (rows contiguous) when true.
        let strides = |rows: usize, cols: usize, col_major: bool| {
            if col_major {
                (rows + 3, 1) // (cs, rs), with padding between columns
            } else {
                (1, cols + 5)
            }
        };
        let (dst_cs, dst_rs) = strides(m, n, layout[0]);
        let (lhs_cs, lhs_rs) = strides(m, k, layout[1]);
        let (rhs_cs, rhs_rs) = strides(k, n, layout[2]);
        let len = |r: usize, c: usize, cs: usize, rs: usize| {
            if r == 0 || c == 0 {
                1
            } else {
                (r - 1) * rs + (c - 1) * cs + 1
            }
        };
        let lhs: Vec<f32> = (0..len(m, k, lhs_cs, lhs_rs))
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        let rhs: Vec<f32> = (0..len(k, n, rhs_cs, rhs_rs))
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        let dst0: Vec<f32> = (0..len(m, n, dst_cs, dst_rs))
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        let p = Product {
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
        let (mut got, mut want) = (dst0.clone(), dst0);
        // SAFETY: the buffers are sized for the strides above.
        unsafe {
            gemm_bf16(p, got.as_mut_ptr(), lhs.as_ptr(), rhs.as_ptr(), parallel);
            gemm_bf16_reference(p, want.as_mut_ptr(), lhs.as_ptr(), rhs.as_ptr());
        }
        (got, want)
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn kernel_matches_the_scalar_bf16_reference() {
        if !available() {
            eprintln!("no AVX512-BF16 on this CPU: the bf16 kernel is not tested here");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(41);
        let sizes = [
            (1, 1, 1),
            (32, 12, 2),
            (33, 13, 3),
            (70, 25, 31),
            (31, 11, 64),
            (300, 40, 517),
            (65, 200, 33),
            (5, 7, 0),
        ];
        let mut cases = 0;
        for &size in &sizes {
            for layout in 0..8u8 {
                let layout = [layout & 1 != 0, layout & 2 != 0, layout & 4 != 0];
                for (accumulate, parallel) in [(false, false), (true, false), (false, true)] {
                    let (got, want) = run_case(&mut rng, size, layout, accumulate, parallel);
                    // Both sum exact products of the same bf16 values in f32; only the order
                    // of the sums differs.
                    let tol = 1e-5 * (1.0 + size.2 as f32) * 8.0;
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= tol,
                            "{size:?} {layout:?} acc {accumulate}: element {i}: {g} vs {w}"
                        );
                    }
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, sizes.len() * 8 * 3);
    }

    #[test]
    fn reference_rounds_the_factors_not_the_sums() {
        // 1 + 2⁻⁹ rounds to 1 in bf16; summed 4 times in f32 the products keep full precision.
        let lhs = [1.0f32 + 1.0 / 512.0, 3.0, 0.5, 1.0];
        let rhs = [1.0f32, 1.0, 1.0 + 1.0 / 64.0, 1.0];
        let mut dst = [10.0f32];
        let p = Product {
            m: 1,
            n: 1,
            k: 4,
            dst_cs: 1,
            dst_rs: 1,
            accumulate: true,
            lhs_cs: 1,
            lhs_rs: 4,
            rhs_cs: 1,
            rhs_rs: 1,
        };
        // SAFETY: 1 × 4 by 4 × 1 into 1 × 1, buffers of those sizes.
        unsafe { gemm_bf16_reference(p, dst.as_mut_ptr(), lhs.as_ptr(), rhs.as_ptr()) };
        assert_eq!(dst[0], 10.0 + 1.0 + 3.0 + 0.5 * (1.0 + 1.0 / 64.0) + 1.0);
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// Manual: `cargo test --release -p capsid-conv --lib bf16::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    #[cfg(target_arch = "x86_64")]
    fn bf16_vs_f32_products() {
        for (m, n, k) in [
            (96, 32, 32),
            (512, 64, 64),
            (864, 32, 4096),
            (4096, 64, 576),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
            let mut c = vec![0.0f32; m * n];
            let reps = (2e9 / (m * n * k) as f64).max(3.0) as usize;
            let p = Product {
                m,
                n,
                k,
                dst_cs: m,
                dst_rs: 1,
                accumulate: false,
                lhs_cs: m,
                lhs_rs: 1,
                rhs_cs: k,
                rhs_rs: 1,
            };
            let t = Instant::now();
            for _ in 0..reps {
                // SAFETY: column-major m × k, k × n and m × n buffers of those sizes.
                unsafe { gemm_bf16(p, c.as_mut_ptr(), a.as_ptr(), b.as_ptr(), false) };
            }
            let tb = t.elapsed().as_secs_f64() / reps as f64;
            let t = Instant::now();
            for _ in 0..reps {
                // SAFETY: as above.
                unsafe {
                    crate::common::gemm_f32(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        (m, 1),
                        false,
                        a.as_ptr(),
                        (m, 1),
                        b.as_ptr(),
                        (k, 1),
                        gemm::Parallelism::None,
                    )
                };
            }
            let tf = t.elapsed().as_secs_f64() / reps as f64;
            let gf = |t: f64| 2.0 * (m * n * k) as f64 / t / 1e9;
            eprintln!(
                "{m}x{n}x{k}: bf16 {:.1} GFLOP/s, f32 {:.1} GFLOP/s",
                gf(tb),
                gf(tf)
            );
        }
    }
}
