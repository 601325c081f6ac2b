//! 3D-UCaps: capsule encoder, convolutional decoder with skips, reconstruction branch.
//!
//! Default configuration (the paper's, about 3.0M parameters for 2 classes):
//! * feature extractor: three 5³ convolutions without bias (padding 2, optional dilation), each
//!   followed by InstanceNorm (not affine) and PReLU (one parameter), the last by tanh: 1→16→32→64;
//! * the 64 channels become one input capsule of 64 atoms; primary capsules: conv-capsule 3³,
//!   1×64 → 16×4, one routing iteration;
//! * encoder: six conv-capsule layers (kernel 3, routing iterations configurable, default 3),
//!   capsules [16, 16, 8, 8, 8, C], atoms [8, 8, 16, 16, 32, 64], strides [2, 1, 2, 1, 2, 1];
//! * decoder: transposed conv 2³ stride 2 (C·64 → 256), concat the stage-2 capsules (8×16) →
//!   conv 3³ + BatchNorm + ReLU → 128; transposed conv (128 → 128), concat the stage-1
//!   capsules (16×8) → conv 3³ + BatchNorm + ReLU → 64; transposed conv (64 → 64), concat the
//!   primary capsules (16×4) → 128 channels → 1³ conv → C logits;
//! * reconstruction branch on those 128 channels: 1³ convs 128→64→128→1 with ReLU, ReLU (the
//!   sigmoid is applied in the loss).
//!
//! The 2-level variant (`levels = 2`, the paper's "2-layer" ablation) keeps encoder stages 1 and
//! 2 (the second ending in the C class capsules of 64 atoms: capsules [16, 16, 8, C], atoms
//! [8, 8, 16, 64]) and two decoder steps (C·64 → 128 + stage-1 skip → 64; 64 → 64 + primary).
//! The input must be divisible by 2^levels.

use super::capsule::{ConvCaps3d, ConvCapsSpec};
use super::fastconv;
use super::init::{conv3d, conv_transpose3d, ConvSpec, InitRng};
use burn::module::Module;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{BatchNorm, BatchNormConfig, InstanceNorm, InstanceNormConfig, PRelu, PReluConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Configuration of 3D-UCaps; every field has the paper's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UCapsConfig {
    /// Output classes including background (label 0).
    pub num_classes: usize,
    /// Kernel of the feature-extractor convolutions (odd; 5 in the paper, 3 for the ablation).
    pub feature_kernel: usize,
    /// Dilation of the feature-extractor convolutions (1 = regular, the paper; 2 = the original
    /// UCaps dilated extractor).
    pub feature_dilation: usize,
    /// Kernel of the conv-capsule layers (odd; 3 in the paper).
    pub caps_kernel: usize,
    /// Routing iterations of the encoder capsule layers.
    pub routing_iters: usize,
    /// Routing iterations of the primary capsules.
    pub primary_routing_iters: usize,
    /// One vote convolution shared by all input capsules (true, the paper) or one each.
    pub shared_votes: bool,
    /// Encoder/decoder levels: 3 (the paper) or 2 (the 2-level ablation).
    pub levels: usize,
    /// Build the reconstruction branch.
    pub reconstruction: bool,
    /// Weight of the reconstruction loss (weighted cross-entropy) in training.
    pub recon_weight: f32,
    /// Weight of the margin loss on the class-capsule lengths (0 = off).
    pub margin_weight: f32,
}

impl Default for UCapsConfig {
    fn default() -> Self {
        Self {
            num_classes: 2,
            feature_kernel: 5,
            feature_dilation: 1,
            caps_kernel: 3,
            routing_iters: 3,
            primary_routing_iters: 1,
            shared_votes: true,
            levels: 3,
            reconstruction: true,
            recon_weight: 0.1,
            margin_weight: 0.0,
        }
    }
}

impl UCapsConfig {
    /// Checks that the configuration can be built.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_classes < 2 {
            return Err(format!(
                "num_classes = {} (need at least 2, background included)",
                self.num_classes
            ));
        }
        if self.feature_kernel.is_multiple_of(2) || self.caps_kernel.is_multiple_of(2) {
            return Err("feature_kernel and caps_kernel must be odd".into());
        }
        if self.feature_dilation == 0 || self.routing_iters == 0 || self.primary_routing_iters == 0
        {
            return Err("feature_dilation and routing iterations must be at least 1".into());
        }
        if !(2..=3).contains(&self.levels) {
            return Err(format!("levels = {} (2 or 3)", self.levels));
        }
        Ok(())
    }

    /// The encoder capsule layers: (capsules, atoms, stride) per layer.
    pub fn encoder_layers(&self) -> Vec<(usize, usize, usize)> {
        let c = self.num_classes;
        match self.levels {
            2 => vec![(16, 8, 2), (16, 8, 1), (8, 16, 2), (c, 64, 1)],
            _ => vec![
                (16, 8, 2),
                (16, 8, 1),
                (8, 16, 2),
                (8, 16, 1),
                (8, 32, 2),
                (c, 64, 1),
            ],
        }
    }

    /// Spatial sizes must be divisible by this.
    pub fn size_multiple(&self) -> usize {
        1 << self.levels
    }
}

/// 1³ convolutions 128→64→128→1 with ReLU between (pre-sigmoid output).
#[derive(Module, Debug)]
pub struct ReconBranch {
    pub convs: Vec<Conv3d>,
}

/// 3D-UCaps; see the module docs.
#[derive(Module, Debug)]
pub struct UCaps3d {
    pub feature_convs: Vec<Conv3d>,
    pub feature_norms: Vec<InstanceNorm>,
    pub feature_prelus: Vec<PRelu>,
    pub primary: ConvCaps3d,
    pub encoder: Vec<ConvCaps3d>,
    pub ups: Vec<ConvTranspose3d>,
    pub decoder_convs: Vec<Conv3d>,
    pub decoder_norms: Vec<BatchNorm>,
    pub out: Conv3d,
    pub recon: Option<ReconBranch>,
    pub levels: usize,
}

/// Logits, reconstruction and class-capsule lengths of one forward pass.
pub struct UCapsOutput {
    pub logits: Tensor<5>,
    pub recon: Option<Tensor<5>>,
    pub capsule_lengths: Tensor<5>,
}

/// `[B, caps, atoms, z, y, x]` → `[B, caps·atoms, z, y, x]`.
fn flatten_caps(t: Tensor<6>) -> Tensor<5> {
    let [b, c, a, d, h, w] = t.dims();
    t.reshape([b, c * a, d, h, w])
}

impl UCaps3d {
    /// Builds the network with weights drawn from `rng` (call [`UCapsConfig::validate`] first).
    pub fn new(cfg: &UCapsConfig, rng: &mut InitRng, device: &Device) -> Self {
        let k = cfg.feature_kernel;
        let d = cfg.feature_dilation;
        let channels = [1, 16, 32, 64];
        let mut feature_convs = Vec::new();
        let mut feature_norms = Vec::new();
        for i in 0..3 {
            feature_convs.push(conv3d(
                ConvSpec {
                    in_channels: channels[i],
                    out_channels: channels[i + 1],
                    kernel: k,
                    stride: 1,
                    padding: d * (k - 1) / 2,
                    dilation: d,
                    groups: 1,
                    bias: false,
                },
                rng,
                device,
            ));
            feature_norms.push(
                InstanceNormConfig::new(channels[i + 1])
                    .with_affine(false)
                    .init(device),
            );
        }
        let feature_prelus = vec![
            PReluConfig::new().init(device),
            PReluConfig::new().init(device),
        ];
        let caps = |in_caps, in_atoms, out_caps, out_atoms, stride, routings| ConvCapsSpec {
            in_caps,
            in_atoms,
            out_caps,
            out_atoms,
            kernel: cfg.caps_kernel,
            stride,
            routings,
            shared: cfg.shared_votes,
        };
        let primary = ConvCaps3d::new(
            caps(1, 64, 16, 4, 1, cfg.primary_routing_iters),
            rng,
            device,
        );
        let mut encoder = Vec::new();
        let (mut ci, mut ai) = (16, 4);
        for (oc, oa, stride) in cfg.encoder_layers() {
            encoder.push(ConvCaps3d::new(
                caps(ci, ai, oc, oa, stride, cfg.routing_iters),
                rng,
                device,
            ));
            (ci, ai) = (oc, oa);
        }
        // Decoder channel plan of the 3-level network; the 2-level one uses its tail.
        let layers = cfg.encoder_layers();
        let (up_out, dec_out): (Vec<usize>, Vec<usize>) = match cfg.levels {
            2 => (vec![128, 64], vec![64]),
            _ => (vec![256, 128, 64], vec![128, 64]),
        };
        let mut ups = Vec::new();
        let mut decoder_convs = Vec::new();
        let mut decoder_norms = Vec::new();
        let mut cin = cfg.num_classes * 64;
        for j in 0..cfg.levels {
            ups.push(conv_transpose3d(cin, up_out[j], 2, rng, device));
            if j + 1 < cfg.levels {
                let (sc, sa, _) = layers[2 * (cfg.levels - 1 - j) - 1];
                let mut spec = ConvSpec::same(up_out[j] + sc * sa, dec_out[j], 3);
                spec.bias = false;
                decoder_convs.push(conv3d(spec, rng, device));
                decoder_norms.push(BatchNormConfig::new(dec_out[j]).init(device));
                cin = dec_out[j];
            }
        }
        let top = up_out[cfg.levels - 1] + 16 * 4;
        let out = conv3d(ConvSpec::same(top, cfg.num_classes, 1), rng, device);
        let recon = cfg.reconstruction.then(|| ReconBranch {
            convs: vec![
                conv3d(ConvSpec::same(top, 64, 1), rng, device),
                conv3d(ConvSpec::same(64, 128, 1), rng, device),
                conv3d(ConvSpec::same(128, 1, 1), rng, device),
            ],
        });
        Self {
            feature_convs,
            feature_norms,
            feature_prelus,
            primary,
            encoder,
            ups,
            decoder_convs,
            decoder_norms,
            out,
            recon,
            levels: cfg.levels,
        }
    }

    /// Number of values in the BatchNorm running statistics (counted by Burn's `num_params` but
    /// not trainable, and not counted by PyTorch's `parameters()`).
    pub fn running_stat_values(&self) -> usize {
        self.decoder_norms
            .iter()
            .map(|bn| 2 * bn.gamma.dims()[0])
            .sum()
    }

    /// The capsule encoder of a patch `[B, 1, z, y, x]`: the primary capsules
    /// `[B, 16, 4, z, y, x]` and the output of every encoder layer `[B, caps, atoms, …]` (see
    /// [`UCapsConfig::encoder_layers`]), the last being the class capsules
    /// `[B, C, 64, z/2^levels, y/2^levels, x/2^levels]`.
    pub fn encode(&self, x: Tensor<5>) -> (Tensor<6>, Vec<Tensor<6>>) {
        let mut f = x;
        for i in 0..3 {
            f = self.feature_norms[i].forward(fastconv::conv3d(&self.feature_convs[i], f));
            f = match self.feature_prelus.get(i) {
                Some(p) => p.forward(f),
                None => fastconv::tanh(f),
            };
        }
        let primary = self.primary.forward(f.unsqueeze_dim(1));
        let mut skips: Vec<Tensor<6>> = Vec::with_capacity(self.encoder.len());
        for layer in &self.encoder {
            let h = layer.forward(skips.last().unwrap_or(&primary).clone());
            skips.push(h);
        }
        (primary, skips)
    }

    /// Forward pass of a patch `[B, 1, z, y, x]`.
    pub fn forward(&self, x: Tensor<5>) -> UCapsOutput {
        let (primary, skips) = self.encode(x);
        let h = skips
            .last()
            .cloned()
            .expect("the encoder has at least one capsule layer");
        let capsule_lengths = h
            .clone()
            .square()
            .sum_dim(2)
            .add_scalar(1e-12)
            .sqrt()
            .squeeze_dim::<5>(2);
        let mut y = flatten_caps(h);
        let levels = self.levels;
        for j in 0..levels {
            let up = fastconv::conv_transpose3d(&self.ups[j], y);
            if j + 1 < levels {
                let skip = flatten_caps(skips[2 * (levels - 1 - j) - 1].clone());
                let conv = fastconv::conv3d_of_cat(&self.decoder_convs[j], up, skip);
                y = relu(self.decoder_norms[j].forward(conv));
            } else {
                y = Tensor::cat(vec![up, flatten_caps(primary.clone())], 1);
            }
        }
        let recon = self.recon.as_ref().map(|r| {
            let mut z = y.clone();
            for (i, conv) in r.convs.iter().enumerate() {
                z = fastconv::conv3d(conv, z);
                if i + 1 < r.convs.len() {
                    z = relu(z);
                }
            }
            z
        });
        UCapsOutput {
            logits: fastconv::conv3d(&self.out, y),
            recon,
            capsule_lengths,
        }
    }
}
