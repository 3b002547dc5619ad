"""Network helpers: activations by name, initialisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) = 2 sigmoid(2x) - 1, with the usual ``1 - y^2`` gradient.

    Some CPU builds of torch ship a slow scalar ``tanh`` kernel (measured 5-10x slower than
    ``sigmoid`` on 256x64 inputs); this identity runs on the vectorised sigmoid kernel instead.
    Max deviation from ``torch.tanh`` is ~2e-7.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class Tanh(nn.Module):
    """Drop-in ``nn.Tanh`` that uses the faster sigmoid identity for large CPU batches in eager
    mode (small inputs are dominated by call overhead, where plain ``torch.tanh`` wins).

    On other devices, under tracing/export (ONNX, torch.export) and under ``torch.compile`` it
    is plain ``torch.tanh``, so exported graphs contain the standard operator.
    """

    #: inputs with fewer elements use ``torch.tanh`` directly.
    min_numel: int = 4096

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.numel() >= self.min_numel
            and x.device.type == "cpu"
            and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
            and not torch.onnx.is_in_onnx_export()
        ):
            out: Tensor = _SigmoidTanh.apply(x)
            return out
        return torch.tanh(x)


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def activation_class(name: str) -> type[nn.Module]:
    """Activation module class by name (``tanh``, ``relu``, ``elu``, ``gelu``, ...)."""
    try:
        return _ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


def orthogonal_init(module: nn.Module, gain: float = 2**0.5, bias: float = 0.0) -> nn.Module:
    """Orthogonal weights and constant bias for Linear/Conv layers (the PPO convention)."""
    weight = getattr(module, "weight", None)
    if isinstance(weight, nn.Parameter):
        nn.init.orthogonal_(weight, gain=gain)
    b = getattr(module, "bias", None)
    if isinstance(b, nn.Parameter):
        nn.init.constant_(b, bias)
    return module
