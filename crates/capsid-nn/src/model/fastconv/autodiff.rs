//! The [`FastConvBackend`] implementation for `Autodiff<B, C>`: handwritten backward steps
//! (convolutions with and without bias, 2×2×2 max-pooling, `tanh`, capsule routing) that call
//! `B`'s extension backward operations and register gradients only for tracked parents.

use super::{ConvBias, FastConvBackend};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::Autodiff;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

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
