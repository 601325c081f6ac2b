//! Tensor helpers shared by the networks: 3D max-pooling, nearest upsampling, asymmetric "same"
//! padding and the capsule squash. All tensors are `[batch, channels, z, y, x]` unless stated.

use burn::tensor::module::max_pool2d;
use burn::tensor::ops::{MaxPoolOptions, PadMode};
use burn::tensor::Tensor;

/// 2×2×2 max-pooling with stride 2 of `[B, C, D, H, W]` (D, H, W even).
///
/// Runs as a 2D max-pool over `[B, C·D, H, W]` followed by the maximum of each pair of
/// consecutive depth slices; with the flex backend this is several times faster (backward
/// especially) than a 3D pool built from reshapes and `max_dim`.
///
/// With capsid's CPU kernels on (flex, `f32`) it runs as one pass over the input instead
/// ([`super::fastconv::fast_max_pool3d_2`]; `[4, 32, 32³]`: 0.98 ms against 15–36 ms for the
/// max_pool2d step alone, `op_times` example).
pub fn max_pool3d_2(x: Tensor<5>) -> Tensor<5> {
    if super::fastconv::fast_conv_enabled() && super::fastconv::on_flex_f32(&x) {
        return super::fastconv::fast_max_pool3d_2(x);
    }
    max_pool3d_2_burn(x)
}

/// [`max_pool3d_2`] from Burn operations (any backend).
fn max_pool3d_2_burn(x: Tensor<5>) -> Tensor<5> {
    let [b, c, d, h, w] = x.dims();
    let (d2, h2, w2) = (d / 2, h / 2, w / 2);
    let pooled = max_pool2d(x.reshape([b, c * d, h, w]), MaxPoolOptions::new([2, 2]));
    let pairs = pooled.reshape([b * c * d2, 2, h2 * w2]);
    let even = pairs.clone().narrow(1, 0, 1);
    let odd = pairs.narrow(1, 1, 1);
    even.max_pair(odd).reshape([b, c, d2, h2, w2])
}

/// Nearest-neighbour ×2 upsampling of `[B, C, D, H, W]` along the three spatial axes
/// (Keras `UpSampling3D`, PyTorch `interpolate(scale_factor=2, mode="nearest")`).
pub fn upsample_nearest2(x: Tensor<5>) -> Tensor<5> {
    let [b, c, d, h, w] = x.dims();
    x.reshape([b, c, d, 1, h, 1, w, 1])
        .expand([b, c, d, 2, h, 2, w, 2])
        .reshape([b, c, 2 * d, 2 * h, 2 * w])
}

/// Zero-pads the three spatial axes by one voxel at the end only: what a 'same' convolution
/// with an even kernel of 2 needs (PyTorch and Keras put the extra voxel after).
pub fn pad_end_1(x: Tensor<5>) -> Tensor<5> {
    x.pad([(0, 1), (0, 1), (0, 1)], PadMode::Constant(0.0))
}

/// Capsule non-linearity along `dim`: `squash(s) = |s|²/(1+|s|²) · s/|s|` (with 1e-8 inside the
/// square root, as the reference).
pub fn squash<const D: usize>(s: Tensor<D>, dim: usize) -> Tensor<D> {
    let n2 = s.clone().square().sum_dim(dim);
    let scale = n2
        .clone()
        .div(n2.clone().add_scalar(1.0))
        .div(n2.add_scalar(1e-8).sqrt());
    s.mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn vol(values: Vec<f32>, shape: [usize; 5]) -> Tensor<5> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Plain loop 3D max-pool to compare against.
    fn max_pool_reference(v: &[f32], [b, c, d, h, w]: [usize; 5]) -> Vec<f32> {
        let mut out = Vec::new();
        for bc in 0..b * c {
            for z in 0..d / 2 {
                for y in 0..h / 2 {
                    for x in 0..w / 2 {
                        let mut m = f32::NEG_INFINITY;
                        for dz in 0..2 {
                            for dy in 0..2 {
                                for dx in 0..2 {
                                    let i =
                                        (((bc * d) + 2 * z + dz) * h + 2 * y + dy) * w + 2 * x + dx;
                                    m = m.max(v[i]);
                                }
                            }
                        }
                        out.push(m);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn max_pool3d_matches_loops() {
        let shape = [2, 3, 4, 6, 8];
        let n: usize = shape.iter().product();
        // A scrambled but deterministic pattern so that the maximum moves around in each block.
        let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 - 500.0).collect();
        let got = values(max_pool3d_2(vol(v.clone(), shape)));
        assert_eq!(got, max_pool_reference(&v, shape));
    }

    #[test]
    fn fast_max_pool_value_and_gradient_match_burn_ops() {
        let device = Device::flex().autodiff();
        let shape = [2, 3, 4, 6, 8];
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 - 500.0).collect();
        let p: Vec<f32> = (0..n / 8).map(|i| ((i * 31) % 17) as f32 - 8.0).collect();
        let run = |pool: fn(Tensor<5>) -> Tensor<5>| {
            let x =
                Tensor::<5>::from_data(TensorData::new(v.clone(), shape), &device).require_grad();
            let y = pool(x.clone());
            let w = Tensor::<5>::from_data(TensorData::new(p.clone(), y.dims()), &device);
            let grads = (y.clone() * w).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let (fast_y, fast_dx) = run(max_pool3d_2);
        let (burn_y, burn_dx) = run(max_pool3d_2_burn);
        assert_eq!(fast_y, burn_y);
        assert_eq!(fast_dx, burn_dx);
        assert!(fast_dx.iter().any(|g| *g != 0.0));
    }

    #[test]
    fn upsample_repeats_each_voxel_in_a_2x2x2_block() {
        let v: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let up = upsample_nearest2(vol(v.clone(), [1, 1, 2, 2, 2]));
        assert_eq!(up.dims(), [1, 1, 4, 4, 4]);
        let u = values(up);
        for z in 0..4 {
            for y in 0..4 {
                for x in 0..4 {
                    assert_eq!(u[(z * 4 + y) * 4 + x], v[((z / 2) * 2 + y / 2) * 2 + x / 2]);
                }
            }
        }
    }

    #[test]
    fn pad_end_adds_zeros_after_only() {
        let p = pad_end_1(vol(vec![1.0; 8], [1, 1, 2, 2, 2]));
        assert_eq!(p.dims(), [1, 1, 3, 3, 3]);
        let u = values(p);
        assert_eq!(u[0], 1.0);
        assert_eq!(u[26], 0.0);
        assert_eq!(u.iter().sum::<f32>(), 8.0);
    }

    #[test]
    fn squash_matches_formula() {
        let s = Tensor::<2>::from_data(
            TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]),
            &Device::flex(),
        );
        let v = values(squash(s, 1));
        // |s| = 5: scale = 25/26 / 5.
        let k = 25.0 / 26.0 / 5.0;
        assert!((v[0] - 3.0 * k).abs() < 1e-6 && (v[1] - 4.0 * k).abs() < 1e-6);
        assert_eq!(&v[2..], &[0.0, 0.0]);
    }
}
