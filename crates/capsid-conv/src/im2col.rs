//! im2col / col2im over tiles of output rows.
//!
//! A tile is a range `[r0, r1)` of output rows, row `r` being `(oz, oy) = (r / out_h, r % out_h)`
//! of length `out_w`; the tile holds `t = (r1 − r0)·out_w` output positions. Its column matrix is
//! `[K × t]` row-major with `K = c_in_group · kz · ky · kx`, row index `((c·kz + z)·ky + y)·kx + x`,
//! exactly the layout of one group's weights `[c_out_group, K]`.

use crate::common::Dims;

/// Output positions `[lo, hi)` along one axis whose input position `o·stride + offset` lies in
/// `[0, size)`; `offset = k·dilation − padding`. Clamped to `[0, out)`; `lo == hi` when empty.
#[inline]
pub(crate) fn valid_range(offset: isize, stride: usize, size: usize, out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + s - 1) / s
    };
    let last = size as isize - 1 - offset;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let hi = (hi as usize).min(out);
    let lo = (lo as usize).min(hi);
    (lo, hi)
}

/// Input row `o·stride + k·dilation − padding` along axis `a`, or `None` on the padding.
#[inline]
fn input_row(d: &Dims, a: usize, o: usize, k: usize) -> Option<usize> {
    let i = (o * d.stride[a] + k * d.dilation[a]) as isize - d.padding[a] as isize;
    (i >= 0 && (i as usize) < d.in_dhw[a]).then_some(i as usize)
}

/// Offset in one channel of the input of the x row that output row `r` reads through taps `kz`,
/// `ky`, or `None` when that row lies in the padding.
#[inline]
fn input_row_start(d: &Dims, r: usize, kz: usize, ky: usize) -> Option<usize> {
    let oh = d.out_dhw[1];
    let iz = input_row(d, 0, r / oh, kz)?;
    let iy = input_row(d, 1, r % oh, ky)?;
    Some((iz * d.in_dhw[1] + iy) * d.in_dhw[2])
}

/// Fills `cols[..K·t]` with the column matrix of output rows `[r0, r1)`. `xg` is one batch item's
/// input channels of one group, `[c_in_group, in_dhw]`.
pub(crate) fn im2col(d: &Dims, xg: &[f32], r0: usize, r1: usize, cols: &mut [f32]) {
    let ow = d.out_dhw[2];
    let iw = d.in_dhw[2];
    let [kd, kh, kw] = d.kernel;
    let in_len = d.in_len();
    let t = (r1 - r0) * ow;
    let three_taps = stride2_taps3(d);
    let (sx, dx, px) = (d.stride[2], d.dilation[2], d.padding[2] as isize);
    let mut kidx = 0;
    for c in 0..d.cig() {
        let xc = &xg[c * in_len..(c + 1) * in_len];
        for kz in 0..kd {
            for ky in 0..kh {
                if three_taps {
                    // The three x taps at once: one de-interleaving pass per input row.
                    let rows = &mut cols[kidx * t..(kidx + 3) * t];
                    kidx += 3;
                    let (c0, rest) = rows.split_at_mut(t);
                    let (c1, c2) = rest.split_at_mut(t);
                    for r in r0..r1 {
                        let span = (r - r0) * ow..(r - r0 + 1) * ow;
                        let d0 = &mut c0[span.clone()];
                        let d1 = &mut c1[span.clone()];
                        let d2 = &mut c2[span];
                        match input_row_start(d, r, kz, ky) {
                            Some(at) => gather_stride2_taps3(&xc[at..at + iw], d0, d1, d2),
                            None => {
                                d0.fill(0.0);
                                d1.fill(0.0);
                                d2.fill(0.0);
                            }
                        }
                    }
                    continue;
                }
                for kx in 0..kw {
                    let off = (kx * dx) as isize - px;
                    let (lo, hi) = valid_range(off, sx, iw, ow);
                    let row = &mut cols[kidx * t..(kidx + 1) * t];
                    kidx += 1;
                    for r in r0..r1 {
                        let dst = &mut row[(r - r0) * ow..(r - r0 + 1) * ow];
                        let Some(at) = input_row_start(d, r, kz, ky) else {
                            dst.fill(0.0);
                            continue;
                        };
                        let src = &xc[at..at + iw];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if lo < hi {
                            let start = (lo * sx) as isize + off;
                            let start = start as usize;
                            if sx == 1 {
                                dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                            } else {
                                for (j, v) in dst[lo..hi].iter_mut().enumerate() {
                                    *v = src[start + j * sx];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix `cols[..K·t]` of output rows `[r0, r1)` back into `dxg` (one batch
/// item's input gradient channels of one group, `[c_in_group, in_dhw]`): the adjoint of [`im2col`].
pub(crate) fn col2im(d: &Dims, cols: &[f32], r0: usize, r1: usize, dxg: &mut [f32]) {
    let ow = d.out_dhw[2];
    let iw = d.in_dhw[2];
    let [kd, kh, kw] = d.kernel;
    let in_len = d.in_len();
    let t = (r1 - r0) * ow;
    let three_taps = stride2_taps3(d);
    let (sx, dx, px) = (d.stride[2], d.dilation[2], d.padding[2] as isize);
    let mut kidx = 0;
    for c in 0..d.cig() {
        let xc = &mut dxg[c * in_len..(c + 1) * in_len];
        for kz in 0..kd {
            for ky in 0..kh {
                if three_taps {
                    // The three x taps at once: one interleaving pass per input row.
                    let rows = &cols[kidx * t..(kidx + 3) * t];
                    kidx += 3;
                    for r in r0..r1 {
                        let Some(at) = input_row_start(d, r, kz, ky) else {
                            continue;
                        };
                        let tap = |x: usize| &rows[x * t + (r - r0) * ow..][..ow];
                        let dst = &mut xc[at..at + iw];
                        scatter_add_stride2_taps3(tap(0), tap(1), tap(2), dst);
                    }
                    continue;
                }
                for kx in 0..kw {
                    let off = (kx * dx) as isize - px;
                    let (lo, hi) = valid_range(off, sx, iw, ow);
                    let row = &cols[kidx * t..(kidx + 1) * t];
                    kidx += 1;
                    if lo >= hi {
                        continue;
                    }
                    for r in r0..r1 {
                        let Some(at) = input_row_start(d, r, kz, ky) else {
                            continue;
                        };
                        let src = &row[(r - r0) * ow + lo..(r - r0) * ow + hi];
                        let start = ((lo * sx) as isize + off) as usize;
                        let dst = &mut xc[at..at + iw];
                        if sx == 1 {
                            for (o, v) in dst[start..start + hi - lo].iter_mut().zip(src) {
                                *o += v;
                            }
                        } else {
                            for (j, v) in src.iter().enumerate() {
                                dst[start + j * sx] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// True when the x axis has 3 taps, stride 2, dilation 1 and padding 1 (the UNet's up-step and
/// the stride-2 3×3×3 capsule convolutions), so tap `kx` of output column `j` is input column
/// `2j + kx − 1`: [`im2col`] and [`col2im`] then handle the three taps in one pass per row.
#[inline]
fn stride2_taps3(d: &Dims) -> bool {
    d.kernel[2] == 3 && d.stride[2] == 2 && d.dilation[2] == 1 && d.padding[2] == 1
}

/// Column rows of the three x taps of one output row: `d_kx[j] = src[2j + kx − 1]`, zero where
/// that index is outside `src`. `d0`, `d1`, `d2` have the output width.
fn gather_stride2_taps3(src: &[f32], d0: &mut [f32], d1: &mut [f32], d2: &mut [f32]) {
    let ow = d1.len();
    // Whole pairs (src[2j], src[2j + 1]) for j < pairs: a de-interleave the compiler vectorises.
    let pairs = (src.len() / 2).min(ow);
    for ((p, e), o) in src
        .chunks_exact(2)
        .zip(&mut d1[..pairs])
        .zip(&mut d2[..pairs])
    {
        *e = p[0];
        *o = p[1];
    }
    for j in pairs..ow {
        d1[j] = src.get(2 * j).copied().unwrap_or(0.0);
        d2[j] = src.get(2 * j + 1).copied().unwrap_or(0.0);
    }
    // Tap 0 reads column 2j − 1: tap 2's value for j − 1.
    if ow > 0 {
        d0[0] = 0.0;
        d0[1..].copy_from_slice(&d2[..ow - 1]);
    }
}

/// The adjoint of [`gather_stride2_taps3`]: `dst[2j + kx − 1] += r_kx[j]` for the indices inside
/// `dst`.
fn scatter_add_stride2_taps3(r0: &[f32], r1: &[f32], r2: &[f32], dst: &mut [f32]) {
    let ow = r1.len();
    // dst[2j] += r1[j] and dst[2j + 1] += r2[j] + r0[j + 1] for whole pairs with j + 1 < ow.
    let pairs = (dst.len() / 2).min(ow.saturating_sub(1));
    if pairs > 0 {
        for (((p, a), b), c) in dst
            .chunks_exact_mut(2)
            .zip(&r1[..pairs])
            .zip(&r2[..pairs])
            .zip(&r0[1..=pairs])
        {
            p[0] += a;
            p[1] += b + c;
        }
    }
    // The rest; r0[1..=pairs] are done.
    for j in pairs..ow {
        if let Some(v) = dst.get_mut(2 * j) {
            *v += r1[j];
        }
        if let Some(v) = dst.get_mut(2 * j + 1) {
            *v += r2[j];
        }
        if j > pairs {
            if let Some(v) = dst.get_mut(2 * j - 1) {
                *v += r0[j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_clips_padding() {
        // Size 5, stride 1, offset −1 (k=0, pad 1): o = 0 reads −1 → invalid; o in 1..5 valid.
        assert_eq!(valid_range(-1, 1, 5, 5), (1, 5));
        // Offset +1: o + 1 < 5 → o < 4.
        assert_eq!(valid_range(1, 1, 5, 5), (0, 4));
        // Stride 2, offset −2, size 7, out 4: 2o − 2 in [0, 7) → o in 1..=4 → [1, 4).
        assert_eq!(valid_range(-2, 2, 7, 4), (1, 4));
        // Entirely outside.
        assert_eq!(valid_range(9, 1, 5, 5), (0, 0));
    }

    #[test]
    fn col2im_is_adjoint_of_im2col() {
        // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ on integer data (exact in f32).
        let d = Dims {
            batch: 1,
            c_in: 2,
            c_out: 1,
            groups: 1,
            in_dhw: [3, 4, 5],
            out_dhw: [2, 4, 3],
            kernel: [2, 3, 2],
            stride: [1, 1, 2],
            padding: [0, 1, 1],
            dilation: [1, 1, 2],
        };
        let k = d.k_cols();
        let (r0, r1) = (1, 6);
        let t = (r1 - r0) * 3;
        let x: Vec<f32> = (0..2 * 60).map(|i| (i % 11) as f32 - 5.0).collect();
        let c: Vec<f32> = (0..k * t).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut cols = vec![f32::NAN; k * t];
        im2col(&d, &x, r0, r1, &mut cols);
        let mut back = vec![0.0; x.len()];
        col2im(&d, &c, r0, r1, &mut back);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
        assert!(
            cols.iter().all(|v| v.is_finite()),
            "every column entry written"
        );
        assert_eq!(dot(&cols, &c), dot(&x, &back));
    }

    /// The three-tap stride-2 rows (padding 1) against the definition, for even and odd input
    /// widths, output widths that do and do not reach the input's end, and rows in the padding;
    /// col2im as its adjoint.
    #[test]
    fn stride2_three_taps_match_the_definition() {
        for (iw, ow) in [
            (8, 4),
            (9, 5),
            (9, 4),
            (7, 3),
            (2, 1),
            (1, 1),
            (6, 2),
            (3, 2),
        ] {
            let d = Dims {
                batch: 1,
                c_in: 2,
                c_out: 1,
                groups: 1,
                in_dhw: [3, 4, iw],
                out_dhw: [2, 3, ow],
                kernel: [3, 3, 3],
                stride: [2, 2, 2],
                padding: [1, 1, 1],
                dilation: [1, 1, 1],
            };
            assert!(stride2_taps3(&d));
            let k = d.k_cols();
            let (r0, r1) = (1, 6);
            let t = (r1 - r0) * ow;
            let x: Vec<f32> = (0..2 * 12 * iw).map(|i| (i % 11) as f32 - 5.0).collect();
            let mut cols = vec![f32::NAN; k * t];
            im2col(&d, &x, r0, r1, &mut cols);
            for c in 0..2 {
                for tap in 0..27 {
                    let (kz, ky, kx) = (tap / 9, (tap / 3) % 3, tap % 3);
                    for r in r0..r1 {
                        for j in 0..ow {
                            let (oz, oy) = (r / 3, r % 3);
                            let (iz, iy) = (2 * oz + kz, 2 * oy + ky);
                            let ix = 2 * j + kx;
                            let inside = (1..=3).contains(&iz)
                                && (1..=4).contains(&iy)
                                && (1..=iw).contains(&ix);
                            let want = if inside {
                                x[((c * 3 + iz - 1) * 4 + iy - 1) * iw + ix - 1]
                            } else {
                                0.0
                            };
                            let got = cols[(c * 27 + tap) * t + (r - r0) * ow + j];
                            assert_eq!(got, want, "iw {iw} ow {ow} c {c} tap {tap} r {r} j {j}");
                        }
                    }
                }
            }
            let g: Vec<f32> = (0..k * t).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut back = vec![0.0; x.len()];
            col2im(&d, &g, r0, r1, &mut back);
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
            assert_eq!(dot(&cols, &g), dot(&x, &back), "adjoint, iw {iw} ow {ow}");
        }
    }
}
