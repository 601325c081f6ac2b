//! DeepFinder's 3D-UNet (the paper's baseline): 902,928 + 33·C parameters.
//!
//! All convolutions are 3×3×3 'same' + ReLU. Encoder 32, 32 → max-pool → 48, 48 → max-pool →
//! bottleneck 64 ×4; decoder: nearest ×2 upsampling + 2×2×2 'same' convolution (64) + ReLU,
//! concat with the 48-channel stage, 48, 48; upsampling + 2³ conv (48), concat with the
//! 32-channel stage, 32, 32; 1×1×1 convolution to C logits. Input `[B, 1, z, y, x]` with every
//! spatial size divisible by 4.

use super::fastconv;
use super::init::{conv3d, ConvSpec, InitRng};
use super::ops::{max_pool3d_2, pad_end_1, upsample_nearest2};
use burn::module::Module;
use burn::nn::conv::Conv3d;
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// `run(layers, cat([a, b], 1))` with the first convolution applied without building the
/// concatenation ([`fastconv::conv3d_of_cat`]).
fn run_after_cat(layers: &[Conv3d], a: Tensor<5>, b: Tensor<5>) -> Tensor<5> {
    let x = relu(fastconv::conv3d_of_cat(&layers[0], a, b));
    run(&layers[1..], x)
}

/// The decoder's up-step `conv(pad_end_1(upsample_nearest2(x)))` for a 2×2×2 convolution
/// `conv` (stride 1, no padding), `x` `[B, C_in, z, y, x]` → `[B, C_out, 2z, 2y, 2x]`.
///
/// With capsid's CPU convolutions it runs as one stride-2 transposed convolution of the
/// low-resolution `x` with the kernel of [`upsampled_kernel`]: the same values (up to rounding)
/// and gradients, 27 instead of 64 multiply-adds per 8 output voxels and channel pair, and no
/// upsampled or padded copy of `x`. Elsewhere (GPU backends) it runs as written.
pub fn upsample_conv(conv: &Conv3d, x: Tensor<5>) -> Tensor<5> {
    let plain = conv.kernel_size != [2; 3] || conv.stride != [1; 3] || conv.dilation != [1; 3];
    if plain || conv.groups != 1 || !fastconv::fast_conv_enabled() || !fastconv::on_flex_f32(&x) {
        return fastconv::conv3d(conv, pad_end_1(upsample_nearest2(x)));
    }
    let kernel = upsampled_kernel(conv.weight.val()).swap_dims(0, 1);
    let options = ConvTransposeOptions::new([2; 3], [1; 3], [1; 3], [1; 3], 1);
    fastconv::fast_conv_transpose3d(x, kernel, conv.bias.as_ref().map(|b| b.val()), options)
}

/// The 3×3×3 kernel `[C_out, C_in, 3, 3, 3]` of the stride-2 transposed convolution (padding 1,
/// output padding 1) equal to nearest ×2 upsampling, one voxel of zero padding at the end and
/// the 2×2×2 convolution with kernel `w` `[C_out, C_in, 2, 2, 2]`.
///
/// Per axis, upsampled voxel `2i` sees `(w0 + w1)·x[i]` and voxel `2i + 1` sees
/// `w0·x[i] + w1·x[i + 1]`; a stride-2 transposed kernel `(k0, k1, k2)` with padding 1 gives
/// `k1·x[i]` and `k2·x[i] + k0·x[i + 1]`, so `k = (w1, w0 + w1, w0)`. Built from Burn ops on
/// the weight, so gradients reach `w`.
pub fn upsampled_kernel(w: Tensor<5>) -> Tensor<5> {
    let mut k = w;
    for axis in 2..5 {
        let w0 = k.clone().narrow(axis, 0, 1);
        let w1 = k.narrow(axis, 1, 1);
        k = Tensor::cat(vec![w1.clone(), w0.clone() + w1, w0], axis);
    }
    k
}

/// Configuration of the 3D-UNet; the only free parameter is the number of classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UNetConfig {
    /// Output classes including background (label 0).
    pub num_classes: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self { num_classes: 2 }
    }
}

impl UNetConfig {
    /// Parameters of this network: 902,928 + 33·C.
    pub fn expected_params(&self) -> usize {
        902_928 + 33 * self.num_classes
    }
}

/// DeepFinder's 3D-UNet; see the module docs.
#[derive(Module, Debug)]
pub struct UNet3d {
    pub enc1: Vec<Conv3d>,
    pub enc2: Vec<Conv3d>,
    pub bottleneck: Vec<Conv3d>,
    pub up1: Conv3d,
    pub dec1: Vec<Conv3d>,
    pub up2: Conv3d,
    pub dec2: Vec<Conv3d>,
    pub out: Conv3d,
}

fn run(layers: &[Conv3d], mut x: Tensor<5>) -> Tensor<5> {
    for conv in layers {
        x = relu(fastconv::conv3d(conv, x));
    }
    x
}

impl UNet3d {
    /// Builds the network with weights drawn from `rng`.
    pub fn new(cfg: &UNetConfig, rng: &mut InitRng, device: &Device) -> Self {
        let mut c3 = |cin, cout| conv3d(ConvSpec::same(cin, cout, 3), rng, device);
        let enc1 = vec![c3(1, 32), c3(32, 32)];
        let enc2 = vec![c3(32, 48), c3(48, 48)];
        let bottleneck = vec![c3(48, 64), c3(64, 64), c3(64, 64), c3(64, 64)];
        let up2x2 = |cin, cout, rng: &mut InitRng| {
            let mut s = ConvSpec::same(cin, cout, 2);
            s.padding = 0; // the extra voxel is padded at the end by `pad_end_1`
            conv3d(s, rng, device)
        };
        let up1 = up2x2(64, 64, rng);
        let mut c3 = |cin, cout| conv3d(ConvSpec::same(cin, cout, 3), rng, device);
        let dec1 = vec![c3(64 + 48, 48), c3(48, 48)];
        let up2 = up2x2(48, 48, rng);
        let mut c3 = |cin, cout| conv3d(ConvSpec::same(cin, cout, 3), rng, device);
        let dec2 = vec![c3(48 + 32, 32), c3(32, 32)];
        let out = conv3d(ConvSpec::same(32, cfg.num_classes, 1), rng, device);
        Self {
            enc1,
            enc2,
            bottleneck,
            up1,
            dec1,
            up2,
            dec2,
            out,
        }
    }

    /// The encoder of a patch `[B, 1, z, y, x]`: the first level's features `[B, 32, z, y, x]`,
    /// the second's `[B, 48, z/2, y/2, x/2]` (the skips) and the bottleneck's
    /// `[B, 64, z/4, y/4, x/4]`.
    pub fn encode(&self, x: Tensor<5>) -> [Tensor<5>; 3] {
        let h = run(&self.enc1, x);
        let m = run(&self.enc2, max_pool3d_2(h.clone()));
        let b = run(&self.bottleneck, max_pool3d_2(m.clone()));
        [h, m, b]
    }

    /// Logits `[B, C, z, y, x]` of a patch `[B, 1, z, y, x]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let [h, m, x] = self.encode(x);
        let x = relu(upsample_conv(&self.up1, x));
        let x = run_after_cat(&self.dec1, x, m);
        let x = relu(upsample_conv(&self.up2, x));
        let x = run_after_cat(&self.dec2, x, h);
        fastconv::conv3d(&self.out, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use rand::{Rng, SeedableRng};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()))
            / scale
    }

    #[test]
    fn split_convolution_equals_convolution_of_the_concatenation() {
        let device = Device::flex().autodiff();
        let mut init = InitRng::new(6);
        let layers = vec![
            conv3d(ConvSpec::same(5, 4, 3), &mut init, &device),
            conv3d(ConvSpec::same(4, 3, 3), &mut init, &device),
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut random = |shape: [usize; 5]| {
            let v: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            Tensor::<5>::from_data(TensorData::new(v, shape), &device)
        };
        let (av, bv) = (random([2, 3, 5, 4, 6]), random([2, 2, 5, 4, 6]));
        let p = random([2, 3, 5, 4, 6]);
        let run_with = |f: &dyn Fn(Tensor<5>, Tensor<5>) -> Tensor<5>| {
            let (a, b) = (av.clone().require_grad(), bv.clone().require_grad());
            let y = f(a.clone(), b.clone());
            let grads = (y.clone() * p.clone()).sum().backward();
            [
                values(y),
                values(a.grad(&grads).unwrap()),
                values(b.grad(&grads).unwrap()),
                values(layers[0].weight.grad(&grads).unwrap()),
                values(layers[0].bias.as_ref().unwrap().grad(&grads).unwrap()),
            ]
        };
        let split = run_with(&|a, b| run_after_cat(&layers, a, b));
        let plain = run_with(&|a, b| run(&layers, Tensor::cat(vec![a, b], 1)));
        for (name, (s, c)) in ["value", "da", "db", "dw", "dbias"]
            .iter()
            .zip(split.iter().zip(&plain))
        {
            let d = max_rel_diff(s, c);
            assert!(d < 1e-5, "{name}: max relative difference {d}");
        }
    }

    #[test]
    fn upsample_conv_equals_upsampling_padding_and_convolution() {
        // Odd, anisotropic sizes; value and the gradients of x, weight and bias.
        let device = Device::flex().autodiff();
        let mut spec = ConvSpec::same(3, 5, 2);
        spec.padding = 0;
        let conv = conv3d(spec, &mut InitRng::new(4), &device);
        let shape = [2, 3, 3, 4, 5];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let xv: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let out_shape = [2, 5, 6, 8, 10];
        let pv: Vec<f32> = (0..out_shape.iter().product::<usize>())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let run = |f: &dyn Fn(Tensor<5>) -> Tensor<5>| {
            let x =
                Tensor::<5>::from_data(TensorData::new(xv.clone(), shape), &device).require_grad();
            let y = f(x.clone());
            assert_eq!(y.dims(), out_shape);
            let p = Tensor::<5>::from_data(TensorData::new(pv.clone(), out_shape), &device);
            let grads = (y.clone() * p).sum().backward();
            [
                values(y),
                values(x.grad(&grads).unwrap()),
                values(conv.weight.grad(&grads).unwrap()),
                values(conv.bias.as_ref().unwrap().grad(&grads).unwrap()),
            ]
        };
        let fast = run(&|x| upsample_conv(&conv, x));
        let plain = run(&|x| fastconv::conv3d(&conv, pad_end_1(upsample_nearest2(x))));
        for (name, (a, b)) in ["value", "dx", "dw", "dbias"]
            .iter()
            .zip(fast.iter().zip(&plain))
        {
            let d = max_rel_diff(a, b);
            assert!(d < 1e-5, "{name}: max relative difference {d}");
        }
    }
}
