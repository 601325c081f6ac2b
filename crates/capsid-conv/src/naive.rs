//! Plain-loop reference versions of every kernel in this crate.
//!
//! They follow the definitions directly (one multiply-add per tap, no im2col, no GEMM) and are
//! written independently of the fast path — the transposed convolution here is the scatter form of
//! its definition, not a call to the convolution's data-backward — so tests comparing the two can
//! fail. Slow: for tests and small checks only. Layouts and panics are those of the crate root's
//! functions.

use crate::{check_len, Conv3dGeometry, ConvTranspose3dGeometry};

/// Calls `tap(y_index, x_index, w_index)` for every (output voxel, kernel tap) pair of
/// the convolution `g` whose input voxel lies inside the input (taps on the zero padding are
/// skipped). Indices are flat into NCDHW `y` ([batch, c_out, out_dhw]), `x` ([batch, c_in, in_dhw])
/// and `w` ([c_out, c_in / groups, kz, ky, kx]).
fn for_each_conv_tap(g: &Conv3dGeometry, mut tap: impl FnMut(usize, usize, usize)) {
    let [id, ih, iw] = g.in_dhw;
    let [od, oh, ow] = g.out_dhw();
    let [kd, kh, kw] = g.kernel;
    let cig = g.c_in / g.groups;
    let cog = g.c_out / g.groups;
    let in_len = id * ih * iw;
    let out_len = od * oh * ow;
    for n in 0..g.batch {
        for co in 0..g.c_out {
            let grp = co / cog;
            for oz in 0..od {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let yi = (n * g.c_out + co) * out_len + (oz * oh + oy) * ow + ox;
                        for c in 0..cig {
                            let ci = grp * cig + c;
                            for kz in 0..kd {
                                let Some(iz) = tap_index(oz, kz, 0, g, id) else {
                                    continue;
                                };
                                for ky in 0..kh {
                                    let Some(iy) = tap_index(oy, ky, 1, g, ih) else {
                                        continue;
                                    };
                                    for kx in 0..kw {
                                        let Some(ix) = tap_index(ox, kx, 2, g, iw) else {
                                            continue;
                                        };
                                        let xi =
                                            (n * g.c_in + ci) * in_len + (iz * ih + iy) * iw + ix;
                                        let wi = (((co * cig + c) * kd + kz) * kh + ky) * kw + kx;
                                        tap(yi, xi, wi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Input index `o·stride + k·dilation − padding` along `axis` (0 = z, 1 = y, 2 = x), or `None` when
/// it falls on the padding.
fn tap_index(o: usize, k: usize, axis: usize, g: &Conv3dGeometry, size: usize) -> Option<usize> {
    let i = (o * g.stride[axis] + k * g.dilation[axis]) as isize - g.padding[axis] as isize;
    (i >= 0 && (i as usize) < size).then_some(i as usize)
}

/// Reference [`crate::conv3d_forward`].
pub fn conv3d_forward(g: &Conv3dGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("w", w.len(), g.weight_len());
    if let Some(b) = bias {
        check_len("bias", b.len(), g.c_out);
    }
    let mut y = vec![0.0f32; g.output_len()];
    for_each_conv_tap(g, |yi, xi, wi| y[yi] += x[xi] * w[wi]);
    if let Some(b) = bias {
        let out_len = g.out_dhw().iter().product::<usize>();
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[(i / out_len) % g.c_out];
        }
    }
    y
}

/// Reference [`crate::conv3d_backward_data`].
pub fn conv3d_backward_data(g: &Conv3dGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    check_len("w", w.len(), g.weight_len());
    let mut dx = vec![0.0f32; g.input_len()];
    for_each_conv_tap(g, |yi, xi, wi| dx[xi] += dy[yi] * w[wi]);
    dx
}

/// Reference [`crate::conv3d_backward_weight`].
pub fn conv3d_backward_weight(g: &Conv3dGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("dy", dy.len(), g.output_len());
    let mut dw = vec![0.0f32; g.weight_len()];
    for_each_conv_tap(g, |yi, xi, wi| dw[wi] += dy[yi] * x[xi]);
    dw
}

/// Reference [`crate::conv3d_backward_bias`].
pub fn conv3d_backward_bias(g: &Conv3dGeometry, dy: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    sum_per_channel(dy, g.batch, g.c_out)
}

/// Per-channel sums of an NCDHW tensor with `batch` × `channels` contiguous blocks.
fn sum_per_channel(t: &[f32], batch: usize, channels: usize) -> Vec<f32> {
    let len = t.len() / (batch * channels).max(1);
    let mut out = vec![0.0f32; channels];
    for n in 0..batch {
        for (c, o) in out.iter_mut().enumerate() {
            let start = (n * channels + c) * len;
            *o += t[start..start + len].iter().sum::<f32>();
        }
    }
    out
}

/// Calls `tap(x_index, y_index, w_index)` for every (input voxel, kernel tap) pair of the
/// transposed convolution `g` whose output voxel `i·stride + k·dilation − padding` lies inside the
/// output. Flat indices into `x` ([batch, c_in, in_dhw]), `y` ([batch, c_out, out_dhw]) and `w`
/// ([c_in, c_out / groups, kz, ky, kx]).
fn for_each_transposed_tap(g: &ConvTranspose3dGeometry, mut tap: impl FnMut(usize, usize, usize)) {
    let [id, ih, iw] = g.in_dhw;
    let out = g.out_dhw();
    let [od, oh, ow] = out;
    let [kd, kh, kw] = g.kernel;
    let cig = g.c_in / g.groups;
    let cog = g.c_out / g.groups;
    let in_len = id * ih * iw;
    let out_len = od * oh * ow;
    let pos = |i: usize, k: usize, axis: usize| -> Option<usize> {
        let o = (i * g.stride[axis] + k * g.dilation[axis]) as isize - g.padding[axis] as isize;
        (o >= 0 && (o as usize) < out[axis]).then_some(o as usize)
    };
    for n in 0..g.batch {
        for ci in 0..g.c_in {
            let grp = ci / cig;
            for iz in 0..id {
                for iy in 0..ih {
                    for ix in 0..iw {
                        let xi = (n * g.c_in + ci) * in_len + (iz * ih + iy) * iw + ix;
                        for c in 0..cog {
                            let co = grp * cog + c;
                            for kz in 0..kd {
                                let Some(oz) = pos(iz, kz, 0) else { continue };
                                for ky in 0..kh {
                                    let Some(oy) = pos(iy, ky, 1) else { continue };
                                    for kx in 0..kw {
                                        let Some(ox) = pos(ix, kx, 2) else { continue };
                                        let yi =
                                            (n * g.c_out + co) * out_len + (oz * oh + oy) * ow + ox;
                                        let wi = (((ci * cog + c) * kd + kz) * kh + ky) * kw + kx;
                                        tap(xi, yi, wi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reference [`crate::conv_transpose3d_forward`].
pub fn conv_transpose3d_forward(
    g: &ConvTranspose3dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("w", w.len(), g.weight_len());
    if let Some(b) = bias {
        check_len("bias", b.len(), g.c_out);
    }
    let mut y = vec![0.0f32; g.output_len()];
    for_each_transposed_tap(g, |xi, yi, wi| y[yi] += x[xi] * w[wi]);
    if let Some(b) = bias {
        let out_len = g.out_dhw().iter().product::<usize>();
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[(i / out_len) % g.c_out];
        }
    }
    y
}

/// Reference [`crate::conv_transpose3d_backward_data`].
pub fn conv_transpose3d_backward_data(
    g: &ConvTranspose3dGeometry,
    dy: &[f32],
    w: &[f32],
) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    check_len("w", w.len(), g.weight_len());
    let mut dx = vec![0.0f32; g.input_len()];
    for_each_transposed_tap(g, |xi, yi, wi| dx[xi] += dy[yi] * w[wi]);
    dx
}

/// Reference [`crate::conv_transpose3d_backward_weight`].
pub fn conv_transpose3d_backward_weight(
    g: &ConvTranspose3dGeometry,
    x: &[f32],
    dy: &[f32],
) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("dy", dy.len(), g.output_len());
    let mut dw = vec![0.0f32; g.weight_len()];
    for_each_transposed_tap(g, |xi, yi, wi| dw[wi] += x[xi] * dy[yi]);
    dw
}

/// Reference [`crate::conv_transpose3d_backward_bias`].
pub fn conv_transpose3d_backward_bias(g: &ConvTranspose3dGeometry, dy: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    sum_per_channel(dy, g.batch, g.c_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(
        c_in: usize,
        c_out: usize,
        in_dhw: [usize; 3],
        k: usize,
        s: usize,
        p: usize,
    ) -> Conv3dGeometry {
        Conv3dGeometry {
            batch: 1,
            c_in,
            c_out,
            in_dhw,
            kernel: [k; 3],
            stride: [s; 3],
            padding: [p; 3],
            dilation: [1; 3],
            groups: 1,
        }
    }

    #[test]
    fn identity_kernel_copies_input() {
        // A 3³ kernel with a single 1 at its centre, padding 1: output = input.
        let g = geom(1, 1, [3, 4, 5], 3, 1, 1);
        let x: Vec<f32> = (0..60).map(|i| i as f32).collect();
        let mut w = vec![0.0; 27];
        w[13] = 1.0;
        assert_eq!(conv3d_forward(&g, &x, &w, None), x);
    }

    #[test]
    fn box_kernel_sums_neighbourhood() {
        // All-ones 2³ kernel, no padding, on a 2×2×3 volume of ones: each of the 1×1×2 outputs is 8,
        // plus a bias of 0.5.
        let g = geom(1, 1, [2, 2, 3], 2, 1, 0);
        let y = conv3d_forward(&g, &[1.0; 12], &[1.0; 8], Some(&[0.5]));
        assert_eq!(y, vec![8.5, 8.5]);
    }

    #[test]
    fn transposed_k2_s2_spreads_each_voxel_into_a_block() {
        let g = ConvTranspose3dGeometry {
            batch: 1,
            c_in: 1,
            c_out: 1,
            in_dhw: [1, 1, 2],
            kernel: [2; 3],
            stride: [2; 3],
            padding: [0; 3],
            padding_out: [0; 3],
            dilation: [1; 3],
            groups: 1,
        };
        assert_eq!(g.out_dhw(), [2, 2, 4]);
        let y = conv_transpose3d_forward(&g, &[1.0, 2.0], &[1.0; 8], None);
        assert_eq!(y, [1.0, 1.0, 2.0, 2.0].repeat(4));
        let db = conv_transpose3d_backward_bias(&g, &y);
        assert_eq!(db, vec![24.0]);
    }

    #[test]
    fn backward_weight_matches_inner_product_identity() {
        // ⟨conv(x, w), dy⟩ = ⟨w, dW(x, dy)⟩ = ⟨x, dX(dy, w)⟩ for small integer data (exact in f32).
        let g = Conv3dGeometry {
            batch: 2,
            c_in: 2,
            c_out: 2,
            in_dhw: [3, 4, 3],
            kernel: [3, 2, 1],
            stride: [2, 1, 1],
            padding: [1, 0, 1],
            dilation: [1, 2, 1],
            groups: 2,
        };
        let x: Vec<f32> = (0..g.input_len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|i| (i % 5) as f32 - 2.0).collect();
        let dy: Vec<f32> = (0..g.output_len()).map(|i| (i % 3) as f32 - 1.0).collect();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
        let lhs = dot(&conv3d_forward(&g, &x, &w, None), &dy);
        assert_eq!(lhs, dot(&w, &conv3d_backward_weight(&g, &x, &dy)));
        assert_eq!(lhs, dot(&x, &conv3d_backward_data(&g, &dy, &w)));
    }
}
