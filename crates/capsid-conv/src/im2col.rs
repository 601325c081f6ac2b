//! im2col / col2im over tiles of output rows.
//!
//! A tile is a range `[r0, r1)` of output rows, row `r` being `(oz, oy) = (r / out_h, r % out_h)`
//! of length `out_w`; the tile holds `t = (r1 − r0)·out_w` output positions. Its column matrix is
//! `[K × t]` row-major with `K = c_in_group · kz · ky · kx`, row index `((c·kz + z)·ky + y)·kx + x`,
//! exactly the layout of one group's weights `[c_out_group, K]`.

use crate::fast::Dims;

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

/// Fills `cols[..K·t]` with the column matrix of output rows `[r0, r1)`. `xg` is one batch item's
/// input channels of one group, `[c_in_group, in_dhw]`.
pub(crate) fn im2col(d: &Dims, xg: &[f32], r0: usize, r1: usize, cols: &mut [f32]) {
    let [_, oh, ow] = d.out_dhw;
    let [_, ih, iw] = d.in_dhw;
    let [kd, kh, kw] = d.kernel;
    let in_len = d.in_len();
    let t = (r1 - r0) * ow;
    let (sx, dx, px) = (d.stride[2], d.dilation[2], d.padding[2] as isize);
    let mut kidx = 0;
    for c in 0..d.cig() {
        let xc = &xg[c * in_len..(c + 1) * in_len];
        for kz in 0..kd {
            for ky in 0..kh {
                for kx in 0..kw {
                    let off = (kx * dx) as isize - px;
                    let (lo, hi) = valid_range(off, sx, iw, ow);
                    let row = &mut cols[kidx * t..(kidx + 1) * t];
                    kidx += 1;
                    for r in r0..r1 {
                        let dst = &mut row[(r - r0) * ow..(r - r0 + 1) * ow];
                        let (oz, oy) = (r / oh, r % oh);
                        let (Some(iz), Some(iy)) =
                            (input_row(d, 0, oz, kz), input_row(d, 1, oy, ky))
                        else {
                            dst.fill(0.0);
                            continue;
                        };
                        let src = &xc[(iz * ih + iy) * iw..(iz * ih + iy + 1) * iw];
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
    let [_, oh, ow] = d.out_dhw;
    let [_, ih, iw] = d.in_dhw;
    let [kd, kh, kw] = d.kernel;
    let in_len = d.in_len();
    let t = (r1 - r0) * ow;
    let (sx, dx, px) = (d.stride[2], d.dilation[2], d.padding[2] as isize);
    let mut kidx = 0;
    for c in 0..d.cig() {
        let xc = &mut dxg[c * in_len..(c + 1) * in_len];
        for kz in 0..kd {
            for ky in 0..kh {
                for kx in 0..kw {
                    let off = (kx * dx) as isize - px;
                    let (lo, hi) = valid_range(off, sx, iw, ow);
                    let row = &cols[kidx * t..(kidx + 1) * t];
                    kidx += 1;
                    if lo >= hi {
                        continue;
                    }
                    for r in r0..r1 {
                        let (oz, oy) = (r / oh, r % oh);
                        let (Some(iz), Some(iy)) =
                            (input_row(d, 0, oz, kz), input_row(d, 1, oy, ky))
                        else {
                            continue;
                        };
                        let src = &row[(r - r0) * ow + lo..(r - r0) * ow + hi];
                        let start = ((lo * sx) as isize + off) as usize;
                        let dst = &mut xc[(iz * ih + iy) * iw..(iz * ih + iy + 1) * iw];
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
}
