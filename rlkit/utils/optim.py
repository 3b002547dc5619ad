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
