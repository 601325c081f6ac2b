//! The backend extension: [`FastConvBackend`] (Burn's `#[backend_extension]`, one operation per
//! fast kernel and backward pass, default bodies Burn's own operations) and [`ConvBias`], the
//! optional bias as an extension type. Tensors are `[batch, channels, z, y, x]`, weights
//! `[c_out, c_in / groups, kz, ky, kx]` (transposed: `[c_in, c_out / groups, kz, ky, kx]`).

use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, ExtensionType};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

/// The optional bias of a convolution (an extension type, as extension operations take no
/// `Option` of a tensor).
#[derive(ExtensionType)]
pub enum ConvBias<B: Backend> {
    /// A bias `[c_out]`.
    With(FloatTensor<B>),
    /// No bias.
    Without,
}

impl<B: Backend> ConvBias<B> {
    /// `Some(bias)` or `None`.
    pub fn into_option(self) -> Option<FloatTensor<B>> {
        match self {
            ConvBias::With(b) => Some(b),
            ConvBias::Without => None,
        }
    }

    /// [`ConvBias::With`] for `Some`, [`ConvBias::Without`] for `None`.
    pub fn from_option(bias: Option<FloatTensor<B>>) -> Self {
        bias.map_or(ConvBias::Without, ConvBias::With)
    }
}

/// Backend extension with fast 3D convolutions and their backward passes.
///
/// The default bodies are Burn's own operations, so a backend only overrides what it speeds
/// up; the `Autodiff` implementation overrides the two forward operations with a handwritten
/// backward step built from the backward operations of the inner backend.
#[backend_extension(Flex, Autodiff)]
pub trait FastConvBackend: Backend {
    /// 3D convolution (as [`ModuleOps::conv3d`]).
    fn fast_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        #[extension_type] bias: ConvBias<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv3d(x, weight, bias.into_option(), options)
    }

    /// Gradient of a 3D convolution with respect to its input `x`.
    fn fast_conv3d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv3d_x_backward(x, weight, output_grad, options)
    }

    /// Gradient of a 3D convolution with respect to its weight.
    fn fast_conv3d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv3d_weight_backward(x, weight, output_grad, options)
    }

    /// Gradient of a 3D convolution with respect to its bias.
    fn fast_conv3d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv3d_bias_backward(x, bias, output_grad)
    }

    /// Transposed 3D convolution (as [`ModuleOps::conv_transpose3d`]).
    fn fast_conv_transpose3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        #[extension_type] bias: ConvBias<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv_transpose3d(x, weight, bias.into_option(), options)
    }

    /// Gradient of a transposed 3D convolution with respect to its input `x` (`x` gives the
    /// input shape).
    fn fast_conv_transpose3d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        let _ = x;
        <Self as ModuleOps<Self>>::conv_transpose3d_x_backward(weight, output_grad, options)
    }

    /// Gradient of a transposed 3D convolution with respect to its weight.
    fn fast_conv_transpose3d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv_transpose3d_weight_backward(x, weight, output_grad, options)
    }

    /// Gradient of a transposed 3D convolution with respect to its bias.
    fn fast_conv_transpose3d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv_transpose3d_bias_backward(x, bias, output_grad)
    }

    /// 2×2×2 max-pooling with stride 2 of `[B, C, z, y, x]` (sizes halved, rounded down). Only
    /// flex (and autodiff over it) implement it; callers check
    /// [`on_flex_f32`](super::on_flex_f32) first.
    fn fast_max_pool3d_2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let _ = x;
        unreachable!("fast_max_pool3d_2 runs on the flex backend only")
    }

    /// Gradient of [`FastConvBackend::fast_max_pool3d_2`] with respect to its input `x`.
    fn fast_max_pool3d_2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let _ = (x, output_grad);
        unreachable!("fast_max_pool3d_2 runs on the flex backend only")
    }

    /// Dynamic routing of capsule votes `[B, in_caps, out_caps, atoms, positions]` with bias
    /// `[out_caps, atoms]` over `iters` iterations, to `[B, out_caps, atoms, positions]`
    /// (`capsid_conv::routing`). Flex (and autodiff over it) only; callers check
    /// [`on_flex_f32`](super::on_flex_f32) first.
    fn fast_routing(
        votes: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        iters: usize,
    ) -> FloatTensor<Self> {
        let _ = (votes, bias, iters);
        unreachable!("fast_routing runs on the flex backend only")
    }

    /// Gradients `(votes, bias)` of [`FastConvBackend::fast_routing`].
    fn fast_routing_backward(
        votes: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        iters: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let _ = (votes, bias, output_grad, iters);
        unreachable!("fast_routing runs on the flex backend only")
    }

    /// `tanh` element-wise (`capsid_conv::activation`). Flex (and autodiff over it) only.
    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let _ = x;
        unreachable!("fast_tanh runs on the flex backend only")
    }

    /// Gradient of [`FastConvBackend::fast_tanh`] from its output `y`: `grad · (1 − y²)`.
    fn fast_tanh_backward(
        y: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let _ = (y, output_grad);
        unreachable!("fast_tanh runs on the flex backend only")
    }
}
