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
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

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

    /// Logits `[B, C, z, y, x]` of a patch `[B, 1, z, y, x]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let h = run(&self.enc1, x);
        let m = run(&self.enc2, max_pool3d_2(h.clone()));
        let x = run(&self.bottleneck, max_pool3d_2(m.clone()));
        let x = relu(fastconv::conv3d(&self.up1, pad_end_1(upsample_nearest2(x))));
        let x = run(&self.dec1, Tensor::cat(vec![x, m], 1));
        let x = relu(fastconv::conv3d(&self.up2, pad_end_1(upsample_nearest2(x))));
        let x = run(&self.dec2, Tensor::cat(vec![x, h], 1));
        fastconv::conv3d(&self.out, x)
    }
}
