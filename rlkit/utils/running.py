"""Running statistics kept as module buffers (so they are checkpointed and exported)."""

from __future__ import annotations

import numpy as np
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
        """Fold a batch ``[B, *shape]`` into the statistics (in NumPy, on the buffers' memory,
        when batch and buffers are plain CPU tensors: the same float64 maths at ~1/6 of the
        cost of a dozen tiny torch ops, which an env step pays once or twice)."""
        if _numpy_ready(x, self.mean, self.var, self.count):
            self._update_numpy(x.detach().numpy())
            return
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

    def _update_numpy(self, batch: np.ndarray) -> None:
        x = batch.astype(np.float64, copy=False).reshape(-1, *self.mean.shape)
        mean, var, count = self.mean.numpy(), self.var.numpy(), self.count.numpy()
        n = x.shape[0]
        batch_mean = x.sum(0) / n
        centered = x - batch_mean
        batch_var = (centered * centered).sum(0) / n
        delta = batch_mean - mean
        old = float(count)
        total = old + n
        m2 = var * old + batch_var * n + delta * delta * (old * n / total)
        mean += delta * (n / total)
        var[...] = m2 / total
        count[...] = total

    def normalize(self, x: Tensor, clip: float | None = None, eps: float = 1e-8) -> Tensor:
        """``(x - mean) / sqrt(var + eps)`` in ``x``'s dtype, optionally clipped to ``+-clip``."""
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var + eps).to(x.dtype)
        out = (x - mean) / std
        return out.clamp(-clip, clip) if clip is not None else out

    @property
    def std(self) -> Tensor:
        return torch.sqrt(self.var)


def _numpy_ready(*tensors: Tensor) -> bool:
    """Whether NumPy may read and write these tensors in place: dense CPU tensors that do
    not take part in autograd, outside ``torch.compile`` tracing."""
    if torch.compiler.is_compiling():
        return False
    for t in tensors:
        if t.device.type != "cpu" or t.requires_grad or t.is_inference() or t.is_sparse:
            return False
    return True
