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


#: (device type, dtype) pairs for which this torch build has no fused Adam kernel (learned at
#: the first failed call; e.g. CPU before torch 2.4).
_NO_FUSED_ADAM: set[tuple[str, torch.dtype]] = set()


def _fused_adam_available(param: Tensor) -> bool:
    """Whether torch's single-kernel Adam (what ``Adam(fused=True)`` calls) may take ``param``."""
    return (
        hasattr(torch, "_fused_adam_")
        and param.device.type in ("cpu", "cuda")
        and param.dtype in (torch.float32, torch.float64)
        and (param.device.type, param.dtype) not in _NO_FUSED_ADAM
    )


class FlatAdam(torch.optim.Optimizer):
    """Adam (Kingma & Ba) with a lean step for a few large tensors, e.g. one flat buffer.

    Same update and state layout (``step``, ``exp_avg``, ``exp_avg_sq``) as ``torch.optim.Adam``
    without weight decay or amsgrad. Each step calls torch's fused Adam kernel directly (the one
    ``Adam(fused=True)`` uses: one pass over the buffer, ~5 us for 10k parameters on a CPU core)
    or, where that kernel is unavailable, six in-place tensor operations per parameter; either
    way it skips the ~50 us of per-call bookkeeping ``torch.optim.Adam`` spends on small
    networks.
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
                    device = param.device if _fused_adam_available(param) else None
                    state["step"] = torch.zeros((), dtype=torch.float32, device=device)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                if _fused_adam_available(param) and state["step"].device == param.device:
                    try:
                        torch._fused_adam_(
                            [param],
                            [grad],
                            [exp_avg],
                            [exp_avg_sq],
                            [],
                            [state["step"]],
                            amsgrad=False,
                            lr=float(group["lr"]),
                            beta1=beta1,
                            beta2=beta2,
                            weight_decay=0.0,
                            eps=group["eps"],
                            maximize=False,
                        )
                        continue
                    except (NotImplementedError, RuntimeError):  # no kernel for this device
                        _NO_FUSED_ADAM.add((param.device.type, param.dtype))
                step = float(state["step"])
                exp_avg.lerp_(grad, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2**step)).add_(group["eps"])
                param.addcdiv_(exp_avg, denom, value=-group["lr"] / (1.0 - beta1**step))


def clip_grad_norm_(grad: Tensor, max_norm: float) -> Tensor:
    """Scale one gradient buffer so its 2-norm is at most ``max_norm`` (as
    ``torch.nn.utils.clip_grad_norm_``: coefficient ``max_norm / (norm + 1e-6)``, capped at 1).
    Returns the norm before clipping.

    On the CPU the coefficient is computed as a Python float and the buffer is only touched
    when it is below 1 (reading the norm costs no device sync there); elsewhere the clamp stays
    on the device."""
    norm = torch.linalg.vector_norm(grad)
    if grad.device.type == "cpu":
        coef = max_norm / (float(norm) + 1e-6)
        if coef < 1.0:
            grad.mul_(coef)
        return norm
    grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return norm
