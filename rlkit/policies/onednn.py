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
