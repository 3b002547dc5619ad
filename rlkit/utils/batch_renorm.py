"""Batch Renormalization (Ioffe 2017, "Batch Renormalization: Towards Reducing Minibatch
Dependence in Batch-Normalized Models"), as CrossQ uses it (Bhatt et al. 2024).

In training mode a :class:`BatchRenorm` layer normalises with the batch's statistics and
corrects them toward the running ones::

    y = gamma * ((x - mu_B) / sigma_B * r + d) + beta
    r = sg(clip(sigma_B / sigma, 1 / r_max, r_max))
    d = sg(clip((mu_B - mu) / sigma, -d_max, d_max))

with ``sigma_B = sqrt(var_B + eps)`` (biased batch variance), ``sigma = sqrt(running_var +
eps)`` and ``sg`` no gradient; then the running statistics move toward the batch's
(``running = momentum * running + (1 - momentum) * batch``) and ``steps`` counts the update.
During the first ``warmup_steps`` training calls ``r = 1`` and ``d = 0`` (plain batch
normalisation while the running statistics build up), as the CrossQ authors' and
Stable-Baselines-Jax's layer (``warmup_steps=100_000``, ``r_max=3``, ``d_max=5``,
``momentum=0.99``, ``eps=1e-3``). In eval mode the layer uses the running statistics and
changes nothing.

The running statistics and the step count are buffers (saved with the module's state).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BatchRenorm(nn.Module):
    """Batch renormalisation over the last axis (``num_features``).

    Input ``[B, F]``, or with ``num_members`` ``E`` independent layers on ``[E, B, F]`` (one
    batch per member, statistics per member; a ``[B, F]`` input is shared by every member),
    as the ensembles of :mod:`rlkit.policies.ensemble` lay out their critics.
    """

    running_mean: Tensor
    running_var: Tensor
    steps: Tensor

    def __init__(
        self,
        num_features: int,
        num_members: int | None = None,
        momentum: float = 0.99,
        eps: float = 1e-3,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 100_000,
    ) -> None:
        super().__init__()
        if num_features < 1 or (num_members is not None and num_members < 1):
            raise ValueError(
                f"BatchRenorm: num_features and num_members must be >= 1, got {num_features}, "
                f"{num_members}"
            )
        if not (0.0 <= momentum < 1.0 and eps > 0 and r_max >= 1.0 and d_max >= 0.0):
            raise ValueError(
                f"BatchRenorm: need 0 <= momentum < 1, eps > 0, r_max >= 1 and d_max >= 0, got "
                f"momentum={momentum}, eps={eps}, r_max={r_max}, d_max={d_max}"
            )
        if warmup_steps < 0:
            raise ValueError(f"BatchRenorm: warmup_steps must be >= 0, got {warmup_steps}")
        shape = (num_features,) if num_members is None else (num_members, 1, num_features)
        self.num_features = int(num_features)
        self.num_members = None if num_members is None else int(num_members)
        self.momentum, self.eps = float(momentum), float(eps)
        self.r_max, self.d_max, self.warmup_steps = float(r_max), float(d_max), int(warmup_steps)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor, detach_params: bool = False) -> Tensor:
        """Normalise ``x`` (see the module doc); ``detach_params`` keeps ``weight`` and
        ``bias`` out of autograd (the actor's loss through a critic)."""
        weight: Tensor = self.weight
        bias: Tensor = self.bias
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        if self.num_members is not None and x.dim() == 2:
            x = x.expand(self.num_members, *x.shape)
        if not self.training:
            scale = torch.rsqrt(self.running_var + self.eps) * weight
            return (x - self.running_mean) * scale + bias
        mean = x.mean(dim=-2, keepdim=True)
        var = x.var(dim=-2, unbiased=False, keepdim=True)
        if self.num_members is None:
            mean, var = mean.squeeze(0), var.squeeze(0)
        std = torch.sqrt(var + self.eps)
        with torch.no_grad():
            running_std = torch.sqrt(self.running_var + self.eps)
            warm = (self.steps >= self.warmup_steps).to(x.dtype)  # no branch: compiles as is
            r = (std / running_std).clamp(1.0 / self.r_max, self.r_max)
            d = ((mean - self.running_mean) / running_std).clamp(-self.d_max, self.d_max)
            r = warm * r + (1.0 - warm)
            d = warm * d
            self.running_mean.lerp_(mean.detach(), 1.0 - self.momentum)
            self.running_var.lerp_(var.detach(), 1.0 - self.momentum)
            self.steps.add_(1)
        return ((x - mean) / std * r + d) * weight + bias

    def extra_repr(self) -> str:
        members = f", members={self.num_members}" if self.num_members is not None else ""
        return (
            f"{self.num_features}{members}, momentum={self.momentum}, eps={self.eps}, "
            f"r_max={self.r_max}, d_max={self.d_max}, warmup_steps={self.warmup_steps}"
        )


__all__ = ["BatchRenorm"]
