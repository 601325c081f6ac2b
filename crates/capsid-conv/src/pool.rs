//! 2×2×2 max-pooling with stride 2 (floor: a trailing odd voxel along an axis is dropped, as in
//! PyTorch's `MaxPool3d(2)`) and its gradient, on contiguous `[planes, z, y, x]` f32 slices
//! (planes = batch · channels).

use rayon::prelude::*;

/// Output size (z, y, x) of the pool: each input size halved, rounded down.
pub fn max_pool3d_2_out(in_dhw: [usize; 3]) -> [usize; 3] {
    in_dhw.map(|n| n / 2)
}

/// Plane sizes of one pool call.
struct Sizes {
    in_len: usize,
    out_dhw: [usize; 3],
    out_len: usize,
    planes: usize,
}

impl Sizes {
    /// Sizes for an input of `x_len` values in planes of `in_dhw`.
    ///
    /// # Panics
    /// If `x_len` is not a multiple of a nonempty plane.
    fn new(in_dhw: [usize; 3], x_len: usize) -> Self {
        let in_len: usize = in_dhw.iter().product();
        assert!(
            in_len > 0 && x_len.is_multiple_of(in_len),
            "max_pool3d_2: input length"
        );
        let out_dhw = max_pool3d_2_out(in_dhw);
        Self {
            in_len,
            out_dhw,
            out_len: out_dhw.iter().product(),
            planes: x_len / in_len,
        }
    }
}

/// Index (within one input plane) of the maximum of the 2×2×2 block under output voxel
/// `(z, y, x)`; the first in (z, y, x) order among equal values (NaN inputs: unspecified).
#[inline(always)]
fn argmax_block(plane: &[f32], [_, h, w]: [usize; 3], z: usize, y: usize, x: usize) -> usize {
    let mut best = (2 * z * h + 2 * y) * w + 2 * x;
    let mut m = plane[best];
    for dz in 0..2 {
        for dy in 0..2 {
            let row = ((2 * z + dz) * h + 2 * y + dy) * w + 2 * x;
            for i in [row, row + 1] {
                if plane[i] > m {
                    m = plane[i];
                    best = i;
                }
            }
        }
    }
    best
}

/// One output row: the maximum over the four input rows `rows` (each of width ≥ 2·out.len())
/// and over each pair of columns.
#[inline(always)]
fn pool_row(rows: [&[f32]; 4], out: &mut [f32], pair_max: &mut [f32]) {
    let n = pair_max.len();
    let (r0, r1, r2, r3) = (&rows[0][..n], &rows[1][..n], &rows[2][..n], &rows[3][..n]);
    for i in 0..n {
        pair_max[i] = r0[i].max(r1[i]).max(r2[i].max(r3[i]));
    }
    for (o, pair) in out.iter_mut().zip(pair_max.chunks_exact(2)) {
        *o = pair[0].max(pair[1]);
    }
}

/// Max-pool of `x` `[planes, in_dhw]`, `[planes, in_dhw / 2]`.
///
/// # Panics
/// If `x.len()` is not a multiple of the plane size.
pub fn max_pool3d_2_forward(in_dhw: [usize; 3], x: &[f32]) -> Vec<f32> {
    let Sizes {
        in_len,
        out_dhw: [od, oh, ow],
        out_len,
        planes,
    } = Sizes::new(in_dhw, x.len());
    let mut y = vec![0.0f32; planes * out_len];
    if out_len == 0 {
        return y;
    }
    let [_, h, w] = in_dhw;
    y.par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(out, plane)| {
            let mut pair_max = vec![0.0f32; 2 * ow];
            for z in 0..od {
                for yy in 0..oh {
                    let row = |dz: usize, dy: usize| &plane[((2 * z + dz) * h + 2 * yy + dy) * w..];
                    pool_row(
                        [row(0, 0), row(0, 1), row(1, 0), row(1, 1)],
                        &mut out[(z * oh + yy) * ow..][..ow],
                        &mut pair_max,
                    );
                }
            }
        });
    y
}

/// Gradient of the max-pool: `dy` `[planes, in_dhw / 2]` routed to the maximum of each block of
/// `x` `[planes, in_dhw]`; zero elsewhere.
///
/// # Panics
/// If the lengths do not match.
pub fn max_pool3d_2_backward(in_dhw: [usize; 3], x: &[f32], dy: &[f32]) -> Vec<f32> {
    let Sizes {
        in_len,
        out_dhw: [od, oh, ow],
        out_len,
        planes,
    } = Sizes::new(in_dhw, x.len());
    assert_eq!(dy.len(), planes * out_len, "max_pool3d_2: gradient length");
    let mut dx = vec![0.0f32; x.len()];
    if out_len == 0 {
        return dx;
    }
    dx.par_chunks_mut(in_len)
        .zip(x.par_chunks(in_len).zip(dy.par_chunks(out_len)))
        .for_each(|(grad, (plane, g))| {
            for z in 0..od {
                for yy in 0..oh {
                    for xx in 0..ow {
                        let i = argmax_block(plane, in_dhw, z, yy, xx);
                        grad[i] = g[(z * oh + yy) * ow + xx];
                    }
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_odd_sizes_and_routes_gradients_to_the_maxima() {
        // 2 planes of 5×4×7: output 2×2×3; the trailing z slice and x column are dropped.
        let dhw = [5, 4, 7];
        let n: usize = dhw.iter().product();
        let x: Vec<f32> = (0..2 * n)
            .map(|i| ((i * 7919) % 1009) as f32 - 500.0)
            .collect();
        let y = max_pool3d_2_forward(dhw, &x);
        assert_eq!(y.len(), 2 * 12);
        let dy: Vec<f32> = (0..24).map(|i| i as f32 + 1.0).collect();
        let dx = max_pool3d_2_backward(dhw, &x, &dy);
        for p in 0..2 {
            for z in 0..2 {
                for yy in 0..2 {
                    for xx in 0..3 {
                        let mut best = (f32::NEG_INFINITY, 0);
                        for dz in 0..2 {
                            for dyy in 0..2 {
                                for dxx in 0..2 {
                                    let i = p * n
                                        + ((2 * z + dz) * 4 + 2 * yy + dyy) * 7
                                        + 2 * xx
                                        + dxx;
                                    if x[i] > best.0 {
                                        best = (x[i], i);
                                    }
                                }
                            }
                        }
                        let o = p * 12 + (z * 2 + yy) * 3 + xx;
                        assert_eq!(y[o], best.0);
                        assert_eq!(dx[best.1], dy[o]);
                    }
                }
            }
        }
        // Every gradient value lands exactly once; the rest of dx is zero.
        assert_eq!(dx.iter().filter(|v| **v != 0.0).count(), 24);
        assert_eq!(dx.iter().sum::<f32>(), dy.iter().sum::<f32>());
    }
}
