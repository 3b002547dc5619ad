"""The ``fast`` backend's ReLU MLP kernel: a whole MLP (or an ensemble of them) as one autograd
node with its backward written out by hand.

Why: an off-policy update on small networks spends as much time in per-operation overhead
(autograd nodes, views, dispatch) as in its matrix products. One node per MLP keeps the
products (``addmm`` / ``baddbmm``, the BLAS torch was built with) and drops the rest: the
forward keeps each layer's input, the backward is a few products per layer. Everything here is
public torch; results equal the layer-by-layer autograd path to float tolerance
(``tests/test_mlp_kernel.py``).

Layouts: ``"linear"`` (weights ``[out, in]``, biases ``[out]``, as ``nn.Linear``) and
``"ensemble"`` (``E`` members: weights ``[E, in, out]``, biases ``[E, 1, out]``, as
:class:`~rlkit.policies.ensemble.EnsembleLinear`; the input is ``[B, in]`` shared by every
member or ``[E, B, in]``). Hidden layers are ReLU, the output layer is linear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from rlkit.backends.torch_private import relu_backward

LAYOUTS = ("linear", "ensemble")


def mlp_forward(
    layout: str, x: Tensor, params: Sequence[Tensor], keep: bool = False
) -> tuple[Tensor, list[Tensor]]:
    """The MLP's output and (with ``keep``) every layer's input, without an autograd graph."""
    ensemble = layout == "ensemble"
    depth = len(params) // 2
    inputs: list[Tensor] = []
    h = x
    with torch.no_grad():
        for i in range(depth):
            if keep:
                inputs.append(h)
            weight, bias = params[2 * i], params[2 * i + 1]
            if ensemble:
                if h.dim() == 2:  # one input for every member: no broadcast copy of it
                    out = h.new_empty(weight.shape[0], h.shape[0], weight.shape[2])
                    for e in range(weight.shape[0]):
                        torch.addmm(bias[e], h, weight[e], out=out[e])
                    h = out
                else:
                    h = torch.baddbmm(bias, h, weight)
            else:
                h = torch.addmm(bias, h, weight.t())
            if i < depth - 1:
                h = torch.relu_(h)
    return h, inputs


def mlp_backward(
    layout: str,
    inputs: list[Tensor],
    params: Sequence[Tensor],
    grad_out: Tensor,
    need_params: Sequence[bool],
    need_x: bool,
) -> tuple[Tensor | None, list[Tensor | None]]:
    """Gradients of ``sum(grad_out * output)`` with respect to the input (if ``need_x``) and
    to each parameter flagged in ``need_params``, given :func:`mlp_forward`'s ``inputs``."""
    ensemble = layout == "ensemble"
    depth = len(params) // 2
    grads: list[Tensor | None] = [None] * len(params)
    g = grad_out
    grad_x: Tensor | None = None
    with torch.no_grad():
        for i in range(depth - 1, -1, -1):
            h_in, weight = inputs[i], params[2 * i]
            shared = ensemble and h_in.dim() == 2
            if need_params[2 * i]:
                if not ensemble:
                    grads[2 * i] = torch.mm(g.t(), h_in)  # [out, in]
                elif shared:
                    grad_w = torch.empty_like(weight)  # [E, in, out], no broadcast copies
                    for e in range(weight.shape[0]):
                        torch.mm(h_in.t(), g[e], out=grad_w[e])
                    grads[2 * i] = grad_w
                else:
                    grads[2 * i] = torch.bmm(h_in.transpose(1, 2), g)
            if need_params[2 * i + 1]:
                grads[2 * i + 1] = g.sum(0) if not ensemble else g.sum(1, keepdim=True)
            if i == 0 and not need_x:
                break
            if not ensemble:
                g_in = torch.mm(g, weight)
            elif shared:  # the members' input gradients add up
                g_in = torch.mm(g[0], weight[0].t())
                for e in range(1, weight.shape[0]):
                    g_in.addmm_(g[e], weight[e].t())
            else:
                g_in = torch.bmm(g, weight.transpose(1, 2))
            if i == 0:
                grad_x = g_in
                break
            g = relu_backward(g_in, h_in)  # h_in is the ReLU output below
    return grad_x, grads


class _MLPNode(torch.autograd.Function):
    """One autograd node for a whole ReLU MLP (see the module doc)."""

    @staticmethod
    def forward(ctx: Any, layout: str, x: Tensor, *params: Tensor) -> Tensor:
        out, inputs = mlp_forward(layout, x, params, keep=True)
        ctx.layout = layout
        ctx.inputs = inputs
        ctx.params = params
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        need = ctx.needs_input_grad
        grad_x, grads = mlp_backward(
            ctx.layout, ctx.inputs, ctx.params, grad_out.contiguous(), need[2:], need[1]
        )
        ctx.inputs = ctx.params = None
        return (None, grad_x, *grads)


def fused_mlp(layout: str, x: Tensor, params: Sequence[Tensor]) -> Tensor:
    """Run a ReLU MLP through the kernel: one autograd node when a gradient is needed, a plain
    forward otherwise (targets, acting)."""
    if layout not in LAYOUTS:
        raise ValueError(f"fused_mlp: layout must be one of {LAYOUTS}, got {layout!r}")
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        out: Tensor = _MLPNode.apply(layout, x, *params)
        return out
    return mlp_forward(layout, x, params)[0]


__all__ = ["LAYOUTS", "fused_mlp", "mlp_backward", "mlp_forward"]
