"""Linear layers on oneDNN's float32 matrix multiply, with their gradients.

Why: on CPUs with AVX-512 where PyTorch's default BLAS (MKL) runs its AVX2 kernels (AMD EPYC,
for one), oneDNN's float32 GEMM is about twice as fast for the 256-wide layers of SAC/TD3/DQN
(measured: 180 us against 360 us for a 256x256x256 product on one core). PyTorch exposes that
kernel as ``torch.ops.mkldnn._linear_pointwise`` (the op its inductor compiler emits for CPU
linear layers); it computes ``x @ weight.T + bias`` in IEEE float32, optionally followed by a
ReLU, and accepts strided (transposed) operands, so the backward pass is two more calls.

Everything here falls back to the ordinary kernels when the op is missing or disagrees with
``F.linear`` on a probe, off the CPU, for other dtypes, for small products (below
:data:`MIN_MACS` multiply-adds the call overhead wins), and while tracing, exporting or
compiling (exported graphs contain only standard operators).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

#: smallest product (batch x in x out multiply-adds) worth the oneDNN call.
MIN_MACS = 1 << 21


@functools.cache
def available() -> bool:
    """Whether ``torch.ops.mkldnn._linear_pointwise`` exists and matches ``F.linear``."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        gen = torch.Generator().manual_seed(0)
        x, w, b, y = (torch.randn(s, generator=gen) for s in ((5, 3), (4, 3), (4,), (5, 2)))
        checks = (
            (op(x, w, b, "none", [], ""), F.linear(x, w, b)),
            (op(x, w, None, "relu", [], ""), torch.relu(F.linear(x, w))),
            (op(x.t(), y.t(), None, "none", [], ""), x.t() @ y),  # strided operands
        )
        return all(torch.allclose(got, want, atol=1e-5) for got, want in checks)
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False


def eligible(x: Tensor, macs: int) -> bool:
    """Whether a product of ``macs`` multiply-adds on ``x`` should take the oneDNN path."""
    # tracing checks first: under torch.export a shape test would add a guard
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return x.device.type == "cpu" and x.dtype == torch.float32 and macs >= MIN_MACS and available()


def _mm(a: Tensor, b_t: Tensor, bias: Tensor | None = None, relu: bool = False) -> Tensor:
    """``a @ b_t.T (+ bias)`` (then ReLU) on oneDNN."""
    out: Tensor = torch.ops.mkldnn._linear_pointwise(
        a, b_t, bias, "relu" if relu else "none", [], ""
    )
    return out


class _Linear(torch.autograd.Function):
    """``relu?(x @ weight.T + bias)`` with ``weight`` in ``nn.Linear`` layout ``[out, in]``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
        y = _mm(x, weight, bias, relu)
        ctx.relu = relu
        ctx.save_for_backward(x, weight, y if relu else None)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, y = ctx.saved_tensors
        if ctx.relu:
            grad = torch.ops.aten.threshold_backward(grad, y, 0.0)
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        grad_x = _mm(grad, weight.t()) if need_x else None
        grad_w = _mm(grad.t(), x.t()) if need_w else None
        grad_b = grad.sum(0) if need_b else None
        return grad_x, grad_w, grad_b, None


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool = False) -> Tensor:
    """``F.linear`` (then ReLU when ``relu``) on oneDNN when :func:`eligible`, else the usual
    kernels. ``x`` is ``[B, in]``, ``weight`` ``[out, in]``."""
    if x.dim() == 2 and eligible(x, x.shape[0] * weight.shape[0] * weight.shape[1]):
        out: Tensor = _Linear.apply(x, weight, bias, relu)
        return out
    y = F.linear(x, weight, bias)
    return torch.relu_(y) if relu else y


class _EnsembleLinear(torch.autograd.Function):
    """``relu?(x_e @ weight[e] + bias[e])`` for each member ``e``: ``weight [E, in, out]``,
    ``bias [E, 1, out]``, ``x`` ``[B, in]`` (shared) or ``[E, B, in]``; output ``[E, B, out]``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, relu: bool) -> Tensor:
        shared = x.dim() == 2
        y = torch.stack(
            [
                _mm(x if shared else x[e], weight[e].t(), bias[e, 0], relu)
                for e in range(weight.shape[0])
            ]
        )
        ctx.relu, ctx.shared = relu, shared
        ctx.save_for_backward(x, weight, y if relu else None)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, y = ctx.saved_tensors
        if ctx.relu:
            grad = torch.ops.aten.threshold_backward(grad, y, 0.0)
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        members = range(weight.shape[0])
        grad_x = grad_w = grad_b = None
        if need_x:
            parts = [_mm(grad[e], weight[e]) for e in members]
            grad_x = torch.stack(parts).sum(0) if ctx.shared else torch.stack(parts)
        if need_w:
            inputs = [x if ctx.shared else x[e] for e in members]
            grad_w = torch.stack([_mm(inputs[e].t(), grad[e].t()) for e in members])
        if need_b:
            grad_b = grad.sum(1, keepdim=True)
        return grad_x, grad_w, grad_b, None


def ensemble_linear(x: Tensor, weight: Tensor, bias: Tensor, relu: bool = False) -> Tensor:
    """Batched member-wise affine layer (see :class:`~rlkit.policies.ensemble.EnsembleLinear`)
    on oneDNN when :func:`eligible`, else one ``torch.baddbmm``."""
    members, fan_in, fan_out = weight.shape
    if eligible(x, x.shape[-2] * fan_in * fan_out):
        out: Tensor = _EnsembleLinear.apply(x, weight, bias, relu)
        return out
    if x.dim() == 2:
        x = x.expand(members, *x.shape)
    y = torch.baddbmm(bias, x, weight)
    return torch.relu_(y) if relu else y


def matmul_t(a: Tensor, b_t: Tensor) -> Tensor:
    """``a @ b_t.T`` without autograd, on oneDNN when :func:`eligible` (for hand-written
    backward passes)."""
    if eligible(a, a.shape[0] * a.shape[1] * b_t.shape[0]):
        return _mm(a, b_t)
    return a @ b_t.t()


def _affine(x: Tensor, weight_t: Tensor, bias: Tensor, relu: bool) -> Tensor:
    """``relu?(x @ weight_t.T + bias)`` without autograd, oneDNN for large products."""
    if eligible(x, x.shape[0] * weight_t.shape[0] * weight_t.shape[1]):
        return _mm(x, weight_t, bias, relu)
    y = torch.addmm(bias, x, weight_t.t())
    return torch.relu_(y) if relu else y


class _FusedMLP(torch.autograd.Function):
    """``E`` ReLU MLPs (``E = 1`` for a plain stack) as one autograd node.

    ``layout`` is ``"linear"`` (one member; weights ``[out, in]`` and biases ``[out]`` as in
    ``nn.Linear``) or ``"ensemble"`` (weights ``[E, in, out]``, biases ``[E, 1, out]``). The
    forward keeps every layer's input, the backward applies the chain rule by hand: a few
    matrix products per layer and member, no graph of dozens of small nodes, and no stacked
    intermediate activations (only the last layer's outputs are stacked).
    """

    @staticmethod
    def run(
        layout: str, x: Tensor, params: tuple[Tensor, ...], keep: bool
    ) -> tuple[Tensor, list[list[Tensor]]]:
        """The forward pass; with ``keep``, each member's layer inputs (for the backward)."""
        weights, biases = params[0::2], params[1::2]
        ensemble = layout == "ensemble"
        members = weights[0].shape[0] if ensemble else 1
        shared = not ensemble or x.dim() == 2
        last = len(weights) - 1
        activations: list[list[Tensor]] = []
        outputs = []
        for e in range(members):
            h = x if shared else x[e]
            member_inputs = []
            for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
                if keep:
                    member_inputs.append(h)
                w_t, bias = (w[e].t(), b[e, 0]) if ensemble else (w, b)
                h = _affine(h, w_t, bias, relu=layer < last)
            activations.append(member_inputs)
            outputs.append(h)
        return (torch.stack(outputs) if ensemble else outputs[0]), activations

    @staticmethod
    def forward(ctx: Any, layout: str, x: Tensor, *params: Tensor) -> Tensor:
        out, activations = _FusedMLP.run(layout, x, params, keep=True)
        ctx.layout, ctx.shared = layout, layout != "ensemble" or x.dim() == 2
        ctx.activations = activations
        ctx.save_for_backward(*params)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        params = ctx.saved_tensors
        weights = params[0::2]
        ensemble = ctx.layout == "ensemble"
        need = ctx.needs_input_grad
        need_x = need[1]
        need_w = [need[2 + 2 * layer] for layer in range(len(weights))]
        need_b = [need[3 + 2 * layer] for layer in range(len(weights))]
        grads: list[Tensor | None] = [
            torch.empty_like(p) if flag else None for p, flag in zip(params, need[2:], strict=True)
        ]
        grad_x_parts = []
        for e, member_inputs in enumerate(ctx.activations):
            g = grad_out[e] if ensemble else grad_out
            for layer in range(len(weights) - 1, -1, -1):
                h_in, w = member_inputs[layer], weights[layer]
                w_e = w[e] if ensemble else w  # [in, out] (ensemble) or [out, in]
                if need_w[layer]:
                    grad_w = grads[2 * layer]
                    assert grad_w is not None
                    if ensemble:
                        grad_w[e] = matmul_t(h_in.t(), g.t())  # h^T g: [in, out]
                    else:
                        grad_w.copy_(matmul_t(g.t(), h_in.t()))  # g^T h: [out, in]
                if need_b[layer]:
                    grad_b = grads[2 * layer + 1]
                    assert grad_b is not None
                    if ensemble:
                        grad_b[e, 0] = g.sum(0)
                    else:
                        grad_b.copy_(g.sum(0))
                if layer == 0 and not need_x:
                    break
                g_in = matmul_t(g, w_e) if ensemble else matmul_t(g, w_e.t())
                if layer == 0:
                    grad_x_parts.append(g_in)
                else:  # h_in is the ReLU output of the layer below: positive where it passed
                    g = torch.ops.aten.threshold_backward(g_in, h_in, 0.0)
        grad_x = None
        if need_x:
            if not ctx.shared:
                grad_x = torch.stack(grad_x_parts)
            else:
                grad_x = grad_x_parts[0]
                for part in grad_x_parts[1:]:
                    grad_x = grad_x + part
        return (None, grad_x, *grads)


def fused_mlp(layout: str, x: Tensor, params: list[Tensor]) -> Tensor | None:
    """Run a ReLU MLP (``layout`` ``"linear"`` or ``"ensemble"``, see :class:`_FusedMLP`) as one
    autograd node with oneDNN products, or return None when the fast path does not apply
    (then the caller runs its layers one by one)."""
    weight = params[0] if len(params) < 3 else params[2]
    if layout == "ensemble":
        macs = x.shape[-2] * weight.shape[-2] * weight.shape[-1]
    else:
        macs = x.shape[0] * weight.shape[0] * weight.shape[1]
    if x.dim() not in (2, 3) or not eligible(x, macs):
        return None
    if not torch.is_grad_enabled() or not (
        x.requires_grad or any(p.requires_grad for p in params)
    ):  # nothing to differentiate (targets, acting): skip the autograd node
        return _FusedMLP.run(layout, x, tuple(params), keep=False)[0]
    out: Tensor = _FusedMLP.apply(layout, x, *params)
    return out
