"""Optimizer construction with the fastest available implementation."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn


def adam(params: Iterable[nn.Parameter], lr: float, **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` using the fused kernel when every parameter supports it.

    The fused step runs all parameter updates in one kernel (3-4x faster than the loop for
    small networks on CPU); the maths is the same Adam. Falls back to the default otherwise.
    """
    params = [p for p in params if p.requires_grad]
    fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if fusable and "fused" not in kwargs and "foreach" not in kwargs:
        try:
            return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr, **kwargs)


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Move ``module``'s trainable parameters into one contiguous buffer and return it.

    Each parameter becomes a view into the returned flat parameter, and each ``.grad`` a view
    into the flat parameter's ``.grad``; autograd accumulates into those views in place. An
    optimizer over ``[flat]`` then updates every parameter with one kernel, and gradient
    clipping and zeroing are one operation each: the per-parameter Python overhead that
    dominates small networks disappears. Do this after moving the module to its device, and
    zero gradients with ``flat.grad.zero_()`` (``set_to_none`` would detach the views).
    """
    params: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in module.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    if not params:
        raise ValueError("flatten_parameters: the module has no trainable parameters")
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(
            "flatten_parameters needs one dtype and one device, got "
            f"{sorted(map(str, dtypes))} on {sorted(map(str, devices))}"
        )
    total = sum(p.numel() for p in params)
    flat = nn.Parameter(torch.empty(total, dtype=params[0].dtype, device=params[0].device))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            flat[offset : offset + n].copy_(p.reshape(-1))
            p.data = flat.data[offset : offset + n].view_as(p)
            p.grad = flat.grad[offset : offset + n].view_as(p)
            offset += n
    return flat


class FlatAdam(torch.optim.Optimizer):
    """Adam (Kingma & Ba) with a lean step for a few large tensors, e.g. one flat buffer.

    Same update and state layout (``step``, ``exp_avg``, ``exp_avg_sq``) as ``torch.optim.Adam``
    without weight decay or amsgrad; each step is six in-place tensor operations per
    parameter, so for one flat buffer it skips the ~50 us of bookkeeping per call that
    ``torch.optim.Adam`` spends on small networks.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if lr <= 0 or eps <= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"FlatAdam: invalid lr={lr}, betas={betas} or eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One Adam update of every parameter that has a gradient."""
        if closure is not None:
            raise ValueError("FlatAdam.step does not take a closure")
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                step = float(state["step"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2**step)).add_(group["eps"])
                param.addcdiv_(exp_avg, denom, value=-group["lr"] / (1.0 - beta1**step))


def clip_grad_norm_(grad: Tensor, max_norm: float) -> Tensor:
    """Scale one gradient buffer so its 2-norm is at most ``max_norm`` (as
    ``torch.nn.utils.clip_grad_norm_``: coefficient ``max_norm / (norm + 1e-6)``, capped at 1).
    Returns the norm before clipping."""
    norm = torch.linalg.vector_norm(grad)
    grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return norm
