//! Fast CPU 3D convolutions for the `flex` backend, wired into Burn as custom operations.
//!
//! The networks keep Burn's [`Conv3d`] / [`ConvTranspose3d`] modules as parameter holders (so
//! model files stay compatible) but run their forward passes through [`conv3d`] and
//! [`conv_transpose3d`] here. When the input lives on the `flex` device (with or without
//! autodiff), is `f32`, and the fast path is switched on, the convolution and its backward
//! passes (input, weight and bias gradients) run on the `capsid-conv` kernels; otherwise (GPU
//! backends, other dtypes, 'same' padding) the module's own `forward` runs unchanged.
//!
//! Mechanism: the [`FastConvBackend`] backend extension (Burn's `#[backend_extension]`),
//! implemented for [`Flex`](burn::backend::Flex) (calls `capsid-conv` on the tensors'
//! contiguous `f32` storage) and for `Autodiff<B, C>` (a handwritten backward step that calls
//! `B`'s extension backward ops and registers gradients only for tracked parents). Tensors are
//! `[batch, channels, z, y, x]`, weights `[c_out, c_in / groups, kz, ky, kx]` (transposed:
//! `[c_in, c_out / groups, kz, ky, kx]`).
//!
//! Switch: [`set_fast_conv`]`(false)` (the CLI's `capsid --conv burn`) turns the fast path off
//! for the whole process, so benchmarks can compare Burn's own operations.
//!
//! Layout: the switch and the convolutions on tensors here; the extension trait in `ext`, its
//! flex implementation in `flex`, its autodiff implementation (backward steps) in `autodiff`,
//! and max-pooling, `tanh` and routing on tensors in `ops`.

mod autodiff;
mod ext;
mod flex;
mod ops;

#[cfg(test)]
mod tests;

pub use ext::{ConvBias, FastConvBackend};
pub use ops::{fast_max_pool3d_2, fast_routing, tanh};

use burn::backend::DType;
use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::PaddingConfig3d;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::Tensor;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the fast path is on (the default).
static FAST: AtomicBool = AtomicBool::new(true);

/// Turns the fast path on or off for the whole process (every later call, any thread).
pub fn set_fast_conv(enabled: bool) {
    FAST.store(enabled, Ordering::Relaxed);
}

/// Whether [`conv3d`] / [`conv_transpose3d`] take the fast path on flex `f32` tensors.
pub fn fast_conv_enabled() -> bool {
    FAST.load(Ordering::Relaxed)
}

/// True when `x` lives on the flex device (autodiff or not) and holds `f32`.
pub(crate) fn on_flex_f32<const D: usize>(x: &Tensor<D>) -> bool {
    if x.dtype() != DType::F32 {
        return false;
    }
    let device = x.device();
    match device.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(inner) => matches!(**inner, DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Forward pass of `conv` on `x` `[B, C_in, z, y, x]`: the fast kernels on flex `f32` tensors
/// with explicit or valid padding, `conv.forward(x)` otherwise. Same result as `conv.forward`.
pub fn conv3d(conv: &Conv3d, x: Tensor<5>) -> Tensor<5> {
    let padding = match conv.padding {
        PaddingConfig3d::Explicit(d, h, w) => [d, h, w],
        PaddingConfig3d::Valid => [0, 0, 0],
        // 'Same' padding depends on the input size; Burn computes it (rarely used by capsid).
        _ => return conv.forward(x),
    };
    if !fast_conv_enabled() || !on_flex_f32(&x) {
        return conv.forward(x);
    }
    let options = ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups);
    fast_conv3d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// `conv(cat([a, b], 1))` (`a`, `b` `[B, C_a | C_b, z, y, x]`) without building the
/// concatenation: with the fast kernels the convolution is split along its input channels,
/// `conv(a, W[:, ..C_a]) + conv(b, W[:, C_a..]) + bias` (the same sum in another order), so
/// neither the concatenated tensor nor the split of its gradient is ever made. Elsewhere it
/// runs as written.
pub fn conv3d_of_cat(conv: &Conv3d, a: Tensor<5>, b: Tensor<5>) -> Tensor<5> {
    match conv.padding {
        PaddingConfig3d::Explicit(pz, py, px)
            if conv.groups == 1 && fast_conv_enabled() && on_flex_f32(&a) =>
        {
            let (ca, cb) = (a.dims()[1], b.dims()[1]);
            let w = conv.weight.val();
            let options = || ConvOptions::new(conv.stride, [pz, py, px], conv.dilation, 1);
            let bias = conv.bias.as_ref().map(|b| b.val());
            let ya = fast_conv3d(a, w.clone().narrow(1, 0, ca), bias, options());
            ya + fast_conv3d(b, w.narrow(1, ca, cb), None, options())
        }
        _ => conv3d(conv, Tensor::cat(vec![a, b], 1)),
    }
}

/// Forward pass of the transposed convolution `conv` on `x` `[B, C_in, z, y, x]`: the fast
/// kernels on flex `f32` tensors, `conv.forward(x)` otherwise. Same result as `conv.forward`.
pub fn conv_transpose3d(conv: &ConvTranspose3d, x: Tensor<5>) -> Tensor<5> {
    if !fast_conv_enabled() || !on_flex_f32(&x) {
        return conv.forward(x);
    }
    let options = ConvTransposeOptions::new(
        conv.stride,
        conv.padding,
        conv.padding_out,
        conv.dilation,
        conv.groups,
    );
    fast_conv_transpose3d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// The fast 3D convolution on tensors (the flex device only; panics on other backends, as
/// every backend extension does). Same contract as `burn::tensor::module::conv3d`.
pub fn fast_conv3d(
    x: Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<3>,
) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as FastConvBackend>::fast_conv3d(
        x.into_dispatch(),
        weight.into_dispatch(),
        ConvBias::from_option(bias.map(|b| b.into_dispatch())),
        options,
    ))
}

/// The fast transposed 3D convolution on tensors (the flex device only). Same contract as
/// `burn::tensor::module::conv_transpose3d`.
pub fn fast_conv_transpose3d(
    x: Tensor<5>,
    weight: Tensor<5>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<3>,
) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as FastConvBackend>::fast_conv_transpose3d(
        x.into_dispatch(),
        weight.into_dispatch(),
        ConvBias::from_option(bias.map(|b| b.into_dispatch())),
        options,
    ))
}
