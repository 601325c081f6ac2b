//! Seeded parameter initialisation, independent of Burn's global random generator.
//!
//! Every weight is drawn from a [`ChaCha8Rng`] in a fixed order, so the same seed gives the same
//! network bit for bit on every backend and regardless of other threads. The distributions are
//! PyTorch's defaults (what the reference implementations use): convolution weights and biases
//! U(−1/√fan_in, 1/√fan_in); capsule votes N(0, 0.1) with bias 0.1.

use burn::module::Param;
use burn::nn::conv::{Conv3d, Conv3dConfig, ConvTranspose3d, ConvTranspose3dConfig};
use burn::nn::PaddingConfig3d;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The random source of one network's initialisation.
pub struct InitRng(pub ChaCha8Rng);

impl InitRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A parameter of `shape` drawn from U(−bound, bound).
    pub fn uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        bound: f32,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.0.gen_range(-bound..=bound)).collect();
        Param::from_data(TensorData::new(values, shape), device)
    }

    /// A parameter of `shape` drawn from N(0, std).
    pub fn normal<const D: usize>(
        &mut self,
        shape: [usize; D],
        std: f32,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let dist = Normal::new(0.0f32, std).expect("std is finite and positive");
        let values: Vec<f32> = (0..n).map(|_| dist.sample(&mut self.0)).collect();
        Param::from_data(TensorData::new(values, shape), device)
    }
}

/// A constant parameter of `shape`.
pub fn constant<const D: usize>(
    shape: [usize; D],
    value: f32,
    device: &Device,
) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    Param::from_data(TensorData::new(vec![value; n], shape), device)
}

/// Options of a 3D convolution built by [`conv3d`].
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Symmetric zero padding on each side of each axis, voxels.
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    /// A stride-1, bias, ungrouped convolution with padding `kernel / 2` (size-preserving for odd
    /// kernels).
    pub fn same(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: kernel / 2,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }
}

/// A 3D convolution with PyTorch's default initialisation drawn from `rng`.
pub fn conv3d(spec: ConvSpec, rng: &mut InitRng, device: &Device) -> Conv3d {
    let k = spec.kernel;
    let mut conv = Conv3dConfig::new([spec.in_channels, spec.out_channels], [k, k, k])
        .with_stride([spec.stride; 3])
        .with_dilation([spec.dilation; 3])
        .with_groups(spec.groups)
        .with_padding(PaddingConfig3d::Explicit(
            spec.padding,
            spec.padding,
            spec.padding,
        ))
        .with_bias(spec.bias)
        .init(device);
    let fan_in = spec.in_channels / spec.groups * k * k * k;
    let bound = 1.0 / (fan_in as f32).sqrt();
    conv.weight = rng.uniform(
        [spec.out_channels, spec.in_channels / spec.groups, k, k, k],
        bound,
        device,
    );
    conv.bias = spec
        .bias
        .then(|| rng.uniform([spec.out_channels], bound, device));
    conv
}

/// A transposed 3D convolution, kernel = stride = `factor` (exact ×factor upsampling), with bias,
/// initialised like PyTorch's `ConvTranspose3d` (fan-in from the output channels).
pub fn conv_transpose3d(
    in_channels: usize,
    out_channels: usize,
    factor: usize,
    rng: &mut InitRng,
    device: &Device,
) -> ConvTranspose3d {
    let f = factor;
    let mut conv = ConvTranspose3dConfig::new([in_channels, out_channels], [f, f, f])
        .with_stride([f, f, f])
        .init(device);
    let bound = 1.0 / ((out_channels * f * f * f) as f32).sqrt();
    conv.weight = rng.uniform([in_channels, out_channels, f, f, f], bound, device);
    conv.bias = Some(rng.uniform([out_channels], bound, device));
    conv
}
