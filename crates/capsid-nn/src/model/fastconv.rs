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
//! implemented for [`Flex`] (calls `capsid-conv` on the tensors' contiguous `f32` storage) and for
//! `Autodiff<B, C>` (a handwritten backward step that calls `B`'s extension backward ops and
//! registers gradients only for tracked parents). Tensors are `[batch, channels, z, y, x]`,
//! weights `[c_out, c_in / groups, kz, ky, kx]` (transposed: `[c_in, c_out / groups, kz, ky, kx]`).
//!
//! Switch: [`set_fast_conv`]`(false)` (the CLI's `capsid --conv burn`) turns the fast path off
//! for the whole process, so benchmarks can compare Burn's own operations.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    backend_extension, Autodiff, Backend, Dispatch, DispatchDevice, ExtensionType, Flex,
};
use burn::backend::{DType, TensorMetadata};
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::PaddingConfig3d;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Tensor, TensorData};
use capsid_conv::{Conv3dGeometry, ConvTranspose3dGeometry};
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
    /// flex (and autodiff over it) implement it; callers check [`on_flex_f32`] first.
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
    /// [`on_flex_f32`] first.
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

// ---------------------------------------------------------------------------------------------
// Flex: capsid-conv on contiguous f32 storage.

/// `t` as a contiguous `f32` tensor (a copy only when its layout is strided), or `None` when it
/// does not hold `f32`.
fn contiguous_f32(t: &FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    if t.as_slice::<f32>().is_some() {
        Some(t.clone())
    } else {
        Some(t.to_contiguous())
    }
}

/// The values of a tensor returned by [`contiguous_f32`], row-major.
fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("contiguous_f32 returns a contiguous f32 tensor")
}

/// A contiguous `f32` flex tensor of `shape` holding `values` (no copy).
fn flex_from_vec(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A 5-element shape as an array, or `None` for another rank.
fn dims5(t: &FlexTensor) -> Option<[usize; 5]> {
    let s = t.shape();
    (s.num_dims() == 5).then(|| s.dims::<5>())
}

/// The geometry of the convolution of `x` by `w` with `options`, or `None` when capsid-conv
/// cannot run it (other rank, asymmetric padding, inconsistent channels, empty output): the
/// caller then falls back to Burn's own operation (which reports the problem).
fn conv_geometry(
    x: &FlexTensor,
    w: &FlexTensor,
    options: &ConvOptions<3>,
) -> Option<Conv3dGeometry> {
    let [batch, c_in, d, h, wd] = dims5(x)?;
    let [c_out, c_in_g, kz, ky, kx] = dims5(w)?;
    if options.is_asymmetric() || c_in_g * options.groups != c_in {
        return None;
    }
    let g = Conv3dGeometry {
        batch,
        c_in,
        c_out,
        in_dhw: [d, h, wd],
        kernel: [kz, ky, kx],
        stride: options.stride,
        padding: options.padding_begin(),
        dilation: options.dilation,
        groups: options.groups,
    };
    g.validate().ok().map(|()| g)
}

/// The geometry of the transposed convolution of `x` by `w` with `options`, or `None` when
/// capsid-conv cannot run it.
fn conv_transpose_geometry(
    x: &FlexTensor,
    w: &FlexTensor,
    options: &ConvTransposeOptions<3>,
) -> Option<ConvTranspose3dGeometry> {
    let [batch, c_in, d, h, wd] = dims5(x)?;
    let [wc_in, c_out_g, kz, ky, kx] = dims5(w)?;
    if wc_in != c_in {
        return None;
    }
    let g = ConvTranspose3dGeometry {
        batch,
        c_in,
        c_out: c_out_g * options.groups,
        in_dhw: [d, h, wd],
        kernel: [kz, ky, kx],
        stride: options.stride,
        padding: options.padding,
        padding_out: options.padding_out,
        dilation: options.dilation,
        groups: options.groups,
    };
    g.validate().ok().map(|()| g)
}

/// Output shape `[B, C_out, z, y, x]` of a convolution geometry.
fn conv_out_shape(g: &Conv3dGeometry) -> Vec<usize> {
    let [d, h, w] = g.out_dhw();
    vec![g.batch, g.c_out, d, h, w]
}

/// Output shape `[B, C_out, z, y, x]` of a transposed-convolution geometry.
fn conv_transpose_out_shape(g: &ConvTranspose3dGeometry) -> Vec<usize> {
    let [d, h, w] = g.out_dhw();
    vec![g.batch, g.c_out, d, h, w]
}

/// True when `dy` has exactly `shape`.
fn has_shape(dy: &FlexTensor, shape: &[usize]) -> bool {
    dy.shape().as_slice() == shape
}

impl FastConvBackend for Flex {
    fn fast_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: ConvBias<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        let prepared = (|| {
            let g = conv_geometry(&x, &weight, &options)?;
            let xs = contiguous_f32(&x)?;
            let ws = contiguous_f32(&weight)?;
            let bs = match &bias {
                Some(b) if b.shape().as_slice() == [g.c_out] => Some(contiguous_f32(b)?),
                Some(_) => return None,
                None => None,
            };
            Some((g, xs, ws, bs))
        })();
        match prepared {
            Some((g, xs, ws, bs)) => {
                let y = capsid_conv::conv3d_forward(
                    &g,
                    values(&xs),
                    values(&ws),
                    bs.as_ref().map(values),
                );
                flex_from_vec(y, conv_out_shape(&g))
            }
            None => <Flex as ModuleOps<Flex>>::conv3d(x, weight, bias, options),
        }
    }

    fn fast_conv3d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        let prepared = (|| {
            let g = conv_geometry(&x, &weight, &options)?;
            if x.dtype() != DType::F32 || !has_shape(&output_grad, &conv_out_shape(&g)) {
                return None;
            }
            Some((g, contiguous_f32(&weight)?, contiguous_f32(&output_grad)?))
        })();
        match prepared {
            Some((g, ws, dys)) => {
                let dx = capsid_conv::conv3d_backward_data(&g, values(&dys), values(&ws));
                flex_from_vec(dx, x.shape().to_vec())
            }
            None => <Flex as ModuleOps<Flex>>::conv3d_x_backward(x, weight, output_grad, options),
        }
    }

    fn fast_conv3d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        let prepared = (|| {
            let g = conv_geometry(&x, &weight, &options)?;
            if weight.dtype() != DType::F32 || !has_shape(&output_grad, &conv_out_shape(&g)) {
                return None;
            }
            Some((g, contiguous_f32(&x)?, contiguous_f32(&output_grad)?))
        })();
        match prepared {
            Some((g, xs, dys)) => {
                let dw = capsid_conv::conv3d_backward_weight(&g, values(&xs), values(&dys));
                flex_from_vec(dw, weight.shape().to_vec())
            }
            None => {
                <Flex as ModuleOps<Flex>>::conv3d_weight_backward(x, weight, output_grad, options)
            }
        }
    }

    fn fast_conv3d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let prepared = (|| {
            let [batch, c_out, d, h, w] = dims5(&output_grad)?;
            if bias.dtype() != DType::F32 || bias.shape().as_slice() != [c_out] || batch == 0 {
                return None;
            }
            // Only the output geometry matters for the bias gradient: a 1×1×1 convolution
            // with the output's extent describes it.
            let g = Conv3dGeometry {
                batch,
                c_in: c_out,
                c_out,
                in_dhw: [d, h, w],
                kernel: [1, 1, 1],
                stride: [1, 1, 1],
                padding: [0, 0, 0],
                dilation: [1, 1, 1],
                groups: 1,
            };
            Some((g, contiguous_f32(&output_grad)?))
        })();
        match prepared {
            Some((g, dys)) => {
                let db = capsid_conv::conv3d_backward_bias(&g, values(&dys));
                flex_from_vec(db, vec![g.c_out])
            }
            None => <Flex as ModuleOps<Flex>>::conv3d_bias_backward(x, bias, output_grad),
        }
    }

    fn fast_conv_transpose3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: ConvBias<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        let prepared = (|| {
            let g = conv_transpose_geometry(&x, &weight, &options)?;
            let xs = contiguous_f32(&x)?;
            let ws = contiguous_f32(&weight)?;
            let bs = match &bias {
                Some(b) if b.shape().as_slice() == [g.c_out] => Some(contiguous_f32(b)?),
                Some(_) => return None,
                None => None,
            };
            Some((g, xs, ws, bs))
        })();
        match prepared {
            Some((g, xs, ws, bs)) => {
                let y = capsid_conv::conv_transpose3d_forward(
                    &g,
                    values(&xs),
                    values(&ws),
                    bs.as_ref().map(values),
                );
                flex_from_vec(y, conv_transpose_out_shape(&g))
            }
            None => <Flex as ModuleOps<Flex>>::conv_transpose3d(x, weight, bias, options),
        }
    }

    fn fast_conv_transpose3d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        let prepared = (|| {
            let g = conv_transpose_geometry(&x, &weight, &options)?;
            if x.dtype() != DType::F32 || !has_shape(&output_grad, &conv_transpose_out_shape(&g)) {
                return None;
            }
            Some((g, contiguous_f32(&weight)?, contiguous_f32(&output_grad)?))
        })();
        match prepared {
            Some((g, ws, dys)) => {
                let dx = capsid_conv::conv_transpose3d_backward_data(&g, values(&dys), values(&ws));
                flex_from_vec(dx, x.shape().to_vec())
            }
            None => {
                <Flex as ModuleOps<Flex>>::conv_transpose3d_x_backward(weight, output_grad, options)
            }
        }
    }

    fn fast_conv_transpose3d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        let prepared = (|| {
            let g = conv_transpose_geometry(&x, &weight, &options)?;
            if weight.dtype() != DType::F32
                || !has_shape(&output_grad, &conv_transpose_out_shape(&g))
            {
                return None;
            }
            Some((g, contiguous_f32(&x)?, contiguous_f32(&output_grad)?))
        })();
        match prepared {
            Some((g, xs, dys)) => {
                let dw =
                    capsid_conv::conv_transpose3d_backward_weight(&g, values(&xs), values(&dys));
                flex_from_vec(dw, weight.shape().to_vec())
            }
            None => <Flex as ModuleOps<Flex>>::conv_transpose3d_weight_backward(
                x,
                weight,
                output_grad,
                options,
            ),
        }
    }

    fn fast_conv_transpose3d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // Same reduction as for a convolution: the sum of the output gradient per channel.
        Self::fast_conv3d_bias_backward(x, bias, output_grad)
    }

    fn fast_max_pool3d_2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [b, c, d, h, w] = dims5(&x).expect("max-pool of a 5D tensor");
        let xs = contiguous_f32(&x).expect("max-pool of an f32 tensor");
        let y = capsid_conv::pool::max_pool3d_2_forward([d, h, w], values(&xs));
        let [od, oh, ow] = capsid_conv::pool::max_pool3d_2_out([d, h, w]);
        flex_from_vec(y, vec![b, c, od, oh, ow])
    }

    fn fast_max_pool3d_2_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [b, c, d, h, w] = dims5(&x).expect("max-pool of a 5D tensor");
        let xs = contiguous_f32(&x).expect("max-pool of an f32 tensor");
        let gs = contiguous_f32(&output_grad).expect("max-pool gradient in f32");
        let dx = capsid_conv::pool::max_pool3d_2_backward([d, h, w], values(&xs), values(&gs));
        flex_from_vec(dx, vec![b, c, d, h, w])
    }

    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let xs = contiguous_f32(&x).expect("tanh of an f32 tensor");
        let y = capsid_conv::activation::tanh_forward(values(&xs));
        flex_from_vec(y, x.shape().to_vec())
    }

    fn fast_tanh_backward(
        y: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let ys = contiguous_f32(&y).expect("tanh of an f32 tensor");
        let gs = contiguous_f32(&output_grad).expect("tanh gradient in f32");
        let dx = capsid_conv::activation::tanh_backward(values(&ys), values(&gs));
        flex_from_vec(dx, y.shape().to_vec())
    }

    fn fast_routing(
        votes: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        iters: usize,
    ) -> FloatTensor<Self> {
        let r = routing_sizes(&votes, iters);
        let us = contiguous_f32(&votes).expect("routing of f32 votes");
        let bs = contiguous_f32(&bias).expect("routing with an f32 bias");
        let v = capsid_conv::routing::routing_forward(&r, values(&us), values(&bs));
        flex_from_vec(v, vec![r.batch, r.out_caps, r.atoms, r.positions])
    }

    fn fast_routing_backward(
        votes: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        iters: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let r = routing_sizes(&votes, iters);
        let us = contiguous_f32(&votes).expect("routing of f32 votes");
        let bs = contiguous_f32(&bias).expect("routing with an f32 bias");
        let gs = contiguous_f32(&output_grad).expect("routing gradient in f32");
        let (gu, gb) =
            capsid_conv::routing::routing_backward(&r, values(&us), values(&bs), values(&gs));
        (
            flex_from_vec(gu, votes.shape().dims::<5>().to_vec()),
            flex_from_vec(gb, vec![r.out_caps, r.atoms]),
        )
    }
}

/// The routing sizes of votes `[B, in_caps, out_caps, atoms, positions]`.
fn routing_sizes(votes: &FlexTensor, iters: usize) -> capsid_conv::routing::Routing {
    let [batch, in_caps, out_caps, atoms, positions] = dims5(votes).expect("routing votes are 5D");
    capsid_conv::routing::Routing {
        batch,
        in_caps,
        out_caps,
        atoms,
        positions,
        iters,
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff: handwritten backward steps on top of the inner backend's extension operations.

/// Registers the gradients of a 3D convolution for the tracked parents (`None`: not tracked).
#[allow(clippy::too_many_arguments)]
fn conv3d_grads<B: FastConvBackend>(
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
    grad: FloatTensor<B>,
    [node_x, node_weight, node_bias]: [Option<NodeId>; 3],
    x_state: NodeId,
    weight_state: NodeId,
    bias_state: Option<NodeId>,
    options: ConvOptions<3>,
) {
    let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
    let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
    if let (Some(id), Some(bias_state)) = (node_bias, bias_state) {
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        let db = B::fast_conv3d_bias_backward(x.clone(), bias, grad.clone());
        grads.register::<B>(id, db);
    }
    if let Some(id) = node_weight {
        let dw = B::fast_conv3d_weight_backward(
            x.clone(),
            weight.clone(),
            grad.clone(),
            options.clone(),
        );
        grads.register::<B>(id, dw);
    }
    if let Some(id) = node_x {
        grads.register::<B>(id, B::fast_conv3d_x_backward(x, weight, grad, options));
    }
}

/// Registers the gradients of a transposed 3D convolution for the tracked parents.
#[allow(clippy::too_many_arguments)]
fn conv_transpose3d_grads<B: FastConvBackend>(
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
    grad: FloatTensor<B>,
    [node_x, node_weight, node_bias]: [Option<NodeId>; 3],
    x_state: NodeId,
    weight_state: NodeId,
    bias_state: Option<NodeId>,
    options: ConvTransposeOptions<3>,
) {
    let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
    let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
    if let (Some(id), Some(bias_state)) = (node_bias, bias_state) {
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        let db = B::fast_conv_transpose3d_bias_backward(x.clone(), bias, grad.clone());
        grads.register::<B>(id, db);
    }
    if let Some(id) = node_weight {
        let dw = B::fast_conv_transpose3d_weight_backward(
            x.clone(),
            weight.clone(),
            grad.clone(),
            options.clone(),
        );
        grads.register::<B>(id, dw);
    }
    if let Some(id) = node_x {
        grads.register::<B>(
            id,
            B::fast_conv_transpose3d_x_backward(x, weight, grad, options),
        );
    }
}

/// Backward step of the 2×2×2 max-pool (parent x; state: x's checkpoint).
#[derive(Debug)]
struct FastMaxPool3d2;

impl<B: FastConvBackend> Backward<B, 1> for FastMaxPool3d2 {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents.map(|p| p.map(|n| n.id));
        if let Some(id) = parent {
            let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(ops.state);
            grads.register::<B>(id, B::fast_max_pool3d_2_backward(x, grad));
        }
    }
}

/// Backward step of `tanh` (parent x; state: the output).
#[derive(Debug)]
struct FastTanh;

impl<B: FastConvBackend> Backward<B, 1> for FastTanh {
    type State = FloatTensor<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents.map(|p| p.map(|n| n.id));
        if let Some(id) = parent {
            grads.register::<B>(id, B::fast_tanh_backward(ops.state, grad));
        }
    }
}

/// Backward step of the capsule routing (parents votes, bias; state: their checkpoints and
/// the iteration count).
#[derive(Debug)]
struct FastRouting;

impl<B: FastConvBackend> Backward<B, 2> for FastRouting {
    type State = (NodeId, NodeId, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (votes, bias, iters) = ops.state;
        let [pu, pb] = ops.parents.map(|p| p.map(|n| n.id));
        if pu.is_none() && pb.is_none() {
            return;
        }
        let votes = checkpointer.retrieve_node_output::<FloatTensor<B>>(votes);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias);
        let (gu, gb) = B::fast_routing_backward(votes, bias, grad, iters);
        if let Some(id) = pu {
            grads.register::<B>(id, gu);
        }
        if let Some(id) = pb {
            grads.register::<B>(id, gb);
        }
    }
}

/// Backward step of a convolution with bias (parents x, weight, bias).
#[derive(Debug)]
struct FastConv3dWithBias;
/// Backward step of a convolution without bias (parents x, weight).
#[derive(Debug)]
struct FastConv3dNoBias;
/// Backward step of a transposed convolution with bias.
#[derive(Debug)]
struct FastConvTranspose3dWithBias;
/// Backward step of a transposed convolution without bias.
#[derive(Debug)]
struct FastConvTranspose3dNoBias;

impl<B: FastConvBackend> Backward<B, 3> for FastConv3dWithBias {
    type State = (NodeId, NodeId, NodeId, ConvOptions<3>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, b, options) = ops.state;
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        conv3d_grads::<B>(grads, checkpointer, grad, parents, x, w, Some(b), options);
    }
}

impl<B: FastConvBackend> Backward<B, 2> for FastConv3dNoBias {
    type State = (NodeId, NodeId, ConvOptions<3>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, options) = ops.state;
        let [px, pw] = ops.parents.map(|p| p.map(|n| n.id));
        conv3d_grads::<B>(
            grads,
            checkpointer,
            grad,
            [px, pw, None],
            x,
            w,
            None,
            options,
        );
    }
}

impl<B: FastConvBackend> Backward<B, 3> for FastConvTranspose3dWithBias {
    type State = (NodeId, NodeId, NodeId, ConvTransposeOptions<3>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, b, options) = ops.state;
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        conv_transpose3d_grads::<B>(grads, checkpointer, grad, parents, x, w, Some(b), options);
    }
}

impl<B: FastConvBackend> Backward<B, 2> for FastConvTranspose3dNoBias {
    type State = (NodeId, NodeId, ConvTransposeOptions<3>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, options) = ops.state;
        let [px, pw] = ops.parents.map(|p| p.map(|n| n.id));
        conv_transpose3d_grads::<B>(
            grads,
            checkpointer,
            grad,
            [px, pw, None],
            x,
            w,
            None,
            options,
        );
    }
}

impl<B: FastConvBackend, C: CheckpointStrategy> FastConvBackend for Autodiff<B, C> {
    fn fast_conv3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: ConvBias<Self>,
        options: ConvOptions<3>,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        match bias {
            Some(bias) => match FastConv3dWithBias
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (
                        prep.checkpoint(&x),
                        prep.checkpoint(&weight),
                        prep.checkpoint(&bias),
                        options.clone(),
                    );
                    let out = B::fast_conv3d(
                        x.into_primitive(),
                        weight.into_primitive(),
                        ConvBias::With(bias.into_primitive()),
                        options,
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::fast_conv3d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    ConvBias::With(bias.into_primitive()),
                    options,
                )),
            },
            None => match FastConv3dNoBias
                .prepare::<C>([x.node(), weight.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (
                        prep.checkpoint(&x),
                        prep.checkpoint(&weight),
                        options.clone(),
                    );
                    let out = B::fast_conv3d(
                        x.into_primitive(),
                        weight.into_primitive(),
                        ConvBias::Without,
                        options,
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::fast_conv3d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    ConvBias::Without,
                    options,
                )),
            },
        }
    }

    fn fast_conv_transpose3d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: ConvBias<Self>,
        options: ConvTransposeOptions<3>,
    ) -> FloatTensor<Self> {
        let bias = bias.into_option();
        match bias {
            Some(bias) => match FastConvTranspose3dWithBias
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (
                        prep.checkpoint(&x),
                        prep.checkpoint(&weight),
                        prep.checkpoint(&bias),
                        options.clone(),
                    );
                    let out = B::fast_conv_transpose3d(
                        x.into_primitive(),
                        weight.into_primitive(),
                        ConvBias::With(bias.into_primitive()),
                        options,
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::fast_conv_transpose3d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    ConvBias::With(bias.into_primitive()),
                    options,
                )),
            },
            None => match FastConvTranspose3dNoBias
                .prepare::<C>([x.node(), weight.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (
                        prep.checkpoint(&x),
                        prep.checkpoint(&weight),
                        options.clone(),
                    );
                    let out = B::fast_conv_transpose3d(
                        x.into_primitive(),
                        weight.into_primitive(),
                        ConvBias::Without,
                        options,
                    );
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::fast_conv_transpose3d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    ConvBias::Without,
                    options,
                )),
            },
        }
    }

    fn fast_max_pool3d_2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match FastMaxPool3d2
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                let out = B::fast_max_pool3d_2(x.into_primitive());
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_max_pool3d_2(x.into_primitive())),
        }
    }

    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match FastTanh.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fast_tanh(x.into_primitive());
                prep.finish(out.clone(), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_tanh(x.into_primitive())),
        }
    }

    fn fast_routing(
        votes: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        iters: usize,
    ) -> FloatTensor<Self> {
        match FastRouting
            .prepare::<C>([votes.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&votes), prep.checkpoint(&bias), iters);
                let out = B::fast_routing(votes.into_primitive(), bias.into_primitive(), iters);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_routing(
                votes.into_primitive(),
                bias.into_primitive(),
                iters,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::{self, ConvSpec, InitRng};
    use burn::tensor::{Device, TensorData};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A tensor of `shape` with values uniform in [-1, 1) drawn from `rng`.
    fn random<const D: usize>(
        rng: &mut ChaCha8Rng,
        shape: [usize; D],
        device: &Device,
    ) -> Tensor<D> {
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
}
