"""Diagonal Gaussian family for Box action spaces."""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.distributions.base import DISTRIBUTIONS, ActionDistribution, Distribution
from rlkit.spaces import check_space

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class DiagGaussianDist(ActionDistribution):
    """Independent normals ``N(mean, std^2)`` over the last axis."""

    def __init__(self, mean: Tensor, log_std: Tensor) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)
        self.std = self.log_std.exp()

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            noise = torch.randn(
                self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
            )
            return self.mean + self.std * noise

    def rsample(self) -> Tensor:
        return self.mean + self.std * torch.randn_like(self.mean)

    def log_prob(self, actions: Tensor) -> Tensor:
        z = (actions - self.mean) / self.std
        return (-0.5 * z * z - self.log_std - _HALF_LOG_2PI).sum(-1)

    def entropy(self) -> Tensor:
        return (0.5 + _HALF_LOG_2PI + self.log_std).sum(-1)

    def mode(self) -> Tensor:
        return self.mean

    def kl(self, other: ActionDistribution) -> Tensor:
        if not isinstance(other, DiagGaussianDist):
            return super().kl(other)
        var_ratio = (self.std / other.std) ** 2
        diff = ((self.mean - other.mean) / other.std) ** 2
        return 0.5 * (var_ratio + diff - 1 - var_ratio.log()).sum(-1)


@DISTRIBUTIONS.register("diag_gaussian")
class DiagGaussian(Distribution):
    """Diagonal Gaussian over a flat ``Box`` action space.

    ``state_dependent_std=False`` (the PPO default) learns one log-std per action dimension;
    ``True`` makes the head output the log-std too. Sampled actions are unbounded and stored as
    such; :meth:`postprocess` clips them to the space's finite bounds for the env.
    """

    def __init__(
        self,
        action_space: spaces.Space,
        log_std_init: float = 0.0,
        state_dependent_std: bool = False,
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
    ) -> None:
        check_space(action_space, (spaces.Box,), "action space", "DiagGaussian")
        super().__init__(action_space)
        assert isinstance(action_space, spaces.Box)
        self.space_shape = tuple(action_space.shape)
        self.dim = int(np.prod(action_space.shape))
        self.state_dependent_std = state_dependent_std
        self.log_std_bounds = (float(log_std_bounds[0]), float(log_std_bounds[1]))
        if not state_dependent_std:
            self.log_std = nn.Parameter(torch.full((self.dim,), float(log_std_init)))
        low = torch.as_tensor(action_space.low.reshape(-1), dtype=torch.float32)
        high = torch.as_tensor(action_space.high.reshape(-1), dtype=torch.float32)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.low: Tensor
        self.high: Tensor

    @property
    def num_params(self) -> int:
        return 2 * self.dim if self.state_dependent_std else self.dim

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def forward(self, params: Tensor) -> DiagGaussianDist:
        if self.state_dependent_std:
            mean, log_std = params.chunk(2, dim=-1)
            log_std = log_std.clamp(*self.log_std_bounds)
        else:
            mean, log_std = params, self.log_std
        return DiagGaussianDist(mean, log_std)

    def postprocess(self, actions: Tensor) -> Tensor:
        # Clipping against infinite bounds is a no-op, so partly bounded boxes work too.
        actions = torch.maximum(torch.minimum(actions, self.high), self.low)
        return actions.reshape(actions.shape[0], *self.space_shape)
