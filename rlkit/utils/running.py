"""Running statistics kept as module buffers (so they are checkpointed and exported)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RunningMeanStd(nn.Module):
    """Streaming mean/variance over the leading axis (parallel Welford / Chan et al.)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    mean: Tensor
    var: Tensor
    count: Tensor

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold a batch ``[B, *shape]`` into the statistics."""
        x = x.detach().to(torch.float64).reshape(-1, *self.mean.shape)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        batch_count = x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean += delta * batch_count / total
        m2 = (
            self.var * self.count
            + batch_var * batch_count
            + delta**2 * self.count * batch_count / total
        )
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, x: Tensor, clip: float | None = None, eps: float = 1e-8) -> Tensor:
        """``(x - mean) / sqrt(var + eps)`` in ``x``'s dtype, optionally clipped to ``+-clip``."""
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var + eps).to(x.dtype)
        out = (x - mean) / std
        return out.clamp(-clip, clip) if clip is not None else out

    @property
    def std(self) -> Tensor:
        return torch.sqrt(self.var)
