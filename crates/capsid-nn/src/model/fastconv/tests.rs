//! Unit tests: the fast (transposed) convolutions and `tanh` against Burn's own operations
//! (forward values and autodiff gradients), the module wrappers and the flex `f32` detection.

use super::*;
use crate::model::init::{self, ConvSpec, InitRng};
use burn::tensor::{Device, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A tensor of `shape` with values uniform in [-1, 1) drawn from `rng`.
fn random<const D: usize>(rng: &mut ChaCha8Rng, shape: [usize; D], device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Max |got − want| ≤ 1e-4 · max(1, max |want|).
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "{what}: max difference {diff} (scale {scale})"
    );
}

/// One convolution to check: sizes in voxels, triples (z, y, x).
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    c_in: usize,
    c_out: usize,
    dhw: [usize; 3],
    kernel: [usize; 3],
    stride: [usize; 3],
    padding: [usize; 3],
    /// Output padding (transposed convolutions only).
    padding_out: [usize; 3],
    dilation: [usize; 3],
    groups: usize,
    bias: bool,
}

const BASE: Case = Case {
    batch: 2,
    c_in: 3,
    c_out: 4,
    dhw: [7, 5, 9],
    kernel: [3, 3, 3],
    stride: [1, 1, 1],
    padding: [1, 1, 1],
    padding_out: [0, 0, 0],
    dilation: [1, 1, 1],
    groups: 1,
    bias: true,
};

fn conv_cases() -> Vec<Case> {
    vec![
        BASE,
        // stride 2 on odd sizes, batch 1, one input channel
        Case {
            batch: 1,
            c_in: 1,
            c_out: 2,
            dhw: [6, 7, 5],
            stride: [2, 2, 2],
            ..BASE
        },
        // dilation 2, padding 2, groups 2, no bias
        Case {
            c_in: 4,
            c_out: 6,
            dhw: [8, 6, 7],
            padding: [2, 2, 2],
            dilation: [2, 2, 2],
            groups: 2,
            bias: false,
            ..BASE
        },
        // capsule-like grouped stride-2 vote convolution without padding
        Case {
            batch: 1,
            c_in: 8,
            c_out: 8,
            dhw: [5, 5, 5],
            stride: [2, 2, 2],
            padding: [0, 0, 0],
            groups: 4,
            ..BASE
        },
        // 1×1×1
        Case {
            c_in: 5,
            c_out: 3,
            dhw: [4, 6, 5],
            kernel: [1, 1, 1],
            padding: [0, 0, 0],
            ..BASE
        },
        // 2×2×2 (the UNet's up-convolutions after end padding)
        Case {
            batch: 1,
            c_in: 2,
            c_out: 3,
            dhw: [6, 6, 6],
            kernel: [2, 2, 2],
            padding: [0, 0, 0],
            ..BASE
        },
        // 5×5×5 feature convolution of 3D-UCaps, no bias
        Case {
            batch: 1,
            c_in: 1,
            c_out: 3,
            dhw: [9, 8, 7],
            kernel: [5, 5, 5],
            padding: [2, 2, 2],
            bias: false,
            ..BASE
        },
        // anisotropic everything
        Case {
            kernel: [3, 1, 2],
            stride: [1, 2, 1],
            padding: [1, 0, 1],
            dilation: [1, 1, 2],
            ..BASE
        },
    ]
}

fn transpose_cases() -> Vec<Case> {
    let t = Case {
        c_in: 6,
        c_out: 4,
        dhw: [3, 4, 5],
        kernel: [2, 2, 2],
        stride: [2, 2, 2],
        padding: [0, 0, 0],
        ..BASE
    };
    vec![
        // the networks' ×2 up-convolution
        t,
        // output padding, padding, groups
        Case {
            batch: 1,
            c_in: 4,
            c_out: 6,
            dhw: [3, 3, 4],
            kernel: [3, 3, 3],
            padding: [1, 1, 1],
            padding_out: [1, 1, 1],
            groups: 2,
            ..t
        },
        // stride 1, dilation 2, no bias
        Case {
            batch: 1,
            c_in: 2,
            c_out: 3,
            dhw: [4, 5, 3],
            kernel: [3, 3, 3],
            stride: [1, 1, 1],
            padding: [1, 1, 1],
            dilation: [2, 2, 2],
            bias: false,
            ..t
        },
        // anisotropic
        Case {
            c_in: 4,
            c_out: 4,
            dhw: [3, 3, 3],
            kernel: [2, 3, 1],
            stride: [2, 1, 3],
            padding: [0, 1, 0],
            padding_out: [1, 0, 2],
            ..t
        },
    ]
}

fn conv_options(c: &Case) -> ConvOptions<3> {
    ConvOptions::new(c.stride, c.padding, c.dilation, c.groups)
}

fn transpose_options(c: &Case) -> ConvTransposeOptions<3> {
    ConvTransposeOptions::new(c.stride, c.padding, c.padding_out, c.dilation, c.groups)
}

/// Random input, weight and bias of a case on `device`.
fn operands(
    c: &Case,
    transposed: bool,
    seed: u64,
    device: &Device,
) -> (Tensor<5>, Tensor<5>, Option<Tensor<1>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let [d, h, w] = c.dhw;
    let [kz, ky, kx] = c.kernel;
    let x = random(&mut rng, [c.batch, c.c_in, d, h, w], device);
    let wshape = if transposed {
        [c.c_in, c.c_out / c.groups, kz, ky, kx]
    } else {
        [c.c_out, c.c_in / c.groups, kz, ky, kx]
    };
    let weight = random(&mut rng, wshape, device);
    let bias = c.bias.then(|| random(&mut rng, [c.c_out], device));
    (x, weight, bias)
}

type ConvFn = fn(&Case, Tensor<5>, Tensor<5>, Option<Tensor<1>>) -> Tensor<5>;

fn fast_conv(c: &Case, x: Tensor<5>, w: Tensor<5>, b: Option<Tensor<1>>) -> Tensor<5> {
    fast_conv3d(x, w, b, conv_options(c))
}
fn burn_conv(c: &Case, x: Tensor<5>, w: Tensor<5>, b: Option<Tensor<1>>) -> Tensor<5> {
    burn::tensor::module::conv3d(x, w, b, conv_options(c))
}
fn fast_convt(c: &Case, x: Tensor<5>, w: Tensor<5>, b: Option<Tensor<1>>) -> Tensor<5> {
    fast_conv_transpose3d(x, w, b, transpose_options(c))
}
fn burn_convt(c: &Case, x: Tensor<5>, w: Tensor<5>, b: Option<Tensor<1>>) -> Tensor<5> {
    burn::tensor::module::conv_transpose3d(x, w, b, transpose_options(c))
}

/// Forward values on the plain flex device.
fn check_forward(c: &Case, transposed: bool, fast: ConvFn, reference: ConvFn) {
    let device = Device::flex();
    let (x, w, b) = operands(c, transposed, 1, &device);
    let got = fast(c, x.clone(), w.clone(), b.clone());
    let want = reference(c, x, w, b);
    assert_eq!(got.dims(), want.dims(), "{c:?}");
    assert_close(&values(got), &values(want), &format!("forward {c:?}"));
}

/// Gradients of `sum(conv(x, w, b) · p)` (p random) with respect to x, w and b through the
/// autodiff flex device.
fn gradients(c: &Case, transposed: bool, f: ConvFn) -> Vec<Vec<f32>> {
    let device = Device::flex().autodiff();
    let (x, w, b) = operands(c, transposed, 2, &device);
    let (x, w, b) = (
        x.require_grad(),
        w.require_grad(),
        b.map(|b| b.require_grad()),
    );
    let out = f(c, x.clone(), w.clone(), b.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let p = random(&mut rng, out.dims(), &device);
    let grads = (out * p).sum().backward();
    let mut all = vec![
        values(x.grad(&grads).unwrap()),
        values(w.grad(&grads).unwrap()),
    ];
    if let Some(b) = b {
        all.push(values(b.grad(&grads).unwrap()));
    }
    all
}

fn check_gradients(c: &Case, transposed: bool, fast: ConvFn, reference: ConvFn) {
    let got = gradients(c, transposed, fast);
    let want = gradients(c, transposed, reference);
    assert_eq!(got.len(), want.len());
    for (name, (g, w)) in ["dx", "dw", "dbias"].iter().zip(got.iter().zip(&want)) {
        assert_close(g, w, &format!("{name} {c:?}"));
    }
}

#[test]
fn conv3d_forward_matches_burn() {
    for c in conv_cases() {
        check_forward(&c, false, fast_conv, burn_conv);
    }
}

#[test]
fn conv3d_gradients_match_burn_autodiff() {
    for c in conv_cases() {
        check_gradients(&c, false, fast_conv, burn_conv);
    }
}

#[test]
fn conv_transpose3d_forward_matches_burn() {
    for c in transpose_cases() {
        check_forward(&c, true, fast_convt, burn_convt);
    }
}

#[test]
fn conv_transpose3d_gradients_match_burn_autodiff() {
    for c in transpose_cases() {
        check_gradients(&c, true, fast_convt, burn_convt);
    }
}

/// Only tracked parents get gradients; the forward value on the autodiff device is the
/// plain one.
#[test]
fn untracked_inputs_get_no_gradient() {
    let device = Device::flex().autodiff();
    let c = BASE;
    let (x, w, b) = operands(&c, false, 4, &device);
    let w = w.require_grad();
    let out = fast_conv(&c, x.clone(), w.clone(), b.clone());
    let want = burn_conv(&c, x.clone(), w.clone(), b.clone());
    assert_close(&values(out.clone()), &values(want), "autodiff forward");
    let grads = out.sum().backward();
    assert!(x.grad(&grads).is_none());
    assert!(b.unwrap().grad(&grads).is_none());
    assert!(w.grad(&grads).is_some());
}

/// The module wrappers give the modules' own results, with capsid's explicit padding and
/// with Burn's 'same' padding (which falls back to the module).
#[test]
fn module_wrappers_match_module_forward() {
    let device = Device::flex();
    let mut rng = InitRng::new(5);
    let mut data = ChaCha8Rng::seed_from_u64(6);
    let x = random(&mut data, [2, 3, 6, 5, 7], &device);
    let conv = init::conv3d(ConvSpec::same(3, 4, 3), &mut rng, &device);
    assert_close(
        &values(conv3d(&conv, x.clone())),
        &values(conv.forward(x.clone())),
        "conv3d wrapper",
    );
    let mut same = conv.clone();
    same.padding = PaddingConfig3d::Same;
    assert_close(
        &values(conv3d(&same, x.clone())),
        &values(same.forward(x.clone())),
        "conv3d wrapper, same padding",
    );
    let up = init::conv_transpose3d(3, 2, 2, &mut rng, &device);
    let y = conv_transpose3d(&up, x.clone());
    assert_eq!(y.dims(), [2, 2, 12, 10, 14]);
    assert_close(
        &values(y),
        &values(up.forward(x)),
        "conv_transpose3d wrapper",
    );
}

/// The vectorised tanh gives Burn's values and gradient on the autodiff device (an odd
/// element count, so the scalar tail runs too), and Burn's own op elsewhere.
#[test]
fn tanh_value_and_gradient_match_burn() {
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x0 = random(&mut rng, [3, 5, 7, 9, 11], &device).mul_scalar(4.0);
    let w = random(&mut rng, [3, 5, 7, 9, 11], &device);
    let run = |f: fn(Tensor<5>) -> Tensor<5>| {
        let x = x0.clone().detach().require_grad();
        let y = f(x.clone());
        let grads = (y.clone() * w.clone()).sum().backward();
        (values(y), values(x.grad(&grads).unwrap()))
    };
    let (fy, fdx) = run(tanh::<5>);
    let (by, bdx) = run(|x| x.tanh());
    for (a, b) in fy.iter().zip(&by) {
        assert!((a - b).abs() <= 3e-7, "tanh {a} vs {b}");
    }
    for (a, b) in fdx.iter().zip(&bdx) {
        assert!((a - b).abs() <= 2e-6, "gradient {a} vs {b}");
    }
}

#[test]
fn flex_f32_detection() {
    let x = Tensor::<1>::zeros([2], &Device::flex());
    assert!(on_flex_f32(&x));
    let x = Tensor::<1>::zeros([2], &Device::flex().autodiff());
    assert!(on_flex_f32(&x));
}
