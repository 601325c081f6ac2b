//! The non-convolution operations on tensors: 2×2×2 max-pooling `[B, C, z, y, x]`, `tanh`
//! and fused capsule routing, each through [`FastConvBackend`].

use super::{fast_conv_enabled, on_flex_f32, FastConvBackend};
use burn::backend::Dispatch;
use burn::tensor::Tensor;

/// 2×2×2 max-pooling with stride 2 on tensors (the flex device only; see
/// [`FastConvBackend::fast_max_pool3d_2`]).
pub fn fast_max_pool3d_2(x: Tensor<5>) -> Tensor<5> {
    Tensor::from_dispatch(<Dispatch as FastConvBackend>::fast_max_pool3d_2(
        x.into_dispatch(),
    ))
}

/// `tanh` element-wise: capsid's vectorised kernel with its gradient on the flex device (`f32`,
/// fast path on), Burn's `tanh` elsewhere.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fast_conv_enabled() && on_flex_f32(&x) {
        return Tensor::from_dispatch(<Dispatch as FastConvBackend>::fast_tanh(x.into_dispatch()));
    }
    x.tanh()
}

/// Fused dynamic routing on tensors (the flex device only; see
/// [`FastConvBackend::fast_routing`]): votes `[B, in_caps, out_caps, atoms, positions]`, bias
/// `[out_caps, atoms]` → `[B, out_caps, atoms, positions]`.
pub fn fast_routing(votes: Tensor<5>, bias: Tensor<2>, iters: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FastConvBackend>::fast_routing(
        votes.into_dispatch(),
        bias.into_dispatch(),
        iters,
    ))
}
