"""Optimizer construction with the fastest available implementation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


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
