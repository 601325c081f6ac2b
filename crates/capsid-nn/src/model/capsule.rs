//! Convolutional capsule layer with dynamic routing (3D-UCaps, after SegCaps).
//!
//! Input and output are capsule maps `[batch, capsules, atoms, z, y, x]`. Each input capsule's
//! atoms go through a 3D convolution to `out_caps × out_atoms` vote channels; the convolution is
//! shared by all input capsules (default) or one per input capsule (`shared = false`, a grouped
//! convolution). Dynamic routing then combines the votes: logits b = 0; r times:
//! c = softmax(b over output capsules), s = Σ_inputs c·votes + bias, v = squash(s),
//! b += ⟨votes, v⟩ (not after the last iteration). Votes are initialised N(0, 0.1), the bias
//! (`[out_caps, out_atoms]`) to 0.1.

use super::fastconv;
use super::init::{constant, conv3d, ConvSpec, InitRng};
use super::ops::squash;
use burn::module::{Module, Param};
use burn::nn::conv::Conv3d;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Shape and behaviour of one conv-capsule layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvCapsSpec {
    pub in_caps: usize,
    pub in_atoms: usize,
    pub out_caps: usize,
    pub out_atoms: usize,
    /// Cubic kernel size (odd); padding is `kernel / 2`.
    pub kernel: usize,
    pub stride: usize,
    /// Routing iterations (≥ 1).
    pub routings: usize,
    /// One vote convolution for all input capsules (true) or one per input capsule.
    pub shared: bool,
}

/// A conv-capsule layer; see the module docs.
#[derive(Module, Debug)]
pub struct ConvCaps3d {
    /// Votes: `in_atoms → out_caps·out_atoms` (shared) or grouped per input capsule.
    pub votes: Conv3d,
    /// Added to the routed sum, `[out_caps, out_atoms]`.
    pub bias: Param<Tensor<2>>,
    pub in_caps: usize,
    pub in_atoms: usize,
    pub out_caps: usize,
    pub out_atoms: usize,
    pub routings: usize,
    pub shared: bool,
}

impl ConvCaps3d {
    /// Builds the layer, drawing the vote weights from `rng`.
    pub fn new(spec: ConvCapsSpec, rng: &mut InitRng, device: &Device) -> Self {
        let per_input = spec.out_caps * spec.out_atoms;
        let (in_channels, out_channels, groups) = if spec.shared {
            (spec.in_atoms, per_input, 1)
        } else {
            (
                spec.in_caps * spec.in_atoms,
                spec.in_caps * per_input,
                spec.in_caps,
            )
        };
        let mut votes = conv3d(
            ConvSpec {
                in_channels,
                out_channels,
                kernel: spec.kernel,
                stride: spec.stride,
                padding: spec.kernel / 2,
                dilation: 1,
                groups,
                bias: false,
            },
            rng,
            device,
        );
        let k = spec.kernel;
        votes.weight = rng.normal([out_channels, in_channels / groups, k, k, k], 0.1, device);
        Self {
            votes,
            bias: constant([spec.out_caps, spec.out_atoms], 0.1, device),
            in_caps: spec.in_caps,
            in_atoms: spec.in_atoms,
            out_caps: spec.out_caps,
            out_atoms: spec.out_atoms,
            routings: spec.routings.max(1),
            shared: spec.shared,
        }
    }

    /// The votes `[B, in_caps, out_caps, out_atoms, z', y', x']` of input `[B, in_caps, in_atoms,
    /// z, y, x]`.
    pub fn votes(&self, x: Tensor<6>) -> Tensor<7> {
        let [b, ci, ai, d, h, w] = x.dims();
        assert_eq!(
            (ci, ai),
            (self.in_caps, self.in_atoms),
            "capsule input shape"
        );
        let v = if self.shared {
            fastconv::conv3d(&self.votes, x.reshape([b * ci, ai, d, h, w]))
        } else {
            fastconv::conv3d(&self.votes, x.reshape([b, ci * ai, d, h, w]))
        };
        let [_, _, d2, h2, w2] = v.dims();
        v.reshape([b, ci, self.out_caps, self.out_atoms, d2, h2, w2])
    }

    /// Routes `x` `[B, in_caps, in_atoms, z, y, x]` to `[B, out_caps, out_atoms, z', y', x']`.
    ///
    /// With capsid's CPU kernels on (flex, `f32`) the routing runs fused
    /// ([`fastconv::fast_routing`]); otherwise as the tensor operations of [`Self::route`].
    pub fn forward(&self, x: Tensor<6>) -> Tensor<6> {
        let votes = self.votes(x);
        if fastconv::fast_conv_enabled() && fastconv::on_flex_f32(&votes) {
            let [b, ci, oc, oa, d, h, w] = votes.dims();
            let flat = votes.reshape([b, ci, oc, oa, d * h * w]);
            return fastconv::fast_routing(flat, self.bias.val(), self.routings)
                .reshape([b, oc, oa, d, h, w]);
        }
        self.route(votes)
    }

    /// Dynamic routing of `votes` `[B, in_caps, out_caps, out_atoms, z, y, x]` written with Burn
    /// tensor operations (any backend).
    pub fn route(&self, votes: Tensor<7>) -> Tensor<6> {
        let [b, _, oc, oa, d, h, w] = votes.dims();
        let bias: Tensor<7> = self.bias.val().reshape([1, 1, oc, oa, 1, 1, 1]);
        // First iteration: the logits are zero, so the coupling is uniform 1/out_caps.
        let s = votes.clone().sum_dim(1).mul_scalar(1.0 / oc as f32) + bias.clone();
        let mut out = squash(s, 3);
        let mut logits: Option<Tensor<7>> = None;
        for _ in 1..self.routings {
            let agreement = (votes.clone() * out.clone()).sum_dim(3);
            let l = match logits {
                Some(l) => l + agreement,
                None => agreement,
            };
            let c = softmax(l.clone(), 2);
            let s = (c * votes.clone()).sum_dim(1) + bias.clone();
            out = squash(s, 3);
            logits = Some(l);
        }
        out.reshape([b, oc, oa, d, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn spec(routings: usize, shared: bool) -> ConvCapsSpec {
        ConvCapsSpec {
            in_caps: 2,
            in_atoms: 3,
            out_caps: 2,
            out_atoms: 2,
            kernel: 3,
            stride: 1,
            routings,
            shared,
        }
    }

    fn input(device: &Device, shape: [usize; 6], seed: u64) -> Tensor<6> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    #[test]
    fn parameter_count_shared_and_unshared() {
        let device = Device::flex();
        let shared = ConvCaps3d::new(spec(3, true), &mut InitRng::new(0), &device);
        assert_eq!(shared.num_params(), 3 * 4 * 27 + 4);
        let unshared = ConvCaps3d::new(spec(3, false), &mut InitRng::new(0), &device);
        assert_eq!(unshared.num_params(), 2 * 3 * 4 * 27 + 4);
    }

    #[test]
    fn output_capsules_are_squashed_and_strided() {
        let device = Device::flex();
        let mut s = spec(3, true);
        s.stride = 2;
        let layer = ConvCaps3d::new(s, &mut InitRng::new(1), &device);
        let out = layer.forward(input(&device, [1, 2, 3, 4, 4, 4], 2));
        assert_eq!(out.dims(), [1, 2, 2, 2, 2, 2]);
        let len = out.square().sum_dim(2).sqrt();
        let v = len.into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|&l| (0.0..1.0).contains(&l)), "{v:?}");
    }

    /// Routing by hand for a 1×1×1 map: two input capsules, two output capsules, 2 atoms.
    #[test]
    fn routing_matches_hand_computation() {
        let device = Device::flex();
        let mut s = spec(2, true);
        s.in_atoms = 1;
        s.kernel = 1;
        let mut layer = ConvCaps3d::new(s, &mut InitRng::new(0), &device);
        // Votes = w · atom with w = [1, 0, 0, 1] (out caps 0: (1, 0); out caps 1: (0, 1)).
        layer.votes.weight = Param::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [4, 1, 1, 1, 1]),
            &device,
        );
        layer.bias = constant([2, 2], 0.0, &device);
        let x = Tensor::<6>::from_data(
            TensorData::new(vec![2.0f32, -1.0], [1, 2, 1, 1, 1, 1]),
            &device,
        );
        let out = layer.forward(x).into_data().try_to_vec::<f32>().unwrap();

        // votes u[i][j] (input i, output j): i=0 atom 2: u00=(2,0), u01=(0,2); i=1 atom -1:
        // u10=(-1,0), u11=(0,-1).
        let u = [[[2.0f32, 0.0], [0.0, 2.0]], [[-1.0, 0.0], [0.0, -1.0]]];
        let squash = |s: [f32; 2]| {
            let n2 = s[0] * s[0] + s[1] * s[1];
            let k = n2 / (1.0 + n2) / (n2 + 1e-8).sqrt();
            [s[0] * k, s[1] * k]
        };
        let mut b = [[0.0f32; 2]; 2];
        let mut v = [[0.0f32; 2]; 2];
        for it in 0..2 {
            for j in 0..2 {
                let mut s = [0.0f32; 2];
                for i in 0..2 {
                    let c = b[i][j].exp() / (b[i][0].exp() + b[i][1].exp());
                    s[0] += c * u[i][j][0];
                    s[1] += c * u[i][j][1];
                }
                v[j] = squash(s);
            }
            if it == 0 {
                for i in 0..2 {
                    for j in 0..2 {
                        b[i][j] += u[i][j][0] * v[j][0] + u[i][j][1] * v[j][1];
                    }
                }
            }
        }
        let want = [v[0][0], v[0][1], v[1][0], v[1][1]];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{out:?} vs {want:?}");
        }
    }

    /// Gradients of a 3-iteration routing layer (w.r.t. input, vote weights and bias) agree with
    /// central finite differences.
    #[test]
    fn gradient_matches_finite_differences() {
        use rand::{Rng, SeedableRng};
        let plain = Device::flex();
        let ad = plain.clone().autodiff();
        let mut s = spec(3, true);
        s.stride = 2;
        let layer = ConvCaps3d::new(s, &mut InitRng::new(3), &ad);
        let x_shape = [1, 2, 3, 4, 4, 4];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n_x: usize = x_shape.iter().product();
        let x_vals: Vec<f32> = (0..n_x).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let out_shape = [1, 2, 2, 2, 2, 2];
        let proj: Vec<f32> = (0..32).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let loss_of = |layer: &ConvCaps3d, x: Vec<f32>, device: &Device| -> Tensor<1> {
            let x = Tensor::<6>::from_data(TensorData::new(x, x_shape), device);
            let p = Tensor::<6>::from_data(TensorData::new(proj.clone(), out_shape), device);
            (layer.forward(x) * p).sum()
        };
        let scalar = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap()[0] as f64;

        // Analytic gradients.
        let x =
            Tensor::<6>::from_data(TensorData::new(x_vals.clone(), x_shape), &ad).require_grad();
        let p = Tensor::<6>::from_data(TensorData::new(proj.clone(), out_shape), &ad);
        let grads = (layer.forward(x.clone()) * p).sum().backward();
        let gx = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let gw = layer
            .votes
            .weight
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let gb = layer
            .bias
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();

        let base = layer.valid();
        let eps = 1e-2f32;
        let check = |name: &str, i: usize, analytic: f32, plus: f64, minus: f64| {
            let fd = (plus - minus) / (2.0 * eps as f64);
            let err = (fd - analytic as f64).abs();
            assert!(
                err <= 2e-3 + 2e-2 * fd.abs(),
                "{name}[{i}]: analytic {analytic}, finite difference {fd}"
            );
        };
        let mut nonzero = 0;
        for i in (0..n_x).step_by(23) {
            let mut xp = x_vals.clone();
            xp[i] += eps;
            let mut xm = x_vals.clone();
            xm[i] -= eps;
            let plus = scalar(loss_of(&base, xp, &plain));
            let minus = scalar(loss_of(&base, xm, &plain));
            check("input", i, gx[i], plus, minus);
            nonzero += (gx[i].abs() > 1e-4) as usize;
        }
        let w_vals = base
            .votes
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let w_shape: [usize; 5] = base.votes.weight.dims();
        for i in (0..w_vals.len()).step_by(37) {
            let with = |delta: f32| {
                let mut w = w_vals.clone();
                w[i] += delta;
                let mut l = base.clone();
                l.votes.weight = Param::from_data(TensorData::new(w, w_shape), &plain);
                scalar(loss_of(&l, x_vals.clone(), &plain))
            };
            check("vote weight", i, gw[i], with(eps), with(-eps));
            nonzero += (gw[i].abs() > 1e-4) as usize;
        }
        for i in 0..4 {
            let with = |delta: f32| {
                let mut b = vec![0.1f32; 4];
                b[i] += delta;
                let mut l = base.clone();
                l.bias = Param::from_data(TensorData::new(b, [2, 2]), &plain);
                scalar(loss_of(&l, x_vals.clone(), &plain))
            };
            check("bias", i, gb[i], with(eps), with(-eps));
        }
        assert!(nonzero > 10, "too few non-zero gradients to be a test");
    }

    /// The fused routing (flex, f32) gives the values and gradients (input, vote weights, bias)
    /// of the tensor-operation routing, on odd map sizes (not a multiple of the 16-voxel tile),
    /// strides 1 and 2, batch 1 and 2, 1 to 3 iterations, shared and per-capsule votes.
    #[test]
    fn fused_routing_matches_tensor_routing() {
        use rand::{Rng, SeedableRng};
        let device = Device::flex().autodiff();
        let cases = [
            // (spec, input shape)
            (
                ConvCapsSpec {
                    in_caps: 3,
                    in_atoms: 4,
                    out_caps: 4,
                    out_atoms: 3,
                    kernel: 3,
                    stride: 1,
                    routings: 3,
                    shared: true,
                },
                [2, 3, 4, 5, 3, 7],
            ),
            (
                ConvCapsSpec {
                    in_caps: 2,
                    in_atoms: 3,
                    out_caps: 3,
                    out_atoms: 5,
                    kernel: 3,
                    stride: 2,
                    routings: 2,
                    shared: false,
                },
                [1, 2, 3, 6, 5, 9],
            ),
            (
                ConvCapsSpec {
                    in_caps: 1,
                    in_atoms: 6,
                    out_caps: 5,
                    out_atoms: 2,
                    kernel: 1,
                    stride: 1,
                    routings: 1,
                    shared: true,
                },
                [2, 1, 6, 4, 4, 3],
            ),
        ];
        for (n, (spec, shape)) in cases.into_iter().enumerate() {
            let layer = ConvCaps3d::new(spec, &mut InitRng::new(n as u64), &device);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(40 + n as u64);
            let count: usize = shape.iter().product();
            let x_vals: Vec<f32> = (0..count).map(|_| rng.gen_range(-2.0..2.0)).collect();
            let run = |fused: bool| {
                let x = Tensor::<6>::from_data(TensorData::new(x_vals.clone(), shape), &device)
                    .require_grad();
                let out = if fused {
                    layer.forward(x.clone())
                } else {
                    layer.route(layer.votes(x.clone()))
                };
                let mut prng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
                let m: usize = out.dims().iter().product();
                let p: Vec<f32> = (0..m).map(|_| prng.gen_range(-1.0..1.0)).collect();
                let p = Tensor::<6>::from_data(TensorData::new(p, out.dims()), &device);
                let grads = (out.clone() * p).sum().backward();
                let v = |t: Tensor<6>| t.into_data().try_to_vec::<f32>().unwrap();
                let g = |t: Option<Vec<f32>>| t.unwrap();
                (
                    v(out),
                    g(x.grad(&grads)
                        .map(|t| t.into_data().try_to_vec::<f32>().unwrap())),
                    g(layer
                        .votes
                        .weight
                        .grad(&grads)
                        .map(|t| t.into_data().try_to_vec::<f32>().unwrap())),
                    g(layer
                        .bias
                        .grad(&grads)
                        .map(|t| t.into_data().try_to_vec::<f32>().unwrap())),
                )
            };
            let fused = run(true);
            let plain = run(false);
            let close = |what: &str, a: &[f32], b: &[f32]| {
                assert_eq!(a.len(), b.len(), "{what}");
                let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-4 * scale.max(1.0),
                        "case {n} {what}[{i}]: fused {x}, tensor ops {y}"
                    );
                }
                assert!(scale > 0.0, "case {n} {what}: all zero");
            };
            close("output", &fused.0, &plain.0);
            close("input gradient", &fused.1, &plain.1);
            close("weight gradient", &fused.2, &plain.2);
            close("bias gradient", &fused.3, &plain.3);
        }
    }
}
