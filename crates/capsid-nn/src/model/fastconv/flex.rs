//! The [`FastConvBackend`] implementation for [`Flex`]: the `capsid-conv` kernels on the
//! tensors' contiguous `f32` storage (convolutions, their backward passes, 2×2×2 max-pooling,
//! `tanh` and capsule routing), falling back to Burn's own operation where a convolution's
//! geometry is not one capsid-conv runs. Tensors are `[batch, channels, z, y, x]`.

use super::{ConvBias, FastConvBackend};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::backend::{DType, TensorMetadata};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::TensorData;
use capsid_conv::{Conv3dGeometry, ConvTranspose3dGeometry};

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
